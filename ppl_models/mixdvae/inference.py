"""Fitting a MixDVAE to one batch of problems (windows) with any of its guides, and reading the posterior:
source means, responsibilities P(w | o, s) averaged over draws of q(s), and MAP assignments from
``infer_discrete``.

The responsibilities given a draw of s are exactly what ``TraceEnum_ELBO.compute_marginals`` returns for w
(``tests/test_mixdvae.py`` checks the two agree); we evaluate them with the closed-form E-W step because
pyro 1.9's ``compute_marginals`` fails (KeyError in ``pyro.ops.rings``) when a plate has size 1 — a single
window, which is what the ``track`` command fits.

Inference is per problem, as in the paper: the DVAE decoder stays frozen, the encoder is fine-tuned on
the problem, and q(s) (and q(w) for ``sampled-w``) is fitted from scratch. Each fit runs in its own scope of
Pyro's parameter store, so a fit never disturbs the caller's parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyro
import torch
from pyro import poutine
from pyro.infer import SVI, TraceEnum_ELBO, TraceGraph_ELBO, infer_discrete
from pyro.optim import ClippedAdam
from tqdm.auto import trange

from ppl_models.mixdvae.model import MixDVAE
from ppl_models.mixdvae.association import matching_table
from ppl_models.mixdvae.vem import box_size

GUIDES = ("vem", "svi", "sampled-w")


@dataclass
class MixFit:
    sources: torch.Tensor  # (B, N, T, D) posterior means of the sources
    variances: torch.Tensor  # (B, N, T, D)
    responsibilities: torch.Tensor  # (B, T, K, N') posterior P(w_tk = n), from compute_marginals
    assignments: torch.Tensor  # (B, T, K) MAP assignment (infer_discrete, temperature 0)
    phi: torch.Tensor  # (D,) relative observation variance
    beta: torch.Tensor  # (N',) assignment prior
    losses: list[float] = field(default_factory=list)


def elbo_for(guide: str, num_particles: int = 1):
    """The ELBO each guide is trained with: enumeration, except for the sampled-w ablation."""
    if guide == "sampled-w":
        return TraceGraph_ELBO(num_particles=num_particles, max_plate_nesting=MixDVAE.max_plate_nesting)
    return TraceEnum_ELBO(num_particles=num_particles, max_plate_nesting=MixDVAE.max_plate_nesting)


def fit(mix: MixDVAE, obs: torch.Tensor, mask: torch.Tensor, init: torch.Tensor, guide: str = "vem",
        iterations: int = 100, lr: float = 0.01, source_lr: float = 1e-3, marginal_samples: int = 8,
        progress: bool = False) -> MixFit:
    """Fit ``mix`` to obs (B, T, K, D) / mask (B, T, K) from initial sources (B, N, T, D).

    ``lr``: Adam step of the encoder and of the other parameters; ``source_lr``: of the mean-field q(s)
    (in the data's units: normalised image coordinates for boxes)."""
    if guide not in GUIDES:
        raise ValueError(f"--guide must be one of {', '.join(GUIDES)}, got {guide!r}")
    mix.closed_form_m_step = guide == "vem"
    guide_fn = mix.guides[guide]
    with pyro.get_param_store().scope():
        mix.start(obs, mask, init)
        optim = ClippedAdam(lambda name, _: {"lr": source_lr if name.startswith("mixdvae_s_") else lr})
        svi = SVI(mix.model, guide_fn, optim, loss=elbo_for(guide))
        losses = []
        for i in trange(iterations, desc=f"MixDVAE ({guide})", disable=not progress, leave=False):
            losses.append(svi.step(obs, mask))
            if guide == "vem":
                if i == iterations // 2:
                    mix.end_warm_up()
                mix.vem_update(obs, mask)
        sources, variances = mix.posterior_sources(guide)
        responsibilities = _marginals(mix, guide_fn, obs, mask, marginal_samples)
        assignments = map_assignments(mix, guide_fn, obs, mask)
        phi, beta = (t.detach().clone() for t in mix.observation_params())
    return MixFit(sources, variances, responsibilities, assignments, phi, beta, losses)


@torch.no_grad()
def _marginals(mix, guide_fn, obs, mask, samples: int) -> torch.Tensor:
    """P(w_tk = n | o, s) averaged over draws of s from the guide: (B, T, K, N')."""
    B, T, K, D = obs.shape
    phi, beta = mix.observation_params()
    obs_var = phi * box_size(obs, mask) ** 2
    probs = []
    for _ in range(samples):
        s = poutine.trace(poutine.block(guide_fn, hide=["w"])).get_trace(obs, mask).nodes["s"]["value"]
        s = s.reshape(B, mix.num_sources, T, D)
        probs.append(mix.responsibilities(obs, mask, s, torch.zeros_like(s), obs_var, beta))
    return torch.stack(probs).mean(0)


@torch.no_grad()
def map_assignments(mix, guide_fn, obs, mask) -> torch.Tensor:
    """The most probable joint assignment w given one draw of the guide (Viterbi-like, temperature 0); under
    exclusive association, the source of each detection slot of the MAP matching (N: none, also for padding)."""
    site = "a" if mix.exclusive else "w"
    guide_trace = poutine.trace(poutine.block(guide_fn, hide=[site])).get_trace(obs, mask)
    decoder = infer_discrete(poutine.replay(mix.model, trace=guide_trace),
                             first_available_dim=-1 - mix.max_plate_nesting, temperature=0)
    value = poutine.trace(decoder).get_trace(obs, mask).nodes[site]["value"]
    if not mix.exclusive:
        return value
    return matching_table(mix.num_sources, obs.shape[2], obs.device)[value.reshape(mask.shape[:2])]
