"""PyTorch adapter: soft sorting and ranking of tensors, exact to any order.

The Cython kernel finds the integer structure of each row, the sorting permutation and
the pool-adjacent-violators (PAV) blocks; the value is then recomputed from that
structure with torch's own ops (gathers and segment sums, in closed forms that avoid
cancellation). Autograd differentiates those ops, so first and second derivatives
(``gradgradcheck``, Hessian-vector products) are exact, with no hand-written backward
pass. The structure carries no gradient: within it the operator is smooth.

Only the structure is computed on the CPU: a CPU tensor reaches the kernel without a
copy (float32/float64, contiguous), a CUDA tensor's *values* are copied to the host for
the kernel and the integer structure copied back; the differentiable computation stays
on the tensor's device. Under ``torch.compile`` the kernel call is a graph break (it
runs NumPy code); the rest compiles.

Every function takes the keywords of its NumPy twin, with ``dim`` instead of ``axis``.
float16 and bfloat16 are computed in float32 and returned in their own dtype.
"""

import numpy as np
import torch

from . import _ops, _structure
from ._rows import Rows

__all__ = ["ndcg_loss", "soft_median", "soft_quantile", "soft_rank", "soft_sort",
           "soft_topk_mask", "soft_trimmed_mean", "spearman_loss", "topk_loss"]


def _rows(x, dim, name="x"):
    """x as (n_rows, n) rows in a compute dtype, and a function putting rows back."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}.")
    if x.is_complex() or x.dtype == torch.bool:
        raise TypeError(f"{name} must hold real numbers, got dtype {x.dtype}.")
    dtype = x.dtype
    # float16/bfloat16 in float32; integers in the default float dtype
    work = x if dtype in (torch.float32, torch.float64) else x.to(
        torch.float32 if dtype.is_floating_point else torch.get_default_dtype())
    if x.ndim == 0:
        raise ValueError(f"{name} must have at least one dimension.")
    moved = work.movedim(dim, -1)
    batch, n = moved.shape[:-1], moved.shape[-1]
    R = moved.reshape(-1, n)

    def back(out):
        return _in_dtype_of(out.reshape(*batch, n).movedim(-1, dim), x)

    return R, batch, back


def _in_dtype_of(out, x):
    """out in x's floating dtype (float16/bfloat16 were computed in float32); outputs
    of integer inputs stay floating."""
    return out if out.dtype == x.dtype or not x.dtype.is_floating_point else out.to(x.dtype)


def _host(R, name="x"):
    """The rows' values as a NumPy array for the kernel (no copy for CPU tensors)."""
    X = R.detach()
    if X.device.type != "cpu":
        X = X.cpu()
    X = np.ascontiguousarray(X.numpy())
    if not np.isfinite(X).all():
        raise ValueError(f"{name} contains NaN or infinity.")
    return X


class _Blocks:
    """The kernel's structure of every row as tensors on R's device, and segment
    arithmetic over its PAV blocks (global block ids)."""

    def __init__(self, form, R, regularization_strength, batch, sign, kl, w=None):
        if isinstance(regularization_strength, torch.Tensor):
            regularization_strength = regularization_strength.detach().cpu().numpy()
        eps = _ops._strengths(regularization_strength,
                              Rows(tuple(batch) + (R.shape[-1],), -1))
        if form == "rank":
            perm, segment, value = _structure.rank_form(_host(R), eps, w, sign, kl)
            self.inverse = self._tensor(_structure.inverse_permutation(perm), R)
            self.value = self._tensor(value, R).to(R.dtype)
        else:
            perm, segment, _ = _structure.sort_form(_host(R), eps, sign, kl)
        self.eps = self._tensor(np.array(eps), R).to(R.dtype)[:, None]
        self.perm = self._tensor(perm, R)
        self.seg = self._tensor(segment.reshape(-1), R)
        self.size, self.shape = segment.size, segment.shape
        counts = np.bincount(segment.reshape(-1), minlength=self.size)
        self.count = self._tensor(counts, R).to(R.dtype)[self.seg].reshape(self.shape)

    @staticmethod
    def _tensor(a, R):
        return torch.as_tensor(a).to(R.device)

    def sum(self, v):
        """Block sums, gathered back to every position."""
        total = v.new_zeros(self.size).index_add(0, self.seg, v.reshape(-1))
        return total[self.seg].reshape(self.shape)

    def mean(self, v):
        return self.sum(v) / self.count

    def softmax(self, v):
        """softmax of v within each block (max subtracted, as a constant)."""
        e = torch.exp(v - self._max(v))
        return e / self.sum(e)

    def logsumexp(self, v):
        m = self._max(v)
        return m + torch.log(self.sum(torch.exp(v - m)))

    def _max(self, v):
        m = v.detach().new_full((self.size,), -torch.inf).scatter_reduce(
            0, self.seg, v.detach().reshape(-1), "amax", include_self=True)
        return m[self.seg].reshape(self.shape)


