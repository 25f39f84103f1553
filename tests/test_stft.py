import numpy as np
import pytest
import torch

from conftest import shared
from ppl_models.data.audio import load_audio
from ppl_models.data.stft import HOP_LENGTH, N_FFT, istft, power_spectrogram, sine_window, stft, trim_silence


def test_sine_window_squares_overlap_add_to_a_constant():
    w2 = sine_window().numpy() ** 2
    total = sum(np.roll(w2, k * HOP_LENGTH) for k in range(N_FFT // HOP_LENGTH))
    np.testing.assert_allclose(total, 2.0, atol=1e-5)  # sin^2 at 75 % overlap: COLA with sum 2


def test_near_perfect_reconstruction_on_real_speech():
    x = torch.as_tensor(load_audio(shared("speech_pesq_ref", "speech.wav")))
    spec = stft(x)
    assert spec.shape == (513, len(x) // HOP_LENGTH + 1)
    y = istft(spec, length=len(x))
    assert torch.max(torch.abs(y - x)) < 1e-5 * torch.max(torch.abs(x)) * 10


def test_batched_stft_matches_single():
    x = torch.randn(3, 4000)
    spec = stft(x)
    torch.testing.assert_close(spec[1], stft(x[1]))
    torch.testing.assert_close(istft(spec, length=4000), x, atol=1e-5, rtol=0)


def test_power_spectrogram_of_a_tone_peaks_at_its_bin():
    t = np.arange(16000) / 16000
    power = power_spectrogram(np.sin(2 * np.pi * 1000 * t).astype(np.float32))
    assert power.shape[0] == 513
    assert int(power[:, 10:-10].mean(1).argmax()) == round(1000 * N_FFT / 16000)


@pytest.mark.parametrize("lead, tail", [(4000, 8000), (0, 3000)])
def test_trim_silence_finds_the_loud_part_within_a_frame(lead, tail):
    rng = np.random.default_rng(0)
    loud = rng.standard_normal(16000).astype(np.float32)
    x = np.concatenate([np.full(lead, 1e-4, np.float32), loud, np.full(tail, 1e-4, np.float32)])
    trimmed = trim_silence(x, top_db=30)
    # each side may keep the frames whose 1024-sample window still reaches the loud part (< N/2 + hop)
    assert 0 <= (lead + tail) - (len(x) - len(trimmed)) <= N_FFT + 2 * HOP_LENGTH
    assert np.abs(trimmed).max() == np.abs(loud).max()
