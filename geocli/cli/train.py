"""``geocli train``: from a manifest (or benchmark) to a checkpoint folder."""
from __future__ import annotations

import sys

import click

from geocli.cli.options import device_option, format_option
from geocli.report.json_out import strict_json
from geocli.report.progress import progress_option, progress_wanted


def _comma_list(ctx, param, value):
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _cells(ctx, param, value):
    if not value:
        return None
    try:
        return [[int(a), int(b)] for a, b in (part.split(":") for part in value.split(","))]
    except ValueError:
        raise click.BadParameter("MIN:MAX per partition, coarse to fine, e.g. 20:200,5:50,2:20") from None


@click.command()
@click.option("--data", help="Training manifest CSV (image,lat,lon[,country,location_id]), benchmark name, or "
                             "webdataset shards (a folder of .tar, or 'shards/{000000..000099}.tar'), streamed.")
@click.option("--out", type=click.Path(file_okay=False), help="Run folder to write (a checkpoint for predict/eval).")
@click.option("--val", help="Validation manifest (or shards, with shards as --data); without it --data is split.")
@click.option("--split", type=click.Choice(["random", "group", "spatial-kmeans"]),
              help="Validation split (default: group when the manifest has location ids, else spatial-kmeans).")
@click.option("--val-fraction", type=click.FloatRange(0, 1, min_open=True, max_open=True))
@click.option("--root", type=click.Path(file_okay=False), help="Image folder (default: the CSV's own folder).")
@click.option("--metadata", type=click.Path(dir_okay=False), help="Official benchmark CSV.")
@click.option("--skip-missing", is_flag=True, default=None, help="Leave out images missing from disk.")
@click.option("--seed", type=int)
@click.option("--branches", callback=_comma_list, help="Comma list of rgb, seg, clip, ocr (default rgb).")
@click.option("--heads", callback=_comma_list, help="Comma list of heads (default country,geocell).")
@click.option("--cells", callback=_cells, metavar="MIN:MAX,...", help="Geocell partitions (default: scaled to the data).")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False), help="JSON of training settings.")
@click.option("--recipe", help="Named preset: NAME.json in --recipes-dir, $GEOCLI_RECIPES or geocli/recipes/.")
@click.option("--recipes-dir", type=click.Path(exists=True, file_okay=False), help="A folder of your own recipes.")
@click.option("--epochs", type=click.IntRange(1))
@click.option("--batch-size", type=click.IntRange(1))
@click.option("--lr", type=click.FloatRange(0, min_open=True), help="Head learning rate.")
@click.option("--backbone-lr-scale", type=click.FloatRange(0), help="Branch lr = lr x this (default 0.1).")
@click.option("--weight-decay", type=click.FloatRange(0))
@click.option("--optimizer", type=click.Choice(["adamw", "sgd"]))
@click.option("--scheduler", type=click.Choice(["cosine", "plateau", "step", "none"]))
@click.option("--label-smoothing", type=click.FloatRange(0, 1))
@click.option("--tau-km", type=click.FloatRange(0, min_open=True), help="Haversine label smoothing over geocells, km (default 75; \"tau_km\": null in a --config for plain label smoothing).")
@click.option("--class-weights", type=click.Choice(["none", "inverse-frequency"]))
@click.option("--sampler", type=click.Choice(["uniform", "class-balanced", "places"]), help="places: P x K batches of images_per_place photos per place (retrieval).")
@click.option("--freeze", "trainable", flag_value="freeze", help="Frozen branches, embedded once (cached).")
@click.option("--finetune", "trainable", flag_value="finetune", help="Train the branches too.")
@click.option("--unfreeze-last", type=click.IntRange(1), help="Train only the last N blocks of the branches.")
@click.option("--rgb-model", help="timm name (default tf_efficientnet_lite0.in1k, packaged ImageNet weights).")
@click.option("--rgb-weights", type=click.Path(exists=True, dir_okay=False), help="Local weights for --rgb-model.")
@click.option("--clip-model", help="open_clip architecture (default ViT-B-32).")
@click.option("--clip-weights", help="open_clip pretrained tag or local weights file; for the geoclip recipe a "
                                     "local Hugging Face CLIP folder.")
