"""Heads over the fused features (country, geocell, scene, regression, gallery, retrieval), their
losses, and the turning of head outputs into ranked locations.

Importing this package registers every head (``HEADS``).
"""
from geocli.heads.base import HEADS, FeatureSpec, Head
from geocli.heads import classification as _classification  # noqa: F401  (registers country, geocell, scene, regressions)
from geocli.heads import retrieval as _retrieval  # noqa: F401  (registers the gallery and retrieval heads)

__all__ = ["HEADS", "FeatureSpec", "Head"]