def _outside_graphs(fun):
    """fun, excluded from torch.compile's graphs. Wrapped only while compiling (the
    wrapper imports torch._dynamo, which would double this module's import time), and
    then only while tracing: the compiled code keeps the graph break."""
    return torch.compiler.disable(fun)


def _blocks(*args):
    # the kernel runs NumPy code: torch.compile breaks the graph there, traces the rest
    if torch.compiler.is_compiling():
        return _outside_graphs(_Blocks)(*args)
    return _Blocks(*args)


def _hard_ranks(T):
    """Tie-averaged ranks of the rows of T (last axis), as a constant tensor."""
    if torch.compiler.is_compiling():
        return _outside_graphs(_hard_ranks_eager)(T)
    return _hard_ranks_eager(T)


def _hard_ranks_eager(T):
    ranks = _ops._forward("rank", _host(T.reshape(-1, T.shape[-1]), "y_true"), 0.0, "l2",
                          "ascending", -1, "raise", False)[0]
    return torch.as_tensor(ranks).reshape(T.shape)


def _per_row(regularization_strength, batch):
    """A strength for rows flattened from batch: a scalar, or one value per row."""
    if isinstance(regularization_strength, torch.Tensor):
        regularization_strength = regularization_strength.detach().cpu().numpy()
    if np.ndim(regularization_strength) == 0:
        return regularization_strength
    try:
        return np.broadcast_to(regularization_strength, tuple(batch)).reshape(-1)
    except ValueError:
        raise ValueError(f"regularization_strength must be a scalar or an array of shape "
                         f"{tuple(batch)} (x's shape without dim), got shape "
                         f"{np.shape(regularization_strength)}.") from None


def _check(regularization, direction):
    _ops._check_choice("regularization", regularization, _ops._REGULARIZATIONS)
    _ops._check_choice("direction", direction, _ops._DIRECTIONS)


def _rank_form(R, blocks, w, sign, kl):
    """P(sign * R / eps, w) per row (kl: its exponential), aligned with R."""
    hard = blocks.eps == 0
    z = torch.gather(sign * R / torch.where(hard, 1.0, blocks.eps), 1, blocks.perm)
    w_sorted = torch.as_tensor(w, dtype=R.dtype, device=R.device).expand_as(z)
    if kl:
        P = blocks.softmax(z) * blocks.sum(w_sorted)
    else:
        P = (z - blocks.mean(z)) + blocks.mean(w_sorted)
    return torch.where(hard, blocks.value, torch.gather(P, 1, blocks.inverse))


# Parameter descriptions shared by the public functions' docstrings: those of their
# NumPy twins (skrank._ops._COMMON_PARAMETERS), with ``dim`` instead of ``axis``.
_X = """x : torch.Tensor
        Values, on any device. float16 and bfloat16 are computed in float32 and returned
        in their own dtype; integers are computed in torch's default float dtype."""

_STRENGTH = """regularization_strength : float, array-like or torch.Tensor, default=1.0
        Strength ``eps >= 0`` of the regulariser, in the units of ``{x}``: 0 gives the
        hard operator, larger values smoother outputs. A scalar, or one value per row
        (an array of ``{x}``'s shape without ``dim``). It carries no gradient."""

_REGULARIZATION = """regularization : {"l2", "kl"}, default="l2"
        Quadratic ("l2") or entropic ("kl") regularisation of the linear program over
        the permutahedron."""

_DIRECTION = """direction : {"ascending", "descending"}, default="ascending"
        Order convention: "ascending" gives the smallest entry the rank closest to 1
        and sorts in increasing order along ``dim``; "descending" reverses both."""

_DIM = """dim : int, default=-1
        Dimension along which to operate; rows along it are independent."""


