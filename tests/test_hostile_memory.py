"""Peak memory of ``geocli predict`` stays flat from 200 to 2000 images (streaming, nothing kept)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_predict_memory.py"


@pytest.mark.slow
def test_predict_peak_memory_is_flat_over_ten_times_more_images():
    spec = importlib.util.spec_from_file_location("bench_predict_memory", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    result = bench.measure([200, 2000], side=256, extra=[])
    runs = result["runs"]
    assert [runs[n]["records"] for n in ("200", "2000")] == [200, 2000]
    assert all(runs[n]["exit_code"] == 0 for n in runs)
    # keeping the 1800 extra decoded images would add ~340 MB
    assert result["growth_mb"] < 50, result
