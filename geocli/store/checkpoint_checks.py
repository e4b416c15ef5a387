"""What a checkpoint's ``config.json`` may say, checked before anything is built from it.

A checkpoint is data, read only from its folder. Its types are checked by ``ModelConfig.from_dict``;
here come the bounds (image sizes, crop fractions, normalisation, label spaces whose sizes fix the
heads' shapes) and the rule that no option may point outside the folder: a constructor option
that names a file (timm's ``checkpoint_path``, a ``pretrained_cfg_overlay`` file, an OCR model
directory, open_clip's ``local-dir:``) would make building the model read, even unpickle, that
file. ``model_kwargs`` pass an allow-list of plain architecture values (``check_model_kwargs``,
also applied when training builds a branch); every other string option must not look like a path.
"""
from __future__ import annotations

import math
import os
import re

from geocli.config import MAX_WIDTH, BranchConfig, LabelSpaces, ModelConfig
from geocli.errors import GeocliError, UsageError

MAX_IMAGE_SIZE = 4096
INTERPOLATIONS = ("nearest", "nearest-exact", "bilinear", "bicubic", "box", "hamming", "lanczos")
#: timm architecture keyword arguments a config may set: plain numbers, flags and short names.
MODEL_KWARGS = frozenset({
    "img_size", "patch_size", "embed_dim", "depth", "num_heads", "mlp_ratio", "qkv_bias", "qk_norm",
    "init_values", "class_token", "no_embed_class", "reg_tokens", "pre_norm", "fc_norm", "final_norm",
    "dynamic_img_size", "dynamic_img_pad", "global_pool", "pos_embed", "drop_rate", "drop_path_rate",
    "attn_drop_rate", "proj_drop_rate", "pos_drop_rate", "patch_drop_rate", "in_chans", "num_classes",
    "use_abs_pos_emb", "use_rel_pos_bias", "use_shared_rel_pos_bias", "layer_scale_init_values",
    "output_stride", "channel_multiplier", "depth_multiplier", "width_multiplier", "weight_init",
    "layers", "channels", "widths", "depths", "dims", "stem_width", "stem_type", "window_size",
})
#: Upper bounds of architecture sizes a config may ask for (memory is allocated before any weight
#: is read, so a config asking for a 10^12-parameter model must be refused, not attempted).
KWARG_LIMITS = {"embed_dim": 8192, "depth": 256, "num_heads": 256, "img_size": MAX_IMAGE_SIZE, "patch_size": 512,
                "mlp_ratio": 16, "reg_tokens": 64, "in_chans": 16, "num_classes": 100_000}
MAX_NUMBER = 65_536  # any other number in model_kwargs or head options
MAX_LABELS = {"countries": 1000, "scenes": 10_000}
MAX_CELLS, MAX_PARTITIONS = 500_000, 16
#: Options that name a folder of data (precomputed segmentation maps), never weights or code.
DATA_FOLDER_KEYS = frozenset({"folder", "image_root"})
#: Model names their libraries look up on disk first (sentence-transformers, transformers).
LOCAL_FIRST_KEYS = frozenset({"text_model", "hf_model_name", "hf_tokenizer_name"})
_NAME = re.compile(r"^[A-Za-z0-9_.+-]{1,128}$")
_FILE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".pkl", ".pickle", ".safetensors", ".json", ".yaml", ".yml",
                  ".py", ".onnx", ".npz", ".npy", ".h5", ".msgpack", ".txt", ".model")


def check_model_kwargs(kwargs, where: str = "model_kwargs") -> None:
    """Refuse timm keyword arguments outside the allow-list, or values that are not plain."""
    if not isinstance(kwargs, dict):
        raise UsageError(f"{where}: expected an object of architecture options")
    for key, value in kwargs.items():
        if key not in MODEL_KWARGS:
            raise UsageError(f"{where}.{key} is not an architecture option geocli passes to timm "
                             f"(file-naming and other options are refused); allowed: {', '.join(sorted(MODEL_KWARGS))}")
        if not _plain_value(value):
            raise UsageError(f"{where}.{key}: expected a number, true/false, a short name or a list of numbers")
        _within(value, KWARG_LIMITS.get(key, MAX_NUMBER), f"{where}.{key}")


