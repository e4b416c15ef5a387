"""Shared fixtures: the real-data folder (tests using it skip when absent) and generated images."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SHARED_DATA = Path(os.environ.get("GEOCLI_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder absent: {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def benchmark_meta(shared_data) -> Path:
    return shared_data / "benchmark-meta"


def write_csv(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path
