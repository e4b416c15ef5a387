"""Fusion of branch embeddings (concat, TransLocator CLS exchange), heads, losses, the ``GeoModel``.

Importing this package registers every fusion (``FUSIONS``) and head (``HEADS``).
"""
from .concat import ConcatFusion
from .heads import HEADS, FeatureSpec
from .model import GeoModel, build_branch_module, build_head
from .postprocess import to_records
from .translocator import FUSIONS, TransLocator, ViTTokens

__all__ = [
    "FUSIONS", "HEADS", "ConcatFusion", "FeatureSpec", "GeoModel", "TransLocator", "ViTTokens",
    "build_branch_module", "build_head", "to_records",
]
