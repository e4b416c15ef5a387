"""Text boxes in records: read on a shrunk copy, scaled back to the photo, stored as fractions of it."""
from __future__ import annotations

import jsonschema

from geocli.ocr import TextBox, rescale_boxes, text_records
from geocli.predict.record import error_record, record_schema


def test_boxes_read_on_a_shrunk_copy_land_on_the_photo_as_fractions():
    read = [TextBox(((10, 20), (90, 20), (90, 40), (10, 40)), "SPLIT", 0.97)]
    photo = rescale_boxes(read, (100, 50), (400, 200))  # OCR saw a quarter-size copy
    assert photo[0].box == ((40.0, 80.0), (360.0, 80.0), (360.0, 160.0), (40.0, 160.0))
    (record,) = text_records(photo, (400, 200))
    assert record == {"text": "SPLIT", "confidence": 0.97,
                      "box": [[0.1, 0.4], [0.9, 0.4], [0.9, 0.8], [0.1, 0.8]]}
    assert text_records(photo) == [{"text": "SPLIT", "confidence": 0.97}]  # no size: no box
    jsonschema.validate({**error_record("a.jpg", "x"), "ok": True, "error": None, "text": [record]}, record_schema())
