"""Soft sorting and ranking for JAX arrays, differentiable to any order.

The kernel finds the integer structure of each row: the permutation that sorts it and the
PAV block partition. It runs on the host through :func:`jax.pure_callback`, on
``stop_gradient`` of the input, and returns fixed-shape integer arrays (the order, its
inverse, and each sorted position's block id within its row). The value is then written
in :mod:`jax.numpy` from that structure, in closed forms that avoid cancellation:
gathers, segment sums and log-sum-exps. JAX differentiates those ops itself, so ``grad``,
``jacfwd``, ``jacrev`` and ``hessian`` are exact to any order, and ``jit`` and ``vmap``
work, with no ``custom_vjp``: the structure is piecewise constant and carries no gradient,
and within a fixed structure the operator is smooth.

The functions mirror their NumPy twins (:func:`skrank.soft_rank`, :func:`skrank.soft_sort`,
:func:`skrank.soft_topk_mask`, :func:`skrank.soft_quantile`, :func:`skrank.soft_median`,
:func:`skrank.soft_trimmed_mean`, and :func:`skrank.losses.spearman_loss`,
:func:`~skrank.losses.ndcg_loss`, :func:`~skrank.losses.topk_loss`) with ``axis=-1``.
The statistics are differences of soft top-k masks dotted with ``x``, the losses soft
ranks and masks put together in :mod:`jax.numpy`, so they are exact to any order too.

The strength is a constant (no derivative with respect to it). Rows holding NaN or
infinity give NaN, and so do rows whose strength, traced under ``jit`` or ``vmap`` (so
not checked in Python), is negative or not finite. What fixes the computation's shape or
structure must be concrete, static under ``jit`` (``static_argnums`` /
``static_argnames``, or closed over): ``k`` of :func:`soft_topk_mask`,
:func:`ndcg_loss` and :func:`topk_loss` (a Python int), ``q`` of :func:`soft_quantile`
(a float or a tuple) and ``proportiontocut`` of :func:`soft_trimmed_mean`. The
relevances of :func:`ndcg_loss` and the labels of :func:`topk_loss` are checked when
concrete; traced, an invalid row gives NaN.
"""

import numbers
import types

import numpy as np

try:
    import jax
    import jax.numpy as jnp
except ImportError as exc:  # pragma: no cover
    raise ImportError(
        "skrank.jax needs JAX: `pip install jax`, or `pip install -e \".[jax]\"` from "
        "the skrank checkout."
    ) from exc

from . import _ops, _stats, _structure

__all__ = ["ndcg_loss", "soft_median", "soft_quantile", "soft_rank", "soft_sort",
           "soft_topk_mask", "soft_trimmed_mean", "spearman_loss", "topk_loss"]

_sg = jax.lax.stop_gradient


def _float(x, name="x"):
    """(x in its compute dtype, the output dtype): integers and booleans become JAX's
    default float; float16 and bfloat16 are computed in float32."""
    x = jnp.asarray(x)
    if x.dtype == jnp.bool_ or jnp.issubdtype(x.dtype, jnp.integer):
        x = x.astype(jax.dtypes.canonicalize_dtype(np.float64))
    elif not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"{name} must hold real numbers; got an array of dtype {x.dtype}.")
    return (x.astype(jnp.float32) if x.dtype.itemsize < 4 else x), x.dtype


def _rows(x, axis, strength):
    """(rows (n_rows, n) in the compute dtype, per-row strengths (n_rows,), and the
    function that takes output rows back to x's layout and dtype)."""
    x, dtype = _float(x)
    if axis is None:
        x, axis = x.ravel(), -1
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"axis must be an integer or None, got {axis!r}.")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis {axis} is out of bounds for an array of dimension {x.ndim}.")
    moved = jnp.moveaxis(x, axis, -1)
    batch, n_rows = moved.shape[:-1], int(np.prod(moved.shape[:-1]))
    try:  # a concrete strength is validated here, as NumPy does
        eps = _ops._strengths(strength, types.SimpleNamespace(n_rows=n_rows,
                                                              batch_shape=batch))
    except jax.errors.TracerArrayConversionError:  # traced: invalid values give NaN
        try:
            eps = jnp.broadcast_to(jnp.asarray(strength), batch)
        except ValueError:
            raise ValueError("regularization_strength must be a scalar or an array of "
                             f"shape {batch} (x's shape without axis).") from None
    X = moved.reshape(n_rows, moved.shape[-1])
    eps = _sg(jnp.asarray(eps, dtype=X.dtype).reshape(-1))
    ok = _valid(X, eps)[:, None]

    def back(out, reduced=False):
        if reduced:  # one value per row, for each of out's leading entries: (m, n_rows)
            out = jnp.where(ok[:, 0], out, jnp.nan)
            return out.reshape(out.shape[:-1] + batch).astype(dtype)
        out = jnp.where(ok, out, jnp.nan)
        return jnp.moveaxis(out.reshape(moved.shape), -1, axis).astype(dtype)

    return X, eps, back


