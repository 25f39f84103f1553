"""Train and run the imputation models on :class:`~ppl_models.data.fusion_files.FusionData` with gaps: the one
place that turns a model name into a model, arrays into standardised tensors, and predictions into scores.

Models (``IMPUTERS``): ``mvrnn`` (shared + private latents), ``concat`` (one latent over all sensors),
``poe`` (one latent, product-of-experts guide), ``unimodal`` (a VRNN of the target sensor alone: what its
prior knows without the other sensors), ``hmm`` (multimodal HMM, exact) and ``lds`` (its linear-Gaussian
twin, exact): these impute by filtering, the prediction at frame t uses observed frames up to t. ``ridge``
(:mod:`~ppl_models.multimodal.ridge`) is the simple baseline: a closed-form linear regression of the target on
the other sensors' frames t-k .. t+k (offline: it reads k frames ahead); ``ridge+mvrnn`` (the ``impute``
default) and ``ridge+lds`` add a model of what it leaves (:mod:`~ppl_models.multimodal.residual`);
``ridge+mvrnn-own`` also reads the target's residual where the target is seen (around a gap).

The neural models train with random *modality dropout* (``drop``): each training sequence hides each sensor
whole with probability ``drop``, or a gap of 10-50 % of its frames with the same probability, from the
networks, while the ELBO still scores the hidden frames: the models learn to predict a sensor from the
others — what imputation asks of them.
"""

from __future__ import annotations

import numpy as np
import scipy.stats
import torch
from pyro.infer import Trace_ELBO

from ppl_models.data.fusion_files import FusionData
from ppl_models.infer.svi import History, make_optimizer, train_svi
from ppl_models.multimodal.multimodal_hmm import MultimodalHMM
from ppl_models.multimodal.multimodal_lds import MultimodalLDS
from ppl_models.multimodal.mvrnn import MultimodalVRNN
from ppl_models.multimodal.residual import ResidualImputer
from ppl_models.multimodal.ridge import RidgeImputer

IMPUTERS = ["mvrnn", "concat", "poe", "unimodal", "hmm", "lds", "ridge", "ridge+mvrnn", "ridge+lds", "ridge+mvrnn-own"]


class Standardiser:
    """Per-sensor, per-dimension mean and std of the observed training frames; ``tensors`` applies them."""

    def __init__(self, data: FusionData):
        self.loc, self.scale = {}, {}
        for m in data.names:
            frames = data.sensors[m][data.mask(m) > 0]
            if len(frames) < 2:
                raise ValueError(f"sensor {m!r} has fewer than two observed training frames")
            self.loc[m], self.scale[m] = frames.mean(0), np.maximum(frames.std(0), 1e-6)

    def tensors(self, data: FusionData, device="cpu") -> tuple[dict, dict]:
        """Standardised frames (zeros where missing) and masks, as dicts of tensors."""
        x = {m: torch.as_tensor((data.sensors[m] - self.loc[m]) / self.scale[m] * data.mask(m)[..., None],
                                dtype=torch.float32, device=device) for m in data.names}
        return x, {m: torch.as_tensor(data.mask(m), device=device) for m in data.names}


def build_imputer(name: str, data: FusionData, target: str | None = None, hidden: int = 32, z_shared: int = 4,
                  z_private: int = 2, states: tuple[int, int] = (4, 3)):
    """The model ``name`` for the sensors of ``data``; ``unimodal`` models ``target`` alone."""
    widths = {m: v.shape[-1] for m, v in data.sensors.items()}
    if name == "mvrnn":
        return MultimodalVRNN(widths, z_shared, z_private, hidden, hidden)
    if name in ("concat", "poe"):
        guide = "poe" if name == "poe" else "mlp"
        return MultimodalVRNN(widths, z_shared + z_private * len(widths), 0, hidden, hidden, guide=guide)
    if name == "unimodal":
        if target not in widths:
            raise ValueError(f"unimodal needs a target sensor among {sorted(widths)}, got {target!r}")
        return MultimodalVRNN({target: widths[target]}, 0, z_shared + z_private, hidden, hidden)
    if name == "hmm":
        return MultimodalHMM(widths, *states)
    if name == "lds":
        return MultimodalLDS(widths, z_shared, z_private)
    if name.startswith("ridge"):
        if target not in widths:
            raise ValueError(f"{name} needs a target sensor among {sorted(widths)}, got {target!r}")
        if name == "ridge":
            return RidgeImputer(widths, target)
        inner = name.partition("+")[2]
        own = inner.endswith("-own")
        inner = inner.removesuffix("-own")
        if inner in ("mvrnn", "lds"):
            inner_data = FusionData({m: np.zeros((1, 1, d), np.float32)
                                     for m, d in ResidualImputer.inner_widths(widths, target).items()})
            return ResidualImputer(widths, target, build_imputer(inner, inner_data, target, hidden, z_shared,
                                                                 z_private, states), reads_target=own)
    raise ValueError(f"unknown model {name!r}: choose one of {IMPUTERS}")


