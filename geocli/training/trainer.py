"""The training loop: manifest -> label spaces -> (cached) embeddings -> epochs -> checkpoint folder.

``train(cfg)`` runs one process's share of a run. Under torchrun each process trains on its own
shard of every epoch through DistributedDataParallel; rank 0 logs and writes the run folder.
Frozen branches are encoded once through the embedding cache and the epochs run on vectors; live
(fine-tuned) branches decode and augment photos every step. After every epoch the run folder is
replaced atomically, and Ctrl-C saves it before stopping, so ``--resume OUT`` always has a
complete checkpoint to continue from.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from geocli.config import TrainConfig
from geocli.embedding_cache import branch_cache, cached_embeddings, cacheable, caches_tokens, training_view
from geocli.errors import GeocliError
from geocli.report.console import log as default_log
from geocli.runtime import mixed_precision, to_device
from geocli.training import scoring
from geocli.training.distributed import barrier, init_distributed, mean_over_ranks
from geocli.training.run_folder import (best_folder, claim_out, find_run_folder, load_run_state,
                                       remove_leftovers, save_run)
from geocli.datasets.samplers import EvalShard, PlaceBatchSampler, ShardedSampler, class_balanced_weights
from geocli.training.data import (TrainDataset, balance_labels, build_label_spaces, load_splits, manifest_targets,
                                  place_ids, render_label_maps, train_transform, trainable_heads)
from geocli.training.loss import class_weights
from geocli.training.model_config import build_model_config
from geocli.training.optim import build_optimizer, build_scheduler, step_scheduler
from geocli.training.retrieval import RETRIEVAL_HEAD, chance_recall, refresh_references


class TrainingDiverged(GeocliError):
    """The loss or the weights stopped being finite numbers: nothing more is saved."""


@dataclass
class TrainResult:
    out: Path
    epoch: int
    history: list[dict]
    baseline: dict
    split: str
    world_size: int = 1
    seen: list[int] = field(default_factory=list)  # training indices this rank saw in its last epoch
    interrupted: bool = False
    rank: int = 0

    def summary(self) -> dict:
        last = self.history[-1] if self.history else {}
        return {"out": str(self.out), "epochs": self.epoch, "split": self.split, "world_size": self.world_size,
                "final": last, "baseline_centroid": self.baseline, "history": self.history}


def resume_settings(folder) -> dict:
    """The ``TrainConfig`` dict a run folder was trained with (the base ``--resume`` merges onto)."""
    return dict(load_run_state(folder)["config"])


def train(cfg: TrainConfig, resume: str | None = None, log: Callable[[str], None] = default_log,
          progress: bool = True, force: bool = False) -> TrainResult:
    """Train per ``cfg`` (continuing the run folder ``resume`` when given, and writing there);
    returns the summary. ``force`` lets a fresh run replace an earlier geocli run at ``cfg.out``."""
    return Trainer(cfg, resume, log, progress, force).run()


class Trainer:
    def __init__(self, cfg: TrainConfig, resume: str | None, log: Callable[[str], None], progress: bool,
                 force: bool = False):
        if resume is not None:  # a resume writes into the folder it was given, and only there
            cfg.out = str(resume)
        self.cfg, self.resume, self.force = cfg, resume, force
        self.world, self.device = init_distributed(cfg.device)
        self.log = log if self.world.is_main else (lambda line: None)
        self.progress = progress and self.world.is_main
        self.history: list[dict] = []
        self.start_epoch, self.epoch = 0, 0
        self.model = self.optimizer = None
        self.references = None

    # ---- set-up ----
    def setup(self) -> None:
        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        self.train_m, self.val_m, self.split = load_splits(cfg, self.log)
        cfg.heads = trainable_heads(cfg.heads, self.train_m, self.log)
        self.log(f"{len(self.train_m)} training / {len(self.val_m)} validation images ({self.split} split)")
        state = load_run_state(self.resume) if self.resume else None
        self.model = self._build_model(state)
        self.labels = self.model.config.labels
        self.cached = cacheable(self.model, cfg.cache)
        self.view = training_view(self.model, self.cached)
        self.train_t = manifest_targets(self.labels, self.train_m, cfg.heads)
        self.val_t = manifest_targets(self.labels, self.val_m, cfg.heads)
        if RETRIEVAL_HEAD in self.model.heads or cfg.sampler == "places":
            self.train_t["place"] = place_ids(self.train_m, cfg.place_radius_km)
        self.train_loader, self.val_loader = self._loaders()
        self.optimizer = build_optimizer(self.view, cfg)
        self.scheduler = build_scheduler(self.optimizer, cfg)
        weights = cfg.class_weights == "inverse-frequency"
        self.weights = class_weights(self.model, self.train_t, self.device) if weights else {}
        if state is not None:
            self._restore(state)
        self.runner = self._wrap()

    def _build_model(self, state):
        from geocli.model import GeoModel
        from geocli.checkpoint import load_checkpoint

        if state is not None:  # the folder, or the twin a kill mid-save left
            return load_checkpoint(find_run_folder(self.resume), device=str(self.device)).train()
        labels = build_label_spaces(self.train_m, self.cfg.heads, self.cfg.cells)
        if labels.hierarchy is not None:
            sizes = ", ".join(f"{p.name} {len(p)}" for p in labels.hierarchy.partitions)
            self.log(f"geocells from the training data: {sizes}; {len(labels.countries)} countries")
        return GeoModel(build_model_config(self.cfg, labels)).to(self.device).train()

    def _restore(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state.get("scheduler"):
            self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        self.history = list(state.get("history", []))
        self.start_epoch = self.epoch = int(state["epoch"])
        self.log(f"resuming {self.resume} after epoch {self.start_epoch}")

    def _wrap(self):
        if not self.world.distributed:
            return self.view
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [self.device.index] if self.device.type == "cuda" else None
        unused = not all(h.always_trained for h in self.view.heads.values())  # e.g. retrieval without "place"
        return DDP(self.view, device_ids=ids, find_unused_parameters=unused)

    def _loaders(self):
        cached_train = {n: self._embed(n, self.train_m.images) for n in sorted(self.cached)}
        cached_val = {n: self._embed(n, self.val_m.images) for n in sorted(self.cached)}
        live = [n for n in self._live_inputs() if n not in self.cached]
        maps = {n: self._label_maps(n) for n in live if self._branch(n).reads_label_maps}
        pre = {n: self.model.config.branch(n).preprocess for n in live}
        train_tf = {n: train_transform(pre[n], self.cfg, label_map=n in maps) for n in live}
        val_tf = {n: _eval_transform(pre[n]) for n in live}
        readers = {n: self._branch(n).cache_sample for n in self.cached if self._branch(n).runs_on_cache}
        train_ds = TrainDataset(self.train_m, self.train_t, train_tf, cached_train, maps, readers)
        val_ds = TrainDataset(self.val_m, self.val_t, val_tf, cached_val, maps, readers)
        kw = {"num_workers": self.cfg.num_workers, "pin_memory": self.device.type == "cuda", "persistent_workers": False}
        self.sampler = self._sampler(len(train_ds))
        if isinstance(self.sampler, PlaceBatchSampler):
            train_loader = torch.utils.data.DataLoader(train_ds, batch_sampler=self.sampler, **kw)
        else:
            drop = len(train_ds) > self.cfg.batch_size * self.world.size
            train_loader = torch.utils.data.DataLoader(train_ds, sampler=self.sampler, drop_last=drop,
                                                       batch_size=self.cfg.batch_size, **kw)
        kw["batch_size"] = self.cfg.batch_size
        self.train_eval_loader = None
        if self.cfg.train_metrics or RETRIEVAL_HEAD in self.model.heads:  # training photos, eval mode
            eval_ds = TrainDataset(self.train_m, self.train_t, val_tf, cached_train, maps, readers)
            # whole on every rank: the reference index needs every training photo's descriptor
            self.train_eval_loader = torch.utils.data.DataLoader(eval_ds, shuffle=False, **kw)
        shard = EvalShard(len(val_ds), self.world.rank, self.world.size)  # gathered again by scoring
        return train_loader, torch.utils.data.DataLoader(val_ds, sampler=shard, **kw)

    def _live_inputs(self) -> list[str]:
        """Every branch that reads pixels in the batch, TransLocator pair members included."""
        pair = list(self.model.pair.names) if self.model.pair is not None else []
        return pair + list(self.model.branches)

    def _branch(self, name: str):
        """Branch ``name``'s module, also when it is one of the TransLocator pair."""
        pair = self.model.pair
        return pair.encoders[name] if pair is not None and name in pair.names else self.model.branches[name]

    def _sampler(self, n: int):
        """P x K place batches, class-balanced draws, or a uniform permutation (sharded per rank)."""
        if self.cfg.sampler == "places":
            return PlaceBatchSampler(self.train_t["place"], self.cfg.images_per_place, self.cfg.batch_size,
                                       self.world.rank, self.world.size, self.cfg.seed)
        weights = None
        if self.cfg.sampler == "class-balanced":
            weights = class_balanced_weights(balance_labels(self.train_t))
        return ShardedSampler(n, weights, self.world.rank, self.world.size, self.cfg.seed)

    def _label_maps(self, name: str) -> dict:
        """Rendered segmentation maps of every photo, for a seg branch that trains live."""
        paths = list(dict.fromkeys(self.train_m.images + self.val_m.images))
        module = self._branch(name)
        t0 = time.perf_counter()
        with _bar(self.progress, len(paths), f"segmenting for {name}") as bar:
            maps = render_label_maps(module, paths, self.cfg.batch_size, bar.update)
        self.log(f"{name}: {len(paths)} photos segmented in {time.perf_counter() - t0:.1f} s")
        return maps

    def _embed(self, name: str, paths: list[str]):
        """Cached vectors of branch ``name`` for ``paths``; under torchrun each rank encodes a shard."""
        module = self.model.branches[name]
        bcfg = self.model.config.branch(name)
        tokens = caches_tokens(self.model, name)
        cache = branch_cache(bcfg, module, self.cfg.cache_dir, tokens, log=self.log)
        encode = _token_encoder(module, self.cfg.batch_size) if tokens else _encoder(module, self.cfg.batch_size)
        todo = len(cache.missing([_hash(p) for p in paths]))
        t0 = time.perf_counter()
        with _bar(self.progress, todo, f"encoding {name} (cache)") as bar:
            if self.world.distributed:
                cached_embeddings(cache, paths[self.world.rank :: self.world.size], encode, self.cfg.batch_size, bar.update)
                barrier(self.world)
                cache.refresh()
            emb, mask = cached_embeddings(cache, paths, encode, self.cfg.batch_size, bar.update)
        self.log(f"{name}: {len(paths) - todo} cached, {todo} encoded in {time.perf_counter() - t0:.1f} s ({cache.folder})")
        return emb, mask

    # ---- the loop ----
    def run(self) -> TrainResult:
        from geocli.interrupt import GracefulInterrupt

        interrupted = False
        claimed = claim_out(self.cfg.out, self.force, resuming=self.resume is not None,  # before any work
                            elsewhere={"cache_dir": self.cfg.cache_dir, "root": self.cfg.root})
        if Path(self.cfg.out).is_symlink():
            self.cfg.out = str(claimed)
        with GracefulInterrupt() as self.interrupt, self._lock():
            try:
                self.setup()
                for epoch in range(self.start_epoch, self.cfg.epochs):
                    self._one_epoch(epoch)
            except KeyboardInterrupt:
                interrupted = True
                self._save(interrupted=True)
                raise
        return self._result(interrupted)

    def _lock(self):
        """The run folder's lock, held by the process that writes it (rank 0)."""
        from contextlib import nullcontext

        from geocli.training.run_lock import RunLock

        return RunLock(self.cfg.out) if self.world.is_main else nullcontext()

    def _one_epoch(self, epoch: int) -> None:
        t0 = time.perf_counter()
        loss, n = self._train_epoch(epoch)
        seconds = time.perf_counter() - t0
        self._refresh_references()
        val = self._validate()
        step_scheduler(self.scheduler, val.get("loss"))
        self.epoch = epoch + 1
        row = {"epoch": self.epoch, "train_loss": loss, "img_per_s": n * self.world.size / max(seconds, 1e-9),
               "lr": self.optimizer.param_groups[0]["lr"], "val": val}
        if self.cfg.train_metrics:
            row["train"] = self._score(self.train_eval_loader, self.train_m)
        self.history.append(row)
        self.log(scoring.epoch_line(row, self.cfg.epochs))
        self._save()
        self._drop_stale_best()
        self._save_if_best(row)
        if self.world.is_main:
            remove_leftovers(self.cfg.out)

    def _train_epoch(self, epoch: int) -> tuple[float, int]:
        self.sampler.set_epoch(epoch)
        self.view.train()
        total, n, self.seen = 0.0, 0, []
        with _bar(self.progress, len(self.train_loader), f"epoch {epoch + 1}/{self.cfg.epochs}") as bar:
            for batch in self.train_loader:
                if self.interrupt.requested:
                    raise KeyboardInterrupt
                batch = to_device(batch, self.device)
                with mixed_precision(self.device, self.cfg.amp):
                    loss, _ = self.view.loss(self.runner(batch), batch, self.weights)
                self.optimizer.zero_grad(set_to_none=True)
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise TrainingDiverged(self._diverged(epoch, value))
                loss.backward()
                self.optimizer.step()
                size = len(batch["index"])
                total, n = total + value * size, n + size
                self.seen += batch["index"].tolist()
                bar.update(1)
        return mean_over_ranks(total / max(n, 1), self.world, self.device), n

    def _refresh_references(self) -> None:
        """Retrieval models: re-encode the training photos as the reference index (every rank)."""
        self.references = None
        if RETRIEVAL_HEAD in self.view.heads:
            self.references = refresh_references(self.view, self.train_eval_loader, self.train_m.lat,
                                                   self.train_m.lon, self.device)

    def _validate(self) -> dict:
        return self._score(self.val_loader, self.val_m, sharded=True) if len(self.val_m) else {}

    def _score(self, loader, manifest, sharded: bool = False) -> dict:
        return scoring.score(self.view, loader, manifest, self.weights, self.device, self.cfg.amp,
                             self.references, self.world if sharded else None)

    def _diverged(self, epoch: int, value: float) -> str:
        kept = (f"{self.cfg.out} keeps epoch {self.epoch}" if self.epoch > self.start_epoch or self.resume
                else "nothing was saved")
        return (f"the training loss became {value} in epoch {epoch + 1}; stopped without saving it ({kept}); "
                f"try a lower --lr (now {self.cfg.lr:g})")

    # ---- output ----
    def _save(self, interrupted: bool = False) -> None:
        if self.model is None or self.optimizer is None or not self.world.is_main:
            return
        bad = next((n for n, p in self.model.state_dict().items() if p.is_floating_point() and not torch.isfinite(p).all()), None)
        if bad is not None:
            raise TrainingDiverged(f"the model's weights are no longer finite ({bad}); not saving them over "
                                   f"{self.cfg.out}; try a lower --lr (now {self.cfg.lr:g})")
        state = {"epoch": self.epoch, "config": self.cfg.to_dict(), "history": self.history,
                 "optimizer": self.optimizer.state_dict(), "rng": torch.get_rng_state(),
                 "scheduler": self.scheduler.state_dict() if self.scheduler is not None else {},
                 "interrupted": interrupted}
        extra = {"train": {"config": self.cfg.to_dict(), "epoch": self.epoch, "split": self.split,
                           "history": self.history, "interrupted": interrupted}}
        save_run(self.model, self.cfg.out, state, extra)
        if interrupted:
            self.log(f"interrupted: saved the model after {self.epoch} epoch(s) to {self.cfg.out}; "
                     f"continue with: geocli train --resume {self.cfg.out}")

    def _save_if_best(self, row: dict) -> None:
        """Keep the best epoch so far (validation median km, else validation loss) as a plain
        checkpoint beside the run folder, ``OUT-best``: later epochs may overfit."""
        score = scoring.best_score(row)
        earlier = [scoring.best_score(r) for r in self.history[:-1]]
        if score is None or not self.world.is_main or any(e is not None and e <= score for e in earlier):
            return
        from geocli.checkpoint import save_checkpoint

        extra = {"train": {"config": self.cfg.to_dict(), "epoch": self.epoch, "split": self.split, "val": row["val"]}}
        save_checkpoint(self.model, best_folder(self.cfg.out), extra)

    def _drop_stale_best(self) -> None:
        """A fresh run (--force over an earlier one) must not leave that run's OUT-best behind."""
        from geocli.owned_folder import remove_own

        best = best_folder(self.cfg.out)
        if self.resume is None and self.epoch == 1 and best.is_dir():
            remove_own(best)

    def _result(self, interrupted: bool) -> TrainResult:
        baseline = scoring.centroid_baseline(self.train_m.lat, self.train_m.lon, self.val_m.lat, self.val_m.lon)
        if getattr(self, "references", None) is not None and len(self.val_m):
            baseline["recall"] = chance_recall(self.train_m.lat, self.train_m.lon, self.val_m.lat, self.val_m.lon, self.cfg.seed)
        return TrainResult(Path(self.cfg.out), self.epoch, self.history, baseline, self.split,
                           self.world.size, list(getattr(self, "seen", [])), interrupted,
                           self.world.rank)


def _eval_transform(preprocess: dict):
    from geocli.branches.base import Preprocess

    return Preprocess.from_dict(preprocess).transform(False)


def _encoder(module, batch_size: int):
    """images -> (vectors, presence mask or None) through a frozen branch's ``encode_images``."""

    def encode(images: list):
        out = module.encode_images(images, batch_size)
        if hasattr(out, "has_text"):
            return out.emb, out.has_text
        return out, None

    return encode


def _token_encoder(module, batch_size: int):
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


def _hash(path: str) -> str:
    from geocli.embedding_cache import content_hash

    return content_hash(path)


def _bar(enabled: bool, total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, file=sys.stderr, disable=not enabled or total == 0, leave=False)
