import numpy as np
import pytest

from conftest import shared
from ppl_models.data.audio import load_audio
from ppl_models.data.mot import read_mot
from ppl_models.metrics.audio import estoi, pesq_score, rmse, si_sdr
from ppl_models.metrics.tracking import summarize


@pytest.fixture(scope="module")
def pesq_pair():
    d = shared("speech_pesq_ref")
    return load_audio(d / "speech.wav"), load_audio(d / "speech_bab_0dB.wav")


def test_pesq_reproduces_the_python_pesq_reference(pesq_pair):
    ref, deg = pesq_pair
    assert pesq_score(ref, deg, mode="wb") == pytest.approx(1.0832337141036987, abs=1e-7)
    assert pesq_score(ref, deg, mode="nb") == pytest.approx(1.6072081327438354, abs=1e-7)


def test_estoi_reproduces_pystoi_on_the_reference_pair(pesq_pair):
    assert estoi(*pesq_pair) == pytest.approx(0.390450, abs=1e-6)


def test_si_sdr_is_scale_invariant_and_exact_for_orthogonal_noise():
    rng = np.random.default_rng(0)
    s = rng.standard_normal(16000)
    e = rng.standard_normal(16000)
    e -= (e @ s) / (s @ s) * s  # orthogonal to s
    e *= np.linalg.norm(s) / np.linalg.norm(e) / 10 ** (7.5 / 20)  # 7.5 dB below s
    assert si_sdr(s, s + e) == pytest.approx(7.5, abs=1e-9)
    assert si_sdr(s, 0.3 * (s + e)) == pytest.approx(7.5, abs=1e-9)
    assert rmse(s, s + e) == pytest.approx(np.sqrt(np.mean(e ** 2)))


def test_pesq_guards_silence_and_bad_modes():
    x = np.random.default_rng(0).standard_normal(16000) * 0.1
    with pytest.warns(UserWarning, match="silent"):
        assert np.isnan(pesq_score(np.zeros(16000), x))
    with pytest.raises(ValueError, match="16 kHz"):
        pesq_score(x, x, sample_rate=8000, mode="wb")
    with pytest.raises(ValueError, match="'wb' or 'nb'"):
        pesq_score(x, x, mode="xx")


def test_motmetrics_summary_reproduces_the_py_motmetrics_tud_table():
    d = shared("mot_pymotmetrics_tud")
    pairs = {s: (read_mot(d / s / "gt.txt"), read_mot(d / s / "test.txt")) for s in ("TUD-Campus", "TUD-Stadtmitte")}
    table = summarize(pairs)
    overall = table["OVERALL"]
    assert overall["mota"] == pytest.approx(0.555116, abs=1e-6)
    assert overall["idf1"] == pytest.approx(0.624296, abs=1e-6)
    assert overall["motp"] == pytest.approx(0.330177, abs=1e-6)
    assert (overall["num_false_positives"], overall["num_misses"], overall["num_switches"]) == (58, 602, 14)
    assert (overall["mostly_tracked"], overall["mostly_lost"]) == (6, 2)
    assert table["TUD-Campus"]["mota"] == pytest.approx(0.526462, abs=1e-6)


def test_ground_truth_scores_itself_perfectly():
    gt = read_mot(shared("mot15_train_gt", "TUD-Campus", "gt", "gt.txt"))
    row = summarize({"self": (gt, gt)})["self"]
    assert row["mota"] == 1.0 and row["idf1"] == 1.0 and row["num_switches"] == 0 and row["motp"] == 0.0
