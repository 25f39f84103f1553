"""The SVI training loop shared by every system.

``train_svi`` runs epochs of ``SVI.step`` over the training batches, evaluates the loss (negative ELBO) on
validation batches, stops early when the monitored loss has not improved for ``patience`` epochs (then
restores the best parameters), shows a tqdm bar, records the ELBO curve in a :class:`History`, and, given
``checkpoint``, writes one atomically after every epoch so that ``resume=True`` continues where an
interrupted run stopped, bit for bit (parameters, optimizer moments, RNG state and history).
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import pyro
import torch
from pyro.infer import SVI, Trace_ELBO
from pyro.infer.util import is_validation_enabled
from torch import nn
from tqdm.auto import tqdm

from ppl_models.infer.checkpoint import load_checkpoint, save_checkpoint
from ppl_models.infer.optim import ForeachClippedAdam, OneOptimizer

log = logging.getLogger("ppl_models")


@dataclass
class History:
    """Loss (negative ELBO, mean over the batches of an epoch) per epoch."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int = -1
    best_loss: float = math.inf
    stopped_early: bool = False

    @property
    def epochs(self) -> int:
        return len(self.train_loss)


def make_optimizer(name: str = "adam", lr: float = 1e-3, clip_norm: float = 10.0, lr_decay: float = 1.0):
    """``adam`` or ``clipped_adam`` (Pyro's: gradients clamped to +-clip_norm, learning-rate decay per step),
    each one PyTorch optimizer over all parameters with multi-tensor kernels (:mod:`ppl_models.infer.optim`)."""
    if name == "adam":
        return OneOptimizer(torch.optim.Adam, {"lr": lr})
    if name == "clipped_adam":
        return OneOptimizer(ForeachClippedAdam, {"lr": lr, "clip_norm": clip_norm, "lrd": lr_decay})
    raise ValueError(f"optimizer must be 'adam' or 'clipped_adam', got {name!r}")


def _as_args(batch) -> tuple:
    return tuple(batch) if isinstance(batch, (tuple, list)) else (batch,)


def _param_snapshot() -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in pyro.get_param_store().named_parameters()}


