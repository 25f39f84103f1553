r"""Variational RNN (Chung et al., 2015; DVAE review sec. 7): one recurrence carries both x and z.

    h_t = LSTM(h_{t-1}, [z_{t-1}, phi(x_{t-1})])
    z_t | h_t ~ N(mu(h_t), diag sigma^2(h_t))          x_t | z_t, h_t ~ p(x_t; dec(z_t, h_t))
    q(z_t | h_t, x_t) = N(mu'(h_t, phi(x_t)), ...)    (the guide shares h_t: the same LSTM object)

    x_{t-1}, z_{t-1} --> h_t --> z_t --> x_t
                          |_____________^
"""

from __future__ import annotations

import torch
from torch import nn

from ppl_models.dvae.base import DVAE
from ppl_models.dvae.sequence import GaussianCell
from ppl_models.nn import mlp


class VRNN(DVAE):
    """Variational RNN: one recurrence over x_{1:t-1} and z_{1:t-1} drives prior and decoder (module docstring)."""
    name = "vrnn"
    reads_past_x = True

    def __init__(self, x_dim: int, z_dim: int, likelihood: str = "gaussian", hidden: int = 64, rnn_dim: int = 64, **_):
        super().__init__(x_dim, z_dim, likelihood)
        self.phi_x = mlp([x_dim, hidden, hidden])
        self.rnn = nn.LSTM(z_dim + hidden, rnn_dim, batch_first=True)
        self.prior_cell = GaussianCell(z_dim, rnn_ctx_dim=hidden, use_z_prev=False, hidden=hidden, rnn=self.rnn)
        self.encoder = GaussianCell(z_dim, rnn_ctx_dim=hidden, head_ctx_dim=hidden, use_z_prev=False, hidden=hidden,
                                    rnn=self.rnn)
        self.decoder = mlp([z_dim + rnn_dim, hidden, hidden, self.likelihood.param_dim])

    def context(self, x, past):
        """The features phi(x_t) and phi(past_{t-1}), all t: two (B, T, hidden)."""
        fx = self.phi_x(self.features(x))
        return fx, self.shift(fx if past is x else self.phi_x(self.features(past)))

    def prior_latent(self, x, ctx):
        return self.prior_cell, ctx[1], None

    def guide_latent(self, x, ctx):
        return self.encoder, ctx[1], ctx[0]

    def decoder_params(self, z, x, ctx):
        h, _ = self.rnn(torch.cat([self.shift(z), ctx[1]], dim=-1))  # h_t from z_{t-1}, x_{t-1}
        return self.decoder(torch.cat([z, h], dim=-1))

    @torch.no_grad()
    def generate(self, length: int, num: int = 1, device=None, draw: bool = False) -> torch.Tensor:
        """Sequences from the prior, frame by frame; each frame (the decoder mean, or with ``draw`` a draw of
        x_t: ancestral sampling) is fed back through phi(x) to the next."""
        fx_prev = torch.zeros(num, self.rnn.input_size - self.z_dim, device=device)  # shift()'s zero pad, as trained
        z_prev, state, xs = torch.zeros(num, self.z_dim, device=device), None, []
        for _ in range(length):
            out, state = self.rnn(torch.cat([z_prev, fx_prev], -1).unsqueeze(1), state)
            h = out.squeeze(1)
            loc, scale = self.prior_cell.head(h)
            z_prev = loc + scale * torch.randn_like(loc)
            params = self.decoder(torch.cat([z_prev, h], dim=-1))
            xs.append(self.likelihood(params).sample() if draw else self.likelihood.mean(params))
            fx_prev = self.phi_x(self.features(xs[-1]))
        return torch.stack(xs, dim=1)
