"""Train and run a sensor-fusion model on :class:`~ppl_models.data.fusion_files.FusionData`: the one place
that turns a model name into a model, arrays into tensors, and probabilities into accuracy and F1.

Models: ``cam``, ``mam``, ``ram`` (attention mixtures), ``mme`` (Markov mixture of experts), and the
baselines ``concat`` and ``expert:NAME``; ``cam+evidence``, ``mam+evidence`` and
``ram+evidence`` give the gate the sensors' causal running statistics (:mod:`~ppl_models.multimodal.evidence`);
``mam+evidence+snr`` (opt-in) adds their minimum-statistics signal-to-floor estimates; a name ending in
``+marks`` (``mam+evidence+marks``, the ``fuse`` default) also trains the gate on the training file's ``corrupted_<name>`` marks
(``failure_marks`` = ``MARK_ODDS``, see :mod:`~ppl_models.multimodal.attention`). Every model is trained
by SVI on the exact log-likelihood (``TraceEnum_ELBO``, empty guide; plus kappa times each expert's own
log-likelihood, see :mod:`~ppl_models.multimodal.attention`), with a tenth of the training sequences held
out for early stopping.
"""

from __future__ import annotations

import warnings
from copy import deepcopy

import numpy as np
import pyro
import torch
from pyro.infer import Trace_ELBO, TraceEnum_ELBO

from ppl_models.data.fusion_files import FusionData
from ppl_models.infer.svi import History, make_optimizer, train_svi
from ppl_models.multimodal.attention import AttentionMixture, expert_mean
from ppl_models.multimodal.markov_experts import MarkovMixtureOfExperts

MARK_ODDS = 0.1  # epsilon of the +marks models: a frame marked failing for a sensor is 10x less its expert's


def build_model(name: str, data: FusionData, hidden: int = 32, target: str = "bernoulli", colearn: float = 0.0,
                expert_weight: float = 1.0, encoder: str | None = None,
                gate_sees_experts: bool = False, gate_evidence: bool = False, evidence_snr: bool = False,
                failure_marks: float = 0.0) -> AttentionMixture | MarkovMixtureOfExperts:
    """The model ``name`` for the sensors of ``data`` (their widths, in sorted order); ``encoder`` (frame,
    recurrent, conv) sets the memory of the concat and expert:NAME baselines; ``gate_sees_experts`` feeds the
    experts' outputs to the gate besides the sensors (cam, mam, ram); ``gate_evidence`` the sensors' causal
    running statistics (:mod:`~ppl_models.multimodal.evidence`), ``evidence_snr`` (or a name ending in
    ``+evidence+snr``, opt-in) their signal-to-floor estimates too; ``failure_marks`` (or a name ending in
    ``+marks``) teaches the gate the training file's marks of failure."""
    sensors = {k: v.shape[-1] for k, v in data.sensors.items()}
    if name.endswith("+marks"):
        name, failure_marks = name[:-len("+marks")], MARK_ODDS
    if name.endswith("+evidence+snr"):
        name, evidence_snr = name[:-len("+snr")], True
    if name.endswith("+evidence"):  # the gate also reads the sensors' statistics
        name, gate_evidence = name[:-len("+evidence")], True
    if name == "mme":
        if colearn or encoder not in (None, "frame") or gate_sees_experts or gate_evidence or failure_marks:
            raise ValueError("--colearn, --encoder, --gate-sees-experts, --gate-evidence and +marks do not apply "
                             "to mme (frame-wise experts)")
        return MarkovMixtureOfExperts(sensors, hidden, target, expert_weight=expert_weight)
    return AttentionMixture(sensors, name, hidden, target, colearn, expert_weight=expert_weight, encoder=encoder,
                            gate_sees_experts=gate_sees_experts, gate_evidence=gate_evidence,
                            evidence_snr=evidence_snr, failure_marks=failure_marks)


def to_tensors(data: FusionData, device="cpu") -> tuple[tuple[torch.Tensor, ...], torch.Tensor | None]:
    xs = tuple(torch.as_tensor(x, device=device) for x in data.sensors.values())
    return xs, None if data.y is None else torch.as_tensor(data.y, device=device)


def fit(model, train: FusionData, epochs: int = 60, batch_size: int = 32, lr: float = 3e-3, device="cpu",
        patience: int | None = 10, seed: int = 0, progress: bool = True, stack: int = 0) -> History:
    """Maximise log p(y | x) over ``train`` by SVI, early-stopping on a held-out tenth of the sequences (whole
    groups when the data has them). Returns the training history (of the gate stage when stacking).

    ``stack`` = K >= 2 (mixtures with a gate): stacked fitting by K-fold cross-fitting (Wolpert's stacked
    generalisation, 1992). A gate fitted on the experts' own training data learns how good they are *there*;
    an expert that overfits (say audio under noise) looks more reliable than it is on new data. So the
    training sequences are dealt into K folds (whole groups, e.g. speakers); a copy of the model trained on
    the other K - 1 folds gives each fold's *out-of-fold* expert outputs. The model is then trained on every
    sequence as usual, and its gate alone refitted with the out-of-fold outputs standing in for the experts'
    (``AttentionMixture.model(..., expert_params=...)``): the attention follows each expert's accuracy on
    sequences it never saw, while the final experts still learn from all of them. Cost: K + 1 fits.
    """
    if train.y is None:
        raise ValueError("training data needs labels 'y'")
    if getattr(model, "failure_marks", 0) and train.failing is None:
        warnings.warn("the training data has no corrupted_<name> marks of failure (export-fusion writes them): the "
                      "gate learns from the labels alone, as without +marks", stacklevel=2)
    if stack and (not isinstance(model, AttentionMixture) or model.gate is None):
        raise ValueError("stack needs an attention mixture with a gate (cam, mam, ram)")
    if stack and stack < 2:
        raise ValueError(f"stack is a number of folds >= 2 (or 0: off), got {stack}")
    model.to(device)
    options = dict(epochs=epochs, batch_size=batch_size, lr=lr, device=device, patience=patience, seed=seed,
                   progress=progress)
    out_of_fold = cross_fitted_expert_outputs(model, train, stack, **options) if stack else None
    history = _fit_svi(model, train, **options)
    return _fit_svi(model, train, expert_params=out_of_fold, **options) if stack else history


