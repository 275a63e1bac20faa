"""Robust linear regression by soft least trimmed squares.

The hard least-trimmed-squares objective keeps the ``h`` smallest squared residuals.
Written as a linear program over the capped simplex and regularised with
``eps / 2 ||y||^2``, it becomes a C^1 function of the coefficients whose gradient
is exact and costs one soft top-k mask (one sort and pool-adjacent-violators):

    L_eps(beta) = (1/h) * min_{y in P(w)} (<y, l> + eps/2 ||y||^2),
    l_i = (y_i - x_i beta - b)^2,   w = (1, ..., 1, 0, ..., 0)  (h ones),

    y* = soft_topk_mask(-l, h, regularization_strength=eps),
    dL/dl = y* / h  (Danskin).

Only losses within about ``eps`` of the trimming boundary are weighted softly; a gross
outlier gets weight exactly 0 at every strength.
"""

import math
import sys
import time
import warnings
from numbers import Integral, Real

import numpy as np
from scipy import optimize
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.random import sample_without_replacement
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import ThreadpoolController

from ._stats import soft_topk_mask

__all__ = ["SoftTrimmedRegressor"]

# ----------------------------------------------------------------- the fit's knobs --
# Robust starts (FAST-LTS, Rousseeuw & Van Driessen 2006): _N_STARTS random elemental
# subsets and two deterministic starts, each refined by _N_SEED_CSTEPS C-steps on the
# whole sample; the _N_KEEP best are iterated to a C-step fixed point (at most
# _MAX_CSTEPS steps) and the best of those seeds the descent. Random elemental starts
# alone need about log(0.01) / log(1 - (1 - contamination)^n_params) draws to include a
# clean one with 99% probability (about 500 for 20% and 21 parameters); the
# deterministic start on the least outlying rows of X covers far bad leverage points,
# the least-squares start plus C-steps far vertical outliers.
_N_STARTS = 30
_N_SEED_CSTEPS = 2
_N_KEEP = 5
_MAX_CSTEPS = 100
# Continuation: requested strengths below _CONTINUATION_START are reached through the
# stages _CONTINUATION_START, _CONTINUATION_START / _CONTINUATION_FACTOR, ... (each
# L-BFGS-B run warm-started from the previous one).
_CONTINUATION_START = 10.0
_CONTINUATION_FACTOR = 10.0
# s2 is never taken below (_S2_FLOOR * robust spread of y)^2: an exact fit of half the
# sample must not make the internal units (residual scale 1) degenerate.
_S2_FLOOR = 1e-7
# Squared residuals are capped at _LOSS_CAP (in the internal units: about 1 for a
# typical inlier): the square of a residual beyond about 1e154 (gross outliers, far
# leverage points, bad trial points of the optimiser) would overflow. A capped loss
# (a residual beyond 1e125 residual scales) is constant (zero derivative) and, far
# beyond the trimming boundary, gets weight exactly 0, so the cap changes nothing for
# gross outliers (only strengths near _LOSS_CAP itself would see it). n * _LOSS_CAP
# stays finite, so sums of losses do too.
_LOSS_CAP = 1e250
# Standardised values (features and target, in robust spreads from the median) are
# clipped at _VALUE_CAP: beyond it they would overflow float64 once divided by a small
# spread or by the residual scale (at least _S2_FLOOR), and such a point is far out in
# any case (its loss is capped, see _LOSS_CAP).
_VALUE_CAP = 1e300
# Standardised features are clipped at this magnitude where only their outlyingness
# matters (the deterministic low-leverage start), so that their squares stay finite.
_OUTLYING_CAP = 1e100


_THREADPOOLS = None


def _one_blas_thread():
    """Limit BLAS to one thread: the fit makes thousands of tiny BLAS/LAPACK calls
    (L-BFGS-B's own, small solves, matrix-vector products), where waking a thread pool
    costs far more than it saves (a scikit-learn dependency; KMeans does the same)."""
    global _THREADPOOLS
    if _THREADPOOLS is None:
        _THREADPOOLS = ThreadpoolController()
    return _THREADPOOLS.limit(limits=1, user_api="blas")


