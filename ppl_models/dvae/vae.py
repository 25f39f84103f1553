r"""VAE applied frame by frame (Kingma & Welling, 2014), the no-dynamics baseline of the DVAE review.

    z_t ~ N(0, I)                     x_t | z_t ~ p(x_t; dec(z_t))            (frames independent)
    q(z_t | x_t) = N(mu(x_t), diag sigma^2(x_t))

    z_1   z_2   z_3
     |     |     |
     v     v     v
    x_1   x_2   x_3
"""

from __future__ import annotations

from ppl_models.dvae.base import DVAE
from ppl_models.dvae.sequence import GaussianCell
from ppl_models.nn import mlp


class VAE(DVAE):
    name = "vae"

    def __init__(self, x_dim: int, z_dim: int, likelihood: str = "gaussian", hidden: int = 64, **_):
        super().__init__(x_dim, z_dim, likelihood)
        self.encoder = GaussianCell(z_dim, head_ctx_dim=x_dim, use_z_prev=False, hidden=hidden)
        self.decoder = mlp([z_dim, hidden, hidden, self.likelihood.param_dim])

    def guide_latent(self, x, ctx):
        return self.encoder, None, self.features(x)

    def decoder_params(self, z, x, ctx):
        return self.decoder(z)
