"""Training callbacks: a user's callback sees every hook with the right epochs and rows, and
``BestCheckpoint`` keeps the best epoch by the value it monitors, either way round."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

import train_helpers as T
from geocli.errors import GeocliError, UsageError
from geocli.training.callbacks import BestCheckpoint, Callback
from geocli.store.run_folder import best_folder, load_run_state
from geocli.training.trainer import train


class Recorder(Callback):
    """Writes down every hook call."""

    def __init__(self):
        self.calls: list[tuple] = []
        self.batches: dict[int, int] = {}

    def on_train_start(self, trainer):
        self.calls.append(("start", len(trainer.history)))
        self.steps = len(trainer.loaders.train)

    def on_batch_loss(self, trainer, epoch, loss):
        self.batches[epoch] = self.batches.get(epoch, 0) + 1

    def before_validation(self, trainer, epoch):
        self.calls.append(("before_validation", epoch))

    def on_epoch_end(self, trainer, epoch, row):
        self.calls.append(("epoch_end", epoch, row, trainer.history[-1] is row))

    def on_train_end(self, trainer, result):
        self.calls.append(("end", result))


class Scripted(Callback):
    """Puts a chosen number under ``row["custom"]`` and keeps a copy of the weights at each epoch end."""

    def __init__(self, values: dict[int, float]):
        self.values, self.weights = values, {}

    def on_epoch_end(self, trainer, epoch, row):
        row["custom"] = self.values[epoch]
        self.weights[epoch] = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


def _config(tmp_path, **overrides):
    return T.tiny_config(tmp_path, heads=["country"], **overrides)


def test_a_user_callback_gets_every_hook_with_its_epoch_and_row(tmp_path):
    recorder = Recorder()
    result = train(_config(tmp_path, epochs=2), progress=False, callbacks=[recorder])
    assert recorder.calls[0] == ("start", 0)
    middle = recorder.calls[1:-1]
    assert [c[:2] for c in middle] == [("before_validation", 1), ("epoch_end", 1),
                                      ("before_validation", 2), ("epoch_end", 2)]
    rows = [c[2] for c in middle if c[0] == "epoch_end"]
    assert rows == result.history and [r["epoch"] for r in rows] == [1, 2]
    assert all(c[3] for c in middle if c[0] == "epoch_end")  # the row is the last of the history
    assert recorder.calls[-1] == ("end", result)
    assert recorder.steps >= 2 and recorder.batches == {0: recorder.steps, 1: recorder.steps}  # every batch's loss


class StopAfter(Recorder):
    """Presses Ctrl-C when epoch ``epoch`` ends, and writes down the interrupt."""

    def __init__(self, epoch):
        super().__init__()
        self.stop = epoch

    def on_epoch_end(self, trainer, epoch, row):
        if epoch == self.stop:
            raise KeyboardInterrupt

    def on_interrupt(self, trainer):
        self.calls.append(("interrupt", trainer.epoch))


def test_an_interrupt_reaches_the_callbacks_and_the_run_is_saved(tmp_path):
    stopper = StopAfter(2)
    with pytest.raises(KeyboardInterrupt):
        train(_config(tmp_path, epochs=3), progress=False, callbacks=[stopper])
    assert stopper.calls[-1] == ("interrupt", 2) and not any(c[0] == "end" for c in stopper.calls)
    state = load_run_state(tmp_path / "run")
    assert state["epoch"] == 2 and state["interrupted"] is True and len(state["history"]) == 2


def test_a_resumed_run_calls_back_from_the_epoch_after_the_saved_one(tmp_path):
    train(_config(tmp_path, epochs=1), progress=False)
    recorder = Recorder()
    result = train(_config(tmp_path, epochs=3), resume=str(tmp_path / "run"), progress=False, callbacks=[recorder])
    assert recorder.calls[0] == ("start", 1)  # the history it resumed
    assert [c[1] for c in recorder.calls if c[0] == "epoch_end"] == [2, 3] and result.epoch == 3


@pytest.mark.parametrize("mode,values,best", [("min", {1: 3.0, 2: 1.0, 3: 2.0}, 2),
                                              ("max", {1: 2.0, 2: 1.0, 3: 2.0}, 1)])
def test_best_checkpoint_keeps_the_best_epoch_by_its_monitor(tmp_path, mode, values, best):
    scripted, folder = Scripted(values), tmp_path / f"best-{mode}"
    keeper = BestCheckpoint(monitor="custom", mode=mode, folder=folder)
    train(_config(tmp_path, epochs=3), progress=False, callbacks=[scripted, keeper])
    doc = json.loads((folder / "config.json").read_text())
    assert doc["train"]["epoch"] == best  # max: the tie at epoch 3 keeps the earlier epoch
    assert doc["train"]["best"] == {"monitor": "custom", "mode": mode, "value": values[best]}
    saved = load_file(folder / "model.safetensors")
    kept, last = scripted.weights[best], scripted.weights[3]
    changed = [k for k in saved if not torch.equal(kept[k], last[k])]
    assert changed and all(torch.equal(saved[k], kept[k]) for k in saved)  # that epoch's weights, not the last
    assert not best_folder(tmp_path / "run").exists()  # the user's BestCheckpoint replaced the default


def test_best_checkpoint_on_a_real_score_either_way(tmp_path):
    keeper = BestCheckpoint(monitor="val.loss", mode="max", folder=tmp_path / "worst")
    result = train(_config(tmp_path, epochs=3, lr=5e-2), progress=False, callbacks=[keeper])
    losses = [row["val"]["loss"] for row in result.history]
    doc = json.loads((tmp_path / "worst" / "config.json").read_text())
    assert doc["train"]["epoch"] == 1 + losses.index(max(losses))
    assert doc["train"]["val"]["loss"] == max(losses) == doc["train"]["best"]["value"]


def test_a_resumed_best_checkpoint_remembers_the_epochs_before(tmp_path):
    folder = tmp_path / "best"
    train(_config(tmp_path, epochs=1), progress=False,
          callbacks=[Scripted({1: 1.0}), BestCheckpoint("custom", "min", folder)])
    train(_config(tmp_path, epochs=2), resume=str(tmp_path / "run"), progress=False,
          callbacks=[Scripted({2: 5.0}), BestCheckpoint("custom", "min", folder)])
    assert json.loads((folder / "config.json").read_text())["train"]["epoch"] == 1


def test_a_monitor_the_rows_lack_is_said_once_and_keeps_nothing(tmp_path):
    lines: list[str] = []
    train(_config(tmp_path, epochs=2), log=lines.append, progress=False,
          callbacks=[BestCheckpoint("val.nope", folder=tmp_path / "best")])
    warnings = [line for line in lines if "val.nope" in line]
    assert len(warnings) == 1 and "val.loss" in warnings[0] and not (tmp_path / "best").exists()


def test_best_checkpoint_options_are_checked(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("not geocli's")
    with pytest.raises(GeocliError, match="not a geocli folder"):  # refused before any training
        BestCheckpoint(folder=tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "not geocli's"
    with pytest.raises(UsageError, match="'min' or 'max'"):
        BestCheckpoint(mode="lowest")
    with pytest.raises(UsageError, match="monitor"):
        BestCheckpoint(monitor=())
    keeper = BestCheckpoint(monitor=("val.median_km", "val.loss"))
    assert keeper.value({"val": {"loss": 2.0}}) == ("val.loss", 2.0)
    assert keeper.value({"val": {"median_km": 7.5, "loss": 2.0}}) == ("val.median_km", 7.5)
    assert keeper.value({"val": {}}) is None