def _valid(X, eps):
    """Rows without NaN or infinity, whose strength (maybe traced) is valid: the others
    give NaN."""
    return jnp.isfinite(X).all(-1) & jnp.isfinite(eps) & (eps >= 0)


def _static(value, name):
    """value as a NumPy array: a parameter that fixes the computation's shape or
    structure cannot be traced."""
    try:
        return np.asarray(value)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        raise TypeError(f"{name} must be concrete (a Python number or a tuple of them): "
                        "static under jit (static_argnums / static_argnames, or closed "
                        "over).") from None


def _structure_of(X, eps, form, *args):
    """(perm, inverse perm, block sum, block max, kernel value) of the rows of X; the
    block operations gather their result back to every sorted position."""
    int_dtype = jax.dtypes.canonicalize_dtype(np.int64)  # int32 unless x64 is enabled

    def host(x, e):
        shape = x.shape  # (..., n): leading batch dimensions of vmap are rows too
        X = np.ascontiguousarray(np.asarray(x).reshape(-1, shape[-1]))
        E = np.asarray(e, dtype=np.float64).reshape(-1)
        # no exceptions in a pure callback: rows that are not valid become NaN later
        E = np.where(np.isfinite(E) & (E >= 0), E, 0.0)
        perm, segment, value = form(np.where(np.isfinite(X), X, 0), E, *args)
        local = segment - shape[-1] * np.arange(len(X))[:, None]
        ints = (perm, _structure.inverse_permutation(perm), local)
        return tuple(a.astype(int_dtype).reshape(shape) for a in ints) + (
            value.reshape(shape),)

    shapes = (jax.ShapeDtypeStruct(X.shape, int_dtype),) * 3 + (
        jax.ShapeDtypeStruct(X.shape, X.dtype),)
    # "broadcast_all": under vmap every argument arrives with the batch dimensions in
    # front (the strength too), so the host only flattens them into rows, each with its
    # own strength. Block ids are local to a row and the row offsets are added below,
    # in jax.numpy, where vmap's rows and the caller's are told apart.
    perm, inv, local, value = jax.pure_callback(host, shapes, _sg(X), eps,
                                                vmap_method="broadcast_all")
    n_rows, n = X.shape
    seg = (local + n * jnp.arange(n_rows, dtype=local.dtype)[:, None]).ravel()

    def block(reduce, v):
        return reduce(v.ravel(), seg, n_rows * n, indices_are_sorted=True)[seg].reshape(
            X.shape)

    return (perm, inv, lambda v: block(jax.ops.segment_sum, v),
            lambda v: block(jax.ops.segment_max, _sg(v)), value)


def _clip(v, lo, hi):
    """Clip to the exact bounds (rounding can step out by an ulp); derivatives unchanged."""
    return v + _sg(jnp.clip(v, lo, hi) - v)


def _rank_form(x, strength, axis, sign, kl, k=None):
    """P(sign * x / eps, w) along axis: w = rho (ranks) or k ones then zeros (masks)."""
    X, eps, back = _rows(x, axis, strength)
    n = X.shape[-1]
    if k is not None and not 0 <= k <= n:
        raise ValueError(f"k must lie in [0, {n}] (the length of the axis), got {k}.")
    return back(_rank_rows(X, eps, sign, kl, k))


def _rank_rows(X, eps, sign, kl, k=None):
    """_rank_form on rows X (n_rows, n) with strengths eps (n_rows,), in X's dtype;
    rows that are not valid are not set to NaN here."""
    n = X.shape[-1]
    w = np.arange(n, 0, -1.0) if k is None else (np.arange(n) < k).astype(np.float64)
    if k is not None and k in (0, n):
        eps = jnp.zeros_like(eps)  # a constant mask: derivative exactly 0
    if X.size == 0:
        return X
    perm, inv, bsum, bmax, value = _structure_of(X, eps, _structure.rank_form, w, sign, kl)
    e = jnp.where(eps == 0, 1, eps)[:, None]  # the soft branch stays finite
    d = sign * jnp.take_along_axis(X, perm, axis=-1)  # sorted, descending
    c = d - bmax(d)
    wj = jnp.broadcast_to(jnp.asarray(w, dtype=X.dtype), X.shape)
    if kl:  # softmax_B(d / eps) * sum_B w
        ex = jnp.exp(c / e)
        p = ex / bsum(ex) * bsum(wj)
    else:  # (d - mean_B d) / eps + mean_B w
        count = bsum(jnp.ones_like(d))
        p = (c - bsum(c) / count) / e + bsum(wj) / count
    soft = jnp.take_along_axis(_clip(p, w[-1], w[0]), inv, axis=-1)
    return jnp.where(eps[:, None] == 0, value, soft)


