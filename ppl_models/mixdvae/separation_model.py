r"""MixDVAE for single-channel source separation (Lin, Girin & Alameda-Pineda, TMLR 2023): N sources, each
with its own frozen DVAE spectrogram prior (speech, music, ...), and the assignment of every time-frequency
bin of the mixture to the source that dominates it, marginalised exactly.

Generative model, mixtures b, frames t, frequencies f, sources n:

    z_{1:T,n} ~ p_DVAE_n(z),   s_ftn | z ~ CN(0, v_ftn(z))           source n's frozen prior (e.g. RVAE)
    w_ft ~ Categorical(beta)                                         which source owns bin (f, t)
    x_ft | w_ft = n, s ~ CN(s_ftn, v_x)                              the mixture STFT

    plate mixtures (b), per source n        plate mixtures x time x freq (b, t, f)
    z_{1:T,n} --> s_{1:T,n} -----------------------> x_ft <-- w_ft <-- beta

Complex values are (real, imaginary) pairs; CN(s; m, v) is then N(re; m_re, v/2) N(im; m_im, v/2). The DVAE
scores the power |s|^2 with its Exponential likelihood (``dvae.likelihoods``), whose density is pi times the
complex one: each source adds the constant -T F log(pi) so that the model is a density over (re, im).

Guide ``vem`` (the paper's variational EM): the E-Z step feeds each source's encoder the expected power
E|s|^2 = |m|^2 + u of the last q(s); the decoder turns z into prior variances v; the E-S step is the
closed-form Wiener-like posterior of :mod:`ppl_models.mixdvae.spectral_vem`; after each step
:meth:`vem_update` runs the exact E-W step and the M-step.

This class states the model in Pyro with one scalar v_x and the enumerated ELBO (tests check it against the
brute-force sum over assignments). ``separate`` runs the paper's own VEM instead
(:func:`ppl_models.mixdvae.spectral_vem.paper_vem`: per-bin v_x = 0.03 |x|^2, sources started from their
decoders, uniform bin prior), which separates real speech from music where this scalar-v_x form did not.

Enumeration shapes (max_plate_nesting = 3; w enumerated in dim -4):

    s_n                    (B, T, F, 2)     plate prior_batch at dim -1 (event (T, F, 2))
    locs                   (B, T, F, N, 2)
    w                      (B, T, F)  ->  (N, 1, 1, 1) when enumerated
    x                      (B, T, F, 2)     plates mixtures -3, time -2, freq -1
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import pyro
import pyro.distributions as dist
import torch
from pyro.distributions import constraints
from pyro.ops.indexing import Vindex
from torch import nn

from ppl_models.mixdvae.model import FlatPrior
from ppl_models.mixdvae.spectral_vem import abs2, e_s_step, e_w_step, m_step


@dataclass
class SpectralVEMState:
    m: torch.Tensor  # (B, T, F, N, 2) posterior means of the sources' STFTs
    u: torch.Tensor  # (B, T, F, N) posterior variances
    resp: torch.Tensor  # (B, T, F, N) responsibilities
    noise_var: torch.Tensor  # () v_x
    beta: torch.Tensor  # (N,) assignment prior


class SpectralMixDVAE(nn.Module):
    max_plate_nesting = 3

    def __init__(self, priors: list[nn.Module], learn_noise: bool = True, learn_weights: bool = True):
        super().__init__()
        if len(priors) < 2:
            raise ValueError(f"separation needs at least two source priors, got {len(priors)}")
        if any(p.likelihood.kind != "power" for p in priors):
            raise ValueError("every source prior must be a spectrogram (power) prior")
        self.priors = nn.ModuleList(p.train().requires_grad_(False) for p in priors)  # train(): see MixDVAE
        self.encoders = nn.ModuleList(copy.deepcopy(p) for p in self.priors)  # q(z | s), one per source
        self.learn_noise, self.learn_weights = learn_noise, learn_weights
        self.guides = {"vem": self.guide_vem}
        self.state: SpectralVEMState | None = None

    @property
    def num_sources(self) -> int:
        return len(self.priors)

    def start(self, x: torch.Tensor, noise_ratio: float = 1e-2):
        """Begin on mixtures x (B, T, F, 2): each source holds 1/N of the mixture, bins shared evenly, v_x a
        ``noise_ratio`` of the mixture's mean power."""
        N = self.num_sources
        m = (x / N)[..., None, :].expand(*x.shape[:-1], N, 2).clone()
        u = (abs2(x) / N)[..., None].expand(*x.shape[:-1], N).clone()
        resp = torch.full_like(u, 1.0 / N)
        noise_var = noise_ratio * abs2(x).mean()
        self.state = SpectralVEMState(m, u, resp, noise_var, torch.full((N,), 1.0 / N, device=x.device))

    # -------------------------------------------------------------------------------------------- model
    def model(self, x: torch.Tensor):
        """x (B, T, F, 2): the mixture STFT as (real, imaginary) pairs."""
        B, T, F, _ = x.shape
        noise_var, beta = self.state.noise_var, self.state.beta
        sources = []
        with pyro.plate("prior_batch", B, dim=-1):
            for n, prior in enumerate(self.priors):
                s = pyro.sample(f"s_{n}", FlatPrior(constraints.real, (B,), (T, F, 2)))
                prior.prior_sites(f"source{n}", abs2(s))  # log p_DVAE(|s|^2, z)
                pyro.factor(f"source{n}_polar", x.new_full((B,), -T * F * math.log(math.pi)))
                sources.append(s)
        locs = torch.stack(sources, dim=-2)  # (B, T, F, N, 2)
        b, t, f = (torch.arange(n, device=x.device) for n in (B, T, F))
        with pyro.plate("mixtures", B, dim=-3), pyro.plate("time", T, dim=-2), pyro.plate("freq", F, dim=-1):
            w = pyro.sample("w", dist.Categorical(beta.expand(B, T, F, -1)), infer={"enumerate": "parallel"})
            loc = Vindex(locs)[b[:, None, None], t[:, None], f, w]  # (B, T, F, 2); enumerated (N, B, T, F, 2)
            pyro.sample("x", dist.Normal(loc, (noise_var / 2).sqrt()).to_event(1), obs=x)

    # -------------------------------------------------------------------------------------------- guide
    def prior_variances(self) -> torch.Tensor:
        """E-Z then decode: each source's prior variance v (B, T, F, N) given z ~ q(z | E|s|^2)."""
        st = self.state
        variances = []
        for n, (prior, encoder) in enumerate(zip(self.priors, self.encoders)):
            power = abs2(st.m[..., n, :]) + st.u[..., n]  # (B, T, F) expected power of the last q(s)
            z = encoder.encoder_sites(f"source{n}", power)
            variances.append(prior.likelihood.mean(prior.decoder_params(z, power, prior._context(power))))
        return torch.stack(variances, dim=-1)

    def guide_vem(self, x: torch.Tensor):
        B, T, F, _ = x.shape
        st = self.state
        with pyro.plate("prior_batch", B, dim=-1):
            m, u = e_s_step(self.prior_variances(), x, st.noise_var, st.resp)
            for n in range(self.num_sources):
                scale = (u[..., n] / 2).sqrt()[..., None].expand(B, T, F, 2)
                pyro.sample(f"s_{n}", dist.Normal(m[..., n, :], scale).to_event(3))
        self._proposal = (m.detach(), u.detach())

    @torch.no_grad()
    def vem_update(self, x: torch.Tensor):
        """After a ``vem`` step: keep its q(s), then the exact E-W step and the closed-form M-step."""
        st = self.state
        st.m, st.u = self._proposal
        st.resp = e_w_step(x, st.m, st.u, st.noise_var, st.beta)
        noise_var, beta = m_step(x, st.m, st.u, st.resp)
        st.noise_var = noise_var if self.learn_noise else st.noise_var
        st.beta = beta if self.learn_weights else st.beta
