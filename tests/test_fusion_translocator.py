"""TransLocator: the CLS exchange really happens after every layer, for any pair of timm ViTs."""
from __future__ import annotations

import pytest
import torch

from fusion_helpers import tiny_vit, tiny_vit_options
from geocli.config import FusionConfig
from geocli.fusion.translocator import TransLocator


def _pair(exchange=True, rgb=(32, 3), seg=(48, 3), seed=0):
    torch.manual_seed(seed)
    cfg = FusionConfig(name="translocator", exchange=exchange)
    return TransLocator({"rgb": tiny_vit(rgb[0], rgb[1]), "seg": tiny_vit(seg[0], seg[1])}, cfg).eval()


def _inputs(n=2, seed=1):
    g = torch.Generator().manual_seed(seed)
    return {"rgb": torch.randn(n, 3, 32, 32, generator=g), "seg": torch.randn(n, 3, 32, 32, generator=g)}


def _capture(model):
    """Record each seg block's output and each rgb block's input during one forward pass."""
    seg_out, rgb_in = {}, {}
    hooks = [blk.register_forward_hook(lambda m, a, o, k=k: seg_out.__setitem__(k, o))
             for k, blk in enumerate(model.encoders["seg"].blocks)]
    hooks += [blk.register_forward_pre_hook(lambda m, a, k=k: rgb_in.__setitem__(k, a[0]))
              for k, blk in enumerate(model.encoders["rgb"].blocks)]
    return seg_out, rgb_in, hooks


def _grad_norm(output, inp):
    # a random projection, not a plain sum: the sum of a LayerNorm output has zero gradient
    w = torch.randn(output.shape, generator=torch.Generator().manual_seed(7))
    (g,) = torch.autograd.grad((output * w).sum(), inp, retain_graph=True, allow_unused=True)
    return 0.0 if g is None else float(g.abs().sum())


def test_shapes_with_different_widths():
    model = _pair(rgb=(32, 2), seg=(48, 2))
    emb, tokens = model(_inputs(3))
    assert emb["rgb"].shape == (3, 32) and tokens.shape == (3, 16, 32)
    assert model.out_dims == {"rgb": 32}


def test_cls_exchange_after_every_layer():
    """rgb's CLS entering block k+1 depends on seg's block-k output; its patch tokens do not."""
    model = _pair()
    seg_out, rgb_in, hooks = _capture(model)
    emb, _ = model(_inputs())
    for h in hooks:
        h.remove()
    for k in range(2):
        assert _grad_norm(rgb_in[k + 1][:, 0], seg_out[k]) > 0
        assert _grad_norm(rgb_in[k + 1][:, 1:], seg_out[k]) == 0
    assert _grad_norm(emb["rgb"], seg_out[2]) > 0  # the last layer is fused too


def test_seg_input_reaches_rgb_first_exchange_only_when_fusion_is_on():
    for exchange, expect in ((True, True), (False, False)):
        model = _pair(exchange=exchange)
        seg_out, rgb_in, hooks = _capture(model)
        x = _inputs()
        x["seg"].requires_grad_(True)
        emb, _ = model(x)
        for h in hooks:
            h.remove()
        assert (_grad_norm(rgb_in[1], x["seg"]) > 0) is expect
        assert (_grad_norm(emb["rgb"], x["seg"]) > 0) is expect
    assert set(_pair(exchange=False).out_dims) == {"rgb", "seg"}  # ablation hands both CLS on


def test_different_depths_align_at_the_end():
    """rgb depth 3, seg depth 2: rgb's first block runs alone, then two fused layers."""
    model = _pair(rgb=(32, 3), seg=(32, 2))
    assert len(model.exchanges) == 2
    seg_out, rgb_in, hooks = _capture(model)
    x = _inputs()
    x["seg"].requires_grad_(True)
    emb, _ = model(x)
    for h in hooks:
        h.remove()
    assert _grad_norm(rgb_in[1], x["seg"]) == 0  # nothing exchanged before rgb's extra block
    assert _grad_norm(rgb_in[2], x["seg"]) > 0
    assert _grad_norm(emb["rgb"], seg_out[1]) > 0


def test_masked_seg_equals_switched_off_seg():
    model = _pair()
    x = _inputs(2)
    masked, _ = model(x, {"seg": torch.tensor([True, False])})
    alone, _ = model({"rgb": x["rgb"]})
    both, _ = model(x)
    assert torch.allclose(masked["rgb"][1], alone["rgb"][1], atol=1e-6)
    assert torch.allclose(masked["rgb"][0], both["rgb"][0], atol=1e-6)
    assert not torch.allclose(both["rgb"][1], alone["rgb"][1], atol=1e-4)


def test_works_with_the_rgb_branch_module():
    from geocli.branches import build_branch

    torch.manual_seed(0)
    rgb = build_branch("rgb", tiny_vit_options(), device="cpu")
    seg = build_branch("rgb", tiny_vit_options(width=48), device="cpu")
    model = TransLocator({"rgb": rgb, "seg": seg}, FusionConfig(name="translocator", exchange=False)).eval()
    x = _inputs()
    emb, _ = model(x)
    assert torch.allclose(emb["rgb"], rgb.eval()(x["rgb"]), atol=1e-5)  # no exchange: plain branch output


def test_works_with_the_seg_branch_module():
    from geocli.branches import build_branch

    torch.manual_seed(0)
    rgb = build_branch("rgb", tiny_vit_options(), device="cpu")
    seg = build_branch("seg", dict(tiny_vit_options(width=48), segmenter=None), device="cpu")
    model = TransLocator({"rgb": rgb, "seg": seg}).eval()
    x = _inputs()
    x["seg"].requires_grad_(True)
    emb, tokens = model(x)
    assert emb["rgb"].shape == (2, 32) and tokens.shape == (2, 16, 32)
    assert _grad_norm(emb["rgb"], x["seg"]) > 0


def test_needs_a_class_token():
    import timm

    gap = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=8, embed_dim=32,
                            depth=2, num_heads=2, num_classes=0, class_token=False, global_pool="avg")
    with pytest.raises(ValueError, match="class token"):
        TransLocator({"rgb": gap, "seg": tiny_vit()})
