"""The ``ppl-models`` command line: one entry point, one sub-command per job.

Run ``ppl-models <command> --help`` for the options of each command.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from pathlib import Path

import numpy as np

import ppl_models

log = logging.getLogger("ppl_models")


def _common(parser: argparse.ArgumentParser, device: bool = True) -> None:
    if device:
        parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every epoch")


def _train_and_write(parser: argparse.ArgumentParser, outputs: str) -> None:
    """The options of the commands that train on TRAIN.npz and write what they predict for TEST.npz."""
    parser.add_argument("--epochs", type=int, default=60, help="training epochs, early-stopped (default: 60)")
    parser.add_argument("--hidden", type=int, default=32, help="hidden units per network (default: 32)")
    parser.add_argument("--out", required=True, help=f"output .npz ({outputs})")
    parser.add_argument("--plot", help="figure of test sequence 0 (default: OUT with .png)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    _common(parser)


# ---------------------------------------------------------------------------------------------- list
def cmd_list(args) -> int:
    from ppl_models.catalog import CATALOG

    width = max(len(e.name) for e in CATALOG)
    for e in CATALOG:
        print(f"{e.name:<{width}}  [{e.family}]  {e.summary}  (guides: {', '.join(e.guides)})")
    from ppl_models.dvae.train import pretrained_names

    print(f"shipped priors (--prior NAME): {', '.join(pretrained_names()) or 'none'}")
    return 0


# ---------------------------------------------------------------------------------------------- demo
def cmd_demo(args) -> int:
    from ppl_models.demo import run
    from ppl_models.infer import resolve_device

    summary = run(args.out, resolve_device(args.device), seed=args.seed, progress=not args.no_progress)
    noisy, gmm = summary["noisy_vs_clean"], summary["gmm"]
    print(f"demo written to {args.out}/ in {summary['seconds']} s:")
    print(f"  tracking window: {summary['tracking_window']}")
    cross = summary["crossing"]
    print(f"  tracks crossing under occlusion (tracking_vs_kalman.png): track's default MOTA "
          f"{cross['default']['mota']:.3f}, IDS {cross['default']['num_switches']:.0f}; Kalman + Hungarian MOTA "
          f"{cross['kalman_hungarian']['mota']:.3f}, IDS {cross['kalman_hungarian']['num_switches']:.0f}")
    print(f"  speech + pink noise 0 dB vs clean: SI-SDR {noisy['si_sdr']:.2f} dB, PESQ-WB {noisy['pesq']:.2f},"
          f" ESTOI {noisy['estoi']:.3f}")
    print(f"  enumerated GMM: MAP assignment accuracy {gmm['map_accuracy']:.3f}, "
          f"largest error on a mean {gmm['max_mean_error']:.3f}")
    rs = summary["dvae"]["rvae_resynthesis"]
    print(f"  small RVAE speech prior, resynthesis of unseen speech-like audio: SI-SDR {rs['si_sdr']:.2f} dB")
    fusion = summary["fusion"]
    single = max(v for k, v in fusion["accuracy"].items() if k.startswith("expert:"))
    print(f"  sensor fusion: attention mixture accuracy {fusion['accuracy']['cam']:.3f} (best single sensor "
          f"{single:.3f}); attention on the failing sensor {fusion['attention_on_sharp_failing']:.2f} while it "
          f"fails, {fusion['attention_on_sharp_working']:.2f} otherwise")
    imputed = summary["imputation"]["rmse_b_from_a"]
    print(f"  multimodal VRNN: sensor b imputed from sensor a, RMSE {imputed['mvrnn']:.3f} (b's own prior "
          f"{imputed['unimodal']:.3f})")
    enh = summary["enhancement"]
    print(f"  unsupervised enhancement (U-NA, LV): SI-SDR {enh['noisy']['si_sdr']:.2f} -> "
          f"{enh['enhanced']['si_sdr']:.2f} dB, PESQ-WB {enh['noisy']['pesq']:.2f} -> {enh['enhanced']['pesq']:.2f}")
    return 0


# ------------------------------------------------------------------------------- train-prior, resynth
def _speeds(text: str) -> tuple[float, ...]:
    """--speed-perturb: comma-separated factors in [0.5, 2]."""
    try:
        speeds = tuple(float(a) for a in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers such as 0.9,1.0,1.1, got {text!r}")
    if not all(0.5 <= a <= 2.0 for a in speeds):
        raise argparse.ArgumentTypeError(f"speed factors must lie in [0.5, 2], got {text!r}")
    return speeds


def _at_least(low: int):
    """An argparse type: an integer >= low."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value
    return parse


