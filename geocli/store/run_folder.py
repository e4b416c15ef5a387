"""A training run's folder: a checkpoint (``config.json`` + ``model.safetensors``) that predict and
eval load as is, plus what ``--resume`` needs: ``train_state.json`` (epoch, settings, history,
optimizer hyper-parameters, scheduler) and ``train_state.safetensors`` (optimizer moments, RNG).

No pickle anywhere: the optimizer's state dict is split into its tensors (safetensors) and its
plain numbers (JSON). The whole folder is staged under a temporary name and swapped in at once, so
a kill at any moment leaves the previous complete folder (or, for a split second, its ``.old-``
twin beside it, which ``find_run_folder`` also accepts).

A run writes only where it may (``claim_out``, before any work): a missing or empty folder, or,
with ``force`` or when resuming, a folder geocli made (``geocli.store.owned_folder``); the same for
``OUT-best``. ``RunLock`` keeps a second training out of the folder meanwhile.
"""
from __future__ import annotations

import json
import math
import os
import uuid
from pathlib import Path

import torch

from geocli.errors import GeocliError, UsageError
from geocli.store.checkpoint import checkpoint_folder, unreadable_as_error, write_checkpoint_files
from geocli.store.owned_folder import RUN_STATE_NAMES, has_content, remove_own, replace_problem, saving, swap_in
from geocli.report.json_out import loads_strict

STATE_JSON, STATE_TENSORS = RUN_STATE_NAMES


def best_folder(out) -> Path:
    """Where a run keeps its best epoch's checkpoint: ``OUT-best`` beside ``OUT``."""
    out = Path(out)
    return out.with_name(f"{out.name}-best")


def run_path(out) -> Path:
    """``out`` made absolute (``.`` and ``..`` resolved; a link: the folder it names)."""
    path = Path(os.path.abspath(out))
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def claim_out(out, force: bool = False, resuming: bool = False, elsewhere: dict | None = None) -> Path:
    """Check, before any work, that a run may write ``out`` and ``OUT-best``; their absolute path.

    Refused: the folder the user is in (or one holding it), a folder geocli did not make or that
    holds files geocli did not write, an earlier run unless ``force`` or ``resuming``, and a
    folder that would hold one of ``elsewhere`` (option -> path: the cache, the image root)."""
    path = run_path(out)
    for option, other in (elsewhere or {}).items():
        if other and (Path(os.path.abspath(other)) == path or path in Path(os.path.abspath(other)).parents):
            raise UsageError(f"--{option.replace('_', '-')} {other} is inside --out {out}; a run folder holds only "
                             "what geocli writes there: put it elsewhere")
    if path == path.parent:
        raise UsageError(f"--out {out}: name a folder for the run, not the file system root")
    cwd = Path.cwd().resolve()
    if path.exists() and (path.resolve() == cwd or path.resolve() in cwd.parents):
        raise UsageError(f"--out {out} is the folder you are in (or holds it); geocli replaces a run folder "
                         "as a whole: run from outside it, or name a new folder")
    if resuming:  # what the folder is (not a run, pickled weights) comes first
        checkpoint_folder(find_run_folder(path))
    for folder in (path, best_folder(path)):
        problem = replace_problem(folder)
        if problem:
            raise UsageError(problem)
    earlier = [f for f in (path, best_folder(path)) if has_content(f)] + twins(path)
    if earlier and not (force or resuming):
        raise UsageError(f"{earlier[0]} holds an earlier geocli run; continue it with --resume {out}, "
                         "or replace it with --force")
    return path


def split_state(state: dict, prefix: str = "") -> tuple[dict, dict]:
    """Nested dict -> (tensors by dotted key, the same structure with tensors replaced by refs)."""
    tensors, plain = {}, {}
    for key, value in state.items():
        name = f"{prefix}{key}"
        if isinstance(value, torch.Tensor):
            tensors[name] = value.detach().cpu().contiguous()
            plain[str(key)] = {"__tensor__": name}
        elif isinstance(value, dict):
            sub_t, sub_p = split_state(value, f"{name}.")
            tensors.update(sub_t)
            plain[str(key)] = {"__dict__": sub_p, "__int_keys__": all(isinstance(k, int) for k in value)}
        else:
            plain[str(key)] = _json_safe(value)
    return tensors, plain


