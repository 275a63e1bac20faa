"""Exact derivatives of skrank operators, JAX-style.

``skrank.vjp`` and ``skrank.jvp`` run the operator's forward pass once, keep the
integer structure it found (sorting permutation and PAV blocks), and apply the
block-diagonal Jacobian of DESIGN section 4 in O(n) per row, without sorting
again and without ever forming an n x n matrix.
"""

from . import _ops

# Public function -> (forward returning (value, structure), names of its array arguments)
_DIFFERENTIABLE = {
    _ops.soft_rank: (lambda x, **kw: _ops._forward("rank", x, **_defaults(kw)), ("x",)),
    _ops.soft_sort: (lambda x, **kw: _ops._forward("sort", x, **_defaults(kw)), ("x",)),
}

_FORWARD_DEFAULTS = {
    "regularization_strength": 1.0,
    "regularization": "l2",
    "direction": "ascending",
    "axis": -1,
    "nan_policy": "raise",
}


def _defaults(kwargs):
    unknown = set(kwargs) - set(_FORWARD_DEFAULTS)
    if unknown:
        raise TypeError(f"unexpected keyword argument(s): {sorted(unknown)}")
    return {**_FORWARD_DEFAULTS, **kwargs}


def _lookup(fun, args, argnums):
    try:
        forward, arg_names = _DIFFERENTIABLE[fun]
    except (KeyError, TypeError):
        names = ", ".join(f"skrank.{f.__name__}" for f in _DIFFERENTIABLE)
        raise TypeError(
            f"fun must be a skrank function with derivatives ({names}); got {fun!r}."
        ) from None
    if len(args) != len(arg_names):
        raise TypeError(
            f"{fun.__name__} takes {len(arg_names)} positional array argument(s) "
            f"({', '.join(arg_names)}), got {len(args)}."
        )
    if isinstance(argnums, bool) or argnums not in range(len(arg_names)):
        raise ValueError(
            f"argnums must be an integer in [0, {len(arg_names)}), got {argnums!r}."
        )
    return forward


def vjp(fun, *args, argnums=0, **kwargs):
    """Value and vector-Jacobian product function of a skrank operator.

    Parameters
    ----------
    fun : callable
        A skrank function with derivatives: :func:`skrank.soft_rank` or
        :func:`skrank.soft_sort`.
    *args : array-like
        Its positional array arguments (``x``).
    argnums : int, default=0
        Which positional argument to differentiate.
    **kwargs
        Keyword arguments of ``fun`` (strength, regularization, axis, ...).

    Returns
    -------
    value : ndarray
        ``fun(*args, **kwargs)``.
    vjp_fn : callable
        ``vjp_fn(g)`` returns ``g^T J`` shaped like ``args[argnums]``, for ``g``
        shaped like ``value``. It costs O(n) per row and can be called many times.

    Examples
    --------
    >>> import numpy as np, skrank
    >>> r, vjp_fn = skrank.vjp(skrank.soft_rank, np.array([5., 1., 2.]),
    ...                        regularization_strength=2.0)
    >>> vjp_fn(np.array([1., 0., 0.]))
    array([0., 0., 0.])
    >>> vjp_fn(np.array([0., 1., 0.]))
    array([ 0.  ,  0.25, -0.25])
    """
    forward = _lookup(fun, args, argnums)
    value, structure = forward(*args, **kwargs)
    return value, structure.vjp


def jvp(fun, x, tangent, **kwargs):
    """Value and Jacobian-vector product of a skrank array operator.

    Parameters
    ----------
    fun : callable
        :func:`skrank.soft_rank` or :func:`skrank.soft_sort`.
    x : array-like
        The point at which to differentiate.
    tangent : array-like
        Direction, of ``x``'s shape.
    **kwargs
        Keyword arguments of ``fun``.

    Returns
    -------
    value : ndarray
        ``fun(x, **kwargs)``.
    jvp_out : ndarray
        ``J @ tangent``, shaped like ``value``.

    Examples
    --------
    >>> import numpy as np, skrank
    >>> x = np.array([3., 1., 2.])
    >>> skrank.jvp(skrank.soft_sort, x, np.array([1., 0., 0.]), regularization_strength=0.0)
    (array([1., 2., 3.]), array([0., 0., 1.]))
    >>> skrank.jvp(skrank.soft_sort, x, np.array([1., 0., 0.]), regularization_strength=2.0)[1]
    array([0.33333333, 0.33333333, 0.33333333])
    """
    forward = _lookup(fun, (x,), 0)
    value, structure = forward(x, **kwargs)
    return value, structure.jvp(tangent)
