"""The text branch ("ocr"): text read from the photo by a ``geocli.ocr`` engine -> sentence embedding,
with an explicit "no text" state.

Two stages with different costs, kept separable so they can be cached:
``read_texts(images)`` (OCR, slow: ~0.3 s per photo on CPU) -> strings; ``embed_texts(texts)``
(fast) -> raw embeddings + ``has_text``. ``forward`` takes either stage's output (or images) and
returns (B, out_dim) where images without text get the learned ``no_text`` vector, never zeros.
The sentence model is frozen unless ``trainable`` says otherwise; ``no_text`` always trains.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Sequence, Union

import torch
from PIL import Image
from torch import nn

from geocli.errors import UsageError
from geocli.ocr import OCR_ENGINES, TextBox, boxes_to_text, build_ocr_engine, rescale_boxes
from geocli.ocr.base import MIN_BOX_HEIGHT, MIN_CONFIDENCE
from geocli.ocr.cache import OCRCache, cached_reads, engine_key
from geocli.ocr.embed import TextEmbedder
from geocli.ocr.engines import engine_for_device
from geocli.branches.base import BRANCHES, Branch, Preprocess, Trainable

OCRInput = Union[Sequence[str], Sequence[Image.Image], dict]


@dataclass
class OCROutput:
    emb: torch.Tensor  # (B, out_dim), no-text rows already replaced by the no-text vector
    has_text: torch.Tensor  # (B,) bool
    texts: list[str]
    boxes: list[list[TextBox]] = field(default_factory=list)  # the lines read, per image


class CapLongSide:
    """Shrink an image so its longest side is at most ``max_side`` (OCR engines take PIL images)."""

    def __init__(self, max_side: int) -> None:
        self.max_side = max_side

    def __call__(self, image: Image.Image) -> Image.Image:
        scale = self.max_side / max(image.size)
        if scale >= 1:
            return image
        return image.resize((round(image.width * scale), round(image.height * scale)), Image.BICUBIC)


@BRANCHES.register("ocr")
class OCRBranch(Branch):
    """OCR engine + text embedder; ``encode_images(images) -> OCROutput(emb, has_text, texts)``."""

    cache_only = True  # reading text is far too slow to repeat every epoch
    runs_on_cache = True  # so that the "no text" vector trains
    reads_text = True

    @classmethod
    def train_options(cls, cfg, paired: bool, options: dict, settings: dict) -> dict:
        return {"trainable": "freeze"}

    @staticmethod
    def cache_sample(emb: torch.Tensor, has_text) -> dict:
        """One cache row as the branch's input: the sentence embedding and whether there was text."""
        return {"text_emb": emb, "has_text": torch.as_tensor(bool(has_text))}

    def __init__(
        self,
        engine: str = "rapidocr",
        engine_options: dict[str, Any] | None = None,
        text_model: str | None = None,
        min_confidence: float = MIN_CONFIDENCE,
        min_box_height: float = MIN_BOX_HEIGHT,
        max_side: int = 1280,
        max_chars: int = 512,
        trainable: Trainable = "freeze",
    ) -> None:
        super().__init__()
        self._config = dict(
            engine=engine, engine_options=dict(engine_options or {}), text_model=text_model,
            min_confidence=min_confidence, min_box_height=min_box_height, max_side=max_side,
            max_chars=max_chars, trainable=trainable,
        )
        self._engine = None  # built on first use: training from cached texts never needs it
        self.ocr_cache: OCRCache | None = None
        self._cache_root: str | None = None
        self.engine_name = engine
        self.embedder = TextEmbedder(text_model)
        self.text_model = self.embedder.model  # registered so .to(device) moves it
        self.out_dim = self.embedder.dim
        self.no_text = nn.Parameter(self._no_text_init(self.out_dim))
        self.preprocess = Preprocess(image_size=max_side, mean=(0.0,) * 3, std=(1.0,) * 3, interpolation="bicubic")
        self.set_trainable(trainable)

    @staticmethod
    def _no_text_init(dim: int) -> torch.Tensor:
        """A fixed random unit vector: as far from any text as a sentence embedding gets, then learned."""
        gen = torch.Generator().manual_seed(0)
        vec = torch.randn(dim, generator=gen)
        return vec / vec.norm()

    def engine_options(self) -> dict:
        """What the engine is built with: the configured ``engine_options`` (when the configured
        engine reads) and the branch's box filters."""
        own = self.engine_name == self._config["engine"]  # engine_options belong to the configured engine
        opts = dict(self._config["engine_options"]) if own else {}
        opts.setdefault("min_confidence", self._config["min_confidence"])
        opts.setdefault("min_box_height", self._config["min_box_height"])
        return opts

    def engine_plan(self) -> tuple[str, str | None]:
        """(the engine that reads on this branch's device, a notice when it differs or stays on the CPU)."""
        return engine_for_device(self.engine_name, str(self.device))

    @property
    def engine(self):
        """The OCR engine, built on first use on the branch's device: with CUDA, OCR runs there too
        (``engine_for_device`` may switch RapidOCR to EasyOCR when onnxruntime has no CUDA provider)."""
        if self._engine is None:
            name, _ = self.engine_plan()
            opts = self.engine_options() if name == self.engine_name else {
                k: v for k, v in self.engine_options().items() if k in ("min_confidence", "min_box_height")}
            if "device" in inspect.signature(OCR_ENGINES.get(name).__init__).parameters:
                opts.setdefault("device", str(self.device))
            self._engine = build_ocr_engine(name, **opts)
        return self._engine

    def use_engine(self, name: str) -> None:
        """Read with another OCR engine (same box filters). The text model, and so what the
        embeddings mean, stays: a trained model may read with any engine."""
        self.engine_name, self._engine = name, None
        if self.ocr_cache is not None:
            self.use_ocr_cache(self._cache_root)

    def use_ocr_cache(self, root: str | None = None) -> None:
        """Keep what OCR reads on disk by image content (``geocli.ocr.cache``): re-runs read no text twice."""
        self._cache_root = root
        self.ocr_cache = OCRCache(engine_key(self.engine_name, self.engine_options()), root)

    def transform(self, train: bool = False) -> CapLongSide:
        """OCR takes PIL images: only the longest side is capped (no crop, no flips, no normalising)."""
        return CapLongSide(self._config["max_side"])

    def backbone(self) -> nn.Module:
        return self.text_model

    def block_list(self) -> Sequence[nn.Module]:
        encoder = getattr(getattr(self.text_model[0], "auto_model", None), "encoder", None)
        if encoder is None or not hasattr(encoder, "layer"):
            return super().block_list()
        return list(encoder.layer)

    def read_boxes(self, images: Sequence[Image.Image]) -> list[list[TextBox]]:
        """The lines each image shows (after the engine's filters), all images read as one batch;
        boxes in each image's own pixel coordinates (OCR reads a copy capped at ``max_side``)."""
        cap = self.transform()
        capped = [cap(img) for img in images]
        if self.ocr_cache is None:
            boxes = self.engine.read_batch(capped)
        else:
            boxes = cached_reads(self.ocr_cache, capped, self.engine.read_batch)
        return [rescale_boxes(b, small.size, img.size) for b, small, img in zip(boxes, capped, images)]

    def photo_input(self, images: Sequence[Image.Image], read: bool = True) -> tuple[dict, list[list[TextBox]]]:
        """The branch's input for ``images`` (``{"text_emb", "has_text"}``) and the lines read in each
        (none when not ``read``: every photo is then a photo without text)."""
        boxes = self.read_boxes(images) if read else [[] for _ in images]
        emb, has_text = self.embed_texts(self.boxes_to_texts(boxes))
        return {"text_emb": emb, "has_text": has_text}, boxes

    def boxes_to_texts(self, boxes: Sequence[Sequence[TextBox]]) -> list[str]:
        """Each image's text in reading order, cut at ``max_chars`` ('' when nothing was read)."""
        return [boxes_to_text(b)[: self._config["max_chars"]] for b in boxes]

    def read_texts(self, images: Sequence[Image.Image]) -> list[str]:
        """The text of each image in reading order ('' when none survives the filters)."""
        return self.boxes_to_texts(self.read_boxes(images))

    def embed_texts(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw sentence embeddings (B, out_dim) and ``has_text`` (B,); rows without text are zeros here
        and must go through ``forward`` (or ``apply_no_text``) before use."""
        has_text = torch.tensor([bool(t and t.strip()) for t in texts], dtype=torch.bool, device=self.device)
        emb = torch.zeros(len(texts), self.out_dim, device=self.device)
        idx = [i for i, flag in enumerate(has_text.tolist()) if flag]
        if idx:
            emb[idx] = self.embedder.embed([texts[i] for i in idx]).to(self.device)
        return emb, has_text

    def apply_no_text(self, emb: torch.Tensor, has_text: torch.Tensor) -> torch.Tensor:
        return torch.where(has_text.to(emb.device).unsqueeze(-1), emb, self.no_text.to(emb.dtype).expand_as(emb))

    def forward(self, batch: OCRInput) -> torch.Tensor:
        """(B, out_dim) from cached ``{"text_emb", "has_text"}``, from strings, or from PIL images."""
        if isinstance(batch, dict):
            return self.apply_no_text(batch["text_emb"].to(self.device), batch["has_text"])
        if isinstance(batch, torch.Tensor):
            raise UsageError("the OCR branch takes texts, images or {'text_emb', 'has_text'}, not a pixel tensor")
        items = list(batch)
        texts = self.read_texts(items) if items and isinstance(items[0], Image.Image) else items
        return self.apply_no_text(*self.embed_texts(texts))

    @torch.no_grad()
    def encode_images(self, images: Sequence[Image.Image], batch_size: int = 32) -> OCROutput:  # type: ignore[override]
        """OCR + embed: ``OCROutput(emb, has_text, texts, boxes)``; ``emb`` already carries the no-text
        vector. All images are read as one batch (``batch_size`` is for the pixel branches)."""
        boxes = self.read_boxes(images)
        texts = self.boxes_to_texts(boxes)
        emb, has_text = self.embed_texts(texts)
        return OCROutput(self.apply_no_text(emb, has_text), has_text, texts, boxes)
