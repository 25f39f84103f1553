"""Unsupervised speech enhancement: the noisy-speech likelihood, the Wiener filter, the NMF M-step, U-NA on a
synthetic mixture, U-ND checkpoints and the command line."""

from __future__ import annotations

import math

import numpy as np
import pyro
import pytest
import soundfile as sf
import torch
from pyro import poutine

from ppl_models.cli import main
from ppl_models.data.audio import load_audio
from ppl_models.data.synthetic import colored_noise, mix_at_snr, speech_like
from ppl_models.dvae import build_dvae
from ppl_models.dvae.likelihoods import itakura_saito
from ppl_models.dvae.train import load_prior
from ppl_models.enhancement.enhance import build_system, enhance, fit, load_noise_model, noisy_batch, train_noise
from ppl_models.enhancement.nmf_noise import NMFNoise, expected_is
from ppl_models.enhancement.noise_models import noise_floor
from ppl_models.metrics.audio import si_sdr


@pytest.fixture(scope="module")
def prior():
    return load_prior("rvae-speech")


def small_prior():
    torch.manual_seed(0)
    return build_dvae("rvae", "speech", hidden=16, rnn_dim=16, z_dim=4).eval().requires_grad_(False)


@pytest.mark.parametrize("noise_model", ["lv", "no", "nolv"])
def test_noisy_likelihood_is_the_complex_gaussian_of_speech_plus_noise_and_minus_is(noise_model):
    dvae = small_prior()
    power = torch.rand(2, 7, 513) * 3
    system = build_system(dvae, noise_model, power)
    trace = poutine.trace(system.model).get_trace(power)
    z = trace.nodes["z"]["value"]
    variance = pyro.param("gain").detach() * system.speech_variance(z) + system.noise_variance(z, power)
    # x = sqrt(g) s + b with s ~ CN(0, v_s), b ~ CN(0, v_b) independent: x ~ CN(0, g v_s + v_b); |x|^2 then has
    # density pi * CN(x) (the phase is uniform), i.e. log p(|x|^2) = -|x|^2 / V - log V.
    complex_gaussian = (-power / variance - torch.log(math.pi * variance)).sum((1, 2))
    site = trace.nodes["x"]["fn"].log_prob(power)
    torch.testing.assert_close(site, complex_gaussian + 7 * 513 * math.log(math.pi), rtol=1e-5, atol=1e-2)
    torch.testing.assert_close(-site, (itakura_saito(power, variance) + torch.log(power) + 1).sum((1, 2)),
                               rtol=1e-5, atol=1e-2)


def test_sum_of_independent_complex_gaussians_has_the_summed_variance_and_the_wiener_filter_is_its_posterior_mean():
    torch.manual_seed(0)
    n, v_s, v_b, g = 400_000, 2.0, 0.5, 0.7

    def cn(v):
        return torch.complex(torch.randn(n), torch.randn(n)) * math.sqrt(v / 2)

    speech, noise = math.sqrt(g) * cn(v_s), cn(v_b)
    x = speech + noise
    assert abs(x.abs().square().mean() - (g * v_s + v_b)) < 0.01 * (g * v_s + v_b)
    # E[s | x] is linear in x for jointly Gaussian variables; least squares finds its coefficient.
    coefficient = (torch.vdot(x, speech) / torch.vdot(x, x)).real
    wiener = g * v_s / (g * v_s + v_b)
    assert abs(coefficient - wiener) < 0.005
    # and no other gain does better in mean squared error
    mse = lambda a: (speech - a * x).abs().square().mean()  # noqa: E731
    assert mse(wiener) < min(mse(wiener - 0.05), mse(wiener + 0.05))


def test_wiener_mask_uses_the_model_variances():
    dvae = small_prior()
    power = torch.rand(1, 5, 513)
    system = build_system(dvae, "lv", power)
    pyro.get_param_store().setdefault("gain", torch.full((1, 5, 1), 0.5))
    torch.manual_seed(1)
    mask = system.wiener_mask(power, num_samples=1)
    torch.manual_seed(1)
    z = system.sample_latents(power)
    speech = 0.5 * system.speech_variance(z)
    torch.testing.assert_close(mask, speech / (speech + system.noise_variance(z, power)))


