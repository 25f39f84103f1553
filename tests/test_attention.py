"""Attention mixtures and the Markov mixture of experts: exact likelihoods, Bayes' rule, causality, and a gate
that learns to leave a sensor while it fails."""

from __future__ import annotations

import math

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import SVI, Trace_ELBO, TraceEnum_ELBO
from pyro.optim import Adam

from ppl_models.data.fusion_files import FusionData
from ppl_models.data.synthetic.fusion import synthetic_fusion
from ppl_models.multimodal.evidence import causal_statistics
from ppl_models.multimodal.attention import AttentionMixture, expert_likelihood
from ppl_models.multimodal.fusion import (binary_scores, build_model, cross_fitted_expert_outputs, fit, predict,
                                          to_tensors)
from ppl_models.multimodal.markov_experts import MarkovMixtureOfExperts

SENSORS = {"a": 3, "b": 2, "c": 4}


def tiny_inputs(N=2, T=5, target="bernoulli", device="cpu", seed=0):
    g = torch.Generator().manual_seed(seed)
    xs = tuple(torch.randn(N, T, d, generator=g).to(device) for d in SENSORS.values())
    y = (torch.rand(N, T, generator=g) > 0.5).float() if target == "bernoulli" else torch.randn(N, T, generator=g)
    return xs, y.to(device)


def elbo(model, xs, y, **kwargs) -> float:
    loss = TraceEnum_ELBO(max_plate_nesting=model.max_plate_nesting)
    return -loss.loss(model.model, model.guide, xs, y, **kwargs)


@pytest.mark.parametrize("variant", ["cam", "mam", "ram"])
@pytest.mark.parametrize("target", ["bernoulli", "gaussian"])
def test_enumerated_likelihood_is_the_mixture_sum(variant, target, device):
    model = AttentionMixture(SENSORS, variant, hidden=8, target=target, expert_weight=0.0).to(device)
    xs, y = tiny_inputs(target=target, device=device)
    log_w, params, _ = model(xs)
    by_hand = 0.0
    for n in range(y.shape[0]):
        for t in range(y.shape[1]):
            terms = [log_w[n, t, m] + expert_likelihood(params[n, t, m], target).log_prob(y[n, t])
                     for m in range(len(SENSORS))]
            by_hand += torch.logsumexp(torch.stack(terms), 0).item()
    assert elbo(model, xs, y) == pytest.approx(by_hand, rel=1e-5)
    # kappa > 0 adds each expert's own log-likelihood, kappa sum_{n,t,m} log p(y_nt | f_m)
    alone = expert_likelihood(params, target).log_prob(y[..., None]).sum().item()
    model.expert_weight = 0.5
    assert elbo(model, xs, y) == pytest.approx(by_hand + 0.5 * alone, rel=1e-5)


def test_responsibilities_follow_bayes_rule(device):
    model = AttentionMixture(SENSORS, "cam", hidden=8).to(device)
    xs, y = tiny_inputs(device=device)
    resp = model.responsibilities(xs, y)
    log_w, params, _ = model(xs)
    joint = log_w + expert_likelihood(params, "bernoulli").log_prob(y[..., None])
    torch.testing.assert_close(resp.sum(-1), torch.ones_like(y))
    torch.testing.assert_close(resp, torch.softmax(joint, -1), rtol=1e-5, atol=1e-6)
    # the posterior differs from the gate's prior wherever the experts disagree about y
    assert (resp - log_w.exp()).abs().max() > 1e-3


def forward_algorithm(trans, params, y):
    """log p(y_{1:T} | x) of the Markov mixture, by the forward recursion written out."""
    emit = expert_likelihood(params, "bernoulli").log_prob(y[..., None])  # (N, T, M)
    log_alpha = trans[:, 0, 0] + emit[:, 0]
    for t in range(1, y.shape[1]):
        log_alpha = torch.logsumexp(log_alpha[:, :, None] + trans[:, t], 1) + emit[:, t]
    return torch.logsumexp(log_alpha, -1).sum()


