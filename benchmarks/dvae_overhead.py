"""One SVI step of each DVAE in Pyro (fast path, and the per-frame pyro.markov form) against the same ELBO
written in plain PyTorch on the same modules and batch, in one run.

The plain version draws z from the same encoder (``LatentSequence.rsample``), scores log q(z|x), log p(z)
and log p(x|z) with the same distributions, and takes the same optimizer step (``train-prior``'s clipped Adam,
one multi-tensor update over all parameters: :mod:`ppl_models.infer.optim`): what Pyro adds is only its tracing
and bookkeeping. Before timing, the script checks that Pyro's ELBO and the plain one agree on the same draw.
Both are then timed without validation checks (Pyro's and torch.distributions'), as ``train-prior`` runs every
epoch after its first (``ppl_models.infer.svi.train_svi``).

HiT-DVAE and LigHT-DVAE (``hit-dvae``, ``light-dvae``) add the sequence latent w: their plain ELBO draws w
and then z_{1:T} from q(w | x) and q(z | x, w) (no loop over frames) and scores the prior of z teacher-forced in
one call, as their Pyro model does.

On a GPU both are timed twice: with the guide's sampling loop run frame by frame from Python, and replayed
from a recorded CUDA graph (``ppl_models.dvae.fast.graphed``, what ``train-prior`` uses); "speed-up" is
the Pyro step's time without graphs over its time with them, "pyro/plain" the ratio with graphs.

    python benchmarks/dvae_overhead.py --device cpu --kind speech --batch 32 --frames 100
    python benchmarks/dvae_overhead.py --device cuda --kind speech --batch 32 --frames 100 --models hit-dvae light-dvae

Graphs do not apply to HiT-DVAE and LigHT-DVAE (their guide has no loop): their graphed columns are left empty.
"""

import argparse
import subprocess
import sys

import pyro
import torch
from pyro import poutine
from pyro.infer import SVI, Trace_ELBO

from ppl_models.dvae import build_dvae
from ppl_models.dvae.hit_dvae import HierarchicalDVAE
from ppl_models.dvae.fast import graphed, recorded
from ppl_models.infer import resolve_device
from ppl_models.infer.optim import ForeachClippedAdam
from ppl_models.infer.svi import make_optimizer
from timing import median_ms  # benchmarks/timing.py


def plain_elbo(dvae, x, z=None, w=None):
    """E_q[log p(x|z) + log p(z) - log q(z|x)] with one draw, in plain PyTorch (sum over the batch)."""
    if isinstance(dvae, HierarchicalDVAE):
        return plain_elbo_hierarchical(dvae, x, z, w)
    B, T, _ = x.shape
    ctx = dvae.context(x, x)
    q = dvae.latent(dvae.guide_latent(x, ctx), B, T, x.device)
    z = q.rsample() if z is None else z
    p = dvae.latent(dvae.prior_latent(x, ctx), B, T, x.device)
    log_lik = dvae.likelihood(dvae.decoder_params(z, x, ctx)).log_prob(x).sum()
    return log_lik + p.log_prob(z).sum() - q.log_prob(z).sum()


def plain_elbo_hierarchical(dvae, x, z=None, w=None):
    """E_q[log p(x|z,w) + log p(z|w) + log p(w) - log q(z|x,w) - log q(w|x)], one draw of (w, z), plain PyTorch."""
    normal = torch.distributions.Normal
    (w_loc, w_scale), e = dvae.posteriors(x)
    w = w_loc + w_scale * torch.randn_like(w_loc) if w is None else w
    z_loc, z_scale = dvae.z_params(e, w)
    z = z_loc + z_scale * torch.randn_like(z_loc) if z is None else z
    log_lik = dvae.likelihood(dvae.decoder_params(z, x, w)).log_prob(x).sum()
    log_prior = normal(*dvae.prior_params(z, x, w)).log_prob(z).sum() + normal(0.0, 1.0).log_prob(w).sum()
    log_q = normal(z_loc, z_scale).log_prob(z).sum() + normal(w_loc, w_scale).log_prob(w).sum()
    return log_lik + log_prior - log_q


