"""What feeds a run's epochs: the data loaders over both sides of the split, their samplers, and
the frozen branches' vectors filled into the embedding cache (encoding only what it lacks).

Frozen (cached) branches reach the batch as vectors read from the cache; live branches decode and
augment the photo every step (a seg branch that trains live reads segmentation maps rendered once
per run). Under torchrun each rank trains on its own shard of every epoch and scores its own shard
of the validation set; the training photos in eval mode (train metrics, a retrieval head's
reference index) are loaded whole on every rank.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import torch

from geocli.config import TrainConfig
from geocli.datasets import Manifest
from geocli.datasets.samplers import EvalShard, PlaceBatchSampler, ShardedSampler, class_balanced_weights
from geocli.store.embedding_cache import branch_cache, cached_embeddings, content_hash
from geocli.model import caches_tokens
from geocli.report.progress import step_bar
from geocli.heads.labels import balance_labels
from geocli.training.data import TrainDataset, render_label_maps, train_transform
from geocli.training.distributed import World, barrier
from geocli.training.shard_data import ShardBatches, StreamedRows
from geocli.training.shard_loader import BadSamples


@dataclass
class Split:
    """One side of the run's split: its photos and their batch-format targets."""

    manifest: Manifest
    targets: dict


@dataclass
class Loaders:
    """The loaders of a run. ``train_eval`` (training photos, eval transforms, loader order) exists
    when train metrics are asked for or a head searches the training photos."""

    train: torch.utils.data.DataLoader
    val: torch.utils.data.DataLoader
    sampler: PlaceBatchSampler | ShardedSampler | ShardBatches
    train_eval: torch.utils.data.DataLoader | None = None
    skipped: BadSamples | None = None  # shards: the samples left out (photos that could not be decoded)


