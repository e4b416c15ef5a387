"""Tiny configs and data shared by the fusion, heads and checkpoint tests (offline, seconds)."""
from __future__ import annotations

import numpy as np
import torch

from geocli.config import BranchConfig, FusionConfig, HeadConfig, LabelSpaces, ModelConfig
from geocli.geo.cells import GeocellHierarchy, PartitionSpec

#: Two well-separated clusters per region, so coarse and fine partitions differ.
CENTRES = [(45.8, 16.0), (48.85, 2.35), (40.7, -74.0), (-33.9, 151.2), (35.7, 139.7), (-22.9, -43.2)]
COUNTRIES = ["HR", "FR", "US", "AU", "JP", "BR"]


def tiny_vit_options(width: int = 32, depth: int = 2, img: int = 32, patch: int = 8) -> dict:
    return {
        "model": "vit_tiny_patch16_224",
        "trainable": "finetune",
        "model_kwargs": {"img_size": img, "patch_size": patch, "embed_dim": width, "depth": depth, "num_heads": 2},
    }


def tiny_vit(width: int = 32, depth: int = 2, img: int = 32, patch: int = 8):
    import timm

    return timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=img, patch_size=patch,
                             embed_dim=width, depth=depth, num_heads=2, num_classes=0)


def coords(n_per_centre: int = 40, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pts = [np.asarray(c) + rng.normal(scale=0.3, size=(n_per_centre, 2)) for c in CENTRES]
    return np.concatenate(pts)


def hierarchy() -> GeocellHierarchy:
    specs = (PartitionSpec("coarse", 5, 200, 0, 2), PartitionSpec("fine", 5, 20, 0, 5))
    return GeocellHierarchy.build(*coords().T, specs=specs)


def labels() -> LabelSpaces:
    return LabelSpaces(countries=COUNTRIES, geocells=hierarchy().to_dict())


def config(fusion: str = "translocator", heads=None, branches=None, **fusion_kw) -> ModelConfig:
    branches = branches or [
        BranchConfig("rgb", options=tiny_vit_options()),
        BranchConfig("seg", options=dict(tiny_vit_options(width=48), segmenter=None)),  # maps come rendered
        BranchConfig("clip", input="embedding", embed_dim=16),
        BranchConfig("ocr", input="embedding", embed_dim=8),
    ]
    heads = heads or [HeadConfig("country"), HeadConfig("geocell", options={"tau_km": 70.0}), HeadConfig("scene")]
    return ModelConfig(branches=branches, fusion=FusionConfig(name=fusion, dropout=0.0, **fusion_kw),
                       heads=heads, labels=labels())


def batch(n: int = 6, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    pts = coords(seed=seed)[::max(1, len(coords()) // n)][:n]
    return {
        "rgb": torch.randn(n, 3, 32, 32, generator=g),
        "seg": torch.randn(n, 3, 32, 32, generator=g),
        "clip": torch.randn(n, 16, generator=g),
        "ocr": torch.randn(n, 8, generator=g),
        "ocr_mask": torch.arange(n) % 2 == 0,
        "gps": torch.as_tensor(pts, dtype=torch.float32),
        "country": torch.as_tensor([COUNTRIES.index(c) for c in _country_of(pts)]),
        "scene": torch.arange(n) % 3,
        "place": torch.arange(n) // 2,
    }


def _country_of(pts: np.ndarray) -> list[str]:
    d = np.linalg.norm(pts[:, None, :] - np.asarray(CENTRES)[None], axis=-1)
    return [COUNTRIES[i] for i in d.argmin(1)]
