"""``geocli train`` replaces only what geocli made: existing folders, the data folder, ``--out .``,
``OUT-best``, ``--force``, ``--resume`` into a copy, two trainings at once, a folder changed while
training runs, a full disk while saving."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import hostile_corpus as H
import train_helpers as T
from geocli.errors import GeocliError
from geocli.store.owned_folder import MARKER
from geocli.store.run_folder import load_run_state


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """A finished one-epoch tiny run folder (copy it before tampering)."""
    from geocli.training.trainer import train

    tmp = tmp_path_factory.mktemp("run")
    return train(T.tiny_config(tmp, epochs=1), progress=False).out


def _config_file(tmp_path: Path, **overrides) -> Path:
    cfg = T.tiny_config(tmp_path, **overrides)
    path = tmp_path / "train.json"
    path.write_text(json.dumps(cfg.to_dict()))
    return path


def _train(tmp_path: Path, *args, **overrides) -> H.CliResult:
    return H.run_cli(["train", "--config", _config_file(tmp_path, **overrides), "--format", "json", *args])


def _one_error(result: H.CliResult) -> str:
    assert result.code == 2 and "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith(("geocli: error: ", "Error: "))]
    assert len(errors) == 1, result.stderr
    assert "epoch" not in result.stderr.replace(errors[0], ""), "refused only after training started"
    return errors[0]


def _snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_data_folder_as_out_is_refused_and_kept(tmp_path):
    data = tmp_path / "data"
    T.make_manifest(data)
    before = _snapshot(data)
    line = _one_error(_train(tmp_path, "--out", data))
    assert "is not a geocli folder" in line
    assert _snapshot(data) == before


def test_force_never_replaces_a_folder_geocli_did_not_make(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    assert "is not a geocli folder" in _one_error(_train(tmp_path, "--out", mine, "--force"))
    assert (mine / "thesis.tex").read_text() == "years of work"


def test_a_foreign_best_folder_is_refused(tmp_path):
    best = tmp_path / "fresh-best"
    best.mkdir()
    (best / "holiday.jpg").write_bytes(b"\xff\xd8")
    assert "fresh-best" in _one_error(_train(tmp_path, "--out", tmp_path / "fresh"))
    assert (best / "holiday.jpg").read_bytes() == b"\xff\xd8" and not (tmp_path / "fresh").exists()


def test_a_file_as_out_is_refused(tmp_path):
    (tmp_path / "run").write_text("a file")
    result = _train(tmp_path, "--out", tmp_path / "run")
    assert result.code == 2 and "Traceback" not in result.stderr
    assert (tmp_path / "run").read_text() == "a file"


@pytest.mark.parametrize("where", ["empty", "data"])
def test_out_dot_is_one_line(tmp_path, monkeypatch, where):
    folder = tmp_path / "here"
    folder.mkdir()
    if where == "data":
        (folder / "photo.jpg").write_bytes(b"\xff\xd8")
    config = _config_file(tmp_path)
    monkeypatch.chdir(folder)
    line = _one_error(H.run_cli(["train", "--config", config, "--out", "."]))
    assert "the folder you are in" in line
    assert folder.is_dir() and ((folder / "photo.jpg").exists() or where == "empty")


def test_an_earlier_run_needs_force_or_resume(trained_run, tmp_path):
    run = Path(shutil.copytree(trained_run, tmp_path / "run"))
    line = _one_error(_train(tmp_path, "--out", run))
    assert "earlier geocli run" in line and "--resume" in line and "--force" in line
    assert (run / MARKER).is_file() and load_run_state(run)["epoch"] == 1


def test_force_replaces_an_earlier_geocli_run(trained_run, tmp_path):
    run = Path(shutil.copytree(trained_run, tmp_path / "run"))
    old_inode = (run / "model.safetensors").stat().st_ino
    result = _train(tmp_path, "--out", run, "--overwrite", epochs=1)
    assert result.code == 0, result.stderr
    assert (run / "model.safetensors").stat().st_ino != old_inode and (run / MARKER).is_file()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no twins, no lock


def test_a_run_holding_user_files_is_not_replaced(trained_run, tmp_path):
    run = Path(shutil.copytree(trained_run, tmp_path / "run"))
    (run / "notes.md").write_text("what I tried")
    line = _one_error(H.run_cli(["train", "--resume", run, "--epochs", "2"]))
    assert "holds files geocli did not write (notes.md)" in line
    assert (run / "notes.md").read_text() == "what I tried"


def test_resume_writes_into_the_copy_it_was_given(trained_run, tmp_path):
    original = Path(shutil.copytree(trained_run, tmp_path / "a"))
    copy = Path(shutil.copytree(original, tmp_path / "b"))
    before = _snapshot(original)
    result = H.run_cli(["train", "--resume", copy, "--epochs", "2", "--format", "json"])
    assert result.code == 0, result.stderr
    assert load_run_state(copy)["epoch"] == 2 and load_run_state(copy)["config"]["out"] == str(copy)
    assert _snapshot(original) == before  # the run the copy was made from is untouched
    assert json.loads(result.stdout)["out"] == str(copy)


def test_resume_with_another_out_is_refused(trained_run, tmp_path):
    run = Path(shutil.copytree(trained_run, tmp_path / "run"))
    line = _one_error(H.run_cli(["train", "--resume", run, "--out", tmp_path / "other", "--epochs", "2"]))
    assert "--resume" in line and not (tmp_path / "other").exists()


def test_a_run_from_before_the_marker_still_resumes(trained_run, tmp_path):
    run = Path(shutil.copytree(trained_run, tmp_path / "run"))
    (run / MARKER).unlink()
    result = H.run_cli(["train", "--resume", run, "--epochs", "2"])
    assert result.code == 0, result.stderr
    assert (run / MARKER).is_file()


def test_a_second_training_into_one_out_is_refused_while_the_first_holds_it(tmp_path):
    """Another process holds the lock (an flock, as a running training does)."""
    out = tmp_path / "run"
    lock = tmp_path / ".run.lock"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, json, os, socket, sys, time\n"
        f"f = open({str(lock)!r}, 'w'); fcntl.flock(f, fcntl.LOCK_EX)\n"
        "f.write(json.dumps({'pid': os.getpid(), 'host': socket.gethostname(), 'started': 'now'})); f.flush()\n"
        "print('held', flush=True); time.sleep(120)\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        line = _one_error(_train(tmp_path, "--out", out))
        assert f"process {holder.pid} on" in line and "another training" in line
        assert not out.exists()
    finally:
        holder.kill()
        holder.wait()


def test_a_stale_lock_from_a_killed_run_does_not_block(tmp_path):
    """A lock file left by a process that died (SIGKILL: no cleanup) holds no flock: taken over."""
    from geocli.store.run_lock import RunLock

    lock = tmp_path / ".run.lock"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock.write_text(json.dumps({"pid": int(dead.stdout), "host": os.uname().nodename, "started": "then"}))
    with RunLock(tmp_path / "run") as held:
        assert json.loads(lock.read_text())["pid"] == os.getpid()
        with pytest.raises(GeocliError, match=f"process {os.getpid()} on"):
            RunLock(tmp_path / "run").acquire()
        assert held.fd is not None
    assert not lock.exists()


def test_stale_detection_without_flock(tmp_path, monkeypatch):
    """On file systems without flock the record decides: a dead pid here is stale, another host's is not."""
    import socket

    from geocli.store import run_lock

    monkeypatch.setattr(run_lock, "fcntl", None)
    lock = tmp_path / ".run.lock"
    lock.write_text(json.dumps({"pid": 2 ** 22 + 12345, "host": socket.gethostname(), "started": "then"}))
    with run_lock.RunLock(tmp_path / "run"):
        pass
    lock.write_text(json.dumps({"pid": 1, "host": "elsewhere.example", "started": "then"}))
    with pytest.raises(GeocliError, match="elsewhere.example.*delete"):
        run_lock.RunLock(tmp_path / "run").acquire()


