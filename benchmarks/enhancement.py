"""Unsupervised speech enhancement table (Lin et al., Interspeech 2023): LV / NO / NOLV noise models x U-NA /
U-ND / U-NDA, the RVAE-VEM (NMF noise) baseline and the noisy input, on two noisy test sets built from real
held-out speech and real noise (``ppl_models.datasets.noisy_speech``): SNR -5/0/5 dB (WSJ0-QUT-like) and
2.5/7.5/12.5/17.5 dB (VoiceBank-DEMAND-like). SI-SDR (also its gain over the noisy input on the stationary
and on the non-stationary test noises), PESQ (wide-band), ESTOI, and the real-time factor (seconds of compute
per second of audio, all the test utterances fitted as one batch).

In the same table: the classical enhancers a user would try first (``enhancement_baselines.py``:
pyroomacoustics' spectral subtraction and iterative Wiener filter, ``noisereduce``), each with its package
defaults and with the best of a small grid on the validation set; and the **oracle** row, the same U-NA fit of
the encoder and gain with the noise variance fixed to the true noise power |b_ft|^2: what is left between it
and the noisy input is the speech prior's; between it and a noise model's row, the noise inference's.

    python benchmarks/enhancement.py --data ../shared/data --device cuda --sweep --json enhancement.json

``--sweep`` first picks, per noise model, the noise-floor quantile of the initialisation and the number of
U-NA iterations on a *validation* set (training speakers and training noises, never the test ones). U-ND
noise models train on noisy speech of the training speakers mixed with the training noises (no clean target
is used). The validation set also picks the baselines' settings. ``--torch-reference`` times the default U-NA fit
(`enhance`'s noise model) written in plain PyTorch, for the Pyro overhead.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from ppl_models.data.audio import SAMPLE_RATE
from ppl_models.datasets.noisy_speech import SNR_SETS, noisy_speech_set
from ppl_models.data.spectrogram_dataset import segments_of
from ppl_models.dvae.train import load_prior
from ppl_models.datasets.noisy_speech import KIND_STATIONARITY
from ppl_models.enhancement.enhance import (DEFAULT_ITERATIONS, DEFAULT_NOISE_MODEL, enhance, fit, noisy_batch,
                                           train_noise)
from ppl_models.enhancement.model import NoisySpeech
from ppl_models.enhancement.noise_models import NoiseVariance
from ppl_models.infer import resolve_device
from ppl_models.metrics.audio import estoi, pesq_score, si_sdr

from enhancement_baselines import GRIDS, denoise, tune  # noqa: E402  (benchmarks/ is the script's folder)
from enhancement_oracle import segment_powers  # noqa: E402

NEURAL = ("lv", "no", "nolv")
MODE_NAMES = {"una": "U-NA", "und": "U-ND", "unda": "U-NDA"}


def _score(pair) -> dict:
    clean, estimate = pair
    try:
        pesq = pesq_score(clean, estimate)
    except ImportError:  # the pesq package is not installed: the column stays empty
        pesq = float("nan")
    return {"si_sdr": si_sdr(clean, estimate), "pesq": pesq, "estoi": estoi(clean, estimate)}


def scores(items, estimates, workers: int) -> dict:
    """Mean metrics of ``estimates`` against the items' clean speech, and the mean SI-SDR gain over the noisy
    input on the stationary (``gain_stat``) and non-stationary (``gain_nonstat``) noise kinds."""
    with ProcessPoolExecutor(workers) as pool:
        rows = list(pool.map(_score, zip([it.clean for it in items], estimates)))
    out = {k: float(np.nanmean([r[k] for r in rows])) for k in rows[0]}
    gains = np.array([r["si_sdr"] - si_sdr(it.clean, it.noisy) for r, it in zip(rows, items)])
    kinds = np.array([KIND_STATIONARITY.get(it.noise_kind, "") for it in items])
    out["gain"] = float(gains.mean())
    for key, kind in (("gain_stat", "stationary"), ("gain_nonstat", "non-stationary")):
        out[key] = float(gains[kinds == kind].mean()) if (kinds == kind).any() else float("nan")
    return out


class TrueNoise(torch.nn.Module):
    """The oracle "noise model": log v_b = log |b_ft|^2, the true noise power of each segment (no parameters)."""

    def __init__(self, power: torch.Tensor):
        super().__init__()
        self.register_buffer("log_power", torch.log(power.clamp_min(1e-10)))

    def forward(self, z, noisy_features):
        return self.log_power


def oracle(items, prior, device, iterations: int = DEFAULT_ITERATIONS["una"]) -> tuple[list[np.ndarray], float]:
    """U-NA of the encoder and the gain with the noise variance fixed to the true noise power: (estimates, RTF)."""
    import pyro

    start = time.perf_counter()
    batch = noisy_batch([it.noisy for it in items], device)
    noise = segment_powers([it.noisy - it.clean for it in items], batch.peaks, device)
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    system = NoisySpeech(prior, TrueNoise(noise)).to(device)
    fit(system, batch.power, batch.mask, iterations)
    wiener = system.wiener_mask(batch.power)
    estimates = [batch.filtered(wiener, i, len(it.noisy)) for i, it in enumerate(items)]
    return estimates, (time.perf_counter() - start) / (sum(len(it.noisy) for it in items) / SAMPLE_RATE)


def run(items, prior, device, batch: int | None = None, **kwargs) -> tuple[list[np.ndarray], float, int]:
    """Enhance the utterances of ``items`` in batches of ``batch`` (default: all as one batch): (estimates,
    real-time factor over them all, the largest iteration count of a batch)."""
    signals = [it.noisy for it in items]
    batch = batch or len(signals)
    results = [enhance(signals[i:i + batch], prior, device=device, **kwargs) for i in range(0, len(signals), batch)]
    seconds = sum(r.seconds for r in results)
    return ([e for r in results for e in r.signals], seconds / (sum(map(len, signals)) / SAMPLE_RATE),
            max(r.iterations for r in results))


def sweep(items, prior, device, workers) -> dict:
    """Best (floor quantile, iterations) per noise model by mean SI-SDR on the validation items."""
    best = {}
    for noise_model in NEURAL + ("nmf",):
        grid = itertools.product((0.1, 0.3, 0.5), (110, 150, 200) if noise_model == "nmf" else (50, 100, 200))
        results = []
        for quantile, iterations in grid:
            estimates, _, _ = run(items, prior, device, noise_model=noise_model, iterations=iterations,
                                  floor_quantile=quantile, tol=-np.inf)
            sdr = float(np.mean([si_sdr(it.clean, e) for it, e in zip(items, estimates)]))
            results.append((sdr, quantile, iterations))
            print(f"  sweep {noise_model}: floor quantile {quantile}, {iterations} iterations -> SI-SDR {sdr:.2f}",
                  flush=True)
        sdr, quantile, iterations = max(results)
        best[noise_model] = {"floor_quantile": quantile, "iterations": iterations, "val_si_sdr": sdr}
    return best


def torch_una(prior, power, mask, iterations, noise_model, lr=1e-3, quantile=0.1) -> float:
    """Seconds for ``iterations`` steps of the U-NA fit written in plain PyTorch (same networks, same ELBO)."""
    B, T, _ = power.shape
    prior.train()  # cuDNN LSTM gradients need training mode (the prior has no dropout)
    noise = NoiseVariance(noise_model, prior.x_dim, prior.z_dim).adapt_to(power, quantile, mask).to(power.device)
    encoder = copy.deepcopy(prior).requires_grad_(True)
    log_gain = torch.zeros(B, T, 1, device=power.device, requires_grad=True)
    params = [p for p in [*noise.parameters(), *encoder.parameters(), log_gain] if p.requires_grad]
    optim = torch.optim.Adam(params, lr=lr)
    prior_z = prior.latent(None, B, T, power.device)
    start = time.perf_counter()
    for _ in range(iterations):
        q = encoder.latent(encoder.guide_latent(power, encoder._context(power)), B, T, power.device)
        z = q.rsample()
        variance = log_gain.exp() * prior.likelihood.mean(prior.decoder_params(z, None, None)) \
            + noise(z, prior.features(power)).exp()
        log_lik = (torch.distributions.Exponential(1 / variance).log_prob(power) * mask[..., None]).sum()
        loss = -(log_lik + prior_z.log_prob(z).sum() - q.log_prob(z).sum())
        optim.zero_grad()
        loss.backward()
        optim.step()
    if power.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main(args) -> None:
    device = resolve_device(args.device)
    torch.manual_seed(0)
    prior = load_prior(args.prior, device)
    all_snrs = SNR_SETS["qut"] + SNR_SETS["dmd"]
    tests = {name: noisy_speech_set(args.data, "test", SNR_SETS[name], args.utterances, seed=1) for name in args.sets}
    settings = {nm: {"floor_quantile": 0.1, "iterations": None} for nm in NEURAL + ("nmf",)}
    report = {"device": str(device), "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"),
              "utterances": {k: len(v) for k, v in tests.items()}}
    if args.sweep:
        val = noisy_speech_set(args.data, "train", all_snrs, None, seed=2)[-args.val_utterances:]
        print(f"sweep on {len(val)} validation utterances (training speakers and noises)", flush=True)
        settings = sweep(val, prior, device, args.workers)
        report["sweep"] = settings
    elif args.settings:
        settings = json.loads(Path(args.settings).read_text())["sweep"]
    if args.sweep_only:
        Path(args.json).write_text(json.dumps(report, indent=2))
        return
    checkpoints = {}
    if not args.skip_und and not args.no_models and {"und", "unda"} & set(args.modes):
        corpus = [it.noisy for seed in range(3)
                  for it in noisy_speech_set(args.data, "train", all_snrs, seed=10 + seed)]
        n_val = len(corpus) // 10
        train, val = segments_of(corpus[n_val:], 100, 50), segments_of(corpus[:n_val], 100)
        folder = Path(tempfile.mkdtemp())
        for nm in [nm for nm in NEURAL if nm in args.noise_models]:
            start = time.perf_counter()
            _, history = train_noise(prior, nm, train, val, folder / f"{nm}.pt", epochs=args.und_epochs,
                                     batch_size=64, device=device, progress=False,
                                     floor_quantile=settings[nm]["floor_quantile"])
            checkpoints[nm] = folder / f"{nm}.pt"
            report.setdefault("und_training", {})[nm] = {"segments": int(train.shape[0]), "epochs": history.epochs,
                                                         "best_epoch": history.best_epoch,
                                                         "seconds": time.perf_counter() - start}
            print(f"U-ND {nm}: {train.shape[0]} noisy segments, {history.epochs} epochs "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
    baselines = {}
    if not args.no_baselines:
        val = noisy_speech_set(args.data, "train", all_snrs, None, seed=2)[-args.val_utterances:]
        for family in GRIDS:
            baselines[family], val_sdr = tune(family, val, si_sdr)
            print(f"{family}: validation picks {baselines[family]} (SI-SDR {val_sdr:.2f} dB)", flush=True)
        report["baselines"] = baselines
    rows = []

    def add(set_name, method, items, estimates, **extra):
        rows.append({"set": set_name, "method": method, **extra, **scores(items, estimates, args.workers)})
        print(rows[-1], flush=True)
        if args.json:  # after every row: an interrupted run keeps what it measured
            Path(args.json).write_text(json.dumps({**report, "rows": rows}, indent=2))

    for set_name, items in tests.items():
        add(set_name, "noisy input", items, [it.noisy for it in items])
        for family, tuned in baselines.items():
            for label, setting in (("defaults", GRIDS[family][0]), ("validation-tuned", tuned)):
                start = time.perf_counter()
                estimates = [denoise(family, it.noisy, **setting) for it in items]
                rtf = (time.perf_counter() - start) / (sum(len(it.noisy) for it in items) / SAMPLE_RATE)
                add(set_name, f"{family} ({label})", items, estimates, rtf=rtf)
        if not args.no_oracle and not args.no_models:
            iterations = args.iterations or DEFAULT_ITERATIONS["una"]
            estimates, rtf = oracle(items, prior, device, iterations)
            add(set_name, "oracle: true noise power, U-NA encoder", items, estimates, iterations=iterations, rtf=rtf)
        configs = [(nm, "una") for nm in NEURAL] + [("nmf", "una")]
        if checkpoints:
            configs += [(nm, mode) for nm in NEURAL for mode in ("und", "unda")]
        configs = [(nm, mode) for nm, mode in configs if nm in args.noise_models and mode in args.modes
                   and not args.no_models]
        for nm, mode in configs:
            kwargs = {"noise_model": nm, "mode": mode, "floor_quantile": settings[nm]["floor_quantile"],
                      "noise_checkpoint": checkpoints.get(nm)}
            if mode == "una":
                fixed = settings[nm]["iterations"] is not None  # a swept count runs in full, else early stop
                kwargs.update(iterations=settings[nm]["iterations"], tol=-np.inf if fixed else 1e-3)
                if args.iterations:  # a quick look: this many steps for every U-NA row
                    kwargs.update(iterations=args.iterations, tol=-np.inf)
            estimates, rtf, iterations = run(items, prior, device, args.batch, **kwargs)
            label = "RVAE-VEM (NMF)" if nm == "nmf" else f"{nm.upper()} {MODE_NAMES[mode]}"
            label += f", batches of {args.batch}" if args.batch else ""
            add(set_name, label, items, estimates, iterations=iterations, rtf=rtf)
        if args.torch_reference:
            batch = noisy_batch([it.noisy for it in items], device)
            iterations = 50
            pyro_seconds = run(items, prior, device, noise_model=DEFAULT_NOISE_MODEL, iterations=iterations,
                               tol=-np.inf, cuda_graphs=False)[1]  # like for like: the twin is not graphed
            pyro_seconds *= sum(len(it.noisy) for it in items) / SAMPLE_RATE
            torch_seconds = torch_una(prior, batch.power, batch.mask, iterations, DEFAULT_NOISE_MODEL)
            report.setdefault("overhead", {})[set_name] = {"noise_model": DEFAULT_NOISE_MODEL,
                                                           "iterations": iterations, "pyro_s": pyro_seconds,
                                                           "torch_s": torch_seconds,
                                                           "ratio": pyro_seconds / torch_seconds}
            print(report["overhead"][set_name], flush=True)
    report["rows"] = rows
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    print("\n| set | method | SI-SDR | gain | gain, stationary | gain, non-stationary | PESQ wb | ESTOI | iterations "
          "| RTF |\n|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        rtf = f"{r['rtf']:.3f}" if "rtf" in r else ""
        print(f"| {r['set']} | {r['method']} | {r['si_sdr']:.2f} | {r['gain']:+.2f} | {r['gain_stat']:+.2f} | "
              f"{r['gain_nonstat']:+.2f} | {r['pesq']:.2f} | {r['estoi']:.3f} | {r.get('iterations', '')} | {rtf} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the real-data folder")
    parser.add_argument("--prior", default="rvae-speech")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sets", nargs="+", default=["qut", "dmd"], choices=list(SNR_SETS))
    parser.add_argument("--utterances", type=int, default=None, help="test utterances per set (default: all 50)")
    parser.add_argument("--sweep", action="store_true", help="pick settings on the validation set first")
    parser.add_argument("--val-utterances", type=int, default=12)
    parser.add_argument("--sweep-only", action="store_true", help="stop after the sweep (needs --json)")
    parser.add_argument("--settings", help="a --json file of an earlier --sweep: use its settings")
    parser.add_argument("--skip-und", action="store_true", help="no U-ND / U-NDA (no noise-model training)")
    parser.add_argument("--noise-models", nargs="+", default=list(NEURAL) + ["nmf"], choices=list(NEURAL) + ["nmf"],
                        help="rows to measure (default: all)")
    parser.add_argument("--modes", nargs="+", default=list(MODE_NAMES), choices=list(MODE_NAMES),
                        help="training configurations to measure (default: all)")
    parser.add_argument("--batch", type=int, help="utterances fitted together (default: all; 1 = the paper's "
                        "per-utterance fit)")
    parser.add_argument("--iterations", type=int, help="U-NA steps of every fitted row (default: each one's own)")
    parser.add_argument("--und-epochs", type=int, default=60)
    parser.add_argument("--no-baselines", action="store_true", help="no classical baseline rows")
    parser.add_argument("--no-oracle", action="store_true", help="no oracle (true noise power) row")
    parser.add_argument("--no-models", action="store_true", help="only the noisy input and the baselines")
    parser.add_argument("--torch-reference", action="store_true",
                        help="time the default U-NA (enhance's noise model) in plain PyTorch too")
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1),
                        help="processes for PESQ/ESTOI scoring")
    parser.add_argument("--json", help="write every figure to this file")
    main(parser.parse_args())
