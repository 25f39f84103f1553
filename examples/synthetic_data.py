"""Generate the embedded synthetic data sets and real N-track windows, and draw them.

    python examples/synthetic_data.py --out synthetic/ [--mot-gt GT.txt --mot-det DET.txt --length 120]

Without ``--mot-gt`` only synthetic data is drawn; with it, the first N-track window of that sequence is
drawn too, with detections from ``--mot-det`` (real) or simulated from the ground truth.
"""

import argparse
from pathlib import Path

from ppl_models import plots
from ppl_models.data.mot import read_mot, read_seqinfo
from ppl_models.data.synthetic import sample_trajectories, synthetic_tracking_window
from ppl_models.data.track_windows import build_track_windows


def main(args):
    out = Path(args.out)
    plots.plot_trajectories(sample_trajectories(args.trajectories, seed=args.seed), out / "trajectories.png")
    window = synthetic_tracking_window(args.sources, args.length, miss_rate=args.miss_rate, seed=args.seed)
    plots.plot_track_window(window, out / "synthetic_window.png", title="Synthetic window")
    written = ["trajectories.png", "synthetic_window.png"]
    if args.mot_gt:
        gt = read_mot(args.mot_gt)
        det = read_mot(args.mot_det) if args.mot_det else None
        info = read_seqinfo(Path(args.mot_gt).parent.parent)
        windows = build_track_windows(gt, args.sources, args.length, detections=det, miss_rate=args.miss_rate,
                                      min_detection_rate=args.min_detection_rate,
                                      seed=args.seed, image_size=(info.get("imWidth", 1), info.get("imHeight", 1)))
        print(f"{len(windows)} windows of {args.length} frames with {args.sources} tracks in {args.mot_gt}")
        if windows:
            first = windows[0]
            plots.plot_track_window(first, out / "mot_window.png",
                                    title=f"{info.get('name', 'MOT')} frames {first.frames[0]}-{first.frames[-1]}")
            written.append("mot_window.png")
    print("written:", ", ".join(str(out / w) for w in written))
    return written


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="synthetic_output", help="output folder")
    parser.add_argument("--trajectories", type=int, default=12, help="trajectories to draw")
    parser.add_argument("--sources", type=int, default=3, help="N, tracks per window")
    parser.add_argument("--length", type=int, default=60, help="T, frames per window")
    parser.add_argument("--miss-rate", type=float, default=0.1, help="missed detections (simulated)")
    parser.add_argument("--min-detection-rate", type=float, default=0.5,
                        help="drop windows where a track is detected in fewer frames than this share")
    parser.add_argument("--mot-gt", help="a MOTChallenge gt.txt (e.g. MOT15 SEQ/gt/gt.txt)")
    parser.add_argument("--mot-det", help="a MOTChallenge detection file for the same sequence")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


if __name__ == "__main__":
    main(parse_args())
