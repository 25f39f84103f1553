# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Tutorial 7 — From RNN DVAEs to Transformer DVAEs
#
# Tutorial 2 built the recurrent DVAEs (SRNN, RVAE): every temporal dependency is an LSTM, so a training
# step runs the recurrences frame after frame. HiT-DVAE (Bie et al., 2022) and its lightweight variant
# LigHT-DVAE (Lin et al., ICASSP 2023) change two things:
#
# 1. the dependencies on the past are **causal-masked attention** (LigHT keeps one LSTM beside it), so with
#    the data as the past (**teacher forcing**) every frame of a training step is computed at once;
# 2. a **sequence-level latent w** sits above the frame latents z_t: one code per utterance for what does not
#    change within it (speaker, timbre, recording).
#
# This tutorial checks each piece numerically — the masks (perturb the future, nothing moves), teacher
# forcing (fast ELBO = per-frame ELBO on the same draw), the closed-form KL of w — then trains a tiny
# LigHT-DVAE beside an RVAE on synthetic "voices" and looks at what w learnt.
# Set `TUTORIAL_QUICK=1` for the reduced mode the tests run (seconds).

# %% [markdown]
# ## 1. The graphical model
#
# ```
#  SRNN (tutorial 2)                        HiT-DVAE / LigHT-DVAE
#  x_{t-1} --> h_t --> x_t                   w ----------+-----------+
#               |      ^                     |           v           v
#  z_{t-1} --> z_t ----+                     |   z_{<t} --> z_t --> s_t
#                                            +-- s_{<t} ---^---------^
# ```
#
# Generative: $w \sim \mathcal N(0, I)$; $z_t \sim p(z_t \mid s_{<t}, z_{<t}, w)$; $|s_t|^2 \sim
# \mathrm{Exp}(1/v_t)$ with $v_t = v(s_{<t}, z_{\le t}, w)$. Inference: $q(w \mid s_{1:T})$ from the mean over
# frames of a bidirectional Transformer encoder, and $q(z_t \mid s_{1:T}, w)$ from the encoder's state at t
# and w — independent across t given (s, w), so the guide has no loop over frames either. The ELBO:
#
# $$\mathcal L = -\mathrm{KL}(q(w|s)\,\|\,p(w)) - \sum_t \mathbb E_q\big[d_{IS}(|s_t|^2, v_t) +
# \mathrm{KL}(q(z_t|s, w)\,\|\,p(z_t|s_{<t}, z_{<t}, w))\big] + \text{const}.$$
#
# Where an SRNN state h_t summarises $s_{<t}$ in a vector, attention lets frame t look straight back at every
# earlier frame.

# %%
import os

import numpy as np
import pyro
import torch
from pyro import poutine
from pyro.infer import SVI, Trace_ELBO

from ppl_models.dvae import build_dvae
from ppl_models.dvae.attention import alibi
from ppl_models.plots import plt, save_figure

QUICK = os.environ.get("TUTORIAL_QUICK") == "1"
OUT = os.environ.get("TUTORIAL_OUT", "tutorial_output")
pyro.set_rng_seed(0)
torch.set_num_threads(1)

# %% [markdown]
# ## 2. Synthetic voices
#
# A toy power spectrogram of 32 bins with one thing that is fixed per sequence — the voice: harmonic spacing
# (pitch) and spectral tilt — and things that change per frame: syllables switching on and off and a
# formant wandering across the bins. The observed power is a draw $|s_t|^2 = v_t \cdot \mathrm{Exp}(1)$, as
# the model assumes.

# %%
F, T = 32, 40


