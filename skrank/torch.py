"""PyTorch adapter: soft sorting and ranking of tensors, exact to any order.

The Cython kernel finds the integer structure of each row, the sorting permutation and
the pool-adjacent-violators (PAV) blocks; the value is then recomputed from that
structure with torch's own ops (gathers and segment sums, in closed forms that avoid
cancellation, written once for torch and JAX in :mod:`skrank._autograd`). Autograd
differentiates those ops, so first and second derivatives (``gradgradcheck``,
Hessian-vector products) are exact, with no hand-written backward pass. The structure
carries no gradient: within it the operator is smooth.

Only the structure is computed on the CPU: a CPU tensor reaches the kernel without a
copy (float32/float64, contiguous), a CUDA tensor's *values* are copied to the host for
the kernel and the integer structure copied back; the differentiable computation stays
on the tensor's device. Under ``torch.compile`` the kernel call is a graph break (it
runs NumPy code); the rest compiles.

Every function takes the keywords of its NumPy twin, with ``dim`` instead of ``axis``.
float16 and bfloat16 are computed in float32 and returned in their own dtype. NaN or
infinity in an input raises ``ValueError``, as the NumPy twins' default
``nan_policy="raise"``.
"""

import types

import numpy as np
import torch

from . import _autograd, _ops, _stats, _structure, losses

__all__ = ["ndcg_loss", "soft_median", "soft_quantile", "soft_rank", "soft_sort",
           "soft_topk", "soft_topk_mask", "soft_trimmed_mean", "spearman_loss", "topk_loss"]


# --------------------------------------------------------------------------- shim
class _Torch:
    """The framework primitives of skrank._autograd, for torch; ``name``: the argument
    whose rows the structure is found for, named when they are not finite, with
    ``hint`` after it."""

    xp = torch

    def __init__(self, name="x", hint=""):
        self.name, self.hint = name, hint

    @staticmethod
    def sg(v):
        return v.detach()

    @staticmethod
    def take(v, idx):
        return torch.gather(v, -1, idx)

    @staticmethod
    def rowsum(v, keepdims=False):
        return v.sum(-1, keepdim=keepdims)

    @staticmethod
    def rowmin(v, keepdims=False):
        return v.amin(-1, keepdim=keepdims)

    @staticmethod
    def rowmax(v, keepdims=False):
        return v.amax(-1, keepdim=keepdims)

    @staticmethod
    def sort(v):
        return torch.sort(v, dim=-1).values

    @staticmethod
    def segment_sum(v, seg, size):
        return v.new_zeros(size).index_add(0, seg, v)

    @staticmethod
    def const(a, like):
        return torch.as_tensor(np.array(a, dtype=np.float64), dtype=like.dtype,
                               device=like.device)

    @staticmethod
    def wide(v):
        return v.double()

    @staticmethod
    def finfo_max(v):
        return torch.finfo(v.dtype).max

    def structure(self, X, eps, form, *args):
        # the kernel runs NumPy code: torch.compile breaks the graph there
        if torch.compiler.is_compiling():
            return torch.compiler.disable(_structure_eager)(X, eps, form, self, *args)
        return _structure_eager(X, eps, form, self, *args)


def _structure_eager(X, eps, form, shim, *args):
    host = X.detach()
    host = np.ascontiguousarray((host if host.device.type == "cpu" else host.cpu()).numpy())
    if not np.isfinite(host).all():  # checked where the values reach the host anyway
        raise ValueError(f"{shim.name} contains NaN or infinity{shim.hint}.")
    args = [a.detach().cpu().double().numpy() if isinstance(a, torch.Tensor) else a
            for a in args]  # (a real k per row)
    perm, inv, local, first, count, wsum, value = _structure.host_structure(
        host, np.ascontiguousarray(eps.detach().cpu().double().numpy()), form, *args)
    n_rows, n = host.shape
    seg = (local + n * np.arange(n_rows)[:, None]).reshape(len(local), -1)

    def tensor(a, dtype=None):
        return torch.as_tensor(a).to(device=X.device, dtype=dtype)

    return (tensor(perm), tensor(inv), tensor(seg), tensor(first), tensor(count, X.dtype),
            tensor(wsum, X.dtype), tensor(value, X.dtype))


