"""Evidence applied to a visual model's distribution: one rule, Bayes with a likelihood.

A model (GeoCLIP's gallery, a checkpoint's geocells, ...) gives a distribution ``p(x)`` over its
candidate locations ``x`` (points with a country). The evidence read from the photo (EXIF GPS,
place names, scripts, TLDs, phone prefixes, street words) is a likelihood ``L(x)`` up to a
constant, and the answer is the posterior

    p'(x) = p(x) * L(x) / sum_y p(y) * L(y)

computed over the model's whole support, before its top k are taken: a clue can lift a guess the
model ranked 40th into first place, but never invents a location the model gave no mass. With no
clue ``L = 1`` and the model's distribution is returned untouched. ``L`` is a product of factors:

* country clues (``combine.country_odds``: TLDs, phone prefixes, street words, country names and
  non-Latin scripts as odds ``E_c``): ``1 + E_c`` for a point in country c, 1 elsewhere;
* writing systems: ``combine.script_factor`` (P(script | country), floored), for every point;
* each place name read (gazetteer score s): ``1 + PLACE_ODDS * s * K(d / radius)`` with d the
  point's distance to the place and K a Gaussian kernel (``PLACE_RADIUS_KM`` per place kind);
* EXIF GPS (not trusted): ``1 + EXIF_KERNEL_ODDS * K(d / EXIF_RADIUS_KM)`` -- strong near the tag
  (a camera's tag is rarely wrong), 1 far away, so a wrong tag cannot move mass where the model had none.

``combine.rank`` (evidence alone, odds against "unknown") is what answers when there is no model.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from geocli.evidence.combine import PLACE_ODDS, Evidence, country_odds, script_factor

PLACE_RADIUS_KM = {"city": 25.0, "region": 150.0}
EXIF_RADIUS_KM, EXIF_KERNEL_ODDS = 25.0, 50.0


@dataclass
class Likelihood:
    """L(x) for one photo's evidence; ``factors`` evaluates it at candidate points."""

    evidence: Evidence
    points: bool = True  # False: country-level factors only (for a distribution over countries)

    def country_only(self) -> "Likelihood":
        return Likelihood(self.evidence, points=False)

    @property
    def country_factors(self) -> dict[str, float]:
        odds, _ = country_odds(self.evidence)
        return {code: 1.0 + e for code, e in odds.items()}

    @property
    def kernels(self) -> list[tuple[float, float, float, float]]:
        """(lat, lon, radius km, odds) of every point-like clue: place names and EXIF GPS."""
        ev = self.evidence
        if not self.points:
            return []
        out = [(m.place.lat, m.place.lon, PLACE_RADIUS_KM[m.place.kind], PLACE_ODDS * m.score)
               for m in ev.matches if m.place.kind in PLACE_RADIUS_KM]
        if ev.gps is not None:
            out.append((ev.gps[0], ev.gps[1], EXIF_RADIUS_KM, EXIF_KERNEL_ODDS))
        return out

    @property
    def empty(self) -> bool:
        ev = self.evidence
        return not (ev.hints or ev.matches or ev.gps is not None
                    or any(s != "Latin" for s, _ in ev.scripts))

    def factors(self, lat: np.ndarray, lon: np.ndarray, codes: Sequence[str | None]) -> np.ndarray:
        """L at each (lat, lon) whose country is ``codes[i]`` (None: no country, e.g. open sea)."""
        from geocli.geo.distance import haversine_km

        per_country = self.country_factors
        names, index = np.unique(np.asarray([c or "" for c in codes], dtype=object).astype(str), return_inverse=True)
        by_name = np.array([per_country.get(n, 1.0) * script_factor(self.evidence, n or None) for n in names])
        out = by_name[index].astype(np.float64) if len(codes) else np.empty(0)
        lat, lon = np.asarray(lat, np.float64), np.asarray(lon, np.float64)
        for plat, plon, radius, odds in self.kernels:
            d = haversine_km(lat, lon, plat, plon)
            out *= 1.0 + odds * np.exp(-((d / radius) ** 2))
        return out


def posterior(prior: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """``prior * factors`` renormalised to the prior's total mass (the rule in the docstring)."""
    prior = np.asarray(prior, np.float64)
    weighted = prior * factors
    total = weighted.sum()
    if not np.isfinite(total) or total <= 0:
        return prior
    return weighted * (prior.sum() / total)


def photo_evidence(gps: tuple[float, float] | None, boxes: list, trust_exif: bool = False) -> Evidence:
    """The clues in one photo: its EXIF GPS and what OCR read (``boxes``: TextBox-like, .text/.confidence)."""
    from geocli.evidence.scripts import detect_scripts
    from geocli.evidence.text_hints import hints_in_texts

    texts = [b.text for b in boxes]
    return Evidence(gps=gps, trust_exif=trust_exif, hints=hints_in_texts(texts), matches=text_matches(boxes),
                    scripts=detect_scripts(texts), script_letters=sum(ch.isalpha() for t in texts for ch in t))


def text_matches(boxes: list) -> list:
    """Gazetteer matches in each box and in neighbouring pairs (names split over two boxes)."""
    if not boxes:  # no text: the gazetteer (seconds to build) is not needed
        return []
    from geocli.evidence.gazetteer import best_matches, default_gazetteer

    gaz = default_gazetteer()
    found = []
    for box in boxes:
        found += gaz.match(box.text, float(box.confidence))
    for a, b in zip(boxes, boxes[1:]):
        found += gaz.match(f"{a.text} {b.text}", 0.8 * min(float(a.confidence), float(b.confidence)))
    return best_matches(found)
