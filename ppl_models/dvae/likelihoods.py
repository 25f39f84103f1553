r"""The two observation models of the DVAE family.

**Trajectories** (4-D boxes): x_t | . ~ N(mu_t, diag sigma_t^2).

**Speech spectrograms**: the STFT coefficient X_ft is a zero-mean circular complex Gaussian with variance
v_ft, CN(0, v_ft), whose density is p(X) = exp(-|X|^2 / v) / (pi v). Its power P = |X|^2 is then
Exponential with mean v, p(P) = exp(-P / v) / v, and

    -log p(P | v) = P / v + log v = d_IS(P | v) + log P + 1,

where d_IS(P | v) = P / v - log(P / v) - 1 is the Itakura-Saito divergence. Maximising the likelihood of
power spectrograms is minimising the IS divergence between observed and modelled power, the classic
NMF/VAE-for-speech loss; it is scale-invariant (d_IS(aP | av) = d_IS(P | v)), which is why it suits audio.
The decoder outputs log v, so v > 0 without clamps.
"""

from __future__ import annotations

import pyro.distributions as dist
import torch


def itakura_saito(power: torch.Tensor, variance: torch.Tensor) -> torch.Tensor:
    """d_IS(P | v) = P / v - log(P / v) - 1, elementwise."""
    ratio = power / variance
    return ratio - torch.log(ratio) - 1


def power_likelihood(log_variance: torch.Tensor) -> dist.Exponential:
    """|X|^2 ~ Exponential(rate = 1 / v), v = exp(log_variance): the complex-Gaussian model of the STFT."""
    return dist.Exponential(torch.exp(-log_variance))


class Likelihood:
    """Names the observation model of a DVAE: how many decoder outputs it needs and how to score data."""

    def __init__(self, kind: str, x_dim: int):
        if kind not in ("gaussian", "power"):
            raise ValueError(f"likelihood must be 'gaussian' (trajectories) or 'power' (spectrograms), got {kind!r}")
        self.kind, self.x_dim = kind, x_dim

    @property
    def param_dim(self) -> int:
        """Decoder output size: (loc, log scale) for a Gaussian, log variance for power spectrograms."""
        return 2 * self.x_dim if self.kind == "gaussian" else self.x_dim

    def __call__(self, params: torch.Tensor):
        """A distribution with batch shape params.shape[:-1] + (x_dim,) (not yet an event)."""
        if self.kind == "gaussian":
            loc, log_scale = params.chunk(2, dim=-1)
            return dist.Normal(loc, torch.exp(log_scale))
        return power_likelihood(params)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """E[x]: the Gaussian's mean, or the variance v for power spectrograms."""
        return params.chunk(2, dim=-1)[0] if self.kind == "gaussian" else torch.exp(params)