def test_markov_mixture_readable_fast_and_forward_algorithm_agree(device):
    model = MarkovMixtureOfExperts(SENSORS, hidden=8, expert_weight=0.0).to(device)
    xs, y = tiny_inputs(T=6, device=device)
    trans, params = model(xs)
    by_hand = forward_algorithm(trans, params, y).item()
    fast = -Trace_ELBO().loss(model.model, model.guide, xs, y)
    assert elbo(model, xs, y, readable=True) == pytest.approx(by_hand, rel=1e-5)
    assert fast == pytest.approx(by_hand, rel=1e-5)
    # and it is not the frame-independent mixture: the chain couples the frames
    independent = torch.logsumexp(trans[:, :, 0] + expert_likelihood(params, "bernoulli").log_prob(y[..., None]),
                                  -1).sum().item()
    assert abs(independent - by_hand) > 1e-3


def test_markov_mixture_smoothed_posterior_sums_to_one():
    model = MarkovMixtureOfExperts(SENSORS, hidden=8)
    xs, y = tiny_inputs(T=6)
    resp = model.responsibilities(xs, y)
    assert resp.shape == (2, 6, 3)
    torch.testing.assert_close(resp.sum(-1), torch.ones(2, 6))


@pytest.mark.parametrize("name, options", [("cam", {}), ("mam", {}), ("ram", {}), ("mme", {}), ("concat", {}),
                                           ("mam", {"gate_sees_experts": True}), ("cam", {"gate_evidence": True}),
                                           ("mam", {"gate_evidence": True}),
                                           ("mam", {"gate_evidence": True, "evidence_snr": True}),
                                           ("mam+evidence+snr", {})])
def test_decisions_are_online(name, options):
    """Changing the inputs from frame t0 on leaves every output before t0 unchanged (and changes t0's)."""
    data, _ = synthetic_fusion(4, 40, seed=0)
    model = build_model(name, data, hidden=8, **options)
    xs, _ = to_tensors(data)
    t0 = 25
    changed = tuple(torch.cat([x[:, :t0], x[:, t0:] + 3.0 * torch.randn_like(x[:, t0:])], 1) for x in xs)
    p, a = model.predict(xs)
    p2, a2 = model.predict(changed)
    torch.testing.assert_close(p[:, :t0], p2[:, :t0])
    torch.testing.assert_close(a[:, :t0], a2[:, :t0])
    assert (p[:, t0] - p2[:, t0]).abs().max() > 1e-4


def test_evidence_is_online_and_tells_a_flat_line_and_motion_from_a_working_sensor():
    """The gate's evidence at t reads frames up to t: perturbing frames t0.. leaves every statistic before t0
    unchanged, and changes t0's; a flat line shows as low detail, motion noise as high energy and change."""
    torch.manual_seed(0)
    x = torch.randn(3, 60, 10)
    t0 = 30
    changed = torch.cat([x[:, :t0], x[:, t0:] * 5.0 + 2.0], 1)
    e, e2 = causal_statistics(x), causal_statistics(changed)
    assert e.shape == (3, 60, 6)
    torch.testing.assert_close(e[:, :t0], e2[:, :t0])
    assert (e[:, t0] - e2[:, t0]).abs().min() > 1e-3
    flat = torch.cat([x[:, :t0], torch.full_like(x[:, t0:], 1.5) + 0.01 * torch.randn_like(x[:, t0:])], 1)
    motion = torch.cat([x[:, :t0], 5.0 * torch.randn_like(x[:, t0:])], 1)
    later = slice(t0 + 10, None)
    energy, change, detail = 0, 1, 2  # the fast time constant's three statistics
    assert (causal_statistics(flat)[:, later, detail] < e[:, later, detail] - 3).all()
    assert (causal_statistics(motion)[:, later, energy] > e[:, later, energy] + 2).all()
    assert (causal_statistics(motion)[:, later, change] > e[:, later, change] + 2).all()


