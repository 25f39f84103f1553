"""Pre-training priors: the KL weight and warm-up, the scheduled-sampling curriculum, exporting, and the
shipped priors."""

import numpy as np
import pytest
import torch

from pyro import poutine

from ppl_models.cli import main
from ppl_models.data.audio import list_audio_files, load_audio, speed_perturb
from ppl_models.data.synthetic import sample_trajectories
from ppl_models.dvae import RVAE, SRNN, VAE, build_dvae
from ppl_models.dvae.resynthesis import resynthesize
from ppl_models.dvae.train import export_prior, load_prior, pretrained_names, prior_data, train_prior
from ppl_models.metrics.audio import si_sdr
from tests.conftest import shared


def test_scheduled_sampling_ramps_after_the_warm_up(tmp_path, monkeypatch):
    ratios = []
    original = SRNN.scheduled_past

    def spy(self, x, ratio):
        ratios.append(ratio)
        return original(self, x, ratio)

    monkeypatch.setattr(SRNN, "scheduled_past", spy)
    train_prior("trajectory", "srnn", tmp_path / "p.pt", epochs=8, warmup_epochs=2, size=16, batch_size=16,
                scheduled_sampling=0.6, progress=False)
    # KL warm-up over epochs 0-1 teacher-forced, then linear to 0.6 by mid-training (epoch 3), then flat
    torch.testing.assert_close(torch.tensor(ratios), torch.tensor([0, 0, 0.3, 0.6, 0.6, 0.6, 0.6, 0.6]))


def spy_on_annealing(monkeypatch, cls):
    """(annealing, T) of every call of ``cls``'s model: a training step, then validation (positional)."""
    seen = []
    original = cls.model

    def model(self, x, past=None, annealing=1.0):
        seen.append((annealing, x.shape[1]))
        return original(self, x, past, annealing)

    monkeypatch.setattr(cls, "model", model)
    return seen


def test_the_kl_weight_is_reached_over_the_warm_up_and_kept_in_the_checkpoint(tmp_path, monkeypatch):
    seen = spy_on_annealing(monkeypatch, SRNN)
    dvae, _ = train_prior("trajectory", "srnn", tmp_path / "p.pt", epochs=5, warmup_epochs=4, size=16,
                          batch_size=16, beta=0.2, progress=False)  # one step and one validation an epoch
    torch.testing.assert_close(torch.tensor([a for a, _ in seen[::2]]), torch.tensor([0.05, 0.1, 0.15, 0.2, 0.2]))
    assert [a for a, _ in seen[1::2]] == [0.2] * 5  # validation weighs the KL as training does after the warm-up
    trace = poutine.trace(dvae.model).get_trace(torch.rand(2, 6, 4), annealing=0.2)
    assert trace.nodes["z"]["scale"] == 0.2 and trace.nodes["x"]["scale"] == 1.0  # the z terms, not x
    assert torch.load(tmp_path / "p.pt", weights_only=False)["config"]["beta"] == 0.2
    prior = load_prior(export_prior(tmp_path / "p.pt", tmp_path / "prior.pt"))  # beta is no size of the net
    x = torch.rand(2, 10, 4)
    torch.testing.assert_close(prior.reconstruct(x), dvae.eval().reconstruct(x))
    seen.clear()
    train_prior("trajectory", "srnn", tmp_path / "q.pt", epochs=2, warmup_epochs=2, size=16, batch_size=16,
                progress=False)
    assert [a for a, _ in seen] == [0.5, 1.0, 1.0, 1.0]  # trajectories: 1 by default, not stored
    assert "beta" not in torch.load(tmp_path / "q.pt", weights_only=False)["config"]
    with pytest.raises(ValueError, match="beta must be positive"):
        train_prior("trajectory", "srnn", tmp_path / "r.pt", beta=0.0)


