"""Progress on stderr: a bar only on a terminal or when asked, and always a one-line summary."""
from __future__ import annotations

import io
import json
import subprocess
import sys

from PIL import Image

from geocli.report.progress import RunProgress, progress_wanted, summary_line


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_wanted_follows_flag_then_terminal():
    assert progress_wanted(None, FakeTTY()) is True
    assert progress_wanted(None, io.StringIO()) is False
    assert progress_wanted(True, io.StringIO()) is True
    assert progress_wanted(False, FakeTTY()) is False


def test_summary_counts_items_failures_and_time():
    assert summary_line("photos", 12, 1, 4.0) == "12 photos, 1 failed, 4.0 s (3.0/s)"
    assert summary_line("photos", 0, 0, 0.0) == "0 photos, 0 failed, 0.0 s"


def test_pipe_gets_summary_only():
    stream = io.StringIO()
    with RunProgress("photos", total=3, stream=stream) as bar:
        for ok in (True, False, True):
            bar.advance(ok=ok)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("geocli: 3 photos, 1 failed, ")


def test_terminal_gets_a_bar_that_counts():
    stream = FakeTTY()
    with RunProgress("photos", total=2, stream=stream) as bar:
        bar.advance()
        bar.advance(ok=False)
        assert bar._bar.n == 2 and "failed=1" in str(bar._bar)
    assert "2 photos, 1 failed" in stream.getvalue()


def _photos(tmp_path, n):
    paths = []
    for i in range(n):
        path = tmp_path / f"p{i}.jpg"
        Image.new("RGB", (32, 24), (10 * i, 80, 160)).save(path)
        paths.append(str(path))
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    return paths + [str(tmp_path / "broken.jpg")]


def test_predict_on_a_pipe_prints_no_bar_unless_asked(tmp_path):
    paths = _photos(tmp_path, 2)
    base = [sys.executable, "-m", "geocli", "predict", *paths, "--model", "evidence", "--no-ocr", "--format", "jsonl"]
    quiet = subprocess.run(base, capture_output=True, text=True, timeout=120)
    assert [json.loads(line)["ok"] for line in quiet.stdout.splitlines()] == [True, True, False]
    assert "3 photos, 1 failed" in quiet.stderr
    assert "0/3" not in quiet.stderr and "photos:" not in quiet.stderr  # no bar drawn on a pipe
    asked = subprocess.run(base + ["--progress"], capture_output=True, text=True, timeout=120)
    assert "photos:" in asked.stderr and "/3 [" in asked.stderr and "3 photos, 1 failed" in asked.stderr
    assert asked.stdout == quiet.stdout  # progress never touches the data
