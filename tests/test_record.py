"""The one prediction record: every geolocator's records, error records included, validate against
the shipped JSON schema, the schema and the TypedDicts name the same keys, and ``--format`` offers
exactly the registered writers."""
from __future__ import annotations

import io
import json
import typing

import click
import jsonschema
import pytest
from PIL import Image

import train_helpers as T
from geocli.cli.predict import predict as predict_command
from geocli.predict.default_geolocator import DefaultGeolocator
from geocli.predict.predictor import Predictor, load_geolocator
from geocli.predict.record import PredictionRecord, error_record, guess, record_schema
from geocli.report.writers import WRITERS
from geocli.training.trainer import train


def _validate(record: dict) -> None:
    jsonschema.validate(json.loads(json.dumps(record)), record_schema())


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("record")
    train(T.tiny_config(tmp, epochs=1, heads=["country", "geocell", "scene"]), progress=False)
    return tmp


def test_checkpoint_records_follow_the_schema(run, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not an image")
    photos = [str(run / "data" / "img" / "r0_l0_v0.png"), str(bad)]
    good, broken = load_geolocator(str(run / "run"), cache=False).predict(photos, top_k=3)
    for record in (good, broken):
        _validate(record)
    assert good["ok"] and len(good["predictions"]) == 3 and good["country_head"][0]["rank"] == 1
    assert good["scene"]["label"] in T.SCENES
    assert (broken["ok"], broken["predictions"], broken["exif"]) == (False, [], None)


def test_default_geolocator_records_follow_the_schema(tmp_path):
    exif = Image.Exif()
    exif.get_ifd(0x8825).update({1: "N", 2: (45.0, 48.0, 36.0), 3: "E", 4: (15.0, 58.0, 48.0)})
    path = tmp_path / "gps.jpg"
    Image.new("RGB", (64, 48), "grey").save(path, exif=exif)
    (record,) = Predictor(DefaultGeolocator(clip_model=None, no_ocr=True)).predict([str(path)])
    _validate(record)
    assert record["predictions"][0]["source"] == "exif" and record["predictions"][0]["country"] == "HR"


def test_the_schema_rejects_what_the_record_type_forbids():
    record = error_record("a.jpg", "unreadable")
    _validate(record)
    for bad in ({**record, "ok": "yes"}, {**record, "surprise": 1},
                {**record, "predictions": [{**guess(1, 45.8, 16.0, "exif", 0.5), "lat": 95.0}]}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, record_schema())


def test_schema_and_types_name_the_same_keys():
    schema = record_schema()
    assert set(schema["properties"]) == set(typing.get_type_hints(PredictionRecord))
    required = {k for k in PredictionRecord.__required_keys__}
    assert set(schema["required"]) == required
    assert set(schema["$defs"]["guess"]["properties"]) == set(guess(1, 0.0, 0.0, None))


def test_format_choices_are_the_registered_writers():
    choice = next(p for p in predict_command.params if p.name == "fmt").type
    assert isinstance(choice, click.Choice) and sorted(choice.choices) == ["csv", "json", "jsonl", "table"]
    assert list(choice.choices) == WRITERS.names()
    stream = io.StringIO()
    writer = WRITERS.get("jsonl")(stream)
    writer.write(error_record("a.jpg", "unreadable"))
    assert json.loads(stream.getvalue())["error"] == "unreadable"
