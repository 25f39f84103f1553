r"""Multimodal variational RNN (Guo 2019, "Latent variable algorithms for multimodal learning and sensor
fusion", sec. 5, eq. 42-47): a shared latent z^s_t on which every sensor depends and a private latent z^m_t
per sensor m, each chain with its own recurrence.

    x^1_{t-1} ───────> h^1_t ──> z^1_t ──────┐
        │                                    ├──> x^1_t
        └────┐                               │
             ├──> h^s_t ──> z^s_t ───────────┤      (h^s_t feeds both emissions too)
        ┌────┘                               │
        │                                    ├──> x^2_t
    x^2_{t-1} ───────> h^2_t ──> z^2_t ──────┘

Generative model. o^m_t in {0, 1} says whether sensor m was observed in frame t; the networks read a frame
as a^m_t = [o^m_t phi_m(x^m_t), o^m_t], so a missing frame reads as zeros and a flag:

    h^m_t = LSTM_m(h^m_{t-1}, [z^m_{t-1}, a^m_{t-1}])              p(z^m_t | z^m_<t, x^m_<t) = N(prior_m(h^m_t))
    h^s_t = LSTM_s(h^s_{t-1}, [z^s_{t-1}, a^1_{t-1} .. a^M_{t-1}])  p(z^s_t | z^s_<t, x_<t)   = N(prior_s(h^s_t))
    p(x^m_t | z^m_<=t, z^s_<=t, x_<t) = N(dec_m(z^m_t, z^s_t, h^s_t))        (eq. 44, which reads x^m_<t only)

The emission reads the shared recurrence h^s_t, which summarises z^s_<t and every sensor's past (x^m_<t of
eq. 44 among them), and the two latents of frame t; z^m_<t reaches it through z^m_t's own prior. The private
recurrence h^m_t drives only the private prior and encoder. Reading h^m_t in the emission as well (a second
path from x^m_<t) made imputation worse: when sensor m is missing, h^m_t has read nothing, and a decoder
trained mostly on observed frames leans on it (benchmarks/RESULTS.md, "Multimodal imputation").

Guide, in the filtering form of eq. 43, each encoder sharing its chain's LSTM with the prior (as in the VRNN):

    q(z^m_t | z^m_<t, x^m_<=t) = N(enc_m(h^m_t, a^m_t))      q(z^s_t | z^s_<t, x_<=t) = N(enc_s(h^s_t, a^1_t .. a^M_t))

ELBO (eq. 45-47), one reconstruction term and one KL per sensor, one KL for the shared latent:

    sum_t [ sum_m o^m_t E_q log p(x^m_t | .) - sum_m KL(q(z^m_t) || p(z^m_t)) - KL(q(z^s_t) || p(z^s_t)) ]

:meth:`elbo_terms` returns these pieces; the Pyro model scores each latent chain as one site (the
teacher-forced :class:`~ppl_models.dvae.sequence.LatentSequence` of the DVAEs) and each sensor as one site
whose missing frames are masked out (``.mask(o^m)``): a missing frame loses its reconstruction term, its
latents stay. Inputs are standardised by the caller (see :mod:`~ppl_models.multimodal.imputation`).

The baselines of the imputation table are settings of this class, not copies of it:
    z_private = 0                  one latent for all sensors: a VRNN on the concatenation (``concat``),
                                   with emissions dec_m(z^s_t, h^s_t): the MVRNN without its private chains
    z_private = 0, guide = "poe"   the same with a product-of-experts guide (multimodal-dmm style):
                                   q(z^s_t) ∝ p(z^s_t | h^s_t) prod_{m observed} N(expert_m(h^s_t, a^m_t))
    one sensor, z_shared = 0       a unimodal VRNN (``unimodal``), whose emission dec_m(z^m_t, h^m_t) reads the
                                   private recurrence, there being no shared one
"""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from torch import nn
from torch.nn import functional as F

from ppl_models.dvae.base import DVAE
from ppl_models.dvae.sequence import GaussianCell, LatentSequence
from ppl_models.nn import GaussianHead, mlp

SHARED = "shared"  # the key of the shared chain; sensors may not use the name


shift = DVAE.shift  # x_{t-1} for every t, with x_0 = 0


def gaussian_kl(q_loc, q_scale, p_loc, p_scale) -> torch.Tensor:
    """KL(N(q) || N(p)) of diagonal Gaussians, summed over the last axis."""
    return (torch.log(p_scale / q_scale) + (q_scale ** 2 + (q_loc - p_loc) ** 2) / (2 * p_scale ** 2) - 0.5).sum(-1)


