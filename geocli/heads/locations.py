"""Head outputs -> the model's part of a prediction record (``geocli.predict.record``): ranked
``predictions``, the ``confidence_radius_km`` (90% of a geocell head's probability around guess 1),
the ``country_head`` ranking, the ``scene`` and the ``country_agreement``.

Locations come from one head (``PredictConfig.location_head``, else the head with the lowest
``location_priority``; each head says how it yields locations); each location's country is looked
up at its coordinate. The country head's own
ranking is reported beside them, and ``country_agreement`` says whether the two agree, so a
disagreement is visible rather than resolved silently.
"""
from __future__ import annotations

import numpy as np
import torch

from geocli.errors import UsageError
from geocli.geo.distance import mass_radius_km, mean_coordinate, pairwise_haversine_km
from geocli.predict.record import CountryScore, LocateResult, Scene, agreement, country_score, guess


def location_head(model, name: str | None = None) -> str | None:
    """The head whose scores rank candidate locations: ``name``, else the head of lowest
    ``location_priority`` (None when no head yields locations)."""
    if name is not None:
        if name not in model.heads:
            raise UsageError(f"location head {name!r} is not in this model; heads: {list(model.heads)}")
        return name
    ranked = [(h.location_priority, i, n) for i, (n, h) in enumerate(model.heads.items())
              if getattr(h, "location_priority", None) is not None]
    return min(ranked)[2] if ranked else None


def to_records(model, outputs: dict, top_k: int | None = None) -> list[LocateResult]:
    """The model's part of each sample's record. The location head's ``k`` ranked guesses come
    first; every other head that gives a point estimate (``Head.point_estimate``: a regression)
    adds its point after them, under its own ``source``, so it is shown rather than dropped."""
    cfg = model.config.predict
    k = top_k or cfg.top_k
    source = location_head(model, cfg.location_head)
    batch = outputs["embedding"].shape[0]
    locations = [[] for _ in range(batch)]
    extra = [n for n, h in model.heads.items() if n != source and getattr(h, "point_estimate", False)]
    for name, n in ([(source, k)] if source else []) + [(e, 1) for e in extra]:
        rows = model.heads[name].locations(outputs["heads"][name], n, cfg, model.config.labels)
        for mine, row in zip(locations, rows):
            mine += [(*loc, name) for loc in row]
    countries = _country_ranking(model, outputs["heads"], k, batch)
    scenes = _scenes(model, outputs["heads"], batch)
    radii = _radii(model, source, outputs["heads"][source], locations) if source else [None] * batch
    records = [_record(locations[i], countries[i], scenes[i]) for i in range(batch)]
    return [{**rec, "confidence_radius_km": radius} for rec, radius in zip(records, radii)]


def _radii(model, source: str, out: dict, locations: list[list[tuple]]) -> list[float | None]:
    """Per sample, the radius around its top guess holding 90% of the head's probability mass
    (geocell heads: the finest cells' probabilities at their member means); None for heads that
    state no distribution over places."""
    if source != "geocell":
        return [None] * len(locations)
    finest = model.heads[source].hierarchy.finest
    probs = model.heads[source].probabilities(out)
    return [round(mass_radius_km(loc[0][0], loc[0][1], finest.means[:, 0], finest.means[:, 1], p), 1) if loc else None
            for p, loc in zip(probs, locations)]


def _record(locations: list[tuple], countries: list[CountryScore] | None, scene: Scene | None) -> dict:
    """The model's part of a record: ranked guesses (country at each coordinate), the country
    head's ranking, the scene."""
    predictions = [guess(rank, lat, lon, source, prob, cell)
                   for rank, (lat, lon, cell, prob, source) in enumerate(locations, start=1)]
    return {"predictions": predictions, "country_head": countries or [], "scene": scene,
            "country_agreement": agreement(predictions, countries or [])}


def refine_points(means: np.ndarray, probs: np.ndarray, top: np.ndarray, refine_top: int, refine_km: float):
    """Each top cell's point moved to the probability-weighted spherical mean of itself and the
    other ``refine_top`` most probable cells within ``refine_km``: probability split between
    neighbouring cells pulls the guess toward the boundary they share."""
    pool = np.unique(np.concatenate([np.argsort(-probs)[:refine_top], top]))
    d = pairwise_haversine_km(means[top, 0], means[top, 1], means[pool, 0], means[pool, 1])
    out = np.empty((len(top), 2))
    for r in range(len(top)):
        near = pool[d[r] <= refine_km]
        out[r] = mean_coordinate(means[near, 0], means[near, 1], probs[near])
    return out


def top_classes(logits: torch.Tensor, k: int) -> list[list[tuple[int, float]]]:
    """Per sample, the ``k`` most probable classes as (index, probability), best first."""
    probs = logits.detach().float().softmax(-1).cpu()
    top = probs.topk(min(k, probs.shape[-1]), dim=-1)
    return [list(zip(ids.tolist(), ps.tolist())) for ps, ids in zip(top.values, top.indices)]


def _country_ranking(model, outputs: dict, k: int, batch: int) -> list[list[CountryScore] | None]:
    if "country" not in model.heads:
        return [None] * batch
    codes = model.heads["country"].classes
    return [[country_score(r, codes[i], p) for r, (i, p) in enumerate(row, start=1)]
            for row in top_classes(outputs["country"]["logits"], k)]


def _scenes(model, outputs: dict, batch: int) -> list[Scene | None]:
    if "scene" not in model.heads:
        return [None] * batch
    names = model.heads["scene"].classes
    probs = outputs["scene"]["logits"].detach().float().softmax(-1).cpu()
    conf, idx = probs.max(-1)
    return [{"label": names[int(i)], "probability": float(p)} for p, i in zip(conf, idx)]


def average_views(outputs: dict, views: int) -> dict:
    """Fold ``forward`` outputs over B * ``views`` rows (each image's views adjacent) into B rows.

    Test-time augmentation as TransLocator and the ViT/DINOv2 study do it: class scores are
    averaged as softmax probabilities (returned as their log, so ``softmax`` recovers the mean),
    coordinates as points on the sphere, descriptors and embeddings as normalised means.
    """
    if views == 1:
        return outputs
    heads = {name: {key: _average(key, value, views) for key, value in out.items()}
             for name, out in outputs["heads"].items()}
    return {"embedding": _mean_rows(outputs["embedding"], views), "tokens": None, "heads": heads}


def _average(key: str, value, views: int):
    if isinstance(value, dict):
        return {k: _average(key, v, views) for k, v in value.items()}
    if key == "logits":
        probs = value.detach().float().softmax(-1)
        return _mean_rows(probs, views).clamp_min(1e-12).log()
    if key == "coords":
        return _mean_coords(value, views)
    mean = _mean_rows(value, views)
    return torch.nn.functional.normalize(mean, dim=-1) if key in ("descriptor", "image") else mean


def _mean_rows(x: torch.Tensor, views: int) -> torch.Tensor:
    return x.reshape(-1, views, *x.shape[1:]).mean(1)


def _mean_coords(coords: torch.Tensor, views: int) -> torch.Tensor:
    """Spherical mean of each image's (lat, lon) guesses (safe across the antimeridian)."""
    per_image = coords.detach().double().cpu().numpy().reshape(-1, views, 2)
    means = [mean_coordinate(c[:, 0], c[:, 1]) for c in per_image]
    return torch.as_tensor(means, dtype=coords.dtype, device=coords.device)
