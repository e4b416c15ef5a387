"""Where and how tensors run: the device, bf16 autocast on CUDA, batches moved to the device.

Shared by training and prediction."""
from __future__ import annotations

import torch


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


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """The requested device, or CUDA when present, else CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
