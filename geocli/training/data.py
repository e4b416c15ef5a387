"""What training feeds on: splits, place ids, samples (label spaces and targets: heads.labels).

Validation never mixes views of one place across the split: the default is a group split when the
manifest has location ids (``location_id`` / ``sequence``), else spatial K-means clusters.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from geocli.config import TrainConfig
from geocli.datasets import Manifest, check_images, load_dataset
from geocli.datasets.splits import choose_split, has_groups, split_manifest
from geocli.errors import UsageError


def load_splits(cfg: TrainConfig, log: Callable[[str], None]) -> tuple[Manifest, Manifest, str]:
    """(train, val, how): from ``--val`` when given, else a split of ``--data``. Shards give
    ``StreamedRows`` (``geocli.training.shard_data``): the rows without the photos, which stream."""
    from geocli.datasets.shards import is_shard_spec

    shards = [bool(spec) and is_shard_spec(spec) for spec in (cfg.data, cfg.val)]
    if any(shards):
        if cfg.val and shards[0] != shards[1]:
            raise UsageError(f"--data {cfg.data} and --val {cfg.val}: give both as shards or both as manifests")
        from geocli.training.distributed import current_world
        from geocli.training.shard_data import check_streamable, shard_splits

        check_streamable(cfg, current_world())
        return shard_splits(cfg.data, cfg.val, cfg.val_fraction, cfg.split, current_world())
    data = check_images(load_dataset(cfg.data, root=cfg.root, metadata=cfg.metadata), cfg.skip_missing, log)
    if cfg.val:
        val = check_images(load_dataset(cfg.val, root=cfg.root), cfg.skip_missing, log)
        return data, val, f"--val {cfg.val}"
    how = choose_split(data, cfg.split, log)
    train, val = split_manifest(data, how, cfg.val_fraction, cfg.seed)
    return train, val, how


def place_ids(manifest: Manifest, radius_km: float) -> np.ndarray:
    """A place id per photo: its ``location_id`` / ``sequence`` group where the manifest has them,
    else photos chained together when within ``radius_km`` of each other (single linkage)."""
    if has_groups(manifest):
        keys = [g if g is not None else f"__row{i}" for i, g in enumerate(manifest.group)]
        return np.unique(np.asarray(keys, dtype=object), return_inverse=True)[1].astype(np.int64)
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    from geocli.geo.distance import km_to_chord, to_unit_vectors

    xyz = to_unit_vectors(manifest.lat, manifest.lon)
    pairs = cKDTree(xyz).query_pairs(float(km_to_chord(radius_km)), output_type="ndarray")
    n = len(manifest)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n)) if len(pairs) else coo_matrix((n, n))
    return connected_components(graph, directed=False)[1].astype(np.int64)


class TrainDataset(torch.utils.data.Dataset):
    """Sample i: live branches' pixel tensors (decoded, transformed), cached branches' vectors,
    the targets, and "index" (so a rank's shard can be checked). ``maps[name]`` (path -> image)
    replaces the photo as that branch's input (rendered segmentation maps); ``readers[name]``
    (row, mask value) -> input turns a cached row into the input of a branch that runs on its cache."""

    def __init__(self, manifest: Manifest, targets: dict, transforms: dict, cached: dict, maps: dict | None = None,
                 readers: dict | None = None):
        self.manifest, self.targets, self.transforms, self.cached = manifest, targets, transforms, cached
        self.maps, self.readers = maps or {}, readers or {}

    def __len__(self) -> int:
        return len(self.manifest)

    def __getitem__(self, i: int) -> dict:
        item: dict = {"index": i}
        for key, values in self.targets.items():
            item[key] = _target(values, i)
        for name, (emb, mask) in self.cached.items():
            if name in self.readers:  # the branch itself reads its cache row (see Branch.runs_on_cache)
                item[name] = self.readers[name](emb[i], None if mask is None else mask[i])
                continue
            item[name] = emb[i]
            if mask is not None:
                item[f"{name}_mask"] = bool(mask[i])
        if self.transforms:
            item.update({name: tf(self._source(name, i)) for name, tf in self.transforms.items()})
        return item

    def _source(self, name: str, i: int):
        path = self.manifest.images[i]
        if name in self.maps:
            return self.maps[name][path]
        from geocli.images import open_image

        return open_image(path)


def _target(values, i: int):
    """Sample ``i``'s target: a class index (int), a float vector (tensor: "gps"), or one class index
    per geocell partition ({name: int})."""
    if isinstance(values, dict):
        return {name: int(v[i]) for name, v in values.items()}
    if np.issubdtype(np.asarray(values).dtype, np.integer):
        return int(values[i])
    return torch.as_tensor(values[i])


def train_transform(preprocess: dict, cfg: TrainConfig, label_map: bool = False):
    """The run's augmentation (``Preprocess.augment``) on a branch's own size and normalisation.
    Horizontal flips are off by default: mirrored text and driving side are geo cues."""
    from geocli.branches.base import Preprocess

    return Preprocess.from_dict(preprocess).augment(cfg.crop_scale, cfg.rotation, cfg.flip, cfg.color_jitter, label_map)


def render_label_maps(module, paths: list[str], batch_size: int, progress=None) -> dict:
    """path -> rendered segmentation map, segmented once per run for a seg branch that trains live
    (a TransLocator pair). Maps are shrunk (nearest neighbour) to the branch's resize size."""
    from PIL import Image

    from geocli.images import open_image, resize_to, short_side_size

    pre = module.preprocess
    side = int(round(pre.image_size / pre.crop_pct))
    out = {}
    for start in range(0, len(paths), batch_size):
        chunk = paths[start:start + batch_size]
        for path, rendered in zip(chunk, module.render_maps([open_image(p) for p in chunk], chunk)):
            out[path] = resize_to(rendered, short_side_size(rendered.size, side), Image.NEAREST)
        if progress is not None:
            progress(len(chunk))
    return out