def test_a_folder_replaced_while_training_is_not_deleted(trained_run, tmp_path):
    """Between the start check and a save the user puts their own folder at OUT: the save refuses."""
    from geocli.store.checkpoint import load_checkpoint, save_checkpoint

    model = load_checkpoint(trained_run)
    target = tmp_path / "ckpt"
    save_checkpoint(model, target)
    shutil.rmtree(target)
    target.mkdir()
    (target / "mine.txt").write_text("mine")
    with pytest.raises(GeocliError, match="not a geocli folder"):
        save_checkpoint(model, target)
    assert (target / "mine.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]  # nothing half-written left


def test_a_file_dropped_into_the_old_folder_during_the_swap_survives(trained_run, tmp_path, monkeypatch):
    from geocli.store import owned_folder
    from geocli.store.checkpoint import load_checkpoint, save_checkpoint

    model = load_checkpoint(trained_run)
    target = tmp_path / "ckpt"
    save_checkpoint(model, target)
    real_rename = Path.rename

    def rename(self, new):
        out = real_rename(self, new)
        if ".old-" in str(new):
            (Path(new) / "late.txt").write_text("arrived during the save")
        return out

    monkeypatch.setattr(Path, "rename", rename)
    save_checkpoint(model, target)
    leftovers = [p for p in tmp_path.iterdir() if ".old-" in p.name]
    assert len(leftovers) == 1 and (leftovers[0] / "late.txt").read_text() == "arrived during the save"
    assert sorted(p.name for p in leftovers[0].iterdir()) == ["late.txt"]  # only geocli's files went
    assert owned_folder.replace_problem(target) is None


def test_a_full_disk_while_saving_keeps_the_previous_epoch(tmp_path, monkeypatch):
    from safetensors import SafetensorError

    import safetensors.torch

    real = safetensors.torch.save_model

    def save_model(model, path, *args, **kwargs):
        if ".run.staging" in str(path) and (tmp_path / "run").exists():  # epoch 2's save of the run
            raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
        return real(model, path, *args, **kwargs)

    monkeypatch.setattr(safetensors.torch, "save_model", save_model)
    result = _train(tmp_path, epochs=3)
    assert result.code == 2 and "Traceback" not in result.stderr, result.stderr
    assert "cannot save" in result.stderr and "No space left on device" in result.stderr
    assert "the previous save there is intact" in result.stderr
    out = tmp_path / "run"
    assert load_run_state(out)["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def _mount_tmpfs(folder: Path, size_kb: int) -> bool:
    folder.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(folder)],
                          capture_output=True)
    return done.returncode == 0


