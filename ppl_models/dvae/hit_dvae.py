r"""Hierarchical Transformer DVAE (HiT-DVAE: Bie et al., arXiv 2204.01565; for speech: Lin et al., ICASSP 2023,
arXiv 2303.09404): a sequence-level latent w (speaker, timbre, recording) above frame latents z_t, every
temporal dependency a causal-masked Transformer.

Generative model (s_t: the frame, speech power or a box)

    w ~ N(0, I)
    z_t | s_{1:t-1}, z_{1:t-1}, w ~ N(mu_t, diag sigma_t^2)        (prior network, causal)
    s_t | s_{1:t-1}, z_{1:t}, w ~ CN(0, v_t)  i.e. |s_t|^2 ~ Exp(1 / v_t)  (speech; boxes: N(mu_t, sigma_t^2))

Inference

    q(w | s_{1:T}) = N(.) of the mean over t of a bidirectional Transformer encoder's outputs e_t
    q(z_t | s_{1:T}, w) = N(.) of [e_t, w]                           (independent across t given s and w)

ELBO (beta = ``annealing`` scales both KL terms, the KL warm-up / weight of the zoo's DVAEs):

    L = -KL(q(w|s) || p(w)) - sum_t E_q[ d_IS(|s_t|^2, v_t) + KL(q(z_t|s, w) || p(z_t | s_{<t}, z_{<t}, w)) ]

    w ---------+-----------+
    |          v           v
    |   z_{t-1} --> z_t --> s_t       (z_t and s_t read every earlier z and s, through attention)
    |          \     ^     ^
    +---------- s_{t-1} ---+

Since q(z_t | s, w) does not read z_{<t}, the guide draws all frames at once: with the teacher-forced prior and
decoder (causal masks) one training step is three parallel Transformer passes, no loop over frames. That is the
point of the design: no scheduled sampling is needed to train it.

Architecture (HiT-DVAE; what the papers leave open is chosen here and marked *):

* x-embedding E: Linear(x_dim -> d) of the standardised log-power, *shared by the encoder and the generative side;
* encoder: ``layers`` bidirectional self-attention blocks over E(s_t); *mean pooling over frames for w;
* prior: ``layers`` blocks with causal self-attention over the tokens Z(z_{t-1}) + W(w) and causal
  cross-attention to the memory m_t = E(s_{t-1}) (s_0 = z_0 = 0), then a Gaussian head;
* decoder: ``layers`` blocks, causal self-attention over Z'(z_t) + W'(w), causal cross-attention to m, then
  LayerNorm + Linear to log v_t (speech) or (mu_t, log sigma_t) (boxes);
* *positions: ALiBi biases, not position encodings (:mod:`ppl_models.dvae.attention`: trained on 50-frame
  segments, resynthesises whole utterances); *no dropout; *feed-forward width d (not the usual 4d: the speech
  preset, d = 128 and 2 layers, is 1.07 M parameters, a 4.3 MB checkpoint); 4 heads.

Two forms, as every DVAE of the zoo: ``model``/``guide`` (sites ``w``, ``z`` for z_{1:T}, ``x`` for s_{1:T}; the
prior of z scored teacher-forced in one call) and ``model_markov``/``guide_markov`` (sites ``w``, ``z_t``, ``x_t``;
frame t computed from its own prefix s_{1:t}, z_{1:t} alone: readable, quadratic in T, and the same numbers).
"""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.distributions import Normal, TorchDistribution, constraints
from torch import nn

from ppl_models.dvae.attention import Block, alibi
from ppl_models.dvae.base import DVAE
from ppl_models.nn import GaussianHead


