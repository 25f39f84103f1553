r"""The smallest assignment model: a Gaussian mixture whose assignments are enumerated exactly.

Generative model (K components in D dimensions, N points)::

    pi        ~ Dirichlet(alpha 1_K)                    mixing weights
    mu_k      ~ N(0, tau^2 I_D)          k = 1..K      component means
    w_i | pi  ~ Categorical(pi)          i = 1..N      assignment   <- enumerated, never sampled
    x_i | w_i ~ N(mu_{w_i}, sigma_{w_i}^2 I_D)          observation  (sigma: a learned parameter)

           alpha        tau
             |           |
             v           v
            pi        [ mu_k ]_K   sigma_k
             |           |         /
             v           v        v
         [ w_i ------> x_i ]_N

Every MixDVAE model in the zoo has this shape: replace mu_k by a DVAE-distributed source s_{t,k} and x_i by
the detections of frame t. ``TraceEnum_ELBO`` sums w out of the joint exactly (Pyro's enumeration tutorial),

    log p(x | pi, mu, sigma) = sum_i log sum_k pi_k N(x_i; mu_k, sigma_k^2 I),

so with the MAP guide below the ELBO is the exact log joint of (x, pi, mu), which is what the tests check
against a brute-force sum over all K^N assignments. Posterior responsibilities p(w_i = k | x, ...) come from
``TraceEnum_ELBO.compute_marginals`` and MAP assignments from ``infer_discrete``.

Guides (``GaussianMixture.guides``):
  * ``map``       Delta(pi), Delta(mu): point estimates, the EM-like fit.
  * ``meanfield`` Dirichlet(pi) x prod_k N(mu_k; m_k, diag s_k^2): a variational posterior on the globals.
"""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
from pyro.infer import config_enumerate, infer_discrete
from pyro.ops.indexing import Vindex
from torch import nn
from torch.distributions import constraints


def farthest_point_init(data: torch.Tensor, k: int) -> torch.Tensor:
    """k data points, each the farthest from those already chosen (deterministic, starts at data[0])."""
    chosen = [0]
    dist2 = (data - data[0]).square().sum(-1)
    for _ in range(k - 1):
        chosen.append(int(dist2.argmax()))
        dist2 = torch.minimum(dist2, (data - data[chosen[-1]]).square().sum(-1))
    return data[chosen].clone()


class GaussianMixture(nn.Module):
    """K-component isotropic Gaussian mixture with model-side enumerated assignments."""

    max_plate_nesting = 1

    def __init__(self, num_components: int = 3, dim: int = 2, prior_scale: float = 10.0,
                 concentration: float = 1.0):
        super().__init__()
        self.num_components, self.dim = num_components, dim
        self.prior_scale, self.concentration = prior_scale, concentration
        self.guides = {"map": self.guide_map, "meanfield": self.guide_meanfield}

    @config_enumerate
    def model(self, data: torch.Tensor):
        """data: (N, D) observations."""
        K, D = self.num_components, self.dim
        weights = pyro.sample("weights", dist.Dirichlet(data.new_full((K,), self.concentration)))  # (K,)
        scales = pyro.param("gmm.scales", lambda: data.new_ones(K), constraint=constraints.positive)  # (K,)
        with pyro.plate("components", K):
            locs = pyro.sample("locs", dist.Normal(data.new_zeros(D), self.prior_scale).to_event(1))  # (K, D)
        with pyro.plate("data", data.shape[0]):
            assignment = pyro.sample("assignment", dist.Categorical(weights))  # (N,) or (K, 1) enumerated
            loc = Vindex(locs)[assignment]  # (N, D) or (K, 1, D)
            scale = Vindex(scales)[assignment].unsqueeze(-1)  # (N, 1) or (K, 1, 1)
            pyro.sample("obs", dist.Normal(loc, scale).to_event(1), obs=data)

    def guide_map(self, data: torch.Tensor):
        K = self.num_components
        weights = pyro.param("gmm.weights_map", lambda: data.new_full((K,), 1.0 / K), constraint=constraints.simplex)
        locs = pyro.param("gmm.locs_map", lambda: farthest_point_init(data, K))
        pyro.sample("weights", dist.Delta(weights, event_dim=1))
        with pyro.plate("components", K):
            pyro.sample("locs", dist.Delta(locs, event_dim=1))

    def guide_meanfield(self, data: torch.Tensor):
        K = self.num_components
        conc = pyro.param("gmm.weights_conc", lambda: data.new_full((K,), 10.0), constraint=constraints.positive)
        loc = pyro.param("gmm.locs_loc", lambda: farthest_point_init(data, K))
        scale = pyro.param("gmm.locs_scale", lambda: data.new_full((K, self.dim), 0.1),
                           constraint=constraints.positive)
        pyro.sample("weights", dist.Dirichlet(conc))
        with pyro.plate("components", K):
            pyro.sample("locs", dist.Normal(loc, scale).to_event(1))

    def responsibilities(self, data: torch.Tensor, guide: str = "map") -> torch.Tensor:
        """p(w_i = k | x, globals from the guide), shape (N, K), from ``compute_marginals``."""
        elbo = pyro.infer.TraceEnum_ELBO(max_plate_nesting=self.max_plate_nesting)
        marginals = elbo.compute_marginals(self.model, self.guides[guide], data)
        return marginals["assignment"].probs  # a Categorical over k for each point

    def map_assignments(self, data: torch.Tensor, guide: str = "map") -> torch.Tensor:
        """The jointly most probable assignments (N,), by ``infer_discrete`` (Viterbi-style max-sum)."""
        guide_trace = pyro.poutine.trace(self.guides[guide]).get_trace(data)
        replayed = pyro.poutine.replay(self.model, trace=guide_trace)
        decoder = infer_discrete(replayed, first_available_dim=-1 - self.max_plate_nesting, temperature=0)
        return pyro.poutine.trace(decoder).get_trace(data).nodes["assignment"]["value"]
