"""The integer structure of a soft operator, for the autograd adapters (design notes,
doc/design.rst, section 6).

For fixed input, a soft operator's output is closed-form given two integer objects: the
permutation that sorts each row and the PAV block partition. The kernel finds them; an
adapter (:mod:`skrank.torch`, :mod:`skrank.jax`) recomputes the value from them with its
framework's own ops (gathers, segment sums and log-sum-exps, in the forms of the design
notes, section 5), and the framework differentiates that, to any order, with no hand-written
backward pass. The structure itself carries no gradient, which is right: within a fixed
structure the operator is smooth.

Everything here works on NumPy rows: ``X`` of shape (n_rows, n), C-contiguous, finite.
"""

import numpy as np

from . import _ops, _pav, _rows


def _segments(start, nblocks, n):
    """Global block id of every sorted position: row r's blocks are r * n + 0, 1, ..."""
    n_rows = nblocks.shape[0]
    flags = np.zeros((n_rows, n), dtype=np.int64)
    if n_rows and n:
        used = np.arange(n) < nblocks[:, None]
        flags[np.nonzero(used)[0], start[used]] = 1
        flags[:, 0] = 1
    return np.cumsum(flags, axis=1) - 1 + (np.arange(n_rows, dtype=np.int64) * n)[:, None]


def rank_form(X, eps, w, sign, kl):
    """Structure of P(sign * x / eps, w) for every row (soft ranks: w = rho; top-k masks:
    w = (1, ..., 1, 0, ..., 0), l2).

    Returns ``(perm, segment, value)``: ``perm[r]`` is the descending order of
    ``sign * X[r]``, ``segment[r, i]`` the global block id of sorted position ``i``, and
    ``value`` the operator computed by the kernel (the output for rows where ``eps`` is
    0, whose derivative is 0)."""
    rows = _rows.Rows(X.shape, -1)
    value, perm, start, nblocks = _ops._run_kernel(rows, X, eps, w, sign, kl, False, True,
                                                   _pav.WEIGHTS_PREFIX)
    # tied entries where w is flat (a mask's kept or dropped part) are locally constant
    _ops._split_flat_blocks(rows.offsets, start, nblocks, w, _pav.WEIGHTS_PREFIX)
    return perm, _segments(start, nblocks, rows.n), value


def sort_form(X, eps, sign, kl):
    """Structure of sign * P(rho / eps, sort_desc(sign * x)) for every row (soft sorts);
    returned as by :func:`rank_form`."""
    rows = _rows.Rows(X.shape, -1)
    value, perm, start, nblocks = _ops._run_kernel(rows, X, eps, None, sign, kl, True, True)
    return perm, _segments(start, nblocks, rows.n), value


def inverse_permutation(perm):
    """inv[r, perm[r, i]] = i."""
    inv = np.empty_like(perm)
    np.put_along_axis(inv, perm, np.arange(perm.shape[-1], dtype=perm.dtype)[None, :]
                      .repeat(perm.shape[0], 0), axis=-1)
    return inv
