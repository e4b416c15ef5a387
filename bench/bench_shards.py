"""Streaming webdataset shards vs reading a folder of files: images/s, and memory as the stream goes on.

Writes N generated photos (JPEG, 96x72, noise so they do not compress to nothing) as shards of
1,000 with webdataset's writer, and the first 10,000 of them as files in a folder, then decodes
them through `ShardStream` (shuffle buffer 1,000, one process, the same decode as training),
reading a slice of the folder's files with `open_image` (the folder loader's per-photo work) after
every 2,000 streamed samples, so both rates are taken under the same load (medians). Reports the
process's resident memory after 10K and after all N samples: a stream holds one buffer, so memory
stays flat however long it runs. Prints one JSON object.

    python bench/bench_shards.py --samples 100000
"""
from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
from pathlib import Path

import numpy as np

TAR_MTIME = 1_700_000_000  # whole seconds: webdataset's default (a float) adds a PAX header per member


def rss_mib() -> float:
    """Resident memory now (not the peak: that only rises, and would hide a flat stream)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def photo(rng) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (72, 96, 3), dtype=np.uint8)).save(out, format="JPEG", quality=85)
    return out.getvalue()


def generate(folder: Path, n: int, files: int, seed: int = 0) -> None:
    import webdataset as wds

    rng = np.random.default_rng(seed)
    (folder / "shards").mkdir()
    (folder / "files").mkdir()
    pool = [photo(rng) for _ in range(256)]  # distinct bytes per sample come from the key in the json
    for start in range(0, n, 1000):
        with wds.TarWriter(str(folder / "shards" / f"{start // 1000:06d}.tar"), mtime=TAR_MTIME) as tar:
            for i in range(start, min(n, start + 1000)):
                meta = {"lat": float(rng.uniform(-60, 70)), "lon": float(rng.uniform(-180, 180)), "image": f"{i}.jpg"}
                tar.write({"__key__": f"{i:09d}", "jpg": pool[i % 256], "json": json.dumps(meta).encode()})
                if i < files:
                    (folder / "files" / f"{i}.jpg").write_bytes(pool[i % 256])


def stream_and_folder(folder: Path, checkpoints: tuple[int, ...], window: int = 2000) -> dict:
    """Stream every shard sample; after each ``window`` samples read ``window // 4`` folder files,
    so the two rates are measured side by side under the same load (medians reported)."""
    from geocli.datasets.shard_stream import ShardStream
    from geocli.images import open_image

    files = sorted((folder / "files").iterdir())
    out, seen, stream_rates, folder_rates = {}, 0, [], []
    start = t0 = time.perf_counter()
    for sample in ShardStream(str(folder / "shards"), shuffle_buffer=1000):
        assert sample["image"] is not None
        seen += 1
        if seen % window == 0:
            stream_rates.append(window / (time.perf_counter() - t0))
            chunk = [files[(seen // window * (window // 4) + k) % len(files)] for k in range(window // 4)]
            f0 = time.perf_counter()
            for p in chunk:
                open_image(p)
            folder_rates.append(len(chunk) / (time.perf_counter() - f0))
            t0 = time.perf_counter()
        if seen in checkpoints:
            out[f"{seen // 1000}K"] = {"rss_mib": round(rss_mib(), 1)}
    out["stream_images_per_s_median"] = round(float(np.median(stream_rates)))
    out["folder_images_per_s_median"] = round(float(np.median(folder_rates)))
    out["wall_s"] = round(time.perf_counter() - start, 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=100_000)
    ap.add_argument("--files", type=int, default=10_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        generate(folder, args.samples, args.files)
        report = {"samples": args.samples, "generate_s": round(time.perf_counter() - t0, 1), "rss_start_mib": round(rss_mib(), 1)}
        report.update(stream_and_folder(folder, (min(10_000, args.samples), args.samples)))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
