"""Class-index maps <-> colour images, and ``MapRenderer``: photos -> the rendered maps.

The seg branch of TransLocator looks at a *rendered* colour map, so rendering is part of the model
input: one palette per label space, index 255 (ignore) black. Reading maps back accepts both forms
seen on disk: single-channel index PNGs (decoded to equal R=G=B) and palette-coloured PNGs.
"""
from __future__ import annotations

import os

import numpy as np
from PIL import Image

from geocli.errors import GeocliError, UsageError
from geocli.images import open_image
from geocli.segmentation.base import build_segmenter
from geocli.segmentation.classes import IGNORE_INDEX, LabelSpace, get_label_space


def render(index_map: np.ndarray, space: LabelSpace) -> Image.Image:
    """(H, W) class indices -> RGB image in the label space's palette."""
    index_map = np.asarray(index_map)
    if index_map.ndim != 2:
        raise GeocliError(f"a segmentation map must be 2-D (H, W), got shape {index_map.shape}")
    return Image.fromarray(space.lut()[index_map.astype(np.uint8)], mode="RGB")


def colors_to_index(rgb: np.ndarray, space: LabelSpace) -> np.ndarray:
    """(H, W, 3) palette colours -> (H, W) indices; colours outside the palette become 255.

    Where a palette repeats a colour (ADE20K: road and skyscraper), the lower index wins.
    """
    codes = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    palette = np.asarray(space.palette, dtype=np.int64)
    keys = (palette[:, 0] << 16) | (palette[:, 1] << 8) | palette[:, 2]
    lookup: dict[int, int] = {}
    for index, key in enumerate(keys.tolist()):
        lookup.setdefault(key, index)
    uniq, inverse = np.unique(codes, return_inverse=True)
    mapped = np.array([lookup.get(int(u), IGNORE_INDEX) for u in uniq], dtype=np.uint8)
    return mapped[inverse].reshape(codes.shape)


def load_index_map(path: str | os.PathLike, space: LabelSpace, form: str = "auto") -> np.ndarray:
    """Read a segmentation PNG as (H, W) uint8 class indices.

    ``form``: "index" (grey values are indices), "color" (palette colours), or "auto": grey images
    whose values are all valid indices are index maps, anything else is looked up in the palette.
    """
    rgb = np.asarray(open_image(path))
    if form not in ("auto", "index", "color"):
        raise GeocliError(f"form must be auto, index or color, not {form!r}")
    grey = rgb[..., 0]
    if form == "index":
        return grey.copy()
    is_grey = (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()
    if form == "auto" and is_grey and ((grey < space.num_classes) | (grey == IGNORE_INDEX)).all():
        return grey.copy()
    return colors_to_index(rgb, space)


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