def test_signal_to_floor_is_online_and_falls_when_a_noise_floor_rises():
    """snr_t reads frames up to t (perturbing t0.. leaves it unchanged before t0), and on log band energies of
    bursts of signal over a floor it is high over a quiet floor and drops when the floor rises to the bursts."""
    torch.manual_seed(0)
    t = torch.arange(300.0)
    bursts = 3.0 * (torch.sin(2 * torch.pi * t / 40) > 0).float()  # log energy: signal on, signal off
    quiet = bursts[None, :, None] + 0.1 * torch.randn(2, 300, 8)
    loud = torch.cat([quiet[:, :100], torch.maximum(quiet[:, 100:], torch.full_like(quiet[:, 100:], 2.8))], 1)
    s, s2 = causal_statistics(quiet, snr=True)[..., -1], causal_statistics(loud, snr=True)[..., -1]
    assert causal_statistics(quiet, snr=True).shape == (2, 300, 7)
    torch.testing.assert_close(s[:, :100], s2[:, :100])
    assert (s[:, 100] - s2[:, 100]).abs().min() > 1e-3
    on = bursts[240:] > 0  # a floor window (128 frames) after the floor rose
    assert (s[:, 240:][:, on].mean(1) > 2).all() and (s2[:, 240:][:, on] < 0.5).all()


def test_colearning_factor_pulls_the_shared_units_together():
    xs, y = tiny_inputs()
    model = AttentionMixture(SENSORS, "cam", hidden=8, colearn=0.5, colearn_units=3)
    _, _, hidden = model(xs)
    shared = hidden[..., :3]
    by_hand = 0.5 * ((shared - shared.mean(2, keepdim=True)) ** 2).sum()
    trace = pyro.poutine.trace(model.model).get_trace(xs, y)
    assert trace.nodes["colearn"]["fn"].log_factor.item() == pytest.approx(-by_hand.item(), rel=1e-5)


@pytest.mark.slow
def test_gate_leaves_a_failing_sensor_and_fusion_beats_every_sensor():
    pyro.set_rng_seed(0)
    train, _ = synthetic_fusion(128, 100, seed=0)
    test, corrupted = synthetic_fusion(32, 100, seed=1)
    sharp = test.names.index("sharp")
    scores = {}
    for name in ["cam", "expert:sharp", "expert:steady", "expert:weak"]:
        pyro.clear_param_store()
        model = build_model(name, train)
        fit(model, train, epochs=40, progress=False)
        p, attention = predict(model, test)
        scores[name] = binary_scores(test.y, p)["accuracy"]
        if name == "cam":
            on_failure, otherwise = attention[..., sharp][corrupted].mean(), attention[..., sharp][~corrupted].mean()
    assert on_failure < otherwise - 0.2, (on_failure, otherwise)
    best_single = max(v for k, v in scores.items() if k.startswith("expert:"))
    assert scores["cam"] > best_single + 0.03, scores


def overfitting_sensor_data(num_sequences: int, seed: int, frames: int = 20) -> FusionData:
    """An honest sensor (y plus noise, about 80 % accurate alone) and 64-D noise that a frame-wise expert can
    memorise on a small training set: in-sample it looks perfect, on new data it is a coin toss."""
    rng = np.random.default_rng(seed)
    y = (rng.random((num_sequences, frames)) < 0.5).astype(np.float32)
    honest = ((2 * y - 1) * 0.85)[..., None] + rng.standard_normal((num_sequences, frames, 1))
    noise = rng.standard_normal((num_sequences, frames, 64))
    return FusionData({"honest": honest.astype(np.float32), "noise": noise.astype(np.float32)}, y)


def test_the_gate_stage_of_stacking_moves_the_gate_only_and_reads_the_given_expert_outputs():
    pyro.set_rng_seed(0)
    data = overfitting_sensor_data(8, 0)
    model = build_model("cam", data, hidden=8)
    xs, y = to_tensors(data)
    given = torch.randn(*y.shape, 2, 1)  # stand-in expert logits (N, T, E, 1)
    log_w, params, hidden = model(xs, given)
    assert torch.equal(params, given) and hidden is None
    elbo = TraceEnum_ELBO(max_plate_nesting=2)
    by_hand = torch.logsumexp(log_w + dist.Bernoulli(logits=given[..., 0]).log_prob(y[..., None]), -1).sum() \
        + dist.Bernoulli(logits=given[..., 0]).log_prob(y[..., None]).sum()  # + kappa = 1 experts-alone term
    assert torch.allclose(-elbo.differentiable_loss(model.model, model.guide, xs, y, given), by_hand, rtol=1e-5)
    experts_before = {k: v.clone() for k, v in model.experts.state_dict().items()}
    gate_before = {k: v.clone() for k, v in model.gate.state_dict().items()}
    svi = SVI(model.model, model.guide, Adam({"lr": 0.01}), elbo)
    for _ in range(5):
        svi.step(xs, y, given)
    assert all(torch.equal(v, experts_before[k]) for k, v in model.experts.state_dict().items())
    assert not all(torch.equal(v, gate_before[k]) for k, v in model.gate.state_dict().items())
    with pytest.raises(ValueError, match="needs an attention mixture with a gate"):
        fit(build_model("expert:honest", data), data, stack=3)
    with pytest.raises(ValueError, match="number of folds >= 2"):
        fit(model, data, stack=1)


