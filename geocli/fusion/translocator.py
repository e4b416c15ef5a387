"""TransLocator dual-branch fusion (Pramanick et al., ECCV 2022).

An RGB ViT and a segmentation-map ViT run block by block. After every encoder layer k the CLS
tokens of both branches are projected (f), summed, transformed (g), and the result replaces each
branch's CLS before the next layer:

    x_i^(k) = [ g_i( sum_j f_j(x_j,cls^(k)) ) || x_i,patch^(k) ]

Any pair of timm ViTs works. Different widths: each branch has its own f_j (width_j -> fusion_dim)
and g_i (fusion_dim -> width_i); with equal widths this is the paper's shared-space exchange.
Different depths: the layers are aligned at the *end* -- the deeper branch first runs its extra
blocks alone, then both run in lock-step with an exchange after every shared layer, so the
exchange always happens after the last layer of both (the embedding that leaves is fused), and the
deeper branch's extra early layers, which see low-level patterns, stay branch-specific.

A branch missing from the batch (switched off) or masked for a sample simply drops out of the sum.
The output embedding is the first (RGB) branch's final CLS after its final norm: after the last
exchange it carries both branches (with ``exchange=False``, each branch's own CLS instead). ``tokens`` are that branch's patch tokens (for retrieval).
"""
from __future__ import annotations

import torch
from torch import nn

from geocli.branches.tokens import as_token_encoder, run_blocks
from geocli.config import FusionConfig
from geocli.registry import Registry

FUSIONS: Registry = Registry("fusion")


class CLSExchange(nn.Module):
    """One exchange step: f_j per branch into a shared space, sum, g_i back to each branch."""

    def __init__(self, widths: dict[str, int], fusion_dim: int):
        super().__init__()
        self.f = nn.ModuleDict({n: _projection(w, fusion_dim) for n, w in widths.items()})
        self.g = nn.ModuleDict({n: _projection(fusion_dim, w) for n, w in widths.items()})

    def forward(self, cls: dict[str, torch.Tensor], masks: dict[str, torch.Tensor | None]):
        total = 0
        for name, c in cls.items():
            term = self.f[name](c)
            mask = masks.get(name)
            total = total + (term if mask is None else term * mask[:, None].to(term.dtype))
        return {name: self.g[name](total) for name in cls}


def _projection(d_in: int, d_out: int) -> nn.Module:
    """f / g: LayerNorm, GELU, Linear (the CrossViT-style projection TransLocator builds on)."""
    return nn.Sequential(nn.LayerNorm(d_in), nn.GELU(), nn.Linear(d_in, d_out))


@FUSIONS.register("translocator")
class TransLocator(nn.Module):
    """Two ViT encoders with per-layer CLS exchange. ``encoders``: {name: ViT}, first is RGB."""

    @classmethod
    def joint_branches(cls, cfg: FusionConfig) -> list[str]:
        return list(cfg.pair)

    @classmethod
    def joint_encoder(cls, branches: dict[str, nn.Module], cfg: FusionConfig) -> "TransLocator":
        """The pair ``cfg.pair`` taken out of ``branches`` and run as one encoder (the concat stage
        then joins its fused CLS with the other branches)."""
        missing = [n for n in cfg.pair if n not in branches]
        if missing:
            from geocli.errors import UsageError

            raise UsageError(f"translocator fusion needs enabled branches {missing}")
        return cls({n: branches.pop(n) for n in cfg.pair}, cfg)

    def __init__(self, encoders: dict[str, nn.Module], cfg: FusionConfig | None = None):
        super().__init__()
        cfg = cfg or FusionConfig(name="translocator", pair=list(encoders))
        self.names = list(encoders)
        self.encoders = nn.ModuleDict({n: as_token_encoder(m) for n, m in encoders.items()})
        if not all(getattr(e, "has_cls", False) for e in self.encoders.values()):
            raise ValueError("TransLocator needs ViTs with a class token (class_token=True)")
        widths = {n: e.out_dim for n, e in self.encoders.items()}
        self.exchange = cfg.exchange
        self.depth = min(len(e.blocks) for e in self.encoders.values())
        dim = cfg.fusion_dim or widths[self.names[0]]
        self.exchanges = nn.ModuleList(CLSExchange(widths, dim) for _ in range(self.depth)) if cfg.exchange else None

    @property
    def out_dims(self) -> dict[str, int]:
        """Embeddings it hands to the concat stage: the fused CLS (under the first branch's name),
        or with ``exchange=False`` each branch's own CLS (the paper's "+Seg" ablation)."""
        names = self.names[:1] if self.exchange else self.names
        return {n: self.encoders[n].out_dim for n in names}

    def forward(self, inputs: dict[str, torch.Tensor], masks: dict | None = None):
        """``inputs``: {branch: pixels}; the first branch must be present, the second may be
        absent (switched off). Returns ({name: embedding (B, D)}, patch tokens of the first branch)."""
        masks = masks or {}
        live = [n for n in self.names if inputs.get(n) is not None]
        if self.names[0] not in live:
            raise ValueError(f"TransLocator needs the {self.names[0]!r} input")
        tokens = {n: self.encoders[n].tokens_in(inputs[n]) for n in live}
        tokens = self._run_extra_blocks(tokens)
        for k in range(self.depth):
            tokens = {n: self.encoders[n].run_block(self._offset(n) + k, t) for n, t in tokens.items()}
            if self.exchanges is not None:
                tokens = self._exchange(k, tokens, masks)
        embeddings = {n: self.encoders[n].pool_tokens(tokens[n]) for n in self.out_dims if n in tokens}
        return embeddings, self.encoders[self.names[0]].patch_tokens(tokens[self.names[0]])

    def _run_extra_blocks(self, tokens: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The deeper branch's leading blocks, before the lock-step part (end alignment)."""
        return {n: run_blocks(self.encoders[n], t, 0, self._offset(n)) for n, t in tokens.items()}

    def _offset(self, name: str) -> int:
        """How many blocks branch ``name`` runs alone before the lock-step part."""
        return len(self.encoders[name].blocks) - self.depth

    def _exchange(self, k: int, tokens: dict[str, torch.Tensor], masks: dict) -> dict[str, torch.Tensor]:
        fused = self.exchanges[k]({n: t[:, 0] for n, t in tokens.items()}, masks)
        return {n: torch.cat([fused[n][:, None], t[:, 1:]], dim=1) for n, t in tokens.items()}

