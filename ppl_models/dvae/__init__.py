"""The DVAE family as Pyro model/guide pairs: VAE, DKF, VRNN, SRNN, RVAE (causal and non-causal), and the
Transformer DVAEs with a sequence latent, HiT-DVAE and LigHT-DVAE."""

from __future__ import annotations

from ppl_models.dvae.base import DVAE
from ppl_models.dvae.dkf import DKF
from ppl_models.dvae.hit_dvae import HiTDVAE
from ppl_models.dvae.light_dvae import LigHTDVAE
from ppl_models.dvae.rvae import RVAE
from ppl_models.dvae.srnn import SRNN
from ppl_models.dvae.vae import VAE
from ppl_models.dvae.vrnn import VRNN

MODELS = {"vae": VAE, "dkf": DKF, "vrnn": VRNN, "srnn": SRNN, "rvae": RVAE, "hit-dvae": HiTDVAE,
          "light-dvae": LigHTDVAE}

# Sizes of the reference implementations: trajectories (4-D boxes; SRNN with LSTM(8), 4-D latent) and
# speech (513-bin power spectrograms; RVAE with LSTM(128), 16-D latent). ``residual`` (SRNN only, ignored by
# the others): the box decoder predicts the displacement from the previous frame (see dvae.srnn).
PRESETS = {
    "trajectory": dict(x_dim=4, z_dim=4, likelihood="gaussian", hidden=16, rnn_dim=8, residual=True),
    "speech": dict(x_dim=513, z_dim=16, likelihood="power", hidden=128, rnn_dim=128),
}


# How a trajectory prior reads boxes normalised by the frame size: ours (x1, y1, x2, y2) with y pointing up;
# MixDVAE's trajectory prior (x1, y1, x2, y1 - h) with the image's y pointing down (``mixdvae.tracking``).
BOX_FRAMES = ("y-up", "y-down")


def model_name(name: str) -> str:
    """The one spelling of a DVAE's name: lower case, and ``rvae-causal`` is ``rvae``."""
    return name.lower().removesuffix("-causal")


def build_dvae(name: str, kind: str = "trajectory", **overrides) -> DVAE:
    """A DVAE by name (``rvae-noncausal`` for the non-causal RVAE) with the preset sizes of ``kind``."""
    key = model_name(name)
    causal = not key.endswith("-noncausal")
    key = key.removesuffix("-noncausal")
    if key not in MODELS:
        raise ValueError(f"unknown DVAE {name!r}; known: {', '.join(MODELS)} (and rvae-noncausal)")
    if kind not in PRESETS:
        raise ValueError(f"kind must be one of {', '.join(PRESETS)}, got {kind!r}")
    config = {**PRESETS[kind], **overrides}
    if "decoder_layers" in overrides and key != "rvae":
        raise ValueError(f"decoder_layers is an option of rvae; {name} has its own fixed decoder")
    if overrides.get("velocity") and (key, kind) != ("srnn", "trajectory"):
        raise ValueError(f"velocity is an option of srnn trajectory priors, not of {name} ({kind})")
    if key == "rvae":
        config["causal"] = causal
    box_frame = config.pop("box_frame", "y-up")
    if box_frame not in BOX_FRAMES:
        raise ValueError(f"box_frame must be one of {', '.join(BOX_FRAMES)}, got {box_frame!r}")
    dvae = MODELS[key](**config)
    dvae.box_frame = box_frame
    return dvae


__all__ = ["DVAE", "DKF", "HiTDVAE", "LigHTDVAE", "RVAE", "SRNN", "VAE", "VRNN", "MODELS", "PRESETS", "build_dvae", "model_name"]
