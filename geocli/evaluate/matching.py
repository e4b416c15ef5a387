"""Matching prediction records to dataset images by file name, as columns.

A record's image matches the dataset row with the same file name; where several rows share it,
the row whose path has the longest common suffix with the record's (a tie matches none). Where
several records match one row the last one wins and the others count as ``duplicates``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


@dataclass
class Matches:
    """``winner[row]``: the record scored for each dataset row (-1: none); ``unmatched``: the
    records that name no row, in file order; ``duplicates``: matched records a later one replaced."""

    winner: np.ndarray
    unmatched: np.ndarray
    duplicates: int


def match_records(images: list[str], names: pa.Array) -> Matches:
    """Match records (their ``names``) to dataset ``images`` (see the module docstring)."""
    row = record_rows(images, names)
    matched = np.flatnonzero(row >= 0)
    winner = np.full(len(images), -1, np.int64)
    np.maximum.at(winner, row[matched], matched)  # records are in file order: the last one wins
    return Matches(winner, np.flatnonzero(row < 0), int(matched.size - np.count_nonzero(winner >= 0)))


def record_rows(images: list[str], names: pa.Array) -> np.ndarray:
    """The dataset row each record names, -1 where none (or no single best) does."""
    base = _file_names(pa.array(images, pa.string()), pc.replace_substring(names, "\\", "/"))
    code = np.asarray(base.dictionary_encode().indices, np.int64)
    image_code, record_code = code[:len(images)], code[len(images):]
    count = np.bincount(image_code, minlength=int(code.max(initial=-1)) + 1)
    first = np.full(count.size, -1, np.int64)
    first[image_code] = np.arange(len(images))  # read only where the name is unique
    row = np.where(count[record_code] == 1, first[record_code], -1)
    shared = np.flatnonzero(count[record_code] > 1)
    if shared.size:
        candidates: dict[int, list[int]] = {}
        for i in np.flatnonzero(count[image_code] > 1).tolist():
            candidates.setdefault(int(image_code[i]), []).append(i)
        for j in shared.tolist():
            row[j] = _longest_suffix_row(names[j].as_py(), candidates[int(record_code[j])], images)
    return row


def _file_names(images: pa.Array, names: pa.Array) -> pa.Array:
    """The file name (after the last ``/``) of the dataset images followed by the records' names."""
    parts = pc.split_pattern(pa.concat_arrays([images, names]), "/", max_splits=1, reverse=True)
    return parts.flatten().take(pa.array(np.asarray(parts.offsets)[1:] - 1))  # each list's last part


def _path_parts(p: str) -> list[str]:
    return [part for part in os.path.normpath(p.replace("\\", "/")).split("/") if part not in ("", ".")]


def _longest_suffix_row(name: str, candidates: list[int], images: list[str]) -> int:
    want = _path_parts(name)

    def common_suffix(i: int) -> int:
        have = _path_parts(images[i])
        n = 0
        while n < min(len(want), len(have)) and want[-1 - n] == have[-1 - n]:
            n += 1
        return n

    scores = sorted(((common_suffix(i), i) for i in candidates), reverse=True)
    return scores[0][1] if scores[0][0] > scores[1][0] else -1
