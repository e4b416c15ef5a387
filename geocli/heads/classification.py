"""Output heads: country, geocells (several resolutions), scene, coordinate regression and the
BEiT/ResNet study's grid-classifier-plus-regressor. Retrieval heads live in ``retrieval.py``.

Every head is built as ``HEADS.get(name)(spec, labels, **options)`` and has
``forward(features) -> dict`` (``features``: "embedding" (B, D) and "tokens" (B, N, D_tok) or None)
and ``loss(out, batch) -> Tensor | None`` (None when the batch carries none of its targets).

Batch targets (all optional; -1 = unknown, ignored): "country" (B,) index into the country list,
"cells" {partition name: (B,) index} (assigned from "gps" when absent), "scene" (B,) index,
"gps" (B, 2) (lat, lon) degrees.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from geocli.config import LabelSpaces
from geocli.errors import UsageError
from geocli.registry import Registry
from geocli.heads.losses import classification_loss, coordinate_loss, haversine_smoothed_targets

HEADS: Registry = Registry("head")

#: CLIP zero-shot prompts per scene, for pseudo-labels when the data has no scene labels.
SCENE_PROMPTS = {
    "indoor": ["a photo taken indoors", "a photo of the inside of a building", "a photo of a room"],
    "natural": ["a photo of nature", "a photo of a landscape", "a photo of mountains, forest or sea"],
    "urban": ["a photo of a city street", "a photo of buildings in a town", "a photo of an urban area"],
}


@dataclass(frozen=True)
class FeatureSpec:
    """What the fusion hands the heads: embedding width, and patch-token shape when available."""

    embed_dim: int
    token_dim: int | None = None
    num_tokens: int | None = None


def mlp(dims: list[int], dropout: float = 0.0) -> nn.Sequential:
    """Linear layers of the given widths with ReLU (and dropout) between them."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(dims) - 2:
            layers += [nn.ReLU(), nn.Dropout(dropout)] if dropout else [nn.ReLU()]
    return nn.Sequential(*layers)


