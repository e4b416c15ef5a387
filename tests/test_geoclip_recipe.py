"""The geoclip recipe end to end with a tiny CLIP: GeoCLIP's image side as the clip branch (frozen,
cached), its MLP + location encoder + gallery as the head, the OCR branch fused in; the untrained
start is GeoCLIP itself, training moves it, the checkpoint predicts from photos."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from geocli.cli.main import cli
from geoclip_helpers import tiny_clip_folder
from train_helpers import make_manifest

pytest.importorskip("geoclip")


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    return tiny_clip_folder(tmp_path_factory.mktemp("tiny-clip"))


def test_geoclip_recipe_with_ocr_trains_and_predicts(clip_dir, tmp_path):
    manifest = make_manifest(tmp_path / "data", locations=3, views=2)
    args = ["train", "--recipe", "geoclip", "--branches", "clip,ocr", "--data", str(manifest),
            "--clip-weights", str(clip_dir), "--out", str(tmp_path / "run"), "--epochs", "2",
            "--cache-dir", str(tmp_path / "cache"), "--batch-size", "8"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "run" / "config.json").read_text())["model"]
    assert [b["kind"] or b["name"] for b in config["branches"]] == ["hf_clip", "ocr"]
    assert config["heads"][0]["options"]["projection"] == "geoclip"
    photo = str(tmp_path / "data" / "img" / "r0_l0_v0.png")
    out = CliRunner().invoke(cli, ["predict", photo, "--model", str(tmp_path / "run"), "--format", "json",
                                   "--no-ocr", "--cache-dir", str(tmp_path / "cache")])
    assert out.exit_code == 0, out.output
    (record,) = json.loads(out.stdout)
    assert record["predictions"][0]["source"] == "gallery" and record["country_head"]


def test_the_untrained_recipe_model_is_geoclip(clip_dir):
    import torch

    from geocli.config import BranchConfig, FusionConfig, HeadConfig, ModelConfig
    from geocli.model import GeoModel

    torch.manual_seed(0)
    cfg = ModelConfig(branches=[BranchConfig("clip", kind="hf_clip", options={"model": str(clip_dir)}),
                                BranchConfig("ocr", input="embedding", embed_dim=16)],
                      fusion=FusionConfig(normalize="none", dropout=0.0),
                      heads=[HeadConfig("gallery", options={"projection": "geoclip", "gallery": "none"})])
    model = GeoModel(cfg).eval()
    pixels = torch.randn(2, 3, 224, 224)
    with_text = model({"clip": pixels, "ocr": torch.randn(2, 16)})["heads"]["gallery"]["image"]
    without = model({"clip": pixels})["heads"]["gallery"]["image"]
    assert torch.allclose(with_text, without, atol=1e-6)  # OCR columns start at zero: GeoCLIP exactly
    assert torch.isfinite(with_text).all()
