"""Soft sorting and ranking on NumPy arrays.

This module holds the public array operators, their input validation, and the
one dispatch point into the kernels: the Cython kernels of :mod:`skrank._pav` for
NumPy arrays, their CuPy twins in :mod:`skrank._cupy` for CuPy arrays. The code
here runs over both: ``xp`` (NumPy or CuPy) holds the data, while the rows'
metadata (offsets, strengths, weights) is always small NumPy arrays. Every operator
runs a forward pass that keeps the integer structure it found (sorting
permutation and PAV blocks) in a :class:`_Structure`, which :mod:`skrank._diff`
uses for exact O(n) Jacobian-vector products.
"""

import numbers

import numpy as np

from . import _cupy, _pav
from ._registry import STRENGTH, operator
from ._rows import Rows, host, make_rows

# The regularisers of soft_rank and soft_sort and of what is built on them (metrics,
# losses, adapters), with their kernel codes; masks offer l2 and the p-norms (_stats).
_REGULARIZERS = {"l2": _pav.L2, "kl": _pav.KL, "p4/3": _pav.P43, "p3/2": _pav.P32}
_PNORMS = (_pav.P43, _pav.P32)  # sparse and smooth (design notes, section 13)
_DIRECTIONS = ("ascending", "descending")
_NAN_POLICIES = ("raise", "propagate")


def _pnorm_weights(out, reg, xp):
    """The Jacobians' weights g of p-norm outputs (float64): 3 P^(2/3) (p4/3) or
    2 |P|^(1/2) (p3/2), P = out (design notes, section 13)."""
    out = out.astype(np.float64)
    return 3.0 * xp.cbrt(out) ** 2 if reg == _pav.P43 else 2.0 * xp.sqrt(xp.abs(out))


def _check_choice(name, value, choices):
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}.")


def _namespace(*arrays):
    """NumPy, or CuPy when one of the arrays is a CuPy array (the rest follow it)."""
    return _cupy._cupy() if any(map(_cupy.is_cupy_array, arrays)) else np


def _asarray(a, xp):
    """a as an array of xp: data follows the main array, to the host or the GPU."""
    return xp.asarray(host(a) if xp is np else a)


def _as_float_array(x, name="x", xp=np):
    """x as an array of xp holding float32 or float64 (other real dtypes become
    float64)."""
    x = _asarray(x, xp)  # (a y_true follows y_pred: to the host or the GPU)
    if x.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} must hold real numbers; got an array of dtype {x.dtype}."
        )
    if x.dtype.kind != "f" or x.dtype.itemsize not in (4, 8):
        x = x.astype(np.float64)
    elif not x.dtype.isnative:  # big-endian float32 stays float32, in native order
        x = x.astype(x.dtype.newbyteorder("="))
    return x


def _strengths(strength, rows):
    """Per-row strengths as a float64 array of length n_rows, validated."""
    strength = host(strength)
    if isinstance(strength, numbers.Real) and not isinstance(strength, (bool, np.bool_)):
        try:
            value = float(strength)
        except OverflowError:  # an int beyond float64
            value = np.inf
        if not 0.0 <= value < np.inf:
            raise ValueError(
                "regularization_strength must be finite and non-negative, "
                f"got {strength!r}."
            )
        return np.full(rows.n_rows, value)
    eps = np.asarray(strength)
    if eps.dtype.kind not in "iuf":
        raise TypeError(
            "regularization_strength must be a real scalar or array, "
            f"got dtype {eps.dtype}."
        )
    try:
        eps = np.broadcast_to(eps.astype(np.float64, copy=False), rows.batch_shape)
    except ValueError:
        raise ValueError(
            "regularization_strength must be a scalar or an array of shape "
            f"{rows.batch_shape} (x's shape without the operated axis), "
            f"got shape {eps.shape}."
        ) from None
    eps = np.ascontiguousarray(eps).reshape(rows.n_rows)
    if not (np.isfinite(eps).all() and (eps >= 0).all()):
        raise ValueError(
            "regularization_strength must be finite and non-negative everywhere."
        )
    return eps


