"""Speech-like audio, music-like audio and coloured noise at 16 kHz, so audio models run without files.

Speech-like: a source-filter model. Each "syllable" (120-350 ms) is a harmonic source at a pitch f0(t) that
glides between two values in 90-250 Hz, shaped by three formant resonances (F1, F2, F3) that move from one
vowel's targets to the next; syllables are separated by pauses of 50-400 ms. The harmonic amplitudes are the
magnitude of the all-pole formant filter at k f0(t), so the spectrogram shows the harmonic comb and the
formant envelope of real voiced speech.

Music-like: plucked notes of a harmonic tone (decaying partials 1/k) on a pentatonic scale.

Noise: Gaussian noise with a power spectrum proportional to 1/f^alpha (white 0, pink 1, brown 2, blue -1).
"""

from __future__ import annotations

import numpy as np

from ppl_models.data.audio import SAMPLE_RATE

# (F1, F2, F3) in Hz of a few vowels (Peterson & Barney style averages).
VOWEL_FORMANTS = np.array([[730, 1090, 2440], [270, 2290, 3010], [530, 1840, 2480], [300, 870, 2240],
                           [660, 1720, 2410], [570, 840, 2410], [440, 1020, 2240]], dtype=np.float64)
FORMANT_BANDWIDTHS = np.array([80.0, 100.0, 120.0])
NOISE_EXPONENTS = {"white": 0.0, "pink": 1.0, "brown": 2.0, "blue": -1.0}


def _formant_gain(freq: np.ndarray, formants: np.ndarray) -> np.ndarray:
    """|H(f)| of a cascade of second-order resonances; freq (..., K), formants (..., 3) -> (..., K)."""
    gain = np.ones_like(freq)
    for j, bw in enumerate(FORMANT_BANDWIDTHS):
        fj = formants[..., j:j + 1]
        gain = gain * fj ** 2 / np.sqrt((fj ** 2 - freq ** 2) ** 2 + (bw * freq) ** 2)
    return gain


def _syllable(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    t = np.arange(n) / sr
    f0 = np.linspace(*rng.uniform(90, 250, size=2), n)
    vowels = VOWEL_FORMANTS[rng.choice(len(VOWEL_FORMANTS), size=2)]
    formants = vowels[0] + (vowels[1] - vowels[0]) * (t / t[-1])[:, None]  # (n, 3)
    phase = 2 * np.pi * np.cumsum(f0) / sr  # instantaneous phase of the fundamental
    k = np.arange(1, int(0.45 * sr / 90) + 1)  # harmonics up to ~ Nyquist at the lowest pitch
    freq = f0[:, None] * k  # (n, K)
    amp = _formant_gain(freq, formants) / k ** 0.5 * (freq < 0.45 * sr)
    voiced = np.sum(amp * np.sin(phase[:, None] * k + rng.uniform(0, 2 * np.pi, size=len(k))), axis=1)
    attack = min(n, int(0.02 * sr))
    envelope = np.minimum(1.0, np.arange(n) / attack) * np.hanning(n) ** 0.3
    return voiced * envelope


def speech_like(duration: float = 3.0, seed: int | np.random.Generator = 0, sr: int = SAMPLE_RATE) -> np.ndarray:
    """A speech-like signal of ``duration`` seconds, peak-normalised to 0.5, float32."""
    rng = np.random.default_rng(seed)
    out = np.zeros(int(duration * sr))
    pos = int(rng.uniform(0.05, 0.2) * sr)
    while pos < len(out):
        n = min(int(rng.uniform(0.12, 0.35) * sr), len(out) - pos)
        if n > 0.05 * sr:
            out[pos:pos + n] = _syllable(rng, n, sr) * rng.uniform(0.4, 1.0)
        pos += n + int(rng.uniform(0.05, 0.4) * sr)
    return (0.5 * out / np.max(np.abs(out))).astype(np.float32)


def music_like(duration: float = 3.0, seed: int | np.random.Generator = 0, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Plucked harmonic notes on an A-minor pentatonic scale, peak-normalised to 0.5, float32."""
    rng = np.random.default_rng(seed)
    scale = 220.0 * 2 ** (np.array([0, 3, 5, 7, 10, 12, 15]) / 12)
    out = np.zeros(int(duration * sr))
    pos = 0
    while pos < len(out):
        n = min(int(rng.uniform(0.2, 0.6) * sr), len(out) - pos)
        t = np.arange(n) / sr
        f = rng.choice(scale)
        k = np.arange(1, int(0.45 * sr / f) + 1)
        note = np.sum(np.sin(2 * np.pi * f * k * t[:, None]) / k * np.exp(-t[:, None] * (3 + k)), axis=1)
        fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.005)  # 5 ms ramps: no clicks at note edges
        out[pos:pos + n] += note * fade
        pos += n
    return (0.5 * out / np.max(np.abs(out))).astype(np.float32)


def colored_noise(duration: float = 3.0, color: str = "pink", seed: int | np.random.Generator = 0,
                  sr: int = SAMPLE_RATE) -> np.ndarray:
    """Gaussian noise with power spectrum ~ 1/f^alpha for ``color`` in white/pink/brown/blue; unit std."""
    if color not in NOISE_EXPONENTS:
        raise ValueError(f"color must be one of {sorted(NOISE_EXPONENTS)}, got {color!r}")
    rng = np.random.default_rng(seed)
    n = int(duration * sr)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freq = np.fft.rfftfreq(n, 1 / sr)
    freq[0] = freq[1]  # avoid dividing by zero at DC
    noise = np.fft.irfft(spectrum / freq ** (NOISE_EXPONENTS[color] / 2), n)
    return (noise / noise.std()).astype(np.float32)
