"""What the trainer iterates when it trains from shards: streamed batches completed with the
frozen branches' cached vectors (looked up by the hash of each photo's bytes), the samples that
could not be used recorded once each, and, under torchrun, ranks kept in step.

Ranks stream disjoint shards, so they may hold different numbers of batches in an epoch.
DistributedDataParallel needs every rank in every step: a rank that has run out steps again on
its last batch with its loss scaled to zero, and the ranks that still have data scale theirs by
``world / active``, so each step's gradient is the mean over the ranks that had a batch and every
rank's optimizer takes the same steps (identical weights and moments).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from torch.utils.data import DataLoader

from geocli.datasets.shard_stream import ShardStream
from geocli.store.embedding_cache import fill_from_bytes
from geocli.errors import GeocliError
from geocli.report.terminal import printable
from geocli.training.distributed import World, barrier, gather_lists
from geocli.training.shard_data import ShardBatches, StreamedRows


class BadSamples:
    """Samples left out of the run, one record each ({key, shard, error}), logged once when first
    seen; under torchrun every rank's are gathered at the end of each pass, so all ranks count the
    same."""

    def __init__(self, log: Callable[[str], None]):
        self.log, self.records, self._new = log, {}, []

    def add(self, records: list[dict]) -> None:
        self._new += [r for r in records if (r["shard"], r["key"]) not in self.records]

    def sync(self, world: World | None) -> None:
        for record in gather_lists(self._new, world):
            ident = (record["shard"], record["key"])
            if ident not in self.records:
                self.records[ident] = record
                self.log(f"skipped: {printable(record['error'])}")
        self._new = []

    def __len__(self) -> int:
        return len(self.records)

    def summary(self) -> dict:
        return {"skipped": len(self.records), "skipped_examples": list(self.records.values())[:5]}


class StreamLoader:
    """One split's batches: the ``ShardBatches`` a DataLoader yields, with each cached branch's
    vectors (``caches``: name -> EmbeddingCache; ``readers``: name -> row reader for a branch that
    runs on its cache) added by content hash. A sample the cache lacks (its photo failed to decode
    when the cache was filled) is left out and recorded. ``steps``: the expected batch count (for
    progress); ``lockstep``: keep torchrun ranks in step (training)."""

    def __init__(self, loader, caches: dict, readers: dict, bad: BadSamples, world: World, device: torch.device,
                 steps: int, lockstep: bool = False):
        self.loader, self.caches, self.readers, self.bad = loader, caches, readers, bad
        self.world, self.device, self.steps, self.lockstep = world, device, steps, lockstep

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[dict]:
        batches = (b for b in map(self._complete, self.loader) if b is not None)
        if self.lockstep and self.world.distributed:
            batches = in_step(batches, self.world, self.device)
        yield from batches
        self.bad.sync(self.world)

    def _complete(self, batch: dict) -> dict | None:
        self.bad.add(batch.pop("bad"))
        keys = batch["content_hash"]
        for name, cache in self.caches.items():
            rows = cache.read(keys)
            keep = [i for i, k in enumerate(keys) if k in rows]
            if len(keep) < len(keys):  # the fill pass recorded why (same shard and key: not twice)
                gone = [i for i, k in enumerate(keys) if k not in rows]
                self.bad.add([{"key": batch["key"][i], "shard": batch["shard"][i],
                               "error": f"no {name} vector in the embedding cache: {batch['shard'][i]}:{batch['key'][i]}"}
                              for i in gone])
                batch, keys = take(batch, keep), [keys[i] for i in keep]
            if not keys:
                return None
            self._attach(batch, name, rows, keys)
        return batch if keys else None

    def _attach(self, batch: dict, name: str, rows: dict, keys: list[str]) -> None:
        from geocli.store.embedding_cache import stack_rows

        if name in self.readers:  # the branch reads its cache row itself (Branch.runs_on_cache)
            from torch.utils.data import default_collate

            batch[name] = default_collate([self.readers[name](*rows[k]) for k in keys])
            return
        emb, mask = stack_rows(rows, keys)
        batch[name] = emb
        if mask is not None:
            batch[f"{name}_mask"] = mask


def take(batch: dict, keep: list[int]) -> dict:
    """The samples ``keep`` of a collated batch (tensors, lists, nested dicts of them)."""
    out = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor):
            out[key] = value[torch.as_tensor(keep, dtype=torch.long)]
        elif isinstance(value, dict):
            out[key] = take(value, keep)
        elif isinstance(value, list):
            out[key] = [value[i] for i in keep]
        else:
            out[key] = value
    return out


def in_step(batches: Iterator[dict], world: World, device: torch.device) -> Iterator[dict]:
    """``batches`` with every rank stepping together until all have run out (see the module
    docstring): each batch gets "loss_scale"; a rank's repeat of its last batch is marked "replay"."""
    import torch.distributed as dist

    last = None
    while True:
        batch = next(batches, None)
        stuck = batch is None and last is None
        flags = torch.tensor([batch is not None, stuck], dtype=torch.float64, device=device)
        dist.all_reduce(flags)
        active, stuck_anywhere = int(flags[0].item()), bool(flags[1].item())
        if active == 0:
            return
        if stuck_anywhere:
            raise GeocliError("a process had no training sample to step with this epoch (its shards hold "
                              "only validation or unreadable photos): write more, smaller shards")
        if batch is None:
            yield {**last, "loss_scale": 0.0, "replay": True}
            continue
        batch["loss_scale"] = world.size / active
        last = batch
        yield batch