def _finite_rows(rows, X, nan_policy, name="x"):
    """None if X is finite; else the boolean mask of rows to set to NaN. name is
    the caller's argument; only callers with a nan_policy (name "x") offer it."""
    if rows.xp.isfinite(X).all():
        return None
    if nan_policy == "raise":
        hint = ("; pass nan_policy='propagate' to get NaN in the affected rows instead"
                if name == "x" else "")
        raise ValueError(f"{name} contains NaN or infinity{hint}.")
    return rows.bad_rows(X)


class _Structure:
    """What a forward pass found: enough for O(n) jvp/vjp without sorting again."""

    def __init__(self, op, reg, sign, eps, X, out, perm, start, nblocks, rows, bad):
        self.op, self.reg, self.sign, self.eps = op, reg, sign, eps
        self.X, self.out, self.perm, self.start, self.nblocks = X, out, perm, start, nblocks
        self.rows, self.bad = rows, bad

    def _apply(self, t, transpose):
        rows = self.rows
        # a tangent lives in the input's space, a cotangent in the output's
        t_space_out = transpose
        name = "cotangent" if transpose else "tangent"
        T = rows.to_rows(_real_array(t, name, rows.xp).astype(self.X.dtype, copy=False),
                         t_space_out, name)
        return rows.from_rows(self._apply_rows(T, transpose), out_space=not transpose)

    def _apply_rows(self, T, transpose):
        """The product with T laid out as rows; NaN in the rows that held NaN."""
        rows = self.rows
        res = rows.xp.empty_like(T)
        if T.size:
            flat = (rows.offsets, self.perm.reshape(-1), self.start.reshape(-1),
                    self.nblocks)
            if self.op == "rank":
                # (the p-norm rank forms' Jacobian reads their input too)
                extra = (self.X.reshape(-1),) if self.reg in _PNORMS else ()
                rows.kernels.rank_derivative(*flat, self.out.reshape(-1), self.eps,
                                             self.sign, self.reg, T.reshape(-1),
                                             res.reshape(-1), *extra)
            else:
                # (the p-norm sort forms' Jacobian reads their output; p3/2's the
                # strengths too)
                extra = ((self.out.reshape(-1),) if self.reg == _pav.P43 else
                         (self.out.reshape(-1), self.eps) if self.reg == _pav.P32 else ())
                rows.kernels.sort_derivative(flat[0], self.X.reshape(-1), *flat[1:],
                                             self.sign, self.reg, transpose, T.reshape(-1),
                                             res.reshape(-1), *extra)
            if self.bad is not None:
                rows.set_rows(res, self.bad, np.nan)
        return res

    def jvp(self, tangent):
        return self._apply(tangent, transpose=False)

    def vjp(self, cotangent):
        return self._apply(cotangent, transpose=True)

    def strength_products(self):
        return _row_products(self.rows, self.strength_rows())

    def strength_rows(self):
        """d out / d eps for each row's strength, laid out as the output's rows (design
        notes, section 14); 0 where eps is 0 (the derivative from above) and in rows
        of NaN."""
        rows, xp = self.rows, self.rows.xp
        eps = xp.asarray(self.eps)
        if self.op == "rank":
            # P(sign x / eps, w) depends on x / eps alone: d/d eps = -J x / eps (the
            # kernel forms J x about each block's first entry, in float64: 0 for ties)
            D = _over_strength(-self._apply_rows(self.X, False), rows.expand(eps), xp)
        else:
            soft = eps > 0
            D = xp.where(rows.expand(soft),
                         self._sort_strength_rows(xp.where(soft, eps, 1.0)), 0.0)
        D = D.astype(self.X.dtype, copy=False)
        # (rows of NaN: their output does not move with eps)
        if self.bad is not None:
            rows.set_rows(D, self.bad, 0.0)
        return D

    def _sort_strength_rows(self, eps):
        """The sort form's d out / d eps, in closed form on its blocks: the strength
        enters a block starting at sorted position a through u_i = (rho_i - rho_a) /
        eps = -(i - a) / eps alone, so d out_i / d eps = sign c_i ((i - a) - mean_B(i -
        a)) / eps^2, the mean weighted by 1 (l2; c = 1), by softmax_B(u) (kl; c = 1),
        or by c = g = 3 P^(2/3) (p4/3) or 2 |z - v| (p3/2, read from the block's end
        of larger |P|, as the kernel's Jacobian does) (design notes, section 14).
        Blocks of one entry give 0: only the entries of longer blocks are visited."""
        rows, xp = self.rows, self.rows.xp
        D = xp.zeros(self.out.size)
        if D.size == 0:
            return D.reshape(self.out.shape)
        row, first, length = _block_bounds(rows.offsets, self.start, self.nblocks, xp)
        long = length > 1
        if not bool(long.any()):
            return D.reshape(self.out.shape)
        g = (xp.asarray(rows.offsets[:-1][row]) + first)[long]
        length = length[long]
        e = xp.asarray(eps)[xp.asarray(row)[long]]
        # each visited entry's block and position in it (on the host: CuPy takes no
        # array of repeat counts)
        seg, i = (xp.asarray(a) for a in _segments(host(length)))
        where = g[seg] + i
        i = i.astype(np.float64)
        if self.reg == _pav.L2:
            c, mean = 1.0, ((length - 1) / 2.0)[seg]
        else:
            if self.reg == _pav.KL:
                c, weight = 1.0, xp.exp(-i / e[seg])
            elif self.reg == _pav.P32:  # 2 |z - v| from the block's end of larger |P|
                ends = self.sign * self.out.reshape(-1)[xp.stack([g, g + length - 1])
                                                        ].astype(np.float64)
                last = xp.abs(ends[1]) > xp.abs(ends[0])
                ref, p_ref = xp.where(last, length - 1, 0), xp.where(last, ends[1], ends[0])
                u_ref = xp.sign(p_ref) * xp.sqrt(xp.abs(p_ref))
                c = weight = 2.0 * xp.abs(u_ref[seg] + (ref[seg] - i) / e[seg])
                # (blocks whose outputs underflowed: equal weights, as the kernel's
                # Jacobian gives them)
                lost = (xp.abs(p_ref) < np.finfo(self.out.dtype).tiny)[seg]
                c = weight = xp.where(lost, 1.0, weight)
            else:
                c = weight = _pnorm_weights(self.out.reshape(-1)[where], self.reg, xp)
            total_w = xp.bincount(seg, weights=weight)
            mean = (xp.bincount(seg, weights=weight * i)
                    / xp.where(total_w > 0, total_w, 1.0))[seg]
        D[where] = self.sign * c * (i - mean) / (e * e)[seg]
        return D.reshape(self.out.shape)


