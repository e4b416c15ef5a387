"""Ranking candidate locations from all evidence, with honest probabilities.

Every clue is turned into *odds against "unknown"* (which has odds 1), so probabilities are
``odds / (1 + sum of odds)``: they sum to less than 1 and the remainder is the explicit chance that
none of the candidates is right. Weak clues have small odds, so a lone weak clue gives a low
probability; no clue at all gives no candidate.

* a place name read in the photo (gazetteer match, score s): odds ``PLACE_ODDS * s``, multiplied by
  ``1 + E`` where E is the country-level evidence for its country (a '+385' number backs 'Zagreb');
* country-level evidence E (TLD, phone, street words, country names, non-Latin scripts): a
  country-level candidate at the country's representative point with odds E;
* writing systems: a likelihood factor per country (Cyrillic text makes Portugal unlikely); Latin
  is written everywhere on signs and brands, so it is not used as a country prior;
* EXIF GPS: odds ``EXIF_ODDS``; ``trust_exif`` makes it rank first with probability 0.99;
* CLIP zero-shot (when weights are present): city and country candidates with odds proportional to
  CLIP's probabilities, and a bounded factor on the other candidates' countries.

Candidates closer than ``MERGE_KM`` in one country are merged (odds add up). Each candidate has a
*kind* (``place:exact``, ``country:ocr:hints``, ...); the probabilities are then mapped per kind to
measured frequencies by the fitted curves of ``geocli.evidence.calibration``.

This ranking answers when evidence stands alone. When a visual model gives a distribution over
locations, the same clues act on it as a likelihood instead (``geocli.evidence.fuse``).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from geocli.predict.record import Guess, guess
from geocli.geo.distance import haversine_km
from geocli.evidence.calibration import calibrate_all
from geocli.evidence.gazetteer import Match, country_points
from geocli.evidence.scripts import script_country_shares, script_likelihood
from geocli.evidence.text_hints import Hint, spread

PLACE_ODDS, EXIF_ODDS, SCRIPT_ODDS, CLIP_ODDS = 3.0, 4.0, 1.0, 1.5
TRUSTED_EXIF_PROBABILITY = 0.99
SCRIPT_FLOOR = 0.1  # P(script | country) floor: imported goods, tourists, Chinatowns
FULL_SCRIPT_LETTERS = 8  # script evidence reaches full strength at this many letters
MIN_SCRIPT_SHARE = 0.3  # a script must be this share of the letters to suggest countries by itself
CLIP_FACTOR_RANGE = (0.25, 4.0)
MIN_ODDS = 0.25  # below this a candidate alone would get under ~20%: not worth showing
MERGE_KM = 25.0


@dataclass
class Candidate:
    lat: float
    lon: float
    country: str | None
    odds: float
    source: str
    kind: str = ""  # what it claims and from which clue; the calibration is per kind


@dataclass
class Evidence:
    """Everything known about one photo, as the combiner needs it."""

    gps: tuple[float, float] | None = None
    trust_exif: bool = False
    hints: list[Hint] = field(default_factory=list)
    matches: list[Match] = field(default_factory=list)
    scripts: list[tuple[str, float]] = field(default_factory=list)
    script_letters: int = FULL_SCRIPT_LETTERS  # letters read: one stray glyph says little
    clip_countries: dict[str, float] = field(default_factory=dict)  # country -> probability
    clip_places: list[tuple[float, float, str, float]] = field(default_factory=list)  # lat, lon, country, p


def country_odds(ev: Evidence) -> tuple[dict[str, float], dict[str, str]]:
    """Country-level odds E_c, and which source contributed most to each."""
    parts: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for hint in ev.hints:
        for code, odds in hint.odds.items():
            parts[code]["ocr:hints"] += odds
    for m in ev.matches:
        if m.place.kind == "country":
            parts[m.place.country]["ocr:gazetteer"] += PLACE_ODDS * m.score
    for script, share in ev.scripts:
        if script != "Latin" and share >= MIN_SCRIPT_SHARE:
            majority = {c: s for c, s in script_country_shares(script).items() if s >= MIN_SCRIPT_SHARE}
            strength = SCRIPT_ODDS * share * min(1.0, ev.script_letters / FULL_SCRIPT_LETTERS)
            for code, odds in spread(majority, strength, majority).items():
                parts[code]["ocr:script"] += odds
    totals = {c: sum(p.values()) for c, p in parts.items()}
    sources = {c: max(p, key=p.get) for c, p in parts.items()}
    return totals, sources


def script_factor(ev: Evidence, code: str | None) -> float:
    factor = 1.0
    for script, share in ev.scripts:
        if script != "Latin" and code and script_country_shares(script):
            factor *= max(SCRIPT_FLOOR, script_likelihood(script, code)) ** share
    return factor


def _clip_factor(ev: Evidence, code: str | None) -> float:
    if not ev.clip_countries or not code:
        return 1.0
    ratio = ev.clip_countries.get(code, 0.0) * len(ev.clip_countries)
    return min(max(ratio**0.5, CLIP_FACTOR_RANGE[0]), CLIP_FACTOR_RANGE[1])


def _place_candidates(ev: Evidence, odds: dict[str, float]) -> list[Candidate]:
    places = [m for m in ev.matches if m.place.kind != "country"]
    by_country: dict[str, float] = defaultdict(float)
    for m in places:
        by_country[m.place.country] += PLACE_ODDS * m.score
    out = []
    for m in places:
        support = odds.get(m.place.country, 0.0) + by_country[m.place.country] - PLACE_ODDS * m.score
        p = m.place
        kind = "region" if p.kind == "region" else f"place:{'exact' if m.how == 'exact' else 'approximate'}"
        out.append(Candidate(p.lat, p.lon, p.country, PLACE_ODDS * m.score * (1 + support), "ocr:gazetteer", kind))
    return out


def _country_candidates(odds: dict[str, float], sources: dict[str, str], placed: set[str]) -> list[Candidate]:
    if not odds:  # no country evidence: the GeoNames cities (a second to read) are not needed
        return []
    points, out = country_points(), []
    for code, e in odds.items():
        if code in points:
            weight = e * (0.5 if code in placed else 1.0)
            out.append(Candidate(*points[code], code, weight, sources[code], f"country:{sources[code]}"))
    return out


def _clip_candidates(ev: Evidence, odds: dict[str, float]) -> list[Candidate]:
    if not ev.clip_places and not ev.clip_countries:  # visual branch off
        return []
    points = country_points()
    out = [Candidate(lat, lon, c, CLIP_ODDS * p * (1 + odds.get(c, 0.0)), "clip", "clip")
           for lat, lon, c, p in ev.clip_places]
    for code, p in sorted(ev.clip_countries.items(), key=lambda kv: -kv[1])[:5]:
        if code in points:
            out.append(Candidate(*points[code], code, 0.5 * CLIP_ODDS * p * (1 + odds.get(code, 0.0)), "clip",
                                 "country:clip"))
    return out


def _merge(cands: list[Candidate]) -> list[Candidate]:
    """Merge candidates within MERGE_KM in one country; the stronger keeps its point and source."""
    merged: list[Candidate] = []
    for c in sorted(cands, key=lambda c: -c.odds):
        near = next((m for m in merged if m.country == c.country
                     and haversine_km(m.lat, m.lon, c.lat, c.lon) <= MERGE_KM), None)
        if near is None:
            merged.append(Candidate(c.lat, c.lon, c.country, c.odds, c.source, c.kind))
        else:
            near.odds += c.odds
    return merged


def candidates(ev: Evidence) -> list[Candidate]:
    """All candidates with their odds against unknown, strongest first (EXIF not yet trusted)."""
    odds, sources = country_odds(ev)
    cands = _place_candidates(ev, odds)
    cands += _country_candidates(odds, sources, {c.country for c in cands if c.country})
    for c in cands:
        c.odds *= script_factor(ev, c.country) * _clip_factor(ev, c.country)
    cands += _clip_candidates(ev, odds)
    if ev.gps is not None:
        from geocli.geo.countries import country_code_at

        cands.append(Candidate(ev.gps[0], ev.gps[1], country_code_at(*ev.gps), EXIF_ODDS, "exif", "exif"))
    return [c for c in _merge(cands) if c.odds >= MIN_ODDS or c.source == "exif"]


def _probabilities(cands: list[Candidate], trust_exif: bool, calibrated: bool = True) -> list[tuple[Candidate, float]]:
    total = 1.0 + sum(c.odds for c in cands)
    probs = [c.odds / total for c in cands]
    if calibrated:
        probs = calibrate_all([c.kind for c in cands], probs)
    exif = next((i for i, c in enumerate(cands) if c.source == "exif"), None)
    if trust_exif and exif is not None:  # the others share what trusted EXIF leaves, in proportion
        scale = (1 - TRUSTED_EXIF_PROBABILITY) / max(1.0 - probs[exif], 1e-9)
        probs = [TRUSTED_EXIF_PROBABILITY if i == exif else p * scale for i, p in enumerate(probs)]
    return sorted(zip(cands, probs), key=lambda cp: -cp[1])


def ranked(ev: Evidence, calibrated: bool = True) -> list[tuple[Candidate, float]]:
    """Every candidate with its probability, best first (``calibrated=False``: the raw odds share)."""
    return _probabilities(candidates(ev), ev.trust_exif, calibrated)


def rank(ev: Evidence, top_k: int) -> tuple[list[Guess], float]:
    """The top ``top_k`` predictions as dicts, and the probability left to "unknown"."""
    probs = ranked(ev)
    unknown = max(0.0, 1.0 - sum(p for _, p in probs))
    preds = []
    for i, (c, p) in enumerate(probs[:top_k], start=1):
        preds.append(guess(i, round(float(c.lat), 6), round(float(c.lon), 6), c.source, round(float(p), 4),
                           country_code=c.country))
    return preds, float(unknown)
