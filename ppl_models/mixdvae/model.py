r"""MixDVAE (Lin, Girin & Alameda-Pineda, "Mixture of dynamical variational autoencoders for multi-source
trajectory modeling and separation", TMLR 2023): N sources, each distributed as a frozen pre-trained DVAE,
and the assignment of every observation to the source that produced it, marginalised exactly.

Generative model (eq. 5-7), windows b, frames t, detections k, sources n:

    z_{1:T,n}, s_{1:T,n} ~ p_DVAE(s, z)                           the frozen prior (SRNN for boxes)
    w_tk ~ Categorical(beta)                                      which source made detection k
    o_tk | w_tk = n, s_t ~ N(s_tn, Phi_tk),  Phi_tk = diag(phi * size_tk^2)

    plate tracks (B x N)              plate windows x time x detections (B, T, K)
    z_{t-1,n} --> z_{t,n}
        |            |                      beta
        v            v                        |
    s_{t-1,n} --> s_{t,n} ------------------> o_tk <-- w_tk
                                               (mask: padded / missed detections)

With ``clutter`` an extra class N explains detections of nobody tracked, o ~ N(0.5, 0.5^2) per coordinate.

``association="exclusive"`` replaces the independent w_tk by one joint assignment a_t per frame over the feasible
matchings (no source takes two detections; a detection goes to one source or to clutter), also enumerated
(:mod:`ppl_models.mixdvae.association`). The prior may be a DVAE or the linear-Gaussian constant-velocity model
(:mod:`ppl_models.mixdvae.motion`), whose E-S step under ``vem`` is an exact Kalman smoother.
w is a model-side enumerated site: ``TraceEnum_ELBO`` sums it out exactly, in parallel (shapes below), so
no guide needs a q(w) — except ``sampled-w``, which exists to show why enumeration wins.

Guides (``MixDVAE.guides``, chosen by name):

* ``vem``: the paper's variational EM as a guide (sec. 3.3). q(z | s) is the DVAE encoder fed with the
  mean of the last q(s) (E-Z step); q(s) is the closed-form Gaussian of the E-S step given the decoder's prediction
  and the responsibilities; after each gradient step on the encoder, :meth:`vem_update` runs the exact E-W
  step and the closed-form M-step (:mod:`ppl_models.mixdvae.vem`).
* ``svi``: mean-field Gaussian q(s) and the encoder q(z | s), all by gradient on the enumerated ELBO; phi
  and beta are learned by gradient too.
* ``sampled-w``: ``svi`` plus an explicit q(w) sampled with a score-function estimator (TraceGraph_ELBO).

Enumeration shapes (max_plate_nesting = 3; w enumerated in dim -4):

    s, source_z            (B*N, T, D)      plate tracks at dim -1
    w                      (B, T, K)  ->  (N', 1, 1, 1) when enumerated
    locs[b, t, w]          (N', B, T, 1, D)
    o                      (B, T, K, D)      plate windows -3, time -2, detections -1
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.distributions import constraints
from pyro.ops.indexing import Vindex
from torch import nn

from ppl_models.mixdvae.association import (exclusive_responsibilities, matching_log_lik, matching_prior_logits,
                                            matching_table)
from ppl_models.mixdvae.vem import (CLUTTER_LOC, CLUTTER_SCALE, assigned_evidence, assignment_log_lik, box_size,
                                    cavity, e_s_step, m_step, predictive_log_lik, typical_size)

ASSOCIATIONS = ("independent", "exclusive")
WARM_UP_LOG_CLUTTER = -69.0  # log 1e-30: clutter held off until the sources have found their objects


class FlatPrior(dist.ImproperUniform):
    """The improper flat density of the sources' own site (their prior is the DVAE's ``pyro.factor``).

    pyro 1.9's ImproperUniform returns its zero log-density on the CPU whatever the value's device, which
    breaks TraceEnum_ELBO on a GPU; this one returns it on the value's device."""

    def log_prob(self, value):
        return value.new_zeros(value.shape[:value.dim() - self.event_dim])


