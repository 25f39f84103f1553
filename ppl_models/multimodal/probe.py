"""What does each latent chain of a trained MVRNN carry? A linear probe.

Encode every sequence with all its observed sensors, take each chain's encoder mean path (z^s_t for the shared
chain, z^m_t for sensor m's private chain: q's loc frame by frame, no noise), and fit a ridge regression from one
chain's z_t to a quantity of the same frame on the training sequences; score it by R^2 on the test sequences:

    R^2 = 1 - sum_t ||y_t - W z_t - b||^2 / sum_t ||y_t - mean(y)||^2        (over observed frames of y)

If the shared latent carries the common cause of the sensors, it predicts every sensor (and, where it is known,
the cause itself) better than another sensor's private latent does; a private latent predicts its own sensor.
A linear probe measures what can be read off linearly: a low R^2 says "not linearly", not "nothing".
"""

from __future__ import annotations

import numpy as np
import torch

from ppl_models.data.fusion_files import FusionData
from ppl_models.multimodal.imputation import Standardiser
from ppl_models.multimodal.mvrnn import MultimodalVRNN


@torch.no_grad()
def latent_paths(model: MultimodalVRNN, standard: Standardiser, data: FusionData, device="cpu",
                 batch_size: int = 256) -> dict[str, np.ndarray]:
    """Each chain's encoder mean path, chain key (``shared`` or a sensor) -> (N, T, z_dim)."""
    x, mask = standard.tensors(data, device)
    paths: dict[str, list] = {}
    for i in range(0, data.shape[0], batch_size):
        a = model.frames({m: v[i:i + batch_size] for m, v in x.items()},
                         {m: v[i:i + batch_size] for m, v in mask.items()})
        for key, q in model.latents("encoder", a).items():
            paths.setdefault(key, []).append(q.mean_path().cpu().numpy())
    return {key: np.concatenate(parts) for key, parts in paths.items()}


def ridge_r2(train_z: np.ndarray, train_y: np.ndarray, test_z: np.ndarray, test_y: np.ndarray,
             alpha: float = 1e-3) -> float:
    """Fit y = W z + b by ridge regression on the train rows, return R^2 on the test rows. z (n, Dz), y (n, Dy)."""
    mean_z, mean_y = train_z.mean(0), train_y.mean(0)
    zc, yc = train_z - mean_z, train_y - mean_y
    w = np.linalg.solve(zc.T @ zc + alpha * len(zc) * np.eye(zc.shape[1]), zc.T @ yc)
    residual = test_y - mean_y - (test_z - mean_z) @ w
    return float(1 - (residual ** 2).sum() / ((test_y - test_y.mean(0)) ** 2).sum())


def probe(model: MultimodalVRNN, standard: Standardiser, train: FusionData, test: FusionData,
          extra: dict[str, tuple[np.ndarray, np.ndarray]] | None = None, device="cpu") -> dict[str, dict[str, float]]:
    """R^2 of predicting each sensor's frames (and each ``extra`` quantity, name -> (train (N, T[, D]), test
    (N, T[, D]))) from each chain's z_t: ``{quantity: {chain: R^2}}``."""
    z_train, z_test = latent_paths(model, standard, train, device), latent_paths(model, standard, test, device)
    quantities = {m: (train.sensors[m], test.sensors[m], train.mask(m) > 0, test.mask(m) > 0) for m in train.names}
    for name, (y_train, y_test) in (extra or {}).items():
        quantities[name] = y_train, y_test, np.ones(train.shape, bool), np.ones(test.shape, bool)
    scores = {}
    for name, (y_train, y_test, keep_train, keep_test) in quantities.items():
        y_train, y_test = (y if y.ndim == 3 else y[..., None] for y in (y_train, y_test))
        scores[name] = {key: ridge_r2(z_train[key][keep_train], y_train[keep_train], z_test[key][keep_test],
                                      y_test[keep_test]) for key in z_train}
    return scores
