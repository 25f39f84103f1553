"""The Transformer DVAEs with a sequence latent (HiT-DVAE, LigHT-DVAE): the fast path scores what the per-frame
form scores; the generative side is causal; KL(w) in closed form is the Monte-Carlo KL; they learn; and
train-prior stops on a wall-clock budget keeping the best epoch."""

import time

import pytest
import torch
from pyro import poutine
from pyro.infer import SVI, Trace_ELBO
from torch.distributions import kl_divergence

from ppl_models.dvae import build_dvae
from ppl_models.dvae.train import load_prior, train_prior
from ppl_models.infer.svi import make_optimizer

NAMES = ["hit-dvae", "light-dvae"]


def data_for(kind, device, batch=2, length=7):
    torch.manual_seed(0)
    if kind == "trajectory":
        return torch.randn(batch, length, 4, device=device)
    return torch.rand(batch, length, 513, device=device) ** 4 + 1e-6  # positive "power"


def log_joint(fn, x, values):
    return poutine.trace(poutine.condition(fn, data=values)).get_trace(x).log_prob_sum()


@pytest.mark.parametrize("kind", ["trajectory", "speech"])
@pytest.mark.parametrize("name", NAMES)
def test_fast_and_per_frame_forms_give_the_same_elbo_on_the_same_draw(name, kind, device):
    dvae = build_dvae(name, kind, hidden=16).to(device)
    x = data_for(kind, device)
    trace = poutine.trace(dvae.guide).get_trace(x)
    w, z = (trace.nodes[site]["value"].detach() for site in ("w", "z"))  # one draw from q
    per_frame = {"w": w, **{f"z_{t}": z[:, t] for t in range(x.shape[1])}}
    fast = log_joint(dvae.model, x, {"w": w, "z": z}) - log_joint(dvae.guide, x, {"w": w, "z": z})
    markov = log_joint(dvae.model_markov, x, per_frame) - log_joint(dvae.guide_markov, x, per_frame)
    torch.testing.assert_close(fast, markov, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("name", NAMES)
def test_the_generative_side_does_not_read_the_future(name):
    """Prior at t reads s_{<t}, z_{<t}; decoder at t reads s_{<t}, z_{<=t}: perturbing s_{t:T} and z_{t+1:T}
    (prior: z_{t:T}) leaves frames <= t unchanged, while perturbing what they may read changes them."""
    dvae = build_dvae(name, "speech", hidden=16)
    x, t = data_for("speech", "cpu", length=9), 4
    z, w = torch.randn(2, 9, dvae.z_dim), torch.randn(2, dvae.w_dim)
    x_future, z_future, z_now = x.clone(), z.clone(), z.clone()
    x_future[:, t:] = torch.rand_like(x[:, t:])
    z_future[:, t + 1:] += 3.0
    z_now[:, t] += 3.0
    decoded, prior = dvae.decoder_params(z, x, w), dvae.prior_params(z, x, w)[0]
    torch.testing.assert_close(dvae.decoder_params(z_future, x_future, w)[:, :t + 1], decoded[:, :t + 1])
    torch.testing.assert_close(dvae.prior_params(z_now, x_future, w)[0][:, :t + 1], prior[:, :t + 1])
    assert not torch.allclose(dvae.decoder_params(z_now, x, w)[:, t], decoded[:, t])  # reads z_t
    assert not torch.allclose(dvae.prior_params(z_now, x, w)[0][:, t + 1], prior[:, t + 1])  # reads z_{t}
    x_past = x.clone()
    x_past[:, t - 1] = torch.rand_like(x[:, t - 1])
    assert not torch.allclose(dvae.decoder_params(z, x_past, w)[:, t], decoded[:, t])  # reads s_{t-1}


@pytest.mark.parametrize("name", NAMES)
def test_closed_form_kl_of_w_matches_monte_carlo(name):
    dvae = build_dvae(name, "speech", hidden=16)
    x = data_for("speech", "cpu", batch=3)
    q = poutine.trace(dvae.guide).get_trace(x).nodes["w"]["fn"]
    p = poutine.trace(poutine.condition(dvae.model, data={"w": q.sample()})).get_trace(x).nodes["w"]["fn"]
    w = q.sample((20000,))
    log_ratio = (q.log_prob(w) - p.log_prob(w)).detach()  # (N, B)
    kl = dvae.kl_w(x).detach()
    assert (kl > 0.1).all()  # not trivially zero
    standard_error = float(log_ratio.std(0).max()) / len(w) ** 0.5
    torch.testing.assert_close(log_ratio.mean(0), kl, rtol=0, atol=4 * standard_error)
    torch.testing.assert_close(kl, kl_divergence(q, p).detach())


@pytest.mark.parametrize("name", NAMES)
def test_short_training_lowers_the_loss(name):
    torch.manual_seed(0)
    base = torch.rand(1, 12, 513) ** 4 + 1e-3  # one "voice": a fixed spectral shape with random gains per frame
    x = base * torch.rand(16, 12, 1) * torch.distributions.Exponential(1.0).sample((16, 12, 513))
    dvae = build_dvae(name, "speech", hidden=16).adapt_to(x)
    svi = SVI(dvae.model, dvae.guide, make_optimizer("clipped_adam", lr=1e-2), Trace_ELBO())
    loss = lambda: sum(svi.evaluate_loss(x) for _ in range(4)) / 4  # noqa: E731
    before = loss()
    for _ in range(20):
        svi.step(x)
    assert loss() < before - 0.02 * abs(before)


@pytest.mark.parametrize("name", NAMES)
def test_reads_sequences_longer_than_trained_on(name, device):
    """ALiBi positions: any length, the resynthesis of a whole utterance."""
    dvae = build_dvae(name, "speech", hidden=16).to(device)
    x = data_for("speech", device, batch=1, length=300)
    v = dvae.reconstruct(x)
    assert v.shape == x.shape and torch.isfinite(v).all() and (v > 0).all() and v.device == x.device


def test_train_prior_stops_on_the_time_budget_and_keeps_the_best_epoch(tmp_path):
    start = time.monotonic()
    dvae, history = train_prior("trajectory", "light-dvae", tmp_path / "p.pt", epochs=10_000, batch_size=32,
                                size=64, progress=False, time_budget=1.0, hidden=8)
    assert time.monotonic() - start < 15 and 1 < history.epochs < 10_000
    restored = load_prior(tmp_path / "p.pt")  # the checkpoint's best-epoch weights, as export-prior writes them
    for (name, a), b in zip(dvae.named_parameters(), restored.parameters()):
        torch.testing.assert_close(a.detach(), b, msg=name)
