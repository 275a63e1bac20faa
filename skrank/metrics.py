"""Scikit-learn metrics and scorers built on soft ranks.

:func:`soft_spearman` is a differentiable Spearman rank correlation with the
conventions of :mod:`sklearn.metrics` (samples along axis 0, one correlation per
output, ``multioutput`` averaging); ``skrank.vjp(soft_spearman, y_true, y_pred,
argnums=1)`` gives its exact gradient in O(n) per output. ``soft_spearman_scorer``
and ``spearman_scorer`` are the matching scikit-learn scorers (greater is better).
They are built on first access, so that ``import skrank`` does not import
scikit-learn.
"""

import numbers
import warnings

import numpy as np

from . import _ops, _rows
from ._registry import operator

__all__ = ["soft_spearman", "soft_spearman_scorer", "spearman_scorer"]

_MULTIOUTPUT = ("raw_values", "uniform_average")


def _as_columns(y, name, xp):
    """y as a 2-D float array of xp (n_samples, n_outputs), in its float dtype."""
    y = _ops._as_float_array(y, name, xp)
    if y.ndim not in (1, 2):
        raise ValueError(f"{name} must be 1-D or 2-D (n_samples, n_outputs), got shape "
                         f"{y.shape}.")
    if not xp.isfinite(y).all():
        raise ValueError(f"{name} contains NaN or infinity.")
    return y[:, None] if y.ndim == 1 else y


def _check(y_true, y_pred, strength, regularization, multioutput):
    """Validated (T float64, Z, averaging weights or None for raw_values), arrays of
    y_pred's namespace (NumPy or CuPy: everything follows y_pred)."""
    if isinstance(strength, (bool, np.bool_)) or not isinstance(strength, numbers.Real):
        raise TypeError(f"regularization_strength must be a real number, got {strength!r}.")
    if not 0.0 <= float(strength) < np.inf:
        raise ValueError("regularization_strength must be finite and non-negative, got "
                         f"{strength!r}.")
    _ops._check_choice("regularization", regularization, _ops._REGULARIZATIONS)
    xp = _ops._namespace(y_pred)
    Z = _as_columns(y_pred, "y_pred", xp)
    T = _as_columns(y_true, "y_true", xp).astype(np.float64, copy=False)
    if len(T) != len(Z):
        raise ValueError("y_true and y_pred have inconsistent numbers of samples: "
                         f"{len(T)} and {len(Z)}.")
    if T.shape != Z.shape:
        raise ValueError("y_true and y_pred have different numbers of outputs: "
                         f"{T.shape[1]} and {Z.shape[1]}.")
    if Z.size == 0:
        raise ValueError(f"soft_spearman needs at least one sample and one output, got "
                         f"shape {Z.shape}.")
    if isinstance(multioutput, str):
        _ops._check_choice("multioutput", multioutput, _MULTIOUTPUT)
        return T, Z, None if multioutput == "raw_values" else xp.full(Z.shape[1],
                                                                      1.0 / Z.shape[1])
    w = _ops._as_float_array(multioutput, "multioutput", xp).astype(np.float64)
    if w.shape != (Z.shape[1],):
        raise ValueError(f"multioutput weights must have shape ({Z.shape[1]},) (one per "
                         f"output), got {w.shape}.")
    if not (xp.isfinite(w).all() and (w >= 0).all() and w.sum() > 0):
        raise ValueError("multioutput weights must be finite, non-negative, with a "
                         "positive sum.")
    return T, Z, w / w.sum()


class _MetricStructure:
    """vjp of the metric: D[:, j] is the gradient of output j's correlation."""

    def __init__(self, D, weights, shape):
        self.D, self.weights, self.shape = D, weights, shape

    def vjp(self, cotangent):
        g = _ops._asarray(cotangent, _ops._namespace(self.D))
        if g.dtype.kind not in "biuf":
            raise TypeError(f"the cotangent must hold real numbers, got dtype {g.dtype}.")
        want = (self.D.shape[1],) if self.weights is None else ()
        if g.shape != want:
            raise ValueError(f"the cotangent must have shape {want} (the value's), got "
                             f"{g.shape}.")
        c = g if self.weights is None else g * self.weights
        return (self.D * c).astype(self.D.dtype, copy=False).reshape(self.shape)


