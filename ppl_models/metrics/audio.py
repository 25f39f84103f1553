"""Audio quality metrics: SI-SDR, RMSE, PESQ (P.862 / P.862.2 via ``pesq``) and ESTOI (via ``pystoi``).

SI-SDR (Le Roux et al., 2019): with the optimal scaling a = <s, y> / ||s||^2 of the reference s,
SI-SDR = 10 log10(||a s||^2 / ||a s - y||^2). RMSE is the root mean square of y - s in the time domain.
PESQ needs an utterance it can find: on silent or too-short clips it raises, and :func:`pesq_score` returns
NaN with a warning instead.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from ppl_models.data.audio import SAMPLE_RATE

METRIC_NAMES = ("si_sdr", "rmse", "pesq", "estoi")


def _pair(reference, estimate) -> tuple[np.ndarray, np.ndarray]:
    reference = np.asarray(reference, dtype=np.float64)
    estimate = np.asarray(estimate, dtype=np.float64)
    if reference.ndim != 1 or estimate.ndim != 1:
        raise ValueError(f"expected 1-D signals, got shapes {reference.shape} and {estimate.shape}")
    n = min(len(reference), len(estimate))
    if n == 0:
        raise ValueError("cannot score empty signals")
    return reference[:n], estimate[:n]


def si_sdr(reference, estimate) -> float:
    """Scale-invariant signal-to-distortion ratio in dB (signals are cut to the shorter length)."""
    s, y = _pair(reference, estimate)
    target = (np.dot(s, y) / max(np.dot(s, s), 1e-20)) * s
    return float(10 * np.log10(max(np.dot(target, target), 1e-20) / max(np.sum((target - y) ** 2), 1e-20)))


def rmse(reference, estimate) -> float:
    """Root mean square error in the time domain."""
    s, y = _pair(reference, estimate)
    return float(np.sqrt(np.mean((s - y) ** 2)))


def pesq_score(reference, estimate, sample_rate: int = SAMPLE_RATE, mode: str = "wb") -> float:
    """PESQ MOS-LQO: ``mode='wb'`` (P.862.2, 16 kHz only) or ``'nb'`` (P.862). NaN when PESQ finds no speech."""
    from pesq import NoUtterancesError, PesqError, pesq

    if mode not in ("wb", "nb"):
        raise ValueError(f"PESQ mode must be 'wb' or 'nb', got {mode!r}")
    if sample_rate not in (8000, 16000) or (mode == "wb" and sample_rate != 16000):
        raise ValueError(f"PESQ {mode} needs 16 kHz audio{'' if mode == 'wb' else ' or 8 kHz'}, got {sample_rate} Hz")
    s, y = _pair(reference, estimate)
    if min(np.max(np.abs(s)), np.max(np.abs(y))) < 1e-5:  # the C code divides by the level of silence
        warnings.warn("PESQ undefined for a silent reference or estimate; returning NaN")
        return math.nan
    try:
        return float(pesq(sample_rate, s, y, mode))
    except (NoUtterancesError, PesqError, ValueError) as err:
        warnings.warn(f"PESQ undefined for this pair ({err}); returning NaN")
        return math.nan


def estoi(reference, estimate, sample_rate: int = SAMPLE_RATE) -> float:
    """Extended short-time objective intelligibility (Jensen & Taal, 2016)."""
    from pystoi import stoi

    s, y = _pair(reference, estimate)
    return float(stoi(s, y, sample_rate, extended=True))


def score(reference, estimate, sample_rate: int = SAMPLE_RATE, pesq_mode: str = "wb") -> dict[str, float]:
    """All four metrics of one (reference, estimate) pair."""
    return {"si_sdr": si_sdr(reference, estimate), "rmse": rmse(reference, estimate),
            "pesq": pesq_score(reference, estimate, sample_rate, pesq_mode),
            "estoi": estoi(reference, estimate, sample_rate)}
