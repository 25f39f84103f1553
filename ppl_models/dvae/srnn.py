r"""Stochastic RNN (Fraccaro et al., 2016; DVAE review sec. 8): a deterministic recurrence on past
observations feeds a Markov chain of latents.

    h_t = LSTM(h_{t-1}, x_{t-1})
    z_t | z_{t-1}, h_t ~ N(mu(z_{t-1}, h_t), diag sigma^2(z_{t-1}, h_t))
    x_t | z_t, h_t ~ p(x_t; dec(z_t, h_t))
    q(z_t | z_{t-1}, g_t),  g_t = backward LSTM over [h_t, x_t]_{t:T}

    x_{t-1} --> h_t --> x_t
                 |       ^
                 v       |
    z_{t-1} --> z_t -----+

For generation the decoder reads its own previous output (autoregressive); trained only with teacher
forcing it can drift at generation time, which is why the DVAE issue asks for scheduled sampling.

``residual`` (the trajectory preset; a departure from the reference architecture): for a Gaussian
observation the decoder predicts the displacement from the previous frame, mu_t = x_{t-1} + dec(z_t, h_t)
(x_0 = 0, so the first frame is predicted whole). Boxes move by about 1e-3 of the image per frame while
their positions span the whole image: predicting positions outright, a small LSTM is off by a third of a
box width (one-step RMSE 6e-3), far worse than a constant-velocity Kalman filter.

``velocity`` (an option, ``train-prior --velocity``; needs ``residual``): the recurrence also reads each
frame's displacement (x_{t-1} - x_{t-2}) / delta, delta the typical displacement of the training data.
Reading standardised positions alone, an LSTM(8) hardly resolves a motion of 1e-3 of the image: on held-out
MOT15 tracks its one-step prediction is worse than holding the last box; reading the displacement cuts that
error by a fifth to a half, to near constant velocity on one fold (benchmarks/motion_prediction.py,
RESULTS.md). It is not the preset because the MixDVAE tracker does not clearly gain from it (more identity
switches on real detections).

Sizes: ``hidden`` (the Gaussian heads' hidden widths), ``decoder_hidden`` (default two layers of ``hidden``),
``dense_x`` (tanh layers between x_{t-1} and the forward LSTM) and ``dense_hx`` (between [h_t, x_t] and the
backward LSTM). The reference WSJ0 SRNN (DVAE_SE, MixDVAE) is ``dense_x=[256]``, ``dense_hx=[256]``,
``hidden=[64, 32]``, ``decoder_hidden=[256]``, reading the power itself (``inputs="power"``). ``prior_hidden``:
the transition head's own widths where they differ from the encoder's (default ``hidden``).

``backward_guide=False`` (MixDVAE's trajectory prior): the encoder reads no backward recurrence but the present,
q(z_t | z_{t-1}, h_t, x_t) — a filtering guide instead of a smoothing one.
"""

from __future__ import annotations

import torch
from torch import nn

from ppl_models.dvae.base import DVAE
from ppl_models.dvae.sequence import GaussianCell
from ppl_models.nn import default_decoder, mlp, widths


