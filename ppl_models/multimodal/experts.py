r"""Per-sensor experts and the gate of the attention mixtures (Guo 2019, arXiv 1904.10450, sec. 4).

An expert f_m sees only its sensor's stream x^m and outputs the parameters of p(y_t | x^m); the gate g sees
every sensor and outputs mixing logits over the M experts. How far back they look is the variant:

    ``frame``      h_t = MLP(x_t)                        conditional attention mixture (eq. 17)
    ``recurrent``  h_t = GRU(h_{t-1}, MLP(x_t))          Markov attention mixture (eq. 16)
    ``conv``       h_t = causal dilated Conv1d(x_{t-30..t})   recurrent attention mixture (eq. 15)

All three are *online*: h_t depends on x_{1:t} only (the convolution pads on the left), so a decision at t
never uses a future input. Shapes: x (N, T, D) -> h (N, T, H).
"""

from __future__ import annotations

import torch
from torch import nn

ENCODERS = ("frame", "recurrent", "conv")


class FrameEncoder(nn.Module):
    """h_t = MLP(x_t): no memory."""

    def __init__(self, in_dim: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class RecurrentEncoder(nn.Module):
    """h_t = GRU(h_{t-1}, tanh(W x_t)): a forward recurrence, so h_t summarises x_{1:t}."""

    def __init__(self, in_dim: int, hidden: int):
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(in_dim, hidden), nn.Tanh())
        self.rnn = nn.GRU(hidden, hidden, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.rnn(self.embed(x))[0])


class CausalConvEncoder(nn.Module):
    """A stack of dilated 1-D convolutions, kernel 3, dilations 1, 2, 4, 8 (a 31-frame look-back), each
    padded on the left only: the output at t sees x_{t-30..t}."""

    def __init__(self, in_dim: int, hidden: int, dilations: tuple[int, ...] = (1, 2, 4, 8), kernel: int = 3):
        super().__init__()
        self.embed = nn.Linear(in_dim, hidden)
        self.layers = nn.ModuleList(nn.Conv1d(hidden, hidden, kernel, dilation=d) for d in dilations)
        self.pads = [(kernel - 1) * d for d in dilations]

    @property
    def receptive_field(self) -> int:
        return 1 + sum(self.pads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.embed(x)).transpose(1, 2)  # (N, H, T)
        for conv, pad in zip(self.layers, self.pads):
            h = h + torch.tanh(conv(nn.functional.pad(h, (pad, 0))))  # residual, causal
        return torch.tanh(h.transpose(1, 2))


def make_encoder(kind: str, in_dim: int, hidden: int) -> nn.Module:
    if kind == "frame":
        return FrameEncoder(in_dim, hidden)
    if kind == "recurrent":
        return RecurrentEncoder(in_dim, hidden)
    if kind == "conv":
        return CausalConvEncoder(in_dim, hidden)
    raise ValueError(f"encoder kind must be one of {', '.join(ENCODERS)}, got {kind!r}")


class Expert(nn.Module):
    """One sensor's expert: an encoder and a head giving p(y_t | x^m) — a Bernoulli logit, or a Gaussian
    mean and log-scale for a continuous target."""

    def __init__(self, kind: str, in_dim: int, hidden: int, target: str):
        super().__init__()
        self.encoder = make_encoder(kind, in_dim, hidden)
        self.head = nn.Linear(hidden, 1 if target == "bernoulli" else 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(hidden units (N, T, H), output parameters (N, T, 1 or 2))."""
        h = self.encoder(x)
        return h, self.head(h)


class Gate(nn.Module):
    """The attention: an encoder over all sensors concatenated, and mixing logits over the M experts."""

    def __init__(self, kind: str, in_dim: int, hidden: int, num_experts: int):
        super().__init__()
        self.encoder = make_encoder(kind, in_dim, hidden)
        self.head = nn.Linear(hidden, num_experts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))  # (N, T, M) logits
