"""predict --format csv: ok as true/false, each guess's source, the reason a photo has no guess."""
from __future__ import annotations

import csv
import io

from geocli.report.writers import CSV_COLUMNS, CsvWriter


def _rows(*records):
    stream = io.StringIO()
    writer = CsvWriter(stream)
    for record in records:
        writer.write(record)
    return list(csv.DictReader(io.StringIO(stream.getvalue())))


def test_csv_rows_carry_ok_source_and_reason():
    guessed = {"image": "a.jpg", "ok": True, "error": None, "reason": None,
               "predictions": [{"rank": 1, "lat": 45.8, "lon": 15.98, "country": "HR", "probability": 0.8,
                                "source": "exif"},
                               {"rank": 2, "lat": 43.5, "lon": 16.4, "country": "HR", "probability": 0.1,
                                "source": "ocr:gazetteer"}]}
    unknown = {"image": "b.jpg", "ok": True, "error": None, "predictions": [],
               "reason": "no location evidence: no EXIF GPS"}
    broken = {"image": "c.jpg", "ok": False, "error": "not a recognised image format: c.jpg", "predictions": []}
    rows = _rows(guessed, unknown, broken)
    assert "source" in CSV_COLUMNS and "reason" in CSV_COLUMNS
    assert [(r["image"], r["ok"], r["rank"], r["source"]) for r in rows] == [
        ("a.jpg", "true", "1", "exif"), ("a.jpg", "true", "2", "ocr:gazetteer"),
        ("b.jpg", "true", "", ""), ("c.jpg", "false", "", "")]
    assert rows[2]["reason"] == "no location evidence: no EXIF GPS" and rows[0]["reason"] == ""
    assert rows[3]["error"] == "not a recognised image format: c.jpg"
