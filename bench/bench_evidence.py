"""Does evidence (OCR place names, scripts, TLDs, phone prefixes) help a trained model, or hurt it?

Trains one checkpoint model on two countries -- Croatia Street View (a group split by location:
the held-out locations are never seen) and the San Francisco phone photos that carry EXIF GPS --
and scores it with ``--no-evidence`` and ``--evidence`` on

* the 158 San Francisco photos WITHOUT EXIF GPS (what pixels and text alone give), and
* the held-out Croatian locations,

with the commands a user runs (``geocli predict ... --model RUN --format jsonl``, then ``geocli eval
MANIFEST --predictions FILE``). Prints a Markdown table (% within 1/25/200/750/2500 km, median km,
country accuracy; every photo counts) and, on stderr, how many photos carry a clue and how many
top guesses evidence moved closer or farther.

    python bench/bench_evidence.py [--seeds 0,1] [--branches rgb] [--cache-dir DIR]

Needs the shared photos (``GEOCLI_SHARED_DATA``, default ../shared/data). The first run encodes
the photos into the embedding cache and reads their text (minutes on a 2-core CPU).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
import tempfile
from pathlib import Path

SHARED = Path(os.environ.get("GEOCLI_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
THRESHOLDS = ("1", "25", "200", "750", "2500")
APPLIED = "evidence applied"  # the record's note when a clue changed the model's distribution


def _rows(folder: Path) -> list[dict]:
    with (folder / "manifest.csv").open(newline="") as f:
        return [dict(r, image=str(folder / r["image"])) for r in csv.DictReader(f)]


def _write(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["image", "lat", "lon", "location_id"])
        writer.writeheader()
        writer.writerows({k: r.get(k, "") for k in writer.fieldnames} for r in rows)
    return path


def split(tmp: Path, seed: int) -> dict[str, Path]:
    """Manifests: ``train`` (Croatia's training locations + SF with GPS), ``sf-no-gps``, ``croatia-held-out``."""
    from geocli.evidence.exif import read_exif

    sf = _rows(SHARED / "sf-landmarks")
    has_gps = {r["image"]: read_exif(r["image"]).gps is not None for r in sf}
    with_gps = [dict(r, location_id="sf-" + Path(r["image"]).stem) for r in sf if has_gps[r["image"]]]
    croatia = _rows(SHARED / "croatia-streetview")
    locations = sorted({r["location_id"] for r in croatia})
    random.Random(seed).shuffle(locations)
    held = set(locations[: len(locations) // 4])
    return {
        "train": _write(tmp / "train.csv", [r for r in croatia if r["location_id"] not in held] + with_gps),
        "sf-no-gps": _write(tmp / "sf-no-gps.csv", [r for r in sf if not has_gps[r["image"]]]),
        "croatia-held-out": _write(tmp / "croatia-held-out.csv", [r for r in croatia if r["location_id"] in held]),
    }


def _geocli(args: list[str]) -> str:
    from click.testing import CliRunner

    from geocli.cli.main import cli

    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    if result.exit_code != 0:
        raise SystemExit(f"geocli {args[0]} failed: {result.output[-800:]}")
    return result.stdout


def _cells(scores: dict) -> list[str]:
    within = [100 * scores["accuracy"][t] for t in THRESHOLDS]
    country = scores.get("country_accuracy")
    return [f"{v:.1f}" for v in within] + [f"{scores['median_km']:.1f}",
                                           "-" if country is None else f"{100 * country:.1f}"]


def _top_km(path: Path, truth: dict[str, tuple[float, float]]) -> dict[str, float]:
    """Top guess's error of each photo in a predictions JSONL."""
    from geocli.geo.distance import haversine_km

    out = {}
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if record.get("ok") and record.get("predictions"):
            top = record["predictions"][0]
            out[record["image"]] = float(haversine_km(*truth[record["image"]], top["lat"], top["lon"]))
    return out


def _changes(manifest: Path, files: dict[str, Path]) -> str:
    """How many photos carry a clue, and how many top guesses evidence moved closer / farther."""
    with manifest.open(newline="") as f:
        truth = {r["image"]: (float(r["lat"]), float(r["lon"])) for r in csv.DictReader(f)}
    with_clue = sum(any(note.startswith(APPLIED) for note in json.loads(line).get("evidence") or [])
                    for line in files["--evidence"].read_text().splitlines())
    before, after = _top_km(files["--no-evidence"], truth), _top_km(files["--evidence"], truth)
    moved = [(before[k], after[k]) for k in before if k in after and abs(before[k] - after[k]) > 1e-6]
    closer = sum(a < b for b, a in moved)
    return (f"{with_clue}/{len(truth)} photos carry a clue; evidence moved {len(moved)} top guesses: "
            f"{closer} closer, {len(moved) - closer} farther")


def evaluate(name: str, manifest: Path, run: Path, seed: int, tmp: Path, cache: list[str]) -> None:
    """Predict ``manifest``'s photos with and without evidence, score both files, print rows."""
    files = {}
    with manifest.open(newline="") as f:
        images = [r["image"] for r in csv.DictReader(f)]
    for flag in ("--no-evidence", "--evidence"):
        files[flag] = tmp / f"{name}-{seed}{flag}.jsonl"
        files[flag].write_text(_geocli(["predict", *images, "--model", str(run), flag, "--format", "jsonl",
                                        *cache]))
        scores = json.loads(_geocli(["eval", str(manifest), "--predictions", str(files[flag]), "--format", "json"]))
        print(f"| {name} | {seed} | {flag.strip('-')} | " + " | ".join(_cells(scores)) + " |", flush=True)
    print(f"  {name}, seed {seed}: {_changes(manifest, files)}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--branches", default="rgb")
    parser.add_argument("--cache-dir", default=None, help="embedding cache (default: geocli's own)")
    args = parser.parse_args()
    cache = ["--cache-dir", args.cache_dir] if args.cache_dir else []
    print("| set | seed | evidence | " + " | ".join(f"≤{t} km %" for t in THRESHOLDS) + " | median km | country % |")
    print("|---|---|---|" + "---|" * (len(THRESHOLDS) + 2), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for seed in (int(s) for s in args.seeds.split(",")):
            sets = split(Path(tmp), seed)
            run = Path(tmp) / f"run-{seed}"
            _geocli(["train", "--data", str(sets["train"]), "--out", str(run), "--seed", str(seed),
                     "--branches", args.branches, "--format", "json", *cache])
            for name in ("sf-no-gps", "croatia-held-out"):
                evaluate(name, sets[name], run, seed, Path(tmp), cache)


if __name__ == "__main__":
    main()
