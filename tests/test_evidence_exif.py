"""EXIF evidence read from JPEGs written with Pillow: valid GPS, broken GPS, out-of-range GPS."""
from __future__ import annotations

from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from geocli.evidence.exif import read_exif


def _jpeg(path, gps: dict | None = None, make="Nokia", model="N95 8GB", when="2010:01:27 13:54:08"):
    exif = Image.Exif()
    if make:
        exif[271], exif[272] = make, model
    if when:
        exif.get_ifd(0x8769)[36867] = when
    if gps is not None:
        exif.get_ifd(0x8825).update(gps)
    Image.new("RGB", (64, 48), "red").save(path, exif=exif)
    return str(path)


def test_valid_gps_camera_and_time(tmp_path):
    gps = {1: "S", 2: (33.0, 52.0, 4.8), 3: "E", 4: (151.0, 12.0, 36.0)}
    info = read_exif(_jpeg(tmp_path / "a.jpg", gps))
    assert info.gps == (-33.868, 151.21)
    assert info.camera == "Nokia N95 8GB" and info.datetime == "2010-01-27T13:54:08"
    assert info.notes == []
    assert info.to_dict() == {"gps": {"lat": -33.868, "lon": 151.21}, "camera": "Nokia N95 8GB",
                              "datetime": "2010-01-27T13:54:08"}


def test_west_longitude_and_model_repeating_make(tmp_path):
    gps = {1: "N", 2: (37.0, 47.0, 0.0), 3: "W", 4: (122.0, 25.0, 0.0)}
    info = read_exif(_jpeg(tmp_path / "a.jpg", gps, make="Canon", model="Canon EOS 5D"))
    assert info.gps[0] > 37.78 and info.gps[1] < -122.41
    assert info.camera == "Canon EOS 5D"


def test_zero_denominator_gives_no_gps_and_a_note(tmp_path):
    gps = {1: "N", 2: (IFDRational(45, 0), 0.0, 0.0), 3: "E", 4: (15.0, 0.0, 0.0)}
    info = read_exif(_jpeg(tmp_path / "b.jpg", gps))
    assert info.gps is None and "unreadable" in info.notes[0]


def test_out_of_range_gps_is_rejected(tmp_path):
    gps = {1: "N", 2: (200.0, 0.0, 0.0), 3: "E", 4: (15.0, 0.0, 0.0)}
    info = read_exif(_jpeg(tmp_path / "c.jpg", gps))
    assert info.gps is None and "out of range" in info.notes[0]


def test_gps_block_without_coordinates(tmp_path):
    info = read_exif(_jpeg(tmp_path / "d.jpg", {1: "N", 3: "E"}))
    assert info.gps is None and "no latitude" in info.notes[0]


def test_no_exif_and_unreadable_files(tmp_path):
    plain = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(plain)
    assert read_exif(str(plain)).to_dict() == {"gps": None, "camera": None, "datetime": None}
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not a jpeg")
    assert read_exif(str(junk)).gps is None and read_exif(str(junk)).notes
    assert read_exif(None).gps is None
