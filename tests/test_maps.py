"""--map: HTML and PNG maps of the guesses, framed around them; regression guesses (no probability) too."""
from __future__ import annotations

import pytest
from PIL import Image

from geocli.errors import UsageError
from geocli.report.maps import check_map_path, extent, write_map


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
    assert "fitMarkers" in html and '"image":"a.jpg"' in html and '"probability":null' in html


def test_html_map_is_self_contained(tmp_path):
    """No script, style or tile is fetched: everything the page draws is inside the file."""
    write_map(RECORDS, tmp_path / "m.html")
    html = (tmp_path / "m.html").read_text()
    assert "<script src" not in html and "<link" not in html
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "") and "https://" not in html
    assert '"name":"Croatia","rings":' in html  # the shipped borders, inlined
    assert "GeoMap" in html and ".geomap-country" in html


def test_html_map_names_tiles_only_when_asked(tmp_path):
    write_map(RECORDS, tmp_path / "m.html", tiles="https://tiles.example.org/{z}/{x}/{y}.png")
    html = (tmp_path / "m.html").read_text()
    assert '"tiles":"https://tiles.example.org/{z}/{x}/{y}.png"' in html and "tiles: tiles.example.org" in html


def test_html_map_keeps_hostile_names_out_of_the_markup(tmp_path):
    write_map([_record("</script><img src=x onerror=alert(1)>.jpg", (45.8, 16.0, 0.6))], tmp_path / "m.html")
    html = (tmp_path / "m.html").read_text()
    assert "<img src=x" not in html and "</script><img" not in html


def test_png_map_draws_land_sea_and_borders(tmp_path):
    write_map(RECORDS, tmp_path / "m.png")
    with Image.open(tmp_path / "m.png") as img:
        colours = {c for _, c in img.convert("RGB").getcolors(1 << 20)}
    assert (0xf4, 0xf1, 0xea) in colours  # land
    assert (0xcf, 0xe3, 0xf0) in colours  # sea
    assert any(abs(r - 0x8a) < 12 and abs(g - 0x8a) < 12 and abs(b - 0x8a) < 12 for r, g, b in colours)  # borders


def test_other_suffixes_are_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match=".html or .png"):
        write_map(RECORDS, tmp_path / "m.svg")
    with pytest.raises(UsageError, match="does not exist"):
        check_map_path(tmp_path / "missing" / "m.html")


def test_predict_refuses_a_bad_map_name_before_reading_any_photo(tmp_path, capsys, monkeypatch):
    import geocli
    from geocli.cli.main import main

    Image.new("RGB", (16, 16)).save(tmp_path / "a.jpg")
    monkeypatch.setattr(geocli, "load_model", lambda *a, **k: pytest.fail("the model was loaded"))
    for bad, message in ((tmp_path / "m.svg", ".html or .png"), (tmp_path / "no" / "m.html", "does not exist")):
        with pytest.raises(SystemExit) as exit_:
            main(["predict", str(tmp_path / "a.jpg"), "--model", "evidence", "--map", str(bad)])
        assert exit_.value.code == 2 and message in capsys.readouterr().err
