r"""Tracking baselines in the MixDVAE harness (same windows, same initialisation, same metrics).

* **VKF** (the paper's variational Kalman filter baseline, Ba et al. 2016): MixDVAE's variational EM with the
  DVAE replaced by a linear-Gaussian source model, constant velocity per coordinate,

      [p_t, u_t] = [[1, 1], [0, 1]] [p_{t-1}, u_{t-1}] + G a_t,   a_t ~ N(0, q),  G = [1/2, 1]

  so the E-S step is exact: a Kalman filter fed, at each frame, the responsibility-weighted fusion of the
  detections (precision sum_k eta_tkn / Phi_tk). The E-W and M-steps are MixDVAE's. Ba et al.'s model is
  on-line: the estimate at frame t reads the detections up to t, which the filter keeps (iterating the whole
  window reaches the fixed point of iterating frame by frame). Two settings still read the whole batch, as
  MixDVAE's do: the typical box size that scales q, and the assignment prior beta of the M-step.
  ``smooth=True`` adds the Rauch-Tung-Striebel backward pass: every frame then reads the whole window, a
  stronger batch baseline than the paper's.
* **Kalman + Hungarian**: the classic online tracker. Each source has a constant-velocity Kalman filter;
  every frame, detections are matched to the predictions by the Hungarian algorithm on the Mahalanobis
  distance (gated at the chi-square 99.9 % quantile), matched filters are updated, the others coast.

q is relative to the box size, like the detection noise: q_d = (accel * size_d)^2.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from scipy.stats import chi2

from ppl_models.mixdvae.vem import assigned_evidence, box_size, e_w_step, m_step, typical_size

F = torch.tensor([[1.0, 1.0], [0.0, 1.0]])
G = torch.tensor([0.5, 1.0])


def constant_velocity_posterior(y, r, q, init, init_var, velocity_var, *, smooth: bool):
    """Kalman filter (and with ``smooth`` the RTS smoother) of the constant-velocity model, independently per
    (sequence, coordinate).

    y, r (S, T, D): observed positions and their variances (inf: no observation); q (S, D) acceleration
    variance; init, init_var (S, D) the first position's prior, velocity_var (S, D) the first velocity's
    (mean 0). Returns the positions' posterior means and variances (S, T, D): given y_{1:t} (filtered) or
    given y_{1:T} (smoothed)."""
    S, T, D = y.shape
    f, gq = F.to(y), q[..., None, None] * torch.outer(G, G).to(y)  # (2, 2), (S, D, 2, 2)
    x = torch.stack([init, torch.zeros_like(init)], -1)  # (S, D, 2)
    P = torch.diag_embed(torch.stack([init_var, velocity_var], -1))
    filtered, predicted = [], []
    for t in range(T):
        if t > 0:
            x, P = x @ f.T, f @ P @ f.T + gq
        predicted.append((x, P))
        obs_var = r[:, t]
        seen = torch.isfinite(obs_var)
        gain = P[..., :, 0] / (P[..., 0, 0] + torch.where(seen, obs_var, 1.0))[..., None]  # (S, D, 2)
        gain = gain * seen[..., None]
        innovation = torch.where(seen, y[:, t] - x[..., 0], 0.0)
        x = x + gain * innovation[..., None]
        P = P - gain[..., :, None] * P[..., 0, None, :]
        filtered.append((x, P))
    if not smooth:
        return torch.stack([x[..., 0] for x, _ in filtered], 1), torch.stack([P[..., 0, 0] for _, P in filtered], 1)
    xs, Ps = filtered[-1]
    means, variances = [xs[..., 0]], [Ps[..., 0, 0]]
    for t in range(T - 2, -1, -1):
        xf, Pf = filtered[t]
        xp, Pp = predicted[t + 1]
        C = Pf @ f.T @ torch.linalg.inv(Pp)
        xs = xf + (C @ (xs - xp)[..., None])[..., 0]
        Ps = Pf + C @ (Ps - Pp) @ C.transpose(-1, -2)
        means.append(xs[..., 0])
        variances.append(Ps[..., 0, 0])
    return torch.stack(means[::-1], 1), torch.stack(variances[::-1], 1)


@torch.no_grad()
def vkf(obs, mask, init, iterations: int = 30, noise: float = 0.05, accel: float = 0.05, smooth: bool = False):
    """Variational Kalman filter: (B, N, T, D) posterior means of the sources from obs (B, T, K, D); filtered
    (the paper's on-line baseline) or, with ``smooth``, smoothed over the window."""
    B, N, T, D = init.shape
    size = box_size(obs, mask)
    obs_var = noise ** 2 * size ** 2
    typical = typical_size(obs, mask)  # one box, for q and the first frame
    q = torch.full((B * N, D), float((accel * typical) ** 2))
    box_var = torch.full((B * N, D), float(typical) ** 2)  # first position and velocity: known to about a box
    m, v = init.clone(), torch.full_like(init, float(typical) ** 2)
    beta = torch.full((N,), 1.0 / N)
    for _ in range(iterations):
        resp = e_w_step(obs, m, v, obs_var, beta, clutter=False)
        precision, weighted = assigned_evidence(obs, mask, obs_var, resp, N)  # (B, N, T, D)
        fused = weighted / precision.clamp_min(1e-30)
        r = torch.where(precision > 0, 1 / precision.clamp_min(1e-30), torch.inf)
        m, v = (a.reshape(B, N, T, D) for a in constant_velocity_posterior(
            fused.reshape(B * N, T, D), r.reshape(B * N, T, D), q, init[:, :, 0].reshape(B * N, D),
            box_var, box_var, smooth=smooth))
        _, beta = m_step(obs, mask, m, v, resp, size)
    return m


def kalman_hungarian(obs, mask, init, noise: float = 0.05, accel: float = 0.05, gate: float = 0.999):
    """Online constant-velocity Kalman filters + Hungarian matching: (B, N, T, D) filtered positions."""
    obs, mask, init = (np.asarray(a.cpu() if torch.is_tensor(a) else a, dtype=np.float64) for a in (obs, mask, init))
    mask = mask.astype(bool)
    B, N, T, D = init.shape
    threshold = chi2.ppf(gate, D)
    out = np.zeros_like(init)
    f = F.numpy()
    for b in range(B):
        box = np.abs(init[b, :, 0, 2:] - init[b, :, 0, :2]).clip(1e-3)  # (N, 2): each source's w, h
        box = np.concatenate([box, box], -1)  # (N, D) like box_size
        q = (accel * box)[..., None, None] ** 2 * np.outer(G.numpy(), G.numpy())  # (N, D, 2, 2)
        x = np.stack([init[b, :, 0], np.zeros((N, D))], -1)  # (N, D, 2)
        P = np.zeros((N, D, 2, 2))
        P[..., 0, 0] = P[..., 1, 1] = box ** 2  # velocity unknown: up to a box a frame
        for t in range(T):
            if t > 0:
                x, P = x @ f.T, f @ P @ f.T + q
            dets = obs[b, t][mask[b, t]]  # (K, D)
            if len(dets):
                size = np.abs(dets[:, 2:] - dets[:, :2]).clip(1e-3)
                R = (noise * np.concatenate([size, size], -1)) ** 2  # (K, D)
                var = P[None, :, :, 0, 0] + R[:, None]  # (K, N, D)
                cost = (((dets[:, None] - x[None, ..., 0]) ** 2) / var).sum(-1).T  # (N, K)
                rows, cols = linear_sum_assignment(cost)
                for n, k in zip(rows, cols):
                    if cost[n, k] <= threshold:
                        gain = P[n, :, :, 0] / (P[n, :, 0, 0] + R[k])[:, None]  # (D, 2)
                        x[n] = x[n] + gain * (dets[k] - x[n, :, 0])[:, None]
                        P[n] = P[n] - gain[:, :, None] * P[n, :, 0, None, :]
            out[b, :, t] = x[..., 0]
    return torch.as_tensor(out, dtype=torch.float32)
