"""Collection rules for the whole repository (tests, and docstrings of skrank/)."""

import importlib.util

# the optional adapters import their framework at module level: without it, their
# docstring examples are not collected (their tests skip on their own)
collect_ignore = [
    path for path, package in (("skrank/torch.py", "torch"), ("skrank/jax.py", "jax"))
    if importlib.util.find_spec(package) is None
]
