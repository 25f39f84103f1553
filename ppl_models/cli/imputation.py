"""The imputation commands: ``export-multimodal``, ``export-physionet``, ``export-av-speech`` and ``impute``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ppl_models.cli.common import add_common, add_train_and_write, at_least, check_same_sensors


def _write_splits(out_dir: str, train, test, frame_ms: float | None) -> None:
    """Save train.npz and test.npz in the multi-sensor contract and say what is in them."""
    from ppl_models.data.fusion_files import save_fusion

    out = Path(out_dir)
    for split, data in (("train", train), ("test", test)):
        save_fusion(out / f"{split}.npz", data)
        widths = ", ".join(f"{k} {v.shape[-1]}" for k, v in data.sensors.items())
        missing = ", ".join(f"{k} {1 - data.mask(k).mean():.1%}" for k in data.names)
        duration = f" of {frame_ms:.0f} ms" if frame_ms else ""
        print(f"{out / (split + '.npz')}: {data.shape[0]} windows x {data.shape[1]} frames{duration}, "
              f"sensors ({widths}), missing frames ({missing})")


def cmd_export_multimodal(args) -> int:
    from ppl_models.data.synthetic import multimodal

    make = {"shared-cause": multimodal.synthetic_multimodal,
            "private-dynamics": multimodal.synthetic_private_dynamics}[args.dataset]
    train, _ = make(256, args.frames, seed=args.seed)
    test, _ = make(64, args.frames, seed=args.seed + 1)
    _write_splits(args.out_dir, train, test, None)
    return 0


def cmd_export_physionet(args) -> int:
    from ppl_models.datasets.physionet import build_physionet

    sensors = [s for s in args.sensors.split(",") if s] if args.sensors else None
    train, test, meta = build_physionet(args.data, args.record, args.frames, sensors)
    _write_splits(args.out_dir, train, test, 1000 / meta["frame_rate_hz"])
    return 0


def cmd_export_av_speech(args) -> int:
    from ppl_models.datasets.av_speech import build_av_speech

    if args.frames < 8:
        raise ValueError(f"--frames must be at least 8, got {args.frames}")
    train, _ = build_av_speech(args.data, "train", args.frames, args.seed)
    test, _ = build_av_speech(args.data, "test", args.frames, args.seed)
    _write_splits(args.out_dir, train, test, 16)
    return 0


def cmd_impute(args) -> int:
    import pyro

    from ppl_models.data.fusion_files import load_fusion, save_fusion
    from ppl_models.infer import resolve_device
    from ppl_models.multimodal.imputation import build_imputer, fit, held_out_score, impute, imputation_scores
    from ppl_models.plots import plot_imputation

    if args.epochs < 1:
        raise ValueError(f"--epochs must be >= 1, got {args.epochs}")
    device = resolve_device(args.device)
    train, test = load_fusion(args.train), load_fusion(args.test)
    check_same_sensors(train, test, args.train, args.test)
    if args.target not in train.names:
        raise ValueError(f"--target {args.target!r} is not a sensor of {args.train} ({train.names})")
    if len(train.names) < 2 and args.model != "unimodal":
        raise ValueError(f"{args.train} has one sensor: nothing to impute it from (only --model unimodal applies)")
    pyro.clear_param_store()  # a fresh model: no parameters left from an earlier run in this process
    pyro.set_rng_seed(args.seed)
    model = build_imputer(args.model, train, target=args.target, hidden=args.hidden)
    _, standard = fit(model, train, epochs=args.epochs, device=device, seed=args.seed, progress=not args.no_progress)
    mean, std = impute(model, standard, test, args.target, device)
    save_fusion(args.out, **{f"x_{args.target}": mean.astype(np.float32), f"std_{args.target}": std.astype(np.float32)})
    print(f"{args.model}: wrote x_{args.target} and std_{args.target} {mean.shape} to {args.out}")
    observed = test.mask(args.target)
    if observed.any():
        scores = imputation_scores(test.sensors[args.target], mean, std, observed)
        print(f"against the test file's own {args.target}: RMSE {scores['rmse']:.4f}, truth within 2 std "
              f"{scores['coverage']:.1%}, CRPS {scores['crps']:.4f}, NLL {scores['nll']:.3f} per value; "
              f"held-out score {held_out_score(model, standard, test, device):.3f} per value")
    others = {m: test.sensors[m][0] for m in test.names if m != args.target}
    plot = plot_imputation(test.sensors[args.target][0], mean[0], std[0], np.ones(test.shape[1], bool),
                           args.plot or Path(args.out).with_suffix(".png"), others,
                           title=f"{args.model}: {args.target} imputed from {', '.join(others) or 'its prior'}")
    print(f"figure: {plot}")
    return 0


def add_parsers(sub) -> None:
    """Add export-multimodal, export-physionet, export-av-speech and impute."""
    p = sub.add_parser("export-multimodal", help="write a synthetic two-sensor imputation set (no data needed)",
                       description="Generated sensors a (3-D) and b (2-D), 256 train / 64 test sequences. "
                                   "'shared-cause': b is linked to a only through a shared oscillation, plus a "
                                   "slow private wobble of its own. 'private-dynamics': b also carries a private "
                                   "non-linear oscillator that a never sees, so only b's own frames around a gap "
                                   "tell how it goes on there (impute it through a gap: benchmarks/imputation.py "
                                   "--gap).")
    p.add_argument("--dataset", choices=["shared-cause", "private-dynamics"], default="shared-cause",
                   help="which generator (default: shared-cause)")
    p.add_argument("--frames", type=at_least(8), default=50, help="frames per sequence (default: 50)")
    p.add_argument("--out-dir", required=True, help="folder for train.npz and test.npz")
    add_common(p, device=False)
    p.set_defaults(func=cmd_export_multimodal)

    p = sub.add_parser("export-physionet", help="write train.npz / test.npz imputation files from PhysioNet records",
                       description="Windows of the real ICU records in multimodal_physionet_wfdb (a103l: ECG II+V "
                                   "and PLETH; mixedsignals: ECG II+III+V, ABP, PLETH, respiration), every channel "
                                   "decimated to ~62.5 Hz, 4 samples per frame, robustly normalised on the train "
                                   "part; train = first 70 %% of the record, test = the rest. Missing samples "
                                   "(NaN in the record) become mask_<sensor> = 0.")
    p.add_argument("--data", required=True, help="folder holding multimodal_physionet_wfdb/")
    p.add_argument("--record", choices=["a103l", "mixedsignals"], default="mixedsignals",
                   help="which record (default: mixedsignals, four sensors)")
    p.add_argument("--frames", type=int, default=64, help="frames per window (default: 64 = 4.1 s)")
    p.add_argument("--sensors", help="comma-separated sensors (ecg, abp, pleth, resp) or single channels, each a "
                                     "sensor of its own (II, III, V, ...), e.g. II,V for lead V from lead II "
                                     "(default: the record's sensors)")
    p.add_argument("--out-dir", required=True, help="folder for train.npz and test.npz")
    add_common(p, device=False)
    p.set_defaults(func=cmd_export_physionet)

    p = sub.add_parser("export-av-speech", help="write the semi-synthetic audio-visual speech set for impute",
                       description="Two sensors at 62.5 frames/s: audio = 32 log mel-band energies of REAL clean "
                                   "speech (LibriSpeech; train and test speakers differ), mouth = a GENERATED mouth "
                                   "opening drawn from the speech envelope with lag, jitter and non-speech motion; "
                                   "frames under a simulated camera occlusion are missing (mask_mouth = 0).")
    p.add_argument("--data", required=True, help="folder holding speech_librispeech_resemblyzer/")
    p.add_argument("--frames", type=int, default=100, help="frames per sequence (default: 100 = 1.6 s)")
    p.add_argument("--out-dir", required=True, help="folder for train.npz and test.npz")
    add_common(p, device=False)
    p.set_defaults(func=cmd_export_av_speech)

    p = sub.add_parser("impute", help="fill in a missing sensor: train on TRAIN.npz, impute --target on TEST.npz",
                       description="Multimodal imputation (Guo 2019, sec. 5). Files: x_<name> (N, T, D) per "
                                   "sensor, optional mask_<name> (N, T) (1 = observed; NaN frames count as "
                                   "missing). Trains on TRAIN, then imputes sensor --target on TEST from the other "
                                   "sensors, ignoring TEST's own x_<target>, and writes x_<target> (posterior "
                                   "predictive mean) and std_<target>. The ridge models read the other sensors k "
                                   "frames ahead (offline); the others filter: frame t uses frames up to t. "
                                   "Scores against TEST's x_<target> when present, and draws sequence 0.")
    p.add_argument("--train", required=True, help="training file (.npz)")
    p.add_argument("--test", required=True, help="file to impute (.npz)")
    p.add_argument("--target", required=True, help="the sensor to impute")
    p.add_argument("--model", default="ridge+mvrnn",
                   choices=["ridge+mvrnn", "ridge+lds", "mvrnn", "concat", "poe", "unimodal", "hmm", "lds", "ridge"],
                   help="ridge+mvrnn (default: ridge regression, plus an MVRNN of its residual given the other "
                        "sensors), ridge+lds (the same with a linear-Gaussian residual), mvrnn (shared + private "
                        "latents, filtering guide: the paper's model), concat (one latent: VRNN on all sensors), poe "
                        "(one latent, product-of-experts guide), unimodal (the target's own VRNN prior), hmm "
                        "(multimodal HMM, exact), lds (multimodal linear-Gaussian, exact), ridge (linear regression "
                        "on the other sensors' frames t-k .. t+k, k chosen on held-out training windows)")
    add_train_and_write(p, "x_<target>, std_<target>")
    p.set_defaults(func=cmd_impute)
