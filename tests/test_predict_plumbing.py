"""Input expansion, the batched loop's error records, and the writers' formats."""
import csv
import io
import json
import os

from PIL import Image

from geocli.cli.inputs import expand_inputs
from geocli.predict.predictor import Predictor
from geocli.report.writers import CSV_COLUMNS, CsvWriter, JsonlWriter, JsonWriter, TableWriter


def make_tree(tmp_path):
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    for rel in ("a.jpg", "b.PNG", "notes.txt", "sub/c.webp", "sub/deeper/d.jpeg"):
        Image.new("RGB", (8, 8), "red").save(tmp_path / rel, format="PNG") if rel != "notes.txt" else (tmp_path / rel).write_text("x")
    return tmp_path


def test_folder_flat_and_recursive(tmp_path):
    root = make_tree(tmp_path)
    flat = [os.path.relpath(p, root) for p in expand_inputs([str(root)], log=lambda m: None)]
    assert flat == ["a.jpg", "b.PNG"]
    deep = [os.path.relpath(p, root) for p in expand_inputs([str(root)], recursive=True, log=lambda m: None)]
    assert deep == ["a.jpg", "b.PNG", "sub/c.webp", "sub/deeper/d.jpeg"]


def test_globs_stdin_duplicates_and_missing(tmp_path):
    root = make_tree(tmp_path)
    logs = []
    stdin = io.StringIO(f"{root / 'a.jpg'}\n\n{root / 'sub' / 'c.webp'}\n")
    got = list(expand_inputs([str(root / "*.jpg"), "-", str(root / "a.jpg"), str(root / "missing.jpg")],
                             log=logs.append, stdin=stdin))
    assert got == [str(root / "a.jpg"), str(root / "sub" / "c.webp"), str(root / "missing.jpg")]
    assert sum("duplicate" in m for m in logs) == 2


def test_symlink_loop_and_empty_folder(tmp_path):
    root = make_tree(tmp_path)
    os.symlink(root, root / "sub" / "loop")
    logs = []
    got = list(expand_inputs([str(root)], recursive=True, log=logs.append))
    assert len(got) == 4 and any("symlink loop" in m for m in logs)
    (tmp_path / "empty").mkdir()
    assert list(expand_inputs([str(tmp_path / "empty")], log=logs.append)) == []
    assert "no images in folder" in logs[-1]


class EchoGeolocator:
    """Reports the image size as its only 'evidence', to observe what the loop passes on."""

    def __init__(self):
        self.batches = []

    def status_lines(self):
        return []

    def locate(self, images, paths, top_k):
        self.batches.append(len(images))
        return [{"exif": None, "predictions": [], "scene": None, "text": [], "reason": f"{im.size}"} for im in images]


def test_loop_keeps_order_and_records_errors(tmp_path):
    good = tmp_path / "good.png"
    Image.new("RGB", (5, 7)).save(good)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    geo = EchoGeolocator()
    out = list(Predictor(geo).predict([str(good), str(bad), str(tmp_path / "nope.jpg"), str(good)], batch_size=3))
    assert [r["ok"] for r in out] == [True, False, False, True]
    assert out[0]["reason"] == "(5, 7)" and "not a recognised image" in out[1]["error"]
    assert "no such file" in out[2]["error"] and geo.batches == [1, 1]


RECORD = {"image": "x.jpg", "ok": True, "error": None, "exif": {"gps": None, "camera": "Nokia N95", "datetime": None},
          "predictions": [{"rank": 1, "lat": 45.8, "lon": 16.0, "country": "HR", "country_name": "Croatia", "cell": None, "probability": 0.5},
                          {"rank": 2, "lat": 46.0, "lon": 14.5, "country": "SI", "country_name": "Slovenia", "cell": None, "probability": 0.2}],
          "scene": None, "text": [{"text": "ZAGREB", "confidence": 0.9}]}


def test_writers_formats():
    s = io.StringIO()
    w = JsonWriter(s)
    w.write(RECORD)
    w.write({**RECORD, "image": "y.jpg"})
    w.close()
    assert [r["image"] for r in json.loads(s.getvalue())] == ["x.jpg", "y.jpg"]
    s = io.StringIO()
    JsonWriter(s).close()
    assert json.loads(s.getvalue()) == []
    s = io.StringIO()
    JsonlWriter(s).write(RECORD)
    assert json.loads(s.getvalue().splitlines()[0])["predictions"][1]["country"] == "SI"
    s = io.StringIO()
    w = CsvWriter(s)
    w.write(RECORD)
    w.write({"image": "bad.jpg", "ok": False, "error": "broken", "predictions": []})
    rows = list(csv.DictReader(io.StringIO(s.getvalue())))
    assert list(rows[0]) == list(CSV_COLUMNS) and [r["rank"] for r in rows] == ["1", "2", ""]
    assert rows[0]["text"] == "ZAGREB" and rows[2]["error"] == "broken"


def test_table_writer_shows_guesses_and_evidence():
    s = io.StringIO()
    TableWriter(s).write(RECORD)
    out = s.getvalue()
    assert "Croatia" in out and "45.8000°N" in out and "ZAGREB" in out
