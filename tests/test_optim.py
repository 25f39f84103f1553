"""The multi-tensor optimizers behind ``make_optimizer`` against Pyro's per-parameter ones: same steps, same
state through a checkpoint."""

import copy

import pyro
import pyro.optim
import pytest
import torch
from pyro.infer import SVI, Trace_ELBO
from torch import nn

from ppl_models.infer.optim import ForeachClippedAdam, OneOptimizer
from ppl_models.infer.svi import make_optimizer


def _regression(seed: int = 0):
    """A model/guide pair with two modules and a bare pyro.param, and a batch whose gradients reach the clamp."""
    torch.manual_seed(seed)
    net, enc = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1)), nn.Linear(3, 2)
    x, y = torch.randn(64, 3), 50 * torch.randn(64)

    def model():
        pyro.module("net", net, update_module_params=True)
        noise = pyro.param("noise", torch.tensor(1.0), constraint=torch.distributions.constraints.positive)
        with pyro.plate("data", 64):
            u = pyro.sample("u", pyro.distributions.Normal(0.0, 1.0))
            pyro.sample("y", pyro.distributions.Normal(net(x).squeeze(-1) + u, noise), obs=y)

    def guide():
        pyro.module("enc", enc, update_module_params=True)
        loc, log_scale = enc(x).unbind(-1)
        with pyro.plate("data", 64):
            pyro.sample("u", pyro.distributions.Normal(loc, log_scale.exp()))

    return model, guide


def _fit(optim, steps: int) -> dict[str, torch.Tensor]:
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    model, guide = _regression()
    svi = SVI(model, guide, optim, Trace_ELBO())
    for _ in range(steps):
        svi.step()
    return {k: v.detach().clone() for k, v in pyro.get_param_store().items()}


@pytest.mark.parametrize("lrd", [1.0, 0.99])
def test_foreach_clipped_adam_takes_pyros_clipped_adam_steps(lrd):
    args = {"lr": 0.05, "clip_norm": 2.0, "lrd": lrd}
    ours = _fit(OneOptimizer(ForeachClippedAdam, args), 25)
    theirs = _fit(pyro.optim.ClippedAdam(args), 25)
    assert ours.keys() == theirs.keys()
    for k in ours:
        torch.testing.assert_close(ours[k], theirs[k], rtol=1e-5, atol=1e-6)
    moved = _fit(OneOptimizer(ForeachClippedAdam, {**args, "clip_norm": 1e9}), 25)  # the clamp matters here
    assert any((moved[k] - ours[k]).abs().max() > 1e-3 for k in ours)


def test_one_adam_takes_pyros_adam_steps():
    ours = _fit(make_optimizer("adam", lr=0.05), 25)
    theirs = _fit(pyro.optim.Adam({"lr": 0.05}), 25)
    for k in ours:
        torch.testing.assert_close(ours[k], theirs[k], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name, theirs", [("adam", pyro.optim.Adam), ("clipped_adam", pyro.optim.ClippedAdam)])
def test_a_saved_state_resumes_as_pyros_own_optimizer_resumes(name, theirs):
    """Pyro's optimizer 10 steps; its state (by parameter name: what older checkpoints hold) and the parameters put
    back into a fresh store; 10 more steps with ours == 10 more with a fresh Pyro optimizer given that state; and
    ours hands its own state on the same way."""
    pyro_optim = theirs({"lr": 0.05})
    _fit(pyro_optim, 10)
    params, state = {k: v.detach().clone() for k, v in pyro.get_param_store().items()}, pyro_optim.get_state()

    def resume(optim) -> dict[str, torch.Tensor]:
        pyro.clear_param_store()
        for k, v in params.items():
            pyro.get_param_store()[k] = v.clone()
        optim.set_state(copy.deepcopy(state))  # torch's load_state_dict steps the tensors it is given
        model, guide = _regression()
        svi = SVI(model, guide, optim, Trace_ELBO())
        pyro.set_rng_seed(1)
        for _ in range(10):
            svi.step()
        return {k: v.detach().clone() for k, v in pyro.get_param_store().items()}

    expected, ours = resume(theirs({"lr": 0.05})), make_optimizer(name, lr=0.05)
    got = resume(ours)
    for k, v in expected.items():
        torch.testing.assert_close(got[k], v, rtol=1e-5, atol=1e-6)
        assert (v - params[k]).abs().max() > 1e-4  # the 10 steps moved it
    state = ours.get_state()
    assert set(state) == set(expected) and all(s["step"] == 20 for s in state.values())


@pytest.mark.parametrize("name, theirs", [("adam", pyro.optim.Adam), ("clipped_adam", pyro.optim.ClippedAdam)])
def test_a_parameter_left_out_of_later_losses_moves_as_with_pyro(name, theirs):
    """Pyro leaves zeros in a stepped parameter's gradient, so Adam's momentum keeps moving it when a later loss
    does not use it; ours sets gradients to None and must give it the zeros back."""
    def run(optim):
        pyro.clear_param_store()
        pyro.set_rng_seed(0)

        def model(y, use_b):
            a, b = pyro.param("a", torch.zeros(3)), pyro.param("b", torch.zeros(3))
            pyro.sample("y", pyro.distributions.Normal(a.sum() + (b.sum() if use_b else 0.0), 1.0), obs=y)

        svi = SVI(model, lambda y, use_b: None, optim, Trace_ELBO())
        for i in range(6):
            svi.step(torch.tensor(5.0), i < 2)
        return {k: v.detach().clone() for k, v in pyro.get_param_store().items()}

    ours, expected = run(make_optimizer(name, lr=0.1)), run(theirs({"lr": 0.1}))
    for k in expected:
        torch.testing.assert_close(ours[k], expected[k], rtol=1e-6, atol=1e-7)


def test_data_parallel_wrapping_keeps_the_one_optimizer_and_its_state():
    from ppl_models.infer.distributed import AllReduceOptim

    optim = make_optimizer("clipped_adam", lr=0.05)
    _fit(optim, 3)
    wrapped = AllReduceOptim.wrapping(optim)
    assert isinstance(wrapped, OneOptimizer) and wrapped.pt_optim_constructor is ForeachClippedAdam
    wrapped.set_state(optim.get_state())
    assert set(wrapped.get_state()) == set(optim.get_state())
    assert not isinstance(AllReduceOptim.wrapping(pyro.optim.Adam({"lr": 0.1})), OneOptimizer)
