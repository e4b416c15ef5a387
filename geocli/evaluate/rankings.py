"""Which countries a prediction ranks, best first: the model's country head where the record has
one, else the stated country of each guess, else the country at each guessed coordinate; each
country once, in rank order. ``geocli eval`` and training's validation score the same country
through ``country_rankings`` / ``top_countries``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pyarrow as pa

from geocli.evaluate.prediction_table import PredictionTable, expand
from geocli.geo.countries import country_codes_array


class CountryVocabulary:
    """Country codes as small integers (-1: none), so rankings are integer arrays."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}

    def encode(self, values: pa.Array | Sequence[str | None] | np.ndarray) -> np.ndarray:
        array = values if isinstance(values, pa.Array) else pa.array(values, pa.string())
        encoded = array.dictionary_encode()
        lut = np.array([self.index.setdefault(v, len(self.index)) for v in encoded.dictionary.to_pylist()] + [-1],
                       np.int64)
        return lut[np.asarray(encoded.indices.fill_null(len(lut) - 1), np.int64)]

    def decode(self, codes: np.ndarray) -> list[str | None]:
        names = np.array([*self.index, None], object)
        return names[np.where(codes >= 0, codes, len(self.index))].tolist()


@dataclass
class Ranking:
    """Distinct countries per row as flat arrays: ``code`` is ``row``'s ``position``-th country."""

    n_rows: int
    row: np.ndarray
    code: np.ndarray
    position: np.ndarray

    def top(self) -> np.ndarray:
        """Each row's first country (-1: none)."""
        out = np.full(self.n_rows, -1, np.int64)
        first = self.position == 0
        out[self.row[first]] = self.code[first]
        return out

    def rank_of(self, truth: np.ndarray) -> np.ndarray:
        """Position of each row's true country among its ranked ones (``n_rows``-sized; a large
        number where it is not ranked or unknown)."""
        out = np.full(self.n_rows, np.iinfo(np.int64).max)
        hit = self.code == truth[self.row]
        out[self.row[hit]] = self.position[hit]
        return out

    def most_per_row(self) -> int:
        return int(np.bincount(self.row, minlength=1).max()) if self.row.size else 0


def country_rankings(table: PredictionTable, records: np.ndarray, vocab: CountryVocabulary) -> Ranking:
    """The ranked countries of record ``records[i]`` for each row ``i`` (-1: no record)."""
    has = records >= 0
    rec = np.where(has, records, 0)
    heads = np.where(has, table.head_counts[rec], 0)
    guesses = np.where(has & (heads == 0), table.guess_counts[rec], 0)
    head_row, head_index = expand(table.head_offsets[rec], heads)
    guess_row, guess_index = expand(table.guess_offsets[rec], guesses)
    row = np.concatenate([head_row, guess_row])
    code = np.concatenate([vocab.encode(table.head_country.take(pa.array(head_index))),
                           guess_country_codes(table, guess_index, vocab)])
    order = np.argsort(row, kind="stable")  # a row has head entries or guess entries, never both
    row, code = row[order], code[order]
    known = code >= 0
    row, code = row[known], code[known]
    _, first = np.unique(row * (len(vocab.index) + 1) + code, return_index=True)
    first.sort()  # each (row, country) once, where it first appears
    row, code = row[first], code[first]
    return Ranking(len(records), row, code, np.arange(row.size) - np.searchsorted(row, row, "left"))


def guess_country_codes(table: PredictionTable, guess_index: np.ndarray, vocab: CountryVocabulary) -> np.ndarray:
    """Each guess's stated country, else the country at its coordinate (one vectorised lookup)."""
    codes = vocab.encode(table.guess_country.take(pa.array(guess_index, pa.int64())))
    missing = np.flatnonzero(codes < 0)
    if missing.size:
        at = guess_index[missing]
        codes[missing] = vocab.encode(country_codes_array(table.guess_lat[at], table.guess_lon[at]))
    return codes


def top_countries(table: PredictionTable) -> list[str | None]:
    """Each record's answer to "which country": the first of its ranked countries."""
    vocab = CountryVocabulary()
    return vocab.decode(country_rankings(table, np.arange(len(table)), vocab).top())