def test_speech_priors_train_with_the_reference_kl_weight_and_the_given_segment_length(tmp_path, monkeypatch):
    seen = spy_on_annealing(monkeypatch, VAE)
    train_prior("speech", "vae", tmp_path / "p.pt", epochs=2, warmup_epochs=2, size=24, frames=20, progress=False)
    assert seen == [(0.005, 20), (0.01, 20), (0.01, 20), (0.01, 20)]
    assert prior_data("speech", size=24)[0].shape[1:] == (50, 513)  # 50 frames by default
    assert prior_data("trajectory", size=8, segment_frames=12)[0].shape == (8, 12, 4)


def test_train_prior_cli_checks_its_options_and_keeps_batch_size_as_an_alias(tmp_path, capsys, monkeypatch):
    import ppl_models.dvae.train as train

    calls, original = [], train.train_prior
    monkeypatch.setattr(train, "train_prior", lambda *a, **k: calls.append(k) or original(*a, **k))
    base = ["train-prior", "--kind", "trajectory", "--model", "vae", "--out", str(tmp_path / "p.pt"),
            "--epochs", "1", "--size", "16", "--no-progress"]
    for flags, error in ((["--beta", "0"], "must be positive"), (["--beta", "x"], "expected a number"),
                         (["--frames", "1"], "must be at least 2"), (["--batch", "0"], "must be at least 1")):
        with pytest.raises(SystemExit):
            main(base + flags)
        assert error in capsys.readouterr().err
    assert main(base + ["--batch-size", "7", "--frames", "12"]) == 0
    assert main(base + ["--batch", "5", "--beta", "0.5"]) == 0
    assert [(k["batch_size"], k["frames"], k["beta"]) for k in calls] == [(7, 12, None), (5, None, 0.5)]


def test_speech_is_split_by_utterance_so_overlapping_segments_never_leak():
    train, val = prior_data("speech", "synthetic", size=48, segment_hop=10)  # 4 utterances, one validates
    plain, _ = prior_data("speech", "synthetic", size=48)
    assert train.shape[1:] == (50, 513) and len(train) > 4 * len(plain)
    train_frames = {tuple(f.tolist()[:8]) for f in train.reshape(-1, 513)}
    val_frames = [f for f in val.reshape(-1, 513) if f.sum() > 0]  # (the synthetic pauses are exact zeros)
    assert val_frames and not any(tuple(f.tolist()[:8]) in train_frames for f in val_frames)


def test_real_speech_trains_and_validates_on_other_speakers_and_never_reads_the_test_ones(tmp_path):
    from ppl_models.data.audio import write_audio
    from ppl_models.data.spectrogram_dataset import SpectrogramSegments
    from ppl_models.data.speakers import split_by_speaker
    from ppl_models.data.synthetic import speech_like

    folder = shared("pyroomacoustics_samples", "speech")  # CMU ARCTIC: speakers aew, axb and 'arctic'
    parts = split_by_speaker(list_audio_files(folder))
    assert all(parts)
    for got, files in zip(prior_data("speech", str(folder), segment_frames=20), parts):
        torch.testing.assert_close(got, SpectrogramSegments(files, 20).segments)
    for i in range(10):  # two speakers: too few to hold one out, a tenth of the utterances validates
        write_audio(tmp_path / ("anna", "bob")[i % 2] / f"{i}.wav", speech_like(1.0, seed=i))
    train, val = prior_data("speech", str(tmp_path), segment_frames=20)
    assert len(val) and len(train) > 5 * len(val)


def test_export_keeps_the_prior_and_drops_the_optimizer(tmp_path):
    dvae, _ = train_prior("trajectory", "vrnn", tmp_path / "train.pt", epochs=2, size=16, progress=False)
    out = export_prior(tmp_path / "train.pt", tmp_path / "prior.pt")
    assert out.stat().st_size < 0.6 * (tmp_path / "train.pt").stat().st_size
    x = torch.rand(2, 10, 4)
    torch.testing.assert_close(load_prior(out).reconstruct(x), dvae.eval().reconstruct(x))


