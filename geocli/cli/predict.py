"""``geocli predict``: where was each photo taken?"""
from __future__ import annotations

import os
import sys
from typing import NamedTuple

import click

from geocli.cli.main import EXIT_ITEMS_FAILED, EXIT_OK
from geocli.cli.options import add_options, checkpoint_model_options, device_option
from geocli.report.progress import progress_option
from geocli.report.writers import WRITERS


@click.command()
@click.argument("inputs", nargs=-1)
@click.option("--model", "-m", default=None,
              help="Checkpoint folder from 'geocli train', or a name from 'geocli models' (default: 'default').")
@click.option("--top", "top_k", type=click.IntRange(1, 100), default=5, show_default=True, help="Guesses per image.")
@click.option("--format", "fmt", type=click.Choice(WRITERS.names()), default="table",
              show_default=True, help="table for people; json array, jsonl stream or csv rows for scripts.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write results to this file instead of stdout.")
@click.option("--recursive", "-r", is_flag=True, help="Descend into subfolders.")
@click.option("--batch-size", type=click.IntRange(1), default=8, show_default=True)
@click.option("--no-ocr", is_flag=True, help="Do not read text in the images.")
@click.option("--trust-exif", is_flag=True, help="Rank EXIF GPS (when present) first.")
@click.option("--clip-model", default=None, help="open_clip architecture for the default model (e.g. ViT-B-32).")
@click.option("--clip-pretrained", default=None, help="open_clip pretrained tag (e.g. laion2b_s34b_b79k).")
@click.option("--clip-weights", type=click.Path(exists=True), default=None,
              help="Local CLIP weights: a Hugging Face CLIP folder (save_pretrained) for geoclip and the "
                   "default model, or an open_clip weights file for zero-shot CLIP.")
@click.option("--evidence/--no-evidence", default=None,
              help="Apply EXIF GPS and OCR clues to the model's distribution as a likelihood "
                   "(default: on, except --model geoclip, which is exactly GeoCLIP unless asked).")
@click.option("--ocr-engine", default=None, help="rapidocr (default), easyocr or paddleocr.")
@device_option()
@add_options(checkpoint_model_options)
@click.option("--group-by", default=None, metavar="folder|COLUMN",
              help="Combine the photos of a group into one prediction (product of their distributions); "
                   "groups are folders, or a column of --group-file CSV. Each photo keeps its record.")
