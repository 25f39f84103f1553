"""MixDVAE for source separation: exact enumeration over bin assignments and the closed-form VEM steps."""

import itertools
import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine
from pyro.infer import TraceEnum_ELBO

from ppl_models.dvae import build_dvae
from ppl_models.mixdvae.separation_model import SpectralMixDVAE
from ppl_models.mixdvae.spectral_vem import abs2, e_s_step, e_w_step


def tiny_problem(B=1, T=2, F=3, seed=0):
    torch.manual_seed(seed)
    priors = [build_dvae("rvae", "speech", x_dim=F, z_dim=2, hidden=8, rnn_dim=8) for _ in range(2)]
    mix = SpectralMixDVAE(priors)
    x = torch.randn(B, T, F, 2) * torch.logspace(-2, 0, F)[:, None]  # bins of different levels
    mix.start(x)
    return mix, x


def point_guide(B, values):
    """q(s, z) a point mass at ``values``: the ELBO is log p(x, s, z) with w summed out."""
    def guide(x):
        with pyro.plate("prior_batch", B, dim=-1):
            for name, value in values.items():
                pyro.sample(name, dist.Delta(value, event_dim=value.dim() - 1))
    return guide


def test_enumerated_elbo_equals_the_brute_force_sum_over_bin_assignments():
    """With per-bin v_x = 0.03 |x|^2 and the uniform bin prior: log sum_w p(x, s, z, w) over the 2^6
    assignments, each term log p(w) + sum_ft log CN(x_ft; s_ft,w_ft, v_x,ft) + the sources' DVAE terms."""
    mix, x = tiny_problem()
    B, T, F, _ = x.shape
    s = [x * (1 + 0.2 * torch.randn(B, T, F, 2)) for _ in range(2)]  # near x: both owners matter in every bin
    z = [torch.randn(B, T, 2) for _ in range(2)]
    point = {**{f"s_{n}": s[n] for n in range(2)}, **{f"source{n}_z": z[n] for n in range(2)}}
    elbo = -TraceEnum_ELBO(max_plate_nesting=3).loss(mix.model, point_guide(B, point), x)
    noise_var = 0.03 * abs2(x)
    joints = []
    for w in itertools.product(range(2), repeat=T * F):  # 2^6 assignments of the bins
        values = {**point, "w": torch.tensor(w).reshape(B, T, F)}
        trace = poutine.trace(poutine.condition(mix.model, data=values)).get_trace(x)
        joints.append(trace.log_prob_sum())
        owner = torch.where(values["w"][..., None] == 0, s[0], s[1])
        by_hand = (-torch.log(torch.pi * noise_var) - abs2(x - owner) / noise_var).sum() - T * F * torch.log(
            torch.tensor(2.0))
        dvae = sum(site["log_prob_sum"] for name, site in trace.nodes.items()
                   if site["type"] == "sample" and name not in ("w", "x"))
        torch.testing.assert_close(trace.log_prob_sum() - dvae, by_hand, rtol=1e-5, atol=1e-4)
    assert elbo == pytest.approx(float(torch.logsumexp(torch.stack(joints), 0)), rel=1e-5, abs=1e-4)


def test_e_s_step_is_the_complex_gaussian_product():
    """CN(0, v) times CN(x; s, v_x)^eta, normalised on a grid of one real component, against (m, u)."""
    v, noise, eta, x = torch.tensor(2.0), torch.tensor(0.5), torch.tensor(0.7), torch.tensor([1.3, -0.4])
    m, u = e_s_step(v.reshape(1, 1, 1, 1), x.reshape(1, 1, 1, 2), noise.reshape(1, 1, 1), eta.reshape(1, 1, 1, 1))
    grid = torch.linspace(-8, 8, 200001, dtype=torch.float64)
    for c in range(2):  # each real component: N(0, v/2) N(x_c; s, v_x/2)^eta
        log_density = -grid ** 2 / v - eta * (x[c] - grid) ** 2 / noise
        p = torch.softmax(log_density, 0)
        mean = (p * grid).sum()
        assert float(mean) == pytest.approx(float(m[0, 0, 0, 0, c]), abs=1e-6)
        assert float((p * (grid - mean) ** 2).sum()) == pytest.approx(float(u) / 2, rel=1e-4)


