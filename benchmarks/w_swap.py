r"""What the sequence latent w of HiT-DVAE / LigHT-DVAE carries: swap it between utterances of two speakers.

For a pair (A, B) of held-out utterances of different speakers, w_A and w_B are the means of q(w | s_A) and
q(w | s_B), z_A the means of q(z_t | s_A, w_A). Utterance A is then decoded (the decoder's variance v_t) with
its own w_A and with w_B, in three ways:

* teacher-forced: v_t from s_{A,<t}, z_A, w (what resynthesis does; the decoder also reads A's own past);
* teacher-forced, z re-inferred: z from q(z | s_A, w_B) instead of z_A (``reconstruct(s_A, w=w_B)``);
* free-running: z_A decoded with each frame's own output fed back as the past, so only z_A and w say what
  A's past was (``generate(z=z_A, w=w)``);

and, as a control, with the w of a third speaker C (the first way): a move toward B that C's w makes too is
not B's. Two measurements of a spectrogram P (F, T), the same for the real and the decoded ones:

* envelope e(P): the mean over active frames (within 40 dB of the loudest) of the 40 log-mel energies, minus
  their mean over bands (the long-term spectral envelope without the level);
* pitch f0(P): the median over voiced frames of the cepstral pitch, 16000 / argmax_q c_t[q] for quefrencies
  q of 70-400 Hz, c_t = irfft(log P_t); a frame is voiced when that peak exceeds ``VOICING`` and it is active.

How far swapping moves the output toward B, least squares over the pairs (0: w carries none of it, 1: the
output moved by the whole difference between B and A):

    fraction = sum_pairs <e(out_B) - e(out_A), e(B) - e(A)> / sum_pairs |e(B) - e(A)|^2     (and f0 alike)

    python benchmarks/w_swap.py --held-out-of ../shared/data/speech_librispeech_mini/train-clean-5,\\
../shared/data/speech_speechocean762/flac,../shared/data/speech_librispeech_resemblyzer/train-clean-100,\\
../shared/data/pyroomacoustics_samples/speech --prior light-dvae-speech.pt --pairs 20 --figure w_swap.png
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np
import torch

from ppl_models.data.audio import list_audio_files, load_audio
from ppl_models.data.speakers import speaker_of, split_by_speaker
from ppl_models.data.stft import HOP_LENGTH, mel_filterbank, power_spectrogram, trim_silence
from ppl_models.dvae.hit_dvae import HierarchicalDVAE
from ppl_models.dvae.train import load_prior
from ppl_models.plots import plt, save_figure

VOICING = 0.25  # cepstral peak (natural-log units) above which an active frame counts as voiced
ACTIVE_DB = 40.0
FIGURE_F0_GAP = 50.0  # the figure shows the first pair whose pitches differ by more (Hz), else the last pair
MEL = torch.as_tensor(mel_filterbank(40))


def active(power: torch.Tensor) -> torch.Tensor:
    """(T,) bool: frames of a (T, F) power spectrogram within ACTIVE_DB of the loudest."""
    level = 10 * torch.log10(power.sum(-1) + 1e-12)
    return level > level.max() - ACTIVE_DB


def envelope(power: torch.Tensor) -> torch.Tensor:
    """(40,) long-term log-mel envelope of a (T, F) power spectrogram, level removed."""
    logmel = torch.log(power[active(power)] @ MEL.T + 1e-10).mean(0)
    return logmel - logmel.mean()


def pitch(power: torch.Tensor) -> tuple[float, float]:
    """(median cepstral f0 in Hz over voiced frames, fraction of active frames voiced) of (T, F) power."""
    cepstrum = torch.fft.irfft(torch.log(power + 1e-10), dim=-1)  # (T, 1024)
    lo, hi = 16000 // 400, 16000 // 70
    peak, q = cepstrum[:, lo:hi + 1].max(-1)
    on = active(power)
    voiced = on & (peak > VOICING)
    if not voiced.any():
        return float("nan"), 0.0
    return float(torch.median(16000 / (q[voiced] + lo).float())), float(voiced.sum() / on.sum())


def pairs_of(files, count: int, seed: int):
    """``count`` (A, B, C) triples of files of three different speakers."""
    rng = random.Random(seed)
    by_speaker = {}
    for f in files:
        by_speaker.setdefault(speaker_of(f), []).append(f)
    speakers = sorted(by_speaker)
    if len(speakers) < 3:
        print(f"need held-out utterances of >= 3 speakers, found {len(speakers)}", file=sys.stderr)
        raise SystemExit(2)
    triples = []
    for _ in range(count):
        a, b, c = rng.sample(speakers, 3)
        triples.append(tuple(rng.choice(by_speaker[s]) for s in (a, b, c)))
    return triples


def spectrogram(path, seconds: float) -> torch.Tensor:
    """(1, T, F) power of the first ``seconds`` of an utterance, silence trimmed and peak-normalised as in training."""
    signal = trim_silence(load_audio(path))[:int(seconds * 16000)]
    signal = signal / max(np.abs(signal).max(), 1e-12)
    return power_spectrogram(torch.as_tensor(signal)).T.unsqueeze(0)


def decodings(prior: HierarchicalDVAE, a: torch.Tensor, w_other: torch.Tensor) -> dict[str, torch.Tensor]:
    """A's decoder variance (T, F) with its own w and with ``w_other``, each way of the module docstring."""
    w_a = prior.encode_w(a)
    z_a = prior.encode(a)

    def forced(w, z=z_a):
        return prior.likelihood.mean(prior.decoder_params(z, a, w))[0]

    def free(w):
        return prior.generate(a.shape[1], num=1, w=w, z=z_a)[0]

    return {"teacher-forced": (forced(w_a), forced(w_other)),
            "teacher-forced, z re-inferred": (prior.reconstruct(a)[0], prior.reconstruct(a, w=w_other)[0]),
            "free-running": (free(w_a), free(w_other))}


