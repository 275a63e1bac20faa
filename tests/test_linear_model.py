"""SoftTrimmedRegressor: soft least trimmed squares (design notes, section 9).

References written here, independently of the estimator: a FAST-LTS-style hard LTS fit
(random elemental subsets, C-steps to convergence, best of many) and the soft objective's
value through the bisection top-k mask of tests/_reference.py."""

import warnings

import numpy as np
import pytest
from scipy.optimize import check_grad
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import HuberRegressor, LinearRegression, Ridge
from sklearn.utils.estimator_checks import parametrize_with_checks

from _reference import topk_mask as ref_mask
from skrank import _lts
from skrank.linear_model import SoftTrimmedRegressor


# --------------------------------------------------------------------------- references
def n_kept(n, trim_fraction):
    return n - int(np.floor(trim_fraction * n))


def hard_lts_objective(X, y, coef, intercept, h):
    """Mean of the h smallest squared residuals."""
    loss = (y - X @ coef - intercept) ** 2
    return np.sort(loss)[:h].mean()


def lts_reference(X, y, h, n_starts=500, seed=0):
    """FAST-LTS style hard LTS (Rousseeuw & Van Driessen 2006): random (p + 1)-subsets,
    exact fit, C-steps (least squares on the h smallest losses) until the kept set stops
    changing; the best of n_starts. Returns (coef, intercept, objective)."""
    rng = np.random.default_rng(seed)
    n, p = X.shape
    Z = np.hstack([X, np.ones((n, 1))])
    best = (None, np.inf)
    for _ in range(n_starts):
        idx = rng.choice(n, p + 1, replace=False)
        w = np.linalg.lstsq(Z[idx], y[idx], rcond=None)[0]
        kept = None
        for _ in range(200):
            new = np.sort(np.argsort((y - Z @ w) ** 2)[:h])
            if kept is not None and np.array_equal(new, kept):
                break
            kept = new
            w = np.linalg.lstsq(Z[kept], y[kept], rcond=None)[0]
        obj = np.sort((y - Z @ w) ** 2)[:h].mean()
        if obj < best[1]:
            best = (w, obj)
    w, obj = best
    return w[:p], w[p], obj


def soft_objective_reference(coef, intercept, X, y, h, eps, alpha):
    """(1/h) min_{y in P(w)} (<y, l> + eps/2 ||y||^2) + alpha ||coef||^2, the minimiser
    being the projection of -l / eps onto the capped simplex (bisection, no PAV)."""
    loss = (y - X @ coef - intercept) ** 2
    mask = ref_mask(-loss, h, eps)
    return (mask @ loss + 0.5 * eps * mask @ mask) / h + alpha * coef @ coef, mask


def contaminated(n=400, p=4, frac_vertical=0.1, frac_leverage=0.1, noise=0.2, seed=0):
    """Clean linear data with planted vertical outliers (y shifted far) and bad
    leverage points (x far out, y on a different plane). Returns X, y, coef,
    intercept and the indices of the outliers."""
    rng = np.random.default_rng(seed)
    coef = np.linspace(-2.0, 3.0, p)
    intercept = 1.0
    X = rng.normal(size=(n, p))
    y = X @ coef + intercept + noise * rng.normal(size=n)
    n_vert, n_lev = int(frac_vertical * n), int(frac_leverage * n)
    out = rng.permutation(n)[: n_vert + n_lev]
    vert, lev = out[:n_vert], out[n_vert:]
    y[vert] += 20.0 + rng.normal(size=n_vert)
    X[lev] = 8.0 + 0.5 * rng.normal(size=(n_lev, p))
    y[lev] = -(X[lev] @ coef) + noise * rng.normal(size=n_lev)
    return X, y, coef, intercept, np.sort(out)


# --------------------------------------------------------------------------- the limits
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("alpha", [0.0, 0.05])
def test_huge_strength_is_least_squares(fit_intercept, alpha):
    # y* -> h/n everywhere: the objective is mean(l) + alpha ||coef||^2, the
    # minimiser of Ridge(alpha=n * alpha) (LinearRegression at alpha = 0)
    X, y, *_ = contaminated(n=300, frac_vertical=0.05, frac_leverage=0.0, seed=1)
    n = X.shape[0]
    reg = SoftTrimmedRegressor(regularization_strength=1e9, alpha=alpha, refit=None,
                               fit_intercept=fit_intercept, random_state=0).fit(X, y)
    if alpha == 0.0:
        ref = LinearRegression(fit_intercept=fit_intercept).fit(X, y)
    else:
        ref = Ridge(alpha=n * alpha, fit_intercept=fit_intercept).fit(X, y)
    np.testing.assert_allclose(reg.coef_, ref.coef_, atol=1e-3)
    assert reg.intercept_ == pytest.approx(ref.intercept_, abs=1e-3)
    np.testing.assert_allclose(reg.weights_, n_kept(n, 0.25) / n, atol=1e-3)