def cross_fitted_expert_outputs(model: AttentionMixture, train: FusionData, folds: int, seed: int = 0,
                                **options) -> torch.Tensor:
    """(N, T, E, 1|2): each training sequence's expert outputs from a copy of ``model`` (as it is now, before
    training) trained on the folds that do not hold it."""
    fold = train.folds(folds, seed + 1)
    xs, _ = to_tensors(train, options["device"])
    parts = []
    for k in range(folds):
        with pyro.get_param_store().scope():  # the copy registers under the model's name: keep them apart
            copy = deepcopy(model)
            _fit_svi(copy, train.subset(fold != k), seed=seed, **options)
            with torch.no_grad():
                parts.append(copy.expert_outputs(tuple(x[fold == k] for x in xs))[1])
    outputs = parts[0].new_empty(xs[0].shape[:2] + parts[0].shape[2:])
    for k, part in enumerate(parts):
        outputs[torch.as_tensor(fold == k, device=outputs.device)] = part
    return outputs


def _fit_svi(model, train: FusionData, epochs, batch_size, lr, device, patience, seed, progress,
             expert_params: torch.Tensor | None = None) -> History:
    """SVI on ``train``; ``expert_params`` (N, T, E, 1|2), if given, stand in for the experts (the gate stage
    of stacking), held out and batched with their sequences; so do the marks of failure of a model that reads
    them."""
    held = train.held_out(seed, patience is not None)
    parts = [np.flatnonzero(~held), np.flatnonzero(held)] if held is not None else [np.arange(train.shape[0])]
    marks = train.failure_marks() if getattr(model, "failure_marks", 0) else None
    marks = None if marks is None else torch.as_tensor(marks, device=device)

    def arguments(index) -> tuple:
        xs, y = to_tensors(train.subset(index), device)
        index = torch.as_tensor(index, device=device)
        args = [xs, y, *(None if a is None else a[index] for a in (expert_params, marks))]
        while args[-1] is None:  # the Markov mixture takes (xs, y) only
            args.pop()
        return tuple(args)

    fit_args = arguments(parts[0])

    def batches(epoch: int):
        perm = torch.as_tensor(np.random.default_rng(seed + epoch).permutation(len(fit_args[1])), device=device)
        return [(tuple(x[i] for x in fit_args[0]), *(None if a is None else a[i] for a in fit_args[1:]))
                for i in perm.split(batch_size)]

    val = [arguments(parts[1])] if held is not None else None
    # The Markov mixture's training site is a DiscreteHMM: its forward algorithm already sums m out.
    loss = TraceEnum_ELBO(max_plate_nesting=2) if isinstance(model, AttentionMixture) else Trace_ELBO()
    return train_svi(model.model, model.guide, batches, epochs=epochs, val_batches=val,
                     loss=loss, optimizer=make_optimizer(lr=lr),
                     patience=patience if val else None, name=f"fusion-{model.variant}", progress=progress)


def predict(model, data: FusionData, device="cpu", batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(P(y_t = 1 | x_{1:t}) (N, T), attention weights per sensor (N, T, M)) as numpy arrays."""
    xs, _ = to_tensors(data, device)
    model.to(device)  # no dropout or batch-norm anywhere: train and eval modes compute the same
    outs = [model.predict(tuple(x[i:i + batch_size] for x in xs)) for i in range(0, data.shape[0], batch_size)]
    return (torch.cat([p for p, _ in outs]).cpu().numpy(), torch.cat([a for _, a in outs]).cpu().numpy())


@torch.no_grad()
def expert_predictions(model, data: FusionData, device="cpu") -> np.ndarray:
    """Each expert's own E[y_t | x^m_{1:t}] (N, T, E): what the gate chooses among."""
    xs, _ = to_tensors(data, device)
    return expert_mean(model.to(device).expert_outputs(xs)[1], model.target).cpu().numpy()


def binary_scores(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Frame accuracy and F1 of the decisions p > threshold against labels y."""
    decision, truth = np.asarray(p) > threshold, np.asarray(y) > 0.5
    tp = float(np.sum(decision & truth))
    precision_denominator, recall_denominator = decision.sum(), truth.sum()
    f1 = 2 * tp / (precision_denominator + recall_denominator) if precision_denominator + recall_denominator else 1.0
    return {"accuracy": float(np.mean(decision == truth)), "f1": float(f1)}
