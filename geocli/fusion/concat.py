"""Concat fusion: branch embeddings normalised per branch, concatenated with presence flags.

Each branch's vector is normalised on its own (L2 by default, so a wide branch cannot drown a
narrow one), multiplied by its presence mask, and followed by one flag (1 present, 0 absent).
A branch is absent for a sample when the batch does not carry it at all (switched off) or its
``<name>_mask`` entry is False (e.g. an image without text for OCR). Training and prediction go
through this same code, so a model sees "no text" exactly the same way in both; optional branch
dropout (training only) teaches it to cope with missing branches.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from geocli.config import FusionConfig
from geocli.fusion.translocator import FUSIONS


@FUSIONS.register("concat")
class ConcatFusion(nn.Module):
    """``dims``: {source name: embedding width}, in the order they are concatenated.

    Every model ends in this stage; a fusion registered under another name may first encode some
    branches jointly (``joint_encoder``) and hand their embeddings on to it.
    """

    @classmethod
    def joint_branches(cls, cfg: FusionConfig) -> list[str]:
        """The branches this fusion encodes jointly (they train together): none for concatenation."""
        return []

    @classmethod
    def joint_encoder(cls, branches: dict[str, nn.Module], cfg: FusionConfig) -> nn.Module | None:
        return None

    def __init__(self, dims: dict[str, int], cfg: FusionConfig | None = None):
        super().__init__()
        cfg = cfg or FusionConfig()
        self.dims = dict(dims)
        self.normalize = cfg.normalize
        self.branch_dropout = cfg.branch_dropout
        self.norms = nn.ModuleDict(
            {n: nn.LayerNorm(d) for n, d in dims.items()} if cfg.normalize == "layernorm" else {}
        )
        self.dropout = nn.Dropout(cfg.dropout)

    @property
    def out_dim(self) -> int:
        return sum(self.dims.values()) + len(self.dims)

    def forward(self, embeddings: dict[str, torch.Tensor | None], masks: dict[str, torch.Tensor | None]):
        """(B, out_dim). ``embeddings[n]`` None = branch off; ``masks[n]`` (B,) bool or None = all on."""
        batch, ref = _batch_reference(embeddings)
        parts = []
        for name, dim in self.dims.items():
            present = self._presence(name, embeddings, masks, batch, ref)
            emb = embeddings.get(name)
            vec = self._norm(name, emb) * present[:, None] if emb is not None else ref.new_zeros(batch, dim)
            parts += [vec, present[:, None]]
        return self.dropout(torch.cat(parts, dim=1))

    def _presence(self, name, embeddings, masks, batch, ref) -> torch.Tensor:
        if embeddings.get(name) is None:
            return ref.new_zeros(batch)
        mask = masks.get(name)
        present = ref.new_ones(batch) if mask is None else mask.to(ref.dtype)
        if self.training and self.branch_dropout > 0:
            present = present * (torch.rand(batch, device=ref.device) >= self.branch_dropout).to(ref.dtype)
        return present

    def _norm(self, name: str, emb: torch.Tensor) -> torch.Tensor:
        if self.normalize == "l2":
            return F.normalize(emb, dim=-1)
        if self.normalize == "layernorm":
            return self.norms[name](emb)
        return emb


def _batch_reference(embeddings: dict[str, torch.Tensor | None]) -> tuple[int, torch.Tensor]:
    present = [e for e in embeddings.values() if e is not None]
    if not present:
        raise ValueError("every branch is switched off: nothing to fuse")
    return present[0].shape[0], present[0]
