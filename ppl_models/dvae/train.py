"""Pre-training a DVAE sequence prior: data, KL warm-up, checkpoints, and loading a trained prior back.

Trajectory priors train on the synthetic MixDVAE trajectories (60 frames, 4-D boxes) or on segments of the
ground-truth tracks of MOTChallenge sequences; speech priors on fixed-length power-spectrogram segments of a
folder of utterances (or of synthetic speech-like audio).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyro
import torch
from torch.utils.data import DataLoader, TensorDataset

from ppl_models.data.synthetic import sample_trajectories, speech_like
from ppl_models.dvae import PRESETS, build_dvae, model_name
from ppl_models.infer import CheckpointError, load_checkpoint, train_svi
from ppl_models.infer.checkpoint import atomic_torch_save
from ppl_models.infer.distributed import AllReduceOptim, init_distributed
from ppl_models.infer.svi import make_optimizer


def prior_data(kind: str, data: str = "synthetic", segment_frames: int = 50, size: int = 512, seed: int = 0,
               segment_hop: int | None = None, speeds=(1.0,)):
    """(train, validation) tensors (N, T, x_dim) for a ``trajectory`` or ``speech`` prior.

    ``data``: ``synthetic``, or one folder or several separated by commas: of utterances for speech, of
    MOTChallenge sequences (SEQ/gt/gt.txt + SEQ/seqinfo.ini) for trajectories. Real data is split by
    utterance or track (every tenth one validates), so that training segments cut every ``segment_hop``
    frames (overlapping when shorter than ``segment_frames``) never share frames with validation ones.
    ``speeds`` (speech): the training utterances are used once per speed factor (speed perturbation); the
    validation ones as they are."""
    if kind == "trajectory":
        if data == "synthetic":
            return (torch.as_tensor(sample_trajectories(size, seed=seed)),
                    torch.as_tensor(sample_trajectories(max(size // 8, 8), seed=seed + 10_000)))
        return mot_trajectory_data(data.split(","), 60, segment_hop or 15, seed)
    if kind != "speech":
        raise ValueError(f"--kind must be trajectory or speech, got {kind!r}")
    from ppl_models.data.spectrogram_dataset import SpectrogramSegments, segments_of

    if data == "synthetic":
        utterances = [speech_like(3.0, seed=seed + i) for i in range(max(size // 12, 2))]
        split = lambda part, hop, speeds=(1.0,): segments_of(part, segment_frames, hop, speeds)  # noqa: E731
    else:
        from ppl_models.data.audio import list_audio_files

        utterances = [f for folder in data.split(",") for f in list_audio_files(folder)]
        if len(utterances) < 2:
            raise ValueError(f"--data {data}: need at least two audio files (.wav, .flac, .ogg), "
                             f"found {len(utterances)}")
        split = lambda part, hop, speeds=(1.0,): SpectrogramSegments(  # noqa: E731
            part, segment_frames, hop_frames=hop, speeds=speeds).segments
    order = torch.randperm(len(utterances), generator=torch.Generator().manual_seed(seed)).tolist()
    n_val = max(1, len(utterances) // 10)
    return (split([utterances[i] for i in order[n_val:]], segment_hop, speeds),
            split([utterances[i] for i in order[:n_val]], None))


def mot_trajectory_data(folders: list[str], length: int, hop: int, seed: int = 0):
    """(train, validation) real trajectories (M, length, 4) in the prior's coordinates (y up) from the ground
    truth of MOTChallenge sequences; each folder is a sequence or holds sequences."""
    from ppl_models.data.mot import read_mot, read_seqinfo
    from ppl_models.data.track_windows import track_segments
    from ppl_models.mixdvae.tracking import to_prior_coords

    sequences = [s for f in map(Path, folders) for s in ([f] if (f / "gt").is_dir() else sorted(f.iterdir()))
                 if (s / "gt" / "gt.txt").is_file()]
    if not sequences:
        raise ValueError(f"--data {','.join(folders)}: no MOTChallenge sequence (SEQ/gt/gt.txt) found")
    boxes, tracks = [], []
    for number, seq in enumerate(sequences):
        info = read_seqinfo(seq)
        b, ids = track_segments(read_mot(seq / "gt" / "gt.txt"), length, hop,
                                (float(info["imWidth"]), float(info["imHeight"])))
        boxes.append(b)
        tracks += [(number, i) for i in ids]
    boxes = torch.as_tensor(to_prior_coords(np.concatenate(boxes)), dtype=torch.float32)
    names = sorted(set(tracks))
    order = torch.randperm(len(names), generator=torch.Generator().manual_seed(seed)).tolist()
    held_out = {names[i] for i in order[:max(1, len(names) // 10)]}  # a random tenth of the tracks validates
    val = torch.tensor([t in held_out for t in tracks], dtype=torch.bool)
    return boxes[~val], boxes[val]


def train_prior(kind: str, model: str, out: str | Path, data: str = "synthetic", epochs: int = 50,
                batch_size: int = 32, lr: float = 1e-3, warmup_epochs: int = 10, device="cpu", resume: bool = False,
                seed: int = 0, size: int = 512, progress: bool = True, scheduled_sampling: float = 0.0,
                patience: int | None = None, segment_hop: int | None = None, speeds=(1.0,), init=None, **sizes):
    """Train a DVAE prior by SVI with a linear KL warm-up; checkpoint to ``out`` every epoch.

    ``scheduled_sampling`` (SRNN, VRNN): after the warm-up, the probability that the decoder reads its own
    prediction instead of the data as x_{t-1} ramps linearly from 0 to this value by mid-training
    (:meth:`~ppl_models.dvae.base.DVAE.scheduled_past`). ``patience``: stop when the validation loss has not
    improved for that many epochs and keep the best parameters (small corpora overfit). ``segment_hop``
    (speech): cut training segments every that many frames, overlapping ones augmenting a small corpus;
    ``speeds`` (speech): use each training utterance once per speed factor (:func:`prior_data`). ``init``: start
    from the weights of a trained prior (a checkpoint or a shipped name) instead of a fresh network, to train it
    longer or fine-tune it on other data; it fixes the architecture and the input standardisation, so ``sizes``
    must be empty and ``model`` and ``kind`` must be its own.

    Under ``torchrun --nproc_per_node=K`` each process trains on every K-th sequence and gradients are
    averaged across processes (:mod:`ppl_models.infer.distributed`); only rank 0 writes the checkpoint.
    """
    device = torch.device(device)
    rank, world = init_distributed(device)
    pyro.set_rng_seed(seed)  # the same seed everywhere: identical initial replicas
    pyro.clear_param_store()
    if kind != "speech" and tuple(speeds) != (1.0,):
        raise ValueError(f"speed perturbation is for speech priors, not {kind!r} ones")
    train, val = prior_data(kind, data, size=size, seed=seed, segment_hop=segment_hop, speeds=speeds)
    if init is None:
        dvae = build_dvae(model, kind, **sizes).adapt_to(train)
        config = {"model": model, "kind": kind, **PRESETS[kind], **sizes}
    else:
        dvae, config = _initial_dvae(init, model, kind, sizes)
    dvae = dvae.to(device)
    if scheduled_sampling:
        config["scheduled_sampling"] = scheduled_sampling
    loader = DataLoader(TensorDataset(train[rank::world].to(device)), batch_size=batch_size, shuffle=True)
    ramp = max(1, epochs // 2 - warmup_epochs)

    def batches(epoch):
        ratio = scheduled_sampling * min(1.0, max(0, epoch + 1 - warmup_epochs) / ramp)
        return ((x, dvae.scheduled_past(x, ratio)) for (x,) in loader)

    val_batches = [(val.to(device),)]
    optimizer = make_optimizer("clipped_adam", lr=lr)
    history = train_svi(dvae.model, dvae.guide, batches, epochs=epochs, val_batches=val_batches, patience=patience,
                        optimizer=AllReduceOptim.wrapping(optimizer) if world > 1 else optimizer,
                        modules={"dvae": dvae},
                        name=f"dvae-{model}", config=config, checkpoint=out, write_checkpoint=rank == 0,
                        resume=resume, progress=progress and rank == 0,
                        step_kwargs=lambda e: {"annealing": min(1.0, (e + 1) / max(warmup_epochs, 1))})
    return dvae, history


PRETRAINED = Path(__file__).resolve().parent.parent / "pretrained"  # shipped priors: NAME.pt + MODEL_CARD.md


def pretrained_names() -> list[str]:
    return sorted(p.stem for p in PRETRAINED.glob("*.pt"))


def _prior_file(path: str | Path) -> Path:
    """A checkpoint path, or the file of a shipped prior named ``path``."""
    if not Path(path).is_file() and str(path) in pretrained_names():
        return PRETRAINED / f"{path}.pt"
    if not Path(path).exists():
        raise FileNotFoundError(f"{path}: no such checkpoint, nor a shipped prior ({', '.join(pretrained_names())})")
    return Path(path)


def load_prior(path: str | Path, device="cpu"):
    """A trained DVAE, in eval mode with gradients off (a frozen prior), from its checkpoint file or by the
    name of a shipped prior (e.g. ``srnn-trajectory``, ``rvae-speech``: see ``ppl_models/pretrained``)."""
    dvae, _ = _dvae_of(_prior_file(path))
    return dvae.to(device).eval().requires_grad_(False)


def _initial_dvae(init: str | Path, model: str, kind: str, sizes: dict):
    """(DVAE, config) of the trained prior ``init``, to be trained further as ``model`` on ``kind`` data."""
    dvae, state = _dvae_of(_prior_file(init))
    config = {k: v for k, v in state["config"].items() if k != "scheduled_sampling"}
    if (model_name(config["model"]), config["kind"]) != (model_name(model), kind):
        raise ValueError(f"--init {init} is a {config['model']} {config['kind']} prior, not {model} ({kind})")
    if sizes:
        flags = ", ".join("--" + key.replace("_", "-") for key in sorted(sizes))
        raise ValueError(f"--init {init} fixes the sizes; drop {flags}")
    return dvae.train(), config


def _dvae_of(path: str | Path):
    """(DVAE, checkpoint dict) of a train-prior or exported checkpoint, with the weights of its best validation
    epoch. A checkpoint written during a run with ``patience`` holds the last epoch's weights and a snapshot of
    the best ones (the run restores the snapshot only in memory when it stops early, and not at all when it is
    interrupted); without a snapshot, the last ones."""
    state = load_checkpoint(path)  # checks the file is a readable ppl_models checkpoint
    config = dict(state["config"])
    if "model" not in config or "dvae" not in state["modules"]:
        raise CheckpointError(f"{path}: holds model {state['name']!r}, not a DVAE prior")
    name, kind = config.pop("model"), config.pop("kind")
    config.pop("scheduled_sampling", None)  # a training setting, not a size
    dvae = build_dvae(name, kind, **config)
    try:
        dvae.load_state_dict(state["modules"]["dvae"])
    except RuntimeError as err:  # e.g. a checkpoint written before the inputs were standardised
        raise CheckpointError(f"{path}: the weights do not fit {name} ({kind}): {err}") from None
    # Pyro names a module's parameters "<module name>$$$<first name in named_parameters()>" (a recurrence
    # shared by several cells has one entry), so they are set through named_parameters, not the state dict.
    parameters = dict(dvae.named_parameters())
    with torch.no_grad():
        for key, value in (state.get("best_params") or {}).items():
            name = key.partition("$$$")[2]
            if name in parameters:
                parameters[name].copy_(value)
    return dvae, state


def export_prior(checkpoint: str | Path, out: str | Path) -> Path:
    """A training checkpoint without what only ``--resume`` needs (optimizer moments, best-so-far copy, RNG
    state): about a quarter of the size (RVAE: 9.6 -> 2.4 MB), and what ``ppl_models/pretrained`` ships. The
    weights are those of the best validation epoch when the run kept them (see :func:`_dvae_of`)."""
    dvae, state = _dvae_of(checkpoint)
    state["modules"] = {"dvae": dvae.state_dict()}
    if state.get("best_params"):
        state["epoch"] = state["history"]["best_epoch"]
    keep = ("format", "version", "name", "config", "modules", "params", "constraints", "history", "epoch")
    out = Path(out)
    atomic_torch_save({k: state[k] for k in keep if k in state}, out)
    return out
