r"""Ridge regression of one sensor on the others with +-k frames of context: the strongest simple imputer.

For target sensor y and the other sensors u^1 .. u^M (standardised, zeros where missing, o^m_t the observed flag),
frame t is predicted from the 2k + 1 frames around it:

    phi_t = [o^m_{t+j} u^m_{t+j}, o^m_{t+j}  for every m and j = -k .. k,  1]       (zeros outside the sequence)
    y_t   = W' phi_t + e_t,        e_t ~ N(0, diag s^2)

W minimises sum_t ||y_t - W' phi_t||^2 + alpha ||W||^2 over the observed training frames of y (closed form:
(Phi' Phi + alpha I) W = Phi' Y; alpha = 0 is ordinary least squares) and s^2 is the mean squared training
residual per dimension. k is chosen among ``contexts`` by the RMSE on a held-out tenth of the training
sequences, then W is refitted on all of them. The prediction reads k frames of the future: it is an offline
(smoothing) imputer, unlike the filtering models of :mod:`~ppl_models.multimodal.imputation`.

A linear map extrapolates without bound: an input far outside anything seen in training (an electrode artifact
of 30 robust units where training peaked at 11) gives an imputation as far out. With ``clip`` (default) every
input value is first clipped to its range over the observed training frames: on the test part of PhysioNet
a103l, whose artifact stretch goes 2-3 times beyond the training range, this cuts the RMSE of lead V from
lead II from 4.40 to 3.88; elsewhere it changes nothing (the inputs stay in range).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def context_design(x: dict, mask: dict, names: list[str], k: int) -> np.ndarray:
    """Phi (N, T, F) of the module docstring from (N, T, D_m) frames and (N, T) masks of the sensors ``names``."""
    parts = []
    for m in names:
        o = np.asarray(mask[m], np.float64)[..., None]
        parts.append(np.concatenate([np.asarray(x[m], np.float64) * o, o], -1))
    frames = np.concatenate(parts, -1)
    N, T, F = frames.shape
    padded = np.concatenate([np.zeros((N, k, F)), frames, np.zeros((N, k, F))], 1)
    window = [padded[:, k + j:k + j + T] for j in range(-k, k + 1)]
    return np.concatenate(window + [np.ones((N, T, 1))], -1)


def solve(design: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
    """W (F, D) minimising ||y - design W||^2 + alpha ||W||^2; design (R, F), y (R, D)."""
    gram = design.T @ design + alpha * np.eye(design.shape[1])
    return np.linalg.solve(gram, design.T @ y)


class RidgeImputer(nn.Module):
    """Ridge regression of ``target`` on the other sensors of ``widths`` (module docstring). Works in the
    standardised units of :class:`~ppl_models.multimodal.imputation.Standardiser`, like every imputer."""

    variant = "ridge"

    def __init__(self, widths: dict[str, int], target: str, contexts=(0, 1, 2, 4, 8), alpha: float = 1e-2,
                 clip: bool = True):
        super().__init__()
        if target not in widths or len(widths) < 2:
            raise ValueError(f"ridge needs a target among {sorted(widths)} and at least one other sensor")
        self.names, self.target = sorted(widths), target
        self.inputs = [m for m in self.names if m != target]
        self.contexts, self.alpha, self.clip = tuple(contexts), alpha, clip
        self.k, self.weight, self.noise, self.range = None, None, None, None

    def clipped(self, x: dict, mask: dict) -> dict:
        """The input sensors of x (numpy) clipped to their training range (unchanged without ``clip``)."""
        if not self.clip:
            return x
        if self.range is None:  # fitting: the range of the observed training frames
            self.range = {m: (x[m][mask[m] > 0].min(0), x[m][mask[m] > 0].max(0)) for m in self.inputs}
        return {**x, **{m: np.clip(x[m], *self.range[m]) for m in self.inputs}}

    def _fit(self, x: dict, mask: dict, k: int) -> tuple[np.ndarray, np.ndarray]:
        observed = np.asarray(mask[self.target]) > 0
        design = context_design(x, mask, self.inputs, k)[observed]
        y = np.asarray(x[self.target], np.float64)[observed]
        if len(y) < 2:
            raise ValueError(f"ridge: the target {self.target!r} has fewer than two observed training frames")
        weight = solve(design, y, self.alpha)
        return weight, np.sqrt(np.mean((y - design @ weight) ** 2, 0))

    def fit_closed_form(self, x: dict, mask: dict, val: tuple[dict, dict] | None = None) -> dict[int, float]:
        """Choose k by fitting on x, mask and scoring on ``val`` (each k's validation RMSE is returned), then
        fit W and s on x, mask and ``val`` together."""
        x, mask = _numpy(x), _numpy(mask)
        self.range = None
        if val is not None:
            vx, vmask = _numpy(val[0]), _numpy(val[1])
            self.clipped({m: np.concatenate([x[m], vx[m]]) for m in x},
                         {m: np.concatenate([mask[m], vmask[m]]) for m in mask})
            vx = self.clipped(vx, vmask)
        x = self.clipped(x, mask)
        scores = {}
        if val is not None and len(self.contexts) > 1:
            seen = vmask[self.target] > 0
            for k in self.contexts:
                weight, _ = self._fit(x, mask, k)
                pred = context_design(vx, vmask, self.inputs, k) @ weight
                scores[k] = float(np.sqrt(np.mean((pred - vx[self.target])[seen] ** 2)))
            self.k = min(scores, key=scores.get)
        else:
            self.k = self.contexts[len(self.contexts) // 2]
        if val is not None:  # refit on every training sequence
            x = {m: np.concatenate([x[m], vx[m]]) for m in x}
            mask = {m: np.concatenate([mask[m], vmask[m]]) for m in mask}
        self.weight, self.noise = self._fit(x, mask, self.k)
        return scores

    @torch.no_grad()
    def predictive(self, x: dict, mask: dict, num_samples: int | None = None) -> dict:
        """{target: (mean, std)}, (B, T, D) tensors; the target's own frames are never read."""
        if self.weight is None:
            raise RuntimeError("fit the ridge imputer first (fit_closed_form)")
        ref, mask = x[self.target], _numpy(mask)
        mean = context_design(self.clipped(_numpy(x), mask), mask, self.inputs, self.k) @ self.weight
        std = np.broadcast_to(self.noise, mean.shape)
        return {self.target: (torch.as_tensor(mean, dtype=ref.dtype, device=ref.device),
                              torch.as_tensor(std.copy(), dtype=ref.dtype, device=ref.device))}


def _numpy(d: dict) -> dict:
    return {k: v.detach().cpu().numpy() if torch.is_tensor(v) else np.asarray(v) for k, v in d.items()}