def soft_rank(x, *, regularization_strength=1.0, regularization="l2",
              direction="ascending", dim=-1):
    _check(regularization, direction)
    R, batch, back = _rows(x, dim)
    sign = 1.0 if direction == "ascending" else -1.0
    kl = regularization == "kl"
    rho = np.arange(R.shape[1], 0, -1, dtype=np.float64)
    blocks = _blocks("rank", R, regularization_strength, batch, sign, kl, rho)
    return back(_rank_form(R, blocks, rho, sign, kl))


soft_rank.__doc__ = f"""Soft ranks of a tensor along ``dim``, differentiable to any order.

    The same operator as :func:`skrank.soft_rank`, with ``dim`` instead of ``axis``.

    Parameters
    ----------
    {_X}
    {_STRENGTH.format(x="x")}
    {_REGULARIZATION}
    {_DIRECTION}
    {_DIM}

    Returns
    -------
    ranks : torch.Tensor
        Soft ranks in ``[1, n]``, of ``x``'s shape, on its device, in its floating
        dtype.

    See Also
    --------
    skrank.soft_rank : The NumPy twin, with ``axis`` instead of ``dim``.

    Examples
    --------
    >>> import torch
    >>> from skrank.torch import soft_rank
    >>> x = torch.tensor([5., 1., 2.], requires_grad=True)
    >>> r = soft_rank(x, regularization_strength=2.0)
    >>> r.detach()
    tensor([3.0000, 1.2500, 1.7500])
    >>> r[1].backward()
    >>> x.grad
    tensor([ 0.0000,  0.2500, -0.2500])
    """


def soft_sort(x, *, regularization_strength=1.0, regularization="l2",
              direction="ascending", dim=-1):
    _check(regularization, direction)
    R, batch, back = _rows(x, dim)
    sign = -1.0 if direction == "ascending" else 1.0
    kl = regularization == "kl"
    blocks = _blocks("sort", R, regularization_strength, batch, sign, kl)
    t = torch.gather(sign * R, 1, blocks.perm)
    hard = blocks.eps == 0
    rho = torch.arange(R.shape[1], 0, -1, dtype=R.dtype, device=R.device)
    z = rho / torch.where(hard, 1.0, blocks.eps)
    if kl:
        P = (z - blocks.logsumexp(z)) + blocks.logsumexp(t)
    else:
        P = (z - blocks.mean(z)) + blocks.mean(t)
    return back(sign * torch.where(hard, t, P))


soft_sort.__doc__ = f"""Soft sort of a tensor along ``dim``, differentiable to any order.

    The same operator as :func:`skrank.soft_sort`, with ``dim`` instead of ``axis``.
    Derivatives are exact away from ties of ``x``, where the soft sort has kinks (its
    derivative jumps there).

    Parameters
    ----------
    {_X}
    {_STRENGTH.format(x="x")}
    {_REGULARIZATION}
    {_DIRECTION}
    {_DIM}

    Returns
    -------
    values : torch.Tensor
        Soft sorted values, of ``x``'s shape, in sorted order along ``dim``, on its
        device, in its floating dtype.

    See Also
    --------
    skrank.soft_sort : The NumPy twin, with ``axis`` instead of ``dim``.

    Examples
    --------
    >>> import torch
    >>> from skrank.torch import soft_sort
    >>> soft_sort(torch.tensor([3., 1., 2.]), regularization_strength=2.0)
    tensor([1.5000, 2.0000, 2.5000])
    """


def soft_topk_mask(x, k, *, regularization_strength=1.0, dim=-1):
    R, batch, back = _rows(x, dim)
    n = R.shape[1]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k <= n:
        raise ValueError(f"k must be an integer in [0, {n}] (the length of dim), got {k!r}.")
    w = (np.arange(n) < k).astype(np.float64)
    if k in (0, n):  # a constant mask: strength 0 makes its derivative exactly zero
        regularization_strength = 0.0
    blocks = _blocks("rank", R, regularization_strength, batch, 1.0, False, w)
    return back(_rank_form(R, blocks, w, 1.0, False).clamp(0.0, 1.0))


