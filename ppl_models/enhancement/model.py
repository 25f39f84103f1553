r"""Unsupervised speech enhancement with a deep generative speech prior and a dynamical noise model (Lin,
Leglaive, Girin & Alameda-Pineda, Interspeech 2023; the NMF-noise baseline is Bie et al.'s RVAE-VEM, 2022).

The noisy STFT is speech plus noise, both zero-mean complex Gaussians, independent given their variances:

    z_{1:T} ~ p(z)                                  the speech prior's latents (RVAE: N(0, I) frames)
    s_ft | z ~ CN(0, v_s,ft(z)),  v_s = dec(z)      the pre-trained speech decoder, frozen
    b_ft     ~ CN(0, v_b,ft)                        v_b from a noise model: LV / NO / NOLV or NMF
    x_ft = sqrt(g_t) s_ft + b_ft                    g_t > 0 a per-frame gain (the level of this recording)

so x_ft | z ~ CN(0, g_t v_s,ft + v_b,ft), and its power |x_ft|^2 is Exponential with that mean (eq. 3 of the
paper): -log p = IS(|x|^2 | g v_s + v_b) + const, the speech priors' own likelihood with a noise floor added.

    plate utterances
      z_{1:T} ──> v_s ──┐
         └─(LV, NOLV)──>├──> |x_ft|^2 <── g_t
      x_{1:t-1} ─(NO)─> v_b

Guide: q(z | x) = the prior's encoder (a trainable copy), reading the *noisy* power. No clean speech is ever
seen: the prior knows what speech looks like, so the noise model takes what the prior cannot explain.

The estimate of the clean STFT is the posterior mean E[s | x] = E_q(z)[ g v_s / (g v_s + v_b) ] x: the
Wiener filter, averaged over guide samples (the estimate is the speech image sqrt(g) s at the recording's
level; g only rescales v_s, so the mask reads g v_s).
"""

from __future__ import annotations

import copy

import pyro
import pyro.distributions as dist
import torch
from pyro.distributions import constraints
from torch import nn

from ppl_models.enhancement.nmf_noise import NMFNoise
from ppl_models.enhancement.noise_models import NoiseVariance


class NoisySpeech(nn.Module):
    """A frozen speech prior + a noise model; ``model(x)``/``guide(x)`` on noisy powers x (B, T, F)."""

    max_plate_nesting = 1

    def __init__(self, prior: nn.Module, noise: NoiseVariance | NMFNoise):
        super().__init__()
        if prior.likelihood.kind != "power":
            raise ValueError(f"enhancement needs a speech (power) prior, got a {prior.likelihood.kind} one")
        if prior.reads_past_x:
            raise ValueError(f"the {prior.name} prior reads past speech frames, which are hidden here; "
                             "use a prior whose decoder reads only z (rvae, vae, dkf)")
        # train(): cuDNN computes LSTM gradients only in training mode; the prior has no dropout or batch norm.
        self.prior = prior.train().requires_grad_(False)
        self.encoder = copy.deepcopy(self.prior).requires_grad_(True)  # q(z | x), fitted to noisy speech
        self.noise = noise
        self.guides = {"encoder": self.guide}

    @property
    def is_nmf(self) -> bool:
        return isinstance(self.noise, NMFNoise)

    def speech_variance(self, z: torch.Tensor) -> torch.Tensor:
        """v_s = dec(z), (B, T, F)."""
        return self.prior.likelihood.mean(self.prior.decoder_params(z, None, None))

    def noise_variance(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """v_b (B, T, F) from the noise model."""
        return self.noise.variance() if self.is_nmf else torch.exp(self.noise(z, self.prior.features(x)))

    def gain(self, x: torch.Tensor, learn_gain: bool) -> torch.Tensor:
        """g_t (B, T, 1): NMF's closed-form state, a Pyro parameter per utterance and frame, or 1."""
        if self.is_nmf:
            return self.noise.gain
        if not learn_gain:
            return x.new_ones(())
        return pyro.param("gain", lambda: x.new_ones(x.shape[0], x.shape[1], 1), constraint=constraints.positive)

    # -------------------------------------------------------------------------------------- model/guide
    def model(self, x: torch.Tensor, mask: torch.Tensor | None = None, learn_gain: bool = True):
        """x (B, T, F) noisy powers |x_ft|^2; ``mask`` (B, T) bool marks real frames of padded utterances."""
        pyro.module("noise", self.noise)
        B, T, _ = x.shape
        with pyro.plate("utterances", B, device=x.device):
            z = pyro.sample("z", self.prior.latent(self.prior.prior_latent(None, None), B, T, x.device))
            variance = self.gain(x, learn_gain) * self.speech_variance(z) + self.noise_variance(z, x)
            likelihood = dist.Exponential(1.0 / variance)  # mean g v_s + v_b: the complex Gaussian on x_ft
            if mask is not None:
                likelihood = likelihood.mask(mask[..., None])
            pyro.sample("x", likelihood.to_event(2), obs=x)

    def posterior(self, x: torch.Tensor):
        """q(z | x): the encoder's latent sequence distribution for noisy powers x (B, T, F)."""
        B, T, _ = x.shape
        return self.encoder.latent(self.encoder.guide_latent(x, self.encoder._context(x)), B, T, x.device)

    def guide(self, x: torch.Tensor, mask: torch.Tensor | None = None, learn_gain: bool = True):
        pyro.module("encoder", self.encoder)
        with pyro.plate("utterances", x.shape[0], device=x.device):
            pyro.sample("z", self.posterior(x))

    # ----------------------------------------------------------------------------------------- estimate
    def sample_latents(self, x: torch.Tensor) -> torch.Tensor:
        """z ~ q(z | x), (B, T, z_dim)."""
        return self.posterior(x).sample()

    @torch.no_grad()
    def wiener_mask(self, x: torch.Tensor, num_samples: int = 8, learn_gain: bool = True) -> torch.Tensor:
        """E_q(z)[ g v_s / (g v_s + v_b) ], (B, T, F): multiply the noisy STFT by it to get E[s | x]."""
        g = self.gain(x, learn_gain)
        total = torch.zeros_like(x)
        for _ in range(num_samples):
            z = self.sample_latents(x)
            speech = g * self.speech_variance(z)
            total += speech / (speech + self.noise_variance(z, x))
        return total / num_samples
