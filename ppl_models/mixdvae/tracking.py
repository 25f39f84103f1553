"""Multi-object tracking with MixDVAE and its baselines, on batches of N-track windows.

Boxes travel as (x1, y1, x2, y2) in normalised image coordinates (y down). Our trajectory priors were trained
on boxes drawn with y pointing up, (x, y, x + w, y - h) (``data.synthetic.trajectories``), so the tracker
flips the vertical axis on the way in and back on the way out (:func:`to_prior_coords`, its own inverse).
MixDVAE's published prior (``import-prior --from mixdvae``) reads (x1, y1, x2, y1 - h) with y down: its
``box_frame`` is ``y-down`` and every function below that converts takes the prior's ``frame``.

Sources are initialised from the detections of the first frame in which there are at least N of them (or as
many as there are), whatever their order, and kept static over the window; VEM then moves them. A static
guess is far from people who walk a few box widths in a window, so :func:`progressive_init` refines it chunk
by chunk first, as the reference implementation does (sub-sequences of 30 frames, 20 iterations each).
:func:`kalman_start` (the default of ``ppl-models track``) starts it instead from the tracks of an on-line
constant-velocity Kalman filter with Hungarian matching, whose identities through crossings the VEM then keeps.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from ppl_models.data.mot import MotRecords, to_prior_coords, xywh_to_xyxy, xyxy_to_xywh
from ppl_models.data.track_windows import TrackWindow
from ppl_models.mixdvae.baselines import kalman_hungarian
from ppl_models.mixdvae.inference import fit
from ppl_models.metrics.tracking import summarize


def windows_to_tensors(windows: list[TrackWindow], device="cpu", frame: str = "y-up"):
    """Stack normalised windows of equal length: obs (B, T, K, 4) in prior coordinates, mask (B, T, K)."""
    if len({w.detections.shape for w in windows}) != 1:
        raise ValueError("windows must share length and detection count to be batched")
    obs = torch.as_tensor(np.stack([to_prior_coords(w.detections, frame) for w in windows]), dtype=torch.float32)
    mask = torch.as_tensor(np.stack([w.mask for w in windows]))
    return (obs * mask[..., None]).to(device), mask.to(device)


def initial_sources(obs: torch.Tensor, mask: torch.Tensor, num_sources: int) -> torch.Tensor:
    """(B, N, T, D): each source at one detection of the earliest frame with the most (up to N) detections,
    repeated over the window. Missing sources (fewer than N detections everywhere) start at the image centre."""
    B, T, K, D = obs.shape
    counts = mask.sum(-1).clamp(max=num_sources)  # (B, T)
    first = (counts == counts.max(-1, keepdim=True).values).float().argmax(-1)  # (B,)
    init = torch.full((B, num_sources, D), 0.5, device=obs.device, dtype=obs.dtype)
    for b in range(B):
        boxes = obs[b, first[b]][mask[b, first[b]]][:num_sources]
        init[b, :len(boxes)] = boxes
    return init[:, :, None].expand(B, num_sources, T, D).contiguous()


def progressive_init(track, obs: torch.Tensor, mask: torch.Tensor, init: torch.Tensor, chunk: int = 30):
    """A moving initialisation (B, N, T, D) for a batch tracker: ``track(obs, mask, init) -> sources`` runs on
    the first ``chunk`` frames from ``init``, then on each next chunk from static sources where the previous
    chunk left them; the concatenated estimates start the tracker on the whole window."""
    T = obs.shape[1]
    pieces, start = [], init[:, :, :1]
    for t0 in range(0, T, chunk):
        t1 = min(t0 + chunk, T)
        piece = track(obs[:, t0:t1], mask[:, t0:t1], start.expand(-1, -1, t1 - t0, -1).contiguous())
        pieces.append(piece)
        start = piece[:, :, -1:]
    return torch.cat(pieces, dim=2)


def boxes_to_records(xyxy: np.ndarray, frames: np.ndarray, ids: np.ndarray) -> MotRecords:
    """(N, T, 4) image-coordinate boxes of N tracks over ``frames`` -> MOT records (x, y, w, h), one id each
    (corners put in order: a source's estimate may have crossed them)."""
    N, T, _ = xyxy.shape
    lo, hi = np.minimum(xyxy[..., :2], xyxy[..., 2:]), np.maximum(xyxy[..., :2], xyxy[..., 2:])
    box = xyxy_to_xywh(np.concatenate([lo, hi], axis=-1)).reshape(-1, 4)
    return MotRecords(np.tile(frames, N), np.repeat(ids, T), box, np.ones(N * T))


def estimates_to_records(sources: np.ndarray, frames: np.ndarray, first_id: int = 1,
                         frame: str = "y-up") -> MotRecords:
    """(N, T, 4) boxes in prior coordinates -> MOT records with ids first_id .. first_id + N - 1."""
    return boxes_to_records(to_prior_coords(sources, frame), frames, np.arange(first_id, first_id + len(sources)))


def window_gt_records(window: TrackWindow) -> MotRecords:
    return boxes_to_records(window.tracks.transpose(1, 0, 2), window.frames, window.track_ids)


def evaluate_windows(windows: list[TrackWindow], estimates: np.ndarray, frame: str = "y-up") -> dict:
    """CLEAR-MOT / identity metrics per window and OVERALL; estimates (B, N, T, 4) in prior coordinates."""
    pairs = {f"{w.sequence}#{i}": (window_gt_records(w), estimates_to_records(estimates[i], w.frames, frame=frame))
             for i, w in enumerate(windows)}
    table = summarize(pairs)
    return table if "OVERALL" in table else {**table, "OVERALL": next(iter(table.values()))}  # one window


def identity_switches(window: TrackWindow, estimates: np.ndarray, frame: str = "y-up") -> list[tuple[int, int, int]]:
    """py-motmetrics' identity switches of (N, T, 4) estimates (prior coordinates) on one window:
    (frame index t, ground-truth track index, estimate index) each, the estimate that takes the track over."""
    from ppl_models.metrics.tracking import accumulate

    hypotheses = estimates_to_records(estimates, window.frames, frame=frame)
    events = accumulate(window_gt_records(window), hypotheses).mot_events
    switches = events[events.Type == "SWITCH"]
    first, ids = int(window.frames[0]), list(window.track_ids)
    return [(int(f) - first, ids.index(o), int(h) - 1)
            for (f, _), o, h in zip(switches.index, switches.OId, switches.HId)]


def detections_by_frame(records: MotRecords, image_size: tuple[float, float], frames: np.ndarray,
                        frame: str = "y-up"):
    """obs (1, T, K, 4) in prior coordinates and mask (1, T, K) for the given frames, K the most per frame."""
    scale = np.array(image_size * 2, dtype=np.float64)
    per_frame = [to_prior_coords(xywh_to_xyxy(records.at_frame(f).box) / scale, frame) for f in frames]
    K = max(1, max(len(p) for p in per_frame))
    obs = np.zeros((1, len(frames), K, 4))
    mask = np.zeros((1, len(frames), K), dtype=bool)
    for t, boxes in enumerate(per_frame):
        obs[0, t, :len(boxes)], mask[0, t, :len(boxes)] = boxes, True
    return torch.as_tensor(obs, dtype=torch.float32), torch.as_tensor(mask)


def kalman_start(obs: torch.Tensor, mask: torch.Tensor, init: torch.Tensor, accel: float, noise: float):
    """A moving initialisation (B, N, T, D) from the on-line Kalman + Hungarian tracker started at ``init``'s
    first frame: its identities through crossings are the VEM's starting point."""
    return kalman_hungarian(obs, mask, init, noise=noise, accel=accel).to(obs.device)


def track_detections(records: MotRecords, num_sources: int, image_size: tuple[float, float], mix_factory,
                     guide: str = "vem", iterations: int = 100, window: int = 60, init_iterations: int = 20,
                     start: str = "progressive", accel: float = 0.01, noise: float = 0.1,
                     device="cpu", progress: bool = False, frame: str = "y-up") -> MotRecords:
    """Track ``num_sources`` objects through a whole detection file, ``window`` frames at a time.

    The first chunk starts its sources from the first frame with enough detections; each later chunk starts
    them where the previous chunk left them, which carries the identities across chunks (sec. 5.3 of the
    paper tracks long sequences by such chunks); within a chunk, :func:`progressive_init` with
    ``init_iterations`` per 30-frame piece (0: static start), or with ``start="kalman"`` from
    :func:`kalman_start` (acceleration and detection noise std ``accel``, ``noise`` relative to the box).
    ``mix_factory()`` builds a fresh MixDVAE;
    ``frame``: its prior's ``box_frame``."""
    if len(records) == 0:
        raise ValueError("the detection file holds no detections")
    all_frames = np.arange(records.frame.min(), records.frame.max() + 1)
    chunks = [all_frames[i:i + window] for i in range(0, len(all_frames), window)]
    out, last = [], None
    for frames in tqdm(chunks, desc="chunks", disable=not progress):
        obs, mask = (a.to(device) for a in detections_by_frame(records, image_size, frames, frame))
        init = (initial_sources(obs, mask, num_sources) if last is None
                else last[None, :, None].expand(1, num_sources, len(frames), 4).contiguous())
        if start == "kalman":
            init = kalman_start(obs, mask, init, accel, noise)
        elif init_iterations:
            init = progressive_init(lambda o, m, i: fit(mix_factory(), o, m, i, guide=guide,
                                                        iterations=init_iterations).sources, obs, mask, init)
        result = fit(mix_factory(), obs, mask, init, guide=guide, iterations=iterations)
        sources = result.sources[0].cpu()  # (N, T, 4)
        last = sources[:, -1].to(device)
        out.append(estimates_to_records(sources.numpy(), frames, frame=frame))
    scale = np.array(image_size * 2)
    return MotRecords(np.concatenate([r.frame for r in out]), np.concatenate([r.track_id for r in out]),
                      np.concatenate([r.box for r in out]) * scale, np.concatenate([r.score for r in out]))
