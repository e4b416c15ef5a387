"""GPS gallery (GeoCLIP location encoder from the geoclip package) and MixVPR reference retrieval."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from geocli.heads.mixvpr import MixVPR
from geocli.heads.references import ReferenceIndex, recall_from_neighbours
from geocli.geo.gallery import GPSGallery, LocationEncoder, equal_earth, gallery_topk

needs_geoclip = pytest.mark.skipif(importlib.util.find_spec("geoclip") is None, reason="geoclip not installed")


@needs_geoclip
def test_package_files_load_without_the_hub():
    from geocli.geo.gallery import load_geoclip_gallery, load_geoclip_location_encoder, load_geoclip_logit_scale

    coords = load_geoclip_gallery()
    assert coords.shape == (100_000, 2) and np.abs(coords[:, 0]).max() <= 90
    enc = load_geoclip_location_encoder()
    feats = enc(torch.tensor([[48.85, 2.35], [48.86, 2.34], [-33.9, 151.2]]))
    assert feats.shape == (3, 512)
    cos = torch.nn.functional.cosine_similarity
    assert cos(feats[0], feats[1], dim=0) > cos(feats[0], feats[2], dim=0)  # trained: nearby points agree
    assert 0 < load_geoclip_logit_scale() < 10


def test_location_encoder_matches_its_formula():
    """Capsule by capsule from the raw parameters: Fourier features of the Equal Earth point, MLP, sum."""
    torch.manual_seed(0)
    enc = LocationEncoder()
    x = torch.tensor([[10.0, 20.0], [-45.0, 170.0]])
    p = equal_earth(x)
    total = 0
    for i in range(3):
        sd = {k.split(f"LocEnc{i}.")[1]: v for k, v in enc.state_dict().items() if k.startswith(f"LocEnc{i}.")}
        vp = 2 * np.pi * p @ sd["capsule.0.b"].t()
        h = torch.cat([torch.cos(vp), torch.sin(vp)], dim=-1)
        for j in (1, 3, 5):
            h = torch.relu(h @ sd[f"capsule.{j}.weight"].t() + sd[f"capsule.{j}.bias"])
        total = total + h @ sd["head.0.weight"].t() + sd["head.0.bias"]
    assert torch.allclose(enc(x), total, atol=1e-4)
    assert torch.allclose(equal_earth(torch.tensor([[0.0, 0.0]])), torch.zeros(1, 2))


@pytest.mark.slow
@needs_geoclip
def test_location_encoder_equals_geoclip_own():
    from geoclip.model.location_encoder import LocationEncoder as Theirs

    from geocli.geo.gallery import load_geoclip_location_encoder

    x = torch.tensor([[10.0, 20.0], [-45.0, 170.0], [60.0, -150.0]])
    assert torch.allclose(load_geoclip_location_encoder()(x), Theirs(from_pretrained=True)(x), atol=1e-4)


def test_gallery_caches_and_matches_reencoding():
    torch.manual_seed(0)
    enc = LocationEncoder()
    gallery = GPSGallery(np.random.default_rng(0).uniform([-80, -180], [80, 180], size=(300, 2)))
    first = gallery.embeddings(enc)
    assert gallery.embeddings(enc) is first  # reused, not recomputed
    query = torch.randn(2, 512)
    cached = gallery_topk(query, first, 5, 10.0)
    fresh = gallery_topk(query, torch.nn.functional.normalize(enc(gallery.coords), dim=-1), 5, 10.0)
    assert torch.equal(cached.indices, fresh.indices)
    gallery.load_state_dict({"coords": torch.zeros(7, 2)})
    assert len(gallery) == 7 and gallery.embeddings(enc).shape == (7, 512)  # new data, new cache


def test_mixvpr_descriptor():
    torch.manual_seed(0)
    agg = MixVPR(in_channels=32, in_tokens=16, out_channels=8, out_rows=3)
    desc = agg(torch.randn(5, 16, 32))
    assert desc.shape == (5, 24) and torch.allclose(desc.norm(dim=1), torch.ones(5))
    assert len(agg.mixer) == 2
    with pytest.raises(ValueError, match="16 patch tokens"):
        agg(torch.randn(1, 9, 32))


def test_recall_within_25_m():
    refs = np.array([[45.0, 16.0], [45.0002, 16.0], [46.0, 16.0]])  # ~22 m apart, then ~111 km
    queries = np.array([[45.0, 16.0001], [46.0, 16.0]])  # ~8 m from ref 0; exactly ref 2
    neighbours = np.array([[2, 1, 0], [0, 1, 2]])
    r = recall_from_neighbours(neighbours, refs, queries, ks=(1, 2, 3))
    assert r == {"recall@1": 0.0, "recall@2": 0.5, "recall@3": 1.0}


def test_reference_index_search_and_recall():
    desc = torch.eye(4)
    index = ReferenceIndex(desc, [[0, 0], [0, 1], [0, 2], [0, 3]])
    sims, idx = index.search(torch.eye(4)[[2, 0]], k=2)
    assert idx[:, 0].tolist() == [2, 0] and torch.allclose(sims[:, 0], torch.ones(2))
    assert index.recall_at_k(torch.eye(4), [[0, 0], [0, 1], [0, 2], [5, 5]], ks=(1,)) == {"recall@1": 0.75}
