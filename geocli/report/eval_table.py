"""Rich rendering of ``geocli eval`` results."""
from __future__ import annotations

from rich.table import Table


def _pct(v) -> str:
    return "-" if v is None or v != v else f"{100 * v:.1f}"


def _km(v) -> str:
    return "-" if v is None else f"{v:,.0f}" if v >= 100 else f"{v:.1f}"


def _accuracy_table(title: str, rows: dict[str, dict], thresholds: list[str]) -> Table:
    table = Table(title=f"{title} — % within N km; median, mean in km; country %", title_justify="left")
    table.add_column("", no_wrap=True)
    table.add_column("n", justify="right")
    for t in thresholds:
        table.add_column(f"{t}", justify="right")
    table.add_column("median", justify="right")
    table.add_column("mean", justify="right")
    table.add_column("country", justify="right")
    for name, r in rows.items():
        cells = [_pct(r["accuracy"][t]) for t in thresholds]
        table.add_row(str(name), str(r["n"]), *cells, _km(r["median_km"]), _km(r["mean_km"]), _pct(r.get("country_accuracy")))
    return table


def eval_tables(result: dict) -> list:
    """Overall and per-continent tables plus a line on coverage."""
    thresholds = list(result["accuracy"])
    overall = _accuracy_table(f"geocli eval: {result['dataset']}", {"all": result}, thresholds)
    continents = _accuracy_table("per continent (of the true location)", result["per_continent"], thresholds)
    notes = [f"{result['n']} of {result['n_dataset']} images scored; {result['missing']} without a prediction; "
             f"{result['unmatched']} predictions matched no image"]
    if "country_topk" in result:
        k = result["country_topk"]
        notes.append(f"country top-1/5/10: {_pct(k['1'])} / {_pct(k['5'])} / {_pct(k['10'])} %")
    return [overall, continents, *notes]
