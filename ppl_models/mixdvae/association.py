r"""Exclusive association (JPDA-style): each source explains at most one detection per frame, each detection one
source or clutter.

Instead of one independent assignment w_tk per detection (the paper's model), each frame has one joint
assignment a_t over the feasible matchings of its K detection slots to N sources or "none" (clutter), no
source used twice. The matchings are enumerated once as a table (M, K) of values in 0..N (N = none):

    M = sum_j C(K, j) N! / (N - j)!        (N = 3, K = 3: 34;  K = 4: 73)

Prior: p(a_t = m | mask_t) ∝ w^{#(present detections given to none)}, 0 where a padded slot gets a source.
Likelihood: log p(o_t | a_t = m, s_t) = sum_k mask_tk ll_tk[table_mk], ll_tk[n] = log N(o_tk; s_tn, Phi_tk) for a
source, the clutter density for none. TraceEnum_ELBO sums a_t out exactly; the E-W step of the VEM takes the
marginals eta_tkn = sum_m q(a_t = m) [table_mk = n] of the exact joint posterior under q(s).
"""

from __future__ import annotations

import itertools
import math
from functools import lru_cache

import torch

MAX_MATCHINGS = 20000


@lru_cache(maxsize=None)
def _table(num_sources: int, slots: int) -> tuple:
    rows = []
    for j in range(min(num_sources, slots) + 1):
        for chosen in itertools.combinations(range(slots), j):
            for sources in itertools.permutations(range(num_sources), j):
                row = [num_sources] * slots
                for k, n in zip(chosen, sources):
                    row[k] = n
                rows.append(tuple(row))
    return tuple(rows)


def matching_table(num_sources: int, slots: int, device=None) -> torch.Tensor:
    """(M, K) long: every assignment of K detection slots to distinct sources 0..N-1 or none (N)."""
    size = sum(math.comb(slots, j) * math.perm(num_sources, j) for j in range(min(num_sources, slots) + 1))
    if size > MAX_MATCHINGS:
        raise ValueError(f"exclusive association: {num_sources} sources and up to {slots} detections per frame make "
                         f"{size} matchings (more than {MAX_MATCHINGS}); drop weak detections (--min-score) or use "
                         f"--association independent")
    return torch.tensor(_table(num_sources, slots), dtype=torch.long, device=device).reshape(-1, slots)


def matching_prior_logits(mask: torch.Tensor, table: torch.Tensor, log_clutter: float) -> torch.Tensor:
    """log p(a_t = m | mask_t), (B, T, M): w^{#none among present slots}, -inf if a padded slot gets a source."""
    N = int(table.max())
    none = table == N  # (M, K)
    present = mask[..., None, :]  # (B, T, 1, K)
    infeasible = (~present & ~none).any(-1)  # (B, T, M)
    logits = (present & none).sum(-1) * log_clutter
    logits = logits.masked_fill(infeasible, -math.inf)
    return logits - logits.logsumexp(-1, keepdim=True)


def matching_log_lik(ll: torch.Tensor, mask: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """sum_k mask_tk ll_tk[table_mk], (B, T, M), from per-slot log-likelihoods ll (B, T, K, N + 1)."""
    K = ll.shape[-2]
    picked = ll[..., torch.arange(K, device=ll.device), table]  # (B, T, M, K)
    return torch.where(mask[..., None, :], picked, torch.zeros_like(picked)).sum(-1)


def exclusive_posterior(ll: torch.Tensor, mask: torch.Tensor, table: torch.Tensor, log_clutter: float):
    """q(a_t = m) ∝ p(a_t = m) exp(matching_log_lik), (B, T, M)."""
    return torch.softmax(matching_prior_logits(mask, table, log_clutter) + matching_log_lik(ll, mask, table), -1)


def exclusive_responsibilities(ll: torch.Tensor, mask: torch.Tensor, table: torch.Tensor,
                               log_clutter: float) -> torch.Tensor:
    """Marginals eta_tkn = q(a_t assigns slot k to n), (B, T, K, N + 1), the last class being none."""
    q = exclusive_posterior(ll, mask, table, log_clutter)  # (B, T, M)
    onehot = torch.nn.functional.one_hot(table, ll.shape[-1]).to(q)  # (M, K, N + 1)
    return torch.einsum("btm,mkn->btkn", q, onehot)
