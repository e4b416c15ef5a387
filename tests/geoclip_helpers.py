"""A tiny randomly initialised Hugging Face CLIP whose projection is 768-d (GeoCLIP's MLP input),
saved as ``save_pretrained`` writes it: the folder both ``geoclip.GeoCLIP(clip_path=DIR)`` and
``geocli --clip-weights DIR`` read."""
from __future__ import annotations

from pathlib import Path

TINY_VISION = dict(hidden_size=32, intermediate_size=37, num_attention_heads=2, num_hidden_layers=2,
                   patch_size=14, image_size=224, projection_dim=768)
TINY_TEXT = dict(hidden_size=32, intermediate_size=37, num_attention_heads=2, num_hidden_layers=1,
                 projection_dim=768, bos_token_id=0, eos_token_id=2)


def tiny_clip_folder(folder: Path, seed: int = 0, vision: dict | None = None) -> Path:
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel
    from transformers.utils import logging

    logging.set_verbosity_error()
    torch.manual_seed(seed)
    cfg = CLIPConfig(projection_dim=768, text_config=TINY_TEXT, vision_config=vision or TINY_VISION)
    CLIPModel(cfg).save_pretrained(folder)
    CLIPImageProcessor().save_pretrained(folder)
    return Path(folder)
