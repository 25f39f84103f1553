# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Tutorial 4 — Which sensor to trust
#
# Three sensors watch the same on/off process. One is sharp but fails in bursts (it then outputs pure noise),
# one is steady, one is weak. A frame-by-frame decision should follow the sharp sensor while it works and
# move to the others while it fails. A *mixture of experts* says this as a generative model: each sensor has
# an expert, a gate chooses which expert explains the frame, and the choice is a discrete latent variable
# that Pyro sums out exactly. This walkthrough (Guo 2019, "Latent variable algorithms for multimodal learning
# and sensor fusion", arXiv 1904.10450, sec. 4):
#
# 1. writes the mixture as a Pyro model with an enumerated expert index and checks the likelihood by hand;
# 2. shows that the posterior responsibilities from `compute_marginals` are Bayes' rule — the E-step of EM —
#    and that the SVI gradient *is* the EM gradient (Fisher's identity), checked with autograd;
# 3. moves from per-frame experts to the conditional, Markov and recurrent attention mixtures and to a Markov
#    chain over the trusted sensor, by changing one name;
# 4. looks at the gate leaving the failing sensor, and at the degenerate optimum that a free gate invites.
#
# Set `TUTORIAL_QUICK=1` for the reduced mode the tests run (under a minute).

# %%
import os

import numpy as np
import pyro
import torch
from pyro.infer import TraceEnum_ELBO

from ppl_models import plots
from ppl_models.data.synthetic.fusion import synthetic_fusion
from ppl_models.multimodal.attention import AttentionMixture, expert_likelihood
from ppl_models.multimodal.fusion import binary_scores, build_model, expert_predictions, fit, predict, to_tensors

QUICK = os.environ.get("TUTORIAL_QUICK") == "1"
OUT = os.environ.get("TUTORIAL_OUT", "tutorial_output")
os.makedirs(OUT, exist_ok=True)
EPOCHS = 30 if QUICK else 60
pyro.set_rng_seed(0)
train, train_failing = synthetic_fusion(128 if QUICK else 256, 100, seed=0)
train.failing = {"sharp": train_failing.astype(np.float32)}  # where sharp fails in training: the +marks models read it
test, failing = synthetic_fusion(32 if QUICK else 64, 100, seed=1)
print(f"sensors {test.names}; train {train.shape}, test {test.shape}; "
      f"the sharp sensor fails in {failing.mean():.0%} of the test frames")

# %% [markdown]
# ## 1. The model
#
# ```
#   x^1 ... x^M ----> gate g -----> m_t              m_t ~ Categorical(softmax g(x_t))
#    |         |                     |
#    v         v                     v
#   f_1  ...  f_M  --------------->  y_t             y_t | m_t = m ~ Bernoulli(sigmoid f_m(x^m_t))
# ```
#
# $$p(y_t \mid x_t) = \sum_{m=1}^{M} g_m(x_t)\; p\big(y_t \mid f_m(x^m_t)\big)$$
#
# In Pyro the sum is one sample site marked for parallel enumeration; `Vindex` picks the chosen expert's
# output for every frame at once (`AttentionMixture.model`):
#
# ```python
# with pyro.plate("sequences", N, dim=-2), pyro.plate("time", T, dim=-1):
#     m = pyro.sample("m", Categorical(logits=log_w), infer={"enumerate": "parallel"})
#     pyro.sample("y", Bernoulli(logits=Vindex(params)[..., m, :][..., 0]), obs=y)
# ```
#
# The guide is empty: m is the only latent and it is summed out, so the ELBO *is* log p(y | x). Check it
# against the sum written by hand. (`expert_weight=0` switches off a term we meet in section 4.)

# %%
cam = AttentionMixture({k: v.shape[-1] for k, v in train.sensors.items()}, "cam", expert_weight=0.0)
xs, y = to_tensors(test.subset(slice(0, 4)))
log_w, params, _ = cam(xs)
by_hand = torch.logsumexp(log_w + expert_likelihood(params, "bernoulli").log_prob(y[..., None]), -1).sum()
enumerated = -TraceEnum_ELBO(max_plate_nesting=2).loss(cam.model, cam.guide, xs, y)
print(f"enumerated ELBO {enumerated:.4f}  hand-written log-likelihood {by_hand.item():.4f}")
assert abs(enumerated - by_hand.item()) < 1e-3 * abs(by_hand.item())

