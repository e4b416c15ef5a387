"""How branches reach the heads and what trains at which rate: OCR's learned "no text" vector, a
seg branch on its own, TransLocator's exchange layers, a regression beside a geocell head, and one
CLIP default for training and prediction."""
from __future__ import annotations

import pytest
import torch

import fusion_helpers as H
import train_helpers as T
from geocli.branches import OCRBranch
from geocli.config import (DEFAULT_CLIP_PRETRAINED, BranchConfig, FusionConfig, HeadConfig, ModelConfig,
                           TrainConfig)
from geocli.model import GeoModel
from geocli.ocr.base import OCR_ENGINES, OCREngine
from geocli.training import trainer as train_engine
from geocli.training.model_config import branch_config
from geocli.training.optim import param_groups
from geocli.training.trainer import train


@OCR_ENGINES.register("test-reads-nothing")
class ReadsNothing(OCREngine):
    """Finds no text in any photo: every photo takes the branch's "no text" vector."""

    def _read(self, image):
        return []


def _ocr_model() -> GeoModel:
    torch.manual_seed(0)
    branches = [BranchConfig("rgb", options=H.tiny_vit_options()), BranchConfig("ocr", options={"engine": "test-reads-nothing"})]
    return GeoModel(ModelConfig(branches=branches, fusion=FusionConfig(name="concat", dropout=0.0),
                                heads=[HeadConfig("country")], labels=H.labels())).eval()


def test_no_text_vector_reaches_the_head():
    model = _ocr_model()
    ocr: OCRBranch = model.branches["ocr"]
    emb, has_text = ocr.embed_texts(["", "MARKET STREET"])
    batch = {"rgb": torch.randn(2, 3, 32, 32), "ocr": {"text_emb": emb, "has_text": has_text}}
    before = model(batch)["heads"]["country"]["logits"]
    with torch.no_grad():
        ocr.no_text.copy_(-ocr.no_text)
    after = model(batch)["heads"]["country"]["logits"]
    assert not torch.allclose(before[0], after[0])  # the photo without text sees the new vector
    assert torch.allclose(before[1], after[1])  # the photo with text does not
    model(batch)["heads"]["country"]["logits"][0].sum().backward()
    assert ocr.no_text.grad is not None and float(ocr.no_text.grad.abs().sum()) > 0


def test_no_text_vector_trains_from_the_cache_at_the_head_learning_rate(tmp_path, monkeypatch):
    cfg = T.tiny_config(tmp_path, branches=["rgb", "ocr"], epochs=1,
                        branch_options={"rgb": dict(T.TINY_VIT), "ocr": {"engine": "test-reads-nothing"}})
    before, original = {}, train_engine.Trainer._train_epoch

    def copy_then_train(self, epoch):
        before["no_text"] = self.model.branches["ocr"].no_text.detach().clone()
        before["groups"] = [(g["lr"], {id(p) for p in g["params"]}) for g in self.optimizer.param_groups]
        before["no_text_id"] = id(self.model.branches["ocr"].no_text)
        return original(self, epoch)

    monkeypatch.setattr(train_engine.Trainer, "_train_epoch", copy_then_train)
    train(cfg, progress=False)
    from geocli.store.checkpoint import load_checkpoint

    trained = load_checkpoint(cfg.out).branches["ocr"].no_text
    assert not torch.allclose(trained, before["no_text"])
    head_lr, head_params = before["groups"][0]
    assert head_lr == cfg.lr and before["no_text_id"] in head_params


def test_translocator_exchange_layers_train_at_the_head_learning_rate():
    model = GeoModel(H.config(fusion="translocator"))
    cfg = TrainConfig(data="", out="", lr=0.01, backbone_lr_scale=0.1)
    new, pretrained = param_groups(model, cfg)
    new_ids = {id(p) for p in new["params"]}
    expected_new = {id(p) for part in (model.pair.exchanges, model.fusion, model.heads) for p in part.parameters()}
    expected_old = {id(p) for enc in model.pair.encoders.values() for p in enc.parameters()}
    assert new_ids == expected_new and new["lr"] == 0.01
    assert {id(p) for p in pretrained["params"]} == expected_old and pretrained["lr"] == pytest.approx(0.001)


def test_a_seg_branch_on_its_own_trains(tmp_path, monkeypatch):
    seg = {"model": "vit_tiny_patch16_224", **T.TINY_VIT, "segmenter": "torchvision-lraspp",
           "segmenter_options": {"weights": None, "size": 32}}
    cfg = T.tiny_config(tmp_path, branches=["rgb", "seg"], epochs=1, branch_options={"rgb": dict(T.TINY_VIT), "seg": seg})
    assert branch_config("seg", cfg).options["trainable"] == "finetune"  # a random ViT is a new layer
    key = "branches.seg.vit.model.blocks.0.attn.qkv.weight"
    before, original = {}, train_engine.Trainer._train_epoch

    def copy_then_train(self, epoch):
        before[key] = self.model.state_dict()[key].detach().clone()
        return original(self, epoch)

    monkeypatch.setattr(train_engine.Trainer, "_train_epoch", copy_then_train)
    train(cfg, progress=False)
    from geocli.store.checkpoint import load_checkpoint

    assert not torch.equal(load_checkpoint(cfg.out).state_dict()[key], before[key])


def test_a_regression_beside_a_geocell_head_is_reported():
    torch.manual_seed(0)
    model = GeoModel(H.config(fusion="concat", heads=[HeadConfig("geocell"), HeadConfig("regression")])).eval()
    out = model(H.batch(2))
    records = model.predict(H.batch(2), top_k=2)
    sources = [p["source"] for p in records[0]["predictions"]]
    assert sources == ["geocell", "geocell", "regression"] and [p["rank"] for p in records[0]["predictions"]] == [1, 2, 3]
    point = out["heads"]["regression"]["coords"][0]
    last = records[0]["predictions"][-1]
    assert (last["lat"], last["lon"], last["probability"]) == (pytest.approx(float(point[0]), abs=1e-4),
                                                                pytest.approx(float(point[1]), abs=1e-4), None)


def test_training_and_prediction_default_to_the_same_clip_weights():
    import inspect

    from geocli.predict.default_geolocator import DefaultGeolocator

    trained = branch_config("clip", TrainConfig(data="", out="", branches=["clip"]))
    predicted = inspect.signature(DefaultGeolocator).parameters["clip_pretrained"].default
    assert trained.options["pretrained"] == predicted == DEFAULT_CLIP_PRETRAINED
