"""The "N-track window" data of the MixDVAE paper (Lin et al., TMLR 2023, sec. 5).

A window is T consecutive frames of one sequence in which N ground-truth tracks are present in every frame.
Its observations are detections, either

* real: the detections of a detector's file matched to the N tracks frame by frame (Hungarian assignment on
  IoU, kept when IoU >= ``match_iou``); a track with no match in a frame is a missed detection; or
* simulated: each ground-truth box plus Gaussian jitter proportional to the box size, missed with
  probability ``miss_rate``.

Only detections of the N tracks are kept (no clutter), as in the paper. Within a frame the detections are
shuffled: a tracker must not rely on their order. Boxes are (x1, y1, x2, y2) in pixels; ``normalized``
divides by the image size.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import linear_sum_assignment

from ppl_models.data.mot import MotRecords, iou, xywh_to_xyxy, xyxy_to_xywh


@dataclass
class TrackWindow:
    """N sources over T frames and their (padded, masked) detections."""

    sequence: str
    frames: np.ndarray  # (T,) frame numbers
    track_ids: np.ndarray  # (N,) ground-truth ids of the sources
    tracks: np.ndarray  # (T, N, 4) ground-truth boxes x1, y1, x2, y2
    detections: np.ndarray  # (T, K, 4) observed boxes, padded with zeros, K = N
    mask: np.ndarray  # (T, K) bool: True where a detection is present
    labels: np.ndarray  # (T, K) int: index (0..N-1) of the source a detection belongs to, -1 for padding
    image_size: tuple[float, float] = (1.0, 1.0)  # (width, height)

    @property
    def miss_rate(self) -> float:
        return 1.0 - self.mask.mean()

    def normalized(self) -> "TrackWindow":
        """Boxes divided by the image width and height, so coordinates lie in [0, 1]."""
        scale = np.array(self.image_size * 2, dtype=np.float64)
        return replace(self, tracks=self.tracks / scale, detections=self.detections / scale * self.mask[..., None],
                       image_size=(1.0, 1.0))


def simulate_detections(tracks: np.ndarray, jitter: float = 0.05, miss_rate: float = 0.1,
                        rng: np.random.Generator | None = None):
    """Noisy, shuffled, partly missing observations of (T, N, 4) x1y1x2y2 boxes.

    Each corner coordinate gets N(0, (jitter * box size)^2) noise (width for x, height for y).
    Returns (detections, mask, labels) shaped like :class:`TrackWindow`'s fields.
    """
    rng = np.random.default_rng() if rng is None else rng
    T, N, _ = tracks.shape
    size = np.abs(xyxy_to_xywh(tracks)[..., 2:])  # (T, N, 2)
    noisy = tracks + rng.normal(size=tracks.shape) * jitter * np.concatenate([size, size], axis=-1)
    present = rng.random((T, N)) >= miss_rate
    return _pack(noisy, present, rng)


def _pack(boxes: np.ndarray, present: np.ndarray, rng: np.random.Generator):
    """Shuffle each frame's present boxes to the front of a zero-padded (T, N, 4) array."""
    T, N, _ = boxes.shape
    detections = np.zeros_like(boxes)
    mask = np.zeros((T, N), dtype=bool)
    labels = np.full((T, N), -1, dtype=np.int64)
    for t in range(T):
        sources = rng.permutation(np.flatnonzero(present[t]))
        detections[t, :len(sources)] = boxes[t, sources]
        mask[t, :len(sources)] = True
        labels[t, :len(sources)] = sources
    return detections, mask, labels


def _match_detections(tracks_xywh: np.ndarray, detections: MotRecords, match_iou: float):
    """Hungarian matching of N track boxes to a frame's detections -> (N, 4) xywh boxes, (N,) matched."""
    boxes = np.zeros_like(tracks_xywh)
    matched = np.zeros(len(tracks_xywh), dtype=bool)
    if len(detections):
        overlap = iou(tracks_xywh, detections.box)
        rows, cols = linear_sum_assignment(-overlap)
        keep = overlap[rows, cols] >= match_iou
        boxes[rows[keep]] = detections.box[cols[keep]]
        matched[rows[keep]] = True
    return boxes, matched