def test_a_prior_trained_with_patience_is_used_at_its_best_epoch(tmp_path):
    """The last checkpoint of a run holds its last weights and a snapshot of the best ones: loading and exporting
    it must give the best ones (an interrupted run, or one that stopped early, is still used at its best)."""
    train_prior("trajectory", "vrnn", tmp_path / "train.pt", epochs=2, size=16, patience=5, progress=False)
    state = torch.load(tmp_path / "train.pt", weights_only=False)
    state["best_params"] = {k: v + 1.0 for k, v in state["best_params"].items()}  # a best epoch unlike the last
    torch.save(state, tmp_path / "train.pt")
    best = {k.partition("$$$")[2]: v for k, v in state["best_params"].items()}
    exported = export_prior(tmp_path / "train.pt", tmp_path / "prior.pt")
    for prior in (load_prior(tmp_path / "train.pt"), load_prior(exported)):
        weights = dict(prior.named_parameters())
        assert weights.keys() == best.keys()
        for name, value in best.items():
            torch.testing.assert_close(weights[name], value)


def test_a_deeper_rvae_decoder_is_kept_by_its_checkpoint(tmp_path):
    train_prior("speech", "rvae", tmp_path / "train.pt", epochs=1, size=8, progress=False, hidden=16, rnn_dim=8,
                decoder_layers=2)
    prior = load_prior(export_prior(tmp_path / "train.pt", tmp_path / "prior.pt"))
    assert [m.out_features for m in prior.decoder if isinstance(m, torch.nn.Linear)] == [16, 16, 513]
    assert [m.out_features for m in build_dvae("rvae", "speech", decoder_layers=0).decoder] == [513]  # reference
    train_prior("speech", "rvae-causal", tmp_path / "more.pt", epochs=1, size=8, progress=False,
                init=tmp_path / "prior.pt")  # the same model under its other name
    with pytest.raises(ValueError, match="decoder_layers is an option of rvae"):
        train_prior("speech", "vae", tmp_path / "vae.pt", epochs=1, size=8, progress=False, decoder_layers=2)


def test_a_velocity_srnn_reads_each_displacement_and_keeps_it_in_its_checkpoint(tmp_path):
    dvae, _ = train_prior("trajectory", "srnn", tmp_path / "train.pt", epochs=1, size=16, progress=False,
                          velocity=True)
    x = torch.as_tensor(sample_trajectories(4, seed=3))
    spread = (x[:, 1:] - x[:, :-1]).reshape(-1, 4).std(0)
    assert not torch.allclose(dvae.motion_scale, torch.ones(4))  # set from the training data, not left at 1
    seen = dvae.rnn_input(x)
    torch.testing.assert_close(seen[:, 1:, 4:] * dvae.motion_scale, x[:, 1:] - x[:, :-1])
    assert seen[:, 0, 4:].abs().max() == 0  # the first frame has no displacement
    assert 0.2 < (dvae.motion_scale / spread).min() and (dvae.motion_scale / spread).max() < 5
    prior = load_prior(export_prior(tmp_path / "train.pt", tmp_path / "prior.pt"))
    assert prior.velocity and prior.rnn.input_size == 8
    torch.testing.assert_close(prior.reconstruct(x), dvae.eval().reconstruct(x))
    assert prior.generate(5, 2).shape == (2, 5, 4)
    assert not load_prior("srnn-trajectory").velocity  # priors written before the option load without it
    with pytest.raises(ValueError, match="velocity is an option of srnn trajectory priors"):
        build_dvae("vrnn", "trajectory", velocity=True)


