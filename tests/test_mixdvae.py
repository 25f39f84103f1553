"""MixDVAE: exact enumeration, the closed-form VEM steps against numerical ones, and tracking quality."""

import itertools
import math
import subprocess
import sys
from functools import partial
from pathlib import Path

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine
from pyro.infer import TraceEnum_ELBO

from ppl_models.data.synthetic import synthetic_tracking_window
from ppl_models.dvae import build_dvae
from ppl_models.dvae.train import load_prior
from ppl_models.mixdvae import GUIDES, MixDVAE, fit
from ppl_models.mixdvae.baselines import constant_velocity_posterior, kalman_hungarian, vkf
from ppl_models.mixdvae.tracking import evaluate_windows, initial_sources, progressive_init, windows_to_tensors
from ppl_models.mixdvae.vem import box_size, e_s_step, e_w_step, m_step


def small_problem(B=1, T=3, K=2, N=2, clutter=False, seed=0):
    torch.manual_seed(seed)
    prior = build_dvae("srnn", "trajectory")
    obs = torch.rand(B, T, K, 4) * 0.5 + 0.2
    mask = torch.ones(B, T, K, dtype=torch.bool)
    mask[0, 1, 1] = False  # a missed detection
    mix = MixDVAE(prior, N, clutter=clutter)
    mix.start(obs, mask, obs[:, :1, :N].transpose(1, 2).expand(B, N, T, 4) + 0.01)
    mix.closed_form_m_step = True
    return mix, obs, mask


@pytest.mark.parametrize("clutter", [False, True])
def test_enumerated_elbo_equals_the_brute_force_sum_over_assignments(clutter):
    mix, obs, mask = small_problem(clutter=clutter)
    B, T, K, _ = obs.shape
    N = mix.num_sources
    s = (torch.rand(B * N, T, 4) * 0.5 + 0.2).requires_grad_()  # (differentiable_loss wants a gradient)
    z = torch.randn(B * N, T, 4)

    def guide(obs, mask):  # q(s, z) a point mass: the ELBO is then log p(o, s, z), w summed out
        with pyro.plate("tracks", B * N, dim=-1):
            pyro.sample("s", dist.Delta(s, event_dim=2))
            pyro.sample("source_z", dist.Delta(z, event_dim=2))

    elbo = -TraceEnum_ELBO(max_plate_nesting=3).differentiable_loss(mix.model, guide, obs, mask)
    joints = []
    for w in itertools.product(range(mix.num_classes), repeat=T * K):  # 3^6 or 2^6 assignments
        values = {"s": s, "source_z": z, "w": torch.tensor(w).reshape(B, T, K)}
        joints.append(poutine.trace(poutine.condition(mix.model, data=values)).get_trace(obs, mask).log_prob_sum())
    torch.testing.assert_close(elbo, torch.logsumexp(torch.stack(joints), 0), rtol=1e-5, atol=1e-4)


def test_flat_prior_of_the_sources_stays_on_their_device():
    """pyro's ImproperUniform puts its zero log-density on the CPU, breaking TraceEnum_ELBO on a GPU."""
    from pyro.distributions import constraints
    from ppl_models.mixdvae.model import FlatPrior
    value = torch.empty(6, 30, 4, device="meta")
    log_prob = FlatPrior(constraints.real, (6,), (30, 4)).log_prob(value)
    assert log_prob.device.type == "meta" and log_prob.shape == (6,)


