"""show_versions(): what to paste into a bug report."""

import platform
import sys
from importlib.metadata import PackageNotFoundError, version

_DEPENDENCIES = ("numpy", "scipy", "scikit-learn", "threadpoolctl", "Cython", "pip",
                 "setuptools")
# the optional ones are listed only when installed (read from metadata: never imported)
_OPTIONAL = ("torch", "jax", "jaxlib", "dask", "distributed", "dask-ml", "cupy-cuda12x",
             "cupy-cuda13x", "cupy")


def _versions():
    from . import __version__, _pav

    info = {
        "skrank": __version__,
        "python": sys.version.replace("\n", " "),
        "executable": sys.executable,
        "machine": platform.platform(),
        "built with OpenMP": str(_pav.built_with_openmp()),
        "OpenMP threads": str(_pav.openmp_effective_n_threads()),
    }
    for name in _DEPENDENCIES:
        try:
            info[name] = version(name)
        except PackageNotFoundError:
            info[name] = "not installed"
    for name in _OPTIONAL:
        try:
            info[name] = version(name)
        except PackageNotFoundError:
            pass
    return info


def show_versions():
    """Print skrank's version, its dependencies' versions and build facts.

    Examples
    --------
    >>> import skrank
    >>> skrank.show_versions()  # doctest: +ELLIPSIS
    skrank: ...
    """
    for key, value in _versions().items():
        print(f"{key}: {value}")
