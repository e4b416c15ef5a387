"""The default geolocator behind ``geocli predict`` when no trained model is given.

It needs no training. Its visual model is the strongest one whose weights are here: GeoCLIP
(``geocli.predict.geoclip``; CLIP ViT-L/14 in the Hugging Face cache or ``clip_weights`` a local
CLIP folder), whose gallery distribution the evidence then reweights as a likelihood
(``geocli.evidence.fuse``); else a zero-shot CLIP geolocator (open_clip; prompts over countries and
the largest cities of the GeoNames gazetteer) ranked together with the evidence read from the photo
itself (``geocli.evidence.combine``): EXIF GPS, place names read by OCR, writing systems,
country-code TLDs, phone prefixes and street-type words. ``evidence=False`` leaves the clues out. When CLIP weights cannot be had (offline and not cached, no ``clip_weights`` file) the visual
branch is off and the evidence alone decides; ``status_lines()`` then says so in one line.

API::

    geo = DefaultGeolocator(clip_model="ViT-B-32", clip_pretrained="laion2b_s34b_b79k",
                            clip_weights=None, ocr_engine="rapidocr", no_ocr=False,
                            trust_exif=False, device=None)
    results = geo.locate(images, paths, top_k=5)   # one LocateResult per image, in order
    for line in geo.status_lines(): print(line, file=sys.stderr)

Each result is a ``geocli.predict.record.LocateResult`` with ``scripts``, ``evidence`` and
``reason`` and a ``confidence_radius_km``; guesses come from exif, ocr:gazetteer, ocr:hints,
ocr:script or clip, and the scene
(indoor / natural / urban) from CLIP.

Probabilities sum to at most 1; the remainder (stated in ``evidence``) is "unknown". A photo
with no evidence gets no predictions and a reason, never a made-up location.
``clip_model=None`` turns the visual branch off; ``clip_pretrained=None`` with ``clip_model_cfg``
builds a randomly initialised CLIP (for tests).
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Sequence

from PIL import Image

from geocli.config import DEFAULT_CLIP_MODEL, DEFAULT_CLIP_PRETRAINED
from geocli.errors import GeocliError
from geocli.evidence import combine
from geocli.evidence.exif import ExifInfo, read_exif
from geocli.evidence.fuse import photo_evidence
from geocli.evidence.radius import evidence_radius_km
from geocli.evidence.text_hints import text_evidence
from geocli.ocr import read_text, text_records
from geocli.predict.record import LocateResult

if TYPE_CHECKING:  # torch and open_clip load only when the visual branch is on
    from geocli.predict.zero_shot import ZeroShotCLIP

MAX_MATCH_LINES, MIN_MATCH_LINE_SCORE = 5, 0.03


class DefaultGeolocator:
    """Zero-shot CLIP + EXIF + OCR evidence; see the module docstring for the output format."""

    def __init__(self, clip_model: str | None = DEFAULT_CLIP_MODEL, clip_pretrained: str | None = DEFAULT_CLIP_PRETRAINED,
                 clip_weights: str | None = None, ocr_engine: str = "rapidocr", no_ocr: bool = False,
                 trust_exif: bool = False, device: str | None = None, clip_model_cfg: dict | None = None,
                 clip_cities: int = 1000, evidence: bool = True, geoclip: bool | None = None,
                 precision: str = "auto") -> None:
        self.trust_exif, self.evidence, self.precision = trust_exif, evidence, precision
        self._notices: list[str] = []
        self.geoclip = self._build_geoclip(geoclip, clip_model, clip_weights, device, no_ocr, ocr_engine)
        self.ocr = None if no_ocr or self.geoclip else self._build_ocr(ocr_engine)
        self.ocr_name = ocr_engine
        self.clip = None if self.geoclip else self._build_clip(clip_model, clip_pretrained, clip_weights,
                                                               clip_model_cfg, device, clip_cities)

    def _build_geoclip(self, wanted: bool | None, clip_model, clip_weights, device, no_ocr, ocr_engine):
        """GeoCLIP when asked, or (``wanted`` None) when its weights are here: the strongest visual model."""
        if wanted is False or clip_model is None:
            return None
        if wanted is None and not _geoclip_here(clip_weights):
            return None
        from geocli.predict.geoclip import geoclip_geolocator

        try:
            return geoclip_geolocator(clip_weights if clip_weights and os.path.isdir(clip_weights) else None,
                                      device, evidence=self.evidence, no_ocr=no_ocr, trust_exif=self.trust_exif,
                                      ocr_engine=ocr_engine, precision=self.precision)
        except GeocliError as exc:
            self._notices.append(f"GeoCLIP off ({_short(exc)}); trying zero-shot CLIP")
            return None

    def _build_ocr(self, name: str):
        from geocli.ocr import build_ocr_engine

        try:
            return build_ocr_engine(name)
        except GeocliError as exc:
            self._notices.append(f"OCR off: {exc}")
            return None

    def _build_clip(self, model, pretrained, weights, model_cfg, device, cities) -> "ZeroShotCLIP | None":
        if model is None:
            self._notices.append("visual branch off (no CLIP model chosen); predicting from EXIF and text only")
            return None
        if weights:
            missing = None if os.path.isfile(weights) else f"weights file not found: {weights}"
        else:
            missing = _missing_offline(model, pretrained)
        if missing is None:
            from geocli.predict.zero_shot import ZeroShotCLIP

            try:
                return ZeroShotCLIP(model, weights or pretrained, model_cfg=model_cfg, device=device,
                                    n_cities=cities)
            except GeocliError as exc:
                missing = _short(exc)
        self._notices.append(
            f"visual branch off: CLIP weights {model}/{weights or pretrained} cannot be had ({missing}); "
            "predicting from EXIF and text only. To turn it on, connect to the internet once (open_clip "
            "downloads them to its cache) or pass --clip-weights PATH")
        return None

    def status_lines(self) -> list[str]:
        """One-line notices for stderr: which branches are off, and how to turn them on."""
        return (self.geoclip.status_lines() if self.geoclip else []) + list(self._notices)

    # --- evidence per batch -------------------------------------------------------------------
    def _read_text(self, images: Sequence[Image.Image]) -> list[list]:
        return read_text(self.ocr, images)

    def locate(self, images: list[Image.Image], paths: list[str], top_k: int = 5) -> list[LocateResult]:
        """One result per image (see the module docstring); ``paths`` give EXIF (may be None)."""
        if len(images) != len(paths):
            raise ValueError(f"{len(images)} images but {len(paths)} paths")
        if self.geoclip is not None:
            return [{**rec, "scripts": _scripts(rec["text"])} for rec in self.geoclip.locate(images, paths, top_k)]
        boxes = self._read_text(images)
        visual = self.clip.predict(images) if self.clip is not None and images else [None] * len(images)
        return [self._locate_one(img, path, bx, vis, top_k)
                for img, path, bx, vis in zip(images, paths, boxes, visual)]

    def _locate_one(self, image: Image.Image, path: str | None, boxes: list, visual: dict | None,
                    top_k: int) -> LocateResult:
        exif = read_exif(path, image)
        ev = photo_evidence(exif.gps, boxes, self.trust_exif) if self.evidence else combine.Evidence()
        if visual is not None:
            ev.clip_countries, ev.clip_places = visual["countries"], visual["places"]
        predictions, unknown = combine.rank(ev, top_k)
        radius = evidence_radius_km(combine.ranked(ev), unknown)
        lines = self._evidence_lines(exif, boxes, ev, visual)
        if predictions:
            lines.append(f"probability left to 'unknown': {unknown:.2f}")
        return {
            "exif": exif.to_dict(), "predictions": predictions, "confidence_radius_km": radius,
            "scene": visual["scene"] if visual is not None else None,
            "text": text_records(boxes, image.size),
            "scripts": [{"script": s, "share": round(share, 4)} for s, share in ev.scripts],
            "evidence": lines, "reason": None if predictions else self._reason(exif, boxes, visual),
        }

    def _evidence_lines(self, exif: ExifInfo, boxes: list, ev: combine.Evidence, visual: dict | None) -> list[str]:
        lines = exif.lines()
        if self.ocr is not None:
            lines += text_evidence(self.ocr_name, len(boxes), ev.scripts, ev.hints)
        lines += [m.describe() for m in ev.matches[:MAX_MATCH_LINES] if m.score >= MIN_MATCH_LINE_SCORE]
        if visual is not None:
            top = sorted(visual["countries"].items(), key=lambda kv: -kv[1])[:3]
            lines.append("CLIP countries: " + ", ".join(f"{c} {p:.2f}" for c, p in top))
        return lines

    def _reason(self, exif: ExifInfo, boxes: list, visual: dict | None) -> str:
        parts = ["no EXIF GPS"]
        if self.ocr is None:
            parts.append("OCR off")
        else:
            parts.append("no legible text" if not boxes else "the text names no place and hints at no country")
        parts.append("visual branch off (no CLIP weights)" if self.clip is None else "CLIP not confident")
        return "no location evidence: " + "; ".join(parts)


def _short(exc: Exception) -> str:
    return " ".join(str(exc).split(". ")[0].split())[:160]


def _missing_offline(model: str, pretrained: str | None) -> str | None:
    """Why a hub tag cannot load, decided without building the model: offline and not cached."""
    from geocli.weights.hub import is_offline

    if not pretrained or not is_offline():
        return None
    try:
        from geocli.weights.availability import open_clip_weights

        status = open_clip_weights(model, pretrained)
    except Exception:  # availability is advisory; loading will tell
        return None
    return None if status.available else "offline, and not in the local cache"


def _geoclip_here(clip_weights: str | None) -> bool:
    """GeoCLIP can run without a download: a local CLIP folder, or ViT-L/14 in the Hugging Face cache."""
    if clip_weights:
        return os.path.isdir(clip_weights)
    from geocli.predict.geoclip import geoclip_weights

    try:
        return geoclip_weights().available
    except Exception:  # availability is advisory
        return False


def _scripts(text: list[dict]) -> list[dict]:
    from geocli.evidence.scripts import detect_scripts

    return [{"script": s, "share": round(share, 4)} for s, share in detect_scripts(t["text"] for t in text)]
