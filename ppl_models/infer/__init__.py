"""Inference infrastructure shared by every system: the SVI training loop, checkpoints, devices."""

from ppl_models.infer.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ppl_models.infer.device import resolve_device
from ppl_models.infer.svi import History, train_svi

__all__ = ["CheckpointError", "load_checkpoint", "save_checkpoint", "resolve_device", "History", "train_svi"]
