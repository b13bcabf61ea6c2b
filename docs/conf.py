"""Sphinx configuration of the autoclip-optax documentation.

Build the pages with ``python -m sphinx -W -b html docs docs/_build/html`` and
run every code example (the pages' ``testcode`` / ``doctest`` blocks and the
docstrings' ``>>>`` examples) with
``python -m sphinx -W -b doctest docs docs/_build/doctest``.
"""

import os
import pathlib
import sys

# JAX on the CPU, before anything imports it (the doctests run in-process).
os.environ.setdefault("JAX_PLATFORMS", "cpu")

ROOT = pathlib.Path(__file__).resolve().parents[1]
# Document the checkout's library, and let pages import the examples.
sys.path.insert(0, str(ROOT))

import autoclip_optax

project = "autoclip-optax"
author = "The autoclip-optax Authors"
copyright = "2024, The autoclip-optax Authors"
version = release = autoclip_optax.__version__

extensions = [
  "myst_parser",
  "sphinx.ext.autodoc",
  "sphinx.ext.autosummary",
  "sphinx.ext.doctest",
  "sphinx.ext.mathjax",
  "sphinx.ext.napoleon",
  "sphinx.ext.viewcode",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
root_doc = "index"

# Markdown pages: ```{directive} fences, $math$, and anchors for ## headings.
myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 3

# API reference: Google-style docstrings, signatures as written.
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_attr_annotations = False
autodoc_typehints = "signature"
autodoc_member_order = "bysource"
autosummary_generate = False
add_module_names = False

# Doctests: every page's blocks run in a fresh namespace with the repository
# root at hand (for the recorded results) and float outputs compared loosely.
doctest_global_setup = f"""
import pathlib
ROOT = pathlib.Path({str(ROOT)!r})
"""

html_theme = "alabaster"
html_title = f"autoclip-optax {release}"
html_theme_options = {
  "description": "AutoClip adaptive gradient clipping for optax",
  "fixed_sidebar": True,
}