def modality_dropout(mask: dict, drop: float, generator: torch.Generator | None = None) -> dict:
    """A copy of the (B, T) masks with, per sequence and sensor, the whole sensor hidden with probability
    ``drop`` or else a random gap of 10-50 % of the frames hidden with probability ``drop``; never every
    sensor of a sequence hidden whole."""
    out, names = {m: v.clone() for m, v in mask.items()}, sorted(mask)
    B, T = mask[names[0]].shape
    device = mask[names[0]].device
    hidden_whole = torch.zeros(B, dtype=torch.long, device=device)
    for m in names:
        u = torch.rand(B, 3, generator=generator).to(device)
        whole = (u[:, 0] < drop) & (hidden_whole < len(names) - 1)
        hidden_whole += whole.long()
        length = (T * (0.1 + 0.4 * u[:, 1])).long().clamp_min(1)
        start = ((T - length) * u[:, 2]).long()
        t = torch.arange(T, device=device)
        gap = (u[:, 0] >= drop) & (u[:, 0] < 2 * drop)
        in_gap = gap[:, None] & (t >= start[:, None]) & (t < (start + length)[:, None])
        out[m][whole[:, None] | in_gap] = 0
    return out


def _restrict(model, x: dict, mask: dict) -> tuple[dict, dict]:
    """The sensors a model reads (the unimodal one reads only its own)."""
    return {m: x[m] for m in model.names}, {m: mask[m] for m in model.names}


def fit(model, train: FusionData, epochs: int = 60, batch_size: int = 32, lr: float = 3e-3, drop: float = 0.25,
        device="cpu", patience: int | None = 10, seed: int = 0, progress: bool = True,
        hide: str | None = None) -> tuple[History, Standardiser]:
    """Maximise the ELBO (neural models) or the exact likelihood (hmm, lds) on ``train`` by SVI, early-stopping
    on a held-out tenth of the sequences; returns the history and the standardiser the model was fitted with.
    ``hide``: a sensor the neural networks never read in training (still scored). ``ridge`` is fitted in closed
    form; ``ridge+<inner>`` fits ridge, then ``inner`` on the residual with the target hidden (in every sequence;
    with ``-own``, under the modality dropout only)."""
    standard = Standardiser(train)
    model.to(device)
    fit_part, val_part = train.hold_out(seed, patience is not None)
    x, mask = _restrict(model, *standard.tensors(fit_part, device))
    if isinstance(model, (RidgeImputer, ResidualImputer)):  # closed form; the held-out part chooses the context
        ridge = model if isinstance(model, RidgeImputer) else model.ridge
        ridge.fit_closed_form(x, mask, standard.tensors(val_part, device) if val_part is not None else None)
        if isinstance(model, RidgeImputer):
            return History(), standard
        inner = model.inner_data(*standard.tensors(train, device))
        history, model.inner_standard = fit(model.inner, inner, epochs, batch_size, lr, drop, device, patience, seed,
                                            progress, hide=None if model.reads_target else model.target)
        return history, standard
    if hasattr(model, "init_from"):
        model.init_from(x, mask)
    neural = isinstance(model, MultimodalVRNN)
    generator = torch.Generator().manual_seed(seed)

    def batches(epoch: int):
        perm = torch.as_tensor(np.random.default_rng(seed + epoch).permutation(len(mask[model.names[0]])))
        for i in perm.split(batch_size):
            i = i.to(device)
            m = {k: v[i] for k, v in mask.items()}
            if neural:  # hidden from the networks, still scored
                seen = modality_dropout(m, drop, generator)
                if hide is not None:
                    seen[hide] = torch.zeros_like(seen[hide])
                yield {k: v[i] for k, v in x.items()}, m, seen
            else:
                yield {k: v[i] for k, v in x.items()}, m

    val = [_restrict(model, *standard.tensors(val_part, device))] if val_part is not None else None
    history = train_svi(model.model, model.guide, lambda e: list(batches(e)), epochs=epochs, val_batches=val,
                        loss=Trace_ELBO(), optimizer=make_optimizer(lr=lr), patience=patience if val else None,
                        name=f"impute-{model.variant}", progress=progress)
    return history, standard


