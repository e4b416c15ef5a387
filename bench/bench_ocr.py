"""geocli's OCR against a plain ``RapidOCR()`` loop on the same photos: throughput ratio and recall.

A (the plain loop): ``engine = RapidOCR()``, then ``engine(photo)`` per photo with its defaults.
B (geocli): the OCR branch's ``encode_images`` as predict and training run it -- read AND embed.
Both get the same decoded, EXIF-oriented photos (decoding is timed for neither). After a warm-up,
the photos go in chunks; chunk i runs A then B when i is even, B then A when odd, so load on a
shared machine falls on both alike. Reported per photo set: photos/s of each, speed-up B/A, and
recall: of the lines A reads with confidence >= 0.8, the share B reads too (a line counts as read
when its text, case and spaces ignored, occurs in the text B reads in that photo, so a line B
splits in two or joins with its neighbour still counts); "within 1 char in 5" also counts a line
B spells slightly differently (recognition of the same crop varies with the batch it runs in).

    python bench/bench_ocr.py [--n 48] [--seed 0] [--chunk 8] [--sets sf-landmarks,croatia-streetview]
                              [--options '{"coarse_scale": null}'] [--cached]

``--seed``: which photos are drawn (report a second sample, so no figure is tuned on one split).
``--options``: JSON of OCR branch ``engine_options`` to try instead of the defaults. The figures
are a first run: B's OCR result cache is off. ``--cached`` gives B a fresh cache in a temporary
folder for the first run and then times a second pass (a re-run's case), counting the photos the
OCR engine still had to read in it (0 when nothing is read twice).
"""
from __future__ import annotations

import argparse
import difflib
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

