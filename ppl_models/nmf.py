r"""Itakura-Saito NMF (Févotte, Bertin & Durrieu, "Nonnegative matrix factorization with the Itakura-Saito
divergence", Neural Computation 2009): the classical baseline of spectrogram source separation.

A power spectrogram V (F, T) is approximated by W H, W (F, K) spectral atoms, H (K, T) activations, by
minimising the IS divergence d(V | WH) = sum V / V^ - log(V / V^) - 1, V^ = W H. This is maximum likelihood of
the zero-mean complex Gaussian STFT model X_ft ~ CN(0, (WH)_ft) — the DVAEs' observation model with an NMF
in place of the decoder. Multiplicative updates (eq. 12-13 of the paper with beta = 0):

    H <- H * (W^T (V V^-2)) / (W^T V^-1)          W <- W * ((V V^-2) H^T) / (V^-1 H^T)

Supervised separation: learn one dictionary per source on its own training audio, keep them fixed, learn the
activations on the mixture, and filter it with each source's Wiener mask (W_n H_n) / (W H).
"""

from __future__ import annotations

import torch

EPS = 1e-12


def _update_activations(V, W, H):
    V_hat = (W @ H).clamp_min(EPS)
    return H * (W.T @ (V / V_hat ** 2)) / (W.T @ (1 / V_hat)).clamp_min(EPS)


def _update_atoms(V, W, H):
    V_hat = (W @ H).clamp_min(EPS)
    W = W * ((V / V_hat ** 2) @ H.T) / ((1 / V_hat) @ H.T).clamp_min(EPS)
    scale = W.sum(0, keepdim=True).clamp_min(EPS)  # unit-sum atoms: the gain moves to H
    return W / scale, H * scale.T


def is_divergence(V: torch.Tensor, V_hat: torch.Tensor) -> torch.Tensor:
    ratio = V.clamp_min(EPS) / V_hat.clamp_min(EPS)
    return (ratio - torch.log(ratio) - 1).sum()


def learn_dictionary(V: torch.Tensor, rank: int, iterations: int = 200, seed: int = 0) -> torch.Tensor:
    """Atoms W (F, rank) of power spectrogram(s) V (F, T) by IS-NMF from a random positive start."""
    if V.dim() != 2 or rank < 1:
        raise ValueError(f"need a 2-D spectrogram and rank >= 1, got shape {tuple(V.shape)} and rank {rank}")
    g = torch.Generator().manual_seed(seed)
    V = V.double().clamp_min(EPS)
    mean = V.mean()
    W = torch.rand(V.shape[0], rank, generator=g, dtype=V.dtype).add(0.1).to(V.device)
    H = torch.rand(rank, V.shape[1], generator=g, dtype=V.dtype).add(0.1).to(V.device) * mean
    for _ in range(iterations):
        H = _update_activations(V, W, H)
        W, H = _update_atoms(V, W, H)
    return W.float()


def fit_activations(V: torch.Tensor, W: torch.Tensor, iterations: int = 200) -> torch.Tensor:
    """Activations H (K, T) of V (F, T) on fixed atoms W (F, K)."""
    V, W = V.double().clamp_min(EPS), W.double()
    H = torch.full((W.shape[1], V.shape[1]), float(V.mean()), dtype=V.dtype, device=V.device)
    for _ in range(iterations):
        H = _update_activations(V, W, H)
    return H.float()


def nmf_masks(V: torch.Tensor, dictionaries: list[torch.Tensor], iterations: int = 200) -> torch.Tensor:
    """Wiener masks (N, F, T) of the N sources in mixture power V (F, T), one fixed dictionary per source."""
    W = torch.cat(dictionaries, dim=1)
    H = fit_activations(V, W, iterations)
    powers = torch.stack([d @ h for d, h in zip(dictionaries, H.split([d.shape[1] for d in dictionaries]))])
    return powers / powers.sum(0).clamp_min(EPS)
