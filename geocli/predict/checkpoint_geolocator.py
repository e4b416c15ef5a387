"""Prediction with a ``GeoModel``: a checkpoint folder written by ``geocli train``, or a built-in
model assembled in memory (GeoCLIP).

The folder alone rebuilds a checkpoint model (architecture, label spaces, preprocessing; no
download). Per batch of photos: the inputs every branch needs (``ModelInputs``), one forward pass
(five views averaged when the checkpoint asks for five-crop TTA), then the records ``geocli
predict`` prints. Beside the model's guesses each record carries the EXIF facts and what OCR read
with the clues in it (scripts, TLDs, phone prefixes) as evidence lines.

With ``evidence`` on, those clues also rank: they act as a likelihood on the model's whole
distribution (``geocli.evidence.fuse``: posterior = model x likelihood, renormalised). The text
comes from the model's own OCR branch, or from an OCR engine when the model has none (``no_ocr``:
EXIF only). EXIF GPS is shown, and with ``trust_exif`` ranked first.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from PIL import Image

from geocli.runtime import resolve_device
from geocli.config import TTA_MODES
from geocli.errors import GeocliError, UsageError
from geocli.evidence.combine import TRUSTED_EXIF_PROBABILITY
from geocli.evidence.exif import ExifInfo, read_exif
from geocli.evidence.scripts import detect_scripts
from geocli.evidence.text_hints import hints_in_texts, text_evidence
from geocli.heads.locations import average_views, to_records
from geocli.ocr import read_text, text_records
from geocli.predict.model_inputs import ModelBatch, ModelInputs
from geocli.predict.record import Guess, LocateResult, guess
from geocli.runtime import cpu_has_bf16, encoder_precision, resolve_precision

#: Options of the default geolocator that a checkpoint fixes for itself.
CHECKPOINT_FIXED = ("clip_model", "clip_pretrained", "clip_weights")
KEEP_CHECKPOINT_TTA = "checkpoint"


class ModelGeolocator:
    """``locate(images, paths, top_k)`` with a built ``GeoModel``; see the module docstring.

    ``tta``: "checkpoint" (what the model's config says), None or "none" (centre crop) or "five-crop".
    ``cache``: frozen pixel branches read their vectors from the embedding cache (single view).
    ``evidence``: apply the photo's clues to the model's distribution (default on).
    ``precision``: "auto", "fp32" or "bf16" (``geocli.runtime``: image towers in bf16, heads in fp32).
    """

    def __init__(self, model, label: str, device: str | None = None, no_ocr: bool = False,
                 trust_exif: bool = False, tta: str | None = KEEP_CHECKPOINT_TTA, cache: bool = True,
                 cache_dir: str | None = None, ocr_engine: str | None = None, evidence: bool = True,
                 precision: str = "auto") -> None:
        from geocli.model import training_view

        self.model, self.label, self.trust_exif, self.no_ocr = model, label, trust_exif, no_ocr
        self.device = resolve_device(device)
        self.notices: list[str] = getattr(self, "notices", [])
        self.precision = resolve_precision(self.device, precision or "auto")
        if self.precision == "bf16" and self.device.type == "cpu" and not cpu_has_bf16():
            self.notices.append("bf16 asked, but this CPU has no bf16 matrix units: expect it slower than fp32")
        self.tta = self.model.config.predict.tta if tta == KEEP_CHECKPOINT_TTA else (None if tta == "none" else tta)
        if self.tta not in TTA_MODES:
            raise UsageError(f"tta must be one of {list(TTA_MODES)}, not {self.tta!r}")
        self.inputs = ModelInputs(self.model, self.tta, read_text=not no_ocr, cache=cache, cache_dir=cache_dir,
                                  precision=self.precision)
        self._use_ocr_engine(ocr_engine)
        self.cached_model = training_view(self.model, self.inputs.cached)
        self.evidence = evidence
        self.keep_distribution = False  # grouping asks for each photo's whole distribution
        self.reader, self.reader_name = self._evidence_reader(ocr_engine)

    def _use_ocr_engine(self, name: str | None) -> None:
        if name is not None and self.inputs.text_branch is not None:
            self.model.branches[self.inputs.text_branch].use_engine(name)

    def _evidence_reader(self, name: str | None):
        """An OCR engine for the evidence when the model has no OCR branch of its own."""
        if not self.evidence or self.no_ocr:
            return None, None
        if self.inputs.text_branch is not None:
            return None, self.model.branches[self.inputs.text_branch].engine_name
        from geocli.ocr import build_ocr_engine

        name = name or "rapidocr"
        try:
            return build_ocr_engine(name), name
        except GeocliError as exc:
            self.notices.append(f"OCR for evidence off: {exc}")
            return None, None

    def status_lines(self) -> list[str]:
        cfg = self.model.config
        branches = ", ".join(_branch_label(b) for b in cfg.branches if b.enabled)
        heads = ", ".join(h.name for h in cfg.heads)
        lines = [f"model {self.label}: branches {branches}; fusion {cfg.fusion.name}; heads {heads}; "
                 f"{'five-crop TTA' if self.tta else 'centre crop'}; device {self.device} ({self.precision}); "
                 f"evidence {'on' if self.evidence else 'off'}"]
        if self.no_ocr and self.inputs.text_branch is not None:
            lines.append("OCR off (--no-ocr): the OCR branch gets its 'no text' input")
        elif self.inputs.text_branch is not None:
            lines += [n for n in [self.model.branches[self.inputs.text_branch].engine_plan()[1]] if n]
        return lines + self.notices

    @torch.no_grad()
    def locate(self, images: list[Image.Image], paths: Sequence[str | None], top_k: int = 5) -> list[LocateResult]:
        if len(images) != len(paths):
            raise ValueError(f"{len(images)} images but {len(paths)} paths")
        batch = self.inputs.build(images, list(paths))
        boxes = batch.boxes or self._read_text(images)
        exifs = [read_exif(path, image) for image, path in zip(images, paths)]
        likelihoods = [self._likelihood(exif, bx) for exif, bx in zip(exifs, boxes)]
        records = to_records(self.model, self._forward(batch), top_k, evidence=likelihoods,
                             keep_distribution=self.keep_distribution)
        return [self._record(rec, exif, bx, lik, top_k, image.size)
                for rec, exif, bx, lik, image in zip(records, exifs, boxes, likelihoods, images)]

    def _read_text(self, images: list[Image.Image]) -> list[list]:
        return read_text(self.reader, images)

    def _likelihood(self, exif: ExifInfo, boxes: list):
        if not self.evidence:
            return None
        from geocli.evidence.fuse import Likelihood, photo_evidence

        return Likelihood(photo_evidence(exif.gps, boxes))

    def _forward(self, batch: ModelBatch) -> dict:
        model = self.cached_model if batch.from_cache else self.model
        with encoder_precision(self.device, self.precision):
            outputs = model(batch.inputs)
        return average_views(outputs, batch.views)

    def _record(self, rec: dict, exif: ExifInfo, boxes: list, likelihood, top_k: int,
                size: tuple[int, int]) -> LocateResult:
        predictions, radius = rec["predictions"], rec.get("confidence_radius_km")
        if self.trust_exif and exif.gps:  # a GPS tag is a point, trusted at 0.99
            predictions, radius = _exif_first(exif, predictions, top_k), 0.0
        texts = [b.text for b in boxes]
        from geocli.predict.record import DISTRIBUTION_KEY

        kept = {DISTRIBUTION_KEY: rec[DISTRIBUTION_KEY]} if DISTRIBUTION_KEY in rec else {}
        return {
            **kept, "exif": exif.to_dict(), "predictions": predictions, "confidence_radius_km": radius,
            "scene": rec["scene"],
            "text": text_records(boxes, size),
            "country_head": rec["country_head"], "country_agreement": rec["country_agreement"],
            "evidence": (exif.lines() + _exif_distance(exif, rec["predictions"]) + self._text_lines(texts)
                         + _applied(likelihood)),
            "reason": None if predictions else "this model has no location head",
        }

    def _text_lines(self, texts: list[str]) -> list[str]:
        if self.reader_name is None and (self.inputs.text_branch is None or self.no_ocr):
            return []
        engine = self.reader_name or self.model.branches[self.inputs.text_branch].engine_name
        return text_evidence(engine, len(texts), detect_scripts(texts), hints_in_texts(texts))


class CheckpointGeolocator(ModelGeolocator):
    """A ``ModelGeolocator`` for a checkpoint folder from ``geocli train``."""

    def __init__(self, folder: str | Path, device: str | None = None, no_ocr: bool = False,
                 trust_exif: bool = False, tta: str | None = KEEP_CHECKPOINT_TTA, cache: bool = True,
                 cache_dir: str | None = None, ocr_engine: str | None = None, evidence: bool = True,
                 precision: str = "auto", **fixed) -> None:
        from geocli.store.checkpoint import load_checkpoint

        self.folder = Path(folder)
        self.notices = [f"--{k.replace('_', '-')} is ignored with a checkpoint model (its branches are fixed)"
                        for k, v in fixed.items() if k in CHECKPOINT_FIXED and v]
        unknown = sorted(k for k in fixed if k not in CHECKPOINT_FIXED)
        if unknown:
            raise UsageError(f"unknown option(s) for a checkpoint model: {unknown}")
        model = load_checkpoint(self.folder, device=str(resolve_device(device)))
        super().__init__(model, str(self.folder), device, no_ocr, trust_exif, tta, cache, cache_dir, ocr_engine,
                         evidence, precision)


def _applied(likelihood) -> list[str]:
    if likelihood is None or likelihood.empty:
        return []
    return ["evidence applied: the model's distribution times the clues' likelihood, renormalised"]


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
