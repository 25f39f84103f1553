"""What does each latent chain of a trained MVRNN carry? A linear probe.

Encode every sequence with all its observed sensors, take each chain's encoder mean path (z^s_t for the shared
chain, z^m_t for sensor m's private chain: q's loc frame by frame, no noise), and fit a ridge regression from one
chain's z_t to a quantity of the same frame on the training sequences; score it by R^2 on the test sequences:

    R^2 = 1 - sum_t ||y_t - W z_t - b||^2 / sum_t ||y_t - mean(y)||^2        (over observed frames of y)

If the shared latent carries the common cause of the sensors, it predicts every sensor (and, where it is known,
the cause itself) better than another sensor's private latent does; a private latent may carry what is its own
sensor's alone, where that is worth a latent (the synthetic sensor b's private part is not: 1-4 % of b, its
new part per frame below the noise).
A linear probe measures what can be read off linearly: a low R^2 says "not linearly", not "nothing"; and a
high one is no proof of learning: an untrained network's chains, random functions of the sensors' past, already
carry much of a smooth cause (compare with the probe of the same network before training).

``states=True`` also probes each chain's whole state at frame t, [z_t, h_t] (key ``<chain>+h``), h_t its
recurrence after z_<t and the chain's sensors before t. The emissions read z^s_t and h^s_t (the shared
recurrence), so what the shared chain carries need not be in z^s_t: on the synthetic data, whose shared cause
is an oscillation that h^s_t predicts from the past, how much of it lands in z^s_t varies from one training
seed to the next, while [z^s_t, h^s_t] carries it every time.
"""

from __future__ import annotations

import numpy as np
import torch

from ppl_models.data.fusion_files import FusionData
from ppl_models.multimodal.imputation import Standardiser
from ppl_models.multimodal.mvrnn import MultimodalVRNN


@torch.no_grad()
def latent_paths(model: MultimodalVRNN, standard: Standardiser, data: FusionData, device="cpu",
                 batch_size: int = 256, states: bool = False) -> dict[str, np.ndarray]:
    """Each chain's encoder mean path, chain key (``shared`` or a sensor) -> (N, T, z_dim); with ``states``,
    also each chain's state [z_t, h_t] along that path, key ``<chain>+h`` -> (N, T, z_dim + rnn_dim)."""
    x, mask = standard.tensors(data, device)
    paths: dict[str, list] = {}
    chains = model.chains() if states else None
    for i in range(0, data.shape[0], batch_size):
        a = model.frames({m: v[i:i + batch_size] for m, v in x.items()},
                         {m: v[i:i + batch_size] for m, v in mask.items()})
        ctx = model.contexts(a) if states else None  # the recurrences' inputs, only for the [z_t, h_t] states
        for key, q in model.latents("encoder", a).items():
            z = q.mean_path()
            paths.setdefault(key, []).append(z.cpu().numpy())
            if states:
                state = torch.cat([z, chains[key].states(z, ctx[key])], -1)
                paths.setdefault(f"{key}+h", []).append(state.cpu().numpy())
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
          extra: dict[str, tuple[np.ndarray, np.ndarray]] | None = None, device="cpu",
          states: bool = False) -> dict[str, dict[str, float]]:
    """R^2 of predicting each sensor's frames (and each ``extra`` quantity, name -> (train (N, T[, D]), test
    (N, T[, D]))) from each chain's z_t (and, with ``states``, its [z_t, h_t]): ``{quantity: {chain: R^2}}``."""
    z_train, z_test = (latent_paths(model, standard, data, device, states=states) for data in (train, test))
    quantities = {m: (train.sensors[m], test.sensors[m], train.mask(m) > 0, test.mask(m) > 0) for m in train.names}
    for name, (y_train, y_test) in (extra or {}).items():
        quantities[name] = y_train, y_test, np.ones(train.shape, bool), np.ones(test.shape, bool)
    scores = {}
    for name, (y_train, y_test, keep_train, keep_test) in quantities.items():
        y_train, y_test = (y if y.ndim == 3 else y[..., None] for y in (y_train, y_test))
        scores[name] = {key: ridge_r2(z_train[key][keep_train], y_train[keep_train], z_test[key][keep_test],
                                      y_test[keep_test]) for key in z_train}
    return scores
