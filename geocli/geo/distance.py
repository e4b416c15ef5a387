"""Great-circle distance: the one implementation used everywhere (metrics, losses, cells, retrieval).

Haversine on a sphere of radius ``EARTH_RADIUS_KM`` = 6371.0088 km, the IUGG mean Earth radius.
"Within X km" always means ``distance <= X`` (as GeoEstimation and GeoCLIP count).
Works on NumPy arrays (float64) and on torch tensors (differentiable, for losses), broadcasting.
"""
from __future__ import annotations

import numpy as np

EARTH_RADIUS_KM = 6371.0088


def _namespace(x):
    """NumPy for arrays and scalars, torch for tensors: one formula serves both."""
    if type(x).__module__.startswith("torch"):
        import torch

        return torch, torch.asin
    return np, np.arcsin


def haversine_km(lat1, lon1, lat2, lon2):
    """Distance in km between (lat1, lon1) and (lat2, lon2), degrees; arrays broadcast."""
    xp, asin = _namespace(lat1)
    if xp is np:
        lat1, lon1, lat2, lon2 = (np.asarray(v, dtype=np.float64) for v in (lat1, lon1, lat2, lon2))
    phi1, phi2 = xp.deg2rad(lat1), xp.deg2rad(lat2)
    dphi = phi2 - phi1
    dlam = xp.deg2rad(lon2 - lon1)
    a = xp.sin(dphi / 2) ** 2 + xp.cos(phi1) * xp.cos(phi2) * xp.sin(dlam / 2) ** 2
    a = xp.clip(a, 0.0, 1.0)
    return 2 * EARTH_RADIUS_KM * asin(xp.sqrt(a))


def pairwise_haversine_km(lat1, lon1, lat2, lon2):
    """Matrix of distances: rows are the first set of points, columns the second."""
    xp, _ = _namespace(lat1)
    if xp is np:
        lat1, lon1 = np.asarray(lat1, np.float64)[:, None], np.asarray(lon1, np.float64)[:, None]
        lat2, lon2 = np.asarray(lat2, np.float64)[None, :], np.asarray(lon2, np.float64)[None, :]
    else:
        lat1, lon1, lat2, lon2 = lat1[:, None], lon1[:, None], lat2[None, :], lon2[None, :]
    return haversine_km(lat1, lon1, lat2, lon2)


def to_unit_vectors(lat, lon) -> np.ndarray:
    """(N, 3) points on the unit sphere; chord distance there orders like great-circle distance."""
    phi, lam = np.deg2rad(np.asarray(lat, np.float64)), np.deg2rad(np.asarray(lon, np.float64))
    return np.stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)], axis=-1)


def chord_to_km(chord):
    """Unit-sphere chord length -> great-circle km."""
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.clip(np.asarray(chord) / 2, 0.0, 1.0))


def km_to_chord(km):
    """Great-circle km -> unit-sphere chord length (for KD-tree radius queries)."""
    return 2 * np.sin(np.asarray(km, np.float64) / (2 * EARTH_RADIUS_KM))


def mean_coordinate(lat, lon, weights=None) -> tuple[float, float]:
    """Spherical mean of points (handles the antimeridian), optionally weighted."""
    v = to_unit_vectors(lat, lon)
    w = np.ones(len(v)) if weights is None else np.asarray(weights, np.float64)
    m = (v * w[:, None]).sum(axis=0)
    norm = np.linalg.norm(m)
    if norm < 1e-12:
        return float(np.mean(lat)), float(np.mean(lon))
    m /= norm
    return float(np.rad2deg(np.arcsin(np.clip(m[2], -1, 1)))), float(np.rad2deg(np.arctan2(m[1], m[0])))


def validate_coordinates(lat, lon) -> np.ndarray | bool:
    """Boolean mask of finite coordinates with |lat| <= 90 and |lon| <= 180 (a bool for one point)."""
    if isinstance(lat, (float, int)) and isinstance(lon, (float, int)):  # one point: no array round trip
        return abs(lat) <= 90 and abs(lon) <= 180  # NaN compares false, infinities are out of range
    lat, lon = np.asarray(lat, np.float64), np.asarray(lon, np.float64)
    return np.isfinite(lat) & np.isfinite(lon) & (np.abs(lat) <= 90) & (np.abs(lon) <= 180)


HALF_CIRCUMFERENCE_KM = float(np.pi * EARTH_RADIUS_KM)  # the farthest any point can be
CONFIDENCE_MASS = 0.9


def mass_radius_km(lat: float, lon: float, lats, lons, weights, mass: float = CONFIDENCE_MASS,
                   total: float | None = None, extent_km=0.0) -> float:
    """The smallest radius around (lat, lon) holding ``mass`` of a distribution given as weighted
    points (``total``: the whole distribution's mass, default the weights' sum; mass not among
    the points is taken to lie farthest away). ``extent_km`` widens each point (a point standing
    for "within 25 km of here" counts as reached only 25 km further out)."""
    w = np.asarray(weights, np.float64)
    d = haversine_km(lat, lon, np.asarray(lats, np.float64), np.asarray(lons, np.float64))
    d = np.minimum(d + np.asarray(extent_km, np.float64), HALF_CIRCUMFERENCE_KM)
    total = float(w.sum()) if total is None else float(total)
    if total <= 0 or w.size == 0:
        return HALF_CIRCUMFERENCE_KM
    order = np.argsort(d, kind="stable")
    reached = np.cumsum(w[order]) >= mass * total * (1 - 1e-9)
    return float(d[order][np.argmax(reached)]) if reached.any() else HALF_CIRCUMFERENCE_KM
