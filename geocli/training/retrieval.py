"""Retrieval during training: the reference index a retrieval head searches (descriptors of the
training photos, eval mode), recall@K of validation queries against it, and the chance baseline.

The index travels with the checkpoint (``references.safetensors``), so a trained DINO-Mix model
predicts from its folder alone: a query's location is that of its nearest reference photos.
"""
from __future__ import annotations

import numpy as np
import torch

from geocli.heads.references import VPR_RADIUS_KM, ReferenceIndex, recall_from_neighbours
from geocli.runtime import to_device

RECALL_KS = (1, 5, 10)


def reference_head(model) -> str | None:
    """The name of the model's head that searches reference photos (``Head.searches_references``)."""
    return next((name for name, head in model.heads.items() if head.searches_references), None)


def descriptor(out: dict, head: str) -> torch.Tensor:
    """The reference-search descriptors (B, D) of head ``head`` in a model output, float on the CPU."""
    return out["heads"][head]["descriptor"].float().cpu()


@torch.no_grad()
def descriptors(view, loader, device) -> torch.Tensor:
    """Descriptors of every sample of ``loader`` (eval mode, loader order) by the reference head."""
    head = reference_head(view)
    was_training = view.training
    view.eval()
    parts = [descriptor(view(to_device(batch, device)), head) for batch in loader]
    view.train(was_training)
    return torch.cat(parts)


def refresh_references(view, loader, lat, lon, device) -> ReferenceIndex:
    """Re-encode the reference photos with the current weights and hand them to the head."""
    index = ReferenceIndex(descriptors(view, loader, device), np.stack([lat, lon], axis=1))
    view.heads[reference_head(view)].set_references(index)
    return index


def recall(index: ReferenceIndex, queries: torch.Tensor, lat, lon) -> dict[str, float]:
    """recall@1/5/10: a query is found when one of its K nearest references lies within 25 m."""
    return index.recall_at_k(queries, np.stack([lat, lon], axis=1), RECALL_KS, VPR_RADIUS_KM)


def chance_recall(ref_lat, ref_lon, lat, lon, seed: int = 0) -> dict[str, float]:
    """The same recall@K when the references are ranked at random: the floor to beat."""
    rng = np.random.default_rng(seed)
    k = min(max(RECALL_KS), len(ref_lat))
    ranked = np.stack([rng.choice(len(ref_lat), k, replace=False) for _ in range(len(lat))])
    return recall_from_neighbours(ranked, np.stack([ref_lat, ref_lon], axis=1), np.stack([lat, lon], axis=1),
                                  RECALL_KS, VPR_RADIUS_KM)
