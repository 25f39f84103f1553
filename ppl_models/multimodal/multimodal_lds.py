r"""Multimodal linear dynamical system: the linear-Gaussian twin of the multimodal HMM (Guo 2019, eq. 40):
a shared continuous state z^s_t and a private state z^m_t per sensor, each a linear-Gaussian chain.

    z^s_t = F_s z^s_{t-1} + N(0, diag q_s^2)        z^m_t = F_m z^m_{t-1} + N(0, diag q_m^2)
    x^m_t = C^m_s z^s_t + C^m_p z^m_t + b_m + N(0, diag r_m^2)

Stacking the chains into one state z_t = [z^s_t, z^1_t, .., z^M_t] makes a single linear-Gaussian state-space
model with a block-diagonal transition, scored exactly by Pyro's ``GaussianHMM`` (Kalman filtering inside its
``log_prob``). A missing frame of sensor m zeroes its rows of the observation matrix and gives its noise the
scale (2 pi)^(-1/2), so at value 0 it adds log 1 = 0, as in the multimodal HMM. :meth:`kalman_filter` is the
same computation written out (filtered means and covariances, and the log-likelihood); imputation reads the
filtered state: E[x^m_t | observed frames <= t] = C^m z_t|t + b_m, Var = C^m P_t|t C^m' + r_m^2.
(Pyro's convention: frame 0 follows one transition from ``initial_dist``, here N(0, I).)
"""

from __future__ import annotations

import math

import pyro
import pyro.distributions as dist
import torch
from torch import nn

from ppl_models.multimodal.multimodal_hmm import UNIT_DENSITY_SCALE


