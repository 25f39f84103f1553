"""The tracking commands: ``track`` (MixDVAE on MOTChallenge detections) and ``score-mot``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ppl_models.cli.common import add_common, log, print_table


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
    print_table(table, columns, SHORT_NAMES)
    return 0


def add_parsers(sub) -> None:
    """Add track and score-mot."""
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
    add_common(p)
    p.set_defaults(func=cmd_track)

    p = sub.add_parser("score-mot", help="MOTA, MOTP, IDF1, IDS, FP, FN, MT, ML of tracker results",
                       description="Score MOTChallenge tracker results against ground truth with py-motmetrics. "
                                   "Files, or folders holding SEQ/gt/gt.txt, SEQ/gt.txt or SEQ.txt (ground "
                                   "truth) and SEQ.txt or SEQ/test.txt (results). MOTP is the mean (1 - IoU) of "
                                   "matched pairs.")
    p.add_argument("--gt", required=True, help="ground truth: a file or a folder of sequences")
    p.add_argument("--res", required=True, help="tracker results: a file or a folder of sequences")
    p.add_argument("--iou", type=float, default=0.5, help="minimum IoU for a match (default: 0.5)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_common(p, device=False)
    p.set_defaults(func=cmd_score_mot)
