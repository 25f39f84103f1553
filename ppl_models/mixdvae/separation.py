"""Single-channel source separation with :class:`SpectralMixDVAE`: mixture waveform in, one waveform per
source out, each the inverse STFT of the source's posterior mean — the mixture under a soft mask.

The mixture is peak-normalised on the way in (the priors were trained on peak-normalised audio) and the
estimates are scaled back by the same gain, so they sum to about the mixture at its own level.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyro
import torch
from pyro.infer import SVI, TraceEnum_ELBO
from pyro.optim import Adam
from tqdm.auto import trange

from ppl_models.data.audio import check_signal
from ppl_models.data.stft import N_FFT, istft, stft
from ppl_models.mixdvae.separation_model import SpectralMixDVAE


@dataclass
class Separation:
    sources: np.ndarray  # (N, samples) estimated waveforms
    masks: np.ndarray  # (N, T, F) soft masks |m_n| / |x|
    noise_var: float
    beta: np.ndarray
    losses: list[float] = field(default_factory=list)


def separate(mixture: np.ndarray, priors: list, iterations: int = 100, device="cpu",
             progress: bool = False) -> Separation:
    """Separate a mono 16 kHz ``mixture`` into ``len(priors)`` sources by variational EM (guide ``vem``)."""
    mixture = check_signal(np.asarray(mixture, dtype=np.float32), "mixture")
    length = len(mixture)
    mixture = np.pad(mixture, (0, max(0, N_FFT - length)))  # the STFT needs one whole window
    gain = float(np.abs(mixture).max())
    spec = stft(torch.as_tensor(mixture / gain)).T.to(device)  # (T, F) complex
    x = torch.view_as_real(spec)[None].contiguous()  # (1, T, F, 2)
    mix = SpectralMixDVAE([p.to(device) for p in priors]).to(device)
    mix.start(x)
    with pyro.get_param_store().scope():
        svi = SVI(mix.model, mix.guide_vem, Adam({"lr": 1e-3}), loss=TraceEnum_ELBO(max_plate_nesting=3))
        losses = []
        for _ in trange(iterations, desc="separating", disable=not progress, leave=False):
            losses.append(svi.step(x))
            mix.vem_update(x)
    m = torch.view_as_complex(mix.state.m[0].permute(2, 0, 1, 3).contiguous())  # (N, T, F)
    waves = np.stack([istft(m_n.T.cpu(), length=len(mixture)).numpy()[:length] * gain for m_n in m])
    masks = (m.abs() / spec.abs().clamp_min(1e-12)).cpu().numpy()
    return Separation(waves, masks, float(mix.state.noise_var), mix.state.beta.cpu().numpy(), losses)
