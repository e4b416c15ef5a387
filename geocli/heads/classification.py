"""Output heads: country, geocells (several resolutions), scene, coordinate regression and the
BEiT/ResNet study's grid-classifier-plus-regressor. Retrieval heads live in ``retrieval.py``.

Every head is a ``Head`` (see ``base.py``): built as ``HEADS.get(name)(spec, labels, **options)``,
it says how it learns (``loss``, ``class_counts``) and which locations it yields (``locations``).

Batch targets (all optional; -1 = unknown, ignored): "country" (B,) index into the country list,
"cells" {partition name: (B,) index} (assigned from "gps" when absent), "scene" (B,) index,
"gps" (B, 2) (lat, lon) degrees.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from geocli.config import LabelSpaces
from geocli.errors import UsageError
from geocli.heads.base import HEADS, FeatureSpec, Head, _gps, _long, mlp, trunk
from geocli.heads.losses import classification_loss, coordinate_loss, haversine_smoothed_targets
from geocli.heads.locations import refine_points


def _need_cells(labels: LabelSpaces, head: str):
    if labels.hierarchy is None:
        raise UsageError(f"the {head} head needs geocells in the label spaces (labels.geocells)")
    return labels.hierarchy


def country_points(lat, lon, codes: list, countries: list[str]) -> list[list[float]]:
    """The spherical mean of each country's photos (where a country guess is placed)."""
    from geocli.geo.distance import mean_coordinate

    lat, lon = np.asarray(lat, np.float64), np.asarray(lon, np.float64)
    codes = np.asarray([c or "" for c in codes], dtype=object)
    return [list(map(float, mean_coordinate(lat[codes == c], lon[codes == c]))) for c in countries]


class CellsHead(Head):
    """A head over the geocell hierarchy: the training photos partition the world into cells
    (``GeocellHierarchy.build``, shared by every such head) and each photo's target is its cell."""

    @classmethod
    def add_labels(cls, labels: LabelSpaces, train, cells=None) -> None:
        from geocli.geo.cells import GeocellHierarchy, cell_specs

        if labels.geocells is None:
            labels.geocells = GeocellHierarchy.build(train.lat, train.lon, cell_specs(len(train), cells)).to_dict()

    @classmethod
    def targets(cls, labels: LabelSpaces, manifest) -> dict:
        lat, lon = np.asarray(manifest.lat, np.float64), np.asarray(manifest.lon, np.float64)
        return {"cells": labels.hierarchy.assign(lat, lon)} if labels.hierarchy is not None else {}

    @classmethod
    def sample_classes(cls, targets: dict):
        """The finest partition's cell of each photo."""
        cells = targets.get("cells")
        return np.asarray(list(cells.values())[-1]) if cells else None


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


class ClassifierHead(Head):
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

    def loss(self, out: dict, batch: dict, class_weights: dict | None = None):
        target = _long(batch, self.target_key, out["logits"].device)
        if target is None:
            return None
        weight = (class_weights or {}).get(self.target_key)
        return classification_loss(out["logits"], target, self.label_smoothing, weight)


