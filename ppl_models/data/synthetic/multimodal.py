r"""Synthetic multimodal sequences with a KNOWN shared cause: the embedded default of ``impute`` and ``demo``;
:func:`synthetic_private_dynamics` gives sensor b private dynamics of its own as well (the MVRNN's case).

A shared cause drives every sensor; each sensor also has a private cause of its own:

    phase_t = phase_{t-1} + omega            omega ~ U(0.15, 0.35) rad/frame per sequence   (shared)
    c_t     = [sin phase_t, cos phase_t]
    u^m_t   = 0.9 u^m_{t-1} + 0.44 eps       (private to sensor m, unit stationary variance)
    x^m_t   = 1.5 tanh(A_m c_t) + 0.5 B_m u^m_t + 0.1 noise

with fixed random matrices A_m, B_m. Sensor ``a`` (D=3) and sensor ``b`` (D=2). What one sensor says about the
other goes only through c_t, so imputing ``b`` from ``a`` can recover 1.5 tanh(A_b c_t) but never B_b u^b_t:
the best possible RMSE is the private part's, well below the spread of ``b`` itself.

The fixed draw makes ``b``'s private part small: 0.5 B_b = (-0.15, 0.18), 1-4 % of b's variance (a's private
part is about 10 % of a's), and its new part per frame (std 0.07-0.08) is below the noise (0.1): what b's own
frames tell beyond the shared cause is mostly that slow wobble, predictable from b's past.
"""

from __future__ import annotations

import numpy as np

from ppl_models.data.fusion_files import FusionData, check_fusion

WIDTHS = {"a": 3, "b": 2}
OMEGA = (0.15, 0.35)
PRIVATE_AR, PRIVATE_GAIN, NOISE = 0.9, 0.5, 0.1


def mixing_matrices(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(A_m (D, 2), B_m (D, 1)) of sensor ``name``: fixed, the same for every split and seed."""
    rng = np.random.default_rng(sorted(WIDTHS).index(name) + 100)
    return rng.normal(0, 1.2, (WIDTHS[name], 2)), rng.normal(0, 1, (WIDTHS[name], 1))


def shared_cause(rng: np.random.Generator, num_sequences: int, frames: int) -> np.ndarray:
    """c_t = [sin phase_t, cos phase_t], (N, T, 2), with a random frequency and start per sequence."""
    omega = rng.uniform(*OMEGA, (num_sequences, 1))
    phase = rng.uniform(0, 2 * np.pi, (num_sequences, 1)) + omega * np.arange(frames)
    return np.stack([np.sin(phase), np.cos(phase)], -1)


def private_ar(rng: np.random.Generator, num_sequences: int, frames: int) -> np.ndarray:
    """u_t = 0.9 u_{t-1} + 0.44 eps with unit stationary variance, (N, T)."""
    u = np.zeros((num_sequences, frames))
    u[:, 0] = rng.standard_normal(num_sequences)
    for t in range(1, frames):
        u[:, t] = PRIVATE_AR * u[:, t - 1] + np.sqrt(1 - PRIVATE_AR ** 2) * rng.standard_normal(num_sequences)
    return u


def synthetic_multimodal(num_sequences: int = 256, frames: int = 50, seed: int = 0) -> tuple[FusionData, dict]:
    """``FusionData`` with sensors a (N, T, 3) and b (N, T, 2), and ``meta``: the shared cause ``c`` (N, T, 2), the
    private causes ``u_<name>`` (N, T) and the noiseless parts ``shared_<name>`` (N, T, D) = 1.5 tanh(A c)."""
    rng = np.random.default_rng(seed)
    c = shared_cause(rng, num_sequences, frames)
    sensors, meta = {}, {"c": c.astype(np.float32)}
    for name in sorted(WIDTHS):
        a, b = mixing_matrices(name)
        u = private_ar(rng, num_sequences, frames)
        shared = 1.5 * np.tanh(c @ a.T)  # (N, T, D)
        x = shared + PRIVATE_GAIN * u[..., None] * b[:, 0] + NOISE * rng.standard_normal(shared.shape)
        sensors[name] = x.astype(np.float32)
        meta[f"u_{name}"], meta[f"shared_{name}"] = u.astype(np.float32), shared.astype(np.float32)
    return check_fusion(FusionData(sensors), "synthetic multimodal"), meta


NU, DRIFT, SQUARE, OSCILLATOR_GAIN = (0.25, 0.5), 0.03, 2.0, 1.0


def synthetic_private_dynamics(num_sequences: int = 256, frames: int = 50,
                               seed: int = 0) -> tuple[FusionData, dict]:
    r"""Sensor b with private NON-LINEAR dynamics of its own, beside the shared cause; a is drawn as in
    :func:`synthetic_multimodal` (the same numbers for the same seed), b's slow AR wobble becomes an oscillator:

        c_{t-1} ──> c_t ───────> a_t <── u^a_t <── u^a_{t-1}      (shared cause; a's private AR wobble)
                     │
                     └─────────> b_t <── q_t <── psi_t <── psi_{t-1}   (b's private oscillator: a never sees it)

        psi_t = psi_{t-1} + nu + 0.03 eps     nu ~ U(0.25, 0.5) rad/frame per sequence, psi_0 ~ U(0, 2 pi)
        q_t   = tanh(2 sin psi_t) / tanh(2)   a square-ish wave in [-1, 1]
        b_t   = 1.5 tanh(A_b c_t) + q_t g_b + 0.1 noise        g_b = B_b / |B_b| (unit length)

    Nothing of a carries psi: from a, b's private part q_t g_b (about a fifth of b's variance) is noise. Its
    state (phase and per-sequence frequency) persists, so b's frames before a gap tell how b goes on inside
    it: imputing b through a gap can use b's own past, which a model of a alone cannot. With b missing whole
    the private part is unknowable to any model. ``meta``: ``c``, ``u_a``, ``psi`` and ``q`` (N, T),
    ``shared_<name>`` (N, T, D) and ``private_b`` (N, T, 2) = q_t g_b."""
    rng = np.random.default_rng(seed)
    c = shared_cause(rng, num_sequences, frames)
    (a_mix, a_private), (b_mix, b_private) = mixing_matrices("a"), mixing_matrices("b")
    u = private_ar(rng, num_sequences, frames)
    shared_a, shared_b = 1.5 * np.tanh(c @ a_mix.T), 1.5 * np.tanh(c @ b_mix.T)
    a = shared_a + PRIVATE_GAIN * u[..., None] * a_private[:, 0] + NOISE * rng.standard_normal(shared_a.shape)
    nu = rng.uniform(*NU, (num_sequences, 1))
    steps = nu + DRIFT * rng.standard_normal((num_sequences, frames))
    psi = rng.uniform(0, 2 * np.pi, (num_sequences, 1)) + np.cumsum(steps, 1) - steps[:, :1]
    q = np.tanh(SQUARE * np.sin(psi)) / np.tanh(SQUARE)
    private = OSCILLATOR_GAIN * q[..., None] * b_private[:, 0] / np.linalg.norm(b_private)
    b = shared_b + private + NOISE * rng.standard_normal(shared_b.shape)
    meta = {"c": c, "u_a": u, "psi": psi, "q": q, "shared_a": shared_a, "shared_b": shared_b, "private_b": private}
    data = FusionData({"a": a.astype(np.float32), "b": b.astype(np.float32)})
    return check_fusion(data, "synthetic private dynamics"), {k: v.astype(np.float32) for k, v in meta.items()}
