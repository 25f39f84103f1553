r"""Deep dynamical models of the noise variance v_b (Lin, Leglaive, Girin & Alameda-Pineda, Interspeech 2023,
sec. 2.2): a recurrence that predicts, frame by frame, the variance of the noise STFT, b_ft ~ CN(0, v_b,ft).

    LV    v_b,t = f(z_{1:T})              bidirectional LSTM over the speech latents
    NO    v_b,t = f(x_{1:t-1})            causal LSTM over the past noisy log-power (the noise is what the
                                          speech prior cannot explain in the noisy past)
    NOLV  v_b,t = f(x_{1:t-1}, z_{1:t})   both, the z recurrence causal

    z_1 .. z_T  ──(LV, NOLV)──┐
                              ├──> MLP(tanh) ──> log v_b,t  (F values per frame)
    x_1 .. x_{t-1} ──(NO, NOLV)┘

Noisy powers enter as the speech prior's standardised log-power features, so the network reads the same
numbers the prior's encoder reads. The output starts at a noise floor, a low quantile of the noisy power
(:meth:`NoiseVariance.adapt_to`), so that at first the speech prior explains all that rises above it.

Fitted on a batch of utterances (U-NA), the network is shared but each utterance u has its own learnt
log-spectrum offset o_u (F values, started at that utterance's own floor): log v_b,t = f(...)_t + o_u. A
shared network alone must tell the recordings apart from z (LV) — a noise at 2.5 dB SNR next to one at 17.5 dB
in the same batch got one common floor, 15 dB off for one of them.
"""

from __future__ import annotations

import torch
from torch import nn

from ppl_models.nn import mlp

NOISE_MODELS = ("lv", "no", "nolv")


def noise_floor(noisy_power: torch.Tensor, quantile: float = 0.1, mask: torch.Tensor | None = None,
                utterance: torch.Tensor | None = None) -> torch.Tensor:
    """The ``quantile`` over frames of noisy powers (N, T, F) per frequency, (F,): where noise estimates start.
    ``mask`` (N, T) bool marks the real frames of padded segments: only those count (the all-zero padding
    of a batch's last segments, once more than ``quantile`` of the rows, would put the floor at 0).
    ``utterance`` (N,): which utterance each row is a segment of; then one floor per utterance, (U, F)."""
    if utterance is not None:
        mask = torch.ones(noisy_power.shape[:2], dtype=torch.bool, device=noisy_power.device) if mask is None else mask
        return torch.stack([noise_floor(noisy_power[utterance == u], quantile, mask[utterance == u])
                            for u in range(int(utterance.max()) + 1)])
    flat = noisy_power[mask] if mask is not None else noisy_power.reshape(-1, noisy_power.shape[-1])
    flat = flat[torch.randperm(flat.shape[0], device=flat.device)[:100_000]]  # torch.quantile's size limit
    return torch.quantile(flat, quantile, dim=0).clamp_min(1e-10)


class NoiseVariance(nn.Module):
    """log v_b (B, T, F) from speech latents z (B, T, z_dim) and/or noisy features (B, T, F)."""

    def __init__(self, kind: str, x_dim: int, z_dim: int, rnn_dim: int = 128, hidden: int = 128):
        super().__init__()
        if kind not in NOISE_MODELS:
            raise ValueError(f"noise model must be one of {', '.join(NOISE_MODELS)} (or nmf), got {kind!r}")
        self.kind = kind
        self.reads_latents, self.reads_noisy = kind in ("lv", "nolv"), kind in ("no", "nolv")
        self.z_rnn = nn.LSTM(z_dim, rnn_dim, batch_first=True, bidirectional=kind == "lv") \
            if self.reads_latents else None
        self.x_rnn = nn.LSTM(x_dim, rnn_dim, batch_first=True) if self.reads_noisy else None
        width = rnn_dim * ((2 if kind == "lv" else 1) * self.reads_latents + self.reads_noisy)
        self.head = mlp([width, hidden, x_dim])
        self.offset = None  # (U, F) per-utterance log offsets, once adapt_to is given the utterances

    @torch.no_grad()
    def adapt_to(self, noisy_power: torch.Tensor, quantile: float = 0.1, mask: torch.Tensor | None = None,
                 utterance: torch.Tensor | None = None) -> "NoiseVariance":
        """Start v_b at a low ``quantile`` over frames of the noisy power per frequency, (N, T, F), the padded
        frames (``mask`` (N, T) False) left out: a noise floor. Started at the mean power, the noise model
        explains much of the speech too (5 dB in: 1.4 dB out after 200 LV U-NA steps from the mean, 8.5 dB from
        the 10 % quantile; benchmarks/enhancement_oracle.py). With ``utterance`` (N,), the utterance of each
        row: one floor per utterance, held by a learnt per-utterance offset (U-NA)."""
        if utterance is None:
            self.head[-1].bias.copy_(torch.log(noise_floor(noisy_power, quantile, mask)))
            return self
        utterance = torch.as_tensor(utterance, device=noisy_power.device)
        log_floor = torch.log(noise_floor(noisy_power, quantile, mask, utterance))  # (U, F)
        self.head[-1].bias.zero_()
        self.register_buffer("utterance", utterance)
        self.offset = nn.Parameter(log_floor)
        return self

    def forward(self, z: torch.Tensor, noisy_features: torch.Tensor) -> torch.Tensor:
        parts = []
        if self.reads_noisy:
            h, _ = self.x_rnn(noisy_features)
            parts.append(torch.cat([torch.zeros_like(h[:, :1]), h[:, :-1]], dim=1))  # h_{t-1}: sees x_{1:t-1}
        if self.reads_latents:
            parts.append(self.z_rnn(z)[0])
        out = self.head(torch.cat(parts, dim=-1))
        return out if self.offset is None else out + self.offset[self.utterance][:, None]
