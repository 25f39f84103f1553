r"""Synthetic multimodal sequences with a KNOWN shared cause: the embedded default of ``impute`` and ``demo``.

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


def synthetic_multimodal(num_sequences: int = 256, frames: int = 50, seed: int = 0) -> tuple[FusionData, dict]:
    """``FusionData`` with sensors a (N, T, 3) and b (N, T, 2), and ``meta``: the shared cause ``c`` (N, T, 2), the
    private causes ``u_<name>`` (N, T) and the noiseless parts ``shared_<name>`` (N, T, D) = 1.5 tanh(A c)."""
    rng = np.random.default_rng(seed)
    omega = rng.uniform(*OMEGA, (num_sequences, 1))
    phase = rng.uniform(0, 2 * np.pi, (num_sequences, 1)) + omega * np.arange(frames)
    c = np.stack([np.sin(phase), np.cos(phase)], -1)  # (N, T, 2)
    sensors, meta = {}, {"c": c.astype(np.float32)}
    for name in sorted(WIDTHS):
        a, b = mixing_matrices(name)
        u = np.zeros((num_sequences, frames))
        u[:, 0] = rng.standard_normal(num_sequences)
        for t in range(1, frames):
            u[:, t] = PRIVATE_AR * u[:, t - 1] + np.sqrt(1 - PRIVATE_AR ** 2) * rng.standard_normal(num_sequences)
        shared = 1.5 * np.tanh(c @ a.T)  # (N, T, D)
        x = shared + PRIVATE_GAIN * u[..., None] * b[:, 0] + NOISE * rng.standard_normal(shared.shape)
        sensors[name] = x.astype(np.float32)
        meta[f"u_{name}"], meta[f"shared_{name}"] = u.astype(np.float32), shared.astype(np.float32)
    return check_fusion(FusionData(sensors), "synthetic multimodal"), meta