def test_training_can_start_from_a_trained_prior(tmp_path):
    train_prior("trajectory", "vrnn", tmp_path / "a.pt", epochs=2, size=16, progress=False, hidden=8)
    prior = load_prior(export_prior(tmp_path / "a.pt", tmp_path / "prior.pt"))
    dvae, _ = train_prior("trajectory", "vrnn", tmp_path / "b.pt", epochs=1, size=16, progress=False, lr=0.0,
                          init=tmp_path / "prior.pt", seed=1)  # other data, no step: the prior's weights
    x = torch.rand(2, 10, 4)
    torch.testing.assert_close(dvae.eval().reconstruct(x), prior.reconstruct(x))
    assert torch.load(tmp_path / "b.pt", weights_only=False)["config"]["hidden"] == 8  # b keeps a's sizes
    with pytest.raises(ValueError, match="is a vrnn trajectory prior, not srnn"):
        train_prior("trajectory", "srnn", tmp_path / "c.pt", epochs=1, size=16, progress=False, init=tmp_path / "a.pt")
    with pytest.raises(ValueError, match="fixes the sizes; drop --hidden"):
        train_prior("trajectory", "vrnn", tmp_path / "c.pt", epochs=1, size=16, progress=False, hidden=8,
                    init=tmp_path / "a.pt")


def test_shipped_priors_load_by_name_frozen():
    assert {"srnn-trajectory", "rvae-speech"} <= set(pretrained_names())
    trajectory, speech = load_prior("srnn-trajectory"), load_prior("rvae-speech")
    assert isinstance(trajectory, SRNN)
    assert (trajectory.x_dim, trajectory.z_dim, trajectory.rnn.hidden_size) == (4, 4, 8)
    assert isinstance(speech, RVAE) and speech.causal and (speech.x_dim, speech.z_dim) == (513, 16)
    assert speech.decoder_rnn.hidden_size == 128 and speech.decoder[0].out_features == 512  # LSTM(128), MLP 512
    assert not any(p.requires_grad for p in speech.parameters())
    with pytest.raises(FileNotFoundError, match="nor a shipped prior.*rvae-speech"):
        load_prior("rvae-spech")


def test_shipped_trajectory_prior_predicts_the_next_box():
    """Teacher-forced reconstruction of unseen synthetic trajectories is within a few pixels (1/1000)."""
    x = torch.as_tensor(sample_trajectories(200, seed=12345))
    error = (load_prior("srnn-trajectory").reconstruct(x) - x).square().mean((0, 2)).sqrt()
    assert error[1:].mean() < 0.02  # frame 1 has no past to read


@pytest.mark.parametrize("name, z_dim, floor", [("rvae-speech", 16, 4.0), ("rvae-speech-z64", 64, 8.0)])
def test_shipped_speech_priors_resynthesise_held_out_speakers(name, z_dim, floor):
    """LibriSpeech test-other speakers were kept out of training (model card). The issue's target is 8 dB;
    the shipped priors reach 4.68 dB (16-D) and 8.66 dB (64-D) on all 50 (benchmarks/RESULTS.md): this guards
    what we have, the 64-D prior's target, and that the wider latent carries more of unseen speech."""
    files = list_audio_files(shared("speech_librispeech_resemblyzer", "test-other"))[::10]
    dvae = load_prior(name)
    assert dvae.z_dim == z_dim
    scores = [si_sdr(s, resynthesize(dvae, s).numpy()) for s in map(load_audio, files)]
    assert sum(scores) / len(scores) > floor  # on these 5: 4.55 dB (16-D, retrained), 8.60 dB (64-D)


def test_speed_perturbation_moves_the_pitch_and_multiplies_only_the_training_data():
    t = np.arange(16000) / 16000
    faster = speed_perturb(np.sin(2 * np.pi * 200 * t).astype(np.float32), 1.1)
    spectrum = np.abs(np.fft.rfft(faster))
    assert abs(len(faster) - 16000 / 1.1) < 1 and np.argmax(spectrum) / len(faster) * 16000 == pytest.approx(220, abs=2)
    train, val = prior_data("speech", "synthetic", size=48, segment_hop=10)
    train3, val3 = prior_data("speech", "synthetic", size=48, segment_hop=10, speeds=(0.9, 1.0, 1.1))
    assert 2.5 * len(train) < len(train3) < 3.5 * len(train)
    torch.testing.assert_close(val3, val)
    with pytest.raises(ValueError, match="speed perturbation is for speech"):
        train_prior("trajectory", "srnn", "unused.pt", speeds=(0.9, 1.0))