soft_topk_mask.__doc__ = f"""Soft mask of the ``k`` largest entries along ``dim``.

    The same operator as :func:`skrank.soft_topk_mask` (l2), with ``dim`` instead of
    ``axis``, differentiable to any order. Only entries within about ``eps`` of the
    k-th largest are soft; the others are exactly 0 or 1.

    Parameters
    ----------
    {_X}
    k : int
        Number of entries to keep, in ``[0, n]`` (``n`` the length of ``dim``).
    {_STRENGTH.format(x="x")}
    {_DIM}

    Returns
    -------
    mask : torch.Tensor
        Values in ``[0, 1]`` summing to ``k`` along ``dim``, of ``x``'s shape.

    See Also
    --------
    skrank.soft_topk_mask : The NumPy twin, with ``axis`` instead of ``dim``.

    Examples
    --------
    >>> import torch
    >>> from skrank.torch import soft_topk_mask
    >>> soft_topk_mask(torch.tensor([3., 1., 1., 0.]), 2, regularization_strength=0.0)
    tensor([1.0000, 0.5000, 0.5000, 0.0000])
    """


def spearman_loss(y_true, y_pred, *, regularization_strength=1.0, regularization="l2",
                  dim=-1):
    T, P = _pair(y_true, y_pred, dim)
    B = soft_rank(P, regularization_strength=regularization_strength,
                  regularization=regularization)
    A = _hard_ranks(T).to(dtype=B.dtype, device=B.device)
    A = A - A.mean(-1, keepdim=True)
    B = B - B.mean(-1, keepdim=True)
    na2, nb2 = (A * A).sum(-1), (B * B).sum(-1)
    ok = (na2 > 0) & (nb2 > 0)  # a constant row has no correlation: 0 by convention
    denom = torch.sqrt(torch.where(ok, na2 * nb2, 1.0))
    corr = torch.where(ok, (A * B).sum(-1) / denom, 0.0)
    return (1.0 - corr).mean()


spearman_loss.__doc__ = f"""One minus the soft Spearman correlation, averaged over rows.

    The same loss as :func:`skrank.losses.spearman_loss`: for each row along ``dim``,
    the Pearson correlation of the hard (tie-averaged) ranks of ``y_true`` and the soft
    ranks of ``y_pred``; a row where either side is constant contributes 0.
    Differentiable in ``y_pred`` to any order.

    Parameters
    ----------
    y_true : torch.Tensor or array-like
        Targets, of ``y_pred``'s shape; only their hard ranks are used (no gradient).
    y_pred : torch.Tensor
        Predictions; the loss is differentiable in them.
    {_STRENGTH.format(x="y_pred")}
    {_REGULARIZATION}
    dim : int, default=-1
        Dimension along which the lists lie; every other dimension indexes lists.

    Returns
    -------
    loss : torch.Tensor
        A 0-d tensor, ``mean(1 - rho)`` over rows, in ``[0, 2]``.

    See Also
    --------
    skrank.losses.spearman_loss : The NumPy twin, with ``axis`` instead of ``dim``.

    Examples
    --------
    >>> import torch
    >>> from skrank.torch import spearman_loss
    >>> y_pred = torch.tensor([0.1, 0.4, 0.3, 0.9], requires_grad=True)
    >>> loss = spearman_loss(torch.tensor([1., 2., 3., 4.]), y_pred,
    ...                      regularization_strength=0.0)
    >>> round(loss.item(), 6)
    0.2
    """


def _within_rows(value, R):
    """value (one per row) clipped to its row's [min, max], where a convex combination
    of the row lies in exact arithmetic; the derivative stays the unclipped one's."""
    lo, hi = R.amin(-1).to(value.dtype), R.amax(-1).to(value.dtype)
    return value + (torch.clamp(value, lo, hi) - value).detach()


def _convex_mean(w, R, total):
    """Per row sum(w x) / total, for weights w >= 0 summing to total: in float64, about
    c, the row's value closest to 0 within its range (scaled by 2^-24 near float64's
    limit), so that nothing overflows, derivatives included, and a constant row gives
    its value exactly; within the row's range."""
    X = R.double()
    lo, hi = X.amin(-1, keepdim=True), X.amax(-1, keepdim=True)
    scale = torch.where(torch.maximum(-lo, hi) > 2.0 ** 1000, 2.0 ** -24, 1.0)
    c = (torch.clamp(torch.zeros_like(lo), lo, hi) * scale).detach()  # sum(w) = total:
    # c's own derivative is 0
    value = ((((w / total) * (X * scale - c)).sum(-1, keepdim=True) + c) / scale)[:, 0]
    return _within_rows(value, R)


