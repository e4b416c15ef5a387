"""The Croatia Street View set written as shards and scored from them (needs ../shared/data)."""
from __future__ import annotations

import csv
import json

import pytest
from click.testing import CliRunner

from geocli.cli.main import cli
from geocli.store.embedding_cache import content_hash

pytestmark = pytest.mark.realdata


def test_croatia_round_trips_through_shards(shared_data, tmp_path):
    folder = shared_data / "croatia-streetview"
    out = tmp_path / "shards"
    r = CliRunner().invoke(cli, ["shards", str(folder / "manifest.csv"), "--out", str(out), "--shard-size", "100"])
    assert json.loads(r.stdout) == {"out": str(out), "shards": 6, "samples": 568, "bad": 0, "seg_maps": 0, "bad_examples": []}
    rows = list(csv.DictReader((folder / "manifest.csv").open()))
    truth = tmp_path / "truth.csv"
    truth.write_text("image,lat,lon\n" + "".join(f"{r['image']},{r['lat']},{r['lon']}\n" for r in rows))
    result = json.loads(CliRunner().invoke(cli, ["eval", str(out), "--predictions", str(truth), "--format", "json"]).stdout)
    assert result["n_dataset"] == result["n"] == 568 and result["accuracy"]["1"] == 1.0 and result["unmatched"] == 0
    from geocli.datasets.shard_stream import ShardStream

    first = next(iter(ShardStream(str(out), shuffle_buffer=0, decode=False)))
    assert first["content_hash"] == content_hash(folder / rows[0]["image"])  # original bytes: same cache key
