# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Tutorial 2 — From VAE to DVAE
#
# A dynamical VAE (DVAE) is a VAE whose latent and observed sequences are linked through time. This
# walkthrough builds the idea in four steps, each checked numerically:
#
# 1. the graphical models, from the frame-wise VAE to SRNN and RVAE;
# 2. the speech likelihood: a complex Gaussian on STFT coefficients is an Exponential on power, and its
#    negative log-density is the Itakura–Saito divergence up to a constant;
# 3. the ELBO, written two ways in Pyro — one site per frame (readable) and one site per sequence (fast) —
#    giving the same number on the same draw;
# 4. training, reconstruction and generation.
#
# Set `TUTORIAL_QUICK=1` for the reduced mode the tests run (seconds).

# %% [markdown]
# ## 1. Graphical models
#
# ```
#  VAE (frame-wise)          SRNN                                   RVAE (causal)
#  z_1   z_2   z_3           x_{t-1} --> h_t --> x_t                z_1   z_2   z_3
#   |     |     |                         |      ^                   |  \  |  \  |
#   v     v     v            z_{t-1} --> z_t ----+                   v   `v   ` v
#  x_1   x_2   x_3                                                  x_1   x_2   x_3
# ```
#
# * VAE: $p(x, z) = \prod_t p(x_t|z_t)\,\mathcal N(z_t; 0, I)$ — no dynamics at all.
# * SRNN: $h_t = \mathrm{LSTM}(h_{t-1}, x_{t-1})$, $z_t \sim p(z_t | z_{t-1}, h_t)$, $x_t \sim p(x_t|z_t, h_t)$.
# * RVAE: $z_t \sim \mathcal N(0, I)$ independent, but $x_t \sim p(x_t | z_{1:t})$ through an LSTM over $z$.
#
# Every model in `ppl_models.dvae` follows one interface: `model`, `guide` (fast), `model_markov`,
# `guide_markov` (readable), `reconstruct`, `generate`.

# %%
import os

import numpy as np
import pyro
import torch
from pyro import poutine
from pyro.infer import SVI, Trace_ELBO

from ppl_models.data.stft import power_spectrogram
from ppl_models.data.synthetic import sample_trajectories, speech_like
from ppl_models.dvae import build_dvae
from ppl_models.dvae.likelihoods import itakura_saito, power_likelihood

QUICK = os.environ.get("TUTORIAL_QUICK") == "1"
OUT = os.environ.get("TUTORIAL_OUT", "tutorial_output")
pyro.set_rng_seed(0)

# %% [markdown]
# ## 2. Why the speech likelihood is the Itakura–Saito divergence
#
# If $X \sim \mathcal{CN}(0, v)$ then $P = |X|^2 \sim \mathrm{Exponential}(\text{mean } v)$ and
# $-\log p(P\,|\,v) = P/v + \log v = d_{IS}(P\,|\,v) + \log P + 1$. Maximising the likelihood of a power
# spectrogram is minimising the IS divergence between the observed power and the modelled variance.

# %%
power = power_spectrogram(speech_like(1.0, seed=3)).double() + 1e-10  # (F, T)
variance = power.mean(1, keepdim=True).expand_as(power)  # a crude model: the average spectrum
neg_log_lik = -power_likelihood(variance.log()).log_prob(power)
print("max |(-log p) - (d_IS + log P + 1)| =",
      float((neg_log_lik - (itakura_saito(power, variance) + power.log() + 1)).abs().max()))
assert torch.allclose(neg_log_lik, itakura_saito(power, variance) + power.log() + 1)

# %% [markdown]
# ## 3. One ELBO, two ways of writing it
#
# The readable form samples one `z_t` per frame inside `pyro.markov`. The fast form samples the whole
# $z_{1:T}$ in one site whose distribution (`LatentSequence`) draws frame by frame but scores all frames at
# once, teacher-forced. On the same draw both give the same $\log p(x, z) - \log q(z|x)$:

# %%
srnn = build_dvae("srnn", "trajectory")
x = torch.as_tensor(sample_trajectories(8, seed=0))  # (B=8, T=60, 4) boxes
z = poutine.trace(srnn.guide).get_trace(x).nodes["z"]["value"].detach()


def log_joint(fn, values):
    return poutine.trace(poutine.condition(fn, data=values)).get_trace(x).log_prob_sum()


fast = log_joint(srnn.model, {"z": z}) - log_joint(srnn.guide, {"z": z})
per_frame_values = {f"z_{t}": z[:, t] for t in range(x.shape[1])}
readable = log_joint(srnn.model_markov, per_frame_values) - log_joint(srnn.guide_markov, per_frame_values)
print(f"ELBO on this draw: fast {fast.item():.4f}, per-frame {readable.item():.4f}")
assert torch.allclose(fast, readable, rtol=1e-5)

