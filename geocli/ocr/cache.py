"""On-disk cache of what OCR read, by image content: a re-run of predict or eval on the same photos
reads no text twice (the embedding cache does the same for vectors during training).

An entry is keyed by a hash of the decoded pixels (mode, size, bytes): what an engine reads depends
on nothing else, so renamed or re-encoded-identically files share an entry and an edited photo does
not. Entries live in one SQLite file per engine identity (name, options, box filters; see
``engine_key``), in geocli's cache folder: several processes may read and write it at once.
Only a re-run gains from it -- a first run pays the full OCR cost.
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path
from typing import Callable, Iterator, Sequence

from PIL import Image

from geocli.weights.hub import cache_dir, digest
from geocli.ocr.base import TextBox

OCR_CACHE_VERSION = 2  # 2: rewritten model graphs, 5 px boxes, 2.5x detection upscale
#: Engine options that change how fast text is read, not what is read.
SPEED_ONLY_OPTIONS = ("threads", "device", "rec_batch")


def pixels_key(image: Image.Image) -> str:
    """Content hash of a decoded image."""
    h = hashlib.blake2b(digest_size=20)
    h.update(f"{image.mode}:{image.width}x{image.height}:".encode())
    h.update(image.tobytes())
    return h.hexdigest()


def engine_key(name: str, options: dict) -> str:
    """Identity of an engine's reads: its name and every option that changes what it reads."""
    kept = {k: v for k, v in options.items() if k not in SPEED_ONLY_OPTIONS}
    return f"{name}-{digest(OCR_CACHE_VERSION, name, kept)}"


def _to_json(boxes: Sequence[TextBox]) -> str:
    return json.dumps([[list(map(list, b.box)), b.text, b.confidence] for b in boxes])


def _from_json(blob: str) -> list[TextBox]:
    return [TextBox(tuple(tuple(p) for p in box), text, conf) for box, text, conf in json.loads(blob)]


class OCRCache:
    """Text boxes by ``pixels_key`` for one engine identity; ``root`` defaults to geocli's cache dir.

    Like the embedding cache it can only cost time: a folder that cannot be created or written,
    or a database file that is damaged, means one notice and reading text afresh."""

    def __init__(self, key: str, root: str | os.PathLike | None = None, log: Callable[[str], None] | None = None) -> None:
        self.log = log or _default_log
        folder = Path(root) / "ocr" if root else cache_dir("ocr", create=False)
        self.path: Path | None = folder / f"{key}.sqlite"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with self._connect() as db:
                db.execute("CREATE TABLE IF NOT EXISTS reads (image TEXT PRIMARY KEY, boxes TEXT NOT NULL)")
        except (OSError, sqlite3.Error) as exc:
            self._disable(exc)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=60)

    def _disable(self, exc: Exception) -> None:
        from geocli.report.terminal import printable

        self.log(f"OCR cache {printable(self.path)} is unusable ({' '.join(str(exc).split())}): "
                 "going on without caching what OCR reads")
        self.path = None

    def get(self, keys: Sequence[str]) -> dict[str, list[TextBox]]:
        """The cached boxes of those ``keys`` that have a readable entry."""
        unique = list(dict.fromkeys(keys))
        found: dict[str, list[TextBox]] = {}
        if self.path is None:
            return found
        try:
            with self._connect() as db:
                for i in range(0, len(unique), 500):
                    chunk = unique[i : i + 500]
                    rows = db.execute(f"SELECT image, boxes FROM reads WHERE image IN ({','.join('?' * len(chunk))})", chunk)
                    found.update(_readable(rows))
        except sqlite3.Error as exc:
            self._disable(exc)
        return found

    def put(self, entries: dict[str, Sequence[TextBox]]) -> None:
        if self.path is None:
            return
        try:
            with self._connect() as db:
                db.executemany("INSERT OR REPLACE INTO reads VALUES (?, ?)",
                               [(key, _to_json(boxes)) for key, boxes in entries.items()])
        except sqlite3.Error as exc:
            self._disable(exc)

    def __len__(self) -> int:
        if self.path is None:
            return 0
        with self._connect() as db:
            return int(db.execute("SELECT COUNT(*) FROM reads").fetchone()[0])


def _readable(rows) -> Iterator[tuple[str, list[TextBox]]]:
    """Rows whose boxes decode; a damaged entry is a miss (read again), never a crash."""
    for key, blob in rows:
        try:
            yield key, _from_json(blob)
        except (TypeError, ValueError):
            continue


def _default_log(message: str) -> None:
    from geocli.report.console import log

    log(message)


def cached_reads(cache: OCRCache, images: Sequence[Image.Image],
                 read: Callable[[list[Image.Image]], list[list[TextBox]]]) -> list[list[TextBox]]:
    """Each image's boxes: from the cache, or read (all missing images in one call) and stored."""
    keys = [pixels_key(img) for img in images]
    found = cache.get(keys)
    todo = {k: img for k, img in zip(keys, images) if k not in found}
    if todo:
        fresh = dict(zip(todo, read(list(todo.values()))))
        cache.put(fresh)
        found.update(fresh)
    return [found[k] for k in keys]
