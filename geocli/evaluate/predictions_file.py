"""Reading predictions written by ``geocli predict`` (JSON / JSONL / CSV) or by any other tool
(a CSV with ``image,lat,lon``), and matching them to dataset images by file name."""
from __future__ import annotations

import csv
import io
import json
import os
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


def read_predictions(path: str | Path) -> list[PredictedImage]:
    """Parse a predictions file; the format follows from the content (JSON array, JSONL or CSV)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"predictions file not found: {path}")
    text = decode_text(path.read_bytes())
    stripped = text.lstrip()
    if stripped.startswith("["):
        return [from_record(r, path, i) for i, r in enumerate(_json_array(stripped, path), start=1)]
    if stripped.startswith("{"):  # split on \n only: JSON strings may hold U+2028 and other line breaks
        return [_from_jsonl_line(line, path, n) for n, line in enumerate(text.split("\n"), 1) if line.strip()]
    return _from_csv(text, path)


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
    item = PredictedImage(str(record["image"]))
    for p in ranked:
        _add_guess(item, p.get("lat"), p.get("lon"), p.get("country"), path, n)
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


def _add_guess(item: PredictedImage, lat, lon, country, path: Path, n: int) -> None:
    try:
        lat, lon = float(lat), float(lon)
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
    fields = {k.strip().lower(): k for k in (rows[0].keys() if rows else [])}
    missing = [c for c in ("image", "lat", "lon") if c not in fields]
    if missing:
        raise ManifestError(f"{path}: predictions CSV lacks column(s) {', '.join(missing)} (need image,lat,lon)")
    grouped: dict[str, list[tuple[int, int, dict]]] = defaultdict(list)
    for n, row in enumerate(rows, start=2):
        rank = _parse_rank(row.get(fields["rank"]), path, n) if "rank" in fields else 1
        grouped[row[fields["image"]]].append((rank, n, row))
    items = []
    for image, entries in grouped.items():
        item = PredictedImage(image)
        for _rank, n, row in sorted(entries, key=lambda e: e[0]):
            if (row[fields["lat"]] or "").strip():
                _add_guess(item, row[fields["lat"]], row[fields["lon"]], row.get(fields.get("country", ""), None), path, n)
        items.append(item)
    return items


def _path_parts(p: str) -> list[str]:
    return [part for part in os.path.normpath(p.replace("\\", "/")).split("/") if part not in ("", ".")]


def match_to_dataset(images: list[str], predictions: list[PredictedImage]) -> tuple[dict[int, PredictedImage], list[str]]:
    """Map dataset row -> prediction by file name; where names repeat, by the longest common path
    suffix. Returns the matches and the prediction image names that matched no row."""
    by_name: dict[str, list[int]] = defaultdict(list)
    for i, img in enumerate(images):
        by_name[os.path.basename(img)].append(i)
    matched: dict[int, PredictedImage] = {}
    unmatched = []
    for pred in predictions:
        row = _best_row(pred.image, by_name.get(os.path.basename(pred.image.replace("\\", "/")), []), images)
        if row is None or row in matched:
            unmatched.append(pred.image)
        else:
            matched[row] = pred
    return matched, unmatched


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
