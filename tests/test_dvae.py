"""The DVAE family: the fast path (one site per sequence) scores exactly what the readable per-frame form
scores, for every model, both observation models, on every device; and each model learns."""

import pyro
import pytest
import torch
from pyro import poutine
from pyro.infer import SVI, Trace_ELBO

from ppl_models.dvae import build_dvae
from ppl_models.data.synthetic import sample_trajectories
from ppl_models.infer.svi import make_optimizer

NAMES = ["vae", "dkf", "vrnn", "srnn", "rvae", "rvae-noncausal"]


def data_for(kind, device, batch=3, length=9):
    torch.manual_seed(0)
    if kind == "trajectory":
        return torch.randn(batch, length, 4, device=device)
    return torch.rand(batch, length, 513, device=device) ** 4 + 1e-6  # positive "power"


def log_joint(fn, x, values):
    trace = poutine.trace(poutine.condition(fn, data=values)).get_trace(x)
    return trace.log_prob_sum()


@pytest.mark.parametrize("kind", ["trajectory", "speech"])
@pytest.mark.parametrize("name", NAMES)
def test_fast_and_readable_forms_give_the_same_elbo_on_the_same_draw(name, kind, device):
    dvae = build_dvae(name, kind, hidden=16, rnn_dim=8).to(device)
    x = data_for(kind, device)
    z = poutine.trace(dvae.guide).get_trace(x).nodes["z"]["value"].detach()  # one draw from q
    per_frame = {f"z_{t}": z[:, t] for t in range(x.shape[1])}
    elbo_fast = log_joint(dvae.model, x, {"z": z}) - log_joint(dvae.guide, x, {"z": z})
    elbo_markov = log_joint(dvae.model_markov, x, per_frame) - log_joint(dvae.guide_markov, x, per_frame)
    torch.testing.assert_close(elbo_fast, elbo_markov, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("name", NAMES)
def test_interface_shapes(name):
    dvae = build_dvae(name, "trajectory")
    x = torch.as_tensor(sample_trajectories(4, seed=0))
    assert dvae.reconstruct(x).shape == x.shape
    assert dvae.generate(12, num=2).shape == (2, 12, 4)
    assert dvae.encode(x).shape == (4, 60, dvae.z_dim)


def test_unknown_names_are_clear_errors():
    with pytest.raises(ValueError, match="unknown DVAE 'lstm'"):
        build_dvae("lstm")
    with pytest.raises(ValueError, match="kind must be"):
        build_dvae("vae", "video")


@pytest.mark.parametrize("name", ["vae", "srnn", "rvae"])
def test_training_improves_the_elbo_and_reconstruction(name):
    """Trained as train_prior trains: data-dependent init (adapt_to) and Adam with gradient-norm clipping.
    With plain Adam, SRNN's residual decoder learns a scale of a few 1e-3 (the frame-to-frame motion) and
    single steps then throw the loss up by 1e5 nats, so where the final evaluation lands is a coin toss."""
    pyro.set_rng_seed(0)
    x = torch.as_tensor(sample_trajectories(64, seed=1))
    dvae = build_dvae(name, "trajectory", hidden=32, rnn_dim=16).adapt_to(x)
    svi = SVI(dvae.model, dvae.guide, make_optimizer("clipped_adam", lr=3e-3), Trace_ELBO())
    first = sum(svi.evaluate_loss(x) for _ in range(5)) / 5
    err0 = (dvae.reconstruct(x) - x).square().mean()
    for _ in range(150):
        svi.step(x)
    last = sum(svi.evaluate_loss(x) for _ in range(5)) / 5
    assert last < first - 0.3 * abs(first)
    assert (dvae.reconstruct(x) - x).square().mean() < 0.5 * err0


@pytest.mark.parametrize("name", NAMES)
def test_prior_embedded_in_a_larger_model_scores_the_dvae_elbo(name, device):
    """x latent in an outer model (value from the outer guide) + prior_sites/encoder_sites = the DVAE's ELBO."""
    dvae = build_dvae(name, "trajectory", hidden=16, rnn_dim=8).to(device)
    x = data_for("trajectory", device)

    def outer_model():
        with pyro.plate("sources", x.shape[0]):
            s = pyro.sample("s", pyro.distributions.ImproperUniform(
                pyro.distributions.constraints.real, (x.shape[0],), x.shape[1:]))
            dvae.prior_sites("source", s)

    def outer_guide():
        with pyro.plate("sources", x.shape[0]):
            s = pyro.sample("s", pyro.distributions.Delta(x, event_dim=2))
            dvae.encoder_sites("source", s)

    z = poutine.trace(dvae.guide).get_trace(x).nodes["z"]["value"].detach()
    elbo_dvae = log_joint(dvae.model, x, {"z": z}) - log_joint(dvae.guide, x, {"z": z})
    values = {"s": x, "source_z": z}
    model_trace = poutine.trace(poutine.condition(outer_model, data=values)).get_trace()
    guide_trace = poutine.trace(poutine.condition(outer_guide, data=values)).get_trace()
    torch.testing.assert_close(model_trace.log_prob_sum() - guide_trace.log_prob_sum(), elbo_dvae,
                               rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("name", ["srnn", "vrnn"])
def test_scheduled_sampling_feeds_predictions_at_the_requested_rate(name):
    """ratio 0: the data (teacher forcing); ratio 1: the teacher-forced predictions; in between, per frame."""
    torch.manual_seed(0)
    dvae = build_dvae(name, "trajectory")
    x = torch.as_tensor(sample_trajectories(64, seed=0))
    prediction = dvae.reconstruct(x)
    assert torch.equal(dvae.scheduled_past(x, 0.0), x)
    torch.testing.assert_close(dvae.scheduled_past(x, 1.0), prediction)
    past = dvae.scheduled_past(x, 0.3)
    from_prediction = (past == prediction).all(-1) & ~(x == prediction).all(-1)
    assert abs(from_prediction.float().mean().item() - 0.3) < 0.03  # 64 x 60 coins
    assert ((past == x).all(-1) | from_prediction).all()  # each frame is one or the other, whole


def test_scheduled_sampling_leaves_other_models_teacher_forced():
    x = torch.as_tensor(sample_trajectories(4, seed=0))
    for name in ("vae", "dkf", "rvae"):
        assert build_dvae(name, "trajectory").scheduled_past(x, 1.0) is x
