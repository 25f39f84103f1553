r"""The three training configurations of unsupervised speech enhancement, and the NMF baseline.

* **U-NA** (noise-agnostic): for the utterances at hand, fit the noise model, the encoder q(z | x) and the
  gains by SVI on their own noisy spectrograms, stopping when the ELBO flattens; then Wiener-filter.
* **U-ND** (noise-dependent): train the noise model and the encoder once on a corpus of noisy speech
  (:func:`train_noise`: no clean targets), then enhance with one forward pass (gain fixed to 1).
* **U-NDA**: start from a U-ND checkpoint and run a few U-NA iterations on the utterance.
* **RVAE-VEM** (``noise_model="nmf"``): the same SVI steps on the encoder, alternated with the closed-form
  multiplicative M-step of the NMF noise and the gains (:mod:`ppl_models.enhancement.nmf_noise`).

Utterances are enhanced together, as one batch padded to the longest (padded frames masked out of the
likelihood), which is what makes U-NA fast on a GPU. The noise network and the encoder are shared by the
batch, but each utterance keeps its own noise level: a per-utterance log-spectrum offset started at its own
noise floor (:class:`~ppl_models.enhancement.noise_models.NoiseVariance`), and per-utterance NMF atoms. On a
validation set of whole utterances, one batch per SNR set, one floor for the whole batch (``shared_floor``,
``enhance --noise-floor batch``) gained +0.9 / +4.4 dB SI-SDR against +5.3 / +5.9 dB for the per-utterance floors
(benchmarks/RESULTS.md, enhancement). ``enhance --batch 1`` is the paper's per-utterance fit. Signals are
peak-normalised on the way in (the speech priors were trained on peak-normalised speech) and scaled back on
the way out.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyro
import torch
from pyro.infer import SVI, Trace_ELBO
from pyro.optim import Adam
from tqdm.auto import trange

from ppl_models.data.audio import check_signal
from ppl_models.data.stft import istft, stft
from ppl_models.enhancement.model import NoisySpeech
from ppl_models.enhancement.nmf_noise import NMFNoise
from ppl_models.enhancement.noise_models import NOISE_MODELS, NoiseVariance
from ppl_models.dvae.fast import graphed
from ppl_models.infer import CheckpointError, load_checkpoint, train_svi
from ppl_models.infer.svi import make_optimizer

MODES = ("una", "und", "unda")
DEFAULT_ITERATIONS = {"una": 300, "unda": 60, "und": 0, "nmf": 150}
DEFAULT_NOISE_MODEL = "no"  # U-NA: NO and NOLV tied on whole-utterance validation, both ahead of LV (RESULTS.md)
NMF_WARMUP = 100
FLOOR_QUANTILE = 0.1


@dataclass
class Enhancement:
    signals: list[np.ndarray]  # enhanced waveforms, one per input, at the input's level and length
    masks: list[np.ndarray]  # Wiener masks (T, F) of each utterance
    losses: list[float] = field(default_factory=list)  # negative ELBO (nats per bin) of each SVI iteration
    seconds: float = 0.0  # wall-clock compute, STFTs included

    @property
    def iterations(self) -> int:
        return len(self.losses)


@dataclass
class NoisyBatch:
    """Utterances cut into segments of at most ``segment_frames`` frames, padded, as one batch."""

    spec: torch.Tensor  # (N, L, F) complex STFT of the peak-normalised signals
    power: torch.Tensor  # (N, L, F) |spec|^2
    mask: torch.Tensor  # (N, L) bool, False on padding
    pieces: list[list[int]]  # the segment rows of each utterance, in time order
    peaks: list[float]  # each signal's peak (the normalisation undone on the way out)

    @property
    def utterance(self) -> torch.Tensor:
        """(N,) the utterance each row belongs to."""
        rows = torch.zeros(self.mask.shape[0], dtype=torch.long)
        for i, piece in enumerate(self.pieces):
            rows[piece] = i
        return rows

    def join(self, rows: torch.Tensor, utterance: int) -> torch.Tensor:
        """(N, L, ...) per-segment values -> (T, ...) of one utterance, padding dropped."""
        return torch.cat([rows[r][self.mask[r]] for r in self.pieces[utterance]])

    def filtered(self, mask: torch.Tensor, utterance: int, length: int) -> np.ndarray:
        """One utterance's waveform (``length`` samples, original scale) after multiplying its noisy STFT by the
        per-segment ``mask`` (N, L, F), e.g. a Wiener filter."""
        spec = self.join(mask, utterance) * self.join(self.spec, utterance)  # (T, F)
        return istft(spec.T, length=length).cpu().numpy() * self.peaks[utterance]


def noisy_batch(signals: list[np.ndarray], device, segment_frames: int | None = 100) -> NoisyBatch:
    """Peak-normalised STFTs of the signals in segments of ``segment_frames`` (None: whole utterances)."""
    peaks, segments, pieces = [], [], []
    for i, s in enumerate(signals):
        s = check_signal(np.asarray(s, dtype=np.float32), f"noisy signal {i}")
        peaks.append(float(np.abs(s).max()))
        spec = stft(torch.as_tensor(s / peaks[-1])).T  # (T, F)
        step = segment_frames or spec.shape[0]
        pieces.append(list(range(len(segments), len(segments) + math.ceil(spec.shape[0] / step))))
        segments += list(spec.split(step))
    L = max(s.shape[0] for s in segments)
    spec = torch.zeros(len(segments), L, segments[0].shape[1], dtype=segments[0].dtype)
    mask = torch.zeros(len(segments), L, dtype=torch.bool)
    for i, s in enumerate(segments):
        spec[i, :s.shape[0]], mask[i, :s.shape[0]] = s, True
    spec = spec.to(device)
    return NoisyBatch(spec, spec.abs().square(), mask.to(device), pieces, peaks)


def build_system(prior, noise_model: str, power: torch.Tensor, seed: int = 0,
                 utterance: torch.Tensor | None = None, floor_quantile: float = FLOOR_QUANTILE,
                 mask: torch.Tensor | None = None, shared_floor: bool = False) -> NoisySpeech:
    """A :class:`NoisySpeech` with a fresh noise model (``lv``, ``no``, ``nolv`` or ``nmf``) for ``power``
    (``utterance``: which utterance each row is a segment of, for NMF's per-utterance atoms and the
    per-utterance noise offsets), its noise variance starting at the ``floor_quantile`` of the noisy power per
    frequency over the real frames (``mask`` (N, T) bool, False on padding; None: all). ``shared_floor``: the
    neural noise model starts at one floor for the whole batch, with no per-utterance offsets."""
    if noise_model == "nmf":
        noise = NMFNoise(power, utterance, seed=seed, floor_quantile=floor_quantile, mask=mask)
    else:
        noise = NoiseVariance(noise_model, prior.x_dim, prior.z_dim).adapt_to(
            power, floor_quantile, mask, None if shared_floor else utterance)
    return NoisySpeech(prior, noise).to(power.device)


def fit(system: NoisySpeech, power: torch.Tensor, mask: torch.Tensor | None, iterations: int, lr: float = 1e-3,
        tol: float = 1e-3, window: int = 20, nmf_warmup: int = NMF_WARMUP, nmf_samples: int = 4,
        progress: bool = False, offset_lr: float | None = None, cuda_graphs: bool = True) -> list[float]:
    """SVI on the utterances themselves (U-NA); stops after ``iterations`` or when the mean loss of the last
    ``window`` iterations improves on the window before by less than ``tol`` nats per time-frequency bin.

    NMF noise (RVAE-VEM): the first ``nmf_warmup`` steps fit the encoder with the noise held at its floor,
    then each step is followed by the multiplicative M-step on ``nmf_samples`` guide samples. Started at
    once, the M-step is faster than the encoder: a rank-8 NMF with per-frame activations soaks up the speech
    and the gain collapses. There is no early stop: the ELBO keeps
    improving while the NMF takes more of the speech, so the step count is the regulariser.

    ``offset_lr``: the Adam step of the per-utterance noise levels alone (Adam moves a parameter about its
    step per iteration: at 1e-3 a level can rise 0.3 nats, 1.3 dB, in 300 steps); None: ``lr``.
    ``cuda_graphs``: on a GPU, replay the encoder's frame-by-frame sampling loop from a CUDA graph
    (:mod:`ppl_models.dvae.fast`: the same draws and gradients; it made the priors' training step 5.4x faster on
    an H100, its effect here is not yet measured)."""
    bins = float(mask.sum() * power.shape[-1]) if mask is not None else float(power.numel())

    def step_size(module: str, name: str) -> dict:
        return {"lr": offset_lr if offset_lr and (module, name) == ("noise", "offset") else lr}

    svi = SVI(system.model, system.guide, Adam(step_size), loss=Trace_ELBO())
    losses: list[float] = []
    with graphed(cuda_graphs and power.device.type == "cuda"):  # one draw of z with gradients per step, as
        for i in trange(iterations, desc="enhancing", disable=not progress, leave=False):  # graphs need
            losses.append(svi.step(power, mask) / bins)
            if system.is_nmf:
                if i >= nmf_warmup:
                    with torch.no_grad():  # (draws without gradients run the plain loop)
                        speech = torch.stack([system.speech_variance(system.sample_latents(power))
                                              for _ in range(nmf_samples)])
                    system.noise.update(power, speech, mask)
            elif i + 1 >= 2 * window and np.mean(losses[-2 * window:-window]) - np.mean(losses[-window:]) < tol:
                break
    return losses


def enhance(signals: list[np.ndarray], prior, noise_model: str | None = None, mode: str = "una",
            noise_checkpoint: str | Path | None = None, iterations: int | None = None, lr: float = 1e-3,
            num_samples: int = 8, segment_frames: int | None = 100, floor_quantile: float = FLOOR_QUANTILE,
            tol: float = 1e-3, device="cpu", seed: int = 0, shared_floor: bool = False,
            progress: bool = False, offset_lr: float | None = None, cuda_graphs: bool = True) -> Enhancement:
    """Enhance mono 16 kHz ``signals`` with the frozen speech ``prior`` (a DVAE) and a noise model.

    ``mode`` ``una`` fits everything on the signals, ``und`` reads the noise model and encoder of
    ``noise_checkpoint`` (from :func:`train_noise`) and filters in one pass, ``unda`` starts from it and
    fits ``iterations`` more steps. ``noise_model="nmf"`` is the RVAE-VEM baseline (U-NA only).
    ``noise_model`` None: :data:`DEFAULT_NOISE_MODEL` (``no``) for U-NA, the checkpoint's own for U-ND / U-NDA.
    ``shared_floor`` (U-NA, neural noise models): one starting noise floor for the whole batch instead of a
    learnt per-utterance offset started at each utterance's own floor. ``cuda_graphs``: see :func:`fit`."""
    if mode not in MODES:
        raise ValueError(f"--mode must be one of {', '.join(MODES)}, got {mode!r}")
    if noise_model is None and mode == "una":
        noise_model = DEFAULT_NOISE_MODEL
    if noise_model not in NOISE_MODELS + ("nmf", None):
        raise ValueError(f"--noise-model must be one of {', '.join(NOISE_MODELS)}, nmf; got {noise_model!r}")
    if mode != "una" and noise_model == "nmf":
        raise ValueError("the NMF noise model is fitted per utterance: use it with --mode una")
    if mode != "una" and noise_checkpoint is None:
        raise ValueError(f"--mode {mode} needs a noise model trained on noisy speech (--noise-ckpt, see train-noise)")
    started = time.perf_counter()
    device = torch.device(device)
    prior = prior.to(device)
    batch = noisy_batch(signals, device, segment_frames)
    pyro.clear_param_store()
    pyro.set_rng_seed(seed)
    if mode == "una":
        system = build_system(prior, noise_model, batch.power, seed, batch.utterance, floor_quantile, batch.mask,
                              shared_floor)
    else:
        system = load_noise_model(noise_checkpoint, prior, noise_model).to(device)
    steps = DEFAULT_ITERATIONS["nmf" if noise_model == "nmf" else mode] if iterations is None else iterations
    losses = (fit(system, batch.power, batch.mask, steps, lr=lr, tol=tol, progress=progress, offset_lr=offset_lr,
                  cuda_graphs=cuda_graphs)
              if steps > 0 else [])
    wiener = system.wiener_mask(batch.power, num_samples, learn_gain=mode != "und")
    out, masks = [], []
    for i, signal in enumerate(signals):
        out.append(batch.filtered(wiener, i, len(signal)))
        masks.append(batch.join(wiener, i).cpu().numpy())  # (T, F)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return Enhancement(out, masks, losses, time.perf_counter() - started)


