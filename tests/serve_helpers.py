"""Photos for the serve tests: JPEGs with EXIF GPS, written with Pillow into tmp_path."""
from __future__ import annotations

from PIL import Image


def gps_jpeg(path, lat_dms=(45.0, 48.0, 0.0), lon_dms=(15.0, 58.0, 48.0), size=(320, 240)) -> str:
    """A JPEG whose EXIF says it was taken at ``lat_dms`` N, ``lon_dms`` E (Zagreb by default)."""
    exif = Image.Exif()
    exif[271], exif[272] = "Nokia", "N95 8GB"
    exif.get_ifd(0x8825).update({1: "N", 2: lat_dms, 3: "E", 4: lon_dms})
    Image.new("RGB", size, (90, 140, 200)).save(path, exif=exif)
    return str(path)
