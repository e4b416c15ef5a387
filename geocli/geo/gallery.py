"""GPS galleries and the GeoCLIP location encoder, loaded from the installed ``geoclip`` package.

GeoCLIP (Vivanco et al. 2023) ranks a fixed gallery of GPS coordinates by the cosine similarity
between an image embedding and each coordinate's embedding from a location encoder: Equal Earth
projection, random Fourier features at three scales (sigma 1, 16, 256), one MLP per scale, summed.
The ``geoclip`` wheel ships the trained encoder weights and the 100K-coordinate gallery; they are
read straight from its package folder (the package module itself is not imported: it pulls in
``transformers`` and a CLIP ViT-L/14 this tool does not need). Its weight files are torch pickles,
read with ``torch.load(weights_only=True)``, which restores tensors only and runs no code.

``GPSGallery`` caches the gallery's embeddings in memory and (for a frozen encoder) on disk, keyed
by the encoder's parameters and the coordinates: a query is one matrix product and a top-k, where
``geoclip``'s own ``predict`` re-encodes all 100K coordinates for every image. The country of each
gallery point (for country rankings and country evidence) is looked up once per gallery and cached.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from geocli.errors import WeightsNotFoundError
from geocli.weights.availability import geoclip_dir
from geocli.geo.distance import validate_coordinates

GEOCLIP_SIGMAS = (2**0, 2**4, 2**8)
# Equal Earth projection constants (Šavrič et al. 2018) as GeoCLIP applies them
_A1, _A2, _A3, _A4, _SF = 1.340264, -0.081106, 0.000893, 0.003796, 66.50336


def equal_earth(latlon: torch.Tensor) -> torch.Tensor:
    """(N, 2) (lat, lon) degrees -> GeoCLIP's scaled Equal Earth (x, y)."""
    lat, lon = torch.deg2rad(latlon[:, 0]), torch.deg2rad(latlon[:, 1])
    theta = torch.asin(math.sqrt(3.0) / 2 * torch.sin(lat))
    denom = 3 * (9 * _A4 * theta**8 + 7 * _A3 * theta**6 + 3 * _A2 * theta**2 + _A1)
    x = 2 * math.sqrt(3.0) * lon * torch.cos(theta) / denom
    y = _A4 * theta**9 + _A3 * theta**7 + _A2 * theta**3 + _A1 * theta
    return torch.stack((x, y), dim=1) * _SF / 180


class FourierFeatures(nn.Module):
    """Random Fourier features (cos, sin of 2π B v); ``b`` is fixed, saved with the weights."""

    def __init__(self, sigma: float, encoded_size: int = 256, input_size: int = 2):
        super().__init__()
        self.b = nn.Parameter(torch.randn(encoded_size, input_size) * sigma, requires_grad=False)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        vp = 2 * math.pi * v @ self.b.t()
        return torch.cat((torch.cos(vp), torch.sin(vp)), dim=-1)


