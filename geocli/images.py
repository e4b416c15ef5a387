"""Image loading: the one place pixels enter geocli.

Decodes any format Pillow reads (HEIC when ``pillow-heif`` is installed), applies the EXIF
orientation before anything looks at the pixels, takes the first frame of animations and converts
every mode (CMYK, 16-bit, palette, alpha) to 8-bit RGB. Failures raise ``ImageError`` with a
one-line reason, so a caller can record it per item and go on.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import GeocliError

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif", ".heic", ".heif", ".avif"}
)
#: Refuse images with more pixels than this (decompression bombs); about 16k x 16k.
MAX_PIXELS = 16384 * 16384
_heif_registered: bool | None = None


class ImageError(GeocliError):
    """A file that cannot be turned into an RGB image; the message says why."""


def register_heif() -> bool:
    """Register the HEIC/HEIF opener if ``pillow-heif`` is installed (the ``[heic]`` extra)."""
    global _heif_registered
    if _heif_registered is None:
        try:
            from pillow_heif import register_heif_opener

            register_heif_opener()
            _heif_registered = True
        except ImportError:
            _heif_registered = False
    return _heif_registered


def is_image_path(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def _check_file(path: Path) -> None:
    if not path.exists():
        raise ImageError(f"no such file: {path}")
    if path.is_dir():
        raise ImageError(f"is a directory, not an image: {path}")
    if not os.access(path, os.R_OK):
        raise ImageError(f"permission denied: {path}")
    if path.stat().st_size == 0:
        raise ImageError(f"empty file (0 bytes): {path}")


def _to_rgb(img: Image.Image) -> Image.Image:
    """8-bit RGB from any mode; transparent pixels composited on white."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        img = img.point(lambda v: v / 256).convert("L") if img.mode != "I" else img.convert("F").point(
            lambda v: v / 256
        ).convert("L")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGB", img.size, (255, 255, 255))
        background.paste(img.convert("RGBA"), mask=img.convert("RGBA").getchannel("A"))
        return background
    return img.convert("RGB")


def open_image(path: str | os.PathLike) -> Image.Image:
    """Open, orient and decode ``path`` to an RGB ``PIL.Image``; raise ``ImageError`` otherwise."""
    path = Path(path)
    _check_file(path)
    if path.suffix.lower() in (".heic", ".heif", ".avif"):
        register_heif()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                if img.width * img.height > MAX_PIXELS:
                    raise ImageError(
                        f"image too large ({img.width}x{img.height} pixels, limit {MAX_PIXELS}): {path}"
                    )
                img.seek(0)
                img.load()
                img = ImageOps.exif_transpose(img) or img
                return _to_rgb(img)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"image too large (decompression bomb guard): {path}") from None
    except UnidentifiedImageError:
        raise ImageError(f"not a recognised image format: {path}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"cannot decode image ({exc.__class__.__name__}: {exc}): {path}") from None
