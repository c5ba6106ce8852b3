"""Sphinx configuration of the psysc documentation."""

from __future__ import annotations

import shutil
import sys
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))

# -- Project information ---------------------------------------------------------------------------

project = "psysc"
author = "psysc developers"
copyright = f"2026-{max(datetime.now().year, 2026)}, {author}"
try:
    release = version("psysc")
except PackageNotFoundError:
    release = "0.0.0"
version = ".".join(release.split(".")[:2])

# -- Tutorials -------------------------------------------------------------------------------------
# The notebooks live in ../tutorials (executed, with outputs). Sphinx only reads files below docs/,
# so they are copied into the (git-ignored) generated/ folder at build time.

_TUTORIAL_SRC = ROOT / "tutorials"
_TUTORIAL_DST = HERE / "generated" / "tutorials"
_TUTORIAL_DST.mkdir(parents=True, exist_ok=True)
for _nb in sorted(_TUTORIAL_SRC.glob("*.ipynb")):
    shutil.copy2(_nb, _TUTORIAL_DST / _nb.name)

# -- General configuration -------------------------------------------------------------------------

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "sphinx_autodoc_typehints",
]

source_suffix = {".rst": "restructuredtext", ".ipynb": "myst-nb", ".md": "myst-nb"}
master_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints"]

# autodoc / autosummary (docs/_templates/autosummary/base.rst: objects such as psysc.settings without their value)
templates_path = ["_templates"]
autosummary_generate = True
autodoc_member_order = "groupwise"
autodoc_default_options = {"members": True, "inherited-members": False}
autodoc_typehints = "description"
default_role = "literal"
typehints_defaults = "braces"
typehints_document_rtype_none = False  # "-> None" adds nothing to a page
always_document_param_types = True

# numpydoc-style docstrings through napoleon
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_include_init_with_doc = False
napoleon_use_rtype = True
napoleon_use_param = True
napoleon_custom_sections = [("Params", "Parameters")]

# MyST and notebooks: the tutorials are stored with their outputs and are not re-run at build time.
myst_enable_extensions = ["amsmath", "colon_fence", "deflist", "dollarmath", "html_image", "html_admonition"]
myst_heading_anchors = 3
nb_execution_mode = "off"
nb_merge_streams = True
nb_output_stderr = "remove"

intersphinx_mapping = {
    "anndata": ("https://anndata.readthedocs.io/en/stable/", None),
    "matplotlib": ("https://matplotlib.org/stable/", None),
    "numpy": ("https://numpy.org/doc/stable/", None),
    "pandas": ("https://pandas.pydata.org/pandas-docs/stable/", None),
    "python": ("https://docs.python.org/3", None),
    "scanpy": ("https://scanpy.readthedocs.io/en/stable/", None),
    "scipy": ("https://docs.scipy.org/doc/scipy/", None),
}

intersphinx_timeout = 10  # seconds per inventory: an offline build goes on without them

nitpicky = False

# -- HTML output -----------------------------------------------------------------------------------

html_theme = "sphinx_book_theme"
html_title = "psysc"
html_static_path: list[str] = []
html_theme_options = {
    "repository_branch": "main",
    "use_repository_button": False,
    "show_toc_level": 2,
    "path_to_docs": "docs/",
}
pygments_style = "default"
