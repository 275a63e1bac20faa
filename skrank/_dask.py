"""Dask arrays: the public functions, lazily, block by block.

:func:`skrank._array_api.dispatch` sends a call here when one of its arguments is a
dask array. Rows along the operated axis are independent, so that axis is put in one
chunk (rechunked when it is split), the other axes keep their chunks, and the NumPy
function runs on each block with :func:`dask.array.blockwise`: the results equal
NumPy's. ``axis=None`` and ragged rows (``lengths=``) operate on the whole array,
which then is one chunk. The losses average over rows: each block gives its rows'
share of the mean, and dask sums the shares. ``soft_spearman`` cannot be split along
the samples (a correlation needs its whole column: the samples axis is rechunked to one
chunk); its columns are independent, so they are the blocks, and the averaging over
outputs (``multioutput``) is done here, on the blocks' raw values.

At call time nothing is computed but a probe: the NumPy function on one short row of
the inputs' dtypes, with the same options. It raises the option errors at once and
gives the output's dtype. Errors that depend on the values (NaN, a negative strength
in an array) are raised at compute time. ``skrank.vjp`` and ``skrank.jvp`` map the
same blocks together with the cotangent's or tangent's blocks, and recompute the
forward pass on each block.
"""

import inspect
import math
import numbers
import warnings

import numpy as np
from numpy.lib.array_utils import normalize_axis_index

from . import _diff, _registry, _rows
from ._array_api import _is_dask

try:  # skrank imports this module only for dask arrays; pytest's doctest collection
    import dask.array as da  # imports every module, with or without dask
    from dask.array.utils import meta_from_array
except ImportError:  # pragma: no cover
    da = meta_from_array = None

_PROBE = 16  # the probe's row length (k is clipped to it)
_STRENGTH = _registry.STRENGTH


def _columns(y):
    return y[:, None] if y.ndim == 1 else y


def _check_lengths(x, lengths):
    """Ragged rows' lengths, validated as the NumPy path validates them."""
    return _rows.RaggedRows(x.shape, lengths).lengths


def _check_known(name, v):
    """v's shape, which must be known (dask arrays from boolean indexing are not)."""
    if any(math.isnan(size) for size in v.shape):
        raise ValueError(f"{name} has unknown chunk sizes (shape {v.shape}); call its "
                         ".compute_chunk_sizes() first.")
    return v


def _quietly(fun, *args, **kwargs):
    with warnings.catch_warnings():  # a probe of constant values is not worth a warning
        warnings.simplefilter("ignore")
        return fun(*args, **kwargs)


class _Block:
    """One task: the function (or its vjp / jvp) on NumPy blocks. The inputs' blocks
    arrive positionally, in the order of ``names``, then the cotangent's or tangent's.
    A loss block's value and cotangent are weighted by its share of the rows."""

    def __init__(self, spec, names, fixed, op, ndim, share=None, positional=(),
                 argnums=0):
        self.spec, self.names, self.fixed, self.op, self.ndim = spec, names, fixed, op, ndim
        self.share, self.positional, self.argnums = share, positional, argnums

    def __call__(self, *blocks):
        kw = {**self.fixed, **dict(zip(self.names, blocks))}
        fun, main = self.spec.fun, self.spec.main
        share = 1.0
        if self.share is not None:  # (row length, number of rows)
            n, total = self.share
            share = kw[main].size // n / total if n and total else 0.0
        if self.op == "value":
            out = fun(**kw)
            if self.share is not None:
                return np.full((1,) * self.ndim, out * share)
            # a scalar (a statistic of 1-D x) as a 0-d array; arrays as they are (CuPy...)
            return np.asarray(out) if isinstance(out, (np.generic, float)) else out
        t = blocks[len(self.names)]
        if self.op == "jvp":
            return _diff.jvp(fun, kw.pop(main), t, **kw)[1]
        args = [kw.pop(name) for name in self.positional]
        if self.share is not None:  # a loss's share of the cotangent, in float64
            t = np.asarray(t, dtype=np.float64) * share
        return _diff.vjp(fun, *args, argnums=self.argnums, **kw)[1](t)


