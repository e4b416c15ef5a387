"""On-disk embedding cache for frozen branches: retraining heads never re-encodes an image.

An entry is keyed by the image's content hash (SHA-256 of its bytes: renaming or moving a photo
keeps its entry, editing it does not) inside a folder keyed by the branch: its registry name,
full constructor options, preprocessing and the fingerprint of any local weights file. Entries are
written in shards (``shard-<id>.safetensors``: "emb" (n, D), optional "mask" (n,), the content
hashes in the metadata) -- never pickle. Shards are written to a temporary name and renamed, so
several processes (distributed ranks) can fill one folder at the same time.

The cache can only ever cost time, never correctness: a vector is stored under the hash of the
very bytes that were decoded and encoded (``geocli.images.load_image``), a damaged shard (junk,
truncated, empty, inconsistent metadata) is skipped with one warning naming it and its photos are
encoded again, and a cache folder that cannot be created or written means one notice and a run
without caching.
"""
from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import Callable, Iterable, Sequence

import torch
from PIL import Image

from geocli.weights.hub import cache_dir, digest, file_fingerprint
from geocli.images import content_key, load_image

Encode = Callable[[list[Image.Image]], tuple]
Row = tuple[torch.Tensor, "torch.Tensor | None"]

CACHE_VERSION = 1
_HASH_MEMO: dict[tuple, str] = {}


