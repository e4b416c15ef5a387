"""The columnar eval path: pyarrow's JSONL reading gives the record-by-record table, files it cannot
take as they are still read (or refused naming the record), and matching and country rankings
follow the documented rules."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import write_csv
from geocli.cli.main import cli, main
from geocli.errors import ManifestError
from geocli.evaluate import jsonl_columns
from geocli.evaluate.jsonl_columns import read_jsonl_columns
from geocli.evaluate.matching import match_records
from geocli.evaluate.prediction_table import table_from_records
from geocli.evaluate.predictions_file import read_predictions
from geocli.evaluate.rankings import top_countries

RECORDS = [
    {"image": "a.jpg", "ok": True, "predictions": [
        {"rank": 2, "lat": 45.8, "lon": 16.0, "country": "hr", "probability": 0.2},
        {"rank": 1, "lat": 46.05, "lon": 14.5, "probability": 0.7, "country_name": "Slovenia"}],
     "confidence_radius_km": 120.5, "exif": {"gps": None}},
    {"image": "b.jpg", "ok": False, "error": "broken", "predictions": [{"rank": 1, "lat": 1.0, "lon": 2.0}]},
    {"image": "c.jpg", "ok": True, "predictions": [], "reason": "no evidence"},
    {"image": "d.jpg", "predictions": [{"lat": 40.7, "lon": -74.0, "country": ""}],
     "country_head": [{"rank": 2, "country": "ca"}, None, {"rank": 1, "country": "US"}, {"rank": 3, "country": ""}]},
]


def _same(a, b):
    for name in ("ok", "guess_offsets", "guess_lat", "guess_lon", "probability", "has_probability",
                 "radius_km", "has_radius", "head_offsets", "numbers"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    for name in ("images", "guess_country", "head_country"):
        assert getattr(a, name).to_pylist() == getattr(b, name).to_pylist(), name


def _jsonl(records) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def test_pyarrow_columns_equal_the_record_by_record_table():
    fast = read_jsonl_columns(_jsonl(RECORDS))
    assert fast is not None
    _same(fast, table_from_records(RECORDS))
    assert fast.guess_counts.tolist() == [2, 0, 0, 1]  # the error record keeps no guesses
    assert fast.guess_lat.tolist() == [46.05, 45.8, 40.7]  # by rank
    assert fast.guess_country.to_pylist() == [None, "HR", None]
    assert fast.probability[0] == 0.7 and fast.has_probability.tolist() == [True, False, False, False]
    assert fast.head_country.to_pylist() == ["US", "CA"]


@pytest.mark.parametrize("text", [
    '\n{"image": "a.jpg"}\n\n',  # blank lines
    '{"image": "a.jpg", "predictions": [{"lat": "45.8", "lon": 16}]}\n',  # a number as a string
    '{"image": 7}\n',  # not a string
    '{"image": "a.jpg", "image": "b.jpg"}\n',  # a key twice: the last wins
    '{"image": "a.jpg"} {"image": "b.jpg"}\n',  # two objects on a line: not JSONL
    '{"image": "a.jpg", "predictions": {}}\n',
])
def test_lines_the_columns_cannot_take_go_record_by_record(tmp_path, text):
    assert read_jsonl_columns(text.encode()) is None
    path = tmp_path / "p.jsonl"
    path.write_text(text)
    if "} {" in text:
        with pytest.raises(ManifestError, match="line 1: not valid JSON"):
            read_predictions(path)
        return
    table = read_predictions(path)
    assert table.images.to_pylist() == [json.loads(line)["image"] and str(json.loads(line)["image"])
                                         for line in text.split("\n") if line.strip()]


def test_a_line_longer_than_a_parse_block_is_still_read(tmp_path, monkeypatch):
    monkeypatch.setattr(jsonl_columns, "BLOCK_BYTES", 1024)
    records = [RECORDS[2]] * 50 + [dict(RECORDS[0], reason="x" * 5000)] + [RECORDS[3]] * 50
    path = tmp_path / "p.jsonl"
    path.write_bytes(_jsonl(records))
    assert read_jsonl_columns(path.read_bytes()) is not None
    _same(read_predictions(path), table_from_records(records))


def test_latin1_names_are_read_as_the_record_reader_reads_them(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_bytes('{"image": "café.jpg"}\n'.encode("latin-1"))
    assert read_predictions(path).images.to_pylist() == ["café.jpg"]


@pytest.mark.parametrize("line,message", [
    ('{"image": "p.jpg", "predictions": [{"lat": NaN, "lon": 16.0}]}', "record 3: predicted coordinate out of range: nan"),
    ('{"image": "p.jpg", "predictions": [{"lat": 45, "lon": 16}, {"lat": 91, "lon": 0}]}', "record 3: predicted coordinate out of range: 91.0, 0.0"),
    ('{"image": "p.jpg", "predictions": [{"lat": 45, "lon": 16, "probability": 1.5}]}', "record 3: probability out of range: 1.5"),
    ('{"image": "p.jpg", "predictions": [{"lat": 45, "lon": 16}], "confidence_radius_km": -1}', "record 3: confidence_radius_km out of range"),
    ('{"image": "p.jpg", "predictions": [{"lat": 45}]}', "record 3: prediction lat/lon not numbers: 45, None"),
    ('{"predictions": []}', "record 3: expected an object with an 'image' key"),
])
def test_bad_values_are_refused_naming_the_record(tmp_path, line, message):
    path = tmp_path / "p.jsonl"
    path.write_text(_jsonl(RECORDS[:2]).decode() + line + "\n" + _jsonl(RECORDS[2:]).decode())
    with pytest.raises(ManifestError, match=message.replace("(", r"\(")):
        read_predictions(path)


def test_an_error_records_guesses_are_not_checked():
    table = table_from_records([{"image": "a.jpg", "ok": False, "predictions": [{"lat": 500, "lon": 0}]}])
    assert table.guess_counts.tolist() == [0]


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_an_empty_predictions_file_is_one_line(tmp_path, capsys, content):
    gt = write_csv(tmp_path / "gt.csv", "image,lat,lon\na.jpg,45.8,16.0\n")
    path = tmp_path / "p.jsonl"
    path.write_text(content)
    with pytest.raises(SystemExit) as exc:
        main(["eval", str(gt), "--predictions", str(path)])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_matching_by_name_then_longest_path_suffix():
    images = ["/data/x/a.jpg", "/data/y/a.jpg", "/data/b.jpg", "/data/c.jpg"]
    names = ["y/a.jpg", "a.jpg", "b.jpg", "z\\c.jpg", "b.jpg", "nowhere.jpg", "x/a.jpg"]
    table = table_from_records([{"image": n} for n in names])
    m = match_records(images, table.images)
    # "a.jpg" alone ties between x/ and y/: it matches neither; the second b.jpg replaces the first
    assert m.winner.tolist() == [6, 0, 4, 3]
    assert m.unmatched.tolist() == [1, 5] and m.duplicates == 1


def test_eval_counts_every_kind_of_record(tmp_path):
    gt = write_csv(tmp_path / "gt.csv", "image,lat,lon\nimgs/a.jpg,45.8,16.0\nimgs/b.jpg,48.85,2.35\n"
                                        "imgs/c.jpg,40.7,-74.0\nimgs/d.jpg,40.7,-74.0\nimgs/e.jpg,0,0\n")
    path = tmp_path / "p.jsonl"
    path.write_bytes(_jsonl(RECORDS + [{"image": "zz.jpg", "predictions": [{"lat": 1, "lon": 1}]}]))
    r = CliRunner().invoke(cli, ["eval", str(gt), "--predictions", str(path), "--format", "json"])
    out = json.loads(r.output)
    assert (out["n"], out["answered"], out["missing"], out["failed"], out["abstained"]) == (5, 2, 1, 1, 1)
    assert out["unmatched"] == 1 and out["unmatched_examples"] == ["zz.jpg"]
    # a.jpg's top guess is Ljubljana (rank 1): 117 km from Zagreb, country SI, not HR
    assert out["accuracy"]["200"] == pytest.approx(2 / 5) and out["accuracy"]["25"] == pytest.approx(1 / 5)
    assert out["country_accuracy"] == pytest.approx(1 / 4)  # d.jpg: its country head says US; e.jpg at sea
    assert out["country_topk"]["5"] == pytest.approx(2 / 4)  # a.jpg ranks HR second
    assert out["calibration"]["n"] == 1 and out["calibration"]["radius"]["n"] == 1


def test_top_country_is_the_first_ranked_one():
    """Training's validation asks this of its records: a stated country, else the country at the
    coordinate, else (a country head) the head's first."""
    records = [RECORDS[0], {"image": "", "predictions": [{"lat": 48.85, "lon": 2.35}]}, RECORDS[3],
               {"image": "", "predictions": []}, {"image": "", "predictions": [{"lat": 0.0, "lon": -30.0}]}]
    assert top_countries(table_from_records(records)) == ["SI", "FR", "US", None, None]
