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

The strength may be traced and differentiated (exactly: the structure found with its
values does not move with them). NaN or infinity is
handled as NumPy handles it: concrete values raise ``ValueError`` (:func:`soft_rank`
and :func:`soft_sort`: unless ``nan_policy="propagate"``, which gives NaN rows); traced
values (under ``jit``) cannot raise, and give NaN rows, as do rows whose traced
strength is negative or not finite. What fixes the computation's shape or
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

from . import _autograd, _ops, _stats, _structure, losses

__all__ = ["ndcg_loss", "soft_median", "soft_quantile", "soft_rank", "soft_sort",
           "soft_topk", "soft_topk_mask", "soft_trimmed_mean", "spearman_loss", "topk_loss"]

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


def _rows(x, axis, strength, name="x", nan_policy=None):
    """(rows (n_rows, n) in the compute dtype, per-row strengths (n_rows,), and the
    function that takes output rows back to x's layout and dtype). Concrete values
    that are not finite raise, unless ``nan_policy="propagate"``; traced ones (under
    ``jit``) cannot, and give NaN rows."""
    if nan_policy is not None:
        _ops._check_choice("nan_policy", nan_policy, _ops._NAN_POLICIES)
    x, dtype = _float(x, name)
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
    eps = jnp.asarray(eps, dtype=X.dtype).reshape(-1)  # traced: differentiable
    ok = _valid(X, eps)[:, None]
    if nan_policy != "propagate":
        try:
            finite = bool(jnp.isfinite(X).all())
        except jax.errors.ConcretizationTypeError:  # traced: NaN rows
            finite = True
        if not finite:
            hint = ("; pass nan_policy='propagate' to get NaN in the affected rows "
                    "instead" if nan_policy is not None else "")
            raise ValueError(f"{name} contains NaN or infinity{hint}.")

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


# --------------------------------------------------------------------------- shim
class _Jax:
    """The framework primitives of skrank._autograd, for JAX."""

    xp = jnp
    sg = staticmethod(_sg)

    @staticmethod
    def take(v, idx):
        return jnp.take_along_axis(v, idx, axis=-1)

    @staticmethod
    def rowsum(v, keepdims=False):
        return v.sum(-1, keepdims=keepdims)

    @staticmethod
    def rowmin(v, keepdims=False):
        return v.min(-1, keepdims=keepdims)

    @staticmethod
    def rowmax(v, keepdims=False):
        return v.max(-1, keepdims=keepdims)

    @staticmethod
    def sort(v):
        return jnp.sort(v, axis=-1)

    @staticmethod
    def segment_sum(v, seg, size):
        return jax.ops.segment_sum(v, seg, size, indices_are_sorted=True)

    @staticmethod
    def const(a, like):
        return jnp.asarray(a, dtype=like.dtype)

    @staticmethod
    def wide(v):
        return v.astype(jax.dtypes.canonicalize_dtype(np.float64))

    @staticmethod
    def finfo_max(v):
        return float(jnp.finfo(v.dtype).max)

    @staticmethod
    def structure(X, eps, form, *args):
        """The structure through jax.pure_callback on stop_gradient of X: fixed-shape
        arrays, block ids local to each row on the host, made global here."""
        int_dtype = jax.dtypes.canonicalize_dtype(np.int64)  # int32 unless x64
        n_rows, n = X.shape
        # slices: one per k for masks, split and pooled for a real k's masks
        n_w = (len(args[0]) if form is _structure.masks_form
               else 2 if form is _structure.topk_form else 1)

        # an array among args (a real k, one per row, like eps) travels as an operand
        dynamic = [i for i, a in enumerate(args) if isinstance(a, jax.Array)]

        def host(x, e, *values):
            shape = x.shape  # (..., n_rows, n): vmap's leading dimensions are rows too
            R = np.ascontiguousarray(np.asarray(x).reshape(-1, shape[-1]))
            E = np.asarray(e, dtype=np.float64).reshape(-1)
            given = list(args)
            for i, v in zip(dynamic, values):
                given[i] = np.asarray(v, dtype=np.float64).reshape(-1)
            # no exceptions in a pure callback: rows that are not valid become NaN later
            E = np.where(np.isfinite(E) & (E >= 0), E, 0.0)
            perm, inv, *sliced = _structure.host_structure(
                np.where(np.isfinite(R), R, 0), E, form, *given)
            dtypes = (int_dtype, int_dtype, X.dtype, X.dtype, X.dtype)
            return (perm.astype(int_dtype).reshape(shape), inv.astype(int_dtype).reshape(
                shape)) + tuple(  # (n_w, rows, n) -> (..., n_w, n_rows, n)
                np.moveaxis(a.reshape((n_w,) + shape), 0, len(shape) - 2).astype(dtype)
                for a, dtype in zip(sliced, dtypes))

        shapes = (jax.ShapeDtypeStruct(X.shape, int_dtype),) * 2 + tuple(
            jax.ShapeDtypeStruct((n_w,) + X.shape, dtype)
            for dtype in (int_dtype, int_dtype, X.dtype, X.dtype, X.dtype))
        # "broadcast_all": under vmap every argument arrives with the batch dimensions in
        # front (the strength too), so the host only flattens them into rows, each with
        # its own strength. Block ids are local to a row and the row offsets are added
        # here, in jax.numpy, where vmap's rows and the caller's are told apart.
        perm, inv, local, *rest = jax.pure_callback(
            host, shapes, _sg(X), _sg(eps), *(_sg(args[i]) for i in dynamic),
            vmap_method="broadcast_all")
        seg = (local + n * jnp.arange(n_rows, dtype=local.dtype)[:, None]).reshape(n_w, -1)
        return (perm, inv, seg, *rest)