def _lerp(a, b, t):
    """a + (b - a) t, or the convex combination where b - a overflows."""
    d = b - a
    return torch.where(torch.isfinite(d), a + d * t, a * (1.0 - t) + b * t)


def _midpoint(a, b):
    """(a + b) / 2 as numpy.median forms it, halved first where a + b overflows."""
    return torch.where(torch.isfinite(a + b), (a + b) / 2, a / 2 + b / 2)


def _order_statistic(R, i, regularization_strength, batch):
    """The soft (i + 1)-th smallest value of each row: <M(n - i) - M(n - i - 1), x>
    with M(k) the soft top-k mask (design notes, section 7)."""
    n, eps = R.shape[1], _per_row(regularization_strength, batch)
    w = (soft_topk_mask(R, n - i, regularization_strength=eps)
         - soft_topk_mask(R, n - i - 1, regularization_strength=eps))
    return _convex_mean(w, R, 1.0).reshape(batch)


def soft_quantile(x, q, *, regularization_strength=1.0, dim=-1):
    return _quantile(x, q, regularization_strength, dim, median=False)


soft_quantile.__doc__ = f"""Soft q-th quantile along ``dim`` (NumPy's "linear" method).

    The same statistic as :func:`skrank.soft_quantile`, differentiable: a weighted
    mean of ``x`` with soft order-statistic weights (differences of soft top-k masks),
    robust to outliers.

    Parameters
    ----------
    {_X}
    q : float or 1-D sequence of float
        Probabilities in ``[0, 1]``; with a sequence the quantiles are stacked along a
        new first dimension.
    {_STRENGTH.format(x="x")}
    {_DIM}

    Returns
    -------
    quantile : torch.Tensor
        Of shape ``q.shape`` followed by ``x``'s shape without ``dim``. Strength 0
        gives :func:`numpy.quantile`.

    See Also
    --------
    skrank.soft_quantile : The NumPy twin, with ``axis`` instead of ``dim``.

    Examples
    --------
    >>> import torch
    >>> from skrank.torch import soft_quantile
    >>> soft_quantile(torch.tensor([0.1, 0.2, 0.3, 0.4, 1000.]), 0.5,
    ...               regularization_strength=0.0)
    tensor(0.3000)
    """


def soft_median(x, *, regularization_strength=1.0, dim=-1):
    return _quantile(x, 0.5, regularization_strength, dim, median=True)


soft_median.__doc__ = f"""Soft median along ``dim``: :func:`soft_quantile` at 0.5.

    Differentiable; an even length averages the two middle order statistics, as
    :func:`numpy.median`.

    Parameters
    ----------
    {_X}
    {_STRENGTH.format(x="x")}
    {_DIM}

    Returns
    -------
    median : torch.Tensor
        Of ``x``'s shape without ``dim``.

    See Also
    --------
    skrank.soft_median : The NumPy twin, with ``axis`` instead of ``dim``.

    Examples
    --------
    >>> import torch
    >>> from skrank.torch import soft_median
    >>> soft_median(torch.tensor([3., 1., 2., 10.]), regularization_strength=0.0)
    tensor(2.5000)
    """


def _quantile(x, q, regularization_strength, dim, median):
    qs = np.asarray(_ops._as_float_array(q, "q"), dtype=np.float64)
    if qs.ndim > 1 or not (np.isfinite(qs).all() and ((qs >= 0) & (qs <= 1)).all()):
        raise ValueError("q must be a float or a 1-D sequence of floats in [0, 1].")
    R, batch, back = _rows(x, dim)
    n = R.shape[1]
    if n == 0:
        raise ValueError("cannot take a quantile of an empty row.")
    values = []
    for qq in qs.reshape(-1):
        h = (n - 1) * qq
        j = min(int(np.floor(h)), n - 1)
        frac = h - j
        a = _order_statistic(R, j, regularization_strength, batch)
        if frac == 0:
            values.append(a)
            continue
        b = _order_statistic(R, min(j + 1, n - 1), regularization_strength, batch)
        value = _midpoint(a, b) if median and frac == 0.5 else _lerp(a, b, frac)
        values.append(_within_rows(value.reshape(-1), R).reshape(batch))
    out = torch.stack(values) if qs.ndim else values[0]
    return _in_dtype_of(out, x)


