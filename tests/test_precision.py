"""Prediction precision: fp32 is exact, bf16 runs the image towers under bf16 autocast (CPU or
CUDA) with the heads in fp32 and its own embedding cache, auto picks bf16 on CUDA only."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from geocli.errors import UsageError
from geocli.runtime import encoder_precision, full_precision, resolve_precision

pytest.importorskip("geoclip")
from geoclip_helpers import tiny_clip_folder  # noqa: E402


def test_auto_is_bf16_on_cuda_only_and_names_are_checked():
    assert resolve_precision(torch.device("cpu"), "auto") == "fp32"
    assert resolve_precision(torch.device("cuda"), "auto") == "bf16"
    assert resolve_precision(torch.device("cpu"), "bf16") == "bf16"
    assert resolve_precision(torch.device("cuda"), "fp32") == "fp32"
    with pytest.raises(UsageError, match="auto, fp32, bf16"):
        resolve_precision(torch.device("cpu"), "fp16")


def test_bf16_context_casts_matmuls_and_full_precision_undoes_it():
    a, b = torch.randn(4, 8), torch.randn(8, 3)
    cpu = torch.device("cpu")
    with encoder_precision(cpu, "bf16"):
        assert (a @ b).dtype == torch.bfloat16
        with full_precision(cpu):
            assert (a @ b).dtype == torch.float32
    with encoder_precision(cpu, "fp32"):
        assert (a @ b).dtype == torch.float32


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    return tiny_clip_folder(tmp_path_factory.mktemp("tiny-clip"))


def _photos(tmp_path: Path) -> list[str]:
    rng, out = np.random.default_rng(1), []
    for i in range(3):
        pixels = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
        pixels[:120] //= 4
        path = tmp_path / f"p{i}.jpg"
        Image.fromarray(pixels).save(path)
        out.append(str(path))
    return out


def _predict(clip_dir, tmp_path, precision: str, cache_dir: Path):
    from geocli.predict.geoclip import geoclip_geolocator
    from geocli.predict.predictor import Predictor

    geo = geoclip_geolocator(clip_weights=str(clip_dir), device="cpu", cache_dir=str(cache_dir), no_ocr=True,
                             precision=precision)
    from geocli.geo.gallery import load_geoclip_gallery

    geo.model.heads["gallery"].set_gallery(load_geoclip_gallery()[::200])
    return geo, list(Predictor(geo).predict(_photos(tmp_path), top_k=3, batch_size=3))


def test_bf16_geoclip_keeps_fp32_probabilities_and_its_own_cache(clip_dir, tmp_path):
    cache = tmp_path / "cache"
    geo32, exact = _predict(clip_dir, tmp_path, "fp32", cache)
    geo16, fast = _predict(clip_dir, tmp_path, "bf16", cache)
    assert "(fp32)" in geo32.status_lines()[0] and "(bf16)" in geo16.status_lines()[0]
    folders = sorted(p.name for p in cache.iterdir())
    assert len(folders) == 2 and sum("bf16" in f for f in folders) == 1  # fp32 vectors never read as bf16 ones
    for a, b in zip(exact, fast):
        pa = np.array([g["probability"] for g in a["predictions"]])
        pb = np.array([g["probability"] for g in b["predictions"]])
        assert pb.sum() <= 1 + 1e-6 and np.all(np.diff(pb) <= 0)
        assert np.abs(pa - pb).max() < 0.05  # the towers' rounding moves probabilities a little, not a lot


def test_heads_compute_in_fp32_under_autocast(clip_dir):
    from geocli.predict.geoclip import build_geoclip

    model = build_geoclip(str(clip_dir), device="cpu")
    pixels = torch.randn(2, 3, *[model.branches["clip"].vision.config.image_size] * 2)
    with torch.no_grad(), encoder_precision(torch.device("cpu"), "bf16"):
        out = model({"clip": pixels})
    assert out["embedding"].dtype == torch.float32 and out["heads"]["gallery"]["image"].dtype == torch.float32


def test_bf16_on_a_cpu_without_bf16_units_says_it_will_be_slow(clip_dir, tmp_path, monkeypatch):
    import geocli.predict.checkpoint_geolocator as located
    from geocli.predict.geoclip import geoclip_geolocator

    monkeypatch.setattr(located, "cpu_has_bf16", lambda: False)
    geo = geoclip_geolocator(clip_weights=str(clip_dir), device="cpu", cache_dir=str(tmp_path / "c"), no_ocr=True,
                             precision="bf16")
    assert any("no bf16 matrix units" in line for line in geo.status_lines())
