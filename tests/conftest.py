"""Shared fixtures: the real data folder beside the repository, devices, a clean Pyro state per test."""

from __future__ import annotations

import os
from pathlib import Path

import pyro
import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def shared(*parts: str) -> Path:
    """A path under the shared real-data folder; skip (on a user's machine) or fail (in CI) if it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"real test data missing in CI: {path}")
        pytest.skip(f"real test data not available here ({path} is absent)")
    return path


@pytest.fixture(autouse=True)
def clean_pyro_state():
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    yield
    pyro.clear_param_store()


@pytest.fixture(params=DEVICES)
def device(request):
    return torch.device(request.param)
