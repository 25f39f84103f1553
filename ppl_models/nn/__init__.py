"""Small shared neural blocks."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F


def mlp(sizes: list[int], activation=nn.Tanh, activate_last: bool = False) -> nn.Module:
    """Linear layers of the given sizes with ``activation`` between them; after the last one too with
    ``activate_last`` (the reference code's "dense" stacks). Sizes of one number: the identity."""
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if activate_last or i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


def widths(hidden: int | Sequence[int] | None) -> list[int]:
    """A hidden-layer spec as a list of widths: None or 0 -> [], 128 -> [128], (64, 32) -> [64, 32]."""
    if not hidden:
        return []
    return [int(hidden)] if isinstance(hidden, int) else [int(h) for h in hidden]


def default_decoder(hidden, decoder_hidden=None, layers: int = 2) -> list[int]:
    """A decoder's hidden widths: ``decoder_hidden`` when given, else ``layers`` layers of the first width of
    ``hidden`` (the zoo's default decoders)."""
    if decoder_hidden is not None:
        return widths(decoder_hidden)
    return widths(hidden)[:1] * layers


class GaussianHead(nn.Module):
    """features -> (loc, scale) of a diagonal Gaussian, through hidden tanh layers of widths ``hidden``.

    ``scale`` names how the second half of the output becomes a standard deviation: ``softplus``
    (softplus(.) + min_scale, ours) or ``logvar`` (exp(. / 2): the output is a log-variance, the reference
    implementations' convention; their separate mean and log-variance layers are the two halves of our last one).
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: int | Sequence[int] | None = None,
                 min_scale: float = 1e-4, scale: str = "softplus"):
        super().__init__()
        if scale not in ("softplus", "logvar"):
            raise ValueError(f"scale must be 'softplus' or 'logvar', got {scale!r}")
        layers = widths(hidden)
        self.net = mlp([in_dim, *layers, 2 * out_dim]) if layers else nn.Linear(in_dim, 2 * out_dim)
        self.min_scale, self.scale = min_scale, scale

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        loc, raw = self.net(features).chunk(2, dim=-1)
        if self.scale == "logvar":
            return loc, torch.exp(0.5 * raw)
        return loc, F.softplus(raw) + self.min_scale
