"""Retrieval heads: a GPS gallery ranked by a GeoCLIP-style location encoder, and reference-image
kNN with a MixVPR aggregator trained with the multi-similarity loss.

``gallery``: image embedding -> trainable projection (GeoCLIP's 768-512 MLP shape) compared by
cosine with location-encoder embeddings of GPS points; the location encoder and the 100K gallery
come from the installed ``geoclip`` package. ``projection="geoclip"`` starts the projection from
GeoCLIP's own image MLP: its weights read the first 768 columns of the fused embedding (the CLIP
ViT-L/14 branch, which must come first and be fused without normalisation) and every other column
(presence flags, further branches such as OCR) starts at zero, so the untrained model *is*
GeoCLIP and training moves away from it. Otherwise the projection starts random.
Training: contrastive cross-entropy where each image's own GPS is the positive and random gallery
points are the negatives (GeoCLIP uses a queue of past GPS; the gallery is a fixed stand-in).

``retrieval``: patch tokens -> MixVPR descriptor; kNN against a ``ReferenceIndex`` attached at run
time with ``set_references`` (reference databases are data, not weights).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from geocli.config import LabelSpaces
from geocli.errors import UsageError
from geocli.geo.distance import pairwise_haversine_km
from geocli.geo.gallery import (
    GPSGallery,
    gallery_softmax,
    LocationEncoder,
    load_geoclip_gallery,
    load_geoclip_location_encoder,
    load_geoclip_logit_scale,
)
from geocli.heads.base import HEADS, FeatureSpec, Head, _gps, mlp
from geocli.heads.losses import multi_similarity_loss
from geocli.heads.mixvpr import MixVPR
from geocli.heads.references import VPR_RADIUS_KM, ReferenceIndex


@HEADS.register("gallery")
class GalleryHead(Head):
    """GeoCLIP-style GPS gallery head.

    Options: gallery ("geoclip": the package's 100K points; "none": empty until ``set_gallery``),
    location_encoder ("geoclip" weights or "random"), train_location_encoder (default False),
    projection ("random" or "geoclip", see the module docstring), hidden (projection width, 768),
    negatives (gallery points per training batch, 1024).
    """

    always_trained = False
    location_priority = 20

    def __init__(self, spec: FeatureSpec, labels: LabelSpaces, gallery: str = "geoclip",
                 location_encoder: str = "geoclip", train_location_encoder: bool = False,
                 projection: str = "random", hidden: int = 768, negatives: int = 1024, pretrained: bool = True):
        super().__init__()
        if gallery not in ("geoclip", "none") or location_encoder not in ("geoclip", "random"):
            raise UsageError("gallery head: gallery is 'geoclip' or 'none'; location_encoder 'geoclip' or 'random'")
        if projection not in ("random", "geoclip"):
            raise UsageError("gallery head: projection is 'random' or 'geoclip'")
        use_package = pretrained and location_encoder == "geoclip"
        self.location_encoder = load_geoclip_location_encoder() if use_package else LocationEncoder()
        self.location_encoder.requires_grad_(train_location_encoder)
        self.train_location_encoder = train_location_encoder
        self.projection = mlp([spec.embed_dim, hidden, LocationEncoder.out_dim])
        if projection == "geoclip":
            _start_from_geoclip(self.projection, spec.embed_dim, hidden, pretrained)
        scale = load_geoclip_logit_scale() if use_package else math.log(1 / 0.07)
        self.logit_scale = nn.Parameter(torch.tensor(scale))
        coords = load_geoclip_gallery() if pretrained and gallery == "geoclip" else np.zeros((0, 2))
        self.gallery = GPSGallery(coords)
        self.negatives = negatives

    def set_gallery(self, coords) -> None:
        self.gallery.set_coords(coords)

    def train(self, mode: bool = True):
        if self.train_location_encoder:
            self.gallery.clear_cache()  # the encoder is about to change
        return super().train(mode)

    def forward(self, features: dict) -> dict:
        return {"image": F.normalize(self.projection(features["embedding"]), dim=-1)}

    def loss(self, out: dict, batch: dict, class_weights: dict | None = None):
        gps = _gps(batch, out["image"].device)
        if gps is None:
            return None
        locations = torch.cat([gps, self._negative_points(gps.device)])
        with torch.set_grad_enabled(self.train_location_encoder and torch.is_grad_enabled()):
            loc = F.normalize(self.location_encoder(locations), dim=-1)
        logits = self.logit_scale.exp() * out["image"] @ loc.t()
        return F.cross_entropy(logits, torch.arange(len(gps), device=gps.device))

    def distributions(self, out: dict, predict, labels) -> list:
        """GeoCLIP's softmax over the whole gallery, each point with its country."""
        from geocli.predict.record import Distribution

        probs, coords = self.distribution(out)
        coords = coords.detach().double().cpu().numpy()
        codes = self.gallery.countries()
        return [Distribution("gallery", coords, p, codes) for p in probs.double().cpu().numpy()]

    def _negative_points(self, device) -> torch.Tensor:
        n = min(self.negatives, len(self.gallery))
        idx = torch.randint(len(self.gallery), (n,), device=self.gallery.coords.device)
        return self.gallery.coords[idx].to(device)

    @torch.no_grad()
    def distribution(self, out: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(probabilities (B, N) over the whole gallery, its coordinates (N, 2)), GeoCLIP's softmax."""
        if len(self.gallery) == 0:
            raise UsageError("the gallery head has an empty gallery; call set_gallery(coords) first")
        feats = self.gallery.embeddings(self.location_encoder, on_disk=not self.train_location_encoder)
        return gallery_softmax(out["image"], feats, float(self.logit_scale.exp())), self.gallery.coords

    @torch.no_grad()
    def topk(self, out: dict, k: int):
        """(probabilities (B, k), coordinates (B, k, 2)) over the gallery, with cached embeddings."""
        probs, coords = self.distribution(out)
        top, idx = probs.topk(min(k, len(self.gallery)), dim=-1)
        return top, coords[idx]


def _start_from_geoclip(projection: nn.Sequential, embed_dim: int, hidden: int, pretrained: bool) -> None:
    """GeoCLIP's image MLP into the projection: its columns on the first 768 inputs, zeros elsewhere."""
    if hidden != 768 or embed_dim < 768:
        raise UsageError("projection='geoclip' needs hidden=768 and a 768-d CLIP ViT-L/14 branch first in the fusion")
    if not pretrained:
        return  # a checkpoint being rebuilt: its own weights load next
    from geocli.geo.gallery import load_geoclip_image_mlp

    state = load_geoclip_image_mlp()
    with torch.no_grad():
        projection[0].weight.zero_()
        projection[0].weight[:, :768] = state["0.weight"]
        projection[0].bias.copy_(state["0.bias"])
        projection[2].weight.copy_(state["2.weight"])
        projection[2].bias.copy_(state["2.bias"])


@HEADS.register("retrieval")
class RetrievalHead(Head):
    """Reference-image kNN: MixVPR descriptor of the patch tokens, multi-similarity loss.

    Positives are images of the same place: batch "place" ids when given, else pairs within
    ``positive_km`` (25 m). Options: out_channels, out_rows, mixer_depth, mlp_ratio, alpha, beta,
    base, epsilon, positive_km, scale (softmax scale turning similarities into probabilities).
    """

    always_trained = False  # batches without "place" ids or close pairs teach it nothing
    location_priority = 21
    needs_tokens = True
    searches_references = True

    def __init__(self, spec: FeatureSpec, labels: LabelSpaces, out_channels: int = 64, out_rows: int = 4,
                 mixer_depth: int = 2, mlp_ratio: float = 1.0, alpha: float = 1.0, beta: float = 50.0,
                 base: float = 0.0, epsilon: float = 0.1, positive_km: float = VPR_RADIUS_KM, scale: float = 20.0):
        super().__init__()
        if not spec.token_dim or not spec.num_tokens:
            raise UsageError("the retrieval head needs patch tokens: use a timm ViT image branch as the first branch")
        self.mixvpr = MixVPR(spec.token_dim, spec.num_tokens, out_channels, out_rows, mixer_depth, mlp_ratio)
        self.ms = dict(alpha=alpha, beta=beta, base=base, epsilon=epsilon)
        self.positive_km, self.scale = positive_km, scale
        self.references: ReferenceIndex | None = None

    def set_references(self, index: ReferenceIndex) -> None:
        self.references = index

    def forward(self, features: dict) -> dict:
        if features.get("tokens") is None:
            raise UsageError("the retrieval head needs the image branch's patch tokens in this batch")
        return {"descriptor": self.mixvpr(features["tokens"])}

    def loss(self, out: dict, batch: dict, class_weights: dict | None = None):
        desc = out["descriptor"]
        if batch.get("place") is not None:
            same = torch.as_tensor(batch["place"], device=desc.device).long()
        elif batch.get("gps") is not None:
            g = _gps(batch, desc.device).double()
            same = pairwise_haversine_km(g[:, 0], g[:, 1], g[:, 0], g[:, 1]) <= self.positive_km
        else:
            return None
        return multi_similarity_loss(desc, same, **self.ms)

    @torch.no_grad()
    def topk(self, out: dict, k: int):
        """(probabilities (B, k), coordinates (B, k, 2)) of the nearest reference images."""
        if self.references is None or len(self.references) == 0:
            raise UsageError("the retrieval head has no reference images; call set_references(index) first")
        sims = out["descriptor"].float() @ self.references.descriptors.to(out["descriptor"].device).t()
        probs, idx = (self.scale * sims).softmax(-1).topk(min(k, len(self.references)), dim=-1)
        coords = torch.as_tensor(self.references.coords, dtype=torch.float32)[idx.cpu()]
        return probs, coords

    def locations(self, out: dict, k: int, predict, labels) -> list[list[tuple]]:
        return ranked_points(*self.topk(out, k))


def ranked_points(probs: torch.Tensor, coords: torch.Tensor) -> list[list[tuple]]:
    """``topk``'s (B, k) probabilities and (B, k, 2) points as location tuples per sample."""
    return [[(float(c[0]), float(c[1]), None, float(p)) for p, c in zip(pr, co)]
            for pr, co in zip(probs.float().cpu().numpy(), coords.float().cpu().numpy())]
