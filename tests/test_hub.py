"""Offline detection, weight-file loading and hub-error translation (geocli/weights/hub.py)."""
from __future__ import annotations

import time

import pytest
import torch

from geocli.weights import hub
from geocli.errors import GeocliError, WeightsNotFoundError


@pytest.fixture(autouse=True)
def _fresh_probe(monkeypatch):
    monkeypatch.setattr(hub, "_offline", None)
    for name in ("GEOCLI_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)


def test_env_flags_decide_without_probing(monkeypatch):
    monkeypatch.setattr(hub, "_probe", lambda *a, **k: pytest.fail("probed despite env flag"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub.is_offline()
    monkeypatch.setenv("GEOCLI_OFFLINE", "0")  # geocli's own flag wins, both ways
    assert not hub.is_offline()


def test_probe_result_is_cached(monkeypatch):
    calls = []
    monkeypatch.setattr(hub, "_probe", lambda *a, **k: calls.append(1) or False)
    assert hub.is_offline() and hub.is_offline()
    assert len(calls) == 1


def test_probe_of_unreachable_host_is_fast():
    start = time.perf_counter()
    assert hub._probe(("geocli-no-such-host.invalid", 443), timeout=0.5) is False
    assert time.perf_counter() - start < 1.5


def test_offline_mode_is_scoped(monkeypatch):
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    with hub.offline_mode():
        assert constants.HF_HUB_OFFLINE is True
    assert constants.HF_HUB_OFFLINE is False
    assert "HF_HUB_OFFLINE" not in __import__("os").environ


def test_fetch_turns_client_errors_into_one_line(monkeypatch):
    monkeypatch.setenv("GEOCLI_OFFLINE", "1")

    def client():
        raise OSError("We couldn't connect to 'https://huggingface.co'\nlong traceback text")

    with pytest.raises(WeightsNotFoundError) as info:
        hub.fetch("timm model 'x'", client, "pass --rgb-weights FILE")
    message = str(info.value)
    assert "\n" not in message and "timm model 'x'" in message and "--rgb-weights" in message
    assert "offline" in message


def test_load_safetensors_and_torch_state_dicts(tmp_path):
    from safetensors.torch import save_file

    state = {"w": torch.arange(6.0).reshape(2, 3)}
    save_file(state, str(tmp_path / "a.safetensors"))
    torch.save({"state_dict": {"module.w": state["w"]}}, tmp_path / "b.pth")
    assert torch.equal(hub.load_weights_file(tmp_path / "a.safetensors")["w"], state["w"])
    assert torch.equal(hub.load_weights_file(tmp_path / "b.pth")["w"], state["w"])  # unwrapped


class _Payload:
    def __reduce__(self):
        return (print, ("code ran",))


def test_pickled_code_is_refused(tmp_path, capsys):
    torch.save({"w": _Payload()}, tmp_path / "evil.pth")
    with pytest.raises(GeocliError, match="refusing"):
        hub.load_weights_file(tmp_path / "evil.pth")
    assert "code ran" not in capsys.readouterr().out


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="nope.safetensors"):
        hub.load_weights_file(tmp_path / "nope.safetensors")


def test_cache_dir_and_digest(monkeypatch, tmp_path):
    monkeypatch.setenv("GEOCLI_CACHE", str(tmp_path / "c"))
    assert hub.cache_dir("x").is_dir() and hub.cache_dir("x").parent == tmp_path / "c"
    assert hub.digest("a", [1, 2]) == hub.digest("a", [1, 2]) != hub.digest("a", [2, 1])
