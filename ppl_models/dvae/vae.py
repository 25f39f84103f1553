r"""VAE applied frame by frame (Kingma & Welling, 2014), the no-dynamics baseline of the DVAE review.

    z_t ~ N(0, I)                     x_t | z_t ~ p(x_t; dec(z_t))            (frames independent)
    q(z_t | x_t) = N(mu(x_t), diag sigma^2(x_t))

Sizes: ``hidden`` (the encoder's hidden widths) and ``decoder_hidden`` (default two layers of ``hidden``); the
reference WSJ0 VAE (DVAE_SE) has one tanh layer of 128 on each side (``ppl-models import-prior``).

    z_1   z_2   z_3
     |     |     |
     v     v     v
    x_1   x_2   x_3
"""

from __future__ import annotations

from ppl_models.dvae.base import DVAE
from ppl_models.dvae.sequence import GaussianCell
from ppl_models.nn import default_decoder, mlp


class VAE(DVAE):
    """Frame-wise VAE: z_t ~ N(0, I) and x_t from z_t, no dynamics (the DVAE family's reference row)."""
    name = "vae"

    def __init__(self, x_dim: int, z_dim: int, likelihood: str = "gaussian", hidden=64, decoder_hidden=None,
                 inputs: str = "log-power", scale: str = "softplus", **_):
        super().__init__(x_dim, z_dim, likelihood, inputs)
        self.encoder = GaussianCell(z_dim, head_ctx_dim=x_dim, use_z_prev=False, hidden=hidden, scale=scale)
        self.decoder = mlp([z_dim, *default_decoder(hidden, decoder_hidden), self.likelihood.param_dim])

    def guide_latent(self, x, ctx):
        return self.encoder, None, self.features(x)

    def decoder_params(self, z, x, ctx):
        return self.decoder(z)
