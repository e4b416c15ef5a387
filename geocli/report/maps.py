"""Maps of predictions: interactive HTML (folium/Leaflet) or a static PNG (matplotlib).

The PNG draws its world from GeoNames populated places (offline), so it needs no tiles or
shapefiles; the HTML map loads OpenStreetMap tiles when opened in a browser.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import UsageError

COLOURS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45"]


def _points(records: list[dict]):
    for i, r in enumerate(records):
        for p in r.get("predictions") or []:
            yield i, r["image"], p


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
        label = f"{Path(image).name} #{p['rank']}: {p.get('country_name') or '?'} {100 * p['probability']:.1f}%"
        folium.CircleMarker(
            location=[p["lat"], p["lon"]], radius=4 + 12 * p["probability"], tooltip=label,
            color=COLOURS[i % len(COLOURS)], fill=True, fill_opacity=0.6,
        ).add_to(fmap)
    fmap.save(str(path))


def _write_png(records: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..geo.countries import populated_places

    lat, lon = populated_places()
    fig, ax = plt.subplots(figsize=(12, 6.5), dpi=120)
    ax.scatter(lon, lat, s=0.2, c="#bbbbbb", linewidths=0)
    for i, image, p in _points(records):
        ax.scatter(p["lon"], p["lat"], s=20 + 200 * p["probability"], c=COLOURS[i % len(COLOURS)],
                   alpha=0.7, edgecolors="black", linewidths=0.3, label=Path(image).name if p["rank"] == 1 else None)
    ax.set(xlim=(-180, 180), ylim=(-90, 90), xlabel="longitude", ylabel="latitude", aspect="equal")
    if any(r.get("predictions") for r in records) and len(records) <= 12:
        ax.legend(loc="lower left", fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
