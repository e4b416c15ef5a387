"""Hugging Face CLIP image tower as a branch: GeoCLIP's image side.

Weights: a hub id (default ``openai/clip-vit-large-patch14``, read through the Hugging Face cache
as ``transformers`` always does) or a local folder as ``CLIPModel.save_pretrained`` writes it (the
folder ``geoclip.GeoCLIP(clip_path=DIR)`` takes). Only the vision tower and its projection load
(``CLIPVisionModelWithProjection``; the text tower of a full CLIP folder is skipped). ``forward``
returns the projected, unnormalised image features: what ``CLIPModel.get_image_features`` gives
and GeoCLIP's image MLP expects.

Prediction pixels go through the weights' own ``CLIPImageProcessor`` (the same resize, crop and
normalisation as the CLIP processor, whatever the transformers version); its settings are kept in
the branch config so a checkpoint rebuilds it without the folder. Training augmentation uses
CLIP's size, mean and std through geocli's ``Preprocess``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch

from geocli.branches.base import BRANCHES, Branch, Preprocess, Trainable
from geocli.config import HF_CLIP_DEFAULT
from geocli.errors import UsageError, WeightsNotFoundError
from geocli.weights.hub import fetch, file_fingerprint

VISION_KEYS = ("hidden_size", "intermediate_size", "projection_dim", "num_hidden_layers", "num_attention_heads",
               "num_channels", "image_size", "patch_size", "hidden_act", "layer_norm_eps")
PROCESSOR_KEYS = ("do_resize", "size", "resample", "do_center_crop", "crop_size", "do_rescale", "rescale_factor",
                  "do_normalize", "image_mean", "image_std", "do_convert_rgb")
HINT = ("pass --clip-weights DIR, a local Hugging Face CLIP folder (CLIPModel.save_pretrained), or connect once "
        f"so transformers caches {HF_CLIP_DEFAULT}")


def _quiet_transformers() -> None:
    """transformers reports skipped text-tower weights and progress bars; geocli's log is the one line."""
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()


def _check_folder(model: str) -> None:
    path = Path(model).expanduser()
    looks_local = path.exists() or model.startswith((".", "/", "~")) or model.count("/") > 1
    if looks_local and not (path / "config.json").is_file():
        raise WeightsNotFoundError(f"{model} is not a Hugging Face CLIP folder (no config.json there); {HINT}")


def _check_cached(model: str) -> None:
    """Offline and not cached: say so at once, before transformers is even imported."""
    from geocli.weights.hub import is_offline
    from geocli.weights.availability import hf_model_weights

    if not Path(model).expanduser().is_dir() and is_offline() and not hf_model_weights(model).available:
        raise WeightsNotFoundError(f"CLIP weights {model}: offline, and not in the Hugging Face cache; {HINT}")


def load_vision(model: str):
    """``CLIPVisionModelWithProjection`` and its image processor from a hub id or a local folder."""
    _check_folder(model)
    _check_cached(model)
    _quiet_transformers()

    def load():
        from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

        return CLIPVisionModelWithProjection.from_pretrained(model), CLIPImageProcessor.from_pretrained(model)

    return fetch(model, load, HINT)


def _processor(settings: dict):
    from transformers import CLIPImageProcessor

    return CLIPImageProcessor(**settings)


@BRANCHES.register("hf_clip")
class HFCLIPBranch(Branch):
    """``model``: the hub id; ``pretrained``: True (load ``model`` through the Hugging Face cache), a
    local CLIP folder to load instead, or False/None: ``vision_config`` with random weights (how a
    checkpoint is rebuilt before its own weights load; how tests build a tiny CLIP)."""

    settings = {"model": HF_CLIP_DEFAULT, "weights": None}

    @classmethod
    def train_options(cls, cfg, paired: bool, options: dict, settings: dict) -> dict:
        """``--clip-model`` when it is a hub id (else GeoCLIP's CLIP), ``--clip-weights`` a local folder."""
        model = settings.get("model") or HF_CLIP_DEFAULT
        return {"model": model if "/" in model else HF_CLIP_DEFAULT,
                "pretrained": settings.get("weights") or True, "trainable": cfg.trainable}

    def __init__(self, model: str = HF_CLIP_DEFAULT, pretrained: bool | str | None = True,
                 vision_config: dict[str, Any] | None = None, processor: dict[str, Any] | None = None,
                 trainable: Trainable = "freeze") -> None:
        super().__init__()
        source = pretrained if isinstance(pretrained, str) else (model if pretrained else None)
        if source:
            self.vision, proc = load_vision(source)
            processor = {k: v for k, v in proc.to_dict().items() if k in PROCESSOR_KEYS}
        else:
            self.vision = self._random(vision_config)
        cfg = self.vision.config
        side = int(cfg.image_size)  # a random tower without processor settings: CLIP's, at its own size
        processor = dict(processor or {"size": {"shortest_edge": side}, "crop_size": {"height": side, "width": side}})
        self.out_dim = int(cfg.projection_dim)
        self.image_processor = _processor(processor)
        self.preprocess = Preprocess(int(cfg.image_size), mean=tuple(self.image_processor.image_mean),
                                     std=tuple(self.image_processor.image_std))
        self._source = source
        self._config = dict(model=model, pretrained=pretrained, processor=processor, trainable=trainable,
                            vision_config={k: getattr(cfg, k) for k in VISION_KEYS})
        self.set_trainable(trainable)

    @staticmethod
    def _random(vision_config: dict | None):
        from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

        if not vision_config:
            raise UsageError("hf_clip branch: pretrained=False needs vision_config (the architecture)")
        _quiet_transformers()
        return CLIPVisionModelWithProjection(CLIPVisionConfig(**vision_config))

    def backbone(self) -> torch.nn.Module:
        return self.vision

    def block_list(self):
        return list(self.vision.vision_model.encoder.layers)

    def weights_fingerprint(self) -> str | None:
        """Identity of the loaded weights file (embedding-cache keys); None for random weights."""
        if self._source is None:
            return None
        folder = Path(self._source).expanduser()
        if not folder.is_dir():
            from huggingface_hub import try_to_load_from_cache

            hit = try_to_load_from_cache(self._source, "config.json")
            folder = Path(hit).parent if isinstance(hit, str) else None
        files = sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")) if folder else []
        return ";".join(file_fingerprint(f) for f in files) or None

    def transform(self, train: bool = False) -> Callable:
        if train:
            return self.preprocess.transform(True)
        proc = self.image_processor
        return lambda image: proc(images=image, return_tensors="pt")["pixel_values"][0]

    def views(self, tta: str | None = None):
        if tta is None:
            single = self.transform(False)
            return lambda image: [single(image)]
        return self.preprocess.views(tta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.vision(pixel_values=x).image_embeds
