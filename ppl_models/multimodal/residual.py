r"""A latent-variable model of what ridge regression leaves: the target is its ridge prediction plus a residual
that a multimodal model (the MVRNN, or the LDS) predicts from the other sensors.

    m_t  = W' phi_t(u)                          ridge on the other sensors' frames t-k .. t+k (ridge.py)
    r_t  = x^y_t - m_t                          the residual of the target y
    p(u, m, r) = MVRNN over the sensors {u^1 .. u^M, m, r}         (mvrnn.py, eq. 42-47; or the LDS)

Imputation: E[x^y_t | u] = m_t + E[r_t | u, m],  Var[x^y_t | u] = Var[r_t | u, m]; the inner model's
posterior predictive of r reads u and m, never y. Where the inner model knows nothing, E[r_t] = 0 (r is centred
on the training frames) and the imputation falls back to ridge; what it adds is the non-linear part and a
frame-by-frame std (ridge's is one number per dimension).

Training: ridge in closed form (k chosen on held-out windows), then the inner model on the training windows
with r computed there, r hidden from its networks in every training sequence (``hide``) and still scored, so
that it learns exactly the conditional p(r | u, m) that imputation asks of it. The ridge prediction m reaches the
inner model as a sensor of its own: through it the filtering model reads k frames of the other sensors' future.

Reading the target where it is seen (``reads_target``, model name ``ridge+mvrnn-own``). Imputing through a gap,
the target's own frames around it are known; the default never reads them (the std above is what it gives with
the target missing whole). With ``reads_target`` the inner model reads r where y is seen, and is trained with
the usual modality dropout on r (hidden whole or in a gap in some sequences) instead of r hidden in all: where
the target has dynamics of its own that the other sensors do not carry, r's frames before a gap tell how it
goes on (benchmarks/imputation.py --gap on ``export-multimodal --dataset private-dynamics``).

Outside the training range. Where an input frame within t-k .. t+k leaves its sensor's training range by more
than ``margin`` times that range (an electrode artifact), neither the regression nor the residual model has
seen anything like it; the imputation of frame t is then the target's training marginal, N(mean, std^2) of its
observed training frames, instead of an extrapolation (``fallback_frames`` says where).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ppl_models.data.fusion_files import FusionData
from ppl_models.multimodal.ridge import RidgeImputer


class ResidualImputer(nn.Module):
    """``ridge`` and ``inner`` (a model of the sensors ``inner_widths(widths, target)``, built by the caller)."""

    def __init__(self, widths: dict[str, int], target: str, inner: nn.Module, margin: float | None = 0.1,
                 reads_target: bool = False):
        super().__init__()
        self.names, self.target, self.margin, self.reads_target = sorted(widths), target, margin, reads_target
        self.ridge = RidgeImputer(widths, target)
        self.inner = inner
        self.inner_standard = None  # set by imputation.fit

    @property
    def variant(self) -> str:
        return f"ridge+{self.inner.variant}" + ("-own" if self.reads_target else "")

    @staticmethod
    def inner_widths(widths: dict[str, int], target: str) -> dict[str, int]:
        """The inner model's sensors: the others, the ridge prediction ``<target>_ridge`` and the residual."""
        return {**widths, f"{target}_ridge": widths[target]}

    def inner_data(self, x: dict, mask: dict) -> FusionData:
        """The inner model's sensors from standardised frames x, mask (tensors): the other sensors clipped to
        their training range as ridge reads them, the ridge prediction and the residual (where y is seen)."""
        mean = self.ridge.predictive(x, mask)[self.target][0].cpu().numpy()
        x = {m: v.detach().cpu().numpy() for m, v in x.items()}
        mask = {m: v.detach().cpu().numpy().astype(np.float32) for m, v in mask.items()}
        sensors = self.ridge.clipped(x, mask)
        sensors[self.target] = (x[self.target] - mean) * mask[self.target][..., None]
        sensors[f"{self.target}_ridge"] = mean
        mask[f"{self.target}_ridge"] = np.ones_like(mask[self.target])
        return FusionData({m: sensors[m].astype(np.float32) for m in sorted(sensors)}, None, mask)

    def fallback_frames(self, x: dict, mask: dict) -> np.ndarray:
        """(B, T) bool: frames whose t-k .. t+k hold an observed input value outside its sensor's training range
        widened by ``margin`` times the range on either side (never, with ``margin`` None)."""
        out = np.zeros(mask[self.target].shape, bool)
        if self.margin is None:
            return out
        for m in self.ridge.inputs:
            lo, hi = self.ridge.range[m]
            width = self.margin * (hi - lo)
            v = x[m].detach().cpu().numpy()
            out |= ((v < lo - width) | (v > hi + width)).any(-1) & (mask[m].cpu().numpy() > 0)
        k = self.ridge.k
        padded = np.pad(out, ((0, 0), (k, k)))
        return np.any([padded[:, j:j + out.shape[1]] for j in range(2 * k + 1)], axis=0)

    @torch.no_grad()
    def predictive(self, x: dict, mask: dict, num_samples: int = 32) -> dict:
        """{target: (mean, std)} in the outer standardised units; the target's own frames are read only with
        ``reads_target`` (where its mask is 1)."""
        if not self.reads_target:
            mask = {**mask, self.target: torch.zeros_like(mask[self.target])}
        data = self.inner_data(x, mask)
        ix, imask = self.inner_standard.tensors(data, x[self.target].device)
        r_mean, r_std = self.inner.predictive(ix, imask, num_samples=num_samples)[self.target]
        loc, scale = (torch.as_tensor(v, dtype=r_mean.dtype, device=r_mean.device)
                      for v in (self.inner_standard.loc[self.target], self.inner_standard.scale[self.target]))
        ridge = torch.as_tensor(data.sensors[f"{self.target}_ridge"], device=r_mean.device)
        mean, std = ridge + r_mean * scale + loc, r_std * scale
        fallback = torch.as_tensor(self.fallback_frames(x, mask), device=mean.device)[..., None]
        # the marginal in the standardised units the caller's Standardiser set: mean 0, std 1
        return {self.target: (mean.masked_fill(fallback, 0.0), std.masked_fill(fallback, 1.0))}