def _sort_form(x, strength, axis, sign, kl):
    """sign * P(rho / eps, sort_desc(sign * x)) along axis."""
    X, eps, back = _rows(x, axis, strength)
    if X.size == 0:
        return back(X)
    perm, _, bsum, bmax, _ = _structure_of(X, eps, _structure.sort_form, sign, kl)
    e = jnp.where(eps == 0, 1, eps)[:, None]
    t = sign * jnp.take_along_axis(X, perm, axis=-1)  # sorted, descending
    rho = jnp.broadcast_to(jnp.arange(X.shape[-1], 0, -1, dtype=X.dtype), X.shape)
    m = bmax(t)
    if kl:  # log_softmax_B(rho / eps) + logsumexp_B(t)
        z = (rho - bmax(rho)) / e
        p = z - jnp.log(bsum(jnp.exp(z))) + m + jnp.log(bsum(jnp.exp(t - m)))
    else:  # (rho - mean_B rho) / eps + mean_B t
        count = bsum(jnp.ones_like(t))
        p = (rho - bsum(rho) / count) / e + m + bsum(t - m) / count
    return back(sign * jnp.where(eps[:, None] == 0, t, _clip(p, t[:, -1:], t[:, :1])))


# Parameter descriptions shared by the public functions' docstrings: those of their
# NumPy twins (skrank._ops._COMMON_PARAMETERS), for JAX arrays.
_X = """x : jax.Array or array-like
        Values. Integers and booleans become JAX's default float; float16 and bfloat16
        are computed in float32 and returned in their own dtype."""

_STRENGTH = """regularization_strength : float or array-like, default=1.0
        Strength ``eps >= 0`` of the regulariser, in the units of ``{x}``: 0 gives the
        hard operator, larger values smoother outputs. A scalar, or one value per row
        (an array of ``{x}``'s shape without ``axis``). A constant: no derivative is
        taken with respect to it; traced, an invalid value gives NaN rows."""

_REGULARIZATION = """regularization : {"l2", "kl"}, default="l2"
        Quadratic ("l2") or entropic ("kl") regularisation of the linear program over
        the permutahedron."""

_DIRECTION = """direction : {"ascending", "descending"}, default="ascending"
        Order convention: "ascending" gives the smallest entry the rank closest to 1
        and sorts in increasing order along ``axis``; "descending" reverses both."""

_AXIS = """axis : int or None, default=-1
        Axis along which to operate; rows along it are independent. ``None`` flattens
        ``x`` first, as :func:`numpy.sort` does."""

_LISTS_AXIS = """axis : int or None, default=-1
        Axis along which the lists lie; every other axis indexes lists. ``None``
        flattens both arrays into one list."""


def soft_rank(x, *, regularization_strength=1.0, regularization="l2",
              direction="ascending", axis=-1):
    _ops._check_choice("regularization", regularization, _ops._REGULARIZATIONS)
    _ops._check_choice("direction", direction, _ops._DIRECTIONS)
    return _rank_form(x, regularization_strength, axis,
                      1.0 if direction == "ascending" else -1.0, regularization == "kl")


soft_rank.__doc__ = f"""Soft ranks of a JAX array along ``axis``.

    The same operator as :func:`skrank.soft_rank`, differentiable to any order, under
    ``jit`` and ``vmap``.

    Parameters
    ----------
    {_X}
    {_STRENGTH.format(x="x")}
    {_REGULARIZATION}
    {_DIRECTION}
    {_AXIS}

    Returns
    -------
    ranks : jax.Array
        Soft ranks in ``[1, n]``, of ``x``'s shape (1-D when ``axis=None``).

    See Also
    --------
    skrank.soft_rank : The NumPy twin.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> from skrank.jax import soft_rank
    >>> x = jnp.array([5., 1., 2.])
    >>> soft_rank(x, regularization_strength=2.0).tolist()
    [3.0, 1.25, 1.75]
    >>> jax.grad(lambda x: soft_rank(x, regularization_strength=2.0)[1])(x).tolist()
    [0.0, 0.25, -0.25]
    """


