"""Is the GPU really used? Run on a CUDA machine; elsewhere it says so and exits cleanly (code 0).

Prints one JSON object with:
- ``branches``: two ViT branches (random init, no download) run alone one after the other vs side by
  side through ``geocli.model.run_side_by_side`` (each on its own CUDA stream, joined once): the
  overlap ratio is (alone + alone) / side by side; 1.0 means no overlap, 2.0 perfect overlap;
- ``precision``: forward img/s in fp32 and under bf16 autocast (as ``geocli train --amp`` runs);
- ``peak_memory_mib``: the peak GPU memory of each measurement;
- ``ddp_step``: one DistributedDataParallel training step in a one-process NCCL group (what each
  torchrun rank does), its time and loss;
- ``ocr``: OCR photos/s on CUDA (the engine ``--device cuda`` picks: RapidOCR on onnxruntime-gpu,
  else EasyOCR) vs RapidOCR on the CPU, and which provider each really ran on.

    python bench/gpu_check.py --batch 64 --model vit_small_patch16_224
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time


def timed(fn, repeats: int) -> float:
    """Median seconds of ``fn`` (after one warm-up), synchronised so GPU work is counted."""
    import statistics

    import torch

    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def peak_mib(fn) -> float:
    import torch

    torch.cuda.reset_peak_memory_stats()
    fn()
    torch.cuda.synchronize()
    return round(torch.cuda.max_memory_allocated() / 2**20, 1)


def branches(model_name: str, batch: int, repeats: int) -> dict:
    import timm
    import torch

    from geocli.model import run_side_by_side

    dev = torch.device("cuda")
    a, b = (timm.create_model(model_name, pretrained=False, num_classes=0).to(dev).eval() for _ in range(2))
    x = torch.randn(batch, 3, 224, 224, device=dev)
    jobs = [lambda: ({"a": a(x)}, None), lambda: ({"b": b(x)}, None)]
    with torch.no_grad():
        alone = timed(lambda: [job() for job in jobs], repeats)
        side = timed(lambda: run_side_by_side(jobs, dev), repeats)
        memory = {"alone": peak_mib(lambda: [job() for job in jobs]), "side_by_side": peak_mib(lambda: run_side_by_side(jobs, dev))}
    return {"model": model_name, "batch": batch, "alone_s": round(alone, 4), "side_by_side_s": round(side, 4),
            "overlap_ratio": round(alone / side, 3), "peak_memory_mib": memory}


def precision(model_name: str, batch: int, repeats: int) -> dict:
    import timm
    import torch

    model = timm.create_model(model_name, pretrained=False, num_classes=0).cuda().eval()
    x = torch.randn(batch, 3, 224, 224, device="cuda")

    def run(bf16: bool):
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            model(x)

    fp32, bf16 = timed(lambda: run(False), repeats), timed(lambda: run(True), repeats)
    return {"fp32_img_per_s": round(batch / fp32), "bf16_img_per_s": round(batch / bf16), "speedup": round(fp32 / bf16, 2),
            "peak_memory_mib": {"fp32": peak_mib(lambda: run(False)), "bf16": peak_mib(lambda: run(True))}}


def ddp_step(model_name: str, batch: int) -> dict:
    import timm
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29533")
    dist.init_process_group("nccl", rank=0, world_size=1)
    try:
        model = DDP(timm.create_model(model_name, pretrained=False, num_classes=10).cuda(), device_ids=[0])
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        x, y = torch.randn(batch, 3, 224, 224, device="cuda"), torch.randint(0, 10, (batch,), device="cuda")

        def step():
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            return float(loss)

        seconds = timed(step, 3)
        return {"backend": "nccl", "world": 1, "step_s": round(seconds, 4), "img_per_s": round(batch / seconds),
                "loss": round(step(), 4), "peak_memory_mib": peak_mib(step)}
    finally:
        dist.destroy_process_group()


def ocr(photos: int) -> dict:
    """OCR photos/s on CUDA vs CPU over generated signs, with the engine geocli picks for
    ``--device cuda`` (RapidOCR on onnxruntime-gpu, else EasyOCR on torch) and RapidOCR on the CPU."""
    from PIL import Image, ImageDraw

    from geocli.ocr import build_ocr_engine
    from geocli.ocr.engines import engine_for_device

    images = []
    for i in range(photos):
        img = Image.new("RGB", (640, 480), (240, 240, 240))
        ImageDraw.Draw(img).text((40, 200), f"HOTEL ZAGREB {i}  +385 1 4567", fill=(0, 0, 0))
        images.append(img)
    gpu_name, notice = engine_for_device("rapidocr", "cuda")
    out = {"gpu_engine": gpu_name, "notice": notice}
    for label, name, device in (("gpu", gpu_name, "cuda"), ("cpu", "rapidocr", "cpu")):
        try:
            engine = build_ocr_engine(name, device=device)
        except Exception as exc:  # models missing offline, or the engine not installed
            return {**out, "skipped": " ".join(str(exc).split())}
        out[f"{label}_provider"] = getattr(engine, "provider", device)
        engine.read_batch(images[:2])  # warm-up: sessions and CUDA kernels
        t0 = time.perf_counter()
        engine.read_batch(images)
        out[f"{label}_photos_per_s"] = round(len(images) / (time.perf_counter() - t0), 2)
    out["speedup"] = round(out["gpu_photos_per_s"] / out["cpu_photos_per_s"], 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="vit_small_patch16_224")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--ocr-photos", type=int, default=20)
    args = ap.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; nothing was measured (run it on a machine with a GPU)", file=sys.stderr)
        return
    report = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
    report["branches"] = branches(args.model, args.batch, args.repeats)
    report["precision"] = precision(args.model, args.batch, args.repeats)
    report["ddp_step"] = ddp_step(args.model, args.batch)
    report["ocr"] = ocr(args.ocr_photos)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
