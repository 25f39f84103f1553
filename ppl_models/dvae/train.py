"""Pre-training a DVAE sequence prior: data, KL warm-up, checkpoints, and loading a trained prior back.

Trajectory priors train on the synthetic MixDVAE trajectories (60 frames, 4-D boxes) or on segments of the
ground-truth tracks of MOTChallenge sequences; speech priors on fixed-length power-spectrogram segments of a
folder of utterances (or of synthetic speech-like audio).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pyro
import torch
from torch.utils.data import DataLoader, TensorDataset

from ppl_models.data.synthetic import sample_trajectories, speech_like
from ppl_models.dvae import PRESETS, build_dvae, model_name
from ppl_models.dvae.fast import graphed
from ppl_models.infer import CheckpointError, load_checkpoint, train_svi
from ppl_models.infer.checkpoint import atomic_torch_save
from ppl_models.infer.distributed import AllReduceOptim, init_distributed
from ppl_models.infer.svi import make_optimizer

log = logging.getLogger("ppl_models")
TRAINING_SETTINGS = ("scheduled_sampling", "beta")  # in a checkpoint's config, but not sizes of the network


def _tenth_validates(items: list, seed: int) -> tuple[list, list]:
    """(train, validation): a random tenth of ``items`` (at least one) validates."""
    order = torch.randperm(len(items), generator=torch.Generator().manual_seed(seed)).tolist()
    n_val = max(1, len(items) // 10)
    return [items[i] for i in order[n_val:]], [items[i] for i in order[:n_val]]


def prior_data(kind: str, data: str = "synthetic", segment_frames: int | None = None, size: int = 512,
               seed: int = 0, segment_hop: int | None = None, speeds=(1.0,)):
    """(train, validation) tensors (N, T, x_dim) for a ``trajectory`` or ``speech`` prior; T =
    ``segment_frames``, by default 50 for speech (the reference recipe), 60 for trajectories.

    ``data``: ``synthetic``, or one folder or several separated by commas: of utterances for speech, of
    MOTChallenge sequences (SEQ/gt/gt.txt + SEQ/seqinfo.ini) for trajectories. Real speech is split by
    speaker (:func:`~ppl_models.data.speakers.split_by_speaker`, always with seed 0, so that every run holds
    out the same test speakers, which it never reads: :func:`~ppl_models.data.speakers.held_out_test_files`);
    a corpus of fewer than 3 speakers, and trajectories, by utterance or track (a tenth validates). Either
    way training segments cut every ``segment_hop`` frames (overlapping when shorter than
    ``segment_frames``) never share frames with validation ones. ``speeds`` (speech): the training
    utterances are used once per speed factor (speed perturbation); the validation ones as they are."""
    if kind == "trajectory":
        length = segment_frames or 60
        if data == "synthetic":
            return (torch.as_tensor(sample_trajectories(size, length, seed=seed)),
                    torch.as_tensor(sample_trajectories(max(size // 8, 8), length, seed=seed + 10_000)))
        return mot_trajectory_data(data.split(","), length, segment_hop or 15, seed)
    if kind != "speech":
        raise ValueError(f"--kind must be trajectory or speech, got {kind!r}")
    from ppl_models.data.spectrogram_dataset import SpectrogramSegments, segments_of

    segment_frames = segment_frames or 50
    if data == "synthetic":
        train, val = _tenth_validates([speech_like(3.0, seed=seed + i) for i in range(max(size // 12, 2))], seed)
        return segments_of(train, segment_frames, segment_hop, speeds), segments_of(val, segment_frames)
    from ppl_models.data.audio import list_audio_files
    from ppl_models.data.speakers import describe_split, split_by_speaker

    utterances = [f for folder in data.split(",") for f in list_audio_files(folder)]
    if len(utterances) < 2:
        raise ValueError(f"--data {data}: need at least two audio files (.wav, .flac, .ogg), "
                         f"found {len(utterances)}")
    parts = split_by_speaker(utterances)
    if parts[1]:
        log.info("split by speaker: %s (test: never trained on)", describe_split(parts))
        train, val = parts[:2]
    else:
        log.info("--data %s: fewer than 3 speakers a corpus, a tenth of the utterances validates", data)
        train, val = _tenth_validates(utterances, seed)
    return (SpectrogramSegments(train, segment_frames, hop_frames=segment_hop, speeds=speeds).segments,
            SpectrogramSegments(val, segment_frames).segments)


def mot_trajectory_data(folders: list[str], length: int, hop: int, seed: int = 0):
    """(train, validation) real trajectories (M, length, 4) in the prior's coordinates (y up) from the ground
    truth of MOTChallenge sequences; each folder is a sequence or holds sequences."""
    from ppl_models.data.mot import read_mot, read_seqinfo, to_prior_coords
    from ppl_models.data.track_windows import track_segments

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
                patience: int | None = None, segment_hop: int | None = None, speeds=(1.0,), init=None,
                cuda_graphs: bool = True, time_budget: float | None = None,
                beta: float | None = None, frames: int | None = None, **sizes):
    """Train a DVAE prior by SVI with a linear KL warm-up; checkpoint to ``out`` every epoch.

    ``beta``: the KL weight, the scale of the z terms of the ELBO, reached linearly over ``warmup_epochs``;
    default 0.01 for speech (the reference recipe: z carries more of x, sharper resynthesis, at the cost of
    the prior's own samples), 1 for trajectories; the validation loss weighs the KL terms by it too.
    ``frames``: the length of the training sequences (:func:`prior_data`).
    ``scheduled_sampling`` (SRNN, VRNN): after the warm-up, the probability that the decoder reads its own
    prediction instead of the data as x_{t-1} ramps linearly from 0 to this value by mid-training
    (:meth:`~ppl_models.dvae.base.DVAE.scheduled_past`). ``patience``: stop when the validation loss has not
    improved for that many epochs and keep the best parameters (small corpora overfit). ``segment_hop``
    (speech): cut training segments every that many frames, overlapping ones augmenting a small corpus;
    ``speeds`` (speech): use each training utterance once per speed factor (:func:`prior_data`). ``init``: start
    from the weights of a trained prior (a checkpoint or a shipped name) instead of a fresh network, to train it
    longer or fine-tune it on other data; it fixes the architecture and the input standardisation, so ``sizes``
    must be empty and ``model`` and ``kind`` must be its own. ``time_budget``: stop training (not counting the data
    preparation) before that many seconds are spent, keeping the best validation epoch's parameters (in the
    checkpoint too, so ``export-prior`` writes them).

    Under ``torchrun --nproc_per_node=K`` each process trains on every K-th sequence and gradients are
    averaged across processes (:mod:`ppl_models.infer.distributed`); only rank 0 writes the checkpoint.
    """
    device = torch.device(device)
    rank, world = init_distributed(device)
    pyro.set_rng_seed(seed)  # the same seed everywhere: identical initial replicas
    pyro.clear_param_store()
    if kind != "speech" and tuple(speeds) != (1.0,):
        raise ValueError(f"speed perturbation is for speech priors, not {kind!r} ones")
    beta = (0.01 if kind == "speech" else 1.0) if beta is None else beta
    if not beta > 0:
        raise ValueError(f"beta must be positive, got {beta}")
    train, val = prior_data(kind, data, frames, size=size, seed=seed, segment_hop=segment_hop, speeds=speeds)
    if init is None:
        dvae = build_dvae(model, kind, **sizes).adapt_to(train)
        config = {"model": model, "kind": kind, **PRESETS[kind], **sizes}
    else:
        dvae, config = _initial_dvae(init, model, kind, sizes)
    dvae = dvae.to(device)
    if scheduled_sampling:
        config["scheduled_sampling"] = scheduled_sampling
    if beta != 1:  # absent: 1, what checkpoints written before beta used (and --resume still accepts)
        config["beta"] = beta
    loader = DataLoader(TensorDataset(train[rank::world].to(device)), batch_size=batch_size, shuffle=True)
    ramp = max(1, epochs // 2 - warmup_epochs)

    def batches(epoch):
        ratio = scheduled_sampling * min(1.0, max(0, epoch + 1 - warmup_epochs) / ramp)
        return ((x, dvae.scheduled_past(x, ratio)) for (x,) in loader)

    val_batches = [(val.to(device), None, beta)]  # the loss trained on, after the warm-up: patience stops on it
    optimizer = make_optimizer("clipped_adam", lr=lr)
    with graphed(cuda_graphs and device.type == "cuda"):  # the guide's sampling loop from a CUDA graph (dvae.fast)
        history = train_svi(dvae.model, dvae.guide, batches, epochs=epochs, val_batches=val_batches,
                            patience=patience, optimizer=AllReduceOptim.wrapping(optimizer) if world > 1 else optimizer,
                            modules={"dvae": dvae},
                            name=f"dvae-{model}", config=config, checkpoint=out, write_checkpoint=rank == 0,
                            resume=resume, progress=progress and rank == 0, max_seconds=time_budget,
                            step_kwargs=lambda e: {"annealing": beta * min(1.0, (e + 1) / max(warmup_epochs, 1))})
    return dvae, history


PRETRAINED = Path(__file__).resolve().parent.parent / "pretrained"  # shipped priors: NAME.pt + MODEL_CARD.md


def pretrained_names() -> list[str]:
    """The names of the priors shipped in ``ppl_models/pretrained`` (``load_prior`` takes them)."""
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
    config = {k: v for k, v in state["config"].items() if k not in TRAINING_SETTINGS}
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
    for key in TRAINING_SETTINGS:  # not sizes of the network
        config.pop(key, None)
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
