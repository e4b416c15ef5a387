"""What every head shares: the registry, the features it reads, one MLP builder, and ``Head``,
the description the trainer and predictor ask instead of knowing head names.

A head is ``HEADS.get(name)(spec, labels, **options)`` with ``forward(features) -> dict``
(``features``: "embedding" (B, D) and "tokens" (B, N, D_tok) or None) and
``loss(out, batch, class_weights=None) -> Tensor | None`` (None when the batch carries none of its
targets). Adding a head is one module that subclasses ``Head`` and registers itself.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from geocli.registry import Registry


HEADS: Registry = Registry("head")


@dataclass(frozen=True)
class FeatureSpec:
    """What the fusion hands the heads: embedding width, and patch-token shape when available."""

    embed_dim: int
    token_dim: int | None = None
    num_tokens: int | None = None


def mlp(dims, dropout: float = 0.0, activate_last: bool = False) -> nn.Sequential:
    """Linear layers through the widths ``dims``, each but the last (every one with
    ``activate_last``) followed by ReLU and, when ``dropout``, Dropout."""
    dims = [int(d) for d in dims]
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(a, b))
        if activate_last or i < len(dims) - 2:
            layers += [nn.ReLU(), nn.Dropout(dropout)] if dropout else [nn.ReLU()]
    return nn.Sequential(*layers)


def trunk(in_dim: int, hidden=(), dropout: float = 0.0) -> tuple[nn.Module, int]:
    """The hidden layers in front of a classifier (the ViT/DINOv2 study's 512 + ReLU + Dropout 0.5;
    the ViT+CLIP thesis's 1024-512-256), or nothing: ``mlp`` with every layer activated.
    Returns (module, its output width)."""
    dims = [in_dim, *hidden]
    return mlp(dims, dropout, activate_last=True), int(dims[-1])


class Head(nn.Module):
    """Base of every head. Class attributes say what the engine needs to know:

    - ``always_trained``: every training batch carries this head's targets, so its loss reaches all
      its parameters (a head trained only on some batches makes DDP look for unused parameters).
    - ``location_priority``: the order in which heads are asked for a record's locations (lower
      first; None: the head yields no locations). The first present head ranks the guesses.
    - ``point_estimate``: it gives one point per photo (a regression); beside another location
      head its point is added after that head's ranked guesses.
    - ``searches_references``: it ranks reference photos by the descriptor in its output
      (``out["descriptor"]``); training re-encodes the training photos as its references every
      epoch (``set_references``) and reports recall@K against them.
    """

    always_trained: bool = True
    location_priority: int | None = None
    point_estimate: bool = False
    searches_references: bool = False

    @classmethod
    def add_labels(cls, labels, train, cells: list[list[int]] | None = None) -> None:
        """Fill in the part of ``labels`` (``LabelSpaces``) that says what this head's outputs mean,
        learned from the training photos ``train`` (a ``Manifest``): a class list, geocells.
        ``cells``: the run's geocell thresholds (None: scaled to the data)."""

    @classmethod
    def targets(cls, labels, manifest) -> dict:
        """Batch-format targets (NumPy, -1 for unknown) this head learns from, for every photo of
        ``manifest``; "gps" is every sample's already."""
        return {}

    @classmethod
    def sample_classes(cls, targets: dict):
        """Each training photo's class among this head's places (``targets`` as ``targets`` made
        them), which the class-balanced sampler equalises; None: the head has no such classes."""
        return None

    @classmethod
    def missing_labels(cls, train) -> str | None:
        """Why the training photos cannot teach this head (it is then left out), or None."""
        return None

    def loss(self, out: dict, batch: dict, class_weights: dict | None = None):
        raise NotImplementedError

    def locations(self, out: dict, k: int, predict, labels) -> list[list[tuple]]:
        """Per sample, up to ``k`` guesses ``(lat, lon, cell or None, probability or None)``, best
        first: by default the top of each sample's ``distributions``."""
        dists = self.distributions(out, predict, labels)
        if dists is None:
            raise NotImplementedError(f"{type(self).__name__} yields no locations")
        return [self.ranked(d, k, predict) for d in dists]

    def distributions(self, out: dict, predict, labels) -> list | None:
        """Per sample, the head's probabilities over its whole fixed set of places
        (``geocli.predict.record.Distribution``), or None when it states no such distribution
        (regressions, retrieval). Evidence and grouping act on these."""
        return None

    def ranked(self, dist, k: int, predict) -> list[tuple]:
        """The ``k`` most probable places of one distribution as location tuples, best first."""
        top = np.argsort(-dist.probs, kind="stable")[:k]
        cells = dist.cells
        return [(float(dist.points[i, 0]), float(dist.points[i, 1]), cells[i] if cells else None,
                 float(dist.probs[i])) for i in top]

    def class_counts(self, targets: dict) -> dict[str, tuple]:
        """For 1/frequency class weights: {weight key: (target indices, class count)} of its classes."""
        return {}


def _long(batch: dict, key: str, device) -> torch.Tensor | None:
    value = batch.get(key)
    return None if value is None else torch.as_tensor(value, device=device).long()


def _gps(batch: dict, device) -> torch.Tensor | None:
    value = batch.get("gps")
    return None if value is None else torch.as_tensor(value, device=device, dtype=torch.float32)
