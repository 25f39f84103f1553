"""Synthetic sensor-fusion sequences: the embedded default of ``fuse``, ``demo`` and the tests.

A binary state y_t (on/off segments of 5-40 frames) is seen by three sensors, each a noisy linear read-out
of y_t in its own random direction a_m, |a_m| = 2:

    x^m_t = y_t a_m + sigma_m eps_t,   eps_t ~ N(0, I)     sigma = 0.5 (``sharp``), 1.0 (``steady``), 2.0 (``weak``)

``sharp`` is the best sensor but fails in bursts: in random segments of 10-30 frames (at least a third of the
frames, about 40 % on average, as bursts may overlap) it outputs pure noise, N(0, 3^2 I), carrying no information about y. ``steady`` never fails. A good
gate trusts ``sharp`` except in its bursts, where it moves to ``steady``; no single sensor does as well.
"""

from __future__ import annotations

import numpy as np

from ppl_models.data.fusion_files import FusionData

NOISE = {"sharp": 0.5, "steady": 1.0, "weak": 2.0}
CORRUPTED_SCALE = 3.0


def _segments(rng: np.random.Generator, T: int, low: int, high: int, start_value: int = 0) -> np.ndarray:
    """A (T,) 0/1 sequence of alternating segments with lengths uniform in [low, high]."""
    out, t, value = np.zeros(T, dtype=np.float32), 0, start_value
    while t < T:
        n = int(rng.integers(low, high + 1))
        out[t:t + n] = value
        t, value = t + n, 1 - value
    return out


def _bursts(rng: np.random.Generator, T: int, share: float = 1 / 3, low: int = 10, high: int = 30) -> np.ndarray:
    """A (T,) bool mask of random bursts covering about ``share`` of the frames."""
    mask = np.zeros(T, dtype=bool)
    while mask.mean() < share:
        n = int(rng.integers(low, high + 1))
        t = int(rng.integers(0, max(T - n, 1)))
        mask[t:t + n] = True
    return mask


def synthetic_fusion(num_sequences: int = 64, frames: int = 100, dim: int = 4, seed: int = 0
                     ) -> tuple[FusionData, np.ndarray]:
    """(FusionData with sensors ``sharp``, ``steady``, ``weak`` (N, T, dim) and labels y (N, T),
    the frames where ``sharp`` is corrupted (N, T) bool)."""
    fixed = np.random.default_rng(1234)  # the sensors' read-outs are the same in every data set
    directions = {name: 2.0 * unit / np.linalg.norm(unit) for name, unit in
                  ((name, fixed.normal(size=dim)) for name in NOISE)}  # |a_m| = 2
    rng = np.random.default_rng(seed)
    y = np.stack([_segments(rng, frames, 5, 40, int(rng.integers(2))) for _ in range(num_sequences)])
    corrupted = np.stack([_bursts(rng, frames) for _ in range(num_sequences)])
    sensors = {}
    for name, sigma in NOISE.items():
        x = y[..., None] * directions[name] + sigma * rng.normal(size=(num_sequences, frames, dim))
        if name == "sharp":
            x[corrupted] = CORRUPTED_SCALE * rng.normal(size=(int(corrupted.sum()), dim))
        sensors[name] = x.astype(np.float32)
    return FusionData(dict(sorted(sensors.items())), y), corrupted
