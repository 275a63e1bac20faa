"""Sphinx configuration of the skrank documentation.

Build it from the repository root with::

    pip install -e ".[doc]"
    sphinx-build -W -b html doc doc/_build/html

The build works offline: no intersphinx, no remote images or assets. The examples in
``examples/`` become the gallery (``auto_examples/``), executed at build time in their
small mode (``SKRANK_EXAMPLES_SMALL=1``); an example whose framework (torch, jax) is not
installed is left out, and the adapters' API pages are then built from mocked imports.
"""

import importlib.util
import os
import re
import shutil
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parent
ROOT = DOC.parent

# the examples run in their small, fast mode, without a display
os.environ.setdefault("SKRANK_EXAMPLES_SMALL", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib  # noqa: E402

matplotlib.use("Agg")


def _import_skrank():
    """skrank as built: the installed copy (``pip install .``, ``pip install -e .``) or
    this source tree built in place (``python setup.py build_ext --inplace``)."""
    here = [p for p in sys.path if Path(p or ".").resolve() == ROOT]
    try:
        return importlib.import_module("skrank")
    except ImportError:
        for name in [m for m in sys.modules if m.split(".")[0] == "skrank"]:
            del sys.modules[name]
        if here:  # an unbuilt source tree (``python -m sphinx`` from the root) hides
            sys.path[:] = [p for p in sys.path if p not in here]  # the installed copy
        else:  # a source tree built in place, not installed
            sys.path.insert(0, str(ROOT))
        return importlib.import_module("skrank")


skrank = _import_skrank()


def _installed(name):
    """Whether the top-level package ``name`` can be imported."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


# the optional frameworks of the autograd adapters
OPTIONAL = ("torch", "jax")
MISSING = [name for name in OPTIONAL if not _installed(name)]

# -- project ---------------------------------------------------------------------------

project = "skrank"
author = "The skrank developers"
copyright = "2026, The skrank developers"
release = skrank.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "matplotlib.sphinxext.plot_directive",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
default_role = "literal"
pygments_style = "sphinx"

# offline: no intersphinx, no remote images, and no math markup (MathJax would be
# loaded from the network by the reader's browser): formulas are written as code

# -- autodoc / autosummary / numpydoc ---------------------------------------------------

autosummary_generate = True
autodoc_typehints = "none"
# without their framework, the adapters' modules import a mock of it: their pages
# are built from the docstrings all the same
autodoc_mock_imports = MISSING

numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_show_inherited_class_members = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False
numpydoc_validation_checks = set()


def _skip_foreign_members(app, what, name, obj, skip, options):
    """Document only the methods skrank defines: the ones inherited from
    scikit-learn (get_params, set_output, set_*_request, ...) are scikit-learn's,
    and their docstrings refer to its own documentation."""
    if what == "class" and callable(obj):
        module = getattr(obj, "__module__", None) or ""
        if not module.startswith("skrank"):
            return True
    return None


# -- sphinx-gallery ---------------------------------------------------------------------

# `import torch`, `from jax import ...`, `from skrank.torch import ...` at a line's
# start: an example that needs a missing framework is not executed, nor listed
_OPTIONAL_IMPORT = re.compile(r"^\s*(?:import|from)\s+(?:skrank\.)?(torch|jax)\b", re.M)
_NEEDS_MISSING = sorted(
    path.name for path in (ROOT / "examples").glob("plot_*.py")
    if set(_OPTIONAL_IMPORT.findall(path.read_text(encoding="utf-8"))) & set(MISSING)
)
_ignore = "|".join(re.escape(name) for name in _NEEDS_MISSING)
# pages left by an earlier build that had the framework would now be orphans, and
# the backreferences would point at them: start the gallery afresh then
if any((DOC / "auto_examples" / name).with_suffix(".rst").is_file()
       for name in _NEEDS_MISSING):
    shutil.rmtree(DOC / "auto_examples", ignore_errors=True)
    shutil.rmtree(DOC / "generated" / "backreferences", ignore_errors=True)

sphinx_gallery_conf = {
    "examples_dirs": ["../examples"],
    "gallery_dirs": ["auto_examples"],
    "filename_pattern": r"[\\/]plot_",  # execute every plot_*.py
    "ignore_pattern": rf"(__init__\.py|{_ignore})" if _ignore else r"__init__\.py",
    "within_subsection_order": "FileNameSortKey",
    "doc_module": ("skrank",),
    "backreferences_dir": "generated/backreferences",
    "reference_url": {"skrank": None},  # links into these pages only: nothing fetched
    "image_scrapers": ("matplotlib",),
    "matplotlib_animations": False,
    "remove_config_comments": True,
    "show_memory": False,
    "plot_gallery": "True",
    "abort_on_example_error": True,
    "download_all_examples": False,
    "min_reported_time": 0,
}

# -- matplotlib plot directive (the user guide's figures) ------------------------------

plot_include_source = True
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 100)]
plot_rcparams = {"figure.figsize": (7.5, 3.4), "figure.dpi": 100, "font.size": 9}
plot_apply_rcparams = True
plot_pre_code = "import numpy as np\nimport matplotlib.pyplot as plt\nimport skrank\n"

# -- HTML -------------------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"skrank {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 8,
    "navbar_end": ["theme-switcher", "navbar-icon-links"],
    "icon_links": [],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
    "secondary_sidebar_items": ["page-toc"],
    "use_edit_page_button": False,
}
html_sidebars = {"index": [], "install": [], "quickstart": [], "performance": [],
                 "changelog": [], "citing": [], "glossary": []}
html_show_sourcelink = False
html_copy_source = False


def setup(app):
    app.connect("autodoc-skip-member", _skip_foreign_members)
