"""Hostile manifests and predictions files through ``geocli eval`` and ``geocli train``: bad ones
are refused with exit 2 and one line naming the line and the problem; odd but valid ones load.
(The parser's own cases live in test_datasets.py; these go through the command line.)"""
from __future__ import annotations

import csv
import json
import re

import pytest

import hostile_corpus as H

PRED = {"image": "x.jpg", "ok": True, "predictions": [{"rank": 1, "lat": 1.0, "lon": 2.0}]}

BAD_MANIFESTS = {
    "missing column": (b"image,lat\nx.jpg,1\n", r"missing column\(s\) lon; found image, lat"),
    "latitude out of range": (b"image,lat,lon\nx.jpg,1,2\ny.jpg,95,2\n", r"line 3: latitude 95.0 outside"),
    "longitude out of range": (b"image,lat,lon\nx.jpg,1,200\n", r"line 2: longitude 200.0 outside"),
    "NaN": (b"image,lat,lon\nx.jpg,NaN,2\n", r"line 2: lat is 'NaN'"),
    "infinity": (b"image,lat,lon\nx.jpg,1,-inf\n", r"line 2: lon is '-inf'"),
    "empty cell": (b"image,lat,lon\nx.jpg,,2\n", r"line 2: lat is not a number: ''"),
    "short row": (b"image,lat,lon\nx.jpg,1\n", r"line 2: lon is not a number"),
    "swapped LAT/LON header": (b"IMG_ID,LON,LAT\nx.jpg,45,120\ny.jpg,10,-100\n", r"header looks swapped"),
    "duplicate rows": (b"image,lat,lon\nx.jpg,1,2\ny.jpg,1,2\nx.jpg,1,2\n", r"line 4: duplicate image .*line 2"),
    "duplicate spelled differently": (b"image,lat,lon\nx.jpg,1,2\nsub/../x.jpg,1,2\n", r"line 3: duplicate image"),
    "path outside the root": (b"image,lat,lon\nsub/../../x.jpg,1,2\n", r"line 2: image path .* outside the root"),
    "empty image path": (b"image,lat,lon\n,1,2\n", r"line 2: empty image path"),
    "empty file": (b"", r"missing column\(s\) image, lat, lon; found no header"),
    "header only": (b"image,lat,lon\n", r"no data rows"),
    "binary junk": (bytes(range(256)) * 4, r"missing column\(s\)"),
    "quoted newline before a bad row": (b'image,lat,lon\n"a\nb.jpg",1,2\nc.jpg,95,2\n', r"line 4: latitude 95.0"),
    "field over the CSV size limit": (b"image,lat,lon\n" + b"x" * 200_000 + b".jpg,1,2\n",
                                      r"line 2: not readable as CSV \(field larger"),
}

GOOD_MANIFESTS = {
    "extra columns": b"image,lat,lon,camera,notes\nx.jpg,1,2,Nokia,hi\n",
    "BOM": "\ufeffimage,lat,lon\nx.jpg,1,2\n".encode(),
    "CRLF": b"image,lat,lon\r\nx.jpg,1,2\r\n",
    "semicolons": b"IMG_ID;LAT;LON\nx.jpg;1.0;2.0\n",
    "semicolons, decimal commas": b"image;latitude;longitude\nx.jpg;1,0;2,0\n",
    "UTF-16 tab-separated (spreadsheet 'Unicode text')": "image\tlat\tlon\r\nx.jpg\t1\t2\r\n".encode("utf-16"),
}

BAD_PREDICTIONS = {
    "JSON array cut short": (("[\n" + json.dumps(PRED, indent=2)[:40]).encode(), r"line 5: not valid JSON .*jsonl can"),
    "predictions not a list": (json.dumps({"image": "x.jpg", "predictions": "HR"}).encode(),
                               r"record 1: 'predictions' must be a list"),
    "a prediction not an object": (json.dumps({"image": "x.jpg", "predictions": [5]}).encode(),
                                   r"record 1: 'predictions' must be a list"),
    "CSV rank not a number": (b"image,lat,lon,rank\nx.jpg,1,2,first\n", r"record 2: rank is not a whole number"),
    "JSONL with a cut last line": ((json.dumps(PRED) + "\n" + json.dumps(PRED)[:30]).encode(),
                                   r"line 2: not valid JSON"),
    "predicted NaN": (b"image,lat,lon\nx.jpg,nan,2\n", r"record 2: predicted coordinate out of range"),
}


