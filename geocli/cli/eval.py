"""``geocli eval``: score a predictions file or a model on a benchmark or manifest."""
from __future__ import annotations

import click

from geocli.cli.options import (
    add_options, checkpoint_model_options, dataset_options, device_option, format_option, thresholds_option,
)
from geocli.report.progress import progress_option
from geocli.report.json_out import strict_json


@click.command("eval")
@click.argument("dataset")
@add_options(dataset_options)
@click.option("--predictions", type=click.Path(dir_okay=False, allow_dash=True), default=None,
              help="Score this file (geocli predict JSON/JSONL/CSV, or a CSV image,lat,lon; - reads stdin); "
                   "runs no model.")
@click.option("--model", default=None, help="Run this model (checkpoint folder or name from 'geocli models').")
@click.option("--skip-missing", is_flag=True, help="With --model: leave out images missing from disk.")
@click.option("--batch-size", type=click.IntRange(1), default=16, show_default=True)
@device_option("With --model: cpu, cuda, cuda:1 ... (default: cuda when available).")
@click.option("--evidence/--no-evidence", default=None,
              help="With --model: apply EXIF and OCR clues to the model's distribution (its default otherwise).")
@click.option("--group-by", default=None, metavar="COLUMN",
              help="With --model: combine each group's photos (e.g. location_id) into one prediction and score groups.")
@click.option("--clip-weights", type=click.Path(exists=True), default=None,
              help="With --model geoclip/default: a local Hugging Face CLIP folder.")
@add_options(checkpoint_model_options)
@thresholds_option
@format_option
@progress_option
def eval_command(dataset, root, metadata, predictions, model, skip_missing, batch_size, device, evidence, group_by,
                 clip_weights, tta, cache, cache_dir, precision, thresholds, fmt, progress):
    """Score geolocation on DATASET: a benchmark name (im2gps, im2gps3k, yfcc26k, yfcc4k, mp16)
    or a manifest CSV path. Prints % within 1/25/200/750/2500 km, mean/median km, country
    accuracy and a per-continent table.

    \b
    Examples:
      geocli eval im2gps3k --metadata im2gps3k_places365.csv --predictions preds.jsonl
      geocli eval photos/manifest.csv --model runs/croatia --format json
      geocli eval croatia/manifest.csv --model runs/croatia --group-by location_id
      geocli eval im2gps3k --root im2gps3k/ --metadata im2gps3k_places365.csv --model geoclip
    """
    from geocli.datasets import load_dataset
    from geocli.evaluate.scores import evaluate_predictions

    if (predictions is None) == (model is None):
        raise click.UsageError("give exactly one of --predictions FILE or --model DIR_OR_NAME")
    if group_by and not model:
        raise click.UsageError("--group-by runs with --model (a predictions file already holds its group records)")
    manifest = load_dataset(dataset, root=root, metadata=metadata)
    groups = None
    if group_by:
        from geocli.evaluate.groups import group_manifest, image_groups

        groups = image_groups(manifest, group_by)
    options = {"device": device, "tta": tta, "cache": cache, "cache_dir": cache_dir, "precision": precision,
               "evidence": evidence, "clip_weights": clip_weights}
    guesses = _read(predictions) if predictions else _run_model(model, manifest, skip_missing, batch_size, progress, options,
                                                               groups)
    if predictions and not len(guesses):
        raise click.UsageError(f"{predictions} holds no predictions: nothing to evaluate")
    if groups:
        manifest = group_manifest(manifest, groups)
    result = evaluate_predictions(manifest, guesses, thresholds, dataset_name=dataset)
    _emit(result, fmt)


def _read(path):
    from geocli.evaluate.predictions_file import read_predictions

    return read_predictions(path)


def _run_model(model, manifest, skip_missing, batch_size, progress, options: dict, groups: dict | None = None):
    from geocli import load_model
    from geocli.datasets import check_images
    from geocli.evaluate.prediction_table import table_from_records
    from geocli.report.console import log
    from geocli.datasets.shards import is_shard_spec, shard_images
    from geocli.report.progress import RunProgress

    shards = is_shard_spec(manifest.source)
    images = shard_images(manifest.source) if shards else check_images(manifest, skip_missing=skip_missing, log=log).images
    if not images:
        raise click.UsageError(f"none of the {len(manifest)} images of {manifest.source} is on disk: "
                               "nothing to evaluate (check --root)")
    geolocator = load_model(model, **{k: v for k, v in options.items() if v is not None})
    for line in geolocator.status_lines():
        log(line)
    records = []
    total = len(images) if hasattr(images, "__len__") else None  # shards stream
    with RunProgress("photos", total=total, enabled=progress) as bar:
        for record in geolocator.predict(images, top_k=10, batch_size=batch_size, groups=groups):
            records.append(record)
            bar.advance(ok=record["ok"])
    if groups:  # score the groups' combined records only
        records = [r for r in records if "images" in r]
    failed = [r for r in records if not r["ok"]]
    if failed:
        log(f"{len(failed)} image(s) could not be read and count as misses, e.g. {failed[0]['error']}")
    return table_from_records(records)


def _emit(result: dict, fmt: str) -> None:
    if fmt == "json":
        click.echo(strict_json(result, indent=2))
        return
    from geocli.report.console import stdout_console
    from geocli.report.eval_table import eval_tables

    for part in eval_tables(result):
        stdout_console().print(part)