def test_e_w_step_is_the_models_enumerated_posterior_of_the_bin_owner():
    """For q(s) a point mass (u = 0), E-W is the posterior of w that TraceEnum_ELBO computes from the model."""
    mix, x = tiny_problem(B=2)
    B, T, F, _ = x.shape
    m = x[..., None, :] * (1 + 0.2 * torch.randn(B, T, F, 2, 2))
    point = {**{f"s_{n}": m[..., n, :] for n in range(2)}, **{f"source{n}_z": torch.randn(B, T, 2) for n in range(2)}}
    marginal = TraceEnum_ELBO(max_plate_nesting=3).compute_marginals(mix.model, point_guide(B, point), x)["w"]
    resp = e_w_step(x, m, torch.zeros(B, T, F, 2), mix.noise_var(x))
    probs = torch.stack([marginal.log_prob(torch.full((B, T, F), n)) for n in range(2)], -1).exp()
    torch.testing.assert_close(resp, probs, rtol=1e-5, atol=1e-6)


def test_separate_command_writes_sources_that_partition_the_mixture(tmp_path, capsys):
    """Real held-out speech plus the held-out half of the guitar, through the shipped priors: one wav per
    named source, of the mixture's length, and soft masks that share the mixture out: the estimates add up
    to it within 10 dB (not exactly: the posterior mean shrinks bins that a source's prior deems quiet)."""
    import numpy as np

    from conftest import shared
    from ppl_models.cli import main
    from ppl_models.data.audio import list_audio_files, load_audio, write_audio
    from ppl_models.metrics.audio import si_sdr

    speech = load_audio(list_audio_files(shared("speech_librispeech_resemblyzer", "test-other"))[0])[:16000]
    guitar = load_audio(shared("pyroomacoustics_samples", "music", "guitar_16k.wav"))[-16000:]
    mixture = speech / np.abs(speech).max() + guitar / np.abs(guitar).max()
    write_audio(tmp_path / "mix.wav", mixture / np.abs(mixture).max())
    assert main(["separate", str(tmp_path / "mix.wav"), "--priors", "voice=rvae-speech,guitar=rvae-guitar",
                 "--out-dir", str(tmp_path / "out"), "--iterations", "5", "--no-progress"]) == 0
    assert "voice.wav, guitar.wav" in capsys.readouterr().out
    voice, guitar_est = (load_audio(tmp_path / "out" / f"{name}.wav") for name in ("voice", "guitar"))
    assert len(voice) == len(guitar_est) == 16000 and (tmp_path / "out" / "separation.png").is_file()
    assert si_sdr(load_audio(tmp_path / "mix.wav"), voice + guitar_est) > 10


def test_separate_command_rejects_malformed_priors(tmp_path, capsys):
    from ppl_models.cli import main

    assert main(["separate", str(tmp_path / "mix.wav"), "--priors", "speech=rvae-speech", "--out-dir",
                 str(tmp_path)]) == 2
    assert "--priors" in capsys.readouterr().err


@torch.no_grad()
def paper_vem(priors: list, x: torch.Tensor, iterations: int, noise_ratio: float = 0.03) -> torch.Tensor:
    """The paper's VEM in plain complex tensors (what ``separate`` ran before it went through the Pyro guide),
    on mixture segments x (B, T, F) complex; returns the posterior means m (N, B, T, F)."""
    power = x.abs().square()
    noise_var = (noise_ratio * power).clamp_min(1e-12)
    P = torch.stack([prior.reconstruct(power) for prior in priors])  # (N, B, T, F)
    eta = torch.full_like(P, 1.0 / len(priors))
    for _ in range(iterations):
        v = torch.stack([prior.likelihood.mean(prior.decoder_params(prior.encode(p), p, prior._context(p)))
                         for prior, p in zip(priors, P)]).clamp_min(1e-12)
        u = 1.0 / (eta / noise_var + 1.0 / v)  # E-S
        m = (u * eta / noise_var) * x
        eta = torch.softmax(-((x - m).abs().square() + u) / noise_var, dim=0)  # E-W
        P = m.abs().square() + u
    return m


class _Band(torch.nn.Module):
    """A stand-in spectrogram prior: v_tf = shape_f x the frame's largest power in the prior's own band;
    its latent z (B, T, 1) is N(0, 1) under both p and q and does not reach the decoder."""

    likelihood = type("L", (), {"kind": "power", "mean": staticmethod(lambda v: v)})()

    def __init__(self, shape):
        super().__init__()
        self.shape = shape

    def reconstruct(self, power):
        own = self.shape == 1
        return self.shape * power[..., own].amax(-1, keepdim=True)

    def encode(self, power, ctx=None):
        return power

    def _context(self, power):
        return None

    def decoder_params(self, z, power, ctx):
        return self.reconstruct(power)

    def encoder_sites(self, prefix, power):
        return pyro.sample(f"{prefix}_z", dist.Normal(power.new_zeros(power.shape[:2] + (1,)), 1.0).to_event(2))

    def prior_sites(self, prefix, power):
        self.encoder_sites(prefix, power)
        v = self.reconstruct(power).clamp_min(1e-12)
        pyro.factor(f"{prefix}_x", (-v.log() - power / v).sum((-1, -2)))