def _row_products(rows, D):
    """(jvp, vjp) in per-row values (a strength) of an output whose derivative in each
    row's value is D, laid out as the output's rows: jvp takes one float64 per row
    (NumPy) and returns the output's shape; vjp takes a cotangent of the output's
    shape and returns one float64 per row (NumPy)."""
    xp = rows.xp

    def jvp(t):
        return rows.from_rows(D * rows.expand(xp.asarray(t).astype(D.dtype)))

    def vjp(g):
        G = rows.to_rows(_real_array(g, "cotangent", xp), True, "cotangent")
        return host(rows.row_sums(G.astype(np.float64) * D)).astype(D.dtype)

    return jvp, vjp


def _over_strength(v, eps, xp):
    """v / eps where the strength eps is positive, 0 where it is 0: a derivative in the
    strength, taken from above at 0 (design notes, section 14)."""
    soft = eps > 0
    return xp.where(soft, v / xp.where(soft, eps, 1.0), 0.0)


def _real_array(a, name, xp):
    """a as an array of xp, refused unless it holds real numbers."""
    a = _asarray(a, xp)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"the {name} must hold real numbers, got dtype {a.dtype}.")
    return a


def _check_kernels(rows, reg):
    """The p-norms run on the CPU kernels only: a clear error for CuPy arrays."""
    if reg in _PNORMS and rows.kernels is not _pav:
        name = next(name for name, code in _REGULARIZERS.items() if code == reg)
        raise ValueError(f"regularization='{name}' is computed by the CPU kernels only; "
                         "move the array to the host (e.g. cupy.asnumpy) or use "
                         "'l2' or 'kl'.")


