"""The embedding cache never serves a wrong vector and never breaks a run: vectors are stored under
the hash of the bytes that were decoded, damaged shards are skipped (one warning naming each) and
their photos encoded again, an unusable cache folder means a run without caching."""
from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import hostile_corpus as H
import train_helpers as T
from geocli.store import embedding_cache as C
from geocli.images import load_image


def _photo(path: Path, colour: tuple[int, int, int]) -> Path:
    Image.new("RGB", (20, 16), colour).save(path, format="PNG")
    return path


def _mean_colour(images: list) -> tuple[torch.Tensor, None]:
    """A stand-in encoder whose vector is the image's mean colour: easy to check against pixels."""
    return torch.tensor(np.array([np.asarray(img, dtype=np.float32).mean((0, 1)) for img in images])), None


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _stored(cache: C.EmbeddingCache) -> dict[str, torch.Tensor]:
    """Every (hash -> vector) pair in the cache folder, read straight from its shards."""
    from safetensors.torch import safe_open

    out = {}
    for shard in cache.folder.glob("shard-*.safetensors"):
        with safe_open(str(shard), framework="pt") as f:
            for i, key in enumerate(json.loads(f.metadata()["keys"])):
                out[key] = f.get_tensor("emb")[i]
    return out


@pytest.fixture
def photos(tmp_path):
    return [_photo(tmp_path / "red.png", (200, 10, 10)), _photo(tmp_path / "blue.png", (10, 10, 200))]


@pytest.fixture
def warnings():
    lines: list[str] = []
    return lines


def _cache(tmp_path, warnings, root=None) -> C.EmbeddingCache:
    return C.EmbeddingCache("branch", root or tmp_path / "cache", log=warnings.append)


def test_a_photo_replaced_after_it_was_hashed_is_stored_under_its_new_bytes(tmp_path, photos, warnings, monkeypatch):
    red = photos[0]
    real_hash = C.content_hash

    def hash_then_replace(path):  # the file changes between the hashing and the decoding
        key = real_hash(path)
        if Path(path) == red:
            _photo(red, (10, 200, 10))
        return key

    monkeypatch.setattr(C, "content_hash", hash_then_replace)
    cache = _cache(tmp_path, warnings)
    emb, _ = C.cached_embeddings(cache, [str(red)], _mean_colour)
    green = _mean_colour([Image.open(red).convert("RGB")])[0][0]
    torch.testing.assert_close(emb[0], green)  # what is on disk now is what was encoded
    for key, vector in _stored(cache).items():
        assert key == _sha(red) and torch.equal(vector, green), "a vector is stored under another photo's hash"


def test_predict_caches_under_the_hash_of_the_bytes_it_decoded(tmp_path, monkeypatch):
    from geocli import load_model
    from geocli.training.trainer import train

    train(T.tiny_config(tmp_path, epochs=1, cache=False), progress=False)
    photo = tmp_path / "data" / "img" / "r0_l0_v0.png"
    before = photo.read_bytes()
    geo = load_model(str(tmp_path / "run"), cache_dir=str(tmp_path / "pcache"))
    real_locate = geo.geolocator.locate

    def replace_then_locate(images, paths, top_k):  # decoded; then the file is replaced on disk
        _photo(photo, (0, 255, 0))
        return real_locate(images, paths, top_k)

    monkeypatch.setattr(geo.geolocator, "locate", replace_then_locate)
    assert next(geo.predict([str(photo)]))["ok"]
    module = geo.geolocator.model.branches["rgb"]
    old_vector = module.encode_images([Image.open(io.BytesIO(before)).convert("RGB")])[0]
    (cache,) = geo.geolocator.inputs.caches.values()
    stored = _stored(cache)
    assert list(stored) == [hashlib.sha256(before).hexdigest()]  # the bytes that were decoded, not today's file
    torch.testing.assert_close(stored[hashlib.sha256(before).hexdigest()], old_vector.float().cpu())


def _junk(path: Path) -> None:
    path.write_bytes(os.urandom(300))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _empty(path: Path) -> None:
    path.write_bytes(b"")


KEEP = object()


def _resave(metadata, emb_rows: int | None = None):
    """Rewrite a shard as valid safetensors whose metadata (``KEEP``: the original) or rows lie."""
    def damage(path: Path) -> None:
        from safetensors import safe_open
        from safetensors.torch import load_file, save_file

        with safe_open(str(path), framework="pt") as f:
            original = f.metadata()
        tensors = load_file(str(path))
        if emb_rows is not None:
            tensors["emb"] = tensors["emb"][:emb_rows].contiguous()
        save_file(tensors, str(path), metadata=original if metadata is KEEP else metadata)
    return damage


DAMAGE = {
    "junk bytes": _junk,
    "truncated": _truncate,
    "zero bytes": _empty,
    "no keys in the metadata": _resave({"other": "1"}),
    "keys that are not a list": _resave({"keys": json.dumps({"a": 1})}),
    "keys that are not JSON": _resave({"keys": "[not json"}),
    "more keys than rows": _resave(KEEP, emb_rows=1),
    "no metadata at all": _resave(None),
}


