"""Semantic segmentation for the seg branch: segmenters, label spaces (names + palettes), rendering."""
from geocli.segmentation.base import SEGMENTERS, Segmenter, build_segmenter
from geocli.segmentation.classes import IGNORE_INDEX, LABEL_SPACES, LabelSpace, get_label_space
from geocli.segmentation.render import MapRenderer, colors_to_index, load_index_map, render
from geocli.segmentation import backends  # noqa: E402,F401  (registers the segmenters; imports nothing heavy)

__all__ = [
    "IGNORE_INDEX", "LABEL_SPACES", "LabelSpace", "MapRenderer", "SEGMENTERS", "Segmenter", "build_segmenter",
    "colors_to_index", "get_label_space", "load_index_map", "render",
]