def _run_kernel(rows, X, eps, w, sign, reg, sort_form, keep_structure,
                w_layout=_pav.WEIGHTS_SUFFIX):
    """The one call into the kernels' forward pass: (out, perm, start, nblocks),
    the last three None unless the structure is kept for derivatives. X holds
    the rows as rows.to_rows made them (2-D, or 1-D for ragged rows); reg is a
    kernel code (_pav.L2, KL, P43, P32; False and True mean L2 and KL)."""
    _check_kernels(rows, reg)
    xp = rows.xp
    out = xp.empty_like(X)
    perm = start = nblocks = None
    if keep_structure:
        # (the kernels' index dtype: int32 for NumPy's, within-row indices)
        perm = xp.empty(X.shape, dtype=rows.kernels.INDEX_DTYPE)
        start = xp.empty(X.shape, dtype=rows.kernels.INDEX_DTYPE)
        nblocks = xp.zeros(rows.n_rows, dtype=np.int64)
    if X.size:
        rows.kernels.forward(X.reshape(-1), rows.offsets, eps, w, w_layout, sign, reg,
                             sort_form, out.reshape(-1),
                             None if perm is None else perm.reshape(-1),
                             None if start is None else start.reshape(-1), nblocks)
    return out, perm, start, nblocks


def _block_starts(offsets, start, nblocks, xp=np):
    """(row, pos, is_start) per flat sorted position: its row, its position within the
    row, and whether a PAV block starts there. start and nblocks are as the kernel
    writes them (arrays of xp), offsets the rows' bounds (NumPy)."""
    m = np.diff(offsets)
    total = int(offsets[-1])
    row = xp.asarray(np.repeat(np.arange(m.size), m))
    offsets = xp.asarray(offsets)
    pos = xp.arange(total) - offsets[row]
    is_start = xp.zeros(total, dtype=bool)
    used = pos < xp.asarray(nblocks)[row]
    is_start[offsets[row[used]] + start.reshape(-1)[used]] = True
    return row, pos, is_start


def _segments(counts):
    """(segment, within) for segments of these lengths laid end to end (NumPy): each
    position's segment and its position within it."""
    counts = np.asarray(counts, dtype=np.int64)
    seg = np.repeat(np.arange(counts.size), counts)
    return seg, np.arange(seg.size) - (np.cumsum(counts) - counts)[seg]


def _block_bounds(offsets, start, nblocks, xp=np):
    """(row, first, length) per PAV block, in order: its row (NumPy), and its first
    position within the row and its length (arrays of xp). It costs O(blocks), with
    no array the size of the rows. Arguments as for _block_starts."""
    row, within = _segments(host(nblocks))
    first = start.reshape(-1)[xp.asarray(offsets[:-1][row] + within)]
    # a block ends where the next begins; a row's last one where the next non-empty
    # row's first begins, or at the end
    g = xp.asarray(offsets[:-1][row]) + first
    length = xp.diff(xp.concatenate([g, xp.asarray([int(offsets[-1])])]))
    return row, first, length


