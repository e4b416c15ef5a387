"""Maps of predictions: an interactive, self-contained HTML page or a static PNG (matplotlib).

Both draw their world from the country outlines geocli ships (``geocli.report.basemap``): the
HTML file inlines its script, styles and borders, so it works offline; tiles load only from a
server the user names.
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


def _plain_label(text: str) -> str:
    """A legend entry matplotlib draws as typed: ``$`` would start mathtext (and a bad formula fails)."""
    from geocli.report.terminal import printable

    return printable(text).replace("$", r"\$")


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


MAP_SUFFIXES = (".html", ".png")


def check_map_path(path: str | Path) -> Path:
    """The ``--map`` file, refused before any work: a suffix geocli can draw, in a folder that exists."""
    path = Path(path)
    if path.suffix.lower() not in MAP_SUFFIXES:
        raise UsageError(f"--map needs a .html or .png file name, got {path}")
    if not path.parent.is_dir():
        raise UsageError(f"--map {path}: folder {path.parent} does not exist")
    return path


def write_map(records: list[dict], path: str | Path, tiles: str | None = None) -> None:
    """Draw every record's guesses: an interactive, self-contained HTML page or a PNG."""
    path = check_map_path(path)
    if path.suffix.lower() == ".html":
        path.write_text(html_map(records, tiles), encoding="utf-8")
    else:
        _write_png(records, path)


def html_map(records: list[dict], tiles: str | None = None) -> str:
    """One HTML file with everything inlined (script, styles, borders): it works offline.
    Tiles load only from ``tiles``, a URL template the user named."""
    from geocli.report.basemap import borders, script_json, web_asset

    template = (Path(__file__).parent / "web" / "map.html").read_text(encoding="utf-8")
    data = {"records": [{k: r.get(k) for k in ("image", "ok", "predictions")} for r in records],
            "colours": COLOURS, "borders": borders(), "tiles": tiles,
            "attribution": "Borders: Natural Earth" + (f"; tiles: {tiles.split('/')[2]}" if tiles and "//" in tiles else "")}
    page = template.replace("/*STYLE*/", web_asset("geomap.css")).replace("/*SCRIPT*/", web_asset("geomap.js"))
    return page.replace("/*DATA*/null", script_json(data))


def _draw_countries(ax) -> None:
    from matplotlib.collections import PolyCollection

    from geocli.report.basemap import borders

    rings = [ring for c in borders()["countries"] for ring in c["rings"]]
    ax.add_collection(PolyCollection(rings, facecolors="#f4f1ea", edgecolors="#8a8a8a", linewidths=0.4, zorder=1))


def _write_png(records: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    west, east, south, north = extent(records)
    fig, ax = plt.subplots(figsize=(12, 6.5), dpi=120)
    ax.set_facecolor("#cfe3f0")
    _draw_countries(ax)
    for i, image, p in _points(records):
        ax.scatter(p["lon"], p["lat"], s=20 + 200 * _weight(p), c=COLOURS[i % len(COLOURS)], zorder=3,
                   alpha=0.75, edgecolors="black", linewidths=0.4, label=_plain_label(Path(image).name) if p["rank"] == 1 else None)
    ax.set(xlim=(west, east), ylim=(south, north), xlabel="longitude", ylabel="latitude", aspect="equal")
    _legend(ax, records)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": MAP_SOFTWARE})  # a later --map may replace it, no other image
    plt.close(fig)


def _legend(ax, records: list[dict]) -> None:
    """Each photo's colour (up to 12 photos), and what a marker's size means."""
    from matplotlib.lines import Line2D

    handles, labels = ax.get_legend_handles_labels()
    if len(handles) > 12:
        handles, labels = [], []
    handles.append(Line2D([], [], linestyle="none"))
    labels.append(f"{len(records)} photo(s); marker area = probability")
    ax.legend(handles, labels, loc="best", fontsize=7, framealpha=0.9)  # where it hides the fewest markers
