"""MixDVAE's exclusive association (one matching per frame) and its constant-velocity source prior."""

import itertools
import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine
from pyro.infer import TraceEnum_ELBO

from ppl_models.dvae import build_dvae
from ppl_models.mixdvae import MixDVAE, fit
from ppl_models.mixdvae.association import exclusive_responsibilities, matching_table
from ppl_models.mixdvae.motion import ConstantVelocityPrior
from ppl_models.mixdvae.vem import CLUTTER_LOC, CLUTTER_SCALE, assignment_log_lik


@pytest.mark.parametrize("N, K, M", [(3, 3, 34), (3, 4, 73), (2, 3, 13)])
def test_matching_table_holds_every_feasible_matching_once(N, K, M):
    table = matching_table(N, K)
    assert table.shape == (M, K) and len({tuple(r) for r in table.tolist()}) == M
    for row in table.tolist():
        used = [n for n in row if n < N]
        assert len(used) == len(set(used))


def exclusive_problem(prior, N=3, K=3, T=2, clutter_weight=0.1, seed=0, warm_up=False):
    torch.manual_seed(seed)
    obs = torch.rand(1, T, K, 4) * 0.5 + 0.2
    mask = torch.ones(1, T, K, dtype=torch.bool)
    mask[0, 1, 2] = False  # a missed detection
    mix = MixDVAE(prior, N, association="exclusive", clutter_weight=clutter_weight)
    mix.start(obs, mask, obs[:, :1].transpose(1, 2).expand(1, N, T, 4) + 0.01)
    if not warm_up:
        mix.end_warm_up()
    mix.closed_form_m_step = True
    return mix, obs, mask


def brute_force_log_lik(mix, obs, mask, s):
    """sum_t log sum over feasible matchings of p(a_t) p(o_t | a_t, s_t), matchings listed by brute force."""
    _, T, K, _ = obs.shape
    N = mix.num_sources
    locs = s.reshape(1, N, T, 4)[0]
    scale = mix.state.phi.sqrt() * (obs[0, :, :, 2:] - obs[0, :, :, :2]).abs().repeat(1, 1, 2)  # (T, K, 4)
    total = 0.0
    for t in range(T):
        present = mask[0, t].tolist()
        terms, priors = [], []
        for a in itertools.product(range(N + 1), repeat=K):
            sources = [n for n in a if n < N]
            if len(sources) != len(set(sources)) or any(n < N and not p for n, p in zip(a, present)):
                continue
            ll = 0.0
            for k, n in enumerate(a):
                if not present[k]:
                    continue
                ll = ll + (dist.Normal(locs[n, t], scale[t, k]).log_prob(obs[0, t, k]).sum() if n < N else
                           dist.Normal(CLUTTER_LOC, CLUTTER_SCALE).log_prob(obs[0, t, k]).sum())
            log_prior = sum(n == N and p for n, p in zip(a, present)) * mix.log_clutter
            priors.append(log_prior)
            terms.append(log_prior + ll)
        total = total + torch.logsumexp(torch.stack([torch.as_tensor(x) for x in terms]), 0) - \
            torch.logsumexp(torch.tensor(priors), 0)
    return total


@pytest.mark.parametrize("prior, offset", [("srnn", 0.02), ("constant-velocity", 0.02), ("constant-velocity", 0.5)])
def test_exclusive_enumerated_elbo_equals_the_brute_force_sum_over_matchings(prior, offset):
    """Sources near their detections (after the warm-up), and far from them during the warm-up: there the likeliest
    matching (detections to none) is the least likely a priori (clutter weight 1e-30 per detection), and the sum
    must not underflow to -inf."""
    prior = build_dvae("srnn", "trajectory") if prior == "srnn" else ConstantVelocityPrior()
    mix, obs, mask = exclusive_problem(prior, warm_up=offset > 0.1)
    N, (_, T, K, _) = mix.num_sources, obs.shape
    s = (obs[0].transpose(0, 1)[:N] + offset * torch.randn(N, T, 4)).requires_grad_()
    z = torch.randn(N, T, 4)

    def guide(obs, mask):  # a point mass on (s, z): the ELBO is log p(o, s, z) with the matchings summed out
        with pyro.plate("tracks", N, dim=-1):
            pyro.sample("s", dist.Delta(s, event_dim=2))
            if not isinstance(prior, ConstantVelocityPrior):
                pyro.sample("source_z", dist.Delta(z, event_dim=2))

    def prior_part():
        with pyro.plate("tracks", N, dim=-1):
            mix.prior.prior_sites("source", s)

    elbo = -TraceEnum_ELBO(max_plate_nesting=3).differentiable_loss(mix.model, guide, obs, mask)
    log_prior = poutine.trace(poutine.condition(prior_part, data={"source_z": z})).get_trace().log_prob_sum()
    torch.testing.assert_close(elbo, log_prior + brute_force_log_lik(mix, obs, mask, s), rtol=1e-5, atol=1e-3)