def _restore_snapshot(snapshot: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for name, p in pyro.get_param_store().named_parameters():
            p.copy_(snapshot[name])  # in place, so modules registered with pyro.module see it too


def train_svi(model: Callable, guide: Callable, train_batches: Iterable | Callable[[int], Iterable], *, epochs: int = 100,
              loss=None, optimizer=None, val_batches: Iterable | None = None, patience: int | None = None,
              min_delta: float = 0.0, modules: dict[str, nn.Module] | None = None, name: str = "model",
              config: dict | None = None, checkpoint: str | os.PathLike | None = None, resume: bool = False,
              progress: bool = True, on_epoch: Callable[[int, History], None] | None = None,
              step_kwargs: Callable[[int], dict] | None = None, write_checkpoint: bool = True,
              max_seconds: float | None = None) -> History:
    """Fit ``guide`` (and the model's parameters) by SVI; return the loss history.

    ``train_batches``/``val_batches``: re-iterable collections (a list, a DataLoader) of batches; a batch is
    a tuple of arguments for ``model``/``guide`` or a single tensor. ``train_batches`` may also be a function
    of the epoch that returns its batches (a curriculum, e.g. scheduled sampling). ``loss`` defaults to ``Trace_ELBO()``
    (pass ``TraceEnum_ELBO`` for enumerated models), ``optimizer`` to Adam(1e-3). ``modules`` and ``config``
    go into the checkpoint and are checked on ``resume``. ``step_kwargs(epoch)`` gives keyword arguments
    for the training steps of that epoch (e.g. the KL ``annealing`` factor of a warm-up).
    ``write_checkpoint=False`` reads ``checkpoint`` on ``resume`` but never writes it (data-parallel ranks > 0).
    ``max_seconds``: a wall-clock budget; training stops after the epoch when another epoch as long as the
    slowest so far would overrun it. With a budget or ``patience`` the best epoch's parameters are kept (in the
    checkpoint too) and restored at the end. Pyro's validation checks (if enabled, the default) run in the first
    epoch only; a non-finite epoch loss raises ``FloatingPointError``.
    """
    loss = Trace_ELBO() if loss is None else loss
    optimizer = make_optimizer() if optimizer is None else optimizer
    config = dict(config or {})
    svi = SVI(model, guide, optimizer, loss=loss)
    history, best, start = History(), None, 0
    if resume and checkpoint is not None and Path(checkpoint).is_file():
        state = load_checkpoint(checkpoint, name=name, config=config, modules=modules, optimizer=optimizer)
        history = History(**state["history"])
        best = state.get("best_params")
        torch.set_rng_state(state["rng"])
        start = epochs if history.stopped_early else state["epoch"] + 1
        log.info("resuming %s from %s at epoch %d", name, checkpoint, start)
    elif resume and checkpoint is not None:
        log.warning("--resume: %s does not exist yet, starting from scratch", checkpoint)

    keep_best = patience is not None or max_seconds is not None
    started, slowest = time.monotonic(), 0.0
    bar = tqdm(range(start, epochs), desc=f"train {name}", disable=not progress, unit="epoch", mininterval=1.0,
               initial=start, total=epochs)
    validate = is_validation_enabled()
    for epoch in bar:
        epoch_start = time.monotonic()
        kwargs = step_kwargs(epoch) if step_kwargs is not None else {}
        batches = train_batches(epoch) if callable(train_batches) else train_batches
        # Pyro's validation (every site's arguments and support) checks the first epoch; after that it only
        # costs time, a check per site and step (on a GPU each one waits for the device), so it is turned off.
        with pyro.validation_enabled(validate and epoch == start):
            train = [svi.step(*_as_args(b), **kwargs) for b in batches]
            history.train_loss.append(sum(train) / max(len(train), 1))
            if val_batches is not None:
                val = [svi.evaluate_loss(*_as_args(b)) for b in val_batches]
                history.val_loss.append(sum(val) / max(len(val), 1))
        if not math.isfinite(history.train_loss[-1]):
            raise FloatingPointError(f"training {name}: the loss of epoch {epoch} is {history.train_loss[-1]} "
                                     "(a lower learning rate, or check the data for NaN or infinite values)")
        monitored = history.val_loss[-1] if val_batches is not None else history.train_loss[-1]
        if monitored < history.best_loss - min_delta:
            history.best_loss, history.best_epoch = monitored, epoch
            best = _param_snapshot() if keep_best else None
        bar.set_postfix(refresh=False, loss=f"{history.train_loss[-1]:.4g}",
                        **({"val": f"{history.val_loss[-1]:.4g}"} if history.val_loss else {}))
        log.debug("epoch %d: train %.6g%s", epoch, history.train_loss[-1],
                  f", val {history.val_loss[-1]:.6g}" if history.val_loss else "")
        stop = patience is not None and epoch - history.best_epoch >= patience
        if stop:
            history.stopped_early = True
        slowest = max(slowest, time.monotonic() - epoch_start)
        out_of_time = max_seconds is not None and time.monotonic() - started + slowest > max_seconds
        if on_epoch is not None:
            on_epoch(epoch, history)
        if checkpoint is not None and write_checkpoint:
            save_checkpoint(checkpoint, name, config, modules, optimizer, history=asdict(history), epoch=epoch,
                            rng=torch.get_rng_state(), best_params=best)
        if stop:
            log.info("early stop at epoch %d (best %d, loss %.6g)", epoch, history.best_epoch, history.best_loss)
            break
        if out_of_time:
            log.info("time budget of %.0f s spent at epoch %d (best %d, loss %.6g)", max_seconds, epoch,
                     history.best_epoch, history.best_loss)
            break
    bar.close()
    if best is not None:
        _restore_snapshot(best)
    return history
