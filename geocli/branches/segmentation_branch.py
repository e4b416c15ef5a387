"""Segmentation branch (TransLocator's seg-ViT): segmenter -> rendered colour map -> ViT.

The ViT is an ``RGBBranch`` (same weights options, same token API for the per-block CLS fusion).
The segmenter is a frozen tool, not part of the model's state dict: training normally reads maps
precomputed on disk (``segmenter="precomputed"``), and a checkpoint stores only the ViT.
Rendered maps are resized with nearest neighbour so class colours never blend.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from PIL import Image
from torch import nn

from geocli.segmentation import MapRenderer
from geocli.branches.base import BRANCHES, Branch, Preprocess, Trainable
from geocli.branches.rgb import RGBBranch

@BRANCHES.register("seg")
class SegmentationBranch(Branch):
    """Embeds the rendered segmentation map of a photo: (B, out_dim).

    ``model`` / ``pretrained`` / ``weights`` / ``model_kwargs`` configure the ViT exactly as for the
    RGB branch; ``segmenter`` (+ ``segmenter_options``) names the backend that makes the maps.
    """

    reads_label_maps = True

    @classmethod
    def train_options(cls, cfg, paired: bool, options: dict, settings: dict) -> dict:
        """A seg-map ViT without pretrained weights is a new layer: it trains (fine-tuned), whether
        it is one of a TransLocator pair or on its own. With weights it follows the run's setting."""
        has_weights = options.get("pretrained") or options.get("weights")
        return {"trainable": cfg.trainable if has_weights or paired else "finetune"}

    def __init__(
        self,
        model: str = "vit_base_patch16_224",
        pretrained: bool = False,
        weights: str | None = None,
        trainable: Trainable = "freeze",
        image_size: int | None = None,
        model_kwargs: dict[str, Any] | None = None,
        segmenter: str | None = "torchvision-lraspp",
        segmenter_options: dict[str, Any] | None = None,
        label_space: str | None = None,
    ) -> None:
        super().__init__()
        vit = dict(model=model, pretrained=pretrained, weights=weights, trainable=trainable,
                   image_size=image_size, model_kwargs=dict(model_kwargs or {}))
        self._config = dict(vit, segmenter=segmenter, segmenter_options=dict(segmenter_options or {}),
                            label_space=label_space)
        self.vit = RGBBranch(**vit)
        self.out_dim = self.vit.out_dim
        base = self.vit.preprocess
        self.preprocess = Preprocess(image_size=base.image_size, mean=base.mean, std=base.std,
                                     crop_pct=base.crop_pct, interpolation="nearest", color_jitter=0.0)
        self.renderer = MapRenderer(segmenter, segmenter_options, label_space)  # not in the state dict
        self.trainable = self.vit.trainable

    @property
    def segmenter(self):
        return self.renderer.segmenter

    @property
    def label_space(self):
        return self.renderer.label_space

    def backbone(self) -> nn.Module:
        return self.vit.backbone()

    def block_list(self) -> Sequence[nn.Module]:
        return self.vit.block_list()

    def set_trainable(self, mode: Trainable) -> "SegmentationBranch":
        self.vit.set_trainable(mode)
        self.trainable = mode
        self._config["trainable"] = mode
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Rendered seg maps, transformed by ``transform()``, -> (B, out_dim)."""
        return self.vit(x)

    def segment(self, images: Sequence[Image.Image], paths: Sequence[str] | None = None) -> list:
        """Class-index maps (H, W) uint8, one per image."""
        return self.renderer.segment(images, paths)

    def render_maps(self, images: Sequence[Image.Image], paths: Sequence[str] | None = None) -> list[Image.Image]:
        """The colour images the ViT sees (write these to disk to precompute a dataset)."""
        return self.renderer.render_maps(images, paths)

    @torch.no_grad()
    def encode_images(self, images: Sequence[Image.Image], batch_size: int = 32,
                      paths: Sequence[str] | None = None) -> torch.Tensor:
        """Photos -> segment -> render -> ViT embeddings (N, out_dim)."""
        maps = self.render_maps(images, paths)
        return super().encode_images(maps, batch_size)

    # token API, delegated to the ViT (TransLocator fuses the CLS tokens of rgb and seg per block)
    @property
    def blocks(self) -> nn.Module:
        return self.vit.blocks

    def tokens_in(self, x: torch.Tensor) -> torch.Tensor:
        return self.vit.tokens_in(x)

    def run_block(self, index: int, x: torch.Tensor) -> torch.Tensor:
        return self.vit.run_block(index, x)

    def pool_tokens(self, x: torch.Tensor) -> torch.Tensor:
        return self.vit.pool_tokens(x)

    def patch_tokens(self, x: torch.Tensor) -> torch.Tensor:
        return self.vit.patch_tokens(x)

    def encode_tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.vit.encode_tokens(x)

    @property
    def has_cls(self) -> bool:
        return self.vit.has_cls

    @property
    def token_shape(self) -> tuple[int | None, int | None]:
        return self.vit.token_shape