# %% [markdown]
# ## 4. Training: does dynamics help?
#
# We fit a frame-wise VAE and an SRNN to the synthetic trajectories with the same budget and compare the
# ELBO per sequence on held-out trajectories. The SRNN knows where a box was a frame ago; the VAE does not.

# %%
train = torch.as_tensor(sample_trajectories(128 if QUICK else 1024, seed=1))
test = torch.as_tensor(sample_trajectories(64, seed=2))
steps = 150 if QUICK else 1500
results = {}
for name in ("vae", "srnn"):
    pyro.clear_param_store()
    dvae = build_dvae(name, "trajectory", hidden=32, rnn_dim=16).adapt_to(train)  # standardised inputs, as train-prior
    svi = SVI(dvae.model, dvae.guide, pyro.optim.ClippedAdam({"lr": 3e-3}), Trace_ELBO())
    for step in range(steps):
        batch = train[torch.randint(len(train), (32,))]
        svi.step(batch, annealing=min(1.0, (step + 1) / (steps / 5)))  # KL warm-up
    held_out = -np.mean([svi.evaluate_loss(test) for _ in range(5)]) / len(test)
    results[name] = (dvae, held_out)
    print(f"{name}: held-out ELBO per sequence {held_out:.1f}")
assert results["srnn"][1] > results["vae"][1]

# %% [markdown]
# Reconstruction goes through the encoder's mean path and the decoder; generation runs the prior forward.
# An SRNN trained with teacher forcing only sees true past boxes during training, so at generation, where it
# reads its own outputs, it may drift — the reason for scheduled sampling.

# %%
from ppl_models.plots import plot_trajectories  # noqa: E402

srnn = results["srnn"][0]
error = (srnn.reconstruct(test) - test).abs().mean().item()
print(f"SRNN mean absolute reconstruction error: {error:.4f} (box coordinates in [0, 1])")
plot_trajectories(srnn.generate(60, num=8).numpy(), f"{OUT}/srnn_generated.png",
                  title="Trajectories generated by the SRNN prior")
plot_trajectories(srnn.reconstruct(test[:6]).numpy(), f"{OUT}/srnn_reconstructed.png",
                  title="Held-out trajectories reconstructed by the SRNN")
print(f"figures in {OUT}/")

# %% [markdown]
# ## 5. A speech prior from ten minutes of speech
#
# The same code trains the shipped `rvae-speech` on real speech (`ppl-models train-prior --kind speech`; its
# model card has the command). Three lessons from doing it on a small corpus, measured in
# `benchmarks/RESULTS.md` by resynthesising unseen speakers through the prior:
#
# * a prior that only learns the *spectral envelope* scores about 0-1 dB SI-SDR: the envelope is easy, the
#   harmonics of the voice (peaks every f0 Hz) are what carries the rest. Widening the decoder's MLP from 128
#   to 512 units (`--hidden 512`) was the largest gain (+1.9 dB);
# * with 42 voices the prior overfits them (its validation loss stops improving early); playing each
#   utterance at seven speeds (`--speed-perturb 0.85,...,1.15`, pitch and formants move together) gives it
#   more voices to generalise from (+0.5 dB at equal training time, 2.76 dB in all). The DVAE papers' 9 dB
#   comes from 25 hours of speech;
# * with so few voices the *latent size* is the bottleneck: a 16-D code learnt from them carries little of a
#   new voice, a 64-D one much more (`benchmarks/latent_capacity.py`). The same RVAE with `--z-dim 64`,
#   shipped as `rvae-speech-z64`, resynthesises unseen speakers at 8.66 dB. `--init PRIOR` continues training
#   from a trained prior (after a first run from scratch, three such stages at ever lower learning rates),
#   or fine-tunes one on your own recordings. That is how today's `rvae-speech` was made: the 16-D prior
#   above, trained 5 more minutes on a GPU on the 152 speakers of all the clean speech we have (4.7 dB). The
#   KL weight (`--beta`: 1, 0.1 or the reference's 0.01) made no difference there; the voices did. As a
#   yardstick, the authors' own WSJ0 priors (`ppl-models import-prior`) score 5.7-6.2 dB on the same unseen
#   speakers. A wider latent is not free: it also resynthesises *noise*
#   well, so as the speech model of an enhancer (tutorial 6) it explains part of the noise as speech when the
#   noise dominates.