def test_exclusive_responsibilities_are_the_matchings_marginals():
    """Each present detection's classes sum to 1, and no source takes more than one detection in expectation."""
    torch.manual_seed(1)
    obs, mask = torch.rand(2, 5, 4, 4), torch.rand(2, 5, 4) > 0.3
    m = torch.rand(2, 3, 5, 4)
    ll = assignment_log_lik(obs, m, torch.zeros_like(m), torch.full_like(obs, 0.01), clutter=True)
    eta = exclusive_responsibilities(ll, mask, matching_table(3, 4), math.log(1e-3))
    torch.testing.assert_close(eta.sum(-1), torch.ones(2, 5, 4))
    assert torch.all((eta[..., :3] * mask[..., None]).sum(2) <= 1 + 1e-5)
    assert torch.all(eta[..., :3][~mask] == 0)


def test_exclusive_map_never_gives_a_source_two_detections():
    """Two detections next to source 0, source 1 far away: the paper's independent assignments give both to
    source 0; the exclusive MAP gives source 0 one of them and the other to none (clutter) in every frame."""
    T = 4
    source = torch.tensor([[0.30, 0.60, 0.35, 0.50], [0.80, 0.60, 0.85, 0.50]])  # (N, 4) x1, y1, x2, y2 (y up)
    obs = torch.stack([source[0], source[0] + 0.004], 0)[None, None].expand(1, T, 2, 4).clone()
    mask = torch.ones(1, T, 2, dtype=torch.bool)
    init = source[None, :, None].expand(1, 2, T, 4).contiguous()
    labels = {}
    for association in ("independent", "exclusive"):
        pyro.set_rng_seed(0)
        mix = MixDVAE(ConstantVelocityPrior(), 2, association=association)
        labels[association] = fit(mix, obs, mask, init, guide="vem", iterations=4).assignments
    assert torch.all(labels["independent"] == 0)
    assert labels["exclusive"].shape == (1, T, 2)
    assert sorted(labels["exclusive"].flatten().tolist()) == [0] * T + [2] * T  # one detection each to 0, none


def test_constant_velocity_log_density_is_the_gaussian_of_its_state_space_model():
    """log p(s) by the filter's prediction errors against the joint Gaussian of positions built from the
    state-space model (s_1 given, velocity u_1 ~ N(0, size^2), accelerations ~ N(0, q))."""
    torch.manual_seed(0)
    T, prior = 6, ConstantVelocityPrior(accel=0.3)
    s = torch.rand(1, T, 4, dtype=torch.float64) * 0.2 + 0.3
    size = (s[..., 2:] - s[..., :2]).abs().repeat(1, 1, 2).mean(1)[0]  # (4,)
    expected = -0.5 * (math.log(2 * math.pi) * 4 + torch.log(size ** 2).sum())  # frame 1's normaliser
    for d in range(4):  # s_t = s_1 + (t-1) u_1 + sum_{j=2..t} (t - j + 1/2) a_j
        lin_u = torch.arange(T, dtype=torch.float64)
        lin_a = torch.tensor([[t - j + 0.5 if j <= t else 0.0 for j in range(1, T)] for t in range(T)],
                             dtype=torch.float64)
        cov = size[d] ** 2 * torch.outer(lin_u, lin_u) + (prior.accel * size[d]) ** 2 * lin_a @ lin_a.T
        g = dist.MultivariateNormal(s[0, 0, d].expand(T - 1), cov[1:, 1:])
        expected = expected + g.log_prob(s[0, 1:, d])
    torch.testing.assert_close(prior.log_density(s)[0], expected)