def test_nmf_multiplicative_updates_never_increase_the_expected_is_divergence():
    torch.manual_seed(0)
    power = torch.rand(3, 20, 30).double() ** 2 * 5
    power[2, 15:] = 0  # padding of the last row
    mask = torch.ones(3, 20, dtype=torch.bool)
    mask[2, 15:] = False
    noise = NMFNoise(power, utterance=torch.tensor([0, 0, 1]), rank=4, seed=1).double()
    speech = torch.rand(5, 3, 20, 30).double() + 0.1  # five guide samples of v_s
    weight = mask[..., None].double()

    def objective():
        return expected_is(power + (1 - weight), speech * weight + (1 - weight),
                           noise.gain, noise.variance() * weight).item()  # padding contributes IS(1 | 1) = 0

    values = [objective()]
    for _ in range(60):
        noise.update(power, speech, mask)
        values.append(objective())
    assert all(b <= a * (1 + 1e-9) for a, b in zip(values, values[1:]))
    assert values[-1] < 0.7 * values[0]
    torch.testing.assert_close(noise.W.sum(1), torch.ones(2, 4).double())  # unit-sum atoms, shared per utterance


def test_the_noise_levels_take_their_own_adam_step():
    """enhance(offset_lr=...): Adam's first step moves each parameter by its step size, so after one step the
    per-utterance noise levels have moved by offset_lr and nothing else by more than lr."""
    power = torch.rand(3, 20, 513) ** 2 + 1e-4
    for offset_lr, expected in ((None, 1e-3), (0.5, 0.5)):
        pyro.clear_param_store()
        system = build_system(small_prior(), "no", power, utterance=torch.tensor([0, 0, 1]))
        offset, weight = system.noise.offset.detach().clone(), system.noise.head[-1].weight.detach().clone()
        fit(system, power, None, iterations=1, offset_lr=offset_lr)
        assert (system.noise.offset - offset).abs().max().item() == pytest.approx(expected, rel=1e-3)
        assert (system.noise.head[-1].weight - weight).abs().max().item() <= 1e-3 * 1.001


def test_una_improves_a_synthetic_noisy_utterance(prior):
    clean = speech_like(3.0, seed=3)
    noisy, _ = mix_at_snr(clean, colored_noise(3.0, "white", seed=4), 0.0)
    result = enhance([noisy], prior, noise_model="lv", iterations=150, tol=-np.inf)
    assert result.iterations == 150 and len(result.signals[0]) == len(noisy)
    assert si_sdr(clean, result.signals[0]) > si_sdr(clean, noisy) + 5.0  # measured: +7.2 dB after 100, +12.8 after 200


@pytest.mark.parametrize("noise_model", ["lv", "nmf"])
def test_the_starting_noise_floor_leaves_out_the_padding(noise_model, prior):
    """2.2 s = 138 frames in segments of 100: 31 % of the batch's rows are zero padding, more than the floor's
    10 % quantile. Counted, they put the floor at 0 (clamped to 1e-10): the Wiener mask stayed ~1 and the
    gradient of the noise model's log-variance, v_b / V (1 - P / V), vanished, so real 3-4 s utterances came
    out unchanged (+0.0004 dB at 5 dB SNR)."""
    noisy, _ = mix_at_snr(speech_like(2.2, seed=3), colored_noise(2.2, "white", seed=4), 0.0)
    batch = noisy_batch([noisy], "cpu")
    assert (~batch.mask).float().mean() > 0.1
    floor = noise_floor(batch.power[batch.mask])  # (F,) over the real frames
    assert floor.min() > 1e-6
    system = build_system(prior, noise_model, batch.power, utterance=batch.utterance, mask=batch.mask,
                          shared_floor=False)
    if noise_model == "nmf":  # W H starts within a factor of the floor (random atoms and activations)
        ratio = system.noise.variance()[batch.mask] / floor
        assert 0.5 < ratio.median() < 2
    else:  # one utterance: its own floor, held by its offset
        torch.testing.assert_close(system.noise.offset[0].exp(), floor)
    mask = enhance([noisy], prior, noise_model, iterations=0).masks[0]  # the floor as enhance starts it
    assert mask.mean() < 0.95  # measured 0.91 (lv and nmf); 0.9999 with the padding counted


