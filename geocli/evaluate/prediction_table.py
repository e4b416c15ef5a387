"""Predictions as columns: the one form ``geocli eval`` (and training's validation) scores, whatever
file or model the predictions came from.

One entry per record (its image name, ``ok``, the top guess's stated probability, the confidence
radius) and every record's guesses flattened in rank order behind offsets, likewise a record's
country head. Records given as dicts (a model's output, a JSON array) go through ``table_from_records``
one at a time; ``predictions_file`` reads JSONL straight into these columns with pyarrow. Either
way ``check_ranges`` then applies the same rules, naming the first bad record.

A record with ``ok: false`` keeps no guesses (it scores as "don't know"); where a record has no
guesses it states no probability or radius either.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import pyarrow as pa

from geocli.errors import ManifestError
from geocli.geo.distance import validate_coordinates


@dataclass
class PredictionTable:
    """Records as row-aligned columns; guess ``j`` of record ``i`` is at ``guess_offsets[i] + j``."""

    images: pa.Array  # string: the image each record names
    ok: np.ndarray  # bool: False for an error record
    guess_offsets: np.ndarray  # int64, len(records) + 1
    guess_lat: np.ndarray
    guess_lon: np.ndarray
    guess_country: pa.Array  # string, upper-case; null where the guess states none
    probability: np.ndarray  # float64: the top guess's stated probability (see ``has_probability``)
    has_probability: np.ndarray  # bool
    radius_km: np.ndarray  # float64: the record's confidence radius (see ``has_radius``)
    has_radius: np.ndarray  # bool
    head_offsets: np.ndarray  # int64: the record's country-head ranking, best first
    head_country: pa.Array  # string, upper-case
    numbers: np.ndarray  # int64: each record's line (JSONL, CSV) or position (JSON array), for messages
    guess_numbers: np.ndarray | None = None  # each guess's line where it differs from its record's (CSV)

    def __len__(self) -> int:
        return len(self.ok)

    @property
    def guess_counts(self) -> np.ndarray:
        return np.diff(self.guess_offsets)

    @property
    def head_counts(self) -> np.ndarray:
        return np.diff(self.head_offsets)

    def top_guesses(self) -> tuple[np.ndarray, np.ndarray]:
        """(lat, lon) of each record's first guess; NaN where it has none."""
        lat, lon = np.full(len(self), np.nan), np.full(len(self), np.nan)
        has = self.guess_counts > 0
        first = self.guess_offsets[:-1][has]
        lat[has], lon[has] = self.guess_lat[first], self.guess_lon[first]
        return lat, lon


def offsets(counts) -> np.ndarray:
    """Offsets (len + 1, starting at 0) of consecutive runs of the given lengths."""
    out = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(counts, out=out[1:])
    return out


