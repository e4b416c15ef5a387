"""The training options the recipes rely on: P x K place batches, places from coordinates, head
options, backbone overrides on top of a recipe, CNN feature-map tokens, DINOv2 trimming."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from geocli.branches import build_branch
from geocli.config import BranchConfig, HeadConfig, LabelSpaces, ModelConfig, TrainConfig
from geocli.datasets.manifest import Manifest
from geocli.training.recipes import merge_training_layers
from geocli.datasets.samplers import PlaceBatchSampler
from geocli.training.data import place_ids
from geocli.errors import UsageError
from geocli.model import GeoModel

TINY = {"img_size": 32, "patch_size": 8, "embed_dim": 32, "depth": 2, "num_heads": 2}


def _manifest(lat, lon, group=None) -> Manifest:
    n = len(lat)
    return Manifest(images=[f"{i}.jpg" for i in range(n)], lat=np.asarray(lat, float), lon=np.asarray(lon, float),
                    country=[None] * n, scene=[None] * n, group=group or [None] * n, rows=list(range(n)), source="m")


def test_place_batches_hold_k_photos_of_p_distinct_places():
    places = np.repeat(np.arange(10), [4, 4, 3, 2, 5, 4, 4, 1, 4, 6])  # place 7 has one photo: no positive
    sampler = PlaceBatchSampler(places, per_place=4, batch_size=8, seed=3)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 4
    for batch in batches:
        ids = places[batch]
        assert len(batch) == 8 and sorted(np.unique(ids, return_counts=True)[1]) == [4, 4]
        assert 7 not in ids
    sampler.set_epoch(1)
    assert list(sampler) != batches and list(PlaceBatchSampler(places, 4, 8, seed=3)) == batches
    shards = [list(PlaceBatchSampler(places, 4, 8, rank=r, world=2, seed=3)) for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == 2 and shards[0] + shards[1] != batches[:2]


def test_too_few_places_for_a_batch_is_a_usage_error():
    with pytest.raises(UsageError, match="places with at least two photos"):
        PlaceBatchSampler(np.array([0, 0, 1, 2]), per_place=4, batch_size=8)


def test_places_from_coordinates_chain_photos_within_the_radius():
    # 0-1 are 11 m apart, 1-2 another 11 m (chained), 3 is 1 km away, 4-5 share a spot elsewhere
    lat = [37.7900, 37.7901, 37.7902, 37.8000, 37.7000, 37.7000]
    lon = [-122.40, -122.40, -122.40, -122.40, -122.40, -122.40]
    ids = place_ids(_manifest(lat, lon), radius_km=0.025)
    assert ids[0] == ids[1] == ids[2] and len({ids[0], ids[3], ids[4]}) == 3 and ids[4] == ids[5]
    grouped = place_ids(_manifest(lat, lon, ["a", "a", "b", "b", "c", "c"]), radius_km=0.025)
    assert grouped[0] == grouped[1] != grouped[2] == grouped[3]


def test_head_options_are_validated():
    with pytest.raises(UsageError, match="not trained"):
        TrainConfig.from_dict({"heads": ["country"], "head_options": {"geocell": {"hidden": [8]}}})
    with pytest.raises(UsageError, match="multiple of images_per_place"):
        TrainConfig.from_dict({"sampler": "places", "batch_size": 10})
    with pytest.raises(UsageError, match="step_gamma"):
        TrainConfig.from_dict({"scheduler": "step", "step_gamma": 2.0})
    labels = LabelSpaces(countries=["HR", "FR"])
    bad = ModelConfig(branches=[BranchConfig("x", input="embedding", embed_dim=8)],
                      heads=[HeadConfig("country", options={"hiden": [4]})], labels=labels)
    with pytest.raises(UsageError, match="hiden"):
        GeoModel(bad)


def test_mlp_head_has_the_requested_layers():
    labels = LabelSpaces(countries=["HR", "FR", "ES"])
    cfg = ModelConfig(branches=[BranchConfig("x", input="embedding", embed_dim=8)],
                      heads=[HeadConfig("country", options={"hidden": [16, 4], "dropout": 0.5})], labels=labels)
    head = GeoModel(cfg).heads["country"]
    kinds = [type(m).__name__ for m in head.trunk]
    assert kinds == ["Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout"] and head.fc.in_features == 4


def test_a_new_backbone_drops_the_recipe_options_for_its_branch():
    recipe = {"rgb_model": "vit_base_patch14_dinov2.lvd142m", "branch_options": {"rgb": {"final_norm": False},
                                                                                 "seg": {"model": "v"}}}
    merged = merge_training_layers(recipe, {"rgb_model": "tf_efficientnet_lite0.in1k"})
    assert merged["branch_options"] == {"seg": {"model": "v"}}
    kept = merge_training_layers(recipe, {"rgb_model": "x", "branch_options": {"rgb": {"pretrained": False}}})
    assert kept["branch_options"]["rgb"] == {"final_norm": False, "pretrained": False}  # options given: merged
    same = merge_training_layers(recipe, {"rgb_model": recipe["rgb_model"]})
    assert same["branch_options"]["rgb"] == {"final_norm": False}
    assert recipe["branch_options"]["rgb"] == {"final_norm": False}  # the layers themselves are untouched


def test_rgb_options_from_a_config_survive_rgb_model_and_drops_are_said():
    said = []
    config = {"branch_options": {"rgb": {"img_size": 64, "pretrained": False}}}  # no backbone named
    merged = merge_training_layers({}, config, {"rgb_model": "vit_small_patch16_224"}, log=said.append)
    assert merged["branch_options"]["rgb"] == {"img_size": 64, "pretrained": False} and said == []
    recipe = {"rgb_model": "vit_base_patch14_dinov2.lvd142m", "branch_options": {"rgb": {"final_norm": False}}}
    merged = merge_training_layers(recipe, config, {"rgb_model": "x"}, log=said.append)
    assert merged["branch_options"]["rgb"] == {"img_size": 64, "pretrained": False}  # the recipe's went
    assert len(said) == 1 and "final_norm" in said[0] and "dinov2" in said[0] and "not used with x" in said[0]


def test_cnn_feature_map_feeds_the_retrieval_head():
    rgb = {"model": "mobilenetv3_small_050", "pretrained": False, "image_size": 64}
    cfg = ModelConfig(branches=[BranchConfig("rgb", options=rgb)],
                      heads=[HeadConfig("retrieval", options={"out_channels": 8, "out_rows": 2})])
    model = GeoModel(cfg, pretrained=False).eval()
    assert model.token_branch == "rgb" and model.branches["rgb"].num_tokens == 4
    out = model({"rgb": torch.randn(2, 3, 64, 64)})
    channels = model.branches["rgb"].model.num_features  # the feature map's, before any pooled head
    assert out["tokens"].shape == (2, 4, channels) and out["heads"]["retrieval"]["descriptor"].shape == (2, 16)


def test_final_norm_can_be_trimmed():
    trimmed = build_branch("rgb", {"model": "vit_tiny_patch16_224", "model_kwargs": TINY, "final_norm": False})
    assert isinstance(trimmed.model.norm, torch.nn.Identity)
    assert not any(k.startswith("model.norm.") for k in trimmed.state_dict())
    with pytest.raises(UsageError, match="final LayerNorm"):
        build_branch("rgb", {"model": "resnet18", "final_norm": False})


@pytest.mark.parametrize("rgb", [
    {"model": "vit_tiny_patch16_224", "pretrained": False, "model_kwargs": TINY},
    {"model": "mobilenetv3_small_050", "pretrained": False, "image_size": 64},
])
def test_cached_rows_give_back_the_same_descriptors_as_the_live_branch(rgb):
    """A frozen token branch caches pooled vector + patch tokens; its stand-in hands them back."""
    from geocli.model import caches_tokens, training_view
    from geocli.model import TokenEmbeddingInput, flatten_with_tokens

    cfg = ModelConfig(branches=[BranchConfig("rgb", options=rgb)],
                      heads=[HeadConfig("retrieval", options={"out_channels": 8, "out_rows": 2})])
    model = GeoModel(cfg, pretrained=False).eval()
    size = model.branches["rgb"].preprocess.image_size
    x = torch.randn(3, 3, size, size)
    view = training_view(model, {"rgb"}).eval()
    assert caches_tokens(model, "rgb") and isinstance(view.branches["rgb"], TokenEmbeddingInput)
    with torch.no_grad():
        rows = flatten_with_tokens(model.branches["rgb"], x)
        live, cached = model({"rgb": x}), view({"rgb": rows})
    torch.testing.assert_close(cached["heads"]["retrieval"]["descriptor"], live["heads"]["retrieval"]["descriptor"])
    torch.testing.assert_close(cached["embedding"], live["embedding"])


def test_frozen_retrieval_training_encodes_each_photo_once(tmp_path, monkeypatch):
    import train_helpers as T
    from geocli.training import loaders
    from geocli.training.trainer import train

    calls: list[int] = []
    original = loaders.token_encoder

    def counting(module, batch_size):
        encode = original(module, batch_size)
        return lambda paths: calls.append(len(paths)) or encode(paths)

    monkeypatch.setattr(loaders, "token_encoder", counting)
    settings = dict(heads=["retrieval"], sampler="places", images_per_place=3, batch_size=6, epochs=2,
                    head_options={"retrieval": {"out_channels": 8, "out_rows": 2}})
    result = train(T.tiny_config(tmp_path, **settings), progress=False)
    assert sum(calls) == 54 and set(result.history[-1]["val"]["recall"]) == {"recall@1", "recall@5", "recall@10"}
    train(T.tiny_config(tmp_path, **settings, out=str(tmp_path / "again")), progress=False)
    assert sum(calls) == 54  # the second run read every row back from the cache


def test_eval_shards_cover_every_sample_once():
    from geocli.datasets.samplers import EvalShard

    shards = [list(EvalShard(11, rank, 3)) for rank in range(3)]
    assert sorted(i for s in shards for i in s) == list(range(11))
    assert [len(s) for s in shards] == [4, 4, 3] and list(EvalShard(5)) == [0, 1, 2, 3, 4]


def test_default_geocell_head_uses_haversine_smoothing_and_paper_recipes_keep_plain_smoothing():
    from geocli.training.model_config import head_config
    from geocli.training.recipes import load_recipe

    default = head_config("geocell", TrainConfig(data="", out=""))
    assert default.options == {"label_smoothing": 0.1, "tau_km": 75.0}
    assert "tau_km" not in head_config("country", TrainConfig(data="", out="")).options
    cfg = TrainConfig.from_dict({"data": "", "out": "", **load_recipe("vit-city")})
    assert head_config("geocell", cfg).options["tau_km"] is None
    assert TrainConfig(data="", out="", tau_km=None).tau_km is None
    with pytest.raises(Exception, match="tau_km"):
        TrainConfig(data="", out="", tau_km=-1.0)


def test_class_balanced_sampling_equalises_the_first_location_heads_classes(tmp_path):
    import train_helpers as T
    from geocli.heads.labels import balance_labels
    from geocli.training.trainer import train

    targets = {"gps": np.zeros((4, 2), np.float32), "country": np.array([0, 0, 1, -1]),
               "cells": {"coarse": np.array([0, 0, 0, 1]), "fine": np.array([3, 2, 1, 0])}, "scene": np.array([1, 1, 1, 0])}
    assert balance_labels(targets, ["country", "geocell", "scene"]).tolist() == [3, 2, 1, 0]  # finest cell first
    assert balance_labels(targets, ["scene", "country"]).tolist() == [0, 0, 1, -1]
    assert balance_labels(targets, ["scene"]).tolist() == [0, 0, 0, 0]  # no place classes: one class
    seen = train(T.tiny_config(tmp_path, epochs=1, sampler="class-balanced"), progress=False).seen
    assert len(seen) >= 32 and len(set(seen)) < len(seen)  # drawn with replacement by weight
