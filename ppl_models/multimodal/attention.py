r"""Attention mixtures for sensor fusion (Guo 2019, "Latent variable algorithms for multimodal learning and
sensor fusion", arXiv 1904.10450, sec. 4, eq. 13-20).

M sensors x^1..x^M, a label y_t per frame, and the index m_t of the expert that explains it:

    m_t ~ Categorical(softmax g(x^{1..M}))            the gate: attention over sensors
    y_t | m_t = m ~ p(y_t | f_m(x^m))                 expert m sees sensor m only
    p(y_t | x) = sum_m  g_m(x) p(y_t | f_m(x^m))      (eq. 13), m enumerated exactly

        x^1 ... x^M ----> g -----> m_t
         |        |                 |
         v        v                 v
        f_1 ...  f_M  ----------->  y_t          plates: sequences (N) x time (T)

The variant says how far back g and f_m look (:mod:`ppl_models.multimodal.experts`): ``cam`` frame t only
(conditional attention mixture, eq. 17), ``mam`` recurrent states h'_{t-1}, h^m_{t-1} (Markov attention
mixture, eq. 16), ``ram`` a causal dilated convolution over x^m_{t-30..t} (recurrent attention mixture,
eq. 15). ``concat`` (one network on all sensors, no mixture) and ``expert:NAME`` (one sensor alone) are the
baselines, written as a one-expert mixture so that every model shares one code path; they are frame-wise
unless given another ``encoder``, so that each mixture can be compared with baselines of the same memory.

Training maximises log p(y | x) with SVI: the guide is empty because m is the only latent and
``TraceEnum_ELBO`` sums it out, so the ELBO *is* the log-likelihood. The posterior responsibilities
p(m_t | y_t, x) = g_m p(y_t | f_m) / sum_m' g_m' p(y_t | f_m') from ``compute_marginals`` are the E-step of the
EM in the paper's appendix.

Experts that stay experts. With a free gate that sees every sensor, the likelihood has a degenerate optimum:
one expert becomes a constant "y = 0", another a constant "y = 1", and the gate alone classifies — the
attention then says nothing about which sensor to trust. ``expert_weight`` kappa adds each expert's own
log-likelihood, ``pyro.factor`` kappa sum_m log p(y | f_m(x^m)), so that every expert remains a classifier
of its sensor; kappa = 0 is the paper's pure maximum likelihood (an ablation in benchmarks/RESULTS.md).

A gate that reads its experts (``gate_sees_experts``): g(x^{1..M}, f_1(x^1), ..., f_M(x^M)), the experts'
outputs detached, so that the weights can follow each expert's confidence frame by frame (trust the expert
that is sure when the other hesitates) while the gate never shapes the experts. The mixture stays eq. 13 and
stays online. Fitted on the experts' training outputs such a gate learns that every expert is always right;
with stacked fitting (``fusion.fit(..., stack=K)``) it reads out-of-fold outputs instead.

A gate that sees evidence of failure (``gate_evidence``): g(x^{1..M}, e^1, .., e^M), e^m_t causal running
statistics of sensor m's own stream (energy, frame-to-frame change, spread inside a frame, over a few frames;
:mod:`~ppl_models.multimodal.evidence`): a flat line or a burst of motion noise shows there at once, whatever
the experts make of it. The statistics read frames up to t: the mixture stays online. ``evidence_snr`` adds
each sensor's minimum-statistics signal-to-floor estimate (opt-in, ``*+evidence+snr``).

Marks of failure (``failure_marks`` epsilon, training only). Where the training data knows that sensor m fails
(``corrupted_<name>`` in the file: a lead off, noise above the speech), the mark o_{t,m} = 1 is one more
observation of the enumerated index: a frame marked failing for sensor m is explained by expert m with relative
odds epsilon,

    p(y_t, o_t | x) proportional to  sum_m  g_m(x) epsilon^{o_{t,m}} p(y_t | f_m(x^m)),

a ``pyro.factor`` of o_{t,m_t} log epsilon beside the enumerated m_t. Because g is the prior of m_t, the gate
learns to look away from a sensor where it fails, from the same exact likelihood; a frame with every sensor
marked, or none, is unchanged. At prediction nothing is marked: the gate must see the failure in its inputs.

Co-learning (eq. 18-20): the first ``colearn_units`` hidden units of every expert are pulled towards their
mean over experts, a ``pyro.factor`` of -lambda_m sum_t ||h^m_{t,1:n} - mean_m' h^m'_{t,1:n}||^2, so that the
experts share a representation and a corrupted sensor's expert is held close to the others.
"""

