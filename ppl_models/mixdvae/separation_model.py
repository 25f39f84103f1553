r"""MixDVAE for single-channel source separation (Lin, Girin & Alameda-Pineda, TMLR 2023): N sources, each
with its own frozen DVAE spectrogram prior (speech, music, ...), and the assignment of every time-frequency
bin of the mixture to the source that dominates it, marginalised exactly.

Generative model, mixtures b, frames t, frequencies f, sources n:

    z_{1:T,n} ~ p_DVAE_n(z),   s_ftn | z ~ CN(0, v_ftn(z))           source n's frozen prior (e.g. RVAE)
    w_ft ~ Categorical(1/N, ..., 1/N)                                which source owns bin (f, t)
    x_ft | w_ft = n, s ~ CN(s_ftn, v_x,ft),   v_x,ft = r |x_ft|^2    the mixture STFT

    plate mixtures (b), per source n        plate mixtures x time x freq (b, t, f)
    z_{1:T,n} --> s_{1:T,n} -----------------------> x_ft <-- w_ft

As in the paper's reference code, the observation variance is per bin and fixed, a ratio r (``noise_ratio``,
0.03) of the bin's own power: every bin is judged relative to its own level, quiet or loud (one scalar v_x
hands the quiet bins to whichever prior is loudest there). The bin prior is uniform; nothing is learnt.

Complex values are (real, imaginary) pairs; CN(s; m, v) is then N(re; m_re, v/2) N(im; m_im, v/2). The DVAE
scores the power |s|^2 with its Exponential likelihood (``dvae.likelihoods``), whose density is pi times the
complex one: each source adds the constant -T F log(pi) so that the model is a density over (re, im).

Guide ``vem`` (the paper's variational EM, q(z) q(s) q(w)): :meth:`start` sets each source's power P_n to its
prior's reconstruction of the mixture power |x|^2 and eta = 1/N. Each iteration:

    E-Z   z_n ~ q_n(z | P_n) (the guide's site);  v_n = decoder_n(mean path of q_n(z | P_n), P_n)
    E-S   1/u_n = eta_n / v_x + 1/v_n,   m_n = u_n eta_n x / v_x          (the guide's s_n ~ CN(m_n, u_n))
    E-W   eta_n ∝ exp(-(|x - m_n|^2 + u_n) / v_x)                         (:meth:`vem_update`, exact)
    P_n <- |m_n|^2 + u_n

The E-S and E-W steps are :mod:`ppl_models.mixdvae.spectral_vem`. q(s) is decoded at q(z)'s mean path, as the
reference's E-Z point does; the drawn z enters only the ELBO, which ``TraceEnum_ELBO`` evaluates with w summed
out (tests check it against the brute-force sum over assignments).

Enumeration shapes (max_plate_nesting = 3; w enumerated in dim -4):

    s_n                    (B, T, F, 2)     plate prior_batch at dim -1 (event (T, F, 2))
    locs                   (B, T, F, N, 2)
    w                      (B, T, F)  ->  (N, 1, 1, 1) when enumerated
    x                      (B, T, F, 2)     plates mixtures -3, time -2, freq -1
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pyro
import pyro.distributions as dist
import torch
from pyro.distributions import constraints
from pyro.ops.indexing import Vindex
from torch import nn

from ppl_models.mixdvae.model import FlatPrior
from ppl_models.mixdvae.spectral_vem import abs2, e_s_step, e_w_step


@dataclass
class SpectralVEMState:
    power: torch.Tensor  # (B, T, F, N) each source's power P_n, what its encoder reads next
    resp: torch.Tensor  # (B, T, F, N) responsibilities eta
    m: torch.Tensor | None = None  # (B, T, F, N, 2) posterior means of the sources' STFTs
    u: torch.Tensor | None = None  # (B, T, F, N) posterior variances


class SpectralMixDVAE(nn.Module):
    max_plate_nesting = 3

    def __init__(self, priors: list[nn.Module], noise_ratio: float = 0.03):
        super().__init__()
        if len(priors) < 2:
            raise ValueError(f"separation needs at least two source priors, got {len(priors)}")
        if any(p.likelihood.kind != "power" for p in priors):
            raise ValueError("every source prior must be a spectrogram (power) prior")
        self.priors = nn.ModuleList(p.eval().requires_grad_(False) for p in priors)  # frozen; q(z) is their encoder
        self.noise_ratio = noise_ratio
        self.guides = {"vem": self.guide_vem}
        self.state: SpectralVEMState | None = None

    @property
    def num_sources(self) -> int:
        return len(self.priors)

    def noise_var(self, x: torch.Tensor) -> torch.Tensor:
        """v_x (B, T, F) = r |x|^2 per bin of the mixture x (B, T, F, 2)."""
        return (self.noise_ratio * abs2(x)).clamp_min(1e-12)

    @torch.no_grad()
    def start(self, x: torch.Tensor):
        """Begin on mixtures x (B, T, F, 2): each source's power is its prior's reconstruction of |x|^2."""
        power = abs2(x)
        P = torch.stack([prior.reconstruct(power) for prior in self.priors], dim=-1)
        self.state = SpectralVEMState(P, torch.full_like(P, 1.0 / self.num_sources))

    # -------------------------------------------------------------------------------------------- model
    def model(self, x: torch.Tensor):
        """x (B, T, F, 2): the mixture STFT as (real, imaginary) pairs."""
        B, T, F, _ = x.shape
        sources = []
        with pyro.plate("prior_batch", B, dim=-1):
            for n, prior in enumerate(self.priors):
                s = pyro.sample(f"s_{n}", FlatPrior(constraints.real, (B,), (T, F, 2)))
                prior.prior_sites(f"source{n}", abs2(s))  # log p_DVAE(|s|^2, z)
                pyro.factor(f"source{n}_polar", x.new_full((B,), -T * F * math.log(math.pi)))
                sources.append(s)
        locs = torch.stack(sources, dim=-2)  # (B, T, F, N, 2)
        uniform = x.new_full((B, T, F, self.num_sources), 1.0 / self.num_sources)
        scale = (self.noise_var(x) / 2).sqrt()[..., None]  # (B, T, F, 1)
        b, t, f = (torch.arange(n, device=x.device) for n in (B, T, F))
        with pyro.plate("mixtures", B, dim=-3), pyro.plate("time", T, dim=-2), pyro.plate("freq", F, dim=-1):
            w = pyro.sample("w", dist.Categorical(uniform), infer={"enumerate": "parallel"})
            loc = Vindex(locs)[b[:, None, None], t[:, None], f, w]  # (B, T, F, 2); enumerated (N, B, T, F, 2)
            pyro.sample("x", dist.Normal(loc, scale).to_event(1), obs=x)

    # -------------------------------------------------------------------------------------------- guide
    def prior_variances(self) -> torch.Tensor:
        """E-Z then decode: z_n ~ q_n(z | P_n) as the guide's site, and each source's prior variance v
        (B, T, F, N) decoded from q_n's mean path."""
        variances = []
        for n, prior in enumerate(self.priors):
            power = self.state.power[..., n]
            prior.encoder_sites(f"source{n}", power)
            ctx = prior._context(power)
            variances.append(prior.likelihood.mean(prior.decoder_params(prior.encode(power, ctx), power, ctx)))
        return torch.stack(variances, dim=-1).clamp_min(1e-12)

    def guide_vem(self, x: torch.Tensor):
        B, T, F, _ = x.shape
        with pyro.plate("prior_batch", B, dim=-1):
            m, u = e_s_step(self.prior_variances(), x, self.noise_var(x), self.state.resp)
            for n in range(self.num_sources):
                scale = (u[..., n] / 2).sqrt()[..., None].expand(B, T, F, 2)
                pyro.sample(f"s_{n}", dist.Normal(m[..., n, :], scale).to_event(3))
        self._proposal = (m.detach(), u.detach())

    @torch.no_grad()
    def vem_update(self, x: torch.Tensor):
        """After a ``vem`` step: keep its q(s), run the exact E-W step, and set each source's power for the
        next E-Z step to E|s_n|^2 = |m_n|^2 + u_n."""
        st = self.state
        st.m, st.u = self._proposal
        st.resp = e_w_step(x, st.m, st.u, self.noise_var(x))
        st.power = abs2(st.m) + st.u