_F = _Jax()


# ------------------------------------------------------------------------ operators
def _sign(direction, ascending):
    return ascending if direction == "ascending" else -ascending


def soft_rank(x, *, regularization_strength=1.0, regularization="l2",
              direction="ascending", axis=-1, nan_policy="raise"):
    _ops._check_choice("regularization", regularization, tuple(_ops._REGULARIZERS))
    _ops._check_choice("direction", direction, _ops._DIRECTIONS)
    X, eps, back = _rows(x, axis, regularization_strength, nan_policy=nan_policy)
    return back(_autograd.rank_rows(_F, X, eps, _sign(direction, 1.0),
                                    _ops._REGULARIZERS[regularization]))


def soft_sort(x, *, regularization_strength=1.0, regularization="l2",
              direction="ascending", axis=-1, nan_policy="raise"):
    _ops._check_choice("regularization", regularization, tuple(_ops._REGULARIZERS))
    _ops._check_choice("direction", direction, _ops._DIRECTIONS)
    X, eps, back = _rows(x, axis, regularization_strength, nan_policy=nan_policy)
    return back(_autograd.sort_rows(_F, X, eps, _sign(direction, -1.0),
                                    _ops._REGULARIZERS[regularization]))


def soft_topk_mask(x, k, *, regularization_strength=1.0, axis=-1, by="value",
                   regularization="l2"):
    _ops._check_choice("by", by, ("value", "magnitude"))
    reg = _stats._mask_regularizer(regularization)
    if isinstance(k, bool):
        raise TypeError(f"k must be a number or an array of numbers, got {k!r}.")
    X, eps, back = _rows(x, axis, regularization_strength)
    # |x| with derivative sign(x), 0 at x = 0 (jnp.abs takes 1 there), as documented
    X = X * jax.lax.stop_gradient(jnp.sign(X)) if by == "magnitude" else X
    if isinstance(k, numbers.Integral):  # static: the masks' shared structures
        if not 0 <= k <= X.shape[-1]:
            raise ValueError(f"k must lie in [0, {X.shape[-1]}] (the length of the axis), "
                             f"got {k}.")
        return back(_autograd.Masks(_F, X, eps, reg).mask(int(k)))
    # a real k, one per row allowed, traced or not (then differentiable)
    shape = np.shape(x)
    batch = () if axis is None else tuple(
        size for i, size in enumerate(shape) if i != axis % len(shape))
    try:  # concrete: validated as NumPy does
        K = _stats._real_k(np.asarray(k), types.SimpleNamespace(
            batch_shape=batch, offsets=np.arange(X.shape[0] + 1) * X.shape[1]))
    except jax.errors.TracerArrayConversionError:  # traced: out of [0, n] is clipped
        # clipped to [0, n] with the derivative kept (jnp.clip halves it at a bound)
        K = _autograd._clip(_F, jnp.broadcast_to(jnp.asarray(k), batch).reshape(-1), 0,
                            X.shape[1])
    K = jnp.asarray(K, dtype=X.dtype).reshape(-1)
    return back(_autograd.topk_mask_real(_F, X, eps, K, reg))


