# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Tutorial 1 — Summing out assignments: the enumerated Gaussian mixture
#
# Every multi-source model in this zoo (MixDVAE for tracking and separation, the attention mixtures for
# sensor fusion) has a discrete variable that says *which source explains an observation*. Pyro never has
# to sample it: `TraceEnum_ELBO` sums it out exactly. This tutorial shows that on the smallest such model, a
# Gaussian mixture, and checks every claim numerically:
#
# 1. the enumerated ELBO equals the log of a brute-force sum over all $K^N$ joint assignments;
# 2. `compute_marginals` gives the posterior responsibilities — the E-step of EM;
# 3. `infer_discrete` gives the jointly most probable assignment;
# 4. SVI on the enumerated ELBO recovers the clusters.
#
# The model (``ppl_models/toy/gmm.py``):
#
# $$\pi \sim \mathrm{Dir}(\alpha 1_K),\quad \mu_k \sim \mathcal N(0, \tau^2 I),\quad
#   w_i \mid \pi \sim \mathrm{Cat}(\pi),\quad x_i \mid w_i \sim \mathcal N(\mu_{w_i}, \sigma_{w_i}^2 I).$$
#
# Run it as a script (`python tutorials/01_enumerated_mixture.py`) or open it as a notebook with jupytext.

# %%
import itertools
import os

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from pyro.infer import TraceEnum_ELBO

from ppl_models.demo import fit_gmm, gmm_data
from ppl_models.toy.gmm import GaussianMixture

pyro.set_rng_seed(0)
OUT = os.environ.get("TUTORIAL_OUT", "tutorial_output")

# %% [markdown]
# ## 1. What enumeration does to the assignment site
#
# Under `TraceEnum_ELBO`, the `assignment` site does not hold a sample of shape `(N,)` but *all K values*,
# in a new tensor dimension to the left of the plates: shape `(K, 1)`. Everything downstream broadcasts
# over it — that is why the model indexes the means with `Vindex(locs)[assignment]`.

# %%
N, K = 6, 3
data = torch.randn(N, 2) * 2
gmm = GaussianMixture(num_components=K, dim=2)
elbo = TraceEnum_ELBO(max_plate_nesting=gmm.max_plate_nesting)
elbo.loss(gmm.model, gmm.guide_map, data)  # creates the parameters

guide_trace = pyro.poutine.trace(gmm.guide_map).get_trace(data)
# poutine.enum is what TraceEnum_ELBO wraps the model in; -2 is the first dim left of the one data plate
model_trace = pyro.poutine.trace(pyro.poutine.enum(pyro.poutine.replay(gmm.model, trace=guide_trace),
                                                   first_available_dim=-2)).get_trace(data)
print("assignment value shape under enumeration:", tuple(model_trace.nodes["assignment"]["value"].shape))

# %% [markdown]
# ## 2. The enumerated ELBO is an exact sum
#
# With the MAP guide (point masses on $\pi$ and $\mu$), the ELBO has no Monte Carlo error at all: it is
# $\log p(x, \pi, \mu) = \log p(\pi, \mu) + \sum_i \log \sum_k \pi_k \mathcal N(x_i; \mu_k, \sigma_k^2 I)$.
# We check it against the brute-force sum over all $K^N = 729$ joint assignments.

# %%
weights = pyro.param("gmm.weights_map").detach()
locs = pyro.param("gmm.locs_map").detach()
scales = pyro.param("gmm.scales").detach()
log_prior = (dist.Dirichlet(torch.ones(K)).log_prob(weights)
             + dist.Normal(0.0, gmm.prior_scale).log_prob(locs).sum())
assignments = torch.tensor(list(itertools.product(range(K), repeat=N)))  # (K^N, N)
log_terms = torch.stack([weights.log()[w].sum() + dist.Normal(locs[w], scales[w, None]).log_prob(data).sum()
                         for w in assignments])
brute_force = (log_prior + torch.logsumexp(log_terms, 0)).item()
enumerated_elbo = -elbo.loss(gmm.model, gmm.guide_map, data)
print(f"enumerated ELBO {enumerated_elbo:.6f}   brute force {brute_force:.6f}")
assert abs(enumerated_elbo - brute_force) < 1e-4 * abs(brute_force)

# %% [markdown]
# ## 3. Responsibilities are the E-step; `infer_discrete` is the MAP
#
# EM's E-step computes $r_{ik} = \pi_k \mathcal N(x_i;\mu_k,\sigma_k^2) / \sum_j \pi_j \mathcal N(x_i;\mu_j,
# \sigma_j^2)$ by hand. `TraceEnum_ELBO.compute_marginals` gives the same numbers from the model code alone.

# %%
by_hand = torch.softmax(weights.log() + dist.Normal(locs, scales[:, None]).log_prob(data[:, None]).sum(-1), -1)
from_pyro = gmm.responsibilities(data).detach()
print("largest difference:", float((by_hand - from_pyro).abs().max()))
assert torch.allclose(by_hand, from_pyro, atol=1e-5)
best = assignments[log_terms.argmax()]
print("MAP by infer_discrete:", gmm.map_assignments(data).tolist(), " by brute force:", best.tolist())
assert gmm.map_assignments(data).tolist() == best.tolist()

# %% [markdown]
# ## 4. Learning: SVI on the enumerated ELBO
#
# Gradient steps on the exact marginal likelihood (with the MAP guide this is MAP estimation of
# $\pi, \mu, \sigma$). The shared training loop `ppl_models.infer.train_svi` runs it with a progress bar.

# %%
points, labels, true_means = gmm_data(n=int(os.environ.get("TUTORIAL_POINTS", 600)), seed=0)
gmm, history, data = fit_gmm(points, torch.device("cpu"), epochs=300, progress=False)
fitted = pyro.param("gmm.locs_map").detach().numpy()
print("fitted means:\n", fitted.round(2), "\ntrue means:\n", true_means)
nearest = np.sqrt(((fitted[:, None] - true_means[None]) ** 2).sum(-1)).min(0)
assert nearest.max() < 0.3

from ppl_models.plots import plot_elbo, plot_mixture_fit  # noqa: E402

plot_mixture_fit(points, gmm.responsibilities(data).detach().numpy(), fitted, true_means, f"{OUT}/gmm_fit.png")
plot_elbo(history, f"{OUT}/gmm_elbo.png", title="negative ELBO (exact)")
print(f"figures in {OUT}/")

# %% [markdown]
# ## What next
# MixDVAE replaces each mean $\mu_k$ by a whole trajectory $s_{1:T,k}$ drawn from a pre-trained DVAE, and
# each point by the detections of a frame; the assignment site, `Vindex` and `TraceEnum_ELBO` stay the same.