def fraction(moves, gaps) -> float:
    """Least-squares fraction of the gaps (B - A) that the moves (out_B - out_A) cover."""
    moves, gaps = np.asarray(moves, dtype=float), np.asarray(gaps, dtype=float)
    keep = np.isfinite(moves).all(-1) & np.isfinite(gaps).all(-1) if moves.ndim > 1 else \
        np.isfinite(moves) & np.isfinite(gaps)
    return float(np.sum(moves[keep] * gaps[keep]) / np.sum(gaps[keep] ** 2)) if keep.any() else float("nan")


def nearest_neighbour_accuracy(codes: torch.Tensor, speakers: list[str]) -> float:
    """Leave-one-out 1-nearest-neighbour (cosine) speaker accuracy of per-utterance codes (N, D)."""
    codes = torch.nn.functional.normalize(codes - codes.mean(0), dim=1)
    similarity = (codes @ codes.T).fill_diagonal_(-float("inf"))
    return float(np.mean([speakers[j] == s for j, s in zip(similarity.argmax(1).tolist(), speakers)]))


def identify_speakers(prior, files, seconds: float) -> dict[str, float]:
    """Which held-out speaker said an utterance, from w (the mean of q(w | s)) or, as the simple baseline, from
    the utterance's long-term envelope; utterances of speakers with one utterance only are left out."""
    speakers = [speaker_of(f) for f in files]
    keep = [i for i, s in enumerate(speakers) if speakers.count(s) > 1]
    spectra = [spectrogram(files[i], seconds) for i in keep]
    speakers = [speakers[i] for i in keep]
    counts = np.array([speakers.count(s) - 1 for s in speakers]) / (len(speakers) - 1)
    result = {"w": nearest_neighbour_accuracy(torch.cat([prior.encode_w(x) for x in spectra]), speakers),
              "envelope": nearest_neighbour_accuracy(torch.stack([envelope(x[0]) for x in spectra]), speakers),
              "chance": float(counts.mean())}
    print(f"speaker identification, {len(speakers)} utterances of {len(set(speakers))} held-out speakers "
          f"(leave-one-out 1-NN, cosine): w {result['w']:.2f}, long-term envelope {result['envelope']:.2f}, "
          f"chance {result['chance']:.2f}")
    return result


def figure(name, a, b, outs, path):
    """Log spectrograms of A, B and A decoded with w_A and with w_B (teacher-forced and free-running)."""
    panels = {"A (real)": a, "B (real)": b, **outs}
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 1.9 * len(panels)), squeeze=False)
    for ax, (title, power) in zip(axes[:, 0], panels.items()):
        db = 10 * torch.log10(power.T + 1e-10).numpy()
        ax.imshow(db, origin="lower", aspect="auto", cmap="magma", vmin=db.max() - 80, vmax=db.max(),
                  extent=(0, db.shape[1] * HOP_LENGTH / 16000, 0, 8))
        ax.set(title=title, ylabel="kHz")
        ax.grid(False)
    axes[-1, 0].set_xlabel("time (s)")
    fig.suptitle(f"{name}: utterance A decoded with its own w and with speaker B's")
    fig.tight_layout()
    return save_figure(fig, path)


