r"""Multimodal HMM (Guo 2019, sec. 5, eq. 40-41): a shared discrete chain s_t and one private chain c^m_t per
sensor, every chain Markov, each sensor's frame Gaussian given the shared state and its own private state.

    s_{t-1} ──> s_t ─────────┬──> x^1_t        p(s_t = j | s_{t-1} = i)     = A_s[i, j]
                             └──> x^2_t        p(c^m_t = l | c^m_{t-1} = k) = A_m[k, l]
    c^1_{t-1} ──> c^1_t ───────> x^1_t        x^m_t | s_t, c^m_t ~ N(mu_m[s_t, c^m_t], diag sigma_m[s_t, c^m_t]²)
    c^2_{t-1} ──> c^2_t ───────> x^2_t

Every state is discrete, so the likelihood is exact: ``model_markov`` writes the graph as it is drawn, one
enumerated site per chain and frame inside ``pyro.markov``, and ``TraceEnum_ELBO`` sums the states out;
``model`` (training) scores the same likelihood with one ``DiscreteHMM`` site over the joint state
(s, c^1, .., c^M), whose transition matrix is the Kronecker product of the chains' (they are independent).
A missing frame of sensor m contributes nothing: its Gaussian is replaced by one with density exactly 1 at
the value (loc = value = 0, scale = (2 pi)^(-1/2)), the same in both forms.

Imputation (:meth:`predictive`) filters: p(joint state_t | observed frames up to t), then each sensor's
predictive is the mixture of its state Gaussians under it (mean and variance of the mixture).
The parameters are fitted by maximum likelihood (SVI with an empty guide = gradient EM).
"""

from __future__ import annotations

import math

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.ops.indexing import Vindex
from torch import nn

UNIT_DENSITY_SCALE = (2 * math.pi) ** -0.5  # N(0; 0, this^2) = 1: a missing value adds log 1 = 0


def masked_normal(loc, scale, observed) -> dist.Normal:
    """N(loc, scale) where ``observed`` (0/1, broadcastable to loc), else N(0, (2 pi)^-1/2), whose density at
    0 is exactly 1: score it at ``value * observed``."""
    return dist.Normal(loc * observed, torch.where(observed > 0, scale, torch.full_like(scale, UNIT_DENSITY_SCALE)))


