"""Where and how tensors run: the device, bf16 autocast, batches moved to the device.

Shared by training and prediction. Prediction's ``precision``: "fp32" (exact), "bf16" (the image
towers under bf16 autocast, on CUDA or on a CPU with bf16 matrix units such as AMX; heads stay
fp32 so probabilities keep their precision) or "auto" (bf16 on CUDA, fp32 on a CPU)."""
from __future__ import annotations

import contextlib

import torch

PRECISIONS = ("auto", "fp32", "bf16")


def mixed_precision(device: torch.device, enabled: bool = True):
    """Training's AMP: bf16 autocast on CUDA (bf16 needs no loss scaling); a no-op on other devices."""
    return encoder_precision(device, "bf16" if enabled and device.type == "cuda" else "fp32")


def resolve_precision(device: torch.device, precision: str = "auto") -> str:
    """"fp32" or "bf16" for ``device``; an unknown name is a ``UsageError``."""
    if precision not in PRECISIONS:
        from geocli.errors import UsageError

        raise UsageError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if precision == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    return precision


def cpu_has_bf16() -> bool:
    """Whether this CPU runs bf16 matrix products natively (AVX-512 BF16 / AMX through oneDNN)."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def encoder_precision(device: torch.device, precision: str):
    """The context image towers run in: bf16 autocast for "bf16", nothing for "fp32"."""
    if precision != "bf16" or device.type not in ("cuda", "cpu"):
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def full_precision(device: torch.device):
    """Autocast off (heads compute their probabilities in fp32 whatever the branches ran in)."""
    if device.type not in ("cuda", "cpu") or not torch.is_autocast_enabled(device.type):
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, enabled=False)


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