class SRNN(DVAE):
    """Stochastic RNN: a deterministic recurrence over x_{1:t-1}, z_t Markov given it (module docstring: graph)."""
    name = "srnn"
    reads_past_x = True

    def __init__(self, x_dim: int, z_dim: int, likelihood: str = "gaussian", hidden=64, rnn_dim: int = 64,
                 residual: bool = False, velocity: bool = False, decoder_hidden=None, dense_x=(), dense_hx=(),
                 prior_hidden=None, backward_guide: bool = True, inputs: str = "log-power", scale: str = "softplus",
                 **_):
        super().__init__(x_dim, z_dim, likelihood, inputs)
        if residual and likelihood != "gaussian":
            raise ValueError("residual=True needs the Gaussian (trajectory) likelihood")
        if velocity and not residual:
            raise ValueError("velocity=True needs residual=True")
        self.residual, self.velocity = residual, velocity
        if velocity:  # the frame-to-frame displacement's spread, set by adapt_to: its unit for the recurrence
            self.register_buffer("motion_scale", torch.ones(x_dim))
        rnn_in = x_dim * (2 if velocity else 1)
        self.embed_x = mlp([rnn_in, *widths(dense_x)], activate_last=True)
        self.rnn = nn.LSTM(([rnn_in] + widths(dense_x))[-1], rnn_dim, batch_first=True)
        self.transition = GaussianCell(z_dim, head_ctx_dim=rnn_dim, scale=scale,
                                       hidden=hidden if prior_hidden is None else prior_hidden)
        self.backward_guide = backward_guide
        if backward_guide:
            self.embed_hx = mlp([rnn_dim + x_dim, *widths(dense_hx)], activate_last=True)
            self.backward_rnn = nn.LSTM(([rnn_dim + x_dim] + widths(dense_hx))[-1], rnn_dim, batch_first=True)
        self.encoder = GaussianCell(z_dim, head_ctx_dim=rnn_dim if backward_guide else rnn_dim + x_dim,
                                    hidden=hidden, scale=scale)
        self.decoder = mlp([z_dim + rnn_dim, *default_decoder(hidden, decoder_hidden), self.likelihood.param_dim])

    def context(self, x, past):
        """(h, x_prev): the deterministic states h_t from past_{1:t-1}, (B, T, rnn_dim), and past_{t-1}."""
        return self.rnn(self.embed_x(self.shift(self.rnn_input(past))))[0], self.shift(past)

    def rnn_input(self, x):
        """What the recurrence reads of each frame: the standardised box, and with ``velocity`` also its
        displacement from the frame before in units of the typical displacement (zero at the first frame)."""
        if not self.velocity:
            return self.features(x)
        motion = torch.cat([torch.zeros_like(x[:, :1]), x[:, 1:] - x[:, :-1]], dim=1) / self.motion_scale
        return torch.cat([self.features(x), motion], dim=-1)

    def prior_latent(self, x, ctx):
        return self.transition, None, ctx[0]

    def guide_latent(self, x, ctx):
        hx = torch.cat([ctx[0], self.features(x)], dim=-1)
        if not self.backward_guide:
            return self.encoder, None, hx
        g, _ = self.backward_rnn(self.embed_hx(hx).flip(1))
        return self.encoder, None, g.flip(1)

    def decoder_params(self, z, x, ctx):
        h, x_prev = ctx
        return self._emit(self.decoder(torch.cat([z, h], dim=-1)), x_prev)

    def _emit(self, params, x_prev):
        """Decoder output -> likelihood parameters: adds x_{t-1} to the mean in the residual form."""
        if not self.residual:
            return params
        loc, log_scale = params.chunk(2, dim=-1)
        return torch.cat([x_prev + loc, log_scale], dim=-1)

    @torch.no_grad()
    def adapt_to(self, x):
        super().adapt_to(x)
        if self.residual:  # displacements average zero; the log-scale starts at the frame-to-frame spread
            bias = self.decoder[-1].bias
            bias[:self.x_dim] = 0
            spread = (x[:, 1:] - x[:, :-1]).reshape(-1, self.x_dim).std(0).clamp_min(1e-6)
            bias[self.x_dim:] = torch.log(spread)
            if self.velocity:
                self.motion_scale.copy_(spread)
        return self

    @torch.no_grad()
    def generate(self, length: int, num: int = 1, device=None, draw: bool = False) -> torch.Tensor:
        """Sequences from the prior, frame by frame; each frame (the decoder mean, or with ``draw`` a draw of
        x_t: ancestral sampling) is fed back as x_{t-1} of the next."""
        f_prev = torch.zeros(num, self.embed_x[0].in_features if len(self.embed_x) else self.rnn.input_size,
                             device=device)  # shift()'s zero pad for "x_0", as trained
        x_prev = torch.zeros(num, self.x_dim, device=device)
        z_prev, state, xs = torch.zeros(num, self.z_dim, device=device), None, []
        for _ in range(length):
            out, state = self.rnn(self.embed_x(f_prev.unsqueeze(1)), state)
            h = out.squeeze(1)
            loc, scale, _ = self.transition.step(z_prev, None, h)
            z_prev = loc + scale * torch.randn_like(loc)
            params = self._emit(self.decoder(torch.cat([z_prev, h], dim=-1)), x_prev)
            x_prev = self.likelihood(params).sample() if draw else self.likelihood.mean(params)
            xs.append(x_prev)
            f_prev = self.rnn_input(torch.stack(xs[-2:], dim=1))[:, -1]
        return torch.stack(xs, dim=1)
