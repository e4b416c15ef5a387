"""Image loading: the one place pixels enter geocli.

Decodes any format Pillow reads (HEIC when ``pillow-heif`` is installed), applies the EXIF
orientation before anything looks at the pixels, takes the first frame of animations and converts
every mode (CMYK, 16-bit, palette, alpha) to 8-bit RGB. Failures raise ``ImageError`` with a
one-line reason, so a caller can record it per item and go on.
"""
from __future__ import annotations

import errno
import io
import os
import stat
import warnings
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from geocli.errors import GeocliError

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


def _error(reason: str, path: Path) -> ImageError:
    """One line, whatever the reason or the file name hold (names may contain newlines)."""
    shown = str(path) if str(path).isprintable() else repr(str(path))[1:-1]
    return ImageError(f"{' '.join(reason.split())}: {shown}")


def _check_file(path: Path) -> None:
    """A regular, non-empty file, or an ``ImageError`` saying what it is instead.

    Pipes and devices are refused before anything opens them: reading one could block forever.
    """
    try:
        info = path.stat()
    except OSError as exc:
        raise _error(_stat_problem(path, exc), path) from None
    if stat.S_ISDIR(info.st_mode):
        raise _error("is a directory, not an image", path)
    if not stat.S_ISREG(info.st_mode):
        raise _error("not a regular file (a pipe, socket or device)", path)
    if info.st_size == 0:
        raise _error("empty file (0 bytes)", path)


def _stat_problem(path: Path, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "symlink loop"
    if exc.errno == errno.ENOENT:
        return "broken symlink (its target is missing)" if path.is_symlink() else "no such file"
    if exc.errno == errno.EACCES:
        return "permission denied"
    return f"cannot read file ({exc.strerror or exc})"


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


def _orient(img: Image.Image) -> Image.Image:
    """Apply the EXIF orientation; damaged EXIF leaves the pixels as stored rather than losing them."""
    try:
        return ImageOps.exif_transpose(img) or img
    except Exception:  # Pillow raises assorted types on corrupt EXIF (TypeError, struct.error ...)
        return img


def _decode(source, name: Path) -> Image.Image:
    with Image.open(source) as img:
        if img.width * img.height > MAX_PIXELS:
            raise _error(f"image too large ({img.width}x{img.height} pixels, limit {MAX_PIXELS})", name)
        img.seek(0)
        img.load()
        return _to_rgb(_orient(img))


def open_image(path: str | os.PathLike) -> Image.Image:
    """Open, orient and decode ``path`` to an RGB ``PIL.Image``; raise ``ImageError`` otherwise.

    Any decoder failure becomes an ``ImageError``: one malformed file must never stop a run.
    """
    path = Path(path)
    _check_file(path)
    if path.suffix.lower() in (".heic", ".heif", ".avif"):
        register_heif()
    return _guarded_decode(path, path)


def open_image_bytes(data: bytes, name: str = "<bytes>") -> Image.Image:
    """An encoded image (an upload, a photo in a tar shard or msgpack record) decoded like ``open_image``;
    ``name`` only labels errors. EXIF stays in ``image.info`` for the evidence reader."""
    if not data:
        raise _error("empty image (0 bytes)", Path(name))
    register_heif()
    return _guarded_decode(io.BytesIO(data), Path(name))


def to_rgb_image(image: Image.Image) -> Image.Image:
    """A caller's PIL image as geocli's loader would have made it: oriented by its EXIF, 8-bit RGB."""
    if image.width * image.height > MAX_PIXELS:
        raise ImageError(f"image too large ({image.width}x{image.height} pixels, limit {MAX_PIXELS})")
    return _to_rgb(_orient(image))


def _guarded_decode(source, name: Path) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "Corrupt EXIF data": _orient copes
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return _decode(source, name)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _error("image too large (decompression bomb guard)", name) from None
    except UnidentifiedImageError:
        raise _error("not a recognised image format", name) from None
    except PermissionError:
        raise _error("permission denied", name) from None
    except Exception as exc:  # decoders raise OSError, SyntaxError, ValueError, TypeError, struct.error ...
        raise _error(f"cannot decode image ({exc.__class__.__name__}: {exc})", name) from None
