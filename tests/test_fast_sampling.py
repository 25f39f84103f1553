"""The guide's sampling loop: from given noise, and (on a GPU) replayed from a CUDA graph (dvae.fast)."""

from __future__ import annotations

import pyro
import pytest
import torch

from ppl_models.dvae import build_dvae
from ppl_models.dvae.fast import graphed, recorded
from ppl_models.dvae.sequence import LatentSequence, unroll


def _encoder(dvae, x):
    return dvae.latent(dvae.guide_latent(x, dvae._context(x)), x.shape[0], x.shape[1], x.device)


@pytest.mark.parametrize("name", ["rvae", "srnn", "dkf", "vrnn"])
def test_the_loop_draws_loc_plus_scale_times_the_noise_frame_by_frame(name):
    """Each z_t of the loop is loc_t + scale_t * eps_t, (loc_t, scale_t) the teacher-forced parameters at z."""
    dvae = build_dvae(name, "speech", hidden=32, rnn_dim=16)
    x = torch.rand(3, 11, 513)
    q = _encoder(dvae, x)
    eps = torch.randn(3, 11, dvae.z_dim)
    z = unroll(q.cell, eps, q.rnn_ctx, q.head_ctx)
    loc, scale = q.params(z)
    torch.testing.assert_close(z, loc + scale * eps, atol=1e-5, rtol=1e-5)
    assert isinstance(q, LatentSequence)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("name", ["rvae", "srnn"])
def test_the_graphed_loop_gives_the_plain_loops_draws_and_gradients(name):
    torch.manual_seed(0)
    dvae = build_dvae(name, "speech").cuda()
    x = torch.rand(8, 30, 513, device="cuda") ** 4 + 1e-6
    eps = torch.randn(8, 30, dvae.z_dim, device="cuda")

    def draw_and_grads(fast: bool):
        dvae.zero_grad(set_to_none=True)
        with graphed(fast):
            results = []
            for _ in range(3):  # the first call records, the later ones replay
                q = _encoder(dvae, x)
                z = unroll(q.cell, eps, q.rnn_ctx, q.head_ctx)
                (z.square().sum() + q.log_prob(z).sum()).backward()
                results.append(z.detach().clone())
        return results, [p.grad.clone() / 3 for p in dvae.parameters() if p.grad is not None]

    plain_z, plain_g = draw_and_grads(False)
    before = recorded()
    fast_z, fast_g = draw_and_grads(True)
    assert recorded() > before  # this model's loop replayed, not the un-graphed fallback
    for a, b in zip(plain_z, fast_z):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    assert len(plain_g) == len(fast_g)
    for a, b in zip(plain_g, fast_g):
        torch.testing.assert_close(a, b, atol=1e-3, rtol=1e-3)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_an_svi_step_with_the_graphed_guide_equals_the_plain_one():
    """Same seed, same data: the parameters after three SVI steps agree with and without graphs."""
    from pyro.infer import SVI, Trace_ELBO

    def train(fast: bool):
        torch.manual_seed(0)
        pyro.clear_param_store()
        dvae = build_dvae("rvae", "speech").cuda()
        x = torch.rand(8, 30, 513, device="cuda") ** 4 + 1e-6
        svi = SVI(dvae.model, dvae.guide, pyro.optim.Adam({"lr": 1e-3}), Trace_ELBO())
        torch.manual_seed(1)
        with graphed(fast):
            losses = [svi.step(x) for _ in range(3)]
        return losses, [p.detach().clone() for p in dvae.parameters()]

    plain_losses, plain_params = train(False)
    before = recorded()
    fast_losses, fast_params = train(True)
    assert recorded() > before
    assert plain_losses == pytest.approx(fast_losses, rel=1e-4)
    for a, b in zip(plain_params, fast_params):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-3)