_F = _Torch()


# ---------------------------------------------------------------------- plumbing
def _float(x, name):
    """x in its compute dtype: float16/bfloat16 in float32, integers in torch's
    default float dtype."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}.")
    if x.is_complex() or x.dtype == torch.bool:
        raise TypeError(f"{name} must hold real numbers, got dtype {x.dtype}.")
    if x.dtype in (torch.float32, torch.float64):
        return x
    return x.to(torch.float32 if x.dtype.is_floating_point else torch.get_default_dtype())


def _rows(x, dim, strength, name="x", nan_policy=None):
    """(x as (n_rows, n) rows in a compute dtype, per-row strengths (n_rows,), the
    function putting rows back in x's layout and dtype, and the shim). NaN or infinity
    raises (the shim, at the kernel call), or with ``nan_policy="propagate"`` gives NaN
    rows, without a data-dependent branch (nothing for torch.compile to break on)."""
    if nan_policy is not None:
        _ops._check_choice("nan_policy", nan_policy, _ops._NAN_POLICIES)
    work = _float(x, name)
    if x.ndim == 0:
        raise ValueError(f"{name} must have at least one dimension.")
    moved = work.movedim(dim, -1)
    batch, n = tuple(moved.shape[:-1]), moved.shape[-1]
    R = moved.reshape(-1, n)
    eps = _F.const(_strengths(strength, batch), R)
    if isinstance(strength, torch.Tensor) and strength.requires_grad:
        # a learnable strength: the same values, in the graph (the structure found
        # with them does not move with them, so the derivative is exact)
        eps = torch.broadcast_to(strength.to(dtype=R.dtype, device=R.device),
                                 batch).reshape(-1)
    bad = None
    if nan_policy == "propagate":
        bad = ~torch.isfinite(R).all(-1, keepdim=True)
        R = torch.where(bad, 0.0, R)

    def back(out, reduced=False):
        if bad is not None:
            out = torch.where(bad[:, 0] if reduced else bad, torch.nan, out)
        out = out.reshape(batch) if reduced else out.reshape(*batch, n).movedim(-1, dim)
        return _in_dtype_of(out, x)

    hint = ("; pass nan_policy='propagate' to get NaN in the affected rows instead"
            if nan_policy is not None else "")
    return R, eps, back, _Torch(name, hint)


def _strengths(strength, batch):
    """One validated strength per row, for rows flattened from batch."""
    if isinstance(strength, torch.Tensor):
        strength = strength.detach().cpu().numpy()
    rows = types.SimpleNamespace(n_rows=int(np.prod(batch)), batch_shape=batch)
    return _ops._strengths(strength, rows)


def _in_dtype_of(out, x):
    """out in x's floating dtype (float16/bfloat16 were computed in float32); outputs
    of integer inputs stay floating."""
    return out if out.dtype == x.dtype or not x.dtype.is_floating_point else out.to(x.dtype)


def _check(regularization, direction="ascending", choices=_ops._REGULARIZERS):
    _ops._check_choice("regularization", regularization, tuple(choices))
    _ops._check_choice("direction", direction, _ops._DIRECTIONS)


def _pair(y_true, y_pred, dim, strength):
    """(rows of y_true, detached, in y_pred's compute dtype; rows of y_pred; strengths)."""
    if not isinstance(y_pred, torch.Tensor):
        raise TypeError(f"y_pred must be a torch.Tensor, got {type(y_pred).__name__}.")
    if not isinstance(y_true, torch.Tensor):
        y_true = torch.as_tensor(np.asarray(y_true, dtype=np.float64))
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred must have the same shape, got "
                         f"{tuple(y_true.shape)} and {tuple(y_pred.shape)}.")
    P, eps, _, _ = _rows(y_pred, dim, strength, "y_pred")
    T = y_true.detach().movedim(dim, -1).reshape(P.shape).to(device=P.device,
                                                              dtype=P.dtype)
    if not torch.isfinite(T).all():
        raise ValueError("y_true contains NaN or infinity.")
    return T, P, eps


def _check_k(k, n, what):
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k <= n:
        raise ValueError(f"k must be an integer in [0, {n}] ({what}), got {k!r}.")


# ------------------------------------------------------------------------ operators
def soft_rank(x, *, regularization_strength=1.0, regularization="l2",
              direction="ascending", dim=-1, nan_policy="raise"):
    _check(regularization, direction, _ops._REGULARIZERS)
    R, eps, back, F = _rows(x, dim, regularization_strength, nan_policy=nan_policy)
    sign = 1.0 if direction == "ascending" else -1.0
    return back(_autograd.rank_rows(F, R, eps, sign, _ops._REGULARIZERS[regularization]))


def soft_sort(x, *, regularization_strength=1.0, regularization="l2",
              direction="ascending", dim=-1, nan_policy="raise"):
    _check(regularization, direction, _ops._REGULARIZERS)
    R, eps, back, F = _rows(x, dim, regularization_strength, nan_policy=nan_policy)
    sign = -1.0 if direction == "ascending" else 1.0
    return back(_autograd.sort_rows(F, R, eps, sign, _ops._REGULARIZERS[regularization]))


def soft_topk_mask(x, k, *, regularization_strength=1.0, dim=-1, by="value",
                   regularization="l2"):
    _ops._check_choice("by", by, ("value", "magnitude"))
    reg = _stats._mask_regularizer(regularization)
    R, eps, back, F = _rows(x, dim, regularization_strength)
    R = R.abs() if by == "magnitude" else R
    if isinstance(k, (bool, int, np.integer)):
        _check_k(k, R.shape[1], "the length of dim")
        return back(_autograd.Masks(F, R, eps, reg).mask(k))
    # a real k, one per row allowed; a tensor that requires grad gets its derivative
    batch = tuple(x.movedim(dim, -1).shape[:-1])
    host = k.detach().cpu().numpy() if isinstance(k, torch.Tensor) else k
    K = F.const(_stats._real_k(host, types.SimpleNamespace(
        batch_shape=batch, offsets=np.arange(R.shape[0] + 1) * R.shape[1])), R)
    if isinstance(k, torch.Tensor) and k.requires_grad:
        K = torch.broadcast_to(k.to(dtype=R.dtype, device=R.device), batch).reshape(-1)
    return back(_autograd.topk_mask_real(F, R, eps, K, reg))


def soft_topk(x, k, *, regularization_strength=1.0, dim=-1, by="value",
              regularization="l2"):
    mask = soft_topk_mask(x, k, regularization_strength=regularization_strength, dim=dim,
                          by=by, regularization=regularization)
    return mask * x.to(mask.dtype)


def soft_quantile(x, q, *, regularization_strength=1.0, dim=-1, regularization="l2"):
    return _quantile(x, q, regularization_strength, dim, False, regularization)


def soft_median(x, *, regularization_strength=1.0, dim=-1, regularization="l2"):
    return _quantile(x, 0.5, regularization_strength, dim, True, regularization)


def _quantile(x, q, strength, dim, median, regularization):
    reg = _stats._mask_regularizer(regularization)
    qs = _stats._check_q(np.asarray(_ops._as_float_array(q, "q"), dtype=np.float64))
    R, eps, back, F = _rows(x, dim, strength)
    if R.shape[1] == 0:
        raise ValueError("cannot take a quantile of an empty row.")
    values = [back(v.to(R.dtype), reduced=True)
              for v in _autograd.quantiles(F, R, eps, qs.reshape(-1), median, reg)]
    return torch.stack(values) if qs.ndim else values[0]


def soft_trimmed_mean(x, proportiontocut, *, regularization_strength=1.0, dim=-1,
                      regularization="l2"):
    reg = _stats._mask_regularizer(regularization)
    if not isinstance(proportiontocut, (int, float)) or not 0 <= proportiontocut < 0.5:
        raise ValueError(
            f"proportiontocut must be a number in [0, 0.5), got {proportiontocut!r}.")
    R, eps, back, F = _rows(x, dim, regularization_strength)
    if R.shape[1] == 0:
        raise ValueError("cannot take a trimmed mean of an empty row.")
    return back(_autograd.trimmed_mean(F, R, eps, proportiontocut, reg).to(R.dtype),
                reduced=True)


# --------------------------------------------------------------------------- losses
def spearman_loss(y_true, y_pred, *, regularization_strength=1.0, regularization="l2",
                  dim=-1):
    _check(regularization)
    T, P, eps = _pair(y_true, y_pred, dim, regularization_strength)
    loss = _autograd.spearman_rows(_Torch("y_pred"), T, P, eps,
                                   _ops._REGULARIZERS[regularization])
    return _in_dtype_of(loss.mean(), y_pred)


def ndcg_loss(y_true, y_pred, *, regularization_strength=1.0, regularization="l2", dim=-1,
              k=None, gains="linear"):
    _check(regularization)
    if not isinstance(gains, str) or gains not in ("linear", "exponential"):
        raise ValueError(f"gains must be one of ('linear', 'exponential'), got {gains!r}.")
    if isinstance(k, bool) or (k is not None and (not isinstance(k, (int, np.integer))
                                                  or k < 0)):
        raise ValueError(f"k must be a non-negative integer or None, got {k!r}.")
    G, P, eps = _pair(y_true, y_pred, dim, regularization_strength)
    if (G < 0).any():
        raise ValueError("ndcg_loss needs non-negative relevances in y_true.")
    loss = _autograd.ndcg_rows(_Torch("y_pred"), G, P, eps, _ops._REGULARIZERS[regularization],
                               k, gains)
    return _in_dtype_of(loss.mean(), y_pred)


def topk_loss(labels, scores, *, k=1, regularization_strength=1.0, regularization="l2",
              dim=-1):
    _check(regularization)
    S, eps, _, F = _rows(scores, dim, regularization_strength, "scores")
    n = S.shape[-1]
    _check_k(k, n, "the number of classes")
    labels = torch.as_tensor(labels, device=S.device)
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise TypeError(f"labels must be integer class indices, got dtype {labels.dtype}.")
    batch = tuple(scores.movedim(dim, -1).shape[:-1])
    if tuple(labels.shape) != batch:
        raise ValueError(f"labels must have shape {batch} (scores' shape without dim), "
                         f"got {tuple(labels.shape)}.")
    if ((labels < 0) | (labels >= n)).any():
        raise ValueError("labels must be class indices: in [0, number of classes).")
    loss = _autograd.topk_rows(F, labels.reshape(-1).long(), S, eps,
                               _ops._REGULARIZERS[regularization], k)
    return _in_dtype_of(loss.mean(), scores)


# ----------------------------------------------------------------------- docstrings
_INTRO = ("The same {what} as its NumPy twin, with ``dim`` instead of ``axis``, for "
          "tensors on any device, differentiable to any order.")
_X = """    x : torch.Tensor
        Values, on any device. float16 and bfloat16 are computed in float32 and returned
        in their own dtype; integers are computed in torch's default float dtype."""
_STRENGTH = """    regularization_strength : float, array-like or torch.Tensor, default=1.0
        Strength ``eps >= 0`` of the regulariser, in the units of ``{x}``: 0 gives the
        hard operator, larger values smoother outputs. A scalar, or one value per row
        (an array of ``{x}``'s shape without ``dim``). A tensor that requires grad gets
        its exact derivative (0 for rows at strength 0)."""
_DIM = """    dim : int, default=-1
        Dimension along which to operate; rows along it are independent."""
_LISTS_DIM = """    dim : int, default=-1
        Dimension along which the lists lie; every other dimension indexes lists."""
_TYPES = {"y_pred": "torch.Tensor", "scores": "torch.Tensor", "return": "torch.Tensor",
          "y_true": "torch.Tensor or array-like", "labels": "torch.Tensor or array-like of int"}
_MEDIAN_RETURNS = """    median : torch.Tensor
        Of ``x``'s shape without ``dim``; strength 0 gives :func:`numpy.median`."""
_EXAMPLES = {
    soft_rank: """
    >>> import torch
    >>> from skrank.torch import soft_rank
    >>> x = torch.tensor([5., 1., 2.], requires_grad=True)
    >>> r = soft_rank(x, regularization_strength=2.0)
    >>> r.detach()
    tensor([3.0000, 1.2500, 1.7500])
    >>> r[1].backward()
    >>> x.grad
    tensor([ 0.0000,  0.2500, -0.2500])""",
    soft_sort: """
    >>> import torch
    >>> from skrank.torch import soft_sort
    >>> soft_sort(torch.tensor([3., 1., 2.]), regularization_strength=2.0)
    tensor([1.5000, 2.0000, 2.5000])""",
    soft_topk_mask: """
    >>> import torch
    >>> from skrank.torch import soft_topk_mask
    >>> soft_topk_mask(torch.tensor([3., 1., 1., 0.]), 2, regularization_strength=0.0)
    tensor([1.0000, 0.5000, 0.5000, 0.0000])""",
    soft_topk: """
    >>> import torch
    >>> from skrank.torch import soft_topk
    >>> w = torch.tensor([-3., 1.2, -1., 0.5], requires_grad=True)
    >>> soft_topk(w, 2, regularization_strength=1.0, by="magnitude")
    tensor([-3.0000,  0.7200, -0.4000,  0.0000], grad_fn=<MulBackward0>)""",
    soft_quantile: """
    >>> import torch
    >>> from skrank.torch import soft_quantile
    >>> soft_quantile(torch.tensor([0.1, 0.2, 0.3, 0.4, 1000.]), 0.5,
    ...               regularization_strength=0.0)
    tensor(0.3000)""",
    soft_median: """
    >>> import torch
    >>> from skrank.torch import soft_median
    >>> soft_median(torch.tensor([3., 1., 2., 10.]), regularization_strength=0.0)
    tensor(2.5000)""",
    soft_trimmed_mean: """
    >>> import torch
    >>> from skrank.torch import soft_trimmed_mean
    >>> soft_trimmed_mean(torch.tensor([0.1, 0.2, 0.3, 0.4, 1000.]), 0.2,
    ...                   regularization_strength=0.0)
    tensor(0.3000)""",
    spearman_loss: """
    >>> import torch
    >>> from skrank.torch import spearman_loss
    >>> y_pred = torch.tensor([0.1, 0.4, 0.3, 0.9], requires_grad=True)
    >>> loss = spearman_loss(torch.tensor([1., 2., 3., 4.]), y_pred,
    ...                      regularization_strength=0.0)
    >>> round(loss.item(), 6)
    0.2""",
    ndcg_loss: """
    >>> import torch
    >>> from skrank.torch import ndcg_loss
    >>> round(ndcg_loss(torch.tensor([[3., 2., 0., 1.]]), torch.tensor([[0.9, 0.1, 0.3, 0.2]]),
    ...                 regularization_strength=0.0).item(), 4)
    0.0841""",
    topk_loss: """
    >>> import torch
    >>> from skrank.torch import topk_loss
    >>> topk_loss(torch.tensor([0, 2]), torch.tensor([[0.1, 0.5, 0.4], [0.3, 0.2, 0.9]]),
    ...           regularization_strength=0.0)
    tensor(1.)""",
}


def _document():
    import skrank

    twins = {f: getattr(losses if f.__name__.endswith("_loss") else skrank, f.__name__)
             for f in _EXAMPLES}
    for fun, twin in twins.items():
        main = {"spearman_loss": "y_pred", "ndcg_loss": "y_pred",
                "topk_loss": "scores"}.get(fun.__name__, "x")
        loss = main != "x"
        parameters = {"regularization_strength": _STRENGTH.format(x=main),
                      "dim": _LISTS_DIM if loss else _DIM}
        if not loss:
            parameters["x"] = _X
        fun.__doc__ = _autograd.adapted_doc(
            twin, fun, intro=_INTRO.format(what="loss" if loss else "operator"),
            types=_TYPES, parameters=parameters, axis="dim",
            examples=_EXAMPLES[fun], drop=(", or 1-D when ``axis=None``",),
            entries_from=skrank.soft_quantile, returns=_MEDIAN_RETURNS
            if fun is soft_median else None)


_document()
