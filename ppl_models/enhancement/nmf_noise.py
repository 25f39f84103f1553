r"""NMF noise for the RVAE-VEM baseline (Bie, Leglaive, Alameda-Pineda & Girin, "Unsupervised speech
enhancement using dynamical variational autoencoders", IEEE/ACM TASLP 2022, sec. V): v_b = W H with W (F, K)
non-negative atoms and H (K, T) activations, K = 8, per utterance.

The M-step minimises E_q(z)[ IS(|x|^2 | g v_s(z) + W H) ] over W, H and the gain g with multiplicative
updates (Févotte & Idier, Neural Computation 2011, heuristic form with exponent 1), the expectation taken
over R guide samples v_s^r. With V^r = g v_s^r + W H and P = |x|^2:

    H_kt <- H_kt  sum_{r,f} W_fk P_ft (V^r_ft)^-2   / sum_{r,f} W_fk (V^r_ft)^-1
    W_fk <- W_fk  sum_{r,t} H_kt P_ft (V^r_ft)^-2   / sum_{r,t} H_kt (V^r_ft)^-1
    g_t  <- g_t   sum_{r,f} v^r_ft P_ft (V^r_ft)^-2 / sum_{r,f} v^r_ft (V^r_ft)^-1

Each update leaves the other factors' terms inside V^r as they are, and none increases the expected IS
divergence (tested in tests/test_enhancement.py).
"""

from __future__ import annotations

import torch
from torch import nn

from ppl_models.enhancement.noise_models import noise_floor

EPS = 1e-12


def expected_is(power: torch.Tensor, speech: torch.Tensor, gain: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """mean over samples r of sum IS(P | g v_s^r + v_b): power (B, T, F), speech (R, B, T, F), gain (B, T, 1)."""
    ratio = power / (gain * speech + noise).clamp_min(EPS)
    return (ratio - torch.log(ratio) - 1).sum((1, 2, 3)).mean(0)


class NMFNoise(nn.Module):
    """v_b = (W H)^T and the gain g_t: closed-form state, updated by :meth:`update`.

    Rows of the batch may be segments of longer utterances: ``utterance`` (B,) says which, and the segments
    of one utterance share its atoms W (U, F, K); activations H (B, K, T) and gains (B, T, 1) are per frame.
    ``mask`` (B, T) bool marks the real frames (padding does not count towards the starting noise floor)."""

    def __init__(self, noisy_power: torch.Tensor, utterance: torch.Tensor | None = None, rank: int = 8,
                 seed: int = 0, floor_quantile: float = 0.1, mask: torch.Tensor | None = None):
        super().__init__()
        B, T, F = noisy_power.shape
        utterance = torch.arange(B) if utterance is None else torch.as_tensor(utterance)
        g = torch.Generator().manual_seed(seed)
        floor = noise_floor(noisy_power, floor_quantile, mask, utterance.to(noisy_power.device)).cpu()[..., None]
        W = torch.rand(int(utterance.max()) + 1, F, rank, generator=g).add(0.5) * floor  # W H near each one's floor
        self.register_buffer("utterance", utterance.to(noisy_power.device))
        self.register_buffer("W", W.to(noisy_power.device))
        self.register_buffer("H", (torch.rand(B, rank, T, generator=g).add(0.5) / rank).to(noisy_power.device))
        self.register_buffer("gain", noisy_power.new_ones(B, T, 1))

    def variance(self) -> torch.Tensor:
        return (self.W[self.utterance] @ self.H).transpose(1, 2)  # (B, T, F)

    @torch.no_grad()
    def update(self, power: torch.Tensor, speech: torch.Tensor, mask: torch.Tensor | None = None) -> None:
        """One multiplicative sweep over H, W and g; ``speech`` (R, B, T, F) are guide samples of v_s and
        ``mask`` (B, T) the real frames (padding neither counts nor changes)."""
        weight = power.new_ones(power.shape[:2]) if mask is None else mask.to(power.dtype)
        weight = weight[..., None]  # (B, T, 1)

        def inverse_powers():  # (sum_r P V^-2, sum_r V^-1), zero on padding, V from the current state
            V = (self.gain * speech + self.variance()).clamp_min(EPS)
            return weight * (power / V ** 2).sum(0), weight * (1 / V).sum(0)

        num, den = inverse_powers()
        Wt = self.W[self.utterance].transpose(1, 2)
        self.H *= _ratio(Wt @ num.transpose(1, 2), Wt @ den.transpose(1, 2))
        num, den = inverse_powers()
        Ht = self.H.transpose(1, 2)
        self.W *= _ratio(self._per_utterance(num.transpose(1, 2) @ Ht), self._per_utterance(den.transpose(1, 2) @ Ht))
        V = (self.gain * speech + self.variance()).clamp_min(EPS)
        self.gain *= _ratio(weight * (speech * power / V ** 2).sum((0, 3))[..., None],
                            weight * (speech / V).sum((0, 3))[..., None])
        scale = self.W.sum(1, keepdim=True).clamp_min(EPS)  # unit-sum atoms, the level moves to H
        self.W /= scale
        self.H *= scale[self.utterance].transpose(1, 2)

    def _per_utterance(self, rows: torch.Tensor) -> torch.Tensor:
        """Sum (B, ...) per-segment terms into (U, ...) per-utterance ones."""
        return torch.zeros_like(self.W).index_add_(0, self.utterance, rows)


def _ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """num / den, and 1 (no change) where den = 0 (padded frames)."""
    return torch.where(den > 0, num / den.clamp_min(EPS), torch.ones_like(num))
