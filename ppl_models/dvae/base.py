r"""The interface shared by every DVAE in the zoo (Girin et al., "Dynamical Variational Autoencoders: A
Comprehensive Review", 2021): a sequence prior p(x_{1:T}, z_{1:T}) and an encoder q(z_{1:T} | x_{1:T}).

A subclass says three things, each computed from whole sequences at once (teacher forcing):

* ``prior_latent(x, ctx)``  -> the prior of z: ``None`` for N(0, I) frames, or (cell, rnn_ctx, head_ctx)
* ``guide_latent(x, ctx)``  -> the encoder's (cell, rnn_ctx, head_ctx)
* ``decoder_params(z, x, ctx)`` -> the parameters of p(x_t | z_{<=t}, x_{<t}) for every frame, (B, T, P)

where ``ctx = context(x, past)`` holds what several of them need from x (SRNN's deterministic states h_t,
VRNN's features phi(x_t)), computed once per call of the model or the guide. ``past`` is the sequence that
the recurrences read as x_{t-1}: x itself (teacher forcing), or under scheduled sampling x with some frames
replaced by the model's own predictions (:meth:`DVAE.scheduled_past`).

and the base class builds from them

* ``model(x)`` / ``guide(x)``: the fast path, one Pyro site per sequence for z and one for x;
* ``model_markov(x)`` / ``guide_markov(x)``: the readable form, one site per frame inside ``pyro.markov``;
* ``reconstruct(x)`` (encoder mean path, then decoder mean) and ``generate`` (subclasses with an
  autoregressive decoder override it);
* ``prior_sites(prefix, x)`` / ``encoder_sites(prefix, x)``: the frozen prior inside a larger model in which
  x is itself latent (MixDVAE, speech enhancement).

The ELBO is E_q[log p(x | z) + log p(z) - log q(z | x)]; ``annealing`` scales the z terms of both model and
guide with ``poutine.scale`` — the KL warm-up of the DVAE papers.
"""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from torch import nn

from ppl_models.dvae.likelihoods import Likelihood
from ppl_models.dvae.sequence import LatentSequence


