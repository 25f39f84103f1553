r"""The closed-form steps of MixDVAE's variational EM for single-channel source separation (Lin, Girin &
Alameda-Pineda, TMLR 2023, sec. 3.3 with the spectrogram observation model).

Every time-frequency bin of the mixture STFT belongs to one source: x_ft | w_ft = n ~ CN(s_ftn, v_x), and
each source is a zero-mean complex Gaussian whose variance its DVAE decoder predicts, s_ftn ~ CN(0, v_ftn).
Complex numbers travel as (real, imaginary) pairs in a trailing dimension of size 2.

Shapes: mixture x (B, T, F, 2); sources s (B, T, F, N, 2); responsibilities eta (B, T, F, N); prior variances
v (B, T, F, N); the observation variance v_x a scalar.

E-S step: the product of CN(0, v_ftn) and CN(x_ft; s_ftn, v_x)^{eta_ftn} is CN(m, u) with

    1 / u_ftn = 1 / v_ftn + eta_ftn / v_x,        m_ftn = u_ftn eta_ftn x_ft / v_x,

a Wiener-like soft mask m = (u eta / v_x) x applied to the mixture.

E-W step: q(w_ft = n) ∝ beta_n exp E_q(s)[log CN(x_ft; s_ftn, v_x)]
                       = beta_n exp(-(|x_ft - m_ftn|^2 + u_ftn) / v_x)    (the log(pi v_x) cancels).

M-step: v_x = sum eta (|x - m|^2 + u) / sum eta and beta_n = mean over bins of eta_ftn.
"""

from __future__ import annotations

import torch


def abs2(z: torch.Tensor) -> torch.Tensor:
    """|z|^2 of (real, imaginary) pairs: (..., 2) -> (...)."""
    return (z ** 2).sum(-1)


def e_s_step(prior_var: torch.Tensor, x: torch.Tensor, noise_var, resp: torch.Tensor):
    """q(s) = CN(m, u): prior variances (B, T, F, N), mixture (B, T, F, 2), responsibilities (B, T, F, N).
    Returns m (B, T, F, N, 2) and u (B, T, F, N)."""
    u = 1.0 / (1.0 / prior_var + resp / noise_var)
    m = (u * resp / noise_var)[..., None] * x[..., None, :]
    return m, u


def e_w_step(x: torch.Tensor, m: torch.Tensor, u: torch.Tensor, noise_var, weights: torch.Tensor):
    """Responsibilities (B, T, F, N): the exact posterior of each bin's source under q(s)."""
    return torch.softmax(-(abs2(x[..., None, :] - m) + u) / noise_var + torch.log(weights), dim=-1)


def m_step(x: torch.Tensor, m: torch.Tensor, u: torch.Tensor, resp: torch.Tensor):
    """Closed-form (v_x, beta) from the current q(s) and responsibilities."""
    noise_var = (resp * (abs2(x[..., None, :] - m) + u)).sum() / resp.sum()
    beta = resp.reshape(-1, resp.shape[-1]).mean(0)
    return noise_var, beta.clamp_min(1e-6) / beta.clamp_min(1e-6).sum()


# ----------------------------------------------------------------------------- the paper's VEM, per bin
@torch.no_grad()
def paper_vem(priors: list, x: torch.Tensor, iterations: int = 70, noise_ratio: float = 0.03,
              expected_power: bool = True, keep_history: bool = False):
    r"""MixDVAE's separation VEM as its reference code runs it, on mixture segments x (B, T, F) complex.

    The observation variance is per bin and fixed, v_x,ft = ``noise_ratio`` |x_ft|^2, so every bin is judged
    relative to its own level, quiet or loud; the assignment prior is uniform. Each source n starts from its
    prior's decoder run on the mixture power (the DVAE's reconstruction of |x|^2) with eta = 1/N. Iteration:

        E-Z   z_n = mean of q_n(z | P_n),  v_n = decoder_n(z_n, P_n)        (P_n: source n's current power)
        E-S   1/u_n = eta_n / v_x + 1/v_n,   m_n = u_n eta_n x / v_x
        E-W   eta_n ∝ exp(-(|x - m_n|^2 + u_n) / v_x)
        P_n <- |m_n|^2 + u_n (``expected_power``) or |m_n|^2

    Returns the means m (N, B, T, F) complex of the last iteration (and every iteration's if
    ``keep_history``). The reference feeds the SRNN's recurrence with a draw of the current q(s) frame by
    frame; here the recurrence reads the last iteration's power at once (teacher forcing)."""
    N = len(priors)
    power = x.abs().square().float()
    noise_var = (noise_ratio * power).clamp_min(1e-12)
    P = torch.stack([prior.reconstruct(power) for prior in priors])  # (N, B, T, F)
    eta = torch.full_like(P, 1.0 / N)
    history = []
    for _ in range(iterations):
        v = torch.stack([prior.likelihood.mean(prior.decoder_params(prior.encode(p), p, prior._context(p)))
                         for prior, p in zip(priors, P)]).clamp_min(1e-12)
        u = 1.0 / (eta / noise_var + 1.0 / v)
        m = (u * eta / noise_var) * x
        err = (x - m).abs().square() + u
        eta = torch.softmax(-err / noise_var, dim=0)
        P = m.abs().square() + (u if expected_power else 0)
        if keep_history:
            history.append(m)
    return (m, history) if keep_history else m