@HEADS.register("country")
class CountryHead(ClassifierHead):
    """Country classification over ``labels.countries``. Options: label_smoothing, hidden, dropout."""

    target_key = "country"
    location_priority = 50  # countries are the coarsest answer: any other location head goes first

    def __init__(self, spec: FeatureSpec, labels: LabelSpaces, label_smoothing: float = 0.0,
                 hidden=(), dropout: float = 0.0):
        super().__init__(spec, labels.countries, label_smoothing, hidden, dropout)

    @classmethod
    def add_labels(cls, labels: LabelSpaces, train, cells=None) -> None:
        """Every country of the training photos, each placed at the spherical mean of its photos."""
        from geocli.datasets.manifest import manifest_countries

        codes = manifest_countries(train)
        labels.countries = sorted({c for c in codes if c})
        labels.country_points = country_points(train.lat, train.lon, codes, labels.countries)

    @classmethod
    def targets(cls, labels: LabelSpaces, manifest) -> dict:
        from geocli.datasets.manifest import manifest_countries

        if not labels.countries:
            return {}
        return {"country": np.asarray(labels.country_index(manifest_countries(manifest)), np.int64)}

    @classmethod
    def sample_classes(cls, targets: dict):
        return np.asarray(targets["country"]) if "country" in targets else None

    def class_counts(self, targets: dict) -> dict[str, tuple]:
        if self.target_key not in targets:
            return {}
        known = targets[self.target_key][targets[self.target_key] >= 0]
        return {self.target_key: (known, len(self.classes))}

    def locations(self, out: dict, k: int, predict, labels) -> list[list[tuple]]:
        """Top-k countries, each placed at its ``country_points`` entry (none when the model has none)."""
        if len(labels.country_points) != len(labels.countries):
            return [[] for _ in range(out["logits"].shape[0])]
        return super().locations(out, k, predict, labels)

    def distributions(self, out: dict, predict, labels) -> list | None:
        """Country probabilities at their ``country_points`` (None when the model has none)."""
        from geocli.predict.record import Distribution

        if len(labels.country_points) != len(labels.countries):
            return None
        points, codes = np.asarray(labels.country_points, np.float64), list(labels.countries)
        probs = out["logits"].detach().float().softmax(-1).cpu().numpy()
        return [Distribution("country", points, p, codes) for p in probs]


@HEADS.register("scene")
class SceneHead(ClassifierHead):
    """Scene type (indoor / natural / urban by default; TransLocator's multi-task auxiliary)."""

    target_key = "scene"

    def __init__(self, spec: FeatureSpec, labels: LabelSpaces, label_smoothing: float = 0.0,
                 hidden=(), dropout: float = 0.0):
        super().__init__(spec, labels.scenes, label_smoothing, hidden, dropout)

    @classmethod
    def targets(cls, labels: LabelSpaces, manifest) -> dict:
        return {"scene": np.asarray(labels.scene_index(manifest.scene), np.int64)}

    @classmethod
    def missing_labels(cls, train) -> str | None:
        if any(train.scene):
            return None
        return ("no scene labels in the training data (a 'scene' column: indoor/natural/urban or "
                "S3 codes 0/1/2)")


@HEADS.register("geocell")
class GeocellHead(CellsHead):
    """One classifier per geocell partition (coarse to fine), trained jointly.

    Options: label_smoothing (plain CE) or tau_km (PIGEON haversine smoothing over the cells'
    member means, typically 65-75 km; overrides label_smoothing); hidden / dropout (a shared MLP
    in front of the per-partition classifiers). Prediction multiplies each fine cell's probability
    by its parents' (``GeocellHierarchy.combine``, GeoEstimation's hierarchy).
    """

    location_priority = 10

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

    def loss(self, out: dict, batch: dict, class_weights: dict | None = None):
        parts = [self._partition_loss(n, out["logits"][n], batch, (class_weights or {}).get(f"cells/{n}"))
                 for n in self.names]
        parts = [p for p in parts if p is not None]
        return torch.stack(parts).mean() if parts else None

    def _partition_loss(self, name: str, logits: torch.Tensor, batch: dict, weight=None):
        gps = _gps(batch, logits.device)
        if self.tau_km and gps is not None:
            soft = haversine_smoothed_targets(gps, getattr(self, f"means_{name}"), self.tau_km)
            return classification_loss(logits, soft)
        target = cell_targets(batch, self.hierarchy, name, logits.device)
        return None if target is None else classification_loss(logits, target, self.label_smoothing, weight)

    def class_counts(self, targets: dict) -> dict[str, tuple]:
        cells = targets.get("cells") or {}
        return {f"cells/{p.name}": (cells[p.name], len(p)) for p in self.hierarchy.partitions if p.name in cells}

    def distributions(self, out: dict, predict, labels) -> list:
        """The finest cells' hierarchical probabilities at their member means."""
        from geocli.predict.record import Distribution

        finest = self.hierarchy.finest
        return [Distribution("geocell", finest.means, p, None, list(finest.cell_ids)) for p in self.probabilities(out)]

    def ranked(self, dist, k: int, predict) -> list[tuple]:
        """Top-k finest cells; point = member mean, optionally refined."""
        p, means = dist.probs, dist.points
        top = np.argsort(-p)[:k]
        points = refine_points(means, p, top, predict.refine_top, predict.refine_km) if predict.refine else means[top]
        return [(pt[0], pt[1], dist.cells[c], p[c]) for c, pt in zip(top, points)]

    def probabilities(self, out: dict) -> np.ndarray:
        """(B, n_finest) hierarchical cell probabilities."""
        probs = [out["logits"][n].detach().float().softmax(-1).cpu().numpy() for n in self.names]
        return self.hierarchy.combine(probs)


