r"""How close a set of generated utterances is to real speech: a Fréchet distance between Gaussians fitted to
segment-level features of each set (the FID / FDSD recipe, with a feature set computable without a trained
recogniser).

Features (:func:`segment_features`), per 0.5 s segment (31 frames of the 16 ms-hop STFT) of a waveform:

    c_t = DCT-II(log(M |X_t|^2 + eps))[0:20]      20 MFCCs of 40 HTK-mel bands, 50-8000 Hz
    f   = [ mean_t c_t[1:20],  std_t (c_{t+1} - c_t)[0:20] ]   (39-D)

the segment's average spectral envelope without its level (c_1..c_19) and how fast the envelope and the
level move (delta c_0..c_19): the loudness of a waveform is arbitrary, its spectral shape and dynamics are not.

Fréchet distance (Dowson & Landau, 1982) between N(m_1, C_1) and N(m_2, C_2):

    FD = |m_1 - m_2|^2 + tr(C_1 + C_2 - 2 (C_1 C_2)^{1/2})

which is 0 for equal Gaussians and, in one dimension, (m_1 - m_2)^2 + (s_1 - s_2)^2.
"""

from __future__ import annotations

import numpy as np
import scipy.fft
import scipy.linalg

from ppl_models.data.stft import mel_filterbank, power_spectrogram

SEGMENT_FRAMES = 31  # 0.5 s at 16 kHz, hop 256
N_MELS, N_MFCC = 40, 20


def mfcc(power: np.ndarray) -> np.ndarray:
    """(F, T) power spectrogram -> (T, 20) MFCCs of 40 mel bands (orthonormal DCT-II of the log-mel energies)."""
    mel = mel_filterbank(N_MELS) @ np.asarray(power, dtype=np.float64)
    return scipy.fft.dct(np.log(mel + 1e-10), type=2, axis=0, norm="ortho")[:N_MFCC].T


def segment_features(signal, frames: int = SEGMENT_FRAMES) -> np.ndarray:
    """(S, 39) features of the whole segments of ``frames`` STFT frames of a 16 kHz waveform (module docstring);
    an utterance shorter than one segment gives none."""
    c = mfcc(power_spectrogram(np.asarray(signal, dtype=np.float32)).numpy())
    segments = len(c) // frames
    c = c[:segments * frames].reshape(segments, frames, N_MFCC)
    return np.concatenate([c[:, :, 1:].mean(1), np.diff(c, axis=1).std(1)], axis=1)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted (mean, covariance) to the rows of ``a`` (N, D) and ``b`` (M, D)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or a.shape[1:] != b.shape[1:] or min(len(a), len(b)) < 2:
        raise ValueError(f"need two sets of >= 2 feature rows of one dimension, got {a.shape} and {b.shape}")
    ca, cb = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    root = scipy.linalg.sqrtm(ca @ cb)
    root = root.real if np.iscomplexobj(root) else root  # imaginary round-off of a near-singular product
    return float(np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(ca + cb - 2 * root))
