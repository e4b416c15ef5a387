"""Segmentation: label spaces, rendering, backends (random init offline), precomputed maps, the seg branch."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from geocli.branches import SegmentationBranch, build_branch
from geocli.errors import GeocliError, MissingDependencyError, WeightsNotFoundError
from geocli.segmentation import (
    IGNORE_INDEX, LABEL_SPACES, SEGMENTERS, build_segmenter, colors_to_index, get_label_space, load_index_map, render,
)

TINY_VIT = {"img_size": 32, "patch_size": 8, "embed_dim": 32, "depth": 2, "num_heads": 2}


def index_map(h: int = 24, w: int = 32, n: int = 150) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, n, size=(h, w), dtype=np.uint8)


def test_label_spaces():
    assert LABEL_SPACES["ade20k"].num_classes == 150 and LABEL_SPACES["cityscapes"].num_classes == 19
    voc = get_label_space("voc")
    assert voc.palette[:3] == ((0, 0, 0), (128, 0, 0), (0, 128, 0)) and voc.palette[15] == (192, 128, 128)
    ade = get_label_space("ade20k")
    assert ade.palette[ade.classes.index("sky")] == (6, 230, 230)


def test_render_and_back():
    space = get_label_space("cityscapes")
    idx = index_map(n=19)
    idx[0, 0] = IGNORE_INDEX
    rgb = render(idx, space)
    assert rgb.size == (32, 24) and rgb.getpixel((0, 0)) == (0, 0, 0)
    np.testing.assert_array_equal(colors_to_index(np.asarray(rgb), space), idx)


def test_load_index_map_both_forms(tmp_path):
    space = get_label_space("ade20k")
    idx = index_map()
    Image.fromarray(idx, mode="L").save(tmp_path / "index.png")
    render(idx, space).save(tmp_path / "color.png")
    np.testing.assert_array_equal(load_index_map(tmp_path / "index.png", space), idx)
    decoded = load_index_map(tmp_path / "color.png", space)
    # ADE20K repeats one colour (road / skyscraper); the lower index is read back
    road, sky_scraper = space.classes.index("road"), space.classes.index("skyscraper")
    np.testing.assert_array_equal(decoded, np.where(idx == sky_scraper, road, idx))


def test_precomputed_segmenter_mirrors_image_names(tmp_path):
    images, maps = tmp_path / "images" / "a", tmp_path / "maps" / "a"
    images.mkdir(parents=True)
    maps.mkdir(parents=True)
    idx = index_map(12, 16)
    Image.fromarray(idx, mode="L").save(maps / "photo.png")
    photo = Image.new("RGB", (32, 24))
    seg = build_segmenter("precomputed", folder=str(tmp_path / "maps"), image_root=str(tmp_path / "images"))
    out = seg.segment(photo, path=str(images / "photo.jpg"))
    assert out.shape == (24, 32)  # resized (nearest) to the photo
    assert set(np.unique(out)) <= set(np.unique(idx))
    with pytest.raises(GeocliError, match="expected"):
        seg.segment(photo, path=str(images / "other.jpg"))


def test_lraspp_random_init_segments_at_image_size():
    seg = build_segmenter("torchvision-lraspp", weights=None, size=64)
    maps = seg.segment_batch([Image.new("RGB", (40, 30)), Image.new("RGB", (20, 50))])
    assert [m.shape for m in maps] == [(30, 40), (50, 20)]
    assert all(m.dtype == np.uint8 and m.max() < 21 for m in maps)


def test_lraspp_offline_without_cached_weights(monkeypatch, tmp_path):
    monkeypatch.setenv("GEOCLI_OFFLINE", "1")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(WeightsNotFoundError, match=r"segmenter_options \{\"weights\": FILE\}"):
        build_segmenter("torchvision-lraspp")


def test_lraspp_local_weights_file(tmp_path):
    from torchvision.models.segmentation import lraspp_mobilenet_v3_large

    torch.save(lraspp_mobilenet_v3_large(weights=None, weights_backbone=None).state_dict(), tmp_path / "l.pth")
    seg = build_segmenter("torchvision-lraspp", weights=str(tmp_path / "l.pth"), size=32)
    assert seg.segment(Image.new("RGB", (32, 32))).shape == (32, 32)


def test_segformer_tiny_random():
    config = {"num_labels": 150, "hidden_sizes": [8, 16, 24, 32], "decoder_hidden_size": 32,
              "depths": [1, 1, 1, 1], "num_attention_heads": [1, 1, 1, 1]}
    seg = build_segmenter("segformer", model=None, config=config, size=64)
    out = seg.segment(Image.new("RGB", (48, 36)))
    assert out.shape == (36, 48) and out.max() < 150


def test_mmseg_absent_gives_install_hint():
    try:
        import mmseg  # noqa: F401
    except ImportError:
        with pytest.raises(MissingDependencyError, match=r"geocli\[seg\]"):
            build_segmenter("mmseg", config="c.py", checkpoint="c.pth")
    else:
        pytest.skip("mmsegmentation is installed")


def test_registry():
    assert {"torchvision-lraspp", "segformer", "mmseg", "precomputed"} <= set(SEGMENTERS.names())


@pytest.fixture
def seg_branch(tmp_path):
    (tmp_path / "maps").mkdir()
    for i in range(2):
        render(index_map(24, 32, 19), get_label_space("cityscapes")).save(tmp_path / "maps" / f"img{i}.png")
    torch.manual_seed(0)
    return SegmentationBranch(
        model="vit_tiny_patch16_224", model_kwargs=TINY_VIT, segmenter="precomputed",
        segmenter_options={"folder": str(tmp_path / "maps"), "label_space": "cityscapes"},
    ).eval()


def test_seg_branch_end_to_end(seg_branch, tmp_path):
    photos = [Image.new("RGB", (32, 24))] * 2
    paths = [str(tmp_path / f"img{i}.jpg") for i in range(2)]
    emb = seg_branch.encode_images(photos, paths=paths)
    assert emb.shape == (2, 32) and seg_branch.out_dim == 32
    rendered = seg_branch.render_maps(photos, paths)
    torch.testing.assert_close(seg_branch(seg_branch.to_batch(rendered)), emb)
    assert seg_branch.preprocess.interpolation == "nearest"  # class colours never blend


def test_seg_branch_token_api_and_config(seg_branch):
    x = torch.randn(1, 3, 32, 32)
    t = seg_branch.tokens_in(x)
    for i in range(len(seg_branch.blocks)):
        t = seg_branch.run_block(i, t)
    torch.testing.assert_close(seg_branch.pool_tokens(t), seg_branch(x))
    assert not any(k.startswith("_segmenter") for k in seg_branch.state_dict())
    rebuilt = build_branch("seg", json.loads(json.dumps(seg_branch.config)))
    assert rebuilt.out_dim == 32 and rebuilt.config["segmenter"] == "precomputed"
    rebuilt.set_trainable(1)
    trainable = {n for n, p in rebuilt.named_parameters() if p.requires_grad}
    last_block = {n for n, _ in rebuilt.named_parameters() if n.startswith("vit.model.blocks.1.")}
    assert trainable == last_block | {"vit.model.norm.weight", "vit.model.norm.bias"} and len(last_block) == 12
