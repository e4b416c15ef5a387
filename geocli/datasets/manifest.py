"""Manifests: a CSV of ``image,lat,lon`` (plus optional ``country``, ``scene``, ``location_id``)
next to a folder of images. The one parser for every CSV geocli reads, benchmarks included.

Strict by design: a malformed row stops the load with a one-line ``ManifestError`` naming the
row and the problem (rows are never dropped silently).
"""
from __future__ import annotations

import codecs
import csv
import io
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from geocli.config import DEFAULT_SCENES
from geocli.datasets.manifest_columns import (
    blank_rows, csv_columns, image_paths, numbers, string_columns,
)
from geocli.errors import DatasetNotFoundError, ManifestError

# Accepted header spellings (compared case-insensitively) for each canonical column.
COLUMN_ALIASES = {
    "image": ("image", "img_id", "img_file", "image_path", "path", "file", "filename", "file_name", "img"),
    "lat": ("lat", "latitude"),
    "lon": ("lon", "lng", "long", "longitude"),
    "country": ("country", "country_code", "cc"),
    "scene": ("scene", "s3_label"),
    "group": ("location_id", "sequence", "sequence_id", "group", "place_id"),
}
REQUIRED = ("image", "lat", "lon")
#: S3 scene labels of the Places365-annotated benchmark files.
S3_SCENES = dict(zip("012", DEFAULT_SCENES))


@dataclass
class Manifest:
    """Parsed rows: image paths (resolved), coordinates and optional labels, row-aligned."""

    source: str
    images: list[str]
    lat: np.ndarray
    lon: np.ndarray
    country: list[str | None] = field(default_factory=list)
    scene: list[str | None] = field(default_factory=list)
    group: list[str | None] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)  # CSV line number of each sample

    def __len__(self) -> int:
        return len(self.lat)  # the rows; ``images`` may be empty where the photos stream from shards

    def subset(self, indices) -> "Manifest":
        idx = [int(i) for i in indices]
        pick = lambda xs: [xs[i] for i in idx] if xs else []  # noqa: E731
        return Manifest(
            self.source, pick(self.images), self.lat[idx], self.lon[idx],
            pick(self.country), pick(self.scene), pick(self.group), pick(self.rows),
        )

def _read_raw(path: Path) -> bytes:
    if not path.is_file():
        raise DatasetNotFoundError(f"manifest not found: {path} (pass the CSV path, e.g. --data photos/manifest.csv)")
    return path.read_bytes()