def soft_sort(x, *, regularization_strength=1.0, regularization="l2",
              direction="ascending", axis=-1):
    _ops._check_choice("regularization", regularization, _ops._REGULARIZATIONS)
    _ops._check_choice("direction", direction, _ops._DIRECTIONS)
    return _sort_form(x, regularization_strength, axis,
                      -1.0 if direction == "ascending" else 1.0, regularization == "kl")


soft_sort.__doc__ = f"""Soft sort of a JAX array along ``axis``.

    The same operator as :func:`skrank.soft_sort`, differentiable to any order, under
    ``jit`` and ``vmap``. Tied inputs are a kink: derivatives there are one-sided.

    Parameters
    ----------
    {_X}
    {_STRENGTH.format(x="x")}
    {_REGULARIZATION}
    {_DIRECTION}
    {_AXIS}

    Returns
    -------
    values : jax.Array
        Soft sorted values, of ``x``'s shape (1-D when ``axis=None``), in sorted order
        along ``axis``.

    See Also
    --------
    skrank.soft_sort : The NumPy twin.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from skrank.jax import soft_sort
    >>> soft_sort(jnp.array([3., 1., 2.]), regularization_strength=2.0).tolist()
    [1.5, 2.0, 2.5]
    """


def soft_topk_mask(x, k, *, regularization_strength=1.0, axis=-1):
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"k must be a Python int (static under jit), got {k!r}.")
    return _rank_form(x, regularization_strength, axis, 1.0, False, int(k))


soft_topk_mask.__doc__ = f"""Soft mask of the ``k`` largest entries along ``axis``.

    The same operator as :func:`skrank.soft_topk_mask` (l2), differentiable to any
    order. Only entries within about ``eps`` of the k-th largest are soft; the others
    are exactly 0 or 1.

    Parameters
    ----------
    x : jax.Array or array-like
        Scores (dtypes as for :func:`soft_rank`).
    k : int
        A Python int in ``[0, n]`` (``n`` the length of ``axis``); static under ``jit``.
    {_STRENGTH.format(x="x")}
    {_AXIS}

    Returns
    -------
    mask : jax.Array
        Values in ``[0, 1]`` summing to ``k`` along ``axis``, of ``x``'s shape.

    See Also
    --------
    skrank.soft_topk_mask : The NumPy twin.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from skrank.jax import soft_topk_mask
    >>> soft_topk_mask(jnp.array([3., 1.5, 1., 0.]), 2).tolist()
    [1.0, 0.75, 0.25, 0.0]
    """


def spearman_loss(y_true, y_pred, *, regularization_strength=1.0, regularization="l2",
                  axis=-1):
    _ops._check_choice("regularization", regularization, _ops._REGULARIZATIONS)
    y_pred, dtype = _float(y_pred, "y_pred")
    y_true = _float(y_true, "y_true")[0]
    if y_true.shape != y_pred.shape:
        raise ValueError("y_true and y_pred must have the same shape, got "
                         f"{y_true.shape} and {y_pred.shape}.")
    if y_pred.size == 0:
        raise ValueError("the losses need at least one list, and no empty list.")
    R = _rank_form(y_pred, regularization_strength, axis, 1.0, regularization == "kl")
    A = _rank_form(_sg(y_true), 0.0, axis, 1.0, False).astype(R.dtype)
    A, B = (jnp.moveaxis(a, -1 if axis is None else axis, -1) for a in (A, R))
    A, B = A - A.mean(-1, keepdims=True), B - B.mean(-1, keepdims=True)
    saa, sbb = (A * A).sum(-1), (B * B).sum(-1)
    ok = (saa > 0) & (sbb > 0)  # a constant row has no correlation: 0 by convention
    denom = jnp.sqrt(jnp.where(ok, saa, 1)) * jnp.sqrt(jnp.where(ok, sbb, 1))
    return jnp.mean(1 - jnp.where(ok, (A * B).sum(-1) / denom, 0)).astype(dtype)


