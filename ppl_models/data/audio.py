"""Reading and writing audio.

Everything in the zoo works on mono float32 signals at 16 kHz, the rate of the papers. ``load_audio`` reads
any format soundfile knows (wav, flac, ogg, ...), mixes down to mono and resamples with scipy's polyphase
filter; it refuses empty, all-silent and non-finite audio with an error that names the file.
``write_audio`` writes through a temporary file and ``os.replace`` so an interrupted run never leaves a
half-written file behind.
"""

from __future__ import annotations

import math
import os
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

SAMPLE_RATE = 16000
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


def to_mono(signal: np.ndarray) -> np.ndarray:
    """Average the channels of a (samples, channels) array; a 1-D array is returned unchanged."""
    signal = np.asarray(signal)
    return signal.mean(axis=1) if signal.ndim == 2 else signal


def resample(signal: np.ndarray, orig_rate: int, target_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Resample with scipy's polyphase filter (``resample_poly``), by the reduced ratio target/orig."""
    if orig_rate <= 0 or target_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {orig_rate} -> {target_rate}")
    if orig_rate == target_rate:
        return signal
    g = math.gcd(int(orig_rate), int(target_rate))
    return resample_poly(signal, target_rate // g, orig_rate // g).astype(signal.dtype, copy=False)


def check_signal(signal: np.ndarray, name: str = "signal") -> np.ndarray:
    """Raise a ValueError naming ``name`` if the signal is empty, contains NaN/inf, or is all zeros."""
    if signal.size == 0:
        raise ValueError(f"{name}: audio is empty (0 samples)")
    if not np.all(np.isfinite(signal)):
        raise ValueError(f"{name}: audio contains NaN or infinite samples")
    if not np.any(signal):
        raise ValueError(f"{name}: audio is all silent (every sample is zero)")
    return signal


def without_dc(signal) -> np.ndarray:
    """The signal minus its mean (its DC offset: some LibriSpeech recordings hold 35-97 % of their energy there)."""
    signal = np.asarray(signal)
    return signal - signal.mean()


def peak_normalise(signal: np.ndarray) -> np.ndarray:
    """Scale a signal so that its largest absolute sample is 1, as the speech priors' training data is: the
    priors then model the spectral shape and its changes, not the recording level."""
    peak = np.max(np.abs(signal))
    return signal / peak if peak > 0 else signal


def speed_perturb(signal: np.ndarray, factor: float) -> np.ndarray:
    """The signal played ``factor`` times faster (Ko et al., 2015): resampled by 1/factor and read at the
    same rate, so its pitch and formants rise by ``factor`` and its duration shrinks by it. Factors 0.8-1.2
    turn one speaker into several plausible ones, the cheapest augmentation of a small speech corpus."""
    if factor <= 0:
        raise ValueError(f"speed factor must be positive, got {factor}")
    ratio = Fraction(factor).limit_denominator(100)
    if ratio == 1:
        return signal
    return resample_poly(signal, ratio.denominator, ratio.numerator).astype(signal.dtype, copy=False)


def load_audio(path: str | os.PathLike, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read ``path`` as a mono float32 signal at ``sample_rate`` Hz.

    Stereo is averaged to mono; another rate is resampled. Raises FileNotFoundError for a missing file
    and ValueError (naming the file) for unreadable, empty, silent or non-finite audio.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such audio file")
    try:
        signal, rate = sf.read(str(path), dtype="float32", always_2d=False)
    except (sf.LibsndfileError, RuntimeError) as err:
        raise ValueError(f"{path}: cannot read audio ({err})") from None
    signal = check_signal(to_mono(signal), str(path))
    return check_signal(resample(signal, rate, sample_rate), str(path)).astype(np.float32, copy=False)


def write_audio(path: str | os.PathLike, signal, sample_rate: int = SAMPLE_RATE) -> Path:
    """Write a mono signal atomically: to a temporary file in the same folder, then ``os.replace``."""
    path = Path(path)
    signal = np.asarray(signal.detach().cpu() if hasattr(signal, "detach") else signal, dtype=np.float32)
    if signal.ndim != 1:
        raise ValueError(f"{path}: expected a 1-D mono signal, got shape {signal.shape}")
    if not np.all(np.isfinite(signal)):
        raise ValueError(f"{path}: refusing to write NaN or infinite samples")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix + ".part")
    os.close(fd)
    try:
        sf.write(tmp, signal, sample_rate, format=(path.suffix.lstrip(".") or "wav").upper(), subtype=None)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def list_audio_files(folder: str | os.PathLike) -> list[Path]:
    """All audio files below ``folder`` (recursively), sorted by path."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder")
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
