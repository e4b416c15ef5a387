"""Webdataset tar shards: the folder ``geocli shards`` writes (its marker; writing it is
``geocli.datasets.shard_writer``), naming shard sets
(a folder or a brace pattern such as ``'shards/{000000..000099}.tar'``), and reading them.

A shard set is read as a stream: shards are dealt to ranks and data-loader workers (shard ``i`` of
an epoch's order goes to rank ``i % W``, then worker ``(i // W) % K``), samples pass through a
shuffle buffer, and the validation split is a hash of each sample's group (its ``location_id``)
or key, so it is the same on every rank and every run. Nothing but the shard names and the buffer
is held in memory.
"""
from __future__ import annotations

import hashlib
import json
import os
import tarfile
from pathlib import Path
from typing import Iterator

import numpy as np

from geocli.errors import DatasetNotFoundError, GeocliError

SHARD_FORMAT = "{:06d}.tar"
MARKER = ".geocli-shards.json"


def is_shard_spec(spec: str) -> bool:
    """Whether ``spec`` names shards: a ``.tar`` file or pattern, or a folder holding ``.tar`` files."""
    if spec.endswith(".tar"):
        return True
    try:
        return os.path.isdir(spec) and any(e.name.endswith(".tar") and e.is_file() for e in os.scandir(spec))
    except OSError:  # unreadable or impossible names are not shards; the caller reports them
        return False


def shard_paths(spec: str) -> list[str]:
    """The shard files ``spec`` names, in order; each must exist."""
    import braceexpand

    path = Path(spec)
    paths = sorted(str(p) for p in path.glob("*.tar")) if path.is_dir() else list(braceexpand.braceexpand(spec))
    if not paths:
        raise DatasetNotFoundError(f"{spec}: no .tar shards found")
    missing = [p for p in paths if not Path(p).is_file()]
    if missing:
        raise DatasetNotFoundError(f"{spec}: {len(missing)} of {len(paths)} shards are missing (first: {missing[0]})")
    return paths


def is_validation(name: str, fraction: float) -> bool:
    """The deterministic split: a hash of ``name`` (a group id or sample key) below ``fraction``."""
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < fraction


def in_validation(sample: dict, fraction: float) -> bool:
    """Whether a sample (``sample_meta`` fields) is held out: ``is_validation`` of its group, else its key."""
    return is_validation(sample["group"] or sample["key"], fraction)


def shards_for(paths: list[str], epoch: int, seed: int, rank: int, world: int, worker: int,
               workers: int, shuffle: bool = True) -> list[str]:
    """The shards rank ``rank``'s worker ``worker`` reads in ``epoch``: every shard goes to exactly one
    (rank, worker), from an order drawn from (seed, epoch) identically everywhere."""
    order = np.random.default_rng([seed, epoch]).permutation(len(paths)) if shuffle else np.arange(len(paths))
    mine = order[rank::world][worker::workers]
    return [paths[i] for i in mine]


def raw_samples(paths: list[str], parts: tuple[str, ...] | None = None) -> Iterator[dict]:
    """Samples of the shards in order as ``{"__key__", "__url__", ext: bytes}`` (only ``parts``
    when given, e.g. ``("json",)`` to read metadata without keeping image bytes)."""
    from webdataset.tariterators import tarfile_samples

    select = None if parts is None else (lambda fname: fname.split(".", 1)[-1] in parts)
    for path in paths:  # one shard at a time: a broken shard names itself
        try:
            yield from tarfile_samples([{"url": path}], select_files=select)
        except (OSError, ValueError, tarfile.TarError) as exc:  # truncated, not a tar, unreadable
            reason = str(exc.args[0]).split(" @ ")[0] if exc.args else str(exc)  # webdataset appends the stream
            raise GeocliError(f"{path}: not a readable tar shard ({' '.join(reason.split())})") from None


class ShardImage:
    """A photo held in a shard, where predict takes a path: ``str()`` is its original name."""

    def __init__(self, name: str, data: bytes):
        self.name, self.data = name, data

    def __str__(self) -> str:
        return self.name

    def open(self):
        from geocli.images import open_image_bytes

        return open_image_bytes(self.data, self.name)


def shard_images(spec: str) -> Iterator[ShardImage]:
    """Every photo of a shard set, in order, streamed (one sample in memory at a time)."""
    for raw in raw_samples(shard_paths(spec), ("json", "jpg")):
        yield ShardImage(sample_meta(raw)["image"], raw.get("jpg", b""))


def shard_manifest(spec: str):
    """A shard set's labels as a ``Manifest`` (images are the original names): what eval scores
    against. Reads only the ``KEY.json`` members."""
    metas = [sample_meta(raw) for raw in raw_samples(shard_paths(spec), ("json",))]
    if not metas:
        raise DatasetNotFoundError(f"{spec}: the shards hold no samples")
    return metas_manifest(spec, metas, rows=list(range(1, len(metas) + 1)))


def metas_manifest(source: str, metas: list[dict], images: bool = True, rows: list[int] | None = None):
    """``sample_meta`` dicts as the ``Manifest`` rows a CSV with the same columns would give
    (country upper-case, scene names as ``read_manifest`` normalises them), so labels derived from
    shards and from manifests take one path. ``images=False`` leaves the names out (a
    coordinates-only manifest of a whole training set)."""
    from geocli.datasets.manifest import Manifest, scene_label

    column = lambda k: [m[k] for m in metas]  # noqa: E731
    return Manifest(source, column("image") if images else [], np.array(column("lat"), np.float64).reshape(-1),
                    np.array(column("lon"), np.float64).reshape(-1),
                    country=[(c or "").upper() or None for c in column("country")],
                    scene=[scene_label(s) for s in column("scene")], group=column("group"), rows=rows or [])


def sample_meta(raw: dict) -> dict:
    """The ``KEY.json`` of a raw sample as geocli's sample fields (``group`` from location_id/sequence)."""
    try:
        meta = json.loads(raw.get("json", b"{}"))
        lat, lon = float(meta["lat"]), float(meta["lon"])
    except (ValueError, KeyError, TypeError):
        raise GeocliError(f"{raw.get('__url__')}: sample {raw.get('__key__')}: KEY.json lacks numeric lat/lon") from None
    if not (abs(lat) <= 90 and abs(lon) <= 180):
        raise GeocliError(f"{raw.get('__url__')}: sample {raw.get('__key__')}: lat/lon ({lat}, {lon}) out of range")
    group = next((meta[k] for k in ("location_id", "sequence", "group") if meta.get(k) not in (None, "")), None)
    scene = meta.get("scene")
    return {"key": raw["__key__"], "image": str(meta.get("image") or raw["__key__"]), "lat": lat, "lon": lon,
            "country": (meta.get("country") or None), "scene": None if scene in (None, "") else str(scene),
            "group": None if group is None else str(group)}


def shuffled(samples, buffer: int, rng: np.random.Generator):
    """A shuffle buffer of ``buffer`` samples: memory stays at the buffer, order is seeded."""
    pool: list = []
    for sample in samples:
        if len(pool) < buffer:
            pool.append(sample)
            continue
        i = int(rng.integers(len(pool)))
        pool[i], sample = sample, pool[i]
        yield sample
    rng.shuffle(pool)
    yield from pool
