"""How much of unseen speech can a per-frame code learnt from our training speech carry? A frame-wise
reference point for the speech priors' resynthesis table.

A frame-wise VAE in plain PyTorch (no recurrence, no Pyro): each 513-bin power frame |x|^2 -> encoder
(MLP 2 x WIDTH, on standardised log-power) -> z (Z-D Gaussian) -> decoder (MLP 2 x WIDTH) -> log v, trained
on random batches of frames with the speech priors' loss, the Itakura-Saito divergence (the Exponential
likelihood on |x|^2, up to a constant) plus the KL to N(0, I) (weight 1, warmed up over 2000 steps).
Resynthesis keeps the input phase and reads the encoder mean, as ``ppl-models resynth`` does; SI-SDR on
the training speakers and on the held-out ones (the resynthesis table's 50 ``test-other`` utterances).
It is the shipped prior's frame-wise cousin, trained on far more (frame) batches than an RVAE can be in the
same time. It is not an upper bound for a recurrent model, which also reads context (the reference's causal
RVAE beats its frame-wise VAE by 3.7 dB), but it shows what the code size alone lets through to new voices.

    python benchmarks/latent_capacity.py --data ../shared/data --device cuda --z-dims 16 64 \
        --speeds 1.0 0.85,0.9,0.95,1.0,1.05,1.1,1.15
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ppl_models.data.audio import list_audio_files, load_audio, peak_normalise, speed_perturb
from ppl_models.data.stft import istft, stft, trim_silence
from ppl_models.infer import resolve_device
from ppl_models.metrics.audio import si_sdr

TRAIN = ("speech_librispeech_resemblyzer/train-clean-100", "pyroomacoustics_samples/speech")
TEST = "speech_librispeech_resemblyzer/test-other"


def two_layer(in_dim: int, width: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, width), nn.Tanh(), nn.Linear(width, width), nn.Tanh(),
                         nn.Linear(width, out_dim))


class FrameVAE(nn.Module):
    def __init__(self, power: torch.Tensor, z_dim: int, width: int):
        super().__init__()
        log_power = torch.log(power + 1e-10)
        self.register_buffer("loc", log_power.mean(0))
        self.register_buffer("scale", log_power.std(0))
        self.encoder = two_layer(power.shape[-1], width, 2 * z_dim)
        self.decoder = two_layer(z_dim, width, power.shape[-1])
        with torch.no_grad():
            self.decoder[-1].bias.copy_(self.loc)  # start at the average spectrum

    def encode(self, power):
        loc, log_scale = self.encoder((torch.log(power + 1e-10) - self.loc) / self.scale).chunk(2, -1)
        return loc, log_scale.clamp(-10, 5)

    def loss(self, power, kl_weight: float):
        loc, log_scale = self.encode(power)
        log_v = self.decoder(loc + torch.exp(log_scale) * torch.randn_like(loc))
        ratio = power * torch.exp(-log_v)
        itakura_saito = (ratio - torch.log(ratio + 1e-10) - 1).sum(-1).mean()
        kl = 0.5 * (loc ** 2 + torch.exp(2 * log_scale) - 2 * log_scale - 1).sum(-1).mean()
        return itakura_saito + kl_weight * kl

    @torch.no_grad()
    def resynthesise(self, signal: np.ndarray, device) -> np.ndarray:
        spec = stft(torch.as_tensor(signal, dtype=torch.float32, device=device))  # (F, T)
        log_v = self.decoder(self.encode(spec.abs().square().T)[0]).T
        return istft(torch.exp(0.5 * log_v) * torch.exp(1j * torch.angle(spec)), length=len(signal)).cpu().numpy()


def frames(signals, speeds) -> torch.Tensor:
    """Every power frame of every (trimmed, peak-normalised) training utterance at every speed, (N, 513)."""
    return torch.cat([stft(torch.as_tensor(trim_silence(peak_normalise(speed_perturb(s, a))), dtype=torch.float32))
                      .abs().square().T for s in signals for a in speeds])


def mean_si_sdr(model, signals, device) -> float:
    return float(np.mean([si_sdr(s, model.resynthesise(s, device)) for s in signals]))


def run(train, test, z_dim, speeds, args, device) -> dict:
    torch.manual_seed(args.seed)
    power = frames(train, speeds).to(device)
    model = FrameVAE(power, z_dim, args.width).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    start = time.time()
    for step in range(args.steps):
        batch = power[torch.randint(0, len(power), (args.batch_size,), device=device)]
        loss = model.loss(batch, kl_weight=min(1.0, step / 2000))
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 100.0)
        optimizer.step()
    return {"z_dim": z_dim, "speeds": len(speeds), "frames": len(power), "seconds": time.time() - start,
            "train_si_sdr": mean_si_sdr(model, train[:10], device), "test_si_sdr": mean_si_sdr(model, test, device)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="the shared data folder (its speech sub-folders are read)")
    parser.add_argument("--z-dims", type=int, nargs="+", default=[16], help="latent sizes (default: 16)")
    parser.add_argument("--speeds", nargs="+", default=["1.0"],
                        help="speed-perturbation sets, each comma-separated (default: 1.0, none)")
    parser.add_argument("--steps", type=int, default=30000, help="Adam steps (default: 30000)")
    parser.add_argument("--batch-size", type=int, default=1024, help="frames per step (default: 1024)")
    parser.add_argument("--width", type=int, default=512, help="MLP width (default: 512)")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default: 1e-3)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    args = parser.parse_args(argv)
    root = Path(args.data)
    for folder in (*TRAIN, TEST):
        if not (root / folder).is_dir():
            parser.error(f"--data {root}: no folder {folder}")
    device = resolve_device(args.device)
    train = [peak_normalise(load_audio(f)) for folder in TRAIN for f in list_audio_files(root / folder)]
    test = [peak_normalise(load_audio(f)) for f in list_audio_files(root / TEST)]
    print("| z | speeds | training frames | steps | train SI-SDR (dB, 10 utt.) | held-out SI-SDR (dB, 50 utt.) | s |")
    print("|---|---|---|---|---|---|---|")
    for speeds in args.speeds:
        for z_dim in args.z_dims:
            r = run(train, test, z_dim, [float(a) for a in speeds.split(",")], args, device)
            print(f"| {z_dim} | {speeds} | {r['frames']} | {args.steps} | {r['train_si_sdr']:.2f} | "
                  f"{r['test_si_sdr']:.2f} | {r['seconds']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