def test_una_improves_real_speech_in_real_noise(prior):
    from conftest import shared

    root = shared("pyroomacoustics_samples")
    clean = load_audio(root / "speech" / "cmu_arctic_us_axb_a0004.wav")  # 2.8 s: 12 % of the rows are padding
    noise = load_audio(root / "noise" / "exercise_bike.wav")[160_000:160_000 + len(clean)]
    noisy, _ = mix_at_snr(clean, noise, 5.0)
    result = enhance([noisy], prior, noise_model="lv", iterations=50, tol=-np.inf)
    assert si_sdr(clean, result.signals[0]) > si_sdr(clean, noisy) + 2.0  # measured +4.1 dB; +0.00 dB before the
    # padding was left out of the starting noise floor


def test_noisy_batch_segments_and_joins_back():
    signals = [np.random.default_rng(i).standard_normal(n).astype(np.float32) for i, n in enumerate((9000, 30000))]
    batch = noisy_batch(signals, "cpu", segment_frames=50)
    assert batch.pieces == [[0], [1, 2, 3]] and batch.utterance.tolist() == [0, 1, 1, 1]
    assert batch.join(batch.power, 1).shape == (30000 // 256 + 1, 513)
    with pytest.raises(ValueError, match="noisy signal 1"):
        noisy_batch([signals[0], np.zeros(100)], "cpu")


def test_und_checkpoint_round_trip_and_mode_errors(tmp_path, prior):
    signals = [mix_at_snr(speech_like(2.0, seed=s), colored_noise(2.0, "pink", seed=s), 5.0)[0] for s in range(3)]
    power = noisy_batch(signals, "cpu", 50).power
    out = tmp_path / "lv.pt"
    trained, history = train_noise(prior, "lv", power[1:], power[:1], out, epochs=2, progress=False)
    assert history.epochs == 2
    loaded = load_noise_model(out, prior)
    for a, b in zip(trained.noise.state_dict().values(), loaded.noise.state_dict().values()):
        torch.testing.assert_close(a, b)
    result = enhance(signals[:1], prior, mode="und", noise_checkpoint=out)
    assert result.iterations == 0 and np.isfinite(result.signals[0]).all()
    with pytest.raises(ValueError, match="holds a lv noise model, not no"):
        load_noise_model(out, prior, "no")
    with pytest.raises(ValueError, match="--noise-ckpt"):
        enhance(signals[:1], prior, mode="unda")
    with pytest.raises(ValueError, match="una"):
        enhance(signals[:1], prior, noise_model="nmf", mode="und", noise_checkpoint=out)


def test_enhance_command_writes_each_file_and_names_bad_input(tmp_path, capsys):
    folder = tmp_path / "noisy"
    folder.mkdir()
    for s in range(2):
        noisy, _ = mix_at_snr(speech_like(1.5, seed=s), colored_noise(1.5, "white", seed=s), 5.0)
        sf.write(folder / f"utt{s}.wav", noisy, 16000)
    assert main(["enhance", str(folder), "--out", str(tmp_path / "enh"), "--iterations", "3", "--noise-model", "nmf",
                 "--no-progress"]) == 0
    for s in range(2):
        estimate, rate = sf.read(tmp_path / "enh" / f"utt{s}.wav")
        assert rate == 16000 and len(estimate) == 24000
    assert "real-time factor" in capsys.readouterr().out
    sf.write(tmp_path / "silent.wav", np.zeros(16000), 16000)
    assert main(["enhance", str(tmp_path / "silent.wav"), "--out", str(tmp_path / "x.wav")]) == 2
    assert "silent.wav" in capsys.readouterr().err


@pytest.mark.parametrize("noise_model", ["lv", "no", "nolv", "nmf"])
def test_una_runs_on_every_device(noise_model, device, prior):
    noisy, _ = mix_at_snr(speech_like(1.0, seed=0), colored_noise(1.0, "white", seed=1), 0.0)
    result = enhance([noisy, noisy[:8000]], prior, noise_model=noise_model, iterations=4, tol=-np.inf, device=device)
    assert result.iterations == 4 and all(np.isfinite(s).all() for s in result.signals)
    assert all(((m >= 0) & (m <= 1)).all() for m in result.masks)
    assert [len(s) for s in result.signals] == [16000, 8000]


def test_noisy_speech_sets_keep_training_and_test_noises_apart_and_label_every_test_kind():
    from conftest import shared

    from ppl_models.datasets.noisy_speech import KIND_STATIONARITY, SNR_SETS, noise_kinds, noisy_speech_set

    root = shared("noise_urbansound8k").parent
    train, test = (noise_kinds(root, split) for split in ("train", "test"))
    train_files = {f for files in train.values() for f in files}
    test_files = {f for files in test.values() for f in files}
    assert not train_files & test_files
    assert all("fold10" in f for f in test_files if "urbansound" in f)  # UrbanSound8K split by fold
    assert not any("fold10" in f for f in train_files)
    assert set(test) == set(KIND_STATIONARITY) and set(KIND_STATIONARITY.values()) == {"stationary", "non-stationary"}
    items = noisy_speech_set(root, "test", SNR_SETS["dmd"], len(test))  # the first K utterances: one per kind
    assert [it.noise_kind for it in items] == list(test)
    for it in items:
        snr = 10 * np.log10(np.sum(it.clean ** 2) / np.sum((it.noisy - it.clean) ** 2))
        assert snr == pytest.approx(it.snr_db, abs=0.01)
    matched = noisy_speech_set(root, "train", SNR_SETS["dmd"], 8, kinds=["street_music", "engine_idling"])
    assert {it.noise_kind for it in matched} <= {"street_music", "engine_idling"}  # a validation set of test kinds
    assert not {it.noise_file for it in matched} & test_files
    dc_heavy = noisy_speech_set(root, "train", SNR_SETS["dmd"], 40, kinds=["street_music"])  # 4 hold a large DC
    assert max(abs(float(it.clean.mean())) for it in dc_heavy) < 1e-5 * max(np.abs(it.clean).max() for it in dc_heavy)
    with pytest.raises(ValueError, match="thunder"):
        noisy_speech_set(root, "train", SNR_SETS["dmd"], 2, kinds=["thunder"])
    from ppl_models.data.audio import list_audio_files
    from ppl_models.data.speakers import speaker_of, split_by_speaker
    from ppl_models.datasets.noisy_speech import PRIOR_CORPORA

    parts = [{speaker_of(f) for f in part}
             for part in split_by_speaker([f for corpus in PRIOR_CORPORA for f in list_audio_files(root / corpus)])]
    new_voices = noisy_speech_set(root, "validation", SNR_SETS["dmd"], 6, seed=2)
    assert len(new_voices) == 6 and {it.speaker for it in new_voices} <= parts[1] - parts[0] - parts[2]
    assert not {it.noise_file for it in new_voices} & test_files


@pytest.mark.parametrize("family", ["spectral subtraction", "iterative Wiener", "noisereduce"])
def test_classical_baselines_return_aligned_estimates(family):
    """The baselines of benchmarks/enhancement.py: pyroomacoustics streams its frames and lags by 256 samples;
    unaligned, SI-SDR would score the delay (-25 dB on a clean input), not the denoising."""
    pytest.importorskip("pyroomacoustics")
    pytest.importorskip("noisereduce")
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[1] / "benchmarks" / "enhancement_baselines.py"
    spec = importlib.util.spec_from_file_location("enhancement_baselines", path)
    baselines = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(baselines)
    clean = speech_like(2.0, seed=3)
    noisy, _ = mix_at_snr(clean, colored_noise(2.0, "white", seed=4), 10.0)
    estimate = baselines.denoise(family, noisy, **baselines.GRIDS[family][0])
    assert estimate.shape == noisy.shape
    assert si_sdr(clean, estimate) > 0.0


def test_each_utterance_of_a_batch_starts_from_its_own_noise_floor(prior):
    """Two real utterances fitted as one batch, one in exercise-bike noise at 0 dB, one in dishes at 15 dB. With
    one floor for the whole batch (before: the 10 % quantile of both), the 0 dB utterance started ~15 dB under
    its noise and gained +0.03 dB after 30 LV U-NA steps; from its own floor, +2.2 dB (the 15 dB one: +1.2 /
    +2.0)."""
    from conftest import shared

    root = shared("pyroomacoustics_samples")
    cleans = [load_audio(root / "speech" / f"cmu_arctic_us_{name}.wav") for name in ("axb_a0004", "aew_a0001")]
    noises = [load_audio(root / "noise" / f"{name}.wav")[160_000:] for name in ("exercise_bike", "doing_the_dishes")]
    noisy = [mix_at_snr(c, n[:len(c)], snr)[0] for c, n, snr in zip(cleans, noises, (0.0, 15.0))]
    batch = noisy_batch(noisy, "cpu")
    noise = build_system(prior, "lv", batch.power, utterance=batch.utterance, mask=batch.mask, shared_floor=False).noise
    floors = noise.offset.exp()
    assert (floors[0] / floors[1]).median() > 10  # the bike at 0 dB sits far above the dishes at 15 dB
    result = enhance(noisy, prior, "lv", iterations=30, tol=-np.inf, shared_floor=False)
    gains = [si_sdr(c, e) - si_sdr(c, n) for c, e, n in zip(cleans, result.signals, noisy)]
    assert min(gains) > 1.0
    shared_noise = build_system(prior, "lv", batch.power, utterance=batch.utterance, mask=batch.mask,
                                shared_floor=True).noise  # one floor for both, no offsets
    assert shared_noise.offset is None
    torch.testing.assert_close(shared_noise.head[-1].bias.exp(), noise_floor(batch.power, mask=batch.mask))


def test_default_una_noise_model_is_no_and_und_takes_the_checkpoints(prior):
    """NO (the noise variance from the past noisy frames) won the whole-utterance validation: `enhance` with no
    noise model runs it; LV gives another result from the same seed."""
    noisy = mix_at_snr(speech_like(1.0, seed=4), colored_noise(1.0, "pink", seed=5), 5.0)[0]
    run = lambda **kw: enhance([noisy], prior, iterations=3, tol=-np.inf, **kw).signals[0]  # noqa: E731
    default = run()
    np.testing.assert_array_equal(default, run(noise_model="no"))
    assert not np.allclose(default, run(noise_model="lv"))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_una_with_the_graphed_encoder_loop_takes_the_plain_steps():
    """On a GPU, U-NA replays the encoder's sampling loop from a CUDA graph: same seed, same losses."""
    from ppl_models.dvae import fast

    power = (torch.rand(4, 100, 513, device="cuda") ** 2 + 1e-4)
    runs = {}
    for graphs in (False, True):
        pyro.clear_param_store()
        torch.manual_seed(0)
        system = build_system(small_prior().cuda(), "no", power)
        fast.clear()
        runs[graphs] = fit(system, power, None, iterations=5, tol=-np.inf, cuda_graphs=graphs)
        assert fast.recorded() == int(graphs)
    assert runs[True] == pytest.approx(runs[False], rel=1e-4)
