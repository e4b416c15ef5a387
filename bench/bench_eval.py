"""`geocli eval` at dataset scale: rows/s end to end, and the country lookup's points/s.

Generates a manifest of N photos (coordinates jittered around GeoNames towns, so most are on land
and many near a coast, as photos are) and a predictions file in `geocli predict`'s JSONL form (top
3 guesses, half of them without a country so the lookup runs), then times the same
`geocli eval DATASET --predictions FILE --format json` a user runs, in a fresh process. Prints one
JSON object.

    python bench/bench_eval.py --rows 1000000
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

import numpy as np


def generate(folder: Path, n: int, seed: int = 0) -> tuple[Path, Path]:
    """A manifest CSV and a predictions JSONL of ``n`` rows each."""
    from geocli.geo.countries import populated_places

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


def time_eval(manifest: Path, predictions: Path) -> tuple[float, dict]:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "geocli", "eval", str(manifest), "--predictions", str(predictions),
                          "--format", "json"], capture_output=True, text=True, env=env, check=True)
    return time.perf_counter() - t0, json.loads(out.stdout)


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
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        manifest, predictions = generate(Path(tmp), args.rows)
        generated = time.perf_counter() - t0
        seconds, result = time_eval(manifest, predictions)
    report = {"rows": args.rows, "generate_s": round(generated, 1), "eval_s": round(seconds, 2),
              "rows_per_s": round(args.rows / seconds), "n_scored": result["n"],
              "country_accuracy": result["country_accuracy"], "lookup": time_lookup(1_000_000)}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