def content_hash(path: str | os.PathLike) -> str:
    """SHA-256 of the file's bytes, memoised within this process per path and file identity
    (device, inode, size, mtime, ctime: a file replaced or rewritten in place is hashed again)."""
    st = os.stat(path)
    key = (os.fspath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
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
    if fingerprint is None and hasattr(module, "weights_fingerprint"):
        fingerprint = module.weights_fingerprint()  # weights a branch found itself (a hub snapshot, a folder)
    if not weights and module is not None:
        fingerprint = parameters_hash(module)
    return f"{kind}-{digest(CACHE_VERSION, kind, options, preprocess, fingerprint)}"


def branch_cache(cfg, module: torch.nn.Module, root: str | os.PathLike | None = None,
                 tokens: bool = False, log: Callable[[str], None] | None = None,
                 precision: str = "fp32") -> "EmbeddingCache":
    """The cache of a configured branch (``BranchConfig`` + its module). Training and prediction
    both open it here, so prediction finds exactly the vectors training stored; ``tokens``: rows
    that also carry the patch tokens (a separate cache); ``precision`` "bf16": vectors encoded
    under bf16 autocast (a separate cache: they differ from the fp32 ones in the last digits)."""
    kind = f"{cfg.registry_name}+tokens" if tokens else cfg.registry_name
    kind += "@bf16" if precision == "bf16" else ""
    return EmbeddingCache(branch_key(kind, cfg.options, cfg.preprocess, module), root, log)


def parameters_hash(module: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:24]


class EmbeddingCache:
    """Vectors of one branch, by image content hash. ``folder`` defaults to geocli's cache dir;
    ``log`` hears (once each) about damaged shards and an unusable folder."""

    def __init__(self, key: str, root: str | os.PathLike | None = None, log: Callable[[str], None] | None = None):
        self.log = log or _default_log
        self.folder = Path(root) / key if root else Path(os.fspath(cache_dir("embeddings", key, create=False)))
        self.writable = self._prepare()
        self._index: dict[str, tuple[Path, int]] = {}
        self._seen: set[str] = set()
        self.refresh()

    def _prepare(self) -> bool:
        """Create the folder; False (after one notice) when it cannot be, or cannot be written."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            probe = self.folder / f".probe-{uuid.uuid4().hex}"
            probe.write_bytes(b"")
            probe.unlink()
            return True
        except OSError as exc:
            self._disable(exc)
            return False

    def _disable(self, exc: OSError) -> None:
        self.writable = False
        self.log(f"embedding cache {_shown(self.folder)} is unusable ({exc.strerror or exc}): "
                 "going on without caching new vectors")

    def refresh(self) -> None:
        """Pick up shards written since (by this or another process); damaged ones are skipped."""
        try:
            shards = sorted(self.folder.glob("shard-*.safetensors")) if self.folder.is_dir() else []
        except OSError:
            shards = []
        for shard in shards:
            if shard.name not in self._seen:
                self._seen.add(shard.name)
                keys = self._shard_keys(shard)
                self._index.update({k: (shard, i) for i, k in enumerate(keys) if k not in self._index})

    def _shard_keys(self, shard: Path) -> list[str]:
        """The content hashes a shard holds, after checking its header against its tensors."""
        from safetensors import safe_open

        try:
            with safe_open(str(shard), framework="pt") as f:
                keys = json.loads((f.metadata() or {})["keys"])
                _check_layout(keys, {name: f.get_slice(name).get_shape() for name in f.keys()})
            return keys
        except Exception as exc:  # safetensors raises its own types, OSError, KeyError, ValueError ...
            self._damaged(shard, exc)
            return []

    def _damaged(self, shard: Path, exc: Exception) -> None:
        reason = " ".join(str(exc).split())[:160] or type(exc).__name__
        self.log(f"skipped damaged embedding cache shard {_shown(shard)} ({reason}); its photos are encoded again")
        self._index = {k: v for k, v in self._index.items() if v[0] != shard}

    def __contains__(self, key: str) -> bool:
        return key in self._index

    def __len__(self) -> int:
        return len(self._index)

    def missing(self, keys: Sequence[str]) -> list[str]:
        return [k for k in dict.fromkeys(keys) if k not in self._index]

    def put(self, keys: Sequence[str], emb: torch.Tensor, mask: torch.Tensor | None = None) -> Path | None:
        """Write one shard atomically; ``mask`` (bool) marks rows where the branch has content.
        None when the folder cannot take it (then caching stops, after one notice)."""
        from safetensors.torch import save_file

        if not self.writable:
            return None
        tensors = {"emb": emb.detach().float().cpu().contiguous()}
        if mask is not None:
            tensors["mask"] = mask.detach().to(torch.uint8).cpu().contiguous()
        name = f"shard-{uuid.uuid4().hex}.safetensors"
        tmp = self.folder / f".{name}.tmp"
        try:
            save_file(tensors, str(tmp), metadata={"keys": json.dumps(list(keys))})
            os.replace(tmp, self.folder / name)
        except OSError as exc:  # disk full, folder removed or made read-only meanwhile
            tmp.unlink(missing_ok=True)
            self._disable(exc)
            return None
        self.refresh()
        return self.folder / name

    def read(self, keys: Sequence[str]) -> dict[str, Row]:
        """key -> (vector, mask value or None) for the ``keys`` the cache holds readable; a shard
        that fails to load is forgotten (one warning), so its keys count as missing. A shard that
        gives a few of many rows is read row by row (a streamed batch touches many shards)."""
        wanted: dict[Path, list[str]] = {}
        for k in dict.fromkeys(keys):
            if k in self._index:
                wanted.setdefault(self._index[k][0], []).append(k)
        rows: dict[str, Row] = {}
        for shard, shard_keys in wanted.items():
            try:
                rows.update(self._read_shard(shard, shard_keys))
            except Exception as exc:  # deleted or damaged since its header was read
                self._damaged(shard, exc)
        return rows

    def _read_shard(self, shard: Path, keys: list[str]) -> dict[str, Row]:
        from safetensors import safe_open

        with safe_open(str(shard), framework="pt") as f:
            emb, mask = f.get_slice("emb"), (f.get_slice("mask") if "mask" in f.keys() else None)
            whole = 4 * len(keys) >= emb.get_shape()[0]
            if whole:
                emb, mask = f.get_tensor("emb"), (None if mask is None else f.get_tensor("mask"))
            out = {}
            for k in keys:
                i = self._index[k][1]
                vec = emb[i] if whole else emb[i : i + 1][0]
                flag = None if mask is None else (mask[i] if whole else mask[i : i + 1][0]).bool()
                out[k] = (vec, flag)
            return out

    def get(self, keys: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Stacked (N, D) vectors for ``keys`` (all must be readable) and their mask, or None."""
        rows = self.read(keys)
        absent = [k for k in keys if k not in rows]
        if absent:
            raise KeyError(f"{len(absent)} keys are not in the embedding cache, e.g. {absent[0]}")
        return stack_rows(rows, keys)


def _default_log(message: str) -> None:
    from geocli.report.console import log

    log(message)


def _shown(path: Path) -> str:
    from geocli.report.terminal import printable

    return printable(str(path))


def _check_layout(keys, shapes: dict[str, list[int]]) -> None:
    """A shard's metadata and tensors agree: N distinct string keys, "emb" (N, D), "mask" (N,)."""
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise ValueError("its metadata 'keys' is not a list of strings")
    emb = shapes.get("emb")
    if emb is None or len(emb) != 2 or emb[0] != len(keys) or emb[1] < 1:
        raise ValueError(f"'emb' has shape {emb}, expected ({len(keys)}, D)")
    if "mask" in shapes and shapes["mask"] != [len(keys)]:
        raise ValueError(f"'mask' has shape {shapes['mask']}, expected ({len(keys)},)")


def stack_rows(rows: dict[str, Row], keys: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(N, D) vectors in ``keys`` order and their (N,) mask, None unless every row has one."""
    if len({rows[k][0].shape for k in keys}) > 1:
        raise ValueError("embedding cache rows of different widths: clear the cache folder")
    emb = torch.stack([rows[k][0] for k in keys])
    masks = [rows[k][1] for k in keys]
    return emb, None if any(m is None for m in masks) else torch.stack(masks).bool()


def _encode_rows(cache: EmbeddingCache, images: list[Image.Image], keys: list[str], encode: Encode) -> dict[str, Row]:
    """Encode ``images`` (their content hashes ``keys``), store them as one shard, return their rows."""
    emb, mask = encode(images)
    emb = emb.detach().float().cpu()
    mask = None if mask is None else mask.detach().cpu().bool()
    cache.put(keys, emb, mask)
    return {k: (emb[i], None if mask is None else mask[i]) for i, k in enumerate(keys)}


def cached_embeddings(
    cache: EmbeddingCache, paths: Sequence[str], encode: Encode, batch_size: int = 64,
    progress: Callable[[int], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Vectors for ``paths``: cached ones read back, the rest loaded and encoded ``batch_size`` at a time.

    ``encode(images) -> (emb (n, D), mask (n,) or None)``; each encoded batch becomes one shard, so
    an interrupted run keeps what it already paid for. A photo is stored under the hash of the bytes
    it was decoded from: if a file changed after it was first hashed, its new content is what counts.
    """
    keys = [content_hash(p) for p in paths]
    rows = cache.read(keys)
    first: dict[str, str] = {}
    for p, k in zip(paths, keys):
        if k not in rows:
            first.setdefault(k, p)
    todo = list(first.items())
    now: dict[str, str] = {}
    for i in range(0, len(todo), batch_size):
        chunk = todo[i : i + batch_size]
        loaded = [load_image(p) for _, p in chunk]
        rows.update(_encode_rows(cache, [x.image for x in loaded], [x.sha256 for x in loaded], encode))
        now.update({old: x.sha256 for (old, _), x in zip(chunk, loaded)})
        if progress is not None:
            progress(len(chunk))
    return stack_rows(rows, [now.get(k, k) for k in keys])


def fill_from_bytes(cache: EmbeddingCache, items: Iterable[tuple[str, bytes]], encode: Encode, batch_size: int = 64,
                    progress: Callable[[int], None] | None = None,
                    on_bad: Callable[[str, str], None] | None = None) -> int:
    """Store the vectors of the photos ``items`` (name, encoded bytes: a shard's ``KEY.jpg``) the
    cache lacks, under the hash of those bytes -- the key the same photo's file has. Encoded
    ``batch_size`` at a time; a photo that cannot be decoded goes to ``on_bad(name, reason)`` and is
    left out. Returns how many were encoded."""
    from geocli.images import ImageError, load_image_bytes

    chunk: list = []
    encoded = 0

    def flush() -> None:
        nonlocal encoded
        if chunk:
            _encode_rows(cache, [x.image for x in chunk], [x.sha256 for x in chunk], encode)
            encoded += len(chunk)
            chunk.clear()

    for name, data in items:
        if progress is not None:
            progress(1)
        key = bytes_hash(data)
        if key in cache or any(x.sha256 == key for x in chunk):
            continue
        try:
            chunk.append(load_image_bytes(data, name))
        except ImageError as exc:
            if on_bad is not None:
                on_bad(name, str(exc))
            continue
        if len(chunk) == batch_size:
            flush()
    flush()
    return encoded


def image_embeddings(cache: EmbeddingCache, images: Sequence[Image.Image], encode: Encode) -> torch.Tensor:
    """Vectors for images from ``load_image`` (each knows its content hash): cached ones read back,
    the rest encoded from these very pixels in one call and stored."""
    keys = [content_key(img) for img in images]
    if not all(keys):
        raise ValueError("image_embeddings needs images from geocli.images.load_image")
    rows = cache.read(keys)
    todo = {k: img for k, img in zip(keys, images) if k not in rows}
    if todo:
        rows.update(_encode_rows(cache, list(todo.values()), list(todo), encode))
    return stack_rows(rows, keys)[0]
