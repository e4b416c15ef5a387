"""Streaming shards: decoded samples, splits, and two gloo ranks reading disjoint shards."""
from __future__ import annotations

import io
import json

import pytest
import torch
import torch.multiprocessing as mp
from PIL import Image

from geocli.datasets.shard_stream import ShardStream
from geocli.datasets.shards import shards_for
from ports import free_port


def write_set(folder, n: int, per_shard: int, groups: int = 0) -> list[str]:
    """``n`` samples in shards of ``per_shard`` written with webdataset's own writer; their keys."""
    import webdataset as wds

    folder.mkdir(parents=True, exist_ok=True)
    keys = []
    for start in range(0, n, per_shard):
        with wds.TarWriter(str(folder / f"{start // per_shard:06d}.tar")) as tar:
            for i in range(start, min(n, start + per_shard)):
                out = io.BytesIO()
                Image.new("RGB", (8, 8), (i * 37 % 256, i * 91 % 256, 0)).save(out, format="JPEG")
                meta = {"lat": 45.0 + i * 1e-3, "lon": 16.0, "image": f"p/{i}.jpg"}
                if groups:
                    meta["location_id"] = f"loc{i % groups}"
                tar.write({"__key__": f"{i:09d}", "jpg": out.getvalue(), "json": json.dumps(meta).encode()})
                keys.append(f"{i:09d}")
    return keys


def keys_of(stream) -> list[str]:
    return [s["key"] for s in stream]


def test_stream_decodes_samples_and_keys_them_like_the_embedding_cache_keys_files(tmp_path):
    from geocli.store.embedding_cache import content_hash

    write_set(tmp_path / "s", 5, 2)
    samples = list(ShardStream(str(tmp_path / "s"), shuffle_buffer=0))
    assert [s["key"] for s in samples] == [f"{i:09d}" for i in range(5)]
    first = samples[0]
    assert first["image"].size == (8, 8) and first["name"] == "p/0.jpg" and first["lat"] == 45.0
    raw = next(iter(ShardStream(str(tmp_path / "s"), shuffle_buffer=0, decode=False)))
    (tmp_path / "p0.jpg").write_bytes(raw["jpg"])
    assert first["content_hash"] == content_hash(tmp_path / "p0.jpg") != samples[1]["content_hash"]


def test_splits_hold_whole_groups_and_cover_everything_once_per_epoch(tmp_path):
    keys = write_set(tmp_path / "s", 60, 7, groups=30)
    spec = f"{tmp_path}/s/{{000000..000008}}.tar"
    for epoch in (0, 1):
        train, val = (ShardStream(spec, split=x, val_fraction=0.25, seed=3) for x in ("train", "val"))
        train.set_epoch(epoch)
        val.set_epoch(epoch)
        got_train, got_val = [list(s) for s in (train, val)]
        assert sorted(s["key"] for s in got_train + got_val) == keys
        assert not {s["group"] for s in got_train} & {s["group"] for s in got_val}
        assert got_val


def test_dataloader_workers_split_the_shards(tmp_path):
    keys = write_set(tmp_path / "s", 40, 4)
    stream = ShardStream(str(tmp_path / "s"), shuffle_buffer=8, decode=False)
    loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=2)
    assert sorted(keys_of(loader)) == keys


def _rank_reads(rank: int, world: int, port: int, folder: str, out: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    stream = ShardStream(folder, rank=rank, world=world, seed=5, shuffle_buffer=16, decode=False)
    stream.set_epoch(1)
    loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=2)
    shards = [p for w in range(2) for p in shards_for(stream.paths, 1, 5, rank, world, w, 2)]
    mine = {"keys": keys_of(loader), "shards": shards}
    gathered = [None] * world
    dist.all_gather_object(gathered, mine)
    if rank == 0:
        with open(out, "w") as f:
            json.dump(gathered, f)
    dist.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_ranks_read_disjoint_shards_and_together_every_sample(tmp_path):
    keys = write_set(tmp_path / "s", 90, 5)
    out = tmp_path / "ranks.json"
    mp.spawn(_rank_reads, args=(2, free_port(), str(tmp_path / "s"), str(out)), nprocs=2, join=True)
    ranks = json.loads(out.read_text())
    shards = [set(r["shards"]) for r in ranks]
    assert shards[0] and shards[1] and not shards[0] & shards[1] and len(shards[0] | shards[1]) == 18
    assert not set(ranks[0]["keys"]) & set(ranks[1]["keys"])
    assert sorted(ranks[0]["keys"] + ranks[1]["keys"]) == keys
