"""RGB branch (timm): tiny random ViTs, token access for fusion, freezing, weights and config round trips."""
from __future__ import annotations

import time

import pytest
import torch
from PIL import Image

from geocli.branches import BRANCHES, RGBBranch, build_branch
from geocli.errors import GeocliError, UsageError, WeightsNotFoundError

TINY_VIT = {"img_size": 32, "patch_size": 8, "embed_dim": 32, "depth": 2, "num_heads": 2}


def tiny(model: str = "vit_tiny_patch16_224", **kw) -> RGBBranch:
    torch.manual_seed(0)
    return RGBBranch(model=model, model_kwargs=dict(TINY_VIT), **kw).eval()


def test_forward_shape_and_preprocess():
    branch = tiny()
    assert branch.out_dim == 32 and "rgb" in BRANCHES
    assert branch.preprocess.image_size == 32  # the ViT's own size, not its pretrained cfg's 224
    x = branch.to_batch([Image.new("RGB", (50, 40), "red"), Image.new("RGB", (20, 60), "blue")])
    assert x.shape == (2, 3, 32, 32)
    assert branch(x).shape == (2, 32)
    train_x = branch.transform(train=True)(Image.new("RGB", (64, 48)))
    assert train_x.shape == (3, 32, 32)


def test_token_path_reproduces_forward():
    branch = tiny()
    x = torch.randn(2, 3, 32, 32)
    tokens = branch.tokens_in(x)
    assert tokens.shape == (2, 1 + 16, 32)  # CLS + 4x4 patches
    assert len(branch.blocks) == 2
    stepped = branch.pool_tokens(branch.run_blocks(tokens))
    torch.testing.assert_close(stepped, branch(x))


def test_beit_token_path_uses_relative_position_bias():
    torch.manual_seed(0)
    branch = RGBBranch("beit_base_patch16_224", model_kwargs=dict(TINY_VIT)).eval()
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(branch.pool_tokens(branch.run_blocks(branch.tokens_in(x))), branch(x))


def test_cnn_has_no_tokens_but_pools():
    branch = RGBBranch("resnet18").eval()
    assert branch.out_dim == 512 and not branch.has_tokens
    assert branch(torch.randn(1, 3, 64, 64)).shape == (1, 512)
    with pytest.raises(UsageError, match="token"):
        branch.tokens_in(torch.randn(1, 3, 64, 64))
    branch.set_trainable(1)  # ResNet stages count as blocks: layer4 and the head after it
    trainable = {n.split(".")[1] for n, p in branch.named_parameters() if p.requires_grad}
    assert trainable == {"layer4"}


def _n_trainable(module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def test_set_trainable_modes():
    branch = tiny()
    assert _n_trainable(branch) == 0 and branch.config["trainable"] == "freeze"
    branch.set_trainable("finetune")
    assert _n_trainable(branch) == sum(p.numel() for p in branch.parameters())
    branch.set_trainable(1)
    names = {n for n, p in branch.named_parameters() if p.requires_grad}
    assert any(n.startswith("model.blocks.1.") for n in names) and any(n.startswith("model.norm.") for n in names)
    assert not any(n.startswith(("model.blocks.0.", "model.patch_embed", "model.pos_embed")) for n in names)
    with pytest.raises(UsageError):
        branch.set_trainable(3)
    with pytest.raises(UsageError):
        branch.set_trainable("some")


def test_frozen_backbone_stays_in_eval_mode():
    branch = tiny()
    branch.train()
    assert not branch.model.training
    branch.set_trainable("finetune").train()
    assert branch.model.training


def test_config_round_trip_and_weights_file(tmp_path):
    from safetensors.torch import save_file

    branch = tiny()
    save_file(branch.model.state_dict(), str(tmp_path / "vit.safetensors"))
    config = dict(branch.config, weights=str(tmp_path / "vit.safetensors"))
    import json

    rebuilt = build_branch("rgb", json.loads(json.dumps(config))).eval()
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(rebuilt(x), branch(x))


def test_weights_that_do_not_fit_are_reported(tmp_path):
    torch.save({"something.else": torch.zeros(3)}, tmp_path / "bad.pth")
    with pytest.raises(GeocliError, match="does not fit"):
        RGBBranch("vit_tiny_patch16_224", weights=str(tmp_path / "bad.pth"), model_kwargs=dict(TINY_VIT))


def test_unknown_option_or_model_is_a_usage_error():
    with pytest.raises(UsageError, match="model_kwargs"):
        build_branch("rgb", {"modle": "x"})
    with pytest.raises(UsageError, match="unknown timm model"):
        RGBBranch("no_such_net")


def test_offline_hub_weights_fail_fast_in_one_line(monkeypatch):
    monkeypatch.setenv("GEOCLI_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(WeightsNotFoundError) as info:
        RGBBranch("vit_tiny_patch16_224.augreg_in21k", pretrained=True)
    assert time.perf_counter() - start < 15
    message = str(info.value)
    assert "vit_tiny_patch16_224.augreg_in21k" in message and "--rgb-weights" in message and "\n" not in message


def test_classify_needs_head():
    with pytest.raises(UsageError, match="keep_head"):
        tiny().classify(torch.randn(1, 3, 32, 32))
    assert tiny(keep_head=True).classify(torch.randn(1, 3, 32, 32)).shape == (1, 1000)


def test_hub_weights_in_the_local_cache_load_offline(monkeypatch, tmp_path):
    """A model already in the Hugging Face cache loads with the network down (no retries, no error)."""
    import huggingface_hub.constants as constants
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(1)
    source = timm.create_model("test_vit.r160_in1k", pretrained=False)
    snapshot = tmp_path / "models--timm--test_vit.r160_in1k" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    save_file(source.state_dict(), str(snapshot / "model.safetensors"))
    (tmp_path / "models--timm--test_vit.r160_in1k" / "refs").mkdir()
    (tmp_path / "models--timm--test_vit.r160_in1k" / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("GEOCLI_OFFLINE", "1")
    start = time.perf_counter()
    branch = RGBBranch("test_vit.r160_in1k", pretrained=True, keep_head=True).eval()
    assert time.perf_counter() - start < 10
    x = torch.randn(1, 3, 160, 160)
    torch.testing.assert_close(branch.classify(x), source.eval()(x))
