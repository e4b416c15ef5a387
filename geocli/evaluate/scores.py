"""Scoring ranked location guesses against a dataset: the numbers behind ``geocli eval``, computed
on columns (a million rows in seconds)."""
from __future__ import annotations

import numpy as np

from geocli.datasets.manifest import Manifest, manifest_countries
from geocli.evaluate.calibration import calibration_report
from geocli.evaluate.matching import Matches, match_records
from geocli.evaluate.metrics import (
    DEFAULT_THRESHOLDS_KM, NO_GUESS, distance_summary, per_group_metrics, topk_from_ranks,
)
from geocli.evaluate.prediction_table import PredictionTable
from geocli.evaluate.rankings import CountryVocabulary, Ranking, country_rankings
from geocli.geo.countries import country
from geocli.geo.distance import haversine_km

COUNTRY_KS = (1, 5, 10)


def evaluate_predictions(
    manifest: Manifest,
    predictions: PredictionTable,
    thresholds_km=DEFAULT_THRESHOLDS_KM,
    dataset_name: str | None = None,
) -> dict:
    """The ``geocli eval --format json`` object for ``predictions`` scored on ``manifest``.

    Every dataset row counts: a row without a guess (no record, a record without predictions, an
    ``ok: false`` record) is a miss at every threshold and for the country. ``answered`` says how
    many rows have a guess; ``accuracy_answered`` scores those alone.
    """
    matches = match_records(manifest.images, predictions.images)
    winner = matches.winner
    answered = (winner >= 0) & (predictions.guess_counts[np.maximum(winner, 0)] > 0)
    distances = _distances(manifest, predictions, winner, answered)
    vocab = CountryVocabulary()
    truth = vocab.encode(manifest_countries(manifest))
    ranking = country_rankings(predictions, winner, vocab)
    hits = _country_hits(truth, ranking)
    result = {"dataset": dataset_name or manifest.source, "n_dataset": len(manifest)}
    result.update(distance_summary(distances, thresholds_km))
    result.update(_country_scores(truth, ranking))
    names, continent = _continents(truth, vocab)
    result["per_continent"] = per_group_metrics(continent, names, distances, hits, thresholds_km)
    result.update(_coverage(predictions, matches, answered))
    rec = winner[answered]
    calibration = calibration_report(
        _per_row(answered, predictions.probability[rec], predictions.has_probability[rec]),
        _per_row(answered, predictions.radius_km[rec], predictions.has_radius[rec]), distances, hits)
    if calibration is not None:
        result["calibration"] = calibration
    return result


def _distances(manifest: Manifest, table: PredictionTable, winner: np.ndarray, answered: np.ndarray) -> np.ndarray:
    """Distance of each row's top guess; ``NO_GUESS`` where the row has none."""
    d = np.full(len(manifest), NO_GUESS)
    rows = np.flatnonzero(answered)
    if rows.size:
        top = table.guess_offsets[winner[rows]]
        d[rows] = haversine_km(manifest.lat[rows], manifest.lon[rows], table.guess_lat[top], table.guess_lon[top])
    return d


def _per_row(answered: np.ndarray, values: np.ndarray, stated: np.ndarray) -> np.ndarray:
    """A per-record value on the answered rows, NaN on the others and where not stated."""
    out = np.full(answered.shape, np.nan)
    out[answered] = np.where(stated, values, np.nan)
    return out


def _coverage(table: PredictionTable, matches: Matches, answered: np.ndarray) -> dict:
    """Why rows have no guess: no record (``missing``), an error record (``failed``), a record
    without guesses (``abstained``); and the records that did not count."""
    has = matches.winner >= 0
    ok = table.ok[matches.winner[has]]
    examples = table.images.take(matches.unmatched[:5]).to_pylist() if matches.unmatched.size else []
    return {
        "missing": int(np.count_nonzero(~has)),
        "failed": int(np.count_nonzero(~ok)),
        "abstained": int(np.count_nonzero(ok) - np.count_nonzero(answered)),
        "duplicates": matches.duplicates,
        "unmatched": int(matches.unmatched.size),
        "unmatched_examples": examples,
    }


def _country_hits(truth: np.ndarray, ranking: Ranking) -> np.ndarray:
    """1.0 where the row's first country is the true one, 0.0 where not, NaN where the truth is unknown."""
    return np.where(truth >= 0, (ranking.top() == truth).astype(np.float64), np.nan)


def _country_scores(truth: np.ndarray, ranking: Ranking) -> dict:
    known = truth >= 0
    topk = topk_from_ranks(ranking.rank_of(truth)[known], COUNTRY_KS)
    scores = {"country_accuracy": topk["1"] if known.any() else None}
    if ranking.most_per_row() > 1:
        scores["country_topk"] = topk
    return scores


def _continents(truth: np.ndarray, vocab: CountryVocabulary) -> tuple[list[str], np.ndarray]:
    """Continent names and each row's index among them (of its true country; "unknown" if none)."""
    names = [_continent(code) for code in vocab.index] + ["unknown"]
    return names, np.where(truth >= 0, truth, len(names) - 1)


def _continent(code: str | None) -> str:
    info = country(code)
    return info.continent_name if info else "unknown"
