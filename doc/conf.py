"""Sphinx configuration (a starting point: the documentation issue extends it)."""

import skrank

project = "skrank"
author = "The skrank developers"
copyright = "2026, The skrank developers"
release = skrank.__version__
version = release

extensions = ["sphinx.ext.autodoc", "sphinx.ext.autosummary", "sphinx.ext.napoleon"]
autosummary_generate = True
exclude_patterns = ["_build", "generated"]
html_theme = "alabaster"
