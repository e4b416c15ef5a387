"""Building what a training run needs: the model config from ``TrainConfig``, the cached-branch
training view, optimiser and scheduler, class weights, and the class-weighted loss."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from geocli.config import BranchConfig, FusionConfig, HeadConfig, LabelSpaces, ModelConfig, PredictConfig, TrainConfig
from geocli.errors import UsageError

#: Branches whose input is not a pixel tensor of the photo: only trainable from the cache.
CACHE_ONLY = ("seg", "ocr")
TOKEN_HEADS = ("retrieval",)
#: Heads whose loss always reaches every parameter (their targets are always in the batch).
ALWAYS_USED_HEADS = ("country", "geocell", "scene", "grid_regression", "regression")


def branch_config(name: str, cfg: TrainConfig) -> BranchConfig:
    """One branch from the CLI-level settings (model names, weights, trainable) + ``branch_options``."""
    fusion = FusionConfig.from_dict(cfg.fusion)
    paired = fusion.name == "translocator" and name in fusion.pair  # a TransLocator pair trains together
    trainable = cfg.trainable if name in ("rgb", "clip") or paired else "freeze"
    if name == "rgb":
        options = {"model": cfg.rgb_model, "pretrained": not cfg.rgb_weights, "weights": cfg.rgb_weights}
    elif name == "clip":
        options = {"model": cfg.clip_model, "pretrained": cfg.clip_weights or "openai"}
    elif name in CACHE_ONLY:
        options = {}
    else:
        raise UsageError(f"unknown branch {name!r}; valid: rgb, seg, clip, ocr")
    options = {**options, "trainable": trainable, **cfg.branch_options.get(name, {})}
    return BranchConfig(name, options=options)


def head_config(name: str, cfg: TrainConfig) -> HeadConfig:
    """A head with the run's label smoothing where the head takes it, then its ``head_options``
    (unknown options fail when the head is built) and its ``head_weights`` share of the loss."""
    smoothing = {"label_smoothing": cfg.label_smoothing} if name in ("country", "geocell", "scene", "grid_regression") else {}
    options = {**smoothing, **cfg.head_options.get(name, {})}
    return HeadConfig(name, weight=float(cfg.head_weights.get(name, 1.0)), options=options)


def build_model_config(cfg: TrainConfig, labels: LabelSpaces) -> ModelConfig:
    return ModelConfig(
        branches=[branch_config(b, cfg) for b in cfg.branches],
        fusion=FusionConfig.from_dict(cfg.fusion),
        heads=[head_config(h, cfg) for h in cfg.heads],
        labels=labels,
        predict=PredictConfig(tta=cfg.tta),
    )


def cacheable(model, use_cache: bool) -> set[str]:
    """Branches encoded once through the embedding cache: frozen and outside a TransLocator pair
    (the token source of a head that needs patch tokens caches its tokens too, see
    ``caches_tokens``). Seg and OCR must be cacheable."""
    out = set()
    for name, module in model.branches.items():
        frozen = getattr(module, "trainable", None) == "freeze" and hasattr(module, "encode_images")
        if frozen and use_cache:
            out.add(name)
        elif name in CACHE_ONLY:
            raise UsageError(f"the {name} branch trains only frozen from the embedding cache (drop --no-cache)")
    return out


def caches_tokens(model, name: str) -> bool:
    """Whether branch ``name``'s cache rows carry its patch tokens (a retrieval head reads them)."""
    return name == model.token_branch and any(h in model.heads for h in TOKEN_HEADS)


def training_view(model, cached: set[str]):
    """A ``GeoModel`` sharing ``model``'s trainable modules whose ``cached`` branches take vectors
    from the batch. Training it trains ``model``; ``model`` (with its frozen encoders) is what is
    saved, so the checkpoint predicts from photos."""
    from geocli.model import GeoModel

    if not cached:
        return model
    stand_ins = [BranchConfig(n, input="embedding", embed_dim=int(m.out_dim)) for n, m in model.branches.items()]
    view = GeoModel(ModelConfig(branches=stand_ins, heads=[], labels=model.config.labels), pretrained=False)
    for name, module in model.branches.items():
        view.branches[name] = _stand_in(model, name) if name in cached else module
    view.pair, view.fusion, view.heads, view.config = model.pair, model.fusion, model.heads, model.config
    keeps_tokens = model.token_branch not in cached or caches_tokens(model, model.token_branch)
    view.token_branch = model.token_branch if keeps_tokens else None
    return view.to(model.device)


