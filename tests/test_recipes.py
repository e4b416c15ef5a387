"""Every shipped recipe trains end to end on generated photos with tiny random backbones swapped in
(the recipe's own backbones need hub weights), and its checkpoint has what the recipe promises."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import train_helpers as T
from geocli.branches.base import Preprocess
from geocli.cli.main import cli
from geocli.store.checkpoint import REFERENCES_FILE, load_checkpoint
from geocli.training.recipes import available_recipes, load_recipe
from geocli.images import open_image
from geocli.ocr.base import OCR_ENGINES, OCREngine, make_box

TINY_CLIP = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}
TINY_SEG = {"model": "vit_tiny_patch16_224", **T.TINY_VIT, "segmenter": "torchvision-lraspp",
            "segmenter_options": {"weights": None, "size": 32}}
#: No two points on Earth are farther apart: a distance beyond it (or of exactly 0) is a bug.
HALF_CIRCUMFERENCE_KM = 20016.0
#: What each recipe must put in its checkpoint: heads, fusion, test-time augmentation.
PROMISES = {
    "translocator": ({"geocell", "scene"}, "translocator", "five-crop"),
    "vit-city": ({"country", "geocell"}, "concat", "five-crop"),
    "dinov2-frozen": ({"country", "geocell"}, "concat", "five-crop"),
    "dinov2-finetune": ({"country", "geocell"}, "concat", "five-crop"),
    "beit-regression": ({"regression"}, "concat", None),
    "resnet-regression": ({"grid_regression"}, "concat", None),
    "dino-mix": ({"retrieval"}, "concat", None),
    "vit-clip-mlp": ({"country"}, "concat", None),
    "geocli": ({"country", "geocell", "scene"}, "translocator", "five-crop"),
    "geoclip": ({"gallery"}, "concat", None),
}
#: A tiny random Hugging Face CLIP vision tower with GeoCLIP's 768-d projection (the geoclip recipe).
TINY_HF_CLIP = {"pretrained": False, "vision_config": {
    "hidden_size": 32, "intermediate_size": 37, "num_attention_heads": 2, "num_hidden_layers": 2,
    "patch_size": 14, "image_size": 56, "projection_dim": 768}}


@OCR_ENGINES.register("test-colour-sign")
class ColourSign(OCREngine):
    """Reads a place name off the generated photos of the first region (the rest have no text)."""

    def _read(self, image):
        red, green, blue = (float(v) for v in np.asarray(image).reshape(-1, 3).mean(0))
        return [make_box([(0, 0), (30, 0), (30, 12), (0, 12)], "ZAGREB", 0.9)] if red > green + blue else []


def tiny_overrides(recipe: dict, tmp_path) -> dict:
    """Tiny random backbones for whatever branches the recipe uses; a short run."""
    options = {"rgb": dict(T.TINY_VIT), "seg": dict(TINY_SEG),
               "clip": {"model": "geocli-test-tiny-clip", "model_cfg": TINY_CLIP, "pretrained": None},
               "ocr": {"engine": "test-colour-sign"}}
    if "/" in recipe.get("clip_model", ""):  # a Hugging Face CLIP (geoclip)
        options["clip"] = dict(TINY_HF_CLIP)
    out = {"rgb_model": "vit_tiny_patch16_224", "epochs": 2, "batch_size": 8, "lr": 1e-2,
           "cache_dir": str(tmp_path / "cache"), "seed": 0,
           "branch_options": {b: options[b] for b in recipe.get("branches", ["rgb"]) if b in options}}
    if isinstance(recipe.get("trainable"), int):
        out["trainable"] = 1  # the tiny ViT has two blocks
    if recipe.get("optimizer") == "sgd":
        out["lr"] = 0.05
    return out


def run_recipe(name: str, tmp_path, **extra) -> tuple[dict, object]:
    data = T.make_manifest(tmp_path / "data")
    overrides = {**tiny_overrides(load_recipe(name), tmp_path), **extra}
    (tmp_path / "tiny.json").write_text(json.dumps(overrides))
    args = ["train", "--recipe", name, "--config", str(tmp_path / "tiny.json"), "--data", str(data),
            "--out", str(tmp_path / "run"), "--format", "json"]
    res = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout), load_checkpoint(tmp_path / "run")


def photo_batch(model, path) -> dict:
    """Every pixel branch's view of one photo (a seg branch gets the photo's rendered map)."""
    image = open_image(path)
    batch = {}
    for b in model.config.branches:
        if b.name in ("rgb", "clip", "seg"):
            source = image
            if b.name == "seg":
                seg = model.pair.encoders["seg"] if model.pair is not None else model.branches["seg"]
                source = seg.render_maps([image])[0]
            batch[b.name] = Preprocess.from_dict(b.preprocess).transform(False)(source)[None]
    return batch


def test_every_recipe_is_listed_and_covered():
    assert set(available_recipes()) == set(PROMISES)
    res = CliRunner().invoke(cli, ["models", "--format", "json"])
    listed = {r["name"]: r for r in json.loads(res.stdout)["recipes"]}
    assert set(listed) == set(PROMISES)
    assert all(r["backbones"] and all(isinstance(b["available"], bool) and b["where"] for b in r["backbones"])
               for r in listed.values())


@pytest.mark.parametrize("name", sorted(PROMISES))
def test_recipe_trains_and_its_checkpoint_keeps_the_promise(name, tmp_path):
    torch.manual_seed(0)
    summary, model = run_recipe(name, tmp_path)
    heads, fusion, tta = PROMISES[name]
    assert set(model.heads) == heads and model.config.fusion.name == fusion and model.config.predict.tta == tta
    history = summary["history"]
    assert len(history) == 2 and all(np.isfinite(row["train_loss"]) for row in history)
    assert history[-1]["train_loss"] < history[0]["train_loss"], history
    records = model.predict(photo_batch(model, tmp_path / "data" / "img" / "r1_l0_v0.png"))
    assert records[0]["predictions"] and -90 <= records[0]["predictions"][0]["lat"] <= 90
    final = summary["final"]["val"]
    assert 0 < final["median_km"] < HALF_CIRCUMFERENCE_KM and final["loss"] > 0
    check_specifics(name, summary, model, tmp_path)


def check_specifics(name: str, summary: dict, model, tmp_path) -> None:
    """What only some recipes promise: retrieval's index and recall, regression's train-set km."""
    final = summary["final"]
    if name == "dino-mix":
        assert (tmp_path / "run" / REFERENCES_FILE).is_file()
        assert set(final["val"]["recall"]) == {"recall@1", "recall@5", "recall@10"}
        assert set(summary["baseline_centroid"]["recall"]) == set(final["val"]["recall"])
        assert isinstance(model.branches["rgb"].model.norm, torch.nn.Identity)  # DINO-Mix trimming
        refs = model.heads["retrieval"].references
        guess = model.predict(photo_batch(model, tmp_path / "data" / "img" / "r0_l0_v0.png"))[0]["predictions"][0]
        assert np.isclose(np.abs(refs.coords - [guess["lat"], guess["lon"]]).sum(1), 0, atol=1e-4).any()
    if name.endswith("regression"):
        assert 0 < final["train"]["mean_km"] < HALF_CIRCUMFERENCE_KM and 0 < final["val"]["mean_km"] < HALF_CIRCUMFERENCE_KM
    if name == "vit-clip-mlp":
        assert model.config.labels.country_points and set(model.branches) == {"rgb", "clip"}