def _robust_scale(a, center):
    """Column-wise 1.4826 * MAD around center; std where that is 0; else max |a - c|;
    else 1 (a constant column). A deviation beyond the float64 range counts as inf."""
    with np.errstate(over="ignore"):
        dev = np.abs(a - center)
    scale = 1.482602218505602 * np.median(dev, axis=0)
    scale = np.asarray(scale, dtype=np.float64)
    bad = ~(scale > 0)
    if bad.any():
        # the root mean square, formed relative to the largest deviation: the squares
        # of raw deviations overflow from about 1e154 and underflow below 1e-154
        top = np.max(dev, axis=0)
        with np.errstate(invalid="ignore"):  # inf / inf: NaN, then max |a - c| or 1
            alt = top * np.sqrt(np.mean((dev / np.where(top > 0, top, 1.0)) ** 2,
                                        axis=0))
        scale = np.where(bad, alt, scale)
        bad = ~(scale > 0) | ~np.isfinite(scale)
        if bad.any():
            scale = np.where(bad, np.max(dev, axis=0), scale)
            scale = np.where(~(scale > 0) | ~np.isfinite(scale), 1.0, scale)
    return scale


# overflow where the code below expects it (far outliers, far leverage points, bad
# trial points of the optimiser): the results are capped or handled, silently
def _overflow_handled():
    return np.errstate(over="ignore", invalid="ignore")


def _residuals_and_losses(Z, y, w):
    """Residuals y - Z w and losses min(r^2, _LOSS_CAP); where the loss is capped (or
    the residual overflowed) the residual is returned as 0: the capped loss does not
    depend on w. Call it under _overflow_handled()."""
    r = y - Z @ w
    loss = r * r
    capped = ~(loss < _LOSS_CAP)  # also NaN (inf - inf)
    if capped.any():
        loss[capped] = _LOSS_CAP
        r[capped] = 0.0
    return r, loss


def _soft_lts_objective(w, Z, y, h, eps, penalty, with_constant=True,
                        for_optimizer=False):
    """Value and gradient of the soft LTS objective at parameters w.

    ``Z`` is the design matrix (the features, then a column of ones when there is an
    intercept), ``penalty`` one ridge weight per column of Z (0 for the intercept):

        L = (1/h) (<y*, l> + eps/2 ||y*||^2) + sum_j penalty_j w_j^2,
        grad = -(2/h) Z^T (y* * r) + 2 penalty * w.

    Since sum(y*) = h, ||y*||^2 = ||y* - h/n||^2 + h^2/n: the constant eps h / (2n)
    is left out when ``with_constant`` is false (it would swamp the relative
    tolerances of the optimiser at large strengths), and the rest is computed in the
    cancellation-free form. Returns (value, gradient, y*, losses), or only (value,
    gradient) ``for_optimizer``. Losses are capped at ``_LOSS_CAP`` (see there).
    """
    n = y.shape[0]
    with _overflow_handled():
        r, loss = _residuals_and_losses(Z, y, w)
        if h == n:  # no trimming: P(w) is the single point (1, ..., 1)
            mask = np.ones(n)
        else:
            mask = soft_topk_mask(-loss, h, regularization_strength=eps)
        value = mask @ loss
        if eps > 0:
            value += 0.5 * eps * np.sum((mask - h / n) ** 2)
            if with_constant:
                value += 0.5 * eps * h * h / n
        value = value / h + np.sum(penalty * w * w)
        grad = Z.T @ (mask * r) * (-2.0 / h) + 2.0 * penalty * w
    if for_optimizer:
        return value, grad
    return value, grad, mask, loss


def _stages(strength, no_trimming):
    """The continuation schedule ending at the requested strength: geometric from
    _CONTINUATION_START down; strength 0 ends with the stages down to 1e-3, then 0
    (C-steps). Without trimming the objective does not depend on the strength."""
    if no_trimming:
        return [strength]
    lowest = strength if strength > 0 else 1e-3
    stages = [lowest]
    while stages[-1] * _CONTINUATION_FACTOR <= _CONTINUATION_START * (1 + 1e-9):
        stages.append(stages[-1] * _CONTINUATION_FACTOR)
    return stages[::-1] + ([0.0] if strength == 0 else [])


