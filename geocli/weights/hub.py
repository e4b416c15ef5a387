"""Where weights come from: offline detection, the geocli cache dir, and reading weight files.

Hub clients (huggingface_hub, timm, open_clip, sentence-transformers) retry for close to a minute
when the network is down; with ``HF_HUB_OFFLINE=1`` they go straight to the local cache. So before
any hub call we decide once whether we are offline (cheap) and, if so, switch the clients to their
offline mode: cached weights still load, missing ones fail fast and are reported in one line.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import socket
import sys
from pathlib import Path
from typing import Callable, Iterator, TypeVar

from geocli.errors import GeocliError, WeightsNotFoundError

T = TypeVar("T")
PROBE_HOST = ("huggingface.co", 443)
PROBE_TIMEOUT_S = 0.8
_TRUE = {"1", "true", "yes", "on"}
_offline: bool | None = None


def _env_flag(name: str) -> bool | None:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip().lower() in _TRUE


def _probe(host: tuple[str, int] = PROBE_HOST, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """True when a TCP connection to the hub opens within ``timeout`` seconds."""
    try:
        with socket.create_connection(host, timeout=timeout):
            return True
    except OSError:
        return False


def is_offline(refresh: bool = False) -> bool:
    """Whether hub downloads are impossible: GEOCLI_OFFLINE / HF_HUB_OFFLINE, else a <1 s probe (cached)."""
    global _offline
    if refresh:
        _offline = None
    for name in ("GEOCLI_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        flag = _env_flag(name)
        if flag is not None and (flag or name == "GEOCLI_OFFLINE"):
            return flag
    if _offline is None:
        _offline = not _probe()
    return _offline


def enter_offline_mode() -> None:
    """Make hub clients use only their local caches (also when huggingface_hub is already imported)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        constants.HF_HUB_OFFLINE = True


@contextlib.contextmanager
def offline_mode() -> Iterator[None]:
    """Hub clients offline for the duration of the block (loading from a local folder), then restored."""
    before = os.environ.get("HF_HUB_OFFLINE")
    constants = sys.modules.get("huggingface_hub.constants")
    before_const = getattr(constants, "HF_HUB_OFFLINE", None)
    enter_offline_mode()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = before
        constants = sys.modules.get("huggingface_hub.constants")
        if constants is not None:
            constants.HF_HUB_OFFLINE = bool(before_const) if before_const is not None else _env_flag("HF_HUB_OFFLINE") or False


def prepare_hub() -> bool:
    """Call before any hub client: switches to offline mode when offline; returns ``is_offline()``."""
    offline = is_offline()
    if offline:
        enter_offline_mode()
    return offline


def fetch(what: str, load: Callable[[], T], hint: str) -> T:
    """Run a hub client's ``load()``; any failure becomes one ``WeightsNotFoundError`` line.

    ``what`` names the model as the user spelled it, ``hint`` says how to supply the weights
    (for example a local file option). The client's own message is kept, shortened to its first line.
    """
    offline = prepare_hub()
    try:
        return load()
    except (GeocliError, KeyboardInterrupt):
        raise
    except Exception as exc:  # hub clients raise many unrelated types; none should surface raw
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        where = "offline, and not in the local cache" if offline else "could not be loaded"
        raise WeightsNotFoundError(
            f"weights for {what}: {where} ({type(exc).__name__}: {reason}). {hint}"
        ) from None


def cache_dir(*parts: str, create: bool = True) -> Path:
    """geocli's own cache folder: ``$GEOCLI_CACHE`` or ``~/.cache/geocli`` (created on demand,
    unless ``create`` is False: then the caller creates it and copes when it cannot)."""
    root = os.environ.get("GEOCLI_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "geocli")
    path = Path(root, *parts)
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def torch_hub_file(url: str) -> Path:
    """Where torch.hub / torchvision keep a downloaded checkpoint for ``url``."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def file_fingerprint(path: str | os.PathLike) -> str:
    """A cheap identity for a weights file (resolved path, size, mtime) for cache keys."""
    p = Path(path).resolve()
    st = p.stat()
    return f"{p}:{st.st_size}:{st.st_mtime_ns}"


def digest(*parts: object) -> str:
    """Stable short hash of JSON-serialisable parts (cache keys)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


def _unwrap(obj: object, path: Path) -> dict:
    """Accept a bare state dict or the usual wrappers ({"state_dict": ...}, {"model": ...})."""
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise GeocliError(f"{path} does not hold a state dict (found {type(obj).__name__})")
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def load_weights_file(path: str | os.PathLike) -> dict:
    """Read a state dict from ``.safetensors`` or a torch file, never unpickling code.

    Torch files go through ``torch.load(weights_only=True)``: tensors and plain containers only.
    A file that is neither (junk, truncated) is one ``GeocliError`` line naming it.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise WeightsNotFoundError(f"weights file not found: {p}")
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(p), device="cpu")
        except Exception as exc:  # SafetensorError, OSError ...
            raise GeocliError(f"{p}: cannot read it as safetensors weights ({_reason(exc)})") from None
    import torch

    try:
        obj = torch.load(str(p), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise GeocliError(
            f"refusing to load {p}: it holds more than tensors (weights_only load failed); "
            "save a plain state dict or convert it to .safetensors"
        ) from None
    except Exception as exc:  # not a torch file at all: RuntimeError, EOFError, zipfile errors ...
        raise GeocliError(f"{p}: cannot read it as a weights file ({_reason(exc)})") from None
    return _unwrap(obj, p)


def _reason(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__


def load_state(module, state: dict, source: str, strict: bool = True) -> tuple[list[str], list[str]]:
    """``module.load_state_dict(state)`` where a file that does not fit (tensors of the wrong
    shape; with ``strict``, missing or unexpected keys) is one ``GeocliError`` line naming
    ``source``, not torch's page-long error. Returns (missing, unexpected) keys when not strict."""
    own = module.state_dict()
    wrong = [k for k, v in state.items() if k in own and hasattr(v, "shape") and tuple(v.shape) != tuple(own[k].shape)]
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if wrong or (strict and (missing or unexpected)):
        parts = [f"{len(wrong)} tensors have other shapes (e.g. {wrong[0]} is {list(state[wrong[0]].shape)}, "
                 f"the model needs {list(own[wrong[0]].shape)})"] if wrong else []
        if strict and missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if strict and unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        raise GeocliError(f"{source} does not fit this architecture: {'; '.join(parts)}")
    try:
        module.load_state_dict(state, strict=strict)
    except RuntimeError as exc:  # dtype or other mismatches torch still refuses
        raise GeocliError(f"{source} does not fit this architecture ({_reason(exc)})") from None
    return missing, unexpected
