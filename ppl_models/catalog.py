"""What the zoo holds: one entry per model, shown by ``ppl-models list``.

Each system adds its entries here when it lands, so the command line, the docs and the tests see one list.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    name: str
    family: str
    guides: tuple[str, ...]
    summary: str
    module: str  # where the model/guide pair lives


CATALOG: tuple[Entry, ...] = (
    Entry("gmm", "teaching", ("map", "meanfield"),
          "Gaussian mixture with enumerated assignments: the smallest assignment model",
          "ppl_models.toy.gmm"),
    Entry("vae", "DVAE", ("encoder",), "frame-wise VAE, the no-dynamics baseline", "ppl_models.dvae.vae"),
    Entry("dkf", "DVAE", ("encoder",), "deep Kalman filter: a Markov chain of latents",
          "ppl_models.dvae.dkf"),
    Entry("vrnn", "DVAE", ("encoder",), "variational RNN: one recurrence over x and z",
          "ppl_models.dvae.vrnn"),
    Entry("srnn", "DVAE", ("encoder",), "stochastic RNN: deterministic RNN on x feeding a latent chain",
          "ppl_models.dvae.srnn"),
    Entry("rvae", "DVAE", ("encoder",), "recurrent VAE, causal (rvae) or non-causal (rvae-noncausal)",
          "ppl_models.dvae.rvae"),
    Entry("hit-dvae", "DVAE", ("encoder",),
          "hierarchical Transformer DVAE: sequence latent w + frame latents, causal-masked attention",
          "ppl_models.dvae.hit_dvae"),
    Entry("light-dvae", "DVAE", ("encoder",),
          "lightweight HiT-DVAE: sequence latent w, an LSTM alongside causal cross-attention",
          "ppl_models.dvae.light_dvae"),
    Entry("mixdvae", "MixDVAE", ("vem", "svi", "sampled-w"),
          "N frozen-DVAE sources + enumerated assignment of each observation: multi-object tracking",
          "ppl_models.mixdvae.model"),
    Entry("mixdvae-spectral", "MixDVAE", ("vem",),
          "N frozen spectrogram DVAEs + enumerated owner of each time-frequency bin: source separation",
          "ppl_models.mixdvae.separation_model"),
    Entry("enhance-lv", "speech enhancement", ("encoder",),
          "frozen RVAE speech prior + noise variance from the speech latents (BiLSTM): unsupervised denoising",
          "ppl_models.enhancement.model"),
    Entry("enhance-no", "speech enhancement", ("encoder",),
          "frozen RVAE speech prior + noise variance from the past noisy frames (causal LSTM)",
          "ppl_models.enhancement.model"),
    Entry("enhance-nolv", "speech enhancement", ("encoder",),
          "frozen RVAE speech prior + noise variance from past noisy frames and speech latents",
          "ppl_models.enhancement.model"),
    Entry("rvae-vem", "speech enhancement", ("encoder",),
          "frozen RVAE speech prior + rank-8 NMF noise by multiplicative updates (the baseline)",
          "ppl_models.enhancement.nmf_noise"),
    Entry("cam", "attention mixture", ("empty",),
          "conditional attention mixture: per-sensor experts + a gate, frame by frame (sensor fusion)",
          "ppl_models.multimodal.attention"),
    Entry("mam", "attention mixture", ("empty",),
          "Markov attention mixture: recurrent experts and gate", "ppl_models.multimodal.attention"),
    Entry("ram", "attention mixture", ("empty",),
          "recurrent attention mixture: experts look back with a causal dilated convolution",
          "ppl_models.multimodal.attention"),
    Entry("mme", "attention mixture", ("empty",),
          "Markov mixture of experts: the trusted sensor is a Markov chain, enumerated along time",
          "ppl_models.multimodal.markov_experts"),
    Entry("mvrnn", "multimodal VRNN", ("mlp",),
          "shared latent + one private latent per sensor, each with its own recurrence; imputes sensors",
          "ppl_models.multimodal.mvrnn"),
    Entry("multimodal-hmm", "multimodal VRNN", ("empty",),
          "shared + private discrete chains, exact by enumeration (the imputation baseline)",
          "ppl_models.multimodal.multimodal_hmm"),
    Entry("multimodal-lds", "multimodal VRNN", ("empty",),
          "shared + private linear-Gaussian chains, exact by Kalman filtering (GaussianHMM)",
          "ppl_models.multimodal.multimodal_lds"),
)


def find(name: str) -> Entry:
    for entry in CATALOG:
        if entry.name == name:
            return entry
    raise ValueError(f"unknown model {name!r}; known models: {', '.join(e.name for e in CATALOG)}")
