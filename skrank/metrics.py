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

from . import _ops, _queries, _rows
from ._registry import operator

__all__ = ["kendall_scorer", "kendall_tau", "make_ndcg_scorer", "soft_ndcg",
           "soft_spearman", "soft_spearman_scorer", "spearman_scorer"]

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


def _check_strength(strength):
    if isinstance(strength, (bool, np.bool_)) or not isinstance(strength, numbers.Real):
        raise TypeError(f"regularization_strength must be a real number, got {strength!r}.")
    if not 0.0 <= float(strength) < np.inf:
        raise ValueError("regularization_strength must be finite and non-negative, got "
                         f"{strength!r}.")


def _check(y_true, y_pred, strength, regularization, multioutput):
    """Validated (T float64, Z, averaging weights or None for raw_values), arrays of
    y_pred's namespace (NumPy or CuPy: everything follows y_pred)."""
    _check_strength(strength)
    _ops._check_choice("regularization", regularization, tuple(_ops._REGULARIZERS))
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


# The strength's unit: the typical spacing between neighbouring values of y_pred, its
# interquartile range over the number of samples (where the IQR is 0, that of a normal
# with the same standard deviation, _IQR_PER_STD times it).
_IQR_PER_STD = _queries.IQR_PER_STD


def _spacings(Zs, sd, xp):
    """Per column, the IQR of Zs over n (np.quantile's linear interpolation), else
    _IQR_PER_STD * sd / n; with what the gradient needs: the order of Zs, the positions
    and interpolation weights of the quartiles, and which columns fell back."""
    n = Zs.shape[0]
    order = xp.argsort(Zs, axis=0)
    cols = xp.arange(Zs.shape[1])
    # (position in sorted order, weight in the IQR)
    pieces = [(int(k), float(w)) for k, w in _queries.quartile_pieces(n)]
    iqr = sum(w * Zs[order[k], cols] for k, w in pieces)
    fallback = ~(iqr > 0)
    spread = xp.where(fallback, _IQR_PER_STD * sd, iqr)
    return spread / n, (order, cols, pieces, fallback, spread)


class _GroupedStructure:
    """vjp of the mean over queries: the cotangent spread over the defined queries."""

    def __init__(self, gradient, defined, dtype):
        self.gradient, self.defined, self.dtype = gradient, defined, dtype

    def vjp(self, cotangent):
        g = np.asarray(cotangent)
        if g.dtype.kind not in "biuf" or g.shape != ():
            raise ValueError("the cotangent must be a real scalar (the value's shape), "
                             f"got {g!r}.")
        share = float(g) / max(int(self.defined.sum()), 1)
        return self.gradient(np.where(self.defined, share, 0.0)).astype(self.dtype)


def _grouped(y_true, y_pred, groups, multioutput, metric):
    """y_true, y_pred (1-D NumPy arrays) and the Queries of groups, validated."""
    if not (isinstance(multioutput, str) and multioutput == "uniform_average"):
        raise ValueError(f"{metric}: multioutput does not apply with groups (one output, "
                         "averaged over the queries).")
    if _ops._namespace(y_pred) is not np:
        raise TypeError(f"{metric} with groups takes NumPy arrays, got "
                        f"{type(y_pred).__name__}.")
    T = _as_columns(y_true, "y_true", np)
    Z = _as_columns(y_pred, "y_pred", np)
    if T.shape[1] != 1 or Z.shape[1] != 1:
        raise ValueError(f"{metric} with groups needs 1-D y_true and y_pred (one query id "
                         f"per sample), got shapes {np.shape(y_true)} and "
                         f"{np.shape(y_pred)}.")
    if len(T) != len(Z):
        raise ValueError("y_true and y_pred have inconsistent numbers of samples: "
                         f"{len(T)} and {len(Z)}.")
    if len(Z) == 0:
        raise ValueError(f"{metric} needs at least one sample, got none.")
    return T[:, 0], Z[:, 0], _queries.Queries(groups, len(Z))


