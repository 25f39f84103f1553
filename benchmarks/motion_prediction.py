"""How well a trajectory prior predicts real motion one frame ahead, against holding the last box and against
constant velocity (what the VKF baseline assumes), on ground-truth tracks of sequences it never saw.

The prior's one-step predictive p(s_t | s_<t) is moment-matched over draws of its latent chain z ~ p(z | s_<t)
(teacher-forced on the true past); errors are in units of the box's own width and height. ``mean z^2`` is
E[(s_t - mu_t)^2 / var_t]: 1 for a calibrated predictive variance, below 1 under-confident, above over-confident.

    A=ADL-Rundle-8,ETH-Pedcross2,KITTI-17,TUD-Stadtmitte,Venice-2
    B=ADL-Rundle-6,ETH-Bahnhof,ETH-Sunnyday,KITTI-13,PETS09-S2L1,TUD-Campus
    python benchmarks/motion_prediction.py --gt-dir ../shared/data/mot15_train_gt \\
        --prior priors/srnn-fold-a.pt@$A --prior priors/srnn-fold-b.pt@$B
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ppl_models.dvae.train import load_prior, mot_trajectory_data


@torch.no_grad()
def one_step_errors(prior, tracks: torch.Tensor, draws: int = 32) -> dict:
    """RMSE / box size of three one-step predictions over frames 3..T of ``tracks`` (N, T, 4)."""
    size = (tracks[..., 2:] - tracks[..., :2]).abs().repeat(1, 1, 2)[:, 2:]
    truth = tracks[:, 2:]
    ctx = prior._context(tracks)
    chain = prior.latent(prior.prior_latent(tracks, ctx), tracks.shape[0], tracks.shape[1], tracks.device)
    params = [prior.likelihood(prior.decoder_params(chain.sample(), tracks, ctx)) for _ in range(draws)]
    locs, variances = torch.stack([p.loc for p in params]), torch.stack([p.scale ** 2 for p in params])
    loc, var = locs.mean(0)[:, 2:], (variances.mean(0) + locs.var(0, unbiased=False))[:, 2:]
    rmse = lambda prediction: ((prediction - truth) / size).pow(2).mean().sqrt().item()  # noqa: E731
    return {"hold": rmse(tracks[:, 1:-1]), "constant velocity": rmse(2 * tracks[:, 1:-1] - tracks[:, :-2]),
            "prior": rmse(loc), "mean z^2": ((loc - truth) ** 2 / var).mean().item()}


def main(args) -> None:
    torch.manual_seed(0)
    print("| prior | held-out sequences (segments) | hold last box | constant velocity | prior's predictive | "
          "mean z^2 |\n|---|---|---|---|---|---|")
    for spec in args.prior:
        path, _, sequences = spec.partition("@")
        if not sequences:
            raise ValueError(f"--prior {spec}: name the held-out sequences as CKPT@SEQ,SEQ")
        folders = [str(Path(args.gt_dir) / s) for s in sequences.split(",")]
        tracks = torch.cat(mot_trajectory_data(folders, 60, 60, 0)).float()
        e = one_step_errors(load_prior(path), tracks)
        print(f"| {Path(path).name} | {len(folders)} ({tracks.shape[0]}) | {e['hold']:.3f} | "
              f"{e['constant velocity']:.3f} | {e['prior']:.3f} | {e['mean z^2']:.1f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gt-dir", required=True, help="MOTChallenge train folder: SEQ/gt/gt.txt + SEQ/seqinfo.ini")
    parser.add_argument("--prior", action="append", required=True, metavar="CKPT@SEQ,SEQ",
                        help="a trajectory prior and the sequences to score it on (repeatable)")
    main(parser.parse_args())
