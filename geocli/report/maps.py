"""Maps of predictions: interactive HTML (folium/Leaflet) or a static PNG (matplotlib).

The PNG draws its world from GeoNames populated places (offline), so it needs no tiles or
shapefiles; the HTML map loads OpenStreetMap tiles when opened in a browser.
"""
from __future__ import annotations

from pathlib import Path

from geocli.errors import UsageError
from geocli.report.output_file import MAP_SOFTWARE

COLOURS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45"]


def _points(records: list[dict]):
    for i, r in enumerate(records):
        for p in r.get("predictions") or []:
            yield i, r["image"], p


def _weight(p: dict) -> float:
    """Marker weight: the guess's probability, or a middle value where the head gives none (regression)."""
    return 0.3 if p.get("probability") is None else float(p["probability"])


def _label(image: str, p: dict) -> str:
    prob = "" if p.get("probability") is None else f" {100 * p['probability']:.1f}%"
    return f"{Path(image).name} #{p['rank']}: {p.get('country_name') or '?'}{prob}"


def extent(records: list[dict], margin: float = 0.2, min_span: float = 6.0) -> tuple[float, float, float, float]:
    """(min lon, max lon, min lat, max lat) around every guess, with a margin and at least
    ``min_span`` degrees each way, clipped to the world; the whole world when there is no guess."""
    points = [(p["lon"], p["lat"]) for _, _, p in _points(records)]
    if not points:
        return -180.0, 180.0, -90.0, 90.0
    lons, lats = zip(*points)
    box = []
    for lo, hi, limit in ((min(lons), max(lons), 180.0), (min(lats), max(lats), 90.0)):
        pad = max((hi - lo) * margin, (min_span - (hi - lo)) / 2, 0.0)
        box += [max(lo - pad, -limit), min(hi + pad, limit)]
    return tuple(box)


def write_map(records: list[dict], path: str | Path) -> None:
    suffix = Path(path).suffix.lower()
    if suffix == ".html":
        _write_html(records, Path(path))
    elif suffix == ".png":
        _write_png(records, Path(path))
    else:
        raise UsageError(f"--map needs a .html or .png file name, got {path}")


def _write_html(records: list[dict], path: Path) -> None:
    import folium

    fmap = folium.Map(location=[20, 0], zoom_start=2, tiles="OpenStreetMap")
    for i, image, p in _points(records):
        folium.CircleMarker(
            location=[p["lat"], p["lon"]], radius=4 + 12 * _weight(p), tooltip=_label(image, p),
            color=COLOURS[i % len(COLOURS)], fill=True, fill_opacity=0.6,
        ).add_to(fmap)
    west, east, south, north = extent(records)
    fmap.fit_bounds([[south, west], [north, east]])
    fmap.save(str(path))


def _write_png(records: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from geocli.geo.countries import populated_places

    lat, lon = populated_places()
    west, east, south, north = extent(records)
    fig, ax = plt.subplots(figsize=(12, 6.5), dpi=120)
    ax.scatter(lon, lat, s=min(8.0, 0.2 * 360 / (east - west)), c="#bbbbbb", linewidths=0)  # towns grow as the map zooms in
    for i, image, p in _points(records):
        ax.scatter(p["lon"], p["lat"], s=20 + 200 * _weight(p), c=COLOURS[i % len(COLOURS)],
                   alpha=0.7, edgecolors="black", linewidths=0.3, label=Path(image).name if p["rank"] == 1 else None)
    ax.set(xlim=(west, east), ylim=(south, north), xlabel="longitude", ylabel="latitude", aspect="equal")
    if any(r.get("predictions") for r in records) and len(records) <= 12:
        ax.legend(loc="lower left", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": MAP_SOFTWARE})  # a later --map may replace it, no other image
    plt.close(fig)
