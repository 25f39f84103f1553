"""MOTChallenge text files (ground truth, detections, tracker results) and box geometry.

A MOTChallenge line is ``frame, id, x, y, w, h, conf, ...`` with 1-based frames and the box's top-left
corner (x, y), width and height in pixels; detection files use id = -1. ``read_mot`` accepts commas or
white space and rejects malformed lines with ``file:line: reason``.
"""

from __future__ import annotations

import configparser
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_SPLIT = re.compile(r"[,\s]+")


@dataclass
class MotRecords:
    """Rows of a MOTChallenge file, as parallel arrays."""

    frame: np.ndarray  # (R,) int, 1-based
    track_id: np.ndarray  # (R,) int, -1 for detections
    box: np.ndarray  # (R, 4) float: x, y, w, h (top-left corner, pixels)
    score: np.ndarray  # (R,) float: confidence (gt: 1 = consider, 0 = ignore)

    def __len__(self) -> int:
        return len(self.frame)

    def select(self, rows) -> "MotRecords":
        return MotRecords(self.frame[rows], self.track_id[rows], self.box[rows], self.score[rows])

    def at_frame(self, frame: int) -> "MotRecords":
        return self.select(self.frame == frame)


def read_mot(path: str | os.PathLike) -> MotRecords:
    """Read a MOTChallenge gt / det / results file; raise ValueError naming ``file:line`` on bad input."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such MOTChallenge file")
    rows = []
    with open(path) as handle:
        for lineno, line in enumerate(handle, 1):
            line = line.strip()
            if not line:
                continue
            fields = [f for f in _SPLIT.split(line) if f]
            if len(fields) < 6:
                raise ValueError(f"{path}:{lineno}: expected at least 6 fields "
                                 f"(frame, id, x, y, w, h), got {len(fields)}: {line!r}")
            try:
                values = [float(f) for f in fields[:7]]
            except ValueError:
                raise ValueError(f"{path}:{lineno}: non-numeric field in {line!r}") from None
            if not np.all(np.isfinite(values)):
                raise ValueError(f"{path}:{lineno}: NaN or infinite value in {line!r}")
            if values[0] != int(values[0]) or values[0] < 1:
                raise ValueError(f"{path}:{lineno}: frame must be a positive integer, got {fields[0]!r}")
            if values[4] < 0 or values[5] < 0:
                raise ValueError(f"{path}:{lineno}: negative box width or height in {line!r}")
            rows.append(values + [1.0] * (7 - len(values)))
    table = np.asarray(rows, dtype=np.float64).reshape(-1, 7)
    return MotRecords(table[:, 0].astype(np.int64), table[:, 1].astype(np.int64), table[:, 2:6].copy(),
                      table[:, 6].copy())


def write_mot(path: str | os.PathLike, records: MotRecords) -> Path:
    """Write MOTChallenge results ``frame,id,x,y,w,h,conf,-1,-1,-1`` atomically, sorted by frame then id."""
    path = Path(path)
    order = np.lexsort((records.track_id, records.frame))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "w") as handle:
            for i in order:
                x, y, w, h = records.box[i]
                handle.write(f"{records.frame[i]},{records.track_id[i]},{x:.2f},{y:.2f},{w:.2f},{h:.2f},"
                             f"{records.score[i]:.4g},-1,-1,-1\n")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def read_seqinfo(sequence_dir: str | os.PathLike) -> dict:
    """``seqinfo.ini`` of a MOTChallenge sequence folder as a dict (name, imWidth, imHeight, ...), or {}."""
    ini = Path(sequence_dir) / "seqinfo.ini"
    if not ini.is_file():
        return {}
    parser = configparser.ConfigParser()
    parser.optionxform = str  # keep the camelCase keys (imWidth, seqLength)
    parser.read(ini)
    section = parser["Sequence"] if parser.has_section("Sequence") else {}
    return {k: (int(v) if v.isdigit() else v) for k, v in section.items()}


def xywh_to_xyxy(box: np.ndarray) -> np.ndarray:
    """(x, y, w, h) -> (x1, y1, x2, y2)."""
    box = np.asarray(box, dtype=np.float64)
    return np.concatenate([box[..., :2], box[..., :2] + box[..., 2:]], axis=-1)


def xyxy_to_xywh(box: np.ndarray) -> np.ndarray:
    """(x1, y1, x2, y2) -> (x, y, w, h)."""
    box = np.asarray(box, dtype=np.float64)
    return np.concatenate([box[..., :2], box[..., 2:] - box[..., :2]], axis=-1)


def iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Pairwise intersection over union of (n, 4) and (m, 4) boxes in (x, y, w, h) -> (n, m).

    Continuous coordinates (no +1 on widths), as py-motmetrics and the MOTChallenge devkit use.
    """
    a = xywh_to_xyxy(np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4))[:, None]  # (n, 1, 4)
    b = xywh_to_xyxy(np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4))[None]  # (1, m, 4)
    size = np.clip(np.minimum(a[..., 2:], b[..., 2:]) - np.maximum(a[..., :2], b[..., :2]), 0, None)
    inter = size[..., 0] * size[..., 1]
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def to_prior_coords(boxes, frame: str = "y-up"):
    """(x1, y1, x2, y2) with y down <-> a prior's boxes; both maps are their own inverse.

    ``y-up`` (ours): (x, y, x + w, y - h) with y up, i.e. y -> 1 - y. ``y-down`` (MixDVAE's): (x1, y1, x2, y1 - h)
    with y down, i.e. y2 -> 2 y1 - y2."""
    out = boxes.clone() if hasattr(boxes, "clone") else np.array(boxes, dtype=np.float64)  # a tensor, or array-like
    if frame == "y-up":
        out[..., 1::2] = 1 - out[..., 1::2]
    elif frame == "y-down":
        out[..., 3] = 2 * out[..., 1] - out[..., 3]
    else:
        raise ValueError(f"unknown box frame {frame!r} (y-up or y-down)")
    return out
