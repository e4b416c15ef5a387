"""A world grid of countries for vectorised lookup, rasterised from the boundary polygons that
``timezonefinder`` ships (OpenStreetMap's time-zone boundaries, land plus territorial waters, each
zone mapped to its ISO country by tzdata's ``zone.tab``).

Each cell of ``CELL_DEG`` degrees holds the country that covers it whole, ``NO_COUNTRY`` where no
country polygon touches it, or ``MIXED`` where a border or coast crosses it. A cell is whole only
when its four corners fall in the same country and no boundary vertex (boundaries densified to a
quarter cell) lies inside it, so a lookup in a whole cell gives the polygon test's answer; points
in mixed cells are left to the exact test. Cells without a country whose every point lies farther
than ``COASTAL_KM`` from any GeoNames town are ``OPEN_OCEAN``: no country, without a search. Rebuild after a ``timezonefinder-data`` update with
``python -m geocli.geo.country_grid`` (about two minutes).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

CELL_DEG = 0.05
NO_COUNTRY = 0
OPEN_OCEAN = 254
MIXED = 255
GRID_FILE = Path(__file__).resolve().parent.parent / "data" / "country_grid.npz"


def zone_polygons() -> Iterator[tuple[str, object]]:
    """(ISO alpha-2 code, shapely Polygon) for every time-zone polygon that belongs to a country."""
    import shapely
    from timezonefinder import TimezoneFinder

    from geocli.geo.country_sources import zone_to_country

    finder, countries = TimezoneFinder(), zone_to_country()
    for zone in finder.timezone_names:
        code = countries.get(zone)
        if code is None:  # ocean (Etc/GMT±N) and zones without a country: not land of any country
            continue
        for rings in finder.get_geometry(tz_name=zone, coords_as_pairs=False):
            shell, *holes = (np.column_stack(r) for r in rings)
            yield code, shapely.Polygon(shell, holes)


def build_grid(cell_deg: float = CELL_DEG, polygons=None) -> tuple[np.ndarray, list[str]]:
    """(cell labels uint8 [rows, cols], country codes: label k means codes[k - 1])."""
    rows, cols = round(180 / cell_deg), round(360 / cell_deg)
    corners = np.zeros((rows + 1, cols + 1), np.uint8)
    crossed = np.zeros((rows, cols), bool)
    codes: list[str] = []
    for code, polygon in polygons if polygons is not None else zone_polygons():
        if code not in codes:
            codes.append(code)
        label = codes.index(code) + 1
        _fill_corners(corners, polygon, label, cell_deg)
        _mark_crossed(crossed, polygon, cell_deg)
    same = (corners[:-1, :-1] == corners[1:, :-1]) & (corners[:-1, :-1] == corners[:-1, 1:]) \
        & (corners[:-1, :-1] == corners[1:, 1:])
    labels = np.where(same & ~crossed, corners[:-1, :-1], MIXED).astype(np.uint8)
    if len(codes) >= OPEN_OCEAN:
        raise ValueError(f"{len(codes)} countries do not fit a uint8 grid")
    return mark_open_ocean(labels, cell_deg), codes


def mark_open_ocean(labels: np.ndarray, cell_deg: float) -> np.ndarray:
    """``OPEN_OCEAN`` for no-country cells whose centre is farther than ``COASTAL_KM`` plus the
    cell's half diagonal from every town (so no point in them can be within ``COASTAL_KM``)."""
    from geocli.geo.country_sources import COASTAL_KM, places_tree
    from geocli.geo.distance import chord_to_km, haversine_km, to_unit_vectors

    i, j = np.nonzero(labels == NO_COUNTRY)
    lat, lon = -90 + (i + 0.5) * cell_deg, -180 + (j + 0.5) * cell_deg
    half_diagonal = haversine_km(lat - cell_deg / 2, lon - cell_deg / 2, lat + cell_deg / 2, lon + cell_deg / 2) / 2
    tree, _codes = places_tree()
    far = np.zeros(len(i), bool)
    for start in range(0, len(i), 1_000_000):
        part = slice(start, start + 1_000_000)
        chord, _ = tree.query(to_unit_vectors(lat[part], lon[part]))
        far[part] = chord_to_km(chord) > COASTAL_KM + half_diagonal[part]
    out = labels.copy()
    out[i[far], j[far]] = OPEN_OCEAN
    return out


def _fill_corners(corners: np.ndarray, polygon, label: int, cell_deg: float) -> None:
    import shapely

    shapely.prepare(polygon)
    minx, miny, maxx, maxy = polygon.bounds
    i0, i1 = int(np.ceil((miny + 90) / cell_deg)), int(np.floor((maxy + 90) / cell_deg))
    j0, j1 = int(np.ceil((minx + 180) / cell_deg)), int(np.floor((maxx + 180) / cell_deg))
    if i1 < i0 or j1 < j0:
        return
    lat = -90 + np.arange(i0, i1 + 1) * cell_deg
    lon = -180 + np.arange(j0, j1 + 1) * cell_deg
    x, y = np.meshgrid(lon, lat)
    inside = shapely.contains_xy(polygon, x, y)
    corners[i0:i1 + 1, j0:j1 + 1][inside] = label


def _mark_crossed(crossed: np.ndarray, polygon, cell_deg: float) -> None:
    import shapely

    boundary = shapely.segmentize(polygon.boundary, cell_deg / 4)
    xy = shapely.get_coordinates(boundary)
    rows, cols = crossed.shape
    i = np.clip(np.floor((xy[:, 1] + 90) / cell_deg).astype(np.int64), 0, rows - 1)
    j = np.clip(np.floor((xy[:, 0] + 180) / cell_deg).astype(np.int64), 0, cols - 1)
    crossed[i, j] = True


@dataclass(frozen=True)
class CountryGrid:
    """Cell labels and what they mean: ``codes[label]`` (``codes[0]``, no country polygon, and
    ``codes[OPEN_OCEAN]`` are None), or ``MIXED``."""

    labels: np.ndarray
    codes: np.ndarray
    cell_deg: float

    def labels_at(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        rows, cols = self.labels.shape
        i = np.clip(((lat + 90) / self.cell_deg).astype(np.int64), 0, rows - 1)
        j = np.clip(((lon + 180) / self.cell_deg).astype(np.int64), 0, cols - 1)
        return self.labels[i, j]


def load_grid(path: Path = GRID_FILE) -> CountryGrid:
    """The grid shipped with geocli (or one rebuilt to ``path``)."""
    with np.load(path) as data:
        codes = np.full(MIXED + 1, None, object)
        names = data["codes"].tolist()
        codes[1:len(names) + 1] = names
        return CountryGrid(data["labels"], codes, float(data["cell_deg"]))


def save_grid(path: Path, labels: np.ndarray, codes: list[str], cell_deg: float, data_version: str) -> None:
    np.savez_compressed(path, labels=labels, codes=np.array(codes), cell_deg=cell_deg,
                        data_version=np.array(data_version))


def _data_version() -> str:
    from timezonefinder import TimezoneFinder

    return str(getattr(TimezoneFinder(), "data_version", "unknown"))


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else GRID_FILE
    grid, names = build_grid()
    save_grid(out, grid, names, CELL_DEG, _data_version())
    mixed = float((grid == MIXED).mean())
    print(f"{out}: {grid.shape[0]}x{grid.shape[1]} cells, {len(names)} countries, {mixed:.1%} mixed", file=sys.stderr)
