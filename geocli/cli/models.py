"""``geocli models``: what can be used for prediction and training, and whether its weights are here."""
from __future__ import annotations

import json
from importlib import resources

import click

from .options import format_option

BACKBONES = (
    ("tf_efficientnet_lite0.in1k", "ImageNet EfficientNet-Lite0 (weights ship in a pip package)"),
    ("tf_efficientnet_lite2.in1k", "ImageNet EfficientNet-Lite2 (weights ship in a pip package)"),
    ("vit_base_patch16_224.augreg2_in21k_ft_in1k", "ViT-B/16 (TransLocator, ViT-city)"),
    ("vit_base_patch14_dinov2.lvd142m", "DINOv2 ViT-B/14 (DINOv2 recipes, DINO-Mix)"),
    ("beitv2_base_patch16_224.in1k_ft_in22k_in1k", "BEiT v2 (BEiT regression)"),
    ("resnet50.a1_in1k", "ResNet-50 (ResNet regression)"),
)


def _recipes() -> list[dict]:
    folder = resources.files("geocli") / "recipes"
    if not folder.is_dir():
        return []
    return [
        {"name": f.name.removesuffix(".json"), **_recipe_summary(json.loads(f.read_text()))}
        for f in sorted(folder.iterdir(), key=lambda f: f.name)
        if f.name.endswith(".json")
    ]


def _recipe_summary(recipe: dict) -> dict:
    return {"description": recipe.get("description", ""), "source": recipe.get("source", "")}


def _rows() -> dict:
    from ..engine.availability import timm_weights
    from ..engine.predict import BUILTIN_MODELS

    backbones = []
    for name, what in BACKBONES:
        status = timm_weights(name)
        backbones.append({"name": name, "what": what, "available": status.available, "where": status.where})
    builtins = [{"name": n, "what": w} for n, w in BUILTIN_MODELS.items()]
    return {"models": builtins, "backbones": backbones, "recipes": _recipes()}


@click.command()
@format_option
def models(fmt):
    """List built-in models (for predict), recipes (for train) and backbones, with whether each
    backbone's weights are available on this machine (nothing is downloaded)."""
    data = _rows()
    if fmt == "json":
        click.echo(json.dumps(data, indent=2))
        return
    from rich.table import Table

    from ..report.console import stdout_console

    console = stdout_console()
    table = Table(title="models for geocli predict --model NAME", title_justify="left")
    table.add_column("name", no_wrap=True)
    table.add_column("what")
    for m in data["models"]:
        table.add_row(m["name"], m["what"])
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
        for r in data["recipes"]:
            table.add_row(r["name"], r["description"])
        console.print(table)