@dataclass
class StreamPlan:
    """Everything the streamed loaders are made of. ``caches``: name -> (EmbeddingCache, encode)
    of each cached (frozen) branch; ``transforms`` / ``val_transforms``: name -> pixel transform of
    each live branch; ``targets(manifest) -> targets``; ``bar(total, desc)``: a progress bar."""

    train: StreamedRows
    val: StreamedRows
    targets: Callable
    caches: dict
    readers: dict
    transforms: dict
    val_transforms: dict
    batch_size: int
    num_workers: int
    shuffle_buffer: int
    seed: int
    world: World
    device: torch.device
    log: Callable[[str], None]
    bar: Callable


def stream_loaders(plan: StreamPlan) -> tuple[ShardBatches, StreamLoader, StreamLoader, BadSamples]:
    """(the training batches -- ``set_epoch`` each epoch --, train loader, validation loader, the
    record of samples left out), after the cached branches' vectors are filled from the shards."""
    bad = BadSamples(plan.log)
    fill_caches(plan, bad)
    caches = {name: cache for name, (cache, _) in plan.caches.items()}
    live = bool(plan.transforms)
    train = ShardBatches(_stream(plan, plan.train, plan.shuffle_buffer, live), plan.train, plan.targets,
                         plan.transforms, plan.batch_size)
    val = ShardBatches(_stream(plan, plan.val, 0, live), plan.val, plan.targets, plan.val_transforms, plan.batch_size)
    kw = {"batch_size": None, "num_workers": plan.num_workers, "pin_memory": plan.device.type == "cuda"}
    per_rank = lambda n: math.ceil(n / plan.world.size / plan.batch_size)  # noqa: E731 (progress only)
    train_loader = StreamLoader(DataLoader(train, **kw), caches, plan.readers, bad, plan.world, plan.device,
                                per_rank(len(plan.train)), lockstep=True)
    val_loader = StreamLoader(DataLoader(val, **kw), caches, plan.readers, bad, plan.world, plan.device,
                              per_rank(len(plan.val)))
    return train, train_loader, val_loader, bad


def _stream(plan: StreamPlan, rows: StreamedRows, buffer: int, decode: bool) -> ShardStream:
    return ShardStream(rows.paths, rows.split, rows.val_fraction, plan.seed, plan.world.rank, plan.world.size,
                       shuffle_buffer=buffer, decode=decode)


def fill_caches(plan: StreamPlan, bad: BadSamples) -> None:
    """Encode into each cached branch's embedding cache the photos of both splits it lacks (each
    rank its own shards, then all read what every rank wrote); photos that fail to decode are
    recorded in ``bad``."""
    paths = list(dict.fromkeys(plan.train.paths + plan.val.paths))
    total = math.ceil((len(plan.train) + len(plan.val)) / plan.world.size)
    for name, (cache, encode) in plan.caches.items():
        if not cache.writable:
            raise GeocliError(f"training from shards keeps the {name} branch's vectors in the embedding cache, "
                              f"and {printable(str(cache.folder))} cannot be written: give a writable --cache-dir "
                              "(or --no-cache to run the frozen branch on every step)")
        t0 = time.perf_counter()
        stream = ShardStream(paths, rank=plan.world.rank, world=plan.world.size, shuffle_buffer=0, decode=False)
        named = _Named(stream)
        with plan.bar(total, f"encoding {name} (cache)") as progress:
            encoded = fill_from_bytes(cache, named, encode, plan.batch_size, progress.update,
                                      on_bad=lambda label, reason: bad.add([{**named.current, "error": reason}]))
        barrier(plan.world)
        cache.refresh()
        plan.log(f"{name}: {encoded} photos encoded from the shards in {time.perf_counter() - t0:.1f} s, "
                 f"the rest read from the cache ({printable(str(cache.folder))})")
    bad.sync(plan.world)


class _Named:
    """(name, bytes) of each streamed sample; ``current``: the sample being looked at (for its
    record when its photo fails to decode)."""

    def __init__(self, stream: ShardStream):
        self.stream, self.current = stream, {}

    def __iter__(self) -> Iterator[tuple[str, bytes]]:
        for sample in self.stream:
            self.current = {"key": sample["key"], "shard": sample["shard"]}
            yield f"{sample['shard']}:{sample['key']}", sample["jpg"]
