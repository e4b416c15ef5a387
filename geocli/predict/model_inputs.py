"""Photos -> the batch a ``GeoModel`` takes, the way prediction needs it.

Each enabled branch gets its input from the decoded photos: pixel branches (rgb, clip) their
normalised crops, the seg branch its rendered segmentation map (rendered once per photo, then
cropped like the pixels), the OCR branch its text embedding plus ``has_text``. With five-crop TTA
every photo becomes five adjacent rows; inputs that do not depend on the crop (OCR) are repeated.
Frozen pixel branches outside a TransLocator pair can take their vectors from the embedding cache
(single view only: crops are not cached), keyed exactly as training keys them: by the hash of the
bytes each photo was decoded from (images made elsewhere, without that hash, are always encoded);
with the cache on, what OCR read is kept too (``geocli.ocr.cache``), so a re-run reads no text twice.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from PIL import Image

from geocli.branches.base import Preprocess
from geocli.errors import UsageError
from geocli.store.embedding_cache import EmbeddingCache, branch_cache, image_embeddings
from geocli.images import content_key
from geocli.runtime import encoder_precision


@dataclass
class ModelBatch:
    """The model's inputs for B photos (B * views rows) and what OCR read in each photo."""

    inputs: dict
    views: int
    from_cache: bool = False  # cached branches carry vectors: run the model's cached view
    boxes: list[list] = field(default_factory=list)


class ModelInputs:
    """Builds ``ModelBatch`` es for ``model``; ``cached`` names the branches read from the cache."""

    def __init__(self, model, tta: str | None = None, read_text: bool = True, cache: bool = False,
                 cache_dir: str | None = None, precision: str = "fp32") -> None:
        self.model, self.tta, self.read_text, self.precision = model, tta, read_text, precision
        self.views = 5 if tta == "five-crop" else 1
        self.pixels: dict[str, Callable] = {}
        self.label_maps: dict[str, torch.nn.Module] = {}  # branches that look at rendered maps, not photos
        self.text_branch: str | None = None  # the branch that reads text (OCR)
        for cfg in model.config.branches:
            if cfg.enabled:
                self._add_branch(cfg)
        self.caches = self._caches(cache_dir) if cache and self.views == 1 else {}
        if cache and self.text_branch is not None and read_text:
            model.branches[self.text_branch].use_ocr_cache(cache_dir)  # what OCR read, by image content

    def _add_branch(self, cfg) -> None:
        if cfg.input == "embedding":
            raise UsageError(f"branch {cfg.name!r} of this model takes precomputed embeddings, so the model "
                             "cannot predict from photos")
        module = self.model.branch_module(cfg.name)
        if module.reads_text:  # its input is what it reads in the whole photo, whatever the crop
            self.text_branch = cfg.name
            return
        own_views = getattr(module, "views", None)  # a branch may see pixels its own way (HF CLIP's processor)
        self.pixels[cfg.name] = own_views(self.tta) if own_views else Preprocess.from_dict(cfg.preprocess).views(self.tta)
        if module.reads_label_maps:
            module.segmenter  # built now: missing segmenter weights are refused before any photo is read
            self.label_maps[cfg.name] = module

    def _caches(self, cache_dir: str | None) -> dict[str, EmbeddingCache]:
        """One cache per frozen pixel branch that runs on its own: not in a TransLocator pair, and
        not the patch-token source of a retrieval head (its vectors alone would not do)."""
        from geocli.model import caches_tokens

        out = {}
        for name, module in self.model.branches.items():
            if name in self.pixels and getattr(module, "trainable", None) == "freeze" and not caches_tokens(self.model, name):
                out[name] = branch_cache(self.model.config.branch(name), module, cache_dir, precision=self.precision)
        return out

    @property
    def cached(self) -> set[str]:
        return set(self.caches)

    def build(self, images: Sequence[Image.Image], paths: Sequence[str | None]) -> ModelBatch:
        device = self.model.device
        batch = ModelBatch({}, self.views, from_cache=bool(self.caches) and all(content_key(i) for i in images))
        for name, views in self.pixels.items():
            if batch.from_cache and name in self.caches:
                batch.inputs[name] = self._cached(name, images).to(device)
                continue
            sources = self.label_maps[name].render_maps(images, paths) if name in self.label_maps else images
            batch.inputs[name] = torch.stack([t for img in sources for t in views(img)]).to(device)
        if self.text_branch is not None:
            batch.inputs[self.text_branch], batch.boxes = self._text(images)
        return batch

    def _cached(self, name: str, images) -> torch.Tensor:
        module = self.model.branches[name]

        def encode(chunk):
            with encoder_precision(self.model.device, self.precision):
                return module.encode_images(chunk).float(), None

        return image_embeddings(self.caches[name], list(images), encode)

    def _text(self, images) -> tuple[dict, list[list]]:
        """The text branch's input (repeated per view) and the boxes it read."""
        inputs, boxes = self.model.branches[self.text_branch].photo_input(images, self.read_text)
        return {key: t.repeat_interleave(self.views, dim=0) for key, t in inputs.items()}, boxes