# %% [markdown]
# ## 2. Responsibilities, EM and SVI
#
# EM for a mixture alternates the E-step, the posterior responsibility of each expert for each frame,
#
# $$r_{tm} = p(m_t = m \mid y_t, x_t) = \frac{g_m(x_t)\, p(y_t \mid f_m)}{\sum_{m'} g_{m'}(x_t)\, p(y_t \mid f_{m'})},$$
#
# and an M-step that fits gate and experts to $\sum_{t,m} r_{tm} \log g_m\, p(y_t \mid f_m)$. Pyro gives the
# E-step from the same model with `TraceEnum_ELBO.compute_marginals`:

# %%
resp = cam.responsibilities(xs, y)  # (N, T, M), via compute_marginals
bayes = torch.softmax(log_w + expert_likelihood(params, "bernoulli").log_prob(y[..., None]), -1)
print(f"largest gap between compute_marginals and Bayes' rule: {(resp - bayes).abs().max():.2e}")
assert torch.allclose(resp, bayes.detach(), atol=1e-5)

# %% [markdown]
# And SVI on the enumerated ELBO follows the EM direction exactly. Fisher's identity says
# $\nabla \log p(y \mid x) = \sum_{t,m} r_{tm}\, \nabla \log\big(g_m\, p(y_t \mid f_m)\big)$ with $r$ held
# fixed: the gradient SVI takes equals the gradient of EM's expected complete-data log-likelihood at the
# current parameters. Autograd checks it on every parameter:

# %%
params_list = list(cam.parameters())
marginal_grad = torch.autograd.grad(-TraceEnum_ELBO(max_plate_nesting=2).differentiable_loss(
    cam.model, cam.guide, xs, y), params_list)
log_w, params, _ = cam(xs)
complete = (resp * (log_w + expert_likelihood(params, "bernoulli").log_prob(y[..., None]))).sum()
em_grad = torch.autograd.grad(complete, params_list)
gap = max((a - b).abs().max().item() for a, b in zip(marginal_grad, em_grad))
print(f"largest difference between the SVI gradient and the EM gradient: {gap:.2e}")
assert gap < 1e-4

# %% [markdown]
# ## 3. From experts to attention mixtures — swapping is a name
#
# `build_model(name, data)` returns a model; `fit` trains it by SVI on the enumerated likelihood. The
# variants differ in how far back the gate and the experts look, and all decide online (frame t uses
# inputs up to t only — a test changes the future and checks the past does not move):
#
# | name | gate and experts see | paper |
# |---|---|---|
# | `expert:NAME` | one sensor, frame t | unimodal baseline |
# | `concat` | all sensors, one network, no mixture | early fusion |
# | `cam` | frame t | conditional attention mixture, eq. 17 |
# | `mam` | a GRU state over frames 1..t | Markov attention mixture, eq. 16 |
# | `ram` | a causal dilated convolution over t-30..t | recurrent attention mixture, eq. 15 |
# | `mme` | frame t, and m_t is a Markov chain with a learned transition matrix | Markov mixture of experts |
# | `cam+evidence`, `mam+evidence` | as `cam` / `mam`, the gate also reading each sensor's running statistics | |
# | `cam+evidence+marks`, `mam+evidence+marks` | the same, trained also on marks of where a sensor fails | `ppl-models fuse` default: `mam+evidence+marks` |
#
# The `+evidence` gates (`ppl_models/multimodal/evidence.py`) read, besides the sensors, causal running
# statistics of each sensor's own stream over the last few frames: its energy, its frame-to-frame change and
# the spread inside a frame. A sensor that fails — a flat line when a lead falls off, large swings and spikes
# under motion — shows there at once, whatever its expert makes of it, and the statistics at t read frames up
# to t only, so the mixture stays online.
#
# The `+marks` models also learn from the training data's marks of failure (`corrupted_<name>` in a fusion
# file; here the frames where `sharp` fails in training). A mark o_{t,m} = 1 is one more observation of the
# enumerated index: p(y_t, o_t | x) ∝ Σ_m g_m(x) ε^{o_tm} p(y_t | f_m(x^m)), ε = 0.1, a `pyro.factor` beside
# m_t. The gate is the prior of m_t, so the same exact likelihood teaches it to look away from a failing
# sensor; at prediction nothing is marked, and the gate must see the failure in its inputs.

