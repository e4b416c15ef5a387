"""Are the evidence model's probabilities honest? A reliability table and ECE on labelled photos.

Runs the evidence model (EXIF GPS ignored: the labels are what is checked) on the shared photos
and bins every answered photo by the probability stated for its top guess. Per bin: the mean
stated probability, the share of photos within 25 km, the share whose country is right, and the
share where the guess is right at the level it claims (a place: within 25 km; a country: the
country). ECE = photo-weighted mean |stated - observed| over the bins.

Sets: ``sf-gps`` (the 441 SF photos that carry GPS; it is ignored), ``sf-nogps`` (the other
158), ``croatia`` (568 Street View photos). ``--fit`` fits the per-kind curves on the
``--fit-on`` set only and writes them into the package (``geocli/evidence/calibration.json``);
the other sets are the check. Each set is shown raw (uncalibrated odds) and calibrated.
``--model DIR`` also scores a trained checkpoint's stated probabilities on the same photos.

    python bench/bench_calibration.py [--fit] [--fit-on sf-gps] [--check sf-nogps,croatia] [--model DIR]
"""
from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from calibration_data import DEFAULT_CACHE, OcrCache, Photo, labelled_photos  # noqa: E402

BINS = 10


def _score(photo: Photo, cand, truth_country: str | None) -> tuple[bool, bool, bool]:
    """(within 25 km, country right, right at the level the candidate claims)."""
    from geocli.evidence.calibration import PLACE_KM, claim_of
    from geocli.geo.distance import haversine_km

    near = bool(haversine_km(photo.lat, photo.lon, cand.lat, cand.lon) <= PLACE_KM)
    country_ok = truth_country is not None and cand.country == truth_country
    return near, country_ok, near if claim_of(cand.kind) == "place" else country_ok


def run_evidence(photos: list[Photo], boxes: list[list]) -> list[dict]:
    """Per photo: every candidate with its raw probability and whether it is right."""
    from geocli.evidence import combine
    from geocli.geo.countries import country_code_at
    from geocli.evidence.fuse import photo_evidence

    rows = []
    for photo, bx in zip(photos, boxes):
        truth = photo.country or country_code_at(photo.lat, photo.lon)
        ranked = combine.ranked(photo_evidence(None, bx), calibrated=False)
        rows.append({"photo": photo, "cands": [(c, p, *_score(photo, c, truth)) for c, p in ranked]})
    return rows


def calibrated(rows: list[dict], curves) -> list[dict]:
    """The same rows with each photo's candidates calibrated (and re-ranked)."""
    from geocli.evidence.calibration import calibrate_all

    out = []
    for row in rows:
        cands = row["cands"]
        probs = calibrate_all([c[0].kind for c in cands], [c[1] for c in cands], curves) if cands else []
        merged = sorted(((c[0], p, *c[2:]) for c, p in zip(cands, probs)), key=lambda c: -c[1])
        out.append({"photo": row["photo"], "cands": merged})
    return out


def reliability(rows: list[dict]) -> dict:
    """Reliability table and ECEs of the top guesses."""
    import numpy as np

    from geocli.evaluate.calibration import bin_index, expected_calibration_error

    top = [r["cands"][0] for r in rows if r["cands"]]
    p = np.array([c[1] for c in top])
    cols = {name: np.array([c[i] for c in top], np.float64) for i, name in ((2, "km"), (3, "country"), (4, "claim"))}
    bins = bin_index(p, BINS) if top else np.array([], int)
    table = [{"bin": b, "n": int((bins == b).sum()), "stated": float(p[bins == b].mean()),
              **{k: float(v[bins == b].mean()) for k, v in cols.items()}} for b in np.unique(bins)]
    return {"n": len(rows), "answered": len(top), "table": table,
            **{f"ece_{k}": expected_calibration_error(p, v, BINS) for k, v in cols.items()}}


def print_reliability(title: str, rel: dict) -> None:
    def pct(v):
        return f"{100 * v:5.1f}"

    def ece(v):
        return "  -  " if v is None else f"{v:.3f}"

    print(f"\n{title}: {rel['answered']} of {rel['n']} photos answered; "
          f"ECE {ece(rel['ece_claim'])} (its claim), {ece(rel['ece_km'])} (25 km), {ece(rel['ece_country'])} (country)")
    print("| stated p | n | mean stated % | right (its claim) % | within 25 km % | country % |")
    print("|---|---|---|---|---|---|")
    for r in rel["table"]:
        print(f"| {r['bin'] / BINS:.1f}-{(r['bin'] + 1) / BINS:.1f} | {r['n']} | {pct(r['stated'])} | "
              f"{pct(r['claim'])} | {pct(r['km'])} | {pct(r['country'])} |")