from __future__ import annotations

import math

import pyro
import pyro.distributions as dist
import torch
from pyro.infer import TraceEnum_ELBO
from pyro.ops.indexing import Vindex
from torch import nn
from torch.nn.functional import softplus

from ppl_models.multimodal.evidence import causal_statistics, evidence_width
from ppl_models.multimodal.experts import Expert, Gate

VARIANTS = {"cam": "frame", "mam": "recurrent", "ram": "conv"}
TARGETS = ("bernoulli", "gaussian")


def expert_likelihood(params: torch.Tensor, target: str) -> dist.Distribution:
    """p(y_t | expert) from a head's output (..., 1) (Bernoulli logit) or (..., 2) (Gaussian loc, scale)."""
    if target == "bernoulli":
        return dist.Bernoulli(logits=params[..., 0])
    return dist.Normal(params[..., 0], softplus(params[..., 1]) + 1e-3)


def expert_mean(params: torch.Tensor, target: str) -> torch.Tensor:
    """E[y_t | expert] from a head's output: P(y_t = 1) for a Bernoulli target, the mean for a Gaussian one."""
    return torch.sigmoid(params[..., 0]) if target == "bernoulli" else params[..., 0]


def expert_opinions(params: torch.Tensor, target: str) -> torch.Tensor:
    """What a gate that reads its experts sees, (N, T, E, 1|2) -> (N, T, E * (1|2)), as wide as the experts'
    outputs: each expert's P(y_t = 1) for a binary target (bounded, unlike its logit), its mean and log-scale
    for a Gaussian one."""
    if target == "bernoulli":
        return torch.sigmoid(params[..., 0])
    scale = softplus(params[..., 1]) + 1e-3
    return torch.cat([params[..., 0], scale.log()], -1)


def experts_alone_factor(params: torch.Tensor, y: torch.Tensor | None, target: str, weight: float) -> None:
    """``pyro.factor`` kappa sum_{n,t,m} log p(y_nt | f_m(x^m)): every expert also a classifier of its own
    (params (N, T, M, 1|2)); nothing when kappa = 0, y is unobserved or there is a single expert."""
    if weight and y is not None and params.shape[2] > 1:
        pyro.factor("experts_alone", weight * expert_likelihood(params, target).log_prob(y[..., None]).sum())


