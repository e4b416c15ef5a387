"""Zero-shot CLIP geolocation: which country, which big city and which kind of scene a photo shows.

Prompts name every country with cities in the GeoNames gazetteer ('a photo taken in Croatia.')
and the ``n_cities`` most populous cities ('a photo taken in Zagreb, Croatia.'); their text
embeddings are computed once per model and cached on disk by the CLIP branch.
"""
from __future__ import annotations

import contextlib
import logging
from functools import lru_cache
from typing import Sequence

import torch
from PIL import Image

from geocli.config import DEFAULT_SCENES
from geocli.errors import WeightsNotFoundError
from geocli.evidence.gazetteer import Place, country_points, default_gazetteer
from geocli.geo.countries import country

COUNTRY_TEMPLATE = "a photo taken in {}."
CITY_TEMPLATE = "a photo taken in {}, {}."
SCENES = dict(zip(DEFAULT_SCENES, ("a photo of an indoor scene.", "a photo of nature, landscape or wilderness.",
                                    "a photo of a city street or buildings.")))
TOP_PLACES = 5


@contextlib.contextmanager
def _quiet_logging():
    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        yield
    finally:
        logging.disable(previous)


@lru_cache(maxsize=4)
def biggest_cities(n: int) -> tuple[Place, ...]:
    """The ``n`` most populous cities of the gazetteer."""
    cities = {p for places in default_gazetteer().index.values() for p, _ in places if p.kind == "city"}
    return tuple(sorted(cities, key=lambda p: (-p.population, p.name))[:n])


class ZeroShotCLIP:
    """An open_clip model (via the CLIP branch) scoring photos against place and scene prompts."""

    def __init__(self, model: str, pretrained: str | None, model_cfg: dict | None = None,
                 device: str | None = None, n_cities: int = 1000, batch_size: int = 32) -> None:
        from geocli.runtime import resolve_device
        from geocli.branches.clip import CLIPBranch

        if pretrained is None and model_cfg is None:
            raise WeightsNotFoundError(f"no CLIP weights named for {model}")
        with _quiet_logging():  # open_clip logs download failures itself; ours is the one line
            self.branch = CLIPBranch(model=model, pretrained=pretrained, model_cfg=model_cfg).eval()
        self.branch.to(resolve_device(device))
        self.batch_size = batch_size
        self.codes = sorted(c for c in country_points() if country(c) is not None)
        self.cities = biggest_cities(n_cities)

    def _prompts(self) -> tuple[list[str], list[str]]:
        countries = [COUNTRY_TEMPLATE.format(country(c).name) for c in self.codes]
        cities = [CITY_TEMPLATE.format(p.name, country(p.country).name if country(p.country) else p.country)
                  for p in self.cities]
        return countries, cities

    @torch.no_grad()
    def embed(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """L2-normalised image embeddings (N, D), in batches."""
        transform = self.branch.transform()
        parts = []
        for i in range(0, len(images), self.batch_size):
            x = torch.stack([transform(img.convert("RGB")) for img in images[i:i + self.batch_size]])
            parts.append(self.branch(x.to(self.branch.device)).float())
        return torch.cat(parts)

    def _softmax(self, emb: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        text = self.branch.text_embeddings(prompts).float()
        return (self.branch.logit_scale * emb @ text.T).softmax(dim=-1).cpu()

    def predict(self, images: Sequence[Image.Image]) -> list[dict]:
        """Per image: {"countries": {code: p}, "places": [(lat, lon, code, p)], "scene": {label, probability}}."""
        emb = self.embed(images)
        country_prompts, city_prompts = self._prompts()
        pc, pcity = self._softmax(emb, country_prompts), self._softmax(emb, city_prompts)
        ps = self._softmax(emb, list(SCENES.values()))
        return [self._one(pc[i], pcity[i], ps[i]) for i in range(len(images))]

    def _one(self, pc: torch.Tensor, pcity: torch.Tensor, ps: torch.Tensor) -> dict:
        top = pcity.topk(min(TOP_PLACES, len(self.cities)))
        places = [(self.cities[j].lat, self.cities[j].lon, self.cities[j].country, float(p))
                  for p, j in zip(top.values.tolist(), top.indices.tolist())]
        scene = int(ps.argmax())
        return {"countries": {c: float(p) for c, p in zip(self.codes, pc.tolist())}, "places": places,
                "scene": {"label": list(SCENES)[scene], "probability": round(float(ps[scene]), 4)}}
