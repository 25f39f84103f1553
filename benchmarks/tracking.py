"""Tracking table: MixDVAE against the VKF (the paper's on-line variational Kalman filter, and the same with an
RTS smoother, a stronger batch baseline) and Kalman + Hungarian on N-track windows of MOT15 or MOT17.

Windows of T frames in which N ground-truth people are present throughout (``data.track_windows``), with
either the real Faster R-CNN detections matched to those people (missed where the detector missed them) or
simulated detections (5 % jitter, 10 % missed). All trackers start from the same first-frame sources; the
batch trackers (MixDVAE, both VKFs) then refine them chunk by chunk with themselves (``progressive_init``,
``--init static`` to skip). Scored with py-motmetrics (MOTA, IDF1, IDS, FP, FN over all windows).

``--detections occlusion``: MOT17 development windows (``datasets.mot17_windows``: the paper's MOT17-3T protocol, 60
frames every 40, detections simulated with jitter, bursty misses and misses under occlusion) of ``--sequences``
of ``--gt-dir`` (a folder of gt/MOT17-XX-gt.txt and seqinfo/MOT17-XX.seqinfo.ini).

MixDVAE rows (``--rows``): ``paper`` (the DVAE prior, independent assignments, progressive start, detection noise
5 % of the box: the paper's model), each option alone (``exclusive`` association; ``predictive``: the DVAE's
one-step predictive in the E-S step and the sources' predictive in the E-W step; the ``constant-velocity``
source prior; ``kalman-start``: the VEM started from the Kalman + Hungarian tracks) and ``default`` (what
``ppl-models track`` runs: all four, with ``--accel`` and ``--noise``). The baselines run twice: at their
former settings (acceleration and noise 5 % of the box) and at ``--accel`` / ``--noise``.

A trajectory prior trained on real tracks must not have seen the windows it is scored on: give one prior
per fold, ``--prior CKPT@SEQ,SEQ`` using CKPT on the windows of those sequences only (cross-validation).

    python benchmarks/tracking.py --gt-dir ../shared/data/mot17_train_gt_part --detections occlusion \
        --sequences MOT17-09 --lengths 60

    python benchmarks/tracking.py --gt-dir ../shared/data/mot15_train_gt \\
        --det-dir ../shared/data/mot15_sort_frcnn_det --lengths 60 120 300 --json tracking.json \\
        --prior srnn-fold-a.pt@ADL-Rundle-8,ETH-Pedcross2,KITTI-17,TUD-Stadtmitte,Venice-2 \\
        --prior srnn-fold-b.pt@ADL-Rundle-6,ETH-Bahnhof,ETH-Sunnyday,KITTI-13,PETS09-S2L1,TUD-Campus
"""

from __future__ import annotations

import argparse
import configparser
import json
import time
from functools import partial
from pathlib import Path

import numpy as np
import pyro
import torch

from ppl_models.data.mot import read_mot, read_seqinfo
from ppl_models.datasets.mot17_windows import mot17_windows, read_mot17_gt
from ppl_models.data.track_windows import build_track_windows
from ppl_models.dvae.train import load_prior
from ppl_models.infer import resolve_device
from ppl_models.mixdvae import MixDVAE, fit
from ppl_models.mixdvae.baselines import kalman_hungarian, vkf
from ppl_models.mixdvae.motion import ConstantVelocityPrior
from ppl_models.mixdvae.tracking import (evaluate_windows, initial_sources, kalman_start, progressive_init,
                                         windows_to_tensors)

COLUMNS = ("mota", "idf1", "num_switches", "num_false_positives", "num_misses")
PAPER = dict(prior="dvae", association="independent", predictive=False, start="progressive", noise=0.05)
ROWS = {  # name: what it changes in the paper's settings; "default" is what `ppl-models track` runs
    "paper": {},
    "exclusive": dict(association="exclusive"),
    "predictive": dict(predictive=True),
    "constant-velocity": dict(prior="constant-velocity"),
    "kalman-start": dict(start="kalman"),
    "default": dict(prior="constant-velocity", association="exclusive", predictive=True, start="kalman",
                    noise="tuned"),
}


