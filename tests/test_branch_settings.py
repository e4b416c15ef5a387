"""Run-level branch settings (which model a branch runs, where its weights are): one
``branch_settings`` field, also spelt ``rgb_model`` / ``--rgb-model``, whose defaults and meaning
belong to the branch classes; older run folders (flat keys) still resume."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import train_helpers as T
from geocli.cli.main import cli
from geocli.config import DEFAULT_CLIP_MODEL, DEFAULT_RGB_MODEL, TrainConfig, fold_branch_settings
from geocli.errors import UsageError
from geocli.training.model_config import branch_config
from geocli.store.run_folder import load_run_state


def test_flat_keys_are_the_branch_settings_spelt_flat():
    cfg = TrainConfig.from_dict({"rgb_model": "vit_small_patch16_224", "clip_weights": "/w.bin",
                                 "branch_settings": {"rgb": {"weights": "/r.safetensors"}}})
    assert cfg.branch_settings == {"rgb": {"weights": "/r.safetensors", "model": "vit_small_patch16_224"},
                                   "clip": {"weights": "/w.bin"}}
    saved = cfg.to_dict()
    assert "rgb_model" not in saved and TrainConfig.from_dict(saved).branch_settings == cfg.branch_settings
    layer = {"rgb_model": "x", "lr": 0.1}
    assert fold_branch_settings(layer) == {"lr": 0.1, "branch_settings": {"rgb": {"model": "x"}}}
    assert layer == {"rgb_model": "x", "lr": 0.1}  # the input is not changed


def test_each_branch_turns_its_settings_into_constructor_options():
    rgb = branch_config("rgb", TrainConfig.from_dict({"rgb_model": "resnet18", "rgb_weights": "/r.pth"}))
    assert (rgb.options["model"], rgb.options["pretrained"], rgb.options["weights"]) == ("resnet18", False, "/r.pth")
    default = branch_config("rgb", TrainConfig())
    assert (default.options["model"], default.options["pretrained"]) == (DEFAULT_RGB_MODEL, True)
    clip = branch_config("clip", TrainConfig(branches=["clip"]))
    assert clip.kind == "" and clip.options["model"] == DEFAULT_CLIP_MODEL
    hf = branch_config("clip", TrainConfig.from_dict({"branches": ["clip"], "clip_model": "openai/clip-vit-base-patch32"}))
    assert hf.kind == "hf_clip" and hf.options["model"] == "openai/clip-vit-base-patch32"


def test_a_setting_a_branch_does_not_take_is_refused():
    with pytest.raises(UsageError, match="the ocr branch takes no ocr_model setting"):
        branch_config("ocr", TrainConfig.from_dict({"branches": ["ocr"], "ocr_model": "x"}))
    with pytest.raises(UsageError, match=r"branch_settings.rgb: unknown settings \['size'\]"):
        TrainConfig.from_dict({"branch_settings": {"rgb": {"size": 3}}})
    with pytest.raises(UsageError, match="unknown keys"):
        TrainConfig.from_dict({"rgb_modle": "x"})  # a typo is still named


def test_a_run_folder_saved_with_flat_keys_resumes(tmp_path):
    cfg = T.tiny_config(tmp_path, epochs=1)
    from geocli.training.trainer import train

    train(cfg, progress=False)
    state_file = tmp_path / "run" / "train_state.json"
    state = json.loads(state_file.read_text())
    old = {k: v for k, v in state["config"].items() if k != "branch_settings"}
    old.update(rgb_model="vit_tiny_patch16_224", rgb_weights=None, clip_model=DEFAULT_CLIP_MODEL, clip_weights=None)
    state["config"] = old  # how geocli wrote it before branch_settings
    state_file.write_text(json.dumps(state))
    res = CliRunner().invoke(cli, ["train", "--resume", str(tmp_path / "run"), "--epochs", "2", "--format", "json"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    saved = load_run_state(tmp_path / "run")
    assert saved["epoch"] == 2
    assert saved["config"]["branch_settings"]["rgb"]["model"] == "vit_tiny_patch16_224"
