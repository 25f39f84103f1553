"""Analysis-resynthesis of speech through a speech prior: |X|^2 -> encoder -> decoder variance v -> sqrt(v)
with the input's phase -> inverse STFT. How well a prior re-synthesises unseen speech is the DVAE review's
measure of how much of speech it has learnt (RMSE, SI-SDR, PESQ, ESTOI against the input)."""

from __future__ import annotations

import torch

from ppl_models.data.stft import istft, stft


@torch.no_grad()
def resynthesize(dvae, signal, device="cpu") -> torch.Tensor:
    """A 1-D 16 kHz signal through ``dvae`` (a speech prior with the power likelihood) -> 1-D signal."""
    if dvae.likelihood.kind != "power":
        raise ValueError(f"resynthesis needs a speech prior (power likelihood), got a {dvae.likelihood.kind} one")
    x = torch.as_tensor(signal, dtype=torch.float32, device=device)
    peak = x.abs().max().clamp_min(1e-12)
    x = x / peak  # the priors are trained on peak-normalised speech (see data.spectrogram_dataset)
    spec = stft(x)  # (F, T)
    power = spec.abs().square().T.unsqueeze(0)  # (1, T, F)
    variance = dvae.reconstruct(power)[0].T  # (F, T)
    estimate = torch.sqrt(variance) * torch.exp(1j * torch.angle(spec))
    return (istft(estimate, length=len(x)) * peak).cpu()