def soft_trimmed_mean(x, proportiontocut, *, regularization_strength=1.0, dim=-1):
    if not isinstance(proportiontocut, (int, float)) or not 0 <= proportiontocut < 0.5:
        raise ValueError(
            f"proportiontocut must be a number in [0, 0.5), got {proportiontocut!r}.")
    R, batch, _ = _rows(x, dim)
    n = R.shape[1]
    if n == 0:
        raise ValueError("cannot take a trimmed mean of an empty row.")
    k, eps = int(proportiontocut * n), _per_row(regularization_strength, batch)
    w = (soft_topk_mask(R, n - k, regularization_strength=eps)
         - soft_topk_mask(R, k, regularization_strength=eps))
    out = _convex_mean(w, R, n - 2 * k).reshape(batch)
    return _in_dtype_of(out, x)


soft_trimmed_mean.__doc__ = f"""Soft trimmed mean along ``dim``, differentiable.

    ``k = floor(proportiontocut * n)`` values are cut softly from each end: the weights
    ``M(n - k) - M(k)`` of soft top-k masks, exactly scipy's ``trim_mean`` at strength 0.

    Parameters
    ----------
    {_X}
    proportiontocut : float
        Fraction cut from each end, in ``[0, 0.5)``.
    {_STRENGTH.format(x="x")}
    {_DIM}

    Returns
    -------
    mean : torch.Tensor
        Of ``x``'s shape without ``dim``.

    See Also
    --------
    skrank.soft_trimmed_mean : The NumPy twin, with ``axis`` instead of ``dim``.

    Examples
    --------
    >>> import torch
    >>> from skrank.torch import soft_trimmed_mean
    >>> soft_trimmed_mean(torch.tensor([0.1, 0.2, 0.3, 0.4, 1000.]), 0.2,
    ...                   regularization_strength=0.0)
    tensor(0.3000)
    """


def ndcg_loss(y_true, y_pred, *, regularization_strength=1.0, regularization="l2", dim=-1,
              k=None, gains="linear"):
    if not isinstance(gains, str) or gains not in ("linear", "exponential"):
        raise ValueError(f"gains must be one of ('linear', 'exponential'), got {gains!r}.")
    G, P = _pair(y_true, y_pred, dim)
    if (G < 0).any():
        raise ValueError("ndcg_loss needs non-negative relevances in y_true.")
    if gains == "exponential":
        G = torch.exp2(G) - 1.0
    n = P.shape[-1]
    kk = n if k is None else min(int(k), n)
    if isinstance(k, bool) or (k is not None and (not isinstance(k, (int, np.integer))
                                                  or k < 0)):
        raise ValueError(f"k must be a non-negative integer or None, got {k!r}.")
    R = soft_rank(P, regularization_strength=regularization_strength,
                  regularization=regularization, direction="descending")
    cut = soft_topk_mask(P, kk, regularization_strength=regularization_strength) \
        if kk < n else torch.ones_like(R)
    dcg = (G * cut / torch.log2(1.0 + R)).sum(-1)
    position = torch.arange(n, device=P.device, dtype=P.dtype)
    discount = torch.where(position < kk, 1.0 / torch.log2(position + 2.0), 0.0)
    idcg = (torch.sort(G, dim=-1, descending=True).values * discount).sum(-1)
    ok = idcg > 0  # rows without relevant items score 0, as in scikit-learn
    ndcg = torch.where(ok, dcg / torch.where(ok, idcg, 1.0), 0.0)
    return (1.0 - ndcg).mean()


