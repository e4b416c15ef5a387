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

#: Options that only a model with branches (a checkpoint, geoclip) takes.
CHECKPOINT_ONLY = ("tta", "cache", "cache_dir", "precision")
#: Models that need no checkpoint folder.
BUILTIN_MODELS = {
    "default": "the strongest visual model whose weights are here (geoclip, else zero-shot CLIP, else none) "
               "with EXIF and OCR evidence as a likelihood on its distribution",
    "geoclip": "GeoCLIP: CLIP ViT-L/14 (openai/clip-vit-large-patch14 or --clip-weights DIR) + the geoclip "
               "package's MLP, location encoder and 100K GPS gallery; --evidence adds the photo's clues",
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
                interrupt=None, groups: dict[str, str] | None = None) -> Iterator[PredictionRecord]:
        """One record per photo, in order. A single photo (not in a list) is taken as a list of one;
        ``("name.jpg", data)`` names an in-memory photo in its record. With ``groups`` (path -> group
        key) photos are ordered by group and each group's combined record follows its photos
        (``geocli.predict.grouping``)."""
        from geocli.predict.grouping import strip_distributions, with_groups

        if isinstance(photos, (str, bytes, bytearray, memoryview, tuple)) or not hasattr(photos, "__iter__") \
                or hasattr(photos, "__array_interface__") or hasattr(photos, "getexif"):
            photos = [photos]
        if not groups:
            yield from strip_distributions(self._records(photos, top_k, batch_size, interrupt))
            return
        keep = getattr(self.geolocator, "keep_distribution", None)
        if keep is not None:
            self.geolocator.keep_distribution = True
        try:
            ordered = _by_group([str(p) for p in photos], groups)
            yield from with_groups(self._records(ordered, top_k, batch_size, interrupt), groups, top_k)
        finally:
            if keep is not None:
                self.geolocator.keep_distribution = keep

    def _records(self, photos, top_k: int, batch_size: int, interrupt) -> Iterator[PredictionRecord]:
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


def _by_group(paths: list[str], groups: dict[str, str]) -> list[str]:
    """Paths with each group's photos together, groups in order of first appearance (stable)."""
    first: dict[str, int] = {}
    keyed = []
    for i, p in enumerate(paths):
        anchor = first.setdefault(groups[p], i) if p in groups else i
        keyed.append((anchor, i, p))
    return [p for _, _, p in sorted(keyed)]


def load_geolocator(model: str | None = None, **options) -> Predictor:
    """A ``Predictor`` for a checkpoint folder, a built-in model name, or ``None`` (the default)."""
    if model is not None and Path(model).is_dir():
        from geocli.predict.checkpoint_geolocator import CheckpointGeolocator

        return Predictor(CheckpointGeolocator(model, **options))
    name = model or "default"
    if name not in BUILTIN_MODELS:
        valid = ", ".join(BUILTIN_MODELS)
        raise UsageError(f"unknown model {name!r}: not a checkpoint folder nor a built-in model ({valid})")
    takes = {"geoclip": ("cache", "cache_dir", "precision"), "default": ("precision",)}.get(name, ())
    misplaced = sorted(k for k in CHECKPOINT_ONLY if k in options and k not in takes)
    if misplaced:
        raise UsageError(f"{', '.join('--' + k.replace('_', '-') for k in misplaced)} applies to checkpoint "
                         f"models only, not to the built-in {name!r} model")
    if name == "geoclip":
        return Predictor(_geoclip(options))
    from geocli.predict.default_geolocator import DefaultGeolocator

    if name == "evidence":
        options["clip_model"] = None
    if "clip_model" in options or "clip_pretrained" in options:
        options["geoclip"] = False  # a zero-shot CLIP was named: use it rather than GeoCLIP
    return Predictor(DefaultGeolocator(**options))


def _geoclip(options: dict):
    from geocli.predict.geoclip import geoclip_geolocator

    wrong = sorted(k for k in ("clip_model", "clip_pretrained") if k in options)
    if wrong:
        raise UsageError(f"{', '.join('--' + k.replace('_', '-') for k in wrong)} does not apply to geoclip "
                         "(its CLIP is ViT-L/14; give a local copy with --clip-weights DIR)")
    return geoclip_geolocator(**options)
