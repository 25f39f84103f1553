"""The ``separate`` command: single-channel source separation with a mixture of DVAE sources."""

from __future__ import annotations

from pathlib import Path

from ppl_models.cli.common import add_common, finish, padded, read_inputs, report_failure


def parse_named_priors(text: str) -> dict[str, str]:
    """``speech=rvae-speech,music=guitar.pt`` -> {"speech": "rvae-speech", "music": "guitar.pt"}."""
    pairs = [item.partition("=") for item in text.split(",") if item.strip()]
    if len(pairs) < 2 or any(not name.strip() or not sep or not prior.strip() for name, sep, prior in pairs):
        raise ValueError(f"--priors {text!r}: expected at least two NAME=PRIOR pairs separated by commas")
    named = {name.strip(): prior.strip() for name, _, prior in pairs}
    if len(named) != len(pairs):
        raise ValueError(f"--priors {text!r}: each source name must appear once")
    return named


def cmd_separate(args) -> int:
    """Separate one mixture (NAME.wav per source in --out-dir) or every mixture of a folder (OUT/REL/NAME.wav);
    a mixture that cannot be read or separated is named on stderr and skipped, and the exit status is 2."""
    import pyro

    from ppl_models.data.audio import list_audio_files, write_audio
    from ppl_models.dvae.train import load_prior
    from ppl_models.infer import resolve_device
    from ppl_models.mixdvae.separation import separate
    from ppl_models.plots import plot_spectrograms

    if args.iterations < 1:
        raise ValueError(f"--iterations must be >= 1, got {args.iterations}")
    named = parse_named_priors(args.priors)
    source, out = Path(args.mixture), Path(args.out_dir)
    if source.is_dir():
        jobs = [(f, out / f.relative_to(source).with_suffix("")) for f in list_audio_files(source)]
        if not jobs:
            raise ValueError(f"{source}: no audio files (.wav, .flac, .ogg)")
    else:
        jobs = [(source, out)]
    device = resolve_device(args.device)
    priors = [load_prior(prior, device) for prior in named.values()]
    loaded, failed = read_inputs(jobs, "separate")
    for src, folder, mixture in loaded:
        pyro.set_rng_seed(args.seed)
        try:
            result = separate(mixture, priors, iterations=args.iterations, device=device,
                              progress=not args.no_progress)
        except (ValueError, RuntimeError) as err:
            report_failure("separate", src, err)
            failed.append(src)
            continue
        for name, wave in zip(named, result.sources):
            write_audio(folder / f"{name}.wav", wave)
        plot_spectrograms({"mixture": padded(mixture),
                           **{f"{name} (estimate)": padded(wave) for name, wave in zip(named, result.sources)}},
                          folder / "separation.png")
        shares = ", ".join(f"{name} {share:.0%}" for name, share in zip(named, result.beta))
        print(f"{src}: {len(mixture) / 16000:.1f} s -> {', '.join(f'{n}.wav' for n in named)} and "
              f"separation.png in {folder} (bins owned: {shares})")
    return finish("separate", len(jobs), failed)


def add_parsers(sub) -> None:
    """Add separate."""
    p = sub.add_parser("separate", help="separate a mono mixture into sources with one DVAE prior each",
                       description="Single-channel source separation with a mixture of DVAE sources (Lin et "
                                   "al., TMLR 2023): every time-frequency bin of the mixture is assigned to one "
                                   "source by exact enumeration, each source follows its own frozen spectrogram "
                                   "prior, and the paper's variational EM (50-frame segments, v_x = 3 % of each "
                                   "bin's power) gives each source the share of the mixture its posterior power "
                                   "claims. Writes NAME.wav per source and separation.png.")
    p.add_argument("mixture", metavar="MIX", help="mixture audio file (mono or averaged to mono; resampled to "
                                                  "16 kHz), or a folder of them (OUT_DIR/NAME/SOURCE.wav each)")
    p.add_argument("--priors", default="speech=rvae-speech,music=rvae-music",
                   help="NAME=PRIOR per source, comma-separated; PRIOR is a checkpoint or a shipped name "
                        "(default: speech=rvae-speech,music=rvae-music, the music prior trained on real "
                        "instrument phrases; rvae-guitar saw 5 s of one guitar)")
    p.add_argument("--out-dir", required=True, help="folder for NAME.wav and separation.png")
    p.add_argument("--iterations", type=int, default=20, help="variational EM iterations (default: 20)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_common(p)
    p.set_defaults(func=cmd_separate)
