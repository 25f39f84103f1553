r"""Deep Kalman filter (Krishnan et al., 2015/2017; DVAE review sec. 5): a Markov chain of latents.

    z_t | z_{t-1} ~ N(mu(z_{t-1}), diag sigma^2(z_{t-1}))        x_t | z_t ~ p(x_t; dec(z_t))
    q(z_t | z_{t-1}, g_t),  g_t = backward LSTM over x_{t:T}      (the "st-l" combiner)

    z_1 --> z_2 --> z_3
     |       |       |
     v       v       v
    x_1     x_2     x_3

Options (defaults: ours; the reference WSJ0 DKF of DVAE_SE is ``transition="gated"``, ``combiner="average"``,
``dense_x=[256]``, ``combiner_hidden=[32]``, ``hidden=[32]``, ``decoder_hidden=[32, 64, 128, 256]``):

* ``transition``: ``mlp`` (a Gaussian head on z_{t-1}) or ``gated`` (the DMM's gated transition,
  :class:`~ppl_models.dvae.sequence.GatedTransition`);
* ``combiner``: ``concat`` (a head on [z_{t-1}, g_t]) or ``average`` (the DMM's combiner,
  :class:`~ppl_models.dvae.sequence.CombinerCell`);
* ``dense_x``: tanh layers between x_t and the backward LSTM.
"""

from __future__ import annotations

from torch import nn

from ppl_models.dvae.base import DVAE
from ppl_models.dvae.sequence import CombinerCell, GatedTransition, GaussianCell
from ppl_models.nn import default_decoder, mlp, widths


class DKF(DVAE):
    """Deep Kalman filter: Markov latents z_t, each frame x_t from z_t alone (module docstring: graph, equations)."""
    name = "dkf"

    def __init__(self, x_dim: int, z_dim: int, likelihood: str = "gaussian", hidden=64, rnn_dim: int = 64,
                 decoder_hidden=None, dense_x=(), transition: str = "mlp", combiner: str = "concat",
                 combiner_hidden=(), inputs: str = "log-power", scale: str = "softplus", **_):
        super().__init__(x_dim, z_dim, likelihood, inputs)
        if transition not in ("mlp", "gated") or combiner not in ("concat", "average"):
            raise ValueError(f"DKF: transition must be mlp or gated, combiner concat or average; got "
                             f"{transition!r}, {combiner!r}")
        self.transition = (GatedTransition(z_dim) if transition == "gated"
                           else GaussianCell(z_dim, hidden=hidden, scale=scale))
        self.embed_x = mlp([x_dim, *widths(dense_x)], activate_last=True)
        self.backward_rnn = nn.LSTM(([x_dim] + widths(dense_x))[-1], rnn_dim, batch_first=True)
        self.encoder = (CombinerCell(z_dim, rnn_dim, combiner_hidden, hidden, scale=scale) if combiner == "average"
                        else GaussianCell(z_dim, head_ctx_dim=rnn_dim, hidden=hidden, scale=scale))
        self.decoder = mlp([z_dim, *default_decoder(hidden, decoder_hidden), self.likelihood.param_dim])

    def prior_latent(self, x, ctx):
        return self.transition, None, None

    def guide_latent(self, x, ctx):
        g, _ = self.backward_rnn(self.embed_x(self.features(x)).flip(1))  # runs from t = T down to 1
        return self.encoder, None, g.flip(1)

    def decoder_params(self, z, x, ctx):
        return self.decoder(z)