@click.option("--rotation", type=click.FloatRange(0, 180), help="Max augmentation rotation in degrees (default 20).")
@click.option("--color-jitter", type=click.FloatRange(0))
@click.option("--flip/--no-flip", default=None, help="Horizontal flips (off by default: mirrored text is a cue).")
@click.option("--cache/--no-cache", default=None, help="Embedding cache for frozen branches (default on).")
@click.option("--cache-dir", type=click.Path(file_okay=False), help="Embedding cache folder (default ~/.cache/geocli).")
@device_option("cpu, cuda, cuda:1 ... (under torchrun: one GPU per process).")
@click.option("--amp/--no-amp", default=None, help="bf16 mixed precision on CUDA (default on; no effect on CPU).")
@click.option("--num-workers", type=click.IntRange(0), help="Image-decoding worker processes.")
@click.option("--shuffle-buffer", type=click.IntRange(0), help="Shards: samples each worker shuffles through (default 1000).")
@click.option("--resume", type=click.Path(file_okay=False), help="Continue the run saved in this folder (and write there).")
@click.option("--force", "--overwrite", "force", is_flag=True,
              help="Replace an earlier geocli run at --out (never a folder geocli did not make).")
@format_option
@progress_option
@click.pass_context
def train(ctx, config_file, recipe, recipes_dir, resume, force, fmt, progress, trainable, unfreeze_last, branches, heads,
          cells, **plain):
    """Train a geolocation model; writes a checkpoint folder for 'geocli predict --model DIR'.

    \b
    Examples:
      geocli train --data photos/manifest.csv --out runs/croatia --epochs 20
      geocli train --data m.csv --out runs/vit --rgb-model vit_base_patch16_224.augreg_in21k --unfreeze-last 2
      geocli train --resume runs/croatia --epochs 30
      geocli train --data m.csv --out runs/croatia --force   # replace that earlier run
      geocli train --data 'shards/{000000..000099}.tar' --out runs/mp16   # streams the shards
      torchrun --nproc_per_node 4 -m geocli train --data m.csv --out runs/ddp --finetune
    """
    from geocli.config import TrainConfig
    from geocli.training.recipes import load_recipe, merge_training_layers, read_settings
    from geocli.training.trainer import resume_settings, train as run_training

    flags = {k: v for k, v in plain.items() if v is not None and ctx.get_parameter_source(k).name != "DEFAULT"}
    flags.update({k: v for k, v in (("branches", branches), ("heads", heads), ("cells", cells)) if v})
    if unfreeze_last or trainable:
        flags["trainable"] = unfreeze_last or trainable
    layers = [resume_settings(resume) if resume else {}, load_recipe(recipe, recipes_dir) if recipe else {},
              read_settings(config_file, "config") if config_file else {}, flags]
    from geocli.report.console import log

    settings = merge_training_layers(*layers, log=log)
    if resume:  # the folder given is the one written, whatever --out its saved settings name
        _same_out(flags.get("out"), resume)
        settings["out"] = resume
    if not settings.get("data") or not settings.get("out"):
        raise click.UsageError("give --data MANIFEST and --out DIR (or --resume DIR)")
    result = run_training(TrainConfig.from_dict(settings), resume=resume, force=force,
                          progress=progress_wanted(progress, sys.stderr))
    if result.rank != 0:  # under torchrun only rank 0 reports
        return
    if fmt == "json":
        click.echo(strict_json(result.summary(), indent=2))
    else:
        _print_table(result)


def _same_out(out: str | None, resume: str) -> None:
    import os

    if out and os.path.abspath(out) != os.path.abspath(resume):
        raise click.UsageError(f"--resume {resume} writes into {resume}; drop --out {out} "
                               "(to branch off a run, copy its folder first and resume the copy)")


def _print_table(result) -> None:
    from rich.table import Table

    from geocli.report.console import stdout_console

    from geocli.report.terminal import text

    table = Table(title=text(f"geocli train -> {result.out} ({result.epoch} epochs, {result.split} split)"))
    for col in ("", "median km", "@25 km", "@200 km", "country"):
        table.add_column(col)
    final = (result.history[-1]["val"] if result.history else {})
    for name, row in (("model (validation)", final), ("training centroid", result.baseline)):
        acc = row.get("accuracy", {})
        country = row.get("country_accuracy")
        table.add_row(name, _fmt(row.get("median_km"), "{:.1f}"), _fmt(acc.get("25"), "{:.1%}"),
                      _fmt(acc.get("200"), "{:.1%}"), _fmt(country, "{:.1%}"))
    stdout_console().print(table)


def _fmt(value, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)
