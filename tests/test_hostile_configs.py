"""Numbers and configs are checked where they enter: ``--lr nan``, NaN / huge numbers / wrong types /
lists / deep nesting in ``--config`` and in a checkpoint's ``config.json``, options that name files,
weights of the wrong size, and a loss that stops being a number."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import hostile_corpus as H
import train_helpers as T
from geocli.store.checkpoint import load_checkpoint
from geocli.errors import GeocliError, UsageError


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    from geocli.training.trainer import train

    tmp = tmp_path_factory.mktemp("run")
    return train(T.tiny_config(tmp, epochs=1), progress=False).out


def _one_error(result: H.CliResult) -> str:
    assert result.code == 2 and "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith(("geocli: error: ", "Error: "))]
    assert len(errors) == 1, result.stderr
    return errors[0]


def _base(tmp_path: Path) -> dict:
    return T.tiny_config(tmp_path).to_dict()


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN", "1e999"])
def test_lr_that_is_not_a_number_is_refused_before_any_work(tmp_path, value):
    config = tmp_path / "train.json"
    config.write_text(json.dumps(_base(tmp_path)))
    line = _one_error(H.run_cli(["train", "--config", config, "--lr", value]))
    assert "lr" in line and not (tmp_path / "run").exists() and not (tmp_path / "cache").exists()


@pytest.mark.parametrize("text,message", [
    ('{"lr": NaN}', "NaN is not a number JSON allows"),
    ('{"weight_decay": Infinity}', "Infinity is not a number JSON allows"),
    ('{"lr": 1e999}', "too large"),
    ('{"epochs": "ten"}', "epochs: expected a whole number, got a string"),
    ('{"epochs": true}', "epochs: expected a whole number, got true/false"),
    ('{"batch_size": 8.5}', "batch_size: expected a whole number"),
    ('{"branches": "rgb"}', "branches: expected a list"),
    ('{"head_weights": {"country": "heavy"}}', "head_weights.country: expected a finite number"),
    ('{"label_smoothing": 1.5}', "label_smoothing must be in"),
    ('{"crop_scale": [0.9, 0.1]}', "crop_scale must be"),
    ('{"cells": [[50, 5]]}', "cells must be"),
    ('[{"lr": 0.1}]', "expected a JSON object"),
    ("[" * 50_000 + "]" * 50_000, "nested too deeply"),
    ("{" * 10 + "oops", "cannot read it as JSON"),
])
def test_bad_config_files_are_one_line(tmp_path, text, message):
    config = tmp_path / "bad.json"
    config.write_text(text)
    args = ["train", "--config", config, "--data", tmp_path / "m.csv", "--out", tmp_path / "run"]
    line = _one_error(H.run_cli(args))
    assert message in line, line


def test_a_loss_that_stops_being_a_number_stops_the_run(tmp_path, monkeypatch):
    """A diverging model is not saved: nothing at OUT on a fresh run, one line naming the epoch."""
    import torch

    from geocli.model import GeoModel

    real = GeoModel.loss

    def nan_loss(*args, **kwargs):
        loss, parts = real(*args, **kwargs)
        return loss * torch.tensor(float("nan")), parts

    monkeypatch.setattr(GeoModel, "loss", nan_loss)
    config = tmp_path / "train.json"
    config.write_text(json.dumps(_base(tmp_path)))
    line = _one_error(H.run_cli(["train", "--config", config]))
    assert "training loss became nan in epoch 1" in line and "nothing was saved" in line
    assert not (tmp_path / "run").exists()


def test_summary_json_is_strict_even_when_a_value_is_not_finite(trained_run):
    from geocli.report.json_out import loads_strict, strict_json
    from geocli.training.trainer import TrainResult

    result = TrainResult(trained_run, 1, [{"epoch": 1, "train_loss": float("nan"), "val": {"loss": float("inf")}}],
                         {"median_km": float("nan")}, "group")
    text = strict_json(result.summary())
    assert loads_strict(text)["history"][0]["train_loss"] is None


# ---- a checkpoint's config.json is data, read only from its folder ----

def _tamper(run: Path, tmp_path: Path, edit) -> Path:
    folder = Path(shutil.copytree(run, tmp_path / "ckpt"))
    document = json.loads((folder / "config.json").read_text())
    edit(document["model"])
    (folder / "config.json").write_text(json.dumps(document))
    return folder


def _rgb(model: dict) -> dict:
    return model["branches"][0]


@pytest.mark.parametrize("edit,message", [
    (lambda m: _rgb(m)["options"]["model_kwargs"].update(checkpoint_path="/etc/passwd"),
     "model_kwargs.checkpoint_path is not an architecture option"),
    (lambda m: _rgb(m)["options"]["model_kwargs"].update(pretrained_cfg_overlay={"file": "/tmp/x.pth"}),
     "model_kwargs.pretrained_cfg_overlay is not an architecture option"),
    (lambda m: _rgb(m)["options"]["model_kwargs"].update(img_size="../../x.bin"), "model_kwargs.img_size: expected"),
    (lambda m: _rgb(m)["options"].update(model="local-dir:/tmp/evil"), "names a file or folder"),
    (lambda m: _rgb(m)["options"].update(engine_options={"det_model_path": "/tmp/det.onnx"}),
     "options.engine_options.det_model_path names a file or folder"),
    (lambda m: _rgb(m)["options"].update(segmenter_options={"weights": "~/lraspp.pth"}),
     "options.segmenter_options.weights names a file or folder"),
    (lambda m: _rgb(m)["preprocess"].update(image_size=65500), "image_size must be a whole number in [1, 4096]"),
    (lambda m: _rgb(m)["preprocess"].update(image_size=0), "image_size must be"),
    (lambda m: _rgb(m)["preprocess"].update(image_size="big"), "image_size must be"),
    (lambda m: _rgb(m)["preprocess"].update(crop_pct=0), "crop_pct must be a number in"),
    (lambda m: _rgb(m)["preprocess"].update(crop_pct=0.01), "crop_pct must be a number in [0.5, 1]"),
    (lambda m: _rgb(m)["options"]["model_kwargs"].update(embed_dim=10 ** 6), "embed_dim: 1000000 is larger than"),
    (lambda m: m["heads"][0]["options"].update(hidden=[10 ** 7]), "hidden: 10000000 is larger than"),
    (lambda m: m["labels"].update(countries=[f"C{i}" for i in range(5000)]), "more than geocli builds"),
    (lambda m: _rgb(m)["preprocess"].update(std=[0, 1, 1]), "std must be three numbers > 0"),
    (lambda m: _rgb(m)["preprocess"].update(mean=[0.5]), "mean must be three numbers"),
    (lambda m: m["labels"].update(countries=["HR", "HR"]), "countries must be distinct"),
    (lambda m: m["labels"].update(country_points=[[0, 0]]), "country_points has 1 points"),
    (lambda m: m["labels"].update(geocells={"partitions": [{"name": "x"}]}), "not a geocell table"),
    (lambda m: m["labels"].update(countries="HR"), "labels.countries: expected a list"),
    (lambda m: m["heads"][0].update(weight=float("inf")), "Infinity is not a number JSON allows"),
    (lambda m: m["heads"][0].update(weight="heavy"), "heads[0].weight: expected a finite number, got a string"),
    (lambda m: m.update(branches={"rgb": {}}), "branches: expected a list"),
])
def test_a_tampered_checkpoint_config_is_one_line(trained_run, tmp_path, edit, message):
    folder = _tamper(trained_run, tmp_path, edit)
    with pytest.raises(GeocliError, match="config.json") as err:
        load_checkpoint(folder)
    assert message in str(err.value) and "\n" not in str(err.value)
    line = _one_error(H.run_cli(["predict", "--model", folder, trained_run / "config.json"]))
    assert message in line


def test_checkpoint_path_in_model_kwargs_never_reaches_torch_load(trained_run, tmp_path, monkeypatch):
    import torch

    opened = []
    monkeypatch.setattr(torch, "load", lambda *a, **k: opened.append(a) or {})
    target = tmp_path / "outside.pth"
    target.write_bytes(b"not read")
    folder = _tamper(trained_run, tmp_path, lambda m: _rgb(m)["options"]["model_kwargs"].update(
        checkpoint_path=str(target)))
    with pytest.raises(UsageError):
        load_checkpoint(folder)
    assert opened == []


@pytest.mark.parametrize("text", ["[1, 2]", '{"format": "geocli-model", "model": NaN}', "[" * 100_000])
def test_a_config_json_that_is_not_an_object_is_one_line(trained_run, tmp_path, text):
    folder = Path(shutil.copytree(trained_run, tmp_path / "ckpt"))
    (folder / "config.json").write_text(text)
    with pytest.raises(GeocliError, match="config.json"):
        load_checkpoint(folder)


def test_weights_of_another_label_space_are_one_line(trained_run, tmp_path):
    folder = _tamper(trained_run, tmp_path, lambda m: m["labels"].update(
        countries=m["labels"]["countries"] + ["ZZ"],
        country_points=m["labels"]["country_points"] + [[0.0, 0.0]] if m["labels"]["country_points"] else []))
    with pytest.raises(GeocliError, match=r"model.safetensors: .* has shape \[\d+.*label spaces need") as err:
        load_checkpoint(folder)
    assert "\n" not in str(err.value)


def test_model_kwargs_are_checked_when_training_builds_a_branch_too():
    from geocli.branches.rgb import RGBBranch

    with pytest.raises(UsageError, match="checkpoint_path is not an architecture option"):
        RGBBranch("vit_tiny_patch16_224", model_kwargs={**T.TINY_VIT["model_kwargs"], "checkpoint_path": "x.pth"})


# ---- an empty evaluation is a usage error, not a table of NaN ----

@pytest.fixture
def manifest(tmp_path) -> Path:
    path = tmp_path / "m.csv"
    path.write_text("image,lat,lon\ngone1.jpg,45.8,16.0\ngone2.jpg,48.8,2.3\n")
    return path


def test_an_empty_predictions_file_is_one_line(manifest, tmp_path):
    (tmp_path / "p.json").write_text("[]")
    line = _one_error(H.run_cli(["eval", manifest, "--predictions", tmp_path / "p.json"]))
    assert "holds no predictions: nothing to evaluate" in line


def test_a_dataset_with_no_image_on_disk_is_one_line_before_any_model(manifest, monkeypatch):
    import geocli

    monkeypatch.setattr(geocli, "load_model", lambda *a, **k: pytest.fail("loaded a model"))
    line = _one_error(H.run_cli(["eval", manifest, "--model", "evidence", "--skip-missing"]))
    assert "none of the 2 images" in line and "nothing to evaluate" in line


@pytest.mark.parametrize("value", ["nan", "25,inf", "-1"])
def test_thresholds_must_be_finite(manifest, tmp_path, value):
    (tmp_path / "p.csv").write_text("image,lat,lon\ngone1.jpg,45,16\n")
    line = _one_error(H.run_cli(["eval", manifest, "--predictions", tmp_path / "p.csv", "--thresholds", value]))
    assert "thresholds must be positive, finite" in line


def test_a_local_weights_file_of_another_size_is_one_line(tmp_path):
    """--rgb-weights from a wider ViT: every key is there, the shapes are not."""
    from safetensors.torch import save_file

    from geocli.branches.rgb import RGBBranch

    wider = RGBBranch("vit_tiny_patch16_224", model_kwargs={**T.TINY_VIT["model_kwargs"], "embed_dim": 64})
    save_file({k: v.contiguous() for k, v in wider.model.state_dict().items()}, str(tmp_path / "w.safetensors"))
    with pytest.raises(GeocliError, match=r"does not fit this architecture: \d+ tensors have other shapes") as err:
        RGBBranch("vit_tiny_patch16_224", weights=str(tmp_path / "w.safetensors"), model_kwargs=T.TINY_VIT["model_kwargs"])
    assert "\n" not in str(err.value)
