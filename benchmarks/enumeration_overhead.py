"""What does Pyro's enumeration cost? One SVI step of the enumerated GMM against the same step in PyTorch.

Both compute the exact marginal log-likelihood sum_i log sum_k pi_k N(x_i; mu_k, sigma_k^2 I) plus the
priors, back-propagate, and take an Adam step on the same parameters. The script first checks that the two
losses agree, then times each (median of repeated steps after warm-up, CUDA-synchronised on a GPU).

    python benchmarks/enumeration_overhead.py --device cpu --points 10000 --components 3 16
"""

import argparse
import platform
import pyro
import pyro.distributions as dist
import torch
from pyro.infer import SVI, TraceEnum_ELBO

from ppl_models.infer import resolve_device
from timing import median_ms  # benchmarks/timing.py
from ppl_models.toy.gmm import GaussianMixture


def plain_pytorch_loss(data, weights_logits, locs, log_scales, prior_scale, concentration):
    """The same negative log joint as GaussianMixture.model + guide_map, written directly."""
    weights = torch.softmax(weights_logits, -1)  # Pyro's transform_to(simplex) is a softmax too
    scales = log_scales.exp()
    log_lik = dist.Normal(locs, scales[:, None]).log_prob(data[:, None]).sum(-1) + weights.log()  # (N, K)
    log_prior = (dist.Dirichlet(torch.full_like(weights, concentration)).log_prob(weights)
                 + dist.Normal(0.0, prior_scale).log_prob(locs).sum())
    return -(torch.logsumexp(log_lik, -1).sum() + log_prior)


def bench(n, k, dim, device, repeats):
    torch.manual_seed(0)
    data = torch.randn(n, dim, device=device) * 3
    pyro.clear_param_store()
    gmm = GaussianMixture(num_components=k, dim=dim)
    elbo = TraceEnum_ELBO(max_plate_nesting=1)
    svi = SVI(gmm.model, gmm.guide_map, pyro.optim.Adam({"lr": 1e-3}), loss=elbo)
    svi.step(data)  # creates the parameters
    store = pyro.get_param_store()
    # the plain version owns copies of the same unconstrained parameters
    params = [store["gmm.weights_map"].unconstrained().detach().clone().requires_grad_(),
              store["gmm.locs_map"].unconstrained().detach().clone().requires_grad_(),
              store["gmm.scales"].unconstrained().detach().clone().requires_grad_()]
    args = (gmm.prior_scale, gmm.concentration)
    pyro_loss = elbo.loss(gmm.model, gmm.guide_map, data)
    plain_loss = plain_pytorch_loss(data, *params, *args).item()
    assert abs(pyro_loss - plain_loss) <= 1e-4 * abs(plain_loss), (pyro_loss, plain_loss)
    optim = torch.optim.Adam(params, lr=1e-3)

    def plain_step():
        optim.zero_grad()
        plain_pytorch_loss(data, *params, *args).backward()
        optim.step()

    pyro_ms = median_ms(lambda: svi.step(data), device, repeats, warmup=5)
    plain_ms = median_ms(plain_step, device, repeats, warmup=5)
    return pyro_ms, plain_ms


def main(args):
    device = resolve_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "CPU"
    print(f"device: {name} | torch {torch.__version__} | pyro {pyro.__version__} | "
          f"threads {torch.get_num_threads()}")
    print(f"{'N':>7} {'K':>4} {'D':>3} {'pyro ms/step':>13} {'torch ms/step':>14} {'ratio':>6}")
    for n in args.points:
        for k in args.components:
            pyro_ms, plain_ms = bench(n, k, args.dim, device, args.repeats)
            print(f"{n:>7} {k:>4} {args.dim:>3} {pyro_ms:>13.2f} {plain_ms:>14.2f} {pyro_ms / plain_ms:>6.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--points", type=int, nargs="+", default=[1000, 100000])
    parser.add_argument("--components", type=int, nargs="+", default=[3, 16])
    parser.add_argument("--dim", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=50)
    main(parser.parse_args())
