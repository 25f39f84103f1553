"""Where the enhancement headroom goes, on one utterance: the ideal Wiener mask, the speech prior's
reconstruction of the clean speech with the true noise power (the prior's ceiling), and LV U-NA with the noise
variance started at the 10 % noise floor or at the noisy mean power; then LV U-NA on a synthetic speech-like
utterance (the demo's case) after 100, 150 and 200 iterations.

    python benchmarks/enhancement_oracle.py --data ../shared/data [--prior rvae-speech-z64]
"""

from __future__ import annotations

import argparse

import numpy as np
import pyro
import torch

from ppl_models.data.audio import list_audio_files, load_audio
from ppl_models.data.stft import istft, stft
from ppl_models.data.synthetic import colored_noise, mix_at_snr, speech_like
from ppl_models.dvae.train import load_prior
from ppl_models.enhancement.enhance import build_system, enhance, fit, noisy_batch
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
        system = build_system(prior, "lv", batch.power)
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


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the real-data folder")
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--prior", default="rvae-speech",
                        help="speech prior, a name or a checkpoint (default: %(default)s)")
    main(parser.parse_args())