def _soft_spearman(y_true, y_pred, strength, regularization, multioutput, with_gradient,
                   groups=None):
    if groups is not None:
        _check_strength(strength)
        _ops._check_choice("regularization", regularization, tuple(_ops._REGULARIZERS))
        t, z, queries = _grouped(y_true, y_pred, groups, multioutput, "soft_spearman")
        corr, defined, gradient = _queries.spearman_per_query(
            queries, t, z, float(strength), regularization, with_gradient)
        value = _queries.mean_over_defined(corr, defined, "soft_spearman")
        return value, (_GroupedStructure(gradient, defined, z.dtype) if with_gradient
                       else None)
    T, Z, weights = _check(y_true, y_pred, strength, regularization, multioutput)
    xp = _ops._namespace(Z)
    n = len(Z)
    strength = float(strength)
    # y_pred is scaled by a power of two per column (exact), to |values| < 1, so that
    # neither its sum nor its deviations overflow (y_pred = [1e308, 1.5e308, 1.7e308]
    # has an infinite sum), and the spacing cannot underflow (y_pred = 1e-310 * x); the
    # std's deviations are then divided by the largest one, so that their squares do
    # not underflow. The soft ranks depend on y_pred / eps only: ranking the scaled
    # values with the scaled strength is the same.
    _, e = xp.frexp(xp.abs(Z).max(axis=0).astype(np.float64))
    Zs = xp.ldexp(Z.astype(np.float64), -e)
    Zc = Zs - Zs.mean(axis=0)  # centred, float64, |Zc| < 2
    top = xp.abs(Zc).max(axis=0)
    sd = top * xp.sqrt(((Zc / xp.where(top > 0, top, 1.0)) ** 2).mean(axis=0))
    if strength == 0.0:  # hard ranks of y_pred itself (scipy's ties, bit for bit)
        R = _ops._forward("rank", Z, 0.0, "l2", "ascending", 0, "raise", False)[0]
        structure = None
    else:
        spacing, quartiles = _spacings(Zs, sd, xp)
        with np.errstate(over="ignore"):  # an overflowing strength: constant ranks, NaN
            eps = _rows.host(xp.minimum(strength * spacing, np.finfo(np.float64).max))
        R, structure = _ops._forward("rank", Zs, eps, regularization, "ascending", 0,
                                     "raise", keep_structure=with_gradient)
    # hard (tie-averaged) ranks of y_true
    A = _ops._forward("rank", T, 0.0, "l2", "ascending", 0, "raise", False)[0]
    hard_true, hard_pred = A, R
    A = A - A.mean(axis=0)
    B = R - R.mean(axis=0, dtype=np.float64)
    na, nb = xp.sqrt((A * A).sum(axis=0)), xp.sqrt((B * B).sum(axis=0))
    ok = (na > 0) & (nb > 0) & (sd > 0)
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
    # d corr / d R at fixed strength, then through the soft ranks' kept structure (in
    # the scaled units: times 2^-e per column for y_pred's own)
    g = A / denom - corr * B / xp.where(ok, nb * nb, np.nan)
    if structure is None:  # strength 0: piecewise constant ranks, zero gradient
        D = xp.where(ok, 0.0 * g, np.nan)
    else:
        v = structure.vjp(g)
        # eps = strength * spread / n depends on y_pred: soft_rank(z, eps) = R(z / eps)
        # gives grad = v - (v . z) grad(spread) / spread (v sums to 0 per column, so z
        # may be centred); grad(spread) is the IQR's quartile weights, or for the
        # std fallback _IQR_PER_STD zc / (n std)
        order, cols, pieces, fallback, spread = quartiles
        alpha = (v * Zc).sum(axis=0) / xp.where(spread > 0, spread, 1.0)  # 0: NaN below
        D = v - xp.where(fallback, alpha, 0.0) * _IQR_PER_STD * Zc / (
            n * xp.where(sd > 0, sd, 1.0))
        kept = xp.where(fallback, 0.0, alpha)
        for k, w in pieces:
            rows = order[k]
            D[rows, cols] = D[rows, cols] - kept * w
        D = xp.where(ok, xp.ldexp(D, -e), np.nan)
    D = D.astype(Z.dtype, copy=False)
    return value, _MetricStructure(D, weights, y_pred.shape if hasattr(y_pred, "shape")
                                   else np.shape(y_pred))


