r"""The closed-form steps of MixDVAE's variational EM for single-channel source separation (Lin, Girin &
Alameda-Pineda, TMLR 2023, sec. 3.3 with the spectrogram observation model; the model and its guide are
:class:`ppl_models.mixdvae.separation_model.SpectralMixDVAE`).

Every time-frequency bin of the mixture STFT belongs to one source, a priori uniformly:
x_ft | w_ft = n ~ CN(s_ftn, v_x,ft), and each source is a zero-mean complex Gaussian whose variance its DVAE
decoder predicts, s_ftn ~ CN(0, v_ftn). Complex numbers travel as (real, imaginary) pairs in a trailing
dimension of size 2.

Shapes: mixture x (B, T, F, 2); sources s (B, T, F, N, 2); responsibilities eta (B, T, F, N); prior variances
v (B, T, F, N); the observation variance v_x (B, T, F), one per bin (or a scalar).

E-S step: the product of CN(0, v_ftn) and CN(x_ft; s_ftn, v_x,ft)^{eta_ftn} is CN(m, u) with

    1 / u_ftn = 1 / v_ftn + eta_ftn / v_x,ft,        m_ftn = u_ftn eta_ftn x_ft / v_x,ft,

a Wiener-like soft mask m = (u eta / v_x) x applied to the mixture.

E-W step: q(w_ft = n) ∝ exp E_q(s)[log CN(x_ft; s_ftn, v_x,ft)]
                      ∝ exp(-(|x_ft - m_ftn|^2 + u_ftn) / v_x,ft)    (log(pi v_x,ft) and the prior cancel).
"""

from __future__ import annotations

import torch


def abs2(z: torch.Tensor) -> torch.Tensor:
    """|z|^2 of (real, imaginary) pairs: (..., 2) -> (...)."""
    return (z ** 2).sum(-1)


def e_s_step(prior_var: torch.Tensor, x: torch.Tensor, noise_var: torch.Tensor, resp: torch.Tensor):
    """q(s) = CN(m, u): prior variances (B, T, F, N), mixture (B, T, F, 2), v_x (B, T, F), responsibilities
    (B, T, F, N). Returns m (B, T, F, N, 2) and u (B, T, F, N)."""
    noise_var = noise_var[..., None]
    u = 1.0 / (1.0 / prior_var + resp / noise_var)
    m = (u * resp / noise_var)[..., None] * x[..., None, :]
    return m, u


def e_w_step(x: torch.Tensor, m: torch.Tensor, u: torch.Tensor, noise_var: torch.Tensor):
    """Responsibilities (B, T, F, N): the exact posterior of each bin's source under q(s)."""
    return torch.softmax(-(abs2(x[..., None, :] - m) + u) / noise_var[..., None], dim=-1)
