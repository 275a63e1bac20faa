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

from . import _ops, _pav, _rows, _stats


def rank_form(X, eps, w, sign, reg):
    """Structure of P(sign * x / eps, w) for every row (soft ranks: w = rho).

    Returns ``(perm, start, nblocks, value, W)``: ``perm[r]`` is the descending order of
    ``sign * X[r]``; ``start[0, r, :nblocks[0, r]]`` the sorted positions where row
    ``r``'s blocks start; ``value[0]`` the operator computed by the kernel (the output
    for rows where ``eps`` is 0, whose derivative is 0) and ``W`` the weights, one
    leading slice per weight vector."""
    rows = _rows.Rows(X.shape, -1)
    value, perm, start, nblocks = _ops._run_kernel(rows, X, eps, w, sign, reg, False, True,
                                                   _pav.WEIGHTS_PREFIX)
    if (np.diff(w) == 0).any():  # tied entries where w is flat are locally constant
        _ops._split_flat_blocks(rows.offsets, start, nblocks, w, _pav.WEIGHTS_PREFIX)
    return perm, start[None], nblocks[None], value[None], np.asarray(w)[None]


def masks_form(X, eps, ks, reg=_pav.L2):
    """Structure of the soft top-k masks (l2, p4/3 or p3/2: reg) of every row for each k
    in ``ks``, from one sort of each row, as :func:`rank_form` gives it, with one slice
    per k. k = 0 and k = n are computed at strength 0 (constant masks, derivative 0)."""
    rows = _rows.Rows(X.shape, -1)
    n, n_w = rows.n, len(ks)
    W = np.stack([(np.arange(n) < k).astype(np.float64) for k in ks])
    E = np.stack([eps if 0 < k < n else np.zeros_like(eps) for k in ks])
    out = np.empty((n_w, X.size), dtype=X.dtype)
    perm = np.empty(X.size, dtype=_pav.INDEX_DTYPE)
    start = np.empty((n_w, X.size), dtype=_pav.INDEX_DTYPE)
    nblocks = np.zeros((n_w, rows.n_rows), dtype=np.int64)
    if X.size:
        rows.kernels.masks_forward(X.reshape(-1), rows.offsets, E, W, _pav.WEIGHTS_PREFIX,
                                   out, perm, start, nblocks, None, reg)
    start = start.reshape((n_w,) + X.shape)
    for j in range(n_w):
        # tied entries where w is flat (a mask's kept or dropped part) are locally constant
        _ops._split_flat_blocks(rows.offsets, start[j], nblocks[j], W[j],
                                _pav.WEIGHTS_PREFIX)
    return perm.reshape(X.shape), start, nblocks, out.reshape((n_w,) + X.shape), W


def topk_form(X, eps, k, reg):
    """Structure of the soft top-k masks of every row for a real ``k`` per row (the
    weights ``clip(k - j, 0, 1)`` at sorted position ``j``), as :func:`rank_form` gives
    it, in two slices: the blocks with flat ones split (values, derivative in x), then
    as pooled (tied entries share the derivative in ``k``). ``W`` is zero: the adapters
    form the block sums of these weights themselves, differentiably in ``k``."""
    rows = _rows.Rows(X.shape, -1)
    w = _stats._topk_weights(rows.offsets, k)
    value, perm, start, nblocks = _ops._run_kernel(rows, X, eps, w, 1.0, reg, False, True,
                                                   _pav.WEIGHTS_ALIGNED)
    pooled = start.copy(), nblocks.copy()
    _ops._split_flat_blocks(rows.offsets, start, nblocks, w, _pav.WEIGHTS_ALIGNED)
    return (perm, np.stack([start, pooled[0]]), np.stack([nblocks, pooled[1]]),
            np.stack([value, value]), np.zeros((2, rows.n)))


def sort_form(X, eps, sign, reg):
    """Structure of sign * P(rho / eps, sort_desc(sign * x)) for every row (soft sorts);
    returned as by :func:`rank_form` (W: rho)."""
    rows = _rows.Rows(X.shape, -1)
    value, perm, start, nblocks = _ops._run_kernel(rows, X, eps, None, sign, reg, True, True)
    rho = np.arange(rows.n, 0, -1, dtype=np.float64)
    return perm, start[None], nblocks[None], value[None], rho[None]


def host_structure(X, eps, form, *args):
    # (topk_form's k arrives among args, one value per row)
    """What an adapter's shim brings back from the kernel, as NumPy arrays: ``(perm,
    inv, local, first, count, wsum, value)``. ``perm`` and its inverse ``inv`` are
    ``(n_rows, n)``; the others ``(n_w, n_rows, n)``, one slice per weight vector:
    each sorted position's block id within its row (``local``), where its block starts
    (``first``: the block's maximum, the row being sorted descending within it), the
    block's size and the block sum of the weights, the constant parts of the closed
    forms, and the kernel's values."""
    perm, start, nblocks, value, W = form(X, eps, *args)
    inv = np.empty(perm.shape, np.int64)  # (int64 for the frameworks' gathers)
    local, first = np.empty(value.shape, np.int64), np.empty(value.shape, np.int64)
    count, wsum = np.empty(value.shape), np.empty(value.shape)
    for j in range(len(W)):
        _pav.block_arrays(perm, start[j], nblocks[j], W[j], inv, local[j], first[j],
                          count[j], wsum[j])
    return perm.astype(np.int64), inv, local, first, count, wsum, value