def occlusion_windows(gt_dir: Path, sequences: list[str], num: int, length: int):
    windows = []
    for seq in sequences:
        gt_file = gt_dir / "gt" / f"{seq}-gt.txt"
        if not gt_file.is_file():
            raise SystemExit(f"--sequences {seq}: no {gt_file}")
        parser = configparser.ConfigParser()
        parser.read(gt_dir / "seqinfo" / f"{seq}.seqinfo.ini")
        size = float(parser["Sequence"]["imWidth"]), float(parser["Sequence"]["imHeight"])
        windows += [w.normalized() for w in mot17_windows(*read_mot17_gt(gt_file), seq, size, num, length,
                                                          stride=length * 2 // 3)]
    return windows


def windows_for(gt_dir: Path, det_dir: Path, detections: str, num: int, length: int, per_sequence: int):
    windows = []
    for seq in sorted(p for p in gt_dir.iterdir() if (p / "gt" / "gt.txt").is_file()):
        det_file = det_dir / f"{seq.name}-det.txt"
        if detections == "real" and not det_file.is_file():
            continue
        info = read_seqinfo(seq)
        size = (float(info["imWidth"]), float(info["imHeight"]))
        found = build_track_windows(read_mot(seq / "gt" / "gt.txt"), num, length, stride=length // 2,
                                    detections=read_mot(det_file) if detections == "real" else None,
                                    min_detection_rate=0.5, sequence=seq.name, image_size=size,
                                    groups_per_window=2, seed=0)
        windows += [w.normalized() for w in found[:per_sequence]]
    return windows


def priors_by_window(windows, prior_args: list[str]) -> list[str]:
    """The prior to use on each window: ``CKPT`` for all, or ``CKPT@SEQ,SEQ`` for those sequences' windows."""
    chosen = [None] * len(windows)
    for arg in prior_args:
        ckpt, _, seqs = arg.partition("@")
        for i, w in enumerate(windows):
            if not seqs or w.sequence in seqs.split(","):
                chosen[i] = ckpt
    missing = sorted({w.sequence for w, c in zip(windows, chosen) if c is None})
    if missing:
        raise SystemExit(f"--prior: no prior given for the windows of {', '.join(missing)}")
    return chosen


def row_settings(row: str, args) -> dict:
    settings = {**PAPER, **ROWS[row]}
    return {**settings, "noise": args.noise if settings["noise"] == "tuned" else settings["noise"]}


def mixdvae_tracker(args, prior, iterations, row):
    settings = row_settings(row, args)

    def track(obs, mask, init):
        pyro.set_rng_seed(0)
        mix = MixDVAE(prior, args.num_sources, fine_tune_encoder=args.fine_tune, noise=settings["noise"],
                      association=settings["association"], predictive=settings["predictive"])
        return fit(mix, obs, mask, init, guide=args.guide, iterations=iterations).sources
    return track


def batch_tracker(track, start, chunk: int):
    """A batch tracker ``track(obs, mask, init)`` run from ``start(obs, mask, init)`` (the progressive or the
    static start) and, with ``chunk``, on consecutive pieces of that many frames, each started where the
    previous one ended (as ``ppl-models track --window`` does)."""
    def whole(obs, mask, init):
        return track(obs, mask, start(obs, mask, init))
    return (lambda obs, mask, init: progressive_init(whole, obs, mask, init, chunk=chunk)) if chunk else whole


def run_trackers(windows, args, device) -> dict:
    obs, mask = windows_to_tensors(windows, device)
    init = initial_sources(obs, mask, args.num_sources)
    refine = progressive_init if args.init == "progressive" else lambda track, obs, mask, init: init
    results = {}
    priors = priors_by_window(windows, args.prior)
    tuned = dict(accel=args.accel, noise=args.noise)
    for row in args.rows:
        settings = row_settings(row, args)
        start = time.perf_counter()
        estimates = torch.zeros_like(init)
        for ckpt in sorted(set(priors)):
            rows = torch.tensor([p == ckpt for p in priors], device=device)
            prior = (load_prior(ckpt, device) if settings["prior"] == "dvae"
                     else ConstantVelocityPrior(accel=args.accel))
            begin = (partial(refine, mixdvae_tracker(args, prior, args.init_iterations, row))
                     if settings["start"] == "progressive" else partial(kalman_start, **tuned))
            track = batch_tracker(mixdvae_tracker(args, prior, args.iterations, row), begin, args.chunk)
            estimates[rows] = track(obs[rows], mask[rows], init[rows])
        results[f"MixDVAE ({args.guide}, {row})"] = (estimates, time.perf_counter() - start)
    cpu = (obs.cpu(), mask.cpu(), init.cpu())
    for label, setting in (("", {}), (f", accel {args.accel}, noise {args.noise}", tuned)):
        for name, smooth in (("VKF (on-line)", False), ("VKF + RTS smoother", True)):
            start = time.perf_counter()
            linear = partial(vkf, smooth=smooth, **setting)
            results[name + label] = (batch_tracker(linear, partial(refine, linear), args.chunk)(*cpu),
                                     time.perf_counter() - start)
        start = time.perf_counter()
        results["Kalman + Hungarian" + label] = (kalman_hungarian(*cpu, **setting), time.perf_counter() - start)
    return {name: {**{k: evaluate_windows(windows, est.cpu().numpy())["OVERALL"][k] for k in COLUMNS},
                   "seconds": secs} for name, (est, secs) in results.items()}


def main(args):
    device = resolve_device(args.device)
    table = {}
    for detections in args.detections:
        for length in args.lengths:
            if detections == "occlusion":
                windows = occlusion_windows(Path(args.gt_dir), args.sequences, args.num_sources, length)
            else:
                windows = windows_for(Path(args.gt_dir), Path(args.det_dir), detections, args.num_sources, length,
                                      args.per_sequence)
            if not windows:
                print(f"no {length}-frame windows with {args.num_sources} tracks")
                continue
            key = f"{detections} T={length} ({len(windows)} windows)"
            table[key] = run_trackers(windows, args, device)
            print(f"\n{key}, missed detections {np.mean([w.miss_rate for w in windows]):.1%}")
            print("| tracker | MOTA | IDF1 | IDS | FP | FN | seconds |\n|---|---|---|---|---|---|---|")
            for name, r in table[key].items():
                print(f"| {name} | {r['mota']:.3f} | {r['idf1']:.3f} | {r['num_switches']:.0f} | "
                      f"{r['num_false_positives']:.0f} | {r['num_misses']:.0f} | {r['seconds']:.1f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=1))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gt-dir", required=True, help="MOTChallenge train folder: SEQ/gt/gt.txt + SEQ/seqinfo.ini")
    p.add_argument("--det-dir", help="folder of SEQ-det.txt detection files (for real and simulated)")
    p.add_argument("--detections", nargs="+", default=["real", "simulated"],
                   choices=["real", "simulated", "occlusion"],
                   help="real / simulated: MOT15 windows; occlusion: MOT17 development windows of --sequences")
    p.add_argument("--sequences", nargs="+", default=["MOT17-09"],
                   help="MOT17 sequences for --detections occlusion (default: MOT17-09, the development one)")
    p.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS),
                   help="MixDVAE variants to run (default: all)")
    p.add_argument("--lengths", type=int, nargs="+", default=[60, 120, 300], help="window lengths T")
    p.add_argument("--num-sources", type=int, default=3)
    p.add_argument("--per-sequence", type=int, default=20, help="at most this many windows per sequence")
    p.add_argument("--prior", action="append", metavar="CKPT[@SEQ,SEQ]",
                   help="trajectory prior, for all windows or (repeat) per held-out fold (default: srnn-trajectory)")
    p.add_argument("--guide", default="vem", choices=["vem", "svi", "sampled-w"])
    p.add_argument("--iterations", type=int, default=50)
    p.add_argument("--init", default="progressive", choices=["progressive", "static"],
                   help="refine the static first-frame sources chunk by chunk first (default) or not")
    p.add_argument("--init-iterations", type=int, default=20, help="MixDVAE iterations per initial chunk")
    p.add_argument("--fine-tune", action="store_true", help="fine-tune the DVAE encoder on each window")
    p.add_argument("--chunk", type=int, default=0,
                   help="run the batch trackers (MixDVAE, VKF) on pieces of this many frames, each started where "
                        "the previous one ended, as `ppl-models track --window` does (default: 0, whole windows)")
    p.add_argument("--accel", type=float, default=0.01,
                   help="acceleration std per frame relative to the box, of the default row's constant-velocity "
                        "prior and Kalman start and of the tuned baselines (default: 0.01, chosen on MOT17-09)")
    p.add_argument("--noise", type=float, default=0.1,
                   help="detection noise std relative to the box of the default row and the tuned baselines "
                        "(default: 0.1, chosen on MOT17-09; the paper's rows and the untuned baselines use 0.05)")
    p.add_argument("--json", help="also write the table to this JSON file")
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    if args.det_dir is None and set(args.detections) - {"occlusion"}:
        p.error("--det-dir is required for --detections real or simulated")
    if args.chunk == 1 or args.chunk < 0:
        p.error(f"--chunk must be 0 (whole windows) or at least 2 frames, got {args.chunk}")
    args.prior = args.prior or ["srnn-trajectory"]
    return args


if __name__ == "__main__":
    main(parse_args())
