"""``--model geoclip`` against the authors' own code: the ``geoclip`` package's GeoCLIP and geocli's,
built from the same tiny random CLIP folder, rank the same gallery points with the same
probabilities. The fast test uses a 2,000-point slice of the gallery (GeoCLIP re-encodes its whole
gallery per photo); the realdata test runs real photos; the slow one the full ViT-L/14 and gallery."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from geoclip_helpers import tiny_clip_folder

geoclip = pytest.importorskip("geoclip")
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
if not DATA.is_dir():
    DATA = Path("/work/shared/data")
TOP = 5


def _photos(folder: Path, n: int) -> list[Path]:
    if n and not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    return sorted(folder.glob("images/**/*.jpg"))[:n]


def _generated(tmp_path: Path, n: int = 3) -> list[Path]:
    rng, paths = np.random.default_rng(0), []
    for i, size in enumerate([(320, 240), (240, 333), (500, 500)][:n]):
        pixels = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
        pixels[: size[1] // 2] //= 3  # structure, not just noise
        path = tmp_path / f"photo{i}.jpg"
        Image.fromarray(pixels).save(path, quality=90)
        paths.append(path)
    return paths


def _theirs(clip_dir: Path, gallery: torch.Tensor | None, paths: list[Path]):
    model = geoclip.GeoCLIP(clip_path=str(clip_dir)).eval()
    if gallery is not None:
        model.gps_gallery = gallery
    return [model.predict(str(p), top_k=TOP) for p in paths]


def _ours(clip_dir: Path, gallery: torch.Tensor | None, paths: list[Path], tmp_path: Path, batch_size: int = 2):
    from geocli.predict.geoclip import geoclip_geolocator
    from geocli.predict.predictor import Predictor

    geo = geoclip_geolocator(clip_weights=str(clip_dir), device="cpu", cache_dir=str(tmp_path / "cache"), no_ocr=True)
    if gallery is not None:
        geo.model.heads["gallery"].set_gallery(gallery.numpy())
    return list(Predictor(geo).predict([str(p) for p in paths], top_k=TOP, batch_size=batch_size))


def _agree(theirs, ours) -> tuple[float, float]:
    """Largest coordinate (degrees) and probability differences over all photos' top k."""
    coord, prob = 0.0, 0.0
    for (gps, p), rec in zip(theirs, ours):
        got = np.array([[g["lat"], g["lon"]] for g in rec["predictions"]])
        coord = max(coord, float(np.abs(got - gps.numpy()).max()))
        prob = max(prob, float(np.abs(np.array([g["probability"] for g in rec["predictions"]]) - p.numpy()).max()))
    return coord, prob


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    return tiny_clip_folder(tmp_path_factory.mktemp("tiny-clip"))


@pytest.fixture(scope="module")
def gallery():
    from geocli.geo.gallery import load_geoclip_gallery

    return torch.as_tensor(load_geoclip_gallery()[::200], dtype=torch.float32)


def test_geocli_matches_geoclip_on_the_same_weights(clip_dir, gallery, tmp_path):
    paths = _generated(tmp_path, 2)
    theirs, ours = _theirs(clip_dir, gallery, paths), _ours(clip_dir, gallery, paths, tmp_path)
    coord, prob = _agree(theirs, ours)
    assert coord < 1e-4 and prob < 1e-5, (coord, prob)
    rec = ours[0]
    assert all(g["country"] is None or len(g["country"]) == 2 for g in rec["predictions"])
    ranking = rec["country_head"]
    assert ranking and ranking[0]["probability"] >= ranking[-1]["probability"]
    assert sum(r["probability"] for r in ranking) <= 1 + 1e-6


def test_the_second_run_reads_clip_features_and_gallery_from_disk(clip_dir, gallery, tmp_path):
    paths = _generated(tmp_path, 2)
    first = _ours(clip_dir, gallery, paths, tmp_path)
    again = _ours(clip_dir, gallery, paths, tmp_path, batch_size=1)
    for a, b in zip(first, again):  # batch 2 then batch 1 from the cache: same guesses
        assert [(g["lat"], g["lon"]) for g in a["predictions"]] == [(g["lat"], g["lon"]) for g in b["predictions"]]
        assert np.allclose([g["probability"] for g in a["predictions"]], [g["probability"] for g in b["predictions"]],
                           atol=1e-6)
    assert any((tmp_path / "cache").iterdir())


@pytest.mark.realdata
@pytest.mark.parametrize("subset", ["sf-landmarks", "croatia-streetview"])
def test_geocli_matches_geoclip_on_real_photos(clip_dir, gallery, tmp_path, subset):
    paths = _photos(DATA / subset, 6)
    coord, prob = _agree(_theirs(clip_dir, gallery, paths), _ours(clip_dir, gallery, paths, tmp_path, 4))
    assert coord < 1e-4 and prob < 1e-5, (coord, prob)


@pytest.mark.slow
def test_full_size_vit_l14_and_full_gallery_agree(tmp_path):
    from geoclip.model.image_encoder import ImageEncoder  # noqa: F401  (the package's own ViT-L/14 shape)

    vision = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                  patch_size=14, image_size=224, projection_dim=768)
    folder = tiny_clip_folder(tmp_path / "vit-l14", vision=vision)
    paths = _photos(DATA / "sf-landmarks", 2) if DATA.is_dir() else _generated(tmp_path, 2)
    coord, prob = _agree(_theirs(folder, None, paths), _ours(folder, None, paths, tmp_path))
    assert coord < 1e-4 and prob < 1e-5, (coord, prob)


@pytest.mark.slow
def test_the_cli_matches_geoclip_on_the_whole_gallery(clip_dir, tmp_path):
    import json

    from click.testing import CliRunner

    from geocli.cli.main import cli

    paths = _generated(tmp_path, 1)
    result = CliRunner().invoke(cli, ["predict", str(paths[0]), "--model", "geoclip", "--clip-weights", str(clip_dir),
                                      "--format", "json", "--no-ocr", "--cache-dir", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    coord, prob = _agree(_theirs(clip_dir, None, paths), json.loads(result.stdout))
    assert coord < 1e-4 and prob < 1e-5, (coord, prob)
