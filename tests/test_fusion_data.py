"""The real-data builders of the sensor-fusion system: audio-visual speech activity and ECG/PLETH beats.

Every test builds from ../shared/data (skipped where that folder is absent) and checks a property that a bug
could break: labels against the clean energy, disjoint speakers and noises, the mixing SNR, the mouth video
against the speech, the occlusion lengths, the heart rate and beat agreement, the corruption masks, and that
a frame-wise logistic regression learns each task from clean sensors.
"""

import numpy as np
import pytest
import torch

from conftest import shared
from ppl_models.data.audio import load_audio
from ppl_models.data.fusion_files import FusionData, check_fusion, load_fusion, save_fusion
from ppl_models.data.stft import mel_filterbank, power_spectrogram
from ppl_models.datasets.mouth_video import H, W
from ppl_models.datasets.physio_beats import build_beat_detection, detect_beats, load_record, qrs_peaks
from ppl_models.datasets.speech_activity import (FEATURE_MEAN_DB, FEATURE_STD_DB, N_MELS, RUNNING_MEAN_FRAMES,
                                                 TRAIN_SHARE, URBAN, build_speech_activity, noise_recordings)


def _runs(mask: np.ndarray) -> list[int]:
    """Lengths of the runs of True in each row of a (N, T) mask."""
    out = []
    for row in np.atleast_2d(mask):
        edges = np.flatnonzero(np.diff(np.r_[0, row.astype(int), 0]))
        out += list(edges[1::2] - edges[::2])
    return out


def _logistic_accuracy(x_train, y_train, x_test, y_test) -> float:
    """Frame-wise logistic regression (features standardised on train, LBFGS) -> test accuracy."""
    x_train, x_test = (torch.as_tensor(x.reshape(-1, x.shape[-1]), dtype=torch.float32) for x in (x_train, x_test))
    y_train = torch.as_tensor(y_train.ravel(), dtype=torch.float32)
    mu, sd = x_train.mean(0), x_train.std(0) + 1e-6
    w = torch.zeros(x_train.shape[1] + 1, requires_grad=True)
    opt = torch.optim.LBFGS([w], max_iter=200, line_search_fn="strong_wolfe")
    z = torch.cat([(x_train - mu) / sd, torch.ones(len(x_train), 1)], 1)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(z @ w, y_train) + 1e-3 * w[:-1].square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    logits = torch.cat([(x_test - mu) / sd, torch.ones(len(x_test), 1)], 1) @ w
    return float(((logits > 0).numpy() == y_test.ravel().astype(bool)).mean())


# ---------------------------------------------------------------- speech activity


@pytest.fixture(scope="module")
def sad():
    root = shared()
    return {(split, noise): build_speech_activity(root, split, noise, num_sequences=n, keep_audio=True)
            for split, noise, n in [("train", "environment", 40), ("test", "environment", 30),
                                    ("test", "babble", 20), ("train", "clean", 60), ("test", "clean", 30)]}


def test_speech_sets_follow_the_fusion_contract(sad):
    for (split, noise), (data, meta) in sad.items():
        data = check_fusion(data)
        assert data.names == ["audio", "flow", "image"]
        n = data.shape[0]
        assert {k: v.shape for k, v in data.sensors.items()} == {"audio": (n, 200, 64), "flow": (n, 200, 48),
                                                                 "image": (n, 200, 48)}
        for k in ("corrupted_audio", "corrupted_image", "corrupted_flow", "nonspeech_motion"):
            assert meta[k].shape == (n, 200) and meta[k].dtype == bool
        assert 0.4 < data.y.mean() < 0.8, (split, noise, data.y.mean())
        assert np.all(data.sensors["flow"][:, 0] == 0)


def test_speech_labels_follow_the_clean_energy(sad):
    data, meta = sad[("test", "environment")]
    band = (np.fft.rfftfreq(1024, 1 / 16000) >= 250) & (np.fft.rfftfreq(1024, 1 / 16000) <= 4000)
    power = power_spectrogram(torch.from_numpy(meta["clean_audio"])).numpy()[..., :200]  # (N, F, T)
    energy = 10 * np.log10(power[:, band].sum(1) + 1e-10)
    np.testing.assert_allclose(energy, meta["clean_energy_db"], atol=0.01)
    margin = energy - meta["threshold_db"]
    assert np.mean(data.y == (margin > 0)) > 0.95  # only the 5-frame median filter changes labels
    assert data.y[margin > 6].mean() > 0.99
    assert data.y[margin < -6].mean() < 0.01


