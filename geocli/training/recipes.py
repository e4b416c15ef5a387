"""Training recipes: named ``TrainConfig`` presets, one ``NAME.json`` each, scanned from folders
(the way open_clip finds its model configs): the folders named by ``--recipes-dir`` and by the
``GEOCLI_RECIPES`` environment variable (several joined with ``os.pathsep``), then the recipes
shipped in ``geocli/recipes/``. A user's recipe of the same name as a shipped one wins.

A recipe file is either a JSON object of ``TrainConfig`` keys, or ``{"description": "...",
"train": {...}}``. Settings merge in this order, later wins: recipe < ``--config`` file <
command-line flags (and, with ``--resume``, the run's saved settings come first of all).

Branch options belong to the backbone they were written for: a layer that names another
``rgb_model`` / ``clip_model`` without giving that branch's ``branch_options`` drops earlier ones
that were written together with another backbone's name (a recipe's DINOv2 ``img_size`` or trimmed
norm means nothing to an EfficientNet), and says so; options a layer gives without naming a
backbone are kept whatever backbone runs.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path

from geocli.config import fold_branch_settings
from geocli.errors import UsageError
from geocli.report.json_out import loads_strict

RECIPES_DIR = Path(__file__).resolve().parent.parent / "recipes"
RECIPES_ENV = "GEOCLI_RECIPES"


def recipe_dirs(extra: str | os.PathLike | None = None) -> list[Path]:
    """Where recipes are looked for, first match wins: ``extra``, ``$GEOCLI_RECIPES``, the shipped ones."""
    user = [extra] if extra else []
    user += [p for p in os.environ.get(RECIPES_ENV, "").split(os.pathsep) if p]
    return [Path(p).expanduser() for p in user] + [RECIPES_DIR]


def recipe_files(extra: str | os.PathLike | None = None) -> dict[str, Path]:
    """Every recipe name and the file that defines it."""
    found: dict[str, Path] = {}
    for folder in recipe_dirs(extra):
        if folder.is_dir():
            for path in sorted(folder.glob("*.json")):
                found.setdefault(path.stem, path)
    return dict(sorted(found.items()))


def available_recipes(extra: str | os.PathLike | None = None) -> list[str]:
    return list(recipe_files(extra))


def read_settings(path: Path, what: str) -> dict:
    """A JSON object of training settings (the ``train`` member when the file has one)."""
    try:
        data = loads_strict(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # bad JSON, NaN/Infinity, deep nesting
        raise UsageError(f"{what} {path}: cannot read it as JSON ({exc})") from None
    if not isinstance(data, dict):
        raise UsageError(f"{what} {path}: expected a JSON object of training settings")
    return dict(data["train"]) if isinstance(data.get("train"), dict) else {k: v for k, v in data.items() if k != "description"}


def load_recipe(name: str, extra: str | os.PathLike | None = None) -> dict:
    """The settings of recipe ``name`` (see the module docstring for where it is looked for)."""
    path = recipe_files(extra).get(name)
    if path is None:
        names = ", ".join(available_recipes(extra)) or "none installed"
        raise UsageError(f"unknown recipe {name!r}; available: {names}")
    return read_settings(path, "recipe")


def merge_training_layers(*layers: dict, log=None) -> dict:
    """``merge_settings`` of the layers (their flat ``rgb_model``-style keys folded into
    ``branch_settings`` first), except that a new backbone name drops the options an earlier layer
    wrote for its branch *together with another backbone's name* (a recipe's DINOv2 options),
    saying so through ``log``. Options given without a backbone name (a ``--config`` that tunes the
    rgb branch, then ``--rgb-model``) are the user's for whatever backbone runs: they are kept."""
    out: dict = {}
    tied: dict[str, str] = {}  # branch -> the backbone its options were written with
    untied: dict[str, dict] = {}  # branch -> the options given without naming a backbone
    for layer in map(fold_branch_settings, layers):
        named = _backbones(layer)
        for branch, given in _dict(layer.get("branch_options")).items():
            if branch not in named:
                untied[branch] = merge_settings(untied.get(branch, {}), _dict(given))
        for branch, model in named.items():
            given = _dict(layer.get("branch_options")).get(branch)
            if model != _backbones(out).get(branch) and given is None and branch in tied:
                _drop_tied(out, branch, tied.pop(branch), model, untied.get(branch), log)
            if given is not None:
                tied[branch] = model
        out = merge_settings(out, copy.deepcopy(layer))
    return out


def _backbones(settings: dict) -> dict[str, str]:
    """branch -> the model (backbone) ``settings`` name for it."""
    return {b: s["model"] for b, s in _dict(settings.get("branch_settings")).items()
            if isinstance(s, dict) and "model" in s}


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _drop_tied(out: dict, branch: str, old_model: str, new_model: str, keep: dict | None, log) -> None:
    """Replace a branch's options by the ones given without a backbone name, telling ``log`` what went."""
    options = out.get("branch_options", {})
    dropped = sorted(set(options.get(branch, {})) - set(keep or {}))
    if keep:
        options[branch] = copy.deepcopy(keep)
    else:
        options.pop(branch, None)
    if dropped and log is not None:
        log(f"{branch} options {', '.join(dropped)} were set for {old_model}; not used with {new_model}")


def merge_settings(*layers: dict) -> dict:
    """Later layers override earlier ones, key by key (nested dicts merged, not replaced)."""
    out: dict = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = merge_settings(out[key], value)
            else:
                out[key] = value
    return out