ndcg_loss.__doc__ = f"""One minus the soft NDCG, averaged over rows.

    The same loss as :func:`skrank.losses.ndcg_loss`: DCG with the descending soft ranks
    ``r`` of ``y_pred``, ``sum(gain * c / log2(1 + r))``, where the cutoff ``c`` is the
    soft top-k mask of ``y_pred`` (1 when ``k`` is None); divided by the ideal (hard)
    DCG. Rows whose relevances are all zero score 0. Differentiable in ``y_pred`` to any
    order.

    Parameters
    ----------
    y_true : torch.Tensor or array-like
        Non-negative relevances, of ``y_pred``'s shape (no gradient).
    y_pred : torch.Tensor
        Scores; the loss is differentiable in them.
    {_STRENGTH.format(x="y_pred")}
    {_REGULARIZATION}
    dim : int, default=-1
        Dimension along which the lists lie; every other dimension indexes lists.
    k : int or None, default=None
        Cutoff: only the top ``k`` positions count (None, or ``k >= n``: all).
    gains : {{"linear", "exponential"}}, default="linear"
        Gain ``y_true`` or ``2 ** y_true - 1``.

    Returns
    -------
    loss : torch.Tensor
        A 0-d tensor in ``[0, 1]``.

    See Also
    --------
    skrank.losses.ndcg_loss : The NumPy twin, with ``axis`` instead of ``dim``.

    Examples
    --------
    >>> import torch
    >>> from skrank.torch import ndcg_loss
    >>> round(ndcg_loss(torch.tensor([[3., 2., 0., 1.]]), torch.tensor([[0.9, 0.1, 0.3, 0.2]]),
    ...                 regularization_strength=0.0).item(), 4)
    0.0841
    """


def topk_loss(labels, scores, *, k=1, regularization_strength=1.0, regularization="l2",
              dim=-1):
    R = soft_rank(scores, regularization_strength=regularization_strength,
                  regularization=regularization, direction="descending", dim=dim)
    R = R.movedim(dim, -1)
    n = R.shape[-1]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k <= n:
        raise ValueError(f"k must be an integer in [0, {n}] (the number of classes), "
                         f"got {k!r}.")
    labels = torch.as_tensor(labels, device=R.device)
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise TypeError(f"labels must be integer class indices, got dtype {labels.dtype}.")
    if tuple(labels.shape) != tuple(R.shape[:-1]):
        raise ValueError(f"labels must have shape {tuple(R.shape[:-1])} (scores' shape "
                         f"without dim), got {tuple(labels.shape)}.")
    if ((labels < 0) | (labels >= n)).any():
        raise ValueError("labels must be class indices: in [0, number of classes).")
    r_true = torch.gather(R, -1, labels.long()[..., None])[..., 0]
    return torch.clamp(r_true - k, min=0.0).mean()


topk_loss.__doc__ = f"""Soft top-k classification loss, averaged over samples.

    The same loss as :func:`skrank.losses.topk_loss`: ``max(0, r_y - k)`` with ``r_y``
    the descending soft rank of the true class's score. Differentiable in ``scores`` to
    any order.

    Parameters
    ----------
    labels : torch.Tensor or array-like of int
        True class indices in ``[0, n_classes)``, of ``scores``' shape without ``dim``.
    scores : torch.Tensor
        Class scores, the classes along ``dim``.
    k : int, default=1
        Number of top classes that incur no loss, in ``[0, n_classes]``.
    {_STRENGTH.format(x="scores")}
    {_REGULARIZATION}
    dim : int, default=-1
        Dimension of the classes; every other dimension indexes samples.

    Returns
    -------
    loss : torch.Tensor
        A non-negative 0-d tensor.

    See Also
    --------
    skrank.losses.topk_loss : The NumPy twin, with ``axis`` instead of ``dim``.

    Examples
    --------
    >>> import torch
    >>> from skrank.torch import topk_loss
    >>> topk_loss(torch.tensor([0, 2]), torch.tensor([[0.1, 0.5, 0.4], [0.3, 0.2, 0.9]]),
    ...           regularization_strength=0.0)
    tensor(1.)
    """


def _pair(y_true, y_pred, dim):
    """(y_true, y_pred) as tensors with the lists along the last axis; y_true detached
    and in y_pred's dtype."""
    if not isinstance(y_pred, torch.Tensor):
        raise TypeError(f"y_pred must be a torch.Tensor, got {type(y_pred).__name__}.")
    if not isinstance(y_true, torch.Tensor):
        y_true = torch.as_tensor(np.asarray(y_true, dtype=np.float64))
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred must have the same shape, got "
                         f"{tuple(y_true.shape)} and {tuple(y_pred.shape)}.")
    P = y_pred.movedim(dim, -1)
    if not P.dtype.is_floating_point:
        P = P.to(torch.get_default_dtype())
    G = y_true.detach().movedim(dim, -1).to(device=P.device, dtype=P.dtype)
    if not torch.isfinite(G).all():
        raise ValueError("y_true contains NaN or infinity.")
    return G, P
