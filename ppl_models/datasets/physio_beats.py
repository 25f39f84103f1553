"""Real two-sensor physiology for the fusion models: frame-wise heart-beat ("systole window") detection.

The record is PhysioNet/CinC Challenge 2015 training record ``a103l`` (``multimodal_physionet_wfdb/a103l.npz``):
330 s at 250 Hz of ECG lead II, ECG lead V and a finger photoplethysmogram (PLETH), from an ICU monitor
that raised an *asystole* alarm judged *false*. The heart is in steady sinus tachycardia (about 127 bpm)
throughout; the false alarm comes from the ECG: from about 263 s to 303 s (and briefly near 314 s) both leads
carry large motion/electrode artifacts (spikes, saturated steps, flat lead-off stretches) while PLETH keeps
pulsing. PLETH has its own real artifacts (near 165 s, 258 s and 314 s: excursions, clipping, flat tops).

What is REAL: the three waveforms, their real artifacts, and the beats (found in the waveforms).
What is DERIVED or GENERATED: the beat labels (rule below), the frames and their normalisation, the split, and
the synthetic sensor failures ("garbage" segments) written over the waveforms.

Beats and labels.
    * R peaks: lead II and lead V are band-passed (5-20 Hz, zero phase) and their |.| peaks found
      (``scipy.signal.find_peaks``, at least 0.24 s apart). A beat is an R peak of lead II matched by one of
      lead V within 60 ms, where the ECG is usable.
    * ECG usable: not within 0.5 s of a flat run (saturation, lead off), of a peak one lead has and the other
      lacks, of an excursion far above a QRS, of a beat whose shape does not match the median beat, or of an
      implausible RR interval (see ``ecg_quality``).
    * Where the ECG is unusable, beats come from PLETH: the steepest point of each pulse upstroke (0.5-8 Hz
      band), moved back by the median delay from the preceding R peak, measured where both sensors are clean
      (``meta["pulse_delay_s"]``, 0.056 s here). That is far shorter than a finger pulse transit time
      (0.2-0.3 s): the upstroke is that of the *previous* beat, ~0.53 s after its R (transit time plus the
      monitor's PLETH delay). In a steady rhythm the two readings cannot be told apart (equal spread) and
      give the same beat times, so the shorter one is used. Where PLETH is unusable too (rare: 4 beats near
      314 s), beats are spaced evenly at the median RR interval. ``meta["label_source"]`` says per frame
      where its latest beat came from (0 ECG, 1 PLETH, 2 interpolated).
    * y_t = 1 when the centre of frame t lies in [R, R + ``systole_s``) of some beat. The default window,
      0.24 s (6 frames), is about the electrical systole (QT by Bazett ~0.29 s at 127 bpm) and gives a label
      rate near 0.5 (6 frames x 127/60 beats/s / 25 frames/s). Within it the ECG shows the QRS complex and
      PLETH an upstroke (of the previous pulse, see above), so both sensors carry online evidence.

Frames and sensors. 25 Hz frames of 10 samples. ``ecg`` (D=20): the 10 samples of lead II then of lead V;
``pleth`` (D=10). Each channel is first high-passed *causally* (2nd-order Butterworth, 0.5 Hz ECG, 0.3 Hz
PLETH: removes baseline wander without looking ahead), then standardised with the mean and standard
deviation of the training part (artifact-free samples). Raw samples are kept rather than adding first
differences: a difference is a fixed linear function of the frame's samples, which any expert computes.

Split and sequences. Train = the first 70 % of the record (0-231 s), test = the last 30 % (231-330 s), each
cut into sequences of ``frames`` frames: train with a hop (default frames // 5, overlapping), test without
overlap: 111 train and 9 test sequences at T = 250. NB the real ECG artifact stretch lies in the test part:
even ``corrupt=None`` test data has ~37 % of its frames with a real ECG artifact (``meta["artifact_ecg"]``,
``meta["artifact_pleth"]`` ~5 %); the train part has only the PLETH ones (~1.5 %).

Synthetic corruption. ``corrupt="ecg"|"pleth"`` (test split): segments of 2-4 s covering ``share`` (0.3) of
the test frames replace that sensor's raw waveform with garbage before filtering: a flat line with a little
noise (lead off / probe off) or large low-frequency motion noise with spikes. For the ECG both leads fail
together. At a given seed ``corrupt="ecg"`` and ``corrupt="pleth"`` hit the same frames, so the two conditions
differ only in the failing sensor. By default (``train_corrupt=True``) the train split gets such segments too,
for both sensors, 10 % of its frames each and never both at once (1 s apart), so a gate can learn to distrust
a sensor. ``meta["corrupted_<sensor>"]`` (N, T) marks the synthetic segments; the labels never change.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from scipy import signal

from ppl_models.data.fusion_files import FusionData, check_fusion

FRAME = 10  # samples per frame: 250 Hz -> 25 Hz
TRAIN_FRACTION = 0.7
TRAIN_CORRUPT_SHARE = 0.1  # per sensor, train split
SEGMENT_FRAMES = (50, 100)  # length of a synthetic failure: 2-4 s
GAP_FRAMES = 25  # at least 1 s between two failures
SENSORS = ("ecg", "pleth")
LEADS = ("ii", "v")  # sensors="leads": the two ECG leads, each a sensor of its own
CHANNELS = {"ecg": [0, 1], "pleth": [2], "ii": [0], "v": [1]}  # sensor -> columns of [II, V, PLETH]


def load_record(path: str | os.PathLike) -> tuple[np.ndarray, float]:
    """(S, 3) float64 [ECG II, ECG V, PLETH] and the sample rate from a converted record: ``a103l.npz`` (one rate,
    ``signals``) or ``mixedsignals.npz`` (one array per channel: PLETH at half the ECG's rate is brought up to
    it with ``resample_poly``; the leading stretch where the ECG is missing is dropped)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"record not found: {path} (expected e.g. multimodal_physionet_wfdb/a103l.npz)")
    with np.load(path) as f:
        if "signals" in f.files and "fs" in f.files:
            sig, fs = f["signals"].astype(np.float64), float(f["fs"])
        elif {"sig_II", "sig_V", "sig_Pleth"} <= set(f.files):
            fs = float(f["fs_II"])
            up = int(round(fs / float(f["fs_Pleth"])))
            leads = np.c_[f["sig_II"], f["sig_V"]].astype(np.float64)
            pleth = signal.resample_poly(f["sig_Pleth"].astype(np.float64), up, 1)
            n = min(len(leads), len(pleth))
            sig = np.c_[leads[:n], pleth[:n]]
            sig = sig[np.argmax(np.isfinite(sig).all(1)):]  # from the first complete sample (none: checked below)
        else:
            raise ValueError(f"{path}: expected arrays 'signals' (S, 3) and 'fs', or sig_II, sig_V and sig_Pleth; "
                             f"found {f.files}")
    if sig.ndim != 2 or sig.shape[1] != 3 or not np.isfinite(sig).all():
        raise ValueError(f"{path}: the signals must be finite (S, 3) [ECG II, ECG V, PLETH], got {sig.shape}")
    if abs(fs - 250) > 1:
        raise ValueError(f"{path}: fs = {fs} Hz, this builder expects 250 Hz (10 samples per 25 Hz frame)")
    return sig, fs