def test_cavity_of_the_filter_is_its_one_step_prediction():
    """Dividing the on-line constant-velocity posterior of frame t by frame t's evidence gives the filter's
    prediction of frame t from frames < t (what the E-W step scores detections against with predictive=True)."""
    from ppl_models.mixdvae.baselines import constant_velocity_posterior
    from ppl_models.mixdvae.vem import cavity
    torch.manual_seed(0)
    y = torch.randn(1, 8, 1, dtype=torch.float64).cumsum(1)
    r = torch.full_like(y, 0.3)
    q, init, var = torch.tensor([[0.2]], dtype=torch.float64), y[:, 0], torch.ones(1, 1, dtype=torch.float64)
    m, v = constant_velocity_posterior(y, r, q, init, var, var, smooth=False)
    t = 5
    m_cav, v_cav = cavity(m[:, t], v[:, t], 1 / r[:, t], y[:, t] / r[:, t])
    r_hidden = r.clone()
    r_hidden[:, t:] = float("inf")  # the filter run with frame t (and after) unobserved: its prediction at t
    m_pred, v_pred = constant_velocity_posterior(y, r_hidden, q, init, var, var, smooth=False)
    torch.testing.assert_close((m_cav, v_cav), (m_pred[:, t], v_pred[:, t]))


def test_default_tracker_beats_kalman_hungarian_where_mot17_tracks_cross():
    """MOT17-09 windows in which two pedestrians cross (simulated occlusion misses): the default tracker (constant
    velocity, exclusive association, predictive E-W, Kalman start) against Kalman + Hungarian with the same
    acceleration and noise settings: higher MOTA, no more identity switches."""
    from conftest import shared
    from ppl_models.datasets.mot17_windows import crosses, mot17_windows, read_mot17_gt
    from ppl_models.mixdvae.baselines import kalman_hungarian
    from ppl_models.mixdvae.tracking import evaluate_windows, initial_sources, kalman_start, windows_to_tensors
    gt, visibility = read_mot17_gt(shared("mot17_train_gt_part", "gt", "MOT17-09-gt.txt"))
    windows = [w.normalized() for w in mot17_windows(gt, visibility, "MOT17-09", (1920, 1080)) if crosses(w.tracks)]
    obs, mask = windows_to_tensors(windows)
    init = initial_sources(obs, mask, 3)
    prior = ConstantVelocityPrior()
    start = kalman_start(obs, mask, init, accel=prior.accel, noise=0.1)
    mix = MixDVAE(prior, 3, noise=0.1, association="exclusive", predictive=True)
    ours = evaluate_windows(windows, fit(mix, obs, mask, start, iterations=30).sources.numpy())["OVERALL"]
    kh = evaluate_windows(windows, kalman_hungarian(obs, mask, init, noise=0.1, accel=prior.accel).numpy())["OVERALL"]
    assert ours["mota"] > kh["mota"] + 0.05 and ours["num_switches"] <= kh["num_switches"], (ours, kh)


def test_identity_switches_name_the_frame_and_the_swapped_tracks():
    from ppl_models.data.synthetic import synthetic_tracking_window
    from ppl_models.data.mot import to_prior_coords
    from ppl_models.mixdvae.tracking import identity_switches

    window = synthetic_tracking_window(3, 40, seed=1)
    truth = to_prior_coords(window.tracks.transpose(1, 0, 2))  # (N, T, 4) estimates equal to the truth
    assert identity_switches(window, truth) == []
    swapped = truth.copy()
    swapped[[0, 1], 25:] = truth[[1, 0], 25:]  # estimates 1 and 2 trade their people at frame index 25
    assert sorted(identity_switches(window, swapped)) == [(25, 0, 1), (25, 1, 0)]