def main(args):
    device = resolve_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"{name} | torch {torch.__version__} | pyro {pyro.__version__} | {args.kind}, batch {args.batch}, "
          f"{args.frames} frames")
    cuda = device.type == "cuda" and args.graphs
    print(f"{'model':<15} {'pyro fast':>10} {'pyro markov':>12} {'plain torch':>12} {'fast/plain':>11}"
          + (f" {'pyro graphed':>13} {'plain graphed':>14} {'speed-up':>9} {'pyro/plain':>11}" if cuda else ""))
    for model in args.models:
        torch.manual_seed(0)
        pyro.clear_param_store()
        pyro.enable_validation(True)  # the agreement check below runs with Pyro's checks
        dvae = build_dvae(model, args.kind).to(device)
        x_dim = dvae.x_dim
        x = (torch.rand(args.batch, args.frames, x_dim, device=device) ** 4 + 1e-6 if args.kind == "speech"
             else torch.randn(args.batch, args.frames, x_dim, device=device))
        guide_trace = poutine.trace(dvae.guide).get_trace(x)
        cond = {k: guide_trace.nodes[k]["value"].detach() for k in ("z", "w") if k in guide_trace.nodes}
        pyro_elbo = (poutine.trace(poutine.condition(dvae.model, cond)).get_trace(x).log_prob_sum()
                     - poutine.trace(poutine.condition(dvae.guide, cond)).get_trace(x).log_prob_sum())
        torch.testing.assert_close(pyro_elbo, plain_elbo(dvae, x, cond["z"], cond.get("w")), rtol=1e-4, atol=1e-2)
        fast = SVI(dvae.model, dvae.guide, make_optimizer("clipped_adam", lr=1e-4), Trace_ELBO())  # train-prior's
        markov = SVI(dvae.model_markov, dvae.guide_markov, make_optimizer("clipped_adam", lr=1e-4), Trace_ELBO())
        optim = ForeachClippedAdam(dvae.parameters(), lr=1e-4)

        def plain_step():
            optim.zero_grad()
            (-plain_elbo(dvae, x)).backward()
            optim.step()

        pyro.enable_validation(False)  # as train_svi after its first epoch (checked above with validation)
        if args.graphed_only:  # a fresh process that records on its first step (see graphed_times)
            with graphed():
                g_fast = median_ms(lambda: fast.step(x), device, args.repeats)
                g_plain = median_ms(plain_step, device, args.repeats)
            if not recorded():
                sys.exit("the guide's loop was not recorded as a CUDA graph (the warning above says why)")
            print(f"GRAPHED {g_fast} {g_plain}", flush=True)
            return
        t_fast = median_ms(lambda: fast.step(x), device, args.repeats)
        t_plain = median_ms(plain_step, device, args.repeats)  # before the per-frame form, whose large graphs
        t_markov = median_ms(lambda: markov.step(x), device, max(3, args.repeats // 5))  # slow what follows on a CPU
        print(f"{model:<15} {t_fast:>10.2f} {t_markov:>12.2f} {t_plain:>12.2f} {t_fast / t_plain:>11.2f}",
              end="" if cuda else "\n", flush=True)
        if cuda and isinstance(dvae, HierarchicalDVAE):
            print(f" {'–':>13} {'–':>14} {'–':>9} {'–':>11}", flush=True)
        elif cuda:
            g_fast, g_plain = graphed_times(model, args)
            print(f" {g_fast:>13.2f} {g_plain:>14.2f} {t_fast / g_fast:>9.2f} {g_fast / g_plain:>11.2f}", flush=True)


def graphed_times(model: str, args) -> tuple[float, float]:
    """(Pyro, plain) ms per step with the guide's loop replayed from a CUDA graph, timed in a fresh process that
    records on its first step, as ``train-prior`` does (recording after the un-graphed timings of the same modules
    failed on an H100 with ``cudaErrorStreamCaptureImplicit``; so did a fresh process without the priming pass
    that ``fast._record`` now runs: benchmarks/RESULTS.md)."""
    command = [sys.executable, __file__, "--graphed-only", "--device", args.device, "--kind", args.kind,
               "--models", model, "--batch", str(args.batch), "--frames", str(args.frames),
               "--repeats", str(args.repeats)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    g_fast, g_plain = next(line.split()[1:] for line in out.splitlines() if line.startswith("GRAPHED"))
    return float(g_fast), float(g_plain)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--kind", choices=["trajectory", "speech"], default="speech")
    parser.add_argument("--models", nargs="+", default=["vae", "dkf", "vrnn", "srnn", "rvae", "rvae-noncausal"])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--no-graphs", dest="graphs", action="store_false",
                        help="on a GPU, skip the CUDA-graph timings (their recording has failed on some machines)")
    parser.add_argument("--graphed-only", action="store_true", help=argparse.SUPPRESS)  # see graphed_times
    main(parser.parse_args())
