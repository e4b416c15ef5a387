"""A corpus of hostile inputs for ``geocli predict``, generated on the fly (nothing binary is committed).

``build_corpus(folder)`` writes every case into ``folder`` and returns the cases: odd but valid
images that must decode (``ok``), broken or dangerous files that must become one error record each
(``error`` is a regular expression the record's message must match), and filesystem oddities.
"""
from __future__ import annotations

import io
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, TiffImagePlugin

GPS_IFD, ORIENTATION = 0x8825, 0x0112


@dataclass
class Case:
    name: str  # file name inside the corpus folder
    what: str  # one line for the report
    make: Callable[[Path], None]
    error: str | None = None  # None: must decode (ok: true); else a regex the error must match
    size: tuple[int, int] | None = None  # decoded (width, height) when it matters (EXIF rotation)


def _noise(w: int, h: int, channels: int = 3, dtype=np.uint8, high: int = 256) -> np.ndarray:
    rng = np.random.default_rng(w * 7919 + h)
    shape = (h, w, channels) if channels > 1 else (h, w)
    return rng.integers(0, high, shape).astype(dtype)


def _rgb(w: int = 24, h: int = 16) -> Image.Image:
    return Image.fromarray(_noise(w, h))


def _jpeg_bytes(img: Image.Image | None = None, **kw) -> bytes:
    buf = io.BytesIO()
    (img or _rgb()).save(buf, format="JPEG", **kw)
    return buf.getvalue()


def _saver(img_fn: Callable[[], Image.Image], fmt: str, **kw) -> Callable[[Path], None]:
    return lambda p: img_fn().save(p, format=fmt, **kw)