def _split_flat_blocks(offsets, start, nblocks, w, layout, xp=np):
    """Split, in place, the PAV blocks over which the weights w are constant.

    Such a block holds tied values pooled only because they tie (for a top-k mask:
    entries tied among the kept, or among the dropped). The operator is locally
    constant there, P = w, so its Jacobian is that of singletons, not of a pooled
    block; the values are the same either way. Weights that never repeat (rho)
    never give such a block. start and nblocks are as the kernel writes them (start
    flat or (n_rows, n), C-contiguous, arrays of xp), offsets the rows' bounds and
    w the weights (NumPy). It costs O(blocks): only a longer block can be flat, w
    (descending) is constant over it iff equal at its ends, and only the rows that
    hold one are rewritten."""
    m = np.diff(offsets)
    if int(offsets[-1]) == 0:
        return
    if xp is np and start.dtype == _pav.INDEX_DTYPE:  # (the kernel's: in place, O(1)
        # extra memory; the arrays below are per block, as large as the rows where
        # most blocks are singletons, as in a top-k mask)
        _pav.split_flat_blocks(np.asarray(offsets, dtype=np.int64), start.reshape(-1),
                               nblocks, np.ascontiguousarray(w, dtype=np.float64), layout)
        return
    row, first, length = _block_bounds(offsets, start, nblocks, xp)
    long = xp.flatnonzero(length > 1)
    if long.size == 0:
        return
    r, f, last = xp.asarray(row)[long], first[long], first[long] + length[long] - 1
    w = xp.asarray(w)
    if layout == _pav.WEIGHTS_PREFIX:
        shift = 0
    elif layout == _pav.WEIGHTS_SUFFIX:
        shift = w.size - xp.asarray(m)[r]
    else:
        shift = xp.asarray(offsets[:-1])[r]
    flat = long[w[shift + f] == w[shift + last]]
    if flat.size == 0:
        return
    # in the rows holding a flat block, every block is kept in order, a flat one as
    # singletons: its first position followed by the rest of it
    affected = np.zeros(m.size, dtype=bool)
    affected[host(xp.asarray(row)[flat])] = True
    keep = xp.asarray(affected[row])
    is_flat = xp.zeros(row.size, dtype=bool)
    is_flat[flat] = True
    pieces = host(xp.where(is_flat, length, 1)[keep])  # (repeat counts on the host)
    new_row = np.repeat(row[host(keep)], pieces)
    new_first = xp.asarray(np.repeat(host(first[keep]), pieces) + _segments(pieces)[1])
    counts = np.bincount(new_row, minlength=m.size)
    _, within = _segments(counts)  # (new_row is in row order)
    start.reshape(-1)[xp.asarray(offsets[:-1][new_row] + within)] = new_first
    rows = np.flatnonzero(affected)
    nblocks[xp.asarray(rows)] = xp.asarray(counts[rows])


def _forward(op, x, regularization_strength, regularization, direction, axis,
             nan_policy, keep_structure=True, lengths=None, name="x"):
    """Validate, run the kernel; return (value, structure or None). name: the
    caller's name for x, in error messages."""
    _check_choice("regularization", regularization, tuple(_REGULARIZERS))
    _check_choice("direction", direction, _DIRECTIONS)
    _check_choice("nan_policy", nan_policy, _NAN_POLICIES)
    xp = _namespace(x)
    x = _as_float_array(x, name, xp=xp)
    rows = make_rows(x.shape, axis, lengths, xp)
    eps = _strengths(regularization_strength, rows)
    X = rows.to_rows(x, name=name)
    bad = _finite_rows(rows, X, nan_policy, name)
    if bad is not None:
        X = X.copy()
        rows.set_rows(X, bad, 0.0)
    reg = _REGULARIZERS[regularization]
    if op == "rank":
        # ascending ranks: P(x / eps, rho); descending: P(-x / eps, rho)
        sign = 1.0 if direction == "ascending" else -1.0
    else:
        # descending sort: P(rho / eps, sorted x); ascending: -sort_desc(-x)
        sign = -1.0 if direction == "ascending" else 1.0
    # the rank form's weights are rho = (m, ..., 1) for a row of length m: the
    # kernels compute them (no array of them)
    out, perm, start, nblocks = _run_kernel(rows, X, eps, None, sign, reg, op == "sort",
                                            keep_structure, _pav.WEIGHTS_RHO)
    structure = None
    if bad is not None:
        rows.set_rows(out, bad, np.nan)
    if keep_structure:
        # the derivatives must not see later in-place changes of the caller's
        # arrays: keep private copies of what they read (kl ranks and sorts, p-norms)
        reads_out = reg in _PNORMS or (reg == _pav.KL and op == "rank")
        kept_out = out.copy() if reads_out else out
        reads_x = (reg == _pav.KL and op == "sort") or (reg in _PNORMS and op == "rank")
        if reads_x and xp.may_share_memory(X, x):
            X = X.copy()
        structure = _Structure(op, reg, sign, eps, X, kept_out, perm, start, nblocks,
                               rows, bad)
    return rows.from_rows(out), structure


