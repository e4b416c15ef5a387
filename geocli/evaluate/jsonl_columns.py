"""JSONL predictions straight into columns with pyarrow's JSON reader (multi-threaded C++), the
fast path of ``read_predictions`` for files of one record a line.

It answers only where the record-by-record reader would read the same values: every line is one
object starting with ``{``, every value has the type the schema says, every record names its image
and every guess of a usable record has both coordinates, the text is UTF-8. Anything else (blank
lines, a number given as a string, NaN spelt as a string, a line longer than a block, ...) gives
``None`` and the caller reads the file record by record, which either reads it or names the bad
record. Ranges (coordinates, probabilities, radii) are checked afterwards for both paths alike.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from geocli.evaluate.prediction_table import PredictionTable, offsets

BLOCK_BYTES = 1 << 20  # parse blocks (per thread); a file with a longer line is parsed as one block
GUESS = pa.struct([("rank", pa.int64()), ("lat", pa.float64()), ("lon", pa.float64()),
                   ("country", pa.string()), ("probability", pa.float64())])
HEAD = pa.struct([("rank", pa.int64()), ("country", pa.string())])
SCHEMA = pa.schema([("image", pa.string()), ("ok", pa.bool_()), ("predictions", pa.list_(GUESS)),
                    ("confidence_radius_km", pa.float64()), ("country_head", pa.list_(HEAD))])


def read_jsonl_columns(raw: bytes) -> PredictionTable | None:
    """The table of a JSONL text of one object a line, or None where the record-by-record reader
    must decide (see the module docstring)."""
    body = raw[3:] if raw.startswith(b"\xef\xbb\xbf") else raw
    lines = _object_lines(body)
    if lines is None:
        return None
    try:
        table = _parse(body, BLOCK_BYTES)
    except pa.ArrowInvalid as exc:
        if "straddl" not in str(exc):  # an object across two blocks: a line longer than a block
            return None
        try:
            table = _parse(body, len(body) + 1)
        except pa.ArrowException:
            return None
    if table.num_rows != lines:
        return None
    try:
        return _columns(table)
    except (pa.ArrowException, _NotAsIs):
        return None


def _parse(body: bytes, block_bytes: int) -> pa.Table:
    return pj.read_json(pa.py_buffer(body), read_options=pj.ReadOptions(block_size=block_bytes),
                        parse_options=pj.ParseOptions(explicit_schema=SCHEMA, unexpected_field_behavior="ignore"))


class _NotAsIs(Exception):
    """A value the columns cannot hold as the record-by-record reader would read it."""


def _object_lines(body: bytes) -> int | None:
    """How many lines, when every line starts with ``{`` (no blank lines); else None."""
    if not body.startswith(b"{"):
        return None
    lines = body.count(b"\n") + (not body.endswith(b"\n"))
    return lines if body.count(b"\n{") + 1 == lines else None


def _columns(table: pa.Table) -> PredictionTable:
    n = table.num_rows
    images = _strings(table.column("image"))
    if images.null_count:  # a record without "image" (or with "image": null) is the slow path's to name
        raise _NotAsIs
    ok = ~np.asarray(pc.fill_null(pc.equal(table.column("ok"), False), False), bool)
    lists = table.column("predictions").combine_chunks()
    guess_offsets, guess_index = _ranked(lists, ok)
    guesses = lists.flatten()
    lat, lon = (_floats(guesses.field(name).take(guess_index), strict=True) for name in ("lat", "lon"))
    country = _upper_or_null(guesses.field("country").take(guess_index))
    has = np.diff(guess_offsets) > 0
    top = pa.array(guess_offsets[:-1][has])
    probability, has_probability = _per_record(n, has, guesses.field("probability").take(guess_index).take(top))
    radius = table.column("confidence_radius_km").combine_chunks().filter(pa.array(has))
    radius_km, has_radius = _per_record(n, has, radius)
    head_offsets, head_country = _heads(table.column("country_head").combine_chunks())
    return PredictionTable(images, ok, guess_offsets, lat, lon, country, probability, has_probability,
                           radius_km, has_radius, head_offsets, head_country, np.arange(1, n + 1))


def _strings(column) -> pa.Array:
    array = column.combine_chunks()
    array.validate(full=True)  # the reader keeps bytes that are not UTF-8: ArrowInvalid, the slow path
    return array


def _floats(array: pa.Array, strict: bool = False) -> np.ndarray:
    if strict and array.null_count:  # a guess without lat or lon: the slow path names the record
        raise _NotAsIs
    return np.asarray(array.to_numpy(zero_copy_only=False), np.float64)


def _ranked(lists: pa.ListArray, ok: np.ndarray) -> tuple[np.ndarray, pa.Array]:
    """Offsets of each usable record's guesses and, in record then rank order (stable, as a sort by
    rank), the index of each guess among all; an error record keeps none."""
    counts = np.asarray(pc.fill_null(pc.list_value_length(lists), 0), np.int64)
    items = lists.flatten()
    if items.null_count:  # a null where a guess object should be
        raise _NotAsIs
    owner = np.repeat(np.arange(len(counts)), counts)
    rank = np.asarray(pc.fill_null(items.field("rank"), 1), np.int64)
    order = np.lexsort((rank, owner))
    order = order[ok[owner[order]]]
    return offsets(np.where(ok, counts, 0)), pa.array(order)


def _per_record(n: int, has: np.ndarray, values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """A value per record with guesses (``values``, in record order) as (floats, stated mask)."""
    out, stated = np.full(n, np.nan), np.zeros(n, bool)
    out[has] = _floats(values)
    stated[has] = np.asarray(values.is_valid(), bool)
    return out, stated


def _upper_or_null(strings: pa.Array) -> pa.Array:
    strings = _strings(pa.chunked_array([strings]))
    empty = pc.fill_null(pc.equal(strings, ""), False)
    return pc.if_else(empty, pa.scalar(None, pa.string()), pc.utf8_upper(strings))


def _heads(lists: pa.ListArray) -> tuple[np.ndarray, pa.Array]:
    """Each record's country-head ranking: entries that are objects with a non-empty country,
    stably by rank, upper-case."""
    counts = np.asarray(pc.fill_null(pc.list_value_length(lists), 0), np.int64)
    items = lists.flatten()
    owner = np.repeat(np.arange(len(counts)), counts)
    country = _strings(pa.chunked_array([items.field("country")]))
    keep = np.asarray(pc.and_(items.is_valid(), pc.fill_null(pc.not_equal(country, ""), False)), bool)
    rank = np.asarray(pc.fill_null(items.field("rank"), 1), np.int64)
    order = np.lexsort((rank, owner))
    order = order[keep[order]]
    return offsets(np.bincount(owner[order], minlength=len(counts))), pc.utf8_upper(country.take(pa.array(order)))
