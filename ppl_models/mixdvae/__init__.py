"""MixDVAE: a mixture of frozen DVAE sources with enumerated assignments (tracking, source separation)."""

from ppl_models.mixdvae.inference import GUIDES, MixFit, fit
from ppl_models.mixdvae.model import MixDVAE

__all__ = ["GUIDES", "MixDVAE", "MixFit", "fit"]
