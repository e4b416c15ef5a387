"""A manifest's cells as columns, and the column-wide rules every manifest row obeys.

``csv_columns`` reads a plain CSV (UTF-8, no quotes or NUL bytes, one row a line, every row as
wide as the header, no field over ``csv``'s size limit) with pyarrow's multi-threaded reader; any other file gives ``None`` and ``read_manifest``
reads it with Python's ``csv`` module instead. Either way the cells end up as string columns and
``numbers`` and ``image_paths`` apply the same rules to them, each value parsed
as Python parses it (a value pyarrow's parser does not take is parsed by Python, one by one).
"""
from __future__ import annotations

import csv
import os

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

# Image values whose resolved path is not simply ``root/value``: empty, absolute or relative to
# another folder, leading or trailing characters a strip might remove, ``//``, ``.`` or ``..`` parts.
NOT_PLAIN = r"^$|^[^A-Za-z0-9_]|[^A-Za-z0-9_)\]]$|//|(^|/)\.\.?(/|$)"


def csv_columns(raw: bytes, delimiter: str, width: int) -> tuple[list[pa.Array], np.ndarray] | None:
    """The data cells of a plain CSV (header on line 1) as ``width`` string columns, with each
    row's line number; None where the file is not plain (see the module docstring)."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    if b'"' in raw or b"\x00" in raw or raw.count(b"\r") != raw.count(b"\r\n"):
        return None
    if not raw.endswith(b"\n"):
        raw += b"\n"  # pyarrow cannot skip the header of a file whose one row has no newline
    lines = raw.count(b"\n")
    try:
        table = pcsv.read_csv(
            pa.py_buffer(raw),
            read_options=pcsv.ReadOptions(skip_rows=1, autogenerate_column_names=True),
            parse_options=pcsv.ParseOptions(delimiter=delimiter, quote_char=False, ignore_empty_lines=False),
            convert_options=pcsv.ConvertOptions(column_types={f"f{i}": pa.string() for i in range(width)},
                                                strings_can_be_null=False))
    except (pa.ArrowException, UnicodeDecodeError):  # ragged rows, blank lines, not UTF-8
        return None
    if table.num_columns != width or table.num_rows != lines - 1:
        return None
    columns = [table.column(i).combine_chunks() for i in range(width)]
    if any((pc.max(pc.binary_length(c)).as_py() or 0) > csv.field_size_limit() for c in columns):
        return None  # csv refuses a field this long: let it name the line
    return columns, np.arange(2, lines + 1)


def string_columns(rows: list[list[str]], width: int) -> list[pa.Array]:
    """Rows of cells (possibly ragged: a missing cell is empty) as ``width`` string columns."""
    return [pa.array([r[i] if i < len(r) else "" for r in rows], pa.string()) for i in range(width)]


def blank_rows(columns: list[pa.Array]) -> np.ndarray:
    """Rows whose every cell is empty or whitespace (as ``str.strip`` sees it)."""
    rows = np.arange(len(columns[0]) if columns else 0)
    for column in columns:  # a cell with a printable ASCII character is not blank: its row is not
        rows = rows[~np.asarray(pc.match_substring_regex(column.take(pa.array(rows)), "[!-~]"), bool)]
        if not rows.size:
            break
    blank = np.zeros(len(columns[0]) if columns else 0, bool)
    if rows.size:  # cells of non-ASCII characters alone: ask Python
        cells = [column.take(pa.array(rows)).to_pylist() for column in columns]
        blank[rows] = [not any(c.strip() for c in row) for row in zip(*cells)]
    return blank


def numbers(column: pa.Array, decimal_comma: bool) -> np.ndarray | None:
    """The cells as floats where pyarrow parses every one (its parser takes a subset of what
    Python's ``float`` takes, to the same values); None where Python must parse them."""
    if decimal_comma:
        column = pc.replace_substring(column, ",", ".")
    try:
        return np.asarray(pc.cast(column, pa.float64()), np.float64)
    except pa.ArrowInvalid:
        return None


def image_paths(column: pa.Array, root: str, resolve) -> list[str]:
    """Each image value resolved under ``root``: plain values by joining, the rest by ``resolve(i, value)``."""
    prefix = os.path.normpath(os.path.join(root, "x"))[:-1]
    other = np.flatnonzero(np.asarray(pc.match_substring_regex(column, NOT_PLAIN), bool))
    paths = pc.binary_join_element_wise(prefix, column, "").to_pylist()
    for i in other.tolist():
        paths[i] = resolve(i, column[i].as_py())
    return paths
