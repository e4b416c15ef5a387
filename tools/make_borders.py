"""Derive geocli/data/borders.json, the basemap geocli ships, from Natural Earth's admin-0 countries.

Input: the TopoJSON of the ``world-atlas`` npm package (Natural Earth 4.1.0, public domain), e.g.
``npm pack world-atlas@2 && tar xzf world-atlas-2.0.2.tgz`` then
``python tools/make_borders.py package/countries-50m.json geocli/data/borders.json``.

Output: ``{"source": ..., "countries": [{"name": str, "rings": [[[lon, lat], ...], ...]}]}``, every
ring closed, simplified (Douglas-Peucker on the shared arcs, ``--tolerance`` degrees, so neighbours
keep one border) and rounded to 0.01 degrees so the
shipped file stays small. One list of rings per country is enough to fill land and stroke borders.
"""
from __future__ import annotations

import argparse
import json


def decode_arcs(topo: dict) -> list[list[tuple[float, float]]]:
    """TopoJSON's delta-encoded, quantised arcs as lists of (lon, lat)."""
    (sx, sy), (tx, ty) = topo["transform"]["scale"], topo["transform"]["translate"]
    arcs = []
    for arc in topo["arcs"]:
        x = y = 0
        points = []
        for dx, dy in arc:
            x, y = x + dx, y + dy
            points.append((x * sx + tx, y * sy + ty))
        arcs.append(points)
    return arcs


def ring(arcs: list, indices: list[int]) -> list[tuple[float, float]]:
    points: list[tuple[float, float]] = []
    for i in indices:
        arc = arcs[i] if i >= 0 else arcs[~i][::-1]
        points.extend(arc if not points else arc[1:])
    return points


def simplify(points: list, tolerance: float) -> list:
    from shapely.geometry import LineString

    if len(points) < 3:
        return points
    return list(LineString(points).simplify(tolerance, preserve_topology=False).coords)


def country_rings(geometry: dict, arcs: list) -> list[list[list[float]]]:
    polygons = geometry["arcs"] if geometry["type"] == "MultiPolygon" else [geometry["arcs"]]
    out = []
    for polygon in polygons:
        for indices in polygon:
            points = ring(arcs, indices)
            rounded = [[round(lon, 2), round(lat, 2)] for lon, lat in points]
            deduped = [p for k, p in enumerate(rounded) if k == 0 or p != rounded[k - 1]]
            if len(deduped) >= 4:
                out.append(deduped)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("topojson")
    parser.add_argument("out")
    parser.add_argument("--tolerance", type=float, default=0.05)
    args = parser.parse_args()
    topo = json.load(open(args.topojson, encoding="utf-8"))
    arcs = [simplify(arc, args.tolerance) for arc in decode_arcs(topo)]  # shared arcs: borders stay shared
    countries = []
    for geometry in topo["objects"]["countries"]["geometries"]:
        if geometry.get("type") not in ("Polygon", "MultiPolygon"):
            continue
        rings = country_rings(geometry, arcs)
        if rings:
            countries.append({"name": geometry["properties"]["name"], "rings": rings})
    data = {"source": "Natural Earth 4.1.0 admin-0 countries (public domain), via world-atlas; "
                      f"simplified {args.tolerance} deg", "countries": countries}
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(data, f, separators=(",", ":"), ensure_ascii=False)


if __name__ == "__main__":
    main()
