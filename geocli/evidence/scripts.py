"""Writing systems in OCR text, and which countries write them.

A character's script comes from its Unicode character name (``unicodedata``): 'CYRILLIC SMALL
LETTER ZHE' is Cyrillic. Han ideographs are 'Han', Hiragana and Katakana are 'Kana'. Which
countries use a script comes from CLDR (via ``babel``): the share of each territory's population
speaking a language whose usual script it is. Without ``babel`` scripts are still detected, but give
no country prior.
"""
from __future__ import annotations

import unicodedata
from collections import Counter
from functools import lru_cache
from typing import Iterable

# Unicode name prefixes that differ from the script's common name.
_NAME_ALIASES = {"CJK": "Han", "HIRAGANA": "Kana", "KATAKANA": "Kana", "IDEOGRAPHIC": "Han"}
_WIDTH_PREFIXES = ("FULLWIDTH ", "HALFWIDTH ")
# Scripts spanning several ISO 15924 codes (Japanese and Korean writing mix scripts).
_MIXED_CODES = {"Han": {"Hani", "Hans", "Hant", "Jpan"}, "Kana": {"Jpan", "Hira", "Kana", "Hrkt"},
                "Hangul": {"Hang", "Kore"}, "Bengali": {"Beng"}, "Oriya": {"Orya"}}
MIN_SHARE = 0.02  # P(script | country) floor: visitors, imports and brand names carry any script


@lru_cache(maxsize=8192)  # called per character of ~300k place names when the gazetteer is built
def script_of(ch: str) -> str | None:
    """The script of one letter ('Latin', 'Cyrillic', 'Han', 'Kana', ...); None for non-letters."""
    if not unicodedata.category(ch).startswith("L"):
        return None
    name = unicodedata.name(ch, "")
    for prefix in _WIDTH_PREFIXES:
        name = name.removeprefix(prefix)
    first = name.split(" ")[0].split("-")[0] if name else ""
    if not first:
        return None
    return _NAME_ALIASES.get(first, first.title())


def detect_scripts(texts: Iterable[str]) -> list[tuple[str, float]]:
    """(script, share of letters) for all letters in ``texts``, most frequent first."""
    counts = Counter(s for text in texts for s in map(script_of, text) if s)
    total = sum(counts.values())
    return [(s, n / total) for s, n in counts.most_common()] if total else []


@lru_cache(maxsize=1)
def _script_codes() -> dict[str, set[str]]:
    """Script name -> ISO 15924 codes, from CLDR's English script names."""
    from babel import Locale

    codes: dict[str, set[str]] = {}
    for code, name in Locale("en").scripts.items():
        codes.setdefault(name.split(" ")[0].title(), set()).add(code)
    codes.update(_MIXED_CODES)
    return codes


def _language_script(tag: str, likely: dict) -> str | None:
    """ISO 15924 script of a CLDR language tag ('sr_Latn' -> Latn; 'hr' -> likely Latn)."""
    for part in tag.split("_")[1:]:
        if len(part) == 4:
            return part
    full = likely.get(tag) or likely.get(tag.split("_")[0]) or ""
    parts = [p for p in full.split("_")[1:] if len(p) == 4]
    return parts[0] if parts else None


@lru_cache(maxsize=64)
def script_country_shares(script: str) -> dict[str, float]:
    """Country code -> share of its people whose language is written in ``script`` (CLDR); {} without babel."""
    try:
        from babel.core import get_global
    except ImportError:
        return {}
    codes = _script_codes().get(script, set())
    likely = get_global("likely_subtags")
    shares: dict[str, float] = {}
    for territory, languages in get_global("territory_languages").items():
        pct = [info.get("population_percent", 0.0) for tag, info in languages.items()
               if _language_script(tag, likely) in codes]
        if pct and max(pct) > 0:
            shares[territory] = min(1.0, max(pct) / 100.0)
    return shares


def script_likelihood(script: str, country_code: str) -> float:
    """P(text in ``script`` | photo in country), floored at ``MIN_SHARE``; 1.0 when unknown (no babel)."""
    shares = script_country_shares(script)
    if not shares:
        return 1.0
    return max(MIN_SHARE, shares.get(country_code, 0.0))
