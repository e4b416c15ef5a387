"""Scoring a model on photos during training: loss, distance summary, country accuracy and, for
retrieval models, recall@1/5/10 against the reference index; plus the epoch's log line.

Retrieval models search a reference index: descriptors of the training photos (eval mode),
re-encoded every epoch and handed to the head (``refresh_references``). The index travels with the
checkpoint (``references.safetensors``), so a trained DINO-Mix model predicts from its folder
alone: a query's location is that of its nearest reference photos.

Under torchrun the validation set is sharded (``EvalShard``): each rank scores its own photos and
the per-photo rows are gathered, so every rank computes the same numbers from the whole set.
"""
from __future__ import annotations

import numpy as np
import torch

from geocli.datasets.manifest import manifest_countries
from geocli.training.distributed import World, gather_lists
from geocli.heads.references import VPR_RADIUS_KM, ReferenceIndex, recall_from_neighbours
from geocli.runtime import mixed_precision, to_device


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


@torch.no_grad()
def score(view, loader, manifest, weights: dict, device, amp: bool, references=None,
          world: World | None = None) -> dict:
    """Scores of ``manifest``'s photos as ``loader`` yields them; ``world``: gather a sharded loader."""
    rows, losses = _rows(view, loader, weights, device, amp, references is not None)
    rows = sorted(gather_lists(rows, world), key=lambda r: r[0])
    loss = sum(gather_lists(losses, world))
    unread = len(manifest) - len(rows)
    if unread:  # photos streamed from shards that could not be decoded: scored without them, and counted
        manifest = manifest.subset([r[0] for r in rows])
    result = {"loss": loss / max(len(manifest), 1), **_distances(manifest, [r[1] for r in rows])}
    if unread:
        result["unreadable"] = unread
    truth = manifest_countries(manifest)
    known = [(t, r[2]) for t, r in zip(truth, rows) if t]
    result["country_accuracy"] = float(np.mean([t == p for t, p in known])) if known else None
    if references is not None:
        result["recall"] = recall(references, torch.stack([r[3] for r in rows]), manifest.lat, manifest.lon)
    return result


def _rows(view, loader, weights, device, amp: bool, descriptors: bool) -> tuple[list, list]:
    """(index, top guess, top country, descriptor or None) per photo, and each batch's summed loss.
    The top guess and country are read from the records as ``geocli eval`` reads them."""
    from geocli.evaluate.prediction_table import table_from_records
    from geocli.evaluate.rankings import top_countries
    from geocli.heads.locations import to_records

    head = reference_head(view) if descriptors else None
    view.eval()
    rows, losses = [], []
    for batch in loader:
        batch = to_device(batch, device)
        with mixed_precision(device, amp):
            out = view(batch)
        losses.append(float(view.loss(out, batch, weights)[0]) * len(batch["index"]))
        desc = descriptor(out, head) if head is not None else None
        records = [{"image": "", **r} for r in to_records(view, out, top_k=1)]
        table = table_from_records(records, "<validation>", check=False)
        lat, lon = table.top_guesses()
        for j, (i, country) in enumerate(zip(batch["index"].tolist(), top_countries(table))):
            rows.append((i, (float(lat[j]), float(lon[j])), country, None if desc is None else desc[j]))
    view.train()
    return rows, losses


def _distances(manifest, guesses: list) -> dict:
    from geocli.geo.distance import haversine_km
    from geocli.evaluate.metrics import distance_summary

    g = np.asarray(guesses, np.float64).reshape(-1, 2)
    if np.isnan(g).all():
        return {}
    return distance_summary(haversine_km(manifest.lat, manifest.lon, g[:, 0], g[:, 1]))


def epoch_line(row: dict, epochs: int) -> str:
    val = row["val"]
    acc = val.get("accuracy", {})
    parts = [f"epoch {row['epoch']}/{epochs}", f"train loss {row['train_loss']:.3f}"]
    if "loss" in val:
        parts.append(f"val loss {val['loss']:.3f}")
    if val.get("median_km") is not None:
        parts.append(f"median {val['median_km']:.1f} km, @25 km {100 * acc.get('25', 0):.1f}%, @200 km {100 * acc.get('200', 0):.1f}%")
    if val.get("country_accuracy") is not None:
        parts.append(f"country {100 * val['country_accuracy']:.1f}%")
    if val.get("recall"):
        parts.append("recall@1/5/10 " + "/".join(f"{100 * v:.1f}" for v in val["recall"].values()) + "%")
    parts.append(f"{row['img_per_s']:.0f} img/s")
    return " | ".join(parts)


def centroid_baseline(train_lat, train_lon, val_lat, val_lon) -> dict:
    """Always predicting the training set's spherical mean: the floor any model must beat."""
    from geocli.geo.distance import mean_coordinate
    from geocli.evaluate.metrics import geolocation_metrics

    lat, lon = mean_coordinate(train_lat, train_lon)
    n = len(val_lat)
    return {"point": [lat, lon], **geolocation_metrics(val_lat, val_lon, np.full(n, lat), np.full(n, lon))}
