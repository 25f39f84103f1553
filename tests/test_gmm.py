"""The enumerated Gaussian mixture against brute force: every one of the K^N joint assignments summed."""

import itertools

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import TraceEnum_ELBO

from ppl_models.demo import fit_gmm, gmm_data
from ppl_models.toy.gmm import GaussianMixture

N, K, D = 6, 3, 2


def brute_force_log_joint(gmm, data, weights, locs, scales):
    """log p(x, pi, mu) = log sum over all K^N assignments of p(x, w, pi, mu), and each term (K^N,)."""
    prior = (dist.Dirichlet(data.new_full((K,), gmm.concentration)).log_prob(weights)
             + dist.Normal(0.0, gmm.prior_scale).log_prob(locs).sum())
    terms = []
    for w in itertools.product(range(K), repeat=len(data)):
        w = torch.tensor(w, device=data.device)
        terms.append(weights.log()[w].sum()
                     + dist.Normal(locs[w], scales[w, None]).log_prob(data).sum())
    terms = torch.stack(terms)
    return prior + torch.logsumexp(terms, 0), terms


def globals_from_store():
    return (pyro.param("gmm.weights_map").detach(), pyro.param("gmm.locs_map").detach(),
            pyro.param("gmm.scales").detach())


@pytest.fixture
def problem(device):
    torch.manual_seed(1)
    data = (torch.randn(N, D) * 2).to(device)
    gmm = GaussianMixture(K, D)
    elbo = TraceEnum_ELBO(max_plate_nesting=1)
    elbo.loss(gmm.model, gmm.guide_map, data)  # creates the parameters
    with torch.no_grad():  # move away from the initial values, so nothing is special
        pyro.param("gmm.scales").unconstrained().copy_(torch.tensor([0.3, -0.2, 0.1], device=device))
        pyro.param("gmm.weights_map").unconstrained().add_(torch.tensor([0.2, -0.4, 0.1], device=device))
    return gmm, data, elbo


def test_enumerated_elbo_equals_the_brute_force_sum(problem):
    gmm, data, elbo = problem
    exact, _ = brute_force_log_joint(gmm, data, *globals_from_store())
    loss = elbo.loss(gmm.model, gmm.guide_map, data)  # Delta guide: -ELBO = -log p(x, pi, mu) exactly
    assert loss == pytest.approx(-exact.item(), rel=1e-5)


def test_meanfield_elbo_equals_brute_force_at_the_sampled_globals(problem):
    gmm, data, elbo = problem
    guide_trace = pyro.poutine.trace(gmm.guide_meanfield).get_trace(data)
    weights, locs = guide_trace.nodes["weights"]["value"], guide_trace.nodes["locs"]["value"]
    guide_trace.compute_log_prob()
    log_q = guide_trace.nodes["weights"]["log_prob_sum"] + guide_trace.nodes["locs"]["log_prob_sum"]
    exact, _ = brute_force_log_joint(gmm, data, weights.detach(), locs.detach(), pyro.param("gmm.scales").detach())
    replayed = pyro.poutine.replay(gmm.guide_meanfield, trace=guide_trace)
    loss = elbo.loss(gmm.model, replayed, data)
    assert loss == pytest.approx(-(exact - log_q).item(), rel=1e-5)


def test_compute_marginals_equal_brute_force_posterior(problem):
    gmm, data, _ = problem
    _, terms = brute_force_log_joint(gmm, data, *globals_from_store())
    posterior = torch.softmax(terms, 0)  # p(w | x, pi, mu) over the K^N joint assignments
    assignments = torch.tensor(list(itertools.product(range(K), repeat=N)), device=data.device)
    expected = torch.stack([(posterior[:, None] * (assignments[:, i, None] == torch.arange(K, device=data.device)))
                            .sum(0) for i in range(N)])
    torch.testing.assert_close(gmm.responsibilities(data).detach(), expected, atol=1e-5, rtol=1e-4)


def test_infer_discrete_finds_the_brute_force_map_assignment(problem):
    gmm, data, _ = problem
    _, terms = brute_force_log_joint(gmm, data, *globals_from_store())
    best = list(itertools.product(range(K), repeat=N))[int(terms.argmax())]
    assert gmm.map_assignments(data).tolist() == list(best)


def test_svi_recovers_the_clusters(device):
    points, labels, means = gmm_data(n=600, seed=0)
    gmm, history, data = fit_gmm(points, device, epochs=300, progress=False)
    assert history.train_loss[-1] < history.train_loss[0]
    fitted = pyro.param("gmm.locs_map").detach().cpu().numpy()
    errors = np.sqrt(((fitted[:, None] - means[None]) ** 2).sum(-1)).min(0)
    assert errors.max() < 0.3  # every true mean has a fitted mean within 0.3 (clusters are 5+ apart)
    weights = np.sort(pyro.param("gmm.weights_map").detach().cpu().numpy())
    np.testing.assert_allclose(weights, [0.2, 0.3, 0.5], atol=0.05)
