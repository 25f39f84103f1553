"""Single-channel source separation with MixDVAE (Lin, Girin & Alameda-Pineda, TMLR 2023): mixture waveform
in, one waveform per source out, from the paper's variational EM: the ``vem`` guide of
:class:`~ppl_models.mixdvae.separation_model.SpectralMixDVAE` (per-bin v_x = 0.03 |x|^2, sources started from
their decoders, uniform bin prior) and its exact E-W step, with the ELBO of the last iteration evaluated by
``TraceEnum_ELBO`` (bin assignments summed out).

As in the paper's protocol, the mixture's STFT is cut into segments of ``segment`` frames (50, the priors'
training length; the last segment overlaps the one before), each segment is scaled as if its waveform piece
were peak-normalised (the priors were trained on peak-normalised pieces), the segments are separated together
as one batch, and the estimates are scaled back and joined.

Output (``output``): the paper returns each source's posterior mean m_n. The mean is not a partition of the
mixture: in a bin that both priors find plausible, both m_n are close to x, so the quieter source (music at a
positive speech-to-music ratio) receives the louder one's bins. ``"share"`` (default) instead gives each source
the share of the mixture that its posterior power claims, x |m_n|^2 / sum_k |m_k|^2: the masks sum to one. On
12 validation mixtures (validation speakers and flute recordings, T = 50 and 100) the share scored 0.6-4.3 dB
higher SI-SDR on music and 0.1-1.4 dB lower on speech than the mean, and 20 iterations as well as the paper's
70 or better (more iterations let a source claim ever more bins).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from pyro.infer import TraceEnum_ELBO
from tqdm.auto import trange

from ppl_models.data.audio import check_signal
from ppl_models.data.stft import HOP_LENGTH, N_FFT, istft, stft
from ppl_models.mixdvae.separation_model import SpectralMixDVAE

SEGMENT = 50


@dataclass
class Separation:
    sources: np.ndarray  # (N, samples) estimated waveforms
    masks: np.ndarray  # (N, T, F) |m_n| / |x|
    beta: np.ndarray  # (N,) share of the mixture's power given to each source
    elbo: float  # the ELBO of the last iteration's q(z) q(s), summed over segments


def segment_starts(frames: int, segment: int) -> list[int]:
    """First frames of the segments that tile ``frames``: every ``segment``, the last one flush with the end."""
    if frames <= segment:
        return [0]
    starts = list(range(0, frames - segment + 1, segment))
    return starts if starts[-1] + segment == frames else starts + [frames - segment]


def separate(mixture: np.ndarray, priors: list, iterations: int = 20, segment: int = SEGMENT,
             noise_ratio: float = 0.03, output: str = "share", device="cpu", progress: bool = False) -> Separation:
    """Separate a mono 16 kHz ``mixture`` into ``len(priors)`` sources; ``output`` "share" or "mean" (the
    paper's); ``progress`` shows the iterations."""
    if output not in ("share", "mean"):
        raise ValueError(f"output must be 'share' or 'mean', got {output!r}")
    mixture = check_signal(np.asarray(mixture, dtype=np.float32), "mixture")
    length = len(mixture)
    mixture = np.pad(mixture, (0, max(0, N_FFT - length)))  # the STFT needs one whole window
    spec = stft(torch.as_tensor(mixture)).T.to(device)  # (T, F) complex
    frames = spec.shape[0]
    starts = segment_starts(frames, segment)
    width = min(segment, frames)
    peaks = torch.tensor([max(float(np.abs(mixture[s * HOP_LENGTH:(s + width - 1) * HOP_LENGTH + 1]).max()), 1e-8)
                          for s in starts], device=device)
    x = torch.stack([spec[s:s + width] for s in starts]) / peaks[:, None, None]  # (B, width, F)
    mix = SpectralMixDVAE([p.to(device) for p in priors], noise_ratio)
    m, elbo = run_vem(mix, torch.view_as_real(x).contiguous(), iterations, progress)
    if output == "share":
        power = m.abs().square()
        m = power / power.sum(0).clamp_min(1e-30) * x
    m = m * peaks[:, None, None]
    joined = torch.zeros(len(priors), frames, spec.shape[1], dtype=spec.dtype, device=device)
    for b, s in reversed(list(enumerate(starts))):  # the overlapping last segment first, then overwritten
        joined[:, s:s + width] = m[:, b]
    waves = np.stack([istft(m_n.T.cpu(), length=len(mixture)).numpy()[:length] for m_n in joined])
    masks = (joined.abs() / spec.abs().clamp_min(1e-12)).cpu().numpy()
    shares = joined.abs().square().sum((1, 2))
    return Separation(waves, masks, (shares / shares.sum()).cpu().numpy(), elbo)


@torch.no_grad()
def run_vem(mix: SpectralMixDVAE, x: torch.Tensor, iterations: int, progress: bool = False):
    """``iterations`` of the ``vem`` guide (E-Z, E-S) and :meth:`~SpectralMixDVAE.vem_update` (E-W) on mixtures
    x (B, T, F, 2); the last iteration's guide runs inside ``TraceEnum_ELBO``, which returns the ELBO of the
    final q(z) q(s) with w summed out (one evaluation costs about 2.5 guide runs, so only the last).
    Returns the posterior means m (N, B, T, F) complex and that ELBO."""
    mix.start(x)
    for i in trange(iterations, desc="separating", disable=not progress, leave=False):
        if i < iterations - 1:
            mix.guide_vem(x)
        else:
            elbo = -TraceEnum_ELBO(max_plate_nesting=mix.max_plate_nesting).loss(mix.model, mix.guide_vem, x)
        mix.vem_update(x)
    return torch.view_as_complex(mix.state.m.movedim(3, 0).contiguous()), elbo
