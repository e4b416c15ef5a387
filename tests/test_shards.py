"""geocli shards: writing webdataset shards from manifests and MP-16 msgpack, resuming, reading back."""
from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from geocli.cli.main import cli
from geocli.errors import GeocliError
from geocli.datasets.shards import (MARKER, is_shard_spec, is_validation, raw_samples, sample_meta, shard_paths,
                                    shards_for, shuffled)


def jpeg_bytes(size=(40, 30), color=(200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="JPEG")
    return out.getvalue()


@pytest.fixture
def photos(tmp_path):
    """A manifest of 7 rows: 5 JPEGs, a PNG, and a text file posing as a photo."""
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    rows = ["image,lat,lon,country,location_id"]
    for i in range(5):
        (folder / "sub" / f"p{i}.jpg").write_bytes(jpeg_bytes((40 + i, 30)))
        rows.append(f"sub/p{i}.jpg,45.{i},16.{i},HR,loc{i % 2}")
    Image.new("RGB", (300, 200), (0, 90, 0)).save(folder / "big.png")
    rows.append("big.png,-33.9,18.4,,")
    (folder / "broken.jpg").write_text("not a photo")
    rows.append("broken.jpg,48.85,2.35,FR,")
    (folder / "manifest.csv").write_text("\n".join(rows) + "\n")
    return folder


def run(*args):
    """The command's result; a user error (what ``geocli`` prints as one line) is ``.exception``."""
    return CliRunner().invoke(cli, list(args))


def members(path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


def test_manifest_to_shards_keeps_jpeg_bytes_reencodes_the_rest_and_reports_bad(photos, tmp_path):
    out = tmp_path / "shards"
    r = run("shards", str(photos / "manifest.csv"), "--out", str(out), "--shard-size", "3", "--max-side", "100")
    assert r.exit_code == 1  # one bad image: reported, counted, the rest written
    summary = json.loads(r.stdout)
    assert (summary["shards"], summary["samples"], summary["bad"]) == (3, 6, 1)
    assert "broken.jpg" in summary["bad_examples"][0] and "skipped:" in r.stderr
    first = members(out / "000000.tar")
    assert sorted(first) == ["000000000.jpg", "000000000.json", "000000001.jpg", "000000001.json",
                             "000000002.jpg", "000000002.json"]
    assert first["000000000.jpg"] == (photos / "sub" / "p0.jpg").read_bytes()  # original bytes
    assert json.loads(first["000000001.json"]) == {"lat": 45.1, "lon": 16.1, "country": "HR",
                                                    "location_id": "loc1", "image": "sub/p1.jpg"}
    last = members(out / "000001.tar")
    big = Image.open(io.BytesIO(last["000000005.jpg"]))
    assert big.format == "JPEG" and max(big.size) == 100  # the PNG, shrunk and re-encoded
    assert json.loads(last["000000005.json"])["image"] == "big.png"
    assert members(out / "000002.tar") == {}  # only the bad item: an empty shard, not a missing one


def test_rerun_keeps_finished_shards_and_refuses_foreign_or_changed_folders(photos, tmp_path):
    out = tmp_path / "shards"
    args = ["shards", str(photos / "manifest.csv"), "--out", str(out), "--shard-size", "3"]
    run(*args)
    before = (out / "000000.tar").stat().st_mtime_ns
    (out / "000001.tar").unlink()  # as if killed before this shard was finished
    r = run(*args)
    assert json.loads(r.stdout)["samples"] == 6 and (out / "000000.tar").stat().st_mtime_ns == before
    assert (out / "000001.tar").is_file()
    changed = run(*args[:-1], "4")
    assert isinstance(changed.exception, GeocliError) and "other settings" in str(changed.exception)
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    refused = run("shards", str(photos / "manifest.csv"), "--out", str(foreign))
    assert isinstance(refused.exception, GeocliError) and "not a shard folder" in str(refused.exception)
    assert (foreign / "notes.txt").read_text() == "keep me"
    assert not (foreign / MARKER).exists()


def test_a_kill_mid_shard_leaves_the_finished_shards_and_no_partial_file(photos, tmp_path):
    from geocli.datasets import read_manifest
    from geocli.datasets.shard_sources import manifest_items
    from geocli.datasets.shard_writer import write_shards

    items = list(manifest_items(read_manifest(photos / "manifest.csv"), photos))

    def killed():
        raise KeyboardInterrupt

    items[4].read = killed
    out = tmp_path / "shards"
    with pytest.raises(KeyboardInterrupt):
        write_shards(iter(items), out, {"source": "x"}, 3, None, log=lambda m: None)
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "000000.tar"]


def test_msgpack_import_matches_ids_to_the_csv_and_counts_the_rest(tmp_path):
    import msgpack

    folder = tmp_path / "mp16"
    folder.mkdir()
    ids = ["a1/b2/111.jpg", "a1/b2/222.jpg", "c3/d4/333.jpg"]
    with (folder / "shard_0.msg").open("wb") as f:
        for rid in ids[:2]:
            f.write(msgpack.packb({"image": jpeg_bytes(), "id": rid}))
    with (folder / "shard_1.msg").open("wb") as f:
        f.write(msgpack.packb({"image": jpeg_bytes(), "id": ids[2]}))
        f.write(msgpack.packb({"image": jpeg_bytes(), "id": "zz/unknown.jpg"}))
    csv = tmp_path / "mp16_places365.csv"
    csv.write_text("IMG_ID,AUTHOR,LAT,LON,S3_Label\n" + "".join(f"{r},me,{10 + i},{20 + i},{i}\n" for i, r in enumerate(ids))
                   + "never/shipped.jpg,me,1,2,0\n")
    out = tmp_path / "shards"
    r = run("shards", "--msgpack", str(folder), "--metadata", str(csv), "--out", str(out))
    summary = json.loads(r.stdout)
    assert (summary["samples"], summary["bad"], summary["csv_rows_without_image"]) == (3, 1, 1)
    assert "zz/unknown.jpg" in summary["bad_examples"][0]
    metas = [sample_meta(s) for s in raw_samples(shard_paths(str(out)))]
    assert [(m["image"], m["lat"], m["scene"]) for m in metas] == [
        ("a1/b2/111.jpg", 10.0, "indoor"), ("a1/b2/222.jpg", 11.0, "natural"), ("c3/d4/333.jpg", 12.0, "urban")]


def test_shard_specs_folders_and_brace_patterns(photos, tmp_path):
    out = tmp_path / "shards"
    run("shards", str(photos / "manifest.csv"), "--out", str(out), "--shard-size", "2")
    assert is_shard_spec(str(out)) and not is_shard_spec(str(photos))
    assert shard_paths(f"{out}/{{000000..000001}}.tar") == [str(out / "000000.tar"), str(out / "000001.tar")]
    from geocli.errors import DatasetNotFoundError

    with pytest.raises(DatasetNotFoundError, match="missing"):
        shard_paths(f"{out}/{{000000..000009}}.tar")


def test_shards_are_dealt_to_ranks_and_workers_disjointly_and_completely():
    paths = [f"s{i}" for i in range(23)]
    for epoch in (0, 1):
        dealt = [shards_for(paths, epoch, 7, r, 2, w, 3) for r in range(2) for w in range(3)]
        flat = [p for part in dealt for p in part]
        assert sorted(flat) == sorted(paths) and len(flat) == len(set(flat))
    assert shards_for(paths, 0, 7, 0, 2, 0, 3) != shards_for(paths, 1, 7, 0, 2, 0, 3)  # reshuffled per epoch
    assert shards_for(paths, 1, 7, 1, 2, 2, 3) == shards_for(paths, 1, 7, 1, 2, 2, 3)  # and reproducible


def test_validation_split_is_a_stable_hash_and_the_buffer_shuffles_everything():
    names = [f"loc{i}" for i in range(2000)]
    val = [n for n in names if is_validation(n, 0.1)]
    assert 150 < len(val) < 250 and val == [n for n in names if is_validation(n, 0.1)]
    out = list(shuffled(range(1000), 64, np.random.default_rng(0)))
    assert sorted(out) == list(range(1000)) and out != list(range(1000))


def test_eval_and_predict_read_the_shards_a_manifest_was_written_to(photos, tmp_path):
    out = tmp_path / "shards"
    run("shards", str(photos / "manifest.csv"), "--out", str(out), "--shard-size", "4")
    preds = tmp_path / "p.csv"
    preds.write_text("image,lat,lon\nsub/p0.jpg,45.0,16.0\nsub/p1.jpg,48.85,2.35\nbig.png,-33.9,18.4\n")
    r = run("eval", f"{out}/{{000000..000001}}.tar", "--predictions", str(preds), "--format", "json")
    result = json.loads(r.stdout)
    # every dataset photo counts: the three without a record are misses
    assert result["n_dataset"] == result["n"] == 6 and result["answered"] == 3 and result["missing"] == 3
    assert result["accuracy"]["1"] == pytest.approx(2 / 6) and result["accuracy_answered"]["1"] == pytest.approx(2 / 3)
    r = run("predict", str(out), "--model", "evidence", "--no-ocr", "--format", "jsonl")
    records = [json.loads(line) for line in r.stdout.splitlines()]
    assert [rec["image"] for rec in records] == ["sub/p0.jpg", "sub/p1.jpg", "sub/p2.jpg", "sub/p3.jpg", "sub/p4.jpg", "big.png"]
    assert all(rec["ok"] for rec in records)


def test_a_truncated_or_foreign_shard_is_one_line_naming_it(photos, tmp_path):
    out = tmp_path / "shards"
    run("shards", str(photos / "manifest.csv"), "--out", str(out), "--shard-size", "10")
    cut = tmp_path / "cut.tar"
    cut.write_bytes((out / "000000.tar").read_bytes()[:1000])  # inside the first photo's bytes
    (tmp_path / "junk.tar").write_bytes(b"not a tar at all")
    for bad in (cut, tmp_path / "junk.tar"):
        with pytest.raises(GeocliError, match="not a readable tar shard"):
            list(raw_samples([str(bad)]))


def test_shards_count_photos_and_failures_in_the_summary_and_a_bar_when_asked(photos, tmp_path):
    out = tmp_path / "shards"
    quiet = run("shards", str(photos / "manifest.csv"), "--out", str(out / "a"), "--shard-size", "3")
    assert "geocli: 7 photos, 1 failed, " in quiet.stderr and "photos:" not in quiet.stderr
    asked = run("shards", str(photos / "manifest.csv"), "--out", str(out / "b"), "--shard-size", "3", "--progress")
    assert "photos:" in asked.stderr and "/7 [" in asked.stderr and "geocli: 7 photos, 1 failed, " in asked.stderr
    assert json.loads(asked.stdout)["samples"] == json.loads(quiet.stdout)["samples"] == 6
