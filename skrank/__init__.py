"""skrank: fast differentiable sorting and ranking with a scikit-learn API.

Soft sort and soft rank (Blondel, Teboul, Berthet, Djolonga, "Fast Differentiable
Sorting and Ranking", ICML 2020) in O(n log n), with exact O(n) derivatives.
"""

from ._version import __version__

try:
    from . import _pav  # noqa: F401  (the compiled kernels)
except ImportError as exc:  # pragma: no cover - depends on how skrank was installed
    raise ImportError(
        "skrank's compiled extension skrank._pav is missing or failed to load "
        "(the error above says which). If you are running from a source "
        "checkout, build it with `pip install -e .` (or `python setup.py "
        "build_ext --inplace`) from the repository root; this needs a C "
        "compiler, Cython >= 3 and NumPy."
    ) from exc

from . import losses, metrics
from ._diff import jvp, vjp
from ._ops import isotonic_regression, soft_rank, soft_sort
from ._show_versions import show_versions
from ._stats import (soft_median, soft_quantile, soft_topk, soft_topk_mask,
                     soft_trimmed_mean)

__all__ = [
    "__version__",
    "isotonic_regression",
    "jvp",
    "losses",
    "metrics",
    "show_versions",
    "soft_median",
    "soft_quantile",
    "soft_rank",
    "soft_sort",
    "soft_topk",
    "soft_topk_mask",
    "soft_trimmed_mean",
    "vjp",
    "linear_model",
    "preprocessing",
]

# The estimators import scikit-learn, which takes longer to load than skrank itself:
# their modules load on first access (``skrank.preprocessing``), or as usual with
# ``from skrank.preprocessing import SoftRankTransformer``.
_LAZY_SUBMODULES = ("linear_model", "preprocessing")


def __getattr__(name):
    if name in _LAZY_SUBMODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY_SUBMODULES))
