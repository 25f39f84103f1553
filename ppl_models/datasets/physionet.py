"""Real multi-sensor physiology for imputation: the PhysioNet records in ``multimodal_physionet_wfdb``, as
windows of synchronised frames in the multi-sensor file contract (``x_<sensor>`` (N, T, D), ``mask_<sensor>``).

Records (both real, ICU monitors; see the folder's PROVENANCE.md):
    a103l         ECG leads II and V, PLETH, all at 250 Hz, 330 s, no gaps
    mixedsignals  ECG II, III, V at 249.89 Hz; arterial pressure (ABP) and PLETH at 124.945 Hz; respiration
                  at 62.47 Hz; 230.5 s; NaN samples = real missing data (in the ECG leads and ABP)

Layer by layer:
1. Common rate: every channel is decimated by an integer factor (scipy's anti-aliasing ``decimate``) to
   ~62.5 Hz. NaN samples are bridged by linear interpolation for the filter only and remembered.
2. Frames: 4 consecutive samples (64 ms); a sensor's frame holds 4 samples of each of its channels
   (ECG II, V: D = 8). A frame with any originally missing sample of a sensor is missing (mask 0).
3. Normalisation: per channel, minus the median and divided by the interquartile range / 1.35 of the
   *training* part (robust: the records have artifacts).
4. Split in time: train = the first 70 % of the record (windows of ``frames`` frames, hop ``frames // 2``),
   test = the last 30 % (windows without overlap). No sample is in both.

``sensors`` picks and groups the channels: each item is a sensor of the record (``ecg``: all its leads) or one
channel, which becomes a sensor of its own named in lower case (``II`` -> ``ii``): ``["II", "V"]`` asks for
lead V from lead II, ``["ecg", "abp"]`` for the pressure from the three leads and nothing else.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from scipy.signal import decimate

from ppl_models.data.fusion_files import FusionData, check_fusion

FOLDER = "multimodal_physionet_wfdb"
TARGET_RATE = 62.5  # Hz, approximately: integer decimation of each channel
SAMPLES_PER_FRAME = 4
TRAIN_SHARE = 0.7
RECORDS = {  # record -> sensor -> channels (arrays of the .npz)
    "a103l": {"ecg": ["II", "V"], "pleth": ["PLETH"]},
    "mixedsignals": {"abp": ["ABP"], "ecg": ["II", "III", "V"], "pleth": ["Pleth"], "resp": ["Resp"]},
}


def load_channels(path: Path) -> dict[str, tuple[np.ndarray, float]]:
    """channel name -> (samples (S,) float64, may hold NaN; sample rate) from a converted record."""
    if not path.is_file():
        raise FileNotFoundError(f"record not found: {path}")
    with np.load(path) as f:
        if "signals" in f.files:  # one rate: signals (S, C), fs, sig_name
            fs = float(f["fs"])
            return {str(n): (f["signals"][:, i].astype(np.float64), fs) for i, n in enumerate(f["sig_name"])}
        return {k[4:]: (f[k].astype(np.float64), float(f[f"fs_{k[4:]}"])) for k in f.files if k.startswith("sig_")}


def to_common_rate(x: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """(decimated samples, missing flags) at ~TARGET_RATE; NaNs bridged for the filter, flagged afterwards."""
    factor = int(round(fs / TARGET_RATE))
    missing = np.isnan(x)
    if missing.all():
        raise ValueError("a channel with no observed sample")
    if missing.any():
        t = np.arange(len(x))
        x = x.copy()
        x[missing] = np.interp(t[missing], t[~missing], x[~missing])
    if factor > 1:
        x = decimate(x, factor, zero_phase=True)
        missing = missing[:len(missing) // factor * factor].reshape(-1, factor).any(1)
    return x[:len(missing)], missing[:len(x)]


def _windows(n_frames: int, frames: int, hop: int) -> np.ndarray:
    return np.arange(0, n_frames - frames + 1, hop)


def choose_sensors(record: str, sensors: list[str] | None) -> dict[str, list[str]]:
    """sensor name -> channels for ``sensors`` (module docstring); None: the record's own sensors."""
    groups = RECORDS[record]
    if not sensors:
        return groups
    channels = {c.lower(): c for names in groups.values() for c in names}
    out = {}
    for item in sensors:
        key = item.lower()
        if key in groups:
            out[key] = groups[key]
        elif key in channels:
            out[key] = [channels[key]]
        else:
            raise ValueError(f"sensors: {item!r} is neither a sensor ({', '.join(groups)}) nor a channel "
                             f"({', '.join(channels.values())}) of {record}")
    taken = [c for names in out.values() for c in names]
    if len(taken) != len(set(taken)) or len(out) != len(sensors):
        raise ValueError(f"sensors: {', '.join(sensors)} name a channel twice")
    return dict(sorted(out.items()))


def build_physionet(data_root: str | os.PathLike, record: str = "a103l", frames: int = 64,
                    sensors: list[str] | None = None) -> tuple[FusionData, FusionData, dict]:
    """(train, test, meta) windows of ``record``; meta: sensor channels, frame rate, the normalisation."""
    if record not in RECORDS:
        raise ValueError(f"record must be one of {sorted(RECORDS)}, got {record!r}")
    chosen = choose_sensors(record, sensors)
    if frames < 4:
        raise ValueError(f"frames must be at least 4, got {frames}")
    path = Path(data_root) / FOLDER / f"{record}.npz"
    channels = load_channels(path)
    series, flags, rates = {}, {}, []
    for sensor, names in chosen.items():
        for name in names:
            if name not in channels:
                raise ValueError(f"{path}: no channel {name!r} (has {sorted(channels)})")
            x, fs = channels[name]
            series[name], flags[name] = to_common_rate(x, fs)
            rates.append(fs / int(round(fs / TARGET_RATE)))
    length = min(len(v) for v in series.values()) // SAMPLES_PER_FRAME * SAMPLES_PER_FRAME
    n_frames = length // SAMPLES_PER_FRAME
    cut = int(TRAIN_SHARE * n_frames)
    norm = {}
    for name, x in series.items():  # robust per-channel normalisation on the training part
        train_part = x[:cut * SAMPLES_PER_FRAME][~flags[name][:cut * SAMPLES_PER_FRAME]]
        q1, med, q3 = np.percentile(train_part, [25, 50, 75])
        norm[name] = (med, max((q3 - q1) / 1.35, 1e-6))
    sensors, masks = {}, {}
    for sensor, names in chosen.items():
        cols = [((series[n][:length] - norm[n][0]) / norm[n][1]).reshape(n_frames, SAMPLES_PER_FRAME) for n in names]
        gone = np.any([flags[n][:length].reshape(n_frames, SAMPLES_PER_FRAME).any(1) for n in names], axis=0)
        sensors[sensor], masks[sensor] = np.concatenate(cols, -1).astype(np.float32), (~gone).astype(np.float32)

    def windows(start: int, stop: int, hop: int) -> FusionData:
        idx = start + _windows(stop - start, frames, hop)
        take = idx[:, None] + np.arange(frames)
        return check_fusion(FusionData({s: v[take] for s, v in sensors.items()}, None,
                                       {s: m[take] for s, m in masks.items()}), f"{path} windows")

    meta = {"record": record, "frame_rate_hz": float(np.mean(rates)) / SAMPLES_PER_FRAME,
            "channels": {s: list(n) for s, n in chosen.items()}, "normalisation": norm}
    return windows(0, cut, frames // 2), windows(cut, n_frames, frames), meta
