r"""Can a DVAE learn what constant velocity misses? One-step prediction of real pedestrian boxes, a lead for a motion
prior that cannot do worse than constant velocity (issue 29).

The constant-velocity residual, in units of the box's own width and height,

    r_t = (s_t - 2 s_{t-1} + s_{t-2}) / size(s_{t-1}),

is exactly constant velocity's one-step error. An SRNN (residual=False: it models r itself, not r_t - r_{t-1})
is trained on the r of MOT17 ground-truth tracks (60-frame segments every 30 frames) of the ``--train``
sequences; its one-step predictive mean of r_t given the true r_<t (teacher-forced, moment-matched over 32 draws
of z ~ p(z | r_<t), as ``motion_prediction.py`` does for box priors) corrects constant velocity's prediction.
Rows: constant velocity (r = 0), a ridge AR(3) of r (linear, the simple learned baseline) and the SRNN, as the
RMSE of the prediction in box units over frames 6..T of every segment of the ``--val`` and ``--test`` sequences.

    python benchmarks/residual_motion.py --gt-dir ../shared/data/mot17_train_gt_part --epochs 20
"""

from __future__ import annotations

import argparse
import configparser
import time

import pyro
import torch
from torch.utils.data import DataLoader, TensorDataset

from ppl_models.datasets.mot17_windows import read_mot17_gt
from ppl_models.data.track_windows import track_segments
from ppl_models.dvae import build_dvae
from ppl_models.infer import train_svi
from ppl_models.infer.svi import make_optimizer

LAGS = 3


def residuals(gt_dir: str, sequences: list[str], length: int = 60, hop: int = 30) -> torch.Tensor:
    """(M, length - 2, 4) constant-velocity residuals of every ground-truth segment of the sequences."""
    out = []
    for seq in sequences:
        info = configparser.ConfigParser()
        info.read(f"{gt_dir}/seqinfo/{seq}.seqinfo.ini")
        size = float(info["Sequence"]["imWidth"]), float(info["Sequence"]["imHeight"])
        s = torch.as_tensor(track_segments(read_mot17_gt(f"{gt_dir}/gt/{seq}-gt.txt")[0], length, hop, size)[0],
                            dtype=torch.float32)
        box = (s[..., 2:] - s[..., :2]).abs().repeat(1, 1, 2)[:, 1:-1].clamp_min(1e-4)
        out.append((s[:, 2:] - 2 * s[:, 1:-1] + s[:, :-2]) / box)
    return torch.cat(out)


def lagged(r: torch.Tensor):
    """Regressors (r_{t-1}, .., r_{t-LAGS}, 1) and targets r_t, flattened over segments and frames."""
    x = torch.cat([r[:, LAGS - j:r.shape[1] - j] for j in range(1, LAGS + 1)], -1)
    return torch.cat([x, torch.ones_like(x[..., :1])], -1).reshape(-1, 4 * LAGS + 1), r[:, LAGS:].reshape(-1, 4)


def rmse(error: torch.Tensor) -> float:
    return error[:, LAGS:].pow(2).mean().sqrt().item()  # frames with LAGS past residuals, for every row


@torch.no_grad()
def srnn_mean(dvae, r: torch.Tensor, draws: int = 32) -> torch.Tensor:
    ctx = dvae._context(r)
    chain = dvae.latent(dvae.prior_latent(r, ctx), r.shape[0], r.shape[1], r.device)
    return torch.stack([dvae.likelihood(dvae.decoder_params(chain.sample(), r, ctx)).loc for _ in range(draws)]).mean(0)


def main(args) -> None:
    pyro.set_rng_seed(0)
    train = residuals(args.gt_dir, args.train)
    held = {f"{s} ({role})": residuals(args.gt_dir, [s]) for role, seqs in (("val", args.val), ("test", args.test))
            for s in seqs}
    x, y = lagged(train)
    weights = torch.linalg.solve(x.T @ x + args.ridge * torch.eye(x.shape[1]), x.T @ y)
    dvae = build_dvae("srnn", "trajectory", residual=False, hidden=args.hidden, rnn_dim=args.hidden // 2)
    dvae.adapt_to(train)
    loader = DataLoader(TensorDataset(train), batch_size=64, shuffle=True)
    start = time.perf_counter()
    train_svi(dvae.model, dvae.guide, lambda epoch: ((r, None) for (r,) in loader), epochs=args.epochs,
              optimizer=make_optimizer("clipped_adam", lr=args.lr), modules={"dvae": dvae}, name="residual-srnn",
              progress=False, step_kwargs=lambda epoch: {"annealing": min(1.0, (epoch + 1) / 5)})
    print(f"SRNN (hidden {args.hidden}) trained on {len(train)} segments of {', '.join(args.train)} for "
          f"{args.epochs} epochs in {time.perf_counter() - start:.0f} s\n")
    print("| sequence (segments) | constant velocity | ridge AR(3) of r | SRNN of r |\n|---|---|---|---|")
    for name, r in held.items():
        x, y = lagged(r)
        ar = (y - x @ weights).pow(2).mean().sqrt().item()
        print(f"| {name} ({len(r)}) | {rmse(r):.4f} | {ar:.4f} | {rmse(r - srnn_mean(dvae, r)):.4f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gt-dir", required=True, help="folder of gt/MOT17-XX-gt.txt and seqinfo/*.seqinfo.ini")
    parser.add_argument("--train", nargs="+", default=["MOT17-04", "MOT17-05"])
    parser.add_argument("--val", nargs="+", default=["MOT17-09"])
    parser.add_argument("--test", nargs="+", default=["MOT17-02"])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--hidden", type=int, default=16, help="SRNN MLP width (its RNN: half of it)")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--ridge", type=float, default=1.0, help="ridge penalty of the AR(3) baseline")
    main(parser.parse_args())