@torch.no_grad()
def impute(model, standard: Standardiser, data: FusionData, target: str, device="cpu", num_samples: int = 32,
           batch_size: int = 256, hidden: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Posterior predictive (mean, std) of sensor ``target`` (N, T, D) in data units, its frames ``hidden``
    ((N, T) bool; default: all of them) unseen by the model."""
    if target not in data.names:
        raise ValueError(f"target {target!r} is not a sensor of the data ({data.names})")
    x, mask = _restrict(model, *standard.tensors(data, device))
    shown = torch.zeros_like(mask[target]) if hidden is None else mask[target] * torch.as_tensor(~hidden, device=device)
    mask[target], x[target] = shown, x[target] * shown[..., None]
    means, stds = [], []
    for i in range(0, data.shape[0], batch_size):
        part = {m: v[i:i + batch_size] for m, v in x.items()}, {m: v[i:i + batch_size] for m, v in mask.items()}
        mean, std = model.predictive(*part, num_samples=num_samples)[target]
        means.append(mean.cpu().numpy())
        stds.append(std.cpu().numpy())
    scale = standard.scale[target]
    return np.concatenate(means) * scale + standard.loc[target], np.concatenate(stds) * scale


@torch.no_grad()
def held_out_score(model, standard: Standardiser, data: FusionData, device="cpu", num_samples: int = 8) -> float:
    """Per observed frame and dimension, in standardised units: the exact log-likelihood (hmm, lds) or the ELBO
    (a lower bound on it, averaged over ``num_samples`` draws) of the sensors the model reads."""
    if isinstance(model, (RidgeImputer, ResidualImputer)):
        return float("nan")  # a regression of one sensor: no density of the others
    x, mask = _restrict(model, *standard.tensors(data, device))
    if isinstance(model, MultimodalVRNN):
        total = np.mean([model.elbo(x, mask).sum().item() for _ in range(num_samples)])
    else:
        total = model.log_likelihood(x, mask).sum().item()
    count = sum(float((mask[m].sum() * x[m].shape[-1]).item()) for m in model.names)
    return total / count


def gaussian_crps(truth: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Continuous ranked probability score of N(mean, std^2) at ``truth``, in closed form (Gneiting & Raftery
    2007, eq. 21): std * [u (2 Phi(u) - 1) + 2 phi(u) - 1 / sqrt(pi)], u = (truth - mean) / std. It is
    the integral of (F(y) - 1[y >= truth])^2 over y, in the data's units; for std -> 0 it is |truth - mean|."""
    u = (truth - mean) / std
    return std * (u * (2 * scipy.stats.norm.cdf(u) - 1) + 2 * scipy.stats.norm.pdf(u) - 1 / np.sqrt(np.pi))


def imputation_scores(truth: np.ndarray, mean: np.ndarray, std: np.ndarray, observed: np.ndarray) -> dict:
    """Scores of an imputation over the observed true frames: the RMSE of the imputed mean, the share of true
    values inside mean +- 2 std, and two proper scores of the predictive distribution, read as N(mean, std^2):
    its negative log-density per value (``nll``) and its CRPS (``crps``, data units). RMSE judges the mean
    alone; NLL and CRPS also charge an over- or under-confident std, so they rank probabilistic imputers."""
    keep = observed > 0
    truth, mean, std = truth[keep], mean[keep], np.maximum(std[keep], 1e-6)
    err = mean - truth
    nll = 0.5 * np.log(2 * np.pi * std ** 2) + 0.5 * (err / std) ** 2
    return {"rmse": float(np.sqrt(np.mean(err ** 2))), "coverage": float(np.mean(np.abs(err) <= 2 * std)),
            "nll": float(np.mean(nll)), "crps": float(np.mean(gaussian_crps(truth, mean, std)))}