def _hard_correlations(ranks_true, ranks_pred, ok, xp):
    """Per column, the Pearson correlation of the two hard (tie-averaged) ranks,
    computed as scipy.stats.spearmanr computes it (an (n, 2) float64 array of the
    ranks, then numpy.corrcoef with rowvar=False), so that strength 0 gives its value
    bit for bit (the ranks are exact: integers and halves); NaN where not ``ok``."""
    corr = xp.full(ranks_true.shape[1], np.nan)
    for j in np.flatnonzero(_rows.host(ok)):
        ranked = xp.column_stack((ranks_true[:, j].astype(np.float64),
                                  ranks_pred[:, j].astype(np.float64)))
        corr[j] = xp.corrcoef(ranked, rowvar=False)[1, 0]
    return corr


def _soft_spearman(y_true, y_pred, strength, regularization, multioutput, with_gradient):
    T, Z, weights = _check(y_true, y_pred, strength, regularization, multioutput)
    xp = _ops._namespace(Z)
    n = len(Z)
    strength = float(strength)
    # the std, safe from under- and overflow: y_pred is first scaled by a power of two
    # per column (exact), to |values| < 1, so that neither its sum nor its deviations
    # overflow (y_pred = [1e308, 1.5e308, 1.7e308] has an infinite sum), then the
    # deviations by their largest one, so that their squares do not underflow
    _, e = xp.frexp(xp.abs(Z).max(axis=0).astype(np.float64))
    Zc = xp.ldexp(Z.astype(np.float64), -e)
    Zc = Zc - Zc.mean(axis=0)  # centred, float64, |Zc| < 2
    top = xp.abs(Zc).max(axis=0)
    sd_scaled = top * xp.sqrt(((Zc / xp.where(top > 0, top, 1.0)) ** 2).mean(axis=0))
    U = Zc / xp.where(sd_scaled > 0, sd_scaled, np.nan)  # standardised y_pred
    sd = _rows.host(xp.ldexp(sd_scaled, e))  # at most max |y_pred|: finite
    if strength == 0.0:  # hard ranks: no eps to form
        eps = np.zeros_like(sd)
    else:
        with np.errstate(over="ignore"):  # an overflowing strength: constant ranks, NaN
            eps = np.minimum(strength * sd, np.finfo(np.float64).max)
    # one batched call per side: hard (tie-averaged) ranks of y_true, soft ranks of
    # y_pred with one strength per column, relative to the column's spread
    A = _ops._forward("rank", T, 0.0, "l2", "ascending", 0, "raise", False)[0]
    R, structure = _ops._forward("rank", Z, eps, regularization, "ascending", 0, "raise",
                                 keep_structure=with_gradient)
    hard_true, hard_pred = A, R
    A = A - A.mean(axis=0)
    B = R - R.mean(axis=0, dtype=np.float64)
    na, nb = xp.sqrt((A * A).sum(axis=0)), xp.sqrt((B * B).sum(axis=0))
    ok = (na > 0) & (nb > 0) & (sd_scaled > 0)
    if not ok.all():
        from scipy.stats import ConstantInputWarning  # scipy.stats is slow to import

        warnings.warn(
            f"soft_spearman: y_true or y_pred is constant in output(s) "
            f"{np.flatnonzero(_rows.host(~ok))}"
            " (a single sample, or soft ranks made constant by an extreme strength, count "
            "as constant); the correlation is not defined there (NaN).",
            ConstantInputWarning, stacklevel=4)
    denom = xp.where(ok, na * nb, np.nan)
    if strength == 0.0:
        corr = _hard_correlations(hard_true, hard_pred, ok, xp)
    else:
        corr = xp.clip((A * B).sum(axis=0) / denom, -1.0, 1.0)
    value = corr if weights is None else float(corr @ weights)
    if not with_gradient:
        return value, None
    # d corr / d R at fixed strength, then through the soft ranks' kept structure
    v = structure.vjp(A / denom - corr * B / xp.where(ok, nb * nb, np.nan))
    # eps = strength * sd depends on y_pred: soft_rank(z, eps) = R(z / eps) gives
    # grad = v - (v . (z - mean z)) (z - mean z) / (n sd^2)   (v sums to 0 per column)
    D = xp.where(ok, v - (v * U).sum(axis=0) * U / n, np.nan).astype(Z.dtype, copy=False)
    return value, _MetricStructure(D, weights, y_pred.shape if hasattr(y_pred, "shape")
                                   else np.shape(y_pred))