def build_track_windows(gt: MotRecords, num_tracks: int = 3, length: int = 60, stride: int | None = None,
                        detections: MotRecords | None = None, match_iou: float = 0.5,
                        jitter: float = 0.05, miss_rate: float = 0.1, groups_per_window: int = 1,
                        min_detection_rate: float = 0.0, sequence: str = "",
                        image_size: tuple[float, float] = (1.0, 1.0), seed: int = 0) -> list[TrackWindow]:
    """All windows of ``length`` frames (every ``stride`` frames) with ``num_tracks`` tracks in every frame.

    With ``detections`` the observations are real detections matched to the tracks; without, they are
    simulated with ``jitter`` and ``miss_rate``. When more than N tracks qualify, ``groups_per_window``
    distinct groups of N are drawn at random (seeded), in the spirit of the paper's random 3-combinations.
    A group in which some track is detected in fewer than ``min_detection_rate`` of the frames is dropped
    (ground truth includes occluded people that no detector sees).
    """
    if num_tracks < 1 or length < 1:
        raise ValueError(f"num_tracks and length must be >= 1, got {num_tracks} and {length}")
    stride = length if stride is None else stride
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    rng = np.random.default_rng(seed)
    gt = gt.select(gt.score > 0)  # drop boxes marked "ignore"
    if len(gt) == 0:
        return []
    windows = []
    for start in range(gt.frame.min(), gt.frame.max() - length + 2, stride):
        frames = np.arange(start, start + length)
        inside = gt.select((gt.frame >= start) & (gt.frame < start + length))
        ids, counts = np.unique(inside.track_id, return_counts=True)
        full = ids[counts == length]
        if len(full) < num_tracks:
            continue
        groups = list(itertools.combinations(full, num_tracks))
        picks = rng.choice(len(groups), size=min(groups_per_window, len(groups)), replace=False)
        for group in (np.array(groups[i]) for i in sorted(picks)):
            xywh = np.stack([inside.box[inside.track_id == i][np.argsort(inside.frame[inside.track_id == i])]
                             for i in group], axis=1)  # (T, N, 4)
            tracks = xywh_to_xyxy(xywh)
            if detections is None:
                det, mask, labels = simulate_detections(tracks, jitter, miss_rate, rng)
            else:
                matched = [_match_detections(xywh[t], detections.at_frame(f), match_iou)
                           for t, f in enumerate(frames)]
                boxes = xywh_to_xyxy(np.stack([m[0] for m in matched]))
                detected = np.stack([m[1] for m in matched])  # (T, N)
                if detected.mean(0).min() < min_detection_rate:
                    continue
                det, mask, labels = _pack(boxes, detected, rng)
            windows.append(TrackWindow(sequence, frames, group, tracks, det, mask, labels, tuple(image_size)))
    return windows


def track_segments(gt: MotRecords, length: int, hop: int, image_size: tuple[float, float]):
    """Every stretch of ``length`` consecutive frames of every ground-truth track (cut every ``hop`` frames):
    real motion to train a trajectory prior. Returns boxes (M, length, 4), x1, y1, x2, y2 divided by the
    image size, and the track id of each segment (M,)."""
    gt = gt.select(gt.score > 0)
    scale = np.array(tuple(image_size) * 2, dtype=np.float64)
    segments, ids = [], []
    for track in np.unique(gt.track_id):
        rows = gt.select(gt.track_id == track)
        order = np.argsort(rows.frame)
        frames, boxes = rows.frame[order], xywh_to_xyxy(rows.box[order]) / scale
        breaks = np.flatnonzero(np.diff(frames) != 1) + 1  # a track may leave the image and come back
        for run_frames, run_boxes in zip(np.split(frames, breaks), np.split(boxes, breaks)):
            starts = range(0, len(run_frames) - length + 1, hop)
            segments += [run_boxes[i:i + length] for i in starts]
            ids += [track] * len(starts)
    return (np.stack(segments) if segments else np.zeros((0, length, 4))), np.array(ids, dtype=int)


def occlusion_detections(tracks: np.ndarray, visibility: np.ndarray, jitter: float = 0.05, miss_rate: float = 0.05,
                         burst: float = 5.0, min_visibility: float = 0.3, rng: np.random.Generator | None = None):
    """Noisy, shuffled detections of (T, N, 4) x1y1x2y2 boxes with visibility (T, N): (detections, mask, labels)."""
    rng = np.random.default_rng() if rng is None else rng
    T, N, _ = tracks.shape
    size = np.abs(xyxy_to_xywh(tracks)[..., 2:])
    noisy = tracks + rng.normal(size=tracks.shape) * jitter * np.concatenate([size, size], axis=-1)
    leave = 1.0 / burst  # P(miss -> detected)
    enter = leave * miss_rate / (1.0 - miss_rate)  # P(detected -> miss): stationary miss probability miss_rate
    missing = np.zeros((T, N), dtype=bool)
    state = rng.random(N) < miss_rate
    for t in range(T):
        missing[t] = state
        u = rng.random(N)
        state = np.where(state, u >= leave, u < enter)
    return _pack(noisy, ~missing & (visibility >= min_visibility), rng)