def _positive(text: str) -> float:
    """An argparse type: a number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def cmd_train_prior(args) -> int:
    from ppl_models.dvae.train import train_prior
    from ppl_models.infer import resolve_device

    dvae, history = train_prior(args.kind, args.model, args.out, data=args.data, epochs=args.epochs,
                                batch_size=args.batch, lr=args.lr, warmup_epochs=args.warmup, beta=args.beta,
                                frames=args.frames,
                                device=resolve_device(args.device), resume=args.resume, seed=args.seed,
                                scheduled_sampling=args.scheduled_sampling, patience=args.patience, size=args.size,
                                segment_hop=args.segment_hop, speeds=args.speed_perturb, init=args.init,
                                cuda_graphs=not args.no_cuda_graphs, time_budget=args.time_budget,
                                progress=not args.no_progress,
                                **{key: value for key, value in (("hidden", args.hidden), ("z_dim", args.z_dim),
                                                                 ("decoder_layers", args.decoder_layers),
                                                                 ("velocity", args.velocity or None))
                                   if value is not None})
    val = f", validation {history.val_loss[-1]:.4g}" if history.val_loss else ""
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, one report
        print(f"{args.model} ({args.kind}) trained for {history.epochs} epochs: loss "
              f"{history.train_loss[-1]:.4g}{val}; checkpoint {args.out}")
    return 0


def cmd_export_prior(args) -> int:
    from ppl_models.dvae.train import export_prior

    out = export_prior(args.checkpoint, args.out)
    print(f"{args.checkpoint} -> {out} ({out.stat().st_size / 1e6:.2f} MB)")
    return 0


def cmd_import_prior(args) -> int:
    from ppl_models.dvae.reference import import_prior

    dvae = import_prior(args.source, args.checkpoint, args.config, out=args.out)
    size = sum(p.numel() for p in dvae.parameters())
    kind = "speech" if dvae.likelihood.kind == "power" else "trajectory"
    print(f"{args.checkpoint} -> {args.out}: {type(dvae).__name__.lower()}"
          f"{'' if getattr(dvae, 'causal', True) else '-noncausal'} {kind} prior, z {dvae.z_dim}, "
          f"{size / 1e6:.2f} M parameters; use it as --prior {args.out}")
    return 0


def cmd_resynth(args) -> int:
    from ppl_models.data.audio import list_audio_files, load_audio, write_audio
    from ppl_models.dvae.resynthesis import resynthesize
    from ppl_models.dvae.train import load_prior
    from ppl_models.infer import resolve_device

    device = resolve_device(args.device)
    dvae = load_prior(args.prior, device)
    source, out = Path(args.input), Path(args.out)
    jobs = ([(f, out / f.relative_to(source).with_suffix(".wav")) for f in list_audio_files(source)]
            if source.is_dir() else [(source, out)])
    for src, dst in jobs:
        write_audio(dst, resynthesize(dvae, load_audio(src), device).numpy())
        print(f"{src} -> {dst}")
    return 0


# --------------------------------------------------------------------------------------- score-audio
def _pair_files(ref: Path, est: Path, mixture: Path | None):
    """[(name, ref_file, est_file, mixture_file | None)], matching folders' files by name without suffix."""
    from ppl_models.data.audio import list_audio_files

    if ref.is_file():
        if est.is_dir() or (mixture is not None and mixture.is_dir()):
            raise ValueError("--ref is a file, so --est and --mixture must be files too")
        return [(ref.stem, ref, est, mixture)]
    if not ref.is_dir():
        raise FileNotFoundError(f"--ref {ref}: no such file or folder")
    if not est.is_dir():
        raise ValueError(f"--ref {ref} is a folder, so --est must be a folder too (got {est})")
    by_name = {}
    for folder in (est, mixture):
        by_name[folder] = {p.stem: p for p in list_audio_files(folder)} if folder is not None else {}
    pairs = []
    for r in list_audio_files(ref):
        if r.stem not in by_name[est]:
            log.warning("no estimate named %s in %s, skipped", r.stem, est)
            continue
        if mixture is not None and r.stem not in by_name[mixture]:
            raise ValueError(f"--mixture {mixture}: no file named {r.stem}")
        pairs.append((r.stem, r, by_name[est][r.stem], by_name[mixture].get(r.stem) if mixture else None))
    if not pairs:
        raise ValueError(f"no file of --est {est} matches a file of --ref {ref} by name")
    return pairs


