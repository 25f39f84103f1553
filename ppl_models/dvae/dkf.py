r"""Deep Kalman filter (Krishnan et al., 2015/2017; DVAE review sec. 5): a Markov chain of latents.

    z_t | z_{t-1} ~ N(mu(z_{t-1}), diag sigma^2(z_{t-1}))        x_t | z_t ~ p(x_t; dec(z_t))
    q(z_t | z_{t-1}, g_t),  g_t = backward LSTM over x_{t:T}      (the "st-l" combiner)

    z_1 --> z_2 --> z_3
     |       |       |
     v       v       v
    x_1     x_2     x_3
"""

from __future__ import annotations

from torch import nn

from ppl_models.dvae.base import DVAE
from ppl_models.dvae.sequence import GaussianCell
from ppl_models.nn import mlp


class DKF(DVAE):
    name = "dkf"

    def __init__(self, x_dim: int, z_dim: int, likelihood: str = "gaussian", hidden: int = 64, rnn_dim: int = 64, **_):
        super().__init__(x_dim, z_dim, likelihood)
        self.transition = GaussianCell(z_dim, hidden=hidden)
        self.backward_rnn = nn.LSTM(x_dim, rnn_dim, batch_first=True)
        self.encoder = GaussianCell(z_dim, head_ctx_dim=rnn_dim, hidden=hidden)
        self.decoder = mlp([z_dim, hidden, hidden, self.likelihood.param_dim])

    def prior_latent(self, x, ctx):
        return self.transition, None, None

    def guide_latent(self, x, ctx):
        g, _ = self.backward_rnn(self.features(x).flip(1))  # runs from t = T down to 1
        return self.encoder, None, g.flip(1)

    def decoder_params(self, z, x, ctx):
        return self.decoder(z)