_COMMON_PARAMETERS = """\
    regularization_strength : float or array-like of float, default=1.0
        Strength ``eps >= 0`` of the regulariser: 0 gives the hard operator,
        larger values give smoother outputs. A scalar, or an array of ``x``'s
        shape with ``axis`` removed (one strength per row; broadcasting applies).
    regularization : {"l2", "kl", "p4/3", "p3/2"}, default="l2"
        Quadratic ("l2"), entropic ("kl"), 4/3-norm or 3/2-norm ("p4/3", "p3/2",
        Sander et al., 2023: sparse like l2, with outputs cubic or quadratic
        instead of linear in ``x`` within each pooled group, and continuously
        differentiable where an output leaves 0) regularisation of the linear
        program over the permutahedron. The strength's units depend on it: see
        Notes.
    direction : {"ascending", "descending"}, default="ascending"
        Order convention, see below.
    axis : int or None, default=-1
        Axis along which to operate; rows along it are independent. ``None``
        flattens the input first, as :func:`numpy.sort` does.
    nan_policy : {"raise", "propagate"}, default="raise"
        What to do with NaN or infinite entries: raise a ``ValueError``, or
        return NaN for the affected rows (other rows are computed exactly).
    lengths : 1-D array-like of int, optional
        Ragged rows: ``x`` is then 1-D, the concatenation of rows of these
        lengths (summing to ``x.size``), and the output has ``x``'s shape. A
        per-row strength then has one value per row. No padding is involved.
"""


def _soft_rank_structured(x, *, regularization_strength=1.0, regularization="l2",
                          direction="ascending", axis=-1, nan_policy="raise", lengths=None):
    """soft_rank's value and the structure its derivatives need."""
    return _forward("rank", x, regularization_strength, regularization, direction, axis,
                    nan_policy, lengths=lengths)


def _soft_sort_structured(x, *, regularization_strength=1.0, regularization="l2",
                          direction="ascending", axis=-1, nan_policy="raise", lengths=None):
    """soft_sort's value and the structure its derivatives need."""
    return _forward("sort", x, regularization_strength, regularization, direction, axis,
                    nan_policy, lengths=lengths)


@operator(main="x", kind="same", differentiable="x", structured=_soft_rank_structured,
          also=(STRENGTH,))
def soft_rank(
    x,
    *,
    regularization_strength=1.0,
    regularization="l2",
    direction="ascending",
    axis=-1,
    nan_policy="raise",
    lengths=None,
):
    return _forward("rank", x, regularization_strength, regularization,
                    direction, axis, nan_policy, keep_structure=False, lengths=lengths)[0]


