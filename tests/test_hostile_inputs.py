"""Hostile inputs through the real ``geocli predict``: odd images decode, broken ones become one
error record each with a one-line reason, nothing is lost, exit codes say what happened."""
from __future__ import annotations

import builtins
import json
import os
import re
from pathlib import Path

import pytest

import hostile_corpus as H
from geocli.images import open_image

PREDICT = ["predict", "--model", "evidence", "--no-ocr", "--format", "jsonl"]
VALID = {c.name: c for c in H.valid_cases()}
BROKEN = {c.name: c for c in H.broken_cases() + H.special_cases()}


def _deny(path_name: str):
    """``open`` that refuses one file, as chmod 000 does for anyone but root."""
    real_open = builtins.open

    def guarded(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and os.fspath(file).endswith(path_name):
            raise PermissionError(13, "Permission denied", os.fspath(file))
        return real_open(file, *args, **kwargs)
    return guarded


def _lines(stdout: str) -> list[dict]:
    """JSONL records; split on \\n only (str.splitlines also breaks at U+2028, legal inside JSON strings)."""
    return [json.loads(line) for line in stdout.split("\n") if line]


def _records(stdout: str) -> dict[str, dict]:
    return {os.path.basename(r["image"]): r for r in _lines(stdout)}


def _clean(stderr: str) -> None:
    assert "Traceback" not in stderr and "Warning:" not in stderr, stderr


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory):
    """The whole corpus folder through ``geocli predict`` once; root cannot be refused a read, so
    for root the unreadable file's ``open`` is refused by a stand-in."""
    folder = tmp_path_factory.mktemp("corpus")
    cases = H.build_corpus(folder)
    with pytest.MonkeyPatch.context() as mp:
        if os.geteuid() == 0:
            mp.setattr(builtins, "open", _deny("unreadable.jpg"))
        result = H.run_cli([*PREDICT, folder])
    return folder, cases, result


def test_the_corpus_is_big_and_every_file_gets_exactly_one_record(corpus_run):
    folder, cases, result = corpus_run
    assert len(cases) >= 30
    assert sorted(r["image"] for r in _lines(result.stdout)) == sorted(str(folder / c.name) for c in cases)
    assert result.code == 1  # some failed
    _clean(result.stderr)
    assert f"{len(BROKEN)} of {len(cases)} images failed" in result.stderr


@pytest.mark.parametrize("name", sorted(VALID))
def test_odd_but_valid_images_decode(corpus_run, name):
    record = _records(corpus_run[2].stdout)[name]
    assert record["ok"] is True and record["error"] is None, record


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_files_get_a_one_line_reason(corpus_run, name):
    record = _records(corpus_run[2].stdout)[os.path.basename(name)]
    assert record["ok"] is False and record["predictions"] == []
    assert "\n" not in record["error"] and re.search(BROKEN[name].error, record["error"]), record["error"]


def test_orientation_and_modes_reach_the_model_as_rgb(corpus_run):
    folder = corpus_run[0]
    for case in H.valid_cases():
        img = open_image(folder / case.name)
        assert img.mode == "RGB"
        if case.size:
            assert img.size == case.size, case.name


def test_exif_gps_is_used_or_refused_with_a_note(corpus_run):
    records = _records(corpus_run[2].stdout)
    top = records["gps_ok.jpg"]["predictions"][0]
    assert (top["source"], top["country"]) == ("exif", "HR") and abs(top["lat"] - 45.815) < 1e-3
    for name, note in [("gps_broken.jpg", "unreadable"), ("gps_half.jpg", "no latitude/longitude"),
                       ("gps_out_of_range.jpg", "out of range"), ("exif_garbage.jpg", "EXIF is damaged"),
                       ("exif_gps_count_huge.jpg", "EXIF is damaged")]:
        assert records[name]["exif"]["gps"] is None and records[name]["predictions"] == []
        assert any(note in line for line in records[name]["evidence"]), (name, records[name]["evidence"])


