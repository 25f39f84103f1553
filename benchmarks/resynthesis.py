"""Analysis-resynthesis quality of speech priors on unseen utterances (the DVAE review's table).

Each utterance's power spectrogram goes through a prior's encoder and decoder, is resynthesised with the
input phase (``ppl_models.dvae.resynthesis``) and scored against the input: RMSE and SI-SDR on the waveform,
PESQ (wide-band, and narrow-band as in the reference table) and ESTOI.

    python benchmarks/resynthesis.py --data ../shared/data/speech_librispeech_resemblyzer/test-other \
        --priors vae=vae.pt,dkf=dkf.pt,vrnn=vrnn.pt,srnn=srnn.pt,rvae=rvae-speech --envelopes 20 40 80

``--held-out-of`` adds the test speakers of the training folders (those ``train-prior --data`` never reads,
:func:`ppl_models.data.speakers.held_out_test_files`): one table on held-out voices of every corpus.
"""

from __future__ import annotations

import argparse
import json
from functools import partial

import numpy as np
import torch
from tqdm import tqdm

from ppl_models.data.audio import list_audio_files, load_audio
from ppl_models.data.speakers import describe_split, held_out_test_files
from ppl_models.data.stft import istft, stft
from ppl_models.dvae.resynthesis import resynthesize
from ppl_models.dvae.train import load_prior
from ppl_models.infer import resolve_device
from ppl_models.metrics.audio import pesq_score, score

COLUMNS = ("rmse", "si_sdr", "pesq", "pesq_nb", "estoi")


def cepstral_envelope(signal, coefficients: int) -> torch.Tensor:
    """The input's own spectral envelope, resynthesised with its phase: the log-power spectrum of every frame
    keeps its first ``coefficients`` cepstral coefficients (quefrencies below coefficients / 16 ms), which
    removes the harmonics of the voice (quefrency 1/f0, 2.5-10 ms) when coefficients <= 40. A reference for
    what a prior that learnt the envelope of speech but not its harmonic fine structure would score."""
    spec = stft(torch.as_tensor(signal, dtype=torch.float32))  # (F, T)
    cepstrum = torch.fft.irfft(torch.log(spec.abs().square() + 1e-10), dim=0)
    cepstrum[coefficients:-coefficients] = 0
    envelope = torch.exp(0.5 * torch.fft.rfft(cepstrum, dim=0).real)
    return istft(envelope * torch.exp(1j * torch.angle(spec)), length=len(signal))


def evaluate(resynthesise, signals) -> dict[str, float]:
    """Mean of each metric over the utterances (PESQ averages skip NaN, i.e. silent estimates)."""
    rows = []
    for signal in signals:
        estimate = resynthesise(signal).numpy()
        rows.append({**score(signal, estimate), "pesq_nb": pesq_score(signal, estimate, mode="nb")})
    return {k: float(np.nanmean([r[k] for r in rows])) for k in COLUMNS}


def main(args):
    device = resolve_device(args.device)
    files = list_audio_files(args.data) if args.data else []
    if args.held_out_of:
        held_out = held_out_test_files(args.held_out_of.split(","))
        print(f"test speakers of {args.held_out_of}: {describe_split(([], [], held_out)).split('; ')[2]}")
        files += held_out
    if args.limit:
        files = files[:args.limit]
    signals = [load_audio(f) for f in files]
    priors = dict(item.split("=", 1) for item in args.priors.split(",")) if args.priors else {}
    results = {}
    for name, source in tqdm(priors.items(), desc="priors", disable=not args.progress):
        results[name] = evaluate(partial(resynthesize, load_prior(source, device), device=device), signals)
    noises = [load_audio(f) for folder in (args.noise.split(",") if args.noise else []) for f in list_audio_files(folder)]
    for name, source in priors.items():  # selectivity: a speech prior should not give noise back
        prior = load_prior(source, device)
        results[name]["noise_si_sdr"] = (float(np.mean([score(n, resynthesize(prior, n, device).numpy())["si_sdr"]
                                                         for n in noises])) if noises else float("nan"))
    for k in args.envelopes:
        results[f"cepstral envelope, {k} coefficients"] = evaluate(partial(cepstral_envelope, coefficients=k), signals)
    print(f"{len(files)} utterances from {', '.join(filter(None, (args.data, args.held_out_of)))}, {sum(map(len, signals)) / 16000:.0f} s, device {device}")
    if noises:
        print(f"noise: {len(noises)} clips from {args.noise}, {sum(map(len, noises)) / 16000:.0f} s")
    print("| prior | RMSE | SI-SDR (dB) | PESQ wb | PESQ nb | ESTOI | noise SI-SDR (dB) |\n|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['rmse']:.4f} | {r['si_sdr']:.2f} | {r['pesq']:.2f} | {r['pesq_nb']:.2f} | "
              f"{r['estoi']:.3f} | {r.get('noise_si_sdr', float('nan')):.2f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return results


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", help="folder of clean utterances of speakers unseen in training")
    p.add_argument("--held-out-of", metavar="FOLDERS",
                   help="also (or only) the test speakers of these training folders (comma-separated, as given "
                        "to train-prior --data)")
    p.add_argument("--priors", help="NAME=CKPT|SHIPPED_NAME, comma-separated")
    p.add_argument("--noise", metavar="FOLDERS",
                   help="also resynthesise the noise clips of these folders (comma-separated): selectivity, the "
                        "SI-SDR at which a speech prior gives noise back (lower is better for enhancement)")
    p.add_argument("--envelopes", type=int, nargs="*", default=[], metavar="K",
                   help="also score each utterance's own cepstral envelope with K coefficients (no prior)")
    p.add_argument("--limit", type=int, default=0, help="score only the first N files (0: all)")
    p.add_argument("--json", help="also write the results to this JSON file")
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    args = p.parse_args(argv)
    if not (args.data or args.held_out_of):
        p.error("give --data, --held-out-of or both")
    return args


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main(parse_args())
