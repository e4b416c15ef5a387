"""The predict loop: decode images, run a geolocator over batches, yield one record per image.

A geolocator is any object with ``locate(images, paths, top_k) -> list[LocateResult]`` (see
``geocli.predict.record``) and ``status_lines() -> list[str]``. Images
that cannot be decoded become ``ok: false`` records and the run goes on; decoded images live only
for their batch, so memory stays flat over any number of inputs.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

from geocli.errors import UsageError
from geocli.images import ImageError
from geocli.predict.photos import PhotoLike, item_name, load_photo
from geocli.predict.record import PredictionRecord, error_record, image_record

#: Options that only a checkpoint model takes.
CHECKPOINT_ONLY = ("tta", "cache", "cache_dir")
#: Models that need no checkpoint folder.
BUILTIN_MODELS = {
    "default": "zero-shot CLIP geolocator (countries + world cities) with EXIF and OCR evidence",
    "evidence": "EXIF GPS and OCR evidence only (place names, scripts, TLDs, phone prefixes); no visual model",
}


def _batches(items: Iterable, size: int) -> Iterator[list]:
    batch: list = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class Predictor:
    """Runs a geolocator over photos (paths, PIL images, NumPy arrays, bytes, photos held in shards),
    in order, batch by batch."""

    def __init__(self, geolocator):
        self.geolocator = geolocator

    def status_lines(self) -> list[str]:
        return list(self.geolocator.status_lines())

    def predict(self, photos: Iterable[PhotoLike] | PhotoLike, top_k: int = 5, batch_size: int = 8,
                interrupt=None) -> Iterator[PredictionRecord]:
        """One record per photo, in order. A single photo (not in a list) is taken as a list of one;
        ``("name.jpg", data)`` names an in-memory photo in its record."""
        if isinstance(photos, (str, bytes, bytearray, memoryview, tuple)) or not hasattr(photos, "__iter__") \
                or hasattr(photos, "__array_interface__") or hasattr(photos, "getexif"):
            photos = [photos]
        start = 0
        for batch in _batches(photos, batch_size):
            yield from self._predict_batch(batch, top_k, start)
            start += len(batch)
            if interrupt is not None and interrupt.requested:
                return

    def _predict_batch(self, batch: list, top_k: int, start: int = 0) -> Iterator[PredictionRecord]:
        records: dict[int, PredictionRecord] = {}
        photos, ok_index = [], []
        for i, item in enumerate(batch):
            try:
                photos.append(load_photo(item, start + i))
                ok_index.append(i)
            except ImageError as exc:
                records[i] = error_record(item_name(item, start + i), str(exc))
        results = self._locate([p.image for p in photos], [p.path for p in photos], [p.name for p in photos], top_k)
        for i, photo, result in zip(ok_index, photos, results):
            records[i] = result if result.get("ok") is False else image_record(photo.name, result)
        for i in range(len(batch)):
            yield records[i]

    def _locate(self, images: list, paths: list, names: list[str], top_k: int) -> list:
        """The geolocator's results for the batch; when one photo fails (an ``ImageError`` from a
        bounded resize, say), each photo on its own, so only that one gets an error record."""
        if not images:
            return []
        try:
            return self.geolocator.locate(images, paths, top_k)
        except ImageError as exc:
            if len(images) == 1:
                return [error_record(names[0], str(exc))]
        out = []
        for image, path, name in zip(images, paths, names):
            try:
                out.extend(self.geolocator.locate([image], [path], top_k))
            except ImageError as exc:
                out.append(error_record(name, str(exc)))
        return out


def load_geolocator(model: str | None = None, **options) -> Predictor:
    """A ``Predictor`` for a checkpoint folder, a built-in model name, or ``None`` (the default)."""
    if model is not None and Path(model).is_dir():
        from geocli.predict.checkpoint_geolocator import CheckpointGeolocator

        return Predictor(CheckpointGeolocator(model, **options))
    name = model or "default"
    if name not in BUILTIN_MODELS:
        valid = ", ".join(BUILTIN_MODELS)
        raise UsageError(f"unknown model {name!r}: not a checkpoint folder nor a built-in model ({valid})")
    misplaced = sorted(k for k in CHECKPOINT_ONLY if k in options)
    if misplaced:
        raise UsageError(f"{', '.join('--' + k.replace('_', '-') for k in misplaced)} applies to checkpoint "
                         f"models only, not to the built-in {name!r} model")
    from geocli.predict.default_geolocator import DefaultGeolocator

    if name == "evidence":
        options["clip_model"] = None
    return Predictor(DefaultGeolocator(**options))
