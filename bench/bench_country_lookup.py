"""Country lookup: the vectorised grid path (``country_codes_at``) against the point-by-point
rule geocli used before it (time zone at the point, else the nearest town within COASTAL_KM) on
random points, for agreement and points/s. Prints one JSON object; differences are listed (the
Antarctic rule, 60°S, is new).

"Land" points are uniform on the sphere and kept where the point-by-point rule finds a country's
time zone (land plus territorial waters); "any" points are uniform everywhere (oceans included,
so the coastal and open-ocean rules are compared too).

    python bench/bench_country_lookup.py --points 10000
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np


def uniform_points(n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    return np.degrees(np.arcsin(rng.uniform(-1, 1, n))), rng.uniform(-180, 180, n)


def land_points(n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    from geocli.geo.country_sources import timezone_finder, zone_to_country

    lat, lon = [], []
    while len(lat) < n:
        a, b = uniform_points(1, rng)
        if zone_to_country().get(timezone_finder().timezone_at(lat=a[0], lng=b[0]) or ""):
            lat.append(a[0])
            lon.append(b[0])
    return np.array(lat), np.array(lon)


def compare(lat: np.ndarray, lon: np.ndarray) -> dict:
    from geocli.geo.countries import country_codes_at, nearest_place_countries, zone_country_at

    t0 = time.perf_counter()
    old = [zone_country_at(a, b) or nearest_place_countries(np.array([a]), np.array([b]))[0] for a, b in zip(lat, lon)]
    t1 = time.perf_counter()
    new = country_codes_at(lat, lon)
    t2 = time.perf_counter()
    differ = [(round(float(a), 4), round(float(b), 4), o, n) for a, b, o, n in zip(lat, lon, old, new) if o != n]
    antarctic = sum(a < -60 for a, *_ in differ)
    return {"points": len(lat), "agreement": 1 - len(differ) / len(lat), "differ_south_of_60s": antarctic,
            "differ_elsewhere": [d for d in differ if d[0] >= -60][:5],
            "point_by_point_per_s": round(len(lat) / (t1 - t0)), "vectorised_per_s": round(len(lat) / (t2 - t1))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=10_000)
    ap.add_argument("--speed-points", type=int, default=1_000_000)
    args = ap.parse_args()
    from geocli.geo.countries import country_codes_at

    rng = np.random.default_rng(0)
    country_codes_at([0.0], [0.0])  # load the grid, the zone finder and the places tree once
    report = {"land": compare(*land_points(args.points, rng)), "any": compare(*uniform_points(args.points, rng))}
    lat, lon = uniform_points(args.speed_points, rng)
    t0 = time.perf_counter()
    country_codes_at(lat, lon)
    report["vectorised_uniform"] = {"points": args.speed_points, "per_s": round(args.speed_points / (time.perf_counter() - t0))}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