# --------------------------------------------------------------------------------- U-ND: noisy corpora
def train_noise(prior, noise_model: str, train: torch.Tensor, val: torch.Tensor, out: str | Path,
                epochs: int = 100, batch_size: int = 32, lr: float = 1e-3, patience: int | None = 15,
                device="cpu", seed: int = 0, resume: bool = False, prior_name: str = "rvae-speech",
                floor_quantile: float = FLOOR_QUANTILE, progress: bool = True):
    """Train the noise model and the encoder on noisy power segments (N, T, F) — no clean speech — with the
    gain fixed to 1; checkpoint to ``out`` every epoch (``resume`` continues). Returns (system, history)."""
    if noise_model not in NOISE_MODELS:
        raise ValueError(f"--noise-model must be one of {', '.join(NOISE_MODELS)} for U-ND, got {noise_model!r}")
    device = torch.device(device)
    pyro.clear_param_store()
    pyro.set_rng_seed(seed)
    system = build_system(prior.to(device), noise_model, train.to(device), seed, floor_quantile=floor_quantile)
    loader = torch.utils.data.DataLoader(train, batch_size=batch_size, shuffle=True)
    batches = lambda epoch: ((b.to(device), None, False) for b in loader)  # noqa: E731  (x, mask, learn_gain)
    history = train_svi(system.model, system.guide, batches, epochs=epochs, val_batches=[(val.to(device), None, False)],
                        patience=patience, optimizer=make_optimizer("clipped_adam", lr=lr),
                        modules={"noise": system.noise, "encoder": system.encoder}, name="noise-model",
                        config={"noise_model": noise_model, "prior": prior_name}, checkpoint=out, resume=resume,
                        progress=progress)
    return system, history


def load_noise_model(path: str | Path, prior, noise_model: str | None = None) -> NoisySpeech:
    """A :class:`NoisySpeech` whose noise model and encoder come from a :func:`train_noise` checkpoint."""
    state = load_checkpoint(path, name="noise-model")
    kind = state["config"]["noise_model"]
    if noise_model is not None and noise_model != kind:
        raise ValueError(f"{path}: holds a {kind} noise model, not {noise_model} (--noise-model)")
    system = NoisySpeech(prior, NoiseVariance(kind, prior.x_dim, prior.z_dim))
    for key, module in (("noise", system.noise), ("encoder", system.encoder)):
        try:
            module.load_state_dict(state["modules"][key])
        except (KeyError, RuntimeError) as err:
            raise CheckpointError(f"{path}: module {key!r} does not fit this prior: {err}") from None
    return system

