"""Whole ``predict`` throughput against the sum of its parts: the overhead ratio.

Builds a checkpoint (the packaged EfficientNet-Lite0 rgb branch, optionally the OCR branch, country
and geocell heads; head weights are random: speed does not depend on them), then times on the same
photos, after one warm-up batch:

- the whole predict loop as ``geocli predict --model DIR`` runs it (decode, every branch, fusion,
  heads, records with EXIF and evidence), embedding cache off;
- each part alone: decoding the files, and each branch's ``encode_images`` on decoded photos.

overhead = time(whole) / (time(decode) + sum of time(branch)); 1.0 means no cost beyond the parts.

    python bench/bench_predict.py [--images DIR] [--n 48] [--batch 8] [--branches rgb,ocr]
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

SHARED = Path(os.environ.get("GEOCLI_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def photo_paths(folder: Path | None, n: int, tmp: Path) -> list[str]:
    """``n`` photos from ``folder`` (default the sf-landmarks photos), else generated 640x480 JPEGs."""
    from PIL import Image

    folder = folder or SHARED / "sf-landmarks" / "images"
    files = sorted(folder.glob("*.jpg"))[:n] if folder.is_dir() else []
    if files:
        return [str(f) for f in files]
    for i in range(n):
        Image.effect_noise((640, 480), 64).convert("RGB").save(tmp / f"noise{i}.jpg")
    return [str(tmp / f"noise{i}.jpg") for i in range(n)]


def build_checkpoint(folder: Path, branches: list[str]) -> Path:
    import numpy as np

    from geocli.config import BranchConfig, HeadConfig, LabelSpaces, ModelConfig
    from geocli.store.checkpoint import save_checkpoint
    from geocli.model import GeoModel
    from geocli.geo.cells import GeocellHierarchy, PartitionSpec

    rng = np.random.default_rng(0)
    lat, lon = rng.uniform(-50, 60, 2000), rng.uniform(-120, 140, 2000)
    cells = GeocellHierarchy.build(lat, lon, [PartitionSpec("coarse", 5, 200), PartitionSpec("fine", 2, 50)])
    options = {"rgb": {"model": "tf_efficientnet_lite0.in1k", "pretrained": True}, "ocr": {}}
    config = ModelConfig(branches=[BranchConfig(b, options=dict(options.get(b, {}))) for b in branches],
                         heads=[HeadConfig("country"), HeadConfig("geocell")],
                         labels=LabelSpaces(countries=["FR", "HR", "US"], geocells=cells.to_dict()))
    return save_checkpoint(GeoModel(config), folder / "model")


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=Path, default=None)
    parser.add_argument("--n", type=int, default=48)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--branches", default="rgb,ocr")
    args = parser.parse_args()

    from geocli import load_model
    from geocli.images import open_image

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths = photo_paths(args.images, args.n, tmp)
        predictor = load_model(str(build_checkpoint(tmp, args.branches.split(","))), cache=False)
        model = predictor.geolocator.model
        list(predictor.predict(paths[: args.batch], batch_size=args.batch))  # warm-up: OCR/session start
        whole = timed(lambda: list(predictor.predict(paths, batch_size=args.batch)))
        images = []
        decode = timed(lambda: images.extend(open_image(p) for p in paths))
        parts = {"decode": decode}
        for name, module in model.branches.items():
            parts[name] = timed(lambda m=module: [m.encode_images(images[i : i + args.batch])
                                                  for i in range(0, len(images), args.batch)])
    n = len(paths)
    print(f"{n} photos, batch {args.batch}, branches {args.branches}, torch threads "
          f"{__import__('torch').get_num_threads()}")
    for name, seconds in parts.items():
        print(f"  {name:8s} alone: {seconds:7.2f} s  {n / seconds:7.2f} img/s")
    total = sum(parts.values())
    print(f"  sum of parts:   {total:7.2f} s  {n / total:7.2f} img/s")
    print(f"  whole predict:  {whole:7.2f} s  {n / whole:7.2f} img/s")
    print(f"  overhead ratio (whole / sum of parts): {whole / total:.3f}")
    if "ocr" in parts:
        print(f"  OCR: {n / parts['ocr']:.2f} photos/s, {parts['ocr'] / total:.0%} of the parts' time")
    print(f"  peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
