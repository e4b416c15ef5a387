"""Rich rendering of one ``geocli predict`` record: guesses, scene, evidence.

Everything taken from the record (the file name, places, OCR text, evidence) goes through
``terminal.text``: shown escaped and literal, never as control sequences or rich markup.
"""
from __future__ import annotations

from rich.table import Table

from geocli.report.terminal import text

from geocli.geo.distance import HALF_CIRCUMFERENCE_KM


def _coord(lat: float, lon: float) -> str:
    return f"{abs(lat):.4f}°{'N' if lat >= 0 else 'S'} {abs(lon):.4f}°{'E' if lon >= 0 else 'W'}"


def _percent(probability: float | None) -> str:
    return "—" if probability is None else f"{100 * probability:.1f}%"


def _guess_table(record: dict) -> Table:
    table = Table(title=text(record["image"]), title_justify="left", title_style="bold", expand=False)
    for name, justify in (("#", "right"), ("country", "left"), ("lat, lon", "left"), ("cell", "left"),
                          ("prob", "right"), ("from", "left")):
        table.add_column(name, justify=justify, no_wrap=name != "from")
    for p in record["predictions"]:
        country = f"{p.get('country') or '—'} {p.get('country_name') or ''}".strip()
        cells = (p["rank"], country, _coord(p["lat"], p["lon"]), p.get("cell") or "",
                 _percent(p.get("probability")), p.get("source", ""))
        table.add_row(*(text(c) for c in cells))
    return table


def _radius_line(record: dict) -> list[str]:
    radius = record.get("confidence_radius_km")
    if radius is None or not record.get("predictions"):
        return []
    if radius >= HALF_CIRCUMFERENCE_KM:
        return ["90% confidence radius: the whole Earth (most of the probability is left to 'unknown')"]
    return [f"90% confidence radius: {radius:,.0f} km around guess 1"]


def _evidence_lines(record: dict) -> list[str]:
    lines = _radius_line(record)
    exif = record.get("exif") or {}
    evidence = record.get("evidence") or []
    if exif.get("gps") and not any(line.startswith("EXIF GPS") for line in evidence):
        lines.append(f"EXIF GPS: {_coord(exif['gps']['lat'], exif['gps']['lon'])}")
    if record.get("scene"):
        lines.append(f"scene: {record['scene']['label']} ({100 * record['scene']['probability']:.0f}%)")
    if record.get("country_head"):
        heads = ", ".join(f"{c['country']} {100 * c['probability']:.0f}%" for c in record["country_head"][:3])
        lines.append(f"country head: {heads}")
    if record.get("text"):
        lines.append("text: " + " | ".join(f"{t['text']} ({t['confidence']:.2f})" for t in record["text"][:8]))
    lines.extend(evidence)
    return lines


def render_record(record: dict) -> list:
    """Renderables for one image: an error line, or the guess table plus evidence lines."""
    if not record["ok"]:
        return [text(f"{record['image']}: error: {record['error']}", style="red")]
    parts = [_guess_table(record)] if record["predictions"] else [
        text(f"{record['image']}: no guess — {record.get('reason') or 'no evidence'}", style="yellow")
    ]
    parts.extend(text("  " + line, style="dim") for line in _evidence_lines(record))
    return parts