def _one_error_line(result: H.CliResult) -> str:
    assert result.code == 2, (result.code, result.stderr)
    assert "Traceback" not in result.stderr and result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("geocli: error: "), result.stderr
    return lines[0]


def _preds(tmp_path, data: bytes = json.dumps(PRED).encode() + b"\n"):
    path = tmp_path / "preds.jsonl"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", sorted(BAD_MANIFESTS))
def test_eval_refuses_a_bad_manifest(tmp_path, case):
    data, message = BAD_MANIFESTS[case]
    (tmp_path / "m.csv").write_bytes(data)
    line = _one_error_line(H.run_cli(["eval", tmp_path / "m.csv", "--predictions", _preds(tmp_path)]))
    assert "m.csv" in line and re.search(message, line), line


@pytest.mark.parametrize("case", ["latitude out of range", "NaN", "swapped LAT/LON header", "duplicate rows",
                                  "path outside the root", "missing column"])
def test_train_refuses_a_bad_manifest_before_writing_anything(tmp_path, case):
    data, message = BAD_MANIFESTS[case]
    (tmp_path / "m.csv").write_bytes(data)
    line = _one_error_line(H.run_cli(["train", "--data", tmp_path / "m.csv", "--out", tmp_path / "run",
                                      "--cache-dir", tmp_path / "cache"]))
    assert "m.csv" in line and re.search(message, line), line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("case", sorted(GOOD_MANIFESTS))
def test_odd_but_valid_manifests_load(tmp_path, case):
    (tmp_path / "m.csv").write_bytes(GOOD_MANIFESTS[case])
    result = H.run_cli(["eval", tmp_path / "m.csv", "--predictions", _preds(tmp_path), "--format", "json"])
    assert result.code == 0, result.stderr
    out = json.loads(result.stdout)
    assert (out["n_dataset"], out["n"], out["accuracy"]["1"]) == (1, 1, 1.0)


@pytest.mark.parametrize("case", sorted(BAD_PREDICTIONS))
def test_eval_refuses_a_bad_predictions_file(tmp_path, case):
    data, message = BAD_PREDICTIONS[case]
    (tmp_path / "m.csv").write_text("image,lat,lon\nx.jpg,1,2\n")
    line = _one_error_line(H.run_cli(["eval", tmp_path / "m.csv", "--predictions", _preds(tmp_path, data)]))
    assert "preds.jsonl" in line and re.search(message, line), line


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv"])
def test_predict_then_eval_round_trips_hostile_file_names(tmp_path, fmt):
    """Names with newlines, U+2028, spaces and non-Latin letters survive predict's output and eval's reading."""
    names = ["new\nline.png", "line\u2028sep.png", "name with spaces.jpg", "ünïcødé 東京.png", "plain.jpg"]
    for name in names:  # each a JPEG with EXIF GPS, so each gets a guess to score
        (tmp_path / name).write_bytes(H.exif_jpeg(gps=H.GOOD_GPS))
    with (tmp_path / "m.csv").open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([("image", "lat", "lon"), *((n, 45.815, 15.9819) for n in names)])
    out = tmp_path / f"preds.{fmt}"
    predicted = H.run_cli(["predict", "--model", "evidence", "--no-ocr", "--format", fmt, "-o", out,
                           *(tmp_path / n for n in names)])
    assert predicted.code == 0, predicted.stderr
    result = H.run_cli(["eval", tmp_path / "m.csv", "--predictions", out, "--format", "json"])
    assert result.code == 0, result.stderr
    scored = json.loads(result.stdout)
    assert (scored["n_dataset"], scored["n"], scored["missing"], scored["unmatched"]) == (5, 5, 0, 0)
    assert scored["accuracy"]["1"] == 1.0
