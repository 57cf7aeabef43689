"""Sphinx configuration of the smoothcert documentation.

Build with::

    pip install -e ".[docs]"
    python -m sphinx -W --keep-going -b html docs docs/_build/html

The build needs no network access: intersphinx is not used, and the example
gallery is executed locally (small settings, a few minutes on 2 cores).
The command-line page is generated from the argument parser
(``smoothcert.cli._parser.build_parser``) by sphinx-argparse. Generated files
(all git-ignored): ``docs/_build/``, ``docs/auto_examples/``,
``docs/gen_modules/`` and ``docs/sg_execution_times.rst``.
"""

import os
import re
import sys
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# Import the package from this checkout even when it is not installed.
sys.path.insert(0, str(ROOT))

os.environ.setdefault("MPLBACKEND", "Agg")
# The gallery runs small workloads in this process; one OpenMP thread avoids
# spin-waiting (torch, HistGradientBoosting) that makes them much slower on a
# busy machine. Set OMP_NUM_THREADS yourself to override.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import smoothcert

# -- Project information -----------------------------------------------------

project = "smoothcert"
author = "smoothcert developers"
copyright = "smoothcert developers"
version = smoothcert.__version__
release = smoothcert.__version__

# -- General configuration ---------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "sphinxarg.ext",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints"]
source_suffix = {".rst": "restructuredtext"}
root_doc = "index"
default_role = "literal"
pygments_style = "sphinx"
# Quotes and ellipses only: "--" stays two hyphens, so that the option names in
# the help texts of the command line (sphinx-argparse) read as typed.
smartquotes_action = "qe"
nitpicky = False

# -- autodoc / autosummary / numpydoc ------------------------------------------

autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"member-order": "groupwise"}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False


_SKLEARN_XREF = re.compile(
    r":(?:ref|term|class|func|meth|attr|mod):`(?:[^`<]*<)?~?([^`>]+)>?`"
)


def _unlink_sklearn_references(app, what, name, obj, options, lines):
    """Turn cross-references of inherited scikit-learn docstrings into literals.

    ``SmoothedClassifier.score`` is inherited from
    :class:`sklearn.base.ClassifierMixin`, whose docstring points to labels of
    scikit-learn's own documentation; without intersphinx they cannot resolve.
    """
    module = getattr(obj, "__module__", "") or ""
    if not module.startswith("sklearn"):
        return
    for i, line in enumerate(lines):
        lines[i] = _SKLEARN_XREF.sub(lambda m: f"``{m.group(1)}``", line)


def setup(app):
    app.connect("autodoc-process-docstring", _unlink_sklearn_references)


# -- sphinx-gallery ------------------------------------------------------------

sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": "/plot_",
    "ignore_pattern": r"__init__\.py",
    "within_subsection_order": "FileNameSortKey",
    "doc_module": ("smoothcert",),
    "reference_url": {"smoothcert": None},
    "backreferences_dir": "gen_modules/backreferences",
    "download_all_examples": False,
    "remove_config_comments": True,
    "min_reported_time": 1,
    "show_memory": False,
    "plot_gallery": "True",
    "abort_on_example_error": False,
    "only_warn_on_example_error": False,
}

# Examples print progress and warnings of third-party libraries; keep the
# build log readable (this does not hide errors of the examples).
warnings.filterwarnings(
    "ignore", category=UserWarning, message="Matplotlib is currently using agg"
)

# -- HTML output ---------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"smoothcert {release}"
html_static_path = ["_static"]
html_css_files = ["smoothcert.css"]
html_show_sourcelink = False
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 6,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_context = {"default_mode": "light"}