class ProductOfExpertsCell(GaussianCell):
    """q(z_t) ∝ N(prior head(h_t)) prod_m N(expert_m(h_t, a^m_t))^{o^m_t}: Gaussians multiply by adding their
    precisions. With no sensor observed it IS the prior; the prior's head is shared with the prior cell."""

    def __init__(self, prior: GaussianCell, frame_dim: int, num_sensors: int, hidden: int):
        super().__init__(prior.z_dim, use_z_prev=False, hidden=hidden, rnn=prior.rnn)
        self.head, self.frame_dim = prior.head, frame_dim
        self.experts = nn.ModuleList(GaussianHead(prior.rnn.hidden_size + frame_dim, prior.z_dim, hidden)
                                     for _ in range(num_sensors))

    def _head(self, h, z_prev, head_ctx):
        loc, scale = self.head(h)
        precision = scale ** -2
        weighted = loc * precision
        for expert, a in zip(self.experts, head_ctx.split(self.frame_dim, dim=-1)):
            e_loc, e_scale = expert(torch.cat([h, a], dim=-1))
            e_precision = a[..., -1:] * e_scale ** -2  # the observed flag o^m_t switches the expert on
            precision, weighted = precision + e_precision, weighted + e_precision * e_loc
        return weighted / precision, precision.rsqrt()


