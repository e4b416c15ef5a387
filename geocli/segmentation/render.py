"""Class-index maps <-> colour images.

The seg branch of TransLocator looks at a *rendered* colour map, so rendering is part of the model
input: one palette per label space, index 255 (ignore) black. Reading maps back accepts both forms
seen on disk: single-channel index PNGs (decoded to equal R=G=B) and palette-coloured PNGs.
"""
from __future__ import annotations

import os

import numpy as np
from PIL import Image

from geocli.errors import GeocliError
from geocli.images import open_image
from geocli.segmentation.classes import IGNORE_INDEX, LabelSpace


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