def _soft_spearman_structured(y_true, y_pred, *, regularization_strength=0.5,
                              regularization="l2", multioutput="uniform_average",
                              groups=None):
    """soft_spearman's value and the structure of its gradient in y_pred."""
    return _soft_spearman(y_true, y_pred, regularization_strength, regularization,
                          multioutput, True, groups)


@operator(main="y_pred", kind="metric", aligned=("y_true",), per_row=(),
          differentiable="y_pred", structured=_soft_spearman_structured)
def soft_spearman(y_true, y_pred, *, regularization_strength=0.5, regularization="l2",
                  multioutput="uniform_average", groups=None):
    """Soft (differentiable) Spearman rank correlation, scikit-learn style.

    For each output (column), the Pearson correlation between the hard,
    tie-averaged ranks of ``y_true`` (as ``scipy.stats.rankdata``) and the
    ascending soft ranks of ``y_pred`` (:func:`skrank.soft_rank`). The strength
    is measured in units of the typical spacing between neighbouring values of
    ``y_pred``, so the metric is scale-free and means the same at any number of
    samples.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Ground truth; only its order matters.
    y_pred : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Predictions. The metric is differentiable in them:
        ``skrank.vjp(soft_spearman, y_true, y_pred, argnums=1, ...)``.
    regularization_strength : float, default=0.5
        Relative strength ``s >= 0``: column ``j`` of ``y_pred`` is ranked with
        strength ``eps_j = s * IQR(y_pred[:, j]) / n_samples``, the interquartile
        range (``np.quantile``'s linear interpolation) over the number of samples,
        about the spacing of neighbouring values in the middle of the data (where
        the IQR is 0, ``1.349 * std``, the IQR of a normal with that std). 0 gives
        the hard Spearman correlation. The default pools about a third of the
        samples into blocks of near-equal predictions, at any ``n_samples``, and
        stays within 0.002 of the hard value on continuous predictions (see
        Notes).
    regularization : {"l2", "kl", "p4/3", "p3/2"}, default="l2"
        Regularization of the soft ranks, as for :func:`skrank.soft_rank`.
    multioutput : {"raw_values", "uniform_average"} or array-like of shape \
(n_outputs,), default="uniform_average"
        How to combine the outputs' correlations: return them all, average them,
        or average them with these (non-negative) weights.
    groups : array-like of shape (n_samples,), optional
        A query id per sample (long-format learning-to-rank data; NumPy arrays,
        1-D ``y_true`` and ``y_pred``): the correlation is computed within each
        query, with the strength relative to that query's spacing, and averaged
        over the queries where it is defined (see :ref:`grouped_metrics`). A query
        with a single document, or with constant ``y_true`` or ``y_pred``, is left
        out; when none is left the result is NaN, with a ``RuntimeWarning``.
        Differentiable too (``skrank.vjp(..., groups=...)``).

    Returns
    -------
    score : float or ndarray of shape (n_outputs,)
        The correlation(s), in ``[-1, 1]``; an array with ``"raw_values"``. An
        output where ``y_true`` or ``y_pred`` is constant (in particular any
        output with a single sample) has no correlation: NaN, with a
        :class:`scipy.stats.ConstantInputWarning`, as
        :func:`scipy.stats.spearmanr`; averages over outputs then are NaN too.
        With ``groups``, the mean over the queries.

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
    in chains), and the ranks in a pooled block are affine in ``y_pred``. Sorted
    neighbours of ``n`` values are about ``1 / (n f(y))`` apart where their density
    is ``f``: ``IQR / n`` is about half the spacing in the middle of a normal
    sample, and the same ``s`` pools the same share of the samples at every ``n``.
    Measured on predictions ``y_true + noise`` (normal, Student t with 3 degrees of
    freedom, uniform noise; ``n`` from 100 to 1,000,000): at ``s = 0.5`` 30-37% of
    the samples lie in pooled blocks and the soft and hard correlations differ by
    at most 0.0011; at ``s = 1``, 52-60% and 0.0019; at ``s = 2``, 80-85% and
    0.0067 (the largest differences at ``n = 100``). A large strength pools
    everything: the soft ranks are then affine in ``y_pred`` and the metric is
    the Pearson correlation of ``rankdata(y_true)`` with ``y_pred`` itself, no
    longer invariant to monotone transforms of ``y_pred``.

    When to use it rather than the hard correlation (``spearman_scorer``): to
    train or tune through it (its gradient is informative: the pooled samples
    carry it), or when ``y_pred`` has near-ties whose order is noise. For model
    selection alone the hard correlation is the reference, and the default keeps
    the two within a few thousandths. With "kl", low ranks are smoothed more than
    high ones. At strength 0 the value is ``scipy.stats.spearmanr``'s, bit for bit
    (computed as SciPy computes it), ties included in both arguments.

    Because ``eps`` depends on ``y_pred``, the gradient includes that
    dependence: with ``v`` the vector-Jacobian product of the soft ranks at
    fixed ``eps``, the gradient of a column is ``v - (v . z) grad(IQR) / IQR``,
    where ``grad(IQR)`` is the quartiles' interpolation weights (nonzero on at
    most four samples).

    Examples
    --------
    >>> import numpy as np, skrank
    >>> from skrank.metrics import soft_spearman
    >>> y_true, y_pred = [1., 2., 3., 4., 5.], [0.1, 0.4, 0.3, 0.9, 1.0]
    >>> round(soft_spearman(y_true, y_pred, regularization_strength=0.0), 6)
    0.9
    >>> round(soft_spearman(y_true, y_pred, regularization_strength=2.0), 6)
    0.932139
    >>> round(soft_spearman(y_true, y_pred, regularization_strength=5.0), 6)  # all pooled
    0.92972
    >>> round(float(np.corrcoef(y_true, y_pred)[0, 1]), 6)  # y_true's ranks are y_true here
    0.92972
    >>> rng = np.random.default_rng(0)  # the default means the same at any n
    >>> for n in (100, 10_000, 1_000_000):
    ...     y = rng.normal(size=n)
    ...     y_noisy = y + 0.5 * rng.normal(size=n)
    ...     print(n, round(soft_spearman(y, y_noisy), 4),
    ...           round(soft_spearman(y, y_noisy, regularization_strength=0.0), 4))
    100 0.9044 0.9041
    10000 0.886 0.886
    1000000 0.886 0.886
    >>> soft_spearman(np.c_[y_true, y_true], np.c_[y_pred, y_pred[::-1]],
    ...               regularization_strength=0.0, multioutput="raw_values")
    array([ 0.9, -0.9])
    >>> value, vjp_fn = skrank.vjp(soft_spearman, y_true, y_pred, argnums=1,
    ...                            regularization_strength=5.0)
    >>> vjp_fn(1.0).round(4)  # the gradient with respect to y_pred
    array([-0.14  , -0.1915,  0.3646, -0.1427,  0.1096])
    """
    return _soft_spearman(y_true, y_pred, regularization_strength, regularization,
                          multioutput, False, groups)[0]


