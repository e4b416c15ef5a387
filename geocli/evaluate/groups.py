"""Scoring groups of photos (``geocli eval --group-by location_id``): one row per group.

A group's true location is the spherical mean of its photos' coordinates (the four Street View
headings of one place share theirs); its prediction is the combined record ``geocli predict
--group-by`` writes (``geocli.predict.grouping``), named ``group KEY``. Every group counts: a group
whose photos all failed is missing, as a missing image is.
"""
from __future__ import annotations

import numpy as np

from geocli.datasets.manifest import Manifest
from geocli.errors import UsageError
from geocli.geo.distance import mean_coordinate

GROUP_COLUMNS = ("location_id", "sequence", "sequence_id", "group", "place_id")


def image_groups(manifest: Manifest, column: str) -> dict[str, str]:
    """Image path -> group key, from the manifest's group column."""
    if column not in GROUP_COLUMNS:
        raise UsageError(f"--group-by {column}: eval groups by the manifest's group column, one of {list(GROUP_COLUMNS)}")
    if not manifest.group or not any(manifest.group):
        raise UsageError(f"--group-by {column}: {manifest.source} has no {column} column")
    return {img: str(g) for img, g in zip(manifest.images, manifest.group) if g not in (None, "")}


def group_manifest(manifest: Manifest, groups: dict[str, str]) -> Manifest:
    """One row per group (image ``group KEY``) at the mean of its photos' coordinates."""
    members: dict[str, list[int]] = {}
    for i, img in enumerate(manifest.images):
        if img in groups:
            members.setdefault(groups[img], []).append(i)
    keys = list(members)
    means = np.array([mean_coordinate(manifest.lat[idx], manifest.lon[idx]) for idx in members.values()],
                     np.float64).reshape(-1, 2)
    country = [manifest.country[idx[0]] if manifest.country else None for idx in members.values()]
    return Manifest(f"{manifest.source} (groups by {len(keys)} keys)", [f"group {k}" for k in keys],
                    means[:, 0], means[:, 1], country=country, scene=[None] * len(keys), group=keys,
                    rows=[manifest.rows[idx[0]] if manifest.rows else 0 for idx in members.values()])