def test_all_valid_named_files_exit_0_and_duplicates_collapse(corpus_run):
    folder = corpus_run[0]
    named = [folder / n for n in VALID]
    result = H.run_cli([*PREDICT, *named, named[0], f"{folder}/./{named[1].name}"])
    assert result.code == 0, result.stderr
    assert sorted(_records(result.stdout)) == sorted(VALID)
    assert result.stderr.count("skipped duplicate path") == 2
    _clean(result.stderr)


def test_a_folder_named_like_an_image_is_a_folder(corpus_run):
    folder = corpus_run[0]
    assert "x.jpg" not in _records(corpus_run[2].stdout)  # skipped inside the corpus folder
    result = H.run_cli([*PREDICT, folder / "x.jpg"])
    assert result.code == 0 and list(_records(result.stdout)) == ["inside.png"]


def test_named_text_file_and_stdin_paths_become_records(corpus_run):
    folder = corpus_run[0]
    too_long = "n" * 300 + ".jpg"
    stdin = f"{folder / 'plain.jpg'}\n{folder / 'gone.jpg'}\n{folder / too_long}\n"
    result = H.run_cli([*PREDICT, folder / "notes.txt", "-"], stdin=stdin)
    records = _records(result.stdout)
    assert result.code == 1 and records["plain.jpg"]["ok"]
    assert records["notes.txt"]["error"].startswith("not a recognised image format")
    assert records["gone.jpg"]["error"].startswith("no such file")
    assert records[too_long]["error"].startswith("cannot read file (File name too long)")
    _clean(result.stderr)


@pytest.mark.parametrize("args,message", [
    (["{folder}/nope.jpg"], "no such file or folder: .*nope.jpg"),
    (["{folder}/plain.jpg", "{folder}/nope1.jpg", "{folder}/nope2.jpg"], r"nope1.jpg \(and 1 more\)"),
    (["{empty}"], "no images to process"),
    (["{folder}/*.nothing"], "no images to process"),
    (["{folder}/plain.jpg", "-o", "{folder}/no/such/dir/out.jsonl"], "-o .*out.jsonl: the folder .*dir does not exist"),
    (["{folder}/plain.jpg", "-o", "{folder}/plain.jpg"], "plain.jpg is an existing image"),
    (["{empty}", "-o", "{empty}/out.jsonl"], "no images to process"),
    ([], "no inputs"),
])
def test_usage_errors_exit_2_with_one_line(corpus_run, tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no pictures here")
    args = [a.format(folder=corpus_run[0], empty=tmp_path / "empty") for a in args]
    result = H.run_cli([*PREDICT, *args])
    assert result.code == 2 and result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if re.match(r"(geocli: error|Error):", line)]
    assert len(errors) == 1 and re.search(message, errors[0]), result.stderr
    assert not (tmp_path / "empty" / "out.jsonl").exists()  # a failed run leaves no empty results file
    _clean(result.stderr)


def test_json_and_csv_outputs_stay_parseable_with_hostile_names(corpus_run, tmp_path):
    import csv

    folder = corpus_run[0]
    names = ["new\nline.png", "broken\nname.jpg", "ünïcødé 東京.png", "name with spaces.jpg", "empty.jpg"]
    as_json = H.run_cli([*PREDICT[:-2], "--format", "json", *(folder / n for n in names)])
    assert [Path(r["image"]).name for r in json.loads(as_json.stdout)] == names
    out = tmp_path / "out.csv"
    as_csv = H.run_cli([*PREDICT[:-2], "--format", "csv", "-o", out, *(folder / n for n in names)])
    rows = list(csv.DictReader(out.open(encoding="utf-8", newline="")))
    assert [Path(r["image"]).name for r in rows] == names and as_csv.code == as_json.code == 1
    assert [r["ok"] for r in rows] == ["true", "false", "true", "true", "false"]
