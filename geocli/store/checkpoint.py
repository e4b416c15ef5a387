"""A checkpoint is a folder: ``config.json`` + ``model.safetensors``.

Heads that search reference photos (retrieval) keep their index beside the weights in
``references.safetensors`` (``HEAD.descriptors`` (N, D), ``HEAD.coords`` (N, 2) float64): data, not
parameters, but without it the folder could not predict.

``config.json`` holds ``{"format": "geocli-model", "model": ModelConfig, ...extra}``: architecture,
branch settings and preprocessing, label spaces (country list, geocell tables, scene names) and
prediction settings, so ``load_checkpoint(dir)`` rebuilds the model from the folder alone, without
fetching any weights. Extra top-level entries (e.g. "train") are kept for other tools.

Saving is atomic: everything is written to a temporary sibling folder which then takes the target's
name, so a crash never leaves a half-written checkpoint under the real name. Loading reads tensors
with safetensors only; pickle files (.bin/.pt/.pth/.ckpt) are refused, as unpickling can run code.
"""
from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from geocli.config import ModelConfig
from geocli.errors import GeocliError
from geocli.store.owned_folder import check_replaceable, saving, swap_in, write_marker
from geocli.report.json_out import loads_strict, strict_json

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
REFERENCES_FILE = "references.safetensors"
FORMAT = "geocli-model"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


def save_checkpoint(model, directory, extra: dict | None = None) -> Path:
    """Write ``model`` (a ``GeoModel``) to the folder ``directory``, replacing it atomically
    (an existing folder only when geocli made it: ``geocli.store.owned_folder``)."""
    target = Path(directory)
    check_replaceable(target)  # before any work; swap_in checks again at the end
    with saving(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
        try:
            write_checkpoint_files(model, tmp, extra)
            swap_in(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return target


def write_checkpoint_files(model, folder: Path, extra: dict | None = None, kind: str = "checkpoint") -> None:
    """Config, weights, reference index and marker into the (new, empty) folder ``folder``."""
    from safetensors.torch import save_model

    document = {"format": FORMAT, "model": model.config.to_dict(), **(extra or {})}
    (folder / CONFIG_FILE).write_text(strict_json(document, indent=2), encoding="utf-8")
    save_model(model, str(folder / WEIGHTS_FILE), metadata={"format": "pt"})
    save_references(model, folder / REFERENCES_FILE)
    write_marker(folder, kind)


def read_checkpoint_config(directory) -> dict:
    """The parsed ``config.json`` of a checkpoint folder (checked to be one)."""
    folder = checkpoint_folder(directory)
    try:
        document = loads_strict((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # bad JSON, NaN/Infinity, deep nesting
        raise GeocliError(f"{folder / CONFIG_FILE}: cannot read the checkpoint config ({exc})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT or "model" not in document:
        raise GeocliError(f"{folder / CONFIG_FILE} is not a geocli model config (format {FORMAT!r})")
    return document


def read_model_config(directory) -> ModelConfig:
    """The checkpoint's ``ModelConfig``, its types, bounds and options checked (one-line errors)."""
    from geocli.store.checkpoint_checks import check_checkpoint_config

    folder = checkpoint_folder(directory)
    where = f"{folder / CONFIG_FILE}: model"
    config = ModelConfig.from_dict(read_checkpoint_config(folder)["model"], where)
    check_checkpoint_config(config, where)
    return config


def load_checkpoint(directory, device: str = "cpu"):
    """Rebuild the ``GeoModel`` saved in ``directory`` (eval mode, on ``device``)."""
    from safetensors.torch import load_model

    from geocli.store.checkpoint_checks import check_weight_shapes
    from geocli.model import GeoModel
    from geocli.weights.hub import offline_mode

    folder = checkpoint_folder(directory)
    config = read_model_config(folder)
    with offline_mode():  # the architecture only: nothing may be fetched
        model = GeoModel(config, pretrained=False)
    with unreadable_as_error(folder / WEIGHTS_FILE, "cannot load the weights"):
        check_weight_shapes(model, folder / WEIGHTS_FILE)
        load_model(model, str(folder / WEIGHTS_FILE), strict=True, device=str(device))
    with unreadable_as_error(folder / REFERENCES_FILE, "cannot load the reference index"):
        load_references(model, folder / REFERENCES_FILE)
    return model.to(device).eval()


@contextmanager
def unreadable_as_error(path: Path, what: str):
    """A damaged or mismatched tensor file becomes one ``GeocliError`` line naming it."""
    from safetensors import SafetensorError

    try:
        yield
    except (SafetensorError, OSError, RuntimeError, ValueError, KeyError) as exc:
        reason = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0][:200]
        raise GeocliError(f"{path}: {what} ({reason}); the file is damaged or not from this model") from None


def save_references(model, path: Path) -> None:
    """Every head's reference index (``head.references``) into one safetensors file, if any."""
    from safetensors.torch import save_file

    tensors = {}
    for name, head in model.heads.items():
        index = getattr(head, "references", None)
        if index is not None:
            tensors[f"{name}.descriptors"] = index.descriptors.detach().float().cpu().contiguous()
            tensors[f"{name}.coords"] = _float64_tensor(index.coords)
    if tensors:
        save_file(tensors, str(path), metadata={"format": "geocli-references"})


def load_references(model, path: Path) -> None:
    """Hand each retrieval head its saved reference index (safetensors only)."""
    if not path.is_file():
        return
    from safetensors.torch import load_file

    from geocli.heads.references import ReferenceIndex

    tensors = load_file(str(path))
    for name, head in model.heads.items():
        if f"{name}.descriptors" in tensors and hasattr(head, "set_references"):
            head.set_references(ReferenceIndex(tensors[f"{name}.descriptors"], tensors[f"{name}.coords"].numpy()))


def _float64_tensor(array):
    import numpy as np
    import torch

    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float64))


def checkpoint_folder(directory) -> Path:
    """``directory`` when it looks like a checkpoint folder; else one line saying what it is."""
    path = Path(directory)
    if path.is_file():
        if path.suffix.lower() in PICKLE_SUFFIXES:
            raise GeocliError(_pickle_message(path))
        raise GeocliError(f"{path} is a file; a geocli checkpoint is a folder with {CONFIG_FILE} and {WEIGHTS_FILE}")
    if not path.is_dir():
        raise GeocliError(f"checkpoint folder not found: {path}")
    if not (path / WEIGHTS_FILE).is_file():
        pickles = sorted(p for p in path.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
        if pickles:
            raise GeocliError(_pickle_message(pickles[0]))
        raise GeocliError(f"{path} has no {WEIGHTS_FILE}: not a geocli checkpoint folder")
    if not (path / CONFIG_FILE).is_file():
        raise GeocliError(f"{path} has no {CONFIG_FILE}: not a geocli checkpoint folder")
    return path


def _pickle_message(path: Path) -> str:
    return (
        f"{path} is a pickle file; geocli loads weights only from {WEIGHTS_FILE} (unpickling can run "
        "arbitrary code). Convert a trusted file with safetensors.torch.save_file(state_dict, "
        f"'{WEIGHTS_FILE}') next to a config.json written by save_checkpoint"
    )