def soft_ndcg(y_true, y_pred, *, k=None, groups=None, regularization_strength=0.0,
              regularization="l2", gains="linear"):
    """Normalized discounted cumulative gain at k, hard or soft, optionally per query.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Non-negative relevances.
    y_pred : array-like of shape (n_samples,)
        Scores; the documents are ranked by decreasing score.
    k : int, optional
        Only the top ``k`` positions of each query count (None: all).
    groups : array-like of shape (n_samples,), optional
        A query id per sample: NDCG@k within each query, averaged over the queries
        where it is defined (two documents at least, neither side constant; see
        :ref:`grouped_metrics`). None: one query, all the samples.
    regularization_strength : float, default=0.0
        0 gives scikit-learn's NDCG (:func:`sklearn.metrics.ndcg_score`, tied scores
        sharing their gains). A positive strength gives the soft NDCG of
        :func:`skrank.losses.ndcg_loss` (soft ranks and a soft top-k cutoff), with the
        strength relative to each query's spacing, ``IQR / n_documents``, as
        :func:`soft_spearman`'s.
    regularization : {"l2", "kl", "p4/3", "p3/2"}, default="l2"
        Regularization of the soft ranks, as for :func:`skrank.soft_rank`.
    gains : {"linear", "exponential"}, default="linear"
        Gain ``y_true`` (as scikit-learn) or ``2 ** y_true - 1``.

    Returns
    -------
    score : float
        In ``[0, 1]``; at strength 0 the mean over the queries of
        ``sklearn.metrics.ndcg_score`` of each (with ``2 ** y_true - 1`` as
        ``y_true`` for "exponential"). NaN, with a ``RuntimeWarning``, when no query
        is defined.

    See Also
    --------
    sklearn.metrics.ndcg_score : The hard NDCG, queries as rows of a 2-D array.
    skrank.losses.ndcg_loss : One minus the soft NDCG, differentiable, for training.

    Examples
    --------
    >>> from skrank.metrics import soft_ndcg
    >>> y_true = [3, 2, 0, 1, 0, 1, 2]
    >>> y_pred = [0.9, 0.1, 0.3, 0.2, 0.5, 0.4, 0.1]
    >>> groups = [0, 0, 0, 0, 1, 1, 1]
    >>> round(soft_ndcg(y_true, y_pred, groups=groups), 4)
    0.7679
    >>> round(soft_ndcg(y_true, y_pred, groups=groups, k=2), 4)
    0.4719
    """
    _check_strength(regularization_strength)
    _ops._check_choice("regularization", regularization, tuple(_ops._REGULARIZERS))
    if not isinstance(gains, str) or gains not in ("linear", "exponential"):
        raise ValueError(f"gains must be 'linear' or 'exponential', got {gains!r}.")
    if k is not None and (isinstance(k, (bool, np.bool_))
                          or not isinstance(k, numbers.Integral) or k < 1):
        raise ValueError(f"k must be a positive integer or None, got {k!r}.")
    t, z, queries = _grouped(y_true, y_pred, np.zeros(np.shape(y_pred)[0], dtype=int)
                             if groups is None else groups, "uniform_average", "soft_ndcg")
    return _queries.ndcg_mean(queries, t, z, None if k is None else int(k),
                              float(regularization_strength), regularization, gains)


