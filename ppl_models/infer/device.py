"""Turning ``--device`` into a torch.device, with an error that says what is missing."""

from __future__ import annotations

import torch


def resolve_device(name: str = "cpu") -> torch.device:
    """``cpu``, ``cuda`` or ``cuda:N``; ``cuda`` without a visible GPU is an error, not a silent fallback."""
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device: expected cpu or cuda[:N], got {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: no CUDA GPU is visible to torch {torch.__version__}")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"--device: expected cpu or cuda[:N], got {name!r}")
    return device