@pytest.mark.parametrize("target", ["bernoulli", "gaussian"])
def test_a_gate_that_reads_the_experts_follows_their_outputs_without_training_them(target, device):
    """With gate_sees_experts the gate's weights change with the experts' outputs (given stand-ins here), yet no
    gradient flows from the gate back into the experts: the gate weighs opinions, it does not shape them."""
    model = AttentionMixture(SENSORS, "mam", hidden=8, target=target, gate_sees_experts=True).to(device)
    xs, y = tiny_inputs(target=target, device=device)
    width = 1 if target == "bernoulli" else 2
    given = torch.randn(*y.shape, len(SENSORS), width, device=device)
    assert not torch.allclose(model(xs, given)[0], model(xs, given + 1.0)[0])
    log_w, params, _ = model(xs)
    expert_weights = list(model.experts.parameters())
    grads = torch.autograd.grad(log_w.sum(), expert_weights, allow_unused=True)
    assert all(g is None or not g.any() for g in grads)
    assert torch.autograd.grad(params.sum(), expert_weights[0])[0].any()  # the experts themselves are live
    with pytest.raises(ValueError, match="needs a gate"):
        AttentionMixture(SENSORS, "concat", gate_sees_experts=True)


def test_cross_fitted_expert_outputs_never_see_their_own_labels(device):
    """Each fold's out-of-fold outputs come from a copy trained on the other folds only: flipping the labels of
    fold 0 leaves fold 0's outputs exactly as they were and changes the others'."""
    data = overfitting_sensor_data(12, 0)
    fold = data.folds(3, 1)  # what fit(seed=0) deals
    outputs = []
    for flip in (False, True):
        pyro.clear_param_store()
        pyro.set_rng_seed(0)
        model = build_model("cam", data, hidden=8).to(device)
        y = np.where(fold[:, None] == 0, 1 - data.y, data.y) if flip else data.y
        outputs.append(cross_fitted_expert_outputs(model, FusionData(data.sensors, y), 3, epochs=3, batch_size=4,
                                                   lr=0.01, device=device, patience=None, progress=False))
    in_fold = torch.as_tensor(fold == 0, device=device)
    assert torch.allclose(outputs[0][in_fold], outputs[1][in_fold], rtol=0, atol=1e-6)
    assert not torch.allclose(outputs[0][~in_fold], outputs[1][~in_fold])


@pytest.mark.slow
def test_stacking_stops_the_gate_trusting_an_overfitted_expert():
    """Fitted on the experts' own training data, the gate trusts the memorised noise expert (perfect there);
    refitted on sequences the experts never saw, it learns that expert is a coin toss and moves to the honest
    sensor: test accuracy rises from chance towards the honest sensor's ~80 %."""
    train, test = overfitting_sensor_data(24, 0), overfitting_sensor_data(64, 1)
    results = {}
    for stack in (0, 3):
        pyro.clear_param_store()
        pyro.set_rng_seed(0)
        model = build_model("cam", train)
        fit(model, train, epochs=300, patience=None, progress=False, stack=stack)
        p, attention = predict(model, test)
        results[stack] = binary_scores(test.y, p)["accuracy"], attention[..., 1].mean()
    (plain, plain_noise_weight), (stacked, stacked_noise_weight) = results[0], results[3]
    assert plain < 0.6 and plain_noise_weight > 0.8, results  # the trap is real
    assert stacked > plain + 0.1 and stacked_noise_weight < plain_noise_weight - 0.3, results


