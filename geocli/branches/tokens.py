"""Stepping an image encoder through its token sequence: the one protocol that TransLocator (per-
block CLS exchange), token-reading heads (retrieval) and the embedding cache's token rows use.

A ``TokenEncoder`` has ``blocks``, ``tokens_in(x)`` (pixels -> the input of block 0),
``run_block(i, tokens)``, ``pool_tokens(tokens)`` (the pooled embedding), ``patch_tokens(tokens)``
(final-normed patch tokens, prefix tokens dropped), ``encode_tokens(x)`` (pooled embedding and
patch tokens in one pass) and ``token_shape`` ((token width, token count), or (None, None) for an
encoder without tokens). ``RGBBranch`` and the seg branch implement it; ``ViTTokens`` gives a plain
timm ``VisionTransformer`` the same interface.
"""
from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

import torch
from torch import nn


@runtime_checkable
class TokenEncoder(Protocol):
    blocks: Sequence[nn.Module]
    out_dim: int

    def tokens_in(self, x: torch.Tensor) -> torch.Tensor: ...

    def run_block(self, index: int, tokens: torch.Tensor) -> torch.Tensor: ...

    def pool_tokens(self, tokens: torch.Tensor) -> torch.Tensor: ...

    def patch_tokens(self, tokens: torch.Tensor) -> torch.Tensor: ...


def run_blocks(encoder: TokenEncoder, tokens: torch.Tensor, start: int = 0, stop: int | None = None) -> torch.Tensor:
    """Blocks ``start`` .. ``stop - 1`` (default: all) of ``encoder``, in order."""
    for index in range(start, len(encoder.blocks) if stop is None else stop):
        tokens = encoder.run_block(index, tokens)
    return tokens


def step_through(encoder: TokenEncoder, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixels -> (pooled embedding (B, D), patch tokens (B, N, D)), stepping every block."""
    tokens = run_blocks(encoder, encoder.tokens_in(x))
    return encoder.pool_tokens(tokens), encoder.patch_tokens(tokens)


class ViTTokens(nn.Module):
    """The token protocol for a plain timm ``VisionTransformer`` (embed, run blocks, pool)."""

    def __init__(self, vit: nn.Module):
        super().__init__()
        if not all(hasattr(vit, a) for a in ("patch_embed", "_pos_embed", "blocks", "norm")):
            raise TypeError(f"{type(vit).__name__} is not a timm VisionTransformer")
        self.vit = vit

    @property
    def blocks(self) -> nn.Sequential:
        return self.vit.blocks

    @property
    def out_dim(self) -> int:
        return self.vit.num_features

    @property
    def has_cls(self) -> bool:
        return getattr(self.vit, "cls_token", None) is not None

    @property
    def token_shape(self) -> tuple[int, int]:
        return int(self.out_dim), int(self.vit.patch_embed.num_patches)

    def tokens_in(self, x: torch.Tensor) -> torch.Tensor:
        """Pixels -> token sequence [CLS, (registers), patches] ready for the first block."""
        v = self.vit
        return v.norm_pre(v.patch_drop(v._pos_embed(v.patch_embed(x))))

    def run_block(self, index: int, tokens: torch.Tensor) -> torch.Tensor:
        return self.vit.blocks[index](tokens)

    def pool_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """Final norm and pooling (CLS for ViTs with a class token) -> (B, out_dim)."""
        return self.vit.forward_head(self.vit.norm(tokens), pre_logits=True)

    def patch_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.vit.norm(tokens)[:, self.vit.num_prefix_tokens:]

    def encode_tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return step_through(self, x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled embedding (B, out_dim), as timm's ``forward_features`` + ``forward_head``."""
        return self.pool_tokens(run_blocks(self, self.tokens_in(x)))


def as_token_encoder(module: nn.Module) -> TokenEncoder:
    """The module itself when it already speaks the protocol, else a ``ViTTokens`` adapter."""
    return module if isinstance(module, TokenEncoder) else ViTTokens(module)
