"""What ``predict`` takes: file paths, PIL images, NumPy arrays, encoded bytes or photos held in
shards (objects whose ``open()`` decodes them, named by ``str()``), mixed freely.

Each item becomes a ``Photo``: the RGB image geolocators see, the name its record carries and the
file EXIF is read from (paths only; PIL images and bytes keep their EXIF in ``image.info``). A file
or buffer that cannot be decoded raises ``ImageError`` (the record says why and the run goes on); an
object of another type is the caller's mistake and raises ``TypeError``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Union

from PIL import Image

from geocli.images import ImageError, open_image_bytes, open_image, to_rgb_image

#: Anything ``predict`` accepts as one photo (``("name.jpg", item)`` names an in-memory one).
PhotoLike = Union[str, os.PathLike, Image.Image, bytes, bytearray, memoryview, Any]


@dataclass
class Photo:
    name: str
    image: Image.Image
    path: str | None  # the file EXIF is read from, when the photo came from one


def item_name(item: Any, index: int) -> str:
    """The ``image`` field of an item's record: its path, the name given with it, else its kind and index."""
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
        return item[0]
    if isinstance(item, (str, os.PathLike)) or callable(getattr(item, "open", None)):
        return str(item)
    kind = "pil" if isinstance(item, Image.Image) else "array" if _is_array(item) else "bytes"
    return f"<{kind} {index}>"


def load_photo(item: PhotoLike, index: int = 0) -> Photo:
    """Decode one item; ``ImageError`` when it cannot be, ``TypeError`` for an unsupported type."""
    name = item_name(item, index)
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
        item = item[1]
    if isinstance(item, (str, os.PathLike)):
        return Photo(name, open_image(item), str(item))
    if isinstance(item, Image.Image):
        return Photo(name, to_rgb_image(item), None)
    if isinstance(item, (bytes, bytearray, memoryview)):
        return Photo(name, open_image_bytes(bytes(item), name), None)
    if _is_array(item):
        return Photo(name, array_to_image(item), None)
    if callable(getattr(item, "open", None)):  # a photo held elsewhere (a ShardImage): decoded on demand
        return Photo(name, item.open(), None)
    raise TypeError(f"predict takes paths, PIL images, NumPy arrays or bytes, not {type(item).__name__}")


def _is_array(item: Any) -> bool:
    return hasattr(item, "__array_interface__") and hasattr(item, "shape") and hasattr(item, "dtype")


def array_to_image(array) -> Image.Image:
    """An H x W (grey), H x W x 3 (RGB) or H x W x 4 (RGBA) array: uint8 0-255, or floats in [0, 1]."""
    import numpy as np

    a = np.asarray(array)
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (1, 3, 4)) or 0 in a.shape:
        raise ImageError(f"array of shape {a.shape} is not an image (H x W, H x W x 3 or H x W x 4)")
    if a.dtype != np.uint8:
        if not np.issubdtype(a.dtype, np.floating) or not np.isfinite(a).all() or a.min() < 0 or a.max() > 1:
            raise ImageError(f"array of {a.dtype} values: give uint8 (0-255) or floats in [0, 1]")
        a = np.round(a * 255).astype(np.uint8)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    return to_rgb_image(Image.fromarray(np.ascontiguousarray(a)))
