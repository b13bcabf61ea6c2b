"""The API reference covers the public API; the library's docstrings run.

The documentation itself is built and its examples run by
``python -m sphinx -W -b doctest docs docs/_build/doctest`` (see .ci/run);
these checks need no Sphinx.
"""

import doctest
import importlib
import pathlib
import re

import pytest

import autoclip_optax

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_api_reference_documents_every_public_name():
  api = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
  documented = set(
    re.findall(r"^\.\. (?:autofunction|autoclass|py:data):: (\w+)", api, re.M)
  )
  assert documented == set(autoclip_optax.__all__)


def test_version_is_the_one_in_pyproject_metadata():
  pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
  assert 'dynamic = ["version"]' in pyproject
  assert 'attr = "autoclip_optax.__version__"' in pyproject
  assert re.fullmatch(r"\d+\.\d+\.\d+", autoclip_optax.__version__)


@pytest.mark.parametrize("module", ["_autoclip", "_order_stats"])
def test_docstring_examples(module):
  mod = importlib.import_module(f"autoclip_optax.{module}")
  result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
  assert result.failed == 0