# %%
names = ["expert:sharp", "expert:steady", "expert:weak", "concat", "cam", "cam+evidence", "cam+evidence+marks", "mme"]
names += [] if QUICK else ["mam", "mam+evidence", "mam+evidence+marks", "ram"]
models, table, sharp = {}, {}, test.names.index("sharp")
print(f"{'model':>18} {'accuracy':>9} {'F1':>6}   attention on 'sharp': failing / working frames")
for name in names:
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    models[name] = model = build_model(name, train)
    fit(model, train, epochs=EPOCHS, progress=False)
    p, attention = predict(model, test)
    s = binary_scores(test.y, p)
    a = attention[..., sharp]
    print(f"{name:>18} {s['accuracy']:>9.3f} {s['f1']:>6.3f}   {a[failing].mean():.2f} / {a[~failing].mean():.2f}")
    table[name] = {"f1": s["f1"], "attention_failing": a[failing].mean()}
best_single = max(row["f1"] for name, row in table.items() if name.startswith("expert:"))
assert table["cam+evidence"]["f1"] > best_single and table["cam+evidence"]["attention_failing"] < 0.2
assert table["cam+evidence+marks"]["attention_failing"] < table["cam+evidence"]["attention_failing"]

# %% [markdown]
# Every mixture beats every single sensor, and the attention on `sharp` collapses while it fails. The gate
# that reads the sensors' running statistics leaves `sharp` further (in the quick mode: 0.09 of the weight
# while it fails, against 0.21 for `cam`) and is the best frame-wise model without marks (F1 0.931 against
# 0.911). Taught by the marks it leaves `sharp` almost entirely (0.01 in both modes); its F1 moves a little
# either way (quick mode 0.924 against 0.931, full size 0.943 against 0.936), as on the real sets: where a
# sensor fails it is worse, not always useless, and the marked gate no longer uses what is left. On real beat
# detection (PhysioNet ECG + pulse wave, one sensor replaced by a flat line or motion noise in 30 % of the test
# frames; `benchmarks/RESULTS.md`) the default `mam+evidence+marks` gives the failing ECG 0.01 of the weight
# and reaches F1 94.5 % where the best single sensor reaches 90.6 % (`mam+evidence` 93.3 %). The figure shows
# one test sequence: the label, the fused probability, each expert's own opinion, and the
# gate's weights (shaded: the frames where `sharp` fails).

# %%
p, attention = predict(models["cam"], test)
experts = expert_predictions(models["cam"], test.subset(slice(0, 1)))[0]
plots.plot_fusion(test.y[0], p[0], attention[0], test.names, f"{OUT}/attention_cam.png", experts=experts,
                  corrupted={"sharp": failing[0]}, title="conditional attention mixture")
print(f"figure: {OUT}/attention_cam.png")

# %% [markdown]
# The Markov mixture of experts has one more thing to show: with the labels, the smoothed posterior
# $p(m_t \mid y_{1:T}, x)$ — computed by `compute_marginals` on its readable form, one `pyro.sample` per frame
# inside `pyro.markov` — says which sensor explained each frame, looking at the whole sequence.

# %%
mme = models["mme"]
xs1, y1 = to_tensors(test.subset(slice(0, 8)))
smoothed = mme.responsibilities(xs1, y1).numpy()  # (8, T, M)
print(f"smoothed responsibility of 'sharp': {smoothed[..., sharp][failing[:8]].mean():.2f} while failing, "
      f"{smoothed[..., sharp][~failing[:8]].mean():.2f} otherwise")
print("learned transition matrix (row: m_{t-1}):\n", torch.softmax(mme.trans_logits, -1).detach().numpy().round(2))

# %% [markdown]
# ## 4. A degenerate optimum, and co-learning
#
# The gate sees *every* sensor. Nothing in the likelihood stops the experts from giving up their sensors:
# one expert can become a constant "y = 1", another a constant "y = 0", and the gate — a classifier of its
# own — picks between them. The likelihood is just as good; the attention then means nothing. The zoo adds
# each expert's own log-likelihood, a `pyro.factor` weighted by kappa (`expert_weight`, default 1), so every
# expert stays a classifier of its sensor. The Markov mixture falls into the degenerate optimum at once. Train
# it with kappa = 0 (the paper's pure likelihood) and with kappa = 1, and score each expert on its own:

