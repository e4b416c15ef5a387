"""geocli train --data SHARDS: streamed epochs that see every training sample once, the checkpoint
it writes, bad photos recorded while training goes on, resume without repeating an epoch, and two
gloo ranks reading disjoint shards."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch.multiprocessing as mp
from click.testing import CliRunner

import shard_train_helpers as S
import train_helpers as T
from geocli.cli.main import cli
from geocli.errors import UsageError
from geocli.training.callbacks import Callback
from geocli.store.run_folder import load_run_state
from geocli.training.trainer import train
from ports import free_port


class EpochSeen(Callback):
    """The training indices this rank saw in each epoch, in order."""

    def __init__(self):
        self.epochs: dict[int, list[int]] = {}

    def on_epoch_end(self, trainer, epoch: int, row: dict) -> None:
        self.epochs[epoch] = list(trainer.seen)


class StopIn(Callback):
    """Ctrl-C in the middle of epoch ``epoch`` (0-based), after ``after`` batches."""

    def __init__(self, epoch: int, after: int = 2):
        self.epoch, self.after, self.batches = epoch, after, 0

    def on_batch_loss(self, trainer, epoch: int, loss: float) -> None:
        if epoch == self.epoch:
            self.batches += 1
            if self.batches > self.after:
                raise KeyboardInterrupt


def shard_config(tmp_path: Path, **overrides):
    if not (tmp_path / "shards").is_dir():
        S.write_manifest_shards(tmp_path)
    settings = dict(data=str(tmp_path / "shards"), val_fraction=0.25, batch_size=4, shuffle_buffer=6)
    return T.tiny_config(tmp_path, **{**settings, **overrides})


def test_train_from_shards_on_the_command_line_writes_a_checkpoint_that_predicts(tmp_path):
    _, folder = S.write_manifest_shards(tmp_path)
    args = ["train", "--data", f"{folder}/{{000000..000005}}.tar", "--out", str(tmp_path / "run"),
            "--rgb-model", "vit_tiny_patch16_224", "--config", str(_tiny_vit(tmp_path)), "--epochs", "2",
            "--val-fraction", "0.25", "--shuffle-buffer", "5", "--cache-dir", str(tmp_path / "cache"),
            "--format", "json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["split"] == "group-hash" and summary["epochs"] == 2 and summary["skipped"] == 0
    assert summary["final"]["val"]["n"] + 42 >= 54 and summary["final"]["val"]["median_km"] is not None
    predicted = CliRunner().invoke(cli, ["predict", str(tmp_path / "data" / "img" / "r0_l0_v0.png"), "--model",
                                         str(tmp_path / "run"), "--format", "json", "--no-evidence"])
    assert predicted.exit_code == 0, predicted.output
    assert json.loads(predicted.stdout)[0]["predictions"]


@pytest.mark.parametrize("workers", [0, 2])
def test_every_training_sample_is_seen_once_per_epoch_in_a_new_order(tmp_path, workers):
    seen = EpochSeen()
    cfg = shard_config(tmp_path, epochs=2, num_workers=workers)
    result = train(cfg, progress=False, callbacks=[seen])
    n_train = 54 - result.history[-1]["val"]["n"]
    assert [sorted(s) for s in seen.epochs.values()] == [list(range(n_train))] * 2
    assert seen.epochs[1] != seen.epochs[2]  # each epoch its own shard order and shuffle


def test_a_photo_that_cannot_be_decoded_is_recorded_once_and_training_goes_on(tmp_path):
    lines = []
    cfg = shard_config(tmp_path, epochs=2)
    bad_key = S.add_broken_shard(tmp_path / "shards", lat=48.85, lon=2.35)
    result = train(cfg, progress=False, log=lines.append)
    skipped = [line for line in lines if line.startswith("skipped: ")]
    assert len(skipped) == 1 and bad_key in skipped[0] and "Traceback" not in "".join(lines)
    assert result.skipped["skipped"] == 1 and result.skipped["skipped_examples"][0]["key"] == bad_key
    assert result.epoch == 2 and any("could not be used" in line for line in lines)


def test_resume_after_an_interrupt_continues_without_repeating_a_finished_epoch(tmp_path):
    whole = EpochSeen()
    train(shard_config(tmp_path, epochs=3, out=str(tmp_path / "whole")), progress=False, callbacks=[whole])
    cfg = shard_config(tmp_path, epochs=3)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, progress=False, callbacks=[StopIn(epoch=1)])
    assert load_run_state(cfg.out)["epoch"] == 1
    resumed, lines = EpochSeen(), []
    result = train(shard_config(tmp_path, epochs=3), resume=cfg.out, progress=False, callbacks=[resumed],
                   log=lines.append)
    assert [row["epoch"] for row in result.history] == [1, 2, 3]
    assert sorted(resumed.epochs) == [2, 3]  # epoch 1 is not trained again
    assert resumed.epochs == {e: whole.epochs[e] for e in (2, 3)}  # each epoch's own order, as uninterrupted
    assert any("resuming" in line and "after epoch 1" in line for line in lines)


def test_what_a_stream_cannot_do_is_refused_before_work(tmp_path):
    with pytest.raises(UsageError, match="--sampler uniform"):
        train(shard_config(tmp_path, sampler="class-balanced"), progress=False)
    csv = tmp_path / "data" / "manifest.csv"
    with pytest.raises(UsageError, match="both as shards"):
        train(shard_config(tmp_path, val=str(csv)), progress=False)
    assert not (tmp_path / "run" / "config.json").exists()


def test_val_shards_are_the_whole_validation_set(tmp_path):
    cfg = shard_config(tmp_path, epochs=1)
    cfg.val = str(tmp_path / "shards" / "000000.tar")
    result = train(cfg, progress=False)
    assert result.split.startswith("--val") and result.history[-1]["val"]["n"] == 9


def _tiny_vit(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps({"branch_options": {"rgb": T.TINY_VIT}, "batch_size": 4, "lr": 1e-2}))
    return path


def _saved_epoch(out: str) -> int:
    try:
        return int(load_run_state(out)["epoch"])
    except Exception:  # not written yet, or caught mid-swap
        return 0


@pytest.mark.slow
def test_two_gloo_ranks_train_on_disjoint_shards_and_score_the_whole_validation_set(tmp_path):
    cfg = shard_config(tmp_path, epochs=2, out=str(tmp_path / "ddp"))
    mp.spawn(T.ddp_worker, args=(2, free_port(), str(tmp_path), cfg.to_dict()), nprocs=2, join=True)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    seen = [set(r["seen"]) for r in ranks]
    n_val = ranks[0]["history"][-1]["val"]["n"]
    assert seen[0] and seen[1] and not seen[0] & seen[1]
    assert sorted(ranks[0]["seen"] + ranks[1]["seen"]) == list(range(54 - n_val))  # together: every sample once
    assert ranks[0]["history"][-1]["val"] == ranks[1]["history"][-1]["val"]  # gathered across ranks
    assert ranks[0]["history"][-1]["train_loss"] == pytest.approx(ranks[1]["history"][-1]["train_loss"])


@pytest.mark.slow
def test_a_killed_run_on_shards_resumes_after_its_last_saved_epoch(tmp_path):
    cfg = shard_config(tmp_path, epochs=30)
    (tmp_path / "cfg.json").write_text(json.dumps(cfg.to_dict()))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    run = subprocess.Popen([sys.executable, "-m", "geocli", "train", "--config", str(tmp_path / "cfg.json")],
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and _saved_epoch(cfg.out) < 2:
        time.sleep(0.2)
    run.send_signal(signal.SIGKILL)
    run.wait()
    done = load_run_state(cfg.out)["epoch"]
    assert 2 <= done < 30
    resumed = EpochSeen()
    result = train(shard_config(tmp_path, epochs=done + 2), resume=cfg.out, progress=False, callbacks=[resumed])
    assert sorted(resumed.epochs) == [done + 1, done + 2]
    assert [row["epoch"] for row in result.history] == list(range(1, done + 3))


def test_a_live_branch_decodes_and_augments_the_streamed_photos(tmp_path):
    seen = EpochSeen()
    cfg = shard_config(tmp_path, epochs=1, trainable="finetune")
    result = train(cfg, progress=False, callbacks=[seen])
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.safetensors"))
    assert sorted(seen.epochs[1]) == list(range(54 - result.history[-1]["val"]["n"]))