def kendall_tau(y_true, y_pred, *, groups=None):
    """Kendall's tau-b rank correlation, scikit-learn style, optionally per query.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Ground truth; only its order matters.
    y_pred : array-like of shape (n_samples,)
        Predictions.
    groups : array-like of shape (n_samples,), optional
        A query id per sample: tau-b within each query, averaged over the queries
        where it is defined (two documents at least, neither side constant; see
        :ref:`grouped_metrics`). None: one query, all the samples.

    Returns
    -------
    score : float
        In ``[-1, 1]``; equal to ``scipy.stats.kendalltau(...).statistic`` (per
        query). NaN, with a ``RuntimeWarning``, when no query is defined.

    See Also
    --------
    scipy.stats.kendalltau : The same statistic, for one query.
    soft_spearman : Spearman's correlation, hard or soft.

    Examples
    --------
    >>> from skrank.metrics import kendall_tau
    >>> y_true = [3, 2, 1, 1, 2, 3]
    >>> y_pred = [0.9, 0.5, 0.1, 0.2, 0.3, 0.1]
    >>> round(kendall_tau(y_true, y_pred), 4)
    0.3858
    >>> round(kendall_tau(y_true, y_pred, groups=[0, 0, 0, 1, 1, 1]), 4)  # 1 and -1/3
    0.3333
    """
    t, z, queries = _grouped(y_true, y_pred, np.zeros(np.shape(y_pred)[0], dtype=int)
                             if groups is None else groups, "uniform_average",
                             "kendall_tau")
    tau, defined = _queries.kendall_per_query(queries, t, z)
    return _queries.mean_over_defined(tau, defined, "kendall_tau")


