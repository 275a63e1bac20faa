"""Robust linear regression by soft least trimmed squares (design notes, section 9).

The hard least-trimmed-squares objective keeps the ``h`` smallest squared residuals.
Written as a linear program over the capped simplex and regularised with
``eps / 2 ||u||^2``, the trimming mask ``u`` becomes a soft top-h mask, and the fit
alternates exact weighted least squares and one mask (soft C-steps, in ``_lts``);
an efficiency step (an MM step or a reweighted least squares) then wins back what
trimming good points costs on clean data.
"""

import math
import sys
import time
import warnings
from fractions import Fraction
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import ThreadpoolController

from . import _lts, _weights

__all__ = ["SoftTrimmedRegressor"]

# s2 is never taken below (_S2_FLOOR * robust spread of y)^2, nor the residual scale
# below _S2_FLOOR robust spreads: an exact fit of half the sample must not make the
# internal units (residual scale 1) degenerate.
_S2_FLOOR = 1e-7
# Standardised values (features and target, in robust spreads from the median) are
# clipped at _VALUE_CAP: beyond it they would overflow float64 once divided by a small
# spread or by the residual scale (at least _S2_FLOOR), and such a point is far out in
# any case (its loss is capped, see _lts.LOSS_CAP).
_VALUE_CAP = 1e300

_THREADPOOLS = None


def _one_blas_thread():
    """Limit BLAS to one thread: the fit makes many small BLAS/LAPACK calls (solves of
    n_params equations, matrix-vector products), where waking a thread pool costs more
    than it saves (a scikit-learn dependency; KMeans does the same)."""
    global _THREADPOOLS
    if _THREADPOOLS is None:
        _THREADPOOLS = ThreadpoolController()
    return _THREADPOOLS.limit(limits=1, user_api="blas")


def _times_scale_squared(value, scale):
    """value * scale^2 for value >= 0 as a Python float, formed as (sqrt(value) *
    scale)^2: inf when the result overflows, 0.0 when it underflows; no warning, no
    OverflowError (which float ** 2 raises)."""
    root = math.sqrt(float(value)) * float(scale)
    return root * root


def _expand(values, used, n):
    """values of the samples ``used``, zeros (False) elsewhere."""
    out = np.zeros(n, dtype=values.dtype)
    out[used] = values
    return out


def _kept_weight(total, trim_fraction):
    """h = ``total - floor(trim_fraction * total)`` for an integer total weight, with
    the fraction read as written (0.29 of 100 trims 29, although 0.29 * 100 rounds to
    28.999999999999996)."""
    return total - math.floor(Fraction(repr(float(trim_fraction))) * total)