def soft_topk(x, k, *, regularization_strength=1.0, axis=-1, by="value",
              regularization="l2"):
    mask = soft_topk_mask(x, k, regularization_strength=regularization_strength, axis=axis,
                          by=by, regularization=regularization)
    x = _float(x)[0]
    return mask * (x.ravel() if axis is None else x).astype(mask.dtype)


def _quantile(x, q, strength, axis, median, regularization):
    reg = _stats._mask_regularizer(regularization)
    q = _stats._check_q(_static(q, "q"))
    X, eps, back = _rows(x, axis, strength)
    if X.shape[-1] == 0:
        raise ValueError("cannot take a quantile of an empty row.")
    values = _autograd.quantiles(_F, X, eps, list(q.ravel()), median, reg)
    out = back(jnp.stack(values) if values else jnp.zeros((0, X.shape[0]), X.dtype),
               reduced=True)
    return out.reshape(q.shape + out.shape[1:])


def soft_quantile(x, q, *, regularization_strength=1.0, axis=-1, regularization="l2"):
    return _quantile(x, q, regularization_strength, axis, False, regularization)


def soft_median(x, *, regularization_strength=1.0, axis=-1, regularization="l2"):
    return _quantile(x, 0.5, regularization_strength, axis, True, regularization)


def soft_trimmed_mean(x, proportiontocut, *, regularization_strength=1.0, axis=-1,
                      regularization="l2"):
    reg = _stats._mask_regularizer(regularization)
    p = _static(proportiontocut, "proportiontocut")
    if p.ndim == 0 and p.dtype.kind in "iuf":
        proportiontocut = float(p)  # numpy scalars and 0-d arrays too
    if not isinstance(proportiontocut, numbers.Real) or not 0 <= proportiontocut < 0.5:
        raise ValueError(
            f"proportiontocut must be a number in [0, 0.5), got {proportiontocut!r}.")
    X, eps, back = _rows(x, axis, regularization_strength)
    if X.shape[-1] == 0:
        raise ValueError("cannot take a trimmed mean of an empty row.")
    value = _autograd.trimmed_mean(_F, X, eps, proportiontocut, reg)
    return back(value[None], reduced=True)[0]


# --------------------------------------------------------------------------- losses
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
    P, eps, _ = _rows(y_pred, axis, strength, pred_name)
    T = _rows(_sg(y_true), axis, 0.0, true_name)[0]
    try:
        concrete = np.asarray(T)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        concrete = None  # traced (under jit): invalid rows give NaN instead
    if concrete is not None and not np.isfinite(concrete).all():
        raise ValueError(f"{true_name} contains NaN or infinity.")
    ok = _valid(P, eps) & jnp.isfinite(T).all(-1)
    return T.astype(P.dtype), concrete, P, eps, ok, dtype


def _mean_of_valid(loss, ok, dtype):
    return jnp.mean(jnp.where(ok, loss, jnp.nan)).astype(dtype)


def spearman_loss(y_true, y_pred, *, regularization_strength=1.0, regularization="l2",
                  axis=-1):
    _ops._check_choice("regularization", regularization, tuple(_ops._REGULARIZERS))
    T, _, P, eps, ok, dtype = _losses_rows(y_true, y_pred, axis, regularization_strength,
                                           "y_true", "y_pred")
    T = jnp.where(jnp.isfinite(T), T, 0.0)  # traced invalid rows: NaN below
    loss = _autograd.spearman_rows(_F, T, P, eps, _ops._REGULARIZERS[regularization])
    return _mean_of_valid(loss, ok, dtype)


def ndcg_loss(y_true, y_pred, *, regularization_strength=1.0, regularization="l2",
              axis=-1, k=None, gains="linear"):
    _ops._check_choice("regularization", regularization, tuple(_ops._REGULARIZERS))
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
    loss = _autograd.ndcg_rows(_F, G, P, eps, _ops._REGULARIZERS[regularization], k, gains)
    return _mean_of_valid(loss, ok, dtype)


