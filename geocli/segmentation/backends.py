"""Segmenter backends: torchvision LRASPP (default), SegFormer (transformers), mmsegmentation, precomputed PNGs."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from geocli.errors import GeocliError, UsageError, WeightsNotFoundError, require
from geocli.weights.hub import fetch, is_offline, load_state, load_weights_file, offline_mode, torch_hub_file
from geocli.segmentation.base import SEGMENTERS, Segmenter
from geocli.segmentation.classes import get_label_space
from geocli.segmentation.render import load_index_map

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _device(device: str | None) -> torch.device:
    return torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))


def to_square_batch(images: Sequence[Image.Image], size: int, device: torch.device) -> torch.Tensor:
    """Resize every image to size x size (batchable) and normalise with ImageNet statistics."""
    arrays = [np.asarray(img.convert("RGB").resize((size, size), Image.BILINEAR)) for img in images]
    x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float().div(255)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return ((x - mean) / std).to(device)


def logits_to_maps(logits: torch.Tensor, images: Sequence[Image.Image]) -> list[np.ndarray]:
    """Upsample each image's logits to its own size, argmax -> uint8 index map."""
    maps = []
    for row, img in zip(logits, images):
        up = F.interpolate(row[None].float(), size=(img.height, img.width), mode="bilinear", align_corners=False)
        maps.append(up[0].argmax(0).to(torch.uint8).cpu().numpy())
    return maps


class _NetworkSegmenter(Segmenter):
    """Shared batching for segmenters that are a torch network over a size x size input."""

    net: torch.nn.Module
    size: int
    device: torch.device

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def segment_batch(self, images: Sequence[Image.Image], paths: Sequence[str] | None = None) -> list[np.ndarray]:
        if not images:
            return []
        return logits_to_maps(self._logits(to_square_batch(images, self.size, self.device)), images)


@SEGMENTERS.register("torchvision-lraspp")
class LRASPPSegmenter(_NetworkSegmenter):
    """torchvision LRASPP-MobileNetV3-Large, COCO images with the 21 Pascal VOC classes (~10 img/s at 512 on CPU).

    ``weights``: "torchvision" (its published checkpoint: the torch hub cache, downloaded when online),
    a local file, or None for random init (tests).
    """

    def __init__(self, weights: str | None = "torchvision", size: int = 512, device: str | None = None) -> None:
        from torchvision.models.segmentation import LRASPP_MobileNet_V3_Large_Weights, lraspp_mobilenet_v3_large

        self.label_space = get_label_space("voc")
        self.size, self.device = size, _device(device)
        self.net = lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=21)
        if weights == "torchvision":
            url = LRASPP_MobileNet_V3_Large_Weights.COCO_WITH_VOC_LABELS_V1.url
            load_state(self.net, self._published(url), f"LRASPP weights {torch_hub_file(url)}")
        elif weights:
            load_state(self.net, load_weights_file(weights), f"segmenter weights {weights}")
        self.net.eval().to(self.device)

    @staticmethod
    def _published(url: str) -> dict:
        cached = torch_hub_file(url)
        if cached.is_file():
            return load_weights_file(cached)
        if is_offline():
            raise WeightsNotFoundError(
                f"LRASPP-MobileNetV3 weights are not in {cached} and the network is unreachable; download "
                f"{url} to that path, or name a local file as the seg branch's segmenter_options "
                '{"weights": FILE} (branch_options in a geocli train --config file)'
            )
        hint = (f"download {url} by hand to {cached}, or name it as the seg branch's segmenter_options "
                '{"weights": FILE} (branch_options in a geocli train --config file)')
        return fetch("torchvision LRASPP-MobileNetV3", lambda: torch.hub.load_state_dict_from_url(url, map_location="cpu"), hint)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)["out"]


