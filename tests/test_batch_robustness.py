"""`enhance` and `separate` on folders with bad files, odd formats and very short inputs: the usable files are
written, each bad one is named on stderr, and the command exits 2 at the end."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from ppl_models.cli import main
from ppl_models.data.synthetic import colored_noise, mix_at_snr, speech_like


def noisy(seconds: float, rate: int = 16000, seed: int = 0) -> np.ndarray:
    signal, _ = mix_at_snr(speech_like(seconds, seed=seed), colored_noise(seconds, "white", seed=seed), 5.0)
    if rate != 16000:
        from ppl_models.data.audio import resample

        signal = resample(signal, 16000, rate)
    return 0.5 * signal / np.abs(signal).max()


@pytest.fixture
def mixed_folder(tmp_path):
    """Good files (mono 16 kHz, stereo 48 kHz, 8 kHz, 44.1 kHz in a sub-folder, 20 ms long) and bad ones."""
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    sf.write(folder / "mono16k.wav", noisy(1.0), 16000)
    stereo = noisy(1.0, 48000, seed=1)
    sf.write(folder / "stereo48k.wav", np.stack([stereo, 0.5 * stereo], axis=1), 48000)
    sf.write(folder / "rate8k.wav", noisy(1.0, 8000, seed=2), 8000)
    sf.write(folder / "sub" / "rate44k.flac", noisy(0.5, 44100, seed=3), 44100)
    sf.write(folder / "short.wav", noisy(1.0, seed=4)[:320], 16000)  # 20 ms: less than one STFT window
    sf.write(folder / "silent.wav", np.zeros(8000), 16000)
    nan = noisy(0.5, seed=5)
    nan[100] = np.nan
    sf.write(folder / "nan.wav", nan, 16000, subtype="FLOAT")
    (folder / "broken.wav").write_bytes(b"RIFF\x00\x00not really a wav file")
    good = {"mono16k": 16000, "stereo48k": 16000, "rate8k": 16000, "sub/rate44k": 8000, "short": 320}
    return folder, good, ("silent.wav", "nan.wav", "broken.wav")


def test_enhance_folder_writes_the_good_files_and_names_the_bad_ones(mixed_folder, tmp_path, capsys):
    folder, good, bad = mixed_folder
    out = tmp_path / "out"
    assert main(["enhance", str(folder), "--out", str(out), "--noise-model", "nmf", "--iterations", "2",
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    for name, length in good.items():
        estimate, rate = sf.read(out / f"{name}.wav")
        assert rate == 16000 and estimate.ndim == 1 and len(estimate) == length and np.isfinite(estimate).all()
        assert name.split("/")[-1] not in err
    for name in bad:
        assert name in err and not (out / name).exists()
    assert "3 of 8 inputs failed" in err
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]  # no temporary files left behind


def test_separate_folder_writes_the_good_mixtures_and_names_the_bad_ones(mixed_folder, tmp_path, capsys):
    folder, good, bad = mixed_folder
    out = tmp_path / "out"
    assert main(["separate", str(folder), "--priors", "speech=rvae-speech,music=rvae-guitar", "--out-dir", str(out),
                 "--iterations", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    for name, length in good.items():
        for source in ("speech", "music"):
            estimate, rate = sf.read(out / name / f"{source}.wav")
            assert rate == 16000 and len(estimate) == length and np.isfinite(estimate).all()
    for name in bad:
        assert name in err and not (out / name.removesuffix(".wav")).exists()
    assert "3 of 8 inputs failed" in err


def test_one_bad_file_alone_still_exits_2_with_its_name(tmp_path, capsys):
    sf.write(tmp_path / "silent.wav", np.zeros(1600), 16000)
    assert main(["separate", str(tmp_path / "silent.wav"), "--priors", "speech=rvae-speech,music=rvae-guitar",
                 "--out-dir", str(tmp_path / "out")]) == 2
    assert "silent.wav" in capsys.readouterr().err and not (tmp_path / "out").exists()
