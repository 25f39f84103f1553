"""The speech-enhancement commands: ``export-noisy-speech``, ``train-noise``, ``enhance``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ppl_models.cli.common import add_common, audio_jobs, finish, padded, read_inputs, report_failure


def cmd_export_noisy_speech(args) -> int:
    from ppl_models.data.audio import write_audio
    from ppl_models.datasets.noisy_speech import SNR_SETS, noisy_speech_set

    snrs = SNR_SETS[args.snrs] if args.snrs in SNR_SETS else [float(s) for s in args.snrs.split(",")]
    items = noisy_speech_set(args.data, args.split, snrs, args.utterances, args.seed)
    out = Path(args.out_dir)
    for item in items:
        write_audio(out / "noisy" / f"{item.name}.wav", item.noisy)
        write_audio(out / "clean" / f"{item.name}.wav", item.clean)
    print(f"{len(items)} noisy utterances ({args.split}, SNR {', '.join(f'{s:g}' for s in snrs)} dB) -> "
          f"{out}/noisy and their clean references -> {out}/clean")
    return 0


def cmd_train_noise(args) -> int:
    from ppl_models.data.spectrogram_dataset import SpectrogramSegments
    from ppl_models.data.audio import list_audio_files
    from ppl_models.dvae.train import load_prior
    from ppl_models.enhancement.enhance import train_noise
    from ppl_models.infer import resolve_device

    files = list_audio_files(args.noisy)
    if len(files) < 2:
        raise ValueError(f"--noisy {args.noisy}: need at least two noisy audio files, found {len(files)}")
    n_val = max(1, len(files) // 10)  # every tenth file validates
    train = SpectrogramSegments(files[n_val:], args.segment_frames, trim_db=None, hop_frames=args.segment_frames // 2)
    val = SpectrogramSegments(files[:n_val], args.segment_frames, trim_db=None)
    device = resolve_device(args.device)
    _, history = train_noise(load_prior(args.prior, device), args.noise_model, train.segments, val.segments, args.out,
                             epochs=args.epochs, lr=args.lr, device=device, seed=args.seed, resume=args.resume,
                             prior_name=args.prior, progress=not args.no_progress)
    print(f"{args.noise_model} noise model + encoder trained on {len(train)} noisy segments of {len(files) - n_val} "
          f"files: best validation loss {history.best_loss:.5g} at epoch {history.best_epoch} -> {args.out}")
    return 0


def cmd_enhance(args) -> int:
    """Enhance each input; a file that cannot be read or enhanced is named on stderr and skipped, the others
    are written (atomically), and the exit status is 2 if any was skipped."""
    from ppl_models.data.audio import write_audio
    from ppl_models.dvae.train import load_prior
    from ppl_models.enhancement.enhance import DEFAULT_NOISE_MODEL, enhance
    from ppl_models.infer import resolve_device

    if args.iterations is not None and args.iterations < 0:
        raise ValueError(f"--iterations must be >= 0, got {args.iterations}")
    jobs = audio_jobs(Path(args.input), Path(args.out))
    device = resolve_device(args.device)
    prior = load_prior(args.prior, device)
    loaded, failed = read_inputs(jobs, "enhance")
    seconds = audio = 0.0
    for start in range(0, len(loaded), args.batch):  # utterances of a batch are fitted together
        part = loaded[start:start + args.batch]
        try:
            result = enhance([padded(signal) for _, _, signal in part], prior, args.noise_model, args.mode,
                             args.noise_ckpt, args.iterations, device=device, seed=args.seed,
                             shared_floor=args.noise_floor == "batch", progress=not args.no_progress)
        except (ValueError, RuntimeError) as err:
            for src, _, _ in part:
                report_failure("enhance", src, err)
            failed.extend(src for src, _, _ in part)
            continue
        seconds += result.seconds
        for (src, dst, signal), estimate in zip(part, result.signals):
            write_audio(dst, np.clip(estimate[:len(signal)], -1, 1))
            audio += len(signal) / 16000
            print(f"{src} -> {dst}")
    if audio:
        noise_model = args.noise_model or (DEFAULT_NOISE_MODEL if args.mode == "una" else "checkpoint")
        print(f"{noise_model} noise model / {args.mode}: {audio:.1f} s of audio in {seconds:.1f} s "
              f"(real-time factor {seconds / audio:.2f})")
    return finish("enhance", len(jobs), failed)


def add_parsers(sub) -> None:
    """Add export-noisy-speech, train-noise and enhance."""
    p = sub.add_parser("export-noisy-speech", help="write a noisy speech set (real speech + real noise) as wavs",
                       description="Mix real clean speech with real noise at given SNRs: --split test uses the "
                                   "held-out LibriSpeech test-other speakers and the test noises (UrbanSound8K "
                                   "fold 10 among them), --split train the train-clean-100 speakers and other "
                                   "noises (UrbanSound8K folds 1-2; the noisy corpus of train-noise). Writes "
                                   "OUT_DIR/noisy/NAME.wav and OUT_DIR/clean/NAME.wav.")
    p.add_argument("--data", required=True, help="the real-data folder (with speech_librispeech_resemblyzer/, "
                                                 "pyroomacoustics_samples/, noise_esc50_speechbrain/, "
                                                 "noise_urbansound8k/)")
    p.add_argument("--split", default="test", choices=["train", "test"], help="default: test")
    p.add_argument("--snrs", default="qut", help="qut (-5,0,5), dmd (2.5,7.5,12.5,17.5) or a comma-separated "
                                                 "list in dB (default: qut)")
    p.add_argument("--utterances", type=int, default=None, help="at most this many utterances (default: all)")
    p.add_argument("--out-dir", required=True, help="output folder")
    add_common(p, device=False)
    p.set_defaults(func=cmd_export_noisy_speech)

    p = sub.add_parser("train-noise", help="U-ND: train a noise model and the encoder on noisy speech only",
                       description="Train the deep noise model (lv, no, nolv) and the speech prior's encoder on "
                                   "a folder of noisy speech, with no clean targets; the frozen speech prior "
                                   "explains the speech. Use the checkpoint with enhance --mode und or unda.")
    p.add_argument("--noisy", required=True, help="a folder of noisy utterances")
    p.add_argument("--noise-model", default="lv", choices=["lv", "no", "nolv"], help="default: lv")
    p.add_argument("--prior", default="rvae-speech", help="speech prior: checkpoint or shipped name "
                                                          "(default: rvae-speech)")
    p.add_argument("--out", required=True, help="checkpoint to write (every epoch, atomically)")
    p.add_argument("--epochs", type=int, default=100, help="training epochs, early-stopped (default: 100)")
    p.add_argument("--lr", type=float, default=1e-3, help="ClippedAdam learning rate (default: 1e-3)")
    p.add_argument("--segment-frames", type=int, default=100, help="frames per training segment (default: 100)")
    p.add_argument("--resume", action="store_true", help="continue from --out if it exists")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_common(p)
    p.set_defaults(func=cmd_train_noise)

    p = sub.add_parser("enhance", help="unsupervised speech enhancement with a DVAE speech prior",
                       description="Denoise speech with a frozen speech prior (RVAE) and a noise model, without "
                                   "ever seeing clean/noisy pairs (Lin et al., Interspeech 2023). --mode una "
                                   "fits the noise model on the input itself (default, no other file needed); "
                                   "und uses a train-noise checkpoint in one pass; unda starts from it and "
                                   "adapts. --noise-model nmf is the RVAE-VEM baseline. IN and --out: files, or "
                                   "folders (same names); the utterances of a folder are fitted in batches.")
    p.add_argument("input", metavar="IN", help="a noisy wav/flac file or a folder of them")
    p.add_argument("--out", required=True, help="output wav, or output folder when IN is a folder")
    p.add_argument("--prior", default="rvae-speech",
                   help="speech prior: checkpoint or shipped name; its decoder must read only z (rvae, vae, dkf) "
                        "(default: rvae-speech, the shipped prior that gives the least noise back)")
    p.add_argument("--noise-model", default=None, choices=["lv", "no", "nolv", "nmf"],
                   help="no: from the past noisy frames; lv: from the speech latents; nolv: both; nmf: RVAE-VEM "
                        "(default: no for una, chosen on validation; the checkpoint's own for und and unda)")
    p.add_argument("--mode", default="una", choices=["una", "und", "unda"],
                   help="una: fit on the input; und: one pass with --noise-ckpt; unda: und then adapt "
                        "(default: una)")
    p.add_argument("--noise-ckpt", help="train-noise checkpoint (for und, unda)")
    p.add_argument("--iterations", type=int, default=None,
                   help="SVI iterations (una: up to 300, early-stopped; unda: 60; nmf: 150)")
    p.add_argument("--batch", type=int, default=64, help="utterances fitted together (default: 64)")
    p.add_argument("--noise-floor", default="utterance", choices=["utterance", "batch"],
                   help="una with lv/no/nolv: where the noise variance starts; utterance: a learnt offset per "
                        "utterance from its own floor; batch: one floor for the batch (default: utterance)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_common(p)
    p.set_defaults(func=cmd_enhance)