class CausalLatent(TorchDistribution):
    """p(z_{1:T} | s, w) of a prior network ``params(z) -> (loc, scale)`` (B, T, Dz) in which frame t reads z_{<t}
    only: ``log_prob`` scores a whole z in one teacher-forced call, ``rsample`` draws frame by frame."""

    arg_constraints = {}
    support = constraints.independent(constraints.real, 2)
    has_rsample = True

    def __init__(self, params, batch_size: int, length: int, z_dim: int, device=None):
        self.params, self.device = params, device
        super().__init__(torch.Size([batch_size]), torch.Size([length, z_dim]), validate_args=False)

    def log_prob(self, z):
        loc, scale = self.params(z)
        return Normal(loc, scale).log_prob(z).sum((-1, -2))

    def rsample(self, sample_shape=torch.Size()):
        if sample_shape != torch.Size():
            raise NotImplementedError("CausalLatent draws one sequence per batch element")
        z = torch.zeros(self.batch_shape + self.event_shape, device=self.device)
        for t in range(z.shape[1]):  # z_t needs z_{<t}; frame t of params(z) reads only those
            loc, scale = self.params(z)
            z = torch.cat([z[:, :t], (loc + scale * torch.randn_like(loc))[:, t:t + 1], z[:, t + 1:]], dim=1)
        return z