def test_train_and_test_speakers_and_noises_are_disjoint(sad):
    train_spk, test_spk = set(sad[("train", "environment")][1]["speakers"]), set(sad[("test", "babble")][1]["speakers"])
    assert len(train_spk) == 40 and len(test_spk) == 10 and not train_spk & test_spk
    _, babble = sad[("test", "babble")]
    for target, source in zip(babble["speaker"], babble["noise_source"]):
        talkers = source.removeprefix("babble:").split("+")
        assert len(set(talkers)) == 3 and target not in talkers and set(talkers) <= test_spk
    for split in ("train", "test"):
        used = set(sad[(split, "environment")][1]["noise_source"])
        assert used <= set(sad[(split, "environment")][1]["noise_files"])


def test_noise_augmentation_gives_half_the_training_sequences_an_urban_clip_and_no_test_sequence(sad):
    train = sad[("train", "environment")][1]["noise_source"].astype(str)
    urban = np.char.startswith(train, URBAN + "/")
    assert 0.3 < urban.mean() < 0.7 and len(set(train[urban])) > 10  # many clips, not one
    assert not any(s.startswith(URBAN) for s in sad[("test", "environment")][1]["noise_source"])


def test_environment_noise_splits_recordings_and_unseen_environment_splits_kinds():
    root = shared()
    (train_files, train), (test_files, test) = (noise_recordings(root, s, "environment") for s in ("train", "test"))
    assert len(train_files) == 7 and len(test_files) == 6  # the dog clip ends in silence: train only
    for f in test_files:  # the test stretch of each recording follows its train stretch: disjoint, together whole
        whole = load_audio(root / f)
        np.testing.assert_array_equal(np.concatenate([train[train_files.index(f)], test[test_files.index(f)]]), whole)
        assert len(test[test_files.index(f)]) == len(whole) - int(TRAIN_SHARE * len(whole))
    unseen = [set(noise_recordings(root, s, "unseen-environment")[0]) for s in ("train", "test")]
    assert unseen[0] and unseen[1] and not unseen[0] & unseen[1]
    assert unseen[0] | unseen[1] == set(train_files)


def test_mixtures_are_at_the_target_snr_and_give_the_audio_features(sad):
    for key, target in [(("test", "environment"), -5.0), (("test", "babble"), 0.0), (("train", "environment"), -5.0)]:
        data, meta = sad[key]
        clean, noise = meta["clean_audio"].astype(np.float64), meta["noise_audio"].astype(np.float64)
        snr = 10 * np.log10((clean ** 2).sum(1) / (noise ** 2).sum(1))
        assert np.abs(snr - target).max() < 0.5, key
    data, meta = sad[("test", "babble")]
    mix = power_spectrogram(torch.from_numpy(meta["clean_audio"] + meta["noise_audio"])).numpy()[..., :200]
    mel = 10 * np.log10(np.einsum("mf,nft->ntm", mel_filterbank(N_MELS), mix) + 1e-10)
    standardised = (mel - FEATURE_MEAN_DB) / FEATURE_STD_DB
    np.testing.assert_allclose(data.sensors["audio"][..., :N_MELS], standardised, atol=1e-3)
    # the second half: each band minus its running mean, by the recursion m_t = a m_{t-1} + (1 - a) x_t
    a, m, w, relative = 1 - 1 / RUNNING_MEAN_FRAMES, 0.0, 0.0, np.empty_like(standardised)
    for t in range(standardised.shape[1]):
        m, w = a * m + (1 - a) * standardised[:, t], a * w + (1 - a)
        relative[:, t] = standardised[:, t] - m / w
    np.testing.assert_allclose(data.sensors["audio"][..., N_MELS:], relative, atol=2e-3)
    assert np.all(sad[("test", "clean")][1]["noise_audio"] == 0)


