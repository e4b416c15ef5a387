"""Does a model trained from shards reach the hold-out quality of one trained from the folder?

Writes the Croatia Street View set as shards (``geocli shards``, the same manifest), holds out the
locations the shards' own split holds out (a hash of ``location_id``), and trains with the same
settings and seed twice per seed, interleaved: from the folder (``--data train.csv --val
val.csv``) and from the shards (``--data SHARDS``, which streams them). Prints, per seed and as
the median over seeds, validation median / mean km and % within 25 / 200 / 750 km, and the run's
wall time. Both runs share one embedding cache: the shards hold the original JPEG bytes, so the
shard run reads the vectors the folder run encoded (keyed by the bytes).

    python bench/bench_train_shards.py [--seeds 0,1,2] [--val-fraction 0.2] [--cache-dir DIR] [-- TRAIN ARGS]
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

SHARED = Path(os.environ.get("GEOCLI_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
METRICS = ("median_km", "mean_km", "25", "200", "750")


def geocli(args: list[str]) -> str:
    """stdout of one geocli command (exits on failure with the end of its output)."""
    from click.testing import CliRunner

    from geocli.cli.main import cli

    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    if result.exit_code != 0:
        raise SystemExit(f"geocli {args[0]} failed: {result.output[-800:]}")
    return result.stdout


def split_like_the_shards(manifest: Path, shards: Path, val_fraction: float, tmp: Path) -> tuple[Path, Path, int]:
    """train.csv and val.csv of the manifest's rows, held out as the shards' hash split holds them."""
    from geocli.training.shard_data import shard_splits

    _, val, _ = shard_splits(str(shards), None, val_fraction, None)
    held = set(val.images)
    with manifest.open(newline="") as f:
        rows = list(csv.DictReader(f))
    paths = {"train": tmp / "train.csv", "val": tmp / "val.csv"}
    for side, path in paths.items():
        with path.open("w", newline="") as f:
            out = csv.DictWriter(f, fieldnames=list(rows[0]))
            out.writeheader()
            for row in rows:
                if (row["image"] in held) == (side == "val"):
                    out.writerow({**row, "image": str(manifest.parent / row["image"])})
    return paths["train"], paths["val"], len(held)


def train(data: list[str], seed: int, cache_dir: str, extra: list[str], out: Path) -> dict:
    t0 = time.perf_counter()
    summary = json.loads(geocli(["train", *data, "--out", str(out), "--seed", str(seed), "--cache-dir", cache_dir,
                                 "--format", "json", *extra]))
    val = summary["final"]["val"]
    row = {"median_km": val["median_km"], "mean_km": val["mean_km"], "n": val["n"],
           **{k: 100 * val["accuracy"][k] for k in ("25", "200", "750")}, "seconds": time.perf_counter() - t0}
    return row


def line(name: str, row: dict) -> str:
    return (f"| {name} | {row['median_km']:.1f} | {row['mean_km']:.1f} | {row['25']:.1f}% | {row['200']:.1f}% | "
            f"{row['750']:.1f}% | {row['seconds']:.0f} s |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--val-fraction", type=float, default=0.2)
    parser.add_argument("--shard-size", type=int, default=100)
    parser.add_argument("--cache-dir", default=None, help="embedding cache (default: a temporary one)")
    parser.add_argument("train_args", nargs="*", help="extra geocli train arguments for both runs (after --)")
    args = parser.parse_args()
    manifest = SHARED / "croatia-streetview" / "manifest.csv"
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        cache = args.cache_dir or str(tmp / "cache")
        shards = tmp / "shards"
        print(geocli(["shards", str(manifest), "--out", str(shards), "--shard-size", str(args.shard_size),
                      "--no-progress"]).strip(), file=sys.stderr)
        train_csv, val_csv, n_val = split_like_the_shards(manifest, shards, args.val_fraction, tmp)
        print(f"hold-out: {n_val} photos (the shards' hash split of location_id, {args.val_fraction:g})", file=sys.stderr)
        runs: dict[str, list[dict]] = {"folder": [], "shards": []}
        for seed in (int(s) for s in args.seeds.split(",")):
            folder = train(["--data", str(train_csv), "--val", str(val_csv)], seed, cache, args.train_args,
                           tmp / f"folder-{seed}")
            streamed = train(["--data", str(shards), "--val-fraction", str(args.val_fraction)], seed, cache,
                             args.train_args, tmp / f"shards-{seed}")
            if folder["n"] != streamed["n"] or folder["n"] != n_val:
                raise SystemExit(f"hold-out sizes differ: folder {folder['n']}, shards {streamed['n']}, split {n_val}")
            runs["folder"].append(folder)
            runs["shards"].append(streamed)
            print(f"  seed {seed}: median km folder {folder['median_km']:.1f}, shards {streamed['median_km']:.1f}",
                  file=sys.stderr, flush=True)
    print(f"| trained from (hold-out {n_val} photos), seed | median km | mean km | @25 km | @200 km | @750 km | wall |")
    print("|---|---|---|---|---|---|---|")
    for i, seed in enumerate(args.seeds.split(",")):
        for name in runs:
            print(line(f"{name}, seed {seed}", runs[name][i]))
    for name, rows in runs.items():
        med = {k: statistics.median(r[k] for r in rows) for k in (*METRICS, "seconds")}
        print(line(f"**{name}, median over seeds**", med))


if __name__ == "__main__":
    main()
