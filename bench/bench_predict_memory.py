"""Peak memory of ``geocli predict`` over a small and a ten-times larger folder: flat if predict streams.

Generates noisy JPEGs (256 px by default; each decodes to ~190 KB, so keeping decoded images
around would add ~350 MB between 200 and 2000 of them), runs ``geocli predict FOLDER --model
evidence --no-ocr --format jsonl -o FILE`` in a child process per folder size, and reads each
child's peak resident set size from ``os.wait4``. Prints one JSON object.

    python bench/bench_predict_memory.py --sizes 200,2000
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def make_images(folder: Path, n: int, side: int) -> None:
    """``n`` distinct noisy JPEGs (noise keeps them from compressing to nothing)."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    tile = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
    for i in range(n):
        Image.fromarray(np.roll(tile, i, axis=1)).save(folder / f"{i:05d}.jpg", quality=85)


def peak_rss_mb(folder: Path, out: Path, extra: list[str]) -> tuple[float, float, int]:
    """(peak RSS in MB, seconds, exit code) of one ``geocli predict`` child process."""
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    cmd = [sys.executable, "-m", "geocli", "predict", str(folder), "--model", "evidence", "--no-ocr",
           "--format", "jsonl", "-o", str(out), *extra]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_maxrss / 1024, time.perf_counter() - t0, proc.returncode  # ru_maxrss is KB on Linux


def measure(sizes: list[int], side: int, extra: list[str]) -> dict:
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            folder = Path(tmp) / f"n{n}"
            make_images(folder, n, side)
            out = Path(tmp) / f"n{n}.jsonl"
            mb, seconds, code = peak_rss_mb(folder, out, extra)
            lines = sum(1 for _ in out.open(encoding="utf-8"))
            rows[str(n)] = {"peak_rss_mb": round(mb, 1), "seconds": round(seconds, 1), "records": lines,
                            "exit_code": code}
    first, last = rows[str(sizes[0])], rows[str(sizes[-1])]
    return {"image_side_px": side, "runs": rows, "growth_mb": round(last["peak_rss_mb"] - first["peak_rss_mb"], 1),
            "decoded_mb_per_image": round(side * side * 3 / 2**20, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="200,2000", help="Comma-separated folder sizes, small first.")
    ap.add_argument("--side", type=int, default=256, help="Image side in pixels.")
    ap.add_argument("--batch-size", type=int, default=8)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(json.dumps(measure(sizes, args.side, ["--batch-size", str(args.batch_size)]), indent=2))


if __name__ == "__main__":
    main()
