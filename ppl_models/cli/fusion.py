"""The sensor-fusion commands: ``export-fusion`` and ``fuse``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ppl_models.cli.common import add_common, add_train_and_write, check_same_sensors


FUSION_DATASETS = ("synthetic", "speech-activity", "beats")
DEFAULT_MODEL = "mam+evidence+marks"  # fuse --model


def fusion_splits(dataset: str, data_root: str | None, noise: str, corrupt: str | None, seed: int,
                  record: str = "a103l", sensors: str = "ecg+pleth", augment_noise: bool = True):
    """(train, test) FusionData for ``export-fusion``, each with its marks of failure (``corrupted_<sensor>``).

    The training marks are what the builder injected or knows (the beats' synthetic failures, the generated
    video's occlusions); for the speech audio, whose builder marks every frame with more noise than speech
    power (every pause among them), only the frames labelled speech: in a pause an audio that hears "no speech"
    has not failed."""
    from dataclasses import replace

    if dataset == "synthetic":
        from ppl_models.data.synthetic.fusion import synthetic_fusion

        train, train_corrupted = synthetic_fusion(256, 100, seed=seed)
        test, corrupted = synthetic_fusion(64, 100, seed=seed + 1)
        return replace(train, failing={"sharp": train_corrupted}), replace(test, failing={"sharp": corrupted})
    if data_root is None:
        raise ValueError(f"--dataset {dataset} reads real recordings: give their folder with --data")
    if dataset == "speech-activity":
        from ppl_models.datasets.speech_activity import build_speech_activity

        train, train_meta = build_speech_activity(data_root, "train", noise, seed=seed, augment_noise=augment_noise)
        test, meta = build_speech_activity(data_root, "test", noise, seed=seed)
        train_meta["corrupted_audio"] = train_meta["corrupted_audio"] & (train.y > 0.5)
    elif dataset == "beats":
        from ppl_models.datasets.physio_beats import build_beat_detection

        path = Path(data_root) / "multimodal_physionet_wfdb" / f"{record}.npz"
        train, train_meta = build_beat_detection(path, "train", seed=seed, sensors=sensors)
        test, meta = build_beat_detection(path, "test", corrupt, seed=seed, sensors=sensors)
    else:
        raise ValueError(f"--dataset must be one of {', '.join(FUSION_DATASETS)}, got {dataset!r}")

    def marks(m: dict) -> dict:
        return {k[len("corrupted_"):]: v for k, v in m.items() if k.startswith("corrupted_")}

    return replace(train, failing=marks(train_meta) or None), replace(test, failing=marks(meta) or None)


def cmd_export_fusion(args) -> int:
    from ppl_models.data.fusion_files import save_fusion

    train, test = fusion_splits(args.dataset, args.data, args.noise, args.corrupt, args.seed,
                                args.record, args.sensors, args.noise_augmentation)
    out = Path(args.out_dir)
    save_fusion(out / "train.npz", train)
    save_fusion(out / "test.npz", test)
    for split, data in (("train", train), ("test", test)):
        widths = ", ".join(f"{k} {v.shape[-1]}" for k, v in data.sensors.items())
        print(f"{out / (split + '.npz')}: {data.shape[0]} sequences x {data.shape[1]} frames, sensors ({widths}), "
              f"label rate {data.y.mean():.2f}")
    return 0


def cmd_fuse(args) -> int:
    import pyro

    from ppl_models.data.fusion_files import load_fusion, save_fusion
    from ppl_models.infer import resolve_device
    from ppl_models.multimodal.fusion import binary_scores, build_model, expert_predictions, fit, predict
    from ppl_models.plots import plot_fusion

    if args.epochs < 1:
        raise ValueError(f"--epochs must be >= 1, got {args.epochs}")
    device = resolve_device(args.device)
    train, test = load_fusion(args.train, require_labels=True), load_fusion(args.test)
    check_same_sensors(train, test, args.train, args.test)
    for path, data in ((args.train, train), (args.test, test)):
        if not data.complete:
            raise ValueError(f"{path}: has missing frames (NaN or mask_<name> = 0); fuse needs every sensor in every "
                             "frame ('ppl-models impute' fills gaps)")
    pyro.clear_param_store()  # a fresh model: no parameters left from an earlier run in this process
    pyro.set_rng_seed(args.seed)
    model = build_model(args.model, train, hidden=args.hidden, colearn=args.colearn, expert_weight=args.expert_weight,
                        encoder=args.encoder, gate_sees_experts=args.gate_sees_experts)
    fit(model, train, epochs=args.epochs, device=device, seed=args.seed, progress=not args.no_progress,
        stack=args.stack)
    p, attention = predict(model, test, device)
    save_fusion(args.out, p=p.astype(np.float32), attention=attention.astype(np.float32),
                sensors=np.array(test.names))
    mean_attention = ", ".join(f"{n} {a:.2f}" for n, a in zip(test.names, attention.mean((0, 1))))
    print(f"{args.model} on {args.test}: wrote p {p.shape} and attention {attention.shape} to {args.out} "
          f"(mean attention: {mean_attention})")
    if test.y is not None:
        scores = binary_scores(test.y, p)
        print(f"accuracy {scores['accuracy']:.4f}  F1 {scores['f1']:.4f}")
        corrupted = {k: v[0] for k, v in test.failing_frames().items()}
        experts = expert_predictions(model, test.subset(slice(0, 1)), device)[0]
        plot = Path(args.plot) if args.plot else Path(args.out).with_suffix(".png")
        plot_fusion(test.y[0], p[0], attention[0], test.names, plot,
                    experts=experts if experts.shape[-1] == len(test.names) else None, corrupted=corrupted,
                    title=f"{args.model}: test sequence 0")
        print(f"figure: {plot}")
    return 0


def add_parsers(sub) -> None:
    """Add export-fusion and fuse."""
    p = sub.add_parser("export-fusion", help="write train.npz / test.npz sensor-fusion files",
                       description="Build a sensor-fusion data set in the fuse file contract (x_<name> (N, T, D) "
                                   "per sensor, y (N, T) labels, corrupted_<name> (N, T) marks "
                                   "of where a sensor fails: the training file's teach the +marks models' gates, the "
                                   "test file's score the gate). 'synthetic': three generated sensors, one failing in bursts (no data "
                                   "needed). 'speech-activity': real LibriSpeech speech and real noise with a "
                                   "generated mouth video (audio, image, flow). 'beats': the real ECG + PLETH (or, "
                                   "with --sensors leads, ECG lead II and lead V) of a PhysioNet record, heart-beat "
                                   "labels, one sensor failing at test time.")
    p.add_argument("--dataset", choices=FUSION_DATASETS, default="synthetic", help="which data (default: synthetic)")
    p.add_argument("--data", help="folder holding the real recordings (speech_librispeech_resemblyzer, noises, "
                                  "multimodal_physionet_wfdb)")
    p.add_argument("--noise", default="environment", choices=["environment", "unseen-environment", "babble", "clean"],
                   help="speech-activity: real noise at -5 dB (test from unheard stretches of the training "
                        "recordings; 'unseen-environment': from recordings of other kinds), babble of three "
                        "speakers at 0 dB, or none (default: environment)")
    p.add_argument("--no-noise-augmentation", dest="noise_augmentation", action="store_false",
                   help="speech-activity: train only on the condition's own noise recordings (by default half the "
                        "training sequences get one of the 149 UrbanSound8K clips instead; no test noise is among "
                        "them)")
    p.add_argument("--corrupt", choices=["ecg", "pleth", "ii", "v"],
                   help="beats: the sensor that fails at test time (ecg or pleth; ii or v with --sensors leads)")
    p.add_argument("--record", choices=["a103l", "mixedsignals"], default="a103l",
                   help="beats: which PhysioNet record (default: a103l)")
    p.add_argument("--sensors", choices=["ecg+pleth", "leads"], default="ecg+pleth",
                   help="beats: the ECG (both leads) and PLETH as two sensors, or lead II and lead V as two sensors "
                        "(default: ecg+pleth)")
    p.add_argument("--out-dir", required=True, help="folder for train.npz and test.npz")
    add_common(p, device=False)
    p.set_defaults(func=cmd_export_fusion)

    p = sub.add_parser("fuse", help="sensor fusion: train an attention mixture on TRAIN.npz, predict TEST.npz",
                       description="Frame-wise binary decisions from several sensors with a mixture of per-sensor "
                                   "experts whose expert index is enumerated exactly (Guo 2019, sec. 4). Files: "
                                   "x_<name> (N, T, D) per sensor, y (N, T) in {0, 1} and optionally group (N,), "
                                   "the recording of each sequence, kept whole by held-out splits. Writes p (N, T) = "
                                   "P(y=1) and attention (N, T, M), the gate's weights with sensors in sorted name "
                                   "order, and a figure of test sequence 0. Every output at frame t uses inputs up "
                                   "to t.")
    p.add_argument("--train", required=True, help="training file (.npz with labels y)")
    p.add_argument("--test", required=True, help="file to predict (.npz; scored if it holds y)")
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help="mam+evidence+marks (default: the Markov attention mixture whose gate also reads each "
                        "sensor's causal running statistics, evidence of a failing sensor, and learns from the "
                        "training file's corrupted_<name> marks where a sensor fails; without marks it trains as "
                        "mam+evidence), mam+evidence (the same without the marks), cam (conditional attention "
                        "mixture, the paper's eq. 17), mam (Markov attention mixture: recurrent), ram (recurrent "
                        "attention mixture: causal dilated convolutions), cam+evidence, ram+evidence, mam+evidence+snr "
                        "(opt-in: also each sensor's minimum-statistics signal-to-floor estimate), mme (Markov "
                        "mixture of experts), concat (one network on all sensors), expert:NAME (sensor NAME alone)")
    p.add_argument("--colearn", type=float, default=0.0, metavar="LAMBDA",
                   help="co-learning weight pulling the experts' first hidden units together (default: 0)")
    p.add_argument("--expert-weight", type=float, default=1.0, metavar="KAPPA",
                   help="weight of each expert's own log-likelihood, which keeps the experts classifiers of their "
                        "sensors; 0 = pure marginal likelihood, where experts may degenerate (default: 1)")
    p.add_argument("--encoder", choices=["frame", "recurrent", "conv"],
                   help="memory of the concat and expert:NAME baselines, to match mam (recurrent) or ram (conv) "
                        "(default: frame)")
    p.add_argument("--stack", type=int, default=0, metavar="K",
                   help="stacked fitting (cam, mam, ram) by K-fold cross-fitting: refit the gate on each training "
                        "sequence's expert outputs from a model trained on the other folds (whole groups), so the "
                        "attention follows each expert's accuracy on data it never saw; costs K + 1 fits, e.g. 3 "
                        "(default: 0, off)")
    p.add_argument("--gate-sees-experts", action="store_true",
                   help="the gate (cam, mam, ram) reads the experts' outputs besides the sensors, so it can weigh "
                        "each expert by its own confidence; use with --stack, whose out-of-fold outputs show the "
                        "gate how confident an expert is on data it never saw")
    add_train_and_write(p, "p, attention")
    p.set_defaults(func=cmd_fuse)