def test_e_s_step_is_the_normalised_gaussian_product():
    """1-D: the closed form against the moments of prior x prod_k N(o_k; s, Phi_k)^eta_k on a fine grid."""
    pred_loc, pred_var = torch.tensor(0.3), torch.tensor(0.04)
    o, phi, eta = torch.tensor([0.5, 0.1, 0.45]), torch.tensor([0.01, 0.02, 0.005]), torch.tensor([0.7, 0.1, 0.4])
    m, v = e_s_step(pred_loc.reshape(1, 1, 1, 1), pred_var.reshape(1, 1, 1, 1), o.reshape(1, 1, 3, 1),
                    torch.ones(1, 1, 3, dtype=torch.bool), phi.reshape(1, 1, 3, 1), eta.reshape(1, 1, 3, 1))
    grid = torch.linspace(-1.5, 2.0, 200001, dtype=torch.float64)
    log_density = dist.Normal(pred_loc.double(), pred_var.double().sqrt()).log_prob(grid) + sum(
        e * dist.Normal(grid, p.double().sqrt()).log_prob(x.double()) for x, p, e in zip(o, phi, eta))
    weights = torch.softmax(log_density, 0)
    mean = (weights * grid).sum()
    var = (weights * (grid - mean) ** 2).sum()
    torch.testing.assert_close(m.double().squeeze(), mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(v.double().squeeze(), var, rtol=1e-4, atol=1e-8)


def test_e_w_step_is_the_enumerated_posterior_and_its_variance_term_an_expectation():
    mix, obs, mask = small_problem(B=2)
    st = mix.state
    obs_var = st.phi * box_size(obs, mask) ** 2
    # with a point-mass q(s) the exact E-W step is Pyro's enumerated posterior of w (compute_marginals)
    s = st.m.reshape(-1, *st.m.shape[2:])
    z = torch.zeros_like(s)

    def guide(obs, mask):
        with pyro.plate("tracks", s.shape[0], dim=-1):
            pyro.sample("s", dist.Delta(s, event_dim=2))
            pyro.sample("source_z", dist.Delta(z, event_dim=2))

    marginal = TraceEnum_ELBO(max_plate_nesting=3).compute_marginals(mix.model, guide, obs, mask)["w"].probs
    closed = e_w_step(obs, st.m, torch.zeros_like(st.v), obs_var, st.beta, clutter=False)
    torch.testing.assert_close(marginal.expand_as(closed)[mask], closed[mask], rtol=1e-4, atol=1e-6)
    # with a Gaussian q(s) the log-likelihood is averaged over q(s): check against Monte Carlo
    from ppl_models.mixdvae.vem import assignment_log_lik

    torch.manual_seed(1)
    v = torch.full_like(st.v, 1e-5)
    draws = st.m + v.sqrt() * torch.randn(4000, *st.m.shape)
    mc = torch.stack([assignment_log_lik(obs, d, torch.zeros_like(v), obs_var, False) for d in draws]).mean(0)
    torch.testing.assert_close(assignment_log_lik(obs, st.m, v, obs_var, False), mc, rtol=0.01, atol=0.5)


def test_m_step_maximises_the_expected_complete_log_likelihood():
    mix, obs, mask = small_problem(B=2, T=5, K=3, N=2)
    st = mix.state
    m, v = st.m + 0.02 * torch.randn_like(st.m), torch.full_like(st.v, 1e-4)
    size = box_size(obs, mask)
    resp = e_w_step(obs, m, v, st.phi * size ** 2, st.beta, clutter=False)
    phi, beta = m_step(obs, mask, m, v, resp, size)
    log_phi = phi.log().clone().requires_grad_()
    logits = beta.log().clone().requires_grad_()

    def q_function(log_phi, logits):
        from ppl_models.mixdvae.vem import assignment_log_lik

        ll = assignment_log_lik(obs, m, v, log_phi.exp() * size ** 2, False) + torch.log_softmax(logits, 0)
        return (resp * mask[..., None] * ll).sum()

    grads = torch.autograd.grad(q_function(log_phi, logits), [log_phi, logits])
    assert all(g.abs().max() < 1e-3 for g in grads), grads
    assert q_function(phi.log(), beta.log()) > q_function(phi.log() + 0.1, beta.log())


def synthetic_windows(num=6, N=3, T=60, seed=0):
    return [synthetic_tracking_window(N, T, miss_rate=0.1, seed=1000 + seed + b) for b in range(num)]


def test_mixdvae_tracks_synthetic_three_source_windows():
    windows = synthetic_windows()
    obs, mask = windows_to_tensors(windows)
    init = initial_sources(obs, mask, 3)
    pyro.set_rng_seed(0)
    result = fit(MixDVAE(load_prior("srnn-trajectory"), 3), obs, mask, init, guide="vem", iterations=40)
    metrics = evaluate_windows(windows, result.sources.numpy())["OVERALL"]
    assert metrics["mota"] >= 0.9 and metrics["num_switches"] == 0, metrics
    # responsibilities are a distribution over sources; MAP assignments agree with their argmax mostly
    torch.testing.assert_close(result.responsibilities.sum(-1), torch.ones(mask.shape))
    agree = (result.assignments == result.responsibilities.argmax(-1))[mask].float().mean()
    assert agree > 0.95


def exact_position_posterior(y, r, q, init, init_var, velocity_var, upto):
    """Brute force: p(p_t | y_{1:upto}) of the constant-velocity model from the joint Gaussian of all states."""
    T = len(y)
    f, g = torch.tensor([[1.0, 1.0], [0.0, 1.0]], dtype=torch.float64), torch.tensor([0.5, 1.0], dtype=torch.float64)
    # x_t = f^(t-1) x_1 + sum_{s<=t} f^(t-s) g a_s: the stacked states are linear in (x_1, a_2 .. a_T)
    lin = torch.zeros(2 * T, 2 + T - 1, dtype=torch.float64)
    for t in range(T):
        lin[2 * t:2 * t + 2, :2] = torch.linalg.matrix_power(f, t)
        for s in range(1, t + 1):
            lin[2 * t:2 * t + 2, 2 + s - 1] = torch.linalg.matrix_power(f, t - s) @ g
    cov_in = torch.diag(torch.cat([torch.tensor([init_var, velocity_var], dtype=torch.float64),
                                   torch.full((T - 1,), q, dtype=torch.float64)]))
    mean, cov = lin[:, :2] @ torch.tensor([init, 0.0], dtype=torch.float64), lin @ cov_in @ lin.T
    pos = torch.arange(0, 2 * T, 2)
    seen = [t for t in range(upto) if torch.isfinite(r[t])]
    obs_idx = pos[seen]
    gain = cov[pos][:, obs_idx] @ torch.linalg.inv(cov[obs_idx][:, obs_idx] + torch.diag(r[seen]))
    post_mean = mean[pos] + gain @ (y[seen] - mean[obs_idx])
    post_var = torch.diagonal(cov[pos][:, pos] - gain @ cov[obs_idx][:, pos])
    return post_mean, post_var


def test_kalman_filter_and_smoother_equal_the_exact_gaussian_posterior():
    """The VKF's E-S step: filtered = p(p_t | y_1..t), smoothed = p(p_t | y_1..T), both computed here from the
    joint Gaussian of all states (missed frames have infinite variance)."""
    torch.manual_seed(0)
    T, q, init, init_var, velocity_var = 7, 0.02, 0.3, 0.5, 0.1
    y = torch.cumsum(torch.randn(T, dtype=torch.float64) * 0.3, 0)
    r = torch.rand(T, dtype=torch.float64) * 0.2 + 0.05
    r[3] = torch.inf  # a missed detection
    args = (y[None, :, None], r[None, :, None], torch.tensor([[q]], dtype=torch.float64),
            torch.tensor([[init]], dtype=torch.float64), torch.tensor([[init_var]], dtype=torch.float64),
            torch.tensor([[velocity_var]], dtype=torch.float64))
    smoothed = constant_velocity_posterior(*args, smooth=True)
    filtered = constant_velocity_posterior(*args, smooth=False)
    exact_mean, exact_var = exact_position_posterior(y, r, q, init, init_var, velocity_var, upto=T)
    torch.testing.assert_close(smoothed[0][0, :, 0], exact_mean)
    torch.testing.assert_close(smoothed[1][0, :, 0], exact_var)
    for t in range(T):
        mean_t, var_t = exact_position_posterior(y, r, q, init, init_var, velocity_var, upto=t + 1)
        torch.testing.assert_close(filtered[0][0, t, 0], mean_t[t])
        torch.testing.assert_close(filtered[1][0, t, 0], var_t[t])
    assert not torch.allclose(filtered[0], smoothed[0])  # the backward pass changes the early frames


@pytest.mark.parametrize("smooth", [False, True])
def test_vkf_first_frame_follows_its_detections_not_the_start(smooth):
    """A still object seen in every frame, the VKF started 0.3 box widths off: the first frame must end on the
    detections. (Re-using each iteration's posterior variance as the first frame's prior, as the VKF once did,
    glued it to the start: 0.029 off.)"""
    T, box = 10, torch.tensor([0.4, 0.6, 0.5, 0.4])  # a 0.1 x 0.2 box
    obs, mask = box.expand(1, T, 1, 4).clone(), torch.ones(1, T, 1, dtype=torch.bool)
    m = vkf(obs, mask, (box + 0.03).expand(1, 1, T, 4).clone(), smooth=smooth)
    assert (m[0, 0, 0] - box).abs().max() < 0.003


def test_baselines_track_synthetic_windows():
    windows = synthetic_windows(num=4)
    obs, mask = windows_to_tensors(windows)
    init = initial_sources(obs, mask, 3)
    trackers = {"vkf": vkf, "vkf smoother": partial(vkf, smooth=True), "kalman_hungarian": kalman_hungarian}
    for name, tracker in trackers.items():
        metrics = evaluate_windows(windows, tracker(obs, mask, init).numpy())["OVERALL"]
        assert metrics["mota"] >= 0.8, (name, metrics)


def test_progressive_init_chains_chunks_and_helps_moving_objects():
    """Each chunk starts static where the previous one ended; the stitched start is closer to moving objects
    than the static first-frame guess, and the VKF started from it tracks better."""
    windows = synthetic_windows(num=4, T=90)
    obs, mask = windows_to_tensors(windows)
    init = initial_sources(obs, mask, 3)
    starts = []

    def shift_right(o, m, i):  # a stand-in tracker: remembers its start, moves every box by 0.01 per call
        starts.append(i[:, :, 0].clone())
        return i + 0.01

    chained = progressive_init(shift_right, obs, mask, init, chunk=30)
    assert chained.shape == init.shape and len(starts) == 3
    torch.testing.assert_close(starts[1], init[:, :, 0] + 0.01)
    torch.testing.assert_close(starts[2], init[:, :, 0] + 0.02)

    def mota(est):
        return evaluate_windows(windows, est.numpy())["OVERALL"]["mota"]

    refined = progressive_init(vkf, obs, mask, init)
    assert mota(vkf(obs, mask, refined)) >= mota(vkf(obs, mask, init))
    assert mota(refined) > mota(init)


@pytest.mark.parametrize("guide", GUIDES)
def test_every_guide_lowers_the_loss(guide, device):
    windows = synthetic_windows(num=2, T=20)
    obs, mask = windows_to_tensors(windows, device)
    init = initial_sources(obs, mask, 3)
    pyro.set_rng_seed(0)
    mix = MixDVAE(load_prior("srnn-trajectory", device), 3, fine_tune_encoder=guide != "vem", learn_noise=True)
    result = fit(mix, obs, mask, init, guide=guide, iterations=30)
    assert result.sources.shape == init.shape and result.sources.device == obs.device
    assert np.mean(result.losses[-5:]) < np.mean(result.losses[:5])
    assert math.isfinite(result.losses[-1])


@pytest.mark.parametrize("guide", ["svi", "sampled-w"])
def test_gradient_guides_track_synthetic_windows(guide):
    """The gradient guides reach the VEM's tracks in 100 steps because q(s) starts as uncertain as one
    detection; from half a box (the old start) they stayed near MOTA 0.5-0.6 (tutorial 3)."""
    windows = synthetic_windows(num=4, T=30)
    obs, mask = windows_to_tensors(windows)
    pyro.set_rng_seed(0)
    result = fit(MixDVAE(load_prior("srnn-trajectory"), 3), obs, mask, initial_sources(obs, mask, 3), guide=guide,
                 iterations=100)
    assert evaluate_windows(windows, result.sources.numpy())["OVERALL"]["mota"] >= 0.9


def test_track_command_follows_unordered_detections_across_chunks(tmp_path, capsys):
    from ppl_models.cli import main
    from ppl_models.data.mot import MotRecords, read_mot, write_mot, xyxy_to_xywh
    from ppl_models.metrics.tracking import summarize

    window = synthetic_windows(num=1, T=60, seed=3)[0]
    W, H = 1920.0, 1080.0
    scale = np.array([W, H, W, H])
    rng = np.random.default_rng(0)
    rows = []
    for t, frame in enumerate(window.frames):
        boxes = [window.detections[t, k] for k in range(3) if window.mask[t, k]]
        for box in rng.permutation(np.array(boxes)):
            rows.append((frame, xyxy_to_xywh(box * scale)))
    det = MotRecords(np.array([r[0] for r in rows]), -np.ones(len(rows), dtype=int),
                     np.stack([r[1] for r in rows]), np.ones(len(rows)))
    write_mot(tmp_path / "det.txt", det)
    T = len(window.frames)
    gt = MotRecords(np.tile(window.frames, 3), np.repeat(np.arange(1, 4), T),
                    xyxy_to_xywh(window.tracks.transpose(1, 0, 2).reshape(-1, 4) * scale), np.ones(3 * T))
    assert main(["track", "--detections", str(tmp_path / "det.txt"), "--num-sources", "3", "--window", "30",
                 "--image-size", str(W), str(H), "--out", str(tmp_path / "res.txt"), "--iterations", "40",
                 "--no-progress"]) == 0
    assert "3 sources (no clutter class)" in capsys.readouterr().out
    metrics = summarize({"seq": (gt, read_mot(tmp_path / "res.txt"))})["seq"]
    assert metrics["mota"] > 0.85 and metrics["num_switches"] == 0, metrics


def test_track_command_names_a_bad_detection_file(tmp_path, capsys):
    from ppl_models.cli import main

    (tmp_path / "det.txt").write_text("1,-1,10,10,5,5,1\n2,-1,10,x,5,5,1\n")
    assert main(["track", "--detections", str(tmp_path / "det.txt"), "--num-sources", "2",
                 "--out", str(tmp_path / "res.txt")]) == 2
    assert "det.txt:2: non-numeric" in capsys.readouterr().err


@pytest.mark.parametrize("variant", [[], ["--default", "--slots", "3"], ["--association", "exclusive"]],
                         ids=["paper", "track-default", "exclusive"])
def test_speed_benchmark_hand_written_step_gives_pyros_elbo(variant):
    """benchmarks/mixdvae_speed.py times Pyro's VEM step against a plain PyTorch one; it first asserts the two
    ELBOs agree on the same draw (the ratio it reports is only meaningful if they compute the same thing): for
    the paper's model, for `track`'s default (constant-velocity prior, exclusive association; with a clutter
    slot at N = 2) and for the DVAE prior with exclusive association."""
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, str(root / "benchmarks" / "mixdvae_speed.py"), "--windows", "2",
                             "--length", "20", "--sources", "2", "3", "--iterations", "2", "--repeats", "1",
                             *variant], cwd=root / "benchmarks", capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line.split("|")[1:3] for line in result.stdout.splitlines() if line[:3] in ("| 2", "| 3")]
    assert [n.strip() for n, _ in rows] == ["2", "3"], result.stdout  # one timed row per N