class SoftTrimmedRegressor(RegressorMixin, BaseEstimator):
    """Robust linear regression by soft least trimmed squares, with an efficiency step.

    Least trimmed squares (LTS) fits a linear model to the ``h`` samples with the
    smallest squared residuals and ignores the other ``floor(trim_fraction *
    n_samples)``. This estimator minimises a smoothed LTS objective whose trimming
    weights are a soft top-k mask (Blondel et al., 2020), by soft concentration steps
    (exact weighted least squares, then one mask, until neither changes), so that it
    does not depend on how well X is conditioned. A gross outlier gets weight exactly
    0 at every strength. The strength interpolates between hard LTS
    (``regularization_strength -> 0``) and least squares (``-> inf``).

    Trimming a quarter of clean data costs efficiency; the default ``refit="mm"``
    wins it back with an MM step, as R's robustbase recommends: a Tukey bisquare
    M-estimate started at the trimmed fit, with its residual scale (``scale_``) held
    fixed. On clean data the result is close to least squares; on contaminated data
    it keeps the trimmed fit's robustness.

    Parameters
    ----------
    trim_fraction : float, default=0.25
        Fraction of the samples trimmed, in ``[0, 0.5]``: the ``floor(trim_fraction *
        n_samples)`` samples with the largest losses are left out, and the objective
        averages the ``h = n_samples - floor(trim_fraction * n_samples)`` others
        (with ``sample_weight``, see there). Choose it at least as large as the
        expected fraction of outliers. When ``h`` leaves no room for trimming
        (``h <= n_params``, the number of coefficients plus the intercept), the whole
        sample is kept, and the fit is (ridge) least squares with no refit.

    regularization_strength : float, default=1.0
        Strength ``s >= 0`` of the regularisation, relative to the squared-residual
        scale ``s2`` (see ``loss_scale_``): the mask's strength in loss units is
        ``eps = s * s2``. Losses within about ``eps`` of the trimming boundary share
        the weights softly; losses beyond it by more than that get weight exactly 0.
        The default softens the boundary over about one typical squared residual.
        ``0`` is hard LTS (FAST-LTS's C-steps); a large value tends to least squares
        on the whole sample.

    fit_intercept : bool, default=True
        Whether to fit an intercept (not penalised).

    alpha : float, default=0.0
        Ridge penalty on the coefficients: the trimmed fit minimises ``L_eps + alpha
        * ||coef||^2`` with ``L_eps`` a mean over ``h`` samples (see Notes); the
        refits use the same ``alpha`` with their own mean (over the samples kept by
        ``"reweighted"``, over all samples for ``"mm"``). At a large strength the
        trimmed fit equals ``Ridge(alpha=n_samples * alpha)``. A feature whose
        penalty in standardised units, ``alpha / scale^2`` (``scale`` its robust
        spread), exceeds the float64 range gets coefficient 0: the infinite-penalty
        limit.

    refit : {"mm", "reweighted"} or None, default="mm"
        The efficiency step after the trimmed fit, which ``coef_`` and
        ``intercept_`` describe:

        - ``"mm"``: Tukey's bisquare M-estimate (``c = 4.685``, 95% efficiency at
          the normal model) started at the trimmed fit with ``scale_`` held fixed,
          by iteratively reweighted least squares (as robustbase's ``lmrob``);
        - ``"reweighted"``: least squares on the samples whose trimmed-fit residual
          is at most ``2.2414 * scale_`` (the 0.9875 normal quantile), as
          robustbase's ``ltsReg``;
        - ``None``: the trimmed fit itself (``coef_`` equals ``raw_coef_``).

        When nothing is trimmed (``trim_fraction=0``, or too few samples) there is no
        refit: the fit is least squares.

    max_iter : int, default=500
        Maximum number of solver steps, all stages together: soft C-steps of the
        trimmed fit (each one weighted least squares), then reweighted least squares
        steps of the MM step. A :class:`~sklearn.exceptions.ConvergenceWarning` says
        which stage ran out and what was returned.

    tol : float, default=1e-6
        A stage stops when one step moves the fitted values by at most ``tol``
        residual scales (root mean square over the samples' weights; the scale is
        ``sqrt(loss_scale_)`` for the trimmed fit, ``scale_`` for the MM step), when
        the trimming mask stops changing, or when the objective stops decreasing in
        floating point. The measure is in the units of the noise, so it does not
        depend on the units of X or y, nor on how X is conditioned.

    random_state : int, RandomState instance or None, default=None
        Draws the elemental subsets of the robust starts (and, beyond 1,500
        samples, the subsample they run on). Pass an int for reproducible fits.

    verbose : int, default=0
        ``1`` prints a summary of each stage (robust start, trimmed fit, scale,
        refit); ``2`` also prints every solver step.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        Coefficients of the final fit (after ``refit``), in the units of the input
        (inf, with a RuntimeWarning, in the unlikely case that they overflow float64
        there).

    intercept_ : float
        Intercept of the final fit; 0.0 when ``fit_intercept=False``.

    raw_coef_ : ndarray of shape (n_features,)
        Coefficients of the trimmed (soft LTS) fit.

    raw_intercept_ : float
        Intercept of the trimmed fit.

    scale_ : float
        Residual scale of the trimmed fit, consistent for the standard deviation of
        the errors at the normal model: the root of the mean of the ``h`` smallest
        squared residuals, times the consistency factor for trimming ``h / n`` and
        robustbase's small-sample correction (see Notes). Floored at ``1e-7`` times
        the robust spread of y (an exact fit).

    n_iter_ : int
        Solver steps used, counted as for ``max_iter``; the C-steps of the robust
        starts are not counted.

    inlier_mask_ : ndarray of shape (n_samples,), dtype=bool
        True for the ``h`` samples with the smallest squared residuals at the
        trimmed fit (ties broken by sample order): the samples hard LTS would keep.
        With ``sample_weight``: the samples whose weight is kept whole or in part.

    outlier_mask_ : ndarray of shape (n_samples,), dtype=bool
        True for the samples the final fit leaves out: beyond the bisquare's cutoff
        (``|r| >= 4.685 * scale_`` at the final fit) for ``"mm"``, weight 0 in the
        reweighted least squares for ``"reweighted"``, outside the trimmed set for
        ``None``. Samples with zero ``sample_weight`` are neither inliers nor
        outliers.

    weights_ : ndarray of shape (n_samples,)
        The soft trimming weights ``u*`` of the trimmed fit: in ``[0, 1]`` (``[0,
        sample_weight]``), summing to ``h``; exactly 0 on samples whose loss is
        beyond the trimming boundary by more than about ``eps``.

    loss_scale_ : float
        The squared-residual scale ``s2`` that the strength is relative to: the
        median of the squared residuals at the best robust start (floored at
        ``(1e-7 * robust spread of y)^2``), held fixed during the fit. It is
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
    trimmed fit minimises

    ``L_eps(coef, b) = (1/h) min_{u in P} (<u, l> + eps/2 ||u||^2) +
    alpha ||coef||^2``,

    where ``P`` is the capped simplex ``{u in [0, 1]^n, sum(u) = h}``. The inner
    minimiser is the soft top-h mask of ``-l``, ``u* = soft_topk_mask(-l, h,
    regularization_strength=eps)``. ``eps = regularization_strength * s2`` with
    ``s2`` the median of the squared residuals at the best robust start, fixed
    before the descent (so that rescaling y rescales the fit). At ``eps = 0`` this
    is LTS (Rousseeuw, 1984); as ``eps -> inf``, ``u* -> h/n`` and it is least
    squares.

    The solver alternates the two minimisations: for a fixed mask ``u`` the
    objective is a weighted ridge least squares, solved exactly (Cholesky of the
    normal equations, or least squares by LAPACK when they are ill-conditioned), and
    for fixed coefficients the mask is one soft top-h mask. Neither step can raise
    the objective (at ``eps = 0`` they are FAST-LTS's C-steps [2]_). The objective is
    not convex: the descent starts from the best of FAST-LTS-style robust starts, 500
    random elemental subsets (``n_params`` samples, fitted exactly; up to 1,000 on
    small problems) and two deterministic starts (least squares on all samples, and
    on the ``h`` samples least outlying in X, which guards against bad leverage
    points), refined together by C-steps: on small problems all of them to C-step
    fixed points, otherwise two C-steps each and the best ten to fixed points. The
    best starts the descent and fixes ``s2``. Beyond 1,500 samples the starts run on a
    random subsample of 1,500. Like every LTS algorithm, the fit does not guarantee
    the global minimum.

    ``scale_`` is ``sqrt(sum of the h smallest l_i / h)`` times ``1 / sqrt(1 - 2 q
    phi(q) n / h)`` (``q`` the ``(1 + h/n) / 2`` normal quantile), which makes it
    consistent at the normal model, times the small-sample correction of Pison, Van
    Aelst and Willems (2002) that robustbase applies (capped at 4, where its fitted
    curves reach their pole with a handful of samples per parameter). The scale is
    consistent when the errors are normal and ``trim_fraction`` of them are trimmed;
    with outliers among the trimmed samples it errs upwards, which is the safe side
    for the refits. The MM step minimises ``(1/n)
    sum_i scale_^2 rho(r_i / scale_) + alpha ||coef||^2`` with Tukey's bisquare
    ``rho`` (normalised so that ``rho(t) ~ t^2`` near 0) by iteratively reweighted
    least squares, which never increases it.

    The fit is computed in robustly standardised units, so it is equivariant to the
    scales of X and y over the whole float64 range. There, squared residuals are
    capped at ``1e250`` times ``s2``: a capped loss is constant and, far beyond the
    trimming boundary, gets weight exactly 0, so gross outliers of any finite size
    are trimmed as the others are. Values of X or y beyond ``1e300`` robust spreads
    from the median are clipped there.

    ``sample_weight`` counts as repetitions: when every weight is an integer, the
    kept weight is ``h = W - floor(trim_fraction * W)`` for a total weight ``W``, and
    the fit is that of the repeated samples. Other weights only count relative to
    each other (they are rescaled to mean 1, and ``h = (1 - trim_fraction)
    n_samples``). The mask lives on ``{0 <= u_i <= w_i, sum u = h}`` with the
    regulariser ``(eps / 2) sum u_i^2 / w_i``, and the medians and scales are
    weighted. Samples with weight 0 take no part.

    References
    ----------
    .. [1] P. J. Rousseeuw, "Least Median of Squares Regression", Journal of the
       American Statistical Association 79(388), 871-880, 1984.
    .. [2] P. J. Rousseeuw and K. Van Driessen, "Computing LTS Regression for
       Large Data Sets", Data Mining and Knowledge Discovery 12, 29-45, 2006.
    .. [3] G. Pison, S. Van Aelst and G. Willems, "Small sample corrections for LTS
       and MCD", Metrika 55, 111-123, 2002.
    .. [4] V. J. Yohai, "High breakdown-point and high efficiency robust estimates
       for regression", The Annals of Statistics 15(2), 642-656, 1987.
    .. [5] M. Blondel, O. Teboul, Q. Berthet and J. Djolonga, "Fast Differentiable
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
    >>> bool(reg.outlier_mask_[:40].all()), int(reg.outlier_mask_[40:].sum())
    (True, 0)
    >>> round(reg.scale_, 1)  # about the noise level (see scale_)
    0.1
    >>> reg.predict([[1.0, 1.0]]).round(1)
    array([1.5])
    """

    _parameter_constraints: dict = {
        "trim_fraction": [Interval(Real, 0, 0.5, closed="both")],
        "regularization_strength": [Interval(Real, 0, None, closed="left")],
        "fit_intercept": ["boolean"],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "refit": [StrOptions({"mm", "reweighted"}), None],
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
        refit="mm",
        max_iter=500,
        tol=1e-6,
        random_state=None,
        verbose=0,
    ):
        self.trim_fraction = trim_fraction
        self.regularization_strength = regularization_strength
        self.fit_intercept = fit_intercept
        self.alpha = alpha
        self.refit = refit
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ helpers --
    def _log(self, message, level=1):
        # callers build the message only when verbose: formatting costs, and values
        # in the input's units may not fit float64
        if self.verbose >= level:
            print(f"[SoftTrimmedRegressor] {message}", file=sys.stdout, flush=True)

    def _step_logger(self, stage):
        if self.verbose < 2:
            return None

        def log(step, *values):
            if len(values) == 2:
                self._log(f"{stage} step {step}: objective {values[0]:.10g}, fitted "
                          f"values moved {values[1]:.3e} scales", level=2)
            else:
                self._log(f"{stage} step {step}: fitted values moved "
                          f"{values[0]:.3e} scales", level=2)
        return log

    # ---------------------------------------------------------------------- fit --
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model: soft least trimmed squares, then the efficiency step.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.

        y : array-like of shape (n_samples,)
            Target values.

        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights: integer weights count as repetitions of the
            samples, other weights relative to each other (see Notes). None gives
            every sample weight 1.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        # scikit-learn's finiteness check sums X first: +1.7e308 and -1.7e308 entries
        # make that sum inf - inf (a RuntimeWarning) before its exact fallback
        with np.errstate(over="ignore", invalid="ignore"):
            X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True)
        n = X.shape[0]
        sw = (None if sample_weight is None else
              _weights.check_sample_weight(sample_weight, n))
        with _one_blas_thread():
            return self._fit(X, y, sw)

    def _fit(self, X, y, sample_weight):
        t_start = time.perf_counter()
        rng = check_random_state(self.random_state)
        n_all, p = X.shape
        # samples of weight 0 take no part; weights all 1 are no weights. Integer
        # weights count as repetitions (up to 2^53 in all, where float64 still counts
        # exactly); other weights are rescaled to mean 1 (only their ratios matter), so
        # the kept weight and the small-sample factor count samples.
        used = None
        sw = sample_weight
        if sw is not None:
            if not (sw > 0).all():
                used = np.flatnonzero(sw > 0)
                X, y, sw = X[used], y[used], sw[used]
            if (sw == 1.0).all():
                sw = None
        n = X.shape[0]
        # weight_unit takes a rescaled weight back to the caller's units
        integral, weight_unit = True, 1.0
        if sw is not None:
            sw, integral, weight_unit = _weights.counts_or_ratios(sw)
        total = n if sw is None else float(np.sum(sw))
        n_params = p + int(self.fit_intercept)
        h = _kept_weight(round(total), self.trim_fraction) if integral else (
            (1.0 - self.trim_fraction) * total)
        if h <= n_params:  # no room for trimming: keep the whole sample
            h = total
        if n < n_params:
            warnings.warn(
                f"SoftTrimmedRegressor: {n} samples (with positive weight) for "
                f"{n_params} parameters: "
                + ("the ridge penalty alone decides the fit"
                   if self.alpha > 0 else
                   "the fit is not unique (the minimum-norm solution is returned)")
                + ("" if h < total else ", and nothing is trimmed") + ".",
                UserWarning)
        no_trimming = h >= total

        # robust standardisation (conditioning only; results go back to input units)
        if self.fit_intercept:
            x_center = _lts.weighted_median(X, sw)
            y_center = float(_lts.weighted_median(y, sw))
        else:
            x_center, y_center = np.zeros(p), 0.0
        x_scale = _lts.robust_scale(X, x_center, sw)
        y_scale = float(_lts.robust_scale(y, y_center, sw))
        # values beyond _VALUE_CAP robust spreads from the median (which may overflow
        # here) are clipped to it: far outliers whichever way, their losses capped.
        # The design Z (the standardised features, then a column of ones) is the one
        # copy of X the fit makes.
        Z = np.empty((n, n_params))
        Xs = Z[:, :p]
        with np.errstate(over="ignore", invalid="ignore"):
            np.subtract(X, x_center, out=Xs)
            Xs /= x_scale
            np.clip(Xs, -_VALUE_CAP, _VALUE_CAP, out=Xs)
            ys = np.clip((y - y_center) / y_scale, -_VALUE_CAP, _VALUE_CAP)
        if self.fit_intercept:
            Z[:, p] = 1.0
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
                Z[:, infinite] = 0.0
                penalty[infinite] = 1.0

        theta, start_obj, rank = _lts.robust_start(Xs, Z, ys, h, penalty, sw, rng)
        with _lts.overflow_handled():
            start_loss = _lts.residuals_and_losses(Z, ys, theta)[1]
        s2 = max(float(_lts.weighted_median(start_loss, sw)), _S2_FLOOR**2)
        if self.verbose:
            # in the input's units: inf when beyond float64 (no OverflowError)
            obj_in, s2_in = (_times_scale_squared(v, y_scale) for v in (start_obj, s2))
            self._log(f"n_samples={n}, h={h:g}, n_params={n_params}; best robust "
                      f"start: hard LTS objective {obj_in:.6g}, s2 = {s2_in:.6g} "
                      f"({time.perf_counter() - t_start:.3f} s)")

        # internal units: the residual scale s2 is 1, so eps = regularization_strength
        unit = math.sqrt(s2)
        yi = ys / unit
        theta = theta / unit
        strength = 0.0 if no_trimming else float(self.regularization_strength)
        theta, value, mask, n_iter, converged = _lts.csteps(
            Z, yi, theta, h, strength, penalty, sw, self.max_iter, self.tol,
            self._step_logger("soft C-step"))
        if self.verbose:
            self._log(f"trimmed fit at strength {strength:g}: {n_iter} soft C-steps, "
                      f"objective {value:.10g}" + ("" if converged else
                                                   " (not converged)"))
        if not converged:
            warnings.warn(
                f"SoftTrimmedRegressor: the trimmed fit at strength {strength:g} did "
                f"not converge within max_iter={self.max_iter} soft C-steps; the last "
                "iterate is returned" + ("" if self.refit is None else
                                         " and no refit was made")
                + ". Increase max_iter.", ConvergenceWarning)

        # the residual scale, consistent at the normal model
        with _lts.overflow_handled():
            loss = _lts.residuals_and_losses(Z, yi, theta)[1]
        hard = _lts.trimming_mask(loss, h, 0.0, sw)
        scale = math.sqrt(float(hard @ loss) / h)
        scale *= _lts.consistency_factor(h / total)
        # the sample size of the small-sample factor: the repeated sample's for
        # integer weights, else the number of samples (h in proportion)
        n_eff = round(total) if integral else n
        # (the slopes: the rank of the design, less the intercept, as robustbase)
        scale *= _lts.small_sample_factor(n_eff, rank - int(self.fit_intercept),
                                          self.fit_intercept,
                                          h * n_eff / total)
        scale = max(scale, _S2_FLOOR / unit)
        if self.verbose:
            self._log(f"residual scale {scale * unit * y_scale:.6g}")

        raw = theta
        if no_trimming or self.refit is None or not converged:
            final = raw
            outlier = hard == 0 if not no_trimming else np.zeros(n, dtype=bool)
        elif self.refit == "reweighted":
            keep = loss <= (_lts.REWEIGHT_CUTOFF * scale) ** 2
            kept = keep * (1.0 if sw is None else sw)
            final = _lts.weighted_ridge_solve(Z, yi, kept, float(np.sum(kept)) * penalty)
            n_iter += 1
            outlier = ~keep
            if self.verbose:
                self._log(f"reweighted least squares on {int(keep.sum())} samples")
        else:  # "mm"
            budget = self.max_iter - n_iter
            if budget > 0:
                final, steps, mm_converged = _lts.mm_step(
                    Z, yi, raw, scale, total * penalty, sw, budget, self.tol,
                    self._step_logger("MM"))
            else:
                final, steps, mm_converged = raw, 0, False
            n_iter += steps
            with _lts.overflow_handled():
                outlier = _lts.residuals_and_losses(Z, yi, final)[1] >= (
                    _lts.BISQUARE_C * scale) ** 2
            if self.verbose:
                self._log(f"MM step: {steps} reweighted least squares steps, "
                          f"{int(outlier.sum())} samples beyond the cutoff"
                          + ("" if mm_converged else " (not converged)"))
            if not mm_converged:
                warnings.warn(
                    f"SoftTrimmedRegressor: the MM step did not converge within "
                    f"max_iter={self.max_iter} steps (the trimmed fit took "
                    f"{n_iter - steps}); coef_ and intercept_ are its last iterate "
                    f"({steps} steps from the trimmed fit). Increase max_iter.",
                    ConvergenceWarning)

        # back to the input's units
        coef, intercept = self._to_input_units(final * unit, p, x_center, x_scale,
                                               y_center, y_scale)
        raw_coef, raw_intercept = self._to_input_units(raw * unit, p, x_center,
                                                       x_scale, y_center, y_scale)
        inlier = hard > 0
        if used is not None:  # back to every sample: weight 0 is neither
            inlier, outlier, mask = (_expand(v, used, n_all) for v in
                                     (inlier, outlier, mask))
        self.coef_ = coef
        self.intercept_ = intercept
        self.raw_coef_ = raw_coef
        self.raw_intercept_ = raw_intercept
        self.scale_ = _times_scale_squared(scale * scale, unit * y_scale) ** 0.5
        self.n_iter_ = int(n_iter)
        self.inlier_mask_ = inlier
        self.outlier_mask_ = outlier
        with np.errstate(over="ignore"):
            self.weights_ = mask * weight_unit if weight_unit != 1.0 else mask
        # s2 in the units of y squared: inf beyond the float64 range; below it, the
        # smallest positive float rather than 0 (the documented floor keeps it > 0)
        self.loss_scale_ = max(_times_scale_squared(s2, y_scale), math.ulp(0.0))
        if self.verbose:
            self._log(f"done in {time.perf_counter() - t_start:.3f} s, {n_iter} "
                      "steps")
        return self

    def _to_input_units(self, w, p, x_center, x_scale, y_center, y_scale):
        with _lts.overflow_handled():
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
        return coef, float(intercept)

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
