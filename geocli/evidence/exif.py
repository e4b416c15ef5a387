"""EXIF evidence: GPS position, camera make/model and capture time.

Photos carry broken metadata often enough (truncated GPS blocks, zero denominators, latitudes of
200 degrees written by buggy apps), so reading never raises: anything unusable becomes ``None``
plus a note saying why, and the note is shown to the user as evidence.
"""
from __future__ import annotations

import math
import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field

from PIL import Image

from geocli.geo.distance import validate_coordinates

GPS_IFD, EXIF_IFD = 0x8825, 0x8769
MAKE, MODEL, DATETIME, DATETIME_ORIGINAL = 271, 272, 306, 36867
GPS_LAT_REF, GPS_LAT, GPS_LON_REF, GPS_LON = 1, 2, 3, 4


@dataclass
class ExifInfo:
    """What EXIF says about a photo; ``notes`` explain missing or rejected values."""

    gps: tuple[float, float] | None = None
    camera: str | None = None
    datetime: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        gps = {"lat": self.gps[0], "lon": self.gps[1]} if self.gps else None
        return {"gps": gps, "camera": self.camera, "datetime": self.datetime}

    def lines(self) -> list[str]:
        """Human-readable evidence lines: GPS, camera, capture time, then the notes."""
        lines = []
        if self.gps:
            lines.append(f"EXIF GPS {self.gps[0]:.5f}, {self.gps[1]:.5f}")
        if self.camera:
            lines.append(f"camera: {self.camera}")
        if self.datetime:
            lines.append(f"captured: {self.datetime}")
        return lines + self.notes


def _text(value) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    value = str(value).replace("\x00", "").strip() if value is not None else ""
    return value or None


def _camera(exif: Image.Exif) -> str | None:
    """'Make Model', without repeating the make when the model already starts with it."""
    make, model = _text(exif.get(MAKE)), _text(exif.get(MODEL))
    if make and model and model.lower().startswith(make.lower().split()[0]):
        return model
    return " ".join(p for p in (make, model) if p) or None


def _datetime(exif: Image.Exif) -> str | None:
    """Capture time as ISO 8601 local time ('2010-01-27T13:54:08'), else the raw string."""
    raw = _text(exif.get_ifd(EXIF_IFD).get(DATETIME_ORIGINAL)) or _text(exif.get(DATETIME))
    if raw and len(raw) >= 19 and raw[4] == ":" and raw[7] == ":":
        return raw[:4] + "-" + raw[5:7] + "-" + raw[8:10] + "T" + raw[11:19]
    return raw


def _degrees(dms) -> float:
    """Degrees from EXIF (degrees, minutes, seconds) rationals; a bare number is taken as degrees."""
    parts = [float(v) for v in (dms if isinstance(dms, (tuple, list)) else (dms,))]
    if not 1 <= len(parts) <= 3:
        raise ValueError(f"{len(parts)} GPS components")
    return sum(v / 60**i for i, v in enumerate(parts))


def _signed(value: float, ref, negative: str) -> float:
    ref = (_text(ref) or "").upper()[:1]
    return -abs(value) if ref == negative else value


def _gps(exif: Image.Exif, notes: list[str]) -> tuple[float, float] | None:
    block = exif.get_ifd(GPS_IFD)
    if not block:
        return None
    if GPS_LAT not in block or GPS_LON not in block:
        notes.append("EXIF GPS block has no latitude/longitude; GPS ignored")
        return None
    try:
        lat = _signed(_degrees(block[GPS_LAT]), block.get(GPS_LAT_REF), "S")
        lon = _signed(_degrees(block[GPS_LON]), block.get(GPS_LON_REF), "W")
    except (TypeError, ValueError, ZeroDivisionError, OverflowError) as exc:
        notes.append(f"EXIF GPS is unreadable ({exc}); GPS ignored")
        return None
    if not (math.isfinite(lat) and math.isfinite(lon)):
        notes.append("EXIF GPS is unreadable (not a number, e.g. a zero denominator); GPS ignored")
        return None
    if not bool(validate_coordinates(lat, lon)):
        notes.append(f"EXIF GPS is out of range (lat {lat:.4g}, lon {lon:.4g}); GPS ignored")
        return None
    return round(lat, 7), round(lon, 7)


@contextmanager
def _noting_damage(notes: list[str]):
    """Pillow warns (rather than raises) about damaged EXIF: a note for the user, not noise on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        yield
    damaged = [w for w in caught if issubclass(w.category, UserWarning)]
    if damaged:
        notes.append(f"EXIF is damaged ({' '.join(str(damaged[0].message).split())}); used what could be read")


def exif_from_image(image: Image.Image) -> ExifInfo:
    """EXIF of an opened image; never raises."""
    info = ExifInfo()
    try:
        with _noting_damage(info.notes):
            exif = image.getexif()
            info.camera, info.datetime = _camera(exif), _datetime(exif)
            info.gps = _gps(exif, info.notes)
    except Exception as exc:  # Pillow raises many types on corrupt EXIF; evidence must not crash
        info.notes.append(f"EXIF is unreadable ({type(exc).__name__}); ignored")
    return info


def read_exif(path: str | os.PathLike | None, image: Image.Image | None = None) -> ExifInfo:
    """EXIF from the file at ``path`` (decoded images may have lost it), else from ``image``."""
    if path is not None and os.path.isfile(path):
        notes: list[str] = []
        try:
            with _noting_damage(notes), Image.open(path) as img:  # JPEG reads EXIF on open
                info = exif_from_image(img)
        except Exception as exc:  # unreadable file: the image loader reports it; here just a note
            return ExifInfo(notes=[f"EXIF is unreadable ({type(exc).__name__}); ignored"])
        info.notes = [*info.notes, *notes]
        return info
    return exif_from_image(image) if image is not None else ExifInfo()
