"""Image loading: the one place pixels enter geocli.

Decodes any format Pillow reads (HEIC when ``pillow-heif`` is installed), applies the EXIF
orientation before anything looks at the pixels, takes the first frame of animations and converts
every mode (CMYK, 16-bit, palette, alpha) to 8-bit RGB. Failures raise ``ImageError`` with a
one-line reason, so a caller can record it per item and go on.

A file is read once: its bytes are hashed and decoded together (``load_image``), so the content
hash an embedding is cached under always belongs to the pixels that were encoded, even when the
file is replaced while geocli runs. What an image may cost is bounded at the door: its pixel
count, its aspect ratio (a 1x65,500 sliver is tiny on disk but resizing its short side to a
model's size would need gigabytes), and every later resize (``resize_to``) checks its output too.
"""
from __future__ import annotations

import errno
import hashlib
import io
import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from geocli.errors import GeocliError

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif", ".heic", ".heif", ".avif"}
)
#: Refuse images with more pixels than this (decompression bombs); about 16k x 16k.
MAX_PIXELS = 16384 * 16384
#: Refuse images whose long side is more than this many times their short side: resizing the short
#: side to a model's input size then stays within ``MAX_ASPECT`` square inputs (wide panoramas pass).
MAX_ASPECT = 24
#: Refuse files larger than this (they are read into memory whole, once).
MAX_FILE_BYTES = 1 << 30
#: No resize may produce more pixels than this (about 8k x 8k), whatever the image and the target.
MAX_RESIZED_PIXELS = 8192 * 8192
_heif_registered: bool | None = None


class ImageError(GeocliError):
    """A file that cannot be turned into an RGB image; the message says why."""


@dataclass(frozen=True)
class LoadedImage:
    """A decoded photo and the SHA-256 of the very bytes it was decoded from."""

    image: Image.Image
    sha256: str


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
    if "\0" in str(path):
        raise _error("the file name holds a NUL byte (no file can be named so)", path)
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
    if info.st_size > MAX_FILE_BYTES:
        raise _error(f"file too large ({info.st_size:,} bytes, limit {MAX_FILE_BYTES:,})", path)


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


def check_size(width: int, height: int) -> str | None:
    """Why an image of ``width`` x ``height`` would cost too much to work on, or None."""
    if width * height > MAX_PIXELS:
        return f"image too large ({width}x{height} pixels, limit {MAX_PIXELS})"
    if max(width, height) > MAX_ASPECT * max(min(width, height), 1):
        return f"extreme aspect ratio ({width}x{height}, limit {MAX_ASPECT}:1)"
    return None


def _decode(data: bytes, path: Path) -> Image.Image:
    with Image.open(io.BytesIO(data)) as img:
        problem = check_size(img.width, img.height)
        if problem:
            raise _error(problem, path)
        img.seek(0)
        img.load()
        return _to_rgb(_orient(img))


def _nonblocking(name, flags: int) -> int:
    return os.open(name, flags | os.O_NONBLOCK)


def _read(path: Path) -> bytes:
    """The file's bytes; what was opened is checked again (a file swapped for a pipe never blocks)."""
    try:
        with open(path, "rb", opener=_nonblocking) as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise _error("not a regular file (a pipe, socket or device)", path)
            return f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise _error(_stat_problem(path, exc), path) from None


def load_image(path: str | os.PathLike) -> LoadedImage:
    """Read ``path`` once; decode, orient and convert its bytes to RGB and hash the same bytes.

    Any decoder failure becomes an ``ImageError``: one malformed file must never stop a run.
    """
    path = Path(path)
    _check_file(path)
    data = _read(path)
    if not data:
        raise _error("empty file (0 bytes)", path)
    if len(data) > MAX_FILE_BYTES:
        raise _error(f"file too large (over {MAX_FILE_BYTES:,} bytes)", path)
    return _loaded(data, path)


