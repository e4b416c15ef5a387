"""The prediction record: what ``geocli predict`` prints for one photo, whichever model made it.

Every geolocator returns a ``LocateResult`` per photo; the predictor adds ``image``/``ok``/``error``
to make a ``PredictionRecord``; every writer (JSON, JSONL, CSV, table, map) reads that one shape.
The same shape is published as a JSON schema, ``record.schema.json`` beside this module
(``record_schema()``), so a consumer can check what it reads. Records stay plain dicts (JSON as is);
the types say which keys exist and what they hold.

Keys every record has: ``image``, ``ok``, ``error``, ``exif``, ``predictions``, ``scene``, ``text``.
Keys a model adds when it has the evidence: ``scripts`` (writing systems in the text read),
``country_head`` and ``country_agreement`` (models with a country head), ``evidence`` (lines for
people), ``reason`` (why ``predictions`` is empty, else null).
"""

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Optional, TypedDict

import numpy as np

try:
    from typing import NotRequired
except ImportError:  # Python 3.10
    from typing_extensions import NotRequired

from geocli.geo.countries import country, country_code_at

#: Where a record keeps its photo's whole ``Distribution`` while geolocators and grouping use it;
#: removed before records are written.
DISTRIBUTION_KEY = "_distribution"

#: Where a guess comes from (``Guess.source``): a head's name, ``exif``, ``clip``, or ``ocr:...``.
EVIDENCE_SOURCES = ("exif", "clip", "ocr:gazetteer", "ocr:hints", "ocr:script")


class Guess(TypedDict):
    """One ranked location guess."""
    rank: int
    lat: float
    lon: float
    country: Optional[str]
    country_name: Optional[str]
    cell: Optional[str]
    probability: Optional[float]  # null for heads that give a point without a distribution
    source: Optional[str]


class CountryScore(TypedDict):
    """One entry of a country head's own ranking."""
    rank: int
    country: str
    country_name: Optional[str]
    probability: float


class CountryAgreement(TypedDict):
    location_country: Optional[str]
    country_head: str
    agree: bool


@dataclass
class Distribution:
    """A photo's probabilities over a model's fixed support (points, their countries and cell ids),
    as a head states them (``Head.distributions``); evidence and grouping act on these."""

    source: str
    points: np.ndarray
    probs: np.ndarray
    codes: list | None  # None: not looked up (the group record then ranks no countries)
    cells: list | None = None


class Scene(TypedDict):
    label: str
    probability: float


class TextRead(TypedDict):
    text: str
    confidence: float
    box: NotRequired[list[list[float]]]  # 4 corners, fractions of the photo's width and height


class ScriptShare(TypedDict):
    script: str
    share: float


class GPS(TypedDict):
    lat: float
    lon: float


class ExifFacts(TypedDict):
    gps: Optional[GPS]
    camera: Optional[str]
    datetime: Optional[str]


class LocateResult(TypedDict):
    """What a geolocator's ``locate`` returns for one photo."""
    exif: Optional[ExifFacts]
    predictions: list[Guess]
    scene: Optional[Scene]
    text: list[TextRead]
    scripts: NotRequired[list[ScriptShare]]
    country_head: NotRequired[list[CountryScore]]
    country_agreement: NotRequired[Optional[CountryAgreement]]
    evidence: NotRequired[list[str]]
    reason: NotRequired[Optional[str]]
    confidence_radius_km: NotRequired[Optional[float]]  # around guess 1, holding 90% of the probability


class PredictionRecord(LocateResult):
    """One photo's record as writers receive it (with ``--group-by``, also each group's combined
    record: ``image`` "group KEY", ``group`` and the ``images`` it combines)."""
    image: str
    ok: bool
    error: Optional[str]
    group: NotRequired[Optional[str]]
    images: NotRequired[list[str]]


def guess(rank: int, lat: float, lon: float, source: str | None, probability: float | None = None,
          cell: str | None = None, country_code: str | None = None) -> Guess:
    """A ranked guess; its country is ``country_code`` when the source names one, else the country
    at the coordinate."""
    code = country_code if country_code is not None else country_code_at(lat, lon)
    info = country(code) if code else None
    return {"rank": int(rank), "lat": float(lat), "lon": float(lon), "country": code,
            "country_name": info.name if info else None, "cell": cell,
            "probability": None if probability is None else float(probability), "source": source}


def country_score(rank: int, code: str, probability: float) -> CountryScore:
    info = country(code)
    return {"rank": rank, "country": code, "country_name": info.name if info else None,
            "probability": float(probability)}


def agreement(predictions: list[Guess], countries: list[CountryScore]) -> CountryAgreement | None:
    """Whether the top guess's country is the country head's top country (None without both)."""
    if not predictions or not countries:
        return None
    a, b = predictions[0]["country"], countries[0]["country"]
    return {"location_country": a, "country_head": b, "agree": a == b}


def image_record(image: str, result: LocateResult) -> PredictionRecord:
    """A geolocator's result for ``image`` as a record (keys in the documented order)."""
    return {"image": image, "ok": True, "error": None, **result}  # type: ignore[typeddict-item]


def error_record(image: str, message: str) -> PredictionRecord:
    """The record of a photo that could not be processed; the run goes on."""
    return {"image": image, "ok": False, "error": message, "exif": None, "predictions": [], "scene": None,
            "text": []}


@lru_cache(maxsize=1)
def record_schema() -> dict:
    """The JSON schema (draft 2020-12) of one ``PredictionRecord``."""
    text = resources.files("geocli.predict").joinpath("record.schema.json").read_text(encoding="utf-8")
    return json.loads(text)
