"""Multi-source mixtures of the synthetic sources: tracking scenes and audio mixtures."""

from __future__ import annotations

import numpy as np

from ppl_models.data.synthetic.trajectories import sample_trajectory
from ppl_models.data.track_windows import TrackWindow, simulate_detections


def mix_at_snr(signal: np.ndarray, noise: np.ndarray, snr_db: float) -> tuple[np.ndarray, np.ndarray]:
    """Scale ``noise`` so that 10 log10(|signal|^2 / |noise|^2) = ``snr_db``; return (mixture, scaled noise).

    The noise is tiled or cut to the signal's length.
    """
    noise = np.resize(noise, signal.shape)
    gain = np.sqrt(np.sum(signal.astype(np.float64) ** 2) / np.sum(noise.astype(np.float64) ** 2)
                   / 10 ** (snr_db / 10))
    scaled = (gain * noise).astype(signal.dtype)
    return signal + scaled, scaled


def synthetic_tracking_window(num_sources: int = 3, length: int = 60, jitter: float = 0.05,
                              miss_rate: float = 0.1, seed: int = 0) -> TrackWindow:
    """N independent synthetic trajectories and their noisy, shuffled, partly missing detections.

    The trajectories are drawn with y pointing up (:func:`sample_trajectory`); a window holds image
    coordinates, y pointing down, like a MOTChallenge one, so y -> 1 - y on the way in."""
    rng = np.random.default_rng(seed)
    tracks = np.stack([sample_trajectory(rng, length) for _ in range(num_sources)], axis=1)  # (T, N, 4)
    tracks[..., 1::2] = 1 - tracks[..., 1::2]
    det, mask, labels = simulate_detections(tracks, jitter, miss_rate, rng)
    return TrackWindow("synthetic", np.arange(1, length + 1), np.arange(1, num_sources + 1), tracks, det, mask,
                       labels)