@dataclass
class VEMState:
    """What the variational EM carries between iterations (and what initialises the gradient guides)."""

    m: torch.Tensor  # (B, N, T, D) posterior means of the sources
    v: torch.Tensor  # (B, N, T, D) posterior variances
    resp: torch.Tensor  # (B, T, K, N') responsibilities
    phi: torch.Tensor  # (D,) relative observation variance
    beta: torch.Tensor  # (N',) assignment prior


class MixDVAE(nn.Module):
    """N frozen DVAE sources and an assignment of each observation to a source (or clutter), enumerated
    exactly by ``TraceEnum_ELBO`` (module docstring: graph, equations; ``fit_mixdvae`` trains it)."""
    max_plate_nesting = 3

    def __init__(self, prior: nn.Module, num_sources: int, clutter: bool = False, fine_tune_encoder: bool = False,
                 noise: float = 0.05, learn_noise: bool = False, learn_weights: bool = True,
                 association: str = "independent", clutter_weight: float = 1e-4, predictive: bool = False):
        """``association``: ``independent`` (the paper's w_tk) or ``exclusive`` (one matching per frame, with a
        none/clutter class of prior weight ``clutter_weight`` per detection). ``predictive``: under ``vem``, a DVAE
        prior's E-S step reads its one-step predictive p(s_t | s_<t) (z drawn from the prior's chain given the
        last estimate) instead of its reconstruction of the last estimate through the encoder's z; and, with any
        prior, the E-W step scores each frame's detections against the sources' predictive there (q(s_t) without
        frame t's own detections, :func:`~ppl_models.mixdvae.vem.cavity`), as JPDA does, instead of against a
        posterior that already holds them (which locks a wrong assignment in)."""
        super().__init__()
        if num_sources < 1:
            raise ValueError(f"num_sources must be >= 1, got {num_sources}")
        if association not in ASSOCIATIONS:
            raise ValueError(f"association must be one of {', '.join(ASSOCIATIONS)}, got {association!r}")
        self.association, self.predictive = association, predictive
        self.clutter_weight = clutter_weight
        # Frozen, but left in training mode: gradients reach q(s) through the prior's RNNs, and cuDNN
        # back-propagates through an RNN only in training mode (the DVAEs have no dropout or batch-norm,
        # so the mode changes nothing else).
        self.prior = prior.train().requires_grad_(False)
        self.encoder = copy.deepcopy(self.prior).requires_grad_(fine_tune_encoder)  # q(z | s), fine-tuned per problem
        self.num_sources, self.clutter, self.fine_tune_encoder = num_sources, clutter, fine_tune_encoder
        self.noise, self.learn_noise, self.learn_weights = noise, learn_noise, learn_weights
        self.guides = {"vem": self.guide_vem, "svi": self.guide_svi, "sampled-w": self.guide_sampled_w}
        self.closed_form_m_step = False  # set by fit(guide="vem")
        self.state: VEMState | None = None

    @property
    def exclusive(self) -> bool:
        return self.association == "exclusive"

    @property
    def num_classes(self) -> int:
        return self.num_sources + int(self.clutter or self.exclusive)

    def responsibilities(self, obs, mask, m, v, obs_var, beta, predictive: bool = False):
        """The E-W step: eta (B, T, K, N') = q(w_tk = n), independent or marginals of the exclusive matching,
        scoring E_q[log N(o; s, Phi)] under q(s) = N(m, v), or with ``predictive`` log N(o; m, Phi + v) under
        a predictive N(m, v)."""
        score = predictive_log_lik if predictive else assignment_log_lik
        if not self.exclusive:
            return torch.softmax(score(obs, m, v, obs_var, self.clutter) + torch.log(beta), dim=-1)
        table = matching_table(self.num_sources, obs.shape[2], obs.device)
        return exclusive_responsibilities(score(obs, m, v, obs_var, True), mask, table, self.log_clutter)

    # ------------------------------------------------------------------------------------ problem state
    def start(self, obs: torch.Tensor, mask: torch.Tensor, init: torch.Tensor):
        """Begin inference on observations (B, T, K, D) from initial sources ``init`` (B, N, T, D): q(s) centred
        there with the std of the detection noise (as uncertain as a source seen once), responsibilities from one
        E-W step, the encoder reset.

        Only the gradient guides read that std, as the start of their q(s) scale. A wide start costs them dearly:
        under the DVAE's sharp decoder a draw of s half a box off scores ~1e6 nats, and the scale shrinks by
        its learning rate per step (tutorial 3: MOTA 0.54 after 300 svi steps from 0.5 box, 0.97 from 0.05)."""
        B, N, T, D = init.shape
        if N != self.num_sources or obs.shape[:2] != (B, T) or mask.shape != obs.shape[:3]:
            raise ValueError(f"shapes disagree: init {tuple(init.shape)} for {self.num_sources} sources, "
                             f"observations {tuple(obs.shape)}, mask {tuple(mask.shape)}")
        self.encoder.load_state_dict(self.prior.state_dict())
        for rnn in (m for m in self.encoder.modules() if isinstance(m, nn.RNNBase)):
            rnn.flatten_parameters()  # a deep copy on a GPU leaves cuDNN's weights in separate chunks
        v = (self.noise * typical_size(obs, mask)) ** 2 * torch.ones_like(init)
        phi = torch.full((D,), self.noise ** 2, device=obs.device)
        beta = torch.ones(self.num_classes, device=obs.device)
        if self.clutter:  # held off at first: a static guess is far from moving objects, whose detections
            beta[-1] = 1e-6  # would all look like clutter and leave the sources where they started
        beta = beta / beta.sum()
        self.first = init[:, :, 0].clone()  # the first-frame guess: a constant-velocity prior's s_1
        self.log_clutter = WARM_UP_LOG_CLUTTER
        resp = self.responsibilities(obs, mask, init, torch.zeros_like(v), phi * box_size(obs, mask) ** 2, beta)
        self.state = VEMState(init.clone(), v, resp, phi, beta)
        self.warming_up = True

    def end_warm_up(self, weight: float = 0.05):
        """VEM, once the sources have found their objects: let the clutter class explain detections (with prior
        ``weight``) and the M-step learn the detection noise. Both wait: from a static start far from moving
        objects their detections would all look like clutter, and a learned noise would grow to cover the
        distance, so that the detections stop pulling the sources (RESULTS.md, "MixDVAE tracking")."""
        self.warming_up = False
        self.log_clutter = float(torch.log(torch.tensor(self.clutter_weight)))
        if self.clutter and not self.exclusive:
            beta = self.state.beta.clone()
            beta[-1] = weight
            beta[:-1] *= (1 - weight) / beta[:-1].sum()
            self.state.beta = beta

    def observation_params(self):
        """(phi, beta): the closed-form M-step's values under ``vem``, else Pyro params (or fixed)."""
        phi, beta = self.state.phi, self.state.beta
        if not self.closed_form_m_step:
            if self.learn_noise:
                phi = pyro.param("mixdvae_phi", phi.clone(), constraint=constraints.positive)
            if self.learn_weights:
                beta = pyro.param("mixdvae_beta", beta.clone(), constraint=constraints.simplex)
        return phi, beta

    # -------------------------------------------------------------------------------------------- model
    def model(self, obs: torch.Tensor, mask: torch.Tensor):
        """obs (B, T, K, D) detections (any order within a frame), mask (B, T, K) True where present."""
        B, T, K, D = obs.shape
        N = self.num_sources
        phi, beta = self.observation_params()
        with pyro.plate("tracks", B * N, dim=-1):
            s = pyro.sample("s", FlatPrior(constraints.real, (B * N,), (T, D)))
            self.prior.prior_sites("source", s)  # log p_DVAE(s, z), z sampled as "source_z"
        locs = s.reshape(B, N, T, D).transpose(1, 2)  # (B, T, N, D)
        scales = (phi.sqrt() * box_size(obs, mask))[:, :, :, None].expand(B, T, K, N, D)
        if self.exclusive:
            return self._exclusive_likelihood(obs, mask, locs, scales)
        if self.clutter:
            locs = torch.cat([locs, torch.full_like(locs[:, :, :1], CLUTTER_LOC)], dim=2)
            scales = torch.cat([scales, torch.full_like(scales[..., :1, :], CLUTTER_SCALE)], dim=3)
        b, t, k = (torch.arange(n, device=obs.device) for n in (B, T, K))
        with pyro.plate("windows", B, dim=-3), pyro.plate("time", T, dim=-2), pyro.plate("detections", K, dim=-1):
            w = pyro.sample("w", dist.Categorical(beta.expand(B, T, K, -1)), infer={"enumerate": "parallel"})
            loc = Vindex(locs)[b[:, None, None], t[:, None], w]  # (B, T, K, D); enumerated (N', B, T, 1, D)
            scale = Vindex(scales)[b[:, None, None], t[:, None], k, w]
            with poutine.mask(mask=mask):
                pyro.sample("o", dist.Normal(loc, scale).to_event(1), obs=obs)

    def _exclusive_likelihood(self, obs, mask, locs, scales):
        """a_t over the matchings (B, T, 1), enumerated, with log p(a_t | mask_t) + log p(o_t | a_t, s_t) as one
        factor beside a uniform site: p(a_t) = 1 / M and the factor adds log M back, so the joint is exactly the
        model's. One term per frame, because Pyro sums out each term shifted by its own maximum: with the prior
        and the likelihood apart, the likeliest matching (far sources: detections to none) can be the least likely
        a priori (clutter weight 1e-30 in the warm-up), both products underflow, and the ELBO is -inf."""
        B, T, K, D = obs.shape
        ll = dist.Normal(locs[:, :, None], scales).log_prob(obs[:, :, :, None]).sum(-1)  # (B, T, K, N)
        clutter = dist.Normal(CLUTTER_LOC, CLUTTER_SCALE).log_prob(obs).sum(-1, keepdim=True)
        table = matching_table(self.num_sources, K, obs.device)
        M = table.shape[0]
        joint = (matching_prior_logits(mask, table, self.log_clutter) + math.log(M)
                 + matching_log_lik(torch.cat([ll, clutter], -1), mask, table))[:, :, None]  # (B, T, 1, M)
        with pyro.plate("windows", B, dim=-3), pyro.plate("time", T, dim=-2):
            a = pyro.sample("a", dist.Categorical(logits=obs.new_zeros(B, T, 1, M)), infer={"enumerate": "parallel"})
            pyro.factor("o", Vindex(joint)[..., a])

    # ------------------------------------------------------------------------------------------- guides
    def _register_encoder(self):
        if self.fine_tune_encoder:
            pyro.module("mixdvae_encoder", self.encoder)

    def guide_svi(self, obs: torch.Tensor, mask: torch.Tensor):
        """q(s) = N(loc, scale^2) mean-field, q(z | s) = the DVAE encoder."""
        B, N, T, D = self.state.m.shape
        loc = pyro.param("mixdvae_s_loc", self.state.m.reshape(B * N, T, D).clone())
        scale = pyro.param("mixdvae_s_scale", self.state.v.sqrt().reshape(B * N, T, D).clone(),
                           constraint=constraints.positive)
        self._register_encoder()
        with pyro.plate("tracks", B * N, dim=-1):
            s = pyro.sample("s", dist.Normal(loc, scale).to_event(2))
            self.encoder.encoder_sites("source", s)

    def guide_vem(self, obs: torch.Tensor, mask: torch.Tensor):
        """E-Z step (the encoder on the last q(s)'s mean), then the closed-form E-S step given z."""
        st = self.state
        B, N, T, D = st.m.shape
        self._register_encoder()
        obs_var = st.phi * box_size(obs, mask) ** 2
        with pyro.plate("tracks", B * N, dim=-1):
            past = st.m.reshape(B * N, T, D)  # the DVAE reads the current posterior mean as s_{<t}
            z = self.encoder.encoder_sites("source", past)
            if hasattr(self.prior, "e_s_step"):  # linear-Gaussian sources: the exact smoother
                m, v = self.prior.e_s_step(obs, mask, obs_var, st.resp, self.first)
            else:
                loc, var = self._predictive(past) if self.predictive else self._reconstruction(z, past)
                m, v = e_s_step(loc.reshape(B, N, T, D), var.reshape(B, N, T, D), obs, mask, obs_var, st.resp)
            pyro.sample("s", dist.Normal(m.reshape(B * N, T, D), v.sqrt().reshape(B * N, T, D)).to_event(2))
        self._proposal = (m.detach(), v.detach())

    def _reconstruction(self, z, past):
        """The paper's E-S prediction: the decoder given the encoder's z of the last estimate, (mean, variance)."""
        prediction = self.prior.likelihood(self.prior.decoder_params(z, past, self.prior._context(past)))
        return prediction.loc, prediction.scale ** 2

    @torch.no_grad()
    def _predictive(self, past, draws: int = 8):
        """The one-step predictive p(s_t | s_<t = past_<t), moment-matched over draws of z from the prior's chain
        (teacher-forced on the last estimate), as ``benchmarks/motion_prediction.py`` scores it."""
        ctx = self.prior._context(past)
        chain = self.prior.latent(self.prior.prior_latent(past, ctx), past.shape[0], past.shape[1], past.device)
        params = [self.prior.likelihood(self.prior.decoder_params(chain.sample(), past, ctx)) for _ in range(draws)]
        locs, variances = torch.stack([p.loc for p in params]), torch.stack([p.scale ** 2 for p in params])
        return locs.mean(0), variances.mean(0) + locs.var(0, unbiased=False)

    def guide_sampled_w(self, obs: torch.Tensor, mask: torch.Tensor):
        """``svi`` plus q(w_tk) = Categorical(logits_tk), sampled: a score-function (REINFORCE) gradient."""
        if self.exclusive:
            raise ValueError("the sampled-w guide samples independent assignments: use association='independent'")
        self.guide_svi(obs, mask)
        B, T, K = mask.shape
        logits = pyro.param("mixdvae_w_logits", torch.log(self.state.resp).clone())
        with pyro.plate("windows", B, dim=-3), pyro.plate("time", T, dim=-2), pyro.plate("detections", K, dim=-1):
            pyro.sample("w", dist.Categorical(logits=logits))

    @torch.no_grad()
    def vem_update(self, obs: torch.Tensor, mask: torch.Tensor):
        """After a ``vem`` step: keep its q(s), then the exact E-W step and the closed-form M-step."""
        st = self.state
        st.m, st.v = self._proposal
        size = box_size(obs, mask)
        obs_var = st.phi * size ** 2
        if self.predictive:  # score each frame's detections against the sources' prediction from elsewhere
            m, v = cavity(st.m, st.v, *assigned_evidence(obs, mask, obs_var, st.resp, self.num_sources))
            st.resp = self.responsibilities(obs, mask, m, v, obs_var, st.beta, predictive=True)
        else:
            st.resp = self.responsibilities(obs, mask, st.m, st.v, obs_var, st.beta)
        phi, beta = m_step(obs, mask, st.m, st.v, st.resp, size)
        st.phi = phi if self.learn_noise and not self.warming_up else st.phi
        st.beta = beta if self.learn_weights and not self.exclusive else st.beta  # exclusive: clutter_weight

    # -------------------------------------------------------------------------------------- posterior
    def posterior_sources(self, guide: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, variance) of q(s), (B, N, T, D), after fitting with ``guide``."""
        if guide == "vem":
            return self.state.m, self.state.v
        B, N, T, D = self.state.m.shape
        store = pyro.get_param_store()
        return (store["mixdvae_s_loc"].detach().reshape(B, N, T, D),
                store["mixdvae_s_scale"].detach().reshape(B, N, T, D) ** 2)