def _ridge_solve(A, b, ridge):
    """argmin ||A w - b||^2 + sum ridge_j w_j^2 via the (small) normal equations;
    the minimum-norm solution when they are singular. When the normal equations
    overflow (rows of A or entries of b beyond about 1e154, e.g. far bad leverage
    points), least squares on the stacked system [A; sqrt(ridge)], [b; 0] instead
    (LAPACK scales it; nothing is squared)."""
    with _overflow_handled():
        G = A.T @ A
        G[np.diag_indices_from(G)] += ridge
        c = A.T @ b
    if not (np.isfinite(G).all() and np.isfinite(c).all()):
        A_ridge = np.vstack([A, np.diag(np.sqrt(ridge))])
        return np.linalg.lstsq(A_ridge, np.r_[b, np.zeros(A.shape[1])], rcond=None)[0]
    try:
        L = np.linalg.cholesky(G)
        d = np.diagonal(L)
        if d.min() > 1e-7 * d.max():  # well enough conditioned (cond(G) < 1e14)
            return np.linalg.solve(L.T, np.linalg.solve(L, c))
    except np.linalg.LinAlgError:
        pass
    return np.linalg.lstsq(G, c, rcond=None)[0]


def _hard_objective(Z, y, w, h, penalty):
    """Hard LTS objective (mean of the h smallest squared residuals) + ridge, and the
    indices of those h samples."""
    with _overflow_handled():
        _, loss = _residuals_and_losses(Z, y, w)
        n = loss.shape[0]
        idx = np.arange(n) if h >= n else np.argpartition(loss, h - 1)[:h]
        return loss[idx].mean() + np.sum(penalty * w * w), idx


def _csteps(Z, y, w, h, penalty, n_steps):
    """At most n_steps concentration steps (Rousseeuw & Van Driessen 2006) from w:
    refit (ridge) least squares on the h samples with the smallest losses, until the
    hard objective stops decreasing (a fixed point). Returns (w, objective, steps
    computed, whether a fixed point was reached)."""
    obj, idx = _hard_objective(Z, y, w, h, penalty)
    ridge = h * penalty
    for step in range(n_steps):
        w_new = _ridge_solve(Z[idx], y[idx], ridge)
        obj_new, idx_new = _hard_objective(Z, y, w_new, h, penalty)
        if not obj_new < obj:  # a fixed point (or no progress in floating point)
            return w, obj, step + 1, True
        w, obj, idx = w_new, obj_new, idx_new
    return w, obj, n_steps, False


def _times_scale_squared(value, scale):
    """value * scale^2 for value >= 0 as a Python float, formed as (sqrt(value) *
    scale)^2: inf when the result overflows, 0.0 when it underflows; no warning, no
    OverflowError (which float ** 2 raises)."""
    root = math.sqrt(float(value)) * float(scale)
    return root * root


