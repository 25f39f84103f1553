r"""The closed-form steps of MixDVAE's variational EM (Lin, Girin & Alameda-Pineda, TMLR 2023, sec. 3.3).

Shapes: observations o (B, T, K, D) with mask (B, T, K); sources s (B, N, T, D); responsibilities
eta (B, T, K, N') with N' = N sources (+ 1 clutter class); observation variances Phi (B, T, K, D), diagonal.
Every covariance here is diagonal, so each step is elementwise.

E-S step (eq. 14-15): q(s_tn) is the normalised product of the DVAE's prediction N(mu_tn, sigma^2_tn) and of
each observation raised to its responsibility, N(o_tk; s_tn, Phi_tk)^{eta_tkn}:

    1 / v_tn = 1 / sigma^2_tn + sum_k eta_tkn / Phi_tk
    m_tn     = v_tn (mu_tn / sigma^2_tn + sum_k eta_tkn o_tk / Phi_tk)

E-W step (eq. 18): q(w_tk = n) ∝ beta_n exp E_q(s)[log N(o_tk; s_tn, Phi_tk)]
                                = beta_n N(o_tk; m_tn, Phi_tk) exp(-1/2 sum_d v_tnd / Phi_tkd).

M-step: the assignment prior beta_n = mean of eta over observed detections, and the observation noise. A
detector's errors grow with the box, so Phi is relative to each detection's size, Phi_tkd = phi_d size_tkd^2,
and

    phi_d = sum eta_tkn ((o_tkd - m_tnd)^2 + v_tnd) / size_tkd^2  /  sum eta_tkn      (sources only).
"""

from __future__ import annotations

import math

import torch

CLUTTER_LOC, CLUTTER_SCALE = 0.5, 0.5  # a broad Gaussian over the unit image: detections of nobody tracked


def box_size(obs: torch.Tensor, mask: torch.Tensor, floor: float = 1e-3) -> torch.Tensor:
    """(|w|, |h|, |w|, |h|) of each (x1, y1, x2, y2) detection, (B, T, K, 4); 1 where padded (never NaN)."""
    wh = (obs[..., 2:] - obs[..., :2]).abs().clamp_min(floor)
    return torch.where(mask[..., None], torch.cat([wh, wh], dim=-1), torch.ones_like(obs))


def typical_size(obs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The median box side over all present detections (0.05 when there are none): one scale for a problem."""
    size = box_size(obs, mask).masked_fill(~mask[..., None], float("nan")).nanmedian()
    return torch.nan_to_num(size, nan=0.05)


def assigned_evidence(obs, mask, obs_var, resp, num_sources: int):
    """What the detections say about each source, (B, N, T, D) each: the precision sum_k eta_tkn / Phi_tk and
    the precision-weighted sum sum_k eta_tkn o_tk / Phi_tk (E-S step here, pseudo-observations of the VKF)."""
    weight = (resp[..., :num_sources] * mask[..., None]).permute(0, 3, 1, 2)[..., None]  # (B, N, T, K, 1)
    inv_phi = 1.0 / obs_var[:, None]  # (B, 1, T, K, D)
    return (weight * inv_phi).sum(-2), (weight * inv_phi * obs[:, None]).sum(-2)


def e_s_step(pred_loc, pred_var, obs, mask, obs_var, resp):
    """q(s) = N(m, v) from the prediction (B, N, T, D) and the assigned observations; returns m, v."""
    precision, weighted = assigned_evidence(obs, mask, obs_var, resp, pred_loc.shape[1])
    v = 1.0 / (1.0 / pred_var + precision)
    m = v * (pred_loc / pred_var + weighted)
    return m, v


def assignment_log_lik(obs, m, v, obs_var, clutter: bool):
    """E_q(s)[log N(o_tk; s_tn, Phi_tk)] for every detection and source, (B, T, K, N'), plus clutter."""
    m_tn, v_tn = m.transpose(1, 2)[:, :, None], v.transpose(1, 2)[:, :, None]  # (B, T, 1, N, D)
    o, phi = obs[:, :, :, None], obs_var[:, :, :, None]  # (B, T, K, 1, D)
    ll = -0.5 * ((o - m_tn) ** 2 / phi + v_tn / phi + torch.log(2 * math.pi * phi)).sum(-1)
    if clutter:
        c = torch.distributions.Normal(CLUTTER_LOC, CLUTTER_SCALE).log_prob(obs).sum(-1, keepdim=True)
        ll = torch.cat([ll, c], dim=-1)
    return ll


def cavity(m, v, precision, weighted, floor: float = 1e-6):
    """q(s_tn) without frame t's own detections, (mean, variance) (B, N, T, D): the posterior divided by the
    evidence (precision, weighted) that entered it at t. Under a DVAE's E-S step that is its prediction
    (mu, sigma^2); under a Kalman smoother, the prediction of frame t from all the other frames."""
    rest = (1.0 / v - precision).clamp_min(floor / v)
    return (m / v - weighted) / rest, 1.0 / rest


def predictive_log_lik(obs, m, v, obs_var, clutter: bool):
    """log N(o_tk; m_tn, Phi_tk + v_tn) for every detection and source, (B, T, K, N'), plus clutter: how well
    each source's predictive (e.g. its cavity) explains each detection, as JPDA gates and scores them."""
    m_tn, v_tn = m.transpose(1, 2)[:, :, None], v.transpose(1, 2)[:, :, None]  # (B, T, 1, N, D)
    var = obs_var[:, :, :, None] + v_tn
    ll = -0.5 * ((obs[:, :, :, None] - m_tn) ** 2 / var + torch.log(2 * math.pi * var)).sum(-1)
    if clutter:
        c = torch.distributions.Normal(CLUTTER_LOC, CLUTTER_SCALE).log_prob(obs).sum(-1, keepdim=True)
        ll = torch.cat([ll, c], dim=-1)
    return ll


def e_w_step(obs, m, v, obs_var, weights, clutter: bool):
    """Responsibilities eta (B, T, K, N'): exact posterior of each assignment under q(s)."""
    return torch.softmax(assignment_log_lik(obs, m, v, obs_var, clutter) + torch.log(weights), dim=-1)


def m_step(obs, mask, m, v, resp, size):
    """Closed-form (relative noise phi (D,), assignment prior beta (N',)) from the current q(s) and eta."""
    N = m.shape[1]
    eta = resp * mask[..., None]  # (B, T, K, N')
    m_tn, v_tn = m.transpose(1, 2)[:, :, None], v.transpose(1, 2)[:, :, None]  # (B, T, 1, N, D)
    sq = ((obs[:, :, :, None] - m_tn) ** 2 + v_tn) / size[:, :, :, None] ** 2  # (B, T, K, N, D)
    source_eta = eta[..., :N, None]
    phi = (source_eta * sq).sum((0, 1, 2, 3)) / source_eta.sum().clamp_min(1e-12)
    beta = eta.sum((0, 1, 2)) / mask.sum().clamp_min(1)
    return phi, beta.clamp_min(1e-6) / beta.clamp_min(1e-6).sum()
