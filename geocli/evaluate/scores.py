"""Scoring ranked location guesses against a dataset: the numbers behind ``geocli eval``."""
from __future__ import annotations

import numpy as np

from geocli.datasets.manifest import Manifest, manifest_countries
from geocli.geo.countries import country, country_code_at, country_codes_at
from geocli.geo.distance import haversine_km
from geocli.evaluate.metrics import DEFAULT_THRESHOLDS_KM, NO_GUESS, distance_summary, per_group_metrics, topk_accuracy
from geocli.evaluate.calibration import calibration_report
from geocli.evaluate.predictions_file import PredictedImage, from_record, match_to_dataset


def fill_guess_countries(predictions: list[PredictedImage]) -> None:
    """Give every guess without a stated country the country at its coordinate, all in one
    vectorised lookup (``ranked_countries(..., look_up=False)`` then needs none of its own)."""
    where = [(p, r) for p in predictions for r, g in enumerate(p.guesses) if g[2] is None]
    if not where:
        return
    codes = country_codes_at([p.guesses[r][0] for p, r in where], [p.guesses[r][1] for p, r in where])
    for (p, r), code in zip(where, codes):
        lat, lon, _ = p.guesses[r]
        p.guesses[r] = (lat, lon, code)


def ranked_countries(pred: PredictedImage, look_up: bool = True) -> list[str]:
    """Distinct countries in rank order: the model's country head where it has one, else the stated
    country of each guess, else the country at each guessed coordinate (unless ``look_up`` is off:
    ``fill_guess_countries`` did it for many records at once)."""
    if pred.countries:
        return list(dict.fromkeys(pred.countries))
    out: list[str] = []
    for lat, lon, code in pred.guesses:
        code = code or (country_code_at(lat, lon) if look_up else None)
        if code and code not in out:
            out.append(code)
    return out


def top_country(record: dict) -> str | None:
    """A prediction record's answer to "which country" (the first of ``ranked_countries``): training
    validation and ``geocli eval`` score the same country."""
    ranking = ranked_countries(from_record({"image": "", **record}))
    return ranking[0] if ranking else None


def evaluate_predictions(
    manifest: Manifest,
    predictions: list[PredictedImage],
    thresholds_km=DEFAULT_THRESHOLDS_KM,
    dataset_name: str | None = None,
) -> dict:
    """The ``geocli eval --format json`` object for ``predictions`` scored on ``manifest``.

    Every dataset row counts: a row without a guess (no record, a record without predictions, an
    ``ok: false`` record) is a miss at every threshold and for the country. ``answered`` says how
    many rows have a guess; ``accuracy_answered`` scores those alone.
    """
    matched, unmatched, duplicates = match_to_dataset(manifest.images, predictions)
    preds = [matched.get(i) for i in range(len(manifest))]
    distances = _distances(manifest, preds)
    truth = manifest_countries(manifest)
    fill_guess_countries([p for p in preds if p is not None])
    rankings = [ranked_countries(p, look_up=False) if p is not None else [] for p in preds]
    result = {"dataset": dataset_name or manifest.source, "n_dataset": len(manifest)}
    result.update(distance_summary(distances, thresholds_km))
    result.update(_country_scores(truth, rankings))
    result["per_continent"] = per_group_metrics(
        [_continent(c) for c in truth], distances, _country_hits(truth, rankings), thresholds_km
    )
    result.update(_coverage(preds, duplicates, unmatched))
    calibration = calibration_report(preds, distances, _country_hits(truth, rankings))
    if calibration is not None:
        result["calibration"] = calibration
    return result


def _distances(manifest: Manifest, preds: list[PredictedImage | None]) -> np.ndarray:
    """Distance of each row's top guess; ``NO_GUESS`` where the row has none."""
    d = np.full(len(preds), NO_GUESS)
    rows = [i for i, p in enumerate(preds) if p is not None and p.guesses]
    if rows:
        lat = np.array([preds[i].guesses[0][0] for i in rows], np.float64)
        lon = np.array([preds[i].guesses[0][1] for i in rows], np.float64)
        d[rows] = haversine_km(manifest.lat[rows], manifest.lon[rows], lat, lon)
    return d


def _coverage(preds: list[PredictedImage | None], duplicates: int, unmatched: list[str]) -> dict:
    """Why rows have no guess: no record (``missing``), an error record (``failed``), a record
    without guesses (``abstained``); and the records that did not count."""
    return {
        "missing": sum(p is None for p in preds),
        "failed": sum(p is not None and not p.ok for p in preds),
        "abstained": sum(p is not None and p.ok and not p.guesses for p in preds),
        "duplicates": duplicates,
        "unmatched": len(unmatched),
        "unmatched_examples": unmatched[:5],
    }


def _country_hits(truth, rankings) -> list[bool | None]:
    return [None if t is None else bool(r) and r[0] == t for t, r in zip(truth, rankings)]


def _country_scores(truth, rankings) -> dict:
    topk = topk_accuracy(truth, rankings, ks=(1, 5, 10))
    scores = {"country_accuracy": topk["1"] if any(t is not None for t in truth) else None}
    if any(len(r) > 1 for r in rankings):
        scores["country_topk"] = topk
    return scores


def _continent(code: str | None) -> str:
    info = country(code)
    return info.continent_name if info else "unknown"