spearman_loss.__doc__ = f"""One minus the soft Spearman correlation, averaged over rows.

    The same loss as :func:`skrank.losses.spearman_loss`: for each row, the Pearson
    correlation of the hard (tie-averaged) ranks of ``y_true`` and the ascending soft
    ranks of ``y_pred``. Differentiable in ``y_pred`` to any order.

    Parameters
    ----------
    y_true : jax.Array or array-like
        Targets; only their hard ranks are used (a constant).
    y_pred : jax.Array or array-like
        Predictions, of ``y_true``'s shape.
    {_STRENGTH.format(x="y_pred")}
    {_REGULARIZATION}
    {_LISTS_AXIS}

    Returns
    -------
    loss : jax.Array
        A scalar in ``[0, 2]``; a row where either side is constant contributes 0.

    See Also
    --------
    skrank.losses.spearman_loss : The NumPy twin.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> from skrank.jax import spearman_loss
    >>> y_true = jnp.array([1., 2., 3.])
    >>> float(spearman_loss(y_true, jnp.array([3., 1., 2.]), regularization_strength=0.0))
    1.5
    >>> jax.jit(jax.grad(spearman_loss, argnums=1))(y_true, jnp.array([3., 1., 2.])).shape
    (3,)
    """


# ---------------------------------------------------------------- statistics, losses
class _Masks:
    """Soft top-k masks of the rows X (l2, strengths eps), each k computed once, and the
    soft statistics weighted by their differences (design notes, section 7)."""

    def __init__(self, X, eps):
        self.X, self.eps, self._masks, self._sorted = X, eps, {}, None

    def mask(self, k):
        if k not in self._masks:
            self._masks[k] = _rank_rows(self.X, self.eps, 1.0, False, k)
        return self._masks[k]

    def within_rows(self, value):
        """value (one per row) clipped to its row's [min, max], where a convex
        combination of the row lies in exact arithmetic; the derivative stays the
        unclipped one's."""
        lo, hi = self.X.min(-1), self.X.max(-1)
        return value + _sg(jnp.clip(value, lo, hi) - value)

    def mean(self, k_hi, k_lo, total):
        """Per row <M(k_hi) - M(k_lo), x> / total (the weights sum to total): about c,
        the row's value closest to 0 within its range (scaled by 2^-24 near the
        dtype's limit), so that nothing overflows, derivatives included, and a
        constant row gives its value exactly; within the row's range."""
        X = _sg(self.X)
        lo, hi = X.min(-1, keepdims=True), X.max(-1, keepdims=True)
        near_limit = jnp.maximum(-lo, hi) > jnp.finfo(X.dtype).max * 2.0 ** -23
        scale = jnp.where(near_limit, 2.0 ** -24, 1.0).astype(X.dtype)
        c = jnp.clip(jnp.zeros_like(lo), lo, hi) * scale  # sum(w) = total: c's own
        X = self.X  # derivative is 0
        w = self.mask(k_hi) - self.mask(k_lo)
        value = (((w / total) * (X * scale - c)).sum(-1, keepdims=True) + c) / scale
        return self.within_rows(value[:, 0])

    def order_statistic(self, i):
        """The soft (i + 1)-th smallest value of each row: <M(n - i) - M(n - i - 1), x>."""
        n = self.X.shape[-1]
        value = self.mean(n - i, n - i - 1, 1.0)
        if self._sorted is None:
            self._sorted = jnp.sort(_sg(self.X), axis=-1)
        # strength 0: exactly the sorted value, as NumPy (the shared weights of tied
        # entries could round); the derivative stays that of the weights
        return value + jnp.where(self.eps == 0, _sg(self._sorted[:, i] - value), 0)


def _quantile(x, q, strength, axis, median):
    q = _stats._check_q(_static(q, "q"))
    X, eps, back = _rows(x, axis, strength)
    n = X.shape[-1]
    if n == 0:
        raise ValueError("cannot take a quantile of an empty row.")
    masks, values = _Masks(X, eps), []
    for qq in q.ravel():  # numpy's "linear" method: between order statistics j, j + 1
        h = (n - 1) * float(qq)
        j = min(int(np.floor(h)), n - 1)
        t = h - j
        a = masks.order_statistic(j)
        if t == 0:
            values.append(a)
            continue
        b = masks.order_statistic(min(j + 1, n - 1))
        if median and t == 0.5:  # as numpy.median: the mean of the two middle values,
            value = jnp.where(jnp.isfinite(a + b), (a + b) / 2, a / 2 + b / 2)  # halved
        else:  # first where a + b overflows; numpy.quantile's interpolation, written as
            d = b - a  # it writes it, or the convex combination where b - a overflows
            value = jnp.where(jnp.isfinite(d),
                              b - d * (1.0 - t) if t >= 0.5 else a + d * t,
                              a * (1.0 - t) + b * t)
        values.append(masks.within_rows(value))
    out = back(jnp.stack(values) if values else jnp.zeros((0, X.shape[0]), X.dtype),
               reduced=True)
    return out.reshape(q.shape + out.shape[1:])


def soft_quantile(x, q, *, regularization_strength=1.0, axis=-1):
    return _quantile(x, q, regularization_strength, axis, median=False)


