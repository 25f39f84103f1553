"""How long to fit U-NA: SI-SDR gain over the noisy input after K SVI steps, for several learning rates.

One Adam run per (set, learning rate) on all the set's utterances as one batch (as ``enhance`` does), scored
at each checkpoint with the Wiener filter of that moment. ``val`` is the validation set of
``benchmarks/enhancement.py --sweep`` (training speakers and noises), ``qut`` and ``dmd`` its test sets.

    python benchmarks/enhancement_iterations.py --data ../shared/data --device cuda --sets val dmd qut \\
        --lrs 1e-3 3e-3 1e-2 --checkpoints 150 300 600
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pyro
import torch
from pyro.infer import SVI, Trace_ELBO
from pyro.optim import Adam

from ppl_models.datasets.noisy_speech import SNR_SETS, noisy_speech_set
from ppl_models.dvae.train import load_prior
from ppl_models.enhancement.enhance import FLOOR_QUANTILE, build_system, noisy_batch
from ppl_models.infer import resolve_device
from ppl_models.metrics.audio import si_sdr


def utterances(data: str, set_name: str, count: int | None):
    if set_name == "val":  # the sweep's validation items
        return noisy_speech_set(data, "train", SNR_SETS["qut"] + SNR_SETS["dmd"], None, seed=2)[-12:]
    return noisy_speech_set(data, "test", SNR_SETS[set_name], count, seed=1)


def gains(items, prior, noise_model: str, lr: float, checkpoints: list[int], device) -> list[float]:
    """Mean SI-SDR gain (dB) over ``items`` after each number of steps in ``checkpoints``."""
    signals = [it.noisy for it in items]
    noisy = np.mean([si_sdr(it.clean, it.noisy) for it in items])
    batch = noisy_batch(signals, device)
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    system = build_system(prior, noise_model, batch.power, 0, batch.utterance, FLOOR_QUANTILE, batch.mask)
    svi = SVI(system.model, system.guide, Adam({"lr": lr}), loss=Trace_ELBO())
    out = []
    for step in range(1, max(checkpoints) + 1):
        svi.step(batch.power, batch.mask)
        if step in checkpoints:
            with torch.no_grad():
                wiener = system.wiener_mask(batch.power)
                estimates = [batch.filtered(wiener, k, len(s)) for k, s in enumerate(signals)]
            out.append(float(np.mean([si_sdr(it.clean, e) for it, e in zip(items, estimates)]) - noisy))
    return out


def main(args) -> None:
    device = resolve_device(args.device)
    prior = load_prior(args.prior, device)
    checkpoints = sorted(args.checkpoints)
    print("| set | noise model | lr | " + " | ".join(f"gain after {k}" for k in checkpoints) + " | seconds |")
    print("|---" * (4 + len(checkpoints)) + "|")
    for set_name in args.sets:
        items = utterances(args.data, set_name, args.utterances)
        for lr in args.lrs:
            start = time.perf_counter()
            row = gains(items, prior, args.noise_model, lr, checkpoints, device)
            print(f"| {set_name} | {args.noise_model} | {lr:g} | " + " | ".join(f"{g:+.2f}" for g in row) +
                  f" | {time.perf_counter() - start:.0f} |", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the real-data folder")
    parser.add_argument("--prior", default="rvae-speech", help="speech prior, a name or a checkpoint")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sets", nargs="+", default=["val", "dmd", "qut"], choices=["val", *SNR_SETS])
    parser.add_argument("--utterances", type=int, default=25, help="test utterances per set")
    parser.add_argument("--noise-model", default="lv", choices=["lv", "no", "nolv"])
    parser.add_argument("--lrs", nargs="+", type=float, default=[1e-3, 3e-3, 1e-2])
    parser.add_argument("--checkpoints", nargs="+", type=int, default=[150, 300, 600])
    main(parser.parse_args())
