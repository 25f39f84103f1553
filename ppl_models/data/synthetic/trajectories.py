"""Single-source box trajectories, generated as the MixDVAE authors generate their pre-training set.

Each coordinate is piecewise over 60 frames with 0-2 breakpoints drawn from {3, 6, ..., 57}; each segment
continues from where the previous one ended and is one of

    static    c(t) = c0
    line      c(t) = c0 + v t                          v ~ N(0, sigma_v^2)
    parabola  c(t) = c0 + v t + a t^2                  v ~ N(0, sigma_v^2), a ~ N(0, sigma_a^2)
    sinus     c(t) = c0 / sin(phi) * sin(omega t + phi)  omega ~ N(0, sigma_omega^2), phi ~ N(0, sigma_phi^2)

for t = 0, 1, ... within the segment (so a sinus starts at c0 too). x and y are independent, with segment
probabilities 0.15 / 0.30 / 0.30 / 0.25 and the scales below (fitted by the authors to MOT17 boxes in
normalised image coordinates). The width starts at LogNormal(-3.8, 0.7) and is one static / line / parabola
segment (0.25 / 0.6 / 0.15); the height is width times N(5.26, 0.77^2). The box is
(x, y, x + w, y - h), and a trajectory whose box leaves [0, 1]^2 (or whose size is not positive) is rejected
and drawn again.
"""

from __future__ import annotations

import numpy as np

SEGMENT_TYPES = ("static", "line", "parabola", "sinus")
XY_PROBS = (0.15, 0.30, 0.30, 0.25)
WIDTH_PROBS = (0.25, 0.60, 0.15, 0.0)
SIGMA_X = dict(velocity=0.00125, acceleration=0.000037, omega=0.003, phase=3.2)
SIGMA_Y = dict(velocity=0.0006, acceleration=0.00002, omega=0.001, phase=3.2)
SIGMA_W = dict(velocity=0.00032, acceleration=0.00001)
WIDTH_LOGNORMAL = (-3.8, 0.7)
HEIGHT_RATIO = (5.26, 0.77)


def _segment(rng: np.random.Generator, kind: str, start: float, n: int, sigma: dict) -> np.ndarray:
    t = np.arange(n, dtype=np.float64)
    if kind == "static":
        return np.full(n, start)
    if kind == "line":
        return start + sigma["velocity"] * rng.standard_normal() * t
    if kind == "parabola":
        v, a = sigma["velocity"] * rng.standard_normal(), sigma["acceleration"] * rng.standard_normal()
        return start + v * t + a * t ** 2
    omega, phi = sigma["omega"] * rng.standard_normal(), sigma["phase"] * rng.standard_normal()
    return start / np.sin(phi) * np.sin(omega * t + phi)


def _piecewise(rng, length: int, start: float, n_breaks: int, probs, sigma) -> np.ndarray:
    """One coordinate over ``length`` frames, with ``n_breaks`` breakpoints from {3, 6, ..., length - 3}."""
    breaks = np.sort(rng.choice(np.arange(3, length, 3), size=n_breaks, replace=False))
    edges = np.concatenate([[0], breaks, [length]])
    pieces, value = [], start
    for lo, hi in zip(edges[:-1], edges[1:]):
        piece = _segment(rng, SEGMENT_TYPES[rng.choice(4, p=probs)], value, hi - lo, sigma)
        pieces.append(piece)
        value = piece[-1]
    return np.concatenate(pieces)


def sample_trajectory(rng: np.random.Generator, length: int = 60, max_tries: int = 10000) -> np.ndarray:
    """One accepted trajectory of boxes (x1, y1, x2, y2), shape (length, 4), float64."""
    for _ in range(max_tries):
        x = _piecewise(rng, length, rng.random(), rng.integers(0, 3), XY_PROBS, SIGMA_X)
        y = _piecewise(rng, length, rng.random(), rng.integers(0, 3), XY_PROBS, SIGMA_Y)
        w = _piecewise(rng, length, rng.lognormal(*WIDTH_LOGNORMAL), 0, WIDTH_PROBS, SIGMA_W)
        h = w * rng.normal(*HEIGHT_RATIO)
        box = np.stack([x, y, x + w, y - h], axis=1)
        if np.all(w > 0) and np.all(h > 0) and np.all((box >= 0) & (box <= 1)):
            return box
    raise RuntimeError(f"no trajectory inside [0, 1]^2 after {max_tries} draws")


def sample_trajectories(n: int, length: int = 60, seed: int = 0) -> np.ndarray:
    """``n`` independent trajectories, shape (n, length, 4), float32, reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    return np.stack([sample_trajectory(rng, length) for _ in range(n)]).astype(np.float32)
