"""The basemap geocli ships: country outlines (Natural Earth admin-0, simplified), for maps drawn offline.

``geocli/data/borders.json`` is derived by ``tools/make_borders.py``; each country is a name and
closed rings of ``[lon, lat]``. The HTML map and ``geocli serve`` draw it in the browser; the PNG map
fills land and strokes coastlines and borders with it. Nothing is fetched from the network.
"""
from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

WEB_ASSETS = ("geomap.js", "geomap.css")


@lru_cache(maxsize=1)
def borders_text() -> str:
    """The shipped basemap as JSON text (served and inlined as is)."""
    return (resources.files("geocli") / "data" / "borders.json").read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def borders() -> dict:
    """``{"source": str, "countries": [{"name", "rings": [[[lon, lat], ...], ...]}]}``."""
    return json.loads(borders_text())


def web_asset(name: str) -> str:
    """One of the browser files geocli ships (``WEB_ASSETS``), by its fixed name."""
    if name not in WEB_ASSETS:
        raise KeyError(name)
    return (resources.files("geocli") / "report" / "web" / name).read_text(encoding="utf-8")


def script_json(value) -> str:
    """JSON safe to place inside an HTML ``<script>``: no ``</script>``, no ``<!--``, no U+2028."""
    text = json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