_SCORER_DOCS = {
    "soft_spearman_scorer": (
        "Scorer of :func:`soft_spearman` at its default strength (greater is better), "
        "for ``scoring=`` in GridSearchCV, cross_val_score and the like, alone or in a "
        "multi-metric dict. It requests ``groups`` through metadata routing: per query "
        "when routing is enabled and ``groups`` is passed to ``fit``."),
    "spearman_scorer": (
        "Scorer of the hard Spearman correlation, :func:`soft_spearman` at strength 0 "
        "(equal to scipy.stats.spearmanr; greater is better), for ``scoring=`` in "
        "GridSearchCV, cross_val_score and the like, alone or in a multi-metric dict. "
        "It requests ``groups`` through metadata routing: per query when routing is "
        "enabled and ``groups`` is passed to ``fit``."),
    "kendall_scorer": (
        "Scorer of :func:`kendall_tau` (greater is better), for ``scoring=`` in "
        "GridSearchCV and the like. It requests ``groups`` through metadata routing: per "
        "query when routing is enabled and ``groups`` is passed to ``fit``."),
}


def _requesting_groups(scorer):
    """The scorer, requesting ``groups`` for its score (what ``set_score_request(
    groups=True)`` does, which scikit-learn allows only while routing is enabled):
    routed to it when routing is enabled, ignored otherwise."""
    from sklearn.utils.metadata_routing import MetadataRequest

    request = MetadataRequest(owner=scorer)
    request.score.add_request(param="groups", alias=True)
    scorer._metadata_request = request
    return scorer


def make_ndcg_scorer(k=None, *, regularization_strength=0.0, gains="linear"):
    """A scorer of :func:`soft_ndcg` at ``k`` (greater is better), for ``scoring=`` in
    GridSearchCV and the like.

    It requests ``groups`` through metadata routing: per query when routing is enabled
    and ``groups`` is passed to ``fit`` (otherwise a fold is one query).

    Parameters
    ----------
    k : int, optional
        The cutoff (None: all positions).
    regularization_strength : float, default=0.0
        0: scikit-learn's NDCG; positive: the soft NDCG (see :func:`soft_ndcg`).
    gains : {"linear", "exponential"}, default="linear"
        The gains of the relevances.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y, groups=None)``.

    Examples
    --------
    >>> from skrank.metrics import make_ndcg_scorer
    >>> scorer = make_ndcg_scorer(k=10)
    >>> scorer.get_metadata_routing().score.requests
    {'groups': True}
    """
    from sklearn.metrics import make_scorer

    soft_ndcg(np.arange(2.0), np.arange(2.0), k=k, gains=gains,
              regularization_strength=regularization_strength)  # check the options now
    return _requesting_groups(make_scorer(
        soft_ndcg, k=k, regularization_strength=regularization_strength, gains=gains))


def __getattr__(name):
    # the scorers need scikit-learn, slow to import: make them on first access
    if name in _SCORER_DOCS:
        from sklearn.metrics import make_scorer

        if name == "kendall_scorer":
            scorer = make_scorer(kendall_tau)
        else:
            kwargs = {"regularization_strength": 0.0} if name == "spearman_scorer" else {}
            scorer = make_scorer(soft_spearman, **kwargs)
        globals()[name] = scorer = _requesting_groups(scorer)
        scorer.__doc__ = _SCORER_DOCS[name]
        return scorer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