def test_a_really_full_disk_while_saving(tmp_path, trained_run):
    """A tmpfs with room for one run folder, not two: the second save hits ENOSPC for real."""
    size_kb = sum(p.stat().st_size for p in trained_run.iterdir()) // 1024
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, int(size_kb * 1.5) + 8):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        result = _train(tmp_path, "--out", disk / "run", epochs=3)
        assert result.code == 2 and "Traceback" not in result.stderr, result.stderr
        assert "No space left on device" in result.stderr
        assert load_run_state(disk / "run")["epoch"] == 1
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_a_link_to_a_photo_folder_as_out_is_refused(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.jpg").write_bytes(b"\xff\xd8")
    (tmp_path / "link").symlink_to(photos)
    assert "not a geocli folder" in _one_error(_train(tmp_path, "--out", tmp_path / "link"))
    assert (photos / "a.jpg").exists() and (tmp_path / "link").is_symlink()


def test_a_best_folder_that_is_a_link_is_refused(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "run-best").symlink_to(tmp_path / "elsewhere")
    assert "is a symbolic link" in _one_error(_train(tmp_path, "--out", tmp_path / "run"))


def test_a_cache_inside_the_run_folder_is_refused(tmp_path):
    line = _one_error(_train(tmp_path, "--out", tmp_path / "run", "--cache-dir", tmp_path / "run" / "cache"))
    assert "--cache-dir" in line and "inside --out" in line
    assert not (tmp_path / "run").exists()


def test_the_twin_of_an_interrupted_save_counts_as_an_earlier_run(trained_run, tmp_path):
    """A kill mid-swap leaves only ``.run.old-XXXX``: a fresh run must not silently discard it."""
    shutil.copytree(trained_run, tmp_path / ".run.old-0123abcd")
    line = _one_error(_train(tmp_path, "--out", tmp_path / "run"))
    assert "earlier geocli run" in line and (tmp_path / ".run.old-0123abcd" / "train_state.json").is_file()


def test_leftovers_of_killed_saves_go_once_a_save_succeeds(trained_run, tmp_path):
    shutil.copytree(trained_run, tmp_path / ".run.old-0123abcd")
    (tmp_path / ".run.staging-deadbeef").mkdir()
    (tmp_path / ".run-best.x1y2.tmp").mkdir()
    foreign = tmp_path / ".run.old-feedface"
    foreign.mkdir()
    (foreign / "mine.txt").write_text("not geocli's")
    result = _train(tmp_path, "--out", tmp_path / "run", "--force", epochs=1)
    assert result.code == 0, result.stderr
    hidden = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("."))
    assert hidden == [".run.old-feedface"] and (foreign / "mine.txt").read_text() == "not geocli's"
