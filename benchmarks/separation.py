"""Speech + music separation table: MixDVAE (one row per pair of priors) against supervised IS-NMF, the oracle
ideal ratio mask (ceiling) and the unprocessed mixture (floor), on real speech + real instrument recordings.

Mixtures of T frames (T = 50, 100, 300: 0.8, 1.6, 4.8 s) of a held-out speaker's utterance and of a held-out
instrument recording (Philharmonia phrases of ``--instrument``, split by recording: every fifth file is a
test recording, the one after it a validation recording, the rest train the IS-NMF music dictionary; see
``music_split``), music scaled to a speech-to-music ratio (SMR, dB). IS-NMF learns one dictionary per source:
speech on ``--speech-train`` utterances, music on the training recordings, activations fitted on the mixture,
Wiener masks. Scores per source: SI-SDR (and PESQ wide-band for speech), averaged over ``--mixtures`` random
mixtures. ``--split validation`` draws the music from the validation recordings (choose settings there).

    python benchmarks/separation.py --speech ../shared/data/speech_librispeech_resemblyzer/test-other \\
        --speech-train ../shared/data/speech_librispeech_resemblyzer/train-clean-100 \\
        --music-dir ../shared/data/music_philharmonia --instrument flute --split test \\
        --priors speech=mix-srnn-wsj.pt,music=mix-srnn-cbf.pt speech=rvae-speech,music=rvae-guitar \\
        --frames 50 100 300 --smr 0 5 --mixtures 20
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ppl_models.data.audio import list_audio_files, load_audio, peak_normalise
from ppl_models.data.stft import HOP_LENGTH, istft, power_spectrogram, stft, trim_silence
from ppl_models.dvae.train import load_prior
from ppl_models.infer import resolve_device
from ppl_models.metrics.audio import pesq_score, rmse, si_sdr
from ppl_models.mixdvae.separation import SEGMENT, separate
from ppl_models.nmf import learn_dictionary, nmf_masks

SOURCES = ("speech", "music")


def speech_set(folder: str, limit: int) -> list[np.ndarray]:
    return [trim_silence(peak_normalise(load_audio(f))) for f in list_audio_files(folder)[:limit]]


def music_split(folder: str, instrument: str, split: str) -> list:
    """The ``split`` ("train", "validation", "test") recordings of one instrument, sorted by file name:
    index % 5 == 0 test, == 1 validation, else train."""
    files = sorted(Path(folder).rglob(f"{instrument}_*.mp3"))
    if not files:
        raise SystemExit(f"{folder}: no {instrument}_*.mp3 recordings")
    keep = {"test": lambda i: i % 5 == 0, "validation": lambda i: i % 5 == 1, "train": lambda i: i % 5 > 1}[split]
    return [f for i, f in enumerate(files) if keep(i)]


def music_set(files) -> list[np.ndarray]:
    return [trim_silence(peak_normalise(load_audio(f))) for f in files]


def make_mixture(speech, music, frames: int, smr_db: float, rng):
    """A random (speech, music) pair of (frames - 1) hops, each cut from a recording at least that long, music
    scaled to the SMR, and their sum."""
    n = (frames - 1) * HOP_LENGTH
    pieces = []
    for pool in (speech, music):
        long_enough = [signal for signal in pool if len(signal) >= n]
        if not long_enough:
            raise SystemExit(f"no recording of {frames} frames ({n} samples) or more to mix")
        signal = long_enough[rng.integers(len(long_enough))]
        start = rng.integers(len(signal) - n + 1)
        pieces.append(signal[start:start + n].astype(np.float64))
    s, m = pieces
    m *= np.sqrt(np.mean(s ** 2) / max(np.mean(m ** 2), 1e-12) / 10 ** (smr_db / 10))
    return s, m, s + m


def masked(mixture: np.ndarray, masks: torch.Tensor) -> np.ndarray:
    """Sources (N, samples) from masks (N, F, T) applied to the mixture's STFT."""
    spec = stft(torch.as_tensor(mixture, dtype=torch.float32))
    return istft(masks * spec, length=len(mixture)).numpy()


def methods(prior_pairs, dictionaries, iterations, device, paper_row: bool, segments=(SEGMENT,)):
    def mixdvae(priors, **kwargs):
        return lambda s, m, x: separate(x, priors, device=device, **kwargs).sources

    def is_nmf(s, m, x):
        return masked(x, nmf_masks(power_spectrogram(torch.as_tensor(x, dtype=torch.float32)), dictionaries))

    def oracle_irm(s, m, x):
        powers = torch.stack([power_spectrogram(torch.as_tensor(v, dtype=torch.float32)) for v in (s, m)])
        return masked(x, powers / powers.sum(0).clamp_min(1e-12))

    def mixture(s, m, x):
        return np.stack([x, x])

    rows = {f"MixDVAE ({label})" + (f", segments of {n} frames" if n != SEGMENT else ""):
            mixdvae(priors, iterations=iterations, segment=n)
            for label, priors in prior_pairs.items() for n in segments}
    if paper_row:  # the first pair under the paper's own protocol: 70 iterations, posterior means
        label, priors = next(iter(prior_pairs.items()))
        rows[f"MixDVAE ({label}), paper protocol"] = mixdvae(priors, iterations=70, output="mean")
    return {**rows, "IS-NMF (supervised)": is_nmf, "oracle IRM": oracle_irm, "mixture": mixture}


