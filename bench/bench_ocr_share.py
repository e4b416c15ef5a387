"""OCR's share of the whole ``predict``: the same checkpoint predicted with and without OCR,
batch by batch, interleaved in one run.

The checkpoint is ``bench_predict.py``'s (packaged EfficientNet-Lite0 rgb branch + the OCR branch,
country and geocell heads with random weights). After a warm-up batch each, every batch of photos
goes through ``load_model(DIR, cache=False)`` and ``load_model(DIR, cache=False, no_ocr=True)``,
the order alternating from batch to batch (with, without; without, with; ...), so load from other
work falls on both alike. Everything else predict does (decoding, EXIF, the rgb branch, heads,
evidence, records) is the same in both, so the difference is the OCR: its photos/s are
photos / (time with - time without), its share of predict 1 - time without / time with.

    python bench/bench_ocr_share.py [--images DIR] [--n 32] [--batch 8]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_predict import build_checkpoint, photo_paths  # noqa: E402


def seconds(predictor, paths: list[str], batch: int) -> float:
    start = time.perf_counter()
    records = list(predictor.predict(paths, batch_size=batch))
    if len(records) != len(paths):
        raise SystemExit(f"predict gave {len(records)} records for {len(paths)} photos")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=Path, default=None, help="default: the shared sf-landmarks photos")
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()

    from geocli import load_model

    with tempfile.TemporaryDirectory() as tmp:
        paths = photo_paths(args.images, args.n + args.batch, Path(tmp))
        warm, paths = paths[: args.batch], paths[args.batch :]
        folder = str(build_checkpoint(Path(tmp), ["rgb", "ocr"]))
        sides = {"with": load_model(folder, cache=False), "without": load_model(folder, cache=False, no_ocr=True)}
        for predictor in sides.values():
            seconds(predictor, warm, args.batch)
        times: dict[str, list[float]] = {name: [] for name in sides}
        for i in range(0, len(paths), args.batch):
            order = list(sides) if (i // args.batch) % 2 == 0 else list(sides)[::-1]
            for name in order:
                times[name].append(seconds(sides[name], paths[i : i + args.batch], args.batch))
    n, with_s, without_s = len(paths), sum(times["with"]), sum(times["without"])
    shares = [1 - b / a for a, b in zip(times["with"], times["without"])]
    print(f"{n} photos, batch {args.batch}, load average {os.getloadavg()[0]:.1f}")
    print(f"  predict with OCR:    {n / with_s:6.2f} photos/s")
    print(f"  predict without OCR: {n / without_s:6.2f} photos/s")
    print(f"  OCR: {n / max(with_s - without_s, 1e-9):.2f} photos/s, {1 - without_s / with_s:.0%} of predict's time "
          f"(median over batches {statistics.median(shares):.0%})")


if __name__ == "__main__":
    main()
