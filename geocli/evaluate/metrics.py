"""Geolocation metrics. Functions return plain dicts; they never print.

Distances use ``geocli.geo.distance.haversine_km`` (R = 6371.0088 km); "within X km" is ``<= X``.
Every item counts: an item without a guess has distance ``inf`` (``NO_GUESS``) and is a miss at
every threshold; mean and median km describe the answered items only.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from geocli.geo.distance import haversine_km

DEFAULT_THRESHOLDS_KM = (1, 25, 200, 750, 2500)
NO_GUESS = float("inf")  # the distance of an item that has no guess


def threshold_key(km: float) -> str:
    """JSON key of a threshold: ``"25"`` for 25 km, ``"0.5"`` for 500 m."""
    return f"{km:g}"


def accuracy_within(distances_km, thresholds_km: Sequence[float] = DEFAULT_THRESHOLDS_KM) -> dict[str, float]:
    """Fraction of distances ``<=`` each threshold."""
    d = np.asarray(distances_km, np.float64)
    if d.size == 0:
        return {threshold_key(t): float("nan") for t in thresholds_km}
    return {threshold_key(t): float(np.mean(d <= t)) for t in thresholds_km}


def distance_summary(distances_km, thresholds_km=DEFAULT_THRESHOLDS_KM) -> dict:
    """``n`` (every item), ``answered`` (items with a guess) and its share, ``accuracy`` at each
    threshold over all ``n`` items, ``accuracy_answered`` over the answered ones, and ``mean_km`` /
    ``median_km`` of the answered ones. Unanswered items carry distance ``NO_GUESS``."""
    d = np.asarray(distances_km, np.float64)
    answered = d[np.isfinite(d)]
    return {
        "n": int(d.size),
        "answered": int(answered.size),
        "answered_share": float(answered.size / d.size) if d.size else None,
        "accuracy": accuracy_within(d, thresholds_km),
        "accuracy_answered": accuracy_within(answered, thresholds_km),
        "mean_km": float(answered.mean()) if answered.size else None,
        "median_km": float(np.median(answered)) if answered.size else None,
    }


def geolocation_metrics(true_lat, true_lon, pred_lat, pred_lon, thresholds_km=DEFAULT_THRESHOLDS_KM) -> dict:
    """Distance summary of predictions against ground truth."""
    return distance_summary(haversine_km(true_lat, true_lon, pred_lat, pred_lon), thresholds_km)


def topk_accuracy(true_labels: Sequence, ranked_predictions: Sequence[Sequence], ks=(1, 5, 10)) -> dict[str, float]:
    """Fraction whose true label is among the first k ranked predictions, for each k.

    Rows whose true label is ``None`` (unknown) are left out of the denominator.
    """
    ranks = [list(r).index(t) if t in r else len(r) for t, r in zip(true_labels, ranked_predictions) if t is not None]
    return topk_from_ranks(np.array(ranks, np.int64), ks)


def topk_from_ranks(ranks, ks=(1, 5, 10)) -> dict[str, float]:
    """Fraction of rows whose truth is ranked within the first k (``ranks``: its 0-based position,
    anything ``>= k`` where it is not ranked), for each k; NaN without rows."""
    r = np.asarray(ranks)
    if r.size == 0:
        return {str(k): float("nan") for k in ks}
    return {str(k): float(np.mean(r < k)) for k in ks}


def per_group_metrics(group_index, group_names: Sequence[str], distances_km, correct_country=None,
                      thresholds_km=DEFAULT_THRESHOLDS_KM) -> dict:
    """Distance summary (and country accuracy) per group, e.g. per continent of the true location.

    ``group_index[i]`` points into ``group_names`` (names may repeat: rows under one name form one
    group); ``correct_country`` is 1.0 / 0.0 per row, NaN where unknown. Groups in name order."""
    names = sorted(set(group_names), key=str)
    lut = np.array([names.index(n) for n in group_names], np.int64)
    group = lut[np.asarray(group_index, np.int64)]
    d = np.asarray(distances_km, np.float64)
    hits = None if correct_country is None else np.asarray(correct_country, np.float64)
    out = {}
    for g in np.unique(group).tolist():
        rows = group == g
        out[names[g]] = distance_summary(d[rows], thresholds_km)
        if hits is not None:
            out[names[g]]["country_accuracy"] = mean_known(hits[rows])
    return out


def mean_known(values: np.ndarray) -> float | None:
    """Mean of the non-NaN values; None where there are none."""
    known = values[~np.isnan(values)]
    return float(np.mean(known)) if known.size else None


def retrieval_recall(
    query_lat, query_lon, ref_lat, ref_lon, ranked_indices, ks=(1, 5, 10), radius_km: float = 0.025
) -> dict[str, float]:
    """Recall@K for place recognition: a query counts if any of its top-K references lies within
    ``radius_km`` of it (25 m by default, the DINO-Mix / VPR convention)."""
    ranked = np.asarray(ranked_indices)
    q_lat, q_lon = np.asarray(query_lat, np.float64)[:, None], np.asarray(query_lon, np.float64)[:, None]
    d = haversine_km(q_lat, q_lon, np.asarray(ref_lat, np.float64)[ranked], np.asarray(ref_lon, np.float64)[ranked])
    hits = d <= radius_km  # only the ranked neighbours are measured, never a full Q x N matrix
    return {str(k): float(np.mean(hits[:, :k].any(axis=1))) for k in ks}
