import numpy as np
import pytest

from ppl_models.data.stft import power_spectrogram
from ppl_models.data.synthetic import (colored_noise, mix_at_snr, music_like, sample_trajectories, speech_like,
                                       synthetic_tracking_window)
from ppl_models.data.synthetic.trajectories import SEGMENT_TYPES, _segment


def test_trajectories_are_seeded_boxes_inside_the_unit_square():
    a, b = sample_trajectories(50, seed=3), sample_trajectories(50, seed=3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, sample_trajectories(50, seed=4))
    assert a.shape == (50, 60, 4) and a.dtype == np.float32
    assert a.min() >= 0 and a.max() <= 1
    w, h = a[..., 2] - a[..., 0], a[..., 1] - a[..., 3]
    assert np.all(w > 0) and np.all(h > 0)
    ratio = h / w
    np.testing.assert_allclose(ratio, ratio[:, :1].repeat(60, 1), rtol=1e-3)  # one height/width ratio each


def test_segments_start_where_the_previous_ended():
    rng = np.random.default_rng(0)
    for kind in SEGMENT_TYPES:
        piece = _segment(rng, kind, 0.4, 10, dict(velocity=0.01, acceleration=0.001, omega=0.1, phase=1.0))
        assert piece[0] == pytest.approx(0.4)


def test_motion_statistics_match_the_published_scales():
    """Frame-to-frame x-velocity is N(0, 0.00125^2) for 'line' segments: the median |dx| of whole
    trajectories must sit on that scale (not 10x off), the y motion smaller, as the published sigmas say."""
    traj = sample_trajectories(400, seed=0)
    dx = np.median(np.abs(np.diff(traj[..., 0], axis=1)))
    dy = np.median(np.abs(np.diff(traj[..., 1], axis=1)))
    assert 1e-4 < dx < 5e-3 and dy < dx


def test_speech_like_has_voiced_syllables_and_pauses():
    x = speech_like(3.0, seed=1)
    assert x.dtype == np.float32 and len(x) == 48000 and np.abs(x).max() == pytest.approx(0.5)
    power = power_spectrogram(x).numpy()
    frame_db = 10 * np.log10(power.sum(0) + 1e-12)
    assert np.mean(frame_db < frame_db.max() - 40) > 0.1  # pauses
    freqs = np.arange(513) * 16000 / 1024
    assert power[freqs < 4000].sum() / power.sum() > 0.9  # energy where vowels have their formants
    # the loudest frame is harmonic: its autocorrelation peaks at a pitch period of 90-250 Hz
    loud = int(np.argmax(power.sum(0))) * 256
    seg = x[loud - 512:loud + 512].astype(np.float64)
    ac = np.correlate(seg, seg, "full")[len(seg) - 1:]
    lag = np.argmax(ac[16000 // 260:16000 // 85]) + 16000 // 260
    assert 85 <= 16000 / lag <= 260


@pytest.mark.parametrize("color, slope", [("white", 0.0), ("pink", -1.0), ("brown", -2.0), ("blue", 1.0)])
def test_noise_colours_have_their_spectral_slope(color, slope):
    x = colored_noise(4.0, color, seed=0)
    freqs = np.fft.rfftfreq(len(x), 1 / 16000)
    power = np.abs(np.fft.rfft(x)) ** 2
    band = (freqs > 50) & (freqs < 7000)
    fitted = np.polyfit(np.log10(freqs[band]), np.log10(power[band]), 1)[0]
    assert fitted == pytest.approx(slope, abs=0.1)
    with pytest.raises(ValueError, match="color"):
        colored_noise(1.0, "purple")


@pytest.mark.parametrize("snr", [-5.0, 0.0, 12.5])
def test_mix_at_snr_is_exact(snr):
    s, n = speech_like(2.0, seed=0), music_like(1.3, seed=0)
    mix, scaled = mix_at_snr(s, n, snr)
    np.testing.assert_allclose(mix - s, scaled, atol=1e-6)
    achieved = 10 * np.log10(np.sum(s.astype(float) ** 2) / np.sum(scaled.astype(float) ** 2))
    assert achieved == pytest.approx(snr, abs=1e-3)


def test_synthetic_tracking_window_misses_and_labels():
    w = synthetic_tracking_window(num_sources=4, length=60, miss_rate=0.3, jitter=0.0, seed=2)
    assert w.tracks.shape == (60, 4, 4)
    assert 0.15 < w.miss_rate < 0.45
    for t, k in zip(*np.nonzero(w.mask)):
        np.testing.assert_allclose(w.detections[t, k], w.tracks[t, w.labels[t, k]])  # zero jitter: exact


def test_occluded_fraction_counts_only_a_nearer_larger_box():
    from ppl_models.data.synthetic.mixtures import occluded_fraction

    small = [0.0, 0.0, 0.2, 0.2]  # area 0.04, half of it under the large box
    large = [0.1, -0.1, 0.5, 0.3]  # area 0.16, a quarter of it over the small box
    far = [0.8, 0.8, 0.9, 0.9]
    fraction = occluded_fraction(np.array([[small, large, far]]))
    np.testing.assert_allclose(fraction, [[0.5, 0.0, 0.0]])  # the larger (nearer) box is not occluded


def test_occlusion_window_misses_the_hidden_track_where_tracks_cross():
    from ppl_models.data.synthetic import synthetic_occlusion_window
    from ppl_models.data.synthetic.mixtures import occluded_fraction

    window = synthetic_occlusion_window(3, 60, seed=177)
    hidden = occluded_fraction(window.tracks) > 0.7  # visibility < 0.3: never detected
    assert hidden.any()
    detected = np.zeros_like(hidden)
    t, k = np.nonzero(window.mask)
    detected[t, window.labels[t, k]] = True
    assert not (detected & hidden).any()
