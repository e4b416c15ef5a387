"""Optimiser and learning-rate schedule of a run: differential learning rates (new layers at
``lr``, pretrained encoders at ``lr * backbone_lr_scale``), AdamW or SGD, cosine / step / plateau;
and the loss's class weights, 1/frequency of each head's classes (``--class-weights
inverse-frequency``; the loss itself is ``GeoModel.loss``)."""
from __future__ import annotations

import torch

from geocli.config import TrainConfig


def pretrained_parameters(model) -> set[int]:
    """Ids of the parameters inside the branches' pretrained encoders (``Branch.backbone()``),
    TransLocator's pair included; everything else (fusion, heads, TransLocator's CLS exchange
    layers, OCR's "no text" vector) is new."""
    from geocli.branches.base import Branch

    return {id(p) for m in model.modules() if isinstance(m, Branch) for p in m.backbone().parameters()}


def param_groups(view, cfg: TrainConfig) -> list[dict]:
    """Differential learning rates: new layers at ``lr``, pretrained encoders at ``lr * backbone_lr_scale``."""
    pretrained = pretrained_parameters(view)
    head, backbone = [], []
    for p in view.parameters():
        if p.requires_grad:
            (backbone if id(p) in pretrained else head).append(p)
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


def class_weights(model, targets: dict, device) -> dict[str, torch.Tensor]:
    """1/frequency loss weights (the ViT+CLIP thesis) for the classes of every head that has them
    (country; each geocell partition), keyed as ``Head.class_counts`` names them."""
    from geocli.datasets.splits import inverse_frequency_class_weights

    counts = {key: value for head in model.heads.values() for key, value in head.class_counts(targets).items()}
    return {key: torch.as_tensor(inverse_frequency_class_weights(idx, n), dtype=torch.float32, device=device)
            for key, (idx, n) in counts.items()}
