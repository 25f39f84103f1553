"""Multimodal systems: attention mixtures of per-sensor experts and the Markov mixture of experts."""

from ppl_models.multimodal.attention import AttentionMixture
from ppl_models.multimodal.markov_experts import MarkovMixtureOfExperts

__all__ = ["AttentionMixture", "MarkovMixtureOfExperts"]
