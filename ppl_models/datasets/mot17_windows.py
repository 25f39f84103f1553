"""MOT17 development windows (the MixDVAE paper's MOT17-3T protocol) with simulated, occlusion-aware detections.

MOT17's ground truth boxes every pedestrian in every frame it is in the image, occluded or not, with the visible
fraction of its box (``visibility``). A window is T = 60 consecutive frames (every 40) and N = 3 pedestrians
boxed in all of them; its detections are simulated from the ground truth:

* jitter: each corner coordinate + N(0, (jitter * box side)^2);
* occlusion misses: no detection while visibility < ``min_visibility``;
* bursty misses: a two-state Markov chain per track, missing ``miss_rate`` of the frames on average in bursts
  of ``burst`` frames on average (P(miss -> detected) = 1 / burst).

A group is kept when each of its tracks is detected in at least ``min_observed`` of the frames (65 %, as the
paper). Per window, ``groups_per_window`` random groups and, with ``crossing``, up to as many groups in which two
tracks cross (their left-to-right order flips while their boxes overlap): identities are hardest to keep there.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from ppl_models.data.mot import MotRecords, iou, read_mot, xywh_to_xyxy, xyxy_to_xywh
from ppl_models.data.track_windows import TrackWindow, occlusion_detections


def read_mot17_gt(path: str | Path) -> tuple[MotRecords, np.ndarray]:
    """Pedestrians (class 1, consider flag 1) of a MOT16/17 gt file and their visibility in [0, 1]."""
    records = read_mot(path)
    table = np.loadtxt(path, delimiter=",", ndmin=2)
    if table.shape != (len(records), 9):
        raise ValueError(f"{path}: expected MOT17 gt lines frame,id,x,y,w,h,consider,class,visibility")
    keep = (table[:, 6] == 1) & (table[:, 7] == 1)
    return records.select(keep), table[keep, 8]


def crosses(tracks: np.ndarray) -> bool:
    """Whether two of the (T, N, 4) tracks swap their left-to-right order at a frame where their boxes overlap."""
    centre = (tracks[..., 0] + tracks[..., 2]) / 2  # (T, N)
    for i, j in itertools.combinations(range(tracks.shape[1]), 2):
        flips = np.flatnonzero(np.diff(np.sign(centre[:, i] - centre[:, j])) != 0)
        if any(iou(xyxy_to_xywh(tracks[t, i]), xyxy_to_xywh(tracks[t, j]))[0, 0] > 0 for t in flips):
            return True
    return False


def mot17_windows(gt: MotRecords, visibility: np.ndarray, sequence: str, image_size: tuple[float, float],
                  num_tracks: int = 3, length: int = 60, stride: int = 40, min_observed: float = 0.65,
                  groups_per_window: int = 2, crossing: bool = True, seed: int = 0, **detection_args):
    """The development windows of one sequence (see the module's docstring); ``detection_args`` go to
    :func:`occlusion_detections`."""
    rng = np.random.default_rng(seed)
    windows = []
    for start in range(gt.frame.min(), gt.frame.max() - length + 2, stride):
        frames = np.arange(start, start + length)
        inside = (gt.frame >= start) & (gt.frame < start + length)
        ids, counts = np.unique(gt.track_id[inside], return_counts=True)
        full = ids[counts == length]
        boxes, vis = {}, {}
        for i in full:
            rows = np.flatnonzero(inside & (gt.track_id == i))
            rows = rows[np.argsort(gt.frame[rows])]
            boxes[i], vis[i] = xywh_to_xyxy(gt.box[rows]), visibility[rows]
        groups = [np.array(g) for g in itertools.combinations(full, num_tracks)]
        order = rng.permutation(len(groups))
        chosen, crossed = [], []
        for g in (groups[i] for i in order):
            tracks = np.stack([boxes[i] for i in g], axis=1)
            is_crossing = crossing and len(crossed) < groups_per_window and crosses(tracks)
            if not is_crossing and len(chosen) >= groups_per_window:
                continue
            det, mask, labels = occlusion_detections(tracks, np.stack([vis[i] for i in g], axis=1),
                                                     rng=rng, **detection_args)
            observed = np.array([(labels == n).sum() for n in range(num_tracks)]) / length
            if observed.min() < min_observed:
                continue
            (crossed if is_crossing else chosen).append(TrackWindow(sequence, frames, g, tracks, det, mask, labels,
                                                                    tuple(image_size)))
            if len(chosen) >= groups_per_window and (not crossing or len(crossed) >= groups_per_window):
                break
        windows += chosen + crossed
    return windows
