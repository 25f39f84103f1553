# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Tutorial 6 — Unsupervised speech enhancement: a speech prior, a noise model, and no clean/noisy pairs
#
# A supervised denoiser learns from pairs (noisy input, clean target) and knows only the noises it was shown.
# The generative route needs no pairs: a *speech prior* trained on clean speech alone says what speech looks
# like; a *noise model* is fitted to whatever the prior cannot explain (Lin, Leglaive, Girin &
# Alameda-Pineda, "Unsupervised speech enhancement with deep dynamical generative speech and noise models",
# Interspeech 2023). This walkthrough:
#
# 1. writes the noisy-speech model as a Pyro model/guide pair and checks its likelihood is the Itakura-Saito
#    divergence of the observed power to speech-plus-noise variance;
# 2. swaps four noise models — LV, NO, NOLV and the NMF of the RVAE-VEM baseline — on one utterance (U-NA);
# 3. trains a noise model on noisy speech only and enhances in one pass (U-ND), then adapts it (U-NDA).
#
# Set `TUTORIAL_QUICK=1` for the reduced mode the tests run.

# %%
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import pyro
import torch
from pyro import poutine

from ppl_models import plots
from ppl_models.data.spectrogram_dataset import segments_of
from ppl_models.data.synthetic import colored_noise, mix_at_snr, speech_like
from ppl_models.dvae.likelihoods import itakura_saito
from ppl_models.dvae.train import load_prior
from ppl_models.enhancement.enhance import build_system, enhance, noisy_batch, train_noise
from ppl_models.metrics.audio import si_sdr

QUICK = os.environ.get("TUTORIAL_QUICK") == "1"
OUT = Path(os.environ.get("TUTORIAL_OUT", "tutorial_output"))
OUT.mkdir(parents=True, exist_ok=True)
pyro.set_rng_seed(0)
prior = load_prior("rvae-speech")  # a causal RVAE trained on clean LibriSpeech + CMU ARCTIC (see its model card)
clean = speech_like(3.0, seed=3)  # a speech-like utterance the prior never saw
noisy, noise = mix_at_snr(clean, colored_noise(3.0, "white", seed=4), snr_db=0.0)
print(f"noisy input: SI-SDR {si_sdr(clean, noisy):.2f} dB")

# %% [markdown]
# ## 1. The model
#
# In the STFT domain the noisy coefficient is speech plus noise, two independent zero-mean complex Gaussians:
#
# $$z_{1:T} \sim \mathcal N(0, I), \quad s_{ft} \mid z \sim \mathcal{CN}(0, v_{s,ft}(z)), \quad
# b_{ft} \sim \mathcal{CN}(0, v_{b,ft}), \quad x_{ft} = \sqrt{g_t}\, s_{ft} + b_{ft},$$
#
# so $x_{ft} \mid z \sim \mathcal{CN}(0, g_t v_{s,ft} + v_{b,ft})$ and its power $|x_{ft}|^2$ is
# Exponential with that mean. The speech decoder $v_s(z)$ is the prior's, **frozen**. The guide is the prior's
# encoder $q(z \mid x)$, a trainable copy that now reads noisy speech. One trace of the model shows its sites:
# `z` (one site for the whole latent sequence) and `x` (the observed power).

# %%
batch = noisy_batch([noisy], "cpu", segment_frames=None)  # the whole utterance as one sequence, no padding
system = build_system(prior, "lv", batch.power)
trace = poutine.trace(system.model).get_trace(batch.power, batch.mask)
trace.compute_log_prob()
z = trace.nodes["z"]["value"]
variance = pyro.param("gain").detach() * system.speech_variance(z) + system.noise_variance(z, batch.power)
power = batch.power
by_hand = -(itakura_saito(power, variance) + torch.log(power) + 1).sum()
print(f"log p(x | z) from Pyro: {trace.nodes['x']['log_prob_sum']:.1f}; minus the IS divergence + const: {by_hand:.1f}")
complex_gaussian = (-power / variance - torch.log(math.pi * variance)).sum() + power.numel() * math.log(math.pi)
print(f"the complex Gaussian density of x, summed over bins, + T F log(pi): {complex_gaussian:.1f}")