soft_quantile.__doc__ = f"""Soft q-th quantiles of a JAX array along ``axis``.

    The same statistic as :func:`skrank.soft_quantile`, differentiable to any order:
    numpy.quantile's "linear"
    interpolation between soft order statistics. The j-th smallest value (from 0) is
    ``sum((M(n - j) - M(n - j - 1)) * x)``, with ``M(k)`` the soft top-k mask
    (:func:`soft_topk_mask`). Its weights are non-negative, sum to one, and are
    exactly zero on far outliers.

    Parameters
    ----------
    x : jax.Array or array-like
        Values (dtypes as for :func:`soft_rank`).
    q : float or 1-D sequence of float
        Probabilities in ``[0, 1]``. Concrete: under ``jit``, a static argument (a
        float or a tuple) or closed over.
    {_STRENGTH.format(x="x")}
    {_AXIS}

    Returns
    -------
    quantile : jax.Array
        Of shape ``q.shape`` followed by ``x``'s shape without ``axis``. Strength 0
        gives ``numpy.quantile``; its derivative is then the hard one (the weights of
        the order statistics, tied entries sharing them).

    See Also
    --------
    skrank.soft_quantile : The NumPy twin.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> from skrank.jax import soft_quantile
    >>> x = jnp.array([1., 2., 3., 4., 1000.])
    >>> float(soft_quantile(x, 0.5, regularization_strength=0.0))
    3.0
    >>> soft_quantile(x, (0.25, 0.75), regularization_strength=0.0).tolist()
    [2.0, 4.0]
    >>> grad = jax.jit(jax.grad(soft_quantile), static_argnums=1)  # q static
    >>> grad(jnp.array([1., 2., 2.5, 5.]), 0.5, regularization_strength=0.0).tolist()
    [0.0, 0.5, 0.5, 0.0]
    """


def soft_median(x, *, regularization_strength=1.0, axis=-1):
    return _quantile(x, 0.5, regularization_strength, axis, median=True)


soft_median.__doc__ = f"""Soft median along ``axis``: :func:`soft_quantile` at 0.5.

    The same statistic as :func:`skrank.soft_median`, differentiable to any order. An
    even length averages the two middle order statistics (as :func:`numpy.median`).

    Parameters
    ----------
    x : jax.Array or array-like
        Values (dtypes as for :func:`soft_rank`).
    {_STRENGTH.format(x="x")}
    {_AXIS}

    Returns
    -------
    median : jax.Array
        Of ``x``'s shape without ``axis``.

    See Also
    --------
    skrank.soft_median : The NumPy twin.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from skrank.jax import soft_median
    >>> float(soft_median(jnp.array([4., 1., 3., 2.]), regularization_strength=0.0))
    2.5
    >>> soft_median(jnp.array([[4., 1., 3.], [0., 8., 2.]]),
    ...             regularization_strength=[0.0, 0.0]).tolist()
    [3.0, 2.0]
    """


def soft_trimmed_mean(x, proportiontocut, *, regularization_strength=1.0, axis=-1):
    p = _static(proportiontocut, "proportiontocut")
    if p.ndim == 0 and p.dtype.kind in "iuf":
        proportiontocut = float(p)  # numpy scalars and 0-d arrays too
    if not isinstance(proportiontocut, numbers.Real) or not 0 <= proportiontocut < 0.5:
        raise ValueError(
            f"proportiontocut must be a number in [0, 0.5), got {proportiontocut!r}.")
    X, eps, back = _rows(x, axis, regularization_strength)
    n = X.shape[-1]
    if n == 0:
        raise ValueError("cannot take a trimmed mean of an empty row.")
    k = int(proportiontocut * n)  # cut from each end, as scipy's trim_mean
    return back(_Masks(X, eps).mean(n - k, k, n - 2 * k)[None], reduced=True)[0]