def load_image_bytes(data: bytes, name: str = "<bytes>") -> LoadedImage:
    """``load_image`` for the bytes of an image held elsewhere (a tar shard, a msgpack record);
    ``name`` is what error messages call it. The same bytes give the same hash as a file would."""
    if not data:
        raise _error("empty image (0 bytes)", Path(name))
    if len(data) > MAX_FILE_BYTES:
        raise _error(f"image too large ({len(data):,} bytes, limit {MAX_FILE_BYTES:,})", Path(name))
    return _loaded(data, Path(name))


def open_image_bytes(data: bytes, name: str = "<bytes>") -> Image.Image:
    """An encoded image (an upload, a photo in a tar shard or msgpack record) decoded like
    ``open_image`` (``load_image_bytes`` without the hash); ``name`` only labels errors. EXIF stays
    in ``image.info`` for the evidence reader."""
    return load_image_bytes(data, name).image


def to_rgb_image(image: Image.Image) -> Image.Image:
    """A caller's PIL image as geocli's loader would have made it: oriented by its EXIF, 8-bit RGB,
    within the same size and aspect-ratio bounds."""
    problem = check_size(image.width, image.height)
    if problem:
        raise ImageError(problem)
    return _to_rgb(_orient(image))


def _loaded(data: bytes, path: Path) -> LoadedImage:
    image = _decode_safely(data, path)
    digest = hashlib.sha256(data).hexdigest()
    image._geocli_sha256 = digest  # an attribute, not .info: file metadata can never set it
    return LoadedImage(image, digest)


def content_key(image: Image.Image) -> str | None:
    """The SHA-256 of the file bytes ``image`` was decoded from by ``load_image``, or None for an
    image made elsewhere (such an image is never looked up in an embedding cache)."""
    return getattr(image, "_geocli_sha256", None)


def open_image(path: str | os.PathLike) -> Image.Image:
    """The RGB ``PIL.Image`` of ``path`` (``load_image`` without the hash); ``ImageError`` otherwise."""
    return load_image(path).image


def check_resize(source: tuple[int, int], target: tuple[int, int]) -> None:
    """Refuse (``ImageError``) a resize of a ``source``-sized image whose ``target`` would hold
    more than ``MAX_RESIZED_PIXELS``: every resize in geocli asks here first."""
    width, height = target
    if width * height > MAX_RESIZED_PIXELS:
        raise ImageError(f"image too large to resize ({source[0]}x{source[1]} -> {width}x{height} pixels, "
                         f"limit {MAX_RESIZED_PIXELS})")


def resize_to(image: Image.Image, size: tuple[int, int], resample=Image.BICUBIC) -> Image.Image:
    """``image.resize(size)``, bounded by ``check_resize``."""
    size = (max(1, int(size[0])), max(1, int(size[1])))
    check_resize(image.size, size)
    return image.resize(size, resample)


def short_side_size(size: tuple[int, int], side: int) -> tuple[int, int]:
    """(width, height) with the short side ``side`` and the aspect ratio kept (torchvision's rule:
    the long side truncated, so ``Resize(side)`` and this agree)."""
    width, height = size
    if width <= height:
        return side, max(1, int(side * height / max(width, 1)))
    return max(1, int(side * width / max(height, 1))), side


def _decode_safely(data: bytes, path: Path) -> Image.Image:
    if path.suffix.lower() in (".heic", ".heif", ".avif") or data[4:8] == b"ftyp":  # ISO media (HEIF/AVIF)
        register_heif()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "Corrupt EXIF data": _orient copes
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return _decode(data, path)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _error("image too large (decompression bomb guard)", path) from None
    except UnidentifiedImageError:
        raise _error("not a recognised image format", path) from None
    except PermissionError:
        raise _error("permission denied", path) from None
    except Exception as exc:  # decoders raise OSError, SyntaxError, ValueError, TypeError, struct.error ...
        raise _error(f"cannot decode image ({exc.__class__.__name__}: {exc})", path) from None
