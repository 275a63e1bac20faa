"""Rows: an array's rows along an axis as one C-contiguous block, and back.

Every operator works on rows: the entries along its axis, independent of each other.
:class:`Rows` maps an array to a 2-D (n_rows, n) batch and back (``axis=None`` flattens
it into one row); :class:`RaggedRows` holds rows of different lengths concatenated in
a 1-D array (``lengths=``). Both run over NumPy or CuPy (``xp``) and pick the kernels
for it; the rows' metadata (offsets, lengths) stays in small NumPy arrays.
"""

import math
import numbers

import numpy as np

from . import _cupy, _pav


# entries per step of chunked_sums: its float64 temporaries stay this small (1 MB)
CHUNK = 1 << 17


def kernels(xp):
    return _pav if xp is np else _cupy


def host(a):
    """Metadata (strengths, lengths, k, q) as NumPy, also when given on the GPU."""
    return a.get() if _cupy.is_cupy_array(a) else a


class Rows:
    """Map an array to C-contiguous rows along `axis` (a 2-D view or copy) and back.

    ``axis=None`` flattens the input into one row, as ``np.sort`` does; the
    operator's output is then 1-D while derivatives with respect to the input
    take the input's shape.
    """

    def __init__(self, shape, axis, xp=np):
        self.shape, self.xp, self.kernels = shape, xp, kernels(xp)
        if axis is None:
            self.axis = None
            self.moved = (math.prod(shape),)
        else:
            if isinstance(axis, (bool, np.bool_)) or not isinstance(
                axis, (numbers.Integral, np.integer)
            ):
                raise TypeError(f"axis must be an integer or None, got {axis!r}.")
            ndim = len(shape)
            if ndim == 0:
                raise np.exceptions.AxisError(
                    "the input is a scalar (a 0-d array) and has no axis to operate "
                    "along: pass a 1-D array, or axis=None to treat it as one row."
                )
            if not -ndim <= axis < ndim:
                raise np.exceptions.AxisError(int(axis), ndim)
            self.axis = int(axis) % ndim
            self.moved = shape[: self.axis] + shape[self.axis + 1 :] + (shape[self.axis],)
        # moving the last axis to the end is a no-op: skip np.moveaxis then
        self.last = self.axis is None or self.axis == len(shape) - 1
        self.batch_shape = self.moved[:-1]
        self.n = self.moved[-1]
        self.n_rows = math.prod(self.batch_shape)

    def to_rows(self, a, out_space=False, name="x"):
        """a (the input's shape; the output's shape if out_space) as 2-D rows."""
        expected = self.out_shape if out_space else self.shape
        if a.shape != expected:
            raise ValueError(f"{name} must have shape {expected}, got {a.shape}.")
        if not self.last:
            a = self.xp.moveaxis(a, self.axis, -1)
        return self.xp.ascontiguousarray(a).reshape(self.n_rows, self.n)

    def from_rows(self, a, out_space=True):
        """Inverse of to_rows."""
        if self.axis is None:
            return a.reshape(self.out_shape if out_space else self.shape)
        if self.last:
            return a.reshape(self.shape)
        return self.xp.moveaxis(a.reshape(self.moved), -1, self.axis)

    @property
    def out_shape(self):
        return self.moved if self.axis is None else self.shape

    @property
    def offsets(self):
        """Where each row starts in the flat (C-order) rows, and the end."""
        return np.arange(self.n_rows + 1, dtype=np.int64) * self.n

    def bad_rows(self, X):
        """Rows of X holding NaN or infinity."""
        return ~self.xp.isfinite(X).all(axis=1)

    def set_rows(self, A, rows, value):
        A[rows] = value

    def row_sums(self, A):
        """Sums over each row of A (..., n_rows, n) -> (..., n_rows)."""
        return A.sum(axis=-1)

    def sort_rows(self, X, descending=False):
        X = self.xp.sort(X, axis=-1)
        return X[..., ::-1] if descending else X

    def positions(self):
        """Each entry's position within its row."""
        return self.xp.broadcast_to(self.xp.arange(self.n), (self.n_rows, self.n))

    def expand(self, v):
        """Per-row values (..., n_rows) broadcast against the rows."""
        return self.xp.asarray(v)[..., None]

    def chunked_sums(self, terms):
        """Per-row float64 sums of terms(chunk) over chunks of at most CHUNK entries
        (whole rows, or pieces of one long row): temporaries stay O(CHUNK) however
        long the rows. A chunk's take(a) is its part of rows a, expand(v) its rows'
        part of per-row values v (an array of xp), positions its entries' positions in
        their rows."""
        total = self.xp.zeros(self.n_rows)
        n_rows, n = self.n_rows, self.n
        if n == 0:
            return total
        step_r, step_c = (max(1, CHUNK // n), n) if n <= CHUNK else (1, CHUNK)
        for r0 in range(0, n_rows, step_r):
            for c0 in range(0, n, step_c):
                chunk = _Block(self.xp, slice(r0, min(r0 + step_r, n_rows)),
                               slice(c0, min(c0 + step_c, n)))
                total[chunk.r] += terms(chunk).sum(axis=-1)
        return total


class RaggedRows:
    """Rows of different lengths, concatenated in a 1-D array (``lengths=``): the
    same interface as Rows, with flat 1-D rows."""

    def __init__(self, shape, lengths, xp=np):
        if len(shape) != 1:
            raise ValueError(f"with lengths, x must be 1-D, got shape {shape}.")
        self.xp, self.kernels = xp, kernels(xp)
        lengths = np.asarray(host(lengths))
        if lengths.size == 0:  # [] comes as float64
            lengths = lengths.astype(np.int64)
        if lengths.dtype.kind not in "iu":
            raise TypeError(f"lengths must be integers, got dtype {lengths.dtype}.")
        if lengths.ndim != 1:
            raise ValueError(f"lengths must be 1-D, got shape {lengths.shape}.")
        if (lengths < 0).any() or lengths.sum() != shape[0]:
            raise ValueError(
                f"lengths must be non-negative and sum to the size of x ({shape[0]}), "
                f"got a sum of {lengths.sum()}."
            )
        self.shape = self.out_shape = shape
        self.lengths = lengths.astype(np.int64)
        self.n_rows = len(lengths)
        self.batch_shape = (self.n_rows,)
        self.n = int(lengths.max()) if self.n_rows else 0
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)])
        # each entry's row
        self.row_of = xp.asarray(np.repeat(np.arange(self.n_rows), self.lengths))

    def to_rows(self, a, out_space=False, name="x"):
        if a.shape != self.shape:
            raise ValueError(f"{name} must have shape {self.shape}, got {a.shape}.")
        return self.xp.ascontiguousarray(a)

    def from_rows(self, a, out_space=True):
        return a

    def bad_rows(self, X):
        bad_entries = ~self.xp.isfinite(X)
        return self.xp.bincount(self.row_of[bad_entries], minlength=self.n_rows) > 0

    def set_rows(self, A, rows, value):
        A[rows[self.row_of]] = value

    def row_sums(self, A):
        """Sums over each row of A (..., total) -> (..., n_rows); empty rows sum to 0."""
        xp, shape = self.xp, A.shape[:-1] + (self.n_rows,)
        sums = [xp.bincount(self.row_of, weights=a, minlength=self.n_rows)
                for a in A.reshape(math.prod(A.shape[:-1]), A.shape[-1])]
        if not sums:
            return xp.zeros(shape, A.dtype)
        return xp.stack(sums).astype(A.dtype).reshape(shape)

    def expand(self, v):
        """Per-row values (..., n_rows) repeated over each row's entries."""
        return self.xp.take(self.xp.asarray(v), self.row_of, axis=-1)

    def sort_rows(self, X, descending=False):
        xp = self.xp
        by_value = xp.argsort(X, kind="stable")
        if descending:
            by_value = by_value[::-1]
        return X[by_value[xp.argsort(self.row_of[by_value], kind="stable")]]

    def positions(self):
        """Each entry's position within its row."""
        return self.xp.arange(self.offsets[-1]) - self.xp.asarray(self.offsets)[self.row_of]

    def chunked_sums(self, terms):
        """As Rows.chunked_sums, over pieces of the concatenated rows."""
        xp, total = self.xp, self.xp.zeros(self.n_rows)
        offsets = xp.asarray(self.offsets)  # (once: on a GPU, a copy to the device)
        for c0 in range(0, int(self.offsets[-1]), CHUNK):
            chunk = _Flat(xp, self.row_of[c0:c0 + CHUNK], c0, offsets)
            total += xp.bincount(chunk.row, weights=terms(chunk), minlength=self.n_rows)
        return total


