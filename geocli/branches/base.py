"""What every branch shares: preprocessing config, the branch base class, the registry.

A branch turns a batch of images into a (B, out_dim) tensor. Its ``config`` is a JSON-serialisable
dict that rebuilds the same architecture (``build_branch(name, config)``); checkpoints store it next
to the weights, so nothing is ever unpickled to restore a branch.
"""
from __future__ import annotations

import inspect
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence, Union

import torch
from PIL import Image
from torch import nn

from geocli.errors import UsageError
from geocli.registry import Registry
from geocli.runtime import resolve_device

BRANCHES: Registry = Registry("branch")
#: 'freeze' (no gradients), 'finetune' (all), or N: only the last N blocks (plus what follows them).
Trainable = Union[str, int]


@dataclass
class Preprocess:
    """How pixels must look for a branch's weights: size, normalisation, crop and resampling.

    ``crop_pct`` follows timm: resize the short side to ``image_size / crop_pct``, then centre-crop.
    Training augmentation flips horizontally only when asked: mirrored text and driving side are geo cues.
    """

    image_size: int
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    crop_pct: float = 1.0
    interpolation: str = "bicubic"
    color_jitter: float = 0.2
    scale: tuple[float, float] = field(default=(0.5, 1.0))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Preprocess":
        data = dict(data)
        for key in ("mean", "std", "scale"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)

    def transform(self, train: bool = False) -> Callable[[Image.Image], torch.Tensor]:
        """torchvision transform from an RGB PIL image to a normalised (3, S, S) tensor: the
        centre crop, or with ``train`` this config's own crop scale and colour jitter."""
        from torchvision import transforms as T

        if train:
            return self.augment(self.scale, color_jitter=self.color_jitter)
        return T.Compose([self._resize(), T.CenterCrop(self.image_size), self._to_tensor()])

    def _resize(self):
        """Short side to ``image_size / crop_pct`` (timm's eval resize), before any crop."""
        return ShortSideResize(int(round(self.image_size / self.crop_pct)), self.interpolation)

    def _to_tensor(self):
        from torchvision import transforms as T

        return T.Compose([T.ToTensor(), T.Normalize(self.mean, self.std)])

    def augment(self, scale=(0.5, 1.0), rotation: float = 0.0, flip: bool = False, color_jitter: float = 0.0,
                label_map: bool = False) -> Callable[[Image.Image], torch.Tensor]:
        """The ViT/DINOv2 study's training augmentation at this size and normalisation:
        RandomResizedCrop, rotation up to ``rotation`` degrees, optional horizontal flip,
        ColorJitter. A ``label_map`` (rendered segmentation) is rotated with nearest neighbour and
        never colour-jittered: its colours are classes."""
        from torchvision import transforms as T

        steps = [T.RandomResizedCrop(self.image_size, scale=tuple(scale), interpolation=T.InterpolationMode(self.interpolation))]
        if rotation > 0:
            rotate = T.InterpolationMode.NEAREST if label_map else T.InterpolationMode.BILINEAR
            steps.append(T.RandomRotation(rotation, interpolation=rotate))
        if flip:
            steps.append(T.RandomHorizontalFlip())
        if color_jitter > 0 and not label_map:
            steps.append(T.ColorJitter(color_jitter, color_jitter, color_jitter))
        return T.Compose(steps + [self._to_tensor()])

    def views(self, tta: str | None = None) -> Callable[[Image.Image], list[torch.Tensor]]:
        """Image -> the tensors prediction looks at: the centre crop, or with ``tta="five-crop"``
        the four corner crops and the centre crop of the resized image (TransLocator's TTA)."""
        if tta is None:
            single = self.transform(False)
            return lambda image: [single(image)]
        from torchvision import transforms as T

        resize, crops, tail = self._resize(), T.FiveCrop(self.image_size), self._to_tensor()
        return lambda image: [tail(crop) for crop in crops(resize(image))]


class ShortSideResize:
    """torchvision's ``Resize(side)`` for PIL images, but bounded: an output over
    ``images.MAX_RESIZED_PIXELS`` is refused with an ``ImageError`` instead of allocated."""

    def __init__(self, side: int, interpolation: str = "bicubic") -> None:
        self.side, self.interpolation = side, interpolation

    def __call__(self, image: Image.Image) -> Image.Image:
        from torchvision.transforms import InterpolationMode
        from torchvision.transforms import functional as F

        from geocli.images import check_resize, short_side_size

        width, height = short_side_size(image.size, self.side)
        check_resize(image.size, (width, height))
        return F.resize(image, [height, width], interpolation=InterpolationMode(self.interpolation))