class SoftTrimmedRegressor(RegressorMixin, BaseEstimator):
    """Robust linear regression by soft least trimmed squares.

    Least trimmed squares (LTS) fits a linear model to the ``h`` samples with the
    smallest squared residuals and ignores the other ``floor(trim_fraction *
    n_samples)``. This estimator minimises a smoothed LTS objective whose trimming
    weights are a soft top-k mask (Blondel et al., 2020): it is continuously
    differentiable, its gradient is exact and costs one sort, and a gross outlier
    still gets weight exactly 0. The strength interpolates between hard LTS
    (``regularization_strength -> 0``) and least squares (``-> inf``).

    Parameters
    ----------
    trim_fraction : float, default=0.25
        Fraction of the samples trimmed, in ``[0, 0.5]``: the ``floor(trim_fraction *
        n_samples)`` samples with the largest losses are left out, and the objective
        averages the ``h = n_samples - floor(trim_fraction * n_samples)`` others.
        Choose it at least as large as the expected fraction of outliers. When ``h``
        leaves no room for trimming (``h <= n_params``, the number of coefficients
        plus the intercept), the whole sample is kept (``h = n_samples``).

    regularization_strength : float, default=1.0
        Strength ``s >= 0`` of the regularisation, relative to the squared-residual
        scale ``s2`` (see ``loss_scale_``): the mask's strength in loss units is
        ``eps = s * s2``. Losses within about ``eps`` of the trimming boundary share
        the weights softly; losses beyond it by more than that get weight exactly 0.
        The default softens the boundary over about one typical squared residual:
        smooth enough for L-BFGS-B, and as robust as hard LTS to outliers a few
        residual scales out. ``0`` is hard LTS (the descent then ends with C-steps);
        a large value tends to least squares on the whole sample.

    fit_intercept : bool, default=True
        Whether to fit an intercept (not penalised).

    alpha : float, default=0.0
        Ridge penalty on ``coef_``: the objective is ``L_eps + alpha *
        ||coef_||^2`` with ``L_eps`` a mean over ``h`` samples (see Notes). At a
        large strength the fit equals ``Ridge(alpha=n_samples * alpha)``; at strength
        0 it is ``Ridge(alpha=h * alpha)`` on the ``h`` kept samples. A feature whose
        penalty in standardised units, ``alpha / scale^2`` (``scale`` its robust
        spread), exceeds the float64 range gets coefficient 0: the infinite-penalty
        limit.

    max_iter : int, default=500
        Maximum number of L-BFGS-B iterations, over all continuation stages together
        (a stage that stops at its starting point counts one; at strength 0, the
        final C-steps count too). A :class:`~sklearn.exceptions.ConvergenceWarning`
        is raised when they run out before the last stage has converged.

    tol : float, default=1e-6
        L-BFGS-B stops when every component of the projected gradient is at most
        ``tol``. The gradient is taken in internal units: features robustly
        standardised (median, MAD) and the objective divided by ``s2``, so ``tol``
        is relative to the noise level and does not depend on the units of X or y.
        (The relative-decrease test of L-BFGS-B is set to ``tol ** 2`` so that the
        gradient test decides.)

    random_state : int, RandomState instance or None, default=None
        Draws the elemental subsets of the robust starts. Pass an int for
        reproducible fits.

    verbose : int, default=0
        Print the progress of the fit (starts, stages) when positive.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        Coefficients, in the units of the input (inf, with a RuntimeWarning, in the
        unlikely case that they overflow float64 there).

    intercept_ : float
        Intercept; 0.0 when ``fit_intercept=False``.

    n_iter_ : int
        L-BFGS-B iterations used, counted as for ``max_iter``; the C-steps of the
        robust starts are not counted.

    inlier_mask_ : ndarray of shape (n_samples,), dtype=bool
        True for the ``h`` samples with the smallest squared residuals at the
        solution (ties broken by sample order): the samples hard LTS would keep.

    weights_ : ndarray of shape (n_samples,)
        The soft trimming weights ``y*`` at the solution: in ``[0, 1]``, summing to
        ``h``; exactly 0 on samples whose loss is beyond the trimming boundary by more
        than about ``eps``.

    loss_scale_ : float
        The squared-residual scale ``s2`` that the strength is relative to: the
        median of the squared residuals at the best robust start (floored at
        ``(1e-7 * robust spread of y)^2``), held fixed during the descent. It is
        computed in standardised units and reported in the units of y squared,
        rounded to float64: ``inf`` when it exceeds the float64 range (a residual
        scale above about ``1.3e154``), and the smallest positive float
        (``5e-324``) when it is below it (a residual scale below about
        ``2e-162``), so that it is always positive. The fit itself does not depend
        on this rounding.

    n_features_in_ : int
        Number of features seen during :term:`fit`.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`. Defined only when `X`
        has feature names that are all strings.

    See Also
    --------
    sklearn.linear_model.HuberRegressor : Robust to outliers in y, not to bad
        leverage points.
    sklearn.linear_model.RANSACRegressor : Consensus of random subsets.
    sklearn.linear_model.TheilSenRegressor : Spatial median of subset fits.
    skrank.soft_topk_mask : The soft trimming weights.

    Notes
    -----
    With residuals ``r_i = y_i - x_i coef - b`` and losses ``l_i = r_i^2``, the
    estimator minimises

    ``L_eps(coef, b) = (1/h) min_{y in P(w)} (<y, l> + eps/2 ||y||^2) +
    alpha ||coef||^2``,

    where ``P(w)`` is the capped simplex ``{y in [0, 1]^n, sum(y) = h}``. The inner
    minimiser is the soft top-h mask of ``-l``, ``y* = soft_topk_mask(-l, h,
    regularization_strength=eps)``, and by Danskin's theorem the gradient is
    ``-(2/h) X^T (y* r) + 2 alpha coef`` (and ``-(2/h) sum(y* r)`` for the
    intercept). ``eps = regularization_strength * s2`` with ``s2`` the median of the
    squared residuals at the best robust start, fixed before the descent (so that
    the objective does not move under the optimiser, and rescaling y rescales the
    fit). At ``eps = 0`` this is LTS (Rousseeuw, 1984); as ``eps -> inf``,
    ``y* -> h/n`` and it is least squares.

    The fit is computed in robustly standardised units, so it is equivariant to the
    scales of X and y over the whole float64 range. There, squared residuals are
    capped at ``1e250`` times ``s2`` (times y's squared robust spread during the
    robust starts; the square of a residual beyond about ``1e154`` such scales
    would overflow): a capped loss is constant and, far beyond the trimming
    boundary, gets weight exactly 0, so gross outliers of any finite size are
    trimmed as the others are (only a strength near ``1e250`` would see the cap).
    Values of X or y beyond ``1e300`` robust spreads from the median are clipped
    there.

    The objective is not convex. Robust starts, as FAST-LTS [2]_ does: 30 random
    elemental subsets (``n_params`` samples, fitted exactly) and two deterministic
    starts (least squares on all samples, and on the ``h`` samples least outlying in
    X, which guards against bad leverage points), each refined by two C-steps
    (least squares on the ``h`` smallest losses); the best five are iterated to
    C-step fixed points and the best of those seeds the descent and fixes ``s2``.
    The descent is continuation in the strength: L-BFGS-B at the strengths 10, 1,
    0.1, ... down to the requested one (just the requested one from 10 up), each run
    warm-started from the previous; strength 0 goes down to 0.001, then C-steps to
    a fixed point. The returned coefficients are a stationary point of ``L_eps`` at
    the requested strength (C-steps only seed it); like every LTS algorithm, the
    fit does not guarantee the global minimum.

    There is no ``sample_weight``: a weighted trimming (which fraction of the
    weight to trim, and how to split a sample's weight at the boundary) is not
    defined yet.

    References
    ----------
    .. [1] P. J. Rousseeuw, "Least Median of Squares Regression", Journal of the
       American Statistical Association 79(388), 871-880, 1984.
    .. [2] P. J. Rousseeuw and K. Van Driessen, "Computing LTS Regression for
       Large Data Sets", Data Mining and Knowledge Discovery 12, 29-45, 2006.
    .. [3] M. Blondel, O. Teboul, Q. Berthet and J. Djolonga, "Fast Differentiable
       Sorting and Ranking", ICML 2020, arXiv:2002.08871.

    Examples
    --------
    >>> import numpy as np
    >>> from skrank.linear_model import SoftTrimmedRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 2))
    >>> y = X @ [2.0, -1.0] + 0.5 + 0.1 * rng.normal(size=200)
    >>> y[:40] += 20.0  # 20% gross outliers
    >>> reg = SoftTrimmedRegressor(random_state=0).fit(X, y)
    >>> reg.coef_.round(1), round(reg.intercept_, 1)
    (array([ 2., -1.]), 0.5)
    >>> bool(reg.inlier_mask_[:40].any())  # every outlier is trimmed
    False
    >>> reg.predict([[1.0, 1.0]]).round(1)
    array([1.5])
    """

    _parameter_constraints: dict = {
        "trim_fraction": [Interval(Real, 0, 0.5, closed="both")],
        "regularization_strength": [Interval(Real, 0, None, closed="left")],
        "fit_intercept": ["boolean"],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        trim_fraction=0.25,
        regularization_strength=1.0,
        fit_intercept=True,
        alpha=0.0,
        max_iter=500,
        tol=1e-6,
        random_state=None,
        verbose=0,
    ):
        self.trim_fraction = trim_fraction
        self.regularization_strength = regularization_strength
        self.fit_intercept = fit_intercept
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ helpers --
    def _log(self, message):
        # callers build the message only when verbose: formatting costs, and values
        # in the input's units may not fit float64
        if self.verbose:
            print(f"[SoftTrimmedRegressor] {message}", file=sys.stdout, flush=True)

    def _robust_start(self, Xs, Z, y, h, penalty, rng):
        """Best C-step fixed point over random elemental starts (in standardised
        units). Returns (w, hard objective)."""
        n, n_params = Z.shape
        ridge = h * penalty
        if h >= n:  # nothing to trim: (ridge) least squares is the only fixed point
            w = _ridge_solve(Z, y, ridge)
            return w, _hard_objective(Z, y, w, h, penalty)[0]
        # two deterministic starts: (ridge) least squares on the whole sample, and on
        # the h samples least outlying in X (the sum of squared robust z-scores of the
        # standardised features: no bad leverage point among them when those are far)
        clipped = np.minimum(np.abs(Xs), _OUTLYING_CAP)
        outlying = np.sum(clipped * clipped, axis=1)
        low_leverage = np.argpartition(outlying, h - 1)[:h]
        starts = [_ridge_solve(Z, y, n * penalty),
                  _ridge_solve(Z[low_leverage], y[low_leverage], ridge)]
        k = min(n, n_params)
        for _ in range(_N_STARTS):
            idx = sample_without_replacement(n, k, random_state=rng)
            starts.append(np.linalg.lstsq(Z[idx], y[idx], rcond=None)[0])
        candidates = []
        for w in starts:
            w, obj, _, _ = _csteps(Z, y, w, h, penalty, _N_SEED_CSTEPS)
            candidates.append((obj, w))
        candidates.sort(key=lambda c: c[0])
        best_obj, best_w = np.inf, None
        for obj, w in candidates[:_N_KEEP]:
            w, obj, _, _ = _csteps(Z, y, w, h, penalty, _MAX_CSTEPS)
            if obj < best_obj:
                best_obj, best_w = obj, w
        return best_w, best_obj

    # ---------------------------------------------------------------------- fit --
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Fit the model by soft least trimmed squares.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.

        y : array-like of shape (n_samples,)
            Target values.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        # scikit-learn's finiteness check sums X first: +1.7e308 and -1.7e308 entries
        # make that sum inf - inf (a RuntimeWarning) before its exact fallback
        with np.errstate(over="ignore", invalid="ignore"):
            X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True)
        with _one_blas_thread():
            return self._fit(X, y)

    def _fit(self, X, y):
        t_start = time.perf_counter()
        rng = check_random_state(self.random_state)
        n, p = X.shape
        n_params = p + int(self.fit_intercept)
        h = n - int(np.floor(self.trim_fraction * n))
        if h <= n_params:  # no room for trimming: keep the whole sample
            h = n

        # robust standardisation (conditioning only; results go back to input units)
        if self.fit_intercept:
            # medians of the halves (exact): the mean of the two middle values
            # cannot overflow then
            x_center = 2.0 * np.median(0.5 * X, axis=0)
            y_center = 2.0 * float(np.median(0.5 * y))
        else:
            x_center, y_center = np.zeros(p), 0.0
        x_scale = _robust_scale(X, x_center)
        y_scale = float(_robust_scale(y, y_center))
        # values beyond _VALUE_CAP robust spreads from the median (which may overflow
        # here) are clipped to it: far outliers whichever way, their losses capped
        with np.errstate(over="ignore"):
            Xs = np.clip((X - x_center) / x_scale, -_VALUE_CAP, _VALUE_CAP)
            ys = np.clip((y - y_center) / y_scale, -_VALUE_CAP, _VALUE_CAP)
        Z = np.hstack([Xs, np.ones((n, 1))]) if self.fit_intercept else Xs
        # alpha ||coef||^2 in standardised units (the objective divided by y_scale^2):
        # penalty_j = alpha / x_scale_j^2, formed as (sqrt(alpha) / x_scale_j)^2 so that
        # it neither overflows nor underflows where it is representable. A penalty
        # beyond the float64 range (alpha > 0 and a feature's scale below about
        # sqrt(alpha) * 1e-154) is the infinite-penalty limit: that coefficient is 0
        # (its column of Z is zeroed, and any finite penalty then keeps it at 0).
        penalty = np.zeros(n_params)
        if self.alpha > 0:
            with np.errstate(over="ignore", under="ignore"):
                penalty[:p] = (math.sqrt(self.alpha) / x_scale) ** 2
            infinite = np.flatnonzero(np.isinf(penalty))
            if infinite.size:
                Z = Z.copy() if Z is Xs else Z
                Z[:, infinite] = 0.0
                penalty[infinite] = 1.0

        w, hard_obj = self._robust_start(Xs, Z, ys, h, penalty, rng)
        with _overflow_handled():
            s2 = max(float(np.median(_residuals_and_losses(Z, ys, w)[1])),
                     _S2_FLOOR**2)
        if self.verbose:
            # in the input's units: inf when beyond float64 (no OverflowError)
            obj_in, s2_in = (_times_scale_squared(v, y_scale) for v in (hard_obj, s2))
            self._log(f"n_samples={n}, h={h}, n_params={n_params}; best robust start: "
                      f"hard LTS objective {obj_in:.6g}, s2 = {s2_in:.6g} "
                      f"({time.perf_counter() - t_start:.3f} s)")

        # internal units: the residual scale s2 is 1, so eps = regularization_strength
        unit = np.sqrt(s2)
        yi = ys / unit
        theta = w / unit
        strength = float(self.regularization_strength)

        # near a minimum f - f* ~ |gradient|^2 / 2 in internal units (unit curvature):
        # a relative-decrease test looser than tol^2 would stop before the gradient test
        ftol = max(self.tol**2, 10 * np.finfo(np.float64).eps)
        budget, n_iter, converged = self.max_iter, 0, True
        for s in _stages(strength, h == n):
            if budget <= 0:
                converged = False
                if self.verbose:
                    self._log(f"max_iter reached before strength {s:g}")
                break
            if s == 0.0:  # hard LTS: C-steps to a fixed point
                theta, obj, steps, converged = _csteps(Z, yi, theta, h, penalty, budget)
                n_iter, budget = n_iter + steps, budget - steps
                if self.verbose:
                    self._log(f"strength 0: {steps} C-steps, hard LTS objective "
                              f"{obj:.6g}")
                continue
            res = optimize.minimize(
                _soft_lts_objective,
                theta,
                args=(Z, yi, h, s, penalty, False, True),
                method="L-BFGS-B",
                jac=True,
                options={"maxiter": budget, "gtol": self.tol, "ftol": ftol,
                         "maxfun": 20 * budget + 100},
            )
            theta = res.x
            # a run that stops at its start still evaluated the gradient: it counts 1
            steps = max(int(res.nit), 1)
            n_iter, budget = n_iter + steps, budget - steps
            converged = res.status != 1
            if self.verbose:
                self._log(f"strength {s:g}: {res.nit} iterations, objective "
                          f"{res.fun:.6g}, max |gradient| "
                          f"{np.max(np.abs(res.jac)):.2e} ({res.message})")

        # back to the input's units
        w = theta * unit
        with _overflow_handled():
            coef = w[:p] * y_scale / x_scale
            if self.fit_intercept:
                intercept = y_center + y_scale * w[p] - float(coef @ x_center)
            else:
                intercept = 0.0
        if not (np.isfinite(coef).all() and np.isfinite(intercept)):
            # the fit itself (in standardised units) is fine; the model is not
            # representable in the input's units
            warnings.warn(
                "SoftTrimmedRegressor: the coefficients or the intercept overflow "
                "float64 in the units of the input (the scale of y divided by that of "
                "X exceeds the float64 range); coef_ and intercept_ hold inf or NaN. "
                "Rescale X or y.", RuntimeWarning)
        eps = strength if h < n else 0.0
        _, _, mask, loss = _soft_lts_objective(theta, Z, yi, h, eps, penalty, False)
        inlier = np.zeros(n, dtype=bool)
        inlier[np.argsort(loss, kind="stable")[:h]] = True

        self.coef_ = coef
        self.intercept_ = float(intercept)
        self.n_iter_ = int(n_iter)
        self.inlier_mask_ = inlier
        self.weights_ = mask
        # s2 in the units of y squared: inf beyond the float64 range; below it, the
        # smallest positive float rather than 0 (the documented floor keeps it > 0)
        self.loss_scale_ = max(_times_scale_squared(s2, y_scale), math.ulp(0.0))
        if not converged:
            warnings.warn(
                f"SoftTrimmedRegressor did not converge within max_iter={self.max_iter} "
                "iterations; increase max_iter.",
                ConvergenceWarning,
            )
        if self.verbose:
            self._log(f"done in {time.perf_counter() - t_start:.3f} s, {n_iter} "
                      "iterations")
        return self

    def predict(self, X):
        """Predict with the linear model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predicted values.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return X @ self.coef_ + self.intercept_
