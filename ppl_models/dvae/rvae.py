r"""Recurrent VAE (Leglaive, Alameda-Pineda, Girin & Horaud, ICASSP 2020; DVAE review sec. 9): independent
latents, and a decoder whose recurrence over z gives each frame a memory of the latent past.

    z_t ~ N(0, I)
    x_t | z_{1:t} ~ p(x_t; dec(h_t)),  h_t = LSTM(z_{1:t})          (causal)
                                       h_t = BiLSTM(z_{1:T})_t      (non-causal)
    q(z_t | z_{1:t-1}, x) = N(mu, sigma^2)([k_t, g_t]):
        k_t = LSTM over z_{1:t-1};  g_t = LSTM over x_{1:t} (causal) or BiLSTM over x_{1:T} (non-causal)

    z_1   z_2   z_3
     |  \  |  \  |        (each x_t depends on all z_{<=t}; non-causal: on all z)
     v   ` v   ` v
    x_1   x_2   x_3

Sizes: ``hidden`` (the encoder head's hidden widths) and ``decoder_hidden`` (default ``decoder_layers`` layers
of ``hidden``). The reference non-causal WSJ0 RVAE (DVAE_SE) has none on either side and reads the power itself
(``inputs="power"``); ``ppl-models import-prior`` builds it so.
"""

from __future__ import annotations

from torch import nn

from ppl_models.dvae.base import DVAE
from ppl_models.dvae.sequence import GaussianCell
from ppl_models.nn import default_decoder, mlp


class RVAE(DVAE):
    """Recurrent VAE: independent z_t, x_t from a recurrence over z_{1:t} (module docstring: graph, equations)."""
    name = "rvae"

    def __init__(self, x_dim: int, z_dim: int, likelihood: str = "gaussian", hidden=64, rnn_dim: int = 64,
                 causal: bool = True, decoder_layers: int = 1, decoder_hidden=None, inputs: str = "log-power",
                 scale: str = "softplus", **_):
        super().__init__(x_dim, z_dim, likelihood, inputs)
        self.causal = causal
        directions = 1 if causal else 2
        self.decoder_rnn = nn.LSTM(z_dim, rnn_dim, batch_first=True, bidirectional=not causal)
        # `decoder_layers` hidden layers of width `hidden` between the recurrence and the output (the reference
        # code has none; our small corpus needs a wide one, see rvae-speech's model card; deeper did not help,
        # RESULTS.md, fourth round)
        self.decoder = mlp([directions * rnn_dim, *default_decoder(hidden, decoder_hidden, decoder_layers),
                            self.likelihood.param_dim])
        self.x_rnn = nn.LSTM(x_dim, rnn_dim, batch_first=True, bidirectional=not causal)
        self.encoder = GaussianCell(z_dim, rnn_dim=rnn_dim, head_ctx_dim=directions * rnn_dim, use_z_prev=False,
                                    hidden=hidden, scale=scale)

    def guide_latent(self, x, ctx):
        g, _ = self.x_rnn(self.features(x))
        return self.encoder, None, g

    def decoder_params(self, z, x, ctx):
        h, _ = self.decoder_rnn(z)
        return self.decoder(h)
