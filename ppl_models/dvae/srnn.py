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
"""

from __future__ import annotations

import torch
from torch import nn

from ppl_models.dvae.base import DVAE
from ppl_models.dvae.sequence import GaussianCell
from ppl_models.nn import mlp


class SRNN(DVAE):
    name = "srnn"
    reads_past_x = True

    def __init__(self, x_dim: int, z_dim: int, likelihood: str = "gaussian", hidden: int = 64, rnn_dim: int = 64, **_):
        super().__init__(x_dim, z_dim, likelihood)
        self.rnn = nn.LSTM(x_dim, rnn_dim, batch_first=True)
        self.transition = GaussianCell(z_dim, head_ctx_dim=rnn_dim, hidden=hidden)
        self.backward_rnn = nn.LSTM(rnn_dim + x_dim, rnn_dim, batch_first=True)
        self.encoder = GaussianCell(z_dim, head_ctx_dim=rnn_dim, hidden=hidden)
        self.decoder = mlp([z_dim + rnn_dim, hidden, hidden, self.likelihood.param_dim])

    def context(self, x, past):
        """The deterministic states h_t from past_{1:t-1}, all t: (B, T, rnn_dim)."""
        h, _ = self.rnn(self.shift(self.features(past)))
        return h

    def prior_latent(self, x, h):
        return self.transition, None, h

    def guide_latent(self, x, h):
        g, _ = self.backward_rnn(torch.cat([h, self.features(x)], dim=-1).flip(1))
        return self.encoder, None, g.flip(1)

    def decoder_params(self, z, x, h):
        return self.decoder(torch.cat([z, h], dim=-1))

    @torch.no_grad()
    def generate(self, length: int, num: int = 1, device=None) -> torch.Tensor:
        f_prev = torch.zeros(num, self.x_dim, device=device)  # shift()'s zero pad: features of "x_0", as trained
        z_prev, state, xs = torch.zeros(num, self.z_dim, device=device), None, []
        for _ in range(length):
            out, state = self.rnn(f_prev.unsqueeze(1), state)
            h = out.squeeze(1)
            loc, scale, _ = self.transition.step(z_prev, None, h)
            z_prev = loc + scale * torch.randn_like(loc)
            xs.append(self.likelihood.mean(self.decoder(torch.cat([z_prev, h], dim=-1))))
            f_prev = self.features(xs[-1])
        return torch.stack(xs, dim=1)
