"""The training loop: manifest -> label spaces -> (cached) embeddings -> epochs -> checkpoint folder.

``train(cfg)`` runs one process's share of a run. Under torchrun each process trains on its own
shard of every epoch through DistributedDataParallel; rank 0 logs and writes the run folder.
Frozen branches are encoded once through the embedding cache and the epochs run on vectors; live
(fine-tuned) branches decode and augment photos every step (``geocli.training.loaders``). What
varies between runs hooks in as callbacks (``geocli.training.callbacks``): the run folder replaced
atomically after every epoch and saved on Ctrl-C, so ``--resume OUT`` always has a complete
checkpoint to continue from; the best epoch kept beside it; retrieval references; the log.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch

from geocli.config import TrainConfig
from geocli.model import GeoModel, cacheable, training_view
from geocli.report.console import log as default_log
from geocli.report.progress import step_bar
from geocli.runtime import mixed_precision, to_device
from geocli.training import scoring
from geocli.training.scoring import chance_recall, reference_head
from geocli.training.callbacks import Callback, TrainingDiverged, default_callbacks
from geocli.heads.labels import build_label_spaces, manifest_targets, trainable_heads
from geocli.training.data import load_splits, place_ids
from geocli.training.distributed import init_distributed, mean_over_ranks
from geocli.training.loaders import LoaderBuilder, Loaders, Split
from geocli.training.model_config import build_model_config
from geocli.training.optim import build_optimizer, build_scheduler, class_weights, step_scheduler
from geocli.store.run_folder import claim_out, find_run_folder, load_run_state

__all__ = ["TrainResult", "Trainer", "TrainingDiverged", "resume_settings", "train"]


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
    skipped: dict = field(default_factory=dict)  # shards: {"skipped": n, "skipped_examples": [records]}

    def summary(self) -> dict:
        last = self.history[-1] if self.history else {}
        return {"out": str(self.out), "epochs": self.epoch, "split": self.split, "world_size": self.world_size,
                "final": last, "baseline_centroid": self.baseline, "history": self.history, **self.skipped}


def resume_settings(folder) -> dict:
    """The ``TrainConfig`` dict a run folder was trained with (the base ``--resume`` merges onto)."""
    return dict(load_run_state(folder)["config"])


def train(cfg: TrainConfig, resume: str | None = None, log: Callable[[str], None] = default_log,
          progress: bool = True, force: bool = False, callbacks: Sequence[Callback] = ()) -> TrainResult:
    """Train per ``cfg`` (continuing the run folder ``resume`` when given, and writing there);
    returns the summary. ``force`` lets a fresh run replace an earlier geocli run at ``cfg.out``.
    ``callbacks`` hook into the loop after the trainer's own (``geocli.training.callbacks``)."""
    return Trainer(cfg, resume, log, progress, force, callbacks).run()


