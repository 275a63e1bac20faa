"""A CPU stand-in for CuPy, strict enough to test skrank's CuPy path without a GPU.

- ``ndarray`` wraps a NumPy array and behaves like CuPy's: no implicit conversion
  to NumPy (``np.asarray`` raises, as CuPy's ``__array__`` does), NumPy functions
  and ufuncs called on it raise (skrank must call the array's own namespace), and
  mixing it with NumPy arrays raises (CuPy refuses host operands). Reductions
  return 0-d arrays, as CuPy's do.
- The namespace offers only the functions listed in ``_FUNCTIONS``, each of which
  exists in CuPy with NumPy's semantics (checked against CuPy 14); a call to
  anything else fails, which flags a function to check in CuPy before using it.
- ``RawModule`` compiles the CUDA source with the system C compiler, with a
  prelude that makes each kernel a C function, and launches a grid by calling it
  once per thread index. skrank's kernels use no shared memory and no barriers,
  so this runs exactly the code NVRTC compiles on a GPU.
"""

import ctypes
import hashlib
import operator
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import types

import numpy as np

# functions of the cupy namespace skrank may call (all exist in CuPy 14)
_FUNCTIONS = {
    "abs", "all", "any", "arange", "argsort", "ascontiguousarray", "asarray", "broadcast_to",
    "clip", "concatenate", "cumsum", "empty", "empty_like", "exp", "expm1", "flatnonzero",
    "frexp", "full", "isfinite", "ldexp", "log", "maximum", "minimum", "moveaxis",
    "negative", "ones", "searchsorted", "sqrt", "stack", "where", "zeros", "zeros_like",
    "ones_like", "sum", "mean", "log2", "exp2", "square", "isnan", "diff", "take",
    "may_share_memory", "shares_memory", "result_type", "can_cast", "floor", "sort",
    "repeat", "full_like", "broadcast_arrays", "reshape", "sign", "bincount", "corrcoef",
    "column_stack",
}
_DTYPES = {"float16", "float32", "float64", "int32", "int64", "bool_", "intp", "uint8",
           "dtype", "finfo", "iinfo", "newaxis", "inf", "nan", "pi"}


def _unwrap(a, allow_host=False):
    if isinstance(a, ndarray):
        return a._a
    if isinstance(a, np.ndarray) and not allow_host:
        raise TypeError(f"Unsupported type {type(a)}: a NumPy array mixed with a CuPy one")
    if isinstance(a, (list, tuple)):
        return type(a)(_unwrap(x, allow_host) for x in a)
    if isinstance(a, slice):
        return slice(*(_unwrap(x, allow_host) for x in (a.start, a.stop, a.step)))
    return a


def _wrap(a):
    if isinstance(a, np.ndarray):
        return ndarray(a)
    if isinstance(a, np.generic):
        return ndarray(np.asarray(a))
    if isinstance(a, tuple):
        return tuple(_wrap(x) for x in a)
    if isinstance(a, list):
        return [_wrap(x) for x in a]
    return a


class _Device:
    id = 0

    def synchronize(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __eq__(self, other):
        return isinstance(other, _Device)

    def __hash__(self):
        return 0


class ndarray:
    """A CuPy-like array on the 'device' (host memory, strict interface)."""

    __array_priority__ = 100

    def __init__(self, a):
        self._a = a

    def __array__(self, *args, **kwargs):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. "
                        "Please use `.get()` to construct a NumPy array explicitly.")

    def __array_ufunc__(self, *args, **kwargs):
        raise TypeError("a NumPy ufunc called on a CuPy array: call cupy's")

    def __array_function__(self, func, *args, **kwargs):
        raise TypeError(f"numpy.{func.__name__} called on a CuPy array: call cupy's")

    def get(self):
        return self._a.copy()

    @property
    def device(self):
        return _Device()

    def __getattr__(self, name):
        attr = getattr(self._a, name)
        if name in ("shape", "dtype", "ndim", "size", "itemsize", "nbytes", "strides",
                    "flags"):
            return attr
        if callable(attr):
            return lambda *a, **k: _wrap(attr(*_unwrap(a), **{key: _unwrap(v) for key, v in
                                                              k.items()}))
        return _wrap(attr)

    def __getitem__(self, key):
        return _wrap(self._a[_unwrap(key)])

    def __setitem__(self, key, value):
        self._a[_unwrap(key)] = _unwrap(value)

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (ndarray(np.asarray(x)) for x in self._a)

    def __bool__(self):
        return bool(self._a)

    def __float__(self):
        return float(self._a)

    def __int__(self):
        return int(self._a)

    def __repr__(self):
        return f"fake_cupy.{self._a!r}"


def _binary(op, reflected=False):
    def method(self, other):
        a, b = self._a, _unwrap(other)
        return _wrap(op(b, a) if reflected else op(a, b))
    return method


for _name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "and", "or",
              "xor", "lt", "le", "gt", "ge", "eq", "ne", "matmul", "lshift", "rshift"):
    _op = getattr(operator, _name + "_" if _name in ("and", "or") else _name)
    setattr(ndarray, f"__{_name}__", _binary(_op))
    if _name not in ("lt", "le", "gt", "ge", "eq", "ne"):
        setattr(ndarray, f"__r{_name}__", _binary(_op, reflected=True))