def cmd_score_audio(args) -> int:
    from ppl_models.data.audio import load_audio
    from tqdm.auto import tqdm

    from ppl_models.metrics.audio import pesq_score, score

    pairs = _pair_files(Path(args.ref), Path(args.est), Path(args.mixture) if args.mixture else None)
    rows = {}
    for name, ref_path, est_path, mix_path in tqdm(pairs, desc="scoring", unit="file", disable=len(pairs) < 3):
        ref, est = load_audio(ref_path), load_audio(est_path)
        row = score(ref, est)
        if args.narrow_band:
            row["pesq_nb"] = pesq_score(ref, est, mode="nb")
        if mix_path is not None:
            mix = load_audio(mix_path)
            base = score(ref, mix)
            if args.narrow_band:
                base["pesq_nb"] = pesq_score(ref, mix, mode="nb")
            row.update({f"delta_{k}": row[k] - v for k, v in base.items()})
        rows[name] = row
    columns = list(next(iter(rows.values())))
    mean = {c: float(np.nanmean([r[c] for r in rows.values()])) for c in columns}
    if args.json:
        print(json.dumps({"files": rows, "mean": mean}, indent=2))
        return 0
    _print_table(rows | ({"MEAN": mean} if len(rows) > 1 else {}), columns)
    return 0


def _print_table(rows: dict[str, dict], columns: list[str], headers: dict[str, str] | None = None) -> None:
    headers = headers or {}
    width = max(len(n) for n in rows)
    print(f"{'':<{width}}  " + "  ".join(f"{headers.get(c, c):>9}" for c in columns))
    for name, row in rows.items():
        cells = []
        for c in columns:
            v = row[c]
            cells.append(f"{int(v):>9d}" if float(v).is_integer() and abs(v) > 1.5 and not math.isnan(v)
                         else f"{v:>9.4f}")
        print(f"{name:<{width}}  " + "  ".join(cells))


# ----------------------------------------------------------------------------------------- score-mot
def _mot_files(path: Path, role: str) -> dict[str, Path]:
    """{sequence: file} for a MOTChallenge file or folder (SEQ/gt/gt.txt, SEQ/gt.txt or SEQ.txt)."""
    if path.is_file():
        return {path.stem if path.stem not in ("gt", "test", "det") else path.parent.name: path}
    if not path.is_dir():
        raise FileNotFoundError(f"--{role} {path}: no such file or folder")
    found = {}
    for seq in sorted(p for p in path.iterdir() if p.is_dir()):
        names = ["gt/gt.txt", "gt.txt"] if role == "gt" else ["test.txt", "res.txt", "results.txt"]
        hit = next((seq / n for n in names if (seq / n).is_file()), None)
        if hit is not None:
            found[seq.name] = hit
    for txt in sorted(path.glob("*.txt")):
        found.setdefault(txt.stem, txt)
    if not found:
        raise ValueError(f"--{role} {path}: no MOTChallenge files (SEQ/gt/gt.txt, SEQ/gt.txt or SEQ.txt)")
    return found


def cmd_score_mot(args) -> int:
    from ppl_models.data.mot import read_mot
    from ppl_models.metrics.tracking import SHORT_NAMES, summarize

    gt_files, res_files = _mot_files(Path(args.gt), "gt"), _mot_files(Path(args.res), "res")
    if len(gt_files) == 1 and len(res_files) == 1:
        res_files = {next(iter(gt_files)): next(iter(res_files.values()))}
    missing = sorted(set(gt_files) - set(res_files))
    if missing and len(missing) == len(gt_files):
        raise ValueError(f"--res {args.res}: no results for any sequence of --gt ({', '.join(missing)})")
    for name in missing:
        log.warning("no results for sequence %s: skipped", name)
    pairs = {s: (read_mot(gt_files[s]), read_mot(res_files[s])) for s in gt_files if s in res_files}
    table = summarize(pairs, iou_threshold=args.iou)
    if args.json:
        print(json.dumps(table, indent=2))
        return 0
    columns = ["mota", "motp", "idf1", "num_switches", "num_false_positives", "num_misses", "mostly_tracked",
               "mostly_lost"]
    _print_table(table, columns, SHORT_NAMES)
    return 0


# ---------------------------------------------------------------------------------------------- track
def _image_size(args, detections: Path, records) -> tuple[float, float]:
    """--image-size, else seqinfo.ini beside the file (or its parent), else the detections' extent."""
    from ppl_models.data.mot import read_seqinfo

    if args.image_size:
        return tuple(args.image_size)
    for folder in (detections.parent, detections.parent.parent):
        info = read_seqinfo(folder)
        if "imWidth" in info and "imHeight" in info:
            return float(info["imWidth"]), float(info["imHeight"])
    extent = (records.box[:, :2] + records.box[:, 2:]).max(0)
    log.warning("%s: no seqinfo.ini and no --image-size: using the detections' extent %.0f x %.0f",
                detections, *extent)
    return float(extent[0]), float(extent[1])


