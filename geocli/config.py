"""Settings as dataclasses: a model is described entirely by its ``ModelConfig``.

Every config class derives from ``ConfigBase``, which gives ``from_dict`` / ``to_dict`` driven by the
dataclass fields and their type hints (nested configs, lists of configs, optional values), so a new
settings class (training, data) needs only its fields. Unknown keys are a ``UsageError`` naming the
valid ones: a typo in a JSON config fails loudly instead of being ignored.

``ModelConfig`` is what a checkpoint folder's ``config.json`` holds: branches, fusion, heads, label
spaces (country list, geocell tables, scene names) and prediction settings.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from geocli.errors import UsageError
from geocli.json_types import convert, json_type

CONFIG_VERSION = 1
MAX_WIDTH = 1 << 16  # no layer of a geocli model is wider than this
DEFAULT_SCENES = ("indoor", "natural", "urban")
#: The CLIP architecture and open_clip pretrained tag that training and prediction both default to.
DEFAULT_CLIP_MODEL, DEFAULT_CLIP_PRETRAINED = "ViT-B-32", "laion2b_s34b_b79k"
HF_CLIP_DEFAULT = "openai/clip-vit-large-patch14"  # GeoCLIP's image side (the hf_clip branch)
#: The timm backbone the rgb branch trains by default (its ImageNet weights ship in a pip package).
DEFAULT_RGB_MODEL = "tf_efficientnet_lite0.in1k"
#: What a run can tell any branch: which model it runs and where that model's weights come from.
#: ``branch_settings`` holds them per branch; ``<branch>_model`` / ``<branch>_weights`` (the
#: ``--rgb-model`` flag, recipe keys, older run folders) is the same setting spelt flat.
BRANCH_SETTINGS = ("model", "weights")
TTA_MODES = (None, "five-crop")


class ConfigBase:
    """Mixin for dataclasses: JSON-ready ``to_dict`` and a checking ``from_dict``."""

    @classmethod
    def from_dict(cls, data: dict, where: str = "") -> "ConfigBase":
        """Build from JSON data, each value checked against its field's type (``where``: the
        key path so far, for messages such as ``model.heads[0].weight``)."""
        if not isinstance(data, dict):
            raise UsageError(f"{where or cls.__name__}: expected a JSON object, got {json_type(data)}")
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise UsageError(f"{where or cls.__name__}: unknown keys {unknown}; valid: {sorted(fields)}")
        hints = typing.get_type_hints(cls)
        return cls(**{k: convert(hints[k], v, f"{where}.{k}" if where else k) for k, v in data.items()})

    def to_dict(self) -> dict:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self) if f.init}


def _plain(value):
    if isinstance(value, ConfigBase):
        return value.to_dict()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


@dataclass
class BranchConfig(ConfigBase):
    """One input branch. ``name`` is its key in the batch dict ("rgb", "seg", "clip", "ocr").

    ``input="image"``: the branch module (``geocli.branches.build_branch(kind, options)``) encodes
    what the batch carries under ``name`` (pixels; for OCR its cached ``{"text_emb", "has_text"}``).
    ``options`` are that branch's constructor arguments; after building they are replaced by the
    branch's own ``config`` so a checkpoint rebuilds exactly the same architecture.
    ``input="embedding"``: the batch already carries vectors of size ``embed_dim`` (e.g. from an
    embedding cache), so training on cached CLIP / OCR features needs no encoder at all.
    ``preprocess``: the branch's image preprocessing (size, mean, std...), filled when built.
    """

    name: str
    kind: str = ""  # branch-registry name; empty means the same as ``name``
    input: str = "image"
    embed_dim: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    preprocess: dict[str, Any] = field(default_factory=dict)
    enabled: bool = True

    def __post_init__(self):
        if self.input not in ("image", "embedding"):
            raise UsageError(f"branch {self.name!r}: input must be 'image' or 'embedding'")
        if self.input == "embedding" and not self.embed_dim:
            raise UsageError(f"branch {self.name!r}: input='embedding' needs embed_dim")

    @property
    def registry_name(self) -> str:
        return self.kind or self.name


@dataclass
class FusionConfig(ConfigBase):
    """How branch embeddings become one vector.

    ``name="concat"``: every branch embedding normalised, concatenated with presence flags.
    ``name="translocator"``: the two ``pair`` branches (timm ViTs) exchange CLS tokens after every
    encoder layer; the fused CLS then joins the remaining branches in the concat stage.
    """

    name: str = "concat"
    pair: list[str] = field(default_factory=lambda: ["rgb", "seg"])
    fusion_dim: int | None = None  # width of the CLS exchange space; None = first pair branch's width
    exchange: bool = True  # False: the pair runs side by side without exchange (ablation)
    normalize: str = "l2"  # per-branch normalisation in concat: "l2", "layernorm" or "none"
    dropout: float = 0.1
    branch_dropout: float = 0.0  # training only: chance a sample's branch is masked out

    def __post_init__(self):
        if self.normalize not in ("l2", "layernorm", "none"):
            raise UsageError("fusion.normalize must be 'l2', 'layernorm' or 'none'")
        if self.name == "translocator" and len(self.pair) != 2:
            raise UsageError("fusion.pair must name exactly two branches for translocator")
        if not (0 <= self.dropout < 1 and 0 <= self.branch_dropout < 1):
            raise UsageError("fusion.dropout and fusion.branch_dropout must be in [0, 1)")
        if self.fusion_dim is not None and not 1 <= self.fusion_dim <= MAX_WIDTH:
            raise UsageError(f"fusion.fusion_dim must be in [1, {MAX_WIDTH}], not {self.fusion_dim}")


@dataclass
class HeadConfig(ConfigBase):
    """One output head: ``name`` is its registry key, ``weight`` its share of the multi-task loss,
    ``options`` the head's own keyword arguments (documented on each head class)."""

    name: str
    weight: float = 1.0
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.weight < 0:
            raise UsageError(f"head {self.name!r}: weight must be >= 0, not {self.weight}")