soft_trimmed_mean.__doc__ = f"""Soft trimmed mean of a JAX array along ``axis``.

    The same statistic as :func:`skrank.soft_trimmed_mean`, differentiable to any
    order. ``k = int(proportiontocut * n)`` values are cut softly from each end: the
    value is ``sum((M(n - k) - M(k)) * x) / (n - 2k)`` with ``M`` the soft top-k masks,
    scipy's ``trim_mean`` at strength 0. A far outlier gets weight exactly 0.

    Parameters
    ----------
    x : jax.Array or array-like
        Values (dtypes as for :func:`soft_rank`).
    proportiontocut : float
        Fraction cut from each end, in ``[0, 0.5)``; concrete (static under ``jit``, or
        closed over).
    {_STRENGTH.format(x="x")}
    {_AXIS}

    Returns
    -------
    mean : jax.Array
        Of ``x``'s shape without ``axis``.

    See Also
    --------
    skrank.soft_trimmed_mean : The NumPy twin.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> from skrank.jax import soft_trimmed_mean
    >>> x = jnp.array([1., 2., 3., 4., 5., 1000.])
    >>> float(soft_trimmed_mean(x, 0.2, regularization_strength=0.5))
    3.5
    >>> grad = jax.jit(jax.grad(soft_trimmed_mean), static_argnums=1)
    >>> grad(x, 0.2, regularization_strength=0.5).tolist()
    [0.0, 0.25, 0.25, 0.25, 0.25, 0.0]
    """


def _losses_rows(y_true, y_pred, axis, strength, true_name, pred_name):
    """(rows of y_true in y_pred's compute dtype, concrete y_true or None when traced,
    rows of y_pred, strengths, valid rows, output dtype)."""
    y_pred, dtype = _float(y_pred, pred_name)
    y_true = _float(y_true, true_name)[0]
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{true_name} and {pred_name} must have the same shape, got "
                         f"{y_true.shape} and {y_pred.shape}.")
    if y_pred.size == 0:
        raise ValueError("the losses need at least one list, and no empty list.")
    P, eps, _ = _rows(y_pred, axis, strength)
    T = _rows(_sg(y_true), axis, 0.0)[0]
    try:
        concrete = np.asarray(T)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        concrete = None  # traced (under jit): invalid rows give NaN instead
    if concrete is not None and not np.isfinite(concrete).all():
        raise ValueError(f"{true_name} contains NaN or infinity.")
    ok = _valid(P, eps) & jnp.isfinite(T).all(-1)
    return T.astype(P.dtype), concrete, P, eps, ok, dtype


def ndcg_loss(y_true, y_pred, *, regularization_strength=1.0, regularization="l2",
              axis=-1, k=None, gains="linear"):
    _ops._check_choice("regularization", regularization, _ops._REGULARIZATIONS)
    if not isinstance(gains, str) or gains not in ("linear", "exponential"):
        raise ValueError(f"gains must be one of ('linear', 'exponential'), got {gains!r}.")
    if k is not None and (isinstance(k, bool) or not isinstance(k, numbers.Integral)):
        raise TypeError(f"k must be a Python int or None (static under jit), got {k!r}.")
    if k is not None and k < 0:
        raise ValueError(f"k must be non-negative or None, got {k}.")
    G, concrete, P, eps, ok, dtype = _losses_rows(y_true, y_pred, axis,
                                                  regularization_strength, "y_true",
                                                  "y_pred")
    if concrete is not None and (concrete < 0).any():
        raise ValueError("ndcg_loss needs non-negative relevances in y_true.")
    ok = ok & (G >= 0).all(-1)
    if gains == "exponential":
        G = jnp.exp2(G) - 1.0
    n = P.shape[-1]
    kk = n if k is None else min(int(k), n)
    R = _rank_rows(P, eps, -1.0, regularization == "kl")  # descending soft ranks
    # the cutoff: at most k items' worth of gain (the hard top-k at strength 0)
    cut = _rank_rows(P, eps, 1.0, False, kk) if kk < n else jnp.ones_like(R)
    dcg = (G * cut / jnp.log2(1.0 + R)).sum(-1)
    position = np.arange(n)
    discount = np.where(position < kk, 1.0 / np.log2(position + 2.0), 0.0)
    idcg = (-jnp.sort(-G, axis=-1) * jnp.asarray(discount, dtype=G.dtype)).sum(-1)
    has = idcg > 0  # rows without relevant items score 0, as in scikit-learn
    ndcg = dcg * jnp.where(has, 1.0 / jnp.where(has, idcg, 1.0), 0.0)
    return jnp.mean(jnp.where(ok, 1.0 - ndcg, jnp.nan)).astype(dtype)


