"""``geocli shards``: write a dataset as webdataset tar shards (for streaming training and eval)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from geocli.cli.options import add_options, dataset_options
from geocli.report.progress import progress_option


@click.command("shards")
@click.argument("source", required=False)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for the shards (new, empty, or one this command wrote: it resumes).")
@add_options(dataset_options)
@click.option("--msgpack", "msgpack_dir", type=click.Path(file_okay=False), default=None,
              help="Import MP-16 msgpack shards (GeoEstimation/TransLocator) from this folder; coordinates from --metadata.")
@click.option("--shard-size", type=click.IntRange(1), default=1000, show_default=True, help="Source items per shard.")
@click.option("--max-side", type=click.IntRange(16), default=None, help="Shrink larger photos to this longest side (re-encoded as JPEG).")
@click.option("--seg-root", type=click.Path(file_okay=False), default=None,
              help="Folder of precomputed segmentation maps (NAME with .png) stored as KEY.seg.png.")
@progress_option
def shards(source, out, root, metadata, msgpack_dir, shard_size, max_side, seg_root, progress):
    """Write SOURCE (a manifest CSV, or a benchmark name with --root/--metadata) as webdataset
    shards: KEY.jpg + KEY.json (lat, lon, country, scene, location_id, original name) [+ KEY.seg.png].
    Prints counts as JSON; bad images are reported and counted, never silently dropped.

    \b
    Examples:
      geocli shards photos/manifest.csv --out shards/ --max-side 512
      geocli shards --msgpack mp16/ --metadata mp16_places365.csv --out mp16-shards/
      geocli train --data 'shards/{000000..000009}.tar' --out runs/x
    """
    from geocli.datasets.shard_writer import write_shards
    from geocli.report.progress import RunProgress

    if (source is None) == (msgpack_dir is None):
        raise click.UsageError("give exactly one of SOURCE (manifest or benchmark) or --msgpack DIR --metadata CSV")
    seg = Path(seg_root) if seg_root else None
    items, settings, total, msgpack_source = _source(source, root, metadata, msgpack_dir, seg)
    with RunProgress("photos", total=total, enabled=progress) as bar:
        counts = write_shards(items, Path(out), settings, shard_size, max_side, bar.log, total, progress=bar)
    summary = {"out": out, "shards": len(list(Path(out).glob("*.tar"))), "samples": counts.samples, "bad": counts.bad,
               "seg_maps": counts.seg_maps, "bad_examples": counts.bad_examples}
    if msgpack_source is not None:
        summary["csv_rows_without_image"] = msgpack_source.rows_without_image()
    click.echo(json.dumps(summary))
    sys.exit(1 if counts.bad else 0)


def _source(source, root, metadata, msgpack_dir, seg):
    from geocli.datasets import load_dataset, read_manifest
    from geocli.datasets.shard_sources import MsgpackSource, manifest_items

    if msgpack_dir is not None:
        if metadata is None:
            raise click.UsageError("--msgpack needs --metadata (the MP-16 CSV with IMG_ID, LAT, LON)")
        src = MsgpackSource(Path(msgpack_dir), read_manifest(metadata, root=msgpack_dir), seg)
        settings = {"source": "msgpack", "msgpack": str(Path(msgpack_dir).resolve()), "metadata": str(Path(metadata).resolve())}
        return iter(src), settings, None, src
    manifest = load_dataset(source, root=root, metadata=metadata)
    image_root = Path(root) if root else Path(manifest.source).parent
    settings = {"source": str(Path(manifest.source).resolve()), "root": str(image_root.resolve())}
    return manifest_items(manifest, image_root, seg), settings, len(manifest), None