class Trainer:
    """One process's share of a run; callbacks read its state (``cfg``, ``model``, ``history``,
    ``epoch``, ``world``, ...) and the loop calls their hooks."""

    def __init__(self, cfg: TrainConfig, resume: str | None, log: Callable[[str], None], progress: bool,
                 force: bool = False, callbacks: Sequence[Callback] = ()):
        if resume is not None:  # a resume writes into the folder it was given, and only there
            cfg.out = str(resume)
        self.cfg, self.resume, self.force = cfg, resume, force
        self.world, self.device = init_distributed(cfg.device)
        self.log = log if self.world.is_main else (lambda line: None)
        self.progress = progress and self.world.is_main
        self.user_callbacks = list(callbacks)
        self.history: list[dict] = []
        self.start_epoch, self.epoch = 0, 0
        self.model = self.optimizer = self.scheduler = None
        self.references = None  # the reference index a retrieval head searched in the last scoring
        self.seen: list[int] = []
        self.callbacks: Callback = Callback()  # until set-up knows the model

    # ---- set-up ----
    def setup(self) -> None:
        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        self.train_m, self.val_m, self.split = load_splits(cfg, self.log)
        cfg.heads = trainable_heads(cfg.heads, self.train_m, self.log)
        self.log(f"{len(self.train_m)} training / {len(self.val_m)} validation images ({self.split} split)")
        state = load_run_state(self.resume) if self.resume else None
        self.model = self._build_model(state)
        self.callbacks = default_callbacks(self, self.user_callbacks)
        self.labels = self.model.config.labels
        self.cached = cacheable(self.model, cfg.cache)
        self.view = training_view(self.model, self.cached)
        self.train_t = manifest_targets(self.labels, self.train_m, cfg.heads)
        self.val_t = manifest_targets(self.labels, self.val_m, cfg.heads)
        searches = reference_head(self.model) is not None
        if searches or cfg.sampler == "places":
            self.train_t["place"] = place_ids(self.train_m, cfg.place_radius_km)
        builder = LoaderBuilder(self.model, cfg, self.world, self.device, self.log, self.progress)
        self.loaders: Loaders = builder.build(Split(self.train_m, self.train_t), Split(self.val_m, self.val_t),
                                              self.cached, train_eval=cfg.train_metrics or searches)
        self.optimizer = build_optimizer(self.view, cfg)
        self.scheduler = build_scheduler(self.optimizer, cfg)
        weights = cfg.class_weights == "inverse-frequency"
        self.weights = class_weights(self.model, self.train_t, self.device) if weights else {}
        if state is not None:
            self._restore(state)
        self.runner = self._wrap()

    def _build_model(self, state):
        from geocli.store.checkpoint import load_checkpoint

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

    # ---- the loop ----
    def run(self) -> TrainResult:
        from geocli.interrupt import GracefulInterrupt

        claimed = claim_out(self.cfg.out, self.force, resuming=self.resume is not None,  # before any work
                            elsewhere={"cache_dir": self.cfg.cache_dir, "root": self.cfg.root})
        if Path(self.cfg.out).is_symlink():
            self.cfg.out = str(claimed)
        with GracefulInterrupt() as self.interrupt, self._lock():
            try:
                self.setup()
                self.callbacks.on_train_start(self)
                for epoch in range(self.start_epoch, self.cfg.epochs):
                    self._one_epoch(epoch)
            except KeyboardInterrupt:
                self.callbacks.on_interrupt(self)
                raise
        result = self._result()
        self.callbacks.on_train_end(self, result)
        return result

    def _lock(self):
        """The run folder's lock, held by the process that writes it (rank 0)."""
        from contextlib import nullcontext

        from geocli.store.run_lock import RunLock

        return RunLock(self.cfg.out) if self.world.is_main else nullcontext()

    def _one_epoch(self, epoch: int) -> None:
        t0 = time.perf_counter()
        loss, n = self._train_epoch(epoch)
        seconds = time.perf_counter() - t0
        self.callbacks.before_validation(self, epoch + 1)
        val = self._score(self.loaders.val, self.val_m, sharded=True) if len(self.val_m) else {}
        step_scheduler(self.scheduler, val.get("loss"))
        self.epoch = epoch + 1
        row = {"epoch": self.epoch, "train_loss": loss, "img_per_s": n * self.world.size / max(seconds, 1e-9),
               "lr": self.optimizer.param_groups[0]["lr"], "val": val}
        if self.cfg.train_metrics:
            row["train"] = self._score(self.loaders.train_eval, self.train_m)
        self.history.append(row)
        self.callbacks.on_epoch_end(self, self.epoch, row)

    def _train_epoch(self, epoch: int) -> tuple[float, int]:
        self.loaders.sampler.set_epoch(epoch)
        self.view.train()
        total, n, self.seen = 0.0, 0, []
        with step_bar(self.progress, len(self.loaders.train), f"epoch {epoch + 1}/{self.cfg.epochs}") as bar:
            for batch in self.loaders.train:
                if self.interrupt.requested:
                    raise KeyboardInterrupt
                batch = to_device(batch, self.device)
                with mixed_precision(self.device, self.cfg.amp):
                    loss, _ = self.view.loss(self.runner(batch), batch, self.weights)
                self.optimizer.zero_grad(set_to_none=True)
                value = float(loss.detach())
                self.callbacks.on_batch_loss(self, epoch, value)
                (loss * batch.get("loss_scale", 1.0)).backward()  # shards under torchrun: see shard_loader
                self.optimizer.step()
                bar.update(1)
                if batch.get("replay"):  # a rank out of shards stepping with the others: seen already
                    continue
                size = len(batch["index"])
                total, n = total + value * size, n + size
                self.seen += batch["index"].tolist()
        return mean_over_ranks(total / max(n, 1), self.world, self.device), n

    def _score(self, loader, manifest, sharded: bool = False) -> dict:
        return scoring.score(self.view, loader, manifest, self.weights, self.device, self.cfg.amp,
                             self.references, self.world if sharded else None)

    # ---- output ----
    def _result(self) -> TrainResult:
        baseline = scoring.centroid_baseline(self.train_m.lat, self.train_m.lon, self.val_m.lat, self.val_m.lon)
        if self.references is not None and len(self.val_m):
            baseline["recall"] = chance_recall(self.train_m.lat, self.train_m.lon, self.val_m.lat, self.val_m.lon,
                                               self.cfg.seed)
        bad = self.loaders.skipped
        if bad is not None and len(bad):
            self.log(f"{len(bad)} photo(s) in the shards could not be used and were left out (each named above)")
        return TrainResult(Path(self.cfg.out), self.epoch, self.history, baseline, self.split,
                           self.world.size, list(self.seen), False, self.world.rank,
                           bad.summary() if bad is not None else {})
