"""Where the enhancement headroom goes, on one utterance: the ideal Wiener mask, the speech prior's
reconstruction of the clean speech with the true noise power (the prior's ceiling), and LV U-NA with the noise
variance started at the 10 % noise floor or at the noisy mean power; then LV U-NA on a synthetic speech-like
utterance (the demo's case) after 100, 150 and 200 iterations.

    python benchmarks/enhancement_oracle.py --data ../shared/data [--prior rvae-speech-z64]

``--sets qut dmd`` does the same for the noisy test sets of ``benchmarks/enhancement.py`` (same utterances and
noises), per noise kind: the ideal mask and the prior's ceiling, each also with a stationary noise (the true
noise's mean power per frequency over the utterance: what a time-invariant noise model could know at best);
with ``--noise-models lv no nolv`` also each U-NA fit (defaults of ``enhance``, the set as one batch) and its
two halves, each paired with the truth: the fitted speech variance with the true noise power, the true speech
power with the fitted noise variance.

    python benchmarks/enhancement_oracle.py --data ../shared/data --sets qut dmd --noise-models lv no nolv \
        --device cuda
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pyro
import torch

from ppl_models.data.audio import list_audio_files, load_audio
from ppl_models.datasets.noisy_speech import SNR_SETS, noisy_speech_set
from ppl_models.data.stft import istft, stft
from ppl_models.data.synthetic import colored_noise, mix_at_snr, speech_like
from ppl_models.dvae.train import load_prior
from ppl_models.enhancement.enhance import DEFAULT_ITERATIONS, build_system, enhance, fit, noisy_batch
from ppl_models.infer import resolve_device
from ppl_models.metrics.audio import si_sdr


def main(args) -> None:
    prior = load_prior(args.prior)
    clean = load_audio(list_audio_files(f"{args.data}/speech_librispeech_resemblyzer/test-other")[0])[:48000]
    noisy, noise = mix_at_snr(clean, colored_noise(3.0, "white", seed=1), 5.0)
    peak = np.abs(noisy).max()
    S, B, X = (stft(torch.as_tensor(v / peak)) for v in (clean, noise, noisy))  # (F, T)

    def filtered(mask):
        return istft(mask * X, length=len(clean)).numpy() * peak

    speech_power, noise_power = S.abs().square(), B.abs().square()
    reconstruction = prior.reconstruct(speech_power.T[None])[0].T
    print(f"test-other utterance 0, 3 s, white noise at 5 dB: noisy {si_sdr(clean, noisy):.2f} dB")
    ideal = filtered(speech_power / (speech_power + noise_power))
    print(f"  ideal mask |s|^2 / (|s|^2 + |b|^2): {si_sdr(clean, ideal):.2f} dB")
    print(f"  prior's reconstruction of s + true |b|^2: "
          f"{si_sdr(clean, filtered(reconstruction / (reconstruction + noise_power))):.2f} dB")
    batch = noisy_batch([noisy], "cpu")
    for start in ("noise floor (10 % quantile)", "noisy mean power"):
        pyro.clear_param_store()
        pyro.set_rng_seed(0)
        system = build_system(prior, "lv", batch.power, mask=batch.mask)
        if start == "noisy mean power":
            with torch.no_grad():
                system.noise.head[-1].bias.copy_(torch.log(batch.power[batch.mask].mean(0)))
        fit(system, batch.power, batch.mask, args.iterations, tol=-np.inf)
        mask = batch.join(system.wiener_mask(batch.power), 0)
        print(f"  LV U-NA, {args.iterations} iterations, noise started at the {start}: "
              f"{si_sdr(clean, filtered(mask.T)):.2f} dB")
    clean = speech_like(3.0, seed=3)
    noisy, _ = mix_at_snr(clean, colored_noise(3.0, "white", seed=4), 0.0)
    print(f"speech-like utterance, white noise at 0 dB: noisy {si_sdr(clean, noisy):.2f} dB")
    for iterations in (100, 150, 200):
        result = enhance([noisy], prior, noise_model="lv", iterations=iterations, tol=-np.inf)
        print(f"  LV U-NA, {iterations} iterations: {si_sdr(clean, result.signals[0]):.2f} dB")


def segment_powers(signals, peaks, device) -> torch.Tensor:
    """(N, L, F) powers of ``signals`` cut into the segments of ``noisy_batch``, on the scale of the noisy
    signals (divided by the noisy ``peaks``, not their own)."""
    batch = noisy_batch(signals, device)
    power = batch.power.clone()
    for i, piece in enumerate(batch.pieces):
        power[piece] *= (batch.peaks[i] / peaks[i]) ** 2
    return power


def set_ceilings(args) -> None:
    device = resolve_device(args.device)
    prior = load_prior(args.prior, device)
    for name in args.sets:
        items = noisy_speech_set(args.data, "test", SNR_SETS[name], args.utterances, seed=1)  # as in enhancement.py
        noisy = np.array([si_sdr(it.clean, it.noisy) for it in items])
        rows = {"ideal mask": [], "prior's reconstruction, true noise power": [],
                "true speech power, stationary noise power": [], "prior's reconstruction, stationary noise power": []}
        for it in items:
            peak = np.abs(it.noisy).max()
            S, B, X = (stft(torch.as_tensor(v / peak, dtype=torch.float32)) for v in
                       (it.clean, it.noisy - it.clean, it.noisy))
            speech, noise = S.abs().square(), B.abs().square()
            stationary = noise.mean(1, keepdim=True)  # (F, 1): the noise's mean power per frequency
            with torch.no_grad():
                rebuilt = prior.reconstruct(speech.T[None].to(device))[0].T.cpu()
            for row, (v, b) in zip(rows.values(), ((speech, noise), (rebuilt, noise), (speech, stationary),
                                                   (rebuilt, stationary))):
                row.append(si_sdr(it.clean, istft(v / (v + b) * X, length=len(it.clean)).numpy() * peak))
        batch = noisy_batch([it.noisy for it in items], device)
        speech = segment_powers([it.clean for it in items], batch.peaks, device)
        noise = segment_powers([it.noisy - it.clean for it in items], batch.peaks, device)
        for noise_model in args.noise_models:
            pyro.clear_param_store()
            pyro.set_rng_seed(0)
            system = build_system(prior, noise_model, batch.power, mask=batch.mask)
            fit(system, batch.power, batch.mask, DEFAULT_ITERATIONS["una"])
            v_s, v_b = torch.zeros_like(batch.power), torch.zeros_like(batch.power)
            with torch.no_grad():
                for _ in range(8):  # the Wiener filter's guide samples, averaged per variance
                    z = system.sample_latents(batch.power)
                    v_s += system.gain(batch.power, True) * system.speech_variance(z) / 8
                    v_b += system.noise_variance(z, batch.power) / 8
            masks = {"U-NA": system.wiener_mask(batch.power), "fitted speech, true noise power": v_s / (v_s + noise),
                     "true speech power, fitted noise": speech / (speech + v_b)}
            for label, mask in masks.items():
                rows[f"{noise_model.upper()} {label}"] = [si_sdr(it.clean, batch.filtered(mask, i, len(it.clean)))
                                                          for i, it in enumerate(items)]
        kinds = sorted({it.noise_file for it in items})
        print(f"\n`{name}` ({len(items)} utterances), SI-SDR gain over the noisy input (dB):\n")
        print("| estimate | all | " + " | ".join(Path(k).stem for k in kinds) + " |")
        print("|---" * (len(kinds) + 2) + "|")
        print(f"| noisy input (dB) | {noisy.mean():.2f} | " + " | ".join(
            f"{noisy[[it.noise_file == k for it in items]].mean():.2f}" for k in kinds) + " |")
        for label, row in rows.items():
            gain = np.array(row) - noisy
            print(f"| {label} | {gain.mean():+.2f} | " + " | ".join(
                f"{gain[[it.noise_file == k for it in items]].mean():+.2f}" for k in kinds) + " |", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the real-data folder")
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--prior", default="rvae-speech",
                        help="speech prior, a name or a checkpoint (default: %(default)s)")
    parser.add_argument("--sets", nargs="+", choices=sorted(SNR_SETS),
                        help="the ceilings on these noisy test sets instead of the single utterance")
    parser.add_argument("--utterances", type=int, default=25, help="per set (default: %(default)s)")
    parser.add_argument("--noise-models", nargs="*", default=[], choices=["lv", "no", "nolv"],
                        help="with --sets: also fit U-NA with these noise models and pair each half with the truth")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    set_ceilings(args) if args.sets else main(args)