def test_no_trimming_is_least_squares_at_any_strength():
    X, y, *_ = contaminated(n=100, seed=2)
    ref = LinearRegression().fit(X, y)
    for strength in (0.0, 1.0):
        reg = SoftTrimmedRegressor(trim_fraction=0.0, regularization_strength=strength,
                                   random_state=0).fit(X, y)
        np.testing.assert_allclose(reg.coef_, ref.coef_, atol=1e-6)
        assert reg.inlier_mask_.all() and np.all(reg.weights_ == 1.0)


@pytest.mark.parametrize("strength", [1e-3, 0.0])
def test_tiny_strength_reaches_hard_lts(strength):
    X, y, *_ = contaminated(n=200, p=3, seed=3)
    h = n_kept(200, 0.25)
    _, _, ref_obj = lts_reference(X, y, h, n_starts=500)
    reg = SoftTrimmedRegressor(regularization_strength=strength, random_state=0).fit(X, y)
    obj = hard_lts_objective(X, y, reg.raw_coef_, reg.raw_intercept_, h)
    assert obj <= 1.01 * ref_obj, (obj, ref_obj)


def test_hard_lts_reference_on_clean_data_is_close_to_least_squares():
    # sanity check of the reference itself
    rng = np.random.default_rng(4)
    X = rng.normal(size=(100, 2))
    y = X @ [1.0, 2.0] + 0.01 * rng.normal(size=100)
    coef, intercept, _ = lts_reference(X, y, 90, n_starts=20)
    np.testing.assert_allclose(coef, [1.0, 2.0], atol=0.01)


