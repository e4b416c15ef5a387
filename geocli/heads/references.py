"""The reference index of a retrieval model: descriptors of geotagged reference photos, cosine kNN,
and recall@K as visual place recognition counts it (a query is found at K when any of its K
nearest references lies within 25 m, great-circle). Training rebuilds it every epoch, checkpoints
store it, the retrieval head searches it."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from geocli.evaluate.metrics import retrieval_recall


VPR_RADIUS_KM = 0.025


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