def _dilate(mask: np.ndarray, width: int) -> np.ndarray:
    """True within ``width`` samples of any True sample."""
    return np.convolve(mask.astype(float), np.ones(2 * width + 1), mode="same") > 0


def _flat_runs(x: np.ndarray, min_len: int) -> np.ndarray:
    """True on runs of >= ``min_len`` identical consecutive samples (saturation, lead off)."""
    same = np.r_[False, np.diff(x) == 0]
    start = np.flatnonzero(np.diff(np.r_[0, same.astype(int)]) == 1)
    end = np.flatnonzero(np.diff(np.r_[same.astype(int), 0]) == -1) + 1
    out = np.zeros(len(x), bool)
    for a, b in zip(start, end):
        if b - a + 1 >= min_len:
            out[a - 1:b] = True
    return out


def qrs_peaks(lead: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """Peaks of |5-20 Hz band| at least 0.24 s apart and above 40 % of the median peak: (indices, |band|)."""
    band = np.abs(signal.sosfiltfilt(signal.butter(3, [5, 20], "bandpass", fs=fs, output="sos"), lead))
    cand, _ = signal.find_peaks(band, distance=int(0.24 * fs))
    peaks, _ = signal.find_peaks(band, distance=int(0.24 * fs), height=0.4 * np.median(band[cand]))
    return peaks, band


def _nearest_gap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For each index in ``a``, the distance to the nearest index in sorted ``b``."""
    j = np.clip(np.searchsorted(b, a), 1, len(b) - 1)
    return np.minimum(np.abs(a - b[j - 1]), np.abs(a - b[j]))


def ecg_quality(sig: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """(usable (S,) bool, lead-II R peaks matched in lead V (B,) int) for the two ECG leads ``sig[:, :2]``.

    Unusable: within 0.5 s of a flat run (>= 0.1 s), of a QRS-band peak one lead has and the other lacks, of an
    excursion beyond 2.5x the typical QRS-band peak or 2x the typical QRS amplitude, of a beat whose shape
    (+-0.1 s) correlates below 0.8 with the median beat in either lead, or of an RR interval outside
    0.6-1.6x the median (missed or spurious beats).
    """
    hp = signal.sosfiltfilt(signal.butter(2, 0.5, "highpass", fs=fs, output="sos"), sig[:, :2], axis=0)  # (S, 2)
    (p2, b2), (pv, bv) = qrs_peaks(sig[:, 0], fs), qrs_peaks(sig[:, 1], fs)
    match, w = int(0.06 * fs), int(0.1 * fs)
    bad = np.zeros(len(sig), bool)
    for lead, peaks, other, band in ((sig[:, 0], p2, pv, b2), (sig[:, 1], pv, p2, bv)):
        bad[peaks[_nearest_gap(peaks, other) > match]] = True  # a beat one lead has and the other lacks
        bad |= band > 2.5 * np.median(band[peaks])  # spikes far above a QRS
        bad |= _flat_runs(lead, int(0.1 * fs))
    r = p2[(_nearest_gap(p2, pv) <= match) & (p2 >= w) & (p2 < len(sig) - w)]
    shapes = hp[r[:, None] + np.arange(-w, w + 1)]  # (B, 2w+1, 2)
    shapes = shapes - shapes.mean(1, keepdims=True)
    template = np.median(shapes, 0)  # (2w+1, 2)
    corr = (shapes * template).sum(1) / (np.linalg.norm(shapes, axis=1) * np.linalg.norm(template, axis=0) + 1e-12)
    bad[r[corr.min(1) < 0.8]] = True
    bad |= (np.abs(hp) > 2 * np.median(np.abs(shapes).max(1), 0)).any(1)
    rr = np.diff(r)
    for a, b, d in zip(r[:-1], r[1:], rr):
        if not 0.6 * np.median(rr) <= d <= 1.6 * np.median(rr):
            bad[a:b + 1] = True
    return ~_dilate(bad, int(0.5 * fs)), r


def _upstrokes(pleth: np.ndarray, fs: float) -> np.ndarray:
    """The steepest point of each pulse upstroke (0.5-8 Hz band), at least 0.24 s apart."""
    slope = np.gradient(signal.sosfiltfilt(signal.butter(3, [0.5, 8], "bandpass", fs=fs, output="sos"), pleth))
    cand, _ = signal.find_peaks(slope, distance=int(0.24 * fs))
    peaks, _ = signal.find_peaks(slope, distance=int(0.24 * fs), height=0.3 * np.median(slope[cand]))
    return peaks


def pleth_quality(pleth: np.ndarray, fs: float) -> np.ndarray:
    """(S,) bool: PLETH usable, i.e. not within 0.5 s of a flat run (>= 0.2 s) or an excursion beyond 4x the
    median absolute deviation of the 0.3 Hz high-passed signal (clipping counts as a flat run)."""
    hp = signal.sosfiltfilt(signal.butter(2, 0.3, "highpass", fs=fs, output="sos"), pleth)
    mad = np.median(np.abs(hp - np.median(hp)))
    bad = _flat_runs(pleth, int(0.2 * fs)) | (np.abs(hp) > 8 * mad)
    return ~_dilate(bad, int(0.5 * fs))


def detect_beats(sig: np.ndarray, fs: float) -> dict[str, np.ndarray | float]:
    """Beats of the whole record: ``times`` (B,) sample indices, ``source`` (B,) 0 ECG / 1 PLETH / 2 interpolated,
    the quality masks ``ecg_ok``/``pleth_ok`` (S,), ``pulse_delay_s`` and ``heart_rate_bpm`` (median)."""
    ecg_ok, r = ecg_quality(sig, fs)
    pleth_ok = pleth_quality(sig[:, 2], fs)
    r = r[ecg_ok[r]]
    up = _upstrokes(sig[:, 2], fs)
    # Delay from the preceding R peak to an upstroke, where both sensors are clean (3 s of good ECG around it).
    clean_up = up[pleth_ok[up] & ~_dilate(~ecg_ok, int(3 * fs))[up] & (up > r[0])]
    delay = float(np.median(clean_up - r[np.searchsorted(r, clean_up) - 1]))
    from_pleth = np.round(up[pleth_ok[up]] - delay).astype(int)
    from_pleth = from_pleth[(from_pleth >= 0) & ~ecg_ok[np.clip(from_pleth, 0, len(sig) - 1)]]
    times = np.r_[r, from_pleth]
    source = np.r_[np.zeros(len(r), int), np.ones(len(from_pleth), int)]
    order = np.argsort(times)
    times, source = times[order], source[order]
    rr = np.median(np.diff(times))
    filled_t, filled_s = [times[:1]], [source[:1]]
    for a, b, s in zip(times[:-1], times[1:], source[1:]):  # gaps left by both sensors: evenly spaced beats
        n = int(round((b - a) / rr))
        if n > 1:
            filled_t.append(np.round(a + (b - a) * np.arange(1, n) / n).astype(int))
            filled_s.append(np.full(n - 1, 2))
        filled_t.append([b])
        filled_s.append([s])
    times, source = np.concatenate(filled_t).astype(int), np.concatenate(filled_s).astype(int)
    return {"times": times, "source": source, "ecg_ok": ecg_ok, "pleth_ok": pleth_ok, "pulse_delay_s": delay / fs,
            "heart_rate_bpm": 60 * fs / float(np.median(np.diff(times)))}


def frame_labels(times: np.ndarray, source: np.ndarray, n_frames: int, fs: float,
                 systole_s: float) -> tuple[np.ndarray, np.ndarray]:
    """y (F,) = 1 where the frame centre is in [R, R + systole_s); label source (F,) of the latest beat."""
    centre = np.arange(n_frames) * FRAME + (FRAME - 1) / 2
    k = np.searchsorted(times, centre, side="right") - 1  # latest beat at or before the centre
    since = np.where(k >= 0, centre - times[np.maximum(k, 0)], np.inf)
    return (since < systole_s * fs).astype(np.float32), np.where(k >= 0, source[np.maximum(k, 0)], 2)


def failure_segments(rng: np.random.Generator, n_frames: int, share: float, blocked: np.ndarray | None = None,
                     seg: tuple[int, int] = SEGMENT_FRAMES) -> np.ndarray:
    """(F,) bool: random segments of seg[0]-seg[1] frames, GAP_FRAMES apart, covering about ``share`` of the
    frames and keeping GAP_FRAMES away from ``blocked`` frames."""
    mask = np.zeros(n_frames, bool)
    free = np.ones(n_frames, bool) if blocked is None else ~_dilate(blocked, GAP_FRAMES)
    for _ in range(1000):  # a share that cannot be placed stops short
        if mask.mean() >= share:
            break
        n = int(rng.integers(seg[0], seg[1] + 1))
        a = int(rng.integers(0, n_frames - n + 1))
        if free[max(0, a - GAP_FRAMES):a + n + GAP_FRAMES].all():
            mask[a:a + n] = True
            free[a:a + n] = False
    return mask


def _garbage(rng: np.random.Generator, n: int, channels: int, scale: np.ndarray, fs: float) -> np.ndarray:
    """(n, channels) junk: a flat line plus a little noise, or large low-frequency motion noise with spikes."""
    if rng.random() < 0.5:
        level = rng.normal(0, 2, size=channels) * scale
        return level + 0.05 * scale * rng.standard_normal((n, channels))
    sos = signal.butter(2, [0.3, 3], "bandpass", fs=fs, output="sos")
    slow = signal.sosfilt(sos, rng.standard_normal((n + int(fs), channels)), axis=0)[int(fs):]
    slow *= rng.uniform(3, 6) * scale / (slow.std(0) + 1e-12)
    spikes = (rng.random((n, channels)) < 2 / fs) * rng.normal(0, 8, (n, channels)) * scale  # ~2 per second
    return slow + signal.sosfilt(signal.butter(1, 20, fs=fs, output="sos"), spikes, axis=0) * 5


def _features(sig: np.ndarray, fs: float) -> np.ndarray:
    """Causally high-passed channels (S, 3): ECG 0.5 Hz, PLETH 0.3 Hz."""
    ecg = signal.sosfilt(signal.butter(2, 0.5, "highpass", fs=fs, output="sos"), sig[:, :2], axis=0)
    pleth = signal.sosfilt(signal.butter(2, 0.3, "highpass", fs=fs, output="sos"), sig[:, 2])
    return np.c_[ecg, pleth]


def build_beat_detection(record: str | os.PathLike, split: str = "train", corrupt: str | None = None,
                         frames: int = 250, seed: int = 0, *, share: float = 0.3, train_corrupt: bool = True,
                         systole_s: float = 0.24, hop: int | None = None,
                         sensors: str = "ecg+pleth") -> tuple[FusionData, dict]:
    """Frame-wise beat ("systole window") detection from ECG and PLETH of one CinC 2015 record.

    Returns ``FusionData`` with sensors ``ecg`` (N, T, 20) and ``pleth`` (N, T, 10), labels y (N, T), and
    metadata: ``corrupted_ecg``/``corrupted_pleth`` (N, T) bool (synthetic failures), ``artifact_ecg``/
    ``artifact_pleth`` (N, T) bool (real artifacts found in the record), ``label_source`` (N, T) int,
    ``start_frame`` (N,), ``beats`` (sample indices of all beats), ``heart_rate_bpm``, ``pulse_delay_s``.
    ``sensors="leads"``: the two ECG leads as two sensors, ``ii`` and ``v`` (N, T, 10 each), failing one at a
    time (``corrupt="ii"|"v"``; in training each lead 10 % of the frames, never both at once); the labels are
    the same beats (found from both leads, and from PLETH where the ECG is unusable).
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if sensors not in ("ecg+pleth", "leads"):
        raise ValueError(f"sensors must be 'ecg+pleth' or 'leads', got {sensors!r}")
    names = SENSORS if sensors == "ecg+pleth" else LEADS
    if corrupt not in (None, *names):
        raise ValueError(f"corrupt must be None or one of {', '.join(names)} (sensors={sensors!r}), got {corrupt!r}")
    if corrupt is not None and split == "train":
        raise ValueError("corrupt= applies to the test split; the train split's failures are set by train_corrupt")
    if not 0 <= share < 0.8:
        raise ValueError(f"share must be in [0, 0.8), got {share}")
    if frames < 10:
        raise ValueError(f"frames must be at least 10, got {frames}")
    if hop is not None and hop < 1:
        raise ValueError(f"hop must be a positive number of frames, got {hop}")
    sig, fs = load_record(record)
    beats = detect_beats(sig, fs)
    n_all = len(sig) // FRAME
    y_all, src_all = frame_labels(beats["times"], beats["source"], n_all, fs, systole_s)
    n_train = int(round(TRAIN_FRACTION * n_all))
    lo, hi = (0, n_train) if split == "train" else (n_train, n_all)

    # Channel statistics: the uncorrupted, artifact-free training part.
    clean = _features(sig, fs)
    ok = np.c_[beats["ecg_ok"], beats["ecg_ok"], beats["pleth_ok"]][:n_train * FRAME]
    part = clean[:n_train * FRAME]
    mean = np.array([part[ok[:, c], c].mean() for c in range(3)])
    std = np.array([part[ok[:, c], c].std() for c in range(3)])

    # Synthetic failures on the raw waveform of this split's frames.
    rng = np.random.default_rng([seed, 0 if split == "train" else 1])
    failed = {name: np.zeros(n_all, bool) for name in names}
    first, second = names
    if split == "train" and train_corrupt:
        failed[first][lo:hi] = failure_segments(rng, hi - lo, TRAIN_CORRUPT_SHARE)
        failed[second][lo:hi] = failure_segments(rng, hi - lo, TRAIN_CORRUPT_SHARE, blocked=failed[first][lo:hi])
    elif corrupt is not None:
        failed[corrupt][lo:hi] = failure_segments(rng, hi - lo, share)
    raw = sig.copy()
    raw_scale = sig[:n_train * FRAME].std(0)
    for name in names:
        cols = CHANNELS[name]
        runs = np.flatnonzero(np.diff(np.r_[0, failed[name].astype(int), 0]))
        for a, b in zip(runs[::2], runs[1::2]):
            s0, s1 = a * FRAME, b * FRAME
            raw[s0:s1, cols] = raw[s0:s1, cols].mean(0) + _garbage(rng, s1 - s0, len(cols), raw_scale[cols], fs)
    x = ((_features(raw, fs) - mean) / std)[:n_all * FRAME].reshape(n_all, FRAME, 3)  # (F, 10, 3)
    frames_of = {name: x[:, :, CHANNELS[name]].transpose(0, 2, 1).reshape(n_all, -1) for name in names}  # (F, 10 C)

    step = (hop or max(1, frames // 5)) if split == "train" else frames
    starts = np.arange(lo, hi - frames + 1, step)
    if len(starts) == 0:
        raise ValueError(f"frames={frames} is longer than the {split} part ({hi - lo} frames)")
    idx = starts[:, None] + np.arange(frames)  # (N, T)
    ecg_bad = ~beats["ecg_ok"][:n_all * FRAME].reshape(n_all, FRAME).all(1)
    artifact = {"ecg": ecg_bad, "ii": ecg_bad, "v": ecg_bad,
                "pleth": ~beats["pleth_ok"][:n_all * FRAME].reshape(n_all, FRAME).all(1)}
    data = check_fusion(FusionData({k: frames_of[k][idx] for k in names}, y_all[idx]), f"{Path(record).stem} {split}")
    meta = {f"corrupted_{k}": failed[k][idx] for k in names}
    meta.update({f"artifact_{k}": artifact[k][idx] for k in names})
    meta.update(label_source=src_all[idx], start_frame=starts, beats=beats["times"], beat_source=beats["source"],
                heart_rate_bpm=beats["heart_rate_bpm"], pulse_delay_s=beats["pulse_delay_s"], frame_rate=fs / FRAME,
                split_frame=n_train, channel_mean=mean, channel_std=std)
    return data, meta
