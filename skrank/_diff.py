"""Exact derivatives of skrank operators, JAX-style.

``skrank.vjp`` and ``skrank.jvp`` run the operator's forward pass once, keep the
integer structure it found (sorting permutation and PAV blocks), and apply the
block-diagonal Jacobian (design notes, section 4) in O(n) per row, without sorting
again and without ever forming an n x n matrix.
"""

import inspect
import numbers

import numpy as np

from . import _array_api, _registry
from ._registry import STRENGTH
from ._rows import host, sum_to_shape, tangent_of_shape


def _record(fun):
    """The registry's record of a public function with derivatives."""
    record = _registry.lookup(fun)
    if record is None or record.structured is None or record.fun is not fun:
        names = ", ".join(r.public_name for r in _registry.records() if r.structured)
        raise TypeError(
            f"fun must be a skrank function with derivatives ({names}); got {fun!r}."
        )
    return record


def _argument(fun, args, argnums):
    """(the value-and-structure form of fun, argnums as a position or the strength's
    name) for these positional args: argnums names a positional argument by position
    or by name, or regularization_strength by name."""
    record = _record(fun)
    arg_names, diff = record.positional, record.argnum
    if not diff + 1 <= len(args) <= len(arg_names):
        low, high = diff + 1, len(arg_names)
        count = f"{low}" if low == high else f"{low} to {high}"
        raise TypeError(
            f"{fun.__name__} takes {count} positional argument{'s' * (high > 1)} "
            f"({', '.join(arg_names)}), got {len(args)}."
        )
    names = (arg_names[diff], *record.also)
    given = argnums
    if isinstance(argnums, str) and argnums in arg_names:
        argnums = arg_names.index(argnums)
    allowed = [arg_names.index(name) if name in arg_names else name for name in names]
    if (isinstance(argnums, (bool, np.bool_))
            or not isinstance(argnums, (numbers.Integral, str))
            or argnums not in allowed):  # (1, not 1.0 or True)
        described = " or ".join(f"{name} ({index!r})" if index != name else repr(name)
                                for name, index in zip(names, allowed))
        raise ValueError(
            f"argnums must name an argument {fun.__name__} is differentiable in: "
            f"{described}; got {given!r}."
        )
    if not isinstance(argnums, str):
        argnums = int(argnums)
    if isinstance(argnums, int) and argnums != diff and len(args) <= argnums:
        raise TypeError(f"argnums={argnums} differentiates {arg_names[argnums]}, which "
                        "must then be given positionally.")
    return record.structured, argnums


def _refuse_dask(record, argnums):
    """Derivatives in a further argument (the masks' k, a strength) are not computed
    for dask."""
    if argnums != record.argnum:
        name = argnums if isinstance(argnums, str) else record.positional[argnums]
        raise NotImplementedError(
            f"the derivative in {name} is computed for NumPy, CuPy and Array API "
            "inputs, not for dask arrays.")


def _products(structure, record, argnums, kwargs):
    """(jvp, vjp) of the structure for the argument argnums (a loss's has no jvp).
    The strength's are found at once: the structure may read the caller's x."""
    if argnums == record.argnum:
        return (lambda t: structure.jvp(t)), structure.vjp
    if argnums == STRENGTH:
        return _strength_products(structure, record, kwargs)
    name = record.positional[argnums]
    return (lambda t: structure.arg_jvp(name, t)), (lambda g: structure.arg_vjp(name, g))


def _strength_products(structure, record, kwargs):
    """(jvp, vjp) in the strength, as given (a scalar, or one per row, broadcasting):
    the structure's per-row products, the tangent broadcast to every row and the
    cotangent's result summed back over the axes the strength was broadcast along."""
    given = kwargs.get(STRENGTH, inspect.signature(record.fun).parameters[STRENGTH].default)
    shape = np.shape(host(given))
    rows = structure.rows
    per_row_jvp, per_row_vjp = structure.strength_products()

    def jvp(tangent):
        t = tangent_of_shape(tangent, shape, "the strength")
        return per_row_jvp(np.broadcast_to(t, rows.batch_shape).reshape(-1))

    def vjp(cotangent):
        res = per_row_vjp(cotangent)
        return sum_to_shape(res.reshape(rows.batch_shape), shape)

    return jvp, vjp


