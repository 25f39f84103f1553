"""Fit the enumerated Gaussian mixture to synthetic 2-D data with SVI, and print what it recovered.

    python examples/gmm_enumeration.py --points 600 --epochs 300 --guide map --out gmm.png

The assignment of each point to a component is never sampled: ``TraceEnum_ELBO`` sums it out exactly.
"""

import argparse

import numpy as np
import pyro
import torch
from pyro.infer import TraceEnum_ELBO
from scipy.optimize import linear_sum_assignment

from ppl_models.demo import gmm_data
from ppl_models.infer import resolve_device, train_svi
from ppl_models.infer.svi import make_optimizer
from ppl_models.toy.gmm import GaussianMixture


def main(args):
    pyro.set_rng_seed(args.seed)
    pyro.clear_param_store()
    device = resolve_device(args.device)
    points, labels, true_means = gmm_data(args.points, seed=args.seed)
    data = torch.as_tensor(points, device=device)
    gmm = GaussianMixture(num_components=3, dim=2)
    history = train_svi(gmm.model, gmm.guides[args.guide], [data], epochs=args.epochs,
                        loss=TraceEnum_ELBO(max_plate_nesting=gmm.max_plate_nesting),
                        optimizer=make_optimizer("adam", lr=args.lr), name="gmm", progress=not args.quiet)
    means = pyro.param("gmm.locs_map" if args.guide == "map" else "gmm.locs_loc").detach().cpu().numpy()
    row, col = linear_sum_assignment(((means[:, None] - true_means[None]) ** 2).sum(-1))
    relabel = dict(zip(row, col))
    predicted = np.array([relabel[k] for k in gmm.map_assignments(data, args.guide).cpu().numpy()])
    accuracy = float((predicted == labels).mean())
    print(f"final loss {history.train_loss[-1]:.2f}; MAP assignment accuracy {accuracy:.3f}")
    for k, c in zip(row, col):
        print(f"  component {k}: fitted mean {np.round(means[k], 2)}  true mean {true_means[c]}")
    if args.out:
        from ppl_models.plots import plot_mixture_fit

        resp = gmm.responsibilities(data, args.guide).detach().cpu().numpy()
        plot_mixture_fit(points, resp, means, true_means, args.out)
        print(f"figure written to {args.out}")
    return {"accuracy": accuracy, "loss": history.train_loss[-1]}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=600, help="number of data points")
    parser.add_argument("--epochs", type=int, default=300, help="SVI steps (one batch per epoch)")
    parser.add_argument("--lr", type=float, default=0.05, help="Adam learning rate")
    parser.add_argument("--guide", choices=["map", "meanfield"], default="map", help="guide for the globals")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="write a figure of the fit to this PNG")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


if __name__ == "__main__":
    main(parse_args())
