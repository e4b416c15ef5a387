"""CLIP branch (open_clip): image embeddings, and text embeddings for zero-shot prompts.

Weights: an open_clip pretrained tag (``model="ViT-B-32", pretrained="laion2b_s34b_b79k"``), an
``hf-hub:org/repo`` model name, a local file (``pretrained="/path/model.safetensors"``), or random
init (``pretrained=None``). A custom architecture travels in the config as ``model_cfg`` (open_clip's
JSON schema), which is how tests build a tiny CLIP.

Prompt embeddings are computed once per (model, weights, prompts) and cached on disk under
``cache_dir("clip_text")``; randomly initialised models are cached in memory only.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from geocli.config import DEFAULT_CLIP_MODEL, DEFAULT_CLIP_PRETRAINED, is_hf_clip
from geocli.errors import UsageError
from geocli.weights.hub import cache_dir, digest, fetch, file_fingerprint, load_state, load_weights_file
from geocli.branches.base import BRANCHES, Branch, Preprocess, Trainable

DEFAULT_TEMPLATE = "a photo taken in {}."
_registered_cfgs: dict[str, str] = {}


def register_model_cfg(name: str, model_cfg: dict) -> None:
    """Make a custom open_clip architecture known under ``name`` (open_clip's add_model_config)."""
    import open_clip

    blob = json.dumps(model_cfg, sort_keys=True, allow_nan=False)
    if _registered_cfgs.get(name) == blob:
        return
    existing = open_clip.get_model_config(name)
    if existing is not None and name not in _registered_cfgs and existing != model_cfg:
        raise UsageError(f"open_clip already has a model named {name!r}; give the custom config another name")
    folder = Path(tempfile.mkdtemp(prefix="geocli-openclip-"))
    (folder / f"{name}.json").write_text(blob)
    open_clip.add_model_config(folder / f"{name}.json")
    _registered_cfgs[name] = blob


def _is_local(pretrained: str | None) -> bool:
    return bool(pretrained) and (os.path.sep in pretrained or Path(pretrained).suffix in (".safetensors", ".pt", ".pth", ".bin"))


def _hint(model: str) -> str:
    return (
        f"Download them on a connected machine (open_clip.create_model({model!r}, pretrained=TAG) fills the "
        "Hugging Face cache), or pass a local file as pretrained=PATH (--clip-weights FILE)"
    )


@BRANCHES.register("clip")
class CLIPBranch(Branch):
    """open_clip image tower as a branch; ``forward`` returns L2-normalised image embeddings."""

    settings = {"model": DEFAULT_CLIP_MODEL, "weights": None}

    @classmethod
    def train_options(cls, cfg, paired: bool, options: dict, settings: dict) -> dict:
        """``--clip-model`` / ``--clip-weights`` (a pretrained tag or a local file)."""
        return {"model": settings["model"], "pretrained": settings["weights"] or DEFAULT_CLIP_PRETRAINED,
                "trainable": cfg.trainable}

    @classmethod
    def kind_for(cls, settings: dict) -> str | None:
        """``hf_clip`` when ``--clip-model`` is a Hugging Face id or ``--clip-weights`` a CLIP folder."""
        return "hf_clip" if is_hf_clip(settings["model"], settings["weights"]) else None

    def __init__(
        self,
        model: str = DEFAULT_CLIP_MODEL,
        pretrained: str | None = None,
        model_cfg: dict[str, Any] | None = None,
        trainable: Trainable = "freeze",
    ) -> None:
        super().__init__()
        self._config = dict(model=model, pretrained=pretrained, model_cfg=model_cfg, trainable=trainable)
        if model_cfg is not None:
            register_model_cfg(model, model_cfg)
        self.clip = self._create(model, pretrained)
        self.out_dim = int(self.clip.visual.output_dim)
        self.preprocess = self._preprocess()
        self._text_cache: dict[str, torch.Tensor] = {}
        self.clip.requires_grad_(False)  # the text tower and logit scale are never trained here
        self.set_trainable(trainable)

    @staticmethod
    def _create(model: str, pretrained: str | None) -> nn.Module:
        import open_clip

        if open_clip.get_model_config(model) is None and not model.startswith(("hf-hub:", "local-dir:")):
            raise UsageError(f"unknown open_clip model {model!r}; see open_clip.list_models()")
        if _is_local(pretrained):
            clip = open_clip.create_model(model, pretrained=None, pretrained_text=False)
            load_state(clip, load_weights_file(pretrained), str(pretrained))
            return clip
        if pretrained or model.startswith("hf-hub:"):
            load = lambda: open_clip.create_model(model, pretrained=pretrained)  # noqa: E731
            return fetch(f"open_clip {model!r} (pretrained={pretrained!r})", load, _hint(model))
        return open_clip.create_model(model, pretrained=None, pretrained_text=False)

    def _preprocess(self) -> Preprocess:
        cfg = getattr(self.clip.visual, "preprocess_cfg", {}) or {}
        size = cfg.get("size", self.clip.visual.image_size)
        size = size[-1] if isinstance(size, (tuple, list)) else size
        return Preprocess(
            image_size=int(size), mean=tuple(cfg.get("mean", (0.48145466, 0.4578275, 0.40821073))),
            std=tuple(cfg.get("std", (0.26862954, 0.26130258, 0.27577711))), crop_pct=1.0,
            interpolation=cfg.get("interpolation", "bicubic"),
        )

    def backbone(self) -> nn.Module:
        return self.clip.visual

    def train(self, mode: bool = True) -> "CLIPBranch":
        """Only the image tower may train; the text tower stays in eval mode."""
        super().train(mode)
        for name, child in self.clip.named_children():
            if name != "visual":
                child.eval()
        return self

    def block_list(self) -> Sequence[nn.Module]:
        transformer = getattr(self.clip.visual, "transformer", None)
        if transformer is None:
            return super().block_list()
        return list(transformer.resblocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.clip.encode_image(x, normalize=True)

    @property
    def logit_scale(self) -> float:
        return float(self.clip.logit_scale.exp())

    def _weights_id(self) -> str | None:
        """Identity of the weights for the text cache; None when they are random."""
        pretrained = self._config["pretrained"]
        if _is_local(pretrained):
            return "file:" + file_fingerprint(pretrained)
        if pretrained or self._config["model"].startswith("hf-hub:"):
            return f"tag:{pretrained}"
        return None

    @torch.no_grad()
    def encode_text(self, prompts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
        """L2-normalised text embeddings (N, out_dim), computed now (no cache)."""
        import open_clip

        tokenizer = open_clip.get_tokenizer(self._config["model"])
        parts = []
        for i in range(0, len(prompts), batch_size):
            tokens = tokenizer(list(prompts[i : i + batch_size])).to(self.device)
            parts.append(self.clip.encode_text(tokens, normalize=True))
        return torch.cat(parts).float()

    def text_embeddings(self, prompts: Sequence[str]) -> torch.Tensor:
        """Prompt embeddings, computed once per model+weights+prompts and cached on disk."""
        prompts = list(prompts)
        weights_id = self._weights_id()
        key = digest(self._config["model"], self._config["model_cfg"], weights_id, prompts)
        if key in self._text_cache:
            return self._text_cache[key].to(self.device)
        path = cache_dir("clip_text") / f"{key}.safetensors" if weights_id else None
        if path is not None and path.is_file():
            emb = load_weights_file(path)["emb"]
        else:
            emb = self.encode_text(prompts).cpu()
            if path is not None:
                from safetensors.torch import save_file

                save_file({"emb": emb.contiguous()}, str(path), metadata={"model": self._config["model"]})
        self._text_cache[key] = emb
        return emb.to(self.device)

    def zero_shot(self, image_emb: torch.Tensor, labels: Sequence[str], template: str = DEFAULT_TEMPLATE) -> torch.Tensor:
        """Probabilities (B, len(labels)) that each image matches ``template.format(label)``."""
        text = self.text_embeddings([template.format(label) for label in labels])
        return (self.logit_scale * image_emb.float() @ text.T).softmax(dim=-1)
