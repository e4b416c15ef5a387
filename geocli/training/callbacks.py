"""Hooks into the training loop, and the variations of a run written as callbacks.

A callback subclasses ``Callback`` and overrides any of its hooks; ``train(cfg, callbacks=[...])``
runs it among the trainer's own (``default_callbacks``: after the log line, before saving). Epochs are counted from 1: the epoch a hook
is given is the number of epochs completed, the row's ``"epoch"``. Under torchrun every process
calls the hooks; a callback that writes files checks ``trainer.world.is_main``.

The trainer's own: ``DivergenceCheck`` (a loss that is no number stops the run), ``ReferenceRefresh``
(retrieval heads search the training photos re-encoded each epoch), ``EpochLog`` (the epoch's log
line), ``SaveRun`` (the run folder after every epoch and on Ctrl-C, so ``--resume`` always has a
complete checkpoint) and ``BestCheckpoint`` (the best epoch so far as a plain checkpoint, Lightning's
``ModelCheckpoint(monitor=)``).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import torch

from geocli.errors import GeocliError, UsageError


class TrainingDiverged(GeocliError):
    """The loss or the weights stopped being finite numbers: nothing more is saved."""


class Callback:
    """Base of every training callback: each hook does nothing until overridden."""

    def on_train_start(self, trainer) -> None:
        """Set-up is done (model, loaders, a resumed run's history); no epoch has run yet."""

    def on_batch_loss(self, trainer, epoch: int, loss: float) -> None:
        """A training batch of epoch ``epoch`` (0-based, the one running) gave ``loss``, before the
        step; raising stops the run with the weights of the last step."""

    def before_validation(self, trainer, epoch: int) -> None:
        """Epoch ``epoch``'s training steps are done (epochs completed, counting this one); it is
        scored next."""

    def on_epoch_end(self, trainer, epoch: int, row: dict) -> None:
        """Epoch ``epoch`` is scored and ``row`` (its ``"epoch"``, losses, ``"val"`` scores,
        throughput, lr) is the last of ``trainer.history``."""

    def on_interrupt(self, trainer) -> None:
        """Ctrl-C or SIGTERM: the run stops after this (``trainer.epoch`` epochs completed)."""

    def on_train_end(self, trainer, result) -> None:
        """The last epoch is done; ``result`` is the ``TrainResult`` ``train`` returns."""


class Callbacks(Callback):
    """Several callbacks called in turn, in their order."""

    def __init__(self, callbacks: Sequence[Callback]):
        self.callbacks = list(callbacks)

    def on_train_start(self, trainer) -> None:
        for c in self.callbacks:
            c.on_train_start(trainer)

    def on_batch_loss(self, trainer, epoch: int, loss: float) -> None:
        for c in self.callbacks:
            c.on_batch_loss(trainer, epoch, loss)

    def before_validation(self, trainer, epoch: int) -> None:
        for c in self.callbacks:
            c.before_validation(trainer, epoch)

    def on_epoch_end(self, trainer, epoch: int, row: dict) -> None:
        for c in self.callbacks:
            c.on_epoch_end(trainer, epoch, row)

    def on_interrupt(self, trainer) -> None:
        for c in self.callbacks:
            c.on_interrupt(trainer)

    def on_train_end(self, trainer, result) -> None:
        for c in self.callbacks:
            c.on_train_end(trainer, result)


def default_callbacks(trainer, user: Sequence[Callback] = ()) -> Callbacks:
    """The trainer's callbacks with ``user``'s between the measuring and the saving ones, so what a
    user's callback adds to the epoch row is saved in the history and can be monitored. A
    ``BestCheckpoint`` among ``user``'s takes the place of the default one (val median km, else
    val loss, into ``OUT-best``)."""
    from geocli.training.scoring import reference_head

    first: list[Callback] = [DivergenceCheck()]
    if reference_head(trainer.model) is not None:
        first.append(ReferenceRefresh())
    first.append(EpochLog())
    last: list[Callback] = [SaveRun()]
    if not any(isinstance(c, BestCheckpoint) for c in user):
        last.append(BestCheckpoint())
    return Callbacks(first + list(user) + last)


class DivergenceCheck(Callback):
    """A training loss that is infinite or NaN stops the run before it reaches the weights; the run
    folder keeps the last complete epoch."""

    def on_batch_loss(self, trainer, epoch: int, loss: float) -> None:
        if math.isfinite(loss):
            return
        kept = (f"{trainer.cfg.out} keeps epoch {trainer.epoch}" if trainer.epoch > trainer.start_epoch
                or trainer.resume else "nothing was saved")
        raise TrainingDiverged(f"the training loss became {loss} in epoch {epoch + 1}; stopped without saving "
                               f"it ({kept}); try a lower --lr (now {trainer.cfg.lr:g})")


class ReferenceRefresh(Callback):
    """Retrieval heads: the training photos re-encoded with this epoch's weights become the
    reference index they search (on every process) before the epoch is scored."""

    def before_validation(self, trainer, epoch: int) -> None:
        from geocli.training.scoring import refresh_references

        train = trainer.train_m
        trainer.references = refresh_references(trainer.view, trainer.loaders.train_eval, train.lat, train.lon,
                                                 trainer.device)


class EpochLog(Callback):
    """One log line per epoch: losses, distances, country accuracy, recall, throughput."""

    def on_epoch_end(self, trainer, epoch: int, row: dict) -> None:
        from geocli.training.scoring import epoch_line

        trainer.log(epoch_line(row, trainer.cfg.epochs))


class SaveRun(Callback):
    """The run folder (checkpoint + what ``--resume`` needs), replaced after every epoch and
    written on Ctrl-C; weights that are no longer finite are never saved over it."""

    def on_epoch_end(self, trainer, epoch: int, row: dict) -> None:
        from geocli.store.run_folder import remove_leftovers

        self.save(trainer)
        if trainer.world.is_main:
            remove_leftovers(trainer.cfg.out)

    def on_interrupt(self, trainer) -> None:
        if self.save(trainer, interrupted=True):
            trainer.log(f"interrupted: saved the model after {trainer.epoch} epoch(s) to {trainer.cfg.out}; "
                        f"continue with: geocli train --resume {trainer.cfg.out}")

    def save(self, trainer, interrupted: bool = False) -> bool:
        """Write the run folder (rank 0, once the model and optimiser exist); whether it did."""
        from geocli.store.run_folder import save_run

        if trainer.model is None or trainer.optimizer is None or not trainer.world.is_main:
            return False
        cfg = trainer.cfg
        _check_finite(trainer.model, cfg)
        state = {"epoch": trainer.epoch, "config": cfg.to_dict(), "history": trainer.history,
                 "optimizer": trainer.optimizer.state_dict(), "rng": torch.get_rng_state(),
                 "scheduler": trainer.scheduler.state_dict() if trainer.scheduler is not None else {},
                 "interrupted": interrupted}
        extra = {"train": {"config": cfg.to_dict(), "epoch": trainer.epoch, "split": trainer.split,
                           "history": trainer.history, "interrupted": interrupted}}
        save_run(trainer.model, cfg.out, state, extra)
        return True


def _check_finite(model, cfg) -> None:
    bad = next((n for n, p in model.state_dict().items() if p.is_floating_point() and not torch.isfinite(p).all()),
               None)
    if bad is not None:
        raise TrainingDiverged(f"the model's weights are no longer finite ({bad}); not saving them over "
                               f"{cfg.out}; try a lower --lr (now {cfg.lr:g})")


#: What the default ``BestCheckpoint`` watches: validation median km for models that yield
#: locations, else (class-only models) validation loss.
DEFAULT_MONITOR = ("val.median_km", "val.loss")


class BestCheckpoint(Callback):
    """Keep the best epoch so far as a plain checkpoint that predict and eval load (later epochs
    may overfit): ``OUT-best`` beside the run folder unless ``folder`` names another.

    ``monitor``: a key of the epoch row, dots going into nested dicts (``"val.median_km"``,
    ``"val.recall.recall@1"``, ``"train_loss"``), or a tuple of keys: the first the row has.
    ``mode``: ``"min"`` or ``"max"``, which way is better. A tie keeps the earlier epoch; a resumed
    run compares with the epochs before the resume too. The checkpoint's ``config.json`` says under
    ``train.best`` which value made it best.
    """

    def __init__(self, monitor: str | Sequence[str] = DEFAULT_MONITOR, mode: str = "min",
                 folder: str | Path | None = None):
        if mode not in ("min", "max"):
            raise UsageError(f"BestCheckpoint mode is 'min' or 'max', not {mode!r}")
        self.monitor = (monitor,) if isinstance(monitor, str) else tuple(monitor)
        if not self.monitor or not all(isinstance(k, str) and k for k in self.monitor):
            raise UsageError("BestCheckpoint monitor names a key of the epoch row, such as 'val.median_km'")
        self.mode, self.folder = mode, folder
        if folder is not None:  # before any work (OUT-best is checked with OUT); saving checks again
            from geocli.store.owned_folder import check_replaceable

            check_replaceable(Path(folder))
        self.best: float | None = None
        self._warned = False

    def value(self, row: dict) -> tuple[str, float] | None:
        """(the key found, its value) of the first monitored key ``row`` has a number for."""
        for key in self.monitor:
            value = _lookup(row, key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                return key, float(value)
        return None

    def better(self, value: float, than: float | None) -> bool:
        return than is None or (value < than if self.mode == "min" else value > than)

    def target(self, trainer) -> Path:
        from geocli.store.run_folder import best_folder

        return Path(self.folder) if self.folder is not None else best_folder(trainer.cfg.out)

    def on_train_start(self, trainer) -> None:
        target = self.target(trainer)
        if target.absolute() == Path(trainer.cfg.out).absolute():
            raise UsageError(f"BestCheckpoint folder {self.folder} is the run folder itself; name another")
        self.best = None
        for row in trainer.history:  # a resumed run: the epochs before it count
            found = self.value(row)
            if found is not None and self.better(found[1], self.best):
                self.best = found[1]

    def on_epoch_end(self, trainer, epoch: int, row: dict) -> None:
        if not trainer.world.is_main:
            return
        target = self.target(trainer)
        if trainer.resume is None and epoch == 1 and target.is_dir():
            from geocli.store.owned_folder import remove_own

            remove_own(target)  # a fresh run (--force over an earlier one) leaves no earlier best behind
        found = self.value(row)
        if found is None:
            self._warn_missing(trainer, row)
            return
        if not self.better(found[1], self.best):
            return
        from geocli.store.checkpoint import save_checkpoint

        self.best = found[1]
        best = {"monitor": found[0], "mode": self.mode, "value": found[1]}
        extra = {"train": {"config": trainer.cfg.to_dict(), "epoch": epoch, "split": trainer.split,
                           "val": row["val"], "best": best}}
        save_checkpoint(trainer.model, target, extra)

    def _warn_missing(self, trainer, row: dict) -> None:
        if row.get("val") and not self._warned:
            self._warned = True
            keys = ", ".join(sorted(_keys(row)))
            trainer.log(f"warning: keeping the best epoch by {' or '.join(self.monitor)}, which the epoch rows do "
                        f"not have (they have {keys}); no best checkpoint is kept")


def best_score(row: dict) -> float | None:
    """The value the default ``BestCheckpoint`` ranks ``row`` by (lower is better)."""
    found = BestCheckpoint().value(row)
    return None if found is None else found[1]


def _lookup(row: dict, key: str):
    value = row
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _keys(row: dict, prefix: str = "") -> list[str]:
    """Every dotted key of ``row`` that holds a number."""
    keys = []
    for name, value in row.items():
        if isinstance(value, dict):
            keys += _keys(value, f"{prefix}{name}.")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            keys.append(f"{prefix}{name}")
    return keys
