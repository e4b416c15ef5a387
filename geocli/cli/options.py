"""Options shared by several commands, so each is spelled once."""
from __future__ import annotations

import math

import click

from geocli.evaluate.metrics import DEFAULT_THRESHOLDS_KM


def parse_thresholds(ctx, param, value: str | None) -> tuple[float, ...]:
    if not value:
        return DEFAULT_THRESHOLDS_KM
    try:
        values = tuple(float(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter("comma-separated kilometres, e.g. 1,25,200,750,2500") from None
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise click.BadParameter("thresholds must be positive, finite kilometres")
    return values


thresholds_option = click.option(
    "--thresholds", callback=parse_thresholds, default=None, metavar="KM,KM,...",
    help="Distance thresholds in km (default 1,25,200,750,2500); 'within' means <=.",
)
format_option = click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
    help="Table for people, JSON for scripts (stdout).",
)
dataset_options = [
    click.option("--root", type=click.Path(file_okay=False), default=None,
                 help="Image folder (default: the CSV's own folder)."),
    click.option("--metadata", type=click.Path(dir_okay=False), default=None,
                 help="Official benchmark CSV (e.g. im2gps3k_places365.csv)."),
]


def _check_device(ctx, param, value: str | None) -> str | None:
    """Refuse a device this machine lacks before any model loads."""
    if value is None:
        return None
    from geocli.branches.base import check_device

    check_device(value)
    return value


def device_option(help_text: str = "cpu, cuda, cuda:1 ... (default: cuda when available)."):
    return click.option("--device", callback=_check_device, default=None, help=help_text)


def add_options(options):
    def decorator(f):
        for option in reversed(options):
            f = option(f)
        return f

    return decorator


#: How a checkpoint model looks at photos, and whether frozen branches may use the embedding cache.
checkpoint_model_options = [
    click.option("--tta", type=click.Choice(["none", "five-crop"]), default=None,
                 help="Checkpoint models: test-time augmentation (default: what the checkpoint says)."),
    click.option("--cache/--no-cache", default=None,
                 help="Checkpoint models: reuse frozen-branch embeddings from the cache (default on)."),
    click.option("--cache-dir", type=click.Path(file_okay=False), default=None,
                 help="Embedding cache folder (default ~/.cache/geocli, as geocli train)."),
    click.option("--precision", type=click.Choice(["auto", "fp32", "bf16"]), default=None,
                 help="Checkpoint models and geoclip: image towers in fp32 (exact) or bf16 (faster on CUDA "
                      "and on CPUs with AMX / AVX-512 BF16; heads stay fp32). Default auto: bf16 on CUDA."),
]
