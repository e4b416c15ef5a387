"""Head outputs -> the model's part of a prediction record (``geocli.predict.record``): ranked
``predictions``, the ``confidence_radius_km`` (90% of a geocell head's probability around guess 1),
the ``country_head`` ranking, the ``scene`` and the ``country_agreement``.

Locations come from one head (``PredictConfig.location_head``, else the head with the lowest
``location_priority``; each head says how it yields locations); each location's country is looked
up at its coordinate. The country head's own ranking is reported beside them, and
``country_agreement`` says whether the two agree, so a disagreement is visible rather than
resolved silently. A head that states a whole distribution over places (``Head.distributions``:
geocell, gallery, country) is ranked from it; without a country head, a distribution whose points
carry countries (the gallery) ranks countries by its probability summed per country.

``evidence`` (one ``geocli.evidence.fuse.Likelihood`` or None per sample) is applied to that whole
distribution before the top k are taken, and to the country head's ranking; regression and
retrieval guesses are left as the model made them.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from geocli.errors import UsageError
from geocli.geo.countries import country_code_at
from geocli.geo.distance import mass_radius_km, mean_coordinate, pairwise_haversine_km
from geocli.predict.record import (DISTRIBUTION_KEY, CountryScore, LocateResult, Scene, agreement, country_score,
                                   guess)


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


def to_records(model, outputs: dict, top_k: int | None = None, evidence: list | None = None,
               keep_distribution: bool = False) -> list[LocateResult]:
    """The model's part of each sample's record. The location head's ``k`` ranked guesses come
    first; every other head that gives a point estimate (``Head.point_estimate``: a regression)
    adds its point after them, under its own ``source``, so it is shown rather than dropped.
    ``keep_distribution`` also attaches each sample's whole distribution (``record.Distribution``,
    under ``record.DISTRIBUTION_KEY``; None for heads without one) for grouping."""

    cfg, labels = model.config.predict, model.config.labels
    k = top_k or cfg.top_k
    source = location_head(model, cfg.location_head)
    batch = outputs["embedding"].shape[0]
    evidence = [e if e is not None and not e.empty else None for e in (evidence or [None] * batch)]
    locations, dists = [[] for _ in range(batch)], [None] * batch
    if source:
        rows, dists = _ranked(model.heads[source], outputs["heads"][source], k, cfg, labels, evidence)
        locations = [[(*loc, source) for loc in row] for row in rows]
    extra = [n for n, h in model.heads.items() if n != source and getattr(h, "point_estimate", False)]
    for name in extra:
        rows = model.heads[name].locations(outputs["heads"][name], 1, cfg, labels)
        for mine, row in zip(locations, rows):
            mine += [(*loc, name) for loc in row]
    countries = _country_ranking(model, outputs["heads"], k, batch, evidence)
    if "country" not in model.heads:
        countries = [summed_by_country(d.probs, d.codes, k) if d is not None and d.codes else None for d in dists]
    scenes = _scenes(model, outputs["heads"], batch)
    records = []
    for i in range(batch):
        rec = {**_record(locations[i], countries[i], scenes[i]), "confidence_radius_km": _radius(dists[i], locations[i])}
        if keep_distribution:
            rec[DISTRIBUTION_KEY] = dists[i]
        records.append(rec)
    return records


def _ranked(head, out: dict, k: int, cfg, labels, evidence: list) -> tuple[list[list[tuple]], list]:
    """(each sample's top-k guesses, each sample's evidence-weighted distribution or None)."""
    found = head.distributions(out, cfg, labels)
    if found is None:
        rows = head.locations(out, k, cfg, labels)
        return rows, [None] * len(rows)
    dists = [with_evidence(d, lik, head) for d, lik in zip(found, evidence)]
    return [head.ranked(d, k, cfg) for d in dists], dists


def with_evidence(dist, likelihood, head=None):
    """``dist`` times the evidence likelihood at its points, renormalised (unchanged without evidence)."""
    if likelihood is None:
        return dist
    from geocli.evidence.fuse import posterior

    codes = dist.codes if dist.codes is not None else _point_countries(head, dist.points)
    factors = likelihood.factors(dist.points[:, 0], dist.points[:, 1], codes)
    return replace(dist, probs=posterior(dist.probs, factors))


def _point_countries(head, points: np.ndarray) -> list:
    """Country at each of a head's fixed points, looked up once per head."""
    known = getattr(head, "_point_countries", None)
    if known is None or len(known) != len(points):
        known = [country_code_at(a, b) for a, b in points]
        if head is not None:
            head._point_countries = known
    return known


def _radius(dist, locations: list[tuple]) -> float | None:
    """The radius around the top guess holding 90% of a geocell distribution's probability mass
    (the finest cells' probabilities at their member means); None for heads that state no
    distribution over places."""
    if dist is None or dist.source != "geocell" or not locations:
        return None
    lat, lon = locations[0][0], locations[0][1]
    return round(mass_radius_km(lat, lon, dist.points[:, 0], dist.points[:, 1], dist.probs), 1)


def _record(locations: list[tuple], countries: list[CountryScore] | None, scene: Scene | None) -> dict:
    """The model's part of a record: ranked guesses (country at each coordinate), the country
    head's ranking, the scene."""
    predictions = [guess(rank, lat, lon, source, prob, cell)
                   for rank, (lat, lon, cell, prob, source) in enumerate(locations, start=1)]
    return {"predictions": predictions, "country_head": countries or [], "scene": scene,
            "country_agreement": agreement(predictions, countries or [])}


def summed_by_country(probs: np.ndarray, codes: list, k: int) -> list[CountryScore]:
    """The top ``k`` countries by the probability of their points, summed."""
    names, index = _code_index(codes)
    totals = np.bincount(index, weights=probs, minlength=len(names))
    order = [i for i in np.argsort(-totals) if names[i]][:k]
    return [country_score(r, names[i], totals[i]) for r, i in enumerate(order, start=1)]


_CODE_INDEX: dict[int, tuple] = {}


def _code_index(codes: list) -> tuple[np.ndarray, np.ndarray]:
    """(distinct codes, each point's index among them); memoised per codes list (a gallery's)."""
    hit = _CODE_INDEX.get(id(codes))
    if hit is None or hit[0] is not codes:
        names, index = np.unique(np.asarray([c or "" for c in codes], dtype=str), return_inverse=True)
        hit = _CODE_INDEX[id(codes)] = (codes, names, index)
    return hit[1], hit[2]


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


def _country_ranking(model, outputs: dict, k: int, batch: int, evidence: list) -> list[list[CountryScore] | None]:
    """The country head's ranking, with the evidence's country factors applied (no point kernels)."""
    if "country" not in model.heads:
        return [None] * batch
    from geocli.evidence.fuse import posterior

    codes = list(model.heads["country"].classes)
    rows = []
    for row, lik, p in zip(top_classes(outputs["country"]["logits"], k), evidence,
                           outputs["country"]["logits"].detach().float().softmax(-1).cpu().numpy()):
        if lik is not None:
            none = np.zeros(len(codes))
            p = posterior(p, lik.country_only().factors(none, none, codes))
            row = [(int(i), float(p[i])) for i in np.argsort(-p, kind="stable")[:k]]
        rows.append([country_score(r, codes[i], pr) for r, (i, pr) in enumerate(row, start=1)])
    return rows


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
