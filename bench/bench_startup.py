"""Start-up time: seconds from launching geocli until its first record (or answer) is on stdout.

    python bench/bench_startup.py [--runs 5] [--photo one.jpg]

Measures, as a user sees them, in fresh processes (so imports count):
  * ``geocli predict PHOTO --model evidence --no-ocr --format jsonl``: time to the first record;
  * ``geocli predict PHOTO --model evidence --format jsonl`` (OCR on): time to the first record;
  * ``geocli models``: time to the whole answer.
The commands run interleaved, ``--runs`` times each; medians (and the range) of the wall time are
reported, and the CPU time of each whole run (less sensitive to a busy machine). Without
``--photo`` a 640x480 JPEG is generated. Numbers move with the machine's load: compare within a run.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time


def time_to_first_line(args: list[str]) -> tuple[float, float]:
    """Wall seconds until the command writes its first stdout line, and the CPU seconds (user +
    system) its whole run took: on a shared machine the CPU time moves far less than the wall time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "geocli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    first = proc.stdout.readline()
    elapsed = time.perf_counter() - start
    proc.communicate()
    if not first:
        raise SystemExit(f"geocli {' '.join(args)} printed nothing (exit {proc.returncode})")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def make_photo(folder: str) -> str:
    from PIL import Image

    path = os.path.join(folder, "one.jpg")
    Image.new("RGB", (640, 480), (120, 160, 200)).save(path, quality=90)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--photo", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        photo = args.photo or make_photo(folder)
        cases = {
            "predict --model evidence --no-ocr (first record)": ["predict", photo, "--model", "evidence", "--no-ocr",
                                                                 "--format", "jsonl"],
            "predict --model evidence, OCR on (first record)": ["predict", photo, "--model", "evidence",
                                                                "--format", "jsonl"],
            "models (whole answer)": ["models", "--format", "json"],
        }
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
        for _ in range(args.runs):
            for name, command in cases.items():
                times[name].append(time_to_first_line(command))
    print(f"{'command':<52} {'wall s (median, min-max)':>26} {'CPU s (median)':>15}   ({args.runs} runs, interleaved)")
    for name, values in times.items():
        wall, cpu = [v[0] for v in values], [v[1] for v in values]
        spread = f"{statistics.median(wall):.2f} ({min(wall):.2f}-{max(wall):.2f})"
        print(f"{name:<52} {spread:>26} {statistics.median(cpu):>15.2f}")


if __name__ == "__main__":
    main()
