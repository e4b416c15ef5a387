"""Do training settings beat always guessing the training centroid on places never seen?

Trains the Croatia Street View set (frozen packaged EfficientNet-Lite0, cached vectors) with each
setting on several group splits (``--seed`` picks which locations are held out) and prints, per
split, the validation median km and its ratio to the training centroid's median on the same
split (below 1.0 beats the baseline), plus the median ratio over the splits.

    python bench/bench_train_defaults.py [--seeds 0,1,2] [--settings defaults,readme-tuned] [--cache-dir DIR]

The first run encodes the photos into the embedding cache (minutes on CPU); later runs read it.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

SHARED = Path(os.environ.get("GEOCLI_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))

#: name -> extra ``geocli train`` arguments (on top of the defaults)
SETTINGS: dict[str, list[str]] = {
    "defaults": [],
    "old-defaults": ["--epochs", "10", "--sampler", "class-balanced", "--lr", "1e-3",
                     "--config", "{\"tau_km\": null}"],
}


def _config_args(args: list[str], tmp: Path) -> list[str]:
    """Inline JSON after ``--config`` written to a file (the CLI takes a path)."""
    out = list(args)
    for i, a in enumerate(out[:-1]):
        if a == "--config" and out[i + 1].startswith("{"):
            path = tmp / f"config{i}-{abs(hash(out[i + 1]))}.json"
            path.write_text(out[i + 1])
            out[i + 1] = str(path)
    return out


def train_once(extra: list[str], seed: int, cache_dir: str | None, tmp: Path) -> tuple[float, float]:
    """(validation median km, training-centroid median km) of one run."""
    from click.testing import CliRunner

    from geocli.cli.main import cli

    out = tmp / f"run-{seed}-{abs(hash(tuple(extra)))}"
    args = ["train", "--data", str(SHARED / "croatia-streetview" / "manifest.csv"), "--out", str(out),
            "--seed", str(seed), "--format", "json", *(["--cache-dir", cache_dir] if cache_dir else []),
            *_config_args(extra, tmp)]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    if result.exit_code != 0:
        raise SystemExit(f"train failed: {result.output[-500:]}")
    summary = json.loads(result.stdout)
    return summary["final"]["val"]["median_km"], summary["baseline_centroid"]["median_km"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--cache-dir", default=None, help="embedding cache (default: geocli's own)")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    print("| setting | " + " | ".join(f"split {s}: median km (x centroid)" for s in seeds) + " | median ratio |")
    print("|---|" + "---|" * (len(seeds) + 1))
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.settings.split(","):
            cells, ratios = [], []
            for seed in seeds:
                median, centroid = train_once(SETTINGS[name], seed, args.cache_dir, Path(tmp))
                ratios.append(median / centroid)
                cells.append(f"{median:.1f} ({median / centroid:.2f}x of {centroid:.1f})")
                print(f"  {name} seed {seed}: {cells[-1]}", file=sys.stderr, flush=True)
            print(f"| {name} | " + " | ".join(cells) + f" | {statistics.median(ratios):.2f}x |", flush=True)


if __name__ == "__main__":
    main()
