import numpy as np
import pytest
import torch

from conftest import shared
from ppl_models.data.audio import load_audio, peak_normalise, write_audio
from ppl_models.data.spectrogram_dataset import SpectrogramSegments
from ppl_models.data.stft import power_spectrogram, trim_silence
from ppl_models.data.synthetic import speech_like


@pytest.mark.parametrize("frames", [50, 100])
def test_real_speech_folder_becomes_fixed_length_segments(frames):
    folder = shared("pyroomacoustics_samples", "speech")
    data = SpectrogramSegments(folder, segment_frames=frames)
    assert data[0].shape == (frames, 513) and data[0].dtype == torch.float32
    # the first segment is exactly the first frames of the DC-free, peak-normalised, trimmed utterance's spectrogram
    path, start = data.origins[0]
    assert start == 0
    signal = load_audio(path)
    expected = power_spectrogram(trim_silence(peak_normalise(signal - signal.mean()))).T[:frames]
    torch.testing.assert_close(data[0], expected)
    files = sorted(folder.glob("*.wav"))
    assert len(data) == sum(power_spectrogram(trim_silence(load_audio(f))).shape[1] // frames for f in files)


def test_segment_count_and_no_overlap(tmp_path):
    lengths = [2.0, 3.1, 0.5]
    for i, seconds in enumerate(lengths):
        write_audio(tmp_path / f"utt{i}.wav", np.pad(speech_like(seconds, seed=i), 2000))
    data = SpectrogramSegments(tmp_path, segment_frames=50, trim_db=None)
    n_frames = [len(np.pad(speech_like(s, seed=i), 2000)) // 256 + 1 for i, s in enumerate(lengths)]
    assert len(data) == sum(n // 50 for n in n_frames)
    starts = [s for p, s in data.origins if p.name == "utt1.wav"]
    assert starts == list(range(0, 50 * len(starts), 50))


def test_overlapping_segments_start_every_hop_frames(tmp_path):
    write_audio(tmp_path / "utt.wav", speech_like(2.0, seed=0))
    whole = SpectrogramSegments(tmp_path, segment_frames=50, trim_db=None)
    data = SpectrogramSegments(tmp_path, segment_frames=50, trim_db=None, hop_frames=10)
    n_frames = whole.segments.shape[0] * 50 + (len(speech_like(2.0, seed=0)) // 256 + 1) % 50
    assert [s for _, s in data.origins] == list(range(0, n_frames - 50 + 1, 10))
    torch.testing.assert_close(data[5], whole[1])  # frames 50..99 either way
    torch.testing.assert_close(data[1][:40], data[0][10:])  # neighbours share 40 frames


def test_empty_folder_and_short_audio_are_errors(tmp_path):
    with pytest.raises(ValueError, match="no audio files"):
        SpectrogramSegments(tmp_path)
    write_audio(tmp_path / "short.wav", speech_like(0.3, seed=0))
    with pytest.raises(ValueError, match="shorter than 100 frames"):
        SpectrogramSegments(tmp_path, segment_frames=100)


def test_a_dc_offset_is_removed_before_the_peak_scaling(tmp_path):
    """A recording with a DC offset (some LibriSpeech ones hold 35-97 % of their energy there) gives the same
    segments as without it."""
    speech = speech_like(2.0, seed=0)
    write_audio(tmp_path / "clean.wav", 0.5 * speech)
    write_audio(tmp_path / "offset.wav", 0.5 * speech + 0.4)
    data = SpectrogramSegments(tmp_path, segment_frames=50, trim_db=None)
    clean = [seg for seg, (p, _) in zip(data.segments, data.origins) if p.name == "clean.wav"]
    offset = [seg for seg, (p, _) in zip(data.segments, data.origins) if p.name == "offset.wav"]
    assert len(clean) == len(offset) > 0
    for a, b in zip(clean, offset):  # equal up to the 16-bit quantisation of the files
        assert (a - b).abs().max() < 1e-4 * a.max()
    kept = power_spectrogram(peak_normalise(load_audio(tmp_path / "offset.wav"))).T[:50]  # without the removal
    assert (kept - clean[0]).abs().max() > 0.1 * clean[0].max()
