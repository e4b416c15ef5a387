"""Prediction from a checkpoint folder written by ``geocli train``.

The folder alone rebuilds the model (architecture, label spaces, preprocessing; no download). Per
batch of photos: the inputs every branch needs (``ModelInputs``), one forward pass (five views
averaged when the checkpoint asks for five-crop TTA), then the records ``geocli predict`` prints.
Beside the model's guesses each record carries the EXIF facts and, for models with an OCR branch,
what was read and the clues in it (scripts, TLDs, phone prefixes) as evidence lines. EXIF GPS is
shown, and with ``trust_exif`` ranked first.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from PIL import Image

from geocli.runtime import resolve_device
from geocli.config import TTA_MODES
from geocli.errors import UsageError
from geocli.evidence.combine import TRUSTED_EXIF_PROBABILITY
from geocli.evidence.exif import ExifInfo, read_exif
from geocli.evidence.scripts import detect_scripts
from geocli.evidence.text_hints import hints_in_texts, text_evidence
from geocli.heads.locations import average_views, to_records
from geocli.ocr import text_records
from geocli.predict.model_inputs import ModelBatch, ModelInputs
from geocli.predict.record import Guess, LocateResult, guess
from geocli.runtime import mixed_precision

#: Options of the default geolocator that a checkpoint fixes for itself.
CHECKPOINT_FIXED = ("clip_model", "clip_pretrained", "clip_weights")
KEEP_CHECKPOINT_TTA = "checkpoint"


class CheckpointGeolocator:
    """``locate(images, paths, top_k)`` with a trained model; see the module docstring.

    ``tta``: "checkpoint" (what the checkpoint says), None or "none" (centre crop) or "five-crop".
    ``cache``: frozen pixel branches read their vectors from the embedding cache (single view).
    """

    def __init__(self, folder: str | Path, device: str | None = None, no_ocr: bool = False,
                 trust_exif: bool = False, tta: str | None = KEEP_CHECKPOINT_TTA, cache: bool = True,
                 cache_dir: str | None = None, ocr_engine: str | None = None, **fixed) -> None:
        from geocli.checkpoint import load_checkpoint
        from geocli.embedding_cache import training_view

        self.folder, self.trust_exif = Path(folder), trust_exif
        self.notices = [f"--{k.replace('_', '-')} is ignored with a checkpoint model (its branches are fixed)"
                        for k, v in fixed.items() if k in CHECKPOINT_FIXED and v]
        unknown = sorted(k for k in fixed if k not in CHECKPOINT_FIXED)
        if unknown:
            raise UsageError(f"unknown option(s) for a checkpoint model: {unknown}")
        self.device = resolve_device(device)
        self.model = load_checkpoint(self.folder, device=str(self.device))
        self.tta = self.model.config.predict.tta if tta == KEEP_CHECKPOINT_TTA else (None if tta == "none" else tta)
        if self.tta not in TTA_MODES:
            raise UsageError(f"tta must be one of {list(TTA_MODES)}, not {self.tta!r}")
        self.inputs = ModelInputs(self.model, self.tta, read_text=not no_ocr, cache=cache, cache_dir=cache_dir)
        self._use_ocr_engine(ocr_engine)
        self.cached_model = training_view(self.model, self.inputs.cached)
        self.no_ocr = no_ocr

    def _use_ocr_engine(self, name: str | None) -> None:
        if name is not None and self.inputs.ocr is not None:
            self.model.branches[self.inputs.ocr].use_engine(name)

    def status_lines(self) -> list[str]:
        cfg = self.model.config
        branches = ", ".join(_branch_label(b) for b in cfg.branches if b.enabled)
        heads = ", ".join(h.name for h in cfg.heads)
        lines = [f"model {self.folder}: branches {branches}; fusion {cfg.fusion.name}; heads {heads}; "
                 f"{'five-crop TTA' if self.tta else 'centre crop'}; device {self.device}"]
        if self.no_ocr and self.inputs.ocr is not None:
            lines.append("OCR off (--no-ocr): the OCR branch gets its 'no text' input")
        elif self.inputs.ocr is not None:
            lines += [n for n in [self.model.branches[self.inputs.ocr].engine_plan()[1]] if n]
        return lines + self.notices

    @torch.no_grad()
    def locate(self, images: list[Image.Image], paths: Sequence[str | None], top_k: int = 5) -> list[LocateResult]:
        if len(images) != len(paths):
            raise ValueError(f"{len(images)} images but {len(paths)} paths")
        batch = self.inputs.build(images, list(paths))
        records = to_records(self.model, self._forward(batch), top_k)
        return [self._record(rec, img, path, boxes, top_k)
                for rec, img, path, boxes in zip(records, images, paths, batch.boxes or [[]] * len(images))]

    def _forward(self, batch: ModelBatch) -> dict:
        model = self.cached_model if batch.from_cache else self.model
        with mixed_precision(self.device):
            outputs = model(batch.inputs)
        return average_views(outputs, batch.views)

    def _record(self, rec: dict, image: Image.Image, path: str | None, boxes: list, top_k: int) -> LocateResult:
        exif = read_exif(path, image)
        predictions, radius = rec["predictions"], rec.get("confidence_radius_km")
        if self.trust_exif and exif.gps:  # a GPS tag is a point, trusted at 0.99
            predictions, radius = _exif_first(exif, predictions, top_k), 0.0
        texts = [b.text for b in boxes]
        return {
            "exif": exif.to_dict(), "predictions": predictions, "confidence_radius_km": radius,
            "scene": rec["scene"],
            "text": text_records(boxes, image.size),
            "country_head": rec["country_head"], "country_agreement": rec["country_agreement"],
            "evidence": exif.lines() + _exif_distance(exif, rec["predictions"]) + self._text_lines(texts),
            "reason": None if predictions else "this model has no location head",
        }

    def _text_lines(self, texts: list[str]) -> list[str]:
        if self.inputs.ocr is None or self.no_ocr:
            return []
        engine = self.model.branches[self.inputs.ocr].engine_name
        return text_evidence(engine, len(texts), detect_scripts(texts), hints_in_texts(texts))


def _exif_distance(exif: ExifInfo, predictions: list[Guess]) -> list[str]:
    """How far the model's top guess is from the photo's own GPS tag, when it has one."""
    if not exif.gps or not predictions:
        return []
    from geocli.geo.distance import haversine_km

    km = float(haversine_km(exif.gps[0], exif.gps[1], predictions[0]["lat"], predictions[0]["lon"]))
    return [f"the model's top guess is {km:,.0f} km from the EXIF GPS position"]


def _branch_label(cfg) -> str:
    model = cfg.options.get("model")
    return f"{cfg.name} ({model})" if model else cfg.name


def _exif_first(exif: ExifInfo, predictions: list[Guess], top_k: int) -> list[Guess]:
    """EXIF GPS as guess 1 (probability 0.99); the model's guesses follow, scaled into the rest."""
    first = guess(1, exif.gps[0], exif.gps[1], "exif", TRUSTED_EXIF_PROBABILITY)
    rest = [{**p, "rank": p["rank"] + 1,
             "probability": None if p["probability"] is None else p["probability"] * (1 - TRUSTED_EXIF_PROBABILITY)}
            for p in predictions[: top_k - 1]]
    return [first] + rest