def decode_text(raw: bytes) -> str:
    """UTF-8 (with or without BOM), UTF-16 with BOM (spreadsheets' "Unicode text"), else Latin-1."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return raw.decode("utf-16")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _first_line(text: str) -> str:
    end = text.find("\n")
    return text if end < 0 else text[:end]


def _sniff_delimiter(text: str) -> str:
    header = _first_line(text)
    counts = {d: header.count(d) for d in (",", ";", "\t")}
    return max(counts, key=counts.get) if any(counts.values()) else ","


def _map_columns(header: list[str], source: str) -> dict[str, int]:
    lowered = [h.strip().lower() for h in header]
    found = {}
    for canon, aliases in COLUMN_ALIASES.items():
        for alias in aliases:
            if alias in lowered:
                found[canon] = lowered.index(alias)
                break
    missing = [c for c in REQUIRED if c not in found]
    if missing:
        raise ManifestError(
            f"{source}: missing column(s) {', '.join(missing)}; found {', '.join(header) or 'no header'} "
            f"(expected image,lat,lon or aliases like IMG_ID, LAT, LON, latitude, longitude)"
        )
    return found


def _parse_float(value: str, column: str, line: int, source: str, decimal_comma: bool = False) -> float:
    try:
        v = float(value.replace(",", ".") if decimal_comma else value)
    except (TypeError, ValueError):
        raise ManifestError(f"{source}: line {line}: {column} is not a number: {value!r}") from None
    if math.isnan(v) or math.isinf(v):
        raise ManifestError(f"{source}: line {line}: {column} is {value!r}")
    return v


def _resolve_image(value: str, root: str, line: int, source: str) -> str:
    """The row's image path: absolute as given, else under ``root`` (string functions: a manifest
    may have millions of rows)."""
    value = value.strip()
    if not value:
        raise ManifestError(f"{source}: line {line}: empty image path")
    if os.path.isabs(value):
        return str(Path(value))
    if os.path.normpath(value).split(os.sep)[0] == os.pardir:
        raise ManifestError(f"{source}: line {line}: image path {value!r} points outside the root {root}")
    return os.path.normpath(os.path.join(root, value))


def _optional(columns: list[pa.Array], cols: dict[str, int], name: str, convert=None) -> list[str | None]:
    """An optional column's values, stripped (and converted), None where empty or where the
    column is absent."""
    if name not in cols:
        return [None] * len(columns[0])
    values = (v.strip() for v in columns[cols[name]].to_pylist())
    return [(convert(v) if convert else v) if v else None for v in values]


def scene_label(value: str | None) -> str | None:
    """A scene label as geocli names it: S3 codes 0/1/2 as indoor/natural/urban, names lower-cased."""
    if value is None:
        return None
    return S3_SCENES.get(value, value.lower())


def read_manifest(path: str | Path, root: str | Path | None = None) -> Manifest:
    """Parse a manifest CSV. ``root`` (image folder) defaults to the CSV's own folder."""
    path = Path(path)
    source = str(path)
    root = Path(root) if root is not None else path.parent
    raw = _read_raw(path)
    text = decode_text(raw)
    delimiter = _sniff_delimiter(text)
    header, columns, lines = _cells(raw, text, delimiter, source)
    cols = _map_columns(header, source)
    if not lines.size:
        raise ManifestError(f"{source}: no data rows")
    comma = delimiter != ","  # ';' or tab files from spreadsheets write 45,8 for 45.8
    lat = _floats(columns[cols["lat"]], "lat", lines, source, comma)
    lon = _floats(columns[cols["lon"]], "lon", lines, source, comma)
    _check_ranges(lat, lon, lines, header, cols, source)
    root_text = str(root)
    images = image_paths(columns[cols["image"]], root_text,
                         lambda i, value: _resolve_image(value, root_text, int(lines[i]), source))
    if len(set(images)) != len(images):
        _check_duplicates(images, lines.tolist(), source)
    return Manifest(
        source, images, lat, lon, country=_optional(columns, cols, "country", str.upper),
        scene=_optional(columns, cols, "scene", scene_label), group=_optional(columns, cols, "group"),
        rows=lines.tolist(),
    )


def _cells(raw: bytes, text: str, delimiter: str, source: str) -> tuple[list[str], list[pa.Array], np.ndarray]:
    """The header, the non-blank rows' cells as string columns (as wide as the header or the
    widest row) and each row's line number: by pyarrow for a plain CSV, else by ``csv``."""
    header = next(csv.reader(io.StringIO(_first_line(text), newline=""), delimiter=delimiter), [])
    plain = None if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) else \
        csv_columns(raw, delimiter, len(header))
    if plain is None:
        header, rows = _read_rows(text, delimiter, source)
        width = max([len(header), *(len(r) for _, r in rows)])
        return header, string_columns([r for _, r in rows], width), np.array([n for n, _ in rows], np.int64)
    columns, lines = plain
    keep = ~blank_rows(columns)
    if not keep.all():
        mask = pa.array(keep)
        columns, lines = [c.filter(mask) for c in columns], lines[keep]
    return header, columns, lines


