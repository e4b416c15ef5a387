"""Losses for the heads: classification, geocell haversine smoothing, coordinates, metric learning.

Every distance goes through ``geocli.geo.distance.haversine_km`` (differentiable on tensors).
Targets of -1 mean "unknown" and are ignored, so a batch can mix samples with and without a label.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from geocli.geo.distance import EARTH_RADIUS_KM, haversine_km, pairwise_haversine_km

IGNORE = -1


def classification_loss(logits: torch.Tensor, target: torch.Tensor, label_smoothing: float = 0.0,
                        weight: torch.Tensor | None = None):
    """Cross-entropy with label smoothing and optional per-class ``weight``; samples whose target
    is -1 are left out."""
    if target.dim() == 2:  # soft targets (haversine smoothing)
        return soft_cross_entropy(logits, target)
    keep = target != IGNORE
    if not keep.any():
        return logits.sum() * 0.0
    weight = None if weight is None else weight.to(logits.device, logits.dtype)
    return F.cross_entropy(logits[keep], target[keep], weight=weight, label_smoothing=label_smoothing)


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against a target distribution (rows sum to 1)."""
    return -(target * F.log_softmax(logits, dim=-1)).sum(dim=-1).mean()


def haversine_smoothed_targets(gps: torch.Tensor, cell_points: torch.Tensor, tau_km: float = 75.0):
    """PIGEON's geocell label smoothing: target_i ∝ exp(-(d_i - d_min) / tau).

    ``d_i`` is the great-circle distance from the true coordinate to cell i's point (member mean),
    ``d_min`` the smallest of them, so the nearest cell gets the largest share and cells a few
    ``tau`` away get almost nothing. Rows sum to 1. (B, 2) x (C, 2) -> (B, C).
    """
    d = pairwise_haversine_km(gps[:, 0].double(), gps[:, 1].double(), cell_points[:, 0].double(), cell_points[:, 1].double())
    d = d - d.min(dim=1, keepdim=True).values
    weights = torch.exp(-d / tau_km)
    return (weights / weights.sum(dim=1, keepdim=True)).to(gps.dtype if gps.is_floating_point() else torch.float32)


def equirectangular_km(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Equirectangular approximation of the distance (km): smooth gradients, exact for short hops.

    Longitude difference wrapped into [-180, 180) so the antimeridian is not a wall.
    """
    lat1, lat2 = torch.deg2rad(pred[:, 0]), torch.deg2rad(target[:, 0])
    dlon = torch.remainder(pred[:, 1] - target[:, 1] + 180.0, 360.0) - 180.0
    x = torch.deg2rad(dlon) * torch.cos((lat1 + lat2) / 2)
    y = lat2 - lat1
    return EARTH_RADIUS_KM * torch.sqrt(x * x + y * y + 1e-12)


def coordinate_loss(pred: torch.Tensor, target: torch.Tensor, kind: str = "haversine") -> torch.Tensor:
    """Coordinate regression loss on (lat, lon) degrees.

    ``mse``: on coordinates scaled to [-1, 1] (lat/90, lon/180); ``equirectangular`` and
    ``haversine``: mean distance in units of the Earth radius (radians of arc), so all three are O(1).
    """
    if kind == "mse":
        scale = pred.new_tensor([90.0, 180.0])
        return F.mse_loss(pred / scale, target / scale)
    if kind == "equirectangular":
        return equirectangular_km(pred, target).mean() / EARTH_RADIUS_KM
    if kind == "haversine":
        d = haversine_km(pred[:, 0], pred[:, 1], target[:, 0], target[:, 1])
        return d.mean() / EARTH_RADIUS_KM
    raise ValueError(f"unknown coordinate loss {kind!r}; valid: mse, equirectangular, haversine")


def multi_similarity_loss(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    alpha: float = 1.0,
    beta: float = 50.0,
    base: float = 0.0,
    epsilon: float = 0.1,
) -> torch.Tensor:
    """Multi-similarity loss with its pair miner (Wang et al. 2019), as DINO-Mix / MixVPR train.

    Cosine similarities S between L2-normalised embeddings. A negative pair is kept when
    S_ik + eps > min positive similarity of the anchor, a positive when S_ij - eps < max negative;
    loss_i = 1/alpha log(1 + sum_P exp(-alpha (S_ij - base))) + 1/beta log(1 + sum_N exp(beta (S_ik - base))).
    Anchors with no positive or no negative in the batch contribute nothing. ``labels``: (B,) place
    ids, or a (B, B) boolean "same place" matrix (e.g. from GPS distance).
    """
    sim = embeddings @ embeddings.t()
    same = labels if labels.dim() == 2 else labels[:, None] == labels[None, :]
    pos, neg = _mine_pairs(sim, same, epsilon)
    pos_term = _log1p_sum_exp(-alpha * (sim - base), pos) / alpha
    neg_term = _log1p_sum_exp(beta * (sim - base), neg) / beta
    valid = pos.any(dim=1) & neg.any(dim=1)
    if not valid.any():
        return sim.sum() * 0.0
    return (pos_term + neg_term)[valid].mean()


def _mine_pairs(sim: torch.Tensor, same: torch.Tensor, epsilon: float):
    """The MS miner: hard positives (less similar than the closest negative + eps) and hard
    negatives (more similar than the farthest positive - eps), as boolean (B, B) masks."""
    eye = torch.eye(len(sim), dtype=torch.bool, device=sim.device)
    pos, neg = same & ~eye, ~same
    big = torch.finfo(sim.dtype).max
    min_pos = torch.where(pos, sim, sim.new_full((), big)).min(dim=1, keepdim=True).values
    max_neg = torch.where(neg, sim, sim.new_full((), -big)).max(dim=1, keepdim=True).values
    return pos & (sim - epsilon < max_neg), neg & (sim + epsilon > min_pos)


def _log1p_sum_exp(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """log(1 + sum over mask of exp(x)), per row, computed stably."""
    x = torch.where(mask, x, torch.full_like(x, -math.inf))
    zeros = x.new_zeros(x.shape[0], 1)
    return torch.logsumexp(torch.cat([zeros, x], dim=1), dim=1)


def weighted_sum(parts: dict[str, torch.Tensor], weights: dict[str, float]) -> torch.Tensor:
    """The multi-task loss: sum of each head's loss times its configured weight."""
    if not parts:
        raise ValueError("no head produced a loss: the batch carries none of the heads' targets")
    return sum(weights.get(name, 1.0) * value for name, value in parts.items())
