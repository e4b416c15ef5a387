"""Training data streamed from webdataset shards: one pass over the ``KEY.json`` members for the
split and the label spaces, then batches built as the shards stream by.

The pass keeps only what the label spaces and the validation scores need: the training samples'
coordinates, countries and scenes (no names: MP-16 has 4.7M), and the validation rows. Every row
is numbered by its shard's offset plus its position among its split's samples in that shard, so a
streamed sample's ``index`` is its row in these manifests, whatever the shuffle did. Labels come
from each sample's json through the manifest path itself (``metas_manifest`` ->
``manifest_targets``): one way to turn a row into targets.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np
import torch

from geocli.config import LabelSpaces
from geocli.datasets.manifest import Manifest
from geocli.datasets.shards import in_validation, metas_manifest, raw_samples, sample_meta, shard_paths
from geocli.errors import DatasetNotFoundError, UsageError
from geocli.training.distributed import World, gather_lists

#: How ``geocli train`` names the split of a shard set (``--val SHARDS`` names its own).
HASH_SPLIT = "group-hash"


@dataclass
class StreamedRows(Manifest):
    """The rows of one split of a shard set, in shard order then position; ``paths`` are the shards
    and ``offsets[path]`` the row of that shard's first sample of the split. ``split`` is what
    ``ShardStream`` keeps ("train", "val" or "all")."""

    paths: list[str] = field(default_factory=list)
    offsets: dict[str, int] = field(default_factory=dict)
    split: str = "all"
    val_fraction: float = 0.2


def shard_splits(data: str, val: str | None, val_fraction: float, split: str | None,
                 world: World | None = None) -> tuple[StreamedRows, StreamedRows, str]:
    """(train, val, how) of a shard set: ``--val SHARDS`` when given, else the hash split of
    ``data`` (``in_validation``: group, else key). Under torchrun each rank reads its share of the
    json and the rows are gathered, so every rank holds the same manifests."""
    if split not in (None, "group"):
        raise UsageError(f"--split {split}: shards are split by a hash of each sample's location_id "
                         "(else its key), the same on every process and run; drop --split or give --val SHARDS")
    if val:
        train = scan(shard_paths(data), "all", val_fraction, world, names=False)
        return train, scan(shard_paths(val), "all", val_fraction, world), f"--val {val}"
    paths = shard_paths(data)
    train = scan(paths, "train", val_fraction, world, names=False)
    held = scan(paths, "val", val_fraction, world)
    if not len(held):
        raise UsageError(f"{data}: no sample falls in the validation split ({val_fraction:g} of the "
                         "location_ids / keys); raise --val-fraction or give --val SHARDS")
    return train, held, HASH_SPLIT


def scan(paths: list[str], split: str, val_fraction: float, world: World | None = None,
         names: bool = True) -> StreamedRows:
    """The rows of ``split`` in ``paths``, read from the json members only; ``names=False`` keeps no
    image names (the training side of a large set)."""
    mine = paths if world is None or not world.distributed else paths[world.rank :: world.size]
    parts = {path: _shard_rows(path, split, val_fraction, names) for path in mine}
    parts = dict(gather_lists(list(parts.items()), world))
    rows = [parts[p] for p in paths]
    if not sum(len(r) for r in rows) and split != "val":
        raise DatasetNotFoundError(f"{paths[0]}: the shards hold no {'training ' if split == 'train' else ''}samples")
    offsets = dict(zip(paths, np.cumsum([0] + [len(r) for r in rows[:-1]]).tolist()))
    whole = _concat(rows)
    return StreamedRows(paths[0], whole.images, whole.lat, whole.lon, whole.country, whole.scene, whole.group,
                        whole.rows, paths=list(paths), offsets=offsets, split=split, val_fraction=val_fraction)


def _shard_rows(path: str, split: str, val_fraction: float, names: bool) -> Manifest:
    metas = [sample_meta(raw) for raw in raw_samples([path], ("json",))]
    if split != "all":
        metas = [m for m in metas if in_validation(m, val_fraction) == (split == "val")]
    return metas_manifest(path, metas, images=names)


def _concat(parts: list[Manifest]) -> Manifest:
    join = lambda name: [x for p in parts for x in getattr(p, name)]  # noqa: E731
    lat = np.concatenate([p.lat for p in parts]) if parts else np.zeros(0)
    lon = np.concatenate([p.lon for p in parts]) if parts else np.zeros(0)
    return Manifest(parts[0].source if parts else "", join("images"), lat, lon, join("country"), join("scene"),
                    join("group"), join("rows"))


class ShardBatches(torch.utils.data.IterableDataset):
    """Batches of one split, streamed (``ShardStream`` does the shard split, the shuffle and the
    decoding): the batch format of ``TrainDataset`` (targets, "index", live branches' pixels) plus
    "content_hash" per sample (the cached branches' vectors are looked up by it) and "bad": the
    samples left out since the previous batch, one record each (key, shard, reason)."""

    def __init__(self, stream, rows: StreamedRows, targets: Callable[[Manifest], dict], transforms: dict,
                 batch_size: int):
        self.stream, self.rows, self.targets = stream, rows, targets
        self.transforms, self.batch_size = transforms, batch_size

    def set_epoch(self, epoch: int) -> None:
        self.stream.set_epoch(epoch)

    def __iter__(self) -> Iterator[dict]:
        samples, bad = [], []
        for sample in self.stream:
            if sample.get("error"):
                bad.append({"key": sample["key"], "shard": sample["shard"], "error": sample["error"]})
                continue
            samples.append(sample)
            if len(samples) == self.batch_size:
                yield self.collate(samples, bad)
                samples, bad = [], []
        if samples or bad:
            yield self.collate(samples, bad)

    def collate(self, samples: list[dict], bad: list[dict]) -> dict:
        """One batch of ``samples``: targets from their json as a manifest's rows would give them."""
        rows = metas_manifest("batch", samples, images=False)
        index = [self.rows.offsets[s["shard"]] + s["position"] for s in samples]
        batch = to_batch(self.targets(rows)) if samples else {}
        batch.update({"index": torch.as_tensor(index, dtype=torch.int64), "bad": bad,
                      "content_hash": [s["content_hash"] for s in samples], "key": [s["key"] for s in samples],
                      "shard": [s["shard"] for s in samples]})
        for name, transform in self.transforms.items():
            if samples:
                batch[name] = torch.stack([transform(s["image"]) for s in samples])
        return batch


def to_batch(targets: dict) -> dict:
    """NumPy targets (``manifest_targets``) as the tensors ``TrainDataset`` batches carry."""
    return {key: _tensor(values) for key, values in targets.items()}


def _tensor(values):
    """Class indices as int64, coordinates as they are, one tensor per geocell partition."""
    if isinstance(values, dict):
        return {name: _tensor(v) for name, v in values.items()}
    values = np.asarray(values)
    return torch.as_tensor(values.astype(np.int64) if np.issubdtype(values.dtype, np.integer) else values)


@dataclass
class RowTargets:
    """Batch targets of manifest rows (``manifest_targets``): what ``ShardBatches`` calls in each
    data-loader worker (a class, so a worker started by spawn can receive it)."""

    labels: LabelSpaces
    heads: list[str]

    def __call__(self, rows: Manifest) -> dict:
        from geocli.heads.labels import manifest_targets

        return manifest_targets(self.labels, rows, self.heads)


def check_streamable(cfg, world: World) -> None:
    """What a streamed run cannot do (each needs the whole list of photos at hand), refused before work."""
    if cfg.sampler != "uniform":
        raise UsageError(f"--sampler {cfg.sampler} draws from the whole list of photos; shards stream in a "
                         "shuffled order instead: use --sampler uniform")
    if cfg.train_metrics:
        raise UsageError("train_metrics re-reads every training photo after each epoch; not available when "
                         "training from shards: train from a manifest")
    n = len(shard_paths(cfg.data))
    if n < world.size:
        raise UsageError(f"{cfg.data}: {n} shard(s) for {world.size} processes: each process streams whole "
                         "shards, so write at least as many (geocli shards --shard-size)")


def check_stream_model(model, live: list[str]) -> None:
    """Model parts that need every training photo at hand, refused before any photo is encoded;
    ``live``: the branches that read pixels every step."""
    from geocli.training.scoring import reference_head

    head = reference_head(model)
    if head is not None:
        raise UsageError(f"the {head} head searches every training photo after each epoch; not available when "
                         "training from shards: train it from a manifest")
    maps = [n for n in live if model.branch_module(n).reads_label_maps]
    if maps:
        raise UsageError(f"the {maps[0]} branch reads segmentation maps rendered once per run from every photo; "
                         "not available when training from shards: cache it frozen (--freeze), or train from a manifest")
