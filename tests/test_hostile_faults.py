"""Faults: Ctrl-C and closed pipes during predict, SIGKILL during train then --resume, damaged and
pickled checkpoint files. Subprocess tests (real signals) are marked slow; tampering runs in-process."""
from __future__ import annotations

import json
import os
import pathlib
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import hostile_corpus as H
import train_helpers as T
from geocli.store.checkpoint import load_checkpoint
from geocli.errors import GeocliError

REPO = Path(__file__).resolve().parents[1]


class Booby:
    """Unpickling this creates ``marker``: proof that a loader ran code from a file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (pathlib.Path(self.marker),)


def booby_trap(marker: Path) -> bytes:
    return pickle.dumps({"state_dict": Booby(marker)})


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """A finished one-epoch tiny run folder (copy it before tampering)."""
    from geocli.training.trainer import train

    tmp = tmp_path_factory.mktemp("run")
    return train(T.tiny_config(tmp, epochs=1), progress=False).out


def _copy(run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run, tmp_path / "run"))


def _resume_error(folder: Path) -> str:
    result = H.run_cli(["train", "--resume", folder, "--epochs", "2", "--format", "json"])
    assert result.code == 2 and "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("geocli: error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def test_the_booby_trap_is_live(tmp_path):
    pickle.loads(booby_trap(tmp_path / "fired"))
    assert (tmp_path / "fired").exists()  # so its absence below means no code ran


@pytest.mark.parametrize("damage", ["garbage", "truncated", "pickle renamed to .safetensors"])
def test_damaged_weights_are_refused_in_one_line(trained_run, tmp_path, damage):
    folder = _copy(trained_run, tmp_path)
    weights = folder / "model.safetensors"
    marker = tmp_path / "fired"
    if damage == "garbage":
        weights.write_bytes(os.urandom(4096))
    elif damage == "truncated":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    else:
        weights.write_bytes(booby_trap(marker))
    line = _resume_error(folder)
    assert "model.safetensors: cannot load the weights" in line
    with pytest.raises(GeocliError, match="cannot load the weights"):
        load_checkpoint(folder)
    assert not marker.exists()


@pytest.mark.parametrize("name", ["model.pt", "pytorch_model.bin"])
def test_pickled_weights_are_refused_and_never_run(trained_run, tmp_path, name):
    folder = _copy(trained_run, tmp_path)
    (folder / "model.safetensors").unlink()
    marker = tmp_path / "fired"
    (folder / name).write_bytes(booby_trap(marker))
    line = _resume_error(folder)
    assert f"{name} is a pickle file" in line
    with pytest.raises(GeocliError, match="pickle"):
        load_checkpoint(folder / name)
    assert not marker.exists()


@pytest.mark.parametrize("target,content", [("train_state.json", b"{not json"),
                                            ("train_state.safetensors", b"pickle"),
                                            ("train_state.safetensors", b"\x00" * 7)])
def test_damaged_training_state_is_refused_in_one_line(trained_run, tmp_path, target, content):
    folder = _copy(trained_run, tmp_path)
    marker = tmp_path / "fired"
    (folder / target).write_bytes(booby_trap(marker) if content == b"pickle" else content)
    assert f"{target}: cannot read the training state" in _resume_error(folder)
    assert not marker.exists()


def test_resume_finds_the_twin_a_kill_mid_save_leaves(trained_run, tmp_path):
    """save_run moves the old folder aside, then renames the new one in: a kill in between leaves
    only ``.run.old-XXXX``; --resume RUN must still continue from it."""
    folder = _copy(trained_run, tmp_path)
    folder.rename(tmp_path / ".run.old-0123abcd")
    result = H.run_cli(["train", "--resume", folder, "--epochs", "2", "--format", "json"])
    assert result.code == 0, result.stderr
    assert "resuming" in result.stderr and "after epoch 1" in result.stderr
    assert [row["epoch"] for row in json.loads(result.stdout)["history"]] == [1, 2]


def _geocli(*args, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.Popen([sys.executable, "-m", "geocli", *map(str, args)], cwd=REPO, env=env,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def _wait_for(condition, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"exited early ({proc.returncode}): {proc.stderr.read()}"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _tiny_folder(folder: Path, n: int) -> Path:
    from PIL import Image

    folder.mkdir()
    for i in range(n):
        Image.new("RGB", (16, 16), (i % 256, 0, 0)).save(folder / f"{i:05d}.png")
    return folder


@pytest.mark.slow
def test_ctrl_c_during_predict_leaves_only_complete_lines(tmp_path):
    folder = _tiny_folder(tmp_path / "many", 1500)
    out = tmp_path / "out.jsonl"
    proc = _geocli("predict", folder, "--model", "evidence", "--no-ocr", "--format", "jsonl", "-o", out,
                   "--batch-size", "4")
    partial = lambda: [p for p in tmp_path.glob(".out.jsonl.*.partial") if p.stat().st_size > 0]  # noqa: E731
    _wait_for(lambda: bool(partial()), proc)  # results go to a temporary twin until the run ends
    proc.send_signal(signal.SIGINT)
    stderr = proc.communicate(timeout=60)[1]
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr
    assert "interrupted: every finished result was written" in stderr
    text = out.read_text(encoding="utf-8")
    assert text.endswith("\n") and not partial()
    records = [json.loads(line) for line in text.splitlines()]
    assert 0 < len(records) < 1500 and all(r["ok"] for r in records)
    assert [Path(r["image"]).name for r in records] == [f"{i:05d}.png" for i in range(len(records))]


@pytest.mark.slow
def test_a_reader_that_goes_away_ends_predict_quietly(tmp_path):
    folder = _tiny_folder(tmp_path / "many", 400)
    proc = _geocli("predict", folder, "--model", "evidence", "--no-ocr", "--format", "jsonl",
                   stdout=subprocess.PIPE)
    json.loads(proc.stdout.readline())
    proc.stdout.close()  # like '| head -1'
    stderr = proc.communicate(timeout=120)[1]
    assert proc.returncode == 141 and stderr.count("\n") <= 1, stderr  # 128 + SIGPIPE, quietly
    assert "Traceback" not in stderr and "Error" not in stderr and "internal error" not in stderr, stderr


def test_sigterm_is_a_graceful_stop_with_exit_143():
    from geocli.interrupt import GracefulInterrupt, interrupted_exit_code

    with GracefulInterrupt() as interrupt:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.01)
    assert interrupt.requested and interrupt.exit_code == 143 == interrupted_exit_code()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the previous handler is back


@pytest.mark.slow
def test_sigterm_during_json_output_closes_the_array_and_exits_143(tmp_path):
    folder = _tiny_folder(tmp_path / "many", 1500)
    out = tmp_path / "out.json"
    with out.open("w") as stdout:
        proc = _geocli("predict", folder, "--model", "evidence", "--no-ocr", "--format", "json",
                       "--batch-size", "4", stdout=stdout)
        _wait_for(lambda: out.stat().st_size > 0, proc)
        proc.send_signal(signal.SIGTERM)
        stderr = proc.communicate(timeout=60)[1]
    assert proc.returncode == 143 and "Traceback" not in stderr, stderr
    records = json.loads(out.read_text(encoding="utf-8"))  # a complete, closed array
    assert 0 < len(records) < 1500 and all(r["ok"] for r in records)


def _saved_epoch(folder: Path) -> int:
    try:
        return json.loads((folder / "train_state.json").read_text())["epoch"]
    except (OSError, ValueError, KeyError):  # not written yet, or mid-swap
        return -1


@pytest.mark.slow
def test_sigkill_during_train_then_resume_finishes(tmp_path):
    cfg = T.tiny_config(tmp_path, epochs=12)
    (tmp_path / "train.json").write_text(json.dumps(cfg.to_dict()))
    proc = _geocli("train", "--config", tmp_path / "train.json", "--format", "json", stdout=subprocess.DEVNULL)
    _wait_for(lambda: _saved_epoch(Path(cfg.out)) >= 3, proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    from geocli.store.run_folder import load_run_state

    saved = load_run_state(cfg.out)["epoch"]  # the last complete save, wherever the kill landed
    assert 3 <= saved < 12
    result = H.run_cli(["train", "--resume", cfg.out, "--format", "json"])
    assert result.code == 0, result.stderr
    assert f"after epoch {saved}" in result.stderr
    history = json.loads(result.stdout)["history"]
    assert [row["epoch"] for row in history] == list(range(1, 13))
    assert load_run_state(cfg.out)["epoch"] == 12
    assert json.loads((pathlib.Path(cfg.out) / "config.json").read_text())["train"]["epoch"] == 12
    assert set(load_checkpoint(cfg.out).heads) == set(cfg.heads)