def vjp(fun, *args, argnums=0, **kwargs):
    """Value and vector-Jacobian product function of a skrank operator.

    Parameters
    ----------
    fun : callable
        A skrank function with derivatives: :func:`skrank.soft_rank`,
        :func:`skrank.soft_sort`, :func:`skrank.soft_topk_mask`,
        :func:`skrank.soft_quantile`, :func:`skrank.soft_median`,
        :func:`skrank.soft_trimmed_mean`, a loss of :mod:`skrank.losses`, or
        :func:`skrank.metrics.soft_spearman`.
    *args
        Its positional arguments: ``x`` (then ``k``, ``q`` or ``proportiontocut``
        where the function has one), or ``(y_true, y_pred)`` for a loss or a metric.
    argnums : int or str, default=0
        Which argument to differentiate, by position or by name: 0 (``x``) for the
        array operators and statistics, 1 (``y_pred``) for the losses and metrics;
        1 or ``"k"`` (a real number or one per row) for
        :func:`skrank.soft_topk_mask` and :func:`skrank.soft_topk`; 1 or ``"q"`` for
        :func:`skrank.soft_quantile` (from above at a knot ``(n - 1) q`` integer);
        ``"regularization_strength"`` (a scalar or one per row) for every function
        except :func:`skrank.metrics.soft_spearman`, whose strength is relative to
        ``y_pred``'s spread. A derivative in the strength is taken from above at
        0, where it is 0.
    **kwargs
        Keyword arguments of ``fun`` (strength, regularization, axis, ...).

    Returns
    -------
    value : ndarray
        ``fun(*args, **kwargs)``.
    vjp_fn : callable
        ``vjp_fn(g)`` returns ``g^T J`` shaped like the argument differentiated
        (the strength as it was given), for ``g`` shaped like ``value``. It costs
        O(n) per row and can be called many times.

    Notes
    -----
    With dask arrays among the arguments, ``value`` and ``vjp_fn(g)`` are lazy dask
    arrays: each block of the result recomputes its block's forward pass (see
    :ref:`scaling`).

    Examples
    --------
    >>> import numpy as np, skrank
    >>> r, vjp_fn = skrank.vjp(skrank.soft_rank, np.array([5., 1., 2.]),
    ...                        regularization_strength=2.0)
    >>> vjp_fn(np.array([1., 0., 0.]))
    array([0., 0., 0.])
    >>> vjp_fn(np.array([0., 1., 0.]))
    array([ 0.  ,  0.25, -0.25])
    >>> _, vjp_eps = skrank.vjp(skrank.soft_rank, np.array([5., 1., 2.]),
    ...                         argnums="regularization_strength",
    ...                         regularization_strength=2.0)
    >>> vjp_eps(np.array([0., 1., 0.]))  # d r_1 / d eps: pooled ranks near their mean
    np.float64(0.125)
    """
    if _array_api.has_dask((*args, *kwargs.values())):  # lazily, block by block
        argnums = _argument(fun, args, argnums)[1]
        _refuse_dask(_record(fun), argnums)
        from . import _dask

        return _dask.vjp(fun, args, kwargs, argnums)
    args, kwargs, xp, device = _array_api.convert_args(args, kwargs)
    forward, argnums = _argument(fun, args, argnums)
    on_device = _array_api.device_of((*args, *kwargs.values()))  # CuPy: the input's GPU
    with on_device:
        value, structure = forward(*args, **kwargs)
        product = _products(structure, _record(fun), argnums, kwargs)[1]
    if xp is None:
        def vjp_fn(cotangent):
            with on_device:
                return product(cotangent)

        return value, vjp_fn
    return (_array_api._to_namespace(value, xp, device),
            _array_api._Converted(product, xp, device))


def jvp(fun, x, tangent, *args, argnums=0, **kwargs):
    """Value and Jacobian-vector product of a skrank array operator.

    Parameters
    ----------
    fun : callable
        A skrank function with derivatives (see :func:`vjp`).
    x : array-like
        The point at which to differentiate.
    tangent : array-like
        Direction, of the shape of the argument ``argnums`` names: ``x``'s, ``k``'s
        or the strength's as given.
    *args
        ``fun``'s other positional arguments, after ``x`` (``k``, ``q`` or
        ``proportiontocut``), as for :func:`vjp`; they may also be given by keyword
        (except the one ``argnums`` names).
    argnums : int or str, default=0
        Which argument the tangent moves: 0 (``x``), 1 or ``"k"`` for
        :func:`skrank.soft_topk_mask` and :func:`skrank.soft_topk`, 1 or ``"q"`` for
        :func:`skrank.soft_quantile`, or ``"regularization_strength"``.
    **kwargs
        Keyword arguments of ``fun`` (strength, regularization, axis, ...).

    Returns
    -------
    value : ndarray
        ``fun(x, **kwargs)``.
    jvp_out : ndarray
        ``J @ tangent``, shaped like ``value``.

    Notes
    -----
    With dask arrays, ``value`` and ``jvp_out`` are lazy dask arrays, computed block by
    block (see :ref:`scaling`).

    Examples
    --------
    >>> import numpy as np, skrank
    >>> x = np.array([3., 1., 2.])
    >>> skrank.jvp(skrank.soft_sort, x, np.array([1., 0., 0.]), regularization_strength=0.0)
    (array([1., 2., 3.]), array([0., 0., 1.]))
    >>> skrank.jvp(skrank.soft_sort, x, np.array([1., 0., 0.]), regularization_strength=2.0)[1]
    array([0.33333333, 0.33333333, 0.33333333])
    >>> skrank.jvp(skrank.soft_quantile, x, np.array([1., 0., 0.]), 0.5,
    ...            regularization_strength=0.0)
    (np.float64(2.0), np.float64(0.0))
    """
    record = _record(fun)
    if record.argnum != 0:
        raise TypeError(
            f"jvp is for the array operators; differentiate {fun.__name__} with "
            "skrank.vjp(..., argnums=1)."
        )
    forward, argnums = _argument(fun, (x, *args), argnums)
    # positional extras (k, q, proportiontocut) become keywords
    for name, value in zip(record.positional[1:], args):
        if name in kwargs:
            raise TypeError(f"{fun.__name__} got multiple values for argument {name!r}.")
        kwargs[name] = value
    if _array_api.has_dask((x, tangent, *kwargs.values())):  # lazily, block by block
        _refuse_dask(record, argnums)
        from . import _dask

        return _dask.jvp(fun, x, tangent, kwargs)
    (x, tangent), kwargs, xp, device = _array_api.convert_args((x, tangent), kwargs)
    with _array_api.device_of((x, tangent, *kwargs.values())):  # CuPy: the input's GPU
        value, structure = forward(x, **kwargs)
        jvp_out = _products(structure, record, argnums, kwargs)[0](tangent)
    if xp is None:
        return value, jvp_out
    return (_array_api._to_namespace(value, xp, device),
            _array_api._to_namespace(jvp_out, xp, device))
