"""Geocells: an adaptive partition of the training coordinates on Uber's H3 hierarchical grid.

Like GeoEstimation's S2 partitions (``cells_50_5000`` and friends): start from coarse H3 cells,
split a cell into its children while it holds more than ``max_samples`` points (up to
``max_resolution``), then drop cells holding fewer than ``min_samples``. Several partitions at
different thresholds (coarse / middle / fine) form a ``GeocellHierarchy``.

A point belongs to the partition cell that is its H3 ancestor. Points whose ancestor cell was
dropped (a sparse region) go to the partition cell with the nearest member-mean, so every
coordinate gets a label. Each cell knows its H3 id, its H3 centre and the spherical mean of its
members' coordinates (the better point to predict).
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from geocli.geo.distance import mean_coordinate, pairwise_haversine_km, validate_coordinates

FINEST_RESOLUTION = 9  # H3 res 9 cells are ~0.1 km²; finer splitting is never useful here


def _h3():
    import h3

    return h3


def _leaf_cells(lat: np.ndarray, lon: np.ndarray) -> list[str]:
    h3 = _h3()
    return [h3.latlng_to_cell(float(a), float(b), FINEST_RESOLUTION) for a, b in zip(lat, lon)]


@dataclass
class PartitionSpec:
    name: str
    min_samples: int
    max_samples: int
    start_resolution: int = 0
    max_resolution: int = 7

    def __post_init__(self):
        if not 0 < self.min_samples <= self.max_samples:
            raise ValueError(f"{self.name}: need 0 < min_samples <= max_samples")
        if not 0 <= self.start_resolution <= self.max_resolution <= FINEST_RESOLUTION:
            raise ValueError(f"{self.name}: resolutions must satisfy 0 <= start <= max <= {FINEST_RESOLUTION}")


#: GeoEstimation's three partitions (min 50; max 5000 / 2000 / 1000 images per cell).
GEOESTIMATION_SPECS = (
    PartitionSpec("coarse", 50, 5000),
    PartitionSpec("middle", 50, 2000),
    PartitionSpec("fine", 50, 1000),
)


class GeocellPartition:
    """One partition: parallel arrays of cell ids, H3 centres, member means and counts."""

    def __init__(self, name: str, cell_ids, centres, means, counts):
        self.name = name
        self.cell_ids = list(cell_ids)
        self.centres = np.asarray(centres, np.float64).reshape(-1, 2)
        self.means = np.asarray(means, np.float64).reshape(-1, 2)
        self.counts = np.asarray(counts, np.int64)
        self._index = {c: i for i, c in enumerate(self.cell_ids)}
        self._resolutions = sorted({_h3().get_resolution(c) for c in self.cell_ids})

    def __len__(self) -> int:
        return len(self.cell_ids)

    @classmethod
    def build(cls, lat, lon, spec: PartitionSpec) -> "GeocellPartition":
        lat, lon = np.asarray(lat, np.float64), np.asarray(lon, np.float64)
        if not validate_coordinates(lat, lon).all():
            raise ValueError("geocells need valid coordinates (|lat| <= 90, |lon| <= 180, finite)")
        groups = _split_adaptively(_leaf_cells(lat, lon), spec)
        kept = {c: m for c, m in groups.items() if len(m) >= spec.min_samples}
        if not kept:
            raise ValueError(
                f"partition {spec.name!r}: no cell holds {spec.min_samples} samples "
                f"({len(lat)} coordinates); lower min_samples"
            )
        ids = sorted(kept)
        h3 = _h3()
        centres = [h3.cell_to_latlng(c) for c in ids]
        means = [mean_coordinate(lat[kept[c]], lon[kept[c]]) for c in ids]
        return cls(spec.name, ids, centres, means, [len(kept[c]) for c in ids])

    def assign(self, lat, lon) -> np.ndarray:
        """Cell index of each coordinate (ancestor cell, else nearest member-mean)."""
        lat, lon = np.atleast_1d(np.asarray(lat, np.float64)), np.atleast_1d(np.asarray(lon, np.float64))
        leaves = _leaf_cells(lat, lon)
        out = np.array([self._ancestor_index(leaf) for leaf in leaves], np.int64)
        orphans = np.flatnonzero(out < 0)
        if len(orphans):
            d = pairwise_haversine_km(lat[orphans], lon[orphans], self.means[:, 0], self.means[:, 1])
            out[orphans] = d.argmin(axis=1)
        return out

    def _ancestor_index(self, leaf: str) -> int:
        h3 = _h3()
        for res in self._resolutions:
            idx = self._index.get(h3.cell_to_parent(leaf, res))
            if idx is not None:
                return idx
        return -1

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "cell_ids": self.cell_ids,
            "centres": self.centres.tolist(),
            "means": self.means.tolist(),
            "counts": self.counts.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "GeocellPartition":
        return cls(d["name"], d["cell_ids"], d["centres"], d["means"], d["counts"])


def _split_adaptively(leaves: list[str], spec: PartitionSpec) -> dict[str, list[int]]:
    """Group sample indices into cells, splitting any cell over ``max_samples``."""
    h3 = _h3()
    pending = _group_by_parent(leaves, range(len(leaves)), spec.start_resolution)
    done: dict[str, list[int]] = {}
    while pending:
        cell, members = pending.popitem()
        res = h3.get_resolution(cell)
        if len(members) > spec.max_samples and res < spec.max_resolution:
            pending.update(_group_by_parent(leaves, members, res + 1))
        else:
            done[cell] = members
    return done


def _group_by_parent(leaves: list[str], members, resolution: int) -> dict[str, list[int]]:
    h3 = _h3()
    groups: dict[str, list[int]] = defaultdict(list)
    for i in members:
        groups[h3.cell_to_parent(leaves[i], resolution)].append(i)
    return dict(groups)


class GeocellHierarchy:
    """Several partitions, coarse to fine, with the parent map used for hierarchical prediction."""

    def __init__(self, partitions: list[GeocellPartition]):
        if not partitions:
            raise ValueError("a hierarchy needs at least one partition")
        self.partitions = partitions
        finest = partitions[-1]
        # parents[k][i]: index in partition k of the cell that holds fine cell i's member mean
        self.parents = [p.assign(finest.means[:, 0], finest.means[:, 1]) for p in partitions]

    @classmethod
    def build(cls, lat, lon, specs=GEOESTIMATION_SPECS) -> "GeocellHierarchy":
        return cls([GeocellPartition.build(lat, lon, s) for s in specs])

    @property
    def finest(self) -> GeocellPartition:
        return self.partitions[-1]

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.partitions]

    def assign(self, lat, lon) -> dict[str, np.ndarray]:
        """Cell index of each coordinate in every partition."""
        return {p.name: p.assign(lat, lon) for p in self.partitions}

    def combine(self, probabilities: list[np.ndarray]) -> np.ndarray:
        """Hierarchical score of each fine cell: its probability times its parents' (GeoEstimation).

        ``probabilities[k]`` is (B, len(partition k)); returns (B, len(finest)), renormalised.
        """
        score = np.ones((probabilities[0].shape[0], len(self.finest)))
        for probs, parent in zip(probabilities, self.parents):
            score = score * np.asarray(probs)[:, parent]
        return score / np.clip(score.sum(axis=1, keepdims=True), 1e-30, None)

    def to_dict(self) -> dict:
        return {"partitions": [p.to_dict() for p in self.partitions]}

    @classmethod
    def from_dict(cls, d: dict) -> "GeocellHierarchy":
        return cls([GeocellPartition.from_dict(p) for p in d["partitions"]])


#: Target cell counts (coarse, middle, fine) when the thresholds are scaled to the data size.
CELL_TARGETS = (4, 12, 40)


def cell_specs(n_train: int, cells: list[list[int]] | None = None) -> list[PartitionSpec]:
    """Geocell partitions: the given [[min, max], ...], else GeoEstimation's scaled to ``n_train``.

    Scaled: partition k aims at ~CELL_TARGETS[k] cells (max = n / target, at most GeoEstimation's
    5000/2000/1000) and keeps cells of at least max/5 samples (at most 50), so 400 photos still
    give several cells per level while a million photos get GeoEstimation's own thresholds.
    """
    names = ("coarse", "middle", "fine")
    if cells:
        return [PartitionSpec(names[i] if len(cells) <= 3 else f"p{i}", int(a), int(b)) for i, (a, b) in enumerate(cells)]
    specs = []
    for name, target, ref in zip(names, CELL_TARGETS, GEOESTIMATION_SPECS):
        top = int(min(ref.max_samples, max(4, math.ceil(n_train / target))))
        specs.append(PartitionSpec(name, int(min(ref.min_samples, max(1, top // 5))), top))
    return specs
