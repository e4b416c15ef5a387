"""Reading predictions written by ``geocli predict`` (JSON / JSONL / CSV) or by any other tool
(a CSV with ``image,lat,lon``), and matching them to dataset images by file name.

A record with ``ok: false`` or without guesses is kept (it is an answer of "don't know" and
scores as a miss). Where several records name one photo, the last one wins; the others are
counted as ``duplicates``. ``-`` reads the predictions from stdin."""
from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from geocli.datasets.manifest import decode_text
from geocli.errors import DatasetNotFoundError, ManifestError
from geocli.geo.distance import validate_coordinates


@dataclass
class PredictedImage:
    """Ranked guesses for one image: ``(lat, lon, country or None)`` per rank, best first, and a
    model's own country ranking (its country head) where the record has one."""

    image: str
    guesses: list[tuple[float, float, str | None]] = field(default_factory=list)
    countries: list[str] = field(default_factory=list)
    ok: bool = True
    probability: float | None = None  # the top guess's stated probability, where the record gives one
    radius_km: float | None = None  # the record's confidence radius, where it gives one


def read_predictions(path: str | Path) -> list[PredictedImage]:
    """Parse a predictions file (``-``: stdin); the format follows from the content (JSON array,
    JSONL or CSV)."""
    text = decode_text(_read_bytes(path))
    path = Path(path) if str(path) != "-" else Path("<stdin>")
    stripped = text.lstrip()
    if stripped.startswith("["):
        return [from_record(r, path, i) for i, r in enumerate(_json_array(stripped, path), start=1)]
    if stripped.startswith("{"):  # split on \n only: JSON strings may hold U+2028 and other line breaks
        return [_from_jsonl_line(line, path, n) for n, line in enumerate(text.split("\n"), 1) if line.strip()]
    return _from_csv(text, path)


def _read_bytes(path: str | Path) -> bytes:
    if str(path) == "-":
        return sys.stdin.buffer.read()
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"predictions file not found: {path}")
    return path.read_bytes()


def _json_array(text: str, path: Path) -> list:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path}: line {exc.lineno}: not valid JSON ({exc.msg}); a --format json file "
                            "cut short by an interrupted run cannot be read, --format jsonl can") from None


def _from_jsonl_line(line: str, path: Path, n: int) -> PredictedImage:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path}: line {n}: not valid JSON ({exc.msg})") from None
    return from_record(record, path, n)


def from_record(record: dict, path: Path | str = "<predictions>", n: int = 0) -> PredictedImage:
    """A ``geocli predict`` result record as ranked guesses."""
    if not isinstance(record, dict) or "image" not in record:
        raise ManifestError(f"{path}: record {n}: expected an object with an 'image' key")
    guesses = record.get("predictions") or []
    if not isinstance(guesses, list) or not all(isinstance(p, dict) for p in guesses):
        raise ManifestError(f"{path}: record {n}: 'predictions' must be a list of objects with lat and lon")
    ranked = sorted(guesses, key=lambda p: _parse_rank(p.get("rank"), path, n))
    item = PredictedImage(str(record["image"]), ok=record.get("ok") is not False)
    for p in ranked if item.ok else []:
        _add_guess(item, p.get("lat"), p.get("lon"), p.get("country"), path, n)
    if item.guesses:
        item.probability = _optional_number(ranked[0].get("probability"), "probability", 0.0, 1.0, path, n)
        item.radius_km = _optional_number(record.get("confidence_radius_km"), "confidence_radius_km", 0.0,
                                          float("inf"), path, n)
    heads = [c for c in record.get("country_head") or [] if isinstance(c, dict) and c.get("country")]
    item.countries = [str(c["country"]).upper() for c in sorted(heads, key=lambda c: _parse_rank(c.get("rank"), path, n))]
    return item


def _parse_rank(value, path: Path, n: int) -> int:
    if value in (None, ""):
        return 1
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ManifestError(f"{path}: record {n}: rank is not a whole number: {value!r}") from None


def _number(value) -> float:
    """A JSON/CSV value as a float; booleans are not numbers here (``float(True)`` is 1.0)."""
    if isinstance(value, bool):
        raise TypeError("a boolean is not a number")
    return float(value)


def _optional_number(value, name: str, low: float, high: float, path: Path, n: int) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = _number(value)
    except (TypeError, ValueError):
        raise ManifestError(f"{path}: record {n}: {name} is not a number: {value!r}") from None
    if not low <= number <= high:
        raise ManifestError(f"{path}: record {n}: {name} out of range: {value!r}")
    return number


