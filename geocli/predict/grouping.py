"""One answer for several photos of one place (Street View headings, a Mapillary sequence, a folder).

The photos of a group are treated as independent views of one location x, so the group's
distribution is the product of the photos' distributions, renormalised:

    p(x | group) = prod_i p_i(x) / sum_y prod_i p_i(y)

computed over the model's own support (GeoCLIP's gallery points, a checkpoint's finest geocells,
its countries) when every photo's record carries that distribution. A model whose records carry
only ranked guesses (regression, the evidence-only and zero-shot geolocators) falls back to the
documented alternative: each photo's guesses are spread by a Gaussian kernel of ``KERNEL_KM`` and
the product is taken over the union of all the group's guesses (each photo's density floored at
``FLOOR``, so one photo without a guess near x does not veto it). Each photo keeps its own record;
the group record follows its photos, with ``"group"`` and ``"images"`` keys.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Iterator

import numpy as np

from geocli.predict.record import DISTRIBUTION_KEY, Distribution, guess

__all__ = ["DISTRIBUTION_KEY", "Distribution", "group_keys", "group_record", "strip_distributions", "with_groups"]

KERNEL_KM, FLOOR, LOG_FLOOR = 25.0, 1e-3, 1e-12


@dataclass
class _Group:
    key: str
    records: list[dict] = field(default_factory=list)


def group_record(key: str, records: list[dict], top_k: int) -> dict:
    """The combined record of one group's ``ok`` photo records (see the module docstring)."""
    ok = [r for r in records if r.get("ok")]
    dists = [r.get(DISTRIBUTION_KEY) for r in ok]
    same = dists and all(d is not None and d.probs.shape == dists[0].probs.shape and d.source == dists[0].source
                         for d in dists)
    if same:
        predictions, countries, how = _product(dists, top_k), _countries(dists, top_k), "product of distributions"
    else:
        predictions, countries, how = _kernel_product(ok, top_k), [], f"product of {KERNEL_KM:.0f} km kernels"
    return {"image": f"group {key}", "group": key, "images": [r["image"] for r in records], "ok": bool(ok),
            "error": None if ok else "no photo of this group could be read", "exif": None,
            "predictions": predictions, "scene": None, "text": [], "country_head": countries,
            "evidence": [f"{len(ok)} of {len(records)} photos combined: {how}"],
            "reason": None if predictions else "no photo of this group has a guess"}


def _combined(dists: list[Distribution]) -> np.ndarray:
    logp = sum(np.log(np.maximum(d.probs, LOG_FLOOR)) for d in dists)
    p = np.exp(logp - logp.max())
    return p / p.sum()


def _product(dists: list[Distribution], top_k: int) -> list[dict]:
    p, d = _combined(dists), dists[0]
    top = np.argsort(-p)[:top_k]
    return [guess(r, d.points[i, 0], d.points[i, 1], d.source, p[i], d.cells[i] if d.cells else None)
            for r, i in enumerate(top, start=1)]


def _countries(dists: list[Distribution], top_k: int) -> list[dict]:
    from geocli.heads.locations import summed_by_country

    if dists[0].codes is None:
        return []
    return summed_by_country(_combined(dists), dists[0].codes, top_k)


def _kernel_product(records: list[dict], top_k: int) -> list[dict]:
    from geocli.geo.distance import pairwise_haversine_km

    guesses = [[g for g in r.get("predictions") or [] if g.get("lat") is not None] for r in records]
    points = np.array([[g["lat"], g["lon"]] for gs in guesses for g in gs], np.float64).reshape(-1, 2)
    if not len(points):
        return []
    score = np.ones(len(points))
    for gs in (gs for gs in guesses if gs):
        own = np.array([[g["lat"], g["lon"]] for g in gs], np.float64)
        weight = np.array([g["probability"] if g.get("probability") is not None else 1.0 for g in gs])
        d = pairwise_haversine_km(points[:, 0], points[:, 1], own[:, 0], own[:, 1])
        score *= np.exp(-((d / KERNEL_KM) ** 2)) @ weight + FLOOR
    score /= score.sum()
    top = np.argsort(-score)[:top_k]
    return [guess(r, points[i, 0], points[i, 1], "group", score[i]) for r, i in enumerate(top, start=1)]


def with_groups(records: Iterable[dict], keys: dict[str, str], top_k: int) -> Iterator[dict]:
    """Each photo record (with its ``group``), and each group's record after its last photo.

    ``keys`` maps an image path to its group; photos without one pass through alone. Photos of a
    group should come together (the CLI orders them so); a group seen again starts anew.
    """
    current: _Group | None = None
    for record in records:
        key = keys.get(record["image"])
        if current is not None and key != current.key:
            yield group_record(current.key, current.records, top_k)
            current = None
        if key is not None:
            current = current or _Group(key)
            current.records.append(record)
        yield _public({**record, "group": key} if key is not None else record)
    if current is not None:
        yield group_record(current.key, current.records, top_k)


def _public(record: dict) -> dict:
    return {k: v for k, v in record.items() if k != DISTRIBUTION_KEY}


def strip_distributions(records: Iterable[dict]) -> Iterator[dict]:
    for record in records:
        yield _public(record)


def group_keys(paths: list[str], group_by: str, table: str | None = None) -> dict[str, str]:
    """Path -> group: ``"folder"`` (the photo's folder), or a column of the CSV ``table`` whose
    ``image`` column names the photos (relative to the CSV's folder, as manifests do)."""
    import csv
    from pathlib import Path

    from geocli.errors import UsageError

    if group_by == "folder":
        return {p: str(Path(p).parent) for p in paths}
    if table is None:
        raise UsageError(f"--group-by {group_by}: name the CSV that holds that column with --group-file CSV "
                         "(or group by folder)")
    try:
        with open(table, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"--group-file {table}: cannot read it ({exc})") from None
    if not rows or "image" not in rows[0] or group_by not in rows[0]:
        raise UsageError(f"--group-file {table}: needs an 'image' column and a {group_by!r} column")
    base = Path(table).resolve().parent
    by_file = {str((base / r["image"]).resolve()): r[group_by] for r in rows if r.get(group_by)}
    return {p: by_file[str(Path(p).resolve())] for p in paths if str(Path(p).resolve()) in by_file}