def cmd_track(args) -> int:
    import pyro

    from ppl_models.data.mot import read_mot, write_mot
    from ppl_models.dvae.train import load_prior
    from ppl_models.infer import resolve_device
    from ppl_models.mixdvae import MixDVAE
    from ppl_models.mixdvae.motion import CONSTANT_VELOCITY, ConstantVelocityPrior
    from ppl_models.mixdvae.tracking import track_detections

    if args.num_sources < 1 or args.window < 2 or args.iterations < 1 or args.init_iterations < 0 or args.noise <= 0:
        raise ValueError("--num-sources must be >= 1, --window >= 2, --iterations >= 1, --init-iterations >= 0 "
                         "and --noise > 0")
    device = resolve_device(args.device)
    detections = Path(args.detections)
    records = read_mot(detections)
    records = records.select(records.score >= args.min_score)
    if len(records) == 0:
        raise ValueError(f"--detections {detections}: no detection with confidence >= {args.min_score}")
    size = _image_size(args, detections, records)
    prior = ConstantVelocityPrior() if args.prior == CONSTANT_VELOCITY else load_prior(args.prior, device)
    pyro.set_rng_seed(args.seed)
    result = track_detections(records, args.num_sources, size,
                              lambda: MixDVAE(prior, args.num_sources, clutter=args.clutter, noise=args.noise,
                                              learn_noise=args.learn_noise, fine_tune_encoder=args.fine_tune,
                                              association=args.association, predictive=not args.no_predictive),
                              start=args.start, accel=ConstantVelocityPrior().accel, noise=args.noise,
                              guide=args.guide, iterations=args.iterations, window=args.window,
                              init_iterations=args.init_iterations, device=device, progress=not args.no_progress,
                              frame=prior.box_frame)
    write_mot(args.out, result)
    print(f"{detections}: {len(np.unique(records.frame))} frames, {args.num_sources} sources "
          f"({'with' if args.clutter else 'no'} clutter class), prior {args.prior}, {args.association} association, "
          f"guide {args.guide} -> {args.out}")
    return 0


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

    from ppl_models.cli_enhancement import finish, padded, read_inputs, report_failure
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


# --------------------------------------------------------------------------------------------- fusion
FUSION_DATASETS = ("synthetic", "speech-activity", "beats")


def fusion_splits(dataset: str, data_root: str | None, noise: str, corrupt: str | None, seed: int):
    """(train, test) FusionData and the test split's ``corrupted_<sensor>`` masks for ``export-fusion``."""
    if dataset == "synthetic":
        from ppl_models.data.synthetic.fusion import synthetic_fusion

        train, _ = synthetic_fusion(256, 100, seed=seed)
        test, corrupted = synthetic_fusion(64, 100, seed=seed + 1)
        return train, test, {"corrupted_sharp": corrupted}
    if data_root is None:
        raise ValueError(f"--dataset {dataset} reads real recordings: give their folder with --data")
    if dataset == "speech-activity":
        from ppl_models.data.speech_activity import build_speech_activity

        train, _ = build_speech_activity(data_root, "train", noise, seed=seed)
        test, meta = build_speech_activity(data_root, "test", noise, seed=seed)
    elif dataset == "beats":
        from ppl_models.data.physio_beats import build_beat_detection

        record = Path(data_root) / "multimodal_physionet_wfdb" / "a103l.npz"
        train, _ = build_beat_detection(record, "train", seed=seed)
        test, meta = build_beat_detection(record, "test", corrupt, seed=seed)
    else:
        raise ValueError(f"--dataset must be one of {', '.join(FUSION_DATASETS)}, got {dataset!r}")
    return train, test, {k: v for k, v in meta.items() if k.startswith("corrupted_")}


def cmd_export_fusion(args) -> int:
    from ppl_models.data.fusion_files import save_fusion

    train, test, corrupted = fusion_splits(args.dataset, args.data, args.noise, args.corrupt, args.seed)
    out = Path(args.out_dir)
    save_fusion(out / "train.npz", train)
    save_fusion(out / "test.npz", test, **corrupted)
    for split, data in (("train", train), ("test", test)):
        widths = ", ".join(f"{k} {v.shape[-1]}" for k, v in data.sensors.items())
        print(f"{out / (split + '.npz')}: {data.shape[0]} sequences x {data.shape[1]} frames, sensors ({widths}), "
              f"label rate {data.y.mean():.2f}")
    return 0


