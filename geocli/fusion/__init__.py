"""Fusion of branch embeddings: concatenation and TransLocator's per-layer CLS exchange.

Importing this package registers every fusion (``FUSIONS``).
"""
from geocli.fusion.concat import ConcatFusion
from geocli.fusion.translocator import FUSIONS, TransLocator

__all__ = ["FUSIONS", "ConcatFusion", "TransLocator"]
