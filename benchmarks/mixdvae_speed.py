"""How fast is MixDVAE's enumerated VEM, and what does Pyro cost on top of the same step in PyTorch?

One VEM iteration is: the encoder reads the current source means (E-Z), the decoder predicts every frame,
the closed-form E-S step gives q(s), one draw of (z, s) scores the ELBO with the assignments w summed out
(TraceEnum_ELBO), then the exact E-W step and the M-step. ``plain_elbo_and_proposal`` below is the same
iteration written directly in PyTorch — the same networks, the same random draws in the same order,
logsumexp over sources for w — and the script first checks that the two ELBOs agree to float precision.

Reported, in one run on one device:
* windows per second for a full fit (``--iterations`` VEM iterations) of ``--windows`` windows at once;
* ms per iteration, Pyro against PyTorch, and their ratio;
* the same against the number of sources N (parallel enumeration: the cost must grow like N, not N^K).

    python benchmarks/mixdvae_speed.py --device cuda --windows 256 --length 300 --sources 2 3 4 8 16

``--default`` times `ppl-models track`'s model instead (constant-velocity prior, exclusive association, predictive
E-W step), ``--association exclusive`` the DVAE prior with exclusive association; the hand-written twin follows
(for the constant-velocity prior the E-S step is its Kalman smoother, log p(s) its prediction-error sum; for the
exclusive association log p(o | s) is a logsumexp over the feasible matchings). ``--slots K`` adds K - N clutter
detections per frame (random boxes), to show the cost against K (the exclusive table grows with K and N).

    python benchmarks/mixdvae_speed.py --device cuda --windows 256 --length 300 --sources 3 --default --slots 3 4
"""

from __future__ import annotations

import argparse
import math
import platform
import time

import pyro
import torch
from pyro.infer import SVI, TraceEnum_ELBO
from pyro.optim import Adam

from ppl_models.data.synthetic import synthetic_tracking_window
from ppl_models.dvae.train import load_prior
from ppl_models.infer import resolve_device
from ppl_models.mixdvae import MixDVAE, fit
from ppl_models.mixdvae.association import matching_log_lik, matching_prior_logits, matching_table
from ppl_models.mixdvae.motion import ConstantVelocityPrior
from ppl_models.mixdvae.tracking import initial_sources, windows_to_tensors
from ppl_models.mixdvae.vem import CLUTTER_LOC, CLUTTER_SCALE, box_size, e_s_step
from timing import median_ms  # benchmarks/timing.py


def problem(num_windows: int, num_sources: int, length: int, device, slots: int | None = None):
    """``num_windows`` synthetic windows (10 % missed), K = ``slots`` detection slots per frame (K - N of them
    clutter: random boxes), static initial sources."""
    windows = [synthetic_tracking_window(num_sources, length, miss_rate=0.1, seed=b) for b in range(num_windows)]
    obs, mask = windows_to_tensors(windows, device)
    init = initial_sources(obs, mask, num_sources)
    extra = (slots or num_sources) - num_sources
    if extra > 0:
        corner = torch.rand(num_windows, length, extra, 2, generator=torch.Generator().manual_seed(0)).to(device)
        clutter = torch.cat([corner * 0.8, corner * 0.8 + 0.1], -1)  # boxes a tenth of the image wide
        obs = torch.cat([obs, clutter], 2)
        mask = torch.cat([mask, torch.ones_like(mask[:, :, :1]).expand(-1, -1, extra)], 2)
    return obs, mask, init


def plain_elbo_and_proposal(mix: MixDVAE, obs, mask):
    """The ``vem`` guide and the model's log-density, hand-written: returns (ELBO, m, v) for one draw."""
    st, prior = mix.state, mix.prior
    B, N, T, D = st.m.shape
    obs_var = st.phi * box_size(obs, mask) ** 2  # (B, T, K, D)
    if isinstance(prior, ConstantVelocityPrior):  # no z: the E-S step is the Kalman smoother
        m, v = prior.e_s_step(obs, mask, obs_var, st.resp, mix.first)
        s = m + v.sqrt() * torch.randn_like(m)
        log_prior, log_q_z = prior.log_density(s.reshape(B * N, T, D)).sum(), 0.0
    else:
        past = st.m.reshape(B * N, T, D)
        q_z = prior.latent(mix.encoder.guide_latent(past, mix.encoder._context(past)), B * N, T, obs.device)
        z = q_z.rsample()
        prediction = prior.likelihood(prior.decoder_params(z, past, prior._context(past)))
        m, v = e_s_step(prediction.loc.reshape(B, N, T, D), prediction.scale.reshape(B, N, T, D) ** 2,
                        obs, mask, obs_var, st.resp)
        s = m + v.sqrt() * torch.randn_like(m)
        # log p(z | s) + log p(s | z): the frozen DVAE prior on the drawn sources
        flat = s.reshape(B * N, T, D)
        ctx = prior._context(flat)
        log_prior = (prior.latent(prior.prior_latent(flat, ctx), B * N, T, obs.device).log_prob(z).sum()
                     + prior.likelihood(prior.decoder_params(z, flat, ctx)).log_prob(flat).sum())
        log_q_z = q_z.log_prob(z).sum()
    # log p(o | s, w or a) with the assignments summed out
    locs = s.transpose(1, 2)[:, :, None]  # (B, T, 1, N, D)
    per_source = torch.distributions.Normal(locs, obs_var.sqrt()[:, :, :, None]).log_prob(obs[:, :, :, None]).sum(-1)
    if mix.exclusive:  # log sum_a p(a_t | mask_t) prod_k p(o_tk | s_{a_tk}), over the feasible matchings a_t
        clutter = torch.distributions.Normal(CLUTTER_LOC, CLUTTER_SCALE).log_prob(obs).sum(-1, keepdim=True)
        table = matching_table(N, obs.shape[2], obs.device)
        log_lik = torch.logsumexp(matching_prior_logits(mask, table, mix.log_clutter)
                                  + matching_log_lik(torch.cat([per_source, clutter], -1), mask, table), -1).sum()
    else:  # log sum_n beta_n N(o_tk; s_tn, Phi_tk), per detection
        log_lik = (torch.logsumexp(per_source + st.beta.log(), dim=-1) * mask).sum()
    log_q = log_q_z + torch.distributions.Normal(m, v.sqrt()).log_prob(s).sum()
    return log_prior + log_lik - log_q, m, v


