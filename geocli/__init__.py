"""geocli: where was this photo taken? Multimodal photo geolocation as a library and a CLI.

Kept light on purpose: importing ``geocli`` loads no torch; heavy parts load when used.
"""
from __future__ import annotations

from geocli.version import __version__


def load_model(model: str | None = None, **options):
    """A ready geolocator: a checkpoint folder from ``geocli train``, a name from ``geocli models``,
    or (``None``) the default zero-shot geolocator. ``model.predict(paths)`` yields result records."""
    from geocli.predict.predictor import load_geolocator

    return load_geolocator(model, **options)


__all__ = ["__version__", "load_model"]