def scores(references, estimates) -> dict[str, float]:
    row = {}
    for name, ref, est in zip(SOURCES, references, estimates):
        row[f"{name}_rmse"], row[f"{name}_si_sdr"] = rmse(ref, est), si_sdr(ref, est)
    row["speech_pesq"] = pesq_score(references[0], estimates[0])
    return row


def main(args):
    device = resolve_device(args.device)
    rng = np.random.default_rng(args.seed)
    speech = speech_set(args.speech, args.max_utterances)
    music = music_set(music_split(args.music_dir, args.instrument, args.split))
    if args.nmf_cache and Path(args.nmf_cache).is_file():
        dictionaries = torch.load(args.nmf_cache)
    else:
        train_speech = np.concatenate(speech_set(args.speech_train, args.nmf_utterances))
        train_music = np.concatenate(music_set(music_split(args.music_dir, args.instrument, "train")))
        dictionaries = [learn_dictionary(power_spectrogram(torch.as_tensor(a)), args.nmf_rank, seed=args.seed)
                        for a in (train_speech, train_music)]
        if args.nmf_cache:
            torch.save(dictionaries, args.nmf_cache)
    pairs = {}
    for text in args.priors:
        named = dict(item.split("=", 1) for item in text.split(","))
        pairs[" + ".join(Path(named[n]).stem for n in SOURCES)] = [load_prior(named[n], device) for n in SOURCES]
    separators = methods(pairs, dictionaries, args.iterations, device, args.paper_row, args.segments)
    table = {}
    for frames in args.frames:
        for smr in args.smr:
            rows = {name: [] for name in separators}
            for _ in tqdm(range(args.mixtures), desc=f"T={frames} SMR={smr:g} dB", leave=False):
                s, m, x = make_mixture(speech, music, frames, smr, rng)
                for name, method in separators.items():
                    rows[name].append(scores((s, m), method(s, m, x)))
            key = f"T={frames}, SMR {smr:g} dB"
            table[key] = {name: {k: float(np.nanmean([r[k] for r in rs])) for k in rs[0]} for name, rs in rows.items()}
            print(f"\n{key} ({args.mixtures} mixtures, {args.split})\n| method | speech SI-SDR | speech PESQ | "
                  "speech RMSE | music SI-SDR | music RMSE |\n|---|---|---|---|---|---|")
            for name, r in table[key].items():
                print(f"| {name} | {r['speech_si_sdr']:.2f} | {r['speech_pesq']:.2f} | {r['speech_rmse']:.4f} | "
                      f"{r['music_si_sdr']:.2f} | {r['music_rmse']:.4f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(table, f, indent=1)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--speech", required=True, help="folder of held-out speakers' utterances")
    p.add_argument("--speech-train", required=True, help="folder of the speech prior's training utterances")
    p.add_argument("--music-dir", required=True, help="the Philharmonia folder (music_philharmonia)")
    p.add_argument("--instrument", default="flute", help="instrument of the music recordings (default flute)")
    p.add_argument("--split", default="validation", choices=["validation", "test"],
                   help="music recordings to mix (default validation; report test)")
    p.add_argument("--priors", nargs="+", default=["speech=rvae-speech,music=rvae-guitar"],
                   help="one speech=PRIOR,music=PRIOR pair per MixDVAE row (checkpoints or shipped names)")
    p.add_argument("--frames", type=int, nargs="+", default=[50, 100, 300], help="mixture lengths T in frames")
    p.add_argument("--smr", type=float, nargs="+", default=[0.0, 5.0], help="speech-to-music ratios in dB")
    p.add_argument("--mixtures", type=int, default=10, help="random mixtures per condition (default 10)")
    p.add_argument("--max-utterances", type=int, default=50, help="held-out utterances to draw from")
    p.add_argument("--nmf-utterances", type=int, default=40, help="training utterances for the speech atoms")
    p.add_argument("--nmf-rank", type=int, default=32, help="atoms per source (default 32)")
    p.add_argument("--nmf-cache", help="load the IS-NMF dictionaries from this file, or learn and save them there")
    p.add_argument("--iterations", type=int, default=20, help="MixDVAE VEM iterations (default 20)")
    p.add_argument("--segments", type=int, nargs="+", default=[SEGMENT],
                   help=f"MixDVAE segment lengths in frames, one row each (default {SEGMENT}, the paper's)")
    p.add_argument("--paper-row", action="store_true",
                   help="add the first pair under the paper's protocol (70 iterations, posterior means)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="also write the table to this JSON file")
    p.add_argument("--device", default="cpu")
    return p.parse_args(argv)


if __name__ == "__main__":
    main(parse_args())
