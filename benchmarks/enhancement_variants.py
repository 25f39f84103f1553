"""U-NA settings side by side on the *validation* set (training speakers and training noises), the SI-SDR gain
over the noisy input read after 50, 100, 200 and 300 steps of one fit: how the enhancement settings of
``benchmarks/enhancement.py`` were chosen (issue 28). Utterances are cut to their first 4 s; the ``dmd``
(2.5-17.5 dB) and ``qut`` (-5..5 dB) SNRs are fitted together as one batch and reported apart.

    python benchmarks/enhancement_variants.py --data ../shared/data --variants shared=1 "" lr=3e-3 nogain=1 lr=1e-2

``--whole`` validates the way the test and ``enhance DIR`` run: whole utterances, each SNR set its own batch
(``--sets``), through :func:`~ppl_models.enhancement.enhance.enhance` with its defaults (300 steps, early stop),
the SI-SDR gain read once at the end; a variant sets ``enhance``'s arguments: ``shared=1`` (``shared_floor``),
``nm=lv|no|nolv|nmf`` (noise model), ``it=N`` (iterations), ``tol=X`` (early stop; 0: none), ``q=X`` (floor
quantile), ``lr=X``, ``samples=N`` (Wiener average), ``seg=N`` (segment frames; 0: whole
utterances), ``olr=X`` (the noise levels' own step), ``per=1`` (one fit per utterance, as the reference code does).

    python benchmarks/enhancement_variants.py --data ../shared/data --whole --utterances 12 --variants shared=1 ""

A variant is ``+``-joined ``key=value`` (empty: the defaults of ``enhance``): ``shared=1`` one noise floor for
the whole batch (before per-utterance offsets), ``lr=X`` the Adam step, ``nogain=1`` the gain g fixed to 1,
``nm=nmf`` RVAE-VEM (``warm=N``: encoder-only steps before the M-step), ``q=X`` the floor quantile.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pyro
import torch
from pyro.infer import SVI, Trace_ELBO
from pyro.optim import Adam

from ppl_models.datasets.noisy_speech import SNR_SETS, noisy_speech_set
from ppl_models.dvae.train import load_prior
from ppl_models.enhancement.enhance import build_system, enhance, noisy_batch
from ppl_models.metrics.audio import si_sdr

CHECK = (50, 100, 200, 300)


def validation(data: str, count: int, seconds: float = 4.0):
    items = []
    for snrs, seed in ((SNR_SETS["dmd"], 2), (SNR_SETS["qut"], 3)):
        part = noisy_speech_set(data, "train", snrs, None, seed=seed)[-count:]
        for it in part:
            it.clean, it.noisy = it.clean[:int(seconds * 16000)], it.noisy[:int(seconds * 16000)]
        items += part
    return items


WHOLE_KEYS = {"shared": ("shared_floor", lambda v: v == "1"), "it": ("iterations", int), "tol": ("tol", float),
              "nm": ("noise_model", str),
              "q": ("floor_quantile", float), "lr": ("lr", float), "olr": ("offset_lr", float),
              "per": ("per_utterance", lambda v: v == "1"), "samples": ("num_samples", int),
              "seg": ("segment_frames", lambda v: None if v in ("0", "none") else int(v))}


def whole(data: str, set_name: str, count: int, prior, variant: str, kinds: list[str] | None = None,
          split: str = "train") -> dict:
    """One SNR set's validation utterances (``split`` train: the last ``count``; validation: the first ``count`` of
    the new voices; ``kinds``: only these noise kinds), uncut, enhanced as one batch by ``enhance`` with the
    variant's settings (``WHOLE_KEYS``: shared, nm, it, tol, q, lr, olr, samples, seg=0 for whole utterances;
    per=1 fits each utterance alone)."""
    seed = {"dmd": 2, "qut": 3}[set_name]
    items = (noisy_speech_set(data, "train", SNR_SETS[set_name], None, seed=seed, kinds=kinds)[-count:]
             if split == "train" else noisy_speech_set(data, split, SNR_SETS[set_name], count, seed=seed, kinds=kinds))
    settings = {}
    for key, value in (p.partition("=")[::2] for p in variant.split("+") if p):
        if key not in WHOLE_KEYS:
            raise SystemExit(f"--whole: unknown variant key {key!r} (one of {', '.join(WHOLE_KEYS)})")
        name, parse = WHOLE_KEYS[key]
        settings[name] = parse(value)
    if settings.pop("per_utterance", False):  # the references' protocol: one fit per utterance
        results = [enhance([it.noisy], prior, **settings) for it in items]
        signals, steps = [r.signals[0] for r in results], round(float(np.mean([r.iterations for r in results])))
    else:
        result = enhance([it.noisy for it in items], prior, **settings)
        signals, steps = result.signals, result.iterations
    gains = [si_sdr(it.clean, e) - si_sdr(it.clean, it.noisy) for it, e in zip(items, signals)]
    return {"set": set_name, "gain": round(float(np.mean(gains)), 2), "gains": [round(float(g), 2) for g in gains],
            "noisy si-sdr": round(float(np.mean([si_sdr(it.clean, it.noisy) for it in items])), 2),
            "steps": steps, "audio s": round(sum(len(it.noisy) for it in items) / 16000)}


def run(items, prior, variant: str) -> dict:
    kw = dict(p.partition("=")[::2] for p in variant.split("+") if p)
    nm, lr, quantile = kw.get("nm", "lv"), float(kw.get("lr", 1e-3)), float(kw.get("q", 0.1))
    batch = noisy_batch([it.noisy for it in items], "cpu")
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    utterance = None if kw.get("shared") and nm != "nmf" else batch.utterance
    system = build_system(prior, nm, batch.power, 0, utterance, quantile, batch.mask)
    if kw.get("nogain"):
        system.gain = lambda x, learn_gain: x.new_ones(())
    svi = SVI(system.model, system.guide, Adam({"lr": lr}), loss=Trace_ELBO())
    half, out = len(items) // 2, {}
    for i in range(max(CHECK)):
        svi.step(batch.power, batch.mask)
        if system.is_nmf and i >= int(kw.get("warm", 100)):
            with torch.no_grad():
                speech = torch.stack([system.speech_variance(system.sample_latents(batch.power)) for _ in range(4)])
            system.noise.update(batch.power, speech, batch.mask)
        if i + 1 in CHECK:
            w = system.wiener_mask(batch.power, 8, learn_gain=True)
            g = [si_sdr(it.clean, batch.filtered(w, k, len(it.noisy))) - si_sdr(it.clean, it.noisy)
                 for k, it in enumerate(items)]
            out[i + 1] = (round(float(np.mean(g[:half])), 2), round(float(np.mean(g[half:])), 2))
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--prior", default="rvae-speech")
    parser.add_argument("--utterances", type=int, default=6, help="per SNR set (default: 6)")
    parser.add_argument("--variants", nargs="+", default=[""])
    parser.add_argument("--whole", action="store_true", help="whole utterances, one batch per SNR set, enhance()")
    parser.add_argument("--sets", nargs="+", default=["dmd", "qut"], choices=sorted(SNR_SETS), help="with --whole")
    parser.add_argument("--kinds", type=lambda s: s.split(","), default=None,
                        help="with --whole: only these training noise kinds, comma-separated (e.g. the test's kinds, "
                             "engine_idling,air_conditioner,street_music,children_playing: other recordings)")
    parser.add_argument("--split", default="train", choices=["train", "validation"],
                        help="with --whole: train = the last training-split utterances (speakers the shipped priors "
                             "trained on); validation = the priors' validation speakers, new to them as the test's are")
    args = parser.parse_args()
    if args.whole:
        prior = load_prior(args.prior)
        for set_name in args.sets:
            for v in args.variants:
                start = time.time()
                out = whole(args.data, set_name, args.utterances, prior, v, args.kinds, args.split)
                print(json.dumps({"prior": args.prior, "variant": v or "defaults", **out,
                                  "seconds": round(time.time() - start)}), flush=True)
        raise SystemExit(0)
    items, prior = validation(args.data, args.utterances), load_prior(args.prior)
    for v in args.variants:
        start = time.time()
        gains = run(items, prior, v)
        print(json.dumps({"prior": args.prior, "variant": v or "defaults", "dmd, qut gain by step": gains,
                          "seconds": round(time.time() - start)}), flush=True)
