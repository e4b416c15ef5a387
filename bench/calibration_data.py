"""Labelled photos for the calibration bench, and the OCR text read in each (cached on disk).

OCR is by far the slow part of the evidence model (about 1-3 photos/s on two CPU cores), and the
boxes it reads do not depend on anything the calibration changes, so they are read once per photo
and stored in a JSON file keyed by the photo's content hash. Everything after OCR (gazetteer,
hints, scripts, the combiner) runs live on every bench run.

    python bench/calibration_data.py [--sets sf-train,sf-nogps,croatia]   # fill the OCR cache only
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

SHARED = Path(os.environ.get("GEOCLI_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "geocli" / "bench-ocr.json"
SETS = ("sf-gps", "sf-nogps", "croatia")


@dataclass
class Photo:
    path: str
    lat: float
    lon: float
    country: str | None


def labelled_photos(name: str) -> list[Photo]:
    """``sf-nogps``: the SF photos without EXIF GPS; ``sf-gps``: the others (their GPS is never
    used); ``croatia``: the Street View set."""
    from geocli.datasets.manifest import read_manifest
    from geocli.evidence.exif import read_exif

    folder = SHARED / ("croatia-streetview" if name == "croatia" else "sf-landmarks")
    m = read_manifest(folder / "manifest.csv")
    rows = list(zip(m.images, m.lat, m.lon, m.country))
    if name != "croatia":
        want_gps = name == "sf-gps"
        rows = [r for r in rows if (read_exif(r[0]).gps is not None) == want_gps]
    return [Photo(str(p), float(a), float(b), c) for p, a, b, c in rows]


def _digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:32]


class OcrCache:
    """Photo content hash -> the boxes OCR read (text, confidence, quadrilateral)."""

    def __init__(self, path: Path = DEFAULT_CACHE):
        self.path = Path(path)
        self.entries: dict = json.loads(self.path.read_text()) if self.path.is_file() else {}

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.entries))
        os.replace(tmp, self.path)

    def cached(self, photos: list[Photo]) -> list[Photo]:
        """The photos whose OCR read is already in the cache."""
        return [p for p in photos if _digest(p.path) in self.entries]

    def boxes(self, photos: list[Photo], log=print) -> list[list]:
        """The boxes of each photo, reading (and caching) those not seen before."""
        from geocli.ocr.base import make_box

        keys = [_digest(p.path) for p in photos]
        todo = [(k, p) for k, p in zip(keys, photos) if k not in self.entries]
        if todo:
            self._read(todo, log)
        return [[make_box(b["box"], b["text"], b["confidence"]) for b in self.entries[k]] for k in keys]

    def _read(self, todo: list[tuple[str, Photo]], log) -> None:
        from geocli.images import open_image
        from geocli.ocr import build_ocr_engine
        from geocli.ocr.base import OCR_MAX_SIDE, shrink_for_ocr

        engine, start = build_ocr_engine("rapidocr"), time.perf_counter()
        for i, (key, photo) in enumerate(todo, 1):
            boxes = engine.read(shrink_for_ocr(open_image(photo.path), OCR_MAX_SIDE))
            self.entries[key] = [{"box": b.box, "text": b.text, "confidence": b.confidence} for b in boxes]
            if i % 25 == 0 or i == len(todo):
                self.save()
                log(f"OCR {i}/{len(todo)} ({i / (time.perf_counter() - start):.2f} photos/s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--ocr-cache", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args()
    cache = OcrCache(args.ocr_cache)
    for name in args.sets.split(","):
        photos = labelled_photos(name)
        print(f"{name}: {len(photos)} photos", file=sys.stderr)
        cache.boxes(photos, log=lambda s: print(s, file=sys.stderr))


if __name__ == "__main__":
    main()