def test_mouth_opens_with_the_speech_a_few_frames_later_unless_occluded(sad):
    data, meta = sad[("test", "environment")]
    img = data.sensors["image"].reshape(*data.shape, H, W)
    dark = -img[:, :, 2:4, 2:6].mean((2, 3))  # the mouth cavity darkens the centre
    env, occ = meta["envelope"], meta["corrupted_image"]
    lagged = np.stack([np.r_[np.full(k, e[0]), e[:-k]] for e, k in zip(env, meta["lag"])])
    corr_clean = np.corrcoef(dark[~occ], lagged[~occ])[0, 1]
    corr_occ = np.corrcoef(dark[occ], lagged[occ])[0, 1]
    assert corr_clean > 0.7 and corr_occ < corr_clean - 0.4, (corr_clean, corr_occ)
    assert corr_clean > np.corrcoef(dark[~occ], env[~occ])[0, 1]  # the video lags the audio
    assert set(np.unique(meta["lag"])) <= {2, 3, 4}


def test_occlusions_are_20_to_30_frames_in_train_and_test(sad):
    for split in ("train", "test"):
        _, meta = sad[(split, "environment")]
        occ = meta["corrupted_image"]
        runs = _runs(occ)
        assert runs and min(runs) >= 20 and max(runs) <= 30, runs
        assert 0.05 < occ.mean() < 0.35
        after = np.concatenate([np.zeros_like(occ[:, :1]), occ[:, :-1]], 1)
        np.testing.assert_array_equal(meta["corrupted_flow"], occ | after)


def test_speech_activity_is_learnable_frame_by_frame(sad):
    (train, _), (test, meta) = sad[("train", "clean")], sad[("test", "clean")]
    acc_audio = _logistic_accuracy(train.sensors["audio"], train.y, test.sensors["audio"], test.y)
    ok = ~meta["corrupted_image"]
    acc_image = _logistic_accuracy(train.sensors["image"], train.y, test.sensors["image"][ok], test.y[ok])
    chance = max(test.y.mean(), 1 - test.y.mean())
    assert acc_audio > 0.85 and acc_image > 0.8 and chance < 0.7, (acc_audio, acc_image, chance)


# ---------------------------------------------------------------- physiology: beats

RECORD = ("multimodal_physionet_wfdb", "a103l.npz")


@pytest.fixture(scope="module")
def beats():
    record = shared(*RECORD)
    return {"record": record,
            "train": build_beat_detection(record, "train"),
            "train_clean": build_beat_detection(record, "train", train_corrupt=False),
            **{f"test_{c}": build_beat_detection(record, "test", corrupt=c) for c in (None, "ecg", "pleth")}}


def test_beat_sets_follow_the_contract_and_split_by_time(beats):
    for key in ("train", "test_None"):
        data, meta = beats[key]
        data = check_fusion(data)
        n = data.shape[0]
        assert data.names == ["ecg", "pleth"] and data.sensors["ecg"].shape == (n, 250, 20)
        assert data.sensors["pleth"].shape == (n, 250, 10)
    (_, train), (_, test) = beats["train"], beats["test_None"]
    assert train["start_frame"].max() + 250 <= train["split_frame"] <= test["start_frame"].min()
    assert np.all(np.diff(test["start_frame"]) == 250)  # no overlap in test
    assert train["split_frame"] == round(0.7 * 330 * 25)


def test_heart_rate_is_plausible_and_sets_the_label_rate(beats):
    data, meta = beats["test_None"]
    hr = meta["heart_rate_bpm"]
    print(f"a103l: heart rate {hr:.1f} bpm, pulse delay {meta['pulse_delay_s']:.3f} s")
    assert 100 < hr < 150  # sinus tachycardia in this record (~127 bpm)
    rr = np.diff(meta["beats"]) / 250
    assert rr.min() > 0.6 * np.median(rr) and rr.max() < 1.6 * np.median(rr)  # no missed or doubled beats
    expected = hr / 60 / 25 * 6  # 6 frames (0.24 s) per beat
    for key in ("train_clean", "test_None"):
        assert abs(beats[key][0].y.mean() - expected) < 0.03, (key, beats[key][0].y.mean(), expected)


def test_r_peaks_agree_between_the_two_leads(beats):
    sig, fs = load_record(beats["record"])
    found = detect_beats(sig, fs)
    p2, _ = qrs_peaks(sig[:, 0], fs)
    pv, _ = qrs_peaks(sig[:, 1], fs)
    r = found["times"][found["source"] == 0]
    assert len(r) > 0.85 * len(found["times"])  # most beats come from the ECG
    gap = np.abs(r[:, None] - pv[None, :]).min(1)
    assert np.all(gap <= 0.06 * fs)
    clean2 = p2[found["ecg_ok"][p2]]
    assert np.mean(np.abs(clean2[:, None] - pv[None, :]).min(1) <= 0.06 * fs) > 0.99
    assert (~found["ecg_ok"][int(0.7 * len(sig)):]).mean() > 0.2  # the real artifact stretch is in the test part


