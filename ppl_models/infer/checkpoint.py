"""One file per trained model: module state dicts, Pyro parameters, optimizer state, config, version.

Files are written to a temporary file in the same folder and moved into place with ``os.replace``, so an
interrupted run leaves either the previous checkpoint or the new one, never a broken file. Loading checks
that the file is a checkpoint of the expected model and configuration and says which file and field differ.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pyro
import torch
from torch import nn

import ppl_models

FORMAT = "ppl_models.checkpoint.v1"


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable, or of another model or shape."""


def atomic_torch_save(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_checkpoint(path: str | os.PathLike, name: str, config: dict, modules: dict[str, nn.Module] | None = None,
                    optimizer=None, **extra) -> Path:
    """Write the model ``name`` (its ``config``, ``modules`` and every non-module Pyro parameter).

    Module parameters are stored once, in the module state dicts (Pyro's param store holds them too, under
    ``name$$$param``); ``optimizer`` is a Pyro optimizer whose per-parameter states are kept for ``--resume``.
    ``extra`` entries (history, epoch, RNG state, ...) are stored as they are.
    """
    store = pyro.get_param_store().get_state()
    params = {k: v for k, v in store["params"].items() if "$$$" not in k}
    state = {
        "format": FORMAT, "version": ppl_models.__version__, "name": name, "config": dict(config),
        "modules": {k: m.state_dict() for k, m in (modules or {}).items()},
        "params": params, "constraints": {k: store["constraints"][k] for k in params},
        "optimizer": optimizer.get_state() if optimizer is not None else None, **extra,
    }
    path = Path(path)
    atomic_torch_save(state, path)
    return path


def load_checkpoint(path: str | os.PathLike, name: str | None = None, config: dict | None = None,
                    modules: dict[str, nn.Module] | None = None, optimizer=None, map_location="cpu") -> dict:
    """Read a checkpoint, check it is of model ``name`` with ``config``, and restore it.

    Restores ``modules``' state dicts, the non-module Pyro parameters (into the global param store) and the
    optimizer state; returns the whole checkpoint dict (with ``history`` etc.).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:  # torch raises many kinds on a corrupt or foreign file
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(err).__name__}: {err})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a ppl_models checkpoint (expected format {FORMAT})")
    if name is not None and state["name"] != name:
        raise CheckpointError(f"{path}: holds model {state['name']!r}, not {name!r}")
    if config is not None:
        diff = {k: (state["config"].get(k), v) for k, v in config.items() if state["config"].get(k) != v}
        if diff:
            details = ", ".join(f"{k}={a!r} in the file but {b!r} requested" for k, (a, b) in diff.items())
            raise CheckpointError(f"{path}: configuration differs: {details}")
    for key, module in (modules or {}).items():
        if key not in state["modules"]:
            raise CheckpointError(f"{path}: has no module {key!r} (it has {sorted(state['modules'])})")
        try:
            module.load_state_dict(state["modules"][key])
        except RuntimeError as err:
            raise CheckpointError(f"{path}: module {key!r} does not fit: {err}") from None
    # Unconstrained values and their constraints, as ParamStoreDict.get_state gave them.
    pyro.get_param_store().set_state({"params": state["params"], "constraints": state["constraints"]})
    if optimizer is not None and state.get("optimizer") is not None:
        optimizer.set_state(state["optimizer"])
    return state