def join_state(plain: dict, tensors: dict) -> dict:
    """Inverse of ``split_state``."""
    out = {}
    for key, value in plain.items():
        if isinstance(value, dict) and "__tensor__" in value:
            out[key] = tensors[value["__tensor__"]]
        elif isinstance(value, dict) and "__dict__" in value:
            sub = join_state(value["__dict__"], tensors)
            out[key] = {int(k): v for k, v in sub.items()} if value["__int_keys__"] else sub
        else:
            out[key] = _from_json(value)
    return out


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return {"__float__": repr(value)}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    return value


def _from_json(value):
    if isinstance(value, dict) and "__float__" in value:
        return float(value["__float__"])
    if isinstance(value, dict):
        return {k: _from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value


def save_run(model, folder, state: dict, extra: dict | None = None) -> Path:
    """Write checkpoint + training state to ``folder``, replacing it atomically."""
    from safetensors.torch import save_file

    target = Path(folder)
    staging = target.with_name(f".{target.name}.staging-{uuid.uuid4().hex[:8]}")
    with saving(target):
        try:
            staging.mkdir(parents=True)
            write_checkpoint_files(model, staging, extra, kind="run")
            tensors, plain = split_state(state)
            save_file(tensors, str(staging / STATE_TENSORS))
            (staging / STATE_JSON).write_text(json.dumps(plain, indent=1, allow_nan=False), encoding="utf-8")
            swap_in(staging, target)
        except BaseException:
            import shutil

            shutil.rmtree(staging, ignore_errors=True)
            raise
    return target


def twins(out) -> list[Path]:
    """Earlier saves of ``out`` a kill mid-swap left beside it (``.OUT.old-*`` holding a run)."""
    out = Path(out)
    found = [t for t in out.parent.glob(f".{out.name}.old-*") if (t / STATE_JSON).is_file()]
    return sorted(found, key=lambda p: p.stat().st_mtime)


def remove_leftovers(out) -> None:
    """Once a save succeeded: the staging, temporary and moved-aside folders earlier saves of
    ``out`` and ``OUT-best`` were killed in the middle of. Only geocli's own are removed."""
    for folder in (Path(out), best_folder(out)):
        patterns = (f".{folder.name}.staging-*", f".{folder.name}.old-*", f".{folder.name}.*.tmp")
        for pattern in patterns:
            for leftover in folder.parent.glob(pattern):
                if leftover.is_dir() and replace_problem(leftover) is None:
                    remove_own(leftover)


def find_run_folder(folder) -> Path:
    """``folder``, or the ``.old-`` twin a kill mid-swap can leave behind."""
    path = Path(folder)
    if (path / STATE_JSON).is_file():
        return path
    earlier = twins(path)
    if earlier:
        return earlier[-1]
    raise GeocliError(f"{path}: no {STATE_JSON}; --resume needs a folder written by geocli train")


def load_run_state(folder) -> dict:
    """The training state saved by ``save_run`` (tensors read with safetensors only)."""
    from safetensors.torch import load_file

    path = find_run_folder(folder)
    with unreadable_as_error(path / STATE_JSON, "cannot read the training state"):
        plain = loads_strict((path / STATE_JSON).read_text(encoding="utf-8"))
        if not isinstance(plain, dict) or not isinstance(plain.get("config"), dict):
            raise ValueError("not a training state written by geocli train")
    with unreadable_as_error(path / STATE_TENSORS, "cannot read the training state"):
        tensors = load_file(str(path / STATE_TENSORS)) if (path / STATE_TENSORS).is_file() else {}
        return join_state(plain, tensors)
