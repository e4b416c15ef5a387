"""Samplers: which training photos each step (and each process under torchrun) sees.

P x K place batches for metric learning, class-balanced or uniform draws sharded per rank, and
the validation shard each rank scores. Every draw follows (seed, epoch), identically on all ranks.
"""
from __future__ import annotations


import numpy as np
import torch

from geocli.errors import UsageError


class PlaceBatchSampler(torch.utils.data.Sampler):
    """P x K batches (GSV-Cities / DINO-Mix): ``batch_size // per_place`` places, ``per_place``
    photos of each (drawn with replacement where a place has fewer). Places with a single photo
    have no positive pair and are left out. Drawn from (seed, epoch) identically on every rank;
    rank r takes batches r, r+W, ..."""

    def __init__(self, places: np.ndarray, per_place: int, batch_size: int, rank: int = 0, world: int = 1, seed: int = 0):
        ids, inverse = np.unique(np.asarray(places), return_inverse=True)
        groups = [np.flatnonzero(inverse == k) for k in range(len(ids))]
        self.groups = [g for g in groups if len(g) >= 2]
        self.per_place, self.places_per_batch = per_place, batch_size // per_place
        if len(self.groups) < self.places_per_batch * world:
            raise UsageError(f"P x K batches need {self.places_per_batch * world} places with at least two photos; "
                             f"the training data has {len(self.groups)}")
        self.rank, self.world, self.seed, self.epoch = rank, world, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _batch(self, rng: np.random.Generator, places: np.ndarray) -> list[int]:
        out: list[int] = []
        for p in places:
            group = self.groups[p]
            out += rng.choice(group, self.per_place, replace=len(group) < self.per_place).tolist()
        return out

    def __iter__(self):
        rng = np.random.default_rng(self.seed * 1_000_003 + self.epoch)
        order = rng.permutation(len(self.groups))
        batches = [self._batch(rng, order[i * self.places_per_batch:(i + 1) * self.places_per_batch])
                   for i in range(len(order) // self.places_per_batch)]
        usable = len(batches) - len(batches) % self.world
        return iter(batches[self.rank:usable:self.world])

    def __len__(self) -> int:
        return len(self.groups) // self.places_per_batch // self.world


class ShardedSampler(torch.utils.data.Sampler):
    """One epoch's draw -- uniform permutation, or class-balanced with replacement -- made from
    (seed, epoch) identically on every rank, then dealt out: rank r takes positions r, r+W, ...
    So ranks see disjoint shards of equal length, and a resumed run redraws the same epochs."""

    def __init__(self, n: int, weights: np.ndarray | None = None, rank: int = 0, world: int = 1, seed: int = 0):
        if n < world:
            raise UsageError(f"{n} training samples cannot be shared by {world} processes")
        self.n, self.weights, self.rank, self.world, self.seed, self.epoch = n, weights, rank, world, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _draw(self) -> list[int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        if self.weights is None:
            return torch.randperm(self.n, generator=g).tolist()
        w = torch.as_tensor(self.weights, dtype=torch.double)
        return torch.multinomial(w, self.n, replacement=True, generator=g).tolist()

    def __iter__(self):
        order = self._draw()
        usable = len(order) - len(order) % self.world
        return iter(order[self.rank : usable : self.world])

    def __len__(self) -> int:
        return self.n // self.world


class EvalShard(torch.utils.data.Sampler):
    """Rank r of W scores samples r, r+W, ... in order: every sample exactly once over all ranks
    (no padding, so gathered results need no de-duplication)."""

    def __init__(self, n: int, rank: int = 0, world: int = 1):
        self.indices = list(range(rank, n, world))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def class_balanced_weights(labels) -> np.ndarray:
    """Per-sample weight 1/N_class (so each class is drawn equally often), normalised to mean 1."""
    labels = np.asarray(labels)
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    w = 1.0 / counts[inverse]
    return w * (len(w) / w.sum())
