"""Write a few sample photos (and a manifest of where they were "taken") to try geocli on.

    python examples/make_sample_photos.py photos/

* ``split.jpg``: a plain picture whose EXIF says it was taken in Split, Croatia (GPS, camera, time);
* ``sign.jpg``: a street sign reading "ZAGREB" (the OCR evidence finds the place);
* ``sky.jpg``: nothing to go on (geocli says so rather than guessing);
* ``manifest.csv``: ``image,lat,lon`` for the three, so ``geocli eval`` can score the guesses.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

PLACES = {"split.jpg": (43.5081, 16.4402), "sign.jpg": (45.8150, 15.9819), "sky.jpg": (46.0511, 14.5051)}


def _dms(value: float) -> tuple[float, float, float]:
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    return float(degrees), float(minutes), round((value - degrees - minutes / 60) * 3600, 2)


def gps_photo(path: Path, lat: float, lon: float) -> None:
    exif = Image.Exif()
    exif[271], exif[272] = "Nokia", "N95 8GB"
    exif.get_ifd(0x8769)[36867] = "2010:01:27 13:54:08"
    exif.get_ifd(0x8825).update({1: "N", 2: _dms(lat), 3: "E", 4: _dms(lon)})
    image = Image.new("RGB", (800, 600), (96, 150, 210))
    ImageDraw.Draw(image).rectangle([0, 420, 800, 600], fill=(200, 190, 160))
    image.save(path, exif=exif, quality=90)


def sign_photo(path: Path, text: str) -> None:
    image = Image.new("RGB", (800, 600), (150, 170, 190))
    draw = ImageDraw.Draw(image)
    draw.rectangle([150, 200, 650, 360], fill=(20, 70, 160), outline="white", width=8)
    draw.text((400, 280), text, fill="white", anchor="mm", font=ImageFont.load_default(size=96))
    image.save(path, quality=92)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    folder = parser.parse_args().folder
    folder.mkdir(parents=True, exist_ok=True)
    gps_photo(folder / "split.jpg", *PLACES["split.jpg"])
    sign_photo(folder / "sign.jpg", "ZAGREB")
    Image.new("RGB", (800, 600), (120, 170, 230)).save(folder / "sky.jpg", quality=90)
    rows = ["image,lat,lon"] + [f"{name},{lat},{lon}" for name, (lat, lon) in PLACES.items()]
    (folder / "manifest.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    print(f"wrote {len(PLACES)} photos and manifest.csv to {folder}")


if __name__ == "__main__":
    main()
