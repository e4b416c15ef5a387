"""Class weights for the training loss: 1/frequency of each head's classes (``--class-weights
inverse-frequency``); the loss itself is ``GeoModel.loss``."""
from __future__ import annotations

import torch


def class_weights(model, targets: dict, device) -> dict[str, torch.Tensor]:
    """1/frequency loss weights (the ViT+CLIP thesis) for the classes of every head that has them
    (country; each geocell partition), keyed as ``Head.class_counts`` names them."""
    from geocli.datasets.splits import inverse_frequency_class_weights

    counts = {key: value for head in model.heads.values() for key, value in head.class_counts(targets).items()}
    return {key: torch.as_tensor(inverse_frequency_class_weights(idx, n), dtype=torch.float32, device=device)
            for key, (idx, n) in counts.items()}
