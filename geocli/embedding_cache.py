"""On-disk embedding cache for frozen branches: retraining heads never re-encodes an image.

An entry is keyed by the image's content hash (SHA-256 of its bytes: renaming or moving a photo
keeps its entry, editing it does not) inside a folder keyed by the branch: its registry name,
full constructor options, preprocessing and the fingerprint of any local weights file. Entries are
written in shards (``shard-<id>.safetensors``: "emb" (n, D), optional "mask" (n,), the content
hashes in the metadata) -- never pickle. Shards are written to a temporary name and renamed, so
several processes (distributed ranks) can fill one folder at the same time.
"""
from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import Callable, Sequence

import torch

from geocli.hub import cache_dir, digest, file_fingerprint

CACHE_VERSION = 1
_HASH_MEMO: dict[tuple, str] = {}


def content_hash(path: str | os.PathLike) -> str:
    """SHA-256 of the file's bytes, memoised per (path, size, mtime) within this process."""
    st = os.stat(path)
    key = (os.fspath(path), st.st_size, st.st_mtime_ns)
    if key not in _HASH_MEMO:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _HASH_MEMO[key] = h.hexdigest()
    return _HASH_MEMO[key]


def bytes_hash(data: bytes) -> str:
    """``content_hash`` of an image held in memory (a shard's ``KEY.jpg``): the same key as its file."""
    return hashlib.sha256(data).hexdigest()


def branch_key(kind: str, options: dict, preprocess: dict, module: torch.nn.Module | None = None) -> str:
    """Cache-folder name for a branch: what it is, how it was built, how it sees pixels.

    A local weights file adds its fingerprint; a branch with no pretrained weights at all (random
    init) adds a hash of its parameters, since its options alone do not pin its outputs down.
    """
    weights = options.get("weights") or options.get("pretrained")
    fingerprint = file_fingerprint(weights) if isinstance(weights, str) and Path(weights).is_file() else None
    if not weights and module is not None:
        fingerprint = parameters_hash(module)
    return f"{kind}-{digest(CACHE_VERSION, kind, options, preprocess, fingerprint)}"


def branch_cache(cfg, module: torch.nn.Module, root: str | os.PathLike | None = None,
                 tokens: bool = False) -> "EmbeddingCache":
    """The cache of a configured branch (``BranchConfig`` + its module). Training and prediction
    both open it here, so prediction finds exactly the vectors training stored; ``tokens``: rows
    that also carry the patch tokens (a separate cache)."""
    kind = f"{cfg.registry_name}+tokens" if tokens else cfg.registry_name
    return EmbeddingCache(branch_key(kind, cfg.options, cfg.preprocess, module), root)


def parameters_hash(module: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:24]


class EmbeddingCache:
    """Vectors of one branch, by image content hash. ``folder`` defaults to geocli's cache dir."""

    def __init__(self, key: str, root: str | os.PathLike | None = None):
        self.folder = Path(root) / key if root else cache_dir("embeddings", key)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._index: dict[str, tuple[Path, int]] = {}
        self._seen: set[str] = set()
        self.refresh()

    def refresh(self) -> None:
        """Pick up shards written since (by this or another process)."""
        from safetensors import safe_open

        for shard in sorted(self.folder.glob("shard-*.safetensors")):
            if shard.name in self._seen:
                continue
            with safe_open(str(shard), framework="pt") as f:
                keys = json.loads(f.metadata()["keys"])
            self._index.update({k: (shard, i) for i, k in enumerate(keys) if k not in self._index})
            self._seen.add(shard.name)

    def __contains__(self, key: str) -> bool:
        return key in self._index

    def __len__(self) -> int:
        return len(self._index)

    def missing(self, keys: Sequence[str]) -> list[str]:
        return [k for k in dict.fromkeys(keys) if k not in self._index]

    def put(self, keys: Sequence[str], emb: torch.Tensor, mask: torch.Tensor | None = None) -> Path:
        """Write one shard atomically; ``mask`` (bool) marks rows where the branch has content."""
        from safetensors.torch import save_file

        tensors = {"emb": emb.detach().float().cpu().contiguous()}
        if mask is not None:
            tensors["mask"] = mask.detach().to(torch.uint8).cpu().contiguous()
        name = f"shard-{uuid.uuid4().hex}.safetensors"
        tmp = self.folder / f".{name}.tmp"
        save_file(tensors, str(tmp), metadata={"keys": json.dumps(list(keys))})
        os.replace(tmp, self.folder / name)
        self.refresh()
        return self.folder / name

    def get(self, keys: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Stacked (N, D) vectors for ``keys`` (all must be present) and their mask, or None."""
        from safetensors.torch import load_file

        shards = {shard for shard, _ in (self._index[k] for k in keys)}
        loaded = {s: load_file(str(s)) for s in shards}
        emb = torch.stack([loaded[s]["emb"][i] for s, i in (self._index[k] for k in keys)])
        if not all("mask" in t for t in loaded.values()):
            return emb, None
        mask = torch.stack([loaded[s]["mask"][i] for s, i in (self._index[k] for k in keys)]).bool()
        return emb, mask


def cached_embeddings(
    cache: EmbeddingCache, paths: Sequence[str], encode: Callable[[list[str]], tuple], batch_size: int = 64,
    progress: Callable[[int], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Vectors for ``paths``: cached ones read back, the rest encoded ``batch_size`` at a time.

    ``encode(paths) -> (emb (n, D), mask (n,) or None)``; each encoded batch becomes one shard, so
    an interrupted run keeps what it already paid for.
    """
    keys = [content_hash(p) for p in paths]
    first = {}
    for p, k in zip(paths, keys):
        first.setdefault(k, p)
    todo = cache.missing(keys)
    for i in range(0, len(todo), batch_size):
        chunk = todo[i : i + batch_size]
        cache.put(chunk, *encode([first[k] for k in chunk]))
        if progress is not None:
            progress(len(chunk))
    return cache.get(keys)
