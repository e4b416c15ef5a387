"""Hostile cases for ``geocli eval``: every dataset photo counts, duplicates follow one rule,
booleans are not coordinates, stdin works, and stated probabilities are checked (calibration)."""
import json

import pytest
from click.testing import CliRunner

from conftest import write_csv
from geocli.cli.main import cli, main


def _truth(tmp_path, n: int = 40):
    rows = "".join(f"imgs/p{i}.jpg,45.8,16.0\n" for i in range(n))
    return write_csv(tmp_path / "gt.csv", "image,lat,lon\n" + rows)


def _eval(*args, stdin: str | None = None) -> dict:
    r = CliRunner().invoke(cli, ["eval", *args, "--format", "json"], input=stdin)
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def _usage_error(capsys, *args) -> str:
    """Run ``geocli eval ARGS`` as the console does; it must exit 2 with one stderr line."""
    with pytest.raises(SystemExit) as exc:
        main(["eval", *args])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


def _record(i: int, lat: float = 45.8, ok: bool = True, p: float | None = None) -> dict:
    preds = [{"rank": 1, "lat": lat, "lon": 16.0, "probability": p}] if ok else []
    return {"image": f"p{i}.jpg", "ok": ok, "predictions": preds}


def _jsonl(tmp_path, records, name="p.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_photos_without_a_guess_are_misses_not_dropped(tmp_path):
    """29 right, 2 wrong, 4 abstentions, 3 error records, 2 without any record: 29/40 = 72.5%
    within 25 km, not the 29/31 = 93.5% of the answered ones alone."""
    records = [_record(i) for i in range(29)] + [_record(29, lat=50.0), _record(30, lat=50.0)]
    records += [{"image": f"p{i}.jpg", "ok": True, "predictions": [], "reason": "no evidence"} for i in range(31, 35)]
    records += [{"image": f"p{i}.jpg", "ok": False, "error": "broken", "predictions": []} for i in range(35, 38)]
    out = _eval(str(_truth(tmp_path)), "--predictions", str(_jsonl(tmp_path, records)))
    assert out["n"] == 40 and out["answered"] == 31 and out["answered_share"] == pytest.approx(31 / 40)
    assert out["accuracy"]["25"] == pytest.approx(0.725) and out["accuracy_answered"]["25"] == pytest.approx(29 / 31)
    assert (out["abstained"], out["failed"], out["missing"]) == (4, 3, 2)
    assert out["country_accuracy"] == pytest.approx(29 / 40)  # the two wrong guesses lie in Czechia
    assert out["per_continent"]["Europe"]["n"] == 40


def test_an_error_record_with_coordinates_still_counts_as_no_guess(tmp_path):
    records = [{"image": "p0.jpg", "ok": False, "error": "x", "predictions": [{"rank": 1, "lat": 45.8, "lon": 16.0}]}]
    out = _eval(str(_truth(tmp_path, 1)), "--predictions", str(_jsonl(tmp_path, records)))
    assert out["accuracy"]["25"] == 0.0 and out["failed"] == 1


def test_duplicate_records_the_last_wins_and_is_counted(tmp_path):
    records = [_record(0, lat=10.0), _record(1), _record(0)]  # p0 first wrong, then right
    out = _eval(str(_truth(tmp_path, 2)), "--predictions", str(_jsonl(tmp_path, records)))
    assert out["duplicates"] == 1 and out["accuracy"]["25"] == 1.0 and out["unmatched"] == 0
    records = [_record(0), _record(1), _record(0, lat=10.0)]  # now the last is wrong
    out = _eval(str(_truth(tmp_path, 2)), "--predictions", str(_jsonl(tmp_path, records, "q.jsonl")))
    assert out["duplicates"] == 1 and out["accuracy"]["25"] == 0.5


def test_duplicate_rows_in_a_csv_start_a_new_record(tmp_path):
    csv = "image,rank,lat,lon\np0.jpg,1,10,16\np0.jpg,2,45.8,16\np1.jpg,1,45.8,16\np0.jpg,1,45.8,16\n"
    out = _eval(str(_truth(tmp_path, 2)), "--predictions", str(write_csv(tmp_path / "p.csv", csv)))
    assert out["duplicates"] == 1 and out["accuracy"]["25"] == 1.0


@pytest.mark.parametrize("lat,lon", [(True, 16.0), (45.8, False), ("nan", 16.0)])
def test_booleans_and_nan_are_not_coordinates(tmp_path, capsys, lat, lon):
    records = [{"image": "p0.jpg", "ok": True, "predictions": [{"rank": 1, "lat": lat, "lon": lon}]}]
    err = _usage_error(capsys, str(_truth(tmp_path, 1)), "--predictions", str(_jsonl(tmp_path, records)))
    assert "record 1" in err


def test_predictions_from_stdin(tmp_path):
    text = "".join(json.dumps(_record(i)) + "\n" for i in range(3))
    out = _eval(str(_truth(tmp_path, 4)), "--predictions", "-", stdin=text)
    assert out["answered"] == 3 and out["missing"] == 1 and out["accuracy"]["25"] == 0.75


def test_eval_reports_calibration_when_records_state_probabilities(tmp_path):
    """Ten photos at 0.95 of which half are right: that bin states 95% and observes 50%."""
    records = [_record(i, lat=45.8 if i % 2 else 50.0, p=0.95) for i in range(10)]
    records += [_record(i, p=0.05) for i in range(10, 20)]  # all right at 5%
    out = _eval(str(_truth(tmp_path, 20)), "--predictions", str(_jsonl(tmp_path, records)))
    cal = out["calibration"]
    assert cal["n"] == 20
    top = cal["bins"][-1]
    assert top["n"] == 10 and top["stated"] == pytest.approx(0.95) and top["within_km"] == 0.5
    assert cal["ece_km"] == pytest.approx((10 * 0.45 + 10 * 0.95) / 20)
    table = CliRunner().invoke(cli, ["eval", str(_truth(tmp_path, 20)), "--predictions", str(tmp_path / "p.jsonl")])
    assert "ECE" in table.output and "0.9-1.0" in table.output


def test_no_calibration_without_probabilities(tmp_path):
    out = _eval(str(_truth(tmp_path, 2)), "--predictions", str(_jsonl(tmp_path, [_record(0)])))
    assert "calibration" not in out


@pytest.mark.parametrize("p", [1.5, -0.1, True])
def test_a_stated_probability_out_of_range_is_refused(tmp_path, capsys, p):
    records = [{"image": "p0.jpg", "predictions": [{"rank": 1, "lat": 45.8, "lon": 16.0, "probability": p}]}]
    err = _usage_error(capsys, str(_truth(tmp_path, 1)), "--predictions", str(_jsonl(tmp_path, records)))
    assert "probability" in err


# --- the evidence model: weak reads are clues, not locations --------------------------------------
@pytest.mark.parametrize("text,wrong", [("ALCATRAZ LANDING", "Lansing"), ("FISHERMANS WHARF", "Sherman")])
def test_dictionary_words_are_not_misread_city_names(text, wrong):
    from geocli.evidence.gazetteer import default_gazetteer

    assert not [m for m in default_gazetteer().match(text) if m.place.name == wrong]


def test_evidence_records_state_a_confidence_radius():
    from geocli.evidence import combine
    from geocli.evidence.radius import evidence_radius_km
    from geocli.geo.distance import HALF_CIRCUMFERENCE_KM
    from geocli.evidence.fuse import photo_evidence
    from geocli.ocr.base import make_box

    box = [(0, 0), (10, 0), (10, 5), (0, 5)]
    ev = photo_evidence(None, [make_box(box, "+385 1 4567 890", 0.95)])
    ranked = combine.ranked(ev)
    unknown = 1 - sum(p for _, p in ranked)
    radius = evidence_radius_km(ranked, unknown)
    assert ranked[0][0].kind == "country:ocr:hints" and radius is not None
    # a phone prefix says "Croatia", not a point: 90% of the belief reaches far beyond one city
    assert radius > 25.0
    assert evidence_radius_km([], 1.0) is None
    # the more is left to "unknown" (spread over the world's cities), the wider the radius
    weak = [(ranked[0][0], 0.2)]
    assert radius < evidence_radius_km(weak, 0.8) <= HALF_CIRCUMFERENCE_KM


def test_a_one_letter_off_famous_city_is_a_clue_not_a_location():
    """'OLD SHABGHAI' read on a San Francisco shop front gave Shanghai at 53.6%."""
    from geocli.evidence import combine
    from geocli.evidence.calibration import load_curves
    from geocli.evidence.fuse import photo_evidence
    from geocli.ocr.base import make_box

    ev = photo_evidence(None, [make_box([(0, 0), (10, 0), (10, 5), (0, 5)], "OLD SHABGHAI", 0.95)])
    cand, p = combine.ranked(ev)[0]
    raw = combine.ranked(ev, calibrated=False)[0][1]
    assert cand.kind == "place:approximate" and "place:approximate" in load_curves()
    assert p < raw and p < 0.35


def test_eval_checks_the_stated_confidence_radius(tmp_path):
    records = [{**_record(i, lat=45.8 if i < 9 else 47.0), "confidence_radius_km": 50.0} for i in range(10)]
    out = _eval(str(_truth(tmp_path, 10)), "--predictions", str(_jsonl(tmp_path, records)))
    assert out["calibration"]["radius"] == {"n": 10, "within_radius": 0.9, "median_radius_km": 50.0}
    assert out["calibration"]["n"] == 0  # no stated probabilities: no reliability bins
