"""What does Pyro cost the fusion models? One training step of each, in Pyro and written directly in PyTorch.

The Pyro step is ``SVI.step`` on the model with the empty guide (the attention mixtures' expert index
enumerated by ``TraceEnum_ELBO``; the Markov mixture's chain summed by ``DiscreteHMM``). The PyTorch step runs
the *same networks* (the model's own modules) on the same batch, writes the same objective by hand
(log-sum-exp over experts, or the forward recursion over the chain, plus kappa times each expert's own
log-likelihood), back-propagates and takes an Adam step. The script checks the two losses agree first.

    python benchmarks/fusion_overhead.py --device cpu --batch 32 --frames 200
"""

import argparse
import platform

import pyro
import torch
from pyro.infer import SVI, Trace_ELBO, TraceEnum_ELBO

from ppl_models.infer import resolve_device
from ppl_models.multimodal.attention import AttentionMixture, expert_likelihood
from ppl_models.multimodal.markov_experts import MarkovMixtureOfExperts
from timing import median_ms  # benchmarks/timing.py

SENSORS = {"audio": 32, "flow": 48, "image": 48}  # the speech-activity set's widths


def plain_mixture_loss(model, xs, y):
    log_w, params, _ = model(xs)
    log_lik = expert_likelihood(params, "bernoulli").log_prob(y[..., None])  # (N, T, M)
    return -(torch.logsumexp(log_w + log_lik, -1).sum() + model.expert_weight * log_lik.sum())


def plain_markov_loss(model, xs, y):
    trans, params = model(xs)
    log_lik = expert_likelihood(params, "bernoulli").log_prob(y[..., None])  # (N, T, M)
    log_alpha = trans[:, 0, 0] + log_lik[:, 0]
    for t in range(1, y.shape[1]):
        log_alpha = torch.logsumexp(log_alpha[:, :, None] + trans[:, t], 1) + log_lik[:, t]
    return -(torch.logsumexp(log_alpha, -1).sum() + model.expert_weight * log_lik.sum())


def bench(name, batch, frames, device, repeats):
    torch.manual_seed(0)
    xs = tuple(torch.randn(batch, frames, d, device=device) for d in SENSORS.values())
    y = (torch.rand(batch, frames, device=device) > 0.5).float()
    if name == "mme":
        model, elbo, plain = MarkovMixtureOfExperts(SENSORS), Trace_ELBO(), plain_markov_loss
    else:
        model, elbo, plain = AttentionMixture(SENSORS, name), TraceEnum_ELBO(max_plate_nesting=2), plain_mixture_loss
    model.to(device)
    pyro.clear_param_store()
    pyro_loss, plain_loss = elbo.loss(model.model, model.guide, xs, y), plain(model, xs, y).item()
    assert abs(pyro_loss - plain_loss) <= 1e-4 * abs(plain_loss), (name, pyro_loss, plain_loss)
    svi = SVI(model.model, model.guide, pyro.optim.Adam({"lr": 1e-3}), loss=elbo)
    optim = torch.optim.Adam(model.parameters(), lr=1e-3)

    def plain_step():
        optim.zero_grad()
        plain(model, xs, y).backward()
        optim.step()

    return median_ms(lambda: svi.step(xs, y), device, repeats), median_ms(plain_step, device, repeats)


def main(args):
    device = resolve_device(args.device)
    label = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "CPU"
    print(f"device: {label} | torch {torch.__version__} | pyro {pyro.__version__} | threads {torch.get_num_threads()}"
          f" | batch {args.batch} x {args.frames} frames, sensors {SENSORS}")
    print(f"{'model':>6} {'pyro ms/step':>13} {'torch ms/step':>14} {'ratio':>6}")
    for name in args.models:
        pyro_ms, plain_ms = bench(name, args.batch, args.frames, device, args.repeats)
        print(f"{name:>6} {pyro_ms:>13.2f} {plain_ms:>14.2f} {pyro_ms / plain_ms:>6.2f}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models", nargs="+", default=["cam", "mam", "ram", "mme"])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=30)
    main(parser.parse_args())
