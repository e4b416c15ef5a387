"""GeoCLIP (Vivanco et al., NeurIPS 2023) as a geocli model: ``--model geoclip``.

GeoCLIP's computation, written as a ``GeoModel``: CLIP ViT-L/14 image features (the ``hf_clip``
branch: ``openai/clip-vit-large-patch14`` through the Hugging Face cache, or a local CLIP folder),
concatenated unnormalised with its presence flag, GeoCLIP's image MLP (the gallery head's
projection, started from the ``geoclip`` wheel's weights, the flag's column zero), cosine with
the location encoder's embeddings of the 100K-point gallery, times exp(logit scale), softmax,
top k. The wheel's weight files are read with ``torch.load(weights_only=True)``; its Python
package is never imported (it builds a CLIP from the hub on construction).

What geocli adds: the gallery's embeddings are computed once per location encoder and kept on
disk; photos are batched; CLIP features of seen photos come from the embedding cache; each guess
carries its country, and the record a country ranking (gallery probability summed per country).
"""
from __future__ import annotations

from geocli.config import HF_CLIP_DEFAULT

DESCRIPTION = ("GeoCLIP (CLIP ViT-L/14 + GPS gallery, Vivanco et al. 2023): image side "
               f"{HF_CLIP_DEFAULT} from the Hugging Face cache or --clip-weights DIR; MLP, location "
               "encoder and 100K gallery from the geoclip package")


def geoclip_config(clip: str | None = None):
    """The ``ModelConfig`` of GeoCLIP; ``clip`` is a local Hugging Face CLIP folder (None: the hub id)."""
    from geocli.config import BranchConfig, FusionConfig, HeadConfig, ModelConfig

    return ModelConfig(
        branches=[BranchConfig("clip", kind="hf_clip", options={"model": HF_CLIP_DEFAULT, "pretrained": clip or True})],
        fusion=FusionConfig(normalize="none", dropout=0.0),
        heads=[HeadConfig("gallery", options={"projection": "geoclip"})],
    )


def build_geoclip(clip: str | None = None, device: str | None = None):
    """GeoCLIP as an eval-mode ``GeoModel`` on ``device`` (CUDA when present)."""
    from geocli.runtime import resolve_device
    from geocli.model import GeoModel

    model = GeoModel(geoclip_config(clip))
    return model.to(resolve_device(device)).eval()


def geoclip_geolocator(clip_weights: str | None = None, device: str | None = None, evidence: bool = False,
                       **options):
    """A ``ModelGeolocator`` running GeoCLIP; exactly GeoCLIP unless ``evidence`` is on."""
    from geocli.predict.checkpoint_geolocator import ModelGeolocator

    model = build_geoclip(clip_weights, device)
    label = f"geoclip ({clip_weights or HF_CLIP_DEFAULT})"
    return ModelGeolocator(model, label, device=device, evidence=evidence, tta=None, **options)


def geoclip_weights():
    """Whether GeoCLIP's image side is here (the ``geoclip`` wheel's parts are checked too)."""
    from geocli.weights.availability import WeightsStatus, hf_model_weights

    try:
        from geocli.weights.availability import geoclip_dir

        geoclip_dir()
    except Exception as exc:  # not installed: say so instead of the CLIP status
        return WeightsStatus("geoclip", False, str(exc))
    status = hf_model_weights(HF_CLIP_DEFAULT)
    if status.available:
        return status
    return WeightsStatus(status.name, False, f"downloads from hf.co/{HF_CLIP_DEFAULT} into the Hugging Face "
                                             "cache, or pass --clip-weights DIR (a local CLIP folder)")
