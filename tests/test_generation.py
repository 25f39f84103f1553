"""Generation from the speech priors: ancestral draws, Griffin-Lim phase, the Fréchet distance of features."""

import numpy as np
import pytest
import torch

from ppl_models.data.stft import griffin_lim, stft
from ppl_models.dvae import build_dvae
from ppl_models.metrics.frechet import frechet_distance, segment_features


def test_frechet_distance_of_gaussians_matches_the_closed_form():
    rng = np.random.default_rng(0)
    a = rng.normal([0.0, 1.0, 2.0], [1.0, 2.0, 0.5], size=(200_000, 3))
    b = rng.normal([1.0, 1.0, 0.0], [3.0, 2.0, 0.5], size=(200_000, 3))
    # diagonal covariances: sum (m_a - m_b)^2 + (s_a - s_b)^2 = 1 + 4 + (2^2) = 9
    assert frechet_distance(a, b) == pytest.approx(9.0, rel=0.02)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError):
        frechet_distance(a, b[:, :2])


def test_segment_features_ignore_the_level_and_see_the_spectrum():
    rng = np.random.default_rng(0)
    noise, other = rng.standard_normal((2, 16000 * 20)).astype(np.float32)
    f = segment_features(noise)
    assert f.shape == (40, 39)  # 20 s = 1251 frames: 40 whole segments of 31 frames
    assert np.allclose(segment_features(10 * noise), f, atol=1e-4)
    low = np.convolve(other, np.ones(8) / 8, mode="same")  # white noise through a low-pass: another envelope
    assert frechet_distance(f, segment_features(other)) < 0.1 * frechet_distance(f, segment_features(low))


def test_griffin_lim_finds_a_signal_with_the_given_magnitude():
    t = torch.arange(16000) / 16000
    signal = torch.sin(2 * torch.pi * (200 + 300 * t) * t) + 0.5 * torch.sin(2 * torch.pi * 1234 * t)
    magnitude = stft(signal).abs()
    def error(iterations):
        estimate = griffin_lim(magnitude, iterations, length=len(signal))
        return float((stft(estimate).abs() - magnitude).norm() / magnitude.norm())
    assert error(32) < 0.5 * error(0)
    assert error(32) < 0.15


@pytest.mark.parametrize("name", ["vae", "srnn", "hit-dvae", "light-dvae"])
def test_ancestral_draws_are_exponential_around_the_decoder_means(name):
    """With the same seed the first frame's decoder output is the same in both modes (nothing fed back yet),
    so draw / mean is Exp(1): mean 1, standard deviation 1."""
    dvae = build_dvae(name, "speech", hidden=16)
    torch.manual_seed(0)
    mean = dvae.generate(3, num=64)
    torch.manual_seed(0)
    draw = dvae.generate(3, num=64, draw=True)
    ratio = (draw[:, 0] / mean[:, 0]).flatten()
    assert draw.shape == mean.shape == (64, 3, dvae.x_dim) and bool((draw > 0).all())
    assert float(ratio.mean()) == pytest.approx(1.0, abs=0.03)
    assert float(ratio.std()) == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("name", ["hit-dvae", "light-dvae"])
def test_decoding_a_given_z_free_running_starts_as_the_teacher_forced_decoder(name):
    """generate(z=..., w=...) decodes the given z (no draws: twice the same) and its first frame, which reads no
    past, is the teacher-forced decoder's first frame; later frames read its own outputs, not the data."""
    dvae = build_dvae(name, "speech", hidden=16)
    x = torch.rand(2, 6, dvae.x_dim) + 0.1
    w, z = dvae.encode_w(x), dvae.encode(x)
    free = dvae.generate(6, num=2, w=w, z=z)
    forced = dvae.likelihood.mean(dvae.decoder_params(z, x, w))
    assert torch.equal(free, dvae.generate(6, num=2, w=w, z=z))
    assert torch.allclose(free[:, 0], forced[:, 0], rtol=1e-5)
    assert not torch.allclose(free[:, 1:], forced[:, 1:], rtol=1e-3)
