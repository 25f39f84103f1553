"""The public API: every name of ``ppl_models.__all__`` imports and carries its own docstring."""

import importlib
import subprocess
import sys

import pytest

import ppl_models


@pytest.mark.parametrize("name", ppl_models.__all__)
def test_public_name_imports_and_is_documented(name):
    obj = getattr(ppl_models, name)
    assert (obj.__doc__ or "").strip(), f"ppl_models.{name} has no docstring of its own"


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        ppl_models.nope  # noqa: B018


def test_import_is_cheap():
    """``import ppl_models`` loads neither torch nor pyro: the names load on first use."""
    code = "import sys, ppl_models; print('torch' in sys.modules, 'pyro' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_names_are_the_defining_modules_objects():
    assert ppl_models.fit_mixdvae is importlib.import_module("ppl_models.mixdvae.inference").fit
    assert ppl_models.load_prior is importlib.import_module("ppl_models.dvae.train").load_prior