def _within(value, limit: float, where: str) -> None:
    """Numbers (also inside lists) no larger than ``limit`` in size."""
    numbers = value if isinstance(value, (list, tuple)) else [value]
    for v in numbers:
        if isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) > limit:
            raise UsageError(f"{where}: {v} is larger than geocli builds (at most {limit})")


def _check_head_options(options: dict, where: str) -> None:
    for key, value in options.items():
        if isinstance(value, (list, tuple)) and len(value) > 16:
            raise UsageError(f"{where}.{key}: at most 16 entries")
        if isinstance(value, (int, float, list, tuple)):
            _within(value, MAX_NUMBER, f"{where}.{key}")
    _no_paths(options, where)


def _plain_value(value) -> bool:
    if value is None or isinstance(value, bool):
        return True
    if isinstance(value, (int, float)):
        return math.isfinite(value)
    if isinstance(value, str):
        return bool(_NAME.match(value)) and not _looks_like_path(value)
    if isinstance(value, (list, tuple)):
        return len(value) <= 16 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    return False


def _looks_like_path(text: str) -> bool:
    """A string a loader would take as a file: absolute, relative, home, URL/schema, or a file name."""
    lowered = text.lower()
    return (os.path.isabs(text) or text.startswith(("~", ".")) or "\\" in text or ".." in text
            or ":" in text or text.count("/") > 1 or lowered.endswith(_FILE_SUFFIXES))


def check_checkpoint_config(config: ModelConfig, where: str) -> None:
    """Bounds and the no-files rule for a config read from a checkpoint folder."""
    for i, branch in enumerate(config.branches):
        _check_branch(branch, f"{where}.branches[{i}]")
    for i, head in enumerate(config.heads):
        _check_head_options(head.options, f"{where}.heads[{i}].options")
    _check_labels(config.labels, f"{where}.labels")


def _check_branch(branch: BranchConfig, where: str) -> None:
    if branch.embed_dim is not None and not 1 <= branch.embed_dim <= MAX_WIDTH:
        raise UsageError(f"{where}.embed_dim must be in [1, {MAX_WIDTH}], not {branch.embed_dim}")
    if branch.preprocess:
        check_preprocess(branch.preprocess, f"{where}.preprocess")
    options = dict(branch.options)
    if "model_kwargs" in options and options["model_kwargs"] is not None:
        check_model_kwargs(options.pop("model_kwargs"), f"{where}.options.model_kwargs")
    for key in ("weights", "pretrained"):  # replaced by the folder's own weights when loading
        options.pop(key, None)
    _no_paths(options, f"{where}.options")


def _no_paths(value, where: str, key: str = "") -> None:
    """Every string in ``value`` (at any depth) must be a name, not a path (data folders aside)."""
    if isinstance(value, dict):
        for k, v in value.items():
            _no_paths(v, f"{where}.{k}", str(k))
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _no_paths(v, f"{where}[{i}]", key)
    elif isinstance(value, str) and key not in DATA_FOLDER_KEYS and (
            _looks_like_path(value) or (key in LOCAL_FIRST_KEYS and os.path.exists(value))):
        raise UsageError(f"{where} names a file or folder ({value[:80]!r}); a checkpoint is read only from "
                         "its own folder, so its options may name models, not paths")


