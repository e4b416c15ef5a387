"""Where a photo may show text: rectangles around what a coarse detection pass finds text-like.

The detector needs a phone photo upscaled (its short side to ~736 px) to find small text, which
costs 2.4x the pixels of the photo itself. Text covers a small part of most photos, so the
detector first runs at the photo's own resolution; only the rectangles around everything above a
low probability (``thresh``, well below the detector's own 0.3) are detected again at full size.
A photo with nothing text-like costs the coarse pass alone.
"""
from __future__ import annotations

import cv2
import numpy as np

Rect = tuple[int, int, int, int]  # x0, y0, x1, y1 in photo pixels


def _overlap(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def merge_overlapping(rects: list[Rect]) -> list[Rect]:
    """Unions of overlapping rectangles, until none overlap."""
    rects = list(rects)
    merged = True
    while merged:
        merged = False
        for i in range(len(rects)):
            for j in range(i + 1, len(rects)):
                if _overlap(rects[i], rects[j]):
                    a, b = rects[i], rects.pop(j)
                    rects[i] = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
                    merged = True
                    break
            if merged:
                break
    return rects


def text_regions(prob: np.ndarray, shape: tuple[int, int], thresh: float = 0.1, max_share: float = 0.6,
                 max_regions: int = 64) -> list[Rect] | None:
    """Rectangles (photo pixels) around every text-like blob of the coarse probability map ``prob``
    (H', W'), with a margin of half a blob's height (at least 16 px); ``[]``: nothing text-like;
    None: the rectangles would cover more than ``max_share`` of the photo (detect it whole)."""
    height, width = shape
    mask = (prob > thresh).astype(np.uint8)
    if not mask.any():
        return []
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count - 1 > 4 * max_regions:
        return None
    sy, sx = height / prob.shape[0], width / prob.shape[1]
    rects = []
    for x, y, w, h, _ in stats[1:]:
        margin = max(16.0, 0.5 * h * sy)
        rects.append((max(0, int(x * sx - margin)), max(0, int(y * sy - margin)),
                      min(width, int((x + w) * sx + margin)), min(height, int((y + h) * sy + margin))))
    rects = merge_overlapping(rects)
    covered = sum((r[2] - r[0]) * (r[3] - r[1]) for r in rects) / float(height * width)
    return None if covered > max_share or len(rects) > max_regions else rects
