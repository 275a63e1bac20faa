"""Soft sorting and ranking for JAX arrays (DESIGN section 8).

The kernel finds the integer structure of each row: the permutation that sorts it and the
PAV block partition. It runs on the host through :func:`jax.pure_callback`, on
``stop_gradient`` of the input, and returns fixed-shape integer arrays (the order, its
inverse, and each sorted position's block id within its row). The value is then written
in :mod:`jax.numpy` from that structure, in the closed forms of DESIGN section 7: gathers,
segment sums and log-sum-exps. JAX differentiates those ops itself, so ``grad``,
``jacfwd``, ``jacrev`` and ``hessian`` are exact to any order, and ``jit`` and ``vmap``
work, with no ``custom_vjp``: the structure is piecewise constant and carries no gradient,
and within a fixed structure the operator is smooth.

The functions mirror their NumPy twins (:func:`skrank.soft_rank`, ...) with ``axis=-1``.
The strength is a constant (no derivative with respect to it). Rows holding NaN or
infinity give NaN, and so do rows whose strength, traced under ``jit`` or ``vmap`` (so
not checked in Python), is negative or not finite. ``k`` of :func:`soft_topk_mask` is a
Python int (static under ``jit``).
"""

import numbers
import types

import numpy as np

try:
    import jax
    import jax.numpy as jnp
except ImportError as exc:  # pragma: no cover
    raise ImportError("skrank.jax needs JAX: pip install 'skrank[jax]'.") from exc

from . import _ops, _structure

__all__ = ["soft_rank", "soft_sort", "soft_topk_mask", "spearman_loss"]

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
    # rows holding NaN or infinity, or with an invalid (traced) strength, give NaN
    ok = jnp.isfinite(X).all(-1, keepdims=True) & (jnp.isfinite(eps) & (eps >= 0))[:, None]

    def back(out):
        out = jnp.where(ok, out, jnp.nan)
        return jnp.moveaxis(out.reshape(moved.shape), -1, axis).astype(dtype)

    return X, eps, back


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
    w = np.arange(n, 0, -1.0) if k is None else (np.arange(n) < k).astype(np.float64)
    if k is not None and k in (0, n):
        eps = jnp.zeros_like(eps)  # a constant mask: derivative exactly 0
    if X.size == 0:
        return back(X)
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
    return back(jnp.where(eps[:, None] == 0, value, soft))


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


_PARAMETERS = """regularization_strength : float or array, default=1.0
        ``eps >= 0``: a scalar, or one value per row (``x``'s shape without ``axis``).
        A constant: no derivative is taken with respect to it.
    regularization : {"l2", "kl"}, default="l2"
    direction : {"ascending", "descending"}, default="ascending"
    axis : int or None, default=-1
        The axis along which rows lie; ``None`` flattens ``x`` first."""


def soft_rank(x, *, regularization_strength=1.0, regularization="l2",
              direction="ascending", axis=-1):
    _ops._check_choice("regularization", regularization, _ops._REGULARIZATIONS)
    _ops._check_choice("direction", direction, _ops._DIRECTIONS)
    return _rank_form(x, regularization_strength, axis,
                      1.0 if direction == "ascending" else -1.0, regularization == "kl")


soft_rank.__doc__ = f"""Soft ranks of a JAX array, differentiable to any order.

    Parameters
    ----------
    x : jax.Array
        Values; integers become JAX's default float, float16 and bfloat16 are
        computed in float32 and returned in their own dtype.
    {_PARAMETERS}

    Returns
    -------
    ranks : jax.Array
        As :func:`skrank.soft_rank`: aligned with ``x``, in ``[1, n]``.

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


soft_sort.__doc__ = f"""Soft sort of a JAX array, differentiable to any order.

    Parameters
    ----------
    x : jax.Array
        Values (dtypes as for :func:`soft_rank`).
    {_PARAMETERS}

    Returns
    -------
    values : jax.Array
        As :func:`skrank.soft_sort`: in sorted order along ``axis``. Tied inputs are
        a kink: derivatives there are one-sided.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from skrank.jax import soft_sort
    >>> soft_sort(jnp.array([3., 1., 2.]), regularization_strength=2.0).tolist()
    [1.5, 2.0, 2.5]
    """


def soft_topk_mask(x, k, *, regularization_strength=1.0, axis=-1):
    """Soft mask of the k largest entries of a JAX array (l2), as
    :func:`skrank.soft_topk_mask`.

    Parameters
    ----------
    x : jax.Array
        Scores.
    k : int
        A Python int in ``[0, n]``; under ``jit`` it must be static.
    regularization_strength : float or array, default=1.0
        ``eps >= 0`` in the units of ``x``, a scalar or one per row; a constant.
    axis : int or None, default=-1

    Returns
    -------
    mask : jax.Array
        Values in ``[0, 1]`` summing to ``k`` along ``axis``.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from skrank.jax import soft_topk_mask
    >>> soft_topk_mask(jnp.array([3., 1.5, 1., 0.]), 2).tolist()
    [1.0, 0.75, 0.25, 0.0]
    """
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"k must be a Python int (static under jit), got {k!r}.")
    return _rank_form(x, regularization_strength, axis, 1.0, False, int(k))


def spearman_loss(y_true, y_pred, *, regularization_strength=1.0, regularization="l2",
                  axis=-1):
    """Mean over rows of 1 - Pearson(hard ranks of y_true, soft ranks of y_pred), as
    :func:`skrank.losses.spearman_loss`; differentiable in ``y_pred``.

    Parameters
    ----------
    y_true : jax.Array
        Targets; their tie-averaged hard ranks are used (a constant).
    y_pred : jax.Array
        Predictions, of ``y_true``'s shape.
    regularization_strength, regularization, axis
        As for :func:`soft_rank` (ascending soft ranks of ``y_pred``).

    Returns
    -------
    loss : jax.Array
        A scalar in ``[0, 2]``; a row where either side is constant contributes 0.

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