for _name in ("add", "sub", "mul", "truediv", "and", "or"):
    _iop = getattr(operator, f"i{_name}")

    def _inplace(self, other, _iop=_iop):
        self._a = _iop(self._a, _unwrap(other))
        return self
    setattr(ndarray, f"__i{_name}__", _inplace)
ndarray.__neg__ = lambda self: ndarray(-self._a)
ndarray.__pos__ = lambda self: ndarray(+self._a)
ndarray.__abs__ = lambda self: ndarray(abs(self._a))
ndarray.__invert__ = lambda self: ndarray(~self._a)
ndarray.__module__ = "cupy"  # how skrank recognises a CuPy array


# ---------------------------------------------------------------- RawModule

_C_PRELUDE = """\
#include <math.h>
#define EXTERN_C
#define __global__
#define __device__ static
long long sk_thread_id;
#define THREAD_ID sk_thread_id
static double atomicAdd(double* p, double v) { double old = *p; *p = old + v; return old; }
"""
_LAUNCHES = []  # (kernel name, threads) of every launch, for the tests


class RawModule:
    def __init__(self, code, options=(), **kwargs):
        from skrank import _cupy

        assert code.startswith(_cupy._CUDA_PRELUDE), "the CUDA prelude comes first"
        source = _C_PRELUDE + code[len(_cupy._CUDA_PRELUDE):]
        digest = hashlib.sha1(source.encode()).hexdigest()[:16]
        folder = os.path.join(tempfile.gettempdir(), f"skrank-fake-cupy-{os.getuid()}")
        os.makedirs(folder, exist_ok=True)
        lib = os.path.join(folder, f"pav_{digest}.so")
        if not os.path.exists(lib):
            src = os.path.join(folder, f"pav_{digest}.c")
            with open(src, "w") as f:
                f.write(source)
            names = [(sysconfig.get_config_var("CC") or "cc").split()[0], "cc", "gcc", "clang"]
            cc = next(filter(None, map(shutil.which, names)))
            tmp = f"{lib}.{os.getpid()}"
            subprocess.run([cc, "-std=c99", "-O1", "-ffp-contract=off", "-shared", "-fPIC",
                            "-o", tmp, src, "-lm"], check=True, capture_output=True)
            os.replace(tmp, lib)
        self._lib = ctypes.CDLL(lib)

    def get_function(self, name):
        return _RawKernel(self._lib, name)


_SCALARS = {np.dtype(np.int64): ctypes.c_longlong, np.dtype(np.int32): ctypes.c_int,
            np.dtype(np.float64): ctypes.c_double}


class _RawKernel:
    def __init__(self, lib, name):
        self._fn, self._name = getattr(lib, name), name
        self._fn.restype = None
        self._tid = ctypes.c_longlong.in_dll(lib, "sk_thread_id")

    def __call__(self, grid, block, args):
        c_args = []
        for a in args:
            if isinstance(a, ndarray):
                assert a._a.flags.c_contiguous, "kernel arrays must be C-contiguous"
                c_args.append(ctypes.c_void_p(a._a.ctypes.data))
            elif isinstance(a, np.generic) and a.dtype in _SCALARS:
                c_args.append(_SCALARS[a.dtype](a.item()))
            else:  # CuPy would guess a C type for a Python scalar: be explicit
                raise TypeError(f"kernel argument of type {type(a)}: pass a NumPy scalar")
        n = int(np.prod(grid)) * int(np.prod(block))
        _LAUNCHES.append((self._name, n))
        for t in range(n):
            self._tid.value = t
            self._fn(*c_args)


# ---------------------------------------------------------------- the module

def _function(name):
    fun = getattr(np, name)

    def call(*args, **kwargs):
        host = name in ("asarray",)
        return _wrap(fun(*_unwrap(args, host), **{k: _unwrap(v, host)
                                                     for k, v in kwargs.items()}))
    call.__name__ = name
    return call


def asarray(a, dtype=None):
    if isinstance(a, ndarray):
        return a if dtype is None else a.astype(dtype, copy=False)
    return ndarray(np.array(a, dtype=dtype))  # a copy, as a host-to-device transfer


def asnumpy(a):
    return a.get() if isinstance(a, ndarray) else np.asarray(a)


def get_array_module(*args):
    return module if any(isinstance(a, ndarray) for a in args) else np


def _getattr(name):
    if name in _FUNCTIONS:
        return _function(name)
    if name in _DTYPES:
        return getattr(np, name)
    raise AttributeError(f"fake cupy: {name!r} is not on the list of checked functions")


module = types.ModuleType("cupy")
module.__dict__.update(ndarray=ndarray, RawModule=RawModule, asarray=asarray,
                       asnumpy=asnumpy, get_array_module=get_array_module,
                       __getattr__=_getattr, __version__="fake")
module.cuda = types.SimpleNamespace(
    Device=lambda i=0: _Device(),
    runtime=types.SimpleNamespace(getDeviceCount=lambda: 1,
                                  getDeviceProperties=lambda i: {"name": b"fake GPU (CPU)"}))


def install(monkeypatch):
    """Make ``import cupy`` give this module (undone with the monkeypatch; call
    uninstall() before that)."""
    monkeypatch.setitem(sys.modules, "cupy", module)
    uninstall()


def uninstall():
    """Forget the module skrank._cupy cached (and its compiled kernels)."""
    from skrank import _cupy

    _cupy._cupy.cache_clear()
    _cupy._kernels.cache_clear()