@pytest.mark.parametrize("how", sorted(DAMAGE))
def test_a_damaged_shard_is_skipped_with_one_warning_and_its_photos_encoded_again(tmp_path, photos, warnings, how):
    paths = [str(p) for p in photos]
    shard = C.EmbeddingCache("branch", tmp_path / "cache").put([_sha(p) for p in photos], *_mean_colour(
        [load_image(p).image for p in photos]))
    DAMAGE[how](shard)
    encoded = []
    cache = _cache(tmp_path, warnings)
    emb, _ = C.cached_embeddings(cache, paths, lambda imgs: encoded.append(len(imgs)) or _mean_colour(imgs))
    assert encoded == [2]  # both photos of the damaged shard were encoded again
    torch.testing.assert_close(emb, _mean_colour([load_image(p).image for p in photos])[0])
    assert len(warnings) == 1 and shard.name in warnings[0] and "damaged" in warnings[0], warnings
    C.EmbeddingCache("branch", tmp_path / "cache", log=warnings.append)
    assert len(warnings) == 2  # every new process says it again, once


def test_a_shard_damaged_after_its_header_was_read_is_encoded_again(tmp_path, photos, warnings):
    cache = _cache(tmp_path, warnings)
    C.cached_embeddings(cache, [str(photos[0])], _mean_colour)
    (shard,) = cache.folder.glob("shard-*.safetensors")
    _truncate(shard)  # another process broke it after this one indexed it
    emb, _ = C.cached_embeddings(cache, [str(p) for p in photos], _mean_colour)
    assert emb.shape == (2, 3) and len(warnings) == 1 and shard.name in warnings[0]


def test_a_cache_folder_that_cannot_be_created_means_no_caching_and_one_notice(tmp_path, photos, warnings):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    cache = _cache(tmp_path, warnings, root=blocker)
    for _ in range(2):
        emb, _ = C.cached_embeddings(cache, [str(p) for p in photos], _mean_colour)
        assert emb.shape == (2, 3)
    assert len(warnings) == 1 and "going on without caching" in warnings[0]


@pytest.mark.parametrize("where", ["probe", "shard"])
def test_a_read_only_or_full_cache_folder_means_one_notice(tmp_path, photos, warnings, monkeypatch, where):
    import errno

    import safetensors.torch

    if where == "probe":  # read-only (root ignores chmod, so the refusal is staged)
        monkeypatch.setattr(Path, "write_bytes", lambda self, data: (_ for _ in ()).throw(
            OSError(errno.EROFS, "Read-only file system")))
    else:  # the disk fills up while a shard is written
        monkeypatch.setattr(safetensors.torch, "save_file", lambda *a, **k: (_ for _ in ()).throw(
            OSError(errno.ENOSPC, "No space left on device")))
    cache = _cache(tmp_path, warnings)
    emb, _ = C.cached_embeddings(cache, [str(p) for p in photos], _mean_colour, batch_size=1)
    assert emb.shape == (2, 3) and len(warnings) == 1, warnings
    assert "going on without caching" in warnings[0]
    assert not list(cache.folder.glob("*.tmp")) and not list(cache.folder.glob(".*.tmp"))


def test_predict_with_an_unusable_cache_dir_runs_and_says_so_once(tmp_path):
    from geocli.training.trainer import train

    train(T.tiny_config(tmp_path, epochs=1, cache=False), progress=False)
    blocker = tmp_path / "cachefile"
    blocker.write_text("not a folder")
    photos = sorted(str(p) for p in (tmp_path / "data" / "img").glob("*.png"))[:3]
    args = ["predict", "--model", tmp_path / "run", "--cache-dir", blocker / "inside", "--format", "jsonl", *photos]
    result = H.run_cli(args)
    assert result.code == 0, result.stderr
    assert len([json.loads(line) for line in result.stdout.splitlines()]) == 3
    assert result.stderr.count("going on without caching") == 1 and "Traceback" not in result.stderr


def test_a_damaged_or_unusable_ocr_cache_means_reading_again(tmp_path, warnings):
    from geocli.ocr.base import TextBox
    from geocli.ocr.cache import OCRCache, cached_reads

    image = Image.new("RGB", (8, 8), "white")
    boxes = [TextBox(((0, 0), (1, 0), (1, 1), (0, 1)), "ZAGREB", 0.9)]
    reads = []

    def read(images):
        reads.append(len(images))
        return [boxes for _ in images]

    (tmp_path / "ocr").mkdir()
    (tmp_path / "ocr" / "engine.sqlite").write_bytes(os.urandom(2048))  # not a database
    cache = OCRCache("engine", tmp_path, log=warnings.append)
    assert cached_reads(cache, [image], read) == [boxes] and reads == [1]
    assert len(warnings) == 1 and "going on without caching" in warnings[0]
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    cache = OCRCache("engine", blocker, log=warnings.append)
    assert cached_reads(cache, [image, image], read) == [boxes, boxes] and len(warnings) == 2
