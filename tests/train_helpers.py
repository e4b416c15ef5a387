"""Tiny generated training sets and configs for the train tests (offline, seconds)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from geocli.config import TrainConfig

#: Three regions, each with its own dominant colour so a model can actually learn them.
REGIONS = [(45.8, 16.0, (200, 40, 40)), (48.85, 2.35, (40, 200, 40)), (40.4, -3.7, (40, 40, 200))]
SCENES = ("urban", "natural", "indoor")
TINY_VIT = {"pretrained": False, "model_kwargs": {"img_size": 32, "patch_size": 8, "embed_dim": 32,
                                                  "depth": 2, "num_heads": 2}}


def make_manifest(root: Path, locations: int = 6, views: int = 3, seed: int = 0) -> Path:
    """PNG photos (40 px) at ``locations`` places per region, ``views`` per place, with location ids
    and a scene label per region (so scene heads have something to learn)."""
    rng = np.random.default_rng(seed)
    (root / "img").mkdir(parents=True, exist_ok=True)
    rows = ["image,lat,lon,location_id,scene"]
    for r, (lat, lon, colour) in enumerate(REGIONS):
        for loc in range(locations):
            plat, plon = lat + rng.normal(0, 0.3), lon + rng.normal(0, 0.3)
            for v in range(views):
                pixels = (np.asarray(colour)[None, None] + rng.normal(0, 30, (40, 40, 3))).clip(0, 255)
                name = f"img/r{r}_l{loc}_v{v}.png"
                Image.fromarray(pixels.astype(np.uint8)).save(root / name)
                rows.append(f"{name},{plat:.5f},{plon:.5f},r{r}l{loc},{SCENES[r]}")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root / "manifest.csv"


def tiny_config(tmp_path: Path, **overrides) -> TrainConfig:
    """A frozen tiny ViT run over a generated manifest, cache and output inside ``tmp_path``."""
    manifest = tmp_path / "data" / "manifest.csv"
    if not manifest.is_file():
        make_manifest(tmp_path / "data")
    settings = dict(data=str(manifest), out=str(tmp_path / "run"), rgb_model="vit_tiny_patch16_224",
                    branch_options={"rgb": dict(TINY_VIT)}, epochs=2, batch_size=8, lr=1e-2,
                    cache_dir=str(tmp_path / "cache"), seed=0)
    settings.update(overrides)
    return TrainConfig.from_dict(settings)


def ddp_worker(rank: int, world: int, port: int, tmp: str, settings: dict) -> None:
    """One torchrun-like process: the env vars torchrun sets, then the ordinary ``train`` call."""
    import json
    import os

    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    from geocli.training.distributed import World, shutdown
    from geocli.training.trainer import train

    result = train(TrainConfig.from_dict(settings), progress=False)
    Path(tmp, f"rank{rank}.json").write_text(json.dumps({"seen": result.seen, "world": result.world_size,
                                                         "history": result.history}))
    shutdown(World(rank, world, rank))
