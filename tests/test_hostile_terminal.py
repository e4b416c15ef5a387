"""Input never drives the terminal: control characters from file names, EXIF fields and OCR text
reach tables, log lines and error messages escaped; rich markup in a name is shown, not obeyed."""
from __future__ import annotations

import io
import re

import pytest
from PIL import Image

import hostile_corpus as H
from geocli.report.terminal import printable

PREDICT = ["predict", "--model", "evidence", "--no-ocr"]
#: What must never reach a terminal raw: C0 controls but newline, DEL, C1 controls, bidi and
#: other invisible format characters, line/paragraph separators.
RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u200b\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\ufeff]")

HOSTILE_NAMES = {
    "clear.jpg": "clear\x1b[2J\x1b[Hscreen.jpg",
    "title.jpg": "title\x1b]0;you are pwned\x07.jpg",
    "colour.jpg": "colour\x1b[31mred\x1b[0m.jpg",
    "bidi.jpg": "bidi\u202egpj.exe.jpg",
    "c1.jpg": "c1\x9b2Jcsi.jpg",
    "markup.jpg": "[red]markup[blink] [link=x]l :smile:.jpg",
    "backspace.jpg": "hidden\x08\x08\x08\x7fdel.jpg",
    "bell.jpg": "bell\x07\x0c\x0b\r.jpg",
}


def _assert_inert(output: str) -> None:
    found = RAW.search(output)
    assert found is None, f"raw {found.group()!r} in output: {output!r}"


@pytest.mark.parametrize("raw,shown", [
    ("a\x1b[2Jb", "a\\x1b[2Jb"), ("t\x1b]0;x\x07", "t\\x1b]0;x\\x07"), ("x\u202ey", "x\\u202ey"),
    ("c\x9bd", "c\\x9bd"), ("n\nl\tt\rr", "n\\nl\\tt\\rr"), ("bad\udcffbyte", "bad\\xffbyte"),
    ("sep\u2028x", "sep\\u2028x"), ("東京 ünï 😀", "東京 ünï 😀"), ("زن\u200cدگی", "زن\u200cدگی"), ("[red]", "[red]"),
])
def test_printable_escapes_controls_and_keeps_every_script(raw, shown):
    assert printable(raw) == shown


@pytest.fixture
def hostile_folder(tmp_path):
    for name in HOSTILE_NAMES.values():
        Image.new("RGB", (24, 16), "gray").save(tmp_path / name, format="JPEG")
    (tmp_path / "broken\x1b[2J.jpg").write_bytes(b"not an image at all")
    return tmp_path


def test_predict_table_shows_hostile_names_escaped(hostile_folder, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # one line per message, whatever the names hold
    result = H.run_cli([*PREDICT, hostile_folder])
    assert result.code == 1  # the broken one
    _assert_inert(result.stdout)
    _assert_inert(result.stderr)
    for name in HOSTILE_NAMES.values():
        assert printable(name) in result.stdout
    assert "clear\\x1b[2J\\x1b[Hscreen.jpg" in result.stdout and "bidi\\u202egpj" in result.stdout
    assert "[red]markup[blink] [link=x]l :smile:" in result.stdout  # rich markup shown as typed, not as colour
    assert "broken\\x1b[2J.jpg" in result.stdout


def test_log_lines_and_error_messages_are_escaped(hostile_folder):
    name = str(hostile_folder / HOSTILE_NAMES["title.jpg"])
    duplicate = H.run_cli([*PREDICT, "--format", "jsonl", name, name])
    assert "skipped duplicate path" in duplicate.stderr
    missing = H.run_cli([*PREDICT, str(hostile_folder / "gone\x1b]0;title\x07.jpg")])
    assert missing.code == 2 and "gone\\x1b]0;title\\x07.jpg" in missing.stderr
    bad_option = H.run_cli([*PREDICT, "--format", "\x1b[2Jtable", name])
    assert bad_option.code == 2 and "\\x1b[2Jtable" in bad_option.stderr
    for result in (duplicate, missing, bad_option):
        _assert_inert(result.stderr)


def test_json_keeps_the_name_exactly(hostile_folder):
    import json

    name = str(hostile_folder / HOSTILE_NAMES["clear.jpg"])
    result = H.run_cli([*PREDICT, "--format", "jsonl", name])
    assert json.loads(result.stdout)["image"] == name  # data as it is, JSON-escaped


def test_ocr_text_exif_fields_and_evidence_render_escaped():
    from rich.console import Console

    from geocli.report.predict_table import render_record

    record = {"image": "a.jpg", "ok": True, "error": None, "scene": {"label": "street\x1b[5m", "probability": 0.5},
              "exif": {"gps": None, "camera": "Cam\x1b]0;t\x07"}, "country_head": [{"country": "X\x1b[1m", "probability": 0.4}],
              "text": [{"text": "OPEN\x1b[2J\u202eSHOP", "confidence": 0.9}],
              "evidence": ["OCR read 'EXIT\x1b[31m' [bold]"],
              "predictions": [{"rank": 1, "lat": 1.0, "lon": 2.0, "country": "HR", "country_name": "Cro\x1b[8matia",
                               "cell": "c\x07", "probability": 0.5, "source": "ocr\x9b"}]}
    buf = io.StringIO()
    console = Console(file=buf, width=200, color_system=None)
    for part in render_record(record):
        console.print(part)
    out = buf.getvalue()
    _assert_inert(out)
    assert "OPEN\\x1b[2J\\u202eSHOP" in out and "[bold]" in out and "Cro\\x1b[8matia" in out


def test_eval_table_escapes_the_dataset_name(tmp_path):
    from rich.console import Console

    from geocli.report.eval_table import eval_tables

    acc = {"25": 0.5}
    row = {"n": 1, "answered": 1, "accuracy": acc, "median_km": 1.0, "mean_km": 1.0, "country_accuracy": None}
    result = {**row, "dataset": "data\x1b[2J[red].csv", "per_continent": {"Europe\x1b[1m": row},
              "n_dataset": 1, "missing": 0, "unmatched": 0, "answered_share": 1.0, "accuracy_answered": acc,
              "failed": 0, "abstained": 0}
    buf = io.StringIO()
    console = Console(file=buf, width=200, color_system=None)
    for part in eval_tables(result):
        console.print(part)
    _assert_inert(buf.getvalue())
    assert "data\\x1b[2J[red].csv" in buf.getvalue()


def test_the_png_map_legend_takes_dollar_signs_literally(tmp_path):
    pytest.importorskip("matplotlib")
    from geocli.report.maps import write_map

    records = [{"image": "cost $\\frac{1}{$ 2.jpg", "ok": True, "predictions": [
        {"rank": 1, "lat": 45.0, "lon": 16.0, "country_name": "Croatia", "probability": 0.5}]}]
    write_map(records, tmp_path / "map.png")  # mathtext would raise on the unbalanced formula
    assert (tmp_path / "map.png").stat().st_size > 0
