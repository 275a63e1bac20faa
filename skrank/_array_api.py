"""Array API inputs.

Arrays of another Array API namespace (anything with ``__array_namespace__`` that is
not a NumPy array) are converted to NumPy around the kernels, here and nowhere else,
and the results go back to the input's namespace and device. CuPy arrays are not
converted: the operators run on them natively (:mod:`skrank._cupy`), on their
device. Dask arrays go block by block through :mod:`skrank._dask`.
"""

import contextlib
import functools

import numpy as np

from ._cupy import is_cupy_array


def _foreign(a):
    """True for an Array API array that is neither NumPy's nor CuPy's. NumPy
    scalars (np.int64(2), np.str_("kl")) carry __array_namespace__ too, but stand
    for the Python numbers and strings options are given as: they are not arrays
    to convert."""
    return (not isinstance(a, (np.ndarray, np.generic)) and not is_cupy_array(a)
            and hasattr(a, "__array_namespace__"))


def device_of(values):
    """A context that makes the device of the first CuPy array current (CuPy
    allocates on the current device), or a no-op."""
    for a in values:
        if is_cupy_array(a):
            return a.device
    return contextlib.nullcontext()


def _namespace(values):
    """(namespace, device) of the first foreign array among values, or (None, None)."""
    for a in values:
        if _foreign(a):
            return a.__array_namespace__(), getattr(a, "device", None)
    return None, None


def _to_numpy(a):
    if not _foreign(a):
        return a
    # DLPack shares memory where it can (never written to: inputs stay unmodified)
    return np.from_dlpack(a) if hasattr(a, "__dlpack__") else np.asarray(a)


def _to_namespace(a, xp, device):
    if isinstance(a, np.ndarray) or isinstance(a, np.generic):
        return xp.asarray(np.asarray(a), device=device)
    return a  # floats (losses) and other Python objects stay as they are


class _Converted:
    """A function of NumPy arrays seen from another namespace: its inputs go to
    NumPy and its array outputs come back (used for vjp / jvp closures)."""

    def __init__(self, fun, xp, device):
        self.fun, self.xp, self.device = fun, xp, device

    def __call__(self, *args):
        return _to_namespace(self.fun(*(_to_numpy(a) for a in args)), self.xp, self.device)


def _is_dask(a):
    """True for a dask array (or collection), without importing dask."""
    return type(a).__module__.partition(".")[0] == "dask"


def has_dask(values):
    return any(map(_is_dask, values))


def dispatch(fun):
    """Let a public function take arrays of any Array API namespace, or dask arrays."""

    @functools.wraps(fun)
    def wrapper(*args, **kwargs):
        values = list(args) + list(kwargs.values())
        if has_dask(values):
            from . import _dask  # dask arrays: lazily, block by block

            return _dask.apply(fun, args, kwargs)
        xp, device = _namespace(values)
        if xp is None:
            with device_of(values):
                return fun(*args, **kwargs)
        out = fun(*(_to_numpy(a) for a in args),
                  **{key: _to_numpy(value) for key, value in kwargs.items()})
        return _to_namespace(out, xp, device)

    return wrapper


def convert_args(args, kwargs):
    """(numpy args, numpy kwargs, namespace, device) for the derivative API."""
    xp, device = _namespace(list(args) + list(kwargs.values()))
    if xp is None:
        return args, kwargs, None, None
    return (tuple(_to_numpy(a) for a in args),
            {key: _to_numpy(value) for key, value in kwargs.items()}, xp, device)
