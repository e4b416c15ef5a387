"""Train/validation splits and the choice among them.

``group`` keeps every view of one place (``location_id`` / ``sequence``) on one side;
``spatial-kmeans`` clusters coordinates and holds out whole clusters, the leakage guard of the
ViT16-vs-DINOv2 study (neighbouring photos never straddle train and validation).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from geocli.errors import UsageError
from geocli.datasets.manifest import Manifest

SPLITS = ("random", "group", "spatial-kmeans")


def _check_fraction(val_fraction: float) -> None:
    if not 0 < val_fraction < 1:
        raise UsageError(f"validation fraction must be in (0, 1), got {val_fraction}")


def random_split(n: int, val_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val) of a random image-level split."""
    _check_fraction(val_fraction)
    order = np.random.default_rng(seed).permutation(n)
    n_val = max(1, int(round(n * val_fraction)))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def group_split(groups, val_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val) with whole groups held out; rows without a group are their own group."""
    _check_fraction(val_fraction)
    keys = np.array([g if g is not None else f"__row{i}" for i, g in enumerate(groups)], dtype=object)
    unique = np.array(sorted(set(keys)), dtype=object)
    if len(unique) < 2:
        raise UsageError("a group split needs at least two groups (location_id / sequence values)")
    shuffled = np.random.default_rng(seed).permutation(unique)
    n_val = min(len(unique) - 1, max(1, int(round(len(unique) * val_fraction))))
    val_mask = np.isin(keys, shuffled[:n_val])
    return np.flatnonzero(~val_mask), np.flatnonzero(val_mask)


def spatial_kmeans_split(
    lat, lon, val_fraction: float = 0.2, n_clusters: int | None = None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val): K-means over coordinates, whole clusters held out for validation."""
    from sklearn.cluster import KMeans

    from geocli.geo.distance import to_unit_vectors

    _check_fraction(val_fraction)
    points = to_unit_vectors(lat, lon)
    k = n_clusters or int(np.clip(len(points) // 20, 2, 100))
    if len(points) < k:
        raise UsageError(f"spatial-kmeans needs at least {k} samples, got {len(points)}")
    labels = KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(points)
    return group_split(labels.tolist(), val_fraction, seed)


def split_manifest(
    manifest: Manifest, method: str, val_fraction: float = 0.2, seed: int = 0
) -> tuple[Manifest, Manifest]:
    """(train, val) manifests by ``method`` (one of ``SPLITS``)."""
    if method == "random":
        tr, va = random_split(len(manifest), val_fraction, seed)
    elif method == "group":
        if all(g is None for g in manifest.group):
            raise UsageError(f"{manifest.source} has no location_id/sequence column for --split group")
        tr, va = group_split(manifest.group, val_fraction, seed)
    elif method == "spatial-kmeans":
        tr, va = spatial_kmeans_split(manifest.lat, manifest.lon, val_fraction, seed=seed)
    else:
        raise UsageError(f"unknown split {method!r}; valid: {', '.join(SPLITS)}")
    return manifest.subset(tr), manifest.subset(va)


def inverse_frequency_class_weights(labels, n_classes: int) -> np.ndarray:
    """Per-class loss weight 1/frequency (the ViT+CLIP thesis); unseen classes get weight 0."""
    counts = np.bincount(np.asarray(labels, np.int64), minlength=n_classes).astype(np.float64)
    w = np.zeros(n_classes)
    seen = counts > 0
    w[seen] = 1.0 / counts[seen]
    return w * (seen.sum() / w.sum())


def has_groups(manifest: Manifest) -> bool:
    return any(g is not None for g in manifest.group) and len(set(manifest.group)) < len(manifest)


def choose_split(manifest: Manifest, requested: str | None, log: Callable[[str], None]) -> str:
    """The split method: as asked, else group when views share a location, else spatial-kmeans."""
    grouped = has_groups(manifest)
    if requested is None:
        return "group" if grouped else "spatial-kmeans"
    if requested == "random" and grouped:
        log("warning: --split random puts views of the same location on both sides (leakage); "
            "validation numbers will be optimistic. Use --split group")
    return requested
