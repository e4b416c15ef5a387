"""Photos -> the rendered segmentation maps the seg branch's ViT looks at."""
from __future__ import annotations

import numpy as np
from PIL import Image

from geocli.errors import UsageError
from geocli.segmentation.base import build_segmenter
from geocli.segmentation.classes import LabelSpace, get_label_space
from geocli.segmentation.render import render


class MapRenderer:
    """Photos -> rendered colour maps, from a segmenter name and options (built on first use).

    Both the seg branch and prediction from a checkpoint (where a TransLocator pair keeps only the
    seg ViT) render through this, so the maps a model is trained on and predicts from are the same.
    """

    def __init__(self, segmenter: str | None, segmenter_options: dict | None = None,
                 label_space: str | None = None) -> None:
        self.name, self.options, self.space_name = segmenter, dict(segmenter_options or {}), label_space
        self._segmenter = None

    @property
    def segmenter(self):
        if self._segmenter is None:
            if self.name is None:
                raise UsageError("this seg branch has no segmenter: pass rendered maps, or set segmenter=")
            self._segmenter = build_segmenter(self.name, **self.options)
        return self._segmenter

    @property
    def label_space(self) -> LabelSpace:
        return get_label_space(self.space_name) if self.space_name else self.segmenter.label_space

    def segment(self, images, paths=None) -> list[np.ndarray]:
        """Class-index maps (H, W) uint8, one per image."""
        return self.segmenter.segment_batch(list(images), paths)

    def render_maps(self, images, paths=None) -> list[Image.Image]:
        space = self.label_space
        return [render(index_map, space) for index_map in self.segment(images, paths)]