def _stand_in(model, name: str):
    from geocli.model import EmbeddingInput, TokenEmbeddingInput

    dim = int(model.branches[name].out_dim)
    if caches_tokens(model, name):
        token_dim, num_tokens = model.token_shape
        return TokenEmbeddingInput(dim, num_tokens, token_dim)
    return EmbeddingInput(dim)


def param_groups(view, cfg: TrainConfig) -> list[dict]:
    """Differential learning rates: fusion + heads at ``lr``, branch weights at ``lr * backbone_lr_scale``."""
    head, backbone = [], []
    for name, p in view.named_parameters():
        if p.requires_grad:
            (head if name.startswith(("fusion.", "heads.")) else backbone).append(p)
    groups = [{"params": head, "lr": cfg.lr}]
    if backbone:
        groups.append({"params": backbone, "lr": cfg.lr * cfg.backbone_lr_scale})
    return groups


def build_optimizer(view, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW (the ViT/DINOv2 study) or SGD with momentum (the ViT+CLIP thesis)."""
    groups = param_groups(view, cfg)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


def build_scheduler(optimizer, cfg: TrainConfig):
    """Cosine annealing over the epochs, ReduceLROnPlateau on validation loss, a step decay
    (DINO-Mix: divided by three every five epochs), or none."""
    if cfg.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
    if cfg.scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.step_epochs, gamma=cfg.step_gamma)
    if cfg.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=cfg.plateau_factor, patience=cfg.plateau_patience)
    return None


def step_scheduler(scheduler, val_loss: float | None) -> None:
    if scheduler is None:
        return
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        if val_loss is not None:
            scheduler.step(val_loss)
    else:
        scheduler.step()


def class_weights(targets: dict, labels: LabelSpaces, device) -> dict[str, torch.Tensor]:
    """1/frequency loss weights (the ViT+CLIP thesis) for the country and each geocell partition."""
    from geocli.datasets.splits import inverse_frequency_class_weights

    out = {}
    if "country" in targets and labels.countries:
        known = targets["country"][targets["country"] >= 0]
        out["country"] = inverse_frequency_class_weights(known, len(labels.countries))
    for name, idx in (targets.get("cells") or {}).items():
        out[f"cells/{name}"] = inverse_frequency_class_weights(idx, len(labels.hierarchy.partitions[labels.hierarchy.names.index(name)]))
    return {k: torch.as_tensor(v, dtype=torch.float32, device=device) for k, v in out.items()}


def _weighted_ce(logits, target, weight, smoothing: float):
    keep = target >= 0
    if not keep.any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits[keep], target[keep], weight=weight, label_smoothing=smoothing)


def run_loss(view, out: dict, batch: dict, weights: dict[str, torch.Tensor]):
    """The model's multi-task loss; with class weights, country and geocell cross-entropies are
    weighted by 1/frequency (heads without weights keep their own loss)."""
    if not weights:
        return view.loss(out, batch)
    from geocli.heads.losses import weighted_sum

    parts = {}
    for name, head in view.heads.items():
        logits = out["heads"][name].get("logits")
        if name == "country" and "country" in batch and "country" in weights:
            parts[name] = _weighted_ce(logits, batch["country"], weights["country"], head.label_smoothing)
        elif name == "geocell" and "cells" in batch and not head.tau_km:
            parts[name] = torch.stack([_weighted_ce(logits[p], batch["cells"][p], weights[f"cells/{p}"], head.label_smoothing)
                                       for p in head.names]).mean()
        else:
            value = head.loss(out["heads"][name], batch)
            if value is not None:
                parts[name] = value
    return weighted_sum(parts, {h.name: h.weight for h in view.config.heads}), {n: v.detach() for n, v in parts.items()}


def mixed_precision(device: torch.device, enabled: bool = True):
    """bf16 autocast on CUDA (bf16 needs no loss scaling); a no-op on other devices."""
    return torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=enabled and device.type == "cuda")


def to_device(batch, device):
    """Tensors (also inside nested dicts) moved to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch


def centroid_baseline(train_lat, train_lon, val_lat, val_lon) -> dict:
    """Always predicting the training set's spherical mean: the floor any model must beat."""
    from geocli.geo.distance import mean_coordinate
    from geocli.metrics import geolocation_metrics

    lat, lon = mean_coordinate(train_lat, train_lon)
    n = len(val_lat)
    return {"point": [lat, lon], **geolocation_metrics(val_lat, val_lon, np.full(n, lat), np.full(n, lon))}
