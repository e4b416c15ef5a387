"""The whole user path on real photos: train on the Croatia Street View set (packaged ImageNet
EfficientNet-Lite0, frozen, cached; group split by location), then predict and eval with the
checkpoint, which reuse the cached vectors."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from geocli.cli.main import cli

pytestmark = pytest.mark.realdata


def _run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_croatia_model_beats_the_training_centroid_then_predicts_and_evals(shared_data, tmp_path):
    manifest = str(shared_data / "croatia-streetview" / "manifest.csv")
    cache, out = str(tmp_path / "cache"), str(tmp_path / "croatia")
    summary = json.loads(_run("train", "--data", manifest, "--out", out,  # the defaults
                              "--cache-dir", cache, "--format", "json"))
    val, centroid = summary["final"]["val"], summary["baseline_centroid"]
    assert summary["split"] == "group" and val["n"] == 112
    assert val["median_km"] < 0.9 * centroid["median_km"]  # measured: 86.7 km against 123.1 km
    assert val["accuracy"]["200"] > centroid["accuracy"]["200"]

    photo = str(shared_data / "croatia-streetview" / "images" / "30b6b2c1-f871-4132-97bc-f0d99c6af24c" / "0.jpg")
    record = json.loads(_run("predict", photo, "--model", out, "--format", "jsonl", "--cache-dir", cache))
    assert record["ok"] and record["predictions"][0]["country"] == "HR"

    report = json.loads(_run("eval", manifest, "--model", out, "--cache-dir", cache, "--format", "json"))
    assert report["n"] == 568 and report["missing"] == 0 and report["country_accuracy"] > 0.95
