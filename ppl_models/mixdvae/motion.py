r"""A constant-velocity source prior for MixDVAE: the linear-Gaussian motion model of the VKF baseline as a drop-in
replacement for the DVAE, so that the same model, guides, association and VEM run with it.

Per source and coordinate d, state (position s_t, velocity u_t):

    [s_t, u_t] = [[1, 1], [0, 1]] [s_{t-1}, u_{t-1}] + [1/2, 1] a_t,   a_t ~ N(0, q_d),  q_d = (accel * size_d)^2
    s_1 ~ N(s_init, size_d^2),  u_1 ~ N(0, size_d^2)

with size_d the box's side (width for x, height for y). There is no latent z: ``prior_sites`` adds log p(s) (the
Kalman filter's prediction-error decomposition of s itself) and ``encoder_sites`` adds nothing. Under ``vem`` the
E-S step is exact: q(s_n) is the Kalman (RTS) smoother of the responsibility-weighted fusion of the detections,

    y_tn = (sum_k eta_tkn o_tk / Phi_tk) / (sum_k eta_tkn / Phi_tk),   r_tn = 1 / (sum_k eta_tkn / Phi_tk),

so frames without a detection coast on the motion model (``smooth=False``: the filter, on-line).
It cannot predict worse than constant velocity: it *is* constant velocity.
"""

from __future__ import annotations

import math

import pyro
import torch
from torch import nn

from ppl_models.mixdvae.baselines import constant_velocity_posterior
from ppl_models.mixdvae.vem import assigned_evidence

CONSTANT_VELOCITY = "constant-velocity"


def box_sides(boxes: torch.Tensor) -> torch.Tensor:
    """(|w|, |h|, |w|, |h|) of (..., 4) x1y1x2y2 boxes, floored at 1e-3."""
    wh = (boxes[..., 2:] - boxes[..., :2]).abs().clamp_min(1e-3)
    return torch.cat([wh, wh], -1)


class ConstantVelocityPrior(nn.Module):
    box_frame = "y-up"  # any linear frame does: the model is the same in all

    def __init__(self, accel: float = 0.01, smooth: bool = True):
        """``accel``: acceleration std per frame relative to the box; ``smooth``: RTS smoother (q(s_t) reads the
        whole window) instead of the on-line filter. Defaults chosen on the MOT17 development sequence
        (``benchmarks/tracking.py --detections occlusion``)."""
        super().__init__()
        self.accel, self.smooth = accel, smooth

    def log_density(self, s: torch.Tensor) -> torch.Tensor:
        """log p(s) for sources s (S, T, D), (S,): the filter's one-step predictions of s from s_{<t}."""
        S, T, D = s.shape
        size = box_sides(s.detach()).mean(1)  # (S, D)
        x, P = s[:, 0], size ** 2  # position known after frame 1; velocity N(0, size^2)
        total = -0.5 * (math.log(2 * math.pi) * D + torch.log(P).sum(-1))  # frame 1 around itself: its normaliser
        u, Pu, q = torch.zeros_like(x), size ** 2, (self.accel * size) ** 2
        for t in range(1, T):
            pred, var = x + u, Pu + q / 4  # position predicted from (s_{t-1}, u), velocity uncertain
            total = total - 0.5 * (((s[:, t] - pred) ** 2 / var) + torch.log(2 * math.pi * var)).sum(-1)
            # velocity given the new position: (s_t - s_{t-1}) = u + a/2, u' = u + a
            cov = Pu + q / 2
            u = u + cov / var * (s[:, t] - pred)
            Pu = Pu + q - cov ** 2 / var
            x = s[:, t]
        return total

    def prior_sites(self, prefix: str, s: torch.Tensor):
        pyro.factor(f"{prefix}_motion", self.log_density(s))

    def encoder_sites(self, prefix: str, s: torch.Tensor):
        return None

    def e_s_step(self, obs, mask, obs_var, resp, first: torch.Tensor):
        """q(s) = N(m, v), (B, N, T, D): the exact posterior given the responsibilities; ``first`` (B, N, D) the
        sources' first-frame guess (it centres s_1 and sets each source's box size)."""
        B, N, D = first.shape
        T = obs.shape[1]
        precision, weighted = assigned_evidence(obs, mask, obs_var, resp, N)  # (B, N, T, D)
        fused = weighted / precision.clamp_min(1e-30)
        r = torch.where(precision > 0, 1 / precision.clamp_min(1e-30), torch.full_like(precision, math.inf))
        size = box_sides(first).reshape(B * N, D)
        m, v = constant_velocity_posterior(fused.reshape(B * N, T, D), r.reshape(B * N, T, D),
                                           (self.accel * size) ** 2, first.reshape(B * N, D), size ** 2, size ** 2,
                                           smooth=self.smooth)
        v = v.clamp_min(1e-12 * float(size.max()) ** 2)  # the float32 RTS pass can round a variance below 0
        return m.reshape(B, N, T, D), v.reshape(B, N, T, D)
