"""Reading predictions written by ``geocli predict`` (JSON / JSONL / CSV) or by any other tool
(a CSV with ``image,lat,lon``) into a ``PredictionTable``. ``-`` reads the predictions from stdin.

A record with ``ok: false`` or without guesses is kept (it is an answer of "don't know" and
scores as a miss). JSONL of one object a line, as ``geocli predict --format jsonl`` writes it, is
parsed by pyarrow straight into columns (``jsonl_columns``); any file that path cannot take as it
is (blank lines, a value of the wrong type, a line longer than a parse block, not UTF-8) is read
record by record, which gives the same table or names the bad record."""
from __future__ import annotations

import codecs
import csv
import io
import json
import sys
from pathlib import Path

from geocli.datasets.manifest import decode_text
from geocli.errors import DatasetNotFoundError, ManifestError
from geocli.evaluate.prediction_table import (
    PredictionTable, TableBuilder, check_ranges, coordinate, optional_number, parse_rank, table_from_records,
)


def read_predictions(path: str | Path) -> PredictionTable:
    """Parse a predictions file (``-``: stdin); the format follows from the content (JSON array,
    JSONL or CSV)."""
    raw = _read_bytes(path)
    path = Path(path) if str(path) != "-" else Path("<stdin>")
    from geocli.evaluate.jsonl_columns import read_jsonl_columns

    table = read_jsonl_columns(raw)
    if table is not None:
        check_ranges(table, path)
        return table
    text = decode_text(raw)
    stripped = text.lstrip()
    if stripped.startswith("["):
        return table_from_records(_json_array(stripped, path), path)
    if stripped.startswith("{"):  # split on \n only: JSON strings may hold U+2028 and other line breaks
        lines = [(n, line) for n, line in enumerate(text.split("\n"), 1) if line.strip()]
        return table_from_records((_jsonl_record(line, path, n) for n, line in lines), path,
                                  numbers=(n for n, _ in lines))
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


def _jsonl_record(line: str, path: Path, n: int):
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path}: line {n}: not valid JSON ({exc.msg})") from None


def without_bom(raw: bytes) -> bytes:
    return raw[len(codecs.BOM_UTF8):] if raw.startswith(codecs.BOM_UTF8) else raw


def _from_csv(text: str, path: Path) -> PredictionTable:
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
        rank = parse_rank(row.get(fields["rank"]), path, n) if "rank" in fields else 1
        entries = current.get(row[fields["image"]])
        if entries is None or any(r == rank for r, _, _ in entries):  # a rank seen again: a new record
            entries = current[row[fields["image"]]] = []
            records.append(entries)
        entries.append((rank, n, row))
    builder = TableBuilder()
    for entries in records:
        _add_csv_record(builder, entries, fields, path)
    table = builder.table()
    check_ranges(table, path)
    return table


def _add_csv_record(builder: TableBuilder, entries: list[tuple[int, int, dict]], fields: dict[str, str],
                    path: Path) -> None:
    """One photo's rows (one per rank) as a record."""
    entries = sorted(entries, key=lambda e: e[0])
    first, line = entries[0][2], entries[0][1]
    ok = (first.get(fields.get("ok", ""), "") or "").strip().lower() not in ("false", "0", "no")
    guesses = [(*coordinate(row[fields["lat"]], row[fields["lon"]], path, n), row.get(fields.get("country", "")), n)
               for _rank, n, row in entries if (row[fields["lat"]] or "").strip()] if ok else []
    probability = radius = None
    if guesses and "probability" in fields:
        probability = optional_number(first[fields["probability"]], "probability", path, line)
    if guesses and "confidence_radius_km" in fields:
        radius = optional_number(first[fields["confidence_radius_km"]], "confidence_radius_km", path, line)
    builder.add(first[fields["image"]], ok, guesses, probability, radius, [], line)