def _soft_spearman_structured(y_true, y_pred, *, regularization_strength=0.001,
                              regularization="l2", multioutput="uniform_average"):
    """soft_spearman's value and the structure of its gradient in y_pred."""
    return _soft_spearman(y_true, y_pred, regularization_strength, regularization,
                          multioutput, True)


@operator(main="y_pred", kind="metric", aligned=("y_true",), per_row=(),
          differentiable="y_pred", structured=_soft_spearman_structured)
def soft_spearman(y_true, y_pred, *, regularization_strength=0.001, regularization="l2",
                  multioutput="uniform_average"):
    """Soft (differentiable) Spearman rank correlation, scikit-learn style.

    For each output (column), the Pearson correlation between the hard,
    tie-averaged ranks of ``y_true`` (as ``scipy.stats.rankdata``) and the
    ascending soft ranks of ``y_pred`` (:func:`skrank.soft_rank`). The strength
    is relative to each column's spread, so the metric is scale-free.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Ground truth; only its order matters.
    y_pred : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Predictions. The metric is differentiable in them:
        ``skrank.vjp(soft_spearman, y_true, y_pred, argnums=1, ...)``.
    regularization_strength : float, default=0.001
        Relative strength ``s >= 0``: column ``j`` of ``y_pred`` is ranked with
        strength ``eps_j = s * std(y_pred[:, j])`` (population std, ``ddof=0``).
        0 gives the hard Spearman correlation. The smoothing grows with
        ``n_samples`` at a fixed ``s`` (see Notes): for large samples use 0 or a
        strength well below ``1 / n_samples``.
    regularization : {"l2", "kl"}, default="l2"
        Regularization of the soft ranks.
    multioutput : {"raw_values", "uniform_average"} or array-like of shape \
(n_outputs,), default="uniform_average"
        How to combine the outputs' correlations: return them all, average them,
        or average them with these (non-negative) weights.

    Returns
    -------
    score : float or ndarray of shape (n_outputs,)
        The correlation(s), in ``[-1, 1]``; an array with ``"raw_values"``. An
        output where ``y_true`` or ``y_pred`` is constant (in particular any
        output with a single sample) has no correlation: NaN, with a
        :class:`scipy.stats.ConstantInputWarning`, as
        :func:`scipy.stats.spearmanr`; averages over outputs then are NaN too.

    Warns
    -----
    scipy.stats.ConstantInputWarning
        When a column of ``y_true`` or ``y_pred`` is constant.

    See Also
    --------
    scipy.stats.spearmanr : The hard correlation, equal to strength 0.
    skrank.losses.spearman_loss : A training loss over rows, absolute strength.

    Notes
    -----
    What the strength means: the l2 soft rank pools sorted neighbours of
    ``y_pred`` whose gap is below ``eps`` (and blocks that then violate the order,
    in chains), and the ranks in a pooled block are affine in ``y_pred``. The
    typical gap between neighbours is a few standard deviations divided by ``n``,
    so the same ``s`` smooths more for larger ``n``. Measured on normally
    distributed predictions (``n`` from 100 to 100000): at ``s = 1 / n`` about a
    quarter of the gaps (24%) are below ``eps`` and about 44% of the samples lie
    in pooled blocks; at ``s = 10 / n`` every sample is in one block. Once every
    gap is pooled (l2, roughly ``s >~ 10 / n`` for normal-looking predictions;
    later for heavy-tailed ones), the soft ranks are affine in ``y_pred`` and the
    metric is the Pearson correlation of ``rankdata(y_true)`` with ``y_pred``
    itself: no longer a rank correlation, and no longer invariant to monotone
    transforms of ``y_pred`` (see the example with ``np.exp`` below: at ``n =
    1000`` the hard value is 1 for both ``y_pred = y_true`` and ``y_pred =
    exp(y_true)``, the fully smoothed one 0.972 and 0.734). The default 0.001
    is thus mild for ``n`` up to a few hundred and gives that limit from ``n``
    around 10000 on (0.01 = ``10 / n`` already at ``n = 1000``): for large
    ``n``, use strength 0 (``spearman_scorer`` for model selection) or a
    strength well below ``1 / n``. With "kl", low ranks are smoothed more than
    high ones. At strength 0 the value is ``scipy.stats.spearmanr``'s, bit for
    bit (computed as SciPy computes it), ties included in both arguments; as the
    strength grows the metric tends to the Pearson limit above (reached exactly
    with "l2" once every sample is pooled; beyond strengths of about ``1e6``
    rounding errors of order ``1e-16 * n * s`` show).

    Because ``eps`` depends on ``y_pred``, the gradient includes that
    dependence: with ``v`` the vector-Jacobian product of the soft ranks at
    fixed ``eps`` and ``zc = z - mean(z)``, the gradient of a column is
    ``v - (v . zc) zc / (n std(z)^2)``.

    Examples
    --------
    >>> import numpy as np, skrank
    >>> from skrank.metrics import soft_spearman
    >>> y_true, y_pred = [1., 2., 3., 4., 5.], [0.1, 0.4, 0.3, 0.9, 1.0]
    >>> round(soft_spearman(y_true, y_pred, regularization_strength=0.0), 6)
    0.9
    >>> round(soft_spearman(y_true, y_pred, regularization_strength=0.5), 6)
    0.931513
    >>> round(soft_spearman(y_true, y_pred, regularization_strength=5.0), 6)  # all pooled
    0.92972
    >>> round(float(np.corrcoef(y_true, y_pred)[0, 1]), 6)  # y_true's ranks are y_true here
    0.92972
    >>> y = np.random.default_rng(0).normal(size=1000)  # smoothing grows with n
    >>> for s in (0.0, 0.001, 0.01, 1.0):  # at 0.01 = 10 / n, y is fully pooled
    ...     print(s, round(soft_spearman(y, y, regularization_strength=s), 3),
    ...           round(soft_spearman(y, np.exp(y), regularization_strength=s), 3))
    0.0 1.0 1.0
    0.001 1.0 0.999
    0.01 0.972 0.781
    1.0 0.972 0.734
    >>> soft_spearman(np.c_[y_true, y_true], np.c_[y_pred, y_pred[::-1]],
    ...               regularization_strength=0.0, multioutput="raw_values")
    array([ 0.9, -0.9])
    >>> value, vjp_fn = skrank.vjp(soft_spearman, y_true, y_pred, argnums=1,
    ...                            regularization_strength=0.5)
    >>> vjp_fn(1.0).round(4)  # the gradient with respect to y_pred
    array([-0.0601, -0.4468,  0.4773, -0.1195,  0.1491])
    """
    return _soft_spearman(y_true, y_pred, regularization_strength, regularization,
                          multioutput, False)[0]


_SCORER_DOCS = {
    "soft_spearman_scorer": (
        "Scorer of :func:`soft_spearman` at its default strength (greater is better), "
        "for ``scoring=`` in GridSearchCV, cross_val_score and the like, alone or in a "
        "multi-metric dict."),
    "spearman_scorer": (
        "Scorer of the hard Spearman correlation, :func:`soft_spearman` at strength 0 "
        "(equal to scipy.stats.spearmanr; greater is better), for ``scoring=`` in "
        "GridSearchCV, cross_val_score and the like, alone or in a multi-metric dict."),
}


def __getattr__(name):
    # the scorers need scikit-learn, slow to import: make them on first access
    if name in ("soft_spearman_scorer", "spearman_scorer"):
        from sklearn.metrics import make_scorer

        kwargs = {"regularization_strength": 0.0} if name == "spearman_scorer" else {}
        globals()[name] = scorer = make_scorer(soft_spearman, **kwargs)
        scorer.__doc__ = _SCORER_DOCS[name]
        return scorer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