def check_preprocess(pre: dict, where: str) -> None:
    """Image size, crop fraction, normalisation and resampling a model's pixels are prepared with."""
    fields = {"image_size", "mean", "std", "crop_pct", "interpolation", "color_jitter", "scale"}
    unknown = sorted(set(pre) - fields)
    if unknown:
        raise UsageError(f"{where}: unknown keys {unknown}; valid: {sorted(fields)}")
    size = pre.get("image_size")
    if not _is_int(size) or not 1 <= size <= MAX_IMAGE_SIZE:
        raise UsageError(f"{where}.image_size must be a whole number in [1, {MAX_IMAGE_SIZE}], not {size!r}")
    crop = pre.get("crop_pct", 1.0)
    if not _is_number(crop) or not 0.5 <= crop <= 1:  # the eval resize is image_size / crop_pct
        raise UsageError(f"{where}.crop_pct must be a number in [0.5, 1], not {crop!r}")
    for key in ("mean", "std"):
        values = pre.get(key, (0.5,) * 3)
        if not isinstance(values, (list, tuple)) or len(values) != 3 or not all(map(_is_number, values)):
            raise UsageError(f"{where}.{key} must be three numbers, not {values!r}")
        if key == "std" and not all(0 < v <= 1e3 for v in values):
            raise UsageError(f"{where}.std must be three numbers > 0, not {values!r}")
    if pre.get("interpolation", "bicubic") not in INTERPOLATIONS:
        raise UsageError(f"{where}.interpolation must be one of {', '.join(INTERPOLATIONS)}")


def _check_labels(labels: LabelSpaces, where: str) -> None:
    for key in ("countries", "scenes"):
        names = getattr(labels, key)
        if len(set(names)) != len(names) or not all(isinstance(n, str) and 0 < len(n) <= 64 for n in names):
            raise UsageError(f"{where}.{key} must be distinct non-empty names")
        if len(names) > MAX_LABELS[key]:
            raise UsageError(f"{where}.{key}: {len(names)} names, more than geocli builds ({MAX_LABELS[key]})")
    points = labels.country_points
    if points and len(points) != len(labels.countries):
        raise UsageError(f"{where}.country_points has {len(points)} points for {len(labels.countries)} countries")
    if not all(len(p) == 2 and abs(p[0]) <= 90 and abs(p[1]) <= 180 for p in points):
        raise UsageError(f"{where}.country_points must be [lat, lon] pairs within range")
    if labels.geocells is not None:
        _check_geocells(labels, f"{where}.geocells")


def _check_geocells(labels: LabelSpaces, where: str) -> None:
    try:
        parts = labels.geocells.get("partitions") if isinstance(labels.geocells, dict) else None
        if not isinstance(parts, list) or not 0 < len(parts) <= MAX_PARTITIONS:
            raise ValueError(f"expected 1 to {MAX_PARTITIONS} partitions")
        if any(not isinstance(p, dict) or len(p.get("cell_ids") or ()) > MAX_CELLS for p in parts):
            raise ValueError(f"a partition is not an object or has more than {MAX_CELLS} cells")
        hierarchy = labels.hierarchy
        for part in hierarchy.partitions:
            n = len(part)
            if n == 0 or part.centres.shape != (n, 2) or part.means.shape != (n, 2) or part.counts.shape != (n,):
                raise ValueError(f"partition {part.name!r} has arrays of unequal length")
            if not (abs(part.centres[:, 0]) <= 90).all() or not (abs(part.means[:, 1]) <= 180).all():
                raise ValueError(f"partition {part.name!r} has coordinates out of range")
    except GeocliError:
        raise
    except Exception as exc:  # noqa: BLE001 -- any malformed table is one line
        labels.__dict__.pop("hierarchy", None)
        reason = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
        raise UsageError(f"{where}: not a geocell table geocli wrote ({reason})") from None


def check_weight_shapes(model, path) -> None:
    """Every parameter in the weights file must have the shape the config's architecture gives it
    (buffers such as a gallery's stored coordinates size themselves when loaded)."""
    from safetensors import safe_open

    own = dict(model.named_parameters())
    with safe_open(str(path), framework="pt") as f:
        for key in f.keys():
            if key in own:
                shape = tuple(f.get_slice(key).get_shape())
                if shape != tuple(own[key].shape):
                    raise GeocliError(f"{path}: {key} has shape {list(shape)} but config.json's architecture and "
                                      f"label spaces need {list(own[key].shape)}; the weights are not from this config")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
