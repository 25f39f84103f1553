"""The multi-sensor file contract of sensor fusion (``fuse``) and imputation (``impute``): one ``.npz`` per split.

    x_<name>     (N, T, D_name) float32   one array per sensor (any number of sensors, any widths)
    mask_<name>  (N, T)         {0, 1}    optional: 1 where sensor ``name`` was observed in that frame
    y            (N, T)         {0, 1}    the label of every frame (fusion; optional for prediction-only files)
    group        (N,)           int       optional: the recording (speaker, patient) each sequence comes from;
                                          held-out splits then keep a group whole, so that they measure
                                          generalisation to new recordings, not to new cuts of the same ones
    corrupted_<name> (N, T)     {0, 1}    optional: 1 where sensor ``name`` is known to fail (a lead off, noise
                                          above the speech). In a training file these marks teach the gate of
                                          the attention mixtures to look away (``failure_marks``); in a test
                                          file the benchmarks score the gate's weight there (a
                                          mark must name a sensor of the file)

Missing frames: a frame of ``x_<name>`` holding NaN is missing (its mask is 0, whatever ``mask_<name>`` says)
and is stored as zeros in memory, so that no NaN reaches a network; values under mask 0 are never read.
Sensors are always handled in sorted name order, so the attention weights a model writes, (N, T, M), have
their last axis in that order too. ``load_fusion`` refuses a file that breaks the contract with an error
naming the file and the array; ``save_fusion`` writes through a temporary file and ``os.replace``.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class FusionData:
    """Synchronised sensor streams and (optionally) per-frame binary labels."""

    sensors: dict[str, np.ndarray]  # name -> (N, T, D_name) float32, names in sorted order
    y: np.ndarray | None = None  # (N, T) float32 in {0, 1}
    masks: dict[str, np.ndarray] | None = None  # name -> (N, T) float32, 1 = observed; None = all observed
    groups: np.ndarray | None = None  # (N,) int: the recording each sequence comes from; None = all distinct
    failing: dict[str, np.ndarray] | None = None  # name -> (N, T) float32, 1 = known to fail; None = no marks

    def mask(self, name: str) -> np.ndarray:
        """(N, T) float32 observation mask of sensor ``name`` (ones where the file gives none)."""
        if self.masks is not None and name in self.masks:
            return self.masks[name]
        return np.ones(self.shape, np.float32)

    @property
    def complete(self) -> bool:
        """True when every sensor is observed in every frame."""
        return self.masks is None or all(m.all() for m in self.masks.values())

    @property
    def names(self) -> list[str]:
        return list(self.sensors)

    @property
    def shape(self) -> tuple[int, int]:
        """(N sequences, T frames)."""
        return next(iter(self.sensors.values())).shape[:2]

    def held_out(self, seed: int, hold: bool = True) -> np.ndarray | None:
        """(N,) bool: a random tenth of the sequences, or of the groups, held out for early stopping; None when
        ``hold`` is False, or there are fewer than 10 sequences or 2 groups."""
        if not hold or self.shape[0] < 10 or len(self._group_names()[1]) < 2:
            return None
        return self.taken(0.1, seed)

    def hold_out(self, seed: int, hold: bool = True) -> tuple["FusionData", "FusionData | None"]:
        """(the rest, the ``held_out`` sequences), or (self, None) when there are none."""
        held = self.held_out(seed, hold)
        return (self, None) if held is None else (self.subset(~held), self.subset(held))

    def _group_names(self) -> tuple[np.ndarray, np.ndarray]:
        """(each sequence's group (N,), the distinct groups, sorted); one group per sequence without ``group``."""
        groups = np.arange(self.shape[0]) if self.groups is None else self.groups
        return groups, np.unique(groups)

    def taken(self, share: float, seed: int) -> np.ndarray:
        """(N,) bool: a random ``share`` of the sequences, drawn by whole groups when the file has them."""
        groups, names = self._group_names()
        if len(names) < 2:
            raise ValueError(f"cannot split {len(names)} group(s) into two parts")
        order = np.random.default_rng(seed).permutation(names)
        return np.isin(groups, order[:min(len(names) - 1, max(1, round(share * len(names))))])

    def folds(self, k: int, seed: int) -> np.ndarray:
        """(N,) int: each sequence's fold in 0..k-1, whole groups together, the groups dealt out at random."""
        groups, names = self._group_names()
        if not 2 <= k <= len(names):
            raise ValueError(f"cannot deal {len(names)} group(s) into {k} folds")
        fold_of_group = np.empty(len(names), int)
        fold_of_group[np.random.default_rng(seed).permutation(len(names))] = np.arange(len(names)) % k
        return fold_of_group[np.searchsorted(names, groups)]

    def subset(self, index) -> "FusionData":
        """The sequences ``index`` (a slice, an index array or a boolean mask)."""
        return FusionData({k: v[index] for k, v in self.sensors.items()}, None if self.y is None else self.y[index],
                          None if self.masks is None else {k: v[index] for k, v in self.masks.items()},
                          None if self.groups is None else self.groups[index],
                          None if self.failing is None else {k: v[index] for k, v in self.failing.items()})

    def failing_frames(self) -> dict[str, np.ndarray]:
        """name -> (N, T) bool: the frames where each marked sensor fails (empty without marks)."""
        return {k: v > 0.5 for k, v in (self.failing or {}).items()}

    def failure_marks(self) -> np.ndarray | None:
        """(N, T, M) float32: the ``corrupted_<name>`` marks in sensor order (zeros for an unmarked sensor), or
        None when the data has none."""
        if not self.failing:
            return None
        return np.stack([self.failing.get(n, np.zeros(self.shape, np.float32)) for n in self.names], -1)


def check_fusion(data: FusionData, source: str = "data") -> FusionData:
    """Validate shapes, dtypes and values; return ``data`` with sensors sorted by name and float32 arrays."""
    if not data.sensors:
        raise ValueError(f"{source}: no sensor arrays (expected at least one 'x_<name>' of shape (N, T, D))")
    sensors, masks, shape = {}, {}, None
    for prefix, named in (("mask", data.masks), ("corrupted", data.failing)):
        unknown = set(named or {}) - set(data.sensors)
        if unknown:
            raise ValueError(f"{source}: {prefix}_{sorted(unknown)[0]} has no matching x_{sorted(unknown)[0]}")
    for name in sorted(data.sensors):
        x = np.asarray(data.sensors[name])
        if x.ndim != 3:
            raise ValueError(f"{source}: x_{name} has shape {x.shape}, expected (N, T, D)")
        if shape is not None and x.shape[:2] != shape:
            raise ValueError(f"{source}: x_{name} has (N, T) = {x.shape[:2]} but other sensors have {shape}")
        if np.isinf(x).any():
            raise ValueError(f"{source}: x_{name} contains infinite values")
        shape = x.shape[:2]
        mask = np.ones(shape, np.float32)
        if data.masks is not None and name in data.masks:
            mask = np.asarray(data.masks[name])
            if mask.shape != shape:
                raise ValueError(f"{source}: mask_{name} has shape {mask.shape}, expected (N, T) = {shape}")
            if not np.isin(mask, (0, 1)).all():
                raise ValueError(f"{source}: mask_{name} must hold 0 (missing) or 1 (observed)")
        observed = mask.astype(bool) & ~np.isnan(x).any(-1)
        sensors[name] = np.where(observed[..., None], x, 0).astype(np.float32)
        masks[name] = observed.astype(np.float32)
    y = data.y
    if y is not None:
        y = np.asarray(y)
        if y.shape != shape:
            raise ValueError(f"{source}: y has shape {y.shape}, expected (N, T) = {shape}")
        if not np.isin(y, (0, 1)).all():
            raise ValueError(f"{source}: y must hold labels 0 or 1, found {np.unique(y)[:5]}")
        y = y.astype(np.float32)
    groups = data.groups
    if groups is not None:
        groups = np.asarray(groups)
        if groups.shape != shape[:1] or not np.issubdtype(groups.dtype, np.integer):
            raise ValueError(f"{source}: group must be integers of shape (N,) = ({shape[0]},), got {groups.dtype} "
                             f"{groups.shape}")
    failing = {}
    for name, marks in sorted((data.failing or {}).items()):
        marks = np.asarray(marks)
        if marks.shape != shape or not np.isin(marks, (0, 1)).all():
            raise ValueError(f"{source}: corrupted_{name} must hold 0 or 1 in shape (N, T) = {shape}, got "
                             f"{marks.dtype} {marks.shape}")
        failing[name] = marks.astype(np.float32)
    return FusionData(sensors, y, None if all(m.all() for m in masks.values()) else masks, groups, failing or None)


def load_fusion(path: str | os.PathLike, require_labels: bool = False) -> FusionData:
    """Read a fusion ``.npz``; ``require_labels`` makes a missing ``y`` an error."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"fusion data file not found: {path}")
    try:
        with np.load(path) as f:
            arrays = {k: f[k] for k in f.files}
    except Exception as e:  # a truncated or non-npz file
        raise ValueError(f"{path}: not a readable .npz file ({e})") from e
    sensors = {k[2:]: v for k, v in arrays.items() if k.startswith("x_") and len(k) > 2}
    masks = {k[5:]: v for k, v in arrays.items() if k.startswith("mask_") and len(k) > 5}
    failing = {k[10:]: v for k, v in arrays.items() if k.startswith("corrupted_") and len(k) > 10}
    if require_labels and "y" not in arrays:
        raise ValueError(f"{path}: no 'y' array of labels (N, T), needed here")
    return check_fusion(FusionData(sensors, arrays.get("y"), masks or None, arrays.get("group"), failing or None),
                        str(path))


def save_fusion(path: str | os.PathLike, data: FusionData | None = None, **extra: np.ndarray) -> Path:
    """Write ``data`` (as ``x_<name>``, ``y`` and the optional arrays of the contract) plus any ``extra``
    arrays, atomically."""
    path = Path(path)
    arrays = dict(extra)
    if data is not None:
        data = check_fusion(data, str(path))
        arrays.update({f"x_{k}": v for k, v in data.sensors.items()})
        if data.masks is not None:
            arrays.update({f"mask_{k}": v for k, v in data.masks.items()})
        if data.y is not None:
            arrays["y"] = data.y
        if data.groups is not None:
            arrays["group"] = data.groups
        if data.failing is not None:
            arrays.update({f"corrupted_{k}": v for k, v in data.failing.items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".npz", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
