"""Seconds per photo: geocli's ``--model geoclip`` against the ``geoclip`` package's own ``predict``.

Both run the same CLIP weights on the same photos, interleaved photo by photo so machine load hits
all alike: ``GeoCLIP(clip_path=DIR).predict(path, top_k)`` (re-encodes the 100K gallery for every
photo), geocli exact (``--precision fp32``) and geocli with the image tower in bf16 (``--precision
bf16``: AMX / AVX-512 BF16 CPUs, CUDA) at batch 1, then each batched; how far bf16's answers are
from fp32's is printed too. geocli's CLIP feature cache is off (every photo
runs through the image tower, as in GeoCLIP); its gallery embeddings are computed once beforehand,
which is reported separately as the one-time cost. Without ``--clip-weights`` a randomly
initialised full-size ViT-L/14 is built (the same computation as the real weights). Prints JSON.

    python bench/bench_geoclip.py [--clip-weights DIR] [--photos DIR] [--n 4] [--batch-size 8] [--device cpu|cuda]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

VIT_L14 = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
               patch_size=14, image_size=224, projection_dim=768)
SMALL_TEXT = dict(hidden_size=32, intermediate_size=37, num_attention_heads=2, num_hidden_layers=1,
                  projection_dim=768, bos_token_id=0, eos_token_id=2)


def random_vit_l14(folder: Path) -> Path:
    """A full-size random CLIP ViT-L/14 image tower (small text tower: neither side reads it)."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    torch.manual_seed(0)
    CLIPModel(CLIPConfig(projection_dim=768, vision_config=VIT_L14, text_config=SMALL_TEXT)).save_pretrained(folder)
    CLIPImageProcessor().save_pretrained(folder)
    return folder


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _timed(fn, device: str) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def _geocli(clip: Path, device: str, precision: str):
    from geocli.predict.geoclip import geoclip_geolocator
    from geocli.predict.predictor import Predictor

    return Predictor(geoclip_geolocator(str(clip), device=device, cache=False, no_ocr=True, precision=precision))


def _agreement(exact: list[dict], fast: list[dict]) -> dict:
    """How bf16's answers differ from fp32's on the same photos."""
    same_top1 = sum(a["predictions"][0]["lat"] == b["predictions"][0]["lat"]
                    and a["predictions"][0]["lon"] == b["predictions"][0]["lon"] for a, b in zip(exact, fast))
    prob = max(abs(ga["probability"] - gb["probability"])
               for a, b in zip(exact, fast) for ga, gb in zip(a["predictions"], b["predictions"]))
    return {"bf16_same_top1": f"{same_top1}/{len(exact)}", "bf16_max_top5_probability_diff": round(prob, 6)}


def run(clip: Path, photos: list[str], batch_size: int, device: str) -> dict:
    """GeoCLIP's ``predict``, geocli exact (fp32) and geocli bf16, interleaved photo by photo."""
    import geoclip

    theirs = geoclip.GeoCLIP(clip_path=str(clip)).to(device).eval()
    ours = {p: _geocli(clip, device, p) for p in ("fp32", "bf16")}
    head = ours["fp32"].geolocator.model.heads["gallery"]
    gallery_s = _timed(lambda: (head.gallery.embeddings(head.location_encoder, on_disk=True), head.gallery.countries()),
                       device)
    for predictor in ours.values():  # warm-up: lazy imports, first allocations
        list(predictor.predict(photos[:1], top_k=5, batch_size=1))
    times: dict[str, list[float]] = {"geoclip": [], "fp32": [], "bf16": []}
    answers: dict[str, list[dict]] = {"fp32": [], "bf16": []}
    for path in photos:
        times["geoclip"].append(_timed(lambda: theirs.predict(path, top_k=5), device))
        for precision, predictor in ours.items():
            times[precision].append(_timed(lambda: answers[precision].extend(
                predictor.predict([path], top_k=5, batch_size=1)), device))
    yours = statistics.median(times["geoclip"])
    out = {"photos": len(photos), "device": device, "clip": str(clip), "geoclip_s_per_photo": round(yours, 4)}
    for precision, predictor in ours.items():
        mine = statistics.median(times[precision])
        batched = _timed(lambda: list(predictor.predict(photos, top_k=5, batch_size=batch_size)), device) / len(photos)
        out.update({f"geocli_{precision}_batch1_s_per_photo": round(mine, 4),
                    f"geocli_{precision}_batch{batch_size}_s_per_photo": round(batched, 4),
                    f"ratio_{precision}_batch1": round(yours / mine, 2),
                    f"ratio_{precision}_batch{batch_size}": round(yours / batched, 2)})
    return {**out, **_agreement(answers["fp32"], answers["bf16"]), "geocli_one_time_gallery_s": round(gallery_s, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip-weights", type=Path, default=None)
    parser.add_argument("--photos", type=Path, default=Path("/work/shared/data/sf-landmarks/images"))
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    photos = sorted(str(p) for p in args.photos.glob("*.jpg"))[: args.n]
    if not photos:
        sys.exit(f"no .jpg photos in {args.photos}")
    with tempfile.TemporaryDirectory() as tmp:
        clip = args.clip_weights or random_vit_l14(Path(tmp) / "vit-l14")
        print(json.dumps(run(clip, photos, args.batch_size, args.device), indent=2))


if __name__ == "__main__":
    main()
