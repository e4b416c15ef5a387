"""Calibration of the evidence model: a stated probability should match how often it is right.

The combiner's odds are a hand-made scale; this maps them to measured frequencies. Each
candidate has a *kind* (what it claims and from which clue): ``place:exact`` and
``place:approximate`` (a city named in the text, exactly or by a joined / partial / fuzzy read;
right when the photo is within ``PLACE_KM`` of it), ``region`` (a US state), ``country:<source>``
(a country from TLDs / phone numbers / street words, a country name, or a writing system; right
when the country is), ``clip`` and ``exif``. Per kind, the raw probability ``p`` becomes
``sigmoid(a * logit(p) + b)`` (Platt scaling), ``a`` and ``b`` fitted by maximum likelihood on
labelled photos with a penalty that pulls each kind toward the curve fitted on all kinds together
(a kind seen a few times cannot swing far). Kinds never measured keep their raw probability.

The fitted curves ship as ``calibration.json`` beside this module, written by
``python bench/bench_calibration.py --fit`` with the photos and numbers they came from.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

CALIBRATION_FILE = Path(__file__).with_name("calibration.json")
PLACE_KM = 25.0
EPS = 1e-4
PRIOR_STRENGTH = 2.0  # penalty weight pulling a kind's (a, b) toward the pooled curve (~ pseudo-counts)


@dataclass(frozen=True)
class Curve:
    """``p -> sigmoid(a * logit(p) + b)``; ``n`` labelled examples it was fitted on."""

    a: float = 1.0
    b: float = 0.0
    n: int = 0

    def __call__(self, p: float) -> float:
        return float(_sigmoid(self.a * _logit(p) + self.b))


def claim_of(kind: str) -> str:
    """What a candidate of this kind asserts: ``place`` (within PLACE_KM) or ``country``."""
    return "place" if kind.startswith("place") or kind in ("exif", "clip") else "country"


def _logit(p) -> np.ndarray:
    p = np.clip(np.asarray(p, np.float64), EPS, 1 - EPS)
    return np.log(p / (1 - p))


def _sigmoid(x) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


@lru_cache(maxsize=4)
def load_curves(path: str | None = None) -> dict[str, Curve]:
    """The shipped curves (or those in ``path``); empty when the file is absent."""
    file = Path(path) if path else CALIBRATION_FILE
    if not file.is_file():
        return {}
    data = json.loads(file.read_text(encoding="utf-8"))
    return {kind: Curve(float(c["a"]), float(c["b"]), int(c.get("n", 0))) for kind, c in data["curves"].items()}


def calibrate(kind: str, p: float, curves: dict[str, Curve] | None = None) -> float:
    """The calibrated probability of a candidate of ``kind`` whose raw probability is ``p``."""
    curve = (load_curves() if curves is None else curves).get(kind)
    return p if curve is None else curve(p)


def calibrate_all(kinds: Sequence[str], probs: Sequence[float], curves: dict[str, Curve] | None = None) -> list[float]:
    """Each candidate calibrated; scaled down together if they would add up to more than 1."""
    out = [calibrate(k, p, curves) for k, p in zip(kinds, probs)]
    total = sum(out)
    return [p / total for p in out] if total > 1.0 else out


def _nll(params: np.ndarray, x: np.ndarray, y: np.ndarray, prior: np.ndarray | None) -> float:
    z = params[0] * x + params[1]
    loss = float(np.sum(np.logaddexp(0.0, z) - y * z))
    if prior is not None:
        loss += PRIOR_STRENGTH * float(np.sum((params - prior) ** 2))
    return loss


def _fit_one(p: np.ndarray, hits: np.ndarray, prior: np.ndarray | None) -> np.ndarray:
    from scipy.optimize import minimize

    start = prior if prior is not None else np.array([1.0, 0.0])
    result = minimize(_nll, start, args=(_logit(p), hits.astype(np.float64), prior), method="L-BFGS-B",
                      bounds=[(0.25, 1.0), (-8.0, 8.0)])
    return result.x


def fit_curves(examples: Iterable[tuple[str, float, bool]]) -> dict[str, Curve]:
    """Curves from (kind, raw probability, right?) examples: a pooled curve, then each kind's own,
    pulled toward the pooled one."""
    rows = list(examples)
    if not rows:
        return {}
    kinds = np.array([k for k, _, _ in rows])
    p = np.array([v for _, v, _ in rows], np.float64)
    y = np.array([bool(h) for _, _, h in rows])
    pooled = _fit_one(p, y, None)
    curves = {}
    for kind in sorted(set(kinds.tolist())):
        sel = kinds == kind
        a, b = _fit_one(p[sel], y[sel], pooled)
        curves[kind] = Curve(round(float(a), 4), round(float(b), 4), int(sel.sum()))
    return curves


def save_curves(curves: dict[str, Curve], path: Path, about: dict) -> None:
    """Write the curves with a note on where they came from."""
    data = {"about": about, "curves": {k: {"a": c.a, "b": c.b, "n": c.n} for k, c in sorted(curves.items())}}
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    load_curves.cache_clear()


