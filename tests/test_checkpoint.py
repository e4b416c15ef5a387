"""Checkpoint folders: config.json + model.safetensors, atomic save, exact round trip, no pickles."""
from __future__ import annotations

import importlib.util
import json

import pytest
import torch

import fusion_helpers as H
from geocli.config import HeadConfig, ModelConfig
from geocli.store.checkpoint import load_checkpoint, save_checkpoint
from geocli.errors import GeocliError, UsageError
from geocli.model import GeoModel

HAS_GEOCLIP = importlib.util.find_spec("geoclip") is not None


def _heads():
    heads = [HeadConfig("country"), HeadConfig("geocell", options={"tau_km": 70.0}), HeadConfig("scene"),
             HeadConfig("grid_regression"), HeadConfig("retrieval", options={"out_channels": 8, "out_rows": 2})]
    if HAS_GEOCLIP:
        heads.append(HeadConfig("gallery", options={"gallery": "none"}))
    return heads


def _trained_model():
    torch.manual_seed(0)
    model = GeoModel(H.config(fusion="translocator", heads=_heads()))
    if HAS_GEOCLIP:
        model.heads["gallery"].set_gallery(H.coords()[::7])
    batch = H.batch(4)
    model.loss(model(batch), batch)[0].backward()
    torch.optim.SGD(model.parameters(), lr=0.1).step()  # weights differ from any fresh init
    return model.eval()


def test_round_trip_gives_identical_outputs(tmp_path):
    model = _trained_model()
    folder = save_checkpoint(model, tmp_path / "ckpt")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "geocli-folder.json", "model.safetensors"]
    loaded = load_checkpoint(folder)
    batch = H.batch(4, seed=3)
    a, b = model(batch), loaded(batch)
    assert torch.equal(a["embedding"], b["embedding"])
    for name in model.heads:
        for key, value in a["heads"][name].items():
            other = b["heads"][name][key]
            if isinstance(value, dict):
                assert all(torch.equal(value[k], other[k]) for k in value)
            else:
                assert torch.equal(value, other)
    assert model.predict(batch) == loaded.predict(batch)
    if HAS_GEOCLIP:
        assert len(loaded.heads["gallery"].gallery) == len(H.coords()[::7])


def test_config_json_carries_label_spaces_and_preprocessing(tmp_path):
    folder = save_checkpoint(_trained_model(), tmp_path / "ckpt", extra={"train": {"epochs": 3}})
    doc = json.loads((folder / "config.json").read_text())
    assert doc["format"] == "geocli-model" and doc["train"] == {"epochs": 3}
    labels = doc["model"]["labels"]
    assert labels["countries"] == H.COUNTRIES and labels["scenes"] == ["indoor", "natural", "urban"]
    assert [p["name"] for p in labels["geocells"]["partitions"]] == ["coarse", "fine"]
    rgb = doc["model"]["branches"][0]
    assert rgb["preprocess"]["image_size"] == 32 and rgb["options"]["model_kwargs"]["embed_dim"] == 32
    assert ModelConfig.from_dict(doc["model"]).to_dict() == doc["model"]


def test_save_replaces_an_existing_checkpoint_atomically(tmp_path):
    target = tmp_path / "ckpt"
    model = _trained_model()
    save_checkpoint(model, target)
    first = (target / "config.json").stat().st_ino
    save_checkpoint(model, target)
    assert (target / "config.json").stat().st_ino != first  # a new folder took the name
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]  # no temp or backup folder left


def test_save_never_replaces_a_folder_geocli_did_not_make(tmp_path):
    target = tmp_path / "ckpt"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    with pytest.raises(GeocliError, match="not a geocli folder"):
        save_checkpoint(_trained_model(), target)
    assert (target / "notes.txt").read_text() == "mine"
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]


def test_failed_save_leaves_the_old_checkpoint(tmp_path, monkeypatch):
    target = tmp_path / "ckpt"
    model = _trained_model()
    save_checkpoint(model, target)
    before = (target / "model.safetensors").read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("safetensors.torch.save_model", boom)
    with pytest.raises(GeocliError, match="cannot save .*disk full; the previous save there is intact"):
        save_checkpoint(model, target)
    assert (target / "model.safetensors").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]


def test_pickles_are_refused(tmp_path):
    torch.save({"w": torch.zeros(1)}, tmp_path / "model.pt")
    with pytest.raises(GeocliError, match="pickle"):
        load_checkpoint(tmp_path / "model.pt")
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    torch.save({"w": torch.zeros(1)}, folder / "pytorch_model.bin")
    with pytest.raises(GeocliError, match="pickle"):
        load_checkpoint(folder)
    with pytest.raises(GeocliError, match="not found"):
        load_checkpoint(tmp_path / "missing")


def test_config_errors_are_clear():
    with pytest.raises(UsageError, match="unknown keys"):
        ModelConfig.from_dict({"branchez": []})
    with pytest.raises(UsageError, match="unknown option"):
        GeoModel(H.config(fusion="concat", heads=[HeadConfig("country", options={"smoothing": 0.1})]))