def kind_counts(rows: list[dict]) -> dict[str, tuple[int, int]]:
    """Top guesses per kind: (count, right at their claim)."""
    counts: dict[str, list[int]] = {}
    for r in rows:
        if r["cands"]:
            c = r["cands"][0]
            n = counts.setdefault(c[0].kind, [0, 0])
            n[0], n[1] = n[0] + 1, n[1] + int(c[4])
    return {k: (v[0], v[1]) for k, v in sorted(counts.items())}


def fit(rows: list[dict], set_name: str):
    """Per-kind curves from every candidate of ``rows`` (its raw probability, right at its claim)."""
    from geocli.evidence.calibration import CALIBRATION_FILE, fit_curves, save_curves

    examples = [(c[0].kind, c[1], c[4]) for r in rows for c in r["cands"]]
    curves = fit_curves(examples)
    about = {"fitted_on": f"{set_name} ({len(rows)} photos, {len(examples)} candidates; EXIF GPS ignored)",
             "by": "python bench/bench_calibration.py --fit", "date": datetime.date.today().isoformat(),
             "target": "place kinds: within 25 km; region and country kinds: the country is right"}
    save_curves(curves, CALIBRATION_FILE, about)
    print(f"fitted on {set_name}: " + ", ".join(f"{k} a={c.a:.2f} b={c.b:.2f} n={c.n}" for k, c in curves.items()),
          file=sys.stderr)
    return curves


def checkpoint_reliability(model: str, photos: list[Photo]) -> dict:
    """A trained model's stated top-guess probabilities on ``photos`` (as ``geocli eval`` bins them)."""
    from geocli import load_model
    from geocli.evaluate.calibration import calibration_summary
    from geocli.geo.countries import country_code_at
    from geocli.geo.distance import haversine_km

    records = list(load_model(model).predict([p.path for p in photos], top_k=1, batch_size=16))
    probs, dists, hits = [], [], []
    for photo, rec in zip(photos, records):
        if rec["ok"] and rec["predictions"] and rec["predictions"][0]["probability"] is not None:
            top = rec["predictions"][0]
            truth = photo.country or country_code_at(photo.lat, photo.lon)
            probs.append(top["probability"])
            dists.append(float(haversine_km(photo.lat, photo.lon, top["lat"], top["lon"])))
            hits.append(None if truth is None else top["country"] == truth)
    return calibration_summary(probs, dists, hits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fit", action="store_true", help="fit the curves on --fit-on and ship them")
    parser.add_argument("--fit-on", default="sf-gps")
    parser.add_argument("--check", default="sf-nogps,croatia")
    parser.add_argument("--model", default=None, help="also score this checkpoint on the check sets")
    parser.add_argument("--ocr-cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--cached-only", action="store_true",
                        help="use only the photos whose OCR read is cached (the others are left out, and counted)")
    args = parser.parse_args()
    from geocli.evidence.calibration import load_curves

    cache = OcrCache(args.ocr_cache)
    names = [args.fit_on] + [n for n in args.check.split(",") if n and n != args.fit_on]
    data = {}
    for name in names:
        photos = labelled_photos(name)
        if args.cached_only:
            kept = cache.cached(photos)
            print(f"{name}: {len(kept)} of {len(photos)} photos have a cached OCR read (--cached-only)")
            photos = kept
        data[name] = run_evidence(photos, cache.boxes(photos, log=lambda s: print(s, file=sys.stderr)))
    curves = fit(data[args.fit_on], args.fit_on) if args.fit else load_curves()
    for name in names:
        role = "fit" if name == args.fit_on and args.fit else "check"
        print_reliability(f"{name} ({role}), raw", reliability(data[name]))
        print_reliability(f"{name} ({role}), calibrated", reliability(calibrated(data[name], curves)))
        print(f"top guesses by kind (count, right): {kind_counts(data[name])}")
    if args.model:
        for name in names[1:]:
            cal = checkpoint_reliability(args.model, [r["photo"] for r in data[name]])
            print(f"\n{args.model} on {name}: ECE {cal['ece_km']} (25 km), {cal['ece_country']} (country)")
            for b in cal["bins"]:
                print(f"  {b['bin'][0]:.1f}-{b['bin'][1]:.1f}  n={b['n']}  stated {b['stated']:.3f}  "
                      f"within 25 km {b['within_km']:.3f}  country {b['country']}")


if __name__ == "__main__":
    main()
