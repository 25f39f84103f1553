import numpy as np
import pytest
import soundfile as sf

from ppl_models.data import audio
from ppl_models.data.audio import load_audio, resample, write_audio


def test_stereo_is_mixed_to_mono(tmp_path):
    left = np.sin(np.linspace(0, 200, 16000)).astype(np.float32) * 0.5
    right = np.zeros_like(left) + 0.1
    sf.write(tmp_path / "stereo.wav", np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    mono = load_audio(tmp_path / "stereo.wav")
    np.testing.assert_allclose(mono, (left + right) / 2, atol=1e-6)


def test_resampling_keeps_duration_and_pitch(tmp_path):
    t = np.arange(44100) / 44100
    sf.write(tmp_path / "tone.wav", 0.5 * np.sin(2 * np.pi * 440 * t), 44100, subtype="FLOAT")
    y = load_audio(tmp_path / "tone.wav")
    assert len(y) == 16000
    spectrum = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spectrum) * 16000 / len(y) - 440) <= 1.0


def test_resample_identity_and_bad_rate():
    x = np.random.default_rng(0).standard_normal(100).astype(np.float32)
    assert resample(x, 16000, 16000) is x
    with pytest.raises(ValueError, match="positive"):
        resample(x, 0, 16000)


@pytest.mark.parametrize("content, message", [
    (np.zeros(0, np.float32), "empty"),
    (np.zeros(1600, np.float32), "silent"),
    (np.array([0.1, np.nan, 0.2] * 100, np.float32), "NaN"),
])
def test_bad_audio_is_refused_with_the_file_name(tmp_path, content, message):
    path = tmp_path / "bad.wav"
    sf.write(path, content, 16000, subtype="FLOAT")
    with pytest.raises(ValueError, match=message) as info:
        load_audio(path)
    assert "bad.wav" in str(info.value)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.wav"):
        load_audio(tmp_path / "nothere.wav")
    (tmp_path / "text.wav").write_text("not audio")
    with pytest.raises(ValueError, match="text.wav: cannot read audio"):
        load_audio(tmp_path / "text.wav")


def test_write_roundtrip(tmp_path):
    x = (np.random.default_rng(1).standard_normal(8000) * 0.1).astype(np.float32)
    for suffix in (".wav", ".flac"):
        write_audio(tmp_path / f"x{suffix}", x)
        np.testing.assert_allclose(load_audio(tmp_path / f"x{suffix}"), x, atol=1e-4)  # 16-bit PCM


def test_interrupted_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "out.wav"
    old = np.full(1600, 0.25, np.float32)
    write_audio(path, old)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(audio.sf, "write", crash)
    with pytest.raises(KeyboardInterrupt):
        write_audio(path, np.full(1600, -0.5, np.float32))
    monkeypatch.undo()
    np.testing.assert_allclose(load_audio(path), old, atol=1e-4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.wav"]  # no temporary left behind


def test_write_refuses_nan_and_stereo(tmp_path):
    with pytest.raises(ValueError, match="NaN"):
        write_audio(tmp_path / "x.wav", np.array([0.0, np.nan], np.float32))
    with pytest.raises(ValueError, match="mono"):
        write_audio(tmp_path / "x.wav", np.zeros((10, 2), np.float32))