soft_rank.__doc__ = f"""Soft (differentiable) ranks along an axis.

    The soft rank is the projection of ``x / eps`` onto the permutahedron of
    ``(n, n-1, ..., 1)`` under the chosen regulariser (Blondel et al., 2020),
    computed exactly by one sort and pool-adjacent-violators: O(n log n) time
    and O(n) memory per row.

    Parameters
    ----------
    x : array-like of real numbers
        Input values. float32 stays float32 and float64 stays float64; other
        real dtypes (integers, booleans, float16, longdouble) are computed in
        float64.
{_COMMON_PARAMETERS}
    Returns
    -------
    ranks : ndarray
        Soft ranks, aligned with ``x`` (same shape, or 1-D when ``axis=None``),
        in ``[1, n]`` and summing to ``n (n + 1) / 2`` along the axis. With
        ``direction="ascending"`` the smallest entry gets the rank closest to 1
        and the largest the rank closest to ``n``; "descending" reverses this.

    See Also
    --------
    soft_sort : The soft counterpart of :func:`numpy.sort`.
    skrank.vjp, skrank.jvp : Exact derivatives.
    scipy.stats.rankdata : The hard ranks, equal to ``soft_rank`` at strength 0.

    Notes
    -----
    With "l2", consecutive sorted entries whose gap is below ``eps`` pool
    together and their ranks become affine in ``x`` with slope ``1 / eps``:
    ``eps`` is in the units of ``x`` and should be compared with the typical gap
    between neighbouring values, not with their spread. With "kl", the pooling
    threshold depends on the position, so low ranks are smoothed more than high
    ones; with "p4/3" (or "p3/2"), neighbours pool when their gap is below ``eps``
    times the gap of the cube roots (square roots) of their ranks. Tied entries
    always receive equal ranks; at strength 0 the ranks are tie-averaged, as
    ``scipy.stats.rankdata(method="average")``. As the strength
    grows every rank tends to ``(n + 1) / 2``.

    References
    ----------
    M. Blondel, O. Teboul, Q. Berthet, J. Djolonga, "Fast Differentiable Sorting
    and Ranking", ICML 2020.

    Examples
    --------
    >>> import skrank
    >>> skrank.soft_rank([5., 1., 2.], regularization_strength=2.0)
    array([3.  , 1.25, 1.75])
    >>> skrank.soft_rank([5., 1., 2.], regularization_strength=0.0)
    array([3., 1., 2.])
    >>> skrank.soft_rank([[5., 1., 2.], [0., 0., 1.]], regularization_strength=[2.0, 0.0])
    array([[3.  , 1.25, 1.75],
           [1.5 , 1.5 , 3.  ]])
    """


@operator(main="x", kind="same", differentiable="x", structured=_soft_sort_structured,
          also=(STRENGTH,))
def soft_sort(
    x,
    *,
    regularization_strength=1.0,
    regularization="l2",
    direction="ascending",
    axis=-1,
    nan_policy="raise",
    lengths=None,
):
    return _forward("sort", x, regularization_strength, regularization,
                    direction, axis, nan_policy, keep_structure=False, lengths=lengths)[0]


soft_sort.__doc__ = f"""Soft (differentiable) sort along an axis.

    The soft sort projects ``(n, n-1, ..., 1) / eps`` onto the permutahedron of
    ``x`` under the chosen regulariser (Blondel et al., 2020), computed exactly by
    one sort and pool-adjacent-violators: O(n log n) time and O(n) memory per row.

    Parameters
    ----------
    x : array-like of real numbers
        Input values. float32 stays float32 and float64 stays float64; other
        real dtypes (integers, booleans, float16, longdouble) are computed in
        float64.
{_COMMON_PARAMETERS}
    Returns
    -------
    values : ndarray
        Softly sorted values in sorted order (ascending or descending) along the
        axis; same shape as ``x``, or 1-D when ``axis=None``. With "l2", "p4/3"
        and "p3/2" they sum to ``sum(x)``; with "kl", ``sum(exp(-values))``
        equals ``sum(exp(-x))`` ("ascending") or ``sum(exp(values))`` equals
        ``sum(exp(x))`` ("descending").

    See Also
    --------
    soft_rank : Soft ranks.
    skrank.vjp, skrank.jvp : Exact derivatives.

    Notes
    -----
    Here the strength is in *inverse* units of ``x``: with "l2", neighbouring
    sorted values whose gap is larger than ``1 / eps`` are averaged together, and
    ``soft_sort(a * x, eps) == a * soft_sort(x, a * eps)`` for ``a > 0``. With
    "p4/3" the sort cubes: ``soft_sort(a * x, eps) == a * soft_sort(x, a ** (1/3) *
    eps)`` ("p3/2": ``a ** (1/2)``), the sum of ``x`` is kept, and it is not
    equivariant to shifts (values near 0 pool first). At
    strength 0 the result is ``np.sort(x)``; as the strength grows every value
    tends to the mean ("l2") or to a log-mean-exp ("kl"). Tied inputs are a kink
    of the soft sort (not of the soft rank): derivatives there are one-sided.

    Examples
    --------
    >>> import skrank
    >>> skrank.soft_sort([3., 1., 2.], regularization_strength=0.0)
    array([1., 2., 3.])
    >>> skrank.soft_sort([3., 1., 2.], regularization_strength=0.5)
    array([1., 2., 3.])
    >>> skrank.soft_sort([3., 1., 2.], regularization_strength=2.0)
    array([1.5, 2. , 2.5])
    >>> skrank.soft_sort([3., 1., 2.], regularization_strength=2.0, direction="descending")
    array([2.5, 2. , 1.5])
    """


