"""``ppl-models impute`` and ``export-physionet``: the file contract, the target really ignored, clear errors,
and the PhysioNet windows (real gaps kept as masks, no sample in both splits)."""

import numpy as np
import pytest

from conftest import shared
from ppl_models.cli import main
from ppl_models.datasets.av_speech import build_av_speech
from ppl_models.data.fusion_files import FusionData, load_fusion, save_fusion
from ppl_models.datasets.physionet import SAMPLES_PER_FRAME, build_physionet, load_channels
from ppl_models.data.synthetic.multimodal import synthetic_multimodal


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("impute")
    train, _ = synthetic_multimodal(64, 30, seed=0)
    test, _ = synthetic_multimodal(8, 30, seed=1)
    save_fusion(folder / "train.npz", train)
    save_fusion(folder / "test.npz", test)
    blind = FusionData({"a": test.sensors["a"], "b": np.full_like(test.sensors["b"], np.nan)})
    save_fusion(folder / "blind.npz", FusionData(blind.sensors))  # the target entirely NaN
    return folder


@pytest.mark.parametrize("model", ["hmm", "lds", "ridge", "ridge+mvrnn"])
def test_impute_writes_mean_and_std_and_ignores_the_target(files, tmp_path, capsys, model):
    outs = []
    for test in ("test.npz", "blind.npz"):
        out = tmp_path / f"{test}.out.npz"
        code, stdout, _ = run(capsys, "impute", "--train", str(files / "train.npz"), "--test", str(files / test),
                              "--target", "b", "--model", model, "--epochs", "3", "--out", str(out), "--no-progress")
        assert code == 0 and out.is_file() and out.with_suffix(".png").is_file()
        with np.load(out) as f:
            assert f["x_b"].shape == f["std_b"].shape == (8, 30, 2) and (f["std_b"] > 0).all()
            outs.append(f["x_b"])
        assert ("RMSE" in stdout) == (test == "test.npz")
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-5, atol=1e-5)  # the test file's own b is never read


def test_impute_errors_name_the_argument(files, tmp_path, capsys):
    common = ["--train", str(files / "train.npz"), "--out", str(tmp_path / "o.npz")]
    code, _, err = run(capsys, "impute", *common, "--test", str(files / "test.npz"), "--target", "c")
    assert code == 2 and "--target 'c' is not a sensor" in err
    other = tmp_path / "other.npz"
    save_fusion(other, FusionData({"a": np.zeros((2, 5, 3), np.float32)}))
    code, _, err = run(capsys, "impute", *common, "--test", str(other), "--target", "b")
    assert code == 2 and "other.npz: sensors ['a'] differ" in err
    code, _, err = run(capsys, "impute", *common, "--test", str(files / "test.npz"), "--target", "b", "--epochs", "0")
    assert code == 2 and "--epochs must be >= 1" in err


def test_physionet_windows_keep_real_gaps_and_split_in_time():
    root = shared()
    train, test, meta = build_physionet(root, "mixedsignals", frames=64)
    assert train.names == ["abp", "ecg", "pleth", "resp"] and abs(meta["frame_rate_hz"] - 15.62) < 0.01
    assert {k: v.shape[-1] for k, v in train.sensors.items()} == {"abp": 4, "ecg": 12, "pleth": 4, "resp": 4}
    channels = load_channels(root / "multimodal_physionet_wfdb" / "mixedsignals.npz")
    nan_abp = np.isnan(channels["ABP"][0]).reshape(-1, 2 * SAMPLES_PER_FRAME).any(1)  # ABP: 125 Hz -> / 2
    assert nan_abp.sum() > 0
    gaps_in_files = (1 - train.mask("abp")).sum() / 2 + (1 - test.mask("abp")).sum()  # train windows overlap by half
    assert 0 < gaps_in_files <= nan_abp.sum() + 2
    assert all(np.isfinite(v).all() for v in train.sensors.values())
    # the train windows end where the test windows begin: 70 % of the frames
    n_frames = len(channels["Resp"][0]) // SAMPLES_PER_FRAME
    assert (train.shape[0] + 1) * 32 <= int(0.7 * n_frames) and test.shape[0] * 64 <= n_frames - int(0.7 * n_frames)
    a_train, a_test, _ = build_physionet(root, "a103l")
    assert a_train.names == ["ecg", "pleth"] and a_train.complete and a_test.complete
    with pytest.raises(ValueError, match="record must be one of"):
        build_physionet(root, "nope")
    leads, _, meta = build_physionet(root, "mixedsignals", sensors=["II", "V", "abp"])  # one lead, one sensor
    assert leads.names == ["abp", "ii", "v"] and meta["channels"]["v"] == ["V"]
    np.testing.assert_array_equal(leads.sensors["ii"], train.sensors["ecg"][..., :SAMPLES_PER_FRAME])
    with pytest.raises(ValueError, match="'X' is neither a sensor"):
        build_physionet(root, "a103l", sensors=["II", "X"])


def test_av_speech_mouth_follows_the_real_speech_envelope_and_occlusions_are_missing(tmp_path, capsys):
    root = shared("speech_librispeech_resemblyzer")
    code, out, _ = run(capsys, "export-av-speech", "--data", str(root.parent), "--frames", "100",
                       "--out-dir", str(tmp_path))
    assert code == 0 and "mouth" in out
    train, test = load_fusion(tmp_path / "train.npz"), load_fusion(tmp_path / "test.npz")
    assert {k: v.shape[-1] for k, v in test.sensors.items()} == {"audio": 32, "mouth": 1}
    assert train.names == test.names and train.shape[0] > 2 * test.shape[0]
    data, meta = build_av_speech(root.parent, "test", frames=100)
    np.testing.assert_array_equal(data.mask("mouth"), test.mask("mouth"))
    assert (test.mask("mouth") == ~meta["occluded"]).all() and 0.1 < 1 - test.mask("mouth").mean() < 0.4
    assert test.complete is False and (test.mask("audio") == 1).all()
    # the mouth opens with the (lagged) clean-speech envelope: the shared cause the models must find
    seen = test.mask("mouth") > 0
    lagged = np.stack([np.r_[np.full(k, e[0]), e[:-k]] for e, k in zip(meta["envelope"], meta["lag"])])
    assert np.corrcoef(test.sensors["mouth"][..., 0][seen], lagged[seen])[0, 1] > 0.7
    # and the audio's loudness says the same: mean log-mel energy against the envelope
    assert np.corrcoef(test.sensors["audio"].mean(-1).ravel(), meta["envelope"].ravel())[0, 1] > 0.7
    assert not set(meta["speaker"]) & set(build_av_speech(root.parent, "train", 100)[1]["speaker"])