class MultimodalHMM(nn.Module):
    """Shared chain of ``shared_states`` states, private chains of ``private_states`` each; ``widths``: sensor ->
    frame width. ``model(x, mask)`` takes dicts of (B, T, D_m) frames and (B, T) masks, as the MVRNN."""

    max_plate_nesting = 1

    def __init__(self, widths: dict[str, int], shared_states: int = 4, private_states: int = 3):
        super().__init__()
        self.names, self.widths = sorted(widths), dict(widths)
        self.K_s, self.K_p = shared_states, private_states
        self.shared_logits = nn.Parameter(torch.eye(shared_states) * 3.0)  # sticky start
        self.private_logits = nn.ParameterDict({m: nn.Parameter(torch.eye(private_states) * 3.0) for m in self.names})
        self.loc = nn.ParameterDict({m: nn.Parameter(0.5 * torch.randn(shared_states, private_states, widths[m]))
                                     for m in self.names})
        self.log_scale = nn.ParameterDict({m: nn.Parameter(torch.zeros(shared_states, private_states, widths[m]))
                                           for m in self.names})

    variant = "hmm"

    @property
    def num_states(self) -> int:
        return self.K_s * self.K_p ** len(self.names)

    @torch.no_grad()
    def init_from(self, x: dict, mask: dict) -> "MultimodalHMM":
        """Start the state means at randomly chosen observed frames, the scales at the data's spread."""
        for m in self.names:
            frames = x[m][mask[m] > 0]
            pick = torch.randint(len(frames), (self.K_s * self.K_p,), device=frames.device)
            self.loc[m].copy_(frames[pick].reshape(self.K_s, self.K_p, -1))
            self.log_scale[m].fill_(float(frames.std(0).clamp_min(1e-3).log().mean()))
        return self

    # --------------------------------------------------------------------------------- the joint chain
    def joint_transition(self) -> torch.Tensor:
        """log p(joint_t | joint_{t-1}), (S, S): the chains are independent, so it is the Kronecker product
        of their transition matrices (in log space, a sum), joint index = (s, c^1, .., c^M) in C order."""
        out = self.shared_logits.log_softmax(-1)
        for m in self.names:
            lp = self.private_logits[m].log_softmax(-1)
            out = (out[:, None, :, None] + lp[None, :, None, :]).reshape(out.shape[0] * self.K_p, -1)
        return out

    def joint_emission(self, mask: dict) -> dist.Distribution:
        """p(x_t | joint state) with batch shape (B, T, S) and event (sum_m D_m,): the sensors concatenated."""
        locs, scales = [], []
        for i, m in enumerate(self.names):
            shape = [self.K_s] + [self.K_p if j == i else 1 for j in range(len(self.names))] + [self.widths[m]]
            expand = [self.K_s] + [self.K_p] * len(self.names) + [self.widths[m]]
            locs.append(self.loc[m].reshape(shape).expand(expand).reshape(self.num_states, -1))
            scales.append(self.log_scale[m].exp().reshape(shape).expand(expand).reshape(self.num_states, -1))
        observed = torch.cat([mask[m][..., None].expand(-1, -1, self.widths[m]) for m in self.names], -1)
        return masked_normal(torch.cat(locs, -1), torch.cat(scales, -1), observed[:, :, None]).to_event(1)

    def concat(self, x: dict, mask: dict) -> torch.Tensor:
        """The sensors' frames side by side, zero where missing: (B, T, sum_m D_m)."""
        return torch.cat([x[m] * mask[m][..., None] for m in self.names], -1)

    def initial_logits(self) -> torch.Tensor:
        """Uniform over the joint states at frame -1; frame 0 follows one transition (DiscreteHMM's convention),
        so p(state_0) = mean of the transition matrix's rows, for each chain as for the joint one."""
        return torch.full((self.num_states,), -math.log(self.num_states), device=self.shared_logits.device)

    # ------------------------------------------------------------------------------------ model / guide
    def model(self, x: dict, mask: dict):
        """Training form: one DiscreteHMM site over the joint state (forward algorithm inside log_prob)."""
        pyro.module("mhmm", self)
        value = self.concat(x, mask)
        hmm = dist.DiscreteHMM(self.initial_logits(), self.joint_transition(), self.joint_emission(mask))
        with pyro.plate("sequences", value.shape[0], device=value.device):
            pyro.sample("x", hmm, obs=value)

    def guide(self, x: dict, mask: dict):
        pass  # every latent is discrete and summed out by the model

    def model_markov(self, x: dict, mask: dict):
        """Readable form (eq. 41 as drawn): enumerated s_t and c^m_t per frame inside ``pyro.markov``.
        Train or score with ``TraceEnum_ELBO(max_plate_nesting=1)`` and the empty guide."""
        pyro.module("mhmm", self)
        B, T = mask[self.names[0]].shape
        A_s = self.shared_logits.softmax(-1)
        A = {m: self.private_logits[m].softmax(-1) for m in self.names}
        s = torch.zeros((), dtype=torch.long)
        c = {m: torch.zeros((), dtype=torch.long) for m in self.names}
        first_s, first_c = A_s.mean(0), {m: A[m].mean(0) for m in self.names}  # frame 0: see initial_logits
        with pyro.plate("sequences", B, dim=-1, device=x[self.names[0]].device):
            for t in pyro.markov(range(T)):
                s = pyro.sample(f"s_{t}", dist.Categorical(A_s[s] if t else first_s),
                                infer={"enumerate": "parallel"})
                for m in self.names:
                    c[m] = pyro.sample(f"c_{m}_{t}", dist.Categorical(A[m][c[m]] if t else first_c[m]),
                                       infer={"enumerate": "parallel"})
                    loc = Vindex(self.loc[m])[s, c[m]]  # (..., D_m), enumeration dims on the left
                    scale = Vindex(self.log_scale[m])[s, c[m]].exp()
                    observed = mask[m][:, t, None]
                    pyro.sample(f"x_{m}_{t}", masked_normal(loc, scale, observed).to_event(1),
                                obs=x[m][:, t] * observed)

    # ----------------------------------------------------------------------------------- using the model
    @torch.no_grad()
    def filter(self, x: dict, mask: dict) -> torch.Tensor:
        """log p(joint state_t | observed frames up to t), (B, T, S): the forward algorithm, normalised."""
        log_A = self.joint_transition()
        log_obs = self.joint_emission(mask).log_prob(self.concat(x, mask)[:, :, None])  # (B, T, S)
        alpha, out = self.initial_logits().expand(log_obs.shape[0], -1), []
        for t in range(log_obs.shape[1]):
            alpha = torch.logsumexp(alpha[:, :, None] + log_A, dim=1) + log_obs[:, t]
            alpha = alpha - alpha.logsumexp(-1, keepdim=True)
            out.append(alpha)
        return torch.stack(out, 1)

    @torch.no_grad()
    def predictive(self, x: dict, mask: dict, num_samples: int | None = None) -> dict:
        """Filtered predictive (mean, std) of every sensor, (B, T, D_m): a mixture over the joint states."""
        weights = self.filter(x, mask).exp()  # (B, T, S)
        joint = self.joint_emission({m: torch.ones_like(v) for m, v in mask.items()})
        loc, scale = joint.base_dist.loc[0, 0], joint.base_dist.scale[0, 0]  # (S, sum D)
        mean = weights @ loc
        std = (weights @ (scale ** 2 + loc ** 2) - mean ** 2).clamp_min(0).sqrt()
        out, start = {}, 0
        for m in self.names:
            out[m] = mean[..., start:start + self.widths[m]], std[..., start:start + self.widths[m]]
            start += self.widths[m]
        return out

    def log_likelihood(self, x: dict, mask: dict) -> torch.Tensor:
        """log p(observed frames), (B,): exact."""
        hmm = dist.DiscreteHMM(self.initial_logits(), self.joint_transition(), self.joint_emission(mask))
        return hmm.log_prob(self.concat(x, mask))


def enumerated_log_likelihood(hmm: MultimodalHMM, x: dict, mask: dict) -> torch.Tensor:
    """log p(x) summed over the batch, by enumerating ``model_markov``'s discrete sites (TraceEnum_ELBO)."""
    elbo = pyro.infer.TraceEnum_ELBO(max_plate_nesting=1)
    return -elbo.differentiable_loss(hmm.model_markov, poutine.block(hmm.guide), x, mask)
