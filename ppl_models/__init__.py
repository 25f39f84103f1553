"""ppl_models: a Pyro model zoo of deep latent-variable models for multimedia sequences.

The public API, one import away (``from ppl_models import load_prior, MixDVAE, enhance``)::

    from ppl_models import load_prior, load_audio, write_audio, enhance
    prior = load_prior("rvae-speech")                  # a shipped speech prior (or a checkpoint path)
    noisy = load_audio("noisy.wav")                     # mono, 16 kHz, float
    result = enhance([noisy], prior)                    # frozen prior + LV noise model, U-NA inference
    write_audio("clean.wav", result.signals[0])

Each name is imported on first use (``import ppl_models`` stays cheap and the command line starts fast); the
table below says where it lives. The command line (``ppl-models``) is a layer over these functions.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# name -> module that defines it, grouped by system.
_API = {
    # Priors: the DVAE family, shipped/trained/imported priors, resynthesis.
    "DVAE": "ppl_models.dvae", "VAE": "ppl_models.dvae", "DKF": "ppl_models.dvae", "VRNN": "ppl_models.dvae",
    "SRNN": "ppl_models.dvae", "RVAE": "ppl_models.dvae", "HiTDVAE": "ppl_models.dvae",
    "LigHTDVAE": "ppl_models.dvae", "build_dvae": "ppl_models.dvae",
    "load_prior": "ppl_models.dvae.train", "train_prior": "ppl_models.dvae.train",
    "export_prior": "ppl_models.dvae.train", "pretrained_names": "ppl_models.dvae.train",
    "import_prior": "ppl_models.dvae.reference", "resynthesize": "ppl_models.dvae.resynthesis",
    # MixDVAE: tracking and source separation.
    "MixDVAE": "ppl_models.mixdvae.model", "fit_mixdvae": "ppl_models.mixdvae.inference",
    "track_detections": "ppl_models.mixdvae.tracking", "separate": "ppl_models.mixdvae.separation",
    # Unsupervised speech enhancement.
    "NoisySpeech": "ppl_models.enhancement.model", "enhance": "ppl_models.enhancement.enhance",
    "load_noise_model": "ppl_models.enhancement.enhance",
    # Multi-sensor: imputation and fusion.
    "MultimodalVRNN": "ppl_models.multimodal.mvrnn", "MultimodalLDS": "ppl_models.multimodal.multimodal_lds",
    "MultimodalHMM": "ppl_models.multimodal.multimodal_hmm",
    "AttentionMixture": "ppl_models.multimodal.attention",
    "MarkovMixtureOfExperts": "ppl_models.multimodal.markov_experts",
    "build_imputer": "ppl_models.multimodal.imputation", "fit_imputer": "ppl_models.multimodal.imputation",
    "impute": "ppl_models.multimodal.imputation",
    "build_fusion_model": "ppl_models.multimodal.fusion", "fit_fusion": "ppl_models.multimodal.fusion",
    "predict_fusion": "ppl_models.multimodal.fusion",
    # Data readers for the file contracts, and metrics.
    "load_audio": "ppl_models.data.audio", "write_audio": "ppl_models.data.audio",
    "read_mot": "ppl_models.data.mot", "load_fusion": "ppl_models.data.fusion_files",
    "si_sdr": "ppl_models.metrics.audio", "score_audio": "ppl_models.metrics.audio",
    # Inference infrastructure.
    "train_svi": "ppl_models.infer.svi", "save_checkpoint": "ppl_models.infer.checkpoint",
    "load_checkpoint": "ppl_models.infer.checkpoint",
}

# Public names that are spelled differently in their module (several systems have a ``fit``).
_RENAMED = {"fit_mixdvae": "fit", "fit_imputer": "fit", "build_fusion_model": "build_model", "fit_fusion": "fit",
            "predict_fusion": "predict", "score_audio": "score"}

__all__ = sorted(_API)


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'ppl_models' has no attribute {name!r}")
    value = getattr(importlib.import_module(_API[name]), _RENAMED.get(name, name))
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
