"""Result writers for ``geocli predict``: one record per image, written as soon as it is ready.

Every writer flushes after each record, so a pipe sees results at once and an interrupted run
keeps every finished record intact (``json`` closes its array on ``close()``). Each writer registers
its ``--format`` name in ``WRITERS``; ``geocli predict --format`` offers exactly those. JSON is
strict: a non-finite number is written as null, never as ``NaN``/``Infinity`` (csv: an empty cell).
"""
from __future__ import annotations

import csv
from typing import IO

from geocli.predict.record import PredictionRecord
from geocli.registry import Registry
from geocli.report.json_out import finite_or_none, strict_json

WRITERS: Registry[type] = Registry("output format")

CSV_COLUMNS = (
    "image", "ok", "error", "rank", "lat", "lon", "country", "country_name", "cell", "probability", "source",
    "confidence_radius_km", "scene", "scene_probability", "exif_lat", "exif_lon", "camera", "datetime", "text",
    "reason",
)


def dumps(record: dict, **options) -> str:
    """JSON text of ``record``, non-ASCII kept readable; a record holding bytes that were not UTF-8
    (a file name decoded with surrogate escapes) is written all-ASCII, its ``\\udcXX`` escapes
    being the one valid JSON form of those bytes (``os.fsencode`` turns them back)."""
    text = strict_json(record, ensure_ascii=False, **options)
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return strict_json(record, ensure_ascii=True, **options)


@WRITERS.register("jsonl")
class JsonlWriter:
    def __init__(self, stream: IO[str]):
        self.stream = stream

    def write(self, record: PredictionRecord) -> None:
        self.stream.write(dumps(record) + "\n")
        self.stream.flush()

    def close(self) -> None:
        self.stream.flush()


@WRITERS.register("json")
class JsonWriter(JsonlWriter):
    """One JSON array, streamed element by element."""

    def __init__(self, stream: IO[str]):
        super().__init__(stream)
        self.count = 0

    def write(self, record: PredictionRecord) -> None:
        prefix = "[\n" if self.count == 0 else ",\n"
        self.stream.write(prefix + dumps(record, indent=2))
        self.stream.flush()
        self.count += 1

    def close(self) -> None:
        self.stream.write("[]\n" if self.count == 0 else "\n]\n")
        self.stream.flush()


def csv_rows(record: PredictionRecord) -> list[dict]:
    """One row per rank (one row with empty rank when there is no prediction); ``ok`` as true/false."""
    exif = record.get("exif") or {}
    gps = exif.get("gps") or {}
    scene = record.get("scene") or {}
    base = {
        "image": record["image"], "ok": "true" if record["ok"] else "false", "error": record.get("error") or "",
        "confidence_radius_km": "" if record.get("confidence_radius_km") is None else record["confidence_radius_km"],
        "scene": scene.get("label", ""), "scene_probability": scene.get("probability", ""),
        "exif_lat": gps.get("lat", ""), "exif_lon": gps.get("lon", ""),
        "camera": exif.get("camera") or "", "datetime": exif.get("datetime") or "",
        "text": " | ".join(t["text"] for t in record.get("text") or []), "reason": record.get("reason") or "",
    }
    preds = record.get("predictions") or [{}]
    return [{**base, **{k: p.get(k, "") for k in CSV_COLUMNS if k in p}} for p in preds]


@WRITERS.register("csv")
class CsvWriter(JsonlWriter):
    def __init__(self, stream: IO[str]):
        super().__init__(stream)
        self.writer = csv.DictWriter(stream, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        self.writer.writeheader()
        stream.flush()

    def write(self, record: PredictionRecord) -> None:
        self.writer.writerows(csv_rows(finite_or_none(record)))
        self.stream.flush()


@WRITERS.register("table")
class TableWriter(JsonlWriter):
    """A rich table per image, for people."""

    def __init__(self, stream: IO[str]):
        from rich.console import Console

        super().__init__(stream)
        self.console = Console(file=stream, soft_wrap=False)

    def write(self, record: PredictionRecord) -> None:
        from geocli.report.predict_table import render_record

        for part in render_record(record):
            self.console.print(part)
        self.stream.flush()

