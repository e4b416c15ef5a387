"""OCR photos/s on a device: what a GPU check compares (CUDA against CPU)."""
from __future__ import annotations

import time
from typing import Sequence

from PIL import Image

from geocli.ocr.base import build_ocr_engine
from geocli.ocr.engines import engine_for_device


def ocr_throughput(images: Sequence[Image.Image], device: str = "cpu", engine: str = "rapidocr",
                   batch_size: int = 8, **options) -> dict:
    """Read ``images`` in batches on ``device`` after a one-batch warm-up (sessions, CUDA kernels).

    Returns ``{"engine", "device", "provider", "photos_per_s", "lines", "notice"}``: the engine that
    actually read (with CUDA, RapidOCR may hand over to EasyOCR, see ``engine_for_device``) and
    where it ran."""
    name, notice = engine_for_device(engine, device)
    reader = build_ocr_engine(name, device=device, **options)
    batches = [list(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
    if batches:
        reader.read_batch(batches[0])
    start = time.perf_counter()
    lines = sum(len(boxes) for batch in batches for boxes in reader.read_batch(batch))
    seconds = time.perf_counter() - start
    return {"engine": name, "device": device, "provider": getattr(reader, "provider", "cpu"),
            "photos_per_s": len(images) / seconds if seconds > 0 else float("nan"), "lines": lines,
            "notice": notice}