@SEGMENTERS.register("segformer")
class SegFormerSegmenter(_NetworkSegmenter):
    """Hugging Face SegFormer (ADE20K-150 checkpoints such as nvidia/segformer-b0-finetuned-ade-512-512).

    ``model``: a hub id or a local folder; or ``config`` (a SegformerConfig dict) for random init.
    """

    def __init__(self, model: str | None = "nvidia/segformer-b0-finetuned-ade-512-512",
                 config: dict[str, Any] | None = None, label_space: str = "ade20k", size: int = 512,
                 device: str | None = None) -> None:
        import transformers  # installed with sentence-transformers

        cls = transformers.SegformerForSemanticSegmentation
        self.label_space = get_label_space(label_space)
        self.size, self.device = size, _device(device)
        if config is not None:
            self.net = cls(transformers.SegformerConfig(**config))
        elif model and Path(model).expanduser().is_dir():
            with offline_mode():
                self.net = cls.from_pretrained(str(Path(model).expanduser()))
        elif model:
            hint = "download it on a connected machine (save_pretrained to a folder) and pass the folder"
            self.net = fetch(f"SegFormer {model!r}", lambda: cls.from_pretrained(model), hint)
        else:
            raise UsageError("segformer needs model= (hub id or folder) or config=")
        if self.net.config.num_labels != self.label_space.num_classes:
            raise UsageError(f"SegFormer predicts {self.net.config.num_labels} classes; "
                             f"label space {label_space!r} has {self.label_space.num_classes}")
        self.net.eval().to(self.device)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(pixel_values=x).logits


@SEGMENTERS.register("mmseg")
class MMSegSegmenter(Segmenter):
    """mmsegmentation (``[seg]`` extra): any config + checkpoint, e.g. HRNet-W48 on ADE20K as in TransLocator."""

    def __init__(self, config: str, checkpoint: str, label_space: str = "ade20k", device: str | None = None) -> None:
        apis = require("mmseg.apis", "seg", package="mmsegmentation")
        for path in (config, checkpoint):
            if not Path(path).is_file():
                raise WeightsNotFoundError(f"mmsegmentation file not found: {path}")
        self.label_space = get_label_space(label_space)
        self.apis = apis
        self.model = apis.init_model(config, checkpoint, device=str(_device(device)))

    def segment_batch(self, images: Sequence[Image.Image], paths: Sequence[str] | None = None) -> list[np.ndarray]:
        arrays = [np.asarray(img.convert("RGB"))[:, :, ::-1].copy() for img in images]  # mmseg takes BGR
        results = self.apis.inference_model(self.model, arrays) if arrays else []
        results = results if isinstance(results, list) else [results]
        return [r.pred_sem_seg.data[0].to(torch.uint8).cpu().numpy() for r in results]


@SEGMENTERS.register("precomputed")
class PrecomputedSegmenter(Segmenter):
    """Maps read from a folder that mirrors the image names (as TransLocator publishes MP-16 maps).

    With ``image_root``, ``image_root/a/b.jpg`` maps to ``folder/a/b.png``; without, ``b.jpg`` -> ``folder/b.png``.
    """

    def __init__(self, folder: str, image_root: str | None = None, suffix: str = ".png",
                 label_space: str = "ade20k", form: str = "auto") -> None:
        self.folder = Path(folder).expanduser()
        if not self.folder.is_dir():
            raise GeocliError(f"segmentation map folder not found: {self.folder}")
        self.image_root = Path(image_root).expanduser().resolve() if image_root else None
        self.suffix, self.form = suffix, form
        self.label_space = get_label_space(label_space)

    def map_path(self, image_path: str | os.PathLike) -> Path:
        path = Path(image_path)
        if self.image_root is not None:
            try:
                return (self.folder / path.resolve().relative_to(self.image_root)).with_suffix(self.suffix)
            except ValueError:
                raise GeocliError(f"{path} is not under image_root {self.image_root}") from None
        return self.folder / (path.stem + self.suffix)

    def segment_batch(self, images: Sequence[Image.Image], paths: Sequence[str] | None = None) -> list[np.ndarray]:
        if paths is None or len(paths) != len(images):
            raise UsageError("the precomputed segmenter needs the image paths to find their maps")
        maps = []
        for img, path in zip(images, paths):
            target = self.map_path(path)
            if not target.is_file():
                raise GeocliError(f"no precomputed segmentation map for {path}: expected {target}")
            index = load_index_map(target, self.label_space, self.form)
            if index.shape != (img.height, img.width):
                index = np.asarray(Image.fromarray(index).resize((img.width, img.height), Image.NEAREST))
            maps.append(index)
        return maps