def test_corruption_hits_only_the_chosen_sensor(beats):
    clean, _ = beats["test_None"]
    for sensor, other in (("ecg", "pleth"), ("pleth", "ecg")):
        data, meta = beats[f"test_{sensor}"]
        bad = meta[f"corrupted_{sensor}"]
        assert 0.25 < bad.mean() < 0.4 and not meta[f"corrupted_{other}"].any()
        runs = _runs(bad.ravel())  # test sequences are consecutive, so segments may cross their borders
        assert min(runs) >= 50 and max(runs) <= 100
        np.testing.assert_array_equal(data.sensors[other], clean.sensors[other])
        assert np.abs(data.sensors[sensor][bad] - clean.sensors[sensor][bad]).mean() > 0.5
        np.testing.assert_array_equal(data.y, clean.y)
    _, train = beats["train"]
    for sensor in ("ecg", "pleth"):
        assert 0.07 < train[f"corrupted_{sensor}"].mean() < 0.15
    assert not (train["corrupted_ecg"] & train["corrupted_pleth"]).any()
    _, untouched = beats["train_clean"]
    assert not untouched["corrupted_ecg"].any() and not untouched["corrupted_pleth"].any()
    with pytest.raises(ValueError, match="corrupt"):
        build_beat_detection(beats["record"], "train", corrupt="ecg")
    with pytest.raises(FileNotFoundError, match="no_such.npz"):
        build_beat_detection(beats["record"].parent / "no_such.npz")


def test_beats_are_learnable_frame_by_frame(beats):
    (train, _), (test, meta) = beats["train_clean"], beats["test_None"]
    ok = ~(meta["artifact_ecg"] | meta["artifact_pleth"])
    x_train = np.concatenate([train.sensors["ecg"], train.sensors["pleth"]], -1)
    x_test = np.concatenate([test.sensors["ecg"], test.sensors["pleth"]], -1)[ok]
    acc = _logistic_accuracy(x_train, train.y, x_test, test.y[ok])
    assert acc > 0.8 and abs(test.y.mean() - 0.5) < 0.1, acc


@pytest.mark.parametrize("record", ["a103l.npz", "mixedsignals.npz"])
def test_lead_sets_fail_one_lead_and_keep_the_beats(record):
    """sensors="leads": lead II and lead V as two sensors of 10 samples; corrupting one changes only it; the labels
    are those of the ECG + PLETH set; mixedsignals (PLETH at half the ECG rate, missing ECG at the start) loads."""
    path = shared(RECORD[0], record)
    sig, fs = load_record(path)
    assert sig.shape[1] == 3 and np.isfinite(sig).all() and abs(fs - 250) < 1
    pleth_ecg_corr = np.corrcoef(sig[:, 2], sig[:, 0])[0, 1]
    assert abs(pleth_ecg_corr) < 0.5  # PLETH is not an ECG lead (a wrong column order would show here)
    reference, _ = build_beat_detection(path, "test")
    clean, _ = build_beat_detection(path, "test", sensors="leads")
    assert clean.names == ["ii", "v"] and clean.sensors["ii"].shape[-1] == 10 == clean.sensors["v"].shape[-1]
    np.testing.assert_array_equal(clean.y, reference.y)
    np.testing.assert_array_equal(clean.sensors["ii"], reference.sensors["ecg"][..., :10])
    np.testing.assert_array_equal(clean.sensors["v"], reference.sensors["ecg"][..., 10:])
    for lead, other in (("ii", "v"), ("v", "ii")):
        data, meta = build_beat_detection(path, "test", corrupt=lead, sensors="leads")
        bad = meta[f"corrupted_{lead}"]
        assert 0.2 < bad.mean() < 0.4 and not meta[f"corrupted_{other}"].any()
        np.testing.assert_array_equal(data.sensors[other], clean.sensors[other])
        assert np.abs(data.sensors[lead][bad] - clean.sensors[lead][bad]).mean() > 0.5
    _, train = build_beat_detection(path, "train", sensors="leads")
    assert 0.07 < train["corrupted_ii"].mean() < 0.15 and 0.07 < train["corrupted_v"].mean() < 0.15
    assert not (train["corrupted_ii"] & train["corrupted_v"]).any()
    with pytest.raises(ValueError, match="corrupt"):
        build_beat_detection(path, "test", corrupt="ecg", sensors="leads")


