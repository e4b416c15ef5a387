"""``GeoModel``: branches -> fusion -> heads, built entirely from a ``ModelConfig``.

Batch format (a dict; every entry optional except what the enabled heads and branches need):

- ``batch[branch_name]``: what that branch encodes -- an image tensor (B, 3, H, W) for rgb / seg /
  clip, the OCR branch's cached ``{"text_emb", "has_text"}``, or (B, embed_dim) vectors for a branch
  with ``input="embedding"``. A branch missing from the batch is switched off for it.
- ``batch[branch_name + "_mask"]``: (B,) bool, False where that branch has nothing for a sample.
  (OCR photos without text are not "nothing": the branch gives its learned "no text" vector.)
- targets: "country", "cells", "scene", "gps", "place" (see ``heads.py``).

``forward(batch)`` returns ``{"embedding", "tokens", "heads": {head: outputs}}``; ``loss(out, batch)``
the weighted multi-task sum and its parts; ``predict(batch)`` the CLI's result records.
"""
from __future__ import annotations

from functools import partial

import torch
from torch import nn

from geocli.config import BranchConfig, HeadConfig, LabelSpaces, ModelConfig
from geocli.errors import UsageError
from geocli.fusion.concat import ConcatFusion
from geocli.heads import HEADS, FeatureSpec
from geocli.heads.losses import weighted_sum
from geocli.fusion.translocator import FUSIONS
from geocli.runtime import full_precision


class EmbeddingInput(nn.Module):
    """A branch whose vectors come precomputed in the batch (embedding caches)."""

    def __init__(self, dim: int):
        super().__init__()
        self.out_dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.out_dim:
            raise UsageError(f"expected precomputed embeddings of shape (B, {self.out_dim}), got {tuple(x.shape)}")
        return x