@operator(main="y", kind="same", aligned=("weights",), per_row=())
def isotonic_regression(y, *, weights=None, increasing=True, axis=-1):
    """Least-squares isotonic regression along an axis, batched.

    Solves ``min sum_i w_i (y_i - v_i)^2`` subject to ``v_1 <= v_2 <= ...``
    (or ``>=`` when ``increasing=False``) for every row along ``axis``, with the
    pool-adjacent-violators algorithm in O(n) per row. Each row's result equals
    ``scipy.optimize.isotonic_regression(row, weights=w_row,
    increasing=increasing).x``.

    Parameters
    ----------
    y : array-like of real numbers
        Values to fit. float32 stays float32; other real dtypes (integers,
        booleans, float16, longdouble) give float64.
    weights : array-like of float, optional
        Positive, finite weights: of ``y``'s shape, or 1-D of the length of the
        axis (shared by every row). Default: all ones.
    increasing : bool, default=True
        Fit a nondecreasing (True) or nonincreasing (False) sequence.
    axis : int or None, default=-1
        Axis along which to fit; ``None`` flattens ``y`` (the result is 1-D).

    Returns
    -------
    v : ndarray
        The isotonic fit, of ``y``'s shape (1-D when ``axis=None``).

    See Also
    --------
    scipy.optimize.isotonic_regression : The same fit, one 1-D array at a time.
    sklearn.isotonic.IsotonicRegression : An estimator fitting y against x.

    Examples
    --------
    >>> import skrank
    >>> skrank.isotonic_regression([1., 3., 2., 4.])
    array([1. , 2.5, 2.5, 4. ])
    >>> skrank.isotonic_regression([[1., 3., 2.], [3., 2., 1.]], increasing=False)
    array([[2., 2., 2.],
           [3., 2., 1.]])
    """
    if not isinstance(increasing, (bool, np.bool_)):
        raise TypeError(f"increasing must be a bool, got {increasing!r}.")
    xp = _namespace(y)
    y = _as_float_array(y, "y", xp)
    rows = Rows(y.shape, axis, xp)
    Y = rows.to_rows(y, name="y")
    if not xp.isfinite(Y).all():
        raise ValueError("y contains NaN or infinity.")
    if weights is None:
        W = None  # unit weights, without allocating them
    else:
        w = _as_float_array(weights, "weights", xp).astype(np.float64, copy=False)
        if w.ndim == 1 and w.shape != y.shape and w.shape == (rows.n,):
            W = xp.ascontiguousarray(xp.broadcast_to(w, Y.shape))
        else:
            W = rows.to_rows(w, name="weights").astype(np.float64, copy=False)
        if not (xp.isfinite(W).all() and (W > 0).all()):
            raise ValueError("weights must be finite and positive.")
        if W.size and float(W.max()) > 2.0 ** 960:  # rows with weights that large are
            # scaled by a power of two, just enough for finite block sums (<= n max w):
            # the ratios stay exact, and small weights do not underflow
            excess = xp.maximum(xp.frexp(W.max(axis=1))[1] - 960, 0)
            W = xp.ldexp(W, -excess[:, None].astype(np.int32))

    if not increasing:
        Y = -Y  # a decreasing fit of y is minus the increasing fit of -y
    out = xp.empty_like(Y)
    if Y.size:
        rows.kernels.isotonic_increasing(Y, W, out)
    if not increasing:
        out = -out
    return rows.from_rows(out)