def main(args):
    torch.manual_seed(args.seed)
    prior = load_prior(args.prior, "cpu")
    if not isinstance(prior, HierarchicalDVAE) or prior.likelihood.kind != "power":
        print(f"--prior {args.prior}: need a HiT-DVAE or LigHT-DVAE speech prior, got a {prior.name} "
              f"({prior.likelihood.kind})", file=sys.stderr)
        raise SystemExit(2)
    test = split_by_speaker([f for folder in args.held_out_of.split(",") for f in list_audio_files(folder)])[2]
    triples = pairs_of(test, args.pairs, args.seed)
    rows, kl_w, drawn = {}, [], False  # way -> {measurement: one value per pair}; KL(q(w | s_A) || p(w)) per pair
    for i, (fa, fb, fc) in enumerate(triples):
        a, b, c = (spectrogram(f, args.seconds) for f in (fa, fb, fc))
        outs = decodings(prior, a, prior.encode_w(b))
        outs["control: third speaker's w"] = (outs["teacher-forced"][0],
                                              decodings(prior, a, prior.encode_w(c))["teacher-forced"][1])
        ea, eb, f0_a, f0_b = envelope(a[0]), envelope(b[0]), pitch(a[0])[0], pitch(b[0])[0]
        kl_w.append(float(prior.kl_w(a)))
        for way, (own, swapped) in outs.items():
            e_own, e_swap = envelope(own), envelope(swapped)
            f0_own, (f0_swap, voiced) = pitch(own)[0], pitch(swapped)
            measured = {"move": (e_swap - e_own).numpy(), "gap": (eb - ea).numpy(), "f0_move": f0_swap - f0_own,
                        "f0_gap": f0_b - f0_a, "to_a": float((e_swap - ea).norm()), "to_b": float((e_swap - eb).norm()),
                        "own_to_a": float((e_own - ea).norm()), "voiced": voiced}
            for key, value in measured.items():
                rows.setdefault(way, {}).setdefault(key, []).append(value)
        if args.figure and not drawn and (abs(f0_b - f0_a) > FIGURE_F0_GAP or i == len(triples) - 1):
            drawn = True
            panels = {f"A decoded with w_A ({w})": outs[w][0] for w in ("teacher-forced", "free-running")}
            panels.update({f"A decoded with w_B ({w})": outs[w][1] for w in ("teacher-forced", "free-running")})
            path = figure(Path(args.prior).name, a[0], b[0], panels, args.figure)
            print(f"figure: {path} (A {fa.name}, B {fb.name})")
    print(f"{len(triples)} pairs of held-out utterances (first {args.seconds:g} s), {len(set(map(speaker_of, test)))} "
          f"test speakers; prior {args.prior}")
    print("| decoding of A | envelope: own w to A | swapped to A | swapped to B | envelope fraction toward B | "
          "f0 fraction toward B | voiced frames |\n|---|---|---|---|---|---|---|")
    results = {}
    for way, r in rows.items():
        results[way] = {"envelope_fraction": fraction(r["move"], r["gap"]),
                        "f0_fraction": fraction(r["f0_move"], r["f0_gap"]),
                        **{k: float(np.mean(r[k])) for k in ("own_to_a", "to_a", "to_b", "voiced")}}
        x = results[way]
        print(f"| {way} | {x['own_to_a']:.3f} | {x['to_a']:.3f} | {x['to_b']:.3f} | {x['envelope_fraction']:.2f} | "
              f"{x['f0_fraction']:.2f} | {x['voiced']:.2f} |")
    gaps = np.array([np.linalg.norm(g) for g in rows["teacher-forced"]["gap"]])
    f0 = np.abs(rows["teacher-forced"]["f0_gap"])
    print(f"real A to B: envelope distance {gaps.mean():.3f}, |f0 B - f0 A| median {np.nanmedian(f0):.0f} Hz; "
          f"KL(q(w|s_A) || p(w)) {np.mean(kl_w):.2f} nats")
    results["speaker identification"] = identify_speakers(prior, test, args.seconds)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return results


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--held-out-of", required=True, metavar="FOLDERS",
                   help="training folders (comma-separated, as given to train-prior --data): their test speakers")
    p.add_argument("--prior", required=True, help="a HiT-DVAE or LigHT-DVAE speech checkpoint")
    p.add_argument("--pairs", type=int, default=20)
    p.add_argument("--seconds", type=float, default=4.0, help="decode the first SECONDS of each utterance")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--figure", help="spectrograms of one pair (the first with pitches > 50 Hz apart)")
    p.add_argument("--json")
    return p.parse_args(argv)


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main(parse_args())