class _Plan:
    """A call's arguments as dask arrays chunked for it, with their blockwise indices
    (main's axes are "a0", "a1", ...), the probe's arguments, the output's indices."""

    def __init__(self, fun, args, kwargs):
        # the function's record: the roles of its arguments, its output's kind
        self.spec = spec = _registry.lookup(fun)
        if spec is None:
            raise TypeError(f"{fun.__name__} does not take dask arrays.")
        signature = inspect.signature(spec.fun)
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        a = bound.arguments
        self.positional = tuple(signature.parameters)[:len(args)]
        for name, value in a.items():
            if _is_dask(value) and not isinstance(value, da.Array):
                raise TypeError(f"{name}: skrank takes dask arrays, not "
                                f"{type(value).__name__}.")
        arrays_in = {spec.main, *spec.aligned, *spec.per_row}
        for name, value in a.items():  # q, lengths, k, multioutput...: small, and they
            if _is_dask(value) and name not in arrays_in:  # fix the output's shape
                a[name] = value.compute()
        x = da.asarray(a[spec.main])
        self.shape = x.shape  # as given (the derivatives have this shape)
        arrays = {name: _check_known(name, da.asarray(a[name])) for name in spec.aligned
                  if a.get(name) is not None}
        if arrays or spec.kind in ("loss", "metric"):  # shapes compared, rows counted
            _check_known(spec.main, x)
        if spec.kind == "metric":  # (samples, outputs): one correlation per column
            x, arrays = _columns(x), {name: _columns(v) for name, v in arrays.items()}
        self._layout(x, 0 if spec.kind == "metric" else a["axis"], a.get("lengths"))
        if self.ragged:
            a["lengths"] = self.lengths
        self._arguments(a, arrays)
        self._probe_arguments(a)
        self._output(a)

    def _layout(self, x, axis, lengths):
        """The operated axis in one chunk; the rows' shape, indices and chunks."""
        self.ind = ind = tuple(f"a{i}" for i in range(x.ndim))
        self.ragged = lengths is not None
        self.whole = axis is None or self.ragged  # all in one block
        self.ax = None
        if self.whole:
            _check_known(self.spec.main, x)
        if self.ragged:
            self.lengths = _check_lengths(x, lengths)
            n = int(self.lengths.min()) if self.lengths.size else 0  # the shortest row
            batch_shape, batch_ind, row_ind = (self.lengths.size,), (), ("rows",)
        elif axis is None:
            n, batch_shape, batch_ind, row_ind = x.size, (), (), ()
        else:
            if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, numbers.Integral):
                raise TypeError(f"axis must be an integer or None, got {axis!r}.")
            self.ax = ax = normalize_axis_index(int(axis), x.ndim)
            if math.isnan(x.shape[ax]):  # (the other axes may be unknown)
                _check_known(self.spec.main, x)
            x = x.rechunk({ax: -1})  # every row in one block
            n = x.shape[ax]
            batch_shape = x.shape[:ax] + x.shape[ax + 1:]
            batch_ind = row_ind = ind[:ax] + ind[ax + 1:]
        self.x = x.rechunk(-1) if self.whole else x
        self.n, self.batch_shape, self.total = n, batch_shape, math.prod(batch_shape)
        self.batch_ind, self.row_ind = batch_ind, row_ind
        self.row_chunks = tuple(self.x.chunks[ind.index(i)] for i in batch_ind) or -1

    def _arguments(self, a, arrays):
        """inputs: name -> (dask array, its indices); fixed: the other arguments."""
        spec, x = self.spec, self.x
        self.inputs = {spec.main: (x, self.ind)}
        self.shared = ()
        for name, v in arrays.items():
            if name == "weights" and v.shape == (self.n,) != x.shape:  # one row's
                self.inputs[name], self.shared = (v.rechunk(-1), ("shared",)), (name,)
            elif v.shape != x.shape:
                raise ValueError(f"{name} must have the shape of {spec.main}, {x.shape}, "
                                 f"got {v.shape}.")
            else:
                self.inputs[name] = (v.rechunk(x.chunks), self.ind)
        for name in spec.per_row:
            v = a[name]
            if name in (_STRENGTH, "k") and np.ndim(v) == 0 and not _is_dask(v):
                continue  # a scalar strength or k stays as it is (the probe checks it)
            v, shape = _check_known(name, da.asarray(v)), self.batch_shape
            _check_known(spec.main, x)  # a per-row array needs the rows counted
            if name in (_STRENGTH, "k"):  # broadcast, as NumPy does
                try:
                    v = da.broadcast_to(v, shape)
                except ValueError:
                    raise ValueError(f"{name} must be a scalar or an array of shape "
                                     f"{shape} (the shape of {spec.main} without the "
                                     f"operated axis), got shape {v.shape}.") from None
            elif v.shape != shape:
                raise ValueError(f"{name} must have shape {shape} (the shape of "
                                 f"{spec.main} without the operated axis), got {v.shape}.")
            self.inputs[name] = (v.rechunk(self.row_chunks), self.row_ind)
        self.fixed = {k: v for k, v in a.items() if k not in self.inputs}

    def _probe_arguments(self, a):
        """The probe's arguments: one short row of ones (per-row inputs: zeros) in each
        input's dtype, the other arguments as given. An invalid k gets a row of the real
        length, so that the probe raises NumPy's message."""
        spec, n = self.spec, self.n
        k = a.get("k")
        if isinstance(k, np.ndarray) and k.ndim == 0 and k.dtype.kind in "iuf":
            k = k[()]  # a 0-d array: its number
        if not isinstance(k, numbers.Real) or isinstance(k, (bool, np.bool_)):
            k = None  # (an array: one k per row, split with the rows)
        length = n if k is not None and not 0 <= k <= n else min(n, _PROBE)
        probe = dict(self.fixed)
        if k is not None and 0 <= k <= n:
            probe["k"] = min(k, length)  # (a real k stays real: same path as given)
        if self.ragged:
            shape, rows = (length,), (min(self.lengths.size, 1),)
            probe["lengths"] = np.full(rows, length)
        elif self.ax is None:
            shape, rows = (1,) * max(self.x.ndim - 1, 0) + (length,), ()
        else:  # one row (the metric: all columns, for multioutput's weights)
            keep = spec.kind == "metric"
            shape = tuple(length if i == self.ax else size if keep else 1
                          for i, size in enumerate(self.x.shape))
            rows = (1,) * len(self.batch_shape)
        for name, (v, _) in self.inputs.items():
            if name in spec.per_row:
                probe[name] = np.zeros(rows, v.dtype)
            else:
                probe[name] = np.ones((length,) if name in self.shared else shape, v.dtype)
        self.probe = probe

    def _output(self, a):
        """The output's indices, and the sizes of those no input has."""
        kind = self.spec.kind
        prefix, sizes = (), {"flat": self.x.size, "rows": self.total}
        if kind == "drop" and np.ndim(a.get("q")) == 1:  # soft_quantile: q's axis first
            prefix, sizes["q"] = ("q",), np.size(a["q"])
        if kind == "same":
            self.out_ind = ("flat",) if self.whole else self.ind
        elif kind == "drop":
            self.out_ind = prefix + self.row_ind
        else:
            self.out_ind = self.batch_ind
        used = {i for _, inds in self.inputs.values() for i in inds}
        self.new_axes = {i: sizes[i] for i in self.out_ind if i not in used}
        self.multioutput = a.get("multioutput")
        if kind == "metric":
            self.fixed["multioutput"] = "raw_values"  # averaged here, see value()

    def _map(self, op, out_ind, dtype, extra=(), **block):
        """blockwise over the inputs' blocks (and extra's: (array, indices))."""
        names = list(self.inputs)
        pairs = [p for name in names for p in self.inputs[name]] + list(extra)
        loss = self.spec.kind == "loss" and not self.whole  # whole: one share of 1
        fn = _Block(self.spec, names, self.fixed, op, len(out_ind),
                    share=(self.n, self.total) if loss else None, **block)
        return da.blockwise(
            fn, out_ind, *pairs, dtype=dtype, concatenate=True,
            new_axes=self.new_axes if out_ind == self.out_ind else None,
            adjust_chunks={i: 1 for i in out_ind} if loss and op == "value" else None,
            token=self.spec.fun.__name__,
            meta=meta_from_array(self.x, ndim=len(out_ind), dtype=dtype))  # x's kind of array

    def _weights(self):
        """soft_spearman's weights of the outputs (None: raw values)."""
        mo, n_outputs = self.multioutput, self.x.shape[1]
        if isinstance(mo, str):
            return None if mo == "raw_values" else np.full(n_outputs, 1.0 / n_outputs)
        w = np.asarray(mo, dtype=np.float64)
        return w / w.sum()

    def value(self):
        kind = self.spec.kind
        if self.x.size == 0:  # nothing to compute: NumPy's result, or its error, at once
            kw = {**self.fixed, **{name: v.compute() for name, (v, _) in self.inputs.items()}}
            return da.asarray(np.asarray(self.spec.fun(**kw)))
        dtype = np.asarray(_quietly(self.spec.fun, **self.probe)).dtype
        out = self._map("value", self.out_ind, np.float64 if kind == "metric" else dtype)
        if kind == "loss":  # the blocks' shares of the mean
            return out.sum()
        if kind == "metric" and self._weights() is not None:
            return (out * self._weights()).sum()
        return out

    def vjp(self, argnums):
        spec, probe = self.spec, dict(self.probe)
        args = [probe.pop(name) for name in self.positional]
        value_p, vjp_p = _quietly(_diff.vjp, spec.fun, *args, argnums=argnums, **probe)
        value = self.value()

        def vjp_fn(cotangent):
            g = _check_known("the cotangent", da.asarray(cotangent))
            if g.shape != value.shape:
                raise ValueError(f"the cotangent must have the value's shape "
                                 f"{value.shape}, got {g.shape}.")
            dtype = np.asarray(_quietly(vjp_p, np.zeros(np.shape(value_p), g.dtype))).dtype
            if spec.kind == "loss":  # a scalar: each block takes its share
                extra = (g, ())
            elif spec.kind == "metric":  # one cotangent per column
                weights = self._weights()
                g = g if weights is None else g * weights
                extra = (g.rechunk(self.x.chunks[1]), self.out_ind)
            else:
                extra = (g.rechunk(value.chunks), self.out_ind)
            out = self._map("vjp", self.ind, dtype, extra, positional=self.positional,
                            argnums=argnums)
            return out.reshape(self.shape)  # the metric's 1-D y_pred

        return value, vjp_fn

    def jvp(self, tangent):
        t = _check_known("the tangent", da.asarray(tangent))
        if t.shape != self.shape:
            raise ValueError(f"the tangent must have x's shape {self.shape}, got {t.shape}.")
        probe = dict(self.probe)
        x = probe.pop(self.spec.main)
        _, jvp_p = _quietly(_diff.jvp, self.spec.fun, x, np.zeros(x.shape, t.dtype), **probe)
        return self.value(), self._map("jvp", self.out_ind, np.asarray(jvp_p).dtype,
                                       (t.rechunk(self.x.chunks), self.ind))


def apply(fun, args, kwargs):
    """``fun(*args, **kwargs)`` with dask arrays among the arguments, lazily."""
    return _Plan(fun, args, kwargs).value()


def vjp(fun, args, kwargs, argnums):
    """skrank.vjp with dask arrays: the value and a vjp function, both lazy."""
    return _Plan(fun, args, kwargs).vjp(argnums)


def jvp(fun, x, tangent, kwargs):
    """skrank.jvp with dask arrays: the value and the jvp, both lazy."""
    return _Plan(fun, (x,), kwargs).jvp(tangent)
