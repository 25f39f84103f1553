"""A GENERATED "mouth camera" for the audio-visual speech-activity data (``speech_activity.py``).

Nothing here is recorded: every frame is drawn from a speech envelope, so the video carries the kind of
evidence a lip camera does (the mouth opens while speaking) with the kind of faults one has.

    opening_t = clip(g * env_{t - lag} + j_t, 0, 1)   env: clean-speech envelope in [0, 1]; lag 2-4 frames
                                                      (32-64 ms at 62.5 fps), g ~ U(0.7, 1.2) per sequence,
                                                      j an AR(1) jitter (0.8, sd 0.05)
    non-speech motion: 0-2 events of 20-60 frames per sequence, "chewing" (opening 0.25 + 0.2 sin(2 pi f t),
                       f in 1.5-3 Hz) or "smiling" (mouth 30 % wider, slightly open), speech or not
    image (H=6, W=8):  a dark mouth cavity (ellipse, half-height 0.05 + 0.75 opening) inside lips (a larger,
                       mid-grey ellipse) on skin, drawn at 3x3 sub-pixels and averaged (smooth in the opening),
                       with a slowly wandering centre, a per-sequence brightness and pixel noise (sd 0.03)
    occlusions:        0-3 segments of 20-30 frames per sequence (at least 3 frames apart): a constant patch
                       over at least half of the image, the whole image constant, or uniform noise
    flow:              the frame difference of the (occluded) image, zeros at t = 0

Images are intensities in about [0, 1], flattened row-major to D = 48. A flow frame is corrupted when either
of its two images is, i.e. the occluded frames and the frame after each occlusion.
"""

from __future__ import annotations

import numpy as np

H, W = 6, 8
FPS = 62.5
SUB = 3  # sub-pixels per pixel side
SKIN, LIPS, CAVITY = 0.75, 0.45, 0.1


def mouth_opening(rng: np.random.Generator, envelope: np.ndarray, lag: tuple[int, int] = (2, 4)):
    """Opening (N, T) in [0, 1], width factor (N, T), non-speech-motion mask (N, T) and lags (N,)."""
    n, t = envelope.shape
    lags = rng.integers(lag[0], lag[1] + 1, size=n)
    lagged = np.stack([np.r_[np.full(k, e[0]), e[:t - k]] for e, k in zip(envelope, lags)])  # (N, T)
    jitter = np.zeros((n, t))
    eps = rng.normal(0, 0.05, (n, t))
    for i in range(1, t):
        jitter[:, i] = 0.8 * jitter[:, i - 1] + eps[:, i]
    opening = rng.uniform(0.7, 1.2, (n, 1)) * lagged + jitter
    width = np.ones((n, t))
    motion = np.zeros((n, t), bool)
    frames = np.arange(t) / FPS
    for i in range(n):
        for _ in range(rng.integers(0, 3)):
            d = int(rng.integers(20, 61))
            a = int(rng.integers(0, t - d + 1))
            if rng.random() < 0.5:  # chewing
                f, ph = rng.uniform(1.5, 3.0), rng.uniform(0, 2 * np.pi)
                chew = 0.25 + 0.2 * np.sin(2 * np.pi * f * frames[a:a + d] + ph)
                opening[i, a:a + d] = np.maximum(opening[i, a:a + d], chew)
            else:  # smiling
                width[i, a:a + d] = 1.3
                opening[i, a:a + d] = np.maximum(opening[i, a:a + d], 0.1)
            motion[i, a:a + d] = True
    return np.clip(opening, 0, 1), width, motion, lags


def render_mouth(rng: np.random.Generator, opening: np.ndarray, width: np.ndarray) -> np.ndarray:
    """(N, T) opening and width -> (N, T, H * W) images."""
    n, t = opening.shape
    ys = (np.arange(H * SUB) + 0.5) / (H * SUB) * 2 - 1  # sub-pixel centres in [-1, 1]
    xs = (np.arange(W * SUB) + 0.5) / (W * SUB) * 2 - 1
    out = np.empty((n, t, H * W), np.float32)
    for i in range(n):
        centre = np.cumsum(rng.normal(0, 0.01, (t, 2)), 0)  # slow head motion
        centre = np.clip(centre - centre.mean(0), -0.15, 0.15)
        dy = ys[None, :, None] - centre[:, 0, None, None]  # (T, H*SUB, 1)
        dx = xs[None, None, :] - centre[:, 1, None, None]  # (T, 1, W*SUB)
        a = 0.55 * width[i][:, None, None]
        b = 0.05 + 0.75 * opening[i][:, None, None]
        cavity = (dx / a) ** 2 + (dy / b) ** 2 < 1
        lips = (dx / (a + 0.15)) ** 2 + (dy / (b + 0.2)) ** 2 < 1
        fine = np.where(cavity, CAVITY, np.where(lips, LIPS, SKIN))  # (T, H*SUB, W*SUB)
        img = fine.reshape(t, H, SUB, W, SUB).mean((2, 4)).reshape(t, H * W)
        img = img * rng.uniform(0.8, 1.2) + rng.normal(0, 0.03, img.shape)
        out[i] = img
    return out


def occlude(rng: np.random.Generator, images: np.ndarray, seg: tuple[int, int] = (20, 30)):
    """Occlude 0-3 segments per sequence in place; return the (N, T) bool mask of occluded frames."""
    n, t, _ = images.shape
    mask = np.zeros((n, t), bool)
    for i in range(n):
        for _ in range(rng.choice(4, p=[0.2, 0.3, 0.3, 0.2])):
            d = int(rng.integers(seg[0], seg[1] + 1))
            a = int(rng.integers(0, t - d + 1))
            if mask[i, max(0, a - 3):a + d + 3].any():  # keep segments apart: each stays 20-30 frames
                continue
            mask[i, a:a + d] = True
            block = images[i, a:a + d].reshape(d, H, W)
            kind = rng.integers(3)
            if kind == 0:  # a hand or object over part of the mouth
                h, w = int(rng.integers(3, H + 1)), int(rng.integers(4, W + 1))
                r, c = int(rng.integers(0, H - h + 1)), int(rng.integers(0, W - w + 1))
                block[:, r:r + h, c:c + w] = rng.uniform(0.2, 0.9) + rng.normal(0, 0.03, (d, h, w))
            elif kind == 1:  # camera covered
                block[:] = rng.uniform(0.0, 0.9) + rng.normal(0, 0.03, block.shape)
            else:  # transmission garbage
                block[:] = rng.uniform(0, 1, block.shape)
            images[i, a:a + d] = block.reshape(d, H * W)
    return mask


def frame_difference(images: np.ndarray) -> np.ndarray:
    """(N, T, D) -> (N, T, D): x_t - x_{t-1}, zeros at t = 0."""
    return np.concatenate([np.zeros_like(images[:, :1]), np.diff(images, axis=1)], axis=1)


def mouth_video(rng: np.random.Generator, envelope: np.ndarray) -> dict[str, np.ndarray]:
    """Image and flow streams (N, T, 48) from a clean-speech envelope (N, T), with their fault masks."""
    opening, width, motion, lags = mouth_opening(rng, envelope)
    images = render_mouth(rng, opening, width)
    occluded = occlude(rng, images)
    flow_bad = occluded | np.concatenate([np.zeros_like(occluded[:, :1]), occluded[:, :-1]], axis=1)
    return {"image": images, "flow": frame_difference(images), "opening": opening.astype(np.float32),
            "nonspeech_motion": motion, "corrupted_image": occluded, "corrupted_flow": flow_bad, "lag": lags}
