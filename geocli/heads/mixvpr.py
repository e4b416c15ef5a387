"""MixVPR feature-mixer aggregation for reference-image retrieval (Ali-Bey et al. 2023, as DINO-Mix
uses it on ViT tokens, Huang et al. 2024), plus the kNN reference index and its recall@K.

The ViT's patch tokens (B, N, D) are read as D feature maps of N = h*w positions. L isotropic
feature-mixer blocks (LayerNorm, MLP over the N positions, residual) fold global spatial context
into every map; a depth projection maps D -> d channels and a row projection N -> r rows; the
d*r result, flattened and L2-normalised, is the global descriptor. DINO-Mix found two mixer
blocks best. Retrieval success is VPR's: a query counts as found at K when any of its K nearest
references lies within 25 m (great-circle, ``haversine_km``).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from geocli.metrics import retrieval_recall


VPR_RADIUS_KM = 0.025


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


class ReferenceIndex:
    """Descriptors of geotagged reference images; cosine kNN search."""

    def __init__(self, descriptors: torch.Tensor, coords):
        self.descriptors = F.normalize(torch.as_tensor(descriptors).float(), dim=-1)
        self.coords = np.asarray(coords, np.float64).reshape(-1, 2)
        if len(self.coords) != len(self.descriptors):
            raise ValueError("one coordinate per reference descriptor is needed")

    def __len__(self) -> int:
        return len(self.coords)

    @torch.no_grad()
    def search(self, queries: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(similarities, indices), each (Q, k), nearest first."""
        sims = F.normalize(queries.float(), dim=-1) @ self.descriptors.to(queries.device).t()
        return sims.topk(min(k, len(self)), dim=-1)

    def recall_at_k(self, queries: torch.Tensor, query_coords, ks=(1, 5, 10),
                    radius_km: float = VPR_RADIUS_KM) -> dict[str, float]:
        """Share of queries with a true match (within ``radius_km``) among their K nearest."""
        _, idx = self.search(queries, max(ks))
        return recall_from_neighbours(idx.cpu().numpy(), self.coords, query_coords, ks, radius_km)


def recall_from_neighbours(neighbours: np.ndarray, ref_coords, query_coords, ks=(1, 5, 10),
                           radius_km: float = VPR_RADIUS_KM) -> dict[str, float]:
    """recall@K from ranked neighbour indices (Q, K_max) and both coordinate sets."""
    ref, q = np.asarray(ref_coords, np.float64), np.asarray(query_coords, np.float64).reshape(-1, 2)
    recall = retrieval_recall(q[:, 0], q[:, 1], ref[:, 0], ref[:, 1], neighbours, ks, radius_km)
    return {f"recall@{k}": v for k, v in recall.items()}