def _floats(column: pa.Array, name: str, lines: np.ndarray, source: str, decimal_comma: bool) -> np.ndarray:
    """The column's numbers; the first row whose value is not a finite number is refused."""
    values = numbers(column, decimal_comma)
    if values is None:  # pyarrow does not parse every value Python's float does: Python's rules decide
        return np.array([_parse_float(v, name, n, source, decimal_comma)
                         for v, n in zip(column.to_pylist(), lines.tolist())], np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise ManifestError(f"{source}: line {lines[bad[0]]}: {name} is {column[int(bad[0])].as_py()!r}")
    return values


def _read_rows(text: str, delimiter: str, source: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and non-blank rows, each with the file line it ends on (quoted fields may span lines)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader, [])
        rows = [(reader.line_num, r) for r in reader if any(c.strip() for c in r)]
    except csv.Error as exc:
        raise ManifestError(f"{source}: line {reader.line_num}: not readable as CSV ({exc})") from None
    return header, rows


def _check_ranges(lat, lon, lines, header, cols, source) -> None:
    bad_lat = np.flatnonzero(np.abs(lat) > 90)
    if _looks_swapped(lat, lon, len(bad_lat)):
        raise ManifestError(
            f"{source}: column {header[cols['lat']]!r} holds impossible latitudes (e.g. {lat[bad_lat[0]]} on "
            f"line {lines[bad_lat[0]]}) while {header[cols['lon']]!r} fits latitude: the LAT/LON header looks "
            f"swapped; fix the header"
        )
    if len(bad_lat):
        i = bad_lat[0]
        raise ManifestError(f"{source}: line {lines[i]}: latitude {lat[i]} outside [-90, 90]")
    bad_lon = np.flatnonzero(np.abs(lon) > 180)
    if len(bad_lon):
        i = bad_lon[0]
        raise ManifestError(f"{source}: line {lines[i]}: longitude {lon[i]} outside [-180, 180]")


def _looks_swapped(lat: np.ndarray, lon: np.ndarray, n_bad: int) -> bool:
    """Swapping would make every row valid, and enough rows are wrong that a typo is unlikely."""
    return n_bad >= max(2, 0.01 * len(lat)) and bool((np.abs(lon) <= 90).all() and (np.abs(lat) <= 180).all())


def _check_duplicates(images: list[str], lines: list[int], source: str) -> None:
    first_seen: dict[str, int] = {}
    for image, line in zip(images, lines):
        if image in first_seen:
            raise ManifestError(
                f"{source}: line {line}: duplicate image {image!r} (first on line {first_seen[image]})"
            )
        first_seen[image] = line


def check_images(manifest: Manifest, skip_missing: bool = False, log=None) -> Manifest:
    """Make sure every image file exists: raise naming the missing ones, or drop them if asked.

    ``log`` (a callable taking one line) is told how many were skipped.
    """
    missing = [i for i, p in enumerate(manifest.images) if not Path(p).is_file()]
    if not missing:
        return manifest
    if not skip_missing:
        first = ", ".join(manifest.images[i] for i in missing[:3])
        raise DatasetNotFoundError(
            f"{len(missing)} of {len(manifest)} images listed in {manifest.source} are missing "
            f"(first: {first}); check --root, or pass --skip-missing to leave them out"
        )
    if log is not None:
        log(f"skipped {len(missing)} of {len(manifest)} images missing from disk (--skip-missing)")
    keep = sorted(set(range(len(manifest))) - set(missing))
    return manifest.subset(keep)


def manifest_countries(manifest: Manifest) -> list[str]:
    """The country of each row, as upper-case ISO codes: the manifest's ``country`` column where
    filled, else the country at the row's coordinate (None at sea). Training labels, validation and
    ``geocli eval`` all ask this one function."""
    from geocli.geo.countries import country_codes_array

    codes = np.array(manifest.country + [None], object)[:-1]
    unknown = np.flatnonzero((codes == None) | (codes == ""))  # noqa: E711 (elementwise)
    if unknown.size:
        codes[unknown] = country_codes_array(manifest.lat[unknown], manifest.lon[unknown])
    return [c.upper() if c else None for c in codes.tolist()]
