"""``export-fusion`` and ``fuse`` as a user meets them: the file contract, the outputs, and clear errors."""

import numpy as np
import pytest

from conftest import shared
from ppl_models.cli import main
from ppl_models.data.fusion_files import FusionData, load_fusion, save_fusion


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def synthetic_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fusion")
    assert main(["export-fusion", "--out-dir", str(folder)]) == 0
    return folder


def test_fuse_writes_the_contract_and_beats_chance(synthetic_files, tmp_path, capsys):
    out = tmp_path / "cam.npz"
    code, text, _ = run(capsys, "fuse", "--train", str(synthetic_files / "train.npz"), "--test",
                        str(synthetic_files / "test.npz"), "--out", str(out), "--epochs", "15", "--no-progress",
                        "--model", "cam")  # the paper's frame-wise mixture: the recurrent default is slower
    assert code == 0
    test = load_fusion(synthetic_files / "test.npz")
    with np.load(out) as f:
        p, attention, names = f["p"], f["attention"], list(f["sensors"])
    assert p.shape == test.shape and attention.shape == (*test.shape, 3)
    assert names == ["sharp", "steady", "weak"]
    np.testing.assert_allclose(attention.sum(-1), 1.0, atol=1e-5)
    accuracy = float(text.split("accuracy ")[1].split()[0])
    assert accuracy == pytest.approx(np.mean((p > 0.5) == (test.y > 0.5)), abs=1e-4)
    assert accuracy > 0.85
    assert (tmp_path / "cam.png").stat().st_size > 10_000


def test_export_writes_the_training_marks_and_the_default_learns_from_them(synthetic_files, tmp_path, capsys):
    train = load_fusion(synthetic_files / "train.npz")
    assert set(train.failing) == {"sharp"} and 0.1 < train.failing["sharp"].mean() < 0.6
    code, text, _ = run(capsys, "fuse", "--train", str(synthetic_files / "train.npz"), "--test",
                        str(synthetic_files / "test.npz"), "--out", str(tmp_path / "d.npz"), "--epochs", "2",
                        "--no-progress")  # the default, mam+evidence+marks
    assert code == 0 and "mam+evidence+marks on" in text


def test_single_sensor_baseline_attention_is_one_hot(synthetic_files, tmp_path, capsys):
    out = tmp_path / "steady.npz"
    assert main(["fuse", "--train", str(synthetic_files / "train.npz"), "--test", str(synthetic_files / "test.npz"),
                 "--model", "expert:steady", "--out", str(out), "--epochs", "2", "--no-progress"]) == 0
    with np.load(out) as f:
        assert np.array_equal(f["attention"][0, 0], [0.0, 1.0, 0.0])
    code, _, err = run(capsys, "fuse", "--train", str(synthetic_files / "train.npz"), "--test",
                       str(synthetic_files / "test.npz"), "--model", "expert:steady", "--gate-sees-experts",
                       "--out", str(out))
    assert code == 2 and "gate_sees_experts needs a gate" in err


def test_bad_files_are_named(synthetic_files, tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    np.savez(bad, x_a=np.zeros((2, 5), np.float32), y=np.zeros((2, 5)))
    code, _, err = run(capsys, "fuse", "--train", str(bad), "--test", str(bad), "--out", str(tmp_path / "o.npz"))
    assert code == 2 and "bad.npz: x_a has shape (2, 5), expected (N, T, D)" in err
    other = tmp_path / "other.npz"
    save_fusion(other, FusionData({"a": np.zeros((2, 5, 1), np.float32)}, np.zeros((2, 5))))
    code, _, err = run(capsys, "fuse", "--train", str(synthetic_files / "train.npz"), "--test", str(other),
                       "--out", str(tmp_path / "o.npz"))
    assert code == 2 and "other.npz: sensors ['a'] differ" in err
    nan = tmp_path / "nan.npz"
    np.savez(nan, x_a=np.full((1, 3, 1), np.nan, np.float32), y=np.zeros((1, 3)))
    code, _, err = run(capsys, "fuse", "--train", str(nan), "--test", str(nan), "--out", str(tmp_path / "o.npz"))
    assert code == 2 and "nan.npz: has missing frames" in err
    labels = tmp_path / "labels.npz"
    np.savez(labels, x_a=np.zeros((1, 3, 1), np.float32), y=np.full((1, 3), 2.0))
    code, _, err = run(capsys, "fuse", "--train", str(labels), "--test", str(labels), "--out", str(tmp_path / "o.npz"))
    assert code == 2 and "labels.npz: y must hold labels 0 or 1" in err
    code, _, err = run(capsys, "fuse", "--train", str(tmp_path / "missing.npz"), "--test", str(labels),
                       "--out", str(tmp_path / "o.npz"))
    assert code == 2 and "missing.npz" in err


def test_export_real_sets_needs_the_data_folder(tmp_path, capsys):
    code, _, err = run(capsys, "export-fusion", "--dataset", "beats", "--out-dir", str(tmp_path))
    assert code == 2 and "give their folder with --data" in err


@pytest.mark.slow
def test_export_beats_from_the_real_record(tmp_path, capsys):
    data = shared()
    code, text, _ = run(capsys, "export-fusion", "--dataset", "beats", "--data", str(data), "--corrupt", "ecg",
                        "--out-dir", str(tmp_path))
    assert code == 0
    train, test = load_fusion(tmp_path / "train.npz"), load_fusion(tmp_path / "test.npz")
    assert train.names == test.names == ["ecg", "pleth"]
    with np.load(tmp_path / "test.npz") as f:
        share = f["corrupted_ecg"].mean()
    assert 0.2 < share < 0.4  # the requested 30 % of test frames fail


def test_export_lead_sets_of_the_second_record_and_a_lead_that_is_no_sensor(tmp_path, capsys):
    data = shared()
    code, text, _ = run(capsys, "export-fusion", "--dataset", "beats", "--record", "mixedsignals", "--sensors",
                        "leads", "--corrupt", "v", "--data", str(data), "--out-dir", str(tmp_path))
    assert code == 0
    test = load_fusion(tmp_path / "test.npz")
    assert test.names == ["ii", "v"]
    with np.load(tmp_path / "test.npz") as f:
        assert 0.2 < f["corrupted_v"].mean() < 0.4 and not f["corrupted_ii"].any()
    code, _, err = run(capsys, "export-fusion", "--dataset", "beats", "--sensors", "leads", "--corrupt", "pleth",
                       "--data", str(data), "--out-dir", str(tmp_path / "bad"))
    assert code == 2 and "corrupt" in err and "ii, v" in err