def test_separate_through_the_pyro_guide_equals_the_plain_vem_and_separates_two_bands(monkeypatch):
    """A 300 Hz and a 4 kHz tone, 125 frames (three 50-frame segments, the last overlapping), with one
    prior per band: each estimate is its tone, far above the mixture's own SI-SDR (about 0 dB), and the
    estimates equal those of the plain-tensor VEM to float tolerance."""
    import numpy as np

    from ppl_models.metrics.audio import si_sdr
    from ppl_models.mixdvae import separation
    from ppl_models.mixdvae.separation import segment_starts, separate

    assert segment_starts(125, 50) == [0, 50, 75] and segment_starts(100, 50) == [0, 50]
    assert segment_starts(30, 50) == [0]
    t = np.arange(2 * 16000) / 16000
    low, high = np.sin(2 * np.pi * 300 * t), 0.8 * np.sin(2 * np.pi * 4000 * t)
    f = torch.arange(513, dtype=torch.float32)
    priors = [_Band(torch.where(f < 40, 1.0, 1e-4)), _Band(torch.where(f >= 40, 1.0, 1e-4))]
    result = separate(low + high, priors, iterations=5)
    assert result.sources.shape == (2, len(t)) and np.isfinite(result.elbo)
    assert si_sdr(low, low + high) < 3
    assert si_sdr(low, result.sources[0]) > 20 and si_sdr(high, result.sources[1]) > 20
    mean = separate(low + high, priors, iterations=5, output="mean")
    monkeypatch.setattr(separation, "run_vem", lambda mix, x, iterations, progress: (
        paper_vem(list(mix.priors), torch.view_as_complex(x), iterations), 0.0))
    for pyro_path, output in ((result, "share"), (mean, "mean")):
        plain = separate(low + high, priors, iterations=5, output=output)
        np.testing.assert_allclose(pyro_path.sources, plain.sources, rtol=1e-4, atol=1e-5)


def test_vem_guide_equals_the_plain_vem_with_dvae_priors():
    """The same equality with two small random RVAEs (encoder mean path, decoder) on random mixtures."""
    from ppl_models.mixdvae.separation import run_vem

    mix, x = tiny_problem(B=2, T=6, F=5)
    m, elbo = run_vem(mix, x, iterations=4)
    torch.testing.assert_close(m, paper_vem(list(mix.priors), torch.view_as_complex(x), 4), rtol=1e-4, atol=1e-6)
    assert math.isfinite(elbo)


def test_default_music_prior_models_held_out_flute_better_than_the_guitar_prior():
    """The default pair of ``separate`` is shipped, and its music prior (trained on Philharmonia phrases split by
    recording) fits a held-out flute recording far better (Itakura-Saito) than rvae-guitar does."""
    import sys
    from pathlib import Path

    from conftest import shared
    from ppl_models.cli import build_parser
    from ppl_models.cli.separation import parse_named_priors
    from ppl_models.data.audio import load_audio
    from ppl_models.data.stft import power_spectrogram
    from ppl_models.dvae.likelihoods import itakura_saito
    from ppl_models.dvae.train import load_prior

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from separation import music_split

    default = build_parser().parse_args(["separate", "mix.wav", "--out-dir", "out"]).priors
    named = parse_named_priors(default)
    assert named == {"speech": "rvae-speech", "music": "rvae-music"}
    flute = load_audio(music_split(shared("music_philharmonia"), "flute", "test")[0])[:16000 * 3]
    power = power_spectrogram(flute / abs(flute).max()).T[None].clamp_min(1e-10)  # (1, T, F)
    scores = {}
    for name in ("rvae-music", "rvae-guitar"):
        with torch.no_grad():
            v = load_prior(name).eval().reconstruct(power).clamp_min(1e-10)
        scores[name] = float(itakura_saito(power, v).mean())
    assert scores["rvae-music"] < 0.5 * scores["rvae-guitar"], scores
