r"""Attention blocks of the Transformer DVAEs (:mod:`ppl_models.dvae.hit_dvae`, :mod:`ppl_models.dvae.light_dvae`).

Positions enter as ALiBi biases (Press, Smith & Lewis, "Train short, test long", ICLR 2022) instead of added
position encodings: head h scores the key j from the query i with

    a_h(i, j) = q_i . k_j / sqrt(d_head) - m_h |i - j|,   m_h = 2^(-8 h / H),   h = 1..H,

and a causal block adds -inf where j > i. A prior trained on 50-frame segments then reads whole utterances
(several hundred frames) with the same attention pattern, which learned or sinusoidal absolute encodings
do not extrapolate to. A causal block at frame i reads keys 1..i only, so its output at i does not change
when later frames do (``tests/test_transformer_dvae.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def alibi(heads: int, length: int, causal: bool, device=None, dtype=None) -> torch.Tensor:
    """The additive attention bias (heads, length, length): -m_h |i - j|, and -inf above the diagonal if causal."""
    slopes = 2.0 ** (-8.0 * torch.arange(1, heads + 1, device=device, dtype=dtype) / heads)
    position = torch.arange(length, device=device, dtype=dtype)
    distance = position[:, None] - position[None, :]  # i - j
    bias = -slopes[:, None, None] * distance.abs()
    if causal:
        bias = bias.masked_fill(distance < 0, float("-inf"))
    return bias


class Attention(nn.Module):
    """Multi-head attention of queries (B, Tq, d) on keys/values (B, Tk, d) with an additive bias (H, Tq, Tk)."""

    def __init__(self, d_model: int, heads: int):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model ({d_model}) must be a multiple of heads ({heads})")
        self.heads = heads
        self.query, self.key_value = nn.Linear(d_model, d_model), nn.Linear(d_model, 2 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x, memory, bias):
        B, T, d = x.shape
        split = lambda t: t.reshape(B, t.shape[1], self.heads, d // self.heads).transpose(1, 2)  # noqa: E731
        k, v = self.key_value(memory).chunk(2, dim=-1)
        out = F.scaled_dot_product_attention(split(self.query(x)), split(k), split(v), attn_mask=bias)
        return self.out(out.transpose(1, 2).reshape(B, T, d))


class Block(nn.Module):
    """A pre-norm Transformer block: self-attention, optionally cross-attention to a memory, then a feed-forward
    layer, each added to the residual stream.

        y = x + SelfAttn(LN(x));  y = y + CrossAttn(LN(y), memory);  y = y + FF(LN(y))
    """

    def __init__(self, d_model: int, heads: int, ff: int, cross: bool = False, self_attention: bool = True):
        super().__init__()
        self.self_attention = Attention(d_model, heads) if self_attention else None
        self.cross_attention = Attention(d_model, heads) if cross else None
        self.norms = nn.ModuleList(nn.LayerNorm(d_model) for _ in range(1 + self_attention + cross))
        self.ff = nn.Sequential(nn.Linear(d_model, ff), nn.GELU(), nn.Linear(ff, d_model))

    def forward(self, x, bias, memory=None):
        norms = iter(self.norms)
        if self.self_attention is not None:
            h = next(norms)(x)
            x = x + self.self_attention(h, h, bias)
        if self.cross_attention is not None:
            x = x + self.cross_attention(next(norms)(x), memory, bias)
        return x + self.ff(next(norms)(x))