def check_same_sensors(train, test, train_path, test_path) -> None:
    """The test file must hold the training file's sensors, at the same widths."""
    if train.names != test.names:
        raise ValueError(f"{test_path}: sensors {test.names} differ from {train_path}'s {train.names}")
    for name in train.names:
        if train.sensors[name].shape[-1] != test.sensors[name].shape[-1]:
            raise ValueError(f"{test_path}: x_{name} has width {test.sensors[name].shape[-1]}, "
                             f"{train_path} has {train.sensors[name].shape[-1]}")


def _write_splits(out_dir: str, train, test, frame_ms: float) -> None:
    """Save train.npz and test.npz in the multi-sensor contract and say what is in them."""
    from ppl_models.data.fusion_files import save_fusion

    out = Path(out_dir)
    for split, data in (("train", train), ("test", test)):
        save_fusion(out / f"{split}.npz", data)
        widths = ", ".join(f"{k} {v.shape[-1]}" for k, v in data.sensors.items())
        missing = ", ".join(f"{k} {1 - data.mask(k).mean():.1%}" for k in data.names)
        print(f"{out / (split + '.npz')}: {data.shape[0]} windows x {data.shape[1]} frames of {frame_ms:.0f} ms, "
              f"sensors ({widths}), missing frames ({missing})")


def cmd_export_physionet(args) -> int:
    from ppl_models.data.physionet import build_physionet

    sensors = [s for s in args.sensors.split(",") if s] if args.sensors else None
    train, test, meta = build_physionet(args.data, args.record, args.frames, sensors)
    _write_splits(args.out_dir, train, test, 1000 / meta["frame_rate_hz"])
    return 0


def cmd_export_av_speech(args) -> int:
    from ppl_models.data.av_speech import build_av_speech

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
        with np.load(args.test) as f:
            corrupted = {k[len("corrupted_"):]: f[k][0] for k in f.files if k.startswith("corrupted_")}
        experts = expert_predictions(model, test.subset(slice(0, 1)), device)[0]
        plot = Path(args.plot) if args.plot else Path(args.out).with_suffix(".png")
        plot_fusion(test.y[0], p[0], attention[0], test.names, plot,
                    experts=experts if experts.shape[-1] == len(test.names) else None, corrupted=corrupted,
                    title=f"{args.model}: test sequence 0")
        print(f"figure: {plot}")
    return 0


