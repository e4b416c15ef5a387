"""The default geolocator end to end: real RapidOCR on drawn text, EXIF, no-evidence photos, and the
zero-shot CLIP path with a tiny random open_clip architecture (mechanics, not accuracy)."""
from __future__ import annotations

import csv

import pytest
import torch
from PIL import Image, ImageDraw, ImageFont

from geocli.predict.default_geolocator import DefaultGeolocator
from geocli.evidence import combine
from geocli.evidence.gazetteer import default_gazetteer
from geocli.geo.distance import haversine_km

TINY_CLIP = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}
KEYS = {"exif", "predictions", "confidence_radius_km", "scene", "text", "scripts", "evidence", "reason"}
PRED_KEYS = {"rank", "lat", "lon", "country", "country_name", "cell", "probability", "source"}


def sign(text: str, size=(720, 240)) -> Image.Image:
    img = Image.new("RGB", size, "white")
    ImageDraw.Draw(img).text((24, 80), text, fill="black", font=ImageFont.load_default(size=64))
    return img


@pytest.fixture(scope="module")
def geo():
    return DefaultGeolocator(clip_model=None)


def test_drawn_place_names_are_located(geo):
    zagreb, sf, blank = geo.locate([sign("ZAGREB"), sign("SAN FRANCISCO"), Image.new("RGB", (320, 240), "skyblue")],
                                   [None, None, None], top_k=3)
    for result in (zagreb, sf, blank):
        assert set(result) == KEYS and all(set(p) == PRED_KEYS for p in result["predictions"])
    top = zagreb["predictions"][0]
    assert (top["country"], top["country_name"], top["source"], top["rank"]) == ("HR", "Croatia", "ocr:gazetteer", 1)
    assert haversine_km(top["lat"], top["lon"], 45.81, 15.98) < 10 and 0.2 < top["probability"] < 0.9
    assert zagreb["text"][0]["text"] == "ZAGREB" and zagreb["scripts"][0]["script"] == "Latin"
    assert haversine_km(sf["predictions"][0]["lat"], sf["predictions"][0]["lon"], 37.77, -122.42) < 10
    assert sum(p["probability"] for p in sf["predictions"]) <= 1.0
    assert any("unknown" in line for line in sf["evidence"])
    assert blank["predictions"] == [] and "no location evidence" in blank["reason"]
    assert zagreb["reason"] is None and zagreb["scene"] is None


def test_phone_number_gives_a_country_level_guess(geo):
    (result,) = geo.locate([sign("+385 1 4567 890")], [None], top_k=3)
    top = result["predictions"][0]
    assert (top["country"], top["source"]) == ("HR", "ocr:hints")
    assert any("phone" in line for line in result["evidence"])


def test_exif_gps_and_trust_exif(tmp_path):
    exif = Image.Exif()
    exif.get_ifd(0x8825).update({1: "N", 2: (43.0, 30.0, 0.0), 3: "E", 4: (16.0, 26.0, 0.0)})
    path = tmp_path / "split.jpg"
    Image.new("RGB", (320, 240), "gray").save(path, exif=exif)
    img = Image.open(path).convert("RGB")
    trusted = DefaultGeolocator(clip_model=None, no_ocr=True, trust_exif=True)
    (result,) = trusted.locate([img], [str(path)], top_k=3)
    top = result["predictions"][0]
    assert result["exif"]["gps"] == {"lat": 43.5, "lon": 16.4333333}
    assert (top["source"], top["country"], top["probability"]) == ("exif", "HR", 0.99)
    assert result["text"] == [] and not any("OCR" in line for line in result["evidence"])
    (untrusted,) = DefaultGeolocator(clip_model=None, no_ocr=True).locate([img], [str(path)], top_k=3)
    assert 0.5 < untrusted["predictions"][0]["probability"] < 0.99


def test_missing_clip_weights_give_one_status_line(tmp_path):
    geo = DefaultGeolocator(clip_weights=str(tmp_path / "missing.safetensors"), no_ocr=True)
    (line,) = geo.status_lines()
    assert "\n" not in line and "visual branch off" in line
    assert "--clip-weights PATH" in line and "internet" in line
    (result,) = geo.locate([Image.new("RGB", (64, 64))], [None], top_k=1)
    assert result["predictions"] == [] and "visual branch off" in result["reason"]


def test_combiner_probabilities_are_honest():
    gaz = default_gazetteer()
    assert combine.rank(combine.Evidence(), 5) == ([], 1.0)
    weak, _ = combine.rank(combine.Evidence(matches=gaz.match("Split", 0.9)), 5)
    assert weak == []  # a dictionary word alone is no evidence
    from geocli.evidence.text_hints import phone_hints

    backed, unknown = combine.rank(combine.Evidence(matches=gaz.match("Split", 0.9),
                                                    hints=phone_hints("+385 21 345 678")), 5)
    assert {p["country"] for p in backed} == {"HR"} and unknown > 0
    alone, _ = combine.rank(combine.Evidence(matches=gaz.match("ZAGREB", 0.99)), 5)
    both, _ = combine.rank(combine.Evidence(matches=gaz.match("ZAGREB", 0.99), hints=phone_hints("+385 1 234 5678")), 5)
    assert both[0]["probability"] > alone[0]["probability"]


def test_non_latin_script_suggests_countries():
    pytest.importorskip("babel")
    preds, _ = combine.rank(combine.Evidence(scripts=[("Hangul", 1.0)]), 3)
    assert preds[0]["country"] == "KR" and preds[0]["source"] == "ocr:script" and preds[0]["probability"] < 0.6


def test_zero_shot_clip_with_a_tiny_random_model(monkeypatch, tmp_path):
    monkeypatch.setenv("GEOCLI_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    geo = DefaultGeolocator(clip_model="geocli-test-default-tiny-clip", clip_pretrained=None,
                            clip_model_cfg=TINY_CLIP, no_ocr=True, clip_cities=40)
    assert geo.status_lines() == []
    images = [Image.new("RGB", (48, 40), c) for c in ("green", "blue", "white")]
    visual = geo.clip.predict(images)
    assert len(visual) == 3 and len(visual[0]["places"]) == 5
    assert sum(visual[0]["countries"].values()) == pytest.approx(1.0, abs=1e-4)
    assert visual[0]["scene"]["label"] in {"indoor", "natural", "urban"}
    results = geo.locate(images, [None] * 3, top_k=4)
    for result in results:
        probs = [p["probability"] for p in result["predictions"]]
        assert result["scene"]["label"] in {"indoor", "natural", "urban"} and 0 < result["scene"]["probability"] <= 1
        assert len(probs) <= 4 and probs == sorted(probs, reverse=True)
        assert sum(probs) < 1.0 and {p["source"] for p in result["predictions"]} <= {"clip"}
        assert any(line.startswith("CLIP countries") for line in result["evidence"])


@pytest.mark.realdata
def test_sf_photos_with_text(shared_data):
    folder = shared_data / "sf-landmarks"
    rows = list(csv.DictReader(open(folder / "manifest.csv")))[:12]
    geo = DefaultGeolocator(clip_model=None)
    images = [Image.open(folder / r["image"]).convert("RGB") for r in rows]
    results = geo.locate(images, [str(folder / r["image"]) for r in rows], top_k=3)
    assert all(r["exif"]["camera"] for r in results)
    for row, result in zip(rows, results):
        assert result["predictions"] or result["reason"]
        for p in result["predictions"]:
            assert 0 < p["probability"] < 1
