"""Segmenter interface: ``segment(image, path=None) -> (H, W) uint8`` class indices in ``label_space``.

Backends register in ``SEGMENTERS``; each imports its library lazily. ``path`` is only needed by the
``precomputed`` backend, which reads maps from disk instead of running a network.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Sequence

import numpy as np
from PIL import Image

from geocli.registry import Registry
from geocli.segmentation.classes import LabelSpace

SEGMENTERS: Registry = Registry("segmenter")


class Segmenter(ABC):
    label_space: LabelSpace

    @abstractmethod
    def segment_batch(self, images: Sequence[Image.Image], paths: Sequence[str] | None = None) -> list[np.ndarray]:
        """One (H, W) uint8 index map per image, at the image's own size."""

    def segment(self, image: Image.Image, path: str | None = None) -> np.ndarray:
        return self.segment_batch([image], None if path is None else [path])[0]


def build_segmenter(name: str, **options) -> Segmenter:
    """A segmenter by name: torchvision-lraspp (default), segformer, mmseg, precomputed (the
    package registers them on import); options are checked against the segmenter's parameters."""
    return SEGMENTERS.build(name, **options)