SHARED = Path(os.environ.get("GEOCLI_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
REFERENCE_CONFIDENCE = 0.8


def photos(name: str, n: int, seed: int = 0) -> list[str]:
    """``n`` photos of a shared set, drawn at random (fixed seed) so every part of it is represented."""
    files = sorted(str(p) for p in (SHARED / name / "images").rglob("*.jpg"))
    if not files:
        raise SystemExit(f"no photos in {SHARED / name / 'images'} (set GEOCLI_SHARED_DATA to the shared data folder)")
    random.Random(seed).shuffle(files)
    return files[:n]


def squash(text: str) -> str:
    return "".join(text.split()).casefold()


def was_read(line: str, texts: list[str], fuzzy: bool) -> bool:
    """``line`` occurs in the photo's joined text, or (``fuzzy``) one of its lines spells it with
    at most a fifth of the characters different (difflib ratio >= 0.8: INSURANCE for INSURANICE)."""
    target = squash(line)
    if target in squash(" ".join(texts)):
        return True
    return fuzzy and any(difflib.SequenceMatcher(None, target, squash(t)).ratio() >= 0.8 for t in texts)


def recall(reference: list[list[tuple[str, float]]], read: list[list[str]], fuzzy: bool = False) -> tuple[int, int]:
    """(reference lines read by B, reference lines) over all photos."""
    hits = total = 0
    for ref_lines, texts in zip(reference, read):
        for text, conf in ref_lines:
            if conf >= REFERENCE_CONFIDENCE and squash(text):
                total += 1
                hits += was_read(text, texts, fuzzy)
    return hits, total


def plain_loop(engine, images) -> list[list[tuple[str, float]]]:
    out = []
    for image in images:
        result, _ = engine(image)
        out.append([(text, float(conf)) for _, text, conf in (result or [])])
    return out


def geocli_ocr(branch, images) -> list[list[str]]:
    out = branch.encode_images(images)
    return [[b.text for b in boxes] for boxes in out.boxes]


def timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


def photos_read(branch) -> list[int]:
    """A counter the branch's OCR engine adds each photo it reads to."""
    count, read_batch = [0], branch.engine.read_batch

    def counted(images):
        count[0] += len(images)
        return read_batch(images)

    branch.engine.read_batch = counted
    return count


def run_set(name: str, args, engine, branch) -> dict:
    from geocli.images import open_image

    images = [open_image(p) for p in photos(name, args.n, args.seed)]
    chunks = [images[i : i + args.chunk] for i in range(0, len(images), args.chunk)]
    time_a, time_b, ref, read = [], [], [], []
    for i, chunk in enumerate(chunks):
        order = ("a", "b") if i % 2 == 0 else ("b", "a")
        for side in order:
            if side == "a":
                seconds, lines = timed(plain_loop, engine, chunk)
                time_a.append(seconds), ref.extend(lines)
            else:
                seconds, texts = timed(geocli_ocr, branch, chunk)
                time_b.append(seconds), read.extend(texts)
    warm = {}
    if args.cached:  # a re-run: every photo's text is in the cache now
        count = photos_read(branch)
        warm_s = sum(timed(geocli_ocr, branch, chunk)[0] for chunk in chunks)
        warm = {"warm_b_per_s": len(images) / warm_s, "warm_photos_read": count[0]}
    hits, total = recall(ref, read)
    fuzzy_hits, _ = recall(ref, read, fuzzy=True)
    per_chunk = [a / b for a, b in zip(time_a, time_b)]
    return {**warm, "set": name, "seed": args.seed, "photos": len(images), "a_per_s": len(images) / sum(time_a),
            "b_per_s": len(images) / sum(time_b), "speedup": sum(time_a) / sum(time_b),
            "median_chunk_speedup": statistics.median(per_chunk), "ref_lines": total, "read": hits,
            "recall": hits / total if total else float("nan"), "read_fuzzy": fuzzy_hits,
            "recall_fuzzy": fuzzy_hits / total if total else float("nan"),
            "photos_with_text_a": sum(bool(r) for r in ref), "photos_with_text_b": sum(bool(t) for t in read)}


def report(row: dict) -> None:
    print(f"{row['set']} (seed {row['seed']}): {row['photos']} photos | plain RapidOCR loop {row['a_per_s']:.2f} photos/s | "
          f"geocli OCR (read+embed) {row['b_per_s']:.2f} photos/s | speed-up {row['speedup']:.2f}x "
          f"(median over chunks {row['median_chunk_speedup']:.2f}x) | recall of plain-loop lines with "
          f"confidence >= {REFERENCE_CONFIDENCE}: exact {row['read']}/{row['ref_lines']} = {row['recall']:.1%}, "
          f"within 1 char in 5 {row['read_fuzzy']}/{row['ref_lines']} = {row['recall_fuzzy']:.1%} | "
          f"photos with text: plain {row['photos_with_text_a']}, geocli {row['photos_with_text_b']}")
    if "warm_b_per_s" in row:
        print(f"  re-run through the OCR cache: {row['warm_b_per_s']:.2f} photos/s, "
              f"{row['warm_photos_read']} photos read again")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=48, help="photos per set")
    parser.add_argument("--seed", type=int, default=0, help="which photos are drawn")
    parser.add_argument("--chunk", type=int, default=8, help="photos per interleaved A/B chunk (and B's batch)")
    parser.add_argument("--sets", default="sf-landmarks,croatia-streetview")
    parser.add_argument("--options", default="{}", help="JSON engine_options for geocli's OCR branch")
    parser.add_argument("--cached", action="store_true", help="also time B's second pass through its OCR cache")
    parser.add_argument("--json", action="store_true", help="print one JSON object per set instead")
    args = parser.parse_args()

    from PIL import Image
    from rapidocr_onnxruntime import RapidOCR

    from geocli.branches import OCRBranch

    engine = RapidOCR()
    branch = OCRBranch(engine_options=json.loads(args.options)).eval()
    warm = Image.new("RGB", (640, 480), "white")
    engine(warm), branch.encode_images([warm])
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; geocli OCR provider "
          f"{branch.engine.provider}; options {args.options}", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="bench-ocr-cache-") as cache_root:
        for name in args.sets.split(","):
            branch.ocr_cache = None
            if args.cached:  # a fresh cache per set: its first pass reads every photo
                branch.use_ocr_cache(os.path.join(cache_root, name))
            row = run_set(name, args, engine, branch)
            print(json.dumps(row)) if args.json else report(row)
            sys.stdout.flush()


if __name__ == "__main__":
    main()
