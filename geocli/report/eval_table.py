"""Rich rendering of ``geocli eval`` results."""
from __future__ import annotations

from rich.table import Table

from geocli.report.terminal import text


def _pct(v) -> str:
    return "-" if v is None or v != v else f"{100 * v:.1f}"


def _km(v) -> str:
    return "-" if v is None else f"{v:,.0f}" if v >= 100 else f"{v:.1f}"


def _accuracy_table(title: str, rows: dict[str, dict], thresholds: list[str]) -> Table:
    table = Table(title=text(f"{title} — % within N km; median, mean in km (answered); country %"),
                  title_justify="left")
    table.add_column("", no_wrap=True)
    table.add_column("n", justify="right")
    table.add_column("answered", justify="right")
    for t in thresholds:
        table.add_column(f"{t}", justify="right")
    table.add_column("median", justify="right")
    table.add_column("mean", justify="right")
    table.add_column("country", justify="right")
    for name, r in rows.items():
        cells = [_pct(r["accuracy"][t]) for t in thresholds]
        row = (name, r["n"], r["answered"], *cells, _km(r["median_km"]), _km(r["mean_km"]), _pct(r.get("country_accuracy")))
        table.add_row(*(text(c) for c in row))
    return table


def _calibration_table(cal: dict) -> Table:
    table = Table(title=f"calibration of the top guess's stated probability ({cal['n']} photos) — "
                        f"ECE {_ece(cal['ece_km'])} (within {cal['within_km']:g} km), "
                        f"{_ece(cal['ece_country'])} (country)", title_justify="left")
    for name in ("stated p", "n", "mean stated %", f"within {cal['within_km']:g} km %", "country %"):
        table.add_column(name, justify="right")
    for row in cal["bins"]:
        low, high = row["bin"]
        table.add_row(f"{low:.1f}-{high:.1f}", str(row["n"]), _pct(row["stated"]), _pct(row["within_km"]),
                      _pct(row["country"]))
    return table


def _ece(v) -> str:
    return "-" if v is None else f"{v:.3f}"


def _coverage_note(result: dict) -> str:
    no_guess = result["n"] - result["answered"]
    parts = [f"{result['n']} images scored, {result['answered']} answered ({_pct(result['answered_share'])}%; "
             "an image without a guess is a miss)"]
    if no_guess:
        parts.append(f"{result['missing']} without a record, {result['failed']} failed, "
                     f"{result['abstained']} abstained")
    if result.get("duplicates"):
        parts.append(f"{result['duplicates']} duplicate record(s) replaced by a later one for the same image")
    parts.append(f"{result['unmatched']} predictions matched no image")
    return "; ".join(parts)


def _answered_note(result: dict) -> str:
    acc = result["accuracy_answered"]
    return "answered images only: " + ", ".join(f"{_pct(v)}% @{t} km" for t, v in acc.items())


def eval_tables(result: dict) -> list:
    """Overall and per-continent tables, coverage lines, and calibration where probabilities exist."""
    thresholds = list(result["accuracy"])
    overall = _accuracy_table(f"geocli eval: {result['dataset']}", {"all": result}, thresholds)
    continents = _accuracy_table("per continent (of the true location)", result["per_continent"], thresholds)
    notes = [_coverage_note(result)]
    if result["answered"] < result["n"]:
        notes.append(_answered_note(result))
    if "country_topk" in result:
        k = result["country_topk"]
        notes.append(f"country top-1/5/10: {_pct(k['1'])} / {_pct(k['5'])} / {_pct(k['10'])} %")
    parts = [overall, continents, *(text(n) for n in notes)]
    cal = result.get("calibration")
    if cal and cal["n"]:
        parts.append(_calibration_table(cal))
    if cal and "radius" in cal:
        r = cal["radius"]
        parts.append(text(f"truth within the stated 90% confidence radius: {_pct(r['within_radius'])}% of {r['n']} "
                     f"(median radius {_km(r['median_radius_km'])} km)"))
    return parts
