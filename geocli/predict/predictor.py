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
from geocli.images import ImageError, open_image
from geocli.predict.record import PredictionRecord, error_record, image_record

#: Options that only a checkpoint model takes.
CHECKPOINT_ONLY = ("tta", "cache", "cache_dir")
#: Models that need no checkpoint folder.
BUILTIN_MODELS = {
    "default": "zero-shot CLIP geolocator (countries + world cities) with EXIF and OCR evidence",
    "evidence": "EXIF GPS and OCR evidence only (place names, scripts, TLDs, phone prefixes); no visual model",
}


def _batches(items: Iterable[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class Predictor:
    """Runs a geolocator over paths (or photos held in shards: ``ShardImage``), in order, batch by batch."""

    def __init__(self, geolocator):
        self.geolocator = geolocator

    def status_lines(self) -> list[str]:
        return list(self.geolocator.status_lines())

    def predict(self, paths: Iterable[str], top_k: int = 5, batch_size: int = 8, interrupt=None) -> Iterator[PredictionRecord]:
        for batch in _batches(paths, batch_size):
            yield from self._predict_batch(batch, top_k)
            if interrupt is not None and interrupt.requested:
                return

    def _predict_batch(self, batch: list[str], top_k: int) -> Iterator[PredictionRecord]:
        records: dict[int, PredictionRecord] = {}
        images, ok_index = [], []
        for i, path in enumerate(batch):
            try:
                images.append(path.open() if hasattr(path, "open") else open_image(path))  # a ShardImage
                ok_index.append(i)
            except ImageError as exc:
                records[i] = error_record(str(path), str(exc))
        paths = [None if hasattr(batch[i], "open") else str(batch[i]) for i in ok_index]  # no file behind a shard photo
        results = self.geolocator.locate(images, paths, top_k) if images else []
        for i, result in zip(ok_index, results):
            records[i] = image_record(str(batch[i]), result)
        for i in range(len(batch)):
            yield records[i]


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