# -------------------------------------------------------------------------- robustness
@pytest.mark.parametrize("n, p", [(400, 4), (1000, 15)])
def test_recovers_clean_coefficients_where_least_squares_and_huber_fail(n, p):
    # at p = 15 few random elemental subsets are clean (0.8^16 ~ 3%): the
    # deterministic starts must carry the fit
    X, y, coef, intercept, _ = contaminated(n=n, p=p, seed=5)
    reg = SoftTrimmedRegressor(random_state=0).fit(X, y)
    assert np.max(np.abs(reg.coef_ - coef)) < 0.1
    assert abs(reg.intercept_ - intercept) < 0.1
    for other in (LinearRegression(), HuberRegressor(max_iter=1000)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            fitted = other.fit(X, y)
        assert np.max(np.abs(fitted.coef_ - coef)) > 0.5, type(other).__name__


def test_inlier_mask_flags_the_planted_outliers():
    X, y, _, _, out = contaminated(seed=6)
    n = len(y)
    h = n_kept(n, 0.25)
    reg = SoftTrimmedRegressor(refit=None, random_state=0).fit(X, y)
    assert reg.inlier_mask_.dtype == bool and reg.inlier_mask_.shape == (n,)
    assert reg.inlier_mask_.sum() == h
    assert not reg.inlier_mask_[out].any()
    # gross outliers get weight exactly 0; the weights lie in [0, 1] and sum to h
    assert np.all(reg.weights_[out] == 0.0)
    assert reg.weights_.min() >= 0.0 and reg.weights_.max() <= 1.0
    assert reg.weights_.sum() == pytest.approx(h)
    # the mask is the h smallest losses at the solution
    loss = (y - reg.predict(X)) ** 2
    assert loss[reg.inlier_mask_].max() <= loss[~reg.inlier_mask_].min()


def test_exact_fit_with_outliers():
    # half the sample exactly on a plane: s2 = 0 is guarded, the plane is found
    rng = np.random.default_rng(7)
    X = rng.normal(size=(60, 2))
    y = X @ [3.0, -1.0] + 2.0
    y[:12] = rng.normal(scale=50.0, size=12)
    reg = SoftTrimmedRegressor(random_state=0).fit(X, y)
    np.testing.assert_allclose(reg.coef_, [3.0, -1.0], atol=1e-8)
    assert reg.intercept_ == pytest.approx(2.0, abs=1e-8)
    assert reg.loss_scale_ > 0


# ------------------------------------------------------------------ objective, gradient
@pytest.mark.parametrize("eps", [0.05, 1.0, 20.0])
@pytest.mark.parametrize("alpha", [0.0, 0.3])
def test_objective_value_and_gradient(eps, alpha):
    X, y, coef, intercept, _ = contaminated(n=60, p=3, seed=8)
    n, p = X.shape
    h = n_kept(n, 0.25)
    Z = np.hstack([X, np.ones((n, 1))])
    penalty = np.r_[np.full(p, alpha), 0.0]
    rng = np.random.default_rng(9)
    w = np.r_[coef, intercept] + 0.3 * rng.normal(size=p + 1)

    value, mask, r, loss = _lts.objective(w, Z, y, h, eps, penalty)
    grad = _lts.gradient(w, Z, mask, r, h, penalty)
    ref_value, ref_y = soft_objective_reference(w[:p], w[p], X, y, h, eps, alpha)
    assert value == pytest.approx(ref_value, rel=1e-9)
    np.testing.assert_allclose(mask, ref_y, atol=1e-9)
    assert mask.sum() == pytest.approx(h)
    np.testing.assert_allclose(r, y - Z @ w, rtol=1e-12)
    # Danskin: dL/dl = u*/h
    np.testing.assert_allclose(grad, -2.0 / h * X.T @ (mask * r) @ np.eye(p, p + 1)
                               + 2 * penalty * w - np.r_[np.zeros(p), 2.0 / h * (
                                   mask @ r)], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(loss, r * r, rtol=1e-12)
    # the weighted form with unit weights is the same mask and value
    w_value, w_mask, _, _ = _lts.objective(w, Z, y, h, eps, penalty, np.ones(n))
    assert w_value == pytest.approx(value, rel=1e-12)
    np.testing.assert_allclose(w_mask, mask, atol=1e-12)

    def f(v):
        return _lts.objective(v, Z, y, h, eps, penalty)[0]

    def g(v):
        _, u, res, _ = _lts.objective(v, Z, y, h, eps, penalty)
        return _lts.gradient(v, Z, u, res, h, penalty)

    for _ in range(3):
        v = w + 0.1 * rng.normal(size=p + 1)
        err = check_grad(f, g, v, epsilon=1e-7)
        assert err <= 1e-5 * max(1.0, np.linalg.norm(g(v))), err


@pytest.mark.parametrize("strength", [0.1, 1.0, 10.0])
def test_solution_is_stationary_at_the_requested_strength(strength):
    X, y, *_ = contaminated(seed=10)
    n, p = X.shape
    h = n_kept(n, 0.25)
    alpha = 0.01
    reg = SoftTrimmedRegressor(regularization_strength=strength, alpha=alpha,
                               refit=None, tol=1e-8, random_state=0).fit(X, y)
    eps = strength * reg.loss_scale_
    Z = np.hstack([X, np.ones((n, 1))])
    penalty = np.r_[np.full(p, alpha), 0.0]
    w = np.r_[reg.coef_, reg.intercept_]
    _, mask, r, _ = _lts.objective(w, Z, y, h, eps, penalty)
    grad = _lts.gradient(w, Z, mask, r, h, penalty)
    np.testing.assert_allclose(mask, reg.weights_, atol=1e-8)
    # every component of the gradient is negligible next to the sizes of its terms
    size = 2.0 / h * np.abs(Z).T @ np.abs(mask * r) + 2 * penalty * np.abs(w)
    assert np.all(np.abs(grad) <= 1e-6 * size), np.abs(grad) / size


def test_equivariance():
    # rescaling and shifting y (and shifting X) moves the fit accordingly: the
    # strength is relative to the residual scale
    X, y, *_ = contaminated(n=200, seed=11)
    base = SoftTrimmedRegressor(random_state=0, tol=1e-9).fit(X, y)
    moved = SoftTrimmedRegressor(random_state=0, tol=1e-9).fit(X + 5.0, 1e3 * y - 7.0)
    np.testing.assert_allclose(moved.coef_, 1e3 * base.coef_, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(moved.predict(X + 5.0), 1e3 * base.predict(X) - 7.0,
                               rtol=1e-6, atol=1e-3)
    assert moved.loss_scale_ == pytest.approx(1e6 * base.loss_scale_, rel=1e-6)
    np.testing.assert_array_equal(moved.inlier_mask_, base.inlier_mask_)


def test_deterministic_given_random_state():
    X, y, *_ = contaminated(n=200, seed=12)
    a = SoftTrimmedRegressor(random_state=3).fit(X, y)
    b = SoftTrimmedRegressor(random_state=3).fit(X, y)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    assert a.intercept_ == b.intercept_ and a.n_iter_ == b.n_iter_


@pytest.mark.parametrize("n", [1, 2, 5, 11, 14])
def test_small_samples(n):
    # h = n - floor(n / 4) <= 11 coefficients leaves no room for trimming: the whole
    # sample is kept, and the fit is least squares (exact up to 11 samples)
    rng = np.random.default_rng(13)
    X = rng.normal(size=(n, 10))
    y = rng.normal(size=n)
    if n < 11:  # fewer samples than parameters: said so
        with pytest.warns(UserWarning, match=f"{n} samples .* for 11 parameters"):
            reg = SoftTrimmedRegressor(random_state=0).fit(X, y)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            reg = SoftTrimmedRegressor(random_state=0).fit(X, y)
    assert reg.inlier_mask_.all() and not reg.outlier_mask_.any()
    assert np.all(np.isfinite(reg.coef_)) and np.isfinite(reg.intercept_)
    expected = y if n <= 11 else LinearRegression().fit(X, y).predict(X)
    np.testing.assert_allclose(reg.predict(X), expected, atol=1e-6)


# --------------------------------------------------------------- warnings, output, API
def test_convergence_warning_at_max_iter_1():
    # the warning says which stage stopped, at which strength, and what was returned
    X, y, *_ = contaminated(seed=14)
    with pytest.warns(ConvergenceWarning, match=r"trimmed fit at strength 0.5 did not "
                      r"converge within max_iter=1 .* last iterate is returned and no "
                      r"refit was made"):
        reg = SoftTrimmedRegressor(max_iter=1, regularization_strength=0.5,
                                   random_state=0).fit(X, y)
    assert reg.n_iter_ == 1
    np.testing.assert_array_equal(reg.coef_, reg.raw_coef_)


def test_convergence_warning_of_the_mm_step():
    # the trimmed fit converges; the MM step gets what is left of max_iter
    X, y, *_ = contaminated(seed=14)
    full = SoftTrimmedRegressor(random_state=0).fit(X, y)
    trimmed = SoftTrimmedRegressor(refit=None, random_state=0).fit(X, y)
    assert full.n_iter_ > trimmed.n_iter_ + 1
    with pytest.warns(ConvergenceWarning, match=r"MM step did not converge within "
                      rf"max_iter={trimmed.n_iter_ + 1} steps"):
        reg = SoftTrimmedRegressor(max_iter=trimmed.n_iter_ + 1,
                                   random_state=0).fit(X, y)
    assert reg.n_iter_ == trimmed.n_iter_ + 1
    np.testing.assert_array_equal(reg.raw_coef_, trimmed.raw_coef_)


def test_silent_at_verbose_0_and_talks_at_verbose_1(capsys):
    X, y, *_ = contaminated(n=200, seed=15)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning either
        SoftTrimmedRegressor(regularization_strength=0.01, random_state=0).fit(X, y)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    SoftTrimmedRegressor(regularization_strength=0.01, verbose=1, random_state=0).fit(X, y)
    out = capsys.readouterr().out
    assert "strength 0.01" in out and "robust start" in out and "MM step" in out
    assert "residual scale" in out and "step 1:" not in out
    # verbose=2 adds one line per solver step
    reg = SoftTrimmedRegressor(regularization_strength=0.01, verbose=2,
                               random_state=0).fit(X, y)
    detail = capsys.readouterr().out
    assert detail.count("soft C-step step ") + detail.count("MM step ") == reg.n_iter_
    assert "soft C-step step 1: objective" in detail
    assert "MM step 1: fitted values moved" in detail


def test_feature_names_in_with_pandas():
    pd = pytest.importorskip("pandas")
    X, y, *_ = contaminated(n=100, seed=16)
    df = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    reg = SoftTrimmedRegressor(random_state=0).fit(df, y)
    np.testing.assert_array_equal(reg.feature_names_in_, ["a", "b", "c", "d"])
    assert reg.n_features_in_ == 4
    np.testing.assert_allclose(reg.predict(df), reg.coef_ @ X.T + reg.intercept_)
    with pytest.raises(ValueError, match="feature names"):
        reg.predict(df[["b", "a", "c", "d"]])
    reg = SoftTrimmedRegressor(random_state=0).fit(X, y)
    assert not hasattr(reg, "feature_names_in_")


@pytest.mark.parametrize("params, match", [
    (dict(trim_fraction=0.6), "trim_fraction"),
    (dict(trim_fraction=-0.1), "trim_fraction"),
    (dict(regularization_strength=-1.0), "regularization_strength"),
    (dict(regularization_strength="big"), "regularization_strength"),
    (dict(alpha=-0.5), "alpha"),
    (dict(max_iter=0), "max_iter"),
    (dict(max_iter=2.5), "max_iter"),
    (dict(tol=-1e-3), "tol"),
    (dict(fit_intercept="yes"), "fit_intercept"),
    (dict(random_state="seed"), "random_state"),
    (dict(verbose=-1), "verbose"),
])
def test_parameter_validation(params, match):
    X, y, *_ = contaminated(n=40, seed=17)
    with pytest.raises(ValueError, match=match):
        SoftTrimmedRegressor(**params).fit(X, y)


def test_predict_before_fit_and_wrong_width():
    from sklearn.exceptions import NotFittedError

    X, y, *_ = contaminated(n=50, seed=18)
    with pytest.raises(NotFittedError):
        SoftTrimmedRegressor().predict(X)
    reg = SoftTrimmedRegressor(random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        reg.predict(X[:, :2])


# the checks fit 30 features on 15 samples, and are told so
@pytest.mark.filterwarnings("ignore:.*samples .* for .* parameters:UserWarning")
@parametrize_with_checks([
    SoftTrimmedRegressor(),
    SoftTrimmedRegressor(fit_intercept=False, alpha=0.1),
    SoftTrimmedRegressor(regularization_strength=0.0, trim_fraction=0.5),
])
def test_sklearn_compatible(estimator, check):
    check(estimator)


# ------------------------------------------------------------ extreme scales, outliers
def _clean(n=200, seed=30):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    return X, X @ [1.0, 2.0, 3.0] + 0.5 + 0.1 * rng.normal(size=n)


@pytest.mark.parametrize("x_scale, y_scale", [(1.0, 1e-170), (1.0, 1e155),
                                              (1e-170, 1.0), (1e200, 1.0)])
def test_equivariance_at_extreme_scales(x_scale, y_scale):
    # standardisation makes the internal values moderate: no overflow, no NaN, no
    # warning (not even a RuntimeWarning), and the fit is the unscaled one rescaled
    X, y, *_ = contaminated(n=200, p=3, seed=31)
    base = SoftTrimmedRegressor(random_state=0, tol=1e-9).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reg = SoftTrimmedRegressor(random_state=0, tol=1e-9).fit(X * x_scale,
                                                                 y * y_scale)
    np.testing.assert_allclose(reg.coef_, base.coef_ * (y_scale / x_scale), rtol=1e-6)
    assert reg.intercept_ == pytest.approx(base.intercept_ * y_scale, rel=1e-6)
    np.testing.assert_array_equal(reg.inlier_mask_, base.inlier_mask_)
    # loss_scale_ is y_scale^2 times the unscaled one where float64 holds it, and
    # stays positive where that underflows (1e-340 here)
    want = base.loss_scale_ * y_scale * y_scale
    if want > 0:
        assert reg.loss_scale_ == pytest.approx(want, rel=1e-6)
    else:
        assert reg.loss_scale_ == 5e-324


def test_loss_scale_beyond_float64_and_verbose_output(capsys):
    # y's scale so large that s2 in y's units overflows: inf, no OverflowError, and
    # the progress messages format it too
    X, y = _clean()
    reg = SoftTrimmedRegressor(random_state=0).fit(X, y * 1e300)
    assert reg.loss_scale_ == np.inf
    np.testing.assert_allclose(reg.coef_, [1e300, 2e300, 3e300], rtol=0.05)
    SoftTrimmedRegressor(random_state=0, verbose=1).fit(X, y * 1e300)
    assert "s2 = inf" in capsys.readouterr().out


@pytest.mark.parametrize("value", [1e160, 1e300, -1.7e308])
def test_gross_outliers_of_any_size(value):
    # squared residuals beyond the float64 range are capped: the outliers still get
    # weight exactly 0 and the clean coefficients come out, silently
    X, y = _clean()
    y[:20] = value
    y[20:25] = -value
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for strength in (1.0, 0.0):
            reg = SoftTrimmedRegressor(regularization_strength=strength,
                                       random_state=0).fit(X, y)
            np.testing.assert_allclose(reg.coef_, [1.0, 2.0, 3.0], atol=0.05)
            assert reg.intercept_ == pytest.approx(0.5, abs=0.05)
            assert np.all(reg.weights_[:25] == 0.0) and not reg.inlier_mask_[:25].any()


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_bad_leverage_points_far_out(fit_intercept):
    # rows of X at 1e200 (their squares overflow in the normal equations) and beyond
    X, y = _clean()
    if not fit_intercept:
        y -= 0.5
    X[:20] = 1e200
    X[20:30, 0] = -1e300
    y[:30] = -5.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reg = SoftTrimmedRegressor(fit_intercept=fit_intercept,
                                   random_state=0).fit(X, y)
    np.testing.assert_allclose(reg.coef_, [1.0, 2.0, 3.0], atol=0.05)
    assert np.all(reg.weights_[:30] == 0.0)


def test_ridge_penalty_at_extreme_feature_scales(capfd):
    X, y = _clean()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # alpha / scale^2 = 1e308 / 1e310 is representable although scale^2 is not:
        # the same fit as alpha = 0.01 on X
        ref = SoftTrimmedRegressor(alpha=0.01, random_state=0, tol=1e-9).fit(X, y)
        big = SoftTrimmedRegressor(alpha=1e308, random_state=0, tol=1e-9).fit(
            X * 1e155, y)
        np.testing.assert_allclose(big.coef_, ref.coef_ * 1e-155, rtol=1e-6)
        assert big.intercept_ == pytest.approx(ref.intercept_, rel=1e-6)
        # alpha = 0 on a tiny X: no penalty at all (was 0 / 0)
        tiny = SoftTrimmedRegressor(random_state=0).fit(X * 1e-170, y)
        plain = SoftTrimmedRegressor(random_state=0).fit(X, y)
        np.testing.assert_allclose(tiny.coef_, plain.coef_ * 1e170, rtol=1e-6)
        # a penalty beyond float64 (0.1 / 1e-340): the infinite-penalty limit
        for fit_intercept in (True, False):
            reg = SoftTrimmedRegressor(alpha=0.1, fit_intercept=fit_intercept,
                                       random_state=0).fit(X * 1e-170, y)
            np.testing.assert_array_equal(reg.coef_, 0.0)
        # a negligible one (0.1 / 1e400 underflows): the fit at alpha = 0
        huge = SoftTrimmedRegressor(alpha=0.1, random_state=0).fit(X * 1e200, y)
        np.testing.assert_allclose(huge.coef_, plain.coef_ * 1e-200, rtol=1e-6)
    # and LAPACK printed nothing (it did on NaN input: "DLASCL parameter number 4")
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""


def test_coefficients_overflowing_float64_warn():
    X, y = _clean()
    with pytest.warns(RuntimeWarning, match="overflow float64"):
        reg = SoftTrimmedRegressor(random_state=0).fit(X * 1e-300, y * 1e300)
    assert np.isinf(reg.coef_).all()


# ----------------------------------------------------------- the solver: soft C-steps
def collinear_design(n=400, p=6, condition=1e9, seed=40):
    """Features whose robustly standardised design (with the intercept column) has a
    condition number of at least 1e8."""
    rng = np.random.default_rng(seed)
    U, _, Vt = np.linalg.svd(rng.normal(size=(n, p)), full_matrices=False)
    X = U @ np.diag(np.logspace(0, -np.log10(condition), p)) @ Vt
    center = np.median(X, axis=0)
    X = (X - center) / _lts.robust_scale(X, center)
    assert np.linalg.cond(np.c_[X - np.median(X, axis=0), np.ones(n)]) >= 1e8
    return X, rng


@pytest.mark.parametrize("strength", [0.0, 1.0, 10.0])
def test_converges_on_a_collinear_design(strength):
    # L-BFGS-B ran out of iterations on such designs; the C-steps solve each weighted
    # least squares exactly and do not care how X is conditioned
    X, rng = collinear_design()
    beta = rng.normal(size=X.shape[1])
    y = X @ beta + 0.1 * rng.normal(size=len(X))
    y[:80] += 30.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reg = SoftTrimmedRegressor(regularization_strength=strength,
                                   random_state=0).fit(X, y)
        tight = SoftTrimmedRegressor(regularization_strength=strength, tol=1e-12,
                                     random_state=0).fit(X, y)
    assert reg.outlier_mask_[:80].all() and not reg.outlier_mask_[80:].any()
    # the fitted values are those of the converged fit, to tol residual scales
    for a, b in ((reg.predict(X), tight.predict(X)),
                 (X @ reg.raw_coef_ + reg.raw_intercept_,
                  X @ tight.raw_coef_ + tight.raw_intercept_)):
        assert np.sqrt(np.mean((a - b)[80:] ** 2)) <= 1e-5 * reg.scale_
    assert np.sqrt(np.mean((reg.predict(X) - X @ beta)[80:] ** 2)) < 0.05


def test_converges_on_star98():
    sm = pytest.importorskip("statsmodels.api")
    data = sm.datasets.star98.load_pandas()
    X = data.exog.to_numpy(dtype=float)
    y = (data.endog["NABOVE"] / data.endog.sum(axis=1)).to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reg = SoftTrimmedRegressor(random_state=0).fit(X, y)
    assert reg.n_iter_ < 100


def test_c_steps_never_raise_the_objective():
    # the iterates after 1, 2, ... steps, each scored by the reference objective
    X, y, *_ = contaminated(n=150, p=3, seed=41)
    n, p = X.shape
    Z = np.hstack([X, np.ones((n, 1))])
    h, alpha = n_kept(n, 0.25), 0.01
    penalty = np.r_[np.full(p, alpha), 0.0]
    for eps in (0.5, 5.0):
        values = []
        for steps in range(1, 9):
            theta = _lts.csteps(Z, y, np.zeros(p + 1), h, eps, penalty,
                                max_steps=steps)[0]
            values.append(soft_objective_reference(theta[:p], theta[p], X, y, h, eps,
                                                   alpha)[0])
        assert np.all(np.diff(values) <= 1e-12 * np.abs(values[:-1])), values
        assert values[-1] < values[0]


def test_rank_deficient_design():
    # a duplicated column and a column of zeros: the minimum-norm solution, the same
    # predictions as without them, no warning
    X, y, *_ = contaminated(n=300, p=3, seed=53)
    wide = np.hstack([X, X[:, :1], np.zeros((300, 1))])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reg = SoftTrimmedRegressor(random_state=0).fit(wide, y)
    ref = SoftTrimmedRegressor(random_state=0).fit(X, y)
    np.testing.assert_allclose(reg.predict(wide), ref.predict(X), rtol=1e-6, atol=1e-6)
    assert reg.coef_[0] == pytest.approx(reg.coef_[3]) and reg.coef_[4] == 0.0


def test_trimmed_count_reads_the_fraction_as_written():
    # 0.29 * 100 is 28.999999999999996 in floating point; 29 samples are trimmed
    rng = np.random.default_rng(54)
    X = rng.normal(size=(100, 2))
    y = X @ [1.0, 2.0] + rng.normal(size=100)
    reg = SoftTrimmedRegressor(trim_fraction=0.29, random_state=0).fit(X, y)
    assert reg.inlier_mask_.sum() == 71


# ---------------------------------------------------------------- the efficiency step
def test_scale_is_consistent_at_the_normal_model():
    rng = np.random.default_rng(42)
    X = rng.normal(size=(4000, 3))
    y = X @ [1.0, -2.0, 0.5] + 2.0 * rng.normal(size=4000)
    for trim in (0.1, 0.25, 0.5):
        reg = SoftTrimmedRegressor(trim_fraction=trim, random_state=0).fit(X, y)
        assert reg.scale_ == pytest.approx(2.0, rel=0.05), trim


def test_mm_refit_on_clean_data_is_close_to_least_squares():
    # what the efficiency step is for: the trimmed fit alone loses to OLS on clean data
    rng = np.random.default_rng(43)
    X = rng.normal(size=(3000, 5))
    y = X @ np.arange(1.0, 6.0) + rng.normal(size=3000)
    ols = LinearRegression().fit(X, y)
    reg = SoftTrimmedRegressor(random_state=0).fit(X, y)
    raw_error = np.abs(reg.raw_coef_ - ols.coef_).max()
    mm_error = np.abs(reg.coef_ - ols.coef_).max()
    assert mm_error < 0.01 and mm_error < raw_error / 2, (mm_error, raw_error)
    assert reg.outlier_mask_.sum() <= 3


@pytest.mark.parametrize("refit", ["mm", "reweighted", None])
def test_refit_options_and_outlier_mask(refit):
    X, y, coef, intercept, out = contaminated(n=300, seed=44)
    reg = SoftTrimmedRegressor(refit=refit, alpha=0.01, random_state=0).fit(X, y)
    raw = SoftTrimmedRegressor(refit=None, alpha=0.01, random_state=0).fit(X, y)
    # the trimmed fit, its masks and scale do not depend on the refit
    np.testing.assert_array_equal(reg.raw_coef_, raw.coef_)
    assert reg.raw_intercept_ == raw.intercept_ and reg.scale_ == raw.scale_
    np.testing.assert_array_equal(reg.inlier_mask_, raw.inlier_mask_)
    np.testing.assert_array_equal(reg.weights_, raw.weights_)
    assert reg.outlier_mask_[out].all()
    r_raw = y - X @ reg.raw_coef_ - reg.raw_intercept_
    if refit is None:
        np.testing.assert_array_equal(reg.coef_, reg.raw_coef_)
        np.testing.assert_array_equal(reg.outlier_mask_, ~reg.inlier_mask_)
    elif refit == "reweighted":
        keep = np.abs(r_raw) <= 2.241402727604947 * reg.scale_
        np.testing.assert_array_equal(reg.outlier_mask_, ~keep)
        ref = Ridge(alpha=keep.sum() * 0.01).fit(X[keep], y[keep])
        np.testing.assert_allclose(reg.coef_, ref.coef_, rtol=1e-8)
        assert reg.intercept_ == pytest.approx(ref.intercept_, rel=1e-8)
    else:
        r = y - reg.predict(X)
        np.testing.assert_array_equal(reg.outlier_mask_,
                                      np.abs(r) >= 4.685 * reg.scale_)
        # a fixed point of the bisquare's reweighted (ridge) least squares
        w = np.clip(1 - (r / (4.685 * reg.scale_)) ** 2, 0, None) ** 2
        ref = Ridge(alpha=len(y) * 0.01).fit(X, y, sample_weight=w)
        np.testing.assert_allclose(reg.coef_, ref.coef_, rtol=1e-5)
    assert np.abs(reg.coef_ - coef).max() < 0.1


# ------------------------------------------------------------------------ sample weights
def weighted_mask_reference(loss, h, eps, sw):
    """argmin <u, loss> + eps/2 sum u^2 / sw over {0 <= u <= sw, sum u = h}, by
    bisection on the threshold (no sort)."""
    lo, hi = loss.min() - eps - 1.0, loss.max() + eps + 1.0
    for _ in range(200):
        tau = 0.5 * (lo + hi)
        if np.sum(sw * np.clip((tau - loss) / eps, 0, 1)) < h:
            lo = tau
        else:
            hi = tau
    return sw * np.clip((0.5 * (lo + hi) - loss) / eps, 0, 1)


@pytest.mark.parametrize("eps", [0.0, 0.3, 3.0])
def test_weighted_trimming_mask(eps):
    rng = np.random.default_rng(45)
    loss = rng.exponential(size=40)
    loss[:5] = loss[5]  # ties
    sw = rng.uniform(0.2, 3.0, size=40)
    h = 0.7 * sw.sum()
    u = _lts.trimming_mask(loss, h, eps, sw)
    assert u.sum() == pytest.approx(h, rel=1e-12)
    assert np.all(u >= 0) and np.all(u <= sw)
    if eps > 0:
        np.testing.assert_allclose(u, weighted_mask_reference(loss, h, eps, sw),
                                   atol=1e-9)
    else:  # the smallest losses whole, one sample partly
        order = np.argsort(loss, kind="stable")
        assert np.sum((u > 0) & (u < sw)) <= 1
        assert np.all(np.diff(u[order] / sw[order]) <= 0)
    # integer weights: the mask of the repeated sample, summed over the copies
    counts = rng.integers(1, 4, size=40)
    h = int(0.75 * counts.sum())
    u = _lts.trimming_mask(loss, h, eps, counts.astype(float))
    repeated = _lts.trimming_mask(np.repeat(loss, counts), h, eps)
    np.testing.assert_allclose(u, np.add.reduceat(repeated, np.r_[0, np.cumsum(
        counts)[:-1]]), atol=1e-9)


@pytest.mark.parametrize("eps", [1e-20, 1.0])
def test_weighted_mask_with_losses_far_beyond_the_strength(eps):
    # bands narrower than the float spacing of the losses (loss + eps == loss): the
    # mask still sums to h, and splits the boundary as the hard mask does (tied
    # losses share it equally)
    sw = np.full(10, 0.3)
    for loss, want in ((np.r_[np.zeros(5), np.full(5, _lts.LOSS_CAP)],
                        np.r_[np.full(5, 0.3), np.full(5, 0.1)]),
                       (np.r_[np.zeros(5), 1e14 + np.arange(5.0)],
                        np.r_[np.full(6, 0.3), 0.2, 0, 0, 0]),
                       (np.r_[1e200 * np.arange(1.0, 6.0), np.zeros(5)],
                        np.r_[0.3, 0.2, 0, 0, 0, np.full(5, 0.3)])):
        u = _lts.trimming_mask(loss, 2.0, eps, sw)
        assert u.sum() == pytest.approx(2.0, rel=1e-12)
        np.testing.assert_allclose(u, want, atol=1e-12)


@pytest.mark.parametrize("refit", ["mm", "reweighted", None])
@pytest.mark.parametrize("strength", [0.0, 1.0])
def test_integer_weights_are_repeated_samples(refit, strength):
    X, y, *_ = contaminated(n=120, p=3, seed=46)
    counts = np.random.default_rng(47).integers(0, 4, size=len(y))
    params = dict(refit=refit, regularization_strength=strength, alpha=0.01, tol=1e-10,
                  random_state=0)
    weighted = SoftTrimmedRegressor(**params).fit(X, y, sample_weight=counts)
    repeated = SoftTrimmedRegressor(**params).fit(np.repeat(X, counts, axis=0),
                                                  np.repeat(y, counts))
    np.testing.assert_allclose(weighted.coef_, repeated.coef_, rtol=1e-6)
    assert weighted.intercept_ == pytest.approx(repeated.intercept_, rel=1e-6)
    np.testing.assert_allclose(weighted.raw_coef_, repeated.raw_coef_, rtol=1e-6)
    assert weighted.scale_ == pytest.approx(repeated.scale_, rel=1e-6)
    assert weighted.loss_scale_ == pytest.approx(repeated.loss_scale_, rel=1e-6)
    # per-sample attributes: a sample is an outlier when all its copies are (the
    # hard mask may keep some copies of a sample at the trimming boundary)
    used = counts > 0
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    copies_out = np.logical_and.reduceat(repeated.outlier_mask_, starts[used])
    np.testing.assert_array_equal(weighted.outlier_mask_[used], copies_out)
    assert not weighted.outlier_mask_[~used].any()
    assert not weighted.inlier_mask_[~used].any()
    assert np.all(weighted.weights_[~used] == 0)
    assert weighted.weights_.sum() == pytest.approx(repeated.weights_.sum())


def test_fractional_weights_keep_a_fraction_of_the_total():
    X, y, *_ = contaminated(n=200, p=3, seed=48)
    sw = np.random.default_rng(49).uniform(0.1, 2.0, size=200)
    reg = SoftTrimmedRegressor(random_state=0).fit(X, y, sample_weight=sw)
    assert reg.weights_.sum() == pytest.approx(0.75 * sw.sum())
    assert np.all(reg.weights_ <= sw + 1e-12)
    # scaling the weights changes nothing then, down to weights summing to 1 and up
    # to the float64 limit
    for factor in (7.3, 1.0 / sw.sum(), 1e-300, 1e300 / sw.max()):
        scaled = SoftTrimmedRegressor(random_state=0).fit(X, y,
                                                           sample_weight=factor * sw)
        np.testing.assert_allclose(scaled.coef_, reg.coef_, rtol=1e-6)
        np.testing.assert_array_equal(scaled.outlier_mask_, reg.outlier_mask_)
        np.testing.assert_allclose(scaled.weights_ / factor, reg.weights_, atol=1e-5)


@pytest.mark.parametrize("sample_weight, match", [
    (-np.ones(30), "non-negative"),
    (np.full(30, np.nan), "finite"),
    (np.ones(29), "shape"),
    (np.zeros(30), "zero everywhere"),
    (np.ones(30) + 1j, "real"),
])
def test_bad_sample_weight(sample_weight, match):
    X, y, *_ = contaminated(n=30, seed=50)
    with pytest.raises(ValueError, match=match):
        SoftTrimmedRegressor().fit(X, y, sample_weight=sample_weight)


def test_sample_weight_through_pipeline_and_metadata_routing():
    import sklearn
    from sklearn.model_selection import cross_validate
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y, *_ = contaminated(n=120, p=3, seed=51)
    sw = np.random.default_rng(52).integers(1, 3, size=120).astype(float)
    direct = SoftTrimmedRegressor(random_state=0).fit(X, y, sample_weight=sw)
    pipe = make_pipeline(StandardScaler(), SoftTrimmedRegressor(random_state=0))
    pipe.fit(X, y, softtrimmedregressor__sample_weight=sw)
    np.testing.assert_allclose(pipe.predict(X), direct.predict(X), rtol=1e-6)
    with sklearn.config_context(enable_metadata_routing=True):
        reg = SoftTrimmedRegressor(random_state=0).set_fit_request(
            sample_weight=True).set_score_request(sample_weight=False)
        result = cross_validate(reg, X, y, cv=3, params={"sample_weight": sw},
                                return_estimator=True)
        unweighted = cross_validate(SoftTrimmedRegressor(random_state=0), X, y, cv=3,
                                    return_estimator=True)
    for a, b in zip(result["estimator"], unweighted["estimator"]):
        assert not np.allclose(a.coef_, b.coef_, rtol=1e-9)