class LoaderBuilder:
    """Builds ``Loaders`` for ``model`` (its frozen branches ``cached``) as ``cfg`` asks."""

    def __init__(self, model, cfg: TrainConfig, world: World, device: torch.device,
                 log: Callable[[str], None], progress: bool):
        self.model, self.cfg, self.world, self.device = model, cfg, world, device
        self.log, self.progress = log, progress

    def build(self, train: Split, val: Split, cached: set[str], train_eval: bool) -> Loaders:
        if isinstance(train.manifest, StreamedRows):
            return self.build_streamed(train.manifest, val.manifest, cached)
        cached_train = {n: self.embed(n, train.manifest.images) for n in sorted(cached)}
        cached_val = {n: self.embed(n, val.manifest.images) for n in sorted(cached)}
        live = [n for n in self.model.pixel_inputs if n not in cached]
        photos = list(dict.fromkeys(train.manifest.images + val.manifest.images))
        maps = {n: self.label_maps(n, photos) for n in live if self.model.branch_module(n).reads_label_maps}
        pre = {n: self.model.config.branch(n).preprocess for n in live}
        train_tf = {n: train_transform(pre[n], self.cfg, label_map=n in maps) for n in live}
        val_tf = {n: eval_transform(pre[n]) for n in live}
        readers = {n: self.model.branch_module(n).cache_sample for n in cached
                   if self.model.branch_module(n).runs_on_cache}
        train_ds = TrainDataset(train.manifest, train.targets, train_tf, cached_train, maps, readers)
        val_ds = TrainDataset(val.manifest, val.targets, val_tf, cached_val, maps, readers)
        sampler = self.sampler(train, len(train_ds))
        kw = {"num_workers": self.cfg.num_workers, "pin_memory": self.device.type == "cuda",
              "persistent_workers": False}
        if isinstance(sampler, PlaceBatchSampler):
            train_loader = torch.utils.data.DataLoader(train_ds, batch_sampler=sampler, **kw)
        else:
            drop = len(train_ds) > self.cfg.batch_size * self.world.size
            train_loader = torch.utils.data.DataLoader(train_ds, sampler=sampler, drop_last=drop,
                                                       batch_size=self.cfg.batch_size, **kw)
        kw["batch_size"] = self.cfg.batch_size
        shard = EvalShard(len(val_ds), self.world.rank, self.world.size)  # gathered again by scoring
        loaders = Loaders(train_loader, torch.utils.data.DataLoader(val_ds, sampler=shard, **kw), sampler)
        if train_eval:  # whole on every rank: a reference index needs every training photo's descriptor
            eval_ds = TrainDataset(train.manifest, train.targets, val_tf, cached_train, maps, readers)
            loaders.train_eval = torch.utils.data.DataLoader(eval_ds, shuffle=False, **kw)
        return loaders

    def build_streamed(self, train: StreamedRows, val: StreamedRows, cached: set[str]) -> Loaders:
        """Loaders that stream shards (``geocli.training.shard_loader``); the frozen branches'
        vectors are filled into the cache from the shards' bytes first."""
        from geocli.training.shard_data import RowTargets, check_stream_model
        from geocli.training.shard_loader import StreamPlan, stream_loaders

        live = [n for n in self.model.pixel_inputs if n not in cached]
        check_stream_model(self.model, live)
        pre = {n: self.model.config.branch(n).preprocess for n in live}
        readers = {n: self.model.branch_module(n).cache_sample for n in cached
                   if self.model.branch_module(n).runs_on_cache}
        cfg = self.cfg
        plan = StreamPlan(train, val, RowTargets(self.model.config.labels, list(cfg.heads)),
                          {n: self.cache_and_encoder(n) for n in sorted(cached)}, readers,
                          {n: train_transform(pre[n], cfg) for n in live}, {n: eval_transform(pre[n]) for n in live},
                          cfg.batch_size, cfg.num_workers, cfg.shuffle_buffer, cfg.seed, self.world, self.device,
                          self.log, lambda total, desc: step_bar(self.progress, total, desc))
        batches, train_loader, val_loader, bad = stream_loaders(plan)
        return Loaders(train_loader, val_loader, batches, skipped=bad)

    def sampler(self, train: Split, n: int) -> PlaceBatchSampler | ShardedSampler:
        """P x K place batches, class-balanced draws, or a uniform permutation (sharded per rank)."""
        cfg = self.cfg
        if cfg.sampler == "places":
            return PlaceBatchSampler(train.targets["place"], cfg.images_per_place, cfg.batch_size,
                                     self.world.rank, self.world.size, cfg.seed)
        weights = None
        if cfg.sampler == "class-balanced":
            heads = [h.name for h in self.model.config.heads]
            weights = class_balanced_weights(balance_labels(train.targets, heads))
        return ShardedSampler(n, weights, self.world.rank, self.world.size, cfg.seed)

    def label_maps(self, name: str, paths: list[str]) -> dict:
        """Rendered segmentation maps of every photo, for a seg branch that trains live."""
        module = self.model.branch_module(name)
        t0 = time.perf_counter()
        with step_bar(self.progress, len(paths), f"segmenting for {name}") as bar:
            maps = render_label_maps(module, paths, self.cfg.batch_size, bar.update)
        self.log(f"{name}: {len(paths)} photos segmented in {time.perf_counter() - t0:.1f} s")
        return maps

    def embed(self, name: str, paths: list[str]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Cached vectors of frozen branch ``name`` for ``paths``, encoding the photos the cache
        lacks; under torchrun each rank encodes a shard and then every rank reads the whole."""
        cache, encode = self.cache_and_encoder(name)
        todo = len(cache.missing([content_hash(p) for p in paths]))
        t0 = time.perf_counter()
        with step_bar(self.progress, todo, f"encoding {name} (cache)") as bar:
            if self.world.distributed:
                mine = paths[self.world.rank :: self.world.size]
                cached_embeddings(cache, mine, encode, self.cfg.batch_size, bar.update)
                barrier(self.world)
                cache.refresh()
            emb, mask = cached_embeddings(cache, paths, encode, self.cfg.batch_size, bar.update)
        self.log(f"{name}: {len(paths) - todo} cached, {todo} encoded in {time.perf_counter() - t0:.1f} s "
                 f"({cache.folder})")
        return emb, mask


    def cache_and_encoder(self, name: str):
        """Frozen branch ``name``'s embedding cache and the function that encodes photos for it."""
        module = self.model.branches[name]
        tokens = caches_tokens(self.model, name)
        cache = branch_cache(self.model.config.branch(name), module, self.cfg.cache_dir, tokens, log=self.log)
        encode = token_encoder(module, self.cfg.batch_size) if tokens else vector_encoder(module, self.cfg.batch_size)
        return cache, encode


def eval_transform(preprocess: dict):
    """A branch's own resize, crop and normalisation, without augmentation."""
    from geocli.branches.base import Preprocess

    return Preprocess.from_dict(preprocess).transform(False)


def vector_encoder(module, batch_size: int):
    """images -> (vectors, presence mask or None) through a frozen branch's ``encode_images``."""

    def encode(images: list):
        out = module.encode_images(images, batch_size)
        if hasattr(out, "has_text"):
            return out.emb, out.has_text
        return out, None

    return encode


def token_encoder(module, batch_size: int):
    """images -> (pooled embedding + flattened patch tokens per row, None) of a frozen token branch."""
    from geocli.model import flatten_with_tokens

    @torch.no_grad()
    def encode(images: list):
        was_training = module.training
        module.eval()
        rows = [flatten_with_tokens(module, module.to_batch(images[i : i + batch_size]))
                for i in range(0, len(images), batch_size)]
        module.train(was_training)
        return torch.cat(rows), None

    return encode
