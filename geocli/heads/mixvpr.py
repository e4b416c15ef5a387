"""MixVPR feature-mixer aggregation for reference-image retrieval (Ali-Bey et al. 2023, as DINO-Mix
uses it on ViT tokens, Huang et al. 2024). The reference index it is searched against is in
``references.py``.

The ViT's patch tokens (B, N, D) are read as D feature maps of N = h*w positions. L isotropic
feature-mixer blocks (LayerNorm, MLP over the N positions, residual) fold global spatial context
into every map; a depth projection maps D -> d channels and a row projection N -> r rows; the
d*r result, flattened and L2-normalised, is the global descriptor. DINO-Mix found two mixer
blocks best.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FeatureMixerLayer(nn.Module):
    """x + MLP(LayerNorm(x)) along the last (spatial) axis."""

    def __init__(self, positions: int, mlp_ratio: float = 1.0):
        super().__init__()
        hidden = max(1, int(positions * mlp_ratio))
        self.mix = nn.Sequential(
            nn.LayerNorm(positions), nn.Linear(positions, hidden), nn.ReLU(), nn.Linear(hidden, positions)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mix(x)


class MixVPR(nn.Module):
    """Patch tokens (B, N, D) -> L2-normalised descriptor (B, out_channels * out_rows)."""

    def __init__(self, in_channels: int, in_tokens: int, out_channels: int = 64, out_rows: int = 4,
                 mixer_depth: int = 2, mlp_ratio: float = 1.0):
        super().__init__()
        self.in_tokens = in_tokens
        self.mixer = nn.Sequential(*(FeatureMixerLayer(in_tokens, mlp_ratio) for _ in range(mixer_depth)))
        self.channel_proj = nn.Linear(in_channels, out_channels)
        self.row_proj = nn.Linear(in_tokens, out_rows)
        self.out_dim = out_channels * out_rows

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.shape[1] != self.in_tokens:
            raise ValueError(f"MixVPR was built for {self.in_tokens} patch tokens, got {tokens.shape[1]}")
        x = self.mixer(tokens.transpose(1, 2))  # (B, D, N): mix over positions
        x = self.channel_proj(x.transpose(1, 2))  # (B, N, d)
        x = self.row_proj(x.transpose(1, 2))  # (B, d, r)
        return F.normalize(x.flatten(1), dim=-1)
