"""Small shared neural blocks."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def mlp(sizes: list[int], activation=nn.Tanh) -> nn.Sequential:
    """Linear layers of the given sizes with ``activation`` between them (none after the last)."""
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


class GaussianHead(nn.Module):
    """features -> (loc, scale) of a diagonal Gaussian; scale = softplus(.) + min_scale keeps it positive."""

    def __init__(self, in_dim: int, out_dim: int, hidden: int | None = None, min_scale: float = 1e-4):
        super().__init__()
        self.net = mlp([in_dim, hidden, 2 * out_dim]) if hidden else nn.Linear(in_dim, 2 * out_dim)
        self.min_scale = min_scale

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        loc, raw = self.net(features).chunk(2, dim=-1)
        return loc, F.softplus(raw) + self.min_scale
