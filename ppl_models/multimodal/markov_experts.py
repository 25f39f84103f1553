r"""The classic Markov mixture of experts: the index of the trusted sensor is itself a Markov chain
(Meila & Jordan 1996; the "Markov" model of Guo 2019, arXiv 1904.10450, sec. 4, with the gate as input).

    p(m_1 | x_1)          = softmax(log pi + g(x_1))
    p(m_t | m_{t-1}, x_t) = softmax(log A[m_{t-1}, :] + g(x_t))          A learned, rows on the simplex
    y_t | m_t = m         ~ p(y_t | f_m(x^m_t))                           frame-wise experts

        m_1 ----> m_2 ----> ... ----> m_T        (an input-driven HMM over "which sensor to trust")
         |         |                   |
         v         v                   v
        y_1       y_2                 y_T         each y_t also sees f_m(x^m_t); g sees all sensors

Two equivalent ways to write the model, as for the DVAEs:

* ``model(..., readable=True)``: one ``pyro.sample`` per frame inside ``pyro.markov``; ``TraceEnum_ELBO``
  enumerates every m_t and runs the forward algorithm by variable elimination. What a tutorial shows.
* ``model(...)``: one site whose distribution is ``DiscreteHMM``, whose ``log_prob`` is the same forward
  algorithm over all frames at once. What training uses (one site instead of T).

Online prediction without labels filters the chain forward through the gate alone,
alpha_t = alpha_{t-1} P_t, and mixes the experts with alpha_t; with labels, ``compute_marginals`` on the
readable form gives the smoothed posterior p(m_t | y_{1:T}, x): which sensor explained each frame.

Free experts make the chain degenerate at once (two experts become constant "y = 0" / "y = 1" predictors and
the chain models the label's persistence): the ``expert_weight`` factor of
:mod:`~ppl_models.multimodal.attention` keeps each expert a classifier of its own sensor.
"""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
from pyro.infer import TraceEnum_ELBO
from pyro.ops.indexing import Vindex
from torch import nn

from ppl_models.multimodal.attention import TARGETS, expert_likelihood, expert_mean, experts_alone_factor
from ppl_models.multimodal.experts import Expert, Gate


class MarkovMixtureOfExperts(nn.Module):
    """Per-sensor experts mixed by a Markov chain over the expert index, summed out exactly by enumeration
    (module docstring: graph, equations)."""
    max_plate_nesting = 1

    def __init__(self, sensors: dict[str, int], hidden: int = 32, target: str = "bernoulli", stay: float = 0.9,
                 expert_weight: float = 1.0):
        super().__init__()
        if target not in TARGETS:
            raise ValueError(f"target must be one of {', '.join(TARGETS)}, got {target!r}")
        M = len(sensors)
        if M < 2:
            raise ValueError("a Markov mixture of experts needs at least two sensors")
        self.sensor_names, self.target, self.variant = list(sensors), target, "mme"
        self.expert_weight = expert_weight
        self.experts = nn.ModuleList(Expert("frame", d, hidden, target) for d in sensors.values())
        self.gate = Gate("frame", sum(sensors.values()), hidden, M)
        off = (1 - stay) / (M - 1)
        self.log_init = nn.Parameter(torch.zeros(M))  # log pi, up to a constant
        self.trans_logits = nn.Parameter(torch.full((M, M), off).fill_diagonal_(stay).log())  # log A

    def forward(self, xs: tuple[torch.Tensor, ...]):
        """(transition log-probabilities (N, T, M, M), row = m_{t-1}, the row at t = 0 being p(m_1 | x_1)
        repeated; expert outputs (N, T, M, 1|2))."""
        g = self.gate(torch.cat(xs, -1))  # (N, T, M)
        rows = self.trans_logits.expand(*g.shape[:2], -1, -1).clone()  # (N, T, M, M)
        rows[:, 0] = self.log_init  # t = 0: no previous state, every row is the initial distribution
        trans = torch.log_softmax(rows + g[:, :, None, :], -1)
        return trans, self.expert_outputs(xs)[1]

    def expert_outputs(self, xs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        """(hidden units (N, T, M, H), outputs (N, T, M, 1|2)) of the experts, each on its own sensor."""
        hidden, params = zip(*(f(x) for f, x in zip(self.experts, xs)))
        return torch.stack(hidden, 2), torch.stack(params, 2)

    def model(self, xs: tuple[torch.Tensor, ...], y: torch.Tensor | None = None, readable: bool = False):
        pyro.module("markov_mixture_of_experts", self)
        trans, params = self(xs)
        N, T, M = trans.shape[:3]
        experts_alone_factor(params, y, self.target, self.expert_weight)
        with pyro.plate("sequences", N, dim=-1):
            if not readable:
                # DiscreteHMM starts in a state before the first frame; our t = 0 rows do not depend on it.
                hmm = dist.DiscreteHMM(trans.new_zeros(N, M), trans, expert_likelihood(params, self.target))
                pyro.sample("y", hmm, obs=y)
                return
            n, m = torch.arange(N, device=trans.device), torch.zeros((), dtype=torch.long, device=trans.device)
            for t in pyro.markov(range(T)):
                m = pyro.sample(f"m_{t}", dist.Categorical(logits=Vindex(trans)[n, t, m]),
                                infer={"enumerate": "parallel"})  # (M, 1) when enumerated
                pyro.sample(f"y_{t}", expert_likelihood(Vindex(params)[n, t, m], self.target),
                            obs=None if y is None else y[:, t])

    def guide(self, xs, y=None, readable: bool = False):
        """Empty: every m_t is enumerated."""

    @torch.no_grad()
    def predict(self, xs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        """Online E[y_t | x_{1:t}] (N, T) and the filtered trust alpha_t = p(m_t | x_{1:t}) (N, T, M)."""
        trans, params = self(xs)
        alpha = trans[:, 0, 0].exp()  # (N, M)
        alphas = [alpha]
        for t in range(1, trans.shape[1]):
            alpha = (alpha[:, :, None] * trans[:, t].exp()).sum(1)
            alphas.append(alpha)
        alpha = torch.stack(alphas, 1)  # (N, T, M)
        return (alpha * expert_mean(params, self.target)).sum(-1), alpha

    @torch.no_grad()
    def responsibilities(self, xs: tuple[torch.Tensor, ...], y: torch.Tensor) -> torch.Tensor:
        """Smoothed p(m_t | y_{1:T}, x) (N, T, M) by ``compute_marginals`` on the readable form."""
        T, M = y.shape[1], len(self.sensor_names)
        marginals = TraceEnum_ELBO(max_plate_nesting=1).compute_marginals(
            self.model, self.guide, xs, y, readable=True)
        support = torch.arange(M, device=y.device)[:, None]
        return torch.stack([marginals[f"m_{t}"].log_prob(support).exp().T for t in range(T)], 1)
