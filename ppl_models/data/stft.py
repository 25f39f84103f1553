"""The audio front end of the papers: 16 kHz, 1024-sample (64 ms) sine window, hop 256 (75 % overlap).

``stft`` returns complex coefficients X of shape (..., F=513, T); ``power_spectrogram`` returns |X|^2, the
observed variable of every spectrogram model in the zoo (its likelihood is Exponential with mean v, i.e. a
zero-mean complex Gaussian on X). The sine window at 75 % overlap satisfies the
constant-overlap-add condition for w^2, so ``istft(stft(x))`` reconstructs x up to float rounding.
"""

from __future__ import annotations

import math

import numpy as np
import torch

N_FFT = 1024
HOP_LENGTH = 256
N_FREQ = N_FFT // 2 + 1  # 513 bins


def sine_window(n_fft: int = N_FFT, device=None, dtype=torch.float32) -> torch.Tensor:
    """w[n] = sin(pi (n + 1/2) / N), the analysis and synthesis window of the papers."""
    n = torch.arange(n_fft, device=device, dtype=dtype)
    return torch.sin(math.pi * (n + 0.5) / n_fft)


def _as_tensor(signal) -> torch.Tensor:
    return signal if torch.is_tensor(signal) else torch.as_tensor(np.asarray(signal, dtype=np.float32))


def stft(signal, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH) -> torch.Tensor:
    """Complex STFT of a (..., samples) signal -> (..., n_fft // 2 + 1, frames)."""
    x = _as_tensor(signal)
    window = sine_window(n_fft, device=x.device, dtype=x.dtype)
    shape = x.shape[:-1]
    spec = torch.stft(x.reshape(-1, x.shape[-1]), n_fft, hop_length, window=window, center=True,
                      return_complex=True)
    return spec.reshape(*shape, *spec.shape[-2:])


def istft(spec: torch.Tensor, length: int | None = None, n_fft: int = N_FFT,
          hop_length: int = HOP_LENGTH) -> torch.Tensor:
    """Inverse of :func:`stft` (weighted overlap-add); ``length`` trims to the original sample count."""
    window = sine_window(n_fft, device=spec.device, dtype=spec.real.dtype)
    shape = spec.shape[:-2]
    x = torch.istft(spec.reshape(-1, *spec.shape[-2:]), n_fft, hop_length, window=window, center=True,
                    length=length)
    return x.reshape(*shape, x.shape[-1])


def power_spectrogram(signal, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH) -> torch.Tensor:
    """|STFT|^2, shape (..., F, T)."""
    return stft(signal, n_fft, hop_length).abs().square()


def trim_silence(signal: np.ndarray, top_db: float = 30.0, frame_length: int = N_FFT,
                 hop_length: int = HOP_LENGTH) -> np.ndarray:
    """Drop leading and trailing frames whose RMS is more than ``top_db`` dB below the loudest frame."""
    signal = np.asarray(signal)
    padded = np.pad(signal, frame_length // 2)
    n_frames = 1 + max(0, (len(padded) - frame_length) // hop_length)
    frames = np.lib.stride_tricks.sliding_window_view(padded, frame_length)[::hop_length][:n_frames]
    rms_db = 10 * np.log10(np.maximum(np.mean(frames.astype(np.float64) ** 2, axis=1), 1e-20))
    loud = np.flatnonzero(rms_db > rms_db.max() - top_db)
    if loud.size == 0:
        return signal[:0]
    start = loud[0] * hop_length
    end = min(len(signal), (loud[-1] + 1) * hop_length)
    return signal[start:end]


def griffin_lim(magnitude: torch.Tensor, iterations: int = 64, momentum: float = 0.99, length: int | None = None,
                seed: int = 0) -> torch.Tensor:
    """A signal whose STFT magnitude approaches ``magnitude`` (..., F, T): the fast Griffin-Lim algorithm
    (Perraudin, Balazs & Sondergaard, 2013). From random phases, alternate the projection on consistent
    spectrograms c = stft(istft(X)) and the one on the given magnitude, X = |S| c / |c|, with the momentum
    step c + momentum (c - c_previous) (momentum 0: the original Griffin & Lim, 1984)."""
    generator = torch.Generator(device=magnitude.device).manual_seed(seed)
    phase = torch.rand(magnitude.shape, generator=generator, device=magnitude.device) * (2 * math.pi)
    estimate = torch.polar(magnitude, phase)
    previous = torch.zeros_like(estimate)
    frames = magnitude.shape[-1]
    length = length or (frames - 1) * HOP_LENGTH
    for _ in range(iterations):
        consistent = stft(istft(estimate, length=length))[..., :frames]
        accelerated = consistent + momentum * (consistent - previous)
        previous = consistent
        estimate = magnitude * torch.exp(1j * torch.angle(accelerated))
    return istft(estimate, length=length)


def mel_filterbank(n_mels: int = 32, n_fft: int = N_FFT, sr: int = 16000, fmin: float = 50.0,
                   fmax: float = 8000.0) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular filters, equally spaced on the HTK mel scale, peak 1."""
    mel = lambda f: 2595 * np.log10(1 + f / 700)  # noqa: E731
    edges = 700 * (10 ** (np.linspace(mel(fmin), mel(fmax), n_mels + 2) / 2595) - 1)  # Hz
    freqs = np.fft.rfftfreq(n_fft, 1 / sr)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    return np.maximum(0, np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid))).astype(np.float32)