def _add_guess(item: PredictedImage, lat, lon, country, path: Path, n: int) -> None:
    try:
        lat, lon = _number(lat), _number(lon)
    except (TypeError, ValueError):
        raise ManifestError(f"{path}: record {n}: prediction lat/lon not numbers: {lat!r}, {lon!r}") from None
    if not validate_coordinates(lat, lon):
        raise ManifestError(f"{path}: record {n}: predicted coordinate out of range: {lat}, {lon}")
    code = country.upper() if isinstance(country, str) and country else None
    item.guesses.append((lat, lon, code))


def _from_csv(text: str, path: Path) -> list[PredictedImage]:
    try:
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise ManifestError(f"{path}: not readable as CSV ({exc})") from None
    fields = {k.strip().lower(): k for k in (rows[0].keys() if rows else []) if k is not None}
    missing = [c for c in ("image", "lat", "lon") if c not in fields]
    if missing:
        raise ManifestError(f"{path}: predictions CSV lacks column(s) {', '.join(missing)} (need image,lat,lon)")
    records: list[list[tuple[int, int, dict]]] = []
    current: dict[str, list[tuple[int, int, dict]]] = {}
    for n, row in enumerate(rows, start=2):
        rank = _parse_rank(row.get(fields["rank"]), path, n) if "rank" in fields else 1
        entries = current.get(row[fields["image"]])
        if entries is None or any(r == rank for r, _, _ in entries):  # a rank seen again: a new record
            entries = current[row[fields["image"]]] = []
            records.append(entries)
        entries.append((rank, n, row))
    return [_csv_record(entries, fields, path) for entries in records]


def _csv_record(entries: list[tuple[int, int, dict]], fields: dict[str, str], path: Path) -> PredictedImage:
    """One photo's rows (one per rank) as a prediction."""
    entries = sorted(entries, key=lambda e: e[0])
    first = entries[0][2]
    ok = (first.get(fields.get("ok", ""), "") or "").strip().lower() not in ("false", "0", "no")
    item = PredictedImage(first[fields["image"]], ok=ok)
    for _rank, n, row in entries if ok else []:
        if (row[fields["lat"]] or "").strip():
            _add_guess(item, row[fields["lat"]], row[fields["lon"]], row.get(fields.get("country", ""), None), path, n)
    if item.guesses and "probability" in fields:
        item.probability = _optional_number(first[fields["probability"]], "probability", 0.0, 1.0, path, entries[0][1])
    if item.guesses and "confidence_radius_km" in fields:
        item.radius_km = _optional_number(first[fields["confidence_radius_km"]], "confidence_radius_km", 0.0,
                                          float("inf"), path, entries[0][1])
    return item


def _path_parts(p: str) -> list[str]:
    return [part for part in os.path.normpath(p.replace("\\", "/")).split("/") if part not in ("", ".")]


def match_to_dataset(images: list[str], predictions: list[PredictedImage]) -> tuple[dict[int, PredictedImage], list[str], int]:
    """Map dataset row -> prediction by file name; where names repeat, by the longest common path
    suffix. Where several predictions match one row the last wins. Returns the matches, the
    prediction image names that matched no row, and how many predictions a later one replaced."""
    by_name: dict[str, list[int]] = defaultdict(list)
    for i, img in enumerate(images):
        by_name[os.path.basename(img)].append(i)
    matched: dict[int, PredictedImage] = {}
    unmatched, duplicates = [], 0
    for pred in predictions:
        row = _best_row(pred.image, by_name.get(os.path.basename(pred.image.replace("\\", "/")), []), images)
        if row is None:
            unmatched.append(pred.image)
            continue
        duplicates += row in matched
        matched[row] = pred
    return matched, unmatched, duplicates


def _best_row(pred_image: str, candidates: list[int], images: list[str]) -> int | None:
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    want = _path_parts(pred_image)

    def common_suffix(i: int) -> int:
        have = _path_parts(images[i])
        n = 0
        while n < min(len(want), len(have)) and want[-1 - n] == have[-1 - n]:
            n += 1
        return n

    scores = sorted(((common_suffix(i), i) for i in candidates), reverse=True)
    return scores[0][1] if scores[0][0] > scores[1][0] else None