@dataclass
class LabelSpaces(ConfigBase):
    """What the classifiers' outputs mean: ISO country codes, geocell tables, scene names.
    ``country_points``: per country, the (lat, lon) a country guess is placed at (the spherical mean
    of its training photos), so a country-only model still has a coordinate to score."""

    countries: list[str] = field(default_factory=list)
    country_points: list[list[float]] = field(default_factory=list)
    geocells: dict | None = None  # GeocellHierarchy.to_dict()
    scenes: list[str] = field(default_factory=lambda: list(DEFAULT_SCENES))

    @cached_property
    def hierarchy(self):
        """The ``GeocellHierarchy`` (built once), or ``None`` when there are no geocells."""
        from geocli.geo.cells import GeocellHierarchy

        return GeocellHierarchy.from_dict(self.geocells) if self.geocells else None

    def country_index(self, codes) -> list[int]:
        """Index of each ISO code in ``countries``; -1 (ignored by the losses) when unknown."""
        lookup = {c: i for i, c in enumerate(self.countries)}
        return [lookup.get((c or "").upper(), -1) for c in codes]

    def scene_index(self, names) -> list[int]:
        lookup = {s: i for i, s in enumerate(self.scenes)}
        return [lookup.get(n, -1) if n else -1 for n in names]

    def targets(self, lat, lon, countries=None, scenes=None) -> dict:
        """Training targets for samples at (lat, lon), as NumPy arrays in the batch format:
        "gps", "cells" (one index array per partition), "country" (looked up at the coordinate when
        ``countries`` is None) and "scene" (when ``scenes`` is given); -1 marks unknown labels."""
        import numpy as np

        from geocli.geo.countries import country_codes_at

        lat, lon = np.asarray(lat, np.float64).ravel(), np.asarray(lon, np.float64).ravel()
        out = {"gps": np.stack([lat, lon], axis=1).astype(np.float32)}
        if self.hierarchy is not None:
            out["cells"] = self.hierarchy.assign(lat, lon)
        if self.countries:
            codes = country_codes_at(lat, lon) if countries is None else countries
            out["country"] = np.asarray(self.country_index(codes), np.int64)
        if scenes is not None:
            out["scene"] = np.asarray(self.scene_index(scenes), np.int64)
        return out


