"""Calibration: do stated probabilities match how often the answers are right?

Photos are binned by the probability stated for their top guess (ten equal-width bins); each bin
shows the mean stated probability beside the share of its photos within ``CALIBRATION_KM`` of the
truth and the share whose country is right. The expected calibration error (ECE) is the
photo-weighted mean gap between stated probability and the observed share, over the bins:
0 for a perfectly calibrated model, up to 1.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from geocli.evaluate.metrics import mean_known

CALIBRATION_KM = 25.0
N_BINS = 10


def bin_index(probabilities, n_bins: int = N_BINS) -> np.ndarray:
    """Bin of each probability: [0, 0.1) -> 0 ... [0.9, 1.0] -> 9."""
    p = np.asarray(probabilities, np.float64)
    return np.minimum((p * n_bins).astype(int), n_bins - 1)


def expected_calibration_error(probabilities, hits, n_bins: int = N_BINS) -> float | None:
    """Photo-weighted mean |stated - observed| over probability bins; None without photos."""
    p, h = np.asarray(probabilities, np.float64), np.asarray(hits, np.float64)
    if p.size == 0:
        return None
    bins = bin_index(p, n_bins)
    gaps = [abs(p[bins == b].mean() - h[bins == b].mean()) * np.sum(bins == b) for b in np.unique(bins)]
    return float(np.sum(gaps) / p.size)


def reliability_table(probabilities, near_hits, country_hits, n_bins: int = N_BINS) -> list[dict]:
    """One row per non-empty bin: its range, photo count, mean stated probability, share within
    ``CALIBRATION_KM`` and country accuracy (over photos whose true country is known)."""
    p = np.asarray(probabilities, np.float64)
    near = np.asarray(near_hits, np.float64)
    hits = known_hits(country_hits)
    bins = bin_index(p, n_bins)
    rows = []
    for b in np.unique(bins):
        sel = np.flatnonzero(bins == b)
        rows.append({"bin": [b / n_bins, (b + 1) / n_bins], "n": int(sel.size),
                     "stated": float(p[sel].mean()), "within_km": float(near[sel].mean()),
                     "country": mean_known(hits[sel])})
    return rows


def known_hits(country_hits) -> np.ndarray:
    """Country hits as 1.0 / 0.0, NaN where the true country is unknown (``None`` in a list)."""
    if isinstance(country_hits, np.ndarray) and country_hits.dtype.kind == "f":
        return country_hits
    return np.array([np.nan if c is None else float(c) for c in country_hits], np.float64)


def calibration_summary(probabilities, distances_km, country_hits: Sequence[bool | None] | np.ndarray) -> dict:
    """The reliability table and both ECEs (against within-``CALIBRATION_KM`` and the country);
    ``country_hits``: bools with None where unknown, or floats with NaN."""
    p = np.asarray(probabilities, np.float64)
    near = np.asarray(distances_km, np.float64) <= CALIBRATION_KM
    hits = known_hits(country_hits)
    known = ~np.isnan(hits)
    return {
        "n": int(p.size), "within_km": CALIBRATION_KM,
        "ece_km": expected_calibration_error(p, near),
        "ece_country": expected_calibration_error(p[known], hits[known]),
        "bins": reliability_table(p, near, hits),
    }


def radius_coverage(radii_km, distances_km) -> dict:
    """How often the truth lies within the stated confidence radius (90% if the radius is honest)."""
    r, d = np.asarray(radii_km, np.float64), np.asarray(distances_km, np.float64)
    return {"n": int(r.size), "within_radius": float(np.mean(d <= r)) if r.size else None,
            "median_radius_km": float(np.median(r)) if r.size else None}


def calibration_report(probability, radius_km, distances_km, country_hits: np.ndarray) -> dict | None:
    """Calibration of the rows whose top guess states a probability (and of the confidence radius,
    where records state one); per row, NaN where not stated. None when no row states either."""
    d = np.asarray(distances_km, np.float64)
    rows, radii = np.flatnonzero(~np.isnan(probability)), np.flatnonzero(~np.isnan(radius_km))
    if not rows.size and not radii.size:
        return None
    report = calibration_summary(probability[rows], d[rows], country_hits[rows])
    if radii.size:
        report["radius"] = radius_coverage(radius_km[radii], d[radii])
    return report
