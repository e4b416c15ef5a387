"""Tiny shard sets for the train-from-shards tests: the generated training manifest written by
``geocli shards``' own writer, plus a shard holding a photo that cannot be decoded."""
from __future__ import annotations

import io
import json
from pathlib import Path

from PIL import Image

import train_helpers as T


def write_manifest_shards(tmp_path: Path, shard_size: int = 9, **manifest) -> tuple[Path, Path]:
    """(manifest CSV, shard folder): the tiny training manifest and its shards (PNG -> JPEG)."""
    from geocli.datasets.manifest import read_manifest
    from geocli.datasets.shard_sources import manifest_items
    from geocli.datasets.shard_writer import write_shards

    csv = T.make_manifest(tmp_path / "data", **manifest)
    out = tmp_path / "shards"
    items = manifest_items(read_manifest(csv), csv.parent)
    write_shards(items, out, {"source": str(csv)}, shard_size, None, log=lambda line: None)
    return csv, out


def add_broken_shard(folder: Path, name: str = "000099.tar", lat: float = 45.8, lon: float = 16.0) -> str:
    """A shard with one good JPEG and one sample whose ``KEY.jpg`` is not an image; the bad key."""
    import webdataset as wds

    good = io.BytesIO()
    Image.new("RGB", (40, 40), (200, 40, 40)).save(good, format="JPEG")
    with wds.TarWriter(str(folder / name)) as tar:
        for key, data in (("good000001", good.getvalue()), ("junk000002", b"not a photo at all")):
            meta = {"lat": lat, "lon": lon, "image": f"extra/{key}.jpg", "location_id": f"extra-{key}"}
            tar.write({"__key__": key, "jpg": data, "json": json.dumps(meta).encode()})
    return "junk000002"