# %%
for kappa in (0.0, 1.0):
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    model = build_model("mme", train, expert_weight=kappa)
    fit(model, train, epochs=EPOCHS, progress=False)
    opinions = expert_predictions(model, test)  # (N, T, M)
    accuracy = [binary_scores(test.y, opinions[..., m])["accuracy"] for m in range(opinions.shape[-1])]
    print(f"kappa = {kappa}: each expert's own accuracy {np.round(accuracy, 2)}, "
          f"fused {binary_scores(test.y, predict(model, test)[0])['accuracy']:.3f}")

# %% [markdown]
# With kappa = 0 two of the experts fall to chance (about 0.5): they have become constant "y = 0" / "y = 1"
# votes, and the chain over m has turned into a hidden Markov model of the *label* driven by the gate. It
# even predicts better here, because it exploits how long the on/off segments last, but its posterior over
# m no longer says anything about the sensors. With kappa = 1 every expert keeps its sensor's accuracy and
# the posterior over m means "which sensor explains this frame". Choose kappa for the question you ask.
#
# Co-learning (eq. 18-20) is the opposite pressure: the first hidden units of every expert are pulled towards
# their mean across experts, another `pyro.factor`, so that the experts share a representation. It is one
# argument (`colearn=λ`); on the benchmarks (benchmarks/RESULTS.md) it changes little, as in the paper,
# where it lowered accuracy.

# %%
pyro.clear_param_store()
pyro.set_rng_seed(0)
colearned = build_model("cam", train, colearn=0.05)
fit(colearned, train, epochs=EPOCHS, progress=False)
print(f"cam + co-learning: accuracy {binary_scores(test.y, predict(colearned, test)[0])['accuracy']:.3f}")

# %% [markdown]
# ## 5. Where the gate learns: stacking
#
# The gate learns how far to trust each expert *on the sequences the experts were trained on*. An expert
# that overfits — audio under noise, here — looks better there than on new speakers, and the gate trusts it
# too much. Stacked generalisation (Wolpert, 1992) shows the gate the experts as they behave on *unseen*
# data: the training sequences are dealt into K folds, a copy of the model trained on the other K - 1 folds
# gives each fold's expert outputs, the model is trained on everything as usual, and then its gate alone is
# refitted with those out-of-fold outputs standing in for the experts' (`fit(..., stack=3)`,
# `ppl-models fuse --stack 3`; the model's `expert_params` argument is the stand-in). When the file says which
# recording each sequence comes from (an optional `group` array, the speaker in the speech-activity sets), a
# fold keeps a recording whole, so the gate sees the experts on speakers they never heard. A gate can still
# not learn from training data how an expert fails on a kind of noise it has never met (benchmarks/RESULTS.md).
# In the synthetic data of this tutorial no sensor overfits, so the stacked gate should land close to the
# plain one:

# %%
pyro.clear_param_store()
pyro.set_rng_seed(0)
stacked = build_model("cam", train)
fit(stacked, train, epochs=EPOCHS, progress=False, stack=3)
print(f"cam + stacking: accuracy {binary_scores(test.y, predict(stacked, test)[0])['accuracy']:.3f}")

# %% [markdown]
# ### A gate that reads its experts
#
# Stacking in Wolpert's own form goes one step further: the second-level learner *reads* the first-level
# predictions. With `gate_sees_experts=True` (`ppl-models fuse --gate-sees-experts`) the gate's input is the
# sensors *and* each expert's output (its P(y_t = 1); mean and log-scale for a Gaussian target), detached, so
# the gate weighs the experts' opinions without shaping them. It can then follow an expert's confidence frame
# by frame: when audio says "surely speech" and the image hesitates, trust audio — a rule that depends on the
# experts' outputs, which a gate reading only the raw sensors would have to re-learn from scratch. Trained
# on the experts' *training* outputs it learns that every expert is always right, so use it with stacking:
# the out-of-fold outputs show how confident each expert is when it is wrong. In benchmarks/RESULTS.md the
# stacked Markov mixture with this gate was the best model of the first table (beat detection: 92.4 % with
# the ECG failing, best sensor 90.4 %); the Markov mixture whose gate reads each sensor's running statistics
# (`mam+evidence`, above) beats it without stacking (F1 93.3 there), and `fuse`'s default, the same taught by
# the marks, more (94.5).

# %%
pyro.clear_param_store()
pyro.set_rng_seed(0)
reader = build_model("cam", train, gate_sees_experts=True)
fit(reader, train, epochs=EPOCHS, progress=False, stack=3)
print(f"cam + stacking, gate reads experts: accuracy {binary_scores(test.y, predict(reader, test)[0])['accuracy']:.3f}")
