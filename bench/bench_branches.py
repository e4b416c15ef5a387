"""Throughput and peak memory of each branch, end to end from PIL images, at a fixed batch size.

Each branch runs in its own subprocess so its peak memory (RSS on CPU, allocated memory on CUDA) is
its own. Weights are random where none ship offline: speed does not depend on their values.

    python bench/bench_branches.py [--batch 8] [--batches 3] [--images DIR] [--only NAME ...]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

SHARED = Path(os.environ.get("GEOCLI_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))

# name -> (branch registry name, config); OCR and seg use their default real-size inputs
CASES: dict[str, tuple[str, dict]] = {
    "rgb:tf_efficientnet_lite0.in1k": ("rgb", {"model": "tf_efficientnet_lite0.in1k", "pretrained": True}),
    "rgb:vit_base_patch16_224": ("rgb", {"model": "vit_base_patch16_224"}),
    "clip:ViT-B-32": ("clip", {"model": "ViT-B-32"}),
    "ocr:rapidocr+MiniLM": ("ocr", {}),
    "seg:lraspp-512+vit_base": ("seg", {"segmenter_options": {"weights": None, "size": 512}}),
}


def load_images(folder: Path | None, n: int):
    """``n`` photos from ``folder`` (default: the sf-landmarks photos), else generated images."""
    from PIL import Image

    from geocli.images import open_image

    folder = folder or SHARED / "sf-landmarks" / "images"
    files = sorted(folder.glob("*.jpg"))[:n] if folder.is_dir() else []
    if files:
        return [open_image(f) for f in files], str(folder)
    return [Image.effect_noise((640, 480), 64).convert("RGB") for _ in range(n)], "generated noise 640x480"


def peak_mb(device) -> float:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_case(name: str, batch: int, batches: int, images_dir: Path | None) -> dict:
    """Build one branch, warm it up with one batch, then time ``batches`` batches."""
    import torch

    from geocli.branches import build_branch

    kind, config = CASES[name]
    start = time.perf_counter()
    branch = build_branch(kind, config).eval()
    build_s = time.perf_counter() - start
    images, source = load_images(images_dir, batch * (batches + 1))
    branch.encode_images(images[:batch], batch_size=batch)  # warm-up (lazy engines, allocator)
    start = time.perf_counter()
    with torch.no_grad():
        for i in range(1, batches + 1):
            branch.encode_images(images[i * batch : (i + 1) * batch], batch_size=batch)
    elapsed = time.perf_counter() - start
    return {
        "branch": name, "img_per_s": round(batch * batches / elapsed, 2), "batch": batch,
        "peak_mem_mb": round(peak_mb(branch.device), 1), "device": str(branch.device),
        "build_s": round(build_s, 1), "out_dim": branch.out_dim, "images": source,
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--images", type=Path, default=None)
    parser.add_argument("--only", nargs="*", choices=list(CASES), default=None)
    parser.add_argument("--child", choices=list(CASES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_case(args.child, args.batch, args.batches, args.images)))
        return
    print(f"{'branch':34} {'img/s':>8} {'peak MB':>9} {'build s':>8}  device", file=sys.stderr)
    for name in args.only or CASES:
        cmd = [sys.executable, __file__, "--child", name, "--batch", str(args.batch), "--batches", str(args.batches)]
        cmd += ["--images", str(args.images)] if args.images else []
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"{name:34} failed: {proc.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
            continue
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"{name:34} {row['img_per_s']:8.2f} {row['peak_mem_mb']:9.0f} {row['build_s']:8.1f}  {row['device']}",
              file=sys.stderr)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