class MultimodalLDS(nn.Module):
    """Shared state of ``z_shared`` dims, private states of ``z_private`` dims; ``widths``: sensor -> D_m."""

    max_plate_nesting = 1
    variant = "lds"

    def __init__(self, widths: dict[str, int], z_shared: int = 4, z_private: int = 2):
        super().__init__()
        self.names, self.widths = sorted(widths), dict(widths)
        self.blocks = [z_shared] + [z_private] * len(self.names)  # state = [shared, private_1, .., private_M]
        self.transition_blocks = nn.ParameterList(nn.Parameter(0.9 * torch.eye(k)) for k in self.blocks)
        self.log_process_scale = nn.Parameter(torch.full((sum(self.blocks),), math.log(0.3)))
        self.loading = nn.ParameterDict({m: nn.Parameter(0.3 * torch.randn(z_shared + z_private, widths[m]))
                                         for m in self.names})  # rows: [shared dims, own private dims]
        self.bias = nn.ParameterDict({m: nn.Parameter(torch.zeros(widths[m])) for m in self.names})
        self.log_noise = nn.ParameterDict({m: nn.Parameter(torch.zeros(widths[m])) for m in self.names})

    @property
    def state_dim(self) -> int:
        return sum(self.blocks)

    def transition_matrix(self) -> torch.Tensor:
        """(H, H) block-diagonal, in Pyro's row convention z_t = z_{t-1} @ F."""
        return torch.block_diag(*self.transition_blocks)

    def observation_matrix(self) -> torch.Tensor:
        """(H, sum_m D_m): sensor m reads the shared block and its own private block."""
        z_s, cols = self.blocks[0], []
        for i, m in enumerate(self.names):
            col = self.loading[m].new_zeros(self.state_dim, self.widths[m])
            start = sum(self.blocks[:i + 1])
            col[:z_s], col[start:start + self.blocks[i + 1]] = self.loading[m][:z_s], self.loading[m][z_s:]
            cols.append(col)
        return torch.cat(cols, -1)

    def observation_terms(self, x: dict, mask: dict):
        """Per-frame (matrix (B, T, H, D), noise scale (B, T, D), value (B, T, D)) with missing dims neutralised."""
        observed = torch.cat([mask[m][..., None].expand(-1, -1, self.widths[m]) for m in self.names], -1)
        value = torch.cat([x[m] - self.bias[m] for m in self.names], -1) * observed
        matrix = self.observation_matrix() * observed[:, :, None, :]
        noise = torch.cat([self.log_noise[m].exp() for m in self.names]).expand_as(observed)
        return matrix, torch.where(observed > 0, noise, torch.full_like(noise, UNIT_DENSITY_SCALE)), value

    def hmm(self, x: dict, mask: dict) -> tuple[dist.GaussianHMM, torch.Tensor]:
        matrix, noise, value = self.observation_terms(x, mask)
        H = self.state_dim
        initial = dist.MultivariateNormal(value.new_zeros(H), torch.eye(H, device=value.device))
        process = dist.Normal(value.new_zeros(H), self.log_process_scale.exp()).to_event(1)
        observation = dist.Normal(torch.zeros_like(value), noise).to_event(1)
        return dist.GaussianHMM(initial, self.transition_matrix(), process, matrix, observation), value

    @torch.no_grad()
    def init_from(self, x: dict, mask: dict) -> "MultimodalLDS":
        """Biases at the observed means, noise at half the observed spread."""
        for m in self.names:
            frames = x[m][mask[m] > 0]
            self.bias[m].copy_(frames.mean(0))
            self.log_noise[m].copy_((0.5 * frames.std(0).clamp_min(1e-3)).log())
        return self

    # ------------------------------------------------------------------------------------ model / guide
    def model(self, x: dict, mask: dict):
        pyro.module("mlds", self)
        hmm, value = self.hmm(x, mask)
        with pyro.plate("sequences", value.shape[0], device=value.device):
            pyro.sample("x", hmm, obs=value)

    def guide(self, x: dict, mask: dict):
        pass  # the states are integrated out exactly by the Kalman filter in GaussianHMM.log_prob

    def log_likelihood(self, x: dict, mask: dict) -> torch.Tensor:
        hmm, value = self.hmm(x, mask)
        return hmm.log_prob(value)

    # ----------------------------------------------------------------------------------- using the model
    def kalman_filter(self, x: dict, mask: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Filtered state means (B, T, H) and covariances (B, T, H, H), and log p(observed frames) (B,)."""
        matrix, noise, value = self.observation_terms(x, mask)
        F, Q = self.transition_matrix(), torch.diag(self.log_process_scale.exp() ** 2)
        B, T, D = value.shape
        mean = value.new_zeros(B, self.state_dim)
        cov = torch.eye(self.state_dim, device=value.device).expand(B, -1, -1)
        means, covs, loglik = [], [], value.new_zeros(B)
        for t in range(T):
            mean, cov = mean @ F, F.T @ cov @ F + Q  # predict (row convention)
            C = matrix[:, t]  # (B, H, D)
            S = C.transpose(-1, -2) @ cov @ C + torch.diag_embed(noise[:, t] ** 2)  # innovation covariance
            chol = torch.linalg.cholesky(S)  # reads S's lower triangle: float32 asymmetry is harmless
            innovation = value[:, t] - (mean[:, None] @ C)[:, 0]
            loglik = loglik + dist.MultivariateNormal(torch.zeros_like(innovation), scale_tril=chol).log_prob(
                innovation)
            gain = torch.cholesky_solve((cov @ C).transpose(-1, -2), chol).transpose(-1, -2)  # (B, H, D)
            mean = mean + (gain @ innovation[..., None])[..., 0]
            cov = cov - gain @ C.transpose(-1, -2) @ cov
            cov = (cov + cov.transpose(-1, -2)) / 2  # keep it symmetric in float32
            means.append(mean)
            covs.append(cov)
        return torch.stack(means, 1), torch.stack(covs, 1), loglik

    @torch.no_grad()
    def predictive(self, x: dict, mask: dict, num_samples: int | None = None) -> dict:
        """Filtered predictive (mean, std) of every sensor, (B, T, D_m)."""
        means, covs, _ = self.kalman_filter(x, mask)
        C = self.observation_matrix()
        mean = means @ C
        var = torch.einsum("hd,btgh,gd->btd", C, covs, C)
        out, start = {}, 0
        for m in self.names:
            sl = slice(start, start + self.widths[m])
            out[m] = mean[..., sl] + self.bias[m], (var[..., sl] + self.log_noise[m].exp() ** 2).sqrt()
            start += self.widths[m]
        return out
