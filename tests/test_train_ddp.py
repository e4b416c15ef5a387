"""torchrun + DistributedDataParallel on CPU (gloo): two processes train one model, each on its own
shard of every epoch, and rank 0 writes a checkpoint shaped exactly like a one-process run's."""
from __future__ import annotations

import json

import pytest
import torch
import torch.multiprocessing as mp

import train_helpers as T
from geocli.store.checkpoint import load_checkpoint
from geocli.training.trainer import train
from ports import free_port


@pytest.mark.slow
def test_two_gloo_processes_see_distinct_shards_and_save_the_same_model_shape(tmp_path):
    cfg = T.tiny_config(tmp_path, epochs=2, out=str(tmp_path / "ddp"), sampler="uniform")
    mp.spawn(T.ddp_worker, args=(2, free_port(), str(tmp_path), cfg.to_dict()), nprocs=2, join=True)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    seen = [set(r["seen"]) for r in ranks]
    assert all(r["world"] == 2 for r in ranks)
    assert len(ranks[0]["seen"]) == len(ranks[1]["seen"]) > 0
    assert not seen[0] & seen[1]  # uniform sampler: each rank its own half of the permutation
    assert ranks[0]["history"][-1]["train_loss"] == pytest.approx(ranks[1]["history"][-1]["train_loss"])
    # validation is sharded, then gathered: both ranks report the whole set's numbers
    assert ranks[0]["history"][-1]["val"] == ranks[1]["history"][-1]["val"]
    assert ranks[0]["history"][-1]["val"]["n"] == 12

    single = train(T.tiny_config(tmp_path, epochs=2, out=str(tmp_path / "one"), sampler="uniform"), progress=False)
    n_train = 42  # 18 locations x 3 views, 4 held-out locations for validation
    assert len(single.seen) == 40 and len(ranks[0]["seen"]) == 16  # 21 per rank, whole batches of 8
    assert max(seen[0] | seen[1]) < n_train
    ddp_model, one_model = load_checkpoint(tmp_path / "ddp"), load_checkpoint(tmp_path / "one")
    shapes = lambda m: {k: tuple(v.shape) for k, v in m.state_dict().items()}  # noqa: E731
    assert shapes(ddp_model) == shapes(one_model)
    assert set(ranks[0]["history"][-1]) == set(single.history[-1])
    frozen = "branches.rgb.model.blocks.0.attn.qkv.weight"
    assert torch.equal(ddp_model.state_dict()[frozen], one_model.state_dict()[frozen])