class Chain(nn.Module):
    """One latent chain: its LSTM over [z_{t-1}, context_{t-1}], its prior cell and its encoder cell."""

    def __init__(self, z_dim: int, ctx_dim: int, rnn_dim: int, hidden: int, poe: tuple[int, int] | None = None):
        super().__init__()
        self.rnn = nn.LSTM(z_dim + ctx_dim, rnn_dim, batch_first=True)
        self.prior = GaussianCell(z_dim, rnn_ctx_dim=ctx_dim, use_z_prev=False, hidden=hidden, rnn=self.rnn)
        self.encoder = (ProductOfExpertsCell(self.prior, *poe, hidden) if poe else
                        GaussianCell(z_dim, rnn_ctx_dim=ctx_dim, head_ctx_dim=ctx_dim, use_z_prev=False,
                                     hidden=hidden, rnn=self.rnn))

    def latent(self, which: str, ctx: torch.Tensor) -> LatentSequence:
        """z_{1:T} under the prior (reads ctx_{<t}) or the encoder (reads ctx_{<t} and ctx_t); ctx (B, T, C)."""
        B, T, _ = ctx.shape
        cell = self.prior if which == "prior" else self.encoder
        return LatentSequence(cell, B, T, rnn_ctx=shift(ctx), head_ctx=None if which == "prior" else ctx,
                              device=ctx.device)

    def states(self, z: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
        """h_t for every t from z_{<t} and ctx_{<t}: (B, T, rnn_dim)."""
        return self.rnn(torch.cat([shift(z), shift(ctx)], dim=-1))[0]


class MultimodalVRNN(nn.Module):
    """The MVRNN and its single-latent / product-of-experts / unimodal variants (module docstring).

    ``widths``: sensor name -> frame width D_m. ``model(x, mask)`` and ``guide(x, mask)`` take dicts of
    (B, T, D_m) standardised frames and (B, T) observation masks.
    """

    max_plate_nesting = 1

    def __init__(self, widths: dict[str, int], z_shared: int = 4, z_private: int = 2, hidden: int = 32,
                 rnn_dim: int = 32, guide: str = "mlp"):
        super().__init__()
        if SHARED in widths:
            raise ValueError(f"a sensor may not be called {SHARED!r}: it names the shared latent")
        if z_shared <= 0 and z_private <= 0:
            raise ValueError("the model needs a shared or a private latent (z_shared or z_private > 0)")
        if guide not in ("mlp", "poe") or (guide == "poe" and (z_private or not z_shared)):
            raise ValueError(f"guide must be 'mlp', or 'poe' with a shared latent only; got {guide!r}")
        self.names, self.widths = sorted(widths), dict(widths)
        self.z_shared, self.z_private, self.guide_name = z_shared, z_private, guide
        frame = hidden + 1  # a^m_t = [o phi_m(x^m_t), o]
        self.phi = nn.ModuleDict({m: mlp([widths[m], hidden, hidden]) for m in self.names})
        self.shared = (Chain(z_shared, frame * len(self.names), rnn_dim, hidden,
                             poe=(frame, len(self.names)) if guide == "poe" else None) if z_shared else None)
        self.private = nn.ModuleDict({m: Chain(z_private, frame, rnn_dim, hidden) for m in self.names}
                                     if z_private else {})
        dec_in = z_private + z_shared + rnn_dim  # the latents of frame t and one chain's recurrence
        self.decoders = nn.ModuleDict({m: mlp([dec_in, hidden, 2 * widths[m]]) for m in self.names})

    @property
    def variant(self) -> str:
        if not self.z_private:
            return "poe" if self.guide_name == "poe" else "concat"
        return "unimodal" if not self.z_shared else "mvrnn"

    # ------------------------------------------------------------------------------------------ pieces
    def frames(self, x: dict, mask: dict) -> dict[str, torch.Tensor]:
        """a^m_t = [o^m_t phi_m(x^m_t), o^m_t] for every sensor: (B, T, hidden + 1)."""
        return {m: torch.cat([self.phi[m](x[m]) * mask[m][..., None], mask[m][..., None]], -1) for m in self.names}

    def chains(self) -> dict[str, Chain]:
        return {**({SHARED: self.shared} if self.shared is not None else {}), **dict(self.private.items())}

    def contexts(self, a: dict) -> dict[str, torch.Tensor]:
        """What each chain reads: every sensor's frames for the shared chain, its own for a private one."""
        return {key: torch.cat([a[m] for m in self.names], -1) if key == SHARED else a[key] for key in self.chains()}

    def latents(self, which: str, a: dict) -> dict[str, LatentSequence]:
        ctx = self.contexts(a)
        return {key: chain.latent(which, ctx[key]) for key, chain in self.chains().items()}

    def emission(self, z: dict, a: dict) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """(loc, scale) of p(x^m_t | .) for every sensor and frame, (B, T, D_m) each."""
        ctx, out = self.contexts(a), {}
        h_shared = self.shared.states(z[SHARED], ctx[SHARED]) if self.shared is not None else None
        for m in self.names:
            parts = [z[m]] if self.z_private else []
            if h_shared is not None:
                parts += [z[SHARED], h_shared]
            else:  # unimodal: no shared chain, the emission reads the private recurrence
                parts.append(self.private[m].states(z[m], ctx[m]))
            loc, raw = self.decoders[m](torch.cat(parts, -1)).chunk(2, dim=-1)
            out[m] = loc, F.softplus(raw) + 1e-3
        return out

    # ------------------------------------------------------------------------------------ model / guide
    def model(self, x: dict, mask: dict, seen: dict | None = None, annealing: float = 1.0):
        """``mask``: the frames scored; ``seen`` (default ``mask``): the frames the networks read. Training
        hides some observed frames from the networks (seen < mask) and still scores them: the model learns
        to predict a sensor it cannot see from the ones it can, which is what imputation asks of it."""
        pyro.module("mvrnn", self)
        a = self.frames(x, mask if seen is None else seen)
        batch = next(iter(x.values())).shape[0]
        with pyro.plate("sequences", batch, device=a[self.names[0]].device):
            with poutine.scale(scale=annealing):
                z = {key: pyro.sample(f"z_{key}", p) for key, p in self.latents("prior", a).items()}
            for m, (loc, scale) in self.emission(z, a).items():
                frames = dist.Normal(loc, scale).to_event(1).mask(mask[m] > 0)  # batch (B, T): o^m_t masks frame t
                pyro.sample(f"x_{m}", frames.to_event(1), obs=x[m])

    def guide(self, x: dict, mask: dict, seen: dict | None = None, annealing: float = 1.0):
        pyro.module("mvrnn", self)
        a = self.frames(x, mask if seen is None else seen)
        batch = next(iter(x.values())).shape[0]
        with pyro.plate("sequences", batch, device=a[self.names[0]].device):
            with poutine.scale(scale=annealing):
                for key, q in self.latents("encoder", a).items():
                    pyro.sample(f"z_{key}", q)

    # ----------------------------------------------------------------------------------- using the model
    def elbo_terms(self, x: dict, mask: dict, seen: dict | None = None) -> dict[str, torch.Tensor]:
        """Eq. 45-47 for one draw z ~ q: ``recon_<m>`` = sum_t o^m_t log p(x^m_t | .) per sensor and
        ``kl_<key>`` = sum_t KL(q(z_t | z_<t, x_<=t) || p(z_t | z_<t, x_<t)) per chain (closed form given the
        drawn past), each (B,). ELBO estimate = sum(recon) - sum(kl). ``seen`` as in :meth:`model`."""
        a = self.frames(x, mask if seen is None else seen)
        priors, guides = self.latents("prior", a), self.latents("encoder", a)
        z = {key: q.rsample() for key, q in guides.items()}
        terms = {f"kl_{key}": gaussian_kl(*guides[key].params(z[key]), *priors[key].params(z[key])).sum(-1)
                 for key in z}
        for m, (loc, scale) in self.emission(z, a).items():
            terms[f"recon_{m}"] = (dist.Normal(loc, scale).log_prob(x[m]).sum(-1) * mask[m]).sum(-1)
        return terms

    def elbo(self, x: dict, mask: dict) -> torch.Tensor:
        """One-draw ELBO estimate of eq. 45, (B,): the reconstruction terms minus the KL terms."""
        terms = self.elbo_terms(x, mask)
        return sum(v if k.startswith("recon_") else -v for k, v in terms.items())

    @torch.no_grad()
    def predictive(self, x: dict, mask: dict, num_samples: int = 32) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Posterior predictive (mean, std) of every sensor in every frame, (B, T, D_m): z ~ q(z | observed
        frames), x ~ p(x | z); mean = E[loc], variance = E[scale^2] + Var[loc] over ``num_samples`` draws."""
        batch = next(iter(x.values())).shape[0]
        xs = {m: v.repeat(num_samples, *[1] * (v.dim() - 1)) for m, v in x.items()}
        ms = {m: v.repeat(num_samples, 1) for m, v in mask.items()}
        a = self.frames(xs, ms)
        z = {key: q.rsample() for key, q in self.latents("encoder", a).items()}
        out = {}
        for m, (loc, scale) in self.emission(z, a).items():
            loc, scale = loc.unflatten(0, (num_samples, batch)), scale.unflatten(0, (num_samples, batch))
            out[m] = loc.mean(0), ((scale ** 2).mean(0) + loc.var(0, unbiased=False)).sqrt()
        return out