# ---------------------------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ppl-models", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Run 'ppl-models COMMAND --help' for the options of a command.")
    parser.add_argument("--version", action="version", version=f"ppl_models {ppl_models.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("list", help="the systems and models available, one line each")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("demo", help="the main job on the embedded synthetic data (a few minutes on a CPU)",
                       description="Generate the synthetic data sets, draw them, and fit the enumerated Gaussian "
                                   "mixture by SVI. Figures, audio and summary.json go to --out.")
    p.add_argument("--out", default="demo_output", help="output folder (default: demo_output)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    _common(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("train-prior", help="pre-train a DVAE sequence prior (trajectories or speech)",
                       description="Train a DVAE by SVI with a linear KL warm-up, writing a checkpoint every epoch "
                                   "(atomically; --resume continues an interrupted run). Data-parallel on K "
                                   "processes: torchrun --nproc_per_node=K -m ppl_models train-prior ...")
    p.add_argument("--kind", choices=["trajectory", "speech"], required=True, help="what the prior models")
    p.add_argument("--model", required=True,
                   help="vae, dkf, vrnn, srnn, rvae, rvae-noncausal, or the Transformer DVAEs with a sequence "
                        "latent hit-dvae and light-dvae (--hidden: their width d)")
    p.add_argument("--data", default="synthetic",
                   help="'synthetic', or for speech a folder of utterances (several: comma-separated), split by "
                        "speaker: each corpus holds out a tenth of its speakers for validation and a tenth for "
                        "testing, never trained on (benchmarks/resynthesis.py --held-out-of)")
    p.add_argument("--out", required=True, help="checkpoint file to write")
    p.add_argument("--epochs", type=int, default=50, help="training epochs (default: 50)")
    p.add_argument("--batch", "--batch-size", type=_at_least(1), default=32, metavar="N",
                   help="sequences per step (default: 32; the reference recipe: 128)")
    p.add_argument("--frames", type=_at_least(2), default=None, metavar="T",
                   help="frames per training sequence (default: 50 for speech, as in the reference recipe; "
                        "60 for trajectories)")
    p.add_argument("--lr", type=float, default=1e-3, help="ClippedAdam learning rate (default: 1e-3)")
    p.add_argument("--beta", type=_positive, default=None, metavar="B",
                   help="KL weight: the scale of the z terms of the ELBO, reached linearly over the --warmup "
                        "epochs (default: 0.01 for speech, the reference recipe; 1 for trajectories). Below 1 "
                        "z carries more of x: sharper resynthesis, at the cost of the prior's own samples")
    p.add_argument("--warmup", type=int, default=10, help="KL warm-up epochs (default: 10)")
    p.add_argument("--scheduled-sampling", type=float, default=0.0, metavar="P",
                   help="SRNN/VRNN: after the warm-up, ramp to probability P that the decoder reads its own "
                        "prediction as x_{t-1} (default: 0, teacher forcing only)")
    p.add_argument("--size", type=int, default=512, help="number of synthetic training sequences (default: 512)")
    p.add_argument("--segment-hop", type=int, default=None, metavar="FRAMES",
                   help="speech: start a training segment (--frames long) every FRAMES frames; shorter hops "
                        "overlap, augmenting a small corpus (default: --frames)")
    p.add_argument("--speed-perturb", type=_speeds, default=(1.0,), metavar="A,B,...",
                   help="speech: train on each utterance played at each of these speeds (e.g. 0.9,1.0,1.1: "
                        "pitch and formants move with the speed, so each speaker counts several times)")
    p.add_argument("--hidden", type=_at_least(1), default=None,
                   help="width of the models' MLP layers (default: the kind's preset, 128 for speech)")
    p.add_argument("--z-dim", type=_at_least(1), default=None, metavar="D",
                   help="latent size (default: the kind's preset, 4 for trajectories, 16 for speech)")
    p.add_argument("--decoder-layers", type=_at_least(0), default=None, metavar="N",
                   help="rvae: hidden layers between the decoder's LSTM and its output (default: 1; the reference: 0)")
    p.add_argument("--velocity", action="store_true",
                   help="srnn, trajectory: the recurrence also reads the last displacement of the box, not only "
                        "the box (better one-step prediction of real motion; see benchmarks/RESULTS.md)")
    p.add_argument("--patience", type=int, default=None,
                   help="stop after this many epochs without validation improvement, keeping the best")
    p.add_argument("--time-budget", type=_positive, default=None, metavar="SECONDS",
                   help="stop training before this many seconds are spent (data preparation not counted), "
                        "keeping the best validation epoch's weights, which export-prior writes")
    p.add_argument("--resume", action="store_true", help="continue from --out if it exists")
    p.add_argument("--init", metavar="PRIOR",
                   help="start from this trained prior (checkpoint or shipped name) with a fresh optimizer: train "
                        "it longer or fine-tune it on your data; it fixes the sizes")
    p.add_argument("--no-cuda-graphs", action="store_true",
                   help="on a GPU, run the guide's frame-by-frame sampling loop from Python instead of replaying it "
                        "from a recorded CUDA graph (same numbers, several times slower; for debugging)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    _common(p)
    p.set_defaults(func=cmd_train_prior)

    p = sub.add_parser("export-prior", help="strip a trained prior's checkpoint down to what using it needs",
                       description="Drop the optimizer state and the other resume-only entries of a train-prior "
                                   "checkpoint (the shipped priors are exported this way).")
    p.add_argument("checkpoint", help="a train-prior checkpoint")
    p.add_argument("--out", required=True, help="file to write")
    p.set_defaults(func=cmd_export_prior)

    p = sub.add_parser("import-prior", help="turn an authors' published DVAE prior into one of our checkpoints",
                       description="Read a pretrained prior of a reference implementation (a PyTorch state dict "
                                   "and the .ini config that describes its architecture), rebuild the same network "
                                   "from the zoo's DVAE classes and write our checkpoint, usable as --prior in "
                                   "resynth, enhance, separate and track. Supported: DVAE_SE's VAE, DKF, SRNN and "
                                   "non-causal RVAE; MixDVAE's SRNN priors (trajectories, speech, music). The "
                                   "imported networks read what the references read: the power of the "
                                   "peak-normalised signal, or boxes with y pointing down.")
    p.add_argument("--from", dest="source", choices=["dvae-se", "mixdvae"], required=True,
                   help="which reference implementation wrote the checkpoint (DVAE_SE or MixDVAE)")
    p.add_argument("--checkpoint", required=True, metavar="CKPT", help="the reference's .pt state dict")
    p.add_argument("--config", metavar="INI",
                   help="its config (default: config.ini beside a DVAE_SE checkpoint, cfg_dvae_single_X.ini "
                        "beside MixDVAE's model_X.pt)")
    p.add_argument("--out", required=True, metavar="OUT.pt", help="our checkpoint to write")
    p.set_defaults(func=cmd_import_prior)

    p = sub.add_parser("resynth", help="analysis-resynthesis of speech through a speech prior",
                       description="Encode and decode the power spectrogram with a speech prior and resynthesise "
                                   "with the input phase. IN and --out: files, or folders (same names).")
    p.add_argument("input", metavar="IN", help="a wav/flac file or a folder of them")
    p.add_argument("--prior", default="rvae-speech",
                   help="a speech-prior checkpoint (train-prior --kind speech) or a shipped prior's name "
                        "(default: rvae-speech, the reference's 16-D latent; rvae-speech-z64 is the better "
                        "resynthesiser of unseen speakers: 8.7 against 4.7 dB SI-SDR)")
    p.add_argument("--out", required=True, help="output wav, or output folder when IN is a folder")
    _common(p)
    p.set_defaults(func=cmd_resynth)

    p = sub.add_parser("score-audio", help="SI-SDR, RMSE, PESQ and ESTOI of estimates against references",
                       description="Score estimated audio against clean references (files, or folders whose "
                                   "files are matched by name). With --mixture, also print the improvement "
                                   "(delta_*) of the estimate over the unprocessed mixture. Audio is read as "
                                   "16 kHz mono (resampled and mixed down when needed).")
    p.add_argument("--ref", required=True, help="clean reference: a file or a folder")
    p.add_argument("--est", required=True, help="estimate: a file or a folder")
    p.add_argument("--mixture", help="the unprocessed noisy mixture: a file or a folder")
    p.add_argument("--narrow-band", action="store_true", help="also report narrow-band PESQ (P.862)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _common(p, device=False)
    p.set_defaults(func=cmd_score_audio)

    p = sub.add_parser("track", help="track N objects through a MOTChallenge detection file with MixDVAE",
                       description="Multi-object tracking with a mixture of N sources (MixDVAE, Lin et al., TMLR "
                                   "2023): each frame's detections are matched to the sources by exact "
                                   "enumeration, the sources follow a motion prior (constant velocity by default, "
                                   "or a pre-trained trajectory DVAE). Detections come in the "
                                   "MOTChallenge format (frame, id, x, y, w, h, conf, ...; id ignored, any order "
                                   "within a frame); the results file has one track id (1..N) per source.")
    p.add_argument("--detections", required=True, help="MOTChallenge detection file (det.txt)")
    p.add_argument("--num-sources", type=int, required=True, help="number of objects N to track")
    p.add_argument("--out", required=True, help="MOTChallenge results file to write")
    p.add_argument("--prior", default="constant-velocity",
                   help="source motion prior: constant-velocity (a Kalman filter's model, default) or a trajectory "
                        "DVAE: checkpoint or shipped name (srnn-trajectory). The paper's model: --prior "
                        "srnn-trajectory --association independent --no-predictive --start progressive --noise 0.05")
    p.add_argument("--association", default="exclusive", choices=["exclusive", "independent"],
                   help="exclusive: one matching per frame, no source takes two detections (default); independent: "
                        "each detection picks a source on its own (the paper's)")
    p.add_argument("--no-predictive", action="store_true",
                   help="assign detections against the sources' posterior, and let a DVAE predict from its "
                        "encoder's reconstruction, as the paper does (default: against their predictive)")
    p.add_argument("--guide", default="vem", choices=["vem", "svi", "sampled-w"],
                   help="vem: the paper's variational EM (default); svi: gradient on a mean-field q(s); "
                        "sampled-w: svi plus a sampled q(w) (score-function gradients, for comparison)")
    p.add_argument("--iterations", type=int, default=100, help="inference steps per window (default: 100)")
    p.add_argument("--window", type=int, default=60, help="frames per chunk of a long sequence (default: 60)")
    p.add_argument("--start", default="kalman", choices=["kalman", "progressive"],
                   help="kalman: start the VEM from a constant-velocity Kalman + Hungarian tracker's tracks "
                        "(default); progressive: refine static sources 30 frames at a time (the paper's)")
    p.add_argument("--init-iterations", type=int, default=20,
                   help="iterations per 30-frame piece of the progressive start; 0 starts the sources "
                        "static at the first detections (default: 20)")
    p.add_argument("--noise", type=float, default=0.1,
                   help="detection noise std relative to the box size (default: 0.1; the paper's: 0.05)")
    p.add_argument("--image-size", type=float, nargs=2, metavar=("W", "H"),
                   help="image width and height in pixels (default: seqinfo.ini next to the file)")
    p.add_argument("--min-score", type=float, default=-math.inf, help="drop detections below this confidence")
    p.add_argument("--clutter", action="store_true",
                   help="experimental: a class for detections of untracked objects (it still steals the "
                        "detections of poorly fitted sources; off by default)")
    p.add_argument("--learn-noise", action="store_true",
                   help="M-step on the detection noise (default: fixed at 5%% of the box size); without "
                        "--clutter, a detection far from every source inflates it: on MOT15 windows it hurts")
    p.add_argument("--fine-tune", action="store_true", help="fine-tune the DVAE encoder on each window")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    _common(p)
    p.set_defaults(func=cmd_track)

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
    _common(p)
    p.set_defaults(func=cmd_separate)

    from ppl_models.cli_enhancement import register as register_enhancement

    register_enhancement(sub, _common)

    p = sub.add_parser("export-fusion", help="write train.npz / test.npz sensor-fusion files",
                       description="Build a sensor-fusion data set in the fuse file contract (x_<name> (N, T, D) "
                                   "per sensor, y (N, T) labels; the test file also holds corrupted_<name> (N, T) "
                                   "masks). 'synthetic': three generated sensors, one failing in bursts (no data "
                                   "needed). 'speech-activity': real LibriSpeech speech and real noise with a "
                                   "generated mouth video (audio, image, flow). 'beats': the real ECG + PLETH of "
                                   "PhysioNet record a103l, heart-beat labels, one sensor failing at test time.")
    p.add_argument("--dataset", choices=FUSION_DATASETS, default="synthetic", help="which data (default: synthetic)")
    p.add_argument("--data", help="folder holding the real recordings (speech_librispeech_resemblyzer, noises, "
                                  "multimodal_physionet_wfdb)")
    p.add_argument("--noise", default="environment", choices=["environment", "unseen-environment", "babble", "clean"],
                   help="speech-activity: real noise at -5 dB (test from unheard stretches of the training "
                        "recordings; 'unseen-environment': from recordings of other kinds), babble of three "
                        "speakers at 0 dB, or none (default: environment)")
    p.add_argument("--corrupt", choices=["ecg", "pleth"], help="beats: the sensor that fails at test time")
    p.add_argument("--out-dir", required=True, help="folder for train.npz and test.npz")
    _common(p, device=False)
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
    p.add_argument("--model", default="mam+evidence",
                   help="mam+evidence (default: the Markov attention mixture whose gate also reads each sensor's "
                        "causal running statistics, evidence of a failing sensor), cam (conditional attention "
                        "mixture, the paper's eq. 17), mam (Markov attention mixture: recurrent), ram (recurrent "
                        "attention mixture: causal dilated convolutions), cam+evidence, ram+evidence, mme (Markov "
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
    _train_and_write(p, "p, attention")
    p.set_defaults(func=cmd_fuse)

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
    _common(p, device=False)
    p.set_defaults(func=cmd_export_physionet)

    p = sub.add_parser("export-av-speech", help="write the semi-synthetic audio-visual speech set for impute",
                       description="Two sensors at 62.5 frames/s: audio = 32 log mel-band energies of REAL clean "
                                   "speech (LibriSpeech; train and test speakers differ), mouth = a GENERATED mouth "
                                   "opening drawn from the speech envelope with lag, jitter and non-speech motion; "
                                   "frames under a simulated camera occlusion are missing (mask_mouth = 0).")
    p.add_argument("--data", required=True, help="folder holding speech_librispeech_resemblyzer/")
    p.add_argument("--frames", type=int, default=100, help="frames per sequence (default: 100 = 1.6 s)")
    p.add_argument("--out-dir", required=True, help="folder for train.npz and test.npz")
    _common(p, device=False)
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
    _train_and_write(p, "x_<target>, std_<target>")
    p.set_defaults(func=cmd_impute)

    p = sub.add_parser("score-mot", help="MOTA, MOTP, IDF1, IDS, FP, FN, MT, ML of tracker results",
                       description="Score MOTChallenge tracker results against ground truth with py-motmetrics. "
                                   "Files, or folders holding SEQ/gt/gt.txt, SEQ/gt.txt or SEQ.txt (ground "
                                   "truth) and SEQ.txt or SEQ/test.txt (results). MOTP is the mean (1 - IoU) of "
                                   "matched pairs.")
    p.add_argument("--gt", required=True, help="ground truth: a file or a folder of sequences")
    p.add_argument("--res", required=True, help="tracker results: a file or a folder of sequences")
    p.add_argument("--iou", type=float, default=0.5, help="minimum IoU for a match (default: 0.5)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _common(p, device=False)
    p.set_defaults(func=cmd_score_mot)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
                        format="%(levelname)s: %(message)s")
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"ppl-models {args.command}: error: {err}", file=sys.stderr)
        return 2
