"""Post-processing into the CLI's records: top-k cells, countries at coordinates, the country
head's own ranking with visible disagreement, scene, refinement, other location heads."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import fusion_helpers as H
from geocli.config import HeadConfig, PredictConfig
from geocli.model import GeoModel
from geocli.heads.locations import refine_points
from geocli.geo.countries import country_code_at
from geocli.geo.distance import haversine_km

LOCATION_KEYS = {"rank", "lat", "lon", "country", "country_name", "cell", "probability", "source"}


def _model(heads, **predict):
    torch.manual_seed(0)
    cfg = H.config(fusion="concat", heads=heads)
    cfg.predict = PredictConfig(**predict)
    return GeoModel(cfg).eval()


def _force(linear: torch.nn.Linear, index: int) -> None:
    with torch.no_grad():
        linear.weight.zero_()
        linear.bias.fill_(-10.0)
        linear.bias[index] = 10.0


def test_records_and_visible_disagreement():
    model = _model([HeadConfig("country"), HeadConfig("geocell"), HeadConfig("scene")], top_k=3)
    hierarchy = model.heads["geocell"].hierarchy
    zagreb = int(np.argmin(haversine_km(45.8, 16.0, hierarchy.finest.means[:, 0], hierarchy.finest.means[:, 1])))
    for part, parent in zip(hierarchy.partitions, hierarchy.parents):
        _force(model.heads["geocell"].fc[part.name], int(parent[zagreb]))
    _force(model.heads["country"].fc, H.COUNTRIES.index("JP"))
    _force(model.heads["scene"].fc, 2)
    (rec,) = model.predict(H.batch(1))
    top = rec["predictions"][0]
    assert set(top) == LOCATION_KEYS and [p["rank"] for p in rec["predictions"]] == [1, 2, 3]
    assert top["cell"] == hierarchy.finest.cell_ids[zagreb] and top["probability"] > 0.9
    assert (top["lat"], top["lon"]) == tuple(hierarchy.finest.means[zagreb])
    assert top["country"] == "HR" == country_code_at(top["lat"], top["lon"]) and top["country_name"] == "Croatia"
    assert rec["country_head"][0]["country"] == "JP" and rec["country_head"][0]["country_name"] == "Japan"
    assert rec["country_agreement"] == {"location_country": "HR", "country_head": "JP", "agree": False}
    assert rec["scene"]["label"] == "urban" and rec["scene"]["probability"] > 0.9
    probs = [p["probability"] for p in rec["predictions"]]
    assert probs == sorted(probs, reverse=True)


def test_refinement_pulls_toward_probable_neighbours():
    means = np.array([[45.0, 16.0], [45.0, 17.0], [10.0, 100.0]])
    probs = np.array([0.4, 0.4, 0.2])
    point = refine_points(means, probs, np.array([0]), refine_top=3, refine_km=150.0)[0]
    assert abs(point[0] - 45.0) < 0.01 and abs(point[1] - 16.5) < 0.01  # far cell ignored
    alone = refine_points(means, probs, np.array([0]), refine_top=3, refine_km=10.0)[0]
    assert np.allclose(alone, means[0])


def test_regression_and_grid_heads_give_one_location():
    model = _model([HeadConfig("regression")])
    recs = model.predict(H.batch(2))
    assert len(recs) == 2 and len(recs[0]["predictions"]) == 1
    assert recs[0]["predictions"][0]["probability"] is None and recs[0]["scene"] is None
    assert recs[0]["country_head"] == [] and recs[0]["country_agreement"] is None
    grid = _model([HeadConfig("grid_regression")]).predict(H.batch(1))[0]["predictions"][0]
    assert grid["source"] == "grid_regression" and 0 < grid["probability"] <= 1 and grid["cell"]


def test_retrieval_head_ranks_reference_images():
    from geocli.heads.references import ReferenceIndex

    model = _model([HeadConfig("retrieval", options={"out_channels": 8, "out_rows": 2})], top_k=2)
    batch = H.batch(3)
    desc = model(batch)["heads"]["retrieval"]["descriptor"]
    model.heads["retrieval"].set_references(ReferenceIndex(desc, batch["gps"].numpy()))
    recs = model.predict(batch)
    for rec, gps in zip(recs, batch["gps"].numpy()):
        assert np.allclose([rec["predictions"][0]["lat"], rec["predictions"][0]["lon"]], gps, atol=1e-4)


def test_location_head_must_exist():
    from geocli.errors import UsageError

    model = _model([HeadConfig("country")], location_head="geocell")
    with pytest.raises(UsageError, match="not in this model"):
        model.predict(H.batch(1))


def test_label_space_targets():
    labels = H.labels()
    t = labels.targets([45.8, 35.7], [16.0, 139.7], scenes=["urban", None])
    assert t["country"].tolist() == [H.COUNTRIES.index("HR"), H.COUNTRIES.index("JP")]
    assert t["scene"].tolist() == [2, -1] and t["gps"].shape == (2, 2)
    assert set(t["cells"]) == {"coarse", "fine"}


