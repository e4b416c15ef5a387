"""The evidence model's confidence radius: how far from its top guess 90% of its belief reaches.

The evidence model's belief is a mixture: each place candidate's probability sits within
``PLACE_KM`` of its point (EXIF GPS: at its point); each country-level candidate's is spread over that country's cities
(GeoNames, over 15,000 people) in proportion to their population; the probability left to
"unknown" is spread the same way over the whole world's cities.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from geocli.evidence.calibration import PLACE_KM, claim_of
from geocli.geo.distance import mass_radius_km


@lru_cache(maxsize=1)
def _city_table() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from geocli.evidence.gazetteer import _cities

    rows = _cities()
    lat = np.array([r["latitude"] for r in rows], np.float64)
    lon = np.array([r["longitude"] for r in rows], np.float64)
    pop = np.array([max(int(r["population"]), 1) for r in rows], np.float64)
    return lat, lon, pop, np.array([r["countrycode"] for r in rows])


def _spread(code: str | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cities of one country (all cities for ``None``) and their population shares."""
    lat, lon, pop, codes = _city_table()
    sel = slice(None) if code is None else codes == code
    share = pop[sel] / pop[sel].sum() if pop[sel].size else pop[sel]
    return lat[sel], lon[sel], share


def _mass(cand, p: float) -> tuple[np.ndarray, ...]:
    """Where one candidate's probability lies: (lats, lons, weights, extents)."""
    if claim_of(cand.kind) == "place" or not cand.country:
        extent = 0.0 if cand.kind == "exif" else PLACE_KM  # a GPS tag is a point
        return np.array([cand.lat]), np.array([cand.lon]), np.array([p]), np.array([extent])
    lat, lon, share = _spread(cand.country)
    return lat, lon, p * share, np.zeros(lat.size)


def evidence_radius_km(ranked: list[tuple], unknown: float) -> float | None:
    """The smallest radius around the top candidate holding 90% of the mixture; ``ranked`` is
    ``(candidate, probability)`` best first (``combine.ranked``). None without candidates."""
    if not ranked:
        return None
    lat, lon, share = _spread(None)
    parts = [_mass(c, p) for c, p in ranked] + [(lat, lon, max(unknown, 0.0) * share, np.zeros(lat.size))]
    lats, lons, weights, extents = (np.concatenate(column) for column in zip(*parts))
    top = ranked[0][0]
    radius = mass_radius_km(top.lat, top.lon, lats, lons, weights, total=1.0, extent_km=extents)
    return round(radius, 1)