class HierarchicalDVAE(DVAE):
    """A DVAE with a sequence latent w above the frame latents z_t. Subclasses give the networks:

    * ``encoder_states(x)`` -> e (B, T, d), read by q(w | s) (mean over t) and q(z_t | s, w);
    * ``prior_params(z, past, w)`` -> (loc, scale) (B, T, Dz) of p(z_t | s_{<t}, z_{<t}, w) for every t;
    * ``decoder_params(z, past, w)`` -> (B, T, P), the likelihood's parameters of s_t given s_{<t}, z_{<=t}, w;

    with ``past`` the sequence the generative side reads as s_{t-1} (the data: teacher forcing)."""

    reads_past_x = True

    def __init__(self, x_dim: int, z_dim: int, likelihood: str = "gaussian", hidden: int = 128, w_dim: int = 16,
                 heads: int = 4, inputs: str = "log-power"):
        super().__init__(x_dim, z_dim, likelihood, inputs)
        d = self.d_model = int(hidden)
        self.w_dim, self.heads = w_dim, heads
        self.embed_x = nn.Linear(x_dim, d)
        self.w_posterior = GaussianHead(d, w_dim, d)
        self.z_posterior = GaussianHead(d + w_dim, z_dim, d)

    # ------------------------------------------------------------------------------------------- hooks
    def encoder_states(self, x):
        raise NotImplementedError

    def prior_params(self, z, past, w):
        raise NotImplementedError

    def decoder_params(self, z, past, w):
        raise NotImplementedError

    # ---------------------------------------------------------------------------------------- helpers
    def memory(self, past):
        """m_t = E(s_{t-1}), s_0 = 0 (the standardised mean frame): what the generative side reads of s."""
        return self.embed_x(self.shift(self.features(past)))

    def bias(self, length: int, causal: bool, device) -> torch.Tensor:
        return alibi(self.heads, length, causal, device=device)

    def posteriors(self, x):
        """(q(w | s) as (loc, scale), the encoder states e) for the guide."""
        e = self.encoder_states(x)
        return self.w_posterior(e.mean(1)), e

    def z_params(self, e, w):
        """(loc, scale) (B, T, Dz) of q(z_t | s, w) for every t."""
        return self.z_posterior(torch.cat([e, w.unsqueeze(1).expand(-1, e.shape[1], -1)], dim=-1))

    def w_prior(self, batch: int, device) -> dist.TorchDistribution:
        return dist.Normal(torch.zeros(batch, self.w_dim, device=device), 1.0).to_event(1)

    def kl_w(self, x) -> torch.Tensor:
        """KL(q(w | s) || N(0, I)) in closed form, (B,): sum_k (mu_k^2 + sigma_k^2 - 1) / 2 - log sigma_k."""
        (loc, scale), _ = self.posteriors(x)
        return (0.5 * (loc.square() + scale.square() - 1) - torch.log(scale)).sum(-1)

    # ------------------------------------------------------------------------------ fast path (training)
    def model(self, x: torch.Tensor, past: torch.Tensor | None = None, annealing: float = 1.0):
        """x: (B, T, x_dim). Sites ``w`` (B, w_dim), ``z`` (B, T, z_dim, teacher-forced log-density) and ``x``."""
        pyro.module(self.name, self)
        B, T, _ = x.shape
        past = x if past is None else past
        with pyro.plate("sequences", B, device=x.device):
            with poutine.scale(scale=annealing):
                w = pyro.sample("w", self.w_prior(B, x.device))
                z = pyro.sample("z", CausalLatent(lambda z: self.prior_params(z, past, w), B, T, self.z_dim,
                                                  x.device))
            pyro.sample("x", self.likelihood(self.decoder_params(z, past, w)).to_event(2), obs=x)

    def guide(self, x: torch.Tensor, past: torch.Tensor | None = None, annealing: float = 1.0):
        pyro.module(self.name, self)
        (w_loc, w_scale), e = self.posteriors(x)
        with pyro.plate("sequences", x.shape[0], device=x.device):
            with poutine.scale(scale=annealing):
                w = pyro.sample("w", dist.Normal(w_loc, w_scale).to_event(1))
                pyro.sample("z", dist.Normal(*self.z_params(e, w)).to_event(2))

    # ---------------------------------------------------------------------- readable form (one site a frame)
    def model_markov(self, x: torch.Tensor, past: torch.Tensor | None = None, annealing: float = 1.0):
        """Frame by frame: z_t from the prior network run on s_{<t}, z_{<t}; s_t from the decoder run on
        s_{<t}, z_{<=t}. Each frame sees only its own prefix, so nothing of the future can leak in."""
        pyro.module(self.name, self)
        B, T, _ = x.shape
        past = x if past is None else past
        zs = []
        with pyro.plate("sequences", B, device=x.device):
            with poutine.scale(scale=annealing):
                w = pyro.sample("w", self.w_prior(B, x.device))
            for t in pyro.markov(range(T)):
                prefix = torch.stack(zs + [torch.zeros(B, self.z_dim, device=x.device)], dim=1)  # z_t: unread
                loc, scale = (p[:, t] for p in self.prior_params(prefix, past[:, :t + 1], w))
                with poutine.scale(scale=annealing):
                    zs.append(pyro.sample(f"z_{t}", dist.Normal(loc, scale).to_event(1)))
                params = self.decoder_params(torch.stack(zs, dim=1), past[:, :t + 1], w)[:, t]
                pyro.sample(f"x_{t}", self.likelihood(params).to_event(1), obs=x[:, t])

    def guide_markov(self, x: torch.Tensor, past: torch.Tensor | None = None, annealing: float = 1.0):
        pyro.module(self.name, self)
        (w_loc, w_scale), e = self.posteriors(x)
        with pyro.plate("sequences", x.shape[0], device=x.device):
            with poutine.scale(scale=annealing):
                w = pyro.sample("w", dist.Normal(w_loc, w_scale).to_event(1))
                loc, scale = self.z_params(e, w)
                for t in pyro.markov(range(x.shape[1])):
                    pyro.sample(f"z_{t}", dist.Normal(loc[:, t], scale[:, t]).to_event(1))

    # ------------------------------------------------------------- a frozen prior inside another model
    def prior_sites(self, prefix: str, x: torch.Tensor) -> torch.Tensor:
        """As :meth:`DVAE.prior_sites`, with the sequence latent too: sites ``{prefix}_w``, ``{prefix}_z`` and the
        factor ``{prefix}_x``. Returns the decoder's parameters (B, T, P)."""
        B, T, _ = x.shape
        w = pyro.sample(f"{prefix}_w", self.w_prior(B, x.device))
        z = pyro.sample(f"{prefix}_z", CausalLatent(lambda z: self.prior_params(z, x, w), B, T, self.z_dim,
                                                      x.device))
        params = self.decoder_params(z, x, w)
        pyro.factor(f"{prefix}_x", self.likelihood(params).to_event(2).log_prob(x))
        return params

    def encoder_sites(self, prefix: str, x: torch.Tensor) -> torch.Tensor:
        (w_loc, w_scale), e = self.posteriors(x)
        w = pyro.sample(f"{prefix}_w", dist.Normal(w_loc, w_scale).to_event(1))
        return pyro.sample(f"{prefix}_z", dist.Normal(*self.z_params(e, w)).to_event(2))

    # --------------------------------------------------------------------------------- using the model
    @torch.no_grad()
    def encode_w(self, x: torch.Tensor) -> torch.Tensor:
        """The mean of q(w | s), (B, w_dim)."""
        return self.posteriors(x)[0][0]

    @torch.no_grad()
    def encode(self, x: torch.Tensor, ctx=None) -> torch.Tensor:
        """The means of q(z_t | s, w) at w = the mean of q(w | s), (B, T, z_dim)."""
        (w, _), e = self.posteriors(x)
        return self.z_params(e, w)[0]

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, w: torch.Tensor | None = None) -> torch.Tensor:
        """E[s_t | s_{<t}, z, w] with w and z the encoder's means (or a given w, e.g. another utterance's):
        boxes, or the power variance v for speech."""
        (w_mean, _), e = self.posteriors(x)
        w = w_mean if w is None else w
        return self.likelihood.mean(self.decoder_params(self.z_params(e, w)[0], x, w))

    @torch.no_grad()
    def generate(self, length: int, num: int = 1, device=None, w: torch.Tensor | None = None,
                 draw: bool = False, z: torch.Tensor | None = None) -> torch.Tensor:
        """Sequences from the prior: w ~ N(0, I) (or given), then z_t and s_t frame by frame, each decoded frame
        (its mean, or with ``draw`` a draw of s_t: ancestral sampling) fed back as s_t. A given ``z``
        (num, length, z_dim), e.g. another utterance's encoding, is decoded instead of drawing z_t."""
        w = torch.randn(num, self.w_dim, device=device) if w is None else w
        xs = torch.zeros(num, 1, self.x_dim, device=device)  # a placeholder for the frame being made
        zs = torch.zeros(num, 1, self.z_dim, device=device)
        for t in range(length):
            if z is None:
                loc, scale = (p[:, t] for p in self.prior_params(zs, xs, w))
                zs[:, t] = loc + scale * torch.randn_like(loc)
            else:
                zs[:, t] = z[:, t]
            params = self.decoder_params(zs, xs, w)[:, t]
            xs[:, t] = self.likelihood(params).sample() if draw else self.likelihood.mean(params)
            xs = torch.cat([xs, torch.zeros_like(xs[:, :1])], dim=1)
            zs = torch.cat([zs, torch.zeros_like(zs[:, :1])], dim=1)
        return xs[:, :length]