def test_binary_scores_by_hand():
    y = np.array([[1, 1, 0, 0]])
    p = np.array([[0.9, 0.2, 0.7, 0.1]])  # tp 1, fp 1, fn 1
    assert binary_scores(y, p) == {"accuracy": 0.5, "f1": 0.5}


def test_bad_model_names_are_explained():
    data, _ = synthetic_fusion(2, 10)
    with pytest.raises(ValueError, match="no sensor 'audio'"):
        build_model("expert:audio", data)
    with pytest.raises(ValueError, match="cam, mam, ram, concat or expert:NAME"):
        build_model("moe", data)
    with pytest.raises(ValueError, match="recurrent encoders by definition"):
        build_model("mam", data, encoder="frame")
    with pytest.raises(ValueError, match="co-learning needs several experts"):
        build_model("concat", data, colearn=0.1)
    assert math.isfinite(elbo(build_model("concat", data, hidden=4), *to_tensors(data)))


@pytest.mark.parametrize("frames", [1, 5, 8, 100])
def test_running_minimum_is_the_minimum_over_the_last_frames(frames):
    """The noise-floor track of the SNR evidence equals a brute-force causal window minimum, windows of any length."""
    from ppl_models.multimodal.evidence import running_minimum
    v = torch.randn(2, 150, 3)
    expected = torch.stack([v[:, max(0, t - frames + 1):t + 1].min(1).values for t in range(150)], 1)
    torch.testing.assert_close(running_minimum(v, frames), expected)


def test_marks_of_failure_are_an_observation_of_the_enumerated_index(device):
    """log p(y, o | x) = sum_t log sum_m g_m epsilon^{o_tm} p(y_t | f_m), plus the experts-alone factor."""
    torch.manual_seed(0)
    model = AttentionMixture({"a": 3, "b": 2, "c": 1}, "mam", hidden=8, failure_marks=0.1).to(device)
    xs = tuple(torch.randn(2, 5, d, device=device) for d in (3, 2, 1))
    y = torch.randint(0, 2, (2, 5), device=device).float()
    marks = torch.randint(0, 2, (2, 5, 3), device=device).float()
    log_w, params, _ = model(xs)
    log_lik = expert_likelihood(params, "bernoulli").log_prob(y[..., None])  # (N, T, M)
    brute_force = torch.logsumexp(log_w + log_lik + marks * np.log(0.1), -1).sum() + log_lik.sum()
    loss = TraceEnum_ELBO(max_plate_nesting=2).differentiable_loss(model.model, model.guide, xs, y, None, marks)
    assert torch.allclose(-loss, brute_force, rtol=1e-5)
    unmarked = TraceEnum_ELBO(max_plate_nesting=2).differentiable_loss(model.model, model.guide, xs, y)
    assert not torch.allclose(loss, unmarked)  # the marks change the likelihood
    with pytest.raises(ValueError, match="failure_marks"):
        AttentionMixture({"a": 1}, "concat", failure_marks=0.1)


def test_marks_teach_the_gate_to_look_away_from_a_failing_sensor():
    """Two equally good sensors; b carries a visible flag in 30 % of the frames, marked failing in training.
    Without the marks nothing tells the gate to avoid b there; with them its weight there falls."""
    rng = np.random.default_rng(0)
    y = (rng.random((48, 20)) < 0.5).astype(np.float32)
    flag = rng.random(y.shape) < 0.3
    a = (2 * y - 1)[..., None] + rng.standard_normal(y.shape + (1,))
    b = np.concatenate([(2 * y - 1)[..., None] + rng.standard_normal(y.shape + (1,)), flag[..., None]], -1)
    data = FusionData({"a": a.astype(np.float32), "b": b.astype(np.float32)}, y,
                      failing={"b": flag.astype(np.float32)})
    weight = {}
    for marks in (0.0, 0.1):
        pyro.clear_param_store()
        pyro.set_rng_seed(0)
        model = build_model("cam", data, hidden=8, failure_marks=marks)
        fit(model, data, epochs=40, patience=None, progress=False)
        weight[marks] = predict(model, data)[1][..., 1][flag].mean()
    assert weight[0.1] < 0.1 and weight[0.0] > 0.2, weight  # measured: 0.04 against 0.28
