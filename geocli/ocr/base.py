"""OCR engines behind one interface: ``read(image) -> list[TextBox]``, registered in ``OCR_ENGINES``.

Engines import their OCR library lazily, in their constructor, so ``import geocli.ocr`` is cheap.
Every engine applies the same filters: boxes below ``min_confidence`` or shorter than
``min_box_height`` pixels are dropped (tiny text is mostly noise on photos and costs recognition time;
5 px keeps the small shop-sign lines PP-OCR reads with confidence >= 0.8 in 640x480 phone photos,
which 8 px dropped: see README, OCR speed).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Sequence

from PIL import Image

from geocli.registry import Registry

OCR_ENGINES: Registry = Registry("OCR engine")
MIN_CONFIDENCE, MIN_BOX_HEIGHT = 0.5, 5.0  # every engine's default box filters
OCR_MAX_SIDE = 1600  # larger photos are shrunk for OCR: signs stay legible, time stays bounded


@dataclass(frozen=True)
class TextBox:
    """One piece of text: its quadrilateral (4 (x, y) points, clockwise from top-left), text, confidence."""

    box: tuple[tuple[float, float], ...]
    text: str
    confidence: float

    @property
    def height(self) -> float:
        ys = [p[1] for p in self.box]
        return max(ys) - min(ys)

    @property
    def top_left(self) -> tuple[float, float]:
        return min(p[0] for p in self.box), min(p[1] for p in self.box)


def make_box(points: Sequence[Sequence[float]], text: str, confidence: float) -> TextBox:
    return TextBox(tuple((float(x), float(y)) for x, y in points), str(text).strip(), float(confidence))


def reading_order(boxes: Sequence[TextBox]) -> list[TextBox]:
    """Top-to-bottom lines (boxes whose tops are within half a box height share a line), left to right."""
    rows: list[list[TextBox]] = []
    for box in sorted(boxes, key=lambda b: b.top_left[1]):
        if rows and box.top_left[1] - rows[-1][0].top_left[1] < 0.5 * max(rows[-1][0].height, 1.0):
            rows[-1].append(box)
        else:
            rows.append([box])
    return [b for row in rows for b in sorted(row, key=lambda b: b.top_left[0])]


def text_records(boxes: Sequence[TextBox], size: tuple[int, int] | None = None) -> list[dict]:
    """What a prediction record shows of the text read: each box's text and confidence, and (given
    the photo's ``size``) its quadrilateral as fractions of the photo's width and height, so a viewer
    can draw it over the photo at any scale."""
    records = []
    for b in boxes:
        record = {"text": b.text, "confidence": round(float(b.confidence), 4)}
        if size is not None:
            record["box"] = [[round(x / size[0], 4), round(y / size[1], 4)] for x, y in b.box]
        records.append(record)
    return records


def rescale_boxes(boxes: Sequence[TextBox], read: tuple[int, int], photo: tuple[int, int]) -> list[TextBox]:
    """Boxes read on a resized copy (``read`` size) in the pixel coordinates of the ``photo``."""
    if tuple(read) == tuple(photo):
        return list(boxes)
    sx, sy = photo[0] / read[0], photo[1] / read[1]
    return [TextBox(tuple((x * sx, y * sy) for x, y in b.box), b.text, b.confidence) for b in boxes]


def boxes_to_text(boxes: Sequence[TextBox], sep: str = " ") -> str:
    """All text of an image as one string, in reading order."""
    return sep.join(b.text for b in reading_order(boxes) if b.text)


class OCREngine(ABC):
    """Base of the engines. ``read`` returns the filtered boxes of one RGB image."""

    name: str = ""

    def __init__(self, min_confidence: float = MIN_CONFIDENCE, min_box_height: float = MIN_BOX_HEIGHT) -> None:
        self.min_confidence = min_confidence
        self.min_box_height = min_box_height

    @abstractmethod
    def _read(self, image: Image.Image) -> list[TextBox]:
        """All boxes the engine finds, unfiltered."""

    def keep(self, box: TextBox) -> bool:
        return bool(box.text) and box.confidence >= self.min_confidence and box.height >= self.min_box_height

    def read(self, image: Image.Image) -> list[TextBox]:
        return [b for b in self._read(image.convert("RGB")) if self.keep(b)]

    def read_batch(self, images: Sequence[Image.Image]) -> list[list[TextBox]]:
        """Boxes for each image (engines with a native batch path override this)."""
        return [self.read(img) for img in images]


def build_ocr_engine(name: str = "rapidocr", **options) -> OCREngine:
    """An engine by registered name (``rapidocr``, ``easyocr``, ``paddleocr``; the package registers
    them on import) with its options."""
    return OCR_ENGINES.get(name)(**options)


def read_text(reader, images: Sequence[Image.Image]) -> list[list]:
    """Each photo's text boxes as ``reader`` (an OCR engine, or None: no text) reads them from the
    photo shrunk for OCR, in the photo's own pixel coordinates."""
    if reader is None:
        return [[] for _ in images]
    shrunk = [shrink_for_ocr(img) for img in images]
    return [rescale_boxes(bx, small.size, img.size)
            for bx, small, img in zip(reader.read_batch(shrunk), shrunk, images)]


def shrink_for_ocr(image: Image.Image, max_side: int = OCR_MAX_SIDE) -> Image.Image:
    """The photo at most ``max_side`` pixels wide and high, as OCR reads it."""
    scale = max_side / max(image.size)
    if scale >= 1:
        return image
    return image.resize((round(image.width * scale), round(image.height * scale)), Image.BILINEAR)