def voices(n, seed):
    """(n, T, F) power spectrograms and their (n,) harmonic spacings (bins): the per-sequence factor."""
    g = torch.Generator().manual_seed(seed)
    k = torch.arange(F, dtype=torch.float32)
    spacing = 2.5 + 3.5 * torch.rand(n, generator=g)
    tilt = -0.12 * torch.rand(n, 1, 1, generator=g)
    harmonics = torch.arange(1, 12, dtype=torch.float32)
    comb = torch.exp(-0.5 * ((k - spacing[:, None, None] * harmonics[:, None]) / 0.6) ** 2).sum(1)  # (n, F)
    on = (torch.rand(n, T // 5, generator=g) < 0.7).float().repeat_interleave(5, dim=1)  # syllables of 5 frames
    centre = 16 + torch.cumsum(2 * torch.randn(n, T, generator=g), 1).clamp(-12, 12)  # a wandering formant
    formant = torch.exp(-0.5 * ((k - centre[..., None]) / 5) ** 2)
    variance = 1e-3 + on[..., None] * formant * comb[:, None] * torch.exp(tilt * k)
    return variance * torch.distributions.Exponential(1.0).sample(variance.shape), spacing


train, train_spacing = voices(256 if QUICK else 2048, seed=1)
test, test_spacing = voices(64, seed=2)
print(f"training spectrograms {tuple(train.shape)}, held-out {tuple(test.shape)}")

# %% [markdown]
# ## 3. Causal masks: perturb the future, nothing before it moves
#
# Every attention layer of the generative side adds a bias to its scores: $-\infty$ above the diagonal (frame t
# may not read frames after t) and, instead of position encodings, ALiBi's $-m_h |i - j|$ (each head h
# prefers recent frames at its own rate, and the model reads sequences longer than it was trained on). Below,
# white is masked.

# %%
bias = alibi(heads=4, length=12, causal=True)
fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
for ax, h in zip(axes, (0, 1)):
    image = ax.imshow(bias[h].masked_fill(torch.isinf(bias[h]), float("nan")), cmap="viridis",
                      vmin=float(bias[0][~torch.isinf(bias[0])].min()), vmax=0)
    ax.set(title=f"head {h + 1}, slope {2 ** (-8 * (h + 1) / 4):.3g}", xlabel="key frame j",
           ylabel="query frame i")
    ax.grid(False)
fig.colorbar(image, ax=axes, label="bias added to the attention score")
save_figure(fig, f"{OUT}/alibi_causal_bias.png")

# %% [markdown]
# The check: the decoder's output at frame t reads $s_{<t}$, $z_{\le t}$ and w. Change every $s_{t'}$ with
# $t' \ge t_0$ and every $z_{t'}$ with $t' > t_0$: frames up to $t_0$ must not move, and frame $t_0 + 1$ must
# (it reads $s_{t_0}$).

# %%
light = build_dvae("light-dvae", "speech", x_dim=F, z_dim=4, hidden=32, w_dim=4).adapt_to(train)
x = test[:2]
w, z = light.encode_w(x), light.encode(x)
t0 = 20
x2, z2 = x.clone(), z.clone()
x2[:, t0:] = x2[:, t0:] * 10 + 1
z2[:, t0 + 1:] += 3
with torch.no_grad():
    change = (light.decoder_params(z2, x2, w) - light.decoder_params(z, x, w)).abs().amax((0, 2))
print("largest change of the decoder output per frame:", np.round(change.numpy(), 3))
assert change[:t0 + 1].max() == 0 and change[t0 + 1:].min() > 0

# %% [markdown]
# ## 4. Teacher forcing: the whole sequence in one call
#
# The fast model has one Pyro site for $z_{1:T}$ whose log-density is the prior network run once on the whole
# (drawn) z — causal masks make frame t of that single call see only $z_{<t}$ and $s_{<t}$. The readable
# `model_markov` has one site per frame and recomputes each frame from its own prefix (quadratic in T). On the
# same draw of (w, z) they are the same number:

# %%
guide = poutine.trace(light.guide).get_trace(x)
w_draw, z_draw = guide.nodes["w"]["value"], guide.nodes["z"]["value"]


def log_weight(model, guide, values):
    joint = poutine.trace(poutine.condition(model, data=values)).get_trace(x).log_prob_sum()
    return joint - poutine.trace(poutine.condition(guide, data=values)).get_trace(x).log_prob_sum()


fast = log_weight(light.model, light.guide, {"w": w_draw, "z": z_draw})
per_frame = log_weight(light.model_markov, light.guide_markov,
                       {"w": w_draw, **{f"z_{t}": z_draw[:, t] for t in range(T)}})
print(f"log p(x, w, z) - log q(w, z | x) on one draw: fast {fast.item():.3f}, per frame {per_frame.item():.3f}")
assert torch.allclose(fast, per_frame, rtol=1e-4)

# %% [markdown]
# This is what buys a Transformer DVAE its training speed without scheduled sampling: no frame loop anywhere in
# a training step (three parallel passes: encoder, prior, decoder). Generation, where the past is the model's
# own output, still goes frame by frame (`generate`).
#
# ## 5. The sequence latent w
#
# $q(w \mid s) = \mathcal N(\mu, \mathrm{diag}\,\sigma^2)$ against $p(w) = \mathcal N(0, I)$ has a closed-form
# KL, $\sum_k (\mu_k^2 + \sigma_k^2 - 1)/2 - \log \sigma_k$; a Monte-Carlo estimate from draws of w agrees:

# %%
(w_loc, w_scale), _ = light.posteriors(x)
q_w, p_w = torch.distributions.Normal(w_loc, w_scale), torch.distributions.Normal(0.0, 1.0)
draws = q_w.sample((20_000,))
monte_carlo = (q_w.log_prob(draws) - p_w.log_prob(draws)).sum(-1).mean(0)
print("KL(q(w|s) || p(w)): closed form", np.round(light.kl_w(x).detach().numpy(), 4),
      "Monte Carlo", np.round(monte_carlo.detach().numpy(), 4))
assert torch.allclose(light.kl_w(x), monte_carlo, atol=0.05)

# %% [markdown]
# ## 6. A tiny training, against an RVAE
#
# The same budget for a LigHT-DVAE and a causal RVAE (tutorial 2's model: no w, a decoder that does not read
# the past spectrum). Both start from the data's standardisation (`adapt_to`), as `train-prior` does.

# %%
steps = 150 if QUICK else 1500
models = {"light-dvae": light,
          "rvae": build_dvae("rvae", "speech", x_dim=F, z_dim=4, hidden=32, rnn_dim=32).adapt_to(train)}
held_out = {}
for name, dvae in models.items():
    pyro.clear_param_store()
    svi = SVI(dvae.model, dvae.guide, pyro.optim.ClippedAdam({"lr": 3e-3}), Trace_ELBO())
    for step in range(steps):
        batch = train[torch.randint(len(train), (32,))]
        svi.step(batch, annealing=min(1.0, (step + 1) / (steps / 5)))  # KL warm-up
    held_out[name] = -np.mean([svi.evaluate_loss(test) for _ in range(5)]) / test[..., 0].numel()
    print(f"{name}: held-out ELBO per frame {held_out[name]:.2f}")
assert held_out["light-dvae"] > held_out["rvae"]

# %% [markdown]
# What did w learn? The per-sequence factor of the data is the harmonic spacing. Regress it linearly on w
# (fit on the training sequences, scored on the held-out ones), against the same regression on the RVAE's
# z averaged over the frames (the simple alternative: a sequence summary of a model without w):


# %%
def r_squared(features_train, features_test):
    design = lambda f: torch.cat([f, torch.ones(len(f), 1)], 1)  # noqa: E731
    coef = torch.linalg.lstsq(design(features_train), train_spacing[:, None]).solution
    residual = test_spacing - (design(features_test) @ coef)[:, 0]
    return float(1 - residual.var() / test_spacing.var())


r2_w = r_squared(light.encode_w(train), light.encode_w(test))
rvae = models["rvae"]
r2_z = r_squared(rvae.encode(train).mean(1), rvae.encode(test).mean(1))
print(f"harmonic spacing from w: R^2 = {r2_w:.2f}; from the RVAE's mean z: R^2 = {r2_z:.2f}")

# %% [markdown]
# And the swap: decode a held-out sequence A (its z, its own past) with its own w and with the w of a
# sequence B of another spacing. `benchmarks/w_swap.py` does this on real held-out speakers and measures how
# far the spectral envelope and the pitch move toward B's.

# %%
a, b = int(test_spacing.argmin()), int(test_spacing.argmax())
x_a = test[a:a + 1]
own = light.reconstruct(x_a)[0]
swapped = light.reconstruct(x_a, w=light.encode_w(test[b:b + 1]))[0]
panels = {f"A (spacing {test_spacing[a]:.1f} bins)": x_a[0], f"B (spacing {test_spacing[b]:.1f} bins)": test[b],
          "A decoded with w_A": own, "A decoded with w_B": swapped}
fig, axes = plt.subplots(1, 4, figsize=(13, 3.2))
for ax, (title, power) in zip(axes, panels.items()):
    ax.imshow(torch.log(power.T + 1e-4), origin="lower", aspect="auto", cmap="magma")
    ax.set(title=title, xlabel="frame")
    ax.grid(False)
axes[0].set_ylabel("frequency bin")
fig.tight_layout()
save_figure(fig, f"{OUT}/w_swap_synthetic.png")
print(f"figures in {OUT}/")

# %% [markdown]
# ## 7. On real speech
#
# `ppl-models train-prior --kind speech --model light-dvae` (or `hit-dvae`) trains the same models on speech
# (the GPU recipe: `--time-budget` keeps the best validation epoch), `ppl-models resynth --prior` uses
# them, and three benchmarks compare them with the recurrent DVAEs: `benchmarks/resynthesis.py` (held-out
# speakers), `benchmarks/generation.py` (spectrograms generated from each prior, phase by Griffin-Lim, scored
# by a Fréchet distance of MFCC-segment features to real held-out speech) and `benchmarks/w_swap.py` (what w
# carries across speakers).