def bounded_coords(raw: torch.Tensor) -> torch.Tensor:
    """Unbounded (B, 2) outputs -> (lat, lon) in degrees inside the valid ranges."""
    return torch.stack([90.0 * torch.tanh(raw[:, 0]), 180.0 * torch.tanh(raw[:, 1])], dim=1)


@HEADS.register("regression")
class RegressionHead(Head):
    """Direct (lat, lon) regression. Options: loss ("mse", "equirectangular", "haversine"),
    hidden (MLP widths before the output; empty = one linear layer, as the study's first head)."""

    def __init__(self, spec: FeatureSpec, labels: LabelSpaces, loss: str = "haversine", hidden=()):
        super().__init__()
        coordinate_loss(torch.zeros(1, 2), torch.zeros(1, 2), loss)  # validate the name now
        self.kind = loss
        self.net = mlp([spec.embed_dim, *hidden, 2])

    location_priority = 40
    point_estimate = True

    def forward(self, features: dict) -> dict:
        return {"coords": bounded_coords(self.net(features["embedding"]))}

    def loss(self, out: dict, batch: dict, class_weights: dict | None = None):
        gps = _gps(batch, out["coords"].device)
        return None if gps is None else coordinate_loss(out["coords"], gps, self.kind)

    def locations(self, out: dict, k: int, predict, labels) -> list[list[tuple]]:
        """One point per sample, without a probability (a regression has no distribution)."""
        return [[(float(lat), float(lon), None, None)] for lat, lon in out["coords"].detach().float().cpu().numpy()]


@HEADS.register("grid_regression")
class GridRegressionHead(CellsHead):
    """Grid-cell classifier whose one-hot answer is concatenated to the embedding and fed to an MLP
    regressor 250-150-100-50 (Aydoslu et al.); loss = CE(grid) + equirectangular distance.

    The one-hot is straight-through: hard argmax forward, softmax gradient backward, so the
    regressor's loss also reaches the classifier. Options: partition (geocell partition used as the
    grid; default the coarsest), hidden, loss, label_smoothing.
    """

    location_priority = 30
    point_estimate = True

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

    def loss(self, out: dict, batch: dict, class_weights: dict | None = None):
        device = out["logits"].device
        target = cell_targets(batch, self.hierarchy, self.partition, device)
        gps = _gps(batch, device)
        parts = []
        if target is not None:
            parts.append(classification_loss(out["logits"], target, self.label_smoothing))
        if gps is not None:
            parts.append(coordinate_loss(out["coords"], gps, self.kind))
        return sum(parts) if parts else None

    def locations(self, out: dict, k: int, predict, labels) -> list[list[tuple]]:
        """The regressed point of each sample, with its grid cell and that cell's probability."""
        probs = out["logits"].detach().float().softmax(-1).cpu()
        conf, idx = probs.max(-1)
        part = self.hierarchy.partitions[self.hierarchy.names.index(self.partition)]
        coords = out["coords"].detach().float().cpu().numpy()
        return [[(float(c[0]), float(c[1]), part.cell_ids[int(i)], float(p))] for c, i, p in zip(coords, idx, conf)]
