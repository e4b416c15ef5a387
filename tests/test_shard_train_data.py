"""Training data from shards without the trainer: the split and row numbering from one json pass,
labels through the manifest path, batches, the embedding cache filled from a shard's bytes."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import shard_train_helpers as S
from geocli.datasets.manifest import read_manifest
from geocli.datasets.shard_stream import ShardStream
from geocli.errors import UsageError
from geocli.heads.labels import build_label_spaces, manifest_targets
from geocli.training.shard_data import ShardBatches, shard_splits
from geocli.training.shard_loader import BadSamples, StreamLoader, take


@pytest.fixture
def shards(tmp_path):
    return S.write_manifest_shards(tmp_path)


def test_the_json_pass_splits_whole_locations_and_numbers_the_rows_as_the_stream_does(shards):
    csv, folder = shards
    train, val, how = shard_splits(str(folder), None, 0.25, None)
    assert how == "group-hash" and len(train) + len(val) == 54 and len(val) and not train.images
    assert not set(train.group) & set(val.group)
    for rows in (train, val):  # index = shard offset + position: every row once, whatever the shuffle
        stream = ShardStream(rows.paths, rows.split, 0.25, seed=4, shuffle_buffer=7, decode=False)
        stream.set_epoch(2)
        index = sorted(rows.offsets[s["shard"]] + s["position"] for s in stream)
        assert index == list(range(len(rows)))
    by_name = {n: i for i, n in enumerate(read_manifest(csv).images)}
    assert all(f"{csv.parent}/{n}" in by_name for n in val.images)


def test_labels_from_the_json_are_the_manifest_rows_labels(shards):
    csv, folder = shards
    train, val, _ = shard_splits(str(folder), None, 0.25, None)
    manifest = read_manifest(csv)
    held = {f"{csv.parent}/{n}" for n in val.images}
    rows = manifest.subset([i for i, p in enumerate(manifest.images) if p not in held])
    heads = ["country", "geocell", "scene"]
    from_shards, from_csv = build_label_spaces(train, heads, None), build_label_spaces(rows, heads, None)
    assert from_shards.countries == from_csv.countries and from_shards.geocells == from_csv.geocells

    stream = ShardStream(val.paths, "val", 0.25, shuffle_buffer=0, decode=False)
    targets = lambda m: manifest_targets(from_csv, m, heads)  # noqa: E731
    batches = list(ShardBatches(stream, val, targets, {}, batch_size=5))
    index = torch.cat([b["index"] for b in batches]).numpy()
    expected = manifest_targets(from_csv, val, heads)
    assert sorted(index) == list(range(len(val))) and all(not b["bad"] for b in batches)
    for key in ("country", "scene"):
        got = np.concatenate([b[key].numpy() for b in batches])
        assert (got == expected[key][index]).all() and (got >= 0).all()
    fine = list(expected["cells"])[-1]
    assert (np.concatenate([b["cells"][fine].numpy() for b in batches]) == expected["cells"][fine][index]).all()


def test_a_photo_that_cannot_be_decoded_is_a_record_and_the_rest_stream_on(tmp_path):
    folder = tmp_path / "s"
    folder.mkdir()
    bad_key = S.add_broken_shard(folder)
    rows, _, _ = shard_splits(str(folder), str(folder), 0.25, None)  # --val: everything on both sides
    from geocli.config import LabelSpaces

    batches = list(ShardBatches(ShardStream(rows.paths, shuffle_buffer=0), rows,
                                lambda m: LabelSpaces().targets(m.lat, m.lon), {"rgb": lambda im: torch.zeros(3)}, 8))
    assert [r["key"] for b in batches for r in b["bad"]] == [bad_key]
    assert "not a photo" not in batches[0]["bad"][0]["error"] and bad_key in batches[0]["bad"][0]["error"]
    assert [b["rgb"].shape for b in batches] == [(1, 3)]
    logged = []
    bad = BadSamples(logged.append)
    loader = StreamLoader(batches, {}, {}, bad, world=_one(), device=torch.device("cpu"), steps=1)
    assert [b["key"] for b in loader] == [["good000001"]]
    assert len(bad) == 1 and len(logged) == 1 and logged[0].startswith("skipped: ")


def test_the_cache_filled_from_a_shards_bytes_is_found_by_the_file_with_those_bytes(tmp_path, shards):
    from geocli.store.embedding_cache import EmbeddingCache, cached_embeddings, fill_from_bytes

    _, folder = shards
    samples = list(ShardStream(str(folder), shuffle_buffer=0, decode=False))[:5]
    calls = []

    def encode(images):
        calls.append(len(images))
        return torch.stack([torch.tensor(np.asarray(im, np.float32).mean((0, 1))) for im in images]), None

    cache = EmbeddingCache("test-branch", tmp_path / "cache")
    items = [(s["key"], s["jpg"]) for s in samples] + [("twice", samples[0]["jpg"]), ("junk", b"junk")]
    bad = []
    assert fill_from_bytes(cache, items, encode, batch_size=2, on_bad=lambda n, r: bad.append(n)) == 5
    assert calls == [2, 2, 1] and bad == ["junk"]
    files = []
    for i, s in enumerate(samples):
        (tmp_path / f"f{i}.jpg").write_bytes(s["jpg"])
        files.append(str(tmp_path / f"f{i}.jpg"))
    emb, _ = cached_embeddings(cache, files, encode)
    assert calls == [2, 2, 1]  # found by the files' content hash: nothing encoded again
    assert torch.equal(cache.get([samples[3]["content_hash"]])[0][0], emb[3])


def test_take_keeps_the_chosen_samples_of_every_field():
    batch = {"index": torch.arange(4), "cells": {"fine": torch.tensor([5, 6, 7, 8])}, "key": list("abcd"), "n": 3}
    kept = take(batch, [1, 3])
    assert kept["index"].tolist() == [1, 3] and kept["cells"]["fine"].tolist() == [6, 8]
    assert kept["key"] == ["b", "d"] and kept["n"] == 3


def test_shards_split_only_by_their_hash(shards):
    _, folder = shards
    with pytest.raises(UsageError, match="hash"):
        shard_splits(str(folder), None, 0.25, "spatial-kmeans")


def _one():
    from geocli.training.distributed import World

    return World()
