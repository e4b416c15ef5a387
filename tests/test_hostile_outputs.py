"""``-o FILE`` never destroys what was there: not before there is something to write, not when
the run fails or the disk fills, never an input; output JSON is strict (no NaN / Infinity)."""
from __future__ import annotations

import errno
import json
import os
import sys
from pathlib import Path

import pytest
from PIL import Image

import hostile_corpus as H
from geocli.report.json_out import finite_or_none, loads_strict, strict_json
from geocli.report.writers import CsvWriter, JsonlWriter, JsonWriter

PREDICT = ["predict", "--model", "evidence", "--no-ocr", "--format", "jsonl"]
OLD = "earlier results\n"


@pytest.fixture
def photos(tmp_path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        Image.new("RGB", (16, 16), (60 * i, 0, 0)).save(folder / f"{i}.png")
    return folder


@pytest.fixture
def old(tmp_path) -> Path:
    path = tmp_path / "results.jsonl"
    path.write_text(OLD)
    os.chmod(path, 0o640)
    return path


def _one_error(result: H.CliResult) -> str:
    assert result.code == 2 and "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("geocli: error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".partial"))


def test_results_replace_the_old_file_only_when_complete(photos, old):
    result = H.run_cli([*PREDICT, photos, "-o", old])
    assert result.code == 0, result.stderr
    records = [json.loads(line) for line in old.read_text().splitlines()]
    assert [Path(r["image"]).name for r in records] == ["0.png", "1.png", "2.png"]
    assert oct(old.stat().st_mode & 0o777) == oct(0o640)  # the file keeps its permissions
    assert _leftovers(old.parent) == []


def test_a_run_with_no_images_leaves_the_old_file_as_it_was(tmp_path, old):
    (tmp_path / "empty").mkdir()
    assert "no images to process" in _one_error(H.run_cli([*PREDICT, tmp_path / "empty", "-o", old]))
    assert old.read_text() == OLD and _leftovers(tmp_path) == []


def test_a_full_disk_mid_run_keeps_the_old_file(photos, old, monkeypatch):
    real_write, calls = JsonlWriter.write, []

    def write(self, record):
        calls.append(record)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_write(self, record)

    monkeypatch.setattr(JsonlWriter, "write", write)
    line = _one_error(H.run_cli([*PREDICT, photos, "-o", old]))
    assert "cannot write" in line and "left as it was" in line and "No space left on device" in line
    assert old.read_text() == OLD and _leftovers(old.parent) == []


def test_a_device_that_is_full_is_one_line(photos):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    line = _one_error(H.run_cli([*PREDICT, photos, "-o", "/dev/full"]))
    assert "cannot write /dev/full: No space left on device" in line


def test_devices_are_written_in_place_never_replaced(photos):
    result = H.run_cli([*PREDICT, photos, "-o", os.devnull])
    assert result.code == 0, result.stderr
    assert Path(os.devnull).is_char_device()


def test_an_input_file_is_refused_as_output(photos, tmp_path):
    notes = tmp_path / "list.txt"
    notes.write_text("keep me\n")
    line = _one_error(H.run_cli([*PREDICT, photos, notes, "-o", notes]))
    assert "is one of the inputs" in line and notes.read_text() == "keep me\n"


def test_the_file_stdin_reads_is_refused_as_output(photos, tmp_path, monkeypatch, capsys):
    from geocli.cli.main import main

    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{p}\n" for p in sorted(photos.iterdir())))
    before = listing.read_text()
    with open(listing, encoding="utf-8") as stdin:
        monkeypatch.setattr(sys, "stdin", stdin)
        with pytest.raises(SystemExit) as exit_:
            main([*PREDICT, "-", "-o", str(listing)])
    assert exit_.value.code == 2
    assert "the file stdin reads the image list from" in capsys.readouterr().err
    assert listing.read_text() == before


def test_a_path_on_stdin_that_is_the_output_is_refused(photos, old):
    stdin = f"{photos / '0.png'}\n{old}\n{photos / '1.png'}\n"
    line = _one_error(H.run_cli([*PREDICT, "-", "-o", old], stdin=stdin))
    assert "is one of the inputs" in line
    assert old.read_text() == OLD and _leftovers(old.parent) == []


def test_an_existing_photo_is_refused_as_output(photos):
    photo = photos / "0.png"
    before = photo.read_bytes()
    assert "is an existing image" in _one_error(H.run_cli([*PREDICT, photos / "1.png", "-o", photo]))
    assert photo.read_bytes() == before


