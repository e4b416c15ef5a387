"""PP-OCR (the ONNX models shipped in the rapidocr wheel) run photo-batch-wise by geocli.

Why not call ``RapidOCR()`` per photo: it detects every photo with its short side scaled to 736 px
(a 640x480 phone photo is upscaled 2.4x in pixels before detection) and recognises each photo's
lines in batches of six. Here:

* detection runs at a resolution chosen per photo (``DetectionSize``): photos are not upscaled
  beyond ``max_upscale``, large ones are capped at ``max_side``;
* optionally (``coarse_scale``, off by default) a coarse pass at e.g. the photo's own resolution
  finds where text may be (``geocli.ocr.regions``) and only those parts are detected at full
  size: 1.7x faster on Street View photos at the same recall, but on phone photos the coarse
  pass misses half the small text (see README, OCR speed);
* the text lines of all photos of a batch are recognised together, sorted by width so little
  padding is computed, in large batches;
* the sessions run the models after ``graph_rewrite``'s exact rewrites (1.4-2.5x faster on CPU),
  with ``onnx_runtime``'s options and the CUDA provider on ``device="cuda"``.

Only rapidocr's DB box post-processing and CTC decoding are reused (``DBPostProcess``,
``CTCLabelDecode``); the resizing, cropping and batching are geocli's.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np

from geocli.ocr.onnx_runtime import OnnxModel
from geocli.ocr.regions import text_regions

REC_HEIGHT, REC_MIN_WIDTH = 48, 320  # the recogniser's input height; narrower batches are padded to this
MIN_RATIO, WIDTH_SPREAD = REC_MIN_WIDTH / REC_HEIGHT, 1.5
DET_THRESH, BOX_THRESH, UNCLIP = 0.3, 0.5, 1.6  # PP-OCR's detection defaults


def model_dir() -> Path:
    import rapidocr_onnxruntime

    return Path(rapidocr_onnxruntime.__file__).parent / "models"


@dataclass(frozen=True)
class DetectionSize:
    """How large a photo is detected at: a short side below ``short_side`` is upscaled to it (by at
    most ``max_upscale``; PP-OCR's detector misses much small text at a phone photo's own 480 px),
    a larger photo keeps its resolution up to a long side of ``max_side``; sides are multiples of 32."""

    short_side: int = 736
    max_upscale: float = 2.5
    max_side: int = 2000

    def scale(self, width: int, height: int) -> float:
        scale = min(max(self.short_side / min(width, height), 1.0), self.max_upscale)
        return min(scale, self.max_side / max(width, height))

    def shape(self, width: int, height: int, scale: float | None = None) -> tuple[int, int]:
        """(height, width) of the detector input."""
        s = self.scale(width, height) if scale is None else scale
        return max(32, round(height * s / 32) * 32), max(32, round(width * s / 32) * 32)


def normalise(bgr: np.ndarray) -> np.ndarray:
    """uint8 HWC -> float32 CHW in [-1, 1] (PP-OCR's mean 0.5, std 0.5)."""
    return (bgr.astype(np.float32) * (2 / 255.0) - 1.0).transpose(2, 0, 1)


def order_quad(points: np.ndarray) -> np.ndarray:
    """Four points clockwise from the top-left."""
    by_x = points[np.argsort(points[:, 0])]
    left, right = by_x[:2], by_x[2:]
    tl, bl = left[np.argsort(left[:, 1])]
    tr, br = right[np.argsort(right[:, 1])]
    return np.array([tl, tr, br, bl], dtype=np.float32)


def crop_line(bgr: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """The text line inside ``quad``, rectified; tall crops are turned to lie horizontally."""
    width = int(max(np.linalg.norm(quad[0] - quad[1]), np.linalg.norm(quad[2] - quad[3])))
    height = int(max(np.linalg.norm(quad[0] - quad[3]), np.linalg.norm(quad[1] - quad[2])))
    target = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(quad, target)
    crop = cv2.warpPerspective(bgr, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE, flags=cv2.INTER_CUBIC)
    return np.rot90(crop) if crop.shape[0] >= 1.5 * crop.shape[1] else crop


class PPOCR:
    """PP-OCR detection + recognition over batches of BGR photos: ``read(bgrs) -> [[(quad, text, score)]]``."""

    def __init__(self, size: DetectionSize = DetectionSize(), coarse_scale: float | None = None,
                 rec_batch: int = 32, device: str | None = None, threads: int | None = None,
                 spinning: bool = False, det_model: str | None = None, rec_model: str | None = None) -> None:
        from rapidocr_onnxruntime.ch_ppocr_det.utils import DBPostProcess
        from rapidocr_onnxruntime.ch_ppocr_rec.utils import CTCLabelDecode

        models = model_dir()
        self.det = OnnxModel(det_model or models / "ch_PP-OCRv4_det_infer.onnx", device, threads, spinning)
        self.rec = OnnxModel(rec_model or models / "ch_PP-OCRv4_rec_infer.onnx", device, threads, spinning)
        self.boxes_of = DBPostProcess(thresh=DET_THRESH, box_thresh=BOX_THRESH, unclip_ratio=UNCLIP,
                                      use_dilation=True, score_mode="fast")
        self.decode = CTCLabelDecode(character=(self.rec.metadata("character") or "").splitlines())
        self.size, self.coarse_scale, self.rec_batch = size, coarse_scale, rec_batch

    @property
    def provider(self) -> str:
        return self.det.provider

    # --- detection -----------------------------------------------------------------------------
    def _probability(self, bgr: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        resized = cv2.resize(bgr, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
        return self.det(normalise(resized)[None])

    def detect(self, bgr: np.ndarray) -> list[np.ndarray]:
        """Text-line quadrilaterals in the photo's own pixel coordinates. With ``coarse_scale``, a
        pass at that scale first finds where text may be (``text_regions``) and only those parts
        are detected at full size."""
        h, w = bgr.shape[:2]
        fine = self.size.scale(w, h)
        if not self.coarse_scale or fine <= 1.1 * self.coarse_scale:
            return self._detect_at(bgr, fine)
        prob = self._probability(bgr, self.size.shape(w, h, self.coarse_scale))
        regions = text_regions(prob[0, 0], (h, w))
        if regions is None:
            return self._detect_at(bgr, fine)
        offset = lambda x0, y0: np.array([x0, y0], dtype=np.float32)  # noqa: E731
        return [q + offset(x0, y0) for x0, y0, x1, y1 in regions
                for q in self._detect_at(bgr[y0:y1, x0:x1], fine, padded=True)]

    def _padded_probability(self, bgr: np.ndarray, scale: float) -> np.ndarray:
        """The map of a region at exactly ``scale``: zero-padded to multiples of 32, not stretched
        (a small region rounded to 32 px would be distorted), the padding cut off again."""
        h, w = max(1, round(bgr.shape[0] * scale)), max(1, round(bgr.shape[1] * scale))
        canvas = np.zeros((3, -(-h // 32) * 32, -(-w // 32) * 32), dtype=np.float32)
        canvas[:, :h, :w] = normalise(cv2.resize(bgr, (w, h), interpolation=cv2.INTER_LINEAR))
        return self.det(canvas[None])[:, :, :h, :w]

    def _detect_at(self, bgr: np.ndarray, scale: float, padded: bool = False) -> list[np.ndarray]:
        h, w = bgr.shape[:2]
        bgr = np.ascontiguousarray(bgr)
        prob = self._padded_probability(bgr, scale) if padded else self._probability(bgr, self.size.shape(w, h, scale))
        boxes, _ = self.boxes_of(prob, (h, w))
        quads = []
        for box in boxes:
            quad = order_quad(np.asarray(box, dtype=np.float32))
            quad[:, 0] = np.clip(np.round(quad[:, 0]), 0, w - 1)
            quad[:, 1] = np.clip(np.round(quad[:, 1]), 0, h - 1)
            if np.linalg.norm(quad[0] - quad[1]) > 3 and np.linalg.norm(quad[0] - quad[3]) > 3:
                quads.append(quad)
        return quads

    # --- recognition ---------------------------------------------------------------------------
    def _rec_input(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Crops at the recogniser's height, left-aligned and zero-padded to the widest of them."""
        widths = [max(1, math.ceil(REC_HEIGHT * c.shape[1] / max(c.shape[0], 1))) for c in crops]
        batch = np.zeros((len(crops), 3, REC_HEIGHT, max(REC_MIN_WIDTH, max(widths))), dtype=np.float32)
        for i, (crop, width) in enumerate(zip(crops, widths)):
            batch[i, :, :, :width] = normalise(cv2.resize(crop, (width, REC_HEIGHT)))
        return batch

    def batches(self, crops: Sequence[np.ndarray]) -> list[list[int]]:
        """Crop indices grouped for recognition: sorted by aspect ratio, a new batch when it is full or
        a crop is ``WIDTH_SPREAD`` times wider than the batch's first (padding would cost more than a run)."""
        ratio = [c.shape[1] / max(c.shape[0], 1) for c in crops]
        groups: list[list[int]] = []
        for i in sorted(range(len(crops)), key=ratio.__getitem__):
            head = groups[-1][0] if groups else None
            if head is None or len(groups[-1]) == self.rec_batch or ratio[i] > WIDTH_SPREAD * max(ratio[head], MIN_RATIO):
                groups.append([])
            groups[-1].append(i)
        return groups

    def recognise(self, crops: Sequence[np.ndarray]) -> list[tuple[str, float]]:
        """(text, confidence) per crop, the crops of all photos batched by similar width."""
        out: list[tuple[str, float]] = [("", 0.0)] * len(crops)
        for group in self.batches(crops):
            decoded = self.decode(self.rec(self._rec_input([crops[i] for i in group])))
            for i, (text, score) in zip(group, decoded):
                out[i] = (text, float(score))
        return out

    def read(self, bgrs: Sequence[np.ndarray], keep_quad: Callable[[np.ndarray], bool] | None = None,
             ) -> list[list[tuple[np.ndarray, str, float]]]:
        """Each photo's lines with text and confidence; ``keep_quad`` drops boxes before recognition."""
        quads = [[q for q in self.detect(bgr) if keep_quad is None or keep_quad(q)] for bgr in bgrs]
        crops = [crop_line(bgr, q) for bgr, qs in zip(bgrs, quads) for q in qs]
        texts = iter(self.recognise(crops) if crops else [])
        return [[(q, *next(texts)) for q in qs] for qs in quads]
