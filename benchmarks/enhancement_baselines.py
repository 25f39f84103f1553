"""The classical single-channel enhancers a user would try first, as baselines of ``benchmarks/enhancement.py``:
``pyroomacoustics.denoise`` (spectral subtraction, Boll 1979 / Berouti et al. 1979; iterative Wiener filtering
with an all-pole speech model, Lim & Oppenheim 1978) and the ``noisereduce`` package (spectral gating,
stationary and non-stationary). Benchmark/test dependencies only (``pip install -e .[benchmark]``).

Each family is run with its package defaults and with the best of a small grid chosen on a *validation* set
(:func:`tune`), so the baselines get the same chance of a tuned setting as the models.

pyroomacoustics processes frames as a stream: its output lags the input by half a frame (256 samples at its
default 512-sample frames); the lag is undone here, else SI-SDR would score the delay, not the denoising.
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16000

# family -> list of keyword settings; the first is the package default
GRIDS = {
    "spectral subtraction": [dict(db_reduc=25, beta=30, lookback=12, alpha=1),
                             dict(db_reduc=10, beta=30, lookback=12, alpha=1),
                             dict(db_reduc=25, beta=10, lookback=12, alpha=1),
                             dict(db_reduc=10, beta=10, lookback=12, alpha=1),
                             dict(db_reduc=25, beta=30, lookback=12, alpha=3)],
    "iterative Wiener": [dict(iterations=2, alpha=0.8), dict(iterations=1, alpha=0.8)],  # fewer: the slowest
    "noisereduce": [dict(stationary=False, prop_decrease=1.0), dict(stationary=True, prop_decrease=1.0),
                    dict(stationary=False, prop_decrease=0.7), dict(stationary=True, prop_decrease=0.7),
                    dict(stationary=False, prop_decrease=0.5), dict(stationary=True, prop_decrease=0.5)],
}


def _unlag(y: np.ndarray, n: int, lag: int) -> np.ndarray:
    """y delayed by ``lag`` samples -> n samples aligned with the input."""
    y = np.asarray(y, dtype=np.float64)[lag:lag + n]
    return np.pad(y, (0, n - len(y)))


def denoise(family: str, noisy: np.ndarray, **settings) -> np.ndarray:
    """One baseline enhancer on a mono 16 kHz signal; returns the estimate, aligned, same length."""
    x = np.asarray(noisy, dtype=np.float64)
    if family == "spectral subtraction":
        import pyroomacoustics as pra

        return _unlag(pra.denoise.apply_spectral_sub(x, nfft=512, **settings), len(x), 256)
    if family == "iterative Wiener":
        import pyroomacoustics as pra

        return _unlag(pra.denoise.apply_iterative_wiener(x, frame_len=512, lpc_order=20, thresh=0.01, **settings),
                      len(x), 256)
    if family == "noisereduce":
        import noisereduce

        return np.asarray(noisereduce.reduce_noise(y=x, sr=SAMPLE_RATE, **settings), dtype=np.float64)[:len(x)]
    raise ValueError(f"unknown baseline {family!r}; one of {', '.join(GRIDS)}")


def tune(family: str, items, score) -> tuple[dict, float]:
    """The setting of ``GRIDS[family]`` with the best mean ``score(clean, estimate)`` on validation ``items``."""
    results = [(np.mean([score(it.clean, denoise(family, it.noisy, **s)) for it in items]), i)
               for i, s in enumerate(GRIDS[family])]
    best, i = max(results)
    return GRIDS[family][i], float(best)
