"""What ``geocli shards`` reads: a manifest (or benchmark) and its image folder, or MP-16 as
GeoEstimation and TransLocator store it -- msgpack files of ``{"image": JPEG bytes, "id": IMG_ID}``
records, the coordinates in the MP-16 CSV (``mp16_places365.csv``)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

from geocli.datasets.manifest import Manifest
from geocli.datasets.shard_writer import SourceItem
from geocli.errors import DatasetNotFoundError

MSGPACK_SUFFIXES = (".msg", ".msgpack")


def row_meta(manifest: Manifest, i: int) -> dict:
    """``KEY.json`` fields of row ``i``: lat, lon and the labels the manifest has."""
    meta = {"lat": float(manifest.lat[i]), "lon": float(manifest.lon[i])}
    for key, value in (("country", manifest.country[i]), ("scene", manifest.scene[i]), ("location_id", manifest.group[i])):
        if value is not None:
            meta[key] = value
    return meta


def _reader(path: Path):
    return lambda: path.read_bytes()


def _seg_reader(seg_root: Path | None, name: str):
    if seg_root is None:
        return None
    path = (seg_root / name).with_suffix(".png")
    return _reader(path) if path.is_file() else None


def manifest_items(manifest: Manifest, root: Path, seg_root: Path | None = None) -> Iterator[SourceItem]:
    """One item per manifest row, in order; ``name`` is the image path relative to ``root``."""
    for i, image in enumerate(manifest.images):
        name = os.path.relpath(image, root) if Path(image).is_relative_to(root) else image
        yield SourceItem(name, row_meta(manifest, i), _reader(Path(image)), _seg_reader(seg_root, name))


def msgpack_files(folder: Path) -> list[Path]:
    files = sorted(p for p in Path(folder).iterdir() if p.suffix in MSGPACK_SUFFIXES) if Path(folder).is_dir() else []
    if not files:
        raise DatasetNotFoundError(f"{folder}: no msgpack files (*.msg) found; --msgpack takes the folder of MP-16 shards")
    return files


def _records(path: Path) -> Iterator[tuple[str | None, bytes | None]]:
    """(id, image bytes) per record; raw mode reads both old (str) and new (bin) msgpack writers."""
    import msgpack

    with path.open("rb") as f:
        for record in msgpack.Unpacker(f, raw=True, max_buffer_size=1 << 30):
            if not isinstance(record, dict):
                yield None, None
                continue
            rid, image = record.get(b"id"), record.get(b"image")
            yield (rid.decode("utf-8", "replace") if isinstance(rid, bytes) else None), image


class MsgpackSource:
    """MP-16 msgpack records as shard items, each with its CSV row; counts what does not match."""

    def __init__(self, folder: Path, manifest: Manifest, seg_root: Path | None = None):
        self.folder, self.manifest, self.seg_root = Path(folder), manifest, seg_root
        self.files = msgpack_files(self.folder)
        self.rows = {os.path.normpath(p): i for i, p in enumerate(manifest.images)}
        self.used: set[int] = set()

    def __iter__(self) -> Iterator[SourceItem]:
        for path in self.files:
            for n, (rid, image) in enumerate(_records(path), 1):
                yield self._item(path, n, rid, image)

    def _item(self, path: Path, n: int, rid: str | None, image) -> SourceItem:
        name = rid or f"{path.name}#{n}"
        row = self.rows.get(os.path.normpath(self.folder / rid)) if rid else None
        if rid is None or not isinstance(image, bytes):
            return SourceItem(name, {}, _failing(f"{path.name} record {n}: not an {{image, id}} record"))
        if row is None:
            return SourceItem(name, {}, _failing(f"no row for id {rid!r} in {self.manifest.source}"))
        self.used.add(row)
        return SourceItem(rid, row_meta(self.manifest, row), lambda: image, _seg_reader(self.seg_root, rid))

    def rows_without_image(self) -> int:
        """CSV rows no msgpack record carried (after a full pass)."""
        return len(self.manifest) - len(self.used)


def _failing(reason: str):
    def read() -> bytes:
        raise OSError(reason)

    return read