def check_device(device: str) -> torch.device:
    """The device ``device`` names, if this machine has it; else a ``UsageError`` saying why."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise UsageError(f"--device {device!r} is not a device name (cpu, cuda, cuda:1, mps)") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise UsageError(f"--device {device}: no CUDA device is available here (use --device cpu)")
        if dev.index is not None and dev.index >= count:
            raise UsageError(f"--device {device}: this machine has {count} CUDA device(s), numbered from 0")
    elif dev.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise UsageError(f"--device {device}: Apple's MPS is not available here (use --device cpu)")
    elif dev.type != "cpu":
        raise UsageError(f"--device {device}: geocli runs on cpu, cuda or mps, not {dev.type}")
    return dev


def freeze_from(module: nn.Module, blocks: Sequence[nn.Module], n: int) -> None:
    """Freeze ``module`` except the last ``n`` of ``blocks`` and every parameter registered after them."""
    if not 0 <= n <= len(blocks):
        raise UsageError(f"cannot unfreeze the last {n} blocks: the model has {len(blocks)}")
    module.requires_grad_(False)
    if n == 0:
        return
    first = next(iter(blocks[len(blocks) - n].parameters()))
    started = False
    for param in module.parameters():
        started = started or param is first
        if started:
            param.requires_grad_(True)


class Branch(nn.Module):
    """Base of the four branches. Subclasses set ``out_dim``, ``preprocess`` and ``_config``."""

    out_dim: int
    preprocess: Preprocess
    #: Trains only frozen, from the embedding cache: its input comes from a slow tool (OCR).
    cache_only: bool = False
    #: The cached training view runs the branch itself on its cache rows (it has parameters of its
    #: own that train, e.g. OCR's "no text" vector); ``cache_sample`` turns a row into its input.
    runs_on_cache: bool = False
    #: Its pixels are rendered label maps (segmented once per photo before training), not the photo:
    #: it has ``segmenter`` and ``render_maps(images, paths)``.
    reads_label_maps: bool = False
    #: Its input is what it reads in the whole photo (text), not a crop of the pixels: prediction asks
    #: ``photo_input(images, read)`` once per photo, repeats it for every view, and keeps what was read.
    reads_text: bool = False

    #: The run-level settings it takes (``geocli.config.BRANCH_SETTINGS``: ``model``, ``weights``)
    #: and their defaults; ``--rgb-model`` / ``rgb_model`` set the rgb branch's ``model``.
    settings: dict[str, Any] = {}

    @classmethod
    def run_settings(cls, cfg, name: str) -> dict[str, Any]:
        """The settings run ``cfg`` gives the branch called ``name`` over this class's defaults; a
        setting this class does not take is a ``UsageError``."""
        given = cfg.branch_setting(name)
        stray = sorted(set(given) - set(cls.settings))
        if stray:
            takes = ", ".join(f"{name}_{k}" for k in cls.settings) or "none"
            raise UsageError(f"the {name} branch takes no {', '.join(f'{name}_{k}' for k in stray)} setting "
                             f"(its settings: {takes}); set its options in branch_options.{name}")
        return {**cls.settings, **given}

    @classmethod
    def train_options(cls, cfg, paired: bool, options: dict, settings: dict) -> dict:
        """Constructor options from a run's ``TrainConfig`` and this branch's ``run_settings``,
        before the run's ``branch_options`` for this branch (``options``) are laid over them.
        ``paired``: the branch is one of a TransLocator pair, which trains together."""
        return {"trainable": cfg.trainable}

    @classmethod
    def kind_for(cls, settings: dict) -> str | None:
        """Another registered branch kind that serves this branch's name for its ``run_settings``
        (None: this class itself)."""
        return None

    @classmethod
    def option(cls, options: dict, key: str):
        """``options[key]``, else the constructor's default for it."""
        return options[key] if key in options else inspect.signature(cls).parameters[key].default

    def __init__(self) -> None:
        super().__init__()
        self._config: dict[str, Any] = {}
        self.trainable: Trainable = "freeze"

    @property
    def config(self) -> dict[str, Any]:
        """JSON-serialisable constructor arguments: ``build_branch(name, config)`` rebuilds this branch."""
        return dict(self._config)

    @property
    def device(self) -> torch.device:
        for tensor in list(self.parameters()) + list(self.buffers()):
            return tensor.device
        return torch.device("cpu")

    def transform(self, train: bool = False) -> Callable:
        return self.preprocess.transform(train)

    def views(self, tta: str | None = None) -> Callable[[Image.Image], list[torch.Tensor]]:
        """Image -> the tensors prediction looks at (``Preprocess.views``)."""
        return self.preprocess.views(tta)

    def backbone(self) -> nn.Module:
        """The pretrained encoder that ``set_trainable`` acts on."""
        raise NotImplementedError

    def block_list(self) -> Sequence[nn.Module]:
        """The encoder's repeated blocks, in forward order (for unfreezing the last N)."""
        raise UsageError(f"{type(self).__name__} has no block list; use 'freeze' or 'finetune'")

    def set_trainable(self, mode: Trainable) -> "Branch":
        """'freeze' the encoder, 'finetune' all of it, or an int N: train only the last N blocks."""
        body = self.backbone()
        if mode == "freeze":
            body.requires_grad_(False)
        elif mode == "finetune":
            body.requires_grad_(True)
        elif isinstance(mode, int) and not isinstance(mode, bool):
            freeze_from(body, self.block_list(), mode)
        else:
            raise UsageError(f"trainable must be 'freeze', 'finetune' or a block count, not {mode!r}")
        self.trainable = mode
        self._config["trainable"] = mode
        self.train(self.training)
        return self

    def train(self, mode: bool = True) -> "Branch":
        """A frozen encoder stays in eval mode (BatchNorm statistics and dropout untouched)."""
        super().train(mode)
        if self.trainable == "freeze":
            self.backbone().eval()
        return self

    def to_batch(self, images: Sequence[Image.Image], train: bool = False) -> torch.Tensor:
        tf = self.transform(train)
        return torch.stack([tf(img) for img in images]).to(self.device)

    @torch.no_grad()
    def encode_images(self, images: Sequence[Image.Image], batch_size: int = 32) -> torch.Tensor:
        """Embed PIL images in eval mode, ``batch_size`` at a time: (N, out_dim) on the branch's device."""
        was_training = self.training
        self.eval()
        try:
            parts = [self(self.to_batch(images[i : i + batch_size])) for i in range(0, len(images), batch_size)]
        finally:
            self.train(was_training)
        return torch.cat(parts) if parts else torch.empty(0, self.out_dim, device=self.device)


def build_branch(name: str, config: dict | None = None, device: str | torch.device | None = None) -> Branch:
    """Build a registered branch from its ``config`` dict; unknown keys are a ``UsageError``."""
    return BRANCHES.build(name, **dict(config or {})).to(resolve_device(device))
