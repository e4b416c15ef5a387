"""What a set of heads learns from the training photos, asked of each head: which heads the data
can teach (``Head.missing_labels``), the label spaces their outputs mean (``Head.add_labels``), the
batch targets of a manifest's photos (``Head.targets``) and the classes the class-balanced sampler
equalises (``Head.sample_classes``). Training from a manifest and from shards both use these.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import numpy as np

from geocli.config import LabelSpaces
from geocli.heads.base import HEADS

if TYPE_CHECKING:
    from geocli.datasets import Manifest


def trainable_heads(heads: list[str], train: Manifest, log: Callable[[str], None]) -> list[str]:
    """The heads the training data can teach (``Head.missing_labels``): the others are left out (an
    untrained scene head would print confident nonsense), and the log says so."""
    kept = []
    for name in heads:
        missing = HEADS.get(name).missing_labels(train)
        if missing:
            log(f"warning: {missing}, so the {name} head is left out")
        else:
            kept.append(name)
    return kept


def build_label_spaces(train: Manifest, heads: list[str], cells: list[list[int]] | None) -> LabelSpaces:
    """What each head's outputs mean, learned from the training samples (``Head.add_labels``:
    country list, geocell hierarchy, ...)."""
    labels = LabelSpaces()
    for name in heads:
        HEADS.get(name).add_labels(labels, train, cells)
    return labels


def manifest_targets(labels: LabelSpaces, manifest: Manifest, heads: list[str]) -> dict:
    """Batch-format targets (NumPy) for every sample of ``manifest``: "gps", then each head's own
    (``Head.targets``)."""
    lat, lon = np.asarray(manifest.lat, np.float64), np.asarray(manifest.lon, np.float64)
    out = {"gps": np.stack([lat, lon], axis=1).astype(np.float32)}
    for name in heads:
        out.update(HEADS.get(name).targets(labels, manifest))
    return out


def balance_labels(targets: dict, heads: list[str]) -> np.ndarray:
    """The class the class-balanced sampler equalises: that of the first location head (by
    ``Head.location_priority``: finest geocell before country) with classes of places
    (``Head.sample_classes``), else one class for all."""
    located = sorted((HEADS.get(h) for h in heads if HEADS.get(h).location_priority is not None),
                     key=lambda cls: cls.location_priority)
    for cls in located:
        classes = cls.sample_classes(targets)
        if classes is not None:
            return classes
    return np.zeros(len(targets["gps"]), np.int64)