def _writer(data_fn: Callable[[], bytes]) -> Callable[[Path], None]:
    return lambda p: p.write_bytes(data_fn())


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` (a decompression bomb's calling card)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def gif_claiming(width: int, height: int) -> bytes:
    """A GIF whose logical screen and only frame claim ``width`` x ``height``."""
    header = b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x02\x02\x44\x01\x00"
    return header + frame + b"\x3b"


def _png_bad_crc() -> bytes:
    buf = io.BytesIO()
    _rgb().save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    data[29] ^= 0xFF  # IHDR's CRC
    return bytes(data)


def _truncated(fmt: str) -> Callable[[], bytes]:
    def make() -> bytes:
        buf = io.BytesIO()
        _rgb(64, 64).save(buf, format=fmt)
        return buf.getvalue()[: len(buf.getvalue()) // 2]
    return make


def exif_jpeg(orientation: int | None = None, gps: dict | None = None, img: Image.Image | None = None) -> bytes:
    exif = Image.Exif()
    if orientation is not None:
        exif[ORIENTATION] = orientation
    if gps is not None:
        exif.get_ifd(GPS_IFD).update(gps)
    return _jpeg_bytes(img, exif=exif.tobytes())


def _dms(value: float) -> tuple:
    d = int(value)
    m = int((value - d) * 60)
    return (TiffImagePlugin.IFDRational(d, 1), TiffImagePlugin.IFDRational(m, 1),
            TiffImagePlugin.IFDRational(round(((value - d) * 60 - m) * 60 * 100), 100))


def _garbage_exif_jpeg() -> bytes:
    """A JPEG whose APP1 EXIF segment holds a TIFF header pointing past its end."""
    payload = b"Exif\x00\x00" + b"MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">H", 40) + os.urandom(30)
    segment = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    jpeg = _jpeg_bytes()
    return jpeg[:2] + segment + jpeg[2:]


def _tiff_strip_offsets_as_text() -> bytes:
    """A TIFF whose StripOffsets entry claims the ASCII type (found by fuzzing: Pillow raised TypeError)."""
    buf = io.BytesIO()
    _rgb().save(buf, format="TIFF")  # little-endian: first IFD offset at byte 4, 12-byte entries
    data = bytearray(buf.getvalue())
    ifd = struct.unpack_from("<I", data, 4)[0]
    for i in range(struct.unpack_from("<H", data, ifd)[0]):
        entry = ifd + 2 + 12 * i
        if struct.unpack_from("<H", data, entry)[0] == 273:  # StripOffsets
            struct.pack_into("<H", data, entry + 2, 2)
    return bytes(data)


def _exif_gps_count_huge() -> bytes:
    """An EXIF GPS directory claiming 19970 entries (found by fuzzing: orientation raised TypeError)."""
    data = bytearray(exif_jpeg(orientation=6, gps={1: "N", 2: (1.0, 2.0, 3.0)}))
    tiff = data.index(b"Exif\x00\x00") + 6  # big-endian TIFF header follows
    pointer = data.index(b"\x88\x25\x00\x04\x00\x00\x00\x01", tiff) + 8
    data[tiff + struct.unpack_from(">I", data, pointer)[0]] = 0x4E
    return bytes(data)


def _rgba() -> Image.Image:
    img = Image.fromarray(_noise(20, 20, 4))
    return img


def _palette_transparent() -> Image.Image:
    img = _rgb(20, 20).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    img.info["transparency"] = 0
    return img


def _animated(path: Path) -> None:
    frames = [Image.new("P", (16, 16), c) for c in (1, 2, 3)]
    frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)


def _gray16() -> Image.Image:
    return Image.fromarray(_noise(20, 12, 1, np.uint16, 65536))


def _gray16_tiff(path: Path) -> None:
    Image.fromarray(_noise(20, 12, 1, np.uint16, 65536)).save(path, format="TIFF")


def _float_tiff(path: Path) -> None:
    Image.fromarray(_noise(20, 12, 1, np.float32, 2) * 0.5).save(path, format="TIFF")


GOOD_GPS = {1: "N", 2: _dms(45.8150), 3: "E", 4: _dms(15.9819)}


def valid_cases() -> list[Case]:
    """Odd but valid images: each must decode to RGB and get ``ok: true``."""
    return [
        Case("plain.jpg", "baseline RGB JPEG", _writer(_jpeg_bytes)),
        Case("cmyk.jpg", "CMYK JPEG", _saver(lambda: _rgb().convert("CMYK"), "JPEG")),
        Case("progressive.jpg", "progressive JPEG", _writer(lambda: _jpeg_bytes(progressive=True))),
        Case("gray.jpg", "grayscale JPEG", _saver(lambda: _rgb().convert("L"), "JPEG")),
        Case("gray16.png", "16-bit grayscale PNG", _saver(_gray16, "PNG")),
        Case("alpha.png", "RGBA PNG (alpha)", _saver(_rgba, "PNG")),
        Case("gray_alpha.png", "grayscale + alpha PNG (LA)", _saver(lambda: _rgba().convert("LA"), "PNG")),
        Case("palette_transparent.png", "palette PNG with a transparent index",
             _saver(_palette_transparent, "PNG")),
        Case("bilevel.png", "1-bit PNG", _saver(lambda: _rgb().convert("1"), "PNG")),
        Case("palette.gif", "palette GIF", _saver(lambda: _rgb().convert("P"), "GIF")),
        Case("animated.gif", "animated GIF (3 frames)", _animated),
        Case("one_pixel.png", "1x1 image", _saver(lambda: Image.new("RGB", (1, 1), "blue"), "PNG")),
        Case("panorama.png", "24:1 panorama (the widest aspect ratio taken)",
             _saver(lambda: Image.new("RGB", (480, 20), "green"), "PNG")),
        Case("lossy.webp", "WebP", _saver(_rgb, "WEBP")),
        Case("alpha.webp", "WebP with alpha", _saver(_rgba, "WEBP")),
        Case("plain.tiff", "RGB TIFF", _saver(_rgb, "TIFF")),
        Case("gray16.tif", "16-bit grayscale TIFF", _gray16_tiff),
        Case("float32.tif", "32-bit float TIFF (mode F)", _float_tiff),
        Case("plain.bmp", "BMP", _saver(_rgb, "BMP")),
        Case("rotated.jpg", "EXIF orientation 6 (rotate 90)", _writer(lambda: exif_jpeg(orientation=6)),
             size=(16, 24)),
        Case("orientation_bogus.jpg", "EXIF orientation 9 (no such value)",
             _writer(lambda: exif_jpeg(orientation=9)), size=(24, 16)),
        Case("gps_ok.jpg", "EXIF GPS (Zagreb), a control", _writer(lambda: exif_jpeg(gps=GOOD_GPS))),
        Case("gps_broken.jpg", "EXIF GPS with zero denominators",
             _writer(lambda: exif_jpeg(gps={1: "N", 2: (TiffImagePlugin.IFDRational(1, 0),) * 3,
                                              3: "E", 4: (TiffImagePlugin.IFDRational(1, 0),) * 3}))),
        Case("gps_half.jpg", "EXIF GPS block without longitude",
             _writer(lambda: exif_jpeg(gps={1: "N", 2: _dms(45.0)}))),
        Case("gps_out_of_range.jpg", "EXIF GPS latitude 200",
             _writer(lambda: exif_jpeg(gps={1: "N", 2: _dms(200.0), 3: "E", 4: _dms(15.0)}))),
        Case("exif_garbage.jpg", "JPEG with a garbage EXIF segment", _writer(_garbage_exif_jpeg)),
        Case("exif_gps_count_huge.jpg", "EXIF GPS directory claiming 19970 entries",
             _writer(_exif_gps_count_huge)),
        Case("trailing_junk.jpg", "JPEG followed by junk bytes", _writer(lambda: _jpeg_bytes() + os.urandom(200))),
        Case("name with spaces.jpg", "file name with spaces", _writer(_jpeg_bytes)),
        Case("ünïcødé 東京.png", "unicode file name", _saver(_rgb, "PNG")),
        Case("new\nline.png", "file name with a newline", _saver(_rgb, "PNG")),
        Case("line\u2028sep.png", "file name with U+2028 (a line break to str.splitlines)", _saver(_rgb, "PNG")),
        Case("UPPER.JPG", "upper-case extension", _writer(_jpeg_bytes)),
        Case("actually_png.jpg", "PNG bytes behind a .jpg name", _saver(_rgb, "PNG")),
    ]


def broken_cases() -> list[Case]:
    """Broken or dangerous files: each must give one ``ok: false`` record with a clear reason."""
    return [
        Case("empty.jpg", "zero-byte file", _writer(lambda: b""), error=r"^empty file \(0 bytes\)"),
        Case("truncated.jpg", "truncated JPEG", _writer(_truncated("JPEG")), error=r"^cannot decode image .*truncated"),
        Case("truncated.png", "truncated PNG", _writer(_truncated("PNG")), error=r"^cannot decode image"),
        Case("truncated.gif", "GIF cut after its header", _writer(lambda: gif_claiming(16, 16)[:20]),
             error=r"^not a recognised image format"),
        Case("random.jpg", "random bytes named .jpg", _writer(lambda: np.random.default_rng(1).bytes(4096)),
             error=r"^not a recognised image format"),
        Case("text.png", "a text file named .png", _writer(lambda: b"hello, this is not a picture\n" * 20),
             error=r"^not a recognised image format"),
        Case("page.webp", "HTML named .webp", _writer(lambda: b"<!doctype html><html><body>hi</body></html>"),
             error=r"^not a recognised image format"),
        Case("garbage.heic", "garbage named .heic", _writer(lambda: b"\x00\x00\x00\x18ftypheic" + b"\x00" * 64),
             error=r"^not a recognised image format"),
        Case("bad_crc.png", "PNG with a broken header CRC", _writer(_png_bad_crc),
             error=r"^not a recognised image format"),
        Case("zero_size.png", "PNG header claiming 0x0 pixels", _writer(lambda: png_claiming(0, 0)),
             error=r"^not a recognised image format"),
        Case("strip_offsets_text.tif", "TIFF whose strip offsets are typed as text",
             _writer(_tiff_strip_offsets_as_text), error=r"^cannot decode image"),
        Case("broken\nname.jpg", "broken file whose name holds a newline", _writer(lambda: b"junk" * 10),
             error=r"^not a recognised image format: .*broken\\nname\.jpg$"),
        Case("bomb.png", "PNG header claiming 100000x100000", _writer(lambda: png_claiming(100_000, 100_000)),
             error=r"^image too large"),
        Case("bomb_warn.png", "PNG header claiming 11000x11000 (over the warning limit)",
             _writer(lambda: png_claiming(11_000, 11_000)), error=r"^image too large"),
        Case("bomb.gif", "GIF screen claiming 65535x65535", _writer(lambda: gif_claiming(65535, 65535)),
             error=r"^image too large"),
        Case("sliver.png", "1x3000 sliver", _saver(lambda: Image.new("RGB", (1, 3000), "green"), "PNG"),
             error=r"^extreme aspect ratio \(1x3000, limit 24:1\)"),
        Case("sliver_65500.png", "1x65,500 PNG of a few hundred bytes (resizing its short side would need ~18 GB)",
             _saver(lambda: Image.new("RGB", (1, 65_500), "green"), "PNG"), error=r"^extreme aspect ratio"),
        Case("wide_sliver.png", "65,500x2 PNG", _saver(lambda: Image.new("RGB", (65_500, 2), "green"), "PNG"),
             error=r"^extreme aspect ratio"),
    ]


def special_cases() -> list[Case]:
    """Filesystem oddities inside the folder: links, pipes, unreadable files."""
    return [
        Case("loop.jpg", "symlink loop (points at itself)", lambda p: os.symlink(p.name, p), error=r"^symlink loop"),
        Case("dangling.jpg", "dangling symlink", lambda p: os.symlink("nowhere.jpg", p), error=r"^broken symlink"),
        Case("fifo.jpg", "named pipe named .jpg (would block a reader)", lambda p: os.mkfifo(p),
             error=r"^not a regular file"),
        Case("unreadable.jpg", "unreadable file (chmod 000)", _unreadable, error=r"^permission denied"),
    ]


def _unreadable(path: Path) -> None:
    path.write_bytes(_jpeg_bytes())
    path.chmod(0)


def build_corpus(folder: Path) -> list[Case]:
    """Write every case into ``folder``; also a sub-folder named ``x.jpg`` and a ``.txt`` file."""
    folder.mkdir(parents=True, exist_ok=True)
    cases = valid_cases() + broken_cases() + special_cases()
    for case in cases:
        case.make(folder / case.name)
    (folder / "x.jpg").mkdir()
    _rgb().save(folder / "x.jpg" / "inside.png")
    (folder / "notes.txt").write_text("not an image, and not named like one\n")
    return cases


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


def run_cli(args: list[str], stdin: str | None = None) -> CliResult:
    """Run ``geocli ARGS`` in this process through the console entry point (``main``), as a user would."""
    from click.testing import CliRunner

    from geocli.cli.main import main

    with CliRunner().isolation(input=stdin) as streams:
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        return CliResult(code, streams[0].getvalue().decode(), streams[1].getvalue().decode())