def topk_loss(labels, scores, *, k=1, regularization_strength=1.0, regularization="l2",
              axis=-1):
    _ops._check_choice("regularization", regularization, tuple(_ops._REGULARIZERS))
    scores, dtype = _float(scores, "scores")
    if scores.size == 0:
        raise ValueError("topk_loss needs at least one sample, and classes for each.")
    S, eps, _ = _rows(scores, axis, regularization_strength, "scores")
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
    loss = _autograd.topk_rows(_F, jnp.clip(lab, 0, n - 1), S, eps,
                               _ops._REGULARIZERS[regularization], k)
    return _mean_of_valid(loss, _valid(S, eps) & (lab >= 0) & (lab < n), dtype)


# ----------------------------------------------------------------------- docstrings
_INTRO = ("The same {what} as its NumPy twin, differentiable to any order, under ``jit`` "
          "and ``vmap``. {static}")
_X = """    x : jax.Array or array-like
        Values. Integers and booleans become JAX's default float; float16 and bfloat16
        are computed in float32 and returned in their own dtype."""
_STRENGTH = """    regularization_strength : float or array-like, default=1.0
        Strength ``eps >= 0`` of the regulariser, in the units of ``{x}``: 0 gives the
        hard operator, larger values smoother outputs. A scalar, or one value per row
        (an array of ``{x}``'s shape without ``axis``). Differentiable: ``grad`` with
        respect to it is exact (0 for rows at strength 0); traced, an invalid value
        gives NaN rows."""
_STATIC = {
    "k": """    k : int{none}
        {what}; a Python int, static under ``jit``.""",
    "q": """    q : float or 1-D sequence of float
        Probabilities in ``[0, 1]``; concrete: under ``jit``, a static argument (a float
        or a tuple) or closed over.""",
    "proportiontocut": """    proportiontocut : float
        Fraction cut from each end, in ``[0, 0.5)``; concrete (static under ``jit``, or
        closed over).""",
}
_K = {"ndcg_loss": (" or None, default=None", "Cutoff: only the top ``k`` positions "
                    "count (None, or ``k >= n``: all)"),
      "topk_loss": (", default=1", "How many top classes count as correct, in ``[0, "
                    "number of classes]``")}
_TYPES = {"y_true": "jax.Array or array-like", "y_pred": "jax.Array or array-like",
          "labels": "jax.Array or array-like of int",
          "scores": "jax.Array or array-like", "return": "jax.Array"}
_MEDIAN_RETURNS = """    median : jax.Array
        Of ``x``'s shape without ``axis``; strength 0 gives :func:`numpy.median`."""
