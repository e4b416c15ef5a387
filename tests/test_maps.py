"""--map: HTML and PNG maps of the guesses, framed around them; regression guesses (no probability) too."""
from __future__ import annotations

import pytest
from PIL import Image

from geocli.errors import UsageError
from geocli.report.maps import extent, write_map


def _record(image, *guesses):
    return {"image": image, "ok": True,
            "predictions": [{"rank": r, "lat": lat, "lon": lon, "country_name": "Croatia", "probability": prob}
                            for r, (lat, lon, prob) in enumerate(guesses, start=1)]}


RECORDS = [_record("a.jpg", (45.8, 16.0, 0.6), (43.5, 16.4, 0.2)),
           _record("b.jpg", (45.3, 14.4, None)),  # a regression head: one point, no distribution
           {"image": "broken.jpg", "ok": False, "predictions": []}]


def test_extent_frames_the_guesses_and_falls_back_to_the_world():
    west, east, south, north = extent(RECORDS)
    assert west < 14.4 and east > 16.4 and south < 43.5 and north > 45.8
    assert east - west >= 6 and north - south >= 6 and east - west < 20
    assert extent([RECORDS[2]]) == (-180.0, 180.0, -90.0, 90.0)
    wide = extent([_record("w.jpg", (-80.0, -179.0, 0.5), (85.0, 179.0, 0.5))])
    assert wide == (-180.0, 180.0, -90.0, 90.0)  # clipped to the world


def test_png_and_html_maps_are_written(tmp_path):
    write_map(RECORDS, tmp_path / "m.png")
    with Image.open(tmp_path / "m.png") as img:
        assert img.width > 800 and img.height > 300
    write_map(RECORDS, tmp_path / "m.html")
    html = (tmp_path / "m.html").read_text()
    assert "fitBounds" in html and "a.jpg #1: Croatia 60.0%" in html and "b.jpg #1: Croatia" in html


def test_other_suffixes_are_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match=".html or .png"):
        write_map(RECORDS, tmp_path / "m.svg")
