import json

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import write_csv
from geocli.cli.main import cli
from geocli.evaluate.metrics import accuracy_within, distance_summary, retrieval_recall, topk_accuracy


def test_accuracy_counts_threshold_inclusive():
    acc = accuracy_within([0.5, 1.0, 25.0, 30.0], (1, 25))
    assert acc == {"1": 0.5, "25": 0.75}
    s = distance_summary([1.0, 3.0, 8.0])
    assert s["n"] == 3 and s["median_km"] == 3.0 and s["mean_km"] == 4.0
    assert distance_summary([])["median_km"] is None


def test_topk_and_retrieval_recall():
    assert topk_accuracy(["HR", "US", None], [["HR"], ["CA", "US"], ["FR"]], ks=(1, 2)) == {"1": 0.5, "2": 1.0}
    q = np.array([0.0, 10.0])
    ref_lat, ref_lon = np.array([0.0, 10.0, 0.0001]), np.array([0.0, 0.0, 0.0])
    ranked = np.array([[1, 2, 0], [0, 2, 1]])
    assert retrieval_recall(q, [0.0, 0.0], ref_lat, ref_lon, ranked, ks=(1, 2, 3)) == {"1": 0.0, "2": 0.5, "3": 1.0}


def dataset_csv(tmp_path):
    return write_csv(tmp_path / "gt.csv", "image,lat,lon\nimgs/a.jpg,45.8,16.0\nimgs/b.jpg,48.85,2.35\nimgs/c.jpg,40.7,-74.0\n")


def run_eval(*args):
    result = CliRunner().invoke(cli, ["eval", *args])
    return result


def test_eval_csv_predictions_json_contract(tmp_path):
    gt = dataset_csv(tmp_path)
    preds = write_csv(tmp_path / "p.csv", "image,lat,lon\na.jpg,45.8,16.0\nb.jpg,45.8,16.0\nzzz.jpg,0,0\n")
    r = run_eval(str(gt), "--predictions", str(preds), "--format", "json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert set(out) >= {"dataset", "n", "accuracy", "mean_km", "median_km", "country_accuracy", "per_continent", "missing", "unmatched"}
    assert out["n"] == 3 and out["answered"] == 2 and out["missing"] == 1 and out["unmatched"] == 1
    third = pytest.approx(1 / 3)
    assert out["accuracy"] == {"1": third, "25": third, "200": third, "750": third, "2500": pytest.approx(2 / 3)}
    assert out["accuracy_answered"] == {"1": 0.5, "25": 0.5, "200": 0.5, "750": 0.5, "2500": 1.0}  # Zagreb-Paris ~1090 km
    assert out["country_accuracy"] == third and out["per_continent"]["Europe"]["n"] == 2


def test_eval_jsonl_from_predict_with_country_ranking(tmp_path):
    gt = dataset_csv(tmp_path)
    records = [
        {"image": "x/imgs/a.jpg", "ok": True, "predictions": [
            {"rank": 2, "lat": 45.8, "lon": 16.0, "country": "HR"}, {"rank": 1, "lat": 46.05, "lon": 14.5, "country": "SI"}]},
        {"image": "b.jpg", "ok": False, "error": "broken", "predictions": []},
    ]
    preds = tmp_path / "p.jsonl"
    preds.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    out = json.loads(run_eval(str(gt), "--predictions", str(preds), "--format", "json", "--thresholds", "100,200").output)
    assert out["n"] == 3 and out["answered"] == 1 and out["missing"] == 1 and out["failed"] == 1
    assert set(out["accuracy"]) == {"100", "200"} and out["accuracy"]["200"] == pytest.approx(1 / 3)
    assert out["accuracy_answered"]["200"] == 1.0
    assert out["country_accuracy"] == 0.0 and out["country_topk"]["5"] == pytest.approx(1 / 3)


def test_eval_usage_errors_are_one_line(tmp_path):
    from geocli.cli.main import main

    gt = dataset_csv(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(["eval", str(gt)])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["eval", str(tmp_path / "missing.csv"), "--predictions", str(gt)])
    assert exc.value.code == 2


def test_eval_table_output(tmp_path):
    gt = dataset_csv(tmp_path)
    preds = write_csv(tmp_path / "p.csv", "image,lat,lon\na.jpg,45.8,16.0\n")
    r = run_eval(str(gt), "--predictions", str(preds))
    assert r.exit_code == 0 and "Europe" in r.output and "3 images scored" in r.output and "1 answered" in r.output


@pytest.mark.realdata
def test_eval_agrees_with_independent_numpy_on_im2gps3k(benchmark_meta, tmp_path):
    """Predictions built by perturbing the official Im2GPS3k truth; scores recomputed with a
    spherical-law-of-cosines distance written here, not geocli's haversine."""
    import csv

    rows = list(csv.DictReader((benchmark_meta / "im2gps3k_places365.csv").open()))
    rng = np.random.default_rng(7)
    lat_t = np.array([float(r["LAT"]) for r in rows])
    lon_t = np.array([float(r["LON"]) for r in rows])
    scale = rng.choice([0.001, 0.1, 1.0, 5.0, 30.0], len(rows))
    lat_p = np.clip(lat_t + rng.normal(0, scale), -90, 90)
    lon_p = (lon_t + rng.normal(0, scale) + 180) % 360 - 180
    with (tmp_path / "p.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image", "lat", "lon"])
        w.writerows(zip([r["IMG_ID"] for r in rows], lat_p, lon_p))
    out = json.loads(run_eval("im2gps3k", "--metadata", str(benchmark_meta / "im2gps3k_places365.csv"),
                              "--predictions", str(tmp_path / "p.csv"), "--format", "json").output)
    p1, p2, dl = np.radians(lat_t), np.radians(lat_p), np.radians(lon_p - lon_t)
    d = 6371.0088 * np.arccos(np.clip(np.sin(p1) * np.sin(p2) + np.cos(p1) * np.cos(p2) * np.cos(dl), -1, 1))
    assert out["n"] == len(rows) == 2997 and out["missing"] == 0
    for t in (25, 200, 750, 2500):
        assert out["accuracy"][str(t)] == pytest.approx(np.mean(d <= t), abs=1 / len(rows))
    assert out["median_km"] == pytest.approx(np.median(d), rel=1e-4)
    assert out["mean_km"] == pytest.approx(d.mean(), rel=1e-6)


def test_models_lists_builtins_and_weight_availability():
    r = CliRunner().invoke(cli, ["models", "--format", "json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert {m["name"] for m in data["models"]} >= {"default", "evidence"}
    lite0 = next(b for b in data["backbones"] if b["name"] == "tf_efficientnet_lite0.in1k")
    assert lite0["available"] and lite0["where"].endswith(".pth")
    vit = next(b for b in data["backbones"] if b["name"].startswith("vit_base"))
    assert isinstance(vit["available"], bool) and vit["where"]


def test_a_records_country_head_ranks_its_countries():
    from geocli.evaluate.prediction_table import table_from_records
    from geocli.errors import ManifestError

    record = {"image": "a.jpg", "predictions": [{"rank": 1, "lat": 45.8, "lon": 16.0, "country": "HR"}],
              "country_head": [{"rank": 2, "country": "si"}, "junk", {"rank": 1, "country": "HR"}, {"rank": 3}]}
    assert table_from_records([record]).head_country.to_pylist() == ["HR", "SI"]
    record["country_head"][0]["rank"] = "second"
    with pytest.raises(ManifestError, match="rank is not a whole number"):
        table_from_records([record])