class DVAE(nn.Module):
    """The base of every DVAE: the model/guide pair over a batch of sequences, its likelihood, and the fast
    one-site path (the module docstring draws the shared graphical model)."""
    name = "dvae"
    max_plate_nesting = 1
    reads_past_x = False  # True where the decoder reads x_{t-1} (SRNN, VRNN): generation feeds it predictions
    box_frame = "y-up"  # trajectory priors: the coordinates they read boxes in (dvae.BOX_FRAMES)

    def __init__(self, x_dim: int, z_dim: int, likelihood: str = "gaussian", inputs: str = "log-power"):
        super().__init__()
        if inputs not in ("log-power", "power"):
            raise ValueError(f"inputs must be 'log-power' (ours) or 'power' (the reference priors'), got {inputs!r}")
        self.x_dim, self.z_dim, self.inputs = x_dim, z_dim, inputs
        self.likelihood = Likelihood(likelihood, x_dim)
        self.guides = {"encoder": self.guide}  # the per-frame guide_markov pairs with model_markov only
        # Standardisation of the networks' inputs, set from training data by adapt_to (saved with the model).
        self.register_buffer("feature_loc", torch.zeros(x_dim))
        self.register_buffer("feature_scale", torch.ones(x_dim))

    # ----------------------------------------------------------------------------- hooks for subclasses
    def context(self, x, past):
        return None

    def prior_latent(self, x, ctx):
        return None

    def guide_latent(self, x, ctx):
        raise NotImplementedError

    def decoder_params(self, z, x, ctx):
        raise NotImplementedError

    # ------------------------------------------------------------------------------------------ helpers
    def _context(self, x: torch.Tensor, past: torch.Tensor | None = None):
        """``context`` with the teacher-forced default: the recurrences read x itself."""
        return self.context(x, x if past is None else past)

    def raw_features(self, x: torch.Tensor) -> torch.Tensor:
        """Log-power for spectrograms (the dynamic range of speech), x itself for boxes. The reference priors
        (``inputs="power"``) read the power of the peak-normalised signal itself."""
        return torch.log(x + 1e-8) if self.likelihood.kind == "power" and self.inputs == "log-power" else x

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """What the networks read of x: raw features standardised with the training data's statistics."""
        return (self.raw_features(x) - self.feature_loc) / self.feature_scale

    @torch.no_grad()
    def adapt_to(self, x: torch.Tensor) -> "DVAE":
        """Data-dependent initialisation from training sequences x (N, T, x_dim).

        Standardises the networks' inputs per dimension (raw log-powers span about -20 .. +10 and would
        saturate the first tanh layers) and starts the decoder at the data's average: its output bias is
        the mean log-power (v = geometric mean power) or the mean and log-std of the boxes.
        """
        raw = self.raw_features(x).reshape(-1, self.x_dim)
        self.feature_loc.copy_(raw.mean(0))
        self.feature_scale.copy_(raw.std(0).clamp_min(1e-3))
        bias = self.decoder[-1].bias
        if self.likelihood.kind == "power":
            bias.copy_(self.feature_loc)
        else:
            bias.copy_(torch.cat([self.feature_loc, torch.log(self.feature_scale)]))
        return self

    @staticmethod
    def shift(x: torch.Tensor) -> torch.Tensor:
        """x_{t-1} for every t, with x_0 = 0: (B, T, D) -> (B, T, D)."""
        return torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], dim=1)

    def latent(self, spec, batch: int, length: int, device) -> dist.TorchDistribution:
        if spec is None:
            return dist.Normal(torch.zeros(batch, length, self.z_dim, device=device), 1.0).to_event(2)
        cell, rnn_ctx, head_ctx = spec
        return LatentSequence(cell, batch, length, rnn_ctx, head_ctx, device=device)

    @staticmethod
    def frame_params(latent, z_prev, t, state):
        """(loc, scale, state) of z_t for the readable per-frame form."""
        if isinstance(latent, LatentSequence):
            return latent.step(z_prev, t, state)
        return torch.zeros_like(z_prev), torch.ones_like(z_prev), None  # N(0, I) frames

    # ------------------------------------------------------------------------------ fast path (training)
    def model(self, x: torch.Tensor, past: torch.Tensor | None = None, annealing: float = 1.0):
        """x: (B, T, x_dim). One site for z_{1:T} (teacher-forced log-density) and one for x_{1:T}.

        ``past`` (B, T, x_dim), default x: what the recurrences read as x_{t-1} (see scheduled_past)."""
        pyro.module(self.name, self)
        B, T, _ = x.shape
        ctx = self._context(x, past)
        with pyro.plate("sequences", B, device=x.device):
            with poutine.scale(scale=annealing):
                z = pyro.sample("z", self.latent(self.prior_latent(x, ctx), B, T, x.device))  # (B, T, z_dim)
            pyro.sample("x", self.likelihood(self.decoder_params(z, x, ctx)).to_event(2), obs=x)

    def guide(self, x: torch.Tensor, past: torch.Tensor | None = None, annealing: float = 1.0):
        pyro.module(self.name, self)
        B, T, _ = x.shape
        ctx = self._context(x, past)
        with pyro.plate("sequences", B, device=x.device):
            with poutine.scale(scale=annealing):
                pyro.sample("z", self.latent(self.guide_latent(x, ctx), B, T, x.device))

    # ---------------------------------------------------------------------- readable form (one site a frame)
    def model_markov(self, x: torch.Tensor, past: torch.Tensor | None = None, annealing: float = 1.0):
        pyro.module(self.name, self)
        B, T, _ = x.shape
        ctx = self._context(x, past)
        prior = self.latent(self.prior_latent(x, ctx), B, T, x.device)
        z_prev, state, zs = torch.zeros(B, self.z_dim, device=x.device), None, []
        with pyro.plate("sequences", B, device=x.device):
            for t in pyro.markov(range(T)):
                loc, scale, state = self.frame_params(prior, z_prev, t, state)
                with poutine.scale(scale=annealing):
                    z_prev = pyro.sample(f"z_{t}", dist.Normal(loc, scale).to_event(1))
                zs.append(z_prev)
            params = self.decoder_params(torch.stack(zs, dim=1), x, ctx)
            for t in pyro.markov(range(T)):
                pyro.sample(f"x_{t}", self.likelihood(params[:, t]).to_event(1), obs=x[:, t])

    def guide_markov(self, x: torch.Tensor, past: torch.Tensor | None = None, annealing: float = 1.0):
        pyro.module(self.name, self)
        B, T, _ = x.shape
        guide = self.latent(self.guide_latent(x, self._context(x, past)), B, T, x.device)
        z_prev, state = torch.zeros(B, self.z_dim, device=x.device), None
        with pyro.plate("sequences", B, device=x.device):
            for t in pyro.markov(range(T)):
                loc, scale, state = self.frame_params(guide, z_prev, t, state)
                with poutine.scale(scale=annealing):
                    z_prev = pyro.sample(f"z_{t}", dist.Normal(loc, scale).to_event(1))

    # ------------------------------------------------------------- a frozen prior inside another model
    def prior_sites(self, prefix: str, x: torch.Tensor) -> torch.Tensor:
        """The prior p(x, z) of a sequence x that is *latent* in a larger model (MixDVAE's sources, the clean
        speech of enhancement), called inside that model's plates.

        Samples ``{prefix}_z`` ~ p(z | x_{<t}) and adds log p(x | z) with ``pyro.factor`` as ``{prefix}_x``:
        x's own site in the larger model carries no density of its own, its value comes from that model's
        guide. Returns the decoder's parameters, (B, T, P). Pair with :meth:`encoder_sites` in the guide.
        """
        B, T, _ = x.shape
        ctx = self._context(x)
        z = pyro.sample(f"{prefix}_z", self.latent(self.prior_latent(x, ctx), B, T, x.device))
        params = self.decoder_params(z, x, ctx)
        pyro.factor(f"{prefix}_x", self.likelihood(params).to_event(2).log_prob(x))
        return params

    def encoder_sites(self, prefix: str, x: torch.Tensor) -> torch.Tensor:
        """The guide's half of :meth:`prior_sites`: ``{prefix}_z`` ~ q(z | x), (B, T, z_dim)."""
        B, T, _ = x.shape
        return pyro.sample(f"{prefix}_z", self.latent(self.guide_latent(x, self._context(x)), B, T, x.device))

    # --------------------------------------------------------------------------------- using the model
    @torch.no_grad()
    def encode(self, x: torch.Tensor, ctx=None) -> torch.Tensor:
        """The encoder's mean path z_t = loc_t (frame by frame), (B, T, z_dim)."""
        ctx = self._context(x) if ctx is None else ctx
        q = self.latent(self.guide_latent(x, ctx), x.shape[0], x.shape[1], x.device)
        return q.mean_path() if isinstance(q, LatentSequence) else q.mean

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """E[x_t | z, x_{<t}] with z the encoder's mean path: boxes, or the power variance v for speech."""
        ctx = self._context(x)
        return self.likelihood.mean(self.decoder_params(self.encode(x, ctx), x, ctx))

    @torch.no_grad()
    def scheduled_past(self, x: torch.Tensor, ratio: float) -> torch.Tensor:
        """Scheduled sampling (Bengio et al., 2015) in its two-pass form (Mihaylova & Martins, 2019).

        A teacher-forced pass predicts every frame (the decoder mean, :meth:`reconstruct`); then each frame
        of the past the recurrences read is, with probability ``ratio``, that prediction instead of the data.
        Training on such inputs teaches an autoregressive decoder to recover from its own errors, which it
        must do at generation time; trained on the data alone, SRNN's generations drift and collapse.
        """
        if ratio <= 0 or not self.reads_past_x:
            return x
        use_prediction = torch.rand(x.shape[:2] + (1,), device=x.device) < ratio  # one coin per frame
        return torch.where(use_prediction, self.reconstruct(x), x)

    @torch.no_grad()
    def generate(self, length: int, num: int = 1, device=None, draw: bool = False) -> torch.Tensor:
        """Sequences from the prior, for models whose decoder does not read past x: z ~ p(z), then the decoder
        means, or with ``draw`` x ~ p(x | z) itself (ancestral sampling; for speech the power |s_t|^2)."""
        z = self.latent(self.prior_latent(None, None), num, length, device).sample()
        params = self.decoder_params(z, None, None)
        return self.likelihood(params).sample() if draw else self.likelihood.mean(params)
