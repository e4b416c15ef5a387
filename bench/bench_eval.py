"""`geocli eval` at dataset scale: rows/s end to end, and the country lookup's points/s.

Generates a manifest of N photos (coordinates jittered around GeoNames towns, so most are on land
and many near a coast, as photos are) and a predictions file in `geocli predict`'s JSONL form (top
3 guesses, half of them without a country so the lookup runs), then times the same
`geocli eval DATASET --predictions FILE --format json` a user runs, in a fresh process: wall
seconds, CPU seconds (user + system: steadier than wall time on a shared machine) and peak memory.
With ``--baseline DIR`` the same files are also scored by the geocli checkout in DIR, the two runs
interleaved ``--repeat`` times (A B, B A, ...), medians reported and both outputs compared. Prints
one JSON object.

    python bench/bench_eval.py --rows 1000000
    python bench/bench_eval.py --rows 200000 --repeat 3 --baseline ../geocli-before
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def generate(folder: Path, n: int, seed: int = 0) -> tuple[Path, Path]:
    """A manifest CSV and a predictions JSONL of ``n`` rows each."""
    from geocli.geo.country_sources import populated_places

    rng = np.random.default_rng(seed)
    town_lat, town_lon = populated_places()
    pick = rng.integers(0, len(town_lat), n)
    lat = np.clip(town_lat[pick] + rng.normal(0, 0.3, n), -89.9, 89.9)
    lon = np.clip(town_lon[pick] + rng.normal(0, 0.3, n), -179.9, 179.9)
    manifest = folder / "manifest.csv"
    with manifest.open("w") as f:
        f.write("image,lat,lon\n")
        f.writelines(f"img/{i:07d}.jpg,{a:.5f},{b:.5f}\n" for i, (a, b) in enumerate(zip(lat, lon)))
    predictions = folder / "predictions.jsonl"
    guess_lat = np.clip(lat[:, None] + rng.normal(0, 2, (n, 3)), -90, 90)
    guess_lon = np.clip(lon[:, None] + rng.normal(0, 2, (n, 3)), -180, 180)
    with predictions.open("w") as f:
        for i in range(n):
            guesses = [{"rank": r + 1, "lat": round(float(guess_lat[i, r]), 5), "lon": round(float(guess_lon[i, r]), 5),
                        "probability": round(0.5 / (r + 1), 4)} for r in range(3)]
            f.write(json.dumps({"image": f"img/{i:07d}.jpg", "ok": True, "predictions": guesses}) + "\n")
    return manifest, predictions


# geocli's own entry point, reporting the process's peak resident memory on stderr as it exits
PEAK_THEN_MAIN = ("import atexit, resource, sys; atexit.register(lambda: sys.stderr.write("
                  "'peak_kb=%d\\n' % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)); "
                  "from geocli.cli.main import main; main(sys.argv[1:])")


def time_eval(manifest: Path, predictions: Path, code: Path = Path(__file__).resolve().parent.parent) -> dict:
    """One ``geocli eval`` of the files by the checkout in ``code``, in a fresh process."""
    env = dict(os.environ, PYTHONPATH=str(code))
    command = [sys.executable, "-c", PEAK_THEN_MAIN, "eval", str(manifest), "--predictions", str(predictions),
               "--format", "json"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run(command, capture_output=True, text=True, env=env, check=True, cwd=code)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    peak_kb = int(out.stderr.rsplit("peak_kb=", 1)[1].split()[0])
    return {"wall_s": wall, "cpu_s": cpu, "peak_mb": peak_kb / 1024, "result": json.loads(out.stdout)}


def summary(runs: list[dict], rows: int) -> dict:
    wall = statistics.median(r["wall_s"] for r in runs)
    return {"eval_s": round(wall, 2), "cpu_s": round(statistics.median(r["cpu_s"] for r in runs), 2),
            "rows_per_s": round(rows / wall), "peak_mb": round(max(r["peak_mb"] for r in runs)),
            "runs_wall_s": [round(r["wall_s"], 2) for r in runs]}


def time_lookup(n: int, seed: int = 1) -> dict:
    """Points/s of the vectorised country lookup on uniform random points (land and sea)."""
    from geocli.geo.countries import country_codes_at

    rng = np.random.default_rng(seed)
    lat, lon = np.degrees(np.arcsin(rng.uniform(-1, 1, n))), rng.uniform(-180, 180, n)
    country_codes_at(lat[:10], lon[:10])  # load the grid and the exact lookup once
    t0 = time.perf_counter()
    country_codes_at(lat, lon)
    return {"points": n, "points_per_s": round(n / (time.perf_counter() - t0))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=1, help="runs of each side (interleaved); medians reported")
    ap.add_argument("--baseline", type=Path, default=None, help="another geocli checkout to time on the same files")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        manifest, predictions = generate(Path(tmp), args.rows)
        generated = time.perf_counter() - t0
        ours, theirs = [], []
        for k in range(args.repeat):
            sides = [(theirs, args.baseline), (ours, None)] if args.baseline else [(ours, None)]
            for runs, code in sides if k % 2 == 0 else sides[::-1]:
                runs.append(time_eval(manifest, predictions, code) if code else time_eval(manifest, predictions))
    result = ours[0]["result"]
    report = {"rows": args.rows, "generate_s": round(generated, 1), **summary(ours, args.rows),
              "n_scored": result["n"], "country_accuracy": result["country_accuracy"]}
    if theirs:
        report["baseline"] = summary(theirs, args.rows)
        report["same_output"] = all(r["result"] == result for r in ours + theirs)
    report["lookup"] = time_lookup(1_000_000)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
