"""Concat fusion and the GeoModel: per-branch normalisation, explicit masks, switched-off branches."""
from __future__ import annotations

import pytest
import torch

import fusion_helpers as H
from geocli.config import BranchConfig, FusionConfig, HeadConfig, ModelConfig
from geocli.errors import UsageError
from geocli.fusion import ConcatFusion
from geocli.model import GeoModel


def _fusion(**kw):
    return ConcatFusion({"a": 4, "b": 3}, FusionConfig(dropout=0.0, **kw)).eval()


def test_each_branch_normalised_and_flagged():
    emb = {"a": torch.randn(2, 4) * 100, "b": torch.randn(2, 3) * 0.01}
    out = _fusion()(emb, {})
    assert out.shape == (2, 4 + 1 + 3 + 1)
    assert torch.allclose(out[:, :4].norm(dim=1), torch.ones(2))
    assert torch.allclose(out[:, 5:8].norm(dim=1), torch.ones(2))
    assert torch.equal(out[:, 4], torch.ones(2)) and torch.equal(out[:, 8], torch.ones(2))


def test_masked_sample_and_switched_off_branch_are_zero_with_flag_zero():
    emb = {"a": torch.randn(2, 4), "b": torch.randn(2, 3)}
    out = _fusion()(emb, {"b": torch.tensor([True, False])})
    assert torch.equal(out[1, 5:9], torch.zeros(4)) and out[0, 8] == 1
    off = _fusion()({"a": emb["a"], "b": None}, {})
    assert torch.equal(off[:, 5:], torch.zeros(2, 4))
    with pytest.raises(ValueError, match="switched off"):
        _fusion()({"a": None, "b": None}, {})


def test_same_path_in_training_and_prediction():
    fusion = _fusion()
    emb, masks = {"a": torch.randn(3, 4), "b": torch.randn(3, 3)}, {"b": torch.tensor([True, False, True])}
    assert torch.equal(fusion.train()(emb, masks), fusion.eval()(emb, masks))


def test_branch_dropout_only_while_training():
    fusion = _fusion(branch_dropout=0.5)
    emb = {"a": torch.randn(200, 4), "b": torch.randn(200, 3)}
    torch.manual_seed(0)
    flags = fusion.train()(emb, {})[:, [4, 8]]
    assert 0.3 < float(flags.mean()) < 0.7
    assert torch.equal(fusion.eval()(emb, {})[:, [4, 8]], torch.ones(200, 2))


def test_geomodel_ignores_text_embedding_of_images_without_text():
    torch.manual_seed(0)
    model = GeoModel(H.config(fusion="concat")).eval()
    batch = H.batch(4)
    changed = dict(batch, ocr=batch["ocr"] + 5.0)
    a, b = model.embed(batch)[0], model.embed(changed)[0]
    no_text = ~batch["ocr_mask"]
    assert torch.allclose(a[no_text], b[no_text])
    assert not torch.allclose(a[~no_text], b[~no_text])


def test_geomodel_runs_with_branches_switched_off():
    torch.manual_seed(0)
    model = GeoModel(H.config(fusion="translocator")).eval()
    batch = {k: v for k, v in H.batch(3).items() if k not in ("seg", "clip", "ocr", "ocr_mask")}
    out = model(batch)
    assert out["heads"]["country"]["logits"].shape == (3, len(H.COUNTRIES))
    assert model.fusion.dims == {"rgb": 32, "clip": 16, "ocr": 8}


def test_disabled_branch_is_not_built_and_unknown_names_fail():
    cfg = H.config(fusion="concat")
    cfg.branches[1].enabled = False
    assert "seg" not in GeoModel(cfg).branches
    with pytest.raises(UsageError, match="valid"):
        GeoModel(ModelConfig(branches=[BranchConfig("x", input="embedding", embed_dim=4)],
                             fusion=FusionConfig(name="late"), heads=[HeadConfig("country")], labels=H.labels()))
    with pytest.raises(UsageError, match="needs enabled branches"):
        GeoModel(ModelConfig(branches=[BranchConfig("rgb", options=H.tiny_vit_options())],
                             fusion=FusionConfig(name="translocator"), labels=H.labels()))