def expand(starts: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(owner, index) for every item of the runs ``starts[k] : starts[k] + counts[k]``, in order."""
    counts = np.asarray(counts, np.int64)
    owner = np.repeat(np.arange(len(counts)), counts)
    within = np.arange(int(counts.sum())) - np.repeat(offsets(counts)[:-1], counts)
    return owner, np.asarray(starts, np.int64)[owner] + within


class TableBuilder:
    """Collects records one at a time (values already of the right types) into a ``PredictionTable``."""

    def __init__(self) -> None:
        self.images: list[str] = []
        self.ok: list[bool] = []
        self.counts: list[int] = []
        self.lat: list[float] = []
        self.lon: list[float] = []
        self.country: list[str | None] = []
        self.guess_numbers: list[int] = []
        self.probability: list[float | None] = []
        self.radius: list[float | None] = []
        self.head_counts: list[int] = []
        self.heads: list[str] = []
        self.numbers: list[int] = []

    def add(self, image: str, ok: bool, guesses: list[tuple[float, float, str | None, int]],
            probability: float | None, radius_km: float | None, heads: list[str], number: int) -> None:
        """One record: guesses as (lat, lon, country or None, line) in rank order."""
        guesses = guesses if ok else []
        self.images.append(image)
        self.ok.append(ok)
        self.counts.append(len(guesses))
        for lat, lon, country, line in guesses:
            self.lat.append(lat)
            self.lon.append(lon)
            self.country.append(country.upper() if isinstance(country, str) and country else None)
            self.guess_numbers.append(line)
        self.probability.append(probability if guesses else None)
        self.radius.append(radius_km if guesses else None)
        self.head_counts.append(len(heads))
        self.heads.extend(heads)
        self.numbers.append(number)

    def table(self) -> PredictionTable:
        probability, radius = (np.array([np.nan if v is None else v for v in values], np.float64)
                               for values in (self.probability, self.radius))
        return PredictionTable(
            images=pa.array(self.images, pa.string()), ok=np.array(self.ok, bool),
            guess_offsets=offsets(self.counts), guess_lat=np.array(self.lat, np.float64),
            guess_lon=np.array(self.lon, np.float64), guess_country=pa.array(self.country, pa.string()),
            probability=probability, has_probability=np.array([v is not None for v in self.probability], bool),
            radius_km=radius, has_radius=np.array([v is not None for v in self.radius], bool),
            head_offsets=offsets(self.head_counts), head_country=pa.array(self.heads, pa.string()),
            numbers=np.array(self.numbers, np.int64), guess_numbers=np.array(self.guess_numbers, np.int64),
        )


def table_from_records(records: Iterable[dict], path: Path | str = "<predictions>",
                       numbers: Iterable[int] | None = None, check: bool = True) -> PredictionTable:
    """``geocli predict`` result records (dicts) as a table, ranges checked unless ``check`` is
    off (training's validation scores a diverged model's NaN guesses as misses); record ``k`` is
    named by ``numbers[k]`` (default: its position from 1) in messages."""
    builder = TableBuilder()
    numbers = iter(numbers) if numbers is not None else None
    for k, record in enumerate(records, start=1):
        add_record(builder, record, path, next(numbers) if numbers is not None else k)
    table = builder.table()
    if check:
        check_ranges(table, path)
    return table


def add_record(builder: TableBuilder, record, path: Path | str, n: int) -> None:
    """One ``geocli predict`` record: its structure and value types are checked here, ranges by
    ``check_ranges`` (for every record at once)."""
    if not isinstance(record, dict) or "image" not in record:
        raise ManifestError(f"{path}: record {n}: expected an object with an 'image' key")
    guesses = record.get("predictions") or []
    if not isinstance(guesses, list) or not all(isinstance(p, dict) for p in guesses):
        raise ManifestError(f"{path}: record {n}: 'predictions' must be a list of objects with lat and lon")
    ranked = sorted(guesses, key=lambda p: parse_rank(p.get("rank"), path, n))
    ok = record.get("ok") is not False
    points = [(*coordinate(p.get("lat"), p.get("lon"), path, n), p.get("country"), n) for p in ranked] if ok else []
    probability = radius = None
    if points:
        probability = optional_number(ranked[0].get("probability"), "probability", path, n)
        radius = optional_number(record.get("confidence_radius_km"), "confidence_radius_km", path, n)
    heads = [c for c in record.get("country_head") or [] if isinstance(c, dict) and c.get("country")]
    ranked_heads = sorted(heads, key=lambda c: parse_rank(c.get("rank"), path, n))
    builder.add(str(record["image"]), ok, points, probability, radius,
                [str(c["country"]).upper() for c in ranked_heads], n)


def parse_rank(value, path: Path | str, n: int) -> int:
    if value in (None, ""):
        return 1
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ManifestError(f"{path}: record {n}: rank is not a whole number: {value!r}") from None


def number(value) -> float:
    """A JSON/CSV value as a float; booleans are not numbers here (``float(True)`` is 1.0)."""
    if isinstance(value, bool):
        raise TypeError("a boolean is not a number")
    return float(value)


def coordinate(lat, lon, path: Path | str, n: int) -> tuple[float, float]:
    try:
        return number(lat), number(lon)
    except (TypeError, ValueError):
        raise ManifestError(f"{path}: record {n}: prediction lat/lon not numbers: {lat!r}, {lon!r}") from None


def optional_number(value, name: str, path: Path | str, n: int) -> float | None:
    if value is None or value == "":
        return None
    try:
        return number(value)
    except (TypeError, ValueError):
        raise ManifestError(f"{path}: record {n}: {name} is not a number: {value!r}") from None


def check_ranges(table: PredictionTable, path: Path | str) -> None:
    """Refuse the first record (in file order) with a guess off the globe (NaN included), a stated
    probability outside [0, 1] or a negative confidence radius: one line naming the record."""
    record_of_guess = np.repeat(np.arange(len(table)), table.guess_counts)
    bad_guess = ~validate_coordinates(table.guess_lat, table.guess_lon)
    bad_probability = table.has_probability & ~((table.probability >= 0) & (table.probability <= 1))
    bad_radius = table.has_radius & ~(table.radius_km >= 0)
    bad = bad_probability | bad_radius
    bad[record_of_guess[bad_guess]] = True
    if not bad.any():
        return
    i = int(np.argmax(bad))
    in_record = np.flatnonzero(bad_guess[table.guess_offsets[i]:table.guess_offsets[i + 1]])
    if in_record.size:
        g = int(table.guess_offsets[i] + in_record[0])
        line = table.guess_numbers[g] if table.guess_numbers is not None else table.numbers[i]
        raise ManifestError(f"{path}: record {line}: predicted coordinate out of range: "
                            f"{float(table.guess_lat[g])}, {float(table.guess_lon[g])}")
    name, value = (("probability", table.probability[i]) if bad_probability[i]
                   else ("confidence_radius_km", table.radius_km[i]))
    raise ManifestError(f"{path}: record {table.numbers[i]}: {name} out of range: {float(value)!r}")