def test_output_and_map_on_one_file_are_refused(photos, tmp_path):
    line = _one_error(H.run_cli([*PREDICT, photos, "-o", tmp_path / "m.html", "--map", tmp_path / "m.html"]))
    assert "-o and --map name the same file" in line


def test_a_link_as_output_updates_the_file_it_names(photos, old, tmp_path):
    link = tmp_path / "latest.jsonl"
    link.symlink_to(old)
    assert H.run_cli([*PREDICT, photos, "-o", link]).code == 0
    assert link.is_symlink() and len(old.read_text().splitlines()) == 3


def test_interrupted_output_keeps_the_finished_records(photos, old, monkeypatch):
    """Ctrl-C after the first record (a real SIGINT to this process): what finished is kept."""
    import signal

    real_write = JsonlWriter.write

    def write(self, record):
        real_write(self, record)
        os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(JsonlWriter, "write", write)
    result = H.run_cli([*PREDICT, photos, "-o", old, "--batch-size", "1"])
    assert result.code == 130, result.stderr
    lines = old.read_text().splitlines()
    assert 1 <= len(lines) < 3 and all(json.loads(line)["ok"] for line in lines)
    assert _leftovers(old.parent) == []


@pytest.mark.parametrize("writer", [JsonlWriter, JsonWriter])
def test_writers_never_emit_nan_or_infinity(writer):
    import io

    stream = io.StringIO()
    w = writer(stream)
    w.write({"image": "a.jpg", "ok": True, "predictions": [{"probability": float("nan"), "lat": float("inf")}]})
    w.close()
    text = stream.getvalue()
    assert "NaN" not in text and "Infinity" not in text
    assert '"probability": null' in text


def test_csv_writes_no_nan_either():
    import io

    stream = io.StringIO()
    w = CsvWriter(stream)
    w.write({"image": "a.jpg", "ok": True, "predictions": [{"rank": 1, "probability": float("nan")}]})
    assert "nan" not in stream.getvalue().lower().replace("country_name", "")


def test_strict_json_helpers():
    assert strict_json({"a": [float("nan"), 1.5, float("-inf")]}) == '{"a": [null, 1.5, null]}'
    assert finite_or_none((1.0, float("inf"))) == [1.0, None]
    for text in ("NaN", "[Infinity]", '{"lr": -Infinity}', "[1e999]", "[" * 100_000 + "]" * 100_000):
        with pytest.raises(ValueError):
            loads_strict(text)


def test_a_file_written_at_the_output_path_during_the_run_is_left_alone(photos, old, monkeypatch):
    """Another program replaces FILE while predict runs: its file stays, the results go beside it."""
    real_write, done = JsonlWriter.write, []

    def write(self, record):
        real_write(self, record)
        if not done:
            replacement = old.with_name("incoming")
            replacement.write_text("someone else's\n")
            os.replace(replacement, old)
            done.append(1)

    monkeypatch.setattr(JsonlWriter, "write", write)
    line = _one_error(H.run_cli([*PREDICT, photos, "-o", old]))
    assert "changed while this run wrote its results" in line and "results.jsonl.new" in line
    assert old.read_text() == "someone else's\n"
    assert len(old.with_name("results.jsonl.new").read_text().splitlines()) == 3
    assert _leftovers(old.parent) == []


def test_a_full_disk_on_stdout_is_one_line(photos, monkeypatch):
    real_write = JsonlWriter.write

    def write(self, record):
        real_write(self, record)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(JsonlWriter, "write", write)
    assert "cannot write the results: No space left on device" in _one_error(H.run_cli([*PREDICT, photos]))


def test_a_photo_as_the_map_is_refused_before_any_work(photos):
    photo = photos / "0.png"
    before = photo.read_bytes()
    line = _one_error(H.run_cli([*PREDICT, photos / "1.png", "--map", photo]))
    assert "--map" in line and "is an existing image" in line and photo.read_bytes() == before


def test_a_map_geocli_drew_may_be_redrawn(tmp_path):
    from geocli.report.maps import write_map
    from geocli.report.output_file import check_output, is_geocli_map

    records = [{"image": "a.jpg", "ok": True, "predictions": [{"rank": 1, "lat": 45.8, "lon": 16.0, "probability": 0.9}]}]
    target = tmp_path / "map.png"
    write_map(records, target)
    assert is_geocli_map(target)
    check_output(str(target), option="--map")  # no error: geocli's own map