@dataclass
class PredictConfig(ConfigBase):
    """Post-processing: where candidate locations come from and how they are placed.

    ``location_head``: the head whose scores rank locations; ``None`` picks the first present of
    geocell, gallery, retrieval, grid_regression, regression. ``refine``: move each top cell's
    point to the probability-weighted mean of the top ``refine_top`` cells within ``refine_km``.
    ``tta``: test-time augmentation of the image branches; "five-crop" averages the softmax (and
    coordinate) outputs over the four corner crops and the centre crop (TransLocator, the ViT/DINOv2
    study); None looks once at the centre crop.
    """

    top_k: int = 5
    location_head: str | None = None
    refine: bool = False
    refine_top: int = 10
    refine_km: float = 150.0
    tta: str | None = None

    def __post_init__(self):
        if self.tta not in TTA_MODES:
            raise UsageError(f"predict.tta must be one of {list(TTA_MODES)}, not {self.tta!r}")
        if self.top_k < 1 or self.refine_top < 1 or self.refine_km <= 0:
            raise UsageError("predict.top_k and predict.refine_top must be >= 1 and predict.refine_km > 0")


@dataclass
class ModelConfig(ConfigBase):
    branches: list[BranchConfig] = field(default_factory=lambda: [BranchConfig("rgb")])
    fusion: FusionConfig = field(default_factory=FusionConfig)
    heads: list[HeadConfig] = field(default_factory=lambda: [HeadConfig("country")])
    labels: LabelSpaces = field(default_factory=LabelSpaces)
    predict: PredictConfig = field(default_factory=PredictConfig)
    version: int = CONFIG_VERSION

    def __post_init__(self):
        names = [b.name for b in self.branches]
        if len(set(names)) != len(names):
            raise UsageError(f"branch names must be unique: {names}")
        heads = [h.name for h in self.heads]
        if len(set(heads)) != len(heads):
            raise UsageError(f"head names must be unique: {heads}")
        if self.version > CONFIG_VERSION:
            raise UsageError(f"config version {self.version} is newer than this geocli ({CONFIG_VERSION})")

    def branch(self, name: str) -> BranchConfig:
        for b in self.branches:
            if b.name == name:
                return b
        raise UsageError(f"no branch {name!r}; branches: {[b.name for b in self.branches]}")


TRAIN_OPTIMIZERS = ("adamw", "sgd")
TRAIN_SCHEDULERS = ("cosine", "plateau", "step", "none")
TRAIN_SAMPLERS = ("uniform", "class-balanced", "places")