@click.option("--group-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="CSV with an 'image' column and the --group-by column (e.g. a manifest with location_id).")
@click.option("--map", "map_path", type=click.Path(dir_okay=False), default=None,
              help="Also draw every image's guesses on a map: FILE.html (interactive, works offline) or FILE.png.")
@click.option("--map-tiles", default=None, metavar="URL",
              help="HTML map: draw raster tiles from this server (https://host/{z}/{x}/{y}.png); default none.")
@progress_option
def predict(inputs, model, top_k, fmt, output, recursive, batch_size, no_ocr, trust_exif, clip_model,
            clip_pretrained, clip_weights, evidence, ocr_engine, device, tta, cache, cache_dir, precision, group_by, group_file,
            map_path, map_tiles, progress):
    """Guess where each photo was taken.

    INPUTS are image files, folders, globs, or - to read paths from stdin (one per line).

    \b
    Examples:
      geocli predict photos/ --top 5
      geocli predict 'trip/**/*.jpg' --recursive --format jsonl > guesses.jsonl
      find . -name '*.heic' | geocli predict - --format csv -o guesses.csv
      geocli predict photos/ --model runs/croatia --map guesses.html
      geocli predict photos/ --model geoclip --clip-weights ~/clip-vit-large-patch14 --format json
      geocli predict trip/ -r --model runs/croatia --group-by folder

    Exit codes: 0 every image processed; 1 some images failed (see their error records);
    2 usage error (a named path that does not exist, no images at all); 130 / 143 interrupted
    (Ctrl-C / SIGTERM: the results so far are complete, a JSON array closed).
    """
    from geocli import load_model
    from geocli.cli.inputs import expand_inputs, first_and_rest, require_inputs
    from geocli.interrupt import GracefulInterrupt
    from geocli.report.console import log

    require_inputs(inputs)
    _check_targets(output, map_path)
    _check_outputs(output, map_path, inputs)
    options = _model_options(no_ocr=no_ocr, trust_exif=trust_exif, clip_model=clip_model,
                             clip_pretrained=clip_pretrained, clip_weights=clip_weights, evidence=evidence,
                             ocr_engine=ocr_engine, device=device, tta=tta, cache=cache, cache_dir=cache_dir,
                             precision=precision)
    paths = expand_inputs(inputs, recursive=recursive, log=log)
    # no images at all is refused before the model loads; stdin stays a stream, else a known total
    paths = first_and_rest(paths) if "-" in inputs else list(first_and_rest(paths))
    predictor = load_model(model, **options)
    for line in predictor.status_lines():
        log(line)
    groups = None
    if group_by:
        from geocli.predict.grouping import group_keys

        paths = list(paths)
        groups = group_keys(paths, group_by, group_file)
    run = RunOptions(fmt, output, top_k, batch_size, map_path is not None, progress)
    with GracefulInterrupt() as interrupt:
        failed, records = _run(predictor, paths, run, interrupt, groups)
    if map_path:
        from geocli.report.maps import write_map
        from geocli.report.output_file import write_via_temp

        write_via_temp(map_path, lambda temp: write_map(records, temp, tiles=map_tiles))
        log(f"map written to {map_path}")
    if interrupt.requested:
        log("interrupted: every finished result was written")
        sys.exit(interrupt.exit_code)
    sys.exit(EXIT_ITEMS_FAILED if failed else EXIT_OK)


def _check_targets(output: str | None, map_path: str | None) -> None:
    """Where results go must be usable before any work: a map file name, an open stdout."""
    from geocli.cli.main import ClosedStdout
    from geocli.errors import UsageError

    if map_path:
        from geocli.report.maps import check_map_path

        check_map_path(map_path)
    if output is None and isinstance(sys.stdout, ClosedStdout):
        raise UsageError("stdout is closed: nowhere to write results (name a file with -o)")


def _model_options(**options) -> dict:
    """The options given a value (unset ones stay the model's own defaults)."""
    return {k: v for k, v in options.items() if v is not None}


def _close(writer, failing: bool) -> None:
    """Close the writer (a JSON array gets its ']'); a second write error while failing is moot."""
    try:
        writer.close()
    except OSError:
        if not failing:
            raise


def _check_outputs(output: str | None, map_path: str | None, inputs) -> None:
    """Before any work: an ``-o`` or ``--map`` that is an input or a photo would destroy it."""
    from geocli.errors import UsageError
    from geocli.report.output_file import check_output

    if output and map_path and os.path.abspath(map_path) == os.path.abspath(output):
        raise UsageError(f"-o and --map name the same file {output}; name two files")
    named = [i for i in inputs if i != "-"]
    for option, path in (("-o", output), ("--map", map_path)):
        if path:
            check_output(path, inputs=named, reads_stdin="-" in inputs, option=option)


class RunOptions(NamedTuple):
    fmt: str
    output: str | None
    top_k: int
    batch_size: int
    keep: bool  # keep each record's guesses (for the map)
    progress: bool | None


def _run(predictor, paths, run: RunOptions, interrupt, groups=None):
    """Write each record as it comes; return the failure count and (for the map) the records.

    With ``-o`` the records go through ``SafeOutput``: an existing file is replaced only at the end
    (or on Ctrl-C, keeping what finished), never when the run fails or finds no images."""
    from contextlib import nullcontext

    from geocli.errors import UsageError
    from geocli.report.console import log
    from geocli.report.output_file import SafeOutput
    from geocli.report.progress import RunProgress

    total = len(paths) if isinstance(paths, list) else None
    target = SafeOutput(run.output) if run.output else nullcontext()
    with target as sink:
        stream = sink.stream if run.output else sys.stdout
        paths = sink.guard(paths) if run.output else paths
        writer = WRITERS.get(run.fmt)(stream)
        failed, n, kept = 0, 0, []
        try:
            with RunProgress("photos", total=total, enabled=run.progress) as bar:
                for record in predictor.predict(paths, top_k=run.top_k, batch_size=run.batch_size,
                                                interrupt=interrupt, groups=groups):
                    with bar.writing(stream):
                        writer.write(record)
                    if "images" in record:  # a group's combined record: not one more image
                        continue
                    n += 1
                    failed += not record["ok"]
                    bar.advance(ok=record["ok"])
                    if run.keep:
                        kept.append({k: record[k] for k in ("image", "ok", "predictions")})
        finally:
            _close(writer, failing=sys.exc_info()[0] is not None)
        if n == 0 and not interrupt.requested:
            raise UsageError("no images to process in the given inputs")
    if failed:
        log(f"{failed} of {n} images failed; see their error records")
    return failed, kept
