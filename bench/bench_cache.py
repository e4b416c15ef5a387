"""Embedding cache: cold (encode every photo) vs cached (read the vectors back) for a frozen branch.

Runs the same ``cached_embeddings`` call ``geocli train`` makes, twice, against an empty cache
folder, in one process but with the content-hash memo cleared in between, so the cached pass pays
for hashing every file again just as a new training run would. Prints one JSON object.

    python bench/bench_cache.py --data /path/manifest.csv --rgb-model tf_efficientnet_lite0.in1k
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time

import torch


def timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="/work/shared/data/croatia-streetview/manifest.csv")
    ap.add_argument("--rgb-model", default="tf_efficientnet_lite0.in1k")
    ap.add_argument("--limit", type=int, default=0, help="Use only the first N images (0 = all).")
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()

    from geocli.datasets import load_dataset
    from geocli.store import embedding_cache as C
    from geocli.training.loaders import vector_encoder
    from geocli.model import build_branch_module
    from geocli.config import BranchConfig

    torch.set_grad_enabled(False)
    paths = load_dataset(args.data).images[: args.limit or None]
    bcfg = BranchConfig("rgb", options={"model": args.rgb_model, "pretrained": True, "trainable": "freeze"})
    branch = build_branch_module(bcfg).eval()
    key = C.branch_key(bcfg.registry_name, bcfg.options, bcfg.preprocess)
    with tempfile.TemporaryDirectory() as root:
        encode = vector_encoder(branch, args.batch_size)
        cold, (emb, _) = timed(lambda: C.cached_embeddings(C.EmbeddingCache(key, root), paths, encode, args.batch_size))
        C._HASH_MEMO.clear()
        warm, (again, _) = timed(lambda: C.cached_embeddings(C.EmbeddingCache(key, root), paths, encode, args.batch_size))
    assert torch.equal(emb, again), "cached vectors differ from the encoded ones"
    print(json.dumps({
        "images": len(paths), "model": args.rgb_model, "dim": int(emb.shape[1]), "threads": torch.get_num_threads(),
        "cold_s": round(cold, 2), "cached_s": round(warm, 3), "ratio": round(cold / warm, 1),
        "cold_img_per_s": round(len(paths) / cold, 1), "cached_img_per_s": round(len(paths) / warm, 1),
    }, indent=2))


if __name__ == "__main__":
    main()
