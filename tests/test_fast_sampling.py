"""The guide's sampling loop: from given noise, and (on a GPU) replayed from a CUDA graph (dvae.fast)."""

from __future__ import annotations

import pyro
import pytest
import torch

from ppl_models.dvae import build_dvae
from ppl_models.dvae.fast import clear, graphed, recorded
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


@pytest.mark.parametrize("second_try_works", [True, False])
def test_a_refused_recording_retries_thread_local_then_runs_the_plain_loop(monkeypatch, second_try_works):
    """Where CUDA refuses to record (as on one H100), _record tries again with thread-local capture; if that
    fails too it warns and returns None (the plain loop runs), the cell's gradients as they were. What is
    recorded takes the cell's parameters as inputs, on detached copies (never the cell's own). The CUDA calls
    are replaced by stand-ins, so this runs on the CPU."""
    from contextlib import nullcontext

    from ppl_models.dvae import fast

    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)
    monkeypatch.setattr(torch.cuda, "stream", lambda stream: nullcontext())
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: None)
    monkeypatch.setattr(torch.random, "fork_rng", lambda devices=None: nullcontext())
    original, seen = torch.cuda.graph, []

    def make_graphed_callables(loop, samples, allow_unused_input=False):
        seen.append(torch.cuda.graph)
        own = {id(p) for p in cell.parameters()}
        assert len(samples) == 1 + len(contexts) + len(own) and not own & {id(t) for t in samples}
        torch.testing.assert_close(loop(*samples), loop(*samples[:1 + len(contexts)],
                                                        *(p.detach() for p in cell.parameters())))
        if len(seen) == 2 and second_try_works:
            return lambda *inputs: inputs
        raise RuntimeError("CUDA error: operation would make the legacy stream depend on a capturing blocking stream")

    monkeypatch.setattr(torch.cuda, "make_graphed_callables", make_graphed_callables)
    dvae = build_dvae("rvae", "speech", hidden=16, rnn_dim=16)
    q = _encoder(dvae, torch.rand(2, 5, 513))
    cell = q.cell
    kept = torch.full_like(next(cell.parameters()), 7.0)
    next(cell.parameters()).grad = kept
    eps = torch.randn(2, 5, dvae.z_dim)
    contexts = tuple(c.detach() for c in (q.rnn_ctx, q.head_ctx) if c is not None)
    if second_try_works:
        loop = fast._record(cell, eps, contexts, q.rnn_ctx is not None, q.head_ctx is not None)
        replayed = loop(eps, *contexts)  # the stand-in replay returns its inputs: the cell's own parameters last
        assert replayed[:1 + len(contexts)] == (eps, *contexts)
        assert all(a is b for a, b in zip(replayed[1 + len(contexts):], cell.parameters()))
    else:
        with pytest.warns(RuntimeWarning, match="legacy stream"):
            loop = fast._record(cell, eps, contexts, q.rnn_ctx is not None, q.head_ctx is not None)
        assert loop is None
    assert [g.capture_error_mode for g in seen] == ["global", "thread_local"]
    assert all(issubclass(g, original) for g in seen)
    assert torch.cuda.graph is original  # put back
    assert next(cell.parameters()).grad is kept


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


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_recording_while_a_graph_of_the_cells_parameters_is_alive():
    """A guide traced earlier and kept (its autograd graph holds the cell's gradient accumulators, made on the
    default stream) spoiled the capture on an H100; recorded on copies of the parameters, it records."""
    from pyro import poutine
    from pyro.infer import SVI, Trace_ELBO

    torch.manual_seed(0)
    pyro.clear_param_store()
    dvae = build_dvae("rvae", "speech", hidden=32, rnn_dim=32).cuda()
    x = torch.rand(4, 20, 513, device="cuda") ** 4 + 1e-6
    alive = poutine.trace(dvae.guide).get_trace(x)  # kept alive on purpose
    svi = SVI(dvae.model, dvae.guide, pyro.optim.Adam({"lr": 1e-3}), Trace_ELBO())
    clear()  # earlier tests' graphs go (their cells may be collected any time): what replays now is this one's
    with graphed():
        losses = [svi.step(x) for _ in range(2)]
    assert recorded() == 1 and torch.isfinite(torch.tensor(losses)).all()
    assert alive.nodes["z"]["value"].requires_grad
