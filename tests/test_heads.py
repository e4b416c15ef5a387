"""Heads and losses: shapes, one optimisation step lowering every head's loss, loss behaviour."""
from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest
import torch

import fusion_helpers as H
from geocli.config import BranchConfig, HeadConfig
from geocli.model import GeoModel
from geocli.heads.losses import (
    classification_loss,
    coordinate_loss,
    equirectangular_km,
    haversine_smoothed_targets,
    multi_similarity_loss,
)
from geocli.geo.distance import haversine_km

HAS_GEOCLIP = importlib.util.find_spec("geoclip") is not None

HEAD_CASES = [
    HeadConfig("country", options={"label_smoothing": 0.1}),
    HeadConfig("geocell", options={"label_smoothing": 0.1}),
    HeadConfig("geocell", options={"tau_km": 70.0}),
    HeadConfig("scene"),
    HeadConfig("regression", options={"loss": "mse"}),
    HeadConfig("regression", options={"loss": "equirectangular"}),
    HeadConfig("regression", options={"loss": "haversine", "hidden": [16]}),
    HeadConfig("grid_regression"),
    HeadConfig("retrieval", options={"out_channels": 8, "out_rows": 2}),
    pytest.param(HeadConfig("gallery", options={"negatives": 64}),
                 marks=pytest.mark.skipif(not HAS_GEOCLIP, reason="geoclip package not installed")),
]


def _model(head: HeadConfig) -> GeoModel:
    torch.manual_seed(0)
    branches = [BranchConfig("rgb", options=H.tiny_vit_options()), BranchConfig("clip", input="embedding", embed_dim=16)]
    return GeoModel(H.config(fusion="concat", heads=[head], branches=branches))


def _loss(model, batch):
    torch.manual_seed(1)  # the gallery head samples its negatives
    return model.loss(model(batch), batch)[0]


@pytest.mark.parametrize("head", HEAD_CASES, ids=lambda h: f"{h.name}-{'-'.join(map(str, h.options.values()))}")
def test_one_step_lowers_the_loss(head):
    model = _model(head)
    batch = H.batch(6)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    before = _loss(model, batch)
    before.backward()
    opt.step()
    with torch.no_grad():
        after = _loss(model, batch)
    assert torch.isfinite(before) and after < before


def test_weighted_multi_task_sum():
    heads = [HeadConfig("country", weight=2.0), HeadConfig("scene", weight=0.5)]
    model = GeoModel(H.config(fusion="concat", heads=heads)).eval()
    batch = H.batch(4)
    total, parts = model.loss(model(batch), batch)
    assert torch.allclose(total, 2.0 * parts["country"] + 0.5 * parts["scene"])
    no_scene = {k: v for k, v in batch.items() if k != "scene"}
    assert set(model.loss(model(no_scene), no_scene)[1]) == {"country"}


def test_geocell_prediction_is_the_hierarchical_product():
    model = GeoModel(H.config(fusion="concat", heads=[HeadConfig("geocell")])).eval()
    head = model.heads["geocell"]
    out = model(H.batch(3))["heads"]["geocell"]
    probs = [out["logits"][n].softmax(-1).detach().numpy() for n in head.names]
    manual = np.ones((3, len(head.hierarchy.finest)))
    for p, parent in zip(probs, head.hierarchy.parents):
        manual *= p[:, parent]
    manual /= manual.sum(1, keepdims=True)
    assert np.allclose(head.probabilities(out), manual)
    assert {n: v.shape[1] for n, v in out["logits"].items()} == {p.name: len(p) for p in head.hierarchy.partitions}


def test_haversine_smoothing_follows_the_distance():
    cells = torch.tensor([[0.0, 0.0], [0.0, 1.0], [0.0, 10.0]])
    target = haversine_smoothed_targets(torch.tensor([[0.0, 0.1]]), cells, tau_km=70.0)[0]
    d = haversine_km(0.0, 0.1, cells[:, 0].numpy(), cells[:, 1].numpy())
    assert torch.isclose(target.sum(), torch.tensor(1.0))
    assert int(target.argmax()) == 0
    assert math.isclose(float(target[1] / target[0]), math.exp(-(d[1] - d[0]) / 70.0), rel_tol=1e-5)
    sharper = haversine_smoothed_targets(torch.tensor([[0.0, 0.1]]), cells, tau_km=10.0)[0]
    assert sharper[0] > target[0]


def test_label_smoothing_and_unknown_targets():
    logits = torch.tensor([[5.0, 0.0], [0.0, 5.0]])
    target = torch.tensor([0, -1])
    plain, smooth = classification_loss(logits, target), classification_loss(logits, target, 0.2)
    assert smooth > plain
    assert torch.isclose(plain, torch.nn.functional.cross_entropy(logits[:1], target[:1]))
    assert classification_loss(logits, torch.tensor([-1, -1])) == 0


def test_coordinate_losses():
    a, b = torch.tensor([[45.0, 16.0]]), torch.tensor([[45.1, 16.1]])
    eq, hav = float(equirectangular_km(a, b)), float(haversine_km(a[:, 0], a[:, 1], b[:, 0], b[:, 1]))
    assert math.isclose(eq, hav, rel_tol=1e-3)
    across = equirectangular_km(torch.tensor([[0.0, 179.9]]), torch.tensor([[0.0, -179.9]]))
    assert float(across) < 30  # wraps across the antimeridian
    assert coordinate_loss(a, a, "mse") == 0
    assert math.isclose(float(coordinate_loss(a, b, "haversine")) * 6371.0088, hav, rel_tol=1e-4)
    with pytest.raises(ValueError, match="valid"):
        coordinate_loss(a, b, "l1")


def test_grid_regression_feeds_a_one_hot_to_a_250_150_100_50_regressor():
    model = GeoModel(H.config(fusion="concat", heads=[HeadConfig("grid_regression")]))
    head = model.heads["grid_regression"]
    widths = [m.out_features for m in head.regressor if isinstance(m, torch.nn.Linear)]
    assert widths == [250, 150, 100, 50, 2]
    seen = {}
    head.regressor.register_forward_pre_hook(lambda m, a: seen.__setitem__("x", a[0]))
    batch = H.batch(4)
    out = model(batch)
    onehot = seen["x"][:, -head.classifier.out_features:]
    expected = torch.nn.functional.one_hot(out["heads"]["grid_regression"]["logits"].argmax(-1), onehot.shape[1])
    assert torch.allclose(onehot.detach(), expected.float(), atol=1e-6)
    from geocli.heads.losses import coordinate_loss as cl

    cl(out["heads"]["grid_regression"]["coords"], batch["gps"], "equirectangular").backward()
    assert head.classifier.weight.grad.abs().sum() > 0  # straight-through gradient


def test_multi_similarity_prefers_separated_places():
    labels = torch.tensor([0, 0, 1, 1])
    good = torch.nn.functional.normalize(torch.tensor([[1.0, 0.1], [1.0, -0.1], [0.1, 1.0], [-0.1, 1.0]]), dim=1)
    bad = good[[0, 2, 1, 3]]
    assert multi_similarity_loss(good, labels) < multi_similarity_loss(bad, labels)
    assert multi_similarity_loss(good, torch.tensor([0, 1, 2, 3])) == 0  # no positive pairs


