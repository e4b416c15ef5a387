"""Adding a head is one module plus its tests: this file defines and registers a tiny head, and
``geocli train`` / ``predict`` use it without any edit to the engine (the trainer asks the head for
its loss, the predictor for its locations)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import train_helpers as T
from geocli import load_model
from geocli.heads import HEADS
from geocli.heads.base import FeatureSpec, Head, _gps
from geocli.heads.locations import top_classes
from geocli.training import trainer as train_engine
from geocli.training.trainer import train

#: Where each hemisphere's guess is placed (the example's whole "label space").
POINTS = ((30.0, 0.0), (-30.0, 0.0))


@HEADS.register("test_hemisphere")
class HemisphereHead(Head):
    """Northern or southern hemisphere, learned from the photo's GPS."""

    location_priority = 90

    def __init__(self, spec: FeatureSpec, labels, label_smoothing: float = 0.0):
        super().__init__()
        self.fc = nn.Linear(spec.embed_dim, 2)
        self.label_smoothing = label_smoothing

    def forward(self, features: dict) -> dict:
        return {"logits": self.fc(features["embedding"])}

    def loss(self, out: dict, batch: dict, class_weights: dict | None = None):
        gps = _gps(batch, out["logits"].device)
        if gps is None:
            return None
        target = (gps[:, 0] < 0).long()  # 0 north, 1 south
        return F.cross_entropy(out["logits"], target, label_smoothing=self.label_smoothing)

    def locations(self, out: dict, k: int, predict, labels) -> list[list[tuple]]:
        return [[(*POINTS[i], None, p) for i, p in row] for row in top_classes(out["logits"], k)]


def test_a_head_defined_in_a_test_module_trains_and_predicts(tmp_path, monkeypatch):
    cfg = T.tiny_config(tmp_path, heads=["test_hemisphere"], epochs=2, label_smoothing=0.1)
    before, original = {}, train_engine.Trainer._train_epoch

    def copy_then_train(self, epoch):
        before.setdefault("fc", self.model.heads["test_hemisphere"].fc.weight.detach().clone())
        return original(self, epoch)

    monkeypatch.setattr(train_engine.Trainer, "_train_epoch", copy_then_train)
    result = train(cfg, progress=False)
    assert [row["epoch"] for row in result.history] == [1, 2] and result.history[-1]["val"]["loss"] > 0
    geolocator = load_model(cfg.out, cache=False)
    head = geolocator.geolocator.model.heads["test_hemisphere"]
    assert head.label_smoothing == 0.1  # the run's --label-smoothing reached the head's option
    assert not torch.equal(head.fc.weight, before["fc"])
    (record,) = geolocator.predict([str(tmp_path / "data" / "img" / "r0_l0_v0.png")], top_k=2)
    guesses = record["predictions"]
    assert [g["source"] for g in guesses] == ["test_hemisphere"] * 2
    assert {(g["lat"], g["lon"]) for g in guesses} == set(POINTS)
    assert sum(g["probability"] for g in guesses) == pytest.approx(1.0, abs=1e-5)
