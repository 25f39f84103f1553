"""Itakura-Saito NMF: the supervised separation baseline recovers sources whose atoms it has learned."""

import torch

from ppl_models.nmf import fit_activations, is_divergence, learn_dictionary, nmf_masks


def two_sources(T=200, seed=0):
    """Power spectrograms (F=12, T) of two sources with disjoint spectral supports (bins 0-5 and 6-11), each
    a complex-Gaussian STFT (Exponential powers) around a rank-2 NMF mean."""
    g = torch.Generator().manual_seed(seed)
    powers = []
    for lo in (0, 6):
        W = torch.zeros(12, 2)
        W[lo:lo + 6] = torch.rand(6, 2, generator=g) + 0.1
        mean = W @ (torch.rand(2, T, generator=g) + 0.05)
        powers.append(mean * torch.empty(12, T).exponential_(generator=g))
    return powers


def test_multiplicative_updates_fit_the_training_spectrogram():
    V, _ = two_sources()
    W = learn_dictionary(V, rank=2, iterations=300)
    assert torch.allclose(W.sum(0), torch.ones(2))  # unit-sum atoms
    H_start = torch.full((2, V.shape[1]), float(V.mean()))
    H = fit_activations(V, W, iterations=300)
    assert is_divergence(V, W @ H) < 0.5 * is_divergence(V, W @ H_start)
    assert float(W[6:].sum()) < 1e-3  # no energy learned where the source has none


def test_supervised_masks_separate_sources_with_learned_atoms():
    train = two_sources(seed=1)
    dictionaries = [learn_dictionary(V, rank=2, iterations=300) for V in train]
    V1, V2 = two_sources(seed=2)
    masks = nmf_masks(V1 + V2, dictionaries)
    assert masks.shape == (2, 12, 200)
    torch.testing.assert_close(masks.sum(0), torch.ones(12, 200))
    assert float(masks[0, :6].min()) > 0.99 and float(masks[1, 6:].min()) > 0.99
