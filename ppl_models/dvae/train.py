"""Pre-training a DVAE sequence prior: data, KL warm-up, checkpoints, and loading a trained prior back.

Trajectory priors train on the synthetic MixDVAE trajectories (60 frames, 4-D boxes); speech priors on
fixed-length power-spectrogram segments of a folder of utterances (or of synthetic speech-like audio).
"""

from __future__ import annotations

from pathlib import Path

import pyro
import torch
from torch.utils.data import DataLoader, TensorDataset

from ppl_models.data.synthetic import sample_trajectories, speech_like
from ppl_models.dvae import PRESETS, build_dvae
from ppl_models.infer import CheckpointError, load_checkpoint, train_svi
from ppl_models.infer.distributed import AllReduceOptim, init_distributed
from ppl_models.infer.svi import make_optimizer


def prior_data(kind: str, data: str = "synthetic", segment_frames: int = 50, size: int = 512, seed: int = 0):
    """(train, validation) tensors (N, T, x_dim) for a ``trajectory`` or ``speech`` prior."""
    if kind == "trajectory":
        if data != "synthetic":
            raise ValueError(f"--data {data}: trajectory priors train on 'synthetic' trajectories only for now")
        return (torch.as_tensor(sample_trajectories(size, seed=seed)),
                torch.as_tensor(sample_trajectories(max(size // 8, 8), seed=seed + 10_000)))
    if kind != "speech":
        raise ValueError(f"--kind must be trajectory or speech, got {kind!r}")
    from ppl_models.data.spectrogram_dataset import segments_of

    if data == "synthetic":
        utterances = [speech_like(3.0, seed=seed + i) for i in range(max(size // 12, 2))]
        segments = segments_of(utterances, segment_frames)
    else:
        from ppl_models.data.spectrogram_dataset import SpectrogramSegments

        segments = SpectrogramSegments(data, segment_frames).segments
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(segments), generator=generator)
    n_val = max(1, len(segments) // 10)
    return segments[order[n_val:]], segments[order[:n_val]]


def train_prior(kind: str, model: str, out: str | Path, data: str = "synthetic", epochs: int = 50,
                batch_size: int = 32, lr: float = 1e-3, warmup_epochs: int = 10, device="cpu", resume: bool = False,
                seed: int = 0, size: int = 512, progress: bool = True, **sizes):
    """Train a DVAE prior by SVI with a linear KL warm-up; checkpoint to ``out`` every epoch.

    Under ``torchrun --nproc_per_node=K`` each process trains on every K-th sequence and gradients are
    averaged across processes (:mod:`ppl_models.infer.distributed`); only rank 0 writes the checkpoint.
    """
    device = torch.device(device)
    rank, world = init_distributed(device)
    pyro.set_rng_seed(seed)  # the same seed everywhere: identical initial replicas
    pyro.clear_param_store()
    train, val = prior_data(kind, data, size=size, seed=seed)
    dvae = build_dvae(model, kind, **sizes).to(device)
    config = {"model": model, "kind": kind, **PRESETS[kind], **sizes}
    batches = DataLoader(TensorDataset(train[rank::world].to(device)), batch_size=batch_size, shuffle=True)
    val_batches = [(val.to(device),)]
    optimizer = make_optimizer("clipped_adam", lr=lr)
    history = train_svi(dvae.model, dvae.guide, batches, epochs=epochs, val_batches=val_batches,
                        optimizer=AllReduceOptim.wrapping(optimizer) if world > 1 else optimizer,
                        modules={"dvae": dvae},
                        name=f"dvae-{model}", config=config, checkpoint=out, write_checkpoint=rank == 0,
                        resume=resume, progress=progress and rank == 0,
                        step_kwargs=lambda e: {"annealing": min(1.0, (e + 1) / max(warmup_epochs, 1))})
    return dvae, history


def load_prior(path: str | Path, device="cpu"):
    """A trained DVAE from its checkpoint, in eval mode with gradients off (a frozen prior)."""
    state = load_checkpoint(path)  # checks the file is a readable ppl_models checkpoint
    config = dict(state["config"])
    if "model" not in config or "dvae" not in state["modules"]:
        raise CheckpointError(f"{path}: holds model {state['name']!r}, not a DVAE prior")
    name, kind = config.pop("model"), config.pop("kind")
    dvae = build_dvae(name, kind, **config)
    dvae.load_state_dict(state["modules"]["dvae"])
    return dvae.to(device).eval().requires_grad_(False)