class AttentionMixture(nn.Module):
    """A gated mixture of per-sensor experts. ``sensors`` maps each sensor name to its width D, in the order
    the inputs come (sorted names, by the file contract)."""

    max_plate_nesting = 2

    def __init__(self, sensors: dict[str, int], variant: str = "cam", hidden: int = 32, target: str = "bernoulli",
                 colearn: float | dict[str, float] = 0.0, colearn_units: int = 8, expert_weight: float = 1.0,
                 encoder: str | None = None, gate_sees_experts: bool = False, gate_evidence: bool = False,
                 evidence_snr: bool = False, failure_marks: float = 0.0):
        super().__init__()
        self.sensor_names = list(sensors)
        kind, inputs = self._experts_of(variant, sensors)
        if encoder is not None:
            if variant in VARIANTS and encoder != kind:
                raise ValueError(f"model {variant!r} has {kind} encoders by definition; encoder= is for the "
                                 f"concat and expert:NAME baselines")
            kind = encoder
        if target not in TARGETS:
            raise ValueError(f"target must be one of {', '.join(TARGETS)}, got {target!r}")
        self.variant, self.target, self.inputs = variant, target, inputs
        self.experts = nn.ModuleList(Expert(kind, sum(sensors[n] for n in names), hidden, target) for names in inputs)
        if gate_sees_experts and len(inputs) < 2:
            raise ValueError(f"gate_sees_experts needs a gate; model {variant!r} has one expert")
        if gate_evidence and len(inputs) < 2:
            raise ValueError(f"gate_evidence needs a gate; model {variant!r} has one expert")
        if evidence_snr and not gate_evidence:
            raise ValueError("evidence_snr adds to the gate's evidence: it needs gate_evidence")
        self.gate_sees_experts, self.gate_evidence, self.evidence_snr = gate_sees_experts, gate_evidence, evidence_snr
        if failure_marks and (len(inputs) < 2 or not 0 < failure_marks < 1):
            raise ValueError(f"failure_marks is epsilon in (0, 1) for a mixture with a gate (0: off); got "
                             f"{failure_marks} for model {variant!r}")
        self.failure_marks = failure_marks
        opinions = len(inputs) * self.experts[0].head.out_features if gate_sees_experts else 0
        gate_in = sum(sensors.values()) + opinions + (evidence_width(len(sensors), snr=evidence_snr)
                                                            if gate_evidence else 0)
        self.gate = Gate(kind, gate_in, hidden, len(inputs)) if len(inputs) > 1 else None
        weights = colearn if isinstance(colearn, dict) else {n: colearn for n in self.sensor_names}
        if colearn and len(inputs) < 2:
            raise ValueError(f"co-learning needs several experts; model {variant!r} has one")
        if colearn and not 0 < colearn_units <= hidden:
            raise ValueError(f"colearn_units must be in 1..hidden={hidden}, got {colearn_units}")
        self.register_buffer("colearn", torch.tensor([float(weights.get(n, 0.0)) for n in self.sensor_names]))
        self.colearn_units, self.expert_weight = colearn_units, expert_weight

    @staticmethod
    def _experts_of(variant: str, sensors: dict[str, int]) -> tuple[str, list[list[str]]]:
        """(encoder kind, the sensors each expert sees)."""
        names = list(sensors)
        if variant in VARIANTS:
            return VARIANTS[variant], [[n] for n in names]
        if variant == "concat":
            return "frame", [names]
        if variant.startswith("expert:"):
            name = variant.split(":", 1)[1]
            if name not in sensors:
                raise ValueError(f"--model {variant}: no sensor {name!r}; sensors are {', '.join(names)}")
            return "frame", [[name]]
        raise ValueError(f"model must be one of cam, mam, ram, concat or expert:NAME, got {variant!r}")

    # ------------------------------------------------------------------------------------- networks
    def expert_outputs(self, xs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        """(expert hidden units (N, T, E, H), expert outputs (N, T, E, 1|2)), each expert on its sensors."""
        by_name = dict(zip(self.sensor_names, xs))
        hidden, params = zip(*(f(torch.cat([by_name[n] for n in names], -1))
                               for f, names in zip(self.experts, self.inputs)))
        return torch.stack(hidden, 2), torch.stack(params, 2)

    def forward(self, xs: tuple[torch.Tensor, ...], expert_params: torch.Tensor | None = None):
        """(gate log-weights (N, T, E), expert outputs (N, T, E, 1|2), expert hidden units (N, T, E, H)).
        ``expert_params`` (N, T, E, 1|2), if given, stand in for the experts' outputs (stacked fitting feeds
        the gate cross-fitted ones); the hidden units are then None."""
        if expert_params is not None:
            hidden, params = None, expert_params.detach()
        else:
            hidden, params = self.expert_outputs(xs)
        N, T = xs[0].shape[:2]
        if self.gate is None:
            log_w = xs[0].new_zeros(N, T, 1)
        else:
            opinions = (expert_opinions(params.detach(), self.target),) if self.gate_sees_experts else ()
            evidence = tuple(causal_statistics(x, snr=self.evidence_snr) for x in xs) if self.gate_evidence else ()
            log_w = torch.log_softmax(self.gate(torch.cat(xs + opinions + evidence, -1)), -1)
        return log_w, params, hidden

    def colearning_penalty(self, hidden: torch.Tensor) -> torch.Tensor:
        """sum_m lambda_m sum_{b,t} ||h^m_{1:n} - mean_m' h^m'_{1:n}||^2 (eq. 18-20), hidden (N, T, M, H)."""
        shared = hidden[..., : self.colearn_units]
        spread = ((shared - shared.mean(2, keepdim=True)) ** 2).sum(-1)  # (N, T, M)
        return (spread.sum((0, 1)) * self.colearn).sum()

    # --------------------------------------------------------------------------------- model / guide
    def model(self, xs: tuple[torch.Tensor, ...], y: torch.Tensor | None = None,
              expert_params: torch.Tensor | None = None, failing: torch.Tensor | None = None):
        """xs: one (N, T, D_m) tensor per sensor; y (N, T) labels (None: sample them); ``expert_params``: see
        ``forward``; ``failing`` (N, T, M) the marks o_{t,m} in sensor order (used when ``failure_marks`` > 0)."""
        pyro.module("attention_mixture", self)
        log_w, params, hidden = self(xs, expert_params)
        if self.colearn.any() and hidden is not None:
            pyro.factor("colearn", -self.colearning_penalty(hidden))
        experts_alone_factor(params, y, self.target, self.expert_weight)
        N, T = log_w.shape[:2]
        with pyro.plate("sequences", N, dim=-2), pyro.plate("time", T, dim=-1):
            m = pyro.sample("m", dist.Categorical(logits=log_w), infer={"enumerate": "parallel"})
            if self.failure_marks and failing is not None:  # every mixture with a gate: expert m sees sensor m
                pyro.factor("failure_marks", Vindex(failing)[..., m] * math.log(self.failure_marks))
            # m is (M, 1, 1) when enumerated: Vindex picks expert m's output for every (n, t).
            pyro.sample("y", expert_likelihood(Vindex(params)[..., m, :], self.target), obs=y)

    def guide(self, xs, y=None, expert_params=None, failing=None):
        """Empty: m is enumerated in the model, so there is nothing left to approximate."""

    # ----------------------------------------------------------------------------------- inference
    @torch.no_grad()
    def predict(self, xs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        """Online prediction E[y_t | x_{1:t}] (N, T) (= P(y_t = 1) for a binary target) and the attention
        weights (N, T, M) (one column per sensor, sorted names; one-hot/uniform for the one-expert baselines)."""
        log_w, params, _ = self(xs)
        w = log_w.exp()
        return (w * expert_mean(params, self.target)).sum(-1), self.attention_per_sensor(w)

    def attention_per_sensor(self, w: torch.Tensor) -> torch.Tensor:
        """Map the experts' weights (N, T, E) to one weight per sensor (N, T, M): an expert seeing several
        sensors spreads its weight evenly over them."""
        share = torch.zeros(len(self.inputs), len(self.sensor_names), device=w.device)
        for e, names in enumerate(self.inputs):
            for n in names:
                share[e, self.sensor_names.index(n)] = 1.0 / len(names)
        return w @ share

    @torch.no_grad()
    def responsibilities(self, xs: tuple[torch.Tensor, ...], y: torch.Tensor,
                         failing: torch.Tensor | None = None) -> torch.Tensor:
        """p(m_t | y_t, o_t, x) (N, T, M), by ``TraceEnum_ELBO.compute_marginals``: the EM's E-step."""
        marginals = TraceEnum_ELBO(max_plate_nesting=self.max_plate_nesting).compute_marginals(
            self.model, self.guide, xs, y, None, failing)
        M = len(self.inputs)
        support = torch.arange(M, device=y.device).reshape(M, 1, 1)
        return marginals["m"].log_prob(support).exp().permute(1, 2, 0)
