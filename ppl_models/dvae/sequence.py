r"""A whole latent sequence z_{1:T} as one Pyro sample site: the fast path of every DVAE.

A DVAE latent (prior or posterior) is autoregressive Gaussian,

    h_t = RNN(h_{t-1}, [z_{t-1}, a_t])                          (optional recurrence)
    z_t ~ N(loc_t, scale_t^2),  (loc_t, scale_t) = head([h_t, z_{t-1}, c_t])

with contexts a_t, c_t computed from the observations beforehand. :class:`GaussianCell` holds the RNN and
the head; :class:`LatentSequence` is the distribution of z_{1:T}: ``rsample`` runs the cell frame by frame
(each z_t needs z_{t-1}), while ``log_prob`` is teacher-forced — given the whole z it feeds z_{0:T-1} to the
RNN in one cuDNN call and scores all frames at once. One site per sequence instead of one per frame is
what keeps Pyro's per-site overhead off the training path (see DESIGN notes).

Two more cells of the same interface are the deep Markov model's (Krishnan, Shalit & Sontag, AAAI 2017; Pyro's
``examples/dmm.py``), which the reference DKF uses: :class:`GatedTransition` (the prior of z_t from z_{t-1})
and :class:`CombinerCell` (the posterior from z_{t-1} and a backward recurrence's state).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pyro.distributions import Normal, TorchDistribution, constraints
from torch import nn

from ppl_models.nn import GaussianHead, mlp, widths


class GaussianCell(nn.Module):
    """(loc_t, scale_t) of z_t from z_{t-1}, an optional RNN over [z_{t-1}, a_t], and a context c_t.

    ``rnn`` may be passed in to share one recurrence between a prior and a guide (VRNN). ``hidden`` (a width
    or a list of widths) and ``scale`` are the head's (:class:`~ppl_models.nn.GaussianHead`).
    """

    def __init__(self, z_dim: int, head_ctx_dim: int = 0, rnn_ctx_dim: int = 0, rnn_dim: int = 0,
                 use_z_prev: bool = True, hidden=None, rnn: nn.LSTM | None = None, scale: str = "softplus"):
        super().__init__()
        self.z_dim, self.use_z_prev = z_dim, use_z_prev
        self.rnn = rnn if rnn is not None else (nn.LSTM(z_dim + rnn_ctx_dim, rnn_dim, batch_first=True)
                                                if rnn_dim else None)
        rnn_out = self.rnn.hidden_size if self.rnn is not None else 0
        head_in = rnn_out + (z_dim if use_z_prev else 0) + head_ctx_dim
        if head_in == 0:
            raise ValueError("a GaussianCell needs at least one input (z_prev, an RNN or a context)")
        self.head = GaussianHead(head_in, z_dim, hidden, scale=scale)

    def _head(self, h, z_prev, head_ctx):
        parts = [p for p, use in ((h, h is not None), (z_prev, self.use_z_prev), (head_ctx, head_ctx is not None))
                 if use]
        return self.head(torch.cat(parts, dim=-1))

    def teacher_forced(self, z_prev, rnn_ctx=None, head_ctx=None):
        """All frames at once from the known z_{0:T-1}: (B, T, Dz) -> loc, scale (B, T, Dz)."""
        h = None
        if self.rnn is not None:
            h, _ = self.rnn(z_prev if rnn_ctx is None else torch.cat([z_prev, rnn_ctx], dim=-1))
        return self._head(h, z_prev, head_ctx)

    def step(self, z_prev, rnn_ctx=None, head_ctx=None, state=None):
        """One frame: (B, Dz) -> loc, scale (B, Dz), new RNN state (h, c).

        The recurrence steps through ``torch.lstm_cell`` with the LSTM's own weights (two matrix products and
        one fused kernel on a GPU), the same function as the ``nn.LSTM`` of ``teacher_forced``."""
        h = None
        if self.rnn is not None:
            inp = z_prev if rnn_ctx is None else torch.cat([z_prev, rnn_ctx], dim=-1)
            if state is None:
                zeros = inp.new_zeros(inp.shape[0], self.rnn.hidden_size)
                state = (zeros, zeros)
            rnn = self.rnn
            h, c = torch.lstm_cell(inp, state, rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0)
            state = (h, c)
        return (*self._head(h, z_prev, head_ctx), state)


class MarkovCell(nn.Module):
    """A cell without a recurrence of its own: (loc_t, scale_t) from z_{t-1} and a context c_t alone, so one
    frame and all frames are the same computation (subclasses define ``teacher_forced``)."""

    def step(self, z_prev, rnn_ctx=None, head_ctx=None, state=None):
        return (*self.teacher_forced(z_prev, rnn_ctx, head_ctx), state)


class GatedTransition(MarkovCell):
    r"""The DMM's gated transition p(z_t | z_{t-1}): a gate mixes a linear and a non-linear proposal.

        gate = sigmoid(W2 relu(W1 z_{t-1}))       proposal = V2 relu(V1 z_{t-1})
        loc_t = (1 - gate) * (A z_{t-1} + a) + gate * proposal
        scale_t^2 = softplus(S relu(proposal))
    """

    def __init__(self, z_dim: int, hidden: int | None = None):
        super().__init__()
        hidden = hidden or z_dim
        self.z_dim = z_dim
        self.gate = mlp([z_dim, hidden, z_dim], activation=nn.ReLU)
        self.proposal = mlp([z_dim, hidden, z_dim], activation=nn.ReLU)
        self.linear = nn.Linear(z_dim, z_dim)
        self.variance = nn.Linear(z_dim, z_dim)

    def teacher_forced(self, z_prev, rnn_ctx=None, head_ctx=None):
        gate, proposal = torch.sigmoid(self.gate(z_prev)), self.proposal(z_prev)
        loc = (1 - gate) * self.linear(z_prev) + gate * proposal
        return loc, torch.sqrt(F.softplus(self.variance(torch.relu(proposal))))


class CombinerCell(MarkovCell):
    r"""The DMM's combiner q(z_t | z_{t-1}, g_t): the average of a backward recurrence's state g_t and an
    embedding of z_{t-1}, then a Gaussian head.

        c_t = (tanh(L tanh-MLP(z_{t-1})) + g_t) / 2,    (loc_t, scale_t) = head(c_t)
    """

    def __init__(self, z_dim: int, ctx_dim: int, embed_hidden=None, hidden=None, scale: str = "softplus"):
        super().__init__()
        self.z_dim = z_dim
        self.embed = mlp([z_dim, *widths(embed_hidden), ctx_dim], activate_last=True)
        self.head = GaussianHead(ctx_dim, z_dim, hidden, scale=scale)

    def teacher_forced(self, z_prev, rnn_ctx=None, head_ctx=None):
        return self.head(0.5 * (self.embed(z_prev) + head_ctx))


class LatentSequence(TorchDistribution):
    """z_{1:T} from a :class:`GaussianCell`; batch shape (B,), event shape (T, Dz). z_0 = 0."""

    arg_constraints = {}
    support = constraints.independent(constraints.real, 2)
    has_rsample = True

    def __init__(self, cell: GaussianCell, batch_size: int, length: int, rnn_ctx=None, head_ctx=None,
                 device=None, validate_args=False):
        self.cell, self.rnn_ctx, self.head_ctx = cell, rnn_ctx, head_ctx
        self.device = device
        super().__init__(torch.Size([batch_size]), torch.Size([length, cell.z_dim]), validate_args=validate_args)

    def step(self, z_prev, t: int, state=None):
        """(loc, scale, state) of frame t given z_{t-1}: the cell fed with frame t of the contexts."""
        return self.cell.step(z_prev, None if self.rnn_ctx is None else self.rnn_ctx[:, t],
                              None if self.head_ctx is None else self.head_ctx[:, t], state)

    def rsample(self, sample_shape=torch.Size(), noise: bool = True):
        if sample_shape != torch.Size():
            raise NotImplementedError("LatentSequence draws one sequence per batch element")
        B, (T, D) = self.batch_shape[0], self.event_shape
        contexts = self.rnn_ctx, self.head_ctx
        dtype = next((c.dtype for c in contexts if c is not None), torch.get_default_dtype())
        eps = (torch.randn if noise else torch.zeros)(B, T, D, device=self.device, dtype=dtype)  # all frames' noise
        return unroll(self.cell, eps, *contexts)

    def mean_path(self):
        """z_t = loc_t frame by frame (no noise): the 'mean' sequence used to reconstruct."""
        return self.rsample(noise=False)

    def params(self, z):
        """Teacher-forced (loc, scale) for every frame of a given z (B, T, Dz)."""
        z_prev = torch.cat([torch.zeros_like(z[:, :1]), z[:, :-1]], dim=1)
        return self.cell.teacher_forced(z_prev, self.rnn_ctx, self.head_ctx)

    def log_prob(self, z):
        loc, scale = self.params(z)
        return Normal(loc, scale).log_prob(z).sum((-1, -2))


def unroll(cell, eps: torch.Tensor, rnn_ctx=None, head_ctx=None) -> torch.Tensor:
    """z_{1:T} by ancestral sampling, z_t = loc_t + scale_t * eps_t, from given noise eps (B, T, Dz), z_0 = 0.

    Frame t needs z_{t-1}: the loop is what a DVAE's guide costs. Under :func:`~ppl_models.dvae.fast.graphed`
    (training on a GPU) the whole loop, forward and backward, is replayed from a recorded CUDA graph."""
    from ppl_models.dvae.fast import graphed_unroll  # noqa: PLC0415 (the fast path imports this module)

    fast = graphed_unroll(cell, eps, rnn_ctx, head_ctx)
    if fast is not None:
        return fast
    z_prev, state, zs = torch.zeros_like(eps[:, 0]), None, []
    for t in range(eps.shape[1]):
        loc, scale, state = cell.step(z_prev, None if rnn_ctx is None else rnn_ctx[:, t],
                                      None if head_ctx is None else head_ctx[:, t], state)
        z_prev = loc + scale * eps[:, t]
        zs.append(z_prev)
    return torch.stack(zs, dim=1)
