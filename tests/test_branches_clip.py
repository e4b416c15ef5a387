"""CLIP branch (open_clip) with a tiny random architecture: embeddings, zero-shot, prompt cache, weights."""
from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from geocli.branches import CLIPBranch, build_branch
from geocli.errors import UsageError, WeightsNotFoundError

TINY_CLIP = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}
NAME = "geocli-test-tiny-clip"


@pytest.fixture
def cache(monkeypatch, tmp_path):
    monkeypatch.setenv("GEOCLI_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def tiny(**kw) -> CLIPBranch:
    torch.manual_seed(0)
    return CLIPBranch(model=NAME, model_cfg=TINY_CLIP, **kw).eval()


def test_image_embeddings_are_normalised():
    branch = tiny()
    assert branch.out_dim == 32 and branch.preprocess.image_size == 32
    emb = branch.encode_images([Image.new("RGB", (40, 30), "green")] * 3)
    assert emb.shape == (3, 32)
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(3))


def test_zero_shot_probabilities():
    branch = tiny()
    probs = branch.zero_shot(branch(torch.randn(2, 3, 32, 32)), ["France", "Japan", "Peru"])
    assert probs.shape == (2, 3)
    torch.testing.assert_close(probs.sum(-1), torch.ones(2))


def test_prompt_embeddings_cached_on_disk_per_weights(cache, tmp_path):
    from safetensors.torch import save_file

    save_file(tiny().clip.state_dict(), str(tmp_path / "clip.safetensors"))
    prompts = ["a photo taken in Croatia.", "a photo of a street."]
    first = tiny(pretrained=str(tmp_path / "clip.safetensors"))
    emb = first.text_embeddings(prompts)
    files = list((cache / "clip_text").glob("*.safetensors"))
    assert len(files) == 1
    torch.testing.assert_close(emb, first.encode_text(prompts))
    second = tiny(pretrained=str(tmp_path / "clip.safetensors"))
    second.encode_text = lambda p: pytest.fail("recomputed despite the disk cache")
    torch.testing.assert_close(second.text_embeddings(prompts), emb)
    first.text_embeddings(prompts[:1])  # other prompts: another entry
    assert len(list((cache / "clip_text").glob("*.safetensors"))) == 2


def test_random_weights_are_not_cached_on_disk(cache):
    tiny().text_embeddings(["a photo taken in Peru."])
    assert not list((cache / "clip_text").glob("*"))


def test_config_round_trip_and_trainable_blocks():
    branch = tiny(trainable=1)
    names = {n for n, p in branch.named_parameters() if p.requires_grad}
    assert names and all(n.startswith("clip.visual.") for n in names)
    assert not any(".resblocks.0." in n for n in names)
    rebuilt = build_branch("clip", json.loads(json.dumps(branch.config)))
    assert rebuilt.out_dim == 32 and rebuilt.config["trainable"] == 1


def test_text_tower_stays_in_eval_mode():
    branch = tiny(trainable="finetune").train()
    assert branch.clip.visual.training and not branch.clip.transformer.training


def test_unknown_model_and_offline_tag():
    with pytest.raises(UsageError, match="unknown open_clip model"):
        CLIPBranch(model="no-such-clip")


def test_offline_pretrained_tag_is_one_line(monkeypatch):
    monkeypatch.setenv("GEOCLI_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError) as info:
        CLIPBranch(model="RN50", pretrained="openai")
    assert "RN50" in str(info.value) and "\n" not in str(info.value)
