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


def occluded_fraction(tracks: np.ndarray) -> np.ndarray:
    """(T, N) fraction of each (T, N, 4) box covered by a *nearer* one, nearer meaning larger (closer to the
    camera); a box behind two others counts the one covering most of it."""
    lo, hi = np.minimum(tracks[..., :2], tracks[..., 2:]), np.maximum(tracks[..., :2], tracks[..., 2:])
    area = np.prod(hi - lo, axis=-1)  # (T, N)
    overlap = np.clip(np.minimum(hi[:, :, None], hi[:, None]) - np.maximum(lo[:, :, None], lo[:, None]), 0, None)
    nearer = area[:, None, :] > area[:, :, None]  # [t, n, m]: m is in front of n
    return (overlap.prod(-1) * nearer).max(-1) / area


def synthetic_occlusion_window(num_sources: int = 3, length: int = 60, seed: int = 0, **detection_args):
    """Like :func:`synthetic_tracking_window`, with detections simulated as for the MOT17 windows
    (:func:`ppl_models.data.track_windows.occlusion_detections`: corner jitter, bursty misses, and no detection
    while a box is less than 30 % visible), a box's visibility being 1 - :func:`occluded_fraction`. Where two
    tracks cross, the farther one disappears for a few frames, as a pedestrian does behind another."""
    from ppl_models.data.track_windows import occlusion_detections

    rng = np.random.default_rng(seed)
    tracks = np.stack([sample_trajectory(rng, length) for _ in range(num_sources)], axis=1)  # (T, N, 4)
    tracks[..., 1::2] = 1 - tracks[..., 1::2]
    det, mask, labels = occlusion_detections(tracks, 1 - occluded_fraction(tracks), rng=rng, **detection_args)
    return TrackWindow("synthetic", np.arange(1, length + 1), np.arange(1, num_sources + 1), tracks, det, mask,
                       labels)
