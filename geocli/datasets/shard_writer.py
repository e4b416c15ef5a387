"""Writing webdataset tar shards: ``KEY.jpg`` (the original JPEG bytes, or re-encoded when resized
or not a JPEG), ``KEY.json`` (lat, lon and the labels the source has, plus the original name) and,
where a map is given, ``KEY.seg.png``.

Shard ``k`` holds the usable items among source items ``k * shard_size`` to ``(k + 1) * shard_size
- 1``, so a resumed run knows which items a finished shard covers without reading it. Each shard is
written under a temporary name and renamed when complete; the folder's marker records every
finished shard with its counts, so a killed run resumes after its last complete shard.
"""
from __future__ import annotations

import io
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from geocli.datasets.shards import MARKER, SHARD_FORMAT
from geocli.errors import GeocliError

JPEG_QUALITY = 95


class ShardFolder:
    """A folder ``geocli shards`` owns: its marker records the settings and every finished shard."""

    def __init__(self, path: Path, state: dict):
        self.path, self.state = path, state

    @classmethod
    def claim(cls, path: Path, settings: dict) -> "ShardFolder":
        """Open ``path`` for writing: new or empty, or marked as geocli's with the same settings."""
        path = Path(path)
        marker = path / MARKER
        if marker.is_file():
            state = json.loads(marker.read_text(encoding="utf-8"))
            check_settings_match(state.get("settings", {}), settings, path)
        elif path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise GeocliError(f"{path} exists and is not a shard folder geocli wrote (no {MARKER}); "
                              "give a new or empty --out folder")
        else:
            path.mkdir(parents=True, exist_ok=True)
            state = {"geocli": "shards", "settings": settings, "shards": {}}
        for leftover in path.glob(".*.tar.partial"):  # a killed run's unfinished shard
            leftover.unlink()
        folder = cls(path, state)
        folder._save()
        return folder

    def finished(self) -> dict[str, dict]:
        """Shard name -> its counts, for shards recorded as complete and still on disk."""
        return {n: c for n, c in self.state["shards"].items() if (self.path / n).is_file()}

    def record(self, name: str, counts: dict) -> None:
        self.state["shards"][name] = counts
        self.state.pop("total", None)
        self._save()

    def record_complete(self, totals: dict) -> None:
        self.state["total"] = totals
        self._save()

    def _save(self) -> None:
        tmp = self.path / f"{MARKER}.tmp"
        tmp.write_text(json.dumps(self.state, indent=1), encoding="utf-8")
        os.replace(tmp, self.path / MARKER)


@dataclass
class SourceItem:
    """One photo to write: its original name, its metadata (lat, lon, labels), and how to get its
    bytes (and its segmentation map's, when there is one); reading may raise ``OSError``."""

    name: str
    meta: dict
    read: Callable[[], bytes]
    read_seg: Callable[[], bytes] | None = None


@dataclass
class ShardCounts:
    """What one shard (or the whole run) holds and left out, and why."""

    samples: int = 0
    bad: int = 0
    seg_maps: int = 0
    bad_examples: list[str] = field(default_factory=list)

    def add(self, other: "ShardCounts") -> None:
        self.samples += other.samples
        self.bad += other.bad
        self.seg_maps += other.seg_maps
        self.bad_examples = (self.bad_examples + other.bad_examples)[:5]


def encode_sample(item: SourceItem, max_side: int | None) -> dict:
    """The webdataset sample of ``item`` (without its key); raises ``ImageError`` for a bad image."""
    from geocli.images import open_image_bytes

    data = item.read()
    image = open_image_bytes(data, item.name)
    if max_side and max(image.size) > max_side:
        image.thumbnail((max_side, max_side))
        data = _jpeg(image)
    elif not data.startswith(b"\xff\xd8"):  # PNG, HEIC, WebP ...: stored as the JPEG the name promises
        data = _jpeg(image)
    sample = {"jpg": data, "json": json.dumps({**item.meta, "image": item.name}).encode("utf-8")}
    if item.read_seg is not None:
        sample["seg.png"] = item.read_seg()
    return sample


def _jpeg(image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


def write_shard(folder: Path, index: int, items: list[tuple[int, SourceItem]], max_side: int | None,
                on_bad: Callable[[str], None]) -> ShardCounts:
    """Shard ``index`` from ``(source position, item)`` pairs, written whole or not at all."""
    import webdataset as wds

    from geocli.images import ImageError

    counts = ShardCounts()  # a whole-second mtime: a fractional one costs every member a PAX header
    final = folder / SHARD_FORMAT.format(index)
    partial = folder / f".{final.name}.partial"
    try:
        with partial.open("wb") as stream, wds.TarWriter(stream, encoder=False, mtime=int(time.time())) as tar:
            for position, item in items:
                try:
                    sample = encode_sample(item, max_side)
                except (ImageError, OSError) as exc:
                    counts.bad += 1
                    reason = " ".join(str(exc).split())
                    counts.bad_examples.append(reason)
                    on_bad(reason)
                    continue
                tar.write({"__key__": f"{position:09d}", **sample})
                counts.samples += 1
                counts.seg_maps += "seg.png" in sample
        os.replace(partial, final)
    finally:
        partial.unlink(missing_ok=True)
    counts.bad_examples = counts.bad_examples[:5]
    return counts


def _batches(items: Iterable[SourceItem], size: int) -> Iterator[tuple[int, list[tuple[int, SourceItem]]]]:
    batch: list[tuple[int, SourceItem]] = []
    for position, item in enumerate(items):
        batch.append((position, item))
        if len(batch) == size:
            yield position // size, batch
            batch = []
    if batch:
        yield batch[0][0] // size, batch


def write_shards(items: Iterable[SourceItem], out: Path, settings: dict, shard_size: int,
                 max_side: int | None, log: Callable[[str], None], total: int | None = None,
                 progress=None) -> ShardCounts:
    """Write ``items`` into ``out`` in shards of ``shard_size`` source items; shards finished by an
    earlier run with the same ``settings`` are kept (their items are not read again). ``progress``
    (a ``geocli.report.progress.RunProgress``) counts each shard's samples and bad items."""
    folder = ShardFolder.claim(out, {**settings, "shard_size": shard_size, "max_side": max_side})
    counts, done = ShardCounts(), folder.finished()
    for index, batch in _batches(items, shard_size):
        name = SHARD_FORMAT.format(index)
        if name in done:
            counts.add(ShardCounts(**done[name]))
            _advance(progress, ShardCounts(**done[name]))
            continue
        shard = write_shard(out, index, batch, max_side, on_bad=lambda reason: log(f"skipped: {reason}"))
        folder.record(name, shard.__dict__)
        counts.add(shard)
        _advance(progress, shard)
        seen = batch[-1][0] + 1
        log(f"{name}: {shard.samples} samples ({shard.bad} bad); {seen}{f'/{total}' if total else ''} items read")
    folder.record_complete(counts.__dict__)
    return counts


def _advance(progress, shard: ShardCounts) -> None:
    if progress is not None:
        progress.advance(shard.samples)
        progress.advance(shard.bad, ok=False)


def check_settings_match(recorded: dict, wanted: dict, out: Path) -> None:
    """A resumed run must write what the first one did, or the shards would not fit together."""
    differ = [k for k in wanted if k in recorded and recorded[k] != wanted[k]]
    if differ:
        shown = ", ".join(f"{k}: {recorded[k]!r} there, {wanted[k]!r} now" for k in differ)
        raise GeocliError(f"{out} holds shards written with other settings ({shown}); "
                          f"use a new --out folder, or the same settings to resume (see {MARKER})")