_EXAMPLES = {
    soft_rank: """
    >>> import jax, jax.numpy as jnp
    >>> from skrank.jax import soft_rank
    >>> x = jnp.array([5., 1., 2.])
    >>> soft_rank(x, regularization_strength=2.0).tolist()
    [3.0, 1.25, 1.75]
    >>> jax.grad(lambda x: soft_rank(x, regularization_strength=2.0)[1])(x).tolist()
    [0.0, 0.25, -0.25]""",
    soft_sort: """
    >>> import jax.numpy as jnp
    >>> from skrank.jax import soft_sort
    >>> soft_sort(jnp.array([3., 1., 2.]), regularization_strength=2.0).tolist()
    [1.5, 2.0, 2.5]""",
    soft_topk_mask: """
    >>> import jax.numpy as jnp
    >>> from skrank.jax import soft_topk_mask
    >>> soft_topk_mask(jnp.array([3., 1.5, 1., 0.]), 2).tolist()
    [1.0, 0.75, 0.25, 0.0]""",
    soft_topk: """
    >>> import jax, jax.numpy as jnp
    >>> from skrank.jax import soft_topk
    >>> w = jnp.array([-3., 1.2, -1., 0.5])
    >>> [round(v, 4) for v in soft_topk(w, 2, by="magnitude").tolist()]
    [-3.0, 0.72, -0.4, 0.0]
    >>> [round(v, 4) for v in jax.grad(lambda w: soft_topk(w, 2, by="magnitude").sum())(w)
    ...  .tolist()]
    [1.0, 1.7, 1.5, 0.0]""",
    soft_quantile: """
    >>> import jax, jax.numpy as jnp
    >>> from skrank.jax import soft_quantile
    >>> x = jnp.array([1., 2., 3., 4., 1000.])
    >>> float(soft_quantile(x, 0.5, regularization_strength=0.0))
    3.0
    >>> soft_quantile(x, (0.25, 0.75), regularization_strength=0.0).tolist()
    [2.0, 4.0]
    >>> grad = jax.jit(jax.grad(soft_quantile), static_argnums=1)  # q static
    >>> grad(jnp.array([1., 2., 2.5, 5.]), 0.5, regularization_strength=0.0).tolist()
    [0.0, 0.5, 0.5, 0.0]""",
    soft_median: """
    >>> import jax.numpy as jnp
    >>> from skrank.jax import soft_median
    >>> float(soft_median(jnp.array([4., 1., 3., 2.]), regularization_strength=0.0))
    2.5
    >>> soft_median(jnp.array([[4., 1., 3.], [0., 8., 2.]]),
    ...             regularization_strength=[0.0, 0.0]).tolist()
    [3.0, 2.0]""",
    soft_trimmed_mean: """
    >>> import jax, jax.numpy as jnp
    >>> from skrank.jax import soft_trimmed_mean
    >>> x = jnp.array([1., 2., 3., 4., 5., 1000.])
    >>> float(soft_trimmed_mean(x, 0.2, regularization_strength=0.5))
    3.5
    >>> grad = jax.jit(jax.grad(soft_trimmed_mean), static_argnums=1)
    >>> grad(x, 0.2, regularization_strength=0.5).tolist()
    [0.0, 0.25, 0.25, 0.25, 0.25, 0.0]""",
    spearman_loss: """
    >>> import jax, jax.numpy as jnp
    >>> from skrank.jax import spearman_loss
    >>> y_true = jnp.array([1., 2., 3.])
    >>> float(spearman_loss(y_true, jnp.array([3., 1., 2.]), regularization_strength=0.0))
    1.5
    >>> jax.jit(jax.grad(spearman_loss, argnums=1))(y_true, jnp.array([3., 1., 2.])).shape
    (3,)""",
    ndcg_loss: """
    >>> import jax, jax.numpy as jnp
    >>> from skrank.jax import ndcg_loss
    >>> y_true, y_pred = jnp.array([[3., 2., 0., 1.]]), jnp.array([[0.9, 0.1, 0.3, 0.2]])
    >>> round(float(ndcg_loss(y_true, y_pred, regularization_strength=0.0)), 4)
    0.0841
    >>> jax.jit(jax.grad(ndcg_loss, argnums=1), static_argnames="k")(
    ...     y_true, y_pred, k=2).shape
    (1, 4)""",
    topk_loss: """
    >>> import jax, jax.numpy as jnp
    >>> from skrank.jax import topk_loss
    >>> labels, scores = jnp.array([0, 2]), jnp.array([[0.1, 0.5, 0.4], [0.3, 0.2, 0.9]])
    >>> float(topk_loss(labels, scores, regularization_strength=0.0))
    1.0
    >>> jax.jit(jax.grad(topk_loss, argnums=1))(labels, scores).shape
    (2, 3)""",
}


def _document():
    import inspect

    import skrank

    for fun, examples in _EXAMPLES.items():
        name = fun.__name__
        twin = getattr(losses if name.endswith("_loss") else skrank, name)
        main = {"spearman_loss": "y_pred", "ndcg_loss": "y_pred",
                "topk_loss": "scores"}.get(name, "x")
        parameters = {"regularization_strength": _STRENGTH.format(x=main)}
        if main == "x":
            parameters["x"] = _X
        static = [p for p in inspect.signature(fun).parameters if p in _STATIC
                  and not (p == "k" and name in ("soft_topk_mask", "soft_topk"))]
        for p in static:
            parameters[p] = _STATIC[p] if p != "k" else _STATIC["k"].format(
                none=_K[name][0], what=_K[name][1])
        note = "NaN or infinity raises when concrete, and gives NaN rows when traced."
        fun.__doc__ = _autograd.adapted_doc(
            twin, fun, intro=_INTRO.format(what="operator" if main == "x" else "loss",
                                           static=note),
            types=_TYPES, parameters=parameters, examples=examples,
            entries_from=skrank.soft_quantile,
            returns=_MEDIAN_RETURNS if fun is soft_median else None)


_document()