class _Block:
    """Rows r, columns c of 2-D rows (a step of Rows.chunked_sums)."""

    def __init__(self, xp, r, c):
        self.xp, self.r, self.c = xp, r, c

    def take(self, a):
        return a[self.r, self.c]

    def expand(self, v):
        return v[self.r, None]

    @property
    def positions(self):
        return self.xp.arange(self.c.start, self.c.stop)


class _Flat:
    """Entries [c0, c0 + len(row)) of ragged rows, row: their rows (a step of
    RaggedRows.chunked_sums)."""

    def __init__(self, xp, row, c0, offsets):
        self.xp, self.row, self._offsets = xp, row, offsets
        self.e = slice(c0, c0 + row.shape[0])

    def take(self, a):
        return a[self.e]

    def expand(self, v):
        return self.xp.take(v, self.row)

    @property
    def positions(self):
        return self.xp.arange(self.e.start, self.e.stop) - self._offsets[self.row]


def tangent_of_shape(tangent, shape, what):
    """A tangent for an argument of this shape (k, q, a strength): float64 NumPy,
    broadcast to the shape, refused clearly unless real and broadcastable. what: the
    argument, for the error."""
    t = np.asarray(host(tangent))
    if t.dtype.kind not in "biuf":
        raise TypeError(f"the tangent must hold real numbers, got dtype {t.dtype}.")
    try:
        return np.broadcast_to(t.astype(np.float64), shape)
    except ValueError:
        raise ValueError(f"the tangent must have {what}'s shape {shape}, got "
                         f"{t.shape}.") from None


def sum_to_shape(a, shape):
    """a (NumPy, the rows' batch shape) summed over the axes along which an argument
    of this shape was broadcast to it: the derivative in a broadcast argument."""
    total = a.astype(np.float64).sum(axis=tuple(range(a.ndim - len(shape))))
    axes = tuple(i for i, size in enumerate(shape) if size == 1 and total.shape[i] != 1)
    return total.sum(axis=axes, keepdims=True).astype(a.dtype)


def make_rows(shape, axis, lengths, xp=np):
    if lengths is None:
        return Rows(shape, axis, xp)
    if axis not in (-1, 0):
        raise ValueError(f"with lengths, x is 1-D and axis must be -1 or 0, got {axis!r}.")
    return RaggedRows(shape, lengths, xp)
