"""Several photos of one place, one answer: the product of their distributions, or of kernels."""
from __future__ import annotations

import numpy as np
from PIL import Image

from geocli.datasets.manifest import Manifest
from geocli.evaluate.groups import group_manifest
from geocli.predict.grouping import DISTRIBUTION_KEY, Distribution, group_record, group_keys
from geocli.predict.predictor import Predictor

POINTS = np.array([[45.81, 15.98], [43.51, 16.44], [44.79, 20.45]])  # Zagreb, Split, Belgrade
CODES = ["HR", "HR", "RS"]


def _record(image: str, probs, with_distribution: bool = True) -> dict:
    rec = {"image": image, "ok": True, "predictions": [
        {"rank": r, "lat": POINTS[i, 0], "lon": POINTS[i, 1], "probability": probs[i], "country": CODES[i],
         "country_name": None, "cell": None, "source": "gallery"}
        for r, i in enumerate(np.argsort(-np.asarray(probs)), start=1)]}
    if with_distribution:
        rec[DISTRIBUTION_KEY] = Distribution("gallery", POINTS, np.asarray(probs, float), CODES)
    return rec


def test_the_group_is_the_product_of_its_photos():
    a, b = _record("a", [0.5, 0.1, 0.4]), _record("b", [0.2, 0.1, 0.7])
    group = group_record("g", [a, b], 3)
    expected = np.array([0.1, 0.01, 0.28]) / 0.39
    assert [p["rank"] for p in group["predictions"]] == [1, 2, 3]
    assert np.allclose([p["probability"] for p in group["predictions"]], sorted(expected, reverse=True))
    assert group["predictions"][0]["country"] == "RS" and group["images"] == ["a", "b"]
    ranking = {c["country"]: c["probability"] for c in group["country_head"]}
    assert np.isclose(ranking["HR"], expected[:2].sum())


def test_records_without_distributions_combine_through_kernels():
    a, b = _record("a", [0.6, 0.0, 0.4], False), _record("b", [0.0, 0.3, 0.7], False)
    group = group_record("g", [a, b], 2)
    assert group["predictions"][0]["lat"] == POINTS[2, 0]  # the only place both photos allow
    assert "kernels" in group["evidence"][0]


class _Fake:
    keep_distribution = False

    def status_lines(self):
        return []

    def locate(self, images, paths, top_k):
        assert self.keep_distribution
        return [{"exif": None, "scene": None, "text": [],
                 **{k: v for k, v in _record(p, [0.2, 0.3, 0.5]).items() if k not in ("image", "ok")}} for p in paths]


def test_predictor_orders_by_group_and_keeps_every_photo_record(tmp_path):
    paths = []
    for name in ("x1", "y1", "x2"):
        paths.append(str(tmp_path / f"{name}.png"))
        Image.new("RGB", (8, 8)).save(paths[-1])
    groups = {paths[0]: "x", paths[2]: "x", paths[1]: "y"}
    out = list(Predictor(_Fake()).predict(paths, top_k=2, batch_size=2, groups=groups))
    assert [r["image"] for r in out] == [paths[0], paths[2], "group x", paths[1], "group y"]
    assert all(DISTRIBUTION_KEY not in r for r in out) and out[0]["group"] == "x"
    assert out[2]["images"] == [paths[0], paths[2]]


def test_group_keys_by_folder_and_by_a_csv_column(tmp_path):
    (tmp_path / "a").mkdir()
    photo = tmp_path / "a" / "p.jpg"
    (tmp_path / "m.csv").write_text("image,location_id\na/p.jpg,loc7\n")
    assert group_keys([str(photo)], "folder") == {str(photo): str(tmp_path / "a")}
    assert group_keys([str(photo)], "location_id", str(tmp_path / "m.csv")) == {str(photo): "loc7"}


def test_group_manifest_has_one_row_per_group_at_its_mean():
    m = Manifest("m", ["a", "b", "c"], np.array([45.0, 45.0, 10.0]), np.array([15.0, 15.0, 20.0]),
                 country=[None] * 3, scene=[None] * 3, group=["g1", "g1", "g2"], rows=[2, 3, 4])
    g = group_manifest(m, {"a": "g1", "b": "g1", "c": "g2"})
    assert g.images == ["group g1", "group g2"] and np.allclose(g.lat, [45.0, 10.0])


def test_group_and_member_records_follow_the_schema(tmp_path):
    import json

    jsonschema = __import__("pytest").importorskip("jsonschema")
    from geocli.predict.record import record_schema

    paths = [str(tmp_path / f"{n}.png") for n in ("a", "b")]
    for p in paths:
        Image.new("RGB", (8, 8)).save(p)
    for record in Predictor(_Fake()).predict(paths, top_k=2, groups={p: "g" for p in paths}):
        jsonschema.validate(json.loads(json.dumps(record)), record_schema())
