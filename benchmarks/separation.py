"""Speech + music separation table: MixDVAE against supervised IS-NMF, the oracle ideal ratio mask (ceiling)
and the unprocessed mixture (floor).

Mixtures of T frames (T = 50, 100, 300: 0.8, 1.6, 4.8 s) of a held-out speaker's utterance and of the held-out
part of a music recording, at a given speech-to-music ratio (SMR, dB). The music recording is split in
time: the prior and the NMF dictionary learn on the part before ``--music-split`` seconds, mixtures use the
part after it. IS-NMF learns one dictionary per source on the same training audio as the priors. Scores per
source: RMSE, SI-SDR (and PESQ wide-band for speech), averaged over ``--mixtures`` random mixtures.

    python benchmarks/separation.py \\
        --speech ../shared/data/speech_librispeech_resemblyzer/test-other \\
        --speech-train ../shared/data/speech_librispeech_resemblyzer/train-clean-100 \\
        --music ../shared/data/pyroomacoustics_samples/music/guitar_16k.wav --music-split 5.2 \\
        --priors speech=rvae-speech,music=rvae-guitar --frames 50 100 300 --smr 0 5 --json separation.json
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
from tqdm import tqdm

from ppl_models.data.audio import list_audio_files, load_audio, peak_normalise
from ppl_models.data.stft import HOP_LENGTH, istft, power_spectrogram, stft, trim_silence
from ppl_models.dvae.train import load_prior
from ppl_models.infer import resolve_device
from ppl_models.metrics.audio import pesq_score, rmse, si_sdr
from ppl_models.mixdvae.separation import separate
from ppl_models.nmf import learn_dictionary, nmf_masks

SOURCES = ("speech", "music")


def speech_set(folder: str, limit: int) -> list[np.ndarray]:
    return [trim_silence(peak_normalise(load_audio(f))) for f in list_audio_files(folder)[:limit]]


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


def methods(priors, dictionaries, iterations, device):
    def mixdvae(s, m, x):
        return separate(x, priors, iterations=iterations, device=device).sources

    def is_nmf(s, m, x):
        return masked(x, nmf_masks(power_spectrogram(torch.as_tensor(x, dtype=torch.float32)), dictionaries))

    def oracle_irm(s, m, x):
        powers = torch.stack([power_spectrogram(torch.as_tensor(v, dtype=torch.float32)) for v in (s, m)])
        return masked(x, powers / powers.sum(0).clamp_min(1e-12))

    def mixture(s, m, x):
        return np.stack([x, x])

    return {"MixDVAE (vem)": mixdvae, "IS-NMF (supervised)": is_nmf, "oracle IRM": oracle_irm, "mixture": mixture}


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
    music_all = peak_normalise(load_audio(args.music))
    cut = int(args.music_split * 16000)
    music_train, music_test = music_all[:cut], music_all[cut:]
    train_speech = np.concatenate(speech_set(args.speech_train, args.nmf_utterances))
    dictionaries = [learn_dictionary(power_spectrogram(torch.as_tensor(a)), rank, seed=args.seed)
                    for a, rank in ((train_speech, args.nmf_rank), (music_train, args.nmf_rank // 2))]
    named = dict(item.split("=", 1) for item in args.priors.split(","))
    priors = [load_prior(named[name], device) for name in SOURCES]
    separators = methods(priors, dictionaries, args.iterations, device)
    table = {}
    for frames in args.frames:
        for smr in args.smr:
            rows = {name: [] for name in separators}
            for _ in tqdm(range(args.mixtures), desc=f"T={frames} SMR={smr:g} dB", leave=False):
                s, m, x = make_mixture(speech, [music_test], frames, smr, rng)
                for name, method in separators.items():
                    rows[name].append(scores((s, m), method(s, m, x)))
            key = f"T={frames}, SMR {smr:g} dB"
            table[key] = {name: {k: float(np.nanmean([r[k] for r in rs])) for k in rs[0]} for name, rs in rows.items()}
            print(f"\n{key} ({args.mixtures} mixtures)\n| method | speech SI-SDR | speech PESQ | speech RMSE | "
                  "music SI-SDR | music RMSE |\n|---|---|---|---|---|---|")
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
    p.add_argument("--music", required=True, help="one music recording, split in time by --music-split")
    p.add_argument("--music-split", type=float, default=5.2, help="seconds of music for training (default 5.2)")
    p.add_argument("--priors", default="speech=rvae-speech,music=rvae-guitar",
                   help="speech=PRIOR,music=PRIOR (checkpoints or shipped names)")
    p.add_argument("--frames", type=int, nargs="+", default=[50, 100, 300], help="mixture lengths T in frames")
    p.add_argument("--smr", type=float, nargs="+", default=[0.0, 5.0], help="speech-to-music ratios in dB")
    p.add_argument("--mixtures", type=int, default=10, help="random mixtures per condition (default 10)")
    p.add_argument("--max-utterances", type=int, default=50, help="held-out utterances to draw from")
    p.add_argument("--nmf-utterances", type=int, default=40, help="training utterances for the speech atoms")
    p.add_argument("--nmf-rank", type=int, default=32, help="speech atoms; music gets half (default 32)")
    p.add_argument("--iterations", type=int, default=100, help="MixDVAE VEM iterations (default 100)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="also write the table to this JSON file")
    p.add_argument("--device", default="cpu")
    return p.parse_args(argv)


if __name__ == "__main__":
    main(parse_args())
