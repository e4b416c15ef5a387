"""A shard set as a PyTorch ``IterableDataset``: what ``DataLoader`` workers on each rank stream.

Each (rank, worker) reads its own shards of the epoch's order (``shards.shards_for``), decodes each
photo from its bytes, keeps the samples of its split (``shards.is_validation`` on the group or
key) and shuffles them through a buffer. Over all ranks and workers an epoch yields every sample of
the split exactly once; ``set_epoch`` redraws the order, so a resumed run at epoch ``e`` reads
epoch ``e``'s order and never repeats the finished ones.
"""
from __future__ import annotations

from typing import Callable, Iterator

import numpy as np
import torch

from geocli.store.embedding_cache import bytes_hash
from geocli.datasets.shards import in_validation, raw_samples, sample_meta, shard_paths, shards_for, shuffled

SPLITS = ("all", "train", "val")


class ShardStream(torch.utils.data.IterableDataset):
    """Samples ``{"key", "name" (the original file name), "image", "lat", "lon", "country", "scene", "group",
    "content_hash", "shard", "position"}`` (plus
    ``"seg"`` where the shard carries a map); a photo that cannot be decoded yields
    ``{"key", "image": None, "error": reason}`` so the consumer counts it."""

    def __init__(self, spec: str | list[str], split: str = "all", val_fraction: float = 0.1, seed: int = 0,
                 rank: int = 0, world: int = 1, shuffle_buffer: int = 1000, transform: Callable | None = None,
                 decode: bool = True):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}")
        self.paths = shard_paths(spec) if isinstance(spec, str) else list(spec)
        self.split, self.val_fraction, self.seed = split, val_fraction, seed
        self.rank, self.world, self.buffer = rank, world, shuffle_buffer
        self.transform, self.decode, self.epoch = transform, decode, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def my_shards(self) -> list[str]:
        """This process's shards this epoch (its DataLoader worker's share when called in one)."""
        return shards_for(self.paths, self.epoch, self.seed, self.rank, self.world, *_worker(), shuffle=self.buffer > 0)

    def __iter__(self) -> Iterator[dict]:
        samples = self._positioned(s for s in map(self._meta, raw_samples(self.my_shards())) if self._keep(s))
        if self.buffer > 0:
            rng = np.random.default_rng([self.seed, self.epoch, self.rank, _worker()[0]])
            samples = shuffled(samples, self.buffer, rng)
        return map(self._finish, samples)

    @staticmethod
    def _positioned(samples: Iterator[dict]) -> Iterator[dict]:
        """Each sample's ``shard`` (its path) and ``position``: its place among the samples of its
        split in that shard, counted before shuffling (a stable id with the shard's offset)."""
        shard, position = None, 0
        for sample in samples:
            if sample["shard"] != shard:
                shard, position = sample["shard"], 0
            sample["position"] = position
            position += 1
            yield sample

    def _meta(self, raw: dict) -> dict:
        meta = sample_meta(raw)
        meta["name"] = meta.pop("image")
        return {**meta, "shard": raw["__url__"], "_raw": raw}

    def _keep(self, sample: dict) -> bool:
        if self.split == "all":
            return True
        return in_validation(sample, self.val_fraction) == (self.split == "val")

    def _finish(self, sample: dict) -> dict:
        raw = sample.pop("_raw")
        data = raw.get("jpg") or b""
        sample["content_hash"] = bytes_hash(data)  # the embedding cache's key, as for the file
        if not self.decode:
            sample["jpg"] = data
            return sample
        from geocli.images import ImageError, open_image_bytes

        try:
            image = open_image_bytes(data, f"{raw['__url__']}:{sample['key']}")
        except ImageError as exc:
            return {**sample, "image": None, "error": str(exc)}
        sample["image"] = self.transform(image) if self.transform else image
        if raw.get("seg.png"):
            sample["seg"] = open_image_bytes(raw["seg.png"], f"{raw['__url__']}:{sample['key']}.seg.png")
        return sample


def _worker() -> tuple[int, int]:
    info = torch.utils.data.get_worker_info()
    return (info.id, info.num_workers) if info is not None else (0, 1)