@dataclass
class TrainConfig(ConfigBase):
    """Everything ``geocli train`` needs, so a run is reproducible from one JSON file.

    Merge order: recipe < ``--config`` file < command-line flags. ``trainable``: "freeze" (frozen
    branches are embedded once through the on-disk cache), "finetune", or N (last N blocks).
    ``cells``: [[min, max], ...] per geocell partition, coarse to fine; empty = scaled to the data.
    ``split``: "group" / "spatial-kmeans" / "random"; None picks group when the manifest has
    location ids, else spatial-kmeans. ``backbone_lr_scale`` multiplies ``lr`` for branch weights
    (differential learning rates); ``class_weights="inverse-frequency"`` weights the classifier
    losses by 1/class frequency; ``sampler="class-balanced"`` draws classes equally often;
    ``sampler="places"`` builds P x K batches (``batch_size / images_per_place`` places, each with
    ``images_per_place`` photos) from ``location_id`` groups, else from photos clustered within
    ``place_radius_km`` (retrieval training). ``head_options`` / ``head_weights``: per-head
    constructor options (e.g. ``{"country": {"hidden": [512], "dropout": 0.5}}``) and loss weights.
    ``scheduler="step"`` multiplies the lr by ``step_gamma`` every ``step_epochs`` epochs.
    ``train_metrics``: also score the training images (eval mode) after every epoch.
    ``tau_km``: PIGEON's haversine label smoothing over geocells (the target spreads to cells by
    their distance from the photo, ``exp(-d / tau_km)``) for heads that take it; ``None`` uses
    plain ``label_smoothing``. The defaults (tau 75 km, uniform sampler, lr 3e-3, 30 epochs) beat
    the training centroid on every measured Croatia split (``bench/bench_train_defaults.py``).
    ``branch_settings``: per branch, the model it runs and its weights (``{"rgb": {"model": ...,
    "weights": FILE}}``, also spelt ``rgb_model`` / ``rgb_weights``); each branch class has their
    defaults and turns them into its constructor options, which ``branch_options`` then override.
    """

    data: str = ""
    out: str = ""
    root: str | None = None
    metadata: str | None = None
    val: str | None = None
    split: str | None = None
    val_fraction: float = 0.2
    skip_missing: bool = False
    seed: int = 0
    branches: list[str] = field(default_factory=lambda: ["rgb"])
    heads: list[str] = field(default_factory=lambda: ["country", "geocell"])
    cells: list[list[int]] = field(default_factory=list)
    branch_settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    branch_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    head_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    head_weights: dict[str, float] = field(default_factory=dict)
    fusion: dict[str, Any] = field(default_factory=dict)
    trainable: str | int = "freeze"
    epochs: int = 30
    batch_size: int = 32
    lr: float = 3e-3
    backbone_lr_scale: float = 0.1
    weight_decay: float = 1e-3
    optimizer: str = "adamw"
    momentum: float = 0.9
    scheduler: str = "cosine"
    plateau_patience: int = 2
    plateau_factor: float = 0.1
    step_epochs: int = 5
    step_gamma: float = 1 / 3
    label_smoothing: float = 0.1
    tau_km: float | None = 75.0
    class_weights: str = "none"
    sampler: str = "uniform"
    images_per_place: int = 4
    place_radius_km: float = 0.025
    train_metrics: bool = False
    crop_scale: list[float] = field(default_factory=lambda: [0.5, 1.0])
    rotation: float = 20.0
    flip: bool = False
    color_jitter: float = 0.2
    cache: bool = True
    cache_dir: str | None = None
    device: str | None = None
    amp: bool = True  # bf16 autocast on CUDA; ignored on CPU
    num_workers: int = 0
    shuffle_buffer: int = 1000  # samples each data-loader worker shuffles through when --data is shards
    tta: str | None = None  # stored in the checkpoint: how predict / eval look at photos

    @classmethod
    def from_dict(cls, data: dict, where: str = "") -> "TrainConfig":
        """``ConfigBase.from_dict`` after the flat ``<branch>_model`` / ``<branch>_weights`` keys are
        folded into ``branch_settings`` (``fold_branch_settings``)."""
        return super().from_dict(fold_branch_settings(data) if isinstance(data, dict) else data, where)

    def branch_setting(self, branch: str) -> dict[str, Any]:
        """The settings this run gives branch ``branch`` (those it leaves out: the branch's defaults)."""
        return dict(self.branch_settings.get(branch, {}))

    def __post_init__(self):
        if self.optimizer not in TRAIN_OPTIMIZERS:
            raise UsageError(f"optimizer must be one of {TRAIN_OPTIMIZERS}, not {self.optimizer!r}")
        if self.scheduler not in TRAIN_SCHEDULERS:
            raise UsageError(f"scheduler must be one of {TRAIN_SCHEDULERS}, not {self.scheduler!r}")
        if self.class_weights not in ("none", "inverse-frequency"):
            raise UsageError("class_weights must be 'none' or 'inverse-frequency'")
        if self.sampler not in TRAIN_SAMPLERS:
            raise UsageError(f"sampler must be one of {TRAIN_SAMPLERS}, not {self.sampler!r}")
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise UsageError("epochs and batch_size must be >= 1 and lr > 0")
        self._check_numbers()
        self._check_branch_settings()
        self._check_heads()
        self._check_places()
        if self.step_epochs < 1 or not 0 < self.step_gamma <= 1:
            raise UsageError("step_epochs must be >= 1 and step_gamma in (0, 1]")
        if self.tta not in TTA_MODES:
            raise UsageError(f"tta must be one of {list(TTA_MODES)}, not {self.tta!r}")
        if isinstance(self.trainable, str) and self.trainable not in ("freeze", "finetune"):
            raise UsageError(f"trainable must be 'freeze', 'finetune' or a block count, not {self.trainable!r}")

    def _check_branch_settings(self) -> None:
        for branch, settings in self.branch_settings.items():
            stray = sorted(set(settings) - set(BRANCH_SETTINGS))
            if stray:
                raise UsageError(f"branch_settings.{branch}: unknown settings {stray}; valid: {', '.join(BRANCH_SETTINGS)}")
            bad = [k for k, v in settings.items() if v is not None and not isinstance(v, str)]
            if bad:
                raise UsageError(f"branch_settings.{branch}.{bad[0]}: expected a name or a path")

    def _check_heads(self) -> None:
        """``head_options`` / ``head_weights`` may only name heads this run trains."""
        for key in ("head_options", "head_weights"):
            stray = sorted(set(getattr(self, key)) - set(self.heads))
            if stray:
                raise UsageError(f"{key} names heads {stray} that are not trained; heads: {self.heads}")
        if any(not isinstance(v, dict) for v in self.head_options.values()):
            raise UsageError("head_options: one JSON object of options per head")
        if any(not isinstance(w, (int, float)) or w < 0 for w in self.head_weights.values()):
            raise UsageError("head_weights: one number >= 0 per head")

    def _check_numbers(self) -> None:
        """Bounds of the numeric settings (their types, finite numbers included, are checked by
        ``from_dict``): each out-of-range value is named in one line."""
        checks = [
            ("val_fraction", 0 < self.val_fraction < 1, "in (0, 1)"),
            ("backbone_lr_scale", self.backbone_lr_scale >= 0, ">= 0"),
            ("weight_decay", self.weight_decay >= 0, ">= 0"),
            ("momentum", 0 <= self.momentum < 1, "in [0, 1)"),
            ("plateau_patience", self.plateau_patience >= 0, ">= 0"),
            ("plateau_factor", 0 < self.plateau_factor < 1, "in (0, 1)"),
            ("label_smoothing", 0 <= self.label_smoothing < 1, "in [0, 1)"),
            ("tau_km", self.tau_km is None or self.tau_km > 0, "> 0 km, or null for plain label smoothing"),
            ("rotation", 0 <= self.rotation <= 180, "in [0, 180]"),
            ("color_jitter", self.color_jitter >= 0, ">= 0"),
            ("num_workers", self.num_workers >= 0, ">= 0"),
            ("shuffle_buffer", self.shuffle_buffer >= 0, ">= 0 (0: shards in order, no shuffle)"),
            ("crop_scale", len(self.crop_scale) == 2 and 0 < self.crop_scale[0] <= self.crop_scale[1] <= 1,
             "two numbers 0 < min <= max <= 1"),
            ("cells", all(len(c) == 2 and 1 <= c[0] <= c[1] for c in self.cells), "[[min, max], ...] with 1 <= min <= max"),
            ("trainable", not isinstance(self.trainable, int) or self.trainable >= 0, "'freeze', 'finetune' or a block count >= 0"),
        ]
        for name, ok, rule in checks:
            if not ok:
                raise UsageError(f"{name} must be {rule}, not {getattr(self, name)!r}")

    def _check_places(self) -> None:
        if self.images_per_place < 2 or self.place_radius_km <= 0:
            raise UsageError("images_per_place must be >= 2 and place_radius_km > 0")
        if self.sampler == "places" and (self.batch_size % self.images_per_place or self.batch_size < 2 * self.images_per_place):
            raise UsageError(f"sampler 'places' needs batch_size a multiple of images_per_place "
                             f"({self.images_per_place}) holding at least two places, not {self.batch_size}")


def fold_branch_settings(settings: dict) -> dict:
    """``settings`` with every flat ``<branch>_model`` / ``<branch>_weights`` key (one word for the
    branch: ``rgb_model``, ``clip_weights``) moved into ``branch_settings[branch]``, over what that
    already holds; other keys as they are. The input is not changed."""
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    out = dict(settings)
    for key in list(out):
        branch, _, setting = key.partition("_")
        if key in names or setting not in BRANCH_SETTINGS or not branch.isalnum():
            continue
        nested = out.get("branch_settings", {})
        if not isinstance(nested, dict) or not isinstance(nested.get(branch, {}), dict):
            break  # not settings at all: from_dict names the key and what it expected
        out["branch_settings"] = {**nested, branch: {**nested.get(branch, {}), setting: out.pop(key)}}
    return out


def is_hf_clip(clip_model: str, clip_weights: str | None) -> bool:
    """A Hugging Face CLIP (GeoCLIP's image side): a hub id like openai/clip-vit-large-patch14, or a
    local folder as ``save_pretrained`` writes it; open_clip names and weight files are not."""
    from pathlib import Path

    if clip_weights:
        return Path(clip_weights).expanduser().is_dir()
    return "/" in clip_model and not clip_model.startswith("hf-hub:")