def trunk(in_dim: int, hidden=(), dropout: float = 0.0) -> tuple[nn.Module, int]:
    """The hidden layers in front of a classifier: Linear -> ReLU -> Dropout per width in ``hidden``
    (the ViT/DINOv2 study's 512 + ReLU + Dropout 0.5; the ViT+CLIP thesis's 1024-512-256), or
    nothing. Returns (module, its output width)."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, int(width)), nn.ReLU()] + ([nn.Dropout(dropout)] if dropout else [])
        in_dim = int(width)
    return nn.Sequential(*layers), in_dim


def _long(batch: dict, key: str, device) -> torch.Tensor | None:
    value = batch.get(key)
    return None if value is None else torch.as_tensor(value, device=device).long()


def _gps(batch: dict, device) -> torch.Tensor | None:
    value = batch.get("gps")
    return None if value is None else torch.as_tensor(value, device=device, dtype=torch.float32)


def _need_cells(labels: LabelSpaces, head: str):
    if labels.hierarchy is None:
        raise UsageError(f"the {head} head needs geocells in the label spaces (labels.geocells)")
    return labels.hierarchy


def cell_targets(batch: dict, hierarchy, name: str, device) -> torch.Tensor | None:
    """Cell index per sample in partition ``name``: from batch["cells"], else assigned from "gps"."""
    cells = batch.get("cells") or {}
    if name in cells:
        return torch.as_tensor(cells[name], device=device).long()
    gps = batch.get("gps")
    if gps is None:
        return None
    gps = np.asarray(torch.as_tensor(gps).detach().cpu(), np.float64)
    part = hierarchy.partitions[hierarchy.names.index(name)]
    return torch.as_tensor(part.assign(gps[:, 0], gps[:, 1]), device=device)


class ClassifierHead(nn.Module):
    """Classifier over ``classes`` (optional MLP ``hidden`` widths with ReLU and ``dropout`` in front
    of the output layer) with label-smoothed cross-entropy on ``target_key``."""

    target_key = ""

    def __init__(self, spec: FeatureSpec, classes: list[str], label_smoothing: float = 0.0,
                 hidden=(), dropout: float = 0.0):
        super().__init__()
        if not classes:
            raise UsageError(f"the {type(self).__name__} needs a non-empty label list")
        self.classes = list(classes)
        self.trunk, width = trunk(spec.embed_dim, hidden, dropout)
        self.fc = nn.Linear(width, len(classes))
        self.label_smoothing = label_smoothing

    def forward(self, features: dict) -> dict:
        return {"logits": self.fc(self.trunk(features["embedding"]))}

    def loss(self, out: dict, batch: dict):
        target = _long(batch, self.target_key, out["logits"].device)
        return None if target is None else classification_loss(out["logits"], target, self.label_smoothing)


@HEADS.register("country")
class CountryHead(ClassifierHead):
    """Country classification over ``labels.countries``. Options: label_smoothing, hidden, dropout."""

    target_key = "country"

    def __init__(self, spec: FeatureSpec, labels: LabelSpaces, label_smoothing: float = 0.0,
                 hidden=(), dropout: float = 0.0):
        super().__init__(spec, labels.countries, label_smoothing, hidden, dropout)


@HEADS.register("scene")
class SceneHead(ClassifierHead):
    """Scene type (indoor / natural / urban by default; TransLocator's multi-task auxiliary)."""

    target_key = "scene"

    def __init__(self, spec: FeatureSpec, labels: LabelSpaces, label_smoothing: float = 0.0,
                 hidden=(), dropout: float = 0.0):
        super().__init__(spec, labels.scenes, label_smoothing, hidden, dropout)


def scene_prompt_features(encode_text, scenes=tuple(SCENE_PROMPTS)) -> dict[str, torch.Tensor]:
    """CLIP text embeddings of each scene's prompts; ``encode_text``: list[str] -> (P, D), e.g. the
    CLIP branch's ``encode_text``."""
    return {s: encode_text(SCENE_PROMPTS[s]) for s in scenes}


def scene_pseudo_labels(image_features: torch.Tensor, prompt_features: dict[str, torch.Tensor],
                        scenes: list[str], min_confidence: float = 0.5, scale: float = 100.0):
    """Scene labels from CLIP zero-shot: mean prompt embedding per scene, softmax over cosine.

    ``prompt_features[scene]``: (P, D) CLIP text embeddings of that scene's prompts.
    Returns (B,) indices into ``scenes``; -1 where the best scene's probability < ``min_confidence``.
    """
    text = torch.stack([F.normalize(F.normalize(prompt_features[s], dim=-1).mean(0), dim=0) for s in scenes])
    probs = (scale * F.normalize(image_features, dim=-1) @ text.t()).softmax(dim=-1)
    conf, idx = probs.max(dim=-1)
    return torch.where(conf >= min_confidence, idx, torch.full_like(idx, -1))


@HEADS.register("geocell")
class GeocellHead(nn.Module):
    """One classifier per geocell partition (coarse to fine), trained jointly.

    Options: label_smoothing (plain CE) or tau_km (PIGEON haversine smoothing over the cells'
    member means, typically 65-75 km; overrides label_smoothing); hidden / dropout (a shared MLP
    in front of the per-partition classifiers). Prediction multiplies each fine cell's probability
    by its parents' (``GeocellHierarchy.combine``, GeoEstimation's hierarchy).
    """

    def __init__(self, spec: FeatureSpec, labels: LabelSpaces, label_smoothing: float = 0.0,
                 tau_km: float | None = None, hidden=(), dropout: float = 0.0):
        super().__init__()
        self.hierarchy = _need_cells(labels, "geocell")
        self.names = self.hierarchy.names
        self.trunk, width = trunk(spec.embed_dim, hidden, dropout)
        self.fc = nn.ModuleDict({p.name: nn.Linear(width, len(p)) for p in self.hierarchy.partitions})
        self.label_smoothing, self.tau_km = label_smoothing, tau_km
        for p in self.hierarchy.partitions:
            self.register_buffer(f"means_{p.name}", torch.as_tensor(p.means, dtype=torch.float32), persistent=False)

    def forward(self, features: dict) -> dict:
        x = self.trunk(features["embedding"])
        return {"logits": {n: self.fc[n](x) for n in self.names}}

    def loss(self, out: dict, batch: dict):
        parts = [self._partition_loss(n, out["logits"][n], batch) for n in self.names]
        parts = [p for p in parts if p is not None]
        return torch.stack(parts).mean() if parts else None

    def _partition_loss(self, name: str, logits: torch.Tensor, batch: dict):
        gps = _gps(batch, logits.device)
        if self.tau_km and gps is not None:
            soft = haversine_smoothed_targets(gps, getattr(self, f"means_{name}"), self.tau_km)
            return classification_loss(logits, soft)
        target = cell_targets(batch, self.hierarchy, name, logits.device)
        return None if target is None else classification_loss(logits, target, self.label_smoothing)

    def probabilities(self, out: dict) -> np.ndarray:
        """(B, n_finest) hierarchical cell probabilities."""
        probs = [out["logits"][n].detach().float().softmax(-1).cpu().numpy() for n in self.names]
        return self.hierarchy.combine(probs)


def bounded_coords(raw: torch.Tensor) -> torch.Tensor:
    """Unbounded (B, 2) outputs -> (lat, lon) in degrees inside the valid ranges."""
    return torch.stack([90.0 * torch.tanh(raw[:, 0]), 180.0 * torch.tanh(raw[:, 1])], dim=1)


@HEADS.register("regression")
class RegressionHead(nn.Module):
    """Direct (lat, lon) regression. Options: loss ("mse", "equirectangular", "haversine"),
    hidden (MLP widths before the output; empty = one linear layer, as the study's first head)."""

    def __init__(self, spec: FeatureSpec, labels: LabelSpaces, loss: str = "haversine", hidden=()):
        super().__init__()
        coordinate_loss(torch.zeros(1, 2), torch.zeros(1, 2), loss)  # validate the name now
        self.kind = loss
        self.net = mlp([spec.embed_dim, *hidden, 2])

    def forward(self, features: dict) -> dict:
        return {"coords": bounded_coords(self.net(features["embedding"]))}

    def loss(self, out: dict, batch: dict):
        gps = _gps(batch, out["coords"].device)
        return None if gps is None else coordinate_loss(out["coords"], gps, self.kind)


@HEADS.register("grid_regression")
class GridRegressionHead(nn.Module):
    """Grid-cell classifier whose one-hot answer is concatenated to the embedding and fed to an MLP
    regressor 250-150-100-50 (Aydoslu et al.); loss = CE(grid) + equirectangular distance.

    The one-hot is straight-through: hard argmax forward, softmax gradient backward, so the
    regressor's loss also reaches the classifier. Options: partition (geocell partition used as the
    grid; default the coarsest), hidden, loss, label_smoothing.
    """

    def __init__(self, spec: FeatureSpec, labels: LabelSpaces, partition: str | None = None,
                 hidden=(250, 150, 100, 50), loss: str = "equirectangular", label_smoothing: float = 0.0):
        super().__init__()
        self.hierarchy = _need_cells(labels, "grid_regression")
        self.partition = partition or self.hierarchy.names[0]
        if self.partition not in self.hierarchy.names:
            raise UsageError(f"grid_regression: no partition {self.partition!r}; have {self.hierarchy.names}")
        n = len(self.hierarchy.partitions[self.hierarchy.names.index(self.partition)])
        self.classifier = nn.Linear(spec.embed_dim, n)
        self.regressor = mlp([spec.embed_dim + n, *hidden, 2])
        self.kind, self.label_smoothing = loss, label_smoothing

    def forward(self, features: dict) -> dict:
        emb = features["embedding"]
        logits = self.classifier(emb)
        soft = logits.softmax(-1)
        hard = F.one_hot(soft.argmax(-1), soft.shape[-1]).to(soft.dtype)
        onehot = hard + soft - soft.detach()
        return {"logits": logits, "coords": bounded_coords(self.regressor(torch.cat([emb, onehot], dim=1)))}

    def loss(self, out: dict, batch: dict):
        device = out["logits"].device
        target = cell_targets(batch, self.hierarchy, self.partition, device)
        gps = _gps(batch, device)
        parts = []
        if target is not None:
            parts.append(classification_loss(out["logits"], target, self.label_smoothing))
        if gps is not None:
            parts.append(coordinate_loss(out["coords"], gps, self.kind))
        return sum(parts) if parts else None