class _Capsule(nn.Module):
    def __init__(self, sigma: float, hidden: int = 1024, out_dim: int = 512):
        super().__init__()
        self.capsule = nn.Sequential(
            FourierFeatures(sigma),
            nn.Linear(512, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Linear(hidden, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.capsule(x))


class LocationEncoder(nn.Module):
    """GeoCLIP's location encoder; parameter names match its weight file so it loads as is."""

    out_dim = 512

    def __init__(self, sigmas=GEOCLIP_SIGMAS):
        super().__init__()
        self.sigmas = tuple(sigmas)
        for i, s in enumerate(self.sigmas):
            self.add_module(f"LocEnc{i}", _Capsule(s))

    def forward(self, latlon: torch.Tensor) -> torch.Tensor:
        x = equal_earth(latlon.float())
        return sum(getattr(self, f"LocEnc{i}")(x) for i in range(len(self.sigmas)))


def _geoclip_file(*parts: str) -> Path:
    path = geoclip_dir().joinpath(*parts)
    if not path.is_file():
        raise WeightsNotFoundError(f"{path} is missing; reinstall it with: pip install --force-reinstall geoclip")
    return path


def load_geoclip_location_encoder() -> LocationEncoder:
    """The trained GeoCLIP location encoder, from the package's weight file."""
    state = torch.load(_geoclip_file("weights", "location_encoder_weights.pth"), map_location="cpu", weights_only=True)
    encoder = LocationEncoder()
    encoder.load_state_dict(state)
    return encoder


def load_geoclip_image_mlp() -> dict[str, torch.Tensor]:
    """GeoCLIP's image MLP (CLIP's 768-d features -> 768 -> ReLU -> 512) as a state dict."""
    return torch.load(_geoclip_file("weights", "image_encoder_mlp_weights.pth"), map_location="cpu", weights_only=True)


def load_geoclip_logit_scale() -> float:
    """GeoCLIP's learned log temperature (its logits are exp(scale) * cosine)."""
    value = torch.load(_geoclip_file("weights", "logit_scale_weights.pth"), map_location="cpu", weights_only=True)
    return float(value)


def load_geoclip_gallery() -> np.ndarray:
    """The 100K (lat, lon) gallery GeoCLIP ranks, float64 degrees."""
    coords = np.loadtxt(_geoclip_file("gps_gallery", "coordinates_100K.csv"), delimiter=",", skiprows=1)
    if not validate_coordinates(coords[:, 0], coords[:, 1]).all():
        raise ValueError("the GeoCLIP gallery holds invalid coordinates")
    return coords


class GPSGallery(nn.Module):
    """Gallery coordinates (a persistent buffer, saved with a model) and their cached embeddings."""

    def __init__(self, coords):
        super().__init__()
        coords = torch.as_tensor(np.asarray(coords, np.float32)).reshape(-1, 2)
        self.register_buffer("coords", coords)
        self._cache: torch.Tensor | None = None
        self._countries: list[str | None] | None = None

    def __len__(self) -> int:
        return self.coords.shape[0]

    @torch.no_grad()
    def embeddings(self, encoder: nn.Module, batch_size: int = 8192, on_disk: bool = False) -> torch.Tensor:
        """L2-normalised embedding of every gallery point, computed once and reused; ``on_disk``
        (a frozen encoder) also keeps them in geocli's cache across runs."""
        if self._cache is None or self._cache.device != self.coords.device:
            path = self._cache_path(encoder) if on_disk else None
            self._cache = _read_tensor(path, self.coords.device) if path else None
            if self._cache is None:
                chunks = [encoder(c) for c in self.coords.split(batch_size)]
                self._cache = F.normalize(torch.cat(chunks), dim=-1)
                if path:
                    _write_tensor(path, self._cache)
        return self._cache

    def _cache_path(self, encoder: nn.Module) -> Path:
        from geocli.store.embedding_cache import parameters_hash
        from geocli.weights.hub import cache_dir, digest

        return cache_dir("gallery") / f"embeddings-{digest(parameters_hash(encoder), self.coords_key())}.safetensors"

    def coords_key(self) -> str:
        import hashlib

        return hashlib.sha256(self.coords.detach().cpu().contiguous().numpy().tobytes()).hexdigest()[:24]

    def countries(self) -> list[str | None]:
        """The country code at every gallery point (cached on disk per gallery)."""
        if getattr(self, "_countries", None) is None or len(self._countries) != len(self):
            self._countries = gallery_countries(self.coords.detach().cpu().double().numpy(), self.coords_key())
        return self._countries

    def clear_cache(self) -> None:
        self._cache = None
        self._countries = None

    def set_coords(self, coords) -> None:
        """Replace the gallery (any size); the cached embeddings go with it."""
        coords = torch.as_tensor(np.asarray(coords, np.float32)).reshape(-1, 2)
        self.coords = coords.to(self.coords.device)
        self.clear_cache()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # the gallery is data, not architecture: take the saved one whatever its size
        saved = state_dict.get(prefix + "coords")
        if saved is not None:
            self.coords = torch.empty_like(saved, device=self.coords.device)
        self.clear_cache()  # new coordinates (or a new encoder loaded alongside) void the cache
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def gallery_softmax(image_features: torch.Tensor, gallery_features: torch.Tensor, scale: float) -> torch.Tensor:
    """GeoCLIP's distribution over the gallery: softmax of scale * cosine, (B, N)."""
    logits = scale * F.normalize(image_features.float(), dim=-1) @ gallery_features.t()
    return logits.softmax(dim=-1)


def gallery_topk(image_features: torch.Tensor, gallery_features: torch.Tensor, k: int, scale: float):
    """The top k of ``gallery_softmax``: (probabilities, indices)."""
    return gallery_softmax(image_features, gallery_features, scale).topk(k, dim=-1)


def gallery_countries(coords: np.ndarray, key: str) -> list[str | None]:
    """Country code per (lat, lon) row, looked up once per gallery ``key`` and kept in the cache."""
    import json

    from geocli.geo.countries import country_codes_at
    from geocli.weights.hub import cache_dir

    path = cache_dir("gallery") / f"countries-{key}.json"
    if path.is_file():
        codes = json.loads(path.read_text())
        if len(codes) == len(coords):
            return codes
    if len(coords) > 5000:
        from geocli.report.console import log

        log(f"looking up the country of each of the {len(coords):,} gallery points (once; cached)")
    codes = country_codes_at(coords[:, 0], coords[:, 1])
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(codes))
    os.replace(tmp, path)
    return codes


def _read_tensor(path: Path, device) -> torch.Tensor | None:
    if not path.is_file():
        return None
    from safetensors.torch import load_file

    return load_file(str(path))["emb"].to(device)


def _write_tensor(path: Path, tensor: torch.Tensor) -> None:
    from safetensors.torch import save_file

    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    save_file({"emb": tensor.detach().cpu().contiguous()}, str(tmp))
    os.replace(tmp, path)
