"""Pyro optimizers that step every parameter at once.

Pyro's ``PyroOptim`` gives each parameter its own PyTorch optimizer, so one SVI step launches each update
kernel once per parameter tensor. On a GPU, for a Transformer DVAE of 142 tensors, that alone takes longer than
the model's forward and backward passes (``benchmarks/dvae_overhead.py``: HiT-DVAE's Pyro step was 2.3 times
its plain-PyTorch twin's, whose one ``torch.optim.Adam`` steps all tensors with multi-tensor "foreach" kernels).

:class:`OneOptimizer` keeps Pyro's interface (SVI takes it; ``get_state``/``set_state`` by parameter name, so
checkpoints and ``--resume`` work as before) and holds ONE PyTorch optimizer over every parameter, in one
parameter group, a parameter joining it the first time SVI hands it over; after the step it sets the gradients
to None (as ``zero_grad(set_to_none=True)``) rather than letting SVI fill each with zeros, and gives a zero
gradient back to a parameter that was stepped before but gets none now, so that it is stepped as Pyro steps it.
:class:`ForeachClippedAdam` is Pyro's ``ClippedAdam`` (gradients clamped elementwise to +-clip_norm, Adam, the learning rate multiplied by
``lrd`` at every step of a parameter) written with ``torch._foreach_*`` kernels; ``tests/test_optim.py`` checks
it against Pyro's own, step for step.
"""

from __future__ import annotations

import math

import pyro
import torch
from pyro.optim import PyroOptim


class ForeachClippedAdam(torch.optim.Optimizer):
    """Pyro's ``ClippedAdam`` update for a list of tensors in a few multi-tensor kernels.

    For each parameter with a gradient, after its step count t is incremented::

        g <- clamp(g, -clip_norm, clip_norm);  m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2
        p <- p - lr lrd^t sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)

    (Pyro's decays a parameter's rate at every call, also while the parameter has had no gradient yet: the two
    differ only for a parameter that joins the loss after the first steps.)
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, clip_norm: float = 10.0,
                 lrd: float = 1.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, clip_norm=clip_norm, lrd=lrd))

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            beta1, beta2 = group["betas"]
            for p in params:
                if not self.state[p]:
                    self.state[p].update(step=0, exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p))
                self.state[p]["step"] += 1
            states = [self.state[p] for p in params]
            grads = [p.grad for p in params]
            torch._foreach_clamp_min_(grads, -group["clip_norm"])
            torch._foreach_clamp_max_(grads, group["clip_norm"])
            exp_avg, exp_avg_sq = [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states]
            torch._foreach_mul_(exp_avg, beta1)
            torch._foreach_add_(exp_avg, grads, alpha=1 - beta1)
            torch._foreach_mul_(exp_avg_sq, beta2)
            torch._foreach_addcmul_(exp_avg_sq, grads, grads, value=1 - beta2)
            denom = torch._foreach_sqrt(exp_avg_sq)
            torch._foreach_add_(denom, group["eps"])
            steps = [-group["lr"] * group["lrd"] ** s["step"] * math.sqrt(1 - beta2 ** s["step"])
                     / (1 - beta1 ** s["step"]) for s in states]
            torch._foreach_addcdiv_(params, exp_avg, denom, steps)
        return loss


class OneOptimizer(PyroOptim):
    """A Pyro optimizer holding one PyTorch optimizer (``constructor(params, **args)``) over every parameter."""

    def __init__(self, constructor, args: dict):
        super().__init__(constructor, dict(args))
        self.optimizer: torch.optim.Optimizer | None = None
        self._pending: dict[str, dict] = {}  # state by parameter name, waiting for the parameter (set_state)

    def __call__(self, params, *args, **kwargs) -> None:
        params = list(params)
        known = set() if self.optimizer is None else {id(p) for p in self.optimizer.param_groups[0]["params"]}
        new = [p for p in params if id(p) not in known]
        for p in params:  # stepped before, unused now: Pyro would step it with the zeros SVI left in its grad
            if p.grad is None and id(p) in known and self.optimizer.state.get(p):
                p.grad = torch.zeros_like(p)
        if new:
            if self.optimizer is None:
                self.optimizer = self.pt_optim_constructor(new, **self.pt_optim_args)
            else:
                self.optimizer.param_groups[0]["params"].extend(new)
            self._restore(new)
        self.optimizer.step()
        for p in params:  # as zero_grad(set_to_none=True): SVI's zero_grads then has nothing to fill
            p.grad = None

    def _restore(self, params) -> None:
        store = pyro.get_param_store()
        for p in params:
            saved = self._pending.pop(store.param_name(p), None)
            if saved is not None:
                self.optimizer.state[p] = {  # copies: stepping must not change the state it was given
                    k: (v.to(p.device, p.dtype) if v.dim() else v).clone() if torch.is_tensor(v) else v
                    for k, v in saved.items()}

    def get_state(self) -> dict:
        """{parameter name: that parameter's optimizer state}."""
        if self.optimizer is None:
            return dict(self._pending)
        store = pyro.get_param_store()
        state = {store.param_name(p): dict(self.optimizer.state[p])
                 for p in self.optimizer.param_groups[0]["params"] if self.optimizer.state[p]}
        return {**self._pending, **state}

    def set_state(self, state_dict: dict) -> None:
        """Take a ``get_state`` result; each parameter gets its state when it first comes to a step. A state
        written by Pyro's own per-parameter optimizers (``{name: torch state_dict}``) is read too."""
        for name, saved in state_dict.items():
            if isinstance(saved, dict) and set(saved) == {"state", "param_groups"}:  # pyro.optim.PyroOptim's
                saved = dict(saved["state"].get(0, {}))
            self._pending[name] = saved
        if self.optimizer is not None:
            self._restore(self.optimizer.param_groups[0]["params"])