def pyro_and_plain_steps(mix: MixDVAE, obs, mask):
    """Two callables doing one VEM iteration each, from the same starting state."""
    mix.closed_form_m_step = True
    svi = SVI(mix.model, mix.guide_vem, Adam({"lr": 0.01}), loss=TraceEnum_ELBO(max_plate_nesting=3))

    def pyro_step():
        loss = svi.step(obs, mask)
        mix.vem_update(obs, mask)
        return loss

    def plain_vem_step():
        with torch.no_grad():
            elbo, m, v = plain_elbo_and_proposal(mix, obs, mask)
        mix._proposal = (m, v)
        mix.vem_update(obs, mask)
        return -elbo.item()

    return pyro_step, plain_vem_step


def check_same_elbo(mix: MixDVAE, obs, mask, init):
    """One iteration each from the same state and seed: the losses must agree."""
    pyro_step, plain_step = pyro_and_plain_steps(mix, obs, mask)
    mix.start(obs, mask, init)
    pyro.set_rng_seed(0)
    pyro_loss = pyro_step()
    mix.start(obs, mask, init)
    pyro.set_rng_seed(0)
    plain_loss = plain_step()
    if not math.isclose(pyro_loss, plain_loss, rel_tol=1e-4):
        raise AssertionError(f"Pyro loss {pyro_loss} != hand-written loss {plain_loss}")
    return pyro_loss, plain_loss


def main(args):
    device = resolve_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "CPU"
    print(f"device: {name} | torch {torch.__version__} | pyro {pyro.__version__} | threads {torch.get_num_threads()}")
    prior = ConstantVelocityPrior() if args.default else load_prior(args.prior, device)
    options = (dict(association="exclusive", predictive=True, noise=0.1) if args.default
               else dict(association=args.association))
    model = "track's default (constant velocity, exclusive, predictive)" if args.default else \
        f"{args.prior}, {args.association} association"
    print(f"\n{model}; windows x T = {args.windows} x {args.length}, {args.iterations} iterations")
    print("| N | K | Pyro ms/iter | PyTorch ms/iter | ratio | fit windows/s |\n|---|---|---|---|---|---|")
    for num_sources in args.sources:
        for slots in args.slots or [num_sources]:
            if slots < num_sources:
                continue
            obs, mask, init = problem(args.windows, num_sources, args.length, device, slots)
            mix = MixDVAE(prior, num_sources, **options).to(device)
            with pyro.get_param_store().scope():
                check_same_elbo(mix, obs, mask, init)
                pyro_step, plain_step = pyro_and_plain_steps(mix, obs, mask)
                mix.start(obs, mask, init)
                pyro_ms = median_ms(pyro_step, device, args.repeats)
                plain_ms = median_ms(plain_step, device, args.repeats)
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            fit(mix, obs, mask, init, guide="vem", iterations=args.iterations, marginal_samples=1)
            if device.type == "cuda":
                torch.cuda.synchronize()
            per_second = args.windows / (time.perf_counter() - start)
            print(f"| {num_sources} | {slots} | {pyro_ms:.1f} | {plain_ms:.1f} | {pyro_ms / plain_ms:.2f} "
                  f"| {per_second:.1f} |", flush=True)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--prior", default="srnn-trajectory")
    p.add_argument("--default", action="store_true",
                   help="time track's default model (constant velocity, exclusive, predictive) instead of --prior's")
    p.add_argument("--association", choices=["independent", "exclusive"], default="independent",
                   help="the DVAE prior's association (the paper's: independent)")
    p.add_argument("--slots", type=int, nargs="+", help="detection slots K per frame (K >= N; default K = N)")
    p.add_argument("--windows", type=int, default=16, help="windows tracked at once (the batch)")
    p.add_argument("--length", type=int, default=300, help="frames per window, T")
    p.add_argument("--sources", type=int, nargs="+", default=[2, 3, 4], help="numbers of sources N to time")
    p.add_argument("--iterations", type=int, default=50, help="VEM iterations of the timed full fit")
    p.add_argument("--repeats", type=int, default=10, help="timed iterations per measurement (median)")
    return p.parse_args(argv)


if __name__ == "__main__":
    main(parse_args())