class TokenEmbeddingInput(EmbeddingInput):
    """A frozen token branch whose pooled vector and patch tokens come precomputed in the batch,
    flattened into one row of ``out_dim + num_tokens * token_dim`` (the embedding cache's form)."""

    def __init__(self, dim: int, num_tokens: int, token_dim: int):
        super().__init__(dim)
        self.num_tokens, self.token_dim = num_tokens, token_dim
        self.row_dim = dim + num_tokens * token_dim

    @property
    def token_shape(self) -> tuple[int, int]:
        return self.token_dim, self.num_tokens

    def encode_tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.dim() != 2 or x.shape[1] != self.row_dim:
            raise UsageError(f"expected cached embeddings with tokens of shape (B, {self.row_dim}), got {tuple(x.shape)}")
        return x[:, : self.out_dim], x[:, self.out_dim :].reshape(len(x), self.num_tokens, self.token_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode_tokens(x)[0]


def flatten_with_tokens(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """One row per image: the pooled embedding, then the patch tokens (what ``TokenEmbeddingInput`` reads)."""
    pooled, tokens = module.encode_tokens(x)
    return torch.cat([pooled, tokens.flatten(1)], dim=1)


def _without_weights(options: dict) -> dict:
    """Branch options that build the architecture only: weights come from the checkpoint."""
    out = dict(options)
    if "pretrained" in out:
        out["pretrained"] = False if isinstance(out["pretrained"], bool) else None
    if "weights" in out:
        out["weights"] = None
    return out


def build_branch_module(cfg: BranchConfig, pretrained: bool = True) -> nn.Module:
    """The branch's module; records its full constructor options and preprocessing in ``cfg``."""
    if cfg.input == "embedding":
        return EmbeddingInput(cfg.embed_dim)
    from geocli.branches import build_branch

    options = cfg.options if pretrained else _without_weights(cfg.options)
    branch = build_branch(cfg.registry_name, options, device="cpu")
    cfg.options = {**branch.config, **{k: cfg.options[k] for k in ("pretrained", "weights") if k in cfg.options}}
    if getattr(branch, "preprocess", None) is None:
        return branch
    if pretrained or not cfg.preprocess:
        cfg.preprocess = branch.preprocess.to_dict()
    else:  # rebuilding a checkpoint: the pixels must look as they did for the weights it holds
        from geocli.branches.base import Preprocess

        branch.preprocess = Preprocess.from_dict(cfg.preprocess)
    return branch


def build_head(cfg: HeadConfig, spec: FeatureSpec, labels: LabelSpaces, pretrained: bool = True) -> nn.Module:
    """``HEADS.build(name, spec, labels, **options)``; unknown options are a ``UsageError``."""
    return HEADS.build(cfg.name, spec, labels, internal={"pretrained": pretrained}, **cfg.options)


def _speaks_tokens(module: nn.Module) -> bool:
    """Whether the module yields patch tokens (``geocli.branches.tokens``)."""
    return hasattr(module, "encode_tokens") and module.token_shape[1] is not None


class GeoModel(nn.Module):
    """Branches, fusion and heads described by ``config``. ``pretrained=False`` builds the
    architecture without fetching any weights (what ``load_checkpoint`` does before loading)."""

    def __init__(self, config: ModelConfig, pretrained: bool = True):
        super().__init__()
        self.config = config
        fusion = FUSIONS.get(config.fusion.name)  # unknown fusion names fail here, listing valid ones
        modules = {b.name: build_branch_module(b, pretrained) for b in config.branches if b.enabled}
        self.pair = fusion.joint_encoder(modules, config.fusion)  # takes its branches out of ``modules``
        self.branches = nn.ModuleDict(modules)
        self.token_branch = self._pick_token_branch()
        self.fusion = ConcatFusion(self._source_dims(), config.fusion)
        spec = FeatureSpec(self.fusion.out_dim, *self.token_shape)
        self.heads = nn.ModuleDict({h.name: build_head(h, spec, config.labels, pretrained) for h in config.heads})

    def _pick_token_branch(self) -> str | None:
        if self.pair is not None:
            return self.pair.names[0]
        return next((n for n, m in self.branches.items() if _speaks_tokens(m)), None)

    def _token_encoder(self) -> nn.Module | None:
        return None if self.token_branch is None else self.branch_module(self.token_branch)

    def branch_module(self, name: str) -> nn.Module:
        """Branch ``name``'s module, also when it is one of the TransLocator pair."""
        if self.pair is not None and name in self.pair.names:
            return self.pair.encoders[name]
        return self.branches[name]

    @property
    def pixel_inputs(self) -> list[str]:
        """Every branch that reads its own input in a batch, the TransLocator pair's members first."""
        return (list(self.pair.names) if self.pair is not None else []) + list(self.branches)

    @property
    def token_shape(self) -> tuple[int | None, int | None]:
        """(token width, token count) of the token branch, or (None, None)."""
        enc = self._token_encoder()
        return (None, None) if enc is None else enc.token_shape

    def _source_dims(self) -> dict[str, int]:
        dims = dict(self.pair.out_dims) if self.pair is not None else {}
        dims.update({n: int(m.out_dim) for n, m in self.branches.items()})
        return dims

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def masks(self, batch: dict) -> dict[str, torch.Tensor | None]:
        """Per-branch presence masks: ``<name>_mask``, else None (all present)."""
        out = {}
        for b in self.config.branches:
            mask = batch.get(f"{b.name}_mask")
            out[b.name] = None if mask is None else torch.as_tensor(mask, device=self.device).bool()
        return out

    def embed(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Fused embedding (B, D) and the token branch's patch tokens (or None).

        The branches (and the TransLocator pair) are independent until fusion, so on a GPU each
        runs on its own CUDA stream and their kernels can overlap; on a CPU they run in turn.
        """
        masks = self.masks(batch)
        jobs = []
        if self.pair is not None:
            jobs.append(lambda: self.pair({n: batch.get(n) for n in self.pair.names}, masks))
        jobs += [partial(self._encode_branch, name, module, batch.get(name)) for name, module in self.branches.items()]
        embeddings: dict[str, torch.Tensor | None] = {}
        tokens = None
        for emb, branch_tokens in run_side_by_side(jobs, self.device):
            embeddings.update(emb)
            tokens = branch_tokens if branch_tokens is not None else tokens
        return self.fusion(embeddings, masks), tokens

    def _encode_branch(self, name: str, module: nn.Module, x) -> tuple[dict, torch.Tensor | None]:
        if x is None:
            return {name: None}, None
        if name == self.token_branch:
            emb, tokens = module.encode_tokens(x)
            return {name: emb}, tokens
        return {name: module(x)}, None

    def forward(self, batch: dict) -> dict:
        embedding, tokens = self.embed(batch)
        with full_precision(embedding.device):  # probabilities in fp32, whatever the branches ran in
            embedding, tokens = embedding.float(), None if tokens is None else tokens.float()
            features = {"embedding": embedding, "tokens": tokens}
            heads = {n: h(features) for n, h in self.heads.items()}
        return {"embedding": embedding, "tokens": tokens, "heads": heads}

    def loss(self, outputs: dict, batch: dict, class_weights: dict | None = None
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Weighted multi-task loss over the heads whose targets the batch carries, and each part;
        ``class_weights`` ({key: (C,) weights}, see ``Head.class_counts``) weight the classes."""
        parts = {n: h.loss(outputs["heads"][n], batch, class_weights) for n, h in self.heads.items()}
        parts = {n: v for n, v in parts.items() if v is not None}
        weights = {h.name: h.weight for h in self.config.heads}
        return weighted_sum(parts, weights), {n: v.detach() for n, v in parts.items()}

    @torch.no_grad()
    def predict(self, batch: dict, top_k: int | None = None) -> list[dict]:
        """One result dict per sample: ``predictions``, ``country_head``, ``scene``, ``country_agreement``."""
        from geocli.heads.locations import to_records

        was_training = self.training
        self.eval()
        try:
            return to_records(self, self(batch), top_k)
        finally:
            self.train(was_training)


def run_side_by_side(jobs: list, device: torch.device) -> list:
    """Each job's result, in order. On CUDA with several jobs, each runs on a stream of its own,
    all forked from the current stream at the same point (so they overlap), and the current stream
    joins them all once, after the last is queued, before fusion reads the results."""
    if device.type != "cuda" or len(jobs) < 2:
        return [job() for job in jobs]
    current = torch.cuda.current_stream(device)
    streams = [torch.cuda.Stream(device) for _ in jobs]
    for stream in streams:  # every branch starts once the inputs on the current stream are ready
        stream.wait_stream(current)
    results = []
    for job, stream in zip(jobs, streams):
        with torch.cuda.stream(stream):
            results.append(job())
    for stream in streams:
        current.wait_stream(stream)
    for emb, tokens in results:  # memory made on a side stream is now also used on the current one
        for t in [*emb.values(), tokens]:
            if t is not None:
                t.record_stream(current)
    return results


# ---- the cached training view: frozen branches read from the embedding cache ----


def cacheable(model, use_cache: bool) -> set[str]:
    """Branches encoded once through the embedding cache: frozen and outside a TransLocator pair
    (the token source of a head that needs patch tokens caches its tokens too, see
    ``caches_tokens``). A ``cache_only`` branch (OCR) must be cacheable."""
    out = set()
    for name, module in model.branches.items():
        frozen = getattr(module, "trainable", None) == "freeze" and hasattr(module, "encode_images")
        if frozen and use_cache:
            out.add(name)
        elif getattr(module, "cache_only", False):
            raise UsageError(f"the {name} branch trains only frozen from the embedding cache (drop --no-cache)")
    return out


def caches_tokens(model, name: str) -> bool:
    """Whether branch ``name``'s cache rows carry its patch tokens (a retrieval head reads them)."""
    return name == model.token_branch and any(getattr(h, "needs_tokens", False) for h in model.heads.values())


def training_view(model, cached: set[str]):
    """A ``GeoModel`` sharing ``model``'s trainable modules whose ``cached`` branches take vectors
    from the batch. Training it trains ``model``; ``model`` (with its frozen encoders) is what is
    saved, so the checkpoint predicts from photos."""
    if not cached:
        return model
    stand_ins = [BranchConfig(n, input="embedding", embed_dim=int(m.out_dim)) for n, m in model.branches.items()]
    view = GeoModel(ModelConfig(branches=stand_ins, heads=[], labels=model.config.labels), pretrained=False)
    for name, module in model.branches.items():
        stand_in = name in cached and not getattr(module, "runs_on_cache", False)
        view.branches[name] = _stand_in(model, name) if stand_in else module
    view.pair, view.fusion, view.heads, view.config = model.pair, model.fusion, model.heads, model.config
    keeps_tokens = model.token_branch not in cached or caches_tokens(model, model.token_branch)
    view.token_branch = model.token_branch if keeps_tokens else None
    return view.to(model.device)


def _stand_in(model, name: str):
    dim = int(model.branches[name].out_dim)
    if caches_tokens(model, name):
        token_dim, num_tokens = model.token_shape
        return TokenEmbeddingInput(dim, num_tokens, token_dim)
    return EmbeddingInput(dim)