# ---------------------------------------------------------------- missing frames in the file contract


def test_nan_frames_and_masks_become_one_mask_and_zeros(tmp_path):
    from ppl_models.data.fusion_files import load_fusion, save_fusion
    a = np.arange(12, dtype=np.float32).reshape(1, 4, 3)
    a[0, 1, 2] = np.nan  # one NaN makes frame 1 missing
    b = np.ones((1, 4, 2), np.float32)
    path = tmp_path / "gaps.npz"
    np.savez(path, x_a=a, x_b=b, mask_b=np.array([[1, 1, 0, 1]]))
    data = load_fusion(path)
    np.testing.assert_array_equal(data.mask("a"), [[1, 0, 1, 1]])
    np.testing.assert_array_equal(data.mask("b"), [[1, 1, 0, 1]])
    assert not data.complete and np.isfinite(data.sensors["a"]).all() and (data.sensors["a"][0, 1] == 0).all()
    save_fusion(tmp_path / "again.npz", data)
    again = load_fusion(tmp_path / "again.npz")
    np.testing.assert_array_equal(again.mask("a"), data.mask("a"))
    np.savez(path, x_a=a, mask_c=np.ones((1, 4)))
    with pytest.raises(ValueError, match="gaps.npz: mask_c has no matching x_c"):
        load_fusion(path)
    np.savez(path, x_a=a, mask_a=np.ones((1, 3)))
    with pytest.raises(ValueError, match=r"gaps.npz: mask_a has shape \(1, 3\), expected"):
        load_fusion(path)


def test_groups_survive_the_file_and_held_out_splits_keep_them_whole(tmp_path, sad):
    data, meta = sad[("train", "environment")]
    assert [meta["speakers"][g] for g in data.groups] == list(meta["speaker"])  # one group per speaker
    save_fusion(tmp_path / "g.npz", data)
    again = load_fusion(tmp_path / "g.npz")
    np.testing.assert_array_equal(again.groups, data.groups)
    for seed in range(5):
        taken = again.taken(0.3, seed)
        rest, part = again.subset(~taken), again.subset(taken)
        assert not set(rest.groups) & set(part.groups) and len(rest.groups) + len(part.groups) == data.shape[0]
        assert part.shape[0] > 0 and rest.shape[0] > 0
    x = np.zeros((3, 4, 1), np.float32)
    with pytest.raises(ValueError, match="cannot split 1 group"):
        FusionData({"a": x}, groups=np.zeros(3, int)).taken(0.5, 0)
    np.savez(tmp_path / "bad.npz", x_a=x, group=np.zeros(2, int))
    with pytest.raises(ValueError, match=r"bad.npz: group must be integers of shape \(N,\) = \(3,\)"):
        load_fusion(tmp_path / "bad.npz")


def test_marks_of_failure_travel_through_the_file_and_its_subsets(tmp_path):
    x = np.zeros((4, 6, 2), np.float32)
    marks = (np.arange(24).reshape(4, 6) % 5 == 0).astype(np.float32)
    save_fusion(tmp_path / "f.npz", FusionData({"b": x, "a": x}, np.zeros((4, 6)), failing={"b": marks}))
    data = load_fusion(tmp_path / "f.npz")
    np.testing.assert_array_equal(data.failing["b"], marks)
    np.testing.assert_array_equal(data.subset([1, 3]).failing["b"], marks[[1, 3]])
    stacked = data.failure_marks()  # (N, T, M), sensors in sorted order, an unmarked sensor all zeros
    assert stacked.shape == (4, 6, 2) and not stacked[..., 0].any()
    np.testing.assert_array_equal(stacked[..., 1], marks)
    with pytest.raises(ValueError, match="corrupted_c has no matching x_c"):
        check_fusion(FusionData({"a": x}, failing={"c": marks}))
    with pytest.raises(ValueError, match="corrupted_a must hold 0 or 1"):
        check_fusion(FusionData({"a": x}, failing={"a": marks[:2]}))
    with pytest.raises(ValueError, match="corrupted_a must hold 0 or 1"):
        check_fusion(FusionData({"a": x}, failing={"a": 2 * marks}))
