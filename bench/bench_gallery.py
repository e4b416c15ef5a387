"""Top-k over the GeoCLIP 100K GPS gallery: cached gallery embeddings vs re-encoding per query.

``geoclip``'s ``GeoCLIP.predict`` runs the location encoder over all 100K gallery coordinates for
every image. ``GPSGallery`` encodes them once and reuses the (100K, 512) matrix, so a query costs a
matrix product and a top-k. This measures both per query (image features are random 512-d
vectors: the image tower is not part of either path) and prints the ratio as JSON on stdout.

    python bench/bench_gallery.py [--queries 3] [--k 5] [--device cpu|cuda]
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import torch
import torch.nn.functional as F

from geocli.geo.gallery import GPSGallery, gallery_topk, load_geoclip_gallery, load_geoclip_location_encoder


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _timed(fn, device: torch.device) -> tuple[float, object]:
    _sync(device)
    start = time.perf_counter()
    out = fn()
    _sync(device)
    return time.perf_counter() - start, out


@torch.no_grad()
def reencode_topk(encoder, coords: torch.Tensor, query: torch.Tensor, k: int, scale: float):
    """What geoclip's predict does: encode the whole gallery, then score the query against it."""
    feats = F.normalize(encoder(coords), dim=-1)
    return gallery_topk(query, feats, k, scale)


def run(queries: int, k: int, device: torch.device) -> dict:
    encoder = load_geoclip_location_encoder().to(device).eval()
    gallery = GPSGallery(load_geoclip_gallery()).to(device)
    scale = 100.0
    qs = torch.randn(queries, 1, 512, device=device)
    build_s, feats = _timed(lambda: gallery.embeddings(encoder), device)
    cached = [_timed(lambda q=q: gallery_topk(q, gallery.embeddings(encoder), k, scale), device) for q in qs]
    fresh = [_timed(lambda q=q: reencode_topk(encoder, gallery.coords, q, k, scale), device) for q in qs]
    same = all(torch.equal(a[1].indices, b[1].indices) for a, b in zip(cached, fresh))
    cached_s = sorted(t for t, _ in cached)[len(cached) // 2]
    fresh_s = sorted(t for t, _ in fresh)[len(fresh) // 2]
    return {
        "device": str(device), "gallery": len(gallery), "queries": queries, "k": k,
        "cache_build_s": round(build_s, 4), "cached_query_s": round(cached_s, 6),
        "reencode_query_s": round(fresh_s, 4), "speedup": round(fresh_s / cached_s, 1),
        "break_even_queries": round(build_s / max(fresh_s - cached_s, 1e-9), 2), "same_topk": same,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=3)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    print(f"encoding 100K gallery points on {args.device}...", file=sys.stderr)
    print(json.dumps(run(args.queries, args.k, torch.device(args.device))))


if __name__ == "__main__":
    main()
