r"""LigHT-DVAE (Lin et al., ICASSP 2023, arXiv 2303.09404): the lightweight HiT-DVAE. Same model, same inference
and ELBO as :mod:`ppl_models.dvae.hit_dvae` (w ~ N(0, I); z_t | s_{<t}, z_{<t}, w; s_t | s_{<t}, z_{<=t}, w), but the
prior and the decoder share one causal state computed by an RNN alongside one cross-attention layer:

    h_t = LSTM(h_{t-1}, [m_t, z_{t-1}, w]),   m_t = E(s_{t-1})          (s_0 = z_0 = 0)
    g_t = h_t + CrossAttn(LN(h_t), m_{1:t});  g_t = g_t + FF(LN(g_t))  (causal, ALiBi positions)
    z_t ~ N(mu, sigma^2)(LN(g_t))                                       (prior head)
    s_t ~ likelihood(MLP([LN(g_t), z_t, w]))                            (decoder)

    q(w | s), q(z_t | s, w): the HiT-DVAE encoder with one bidirectional block instead of ``layers``.

The recurrence carries the order and the memory of z_{<t} (the decoder reads z_{<t} through it, z_t directly);
the attention lets each frame look straight back at the past frames of s. Choices where the paper leaves them
open: *one LSTM and one attention block shared by the prior and the decoder (the SRNN layout: its deterministic
state h_t feeds both), *the LSTM width is d, *one encoder block, *a one-hidden-layer tanh MLP decoder. About half
the parameters of the HiT-DVAE of the same width.
"""

from __future__ import annotations

import torch
from torch import nn

from ppl_models.dvae.attention import Block
from ppl_models.dvae.hit_dvae import HierarchicalDVAE
from ppl_models.nn import GaussianHead, mlp


class LigHTDVAE(HierarchicalDVAE):
    """LigHT-DVAE: HiT-DVAE with one LSTM beside one causal cross-attention layer shared by prior and decoder
    (module docstring: the model, the equations, the choices the paper leaves open)."""
    name = "light-dvae"

    def __init__(self, x_dim: int, z_dim: int, likelihood: str = "gaussian", hidden: int = 128, w_dim: int = 16,
                 heads: int = 4, inputs: str = "log-power", **_):
        super().__init__(x_dim, z_dim, likelihood, hidden, w_dim, heads, inputs)
        d, ff = self.d_model, 2 * self.d_model
        self.encoder = Block(d, heads, ff)
        self.encoder_norm = nn.LayerNorm(d)
        self.rnn = nn.LSTM(d + z_dim + w_dim, d, batch_first=True)
        self.attend = Block(d, heads, ff, cross=True, self_attention=False)
        self.state_norm = nn.LayerNorm(d)
        self.prior_head = GaussianHead(d, z_dim, d)
        self.decoder = mlp([d + z_dim + w_dim, d, self.likelihood.param_dim])

    def encoder_states(self, x):
        e = self.embed_x(self.features(x))
        return self.encoder_norm(self.encoder(e, self.bias(x.shape[1], False, x.device)))

    def state(self, z, past, w):
        """LN(g_t) for every t, (B, T, d): reads s_{<t}, z_{<t} and w."""
        memory = self.memory(past)
        w_t = w.unsqueeze(1).expand(-1, z.shape[1], -1)
        h, _ = self.rnn(torch.cat([memory, self.shift(z), w_t], dim=-1))
        return self.state_norm(self.attend(h, self.bias(z.shape[1], True, z.device), memory))

    def prior_params(self, z, past, w):
        return self.prior_head(self.state(z, past, w))

    def decoder_params(self, z, past, w):
        w_t = w.unsqueeze(1).expand(-1, z.shape[1], -1)
        return self.decoder(torch.cat([self.state(z, past, w), z, w_t], dim=-1))
