"""Writing systems and text hints (TLDs, phone prefixes, street-type words) on sample strings."""
from __future__ import annotations

import pytest

from geocli.evidence.scripts import detect_scripts, script_country_shares, script_likelihood, script_of
from geocli.evidence.text_hints import fold, phone_hints, street_word_hints, text_hints, tld_hints


@pytest.mark.parametrize("text, script", [
    ("Zagreb", "Latin"), ("Загреб", "Cyrillic"), ("Αθήνα", "Greek"), ("القاهرة", "Arabic"),
    ("ירושלים", "Hebrew"), ("北京", "Han"), ("서울", "Hangul"), ("カタカナ", "Kana"), ("ひらがな", "Kana"),
    ("दिल्ली", "Devanagari"), ("กรุงเทพ", "Thai"), ("ＡＢＣ", "Latin"),
])
def test_script_of_each_writing_system(text, script):
    assert detect_scripts([text])[0][0] == script


def test_script_shares_ignore_digits_and_punctuation():
    scripts = dict(detect_scripts(["Ilica 12, Zagreb!", "Улица 5"]))
    assert set(scripts) == {"Latin", "Cyrillic"}
    assert scripts["Latin"] == pytest.approx(11 / 16)
    assert script_of("7") is None and script_of(" ") is None


def test_script_countries_from_cldr():
    pytest.importorskip("babel")
    hangul = script_country_shares("Hangul")
    assert max(hangul, key=hangul.get) in {"KR", "KP"}
    assert script_country_shares("Greek")["GR"] > 0.9
    assert script_likelihood("Cyrillic", "RS") > 0.9 > script_likelihood("Cyrillic", "PT")
    assert script_likelihood("Thai", "FR") == pytest.approx(0.02)


def _top(hints):
    merged: dict[str, float] = {}
    for h in hints:
        for code, odds in h.odds.items():
            merged[code] = merged.get(code, 0.0) + odds
    return max(merged, key=merged.get) if merged else None


@pytest.mark.parametrize("text, country", [
    ("Tel. +385 1 4567 890", "HR"), ("tel 00385 21 345 678", "HR"), ("+44 20 7946 0958", "GB"),
    ("Call (415) 555-0123", "US"), ("+1 415 555 0123", "US"),
    ("[877]556-3100", "US"),  # as OCR read a sign in San Francisco: brackets for parentheses
])
def test_phone_prefixes(text, country):
    assert _top(phone_hints(text)) == country


def test_phone_needs_enough_digits():
    assert phone_hints("+38") == [] and phone_hints("00 12") == [] and phone_hints("Price 385") == []


@pytest.mark.parametrize("text, country", [
    ("www.visitzagreb.hr", "HR"), ("info@hotel-split.hr", "HR"), ("http://www.bahn.de/tickets", "DE"),
    ("SHOP.CO.UK", "GB"),
])
def test_country_code_tlds(text, country):
    assert _top(tld_hints(text)) == country


def test_vanity_tlds_are_weak_and_numbers_are_not_domains():
    (io,) = tld_hints("startup.io")
    assert sum(io.odds.values()) < 0.5
    assert tld_hints("3.5 km") == [] and tld_hints("St. Louis") == []


def test_street_words():
    (hint,) = street_word_hints("Ilica ulica 5")
    assert {"HR", "PL", "SK", "RS"} <= set(hint.odds)
    assert _top(street_word_hints("Hauptstraße 12")) == "DE"
    assert "FR" in street_word_hints("12 Rue de Rivoli")[0].odds
    assert "IT" in street_word_hints("Via Roma 3")[0].odds
    assert street_word_hints("Drottninggatan") and street_word_hints("Market") == []
    assert all(sum(h.odds.values()) < 0.5 for h in text_hints("Main Street, Calle Mayor"))


def test_fold():
    assert fold("STRAßE Čakovec") == "strasse cakovec"
    assert fold("ZÜRICH") == "zurich"