class HiTDVAE(HierarchicalDVAE):
    """HiT-DVAE: Transformer encoder, prior and decoder (see the module docstring)."""

    name = "hit-dvae"

    def __init__(self, x_dim: int, z_dim: int, likelihood: str = "gaussian", hidden: int = 128, w_dim: int = 16,
                 heads: int = 4, layers: int = 2, inputs: str = "log-power", **_):
        super().__init__(x_dim, z_dim, likelihood, hidden, w_dim, heads, inputs)
        d, ff = self.d_model, self.d_model
        self.encoder = nn.ModuleList(Block(d, heads, ff) for _ in range(layers))
        self.encoder_norm = nn.LayerNorm(d)
        self.prior_tokens = nn.Linear(z_dim + w_dim, d)  # Z(z_{t-1}) + W(w) as one linear map of [z_{t-1}, w]
        self.prior_blocks = nn.ModuleList(Block(d, heads, ff, cross=True) for _ in range(layers))
        self.prior_head = nn.Sequential(nn.LayerNorm(d), GaussianHead(d, z_dim, d))
        self.decoder_tokens = nn.Linear(z_dim + w_dim, d)
        self.decoder_blocks = nn.ModuleList(Block(d, heads, ff, cross=True) for _ in range(layers))
        self.decoder = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, self.likelihood.param_dim))

    def encoder_states(self, x):
        e, bias = self.embed_x(self.features(x)), self.bias(x.shape[1], False, x.device)
        for block in self.encoder:
            e = block(e, bias)
        return self.encoder_norm(e)

    def _causal(self, blocks, tokens, past):
        memory, bias = self.memory(past), self.bias(tokens.shape[1], True, tokens.device)
        for block in blocks:
            tokens = block(tokens, bias, memory)
        return tokens

    def _tokens(self, layer, z, w):
        return layer(torch.cat([z, w.unsqueeze(1).expand(-1, z.shape[1], -1)], dim=-1))

    def prior_params(self, z, past, w):
        return self.prior_head(self._causal(self.prior_blocks, self._tokens(self.prior_tokens, self.shift(z), w), past))

    def decoder_params(self, z, past, w):
        return self.decoder(self._causal(self.decoder_blocks, self._tokens(self.decoder_tokens, z, w), past))