# %% [markdown]
# Fitting the ELBO pulls $g v_s + v_b$ towards the observed power. Nothing in the likelihood says which part
# is speech: the split comes from the prior, which can only produce speech-shaped spectra, and from where
# the fit starts. We start the noise variance at a *noise floor*, the 10 % quantile of the noisy power per
# frequency; started at the mean power, the noise model explains much of the speech as well (one utterance at 5 dB
# in: 7.7 dB out from the mean, 12.7 dB from the floor with the shipped prior, 1.4 / 8.5 dB with our first;
# `benchmarks/enhancement_oracle.py`, CPU, 2026-11-21). The estimate of the clean
# STFT is the posterior mean, the Wiener filter
#
# $$\hat s_{ft} = \mathbb E_{q(z)}\left[\frac{g_t v_{s,ft}}{g_t v_{s,ft} + v_{b,ft}}\right] x_{ft}.$$
#
# ## 2. Four noise models, one flag (U-NA: fit on the utterance itself)
#
# * **LV**: $v_b = f(z_{1:T})$, a bidirectional LSTM over the speech latents;
# * **NO**: $v_{b,t} = f(x_{1:t-1})$, a causal LSTM over the past noisy power;
# * **NOLV**: both;
# * **NMF** (RVAE-VEM): $v_b = WH$ of rank 8, updated in closed form by multiplicative updates after each
#   SVI step on the encoder (after a warm-up with the noise at its floor: a per-frame NMF is quick enough to
#   take the speech before the encoder has adapted).

# %%
ITERATIONS = 100 if QUICK else 200
results = {}
for noise_model in ("lv", "no", "nolv", "nmf"):
    result = enhance([noisy], prior, noise_model=noise_model, iterations=ITERATIONS if noise_model != "nmf" else 150,
                     tol=-np.inf)
    results[noise_model] = result
    print(f"{noise_model:>4}: SI-SDR {si_sdr(clean, result.signals[0]):6.2f} dB after {result.iterations} "
          f"iterations ({result.seconds:.1f} s)")
plots.plot_spectrograms({"noisy (0 dB white noise)": noisy, "LV, U-NA": results["lv"].signals[0],
                         "NMF (RVAE-VEM)": results["nmf"].signals[0], "clean": clean},
                        OUT / "enhancement_tutorial.png")

# %% [markdown]
# ## 3. U-ND: learn the noise from noisy speech only, then enhance in one pass
#
# U-NA pays for a fit on every utterance. If we have a corpus of *noisy* speech — still no clean targets — we
# can train the noise model and the encoder on it once (`ppl-models train-noise`), and then enhancement is a
# forward pass: encoder, decoder, noise network, Wiener filter. U-NDA starts there and adds a few U-NA steps.

# %%
corpus = [mix_at_snr(speech_like(3.0, seed=100 + i), colored_noise(3.0, "white", seed=200 + i),
                     float(np.random.default_rng(i).uniform(-5, 10)))[0] for i in range(8 if QUICK else 32)]
train_segments = segments_of(corpus[1:], 50, 25)
val_segments = segments_of(corpus[:1], 50)
checkpoint = Path(tempfile.mkdtemp()) / "lv-noise.pt"
_, history = train_noise(prior, "lv", train_segments, val_segments, checkpoint, epochs=8 if QUICK else 40,
                         progress=False)
for mode in ("und", "unda"):
    result = enhance([noisy], prior, noise_model="lv", mode=mode, noise_checkpoint=checkpoint)
    print(f"LV {mode}: SI-SDR {si_sdr(clean, result.signals[0]):.2f} dB in {result.seconds:.2f} s "
          f"({result.iterations} iterations on the utterance)")

# %% [markdown]
# ## What to take away
#
# * The enhancement model is a *prior* model plus a *noise* model; swapping the noise model is swapping one
#   module, and U-NA / U-ND / U-NDA are three ways of fitting the same ELBO.
# * U-ND is only as good as its noisy corpus: the reduced mode trains on a handful of utterances for a few
#   epochs and the one-pass result shows it; here, in white noise, U-NDA's few steps on the utterance
#   recover most of U-NA; on real noise (`benchmarks/RESULTS.md`) LV U-NDA stays far behind LV U-NA.
# * The likelihood cannot tell speech from noise; the prior and the initialisation do. The benchmark in
#   `benchmarks/RESULTS.md` shows how far a prior trained on ten minutes of speech carries on real noise.