ndcg_loss.__doc__ = f"""One minus the soft NDCG, averaged over rows.

    The same loss as :func:`skrank.losses.ndcg_loss`, differentiable in ``y_pred`` to
    any order. DCG with the descending soft ranks ``r`` of ``y_pred``: ``sum(gain * c /
    log2(1 + r))``, where the cutoff ``c`` is the soft top-k mask of ``y_pred`` at the
    same strength when ``k < n`` (else 1), divided by the ideal DCG (hard). Rows whose
    relevances are all zero score 0, as in scikit-learn.

    Parameters
    ----------
    y_true : jax.Array or array-like
        Non-negative relevances (a constant). Concrete ones are checked (negative or
        non-finite values raise ``ValueError``); traced ones (under ``jit``) make such
        rows NaN.
    y_pred : jax.Array or array-like
        Scores, of ``y_true``'s shape.
    {_STRENGTH.format(x="y_pred")}
    {_REGULARIZATION}
    {_LISTS_AXIS}
    k : int or None, default=None
        Cutoff (None, or ``k >= n``: all); a Python int, static under ``jit``.
    gains : {{"linear", "exponential"}}, default="linear"
        Gain ``y_true`` or ``2 ** y_true - 1``.

    Returns
    -------
    loss : jax.Array
        A scalar in ``[0, 1]``.

    See Also
    --------
    skrank.losses.ndcg_loss : The NumPy twin.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> from skrank.jax import ndcg_loss
    >>> y_true, y_pred = jnp.array([[3., 2., 0., 1.]]), jnp.array([[0.9, 0.1, 0.3, 0.2]])
    >>> round(float(ndcg_loss(y_true, y_pred, regularization_strength=0.0)), 4)
    0.0841
    >>> jax.jit(jax.grad(ndcg_loss, argnums=1), static_argnames="k")(
    ...     y_true, y_pred, k=2).shape
    (1, 4)
    """


def topk_loss(labels, scores, *, k=1, regularization_strength=1.0, regularization="l2",
              axis=-1):
    _ops._check_choice("regularization", regularization, _ops._REGULARIZATIONS)
    scores, dtype = _float(scores, "scores")
    if scores.size == 0:
        raise ValueError("topk_loss needs at least one sample, and classes for each.")
    S, eps, _ = _rows(scores, axis, regularization_strength)
    n = S.shape[-1]
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"k must be a Python int (static under jit), got {k!r}.")
    if not 0 <= k <= n:
        raise ValueError(f"k must lie in [0, {n}] (the number of classes), got {k}.")
    labels = jnp.asarray(labels)
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise TypeError(f"labels must be integer class indices, got dtype {labels.dtype}.")
    batch = () if axis is None else tuple(
        s for i, s in enumerate(scores.shape) if i != axis % scores.ndim)
    if labels.shape != batch:
        raise ValueError(f"labels must have shape {batch} (scores' shape without axis), "
                         f"got {labels.shape}.")
    lab = labels.reshape(-1)
    try:
        concrete = np.asarray(lab)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        concrete = None  # traced: labels out of range give NaN
    if concrete is not None and ((concrete < 0) | (concrete >= n)).any():
        raise ValueError("labels must be class indices: in [0, number of classes).")
    R = _rank_rows(S, eps, -1.0, regularization == "kl")  # descending soft ranks
    r = jnp.take_along_axis(R, jnp.clip(lab, 0, n - 1)[:, None], axis=-1)[:, 0]
    loss = jnp.where(r > k, r - k, 0.0)  # derivative 0 at r == k, as NumPy
    ok = _valid(S, eps) & (lab >= 0) & (lab < n)
    return jnp.mean(jnp.where(ok, loss, jnp.nan)).astype(dtype)


topk_loss.__doc__ = f"""Soft top-k classification loss, averaged over samples.

    The same loss as :func:`skrank.losses.topk_loss`: the mean over samples of
    ``max(0, r_y - k)``, ``r_y`` the descending soft rank of the true class's score;
    differentiable in ``scores`` to any order.

    Parameters
    ----------
    labels : jax.Array or array-like of int
        True class indices, of ``scores``' shape without ``axis``. Concrete ones are
        checked; traced ones out of range give NaN.
    scores : jax.Array or array-like
        Class scores, the classes along ``axis``.
    k : int, default=1
        In ``[0, number of classes]``; a Python int, static under ``jit``.
    {_STRENGTH.format(x="scores")}
    {_REGULARIZATION}
    axis : int or None, default=-1
        Axis of the classes; every other axis indexes samples.

    Returns
    -------
    loss : jax.Array
        A non-negative scalar. Where ``r_y == k`` exactly the derivative is 0.

    See Also
    --------
    skrank.losses.topk_loss : The NumPy twin.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> from skrank.jax import topk_loss
    >>> labels, scores = jnp.array([0, 2]), jnp.array([[0.1, 0.5, 0.4], [0.3, 0.2, 0.9]])
    >>> float(topk_loss(labels, scores, regularization_strength=0.0))
    1.0
    >>> jax.jit(jax.grad(topk_loss, argnums=1))(labels, scores).shape
    (2, 3)
    """
