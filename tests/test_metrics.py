"""skrank.metrics: soft_spearman against SciPy, its limits and invariances, its
gradient against finite differences, and the scorers inside GridSearchCV."""

import subprocess
import sys
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import ConstantInputWarning, rankdata, spearmanr
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV, KFold

import skrank
from skrank.metrics import soft_spearman, soft_spearman_scorer, spearman_scorer


def _problem(seed, shape=(40,), ties=True):
    """y_true with ties (rounded), y_pred correlated with it plus noise."""
    rng = np.random.default_rng(seed)
    y_true = rng.normal(size=shape)
    if ties:
        y_true = np.round(2 * y_true)
    return y_true, y_true + rng.normal(size=shape)


def _pearson_limit(y_true, y_pred):
    return np.corrcoef(rankdata(y_true), y_pred)[0, 1]


# --------------------------------------------------------------------------- strength 0
small_ints = st.lists(st.integers(-3, 3), min_size=2, max_size=40)


@given(st.data())
def test_strength_zero_equals_scipy_with_ties(data):
    y_true = np.array(data.draw(small_ints), dtype=float)
    y_pred = np.array(data.draw(st.lists(st.integers(-3, 3), min_size=len(y_true),
                                         max_size=len(y_true))), dtype=float)
    constant = np.ptp(y_true) == 0 or np.ptp(y_pred) == 0
    for reg in ("l2", "kl"):
        if constant:
            with pytest.warns(ConstantInputWarning):
                got = soft_spearman(y_true, y_pred, regularization_strength=0.0,
                                    regularization=reg)
            assert np.isnan(got)
        else:
            want = spearmanr(y_true, y_pred).statistic
            got = soft_spearman(y_true, y_pred, regularization_strength=0.0,
                                regularization=reg)
            assert got == want  # bit for bit


@given(st.integers(0, 2**32 - 1), st.integers(2, 60), st.integers(1, 4))
def test_strength_zero_equals_scipy_per_column(seed, n, k):
    rng = np.random.default_rng(seed)
    y_true = np.round(rng.normal(size=(n, k)) * 2)  # ties
    y_pred = np.round(rng.normal(size=(n, k)), 1)  # ties, in another pattern
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConstantInputWarning)
        want = np.array([spearmanr(y_true[:, j], y_pred[:, j]).statistic for j in range(k)])
        got = soft_spearman(y_true, y_pred, regularization_strength=0.0,
                            multioutput="raw_values")
    np.testing.assert_array_equal(got, want)  # bit for bit; NaN where scipy's is


def _scipy_spearman(y_true, y_pred):
    """spearmanr's statistic; NaN without a warning on constant input."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConstantInputWarning)
        return spearmanr(y_true, y_pred).statistic


def test_strength_zero_is_bit_identical_to_scipy():
    # computed as spearmanr computes it (rankdata, then numpy.corrcoef of the (n, 2)
    # array of ranks): not merely within rounding (n = 2 reversed was 2 ulp off)
    rng = np.random.default_rng(21)
    cases = [([1.0, 2.0], [2.0, 1.0]), ([1.0, 2.0], [1.0, 2.0]),
             ([1.0, 2.0, 3.0], [3.0, 1.0, 2.0]), ([0.0, 0.0, 1.0], [2.0, 1.0, 1.0])]
    for n in (2, 3, 5, 17, 100, 1001):
        y_true = rng.normal(size=n)
        cases.append((y_true, y_true + rng.normal(size=n)))
        cases.append((np.round(y_true), np.round(rng.normal(size=n), 1)))  # ties
        cases.append((y_true, (-y_true).astype(np.float32)))
        cases.append((y_true, 1e300 * rng.normal(size=n)))
    for y_true, y_pred in cases:
        want = _scipy_spearman(y_true, y_pred)
        for reg in ("l2", "kl"):
            got = soft_spearman(y_true, y_pred, regularization_strength=0.0,
                                regularization=reg)
            np.testing.assert_array_equal(got, want)
            value, _ = skrank.vjp(soft_spearman, y_true, y_pred, argnums=1,
                                  regularization_strength=0.0, regularization=reg)
            np.testing.assert_array_equal(value, want)
    # per column too
    y_true, y_pred = _problem(22, (30, 4))
    got = soft_spearman(y_true, y_pred, regularization_strength=0.0,
                        multioutput="raw_values")
    want = [spearmanr(y_true[:, j], y_pred[:, j]).statistic for j in range(4)]
    np.testing.assert_array_equal(got, want)


def test_overflowing_sum_of_y_pred():
    # the std is formed without overflow; strength 0 needs no std at all
    y_true = np.arange(4.0)
    big = np.array([1e308, 1.5e308, 1.7e308, -1.7e308])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for y_pred in (big[:3], big, np.array([1.7e308, -1.7e308, 0.0, 1.7e308])):
            t = y_true[:len(y_pred)]
            assert soft_spearman(t, y_pred, regularization_strength=0.0) == \
                spearmanr(t, y_pred).statistic
            for s in (0.001, 0.5, 5.0):
                got = soft_spearman(t, y_pred, regularization_strength=s)
                want = soft_spearman(t, y_pred / 1e300, regularization_strength=s)
                assert got == pytest.approx(want, abs=1e-12)
                _, vjp_fn = skrank.vjp(soft_spearman, t, y_pred, argnums=1,
                                       regularization_strength=s)
                _, vjp_small = skrank.vjp(soft_spearman, t, y_pred / 1e300, argnums=1,
                                          regularization_strength=s)
                np.testing.assert_allclose(vjp_fn(1.0) * 1e300, vjp_small(1.0),
                                           rtol=1e-9, atol=1e-12)


def test_default_strength_and_its_contract():
    import inspect
    import pathlib

    default = inspect.signature(soft_spearman).parameters["regularization_strength"]
    assert default.default == 0.5
    readme = pathlib.Path(__file__).resolve().parents[1] / "README.md"
    if readme.exists():  # the README's table states the same default
        row = [line for line in readme.read_text().splitlines()
               if line.startswith("| `skrank.metrics.soft_spearman(")]
        assert len(row) == 1 and "regularization_strength=0.5," in row[0]
    # a large strength pools every sample: the metric is then Pearson of
    # rankdata(y_true) with y_pred, not invariant to the monotone transform exp;
    # the default stays close to the hard value 1
    y = np.random.default_rng(0).normal(size=1000)
    assert soft_spearman(y, y, regularization_strength=1e4) == \
        pytest.approx(_pearson_limit(y, y), abs=1e-12)
    assert soft_spearman(y, np.exp(y), regularization_strength=1e5) == \
        pytest.approx(_pearson_limit(y, np.exp(y)), abs=1e-12)
    assert soft_spearman(y, np.exp(y)) > 0.999 and soft_spearman(y, y) > 0.9999


def pooled_share(y_pred, strength):
    """The share of the samples whose soft rank (at the metric's strength) is not
    their hard rank: the samples in pooled blocks."""
    q75, q25 = np.quantile(y_pred, [0.75, 0.25])
    eps = strength * (q75 - q25) / len(y_pred)
    soft = skrank.soft_rank(y_pred, regularization_strength=eps)
    return np.mean(np.abs(soft - skrank.soft_rank(y_pred, regularization_strength=0.0))
                   > 1e-9)


@pytest.mark.parametrize("noise", ["normal", "t3", "uniform"])
def test_default_strength_means_the_same_at_any_n(noise):
    # the strength is in units of IQR(y_pred) / n: at the default the soft and hard
    # correlations stay within 0.002 from n = 100 to 1,000,000, and at least a
    # quarter of the samples lie in pooled blocks (the gradient reaches them)
    rng = np.random.default_rng(60)
    for n in (100, 1000, 10_000, 100_000, 1_000_000):
        for _ in range(5 if n <= 1000 else 1):
            y_true = rng.normal(size=n)
            draw = {"normal": rng.normal, "t3": lambda size: rng.standard_t(3, size),
                    "uniform": lambda size: rng.uniform(-2.0, 2.0, size)}[noise]
            y_pred = y_true + 0.5 * draw(size=n)
            soft = soft_spearman(y_true, y_pred)
            hard = soft_spearman(y_true, y_pred, regularization_strength=0.0)
            assert abs(soft - hard) <= 0.002, (n, soft, hard)
            assert pooled_share(y_pred, 0.5) >= 0.25, n


def test_default_gradient_matches_finite_differences_at_larger_n():
    rng = np.random.default_rng(61)
    y_true = rng.normal(size=400)
    y_pred = y_true + 0.5 * rng.normal(size=400)
    _, vjp_fn = skrank.vjp(soft_spearman, y_true, y_pred, argnums=1)
    grad = vjp_fn(1.0)
    assert np.mean(grad != 0) >= 0.25  # informative: the pooled samples carry it
    direction = rng.normal(size=400)
    h = 1e-7
    fd = (soft_spearman(y_true, y_pred + h * direction)
          - soft_spearman(y_true, y_pred - h * direction)) / (2 * h)
    assert grad @ direction == pytest.approx(fd, rel=1e-5, abs=1e-9)


def test_small_strength_approaches_hard_and_large_moves_away():
    y_true, y_pred = _problem(0, (200,))
    hard = spearmanr(y_true, y_pred).statistic
    assert abs(soft_spearman(y_true, y_pred, regularization_strength=1e-7) - hard) < 1e-9
    # the default strength is visibly soft at n = 200, and mild
    assert 1e-6 < abs(soft_spearman(y_true, y_pred) - hard) < 2e-3


# --------------------------------------------------------------------------- invariances
@pytest.mark.parametrize("reg", ["l2", "kl"])
@pytest.mark.parametrize("s", [0.0, 1.0, 15.0, 250.0])
def test_scale_and_shift_invariance(reg, s):
    y_true, y_pred = _problem(1, (60, 2))
    kw = dict(regularization_strength=s, regularization=reg, multioutput="raw_values")
    base = soft_spearman(y_true, y_pred, **kw)
    for a, b, c, d in [(3.0, -1.0, 1e-3, 5.0), (0.5, 7.0, 250.0, -40.0)]:
        got = soft_spearman(a * y_true + b, c * y_pred + d, **kw)
        np.testing.assert_allclose(got, base, rtol=0, atol=1e-10)
    # reversing y_true's order flips the sign (tie-averaged ranks reverse exactly)
    np.testing.assert_allclose(soft_spearman(-y_true, y_pred, **kw), -base, atol=1e-12)
    if s > 0:  # the soft ranks are in play (so the invariance is not the hard one's)
        hard = soft_spearman(y_true, y_pred, regularization_strength=0.0,
                             multioutput="raw_values")
        assert np.abs(base - hard).max() > 1e-5


def test_extreme_scales_and_strengths():
    y_true, y_pred = _problem(18, (40, 2))
    kw = dict(regularization_strength=0.1, multioutput="raw_values")
    base = soft_spearman(y_true, y_pred, **kw)
    _, vjp_fn = skrank.vjp(soft_spearman, y_true, y_pred, argnums=1, **kw)
    grad = vjp_fn(np.ones(2))
    for c in (1e-300, 1e300):  # the std neither underflows nor overflows
        np.testing.assert_allclose(soft_spearman(y_true, c * y_pred, **kw), base,
                                   rtol=0, atol=1e-12)
        _, vjp_c = skrank.vjp(soft_spearman, y_true, c * y_pred, argnums=1, **kw)
        np.testing.assert_allclose(vjp_c(np.ones(2)) * c, grad, rtol=1e-9, atol=0)
    # a strength so large that the soft ranks are constant to rounding: NaN, not an error
    with pytest.warns(ConstantInputWarning, match="extreme strength"):
        got = soft_spearman(y_true, 1e10 * y_pred, regularization_strength=1e300,
                            multioutput="raw_values")
    assert np.isnan(got).all()


def test_large_strength_tends_to_pearson_of_true_ranks():
    y_true, y_pred = _problem(2, (50,))
    limit = _pearson_limit(y_true, y_pred)
    hard = spearmanr(y_true, y_pred).statistic
    assert abs(limit - hard) > 1e-3  # the two ends differ here
    # l2: once every sample pools, the soft ranks are exactly affine in y_pred
    for s in (150.0, 5000.0):
        assert abs(soft_spearman(y_true, y_pred, regularization_strength=s) - limit) < 1e-12
    # kl: only in the limit, with an error shrinking like 1 / s
    errs = [abs(soft_spearman(y_true, y_pred, regularization_strength=s,
                              regularization="kl") - limit) for s in (500.0, 5e3, 5e4)]
    assert errs[0] > errs[1] > errs[2]
    assert errs[2] < 1e-4


def test_monotone_trends():
    rng = np.random.default_rng(3)
    y_true = rng.normal(size=500)
    # a strictly increasing transform: exactly 1 when hard, near 1 when soft
    y_pred = np.exp(y_true)
    assert soft_spearman(y_true, y_pred, regularization_strength=0.0) == pytest.approx(1.0,
                                                                                      abs=1e-14)
    assert soft_spearman(y_true, -y_pred, regularization_strength=0.0) == pytest.approx(-1.0,
                                                                                       abs=1e-14)
    for reg in ("l2", "kl"):
        soft = soft_spearman(y_true, y_pred, regularization=reg)
        assert 0.9 < soft < 1.0
        # more noise in the predictions: less correlation, at every strength
        for s in (0.0, 0.5, 25.0):
            values = [soft_spearman(y_true, y_true + sigma * rng.normal(size=500),
                                    regularization_strength=s, regularization=reg)
                      for sigma in (0.1, 0.5, 2.0, 10.0)]
            assert all(np.diff(values) < 0), values
            assert values[0] > 0.9 and abs(values[-1]) < 0.3


def test_l2_and_kl_differ_and_agree_at_zero():
    y_true, y_pred = _problem(4, (80,))
    l2 = soft_spearman(y_true, y_pred, regularization_strength=4.0)
    kl = soft_spearman(y_true, y_pred, regularization_strength=4.0, regularization="kl")
    assert abs(l2 - kl) > 1e-4
    assert soft_spearman(y_true, y_pred, regularization_strength=0.0) == \
        soft_spearman(y_true, y_pred, regularization_strength=0.0, regularization="kl")


def test_matches_a_direct_computation():
    # Pearson of rankdata(y_true) and soft_rank(y_pred, s * IQR(y_pred) / n), per column
    y_true, y_pred = _problem(5, (30, 3))
    for reg in ("l2", "kl"):
        got = soft_spearman(y_true, y_pred, regularization_strength=6.0, regularization=reg,
                            multioutput="raw_values")
        want = [np.corrcoef(rankdata(t), skrank.soft_rank(
            p, regularization_strength=6.0 * np.subtract(*np.quantile(p, [0.75, 0.25]))
            / len(p), regularization=reg))[0, 1] for t, p in zip(y_true.T, y_pred.T)]
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-13)


def test_float32_input():
    y_true, y_pred = _problem(6, (100, 2))
    for reg in ("l2", "kl"):
        kw = dict(regularization_strength=0.02, regularization=reg, multioutput="raw_values")
        got = soft_spearman(y_true.astype(np.float32), y_pred.astype(np.float32), **kw)
        want = soft_spearman(y_true, y_pred.astype(np.float32).astype(np.float64), **kw)
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
        _, vjp32 = skrank.vjp(soft_spearman, y_true, y_pred.astype(np.float32), argnums=1,
                              **kw)
        _, vjp64 = skrank.vjp(soft_spearman, y_true, y_pred.astype(np.float32)
                              .astype(np.float64), argnums=1, **kw)
        g = np.array([1.0, -0.5])
        assert vjp32(g).dtype == np.float32
        np.testing.assert_allclose(vjp32(g), vjp64(g), rtol=0,
                                   atol=1e-4 * np.abs(vjp64(g)).max())
    # other real dtypes are computed in float64
    assert soft_spearman([1, 2, 3, 4], [1, 3, 2, 4], regularization_strength=0.0) == \
        pytest.approx(0.8, abs=1e-14)


# --------------------------------------------------------------------------- multioutput
def test_multioutput_variants():
    y_true, y_pred = _problem(7, (50, 3))
    kw = dict(regularization_strength=0.05)
    cols = np.array([soft_spearman(y_true[:, j], y_pred[:, j], **kw) for j in range(3)])
    raw = soft_spearman(y_true, y_pred, multioutput="raw_values", **kw)
    assert raw.shape == (3,)
    np.testing.assert_allclose(raw, cols, rtol=0, atol=1e-14)
    avg = soft_spearman(y_true, y_pred, **kw)
    assert isinstance(avg, float)
    assert avg == pytest.approx(cols.mean(), abs=1e-14)
    w = [1.0, 0.0, 3.0]
    assert soft_spearman(y_true, y_pred, multioutput=w, **kw) == \
        pytest.approx(np.average(cols, weights=w), abs=1e-14)
    # 1-D input: a float, or one value with "raw_values"; (n, 1) is the same as (n,)
    one = soft_spearman(y_true[:, 0], y_pred[:, 0], multioutput="raw_values", **kw)
    assert one.shape == (1,) and one[0] == pytest.approx(cols[0], abs=1e-14)
    assert soft_spearman(y_true[:, :1], y_pred[:, 0], **kw) == pytest.approx(cols[0],
                                                                             abs=1e-14)


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("y_true, y_pred, kw, error, match", [
    ([1., 2., 3.], [1., 2.], {}, ValueError, "inconsistent numbers of samples"),
    (np.ones((4, 2)), np.ones((4, 3)), {}, ValueError, "different numbers of outputs"),
    ([1., np.nan, 3.], [1., 2., 3.], {}, ValueError, "y_true contains NaN or infinity"),
    ([1., 2., 3.], [1., np.inf, 3.], {}, ValueError, "y_pred contains NaN or infinity"),
    (["a", "b"], [1., 2.], {}, TypeError, "y_true must hold real numbers"),
    ([1., 2.], [1 + 1j, 2.], {}, TypeError, "y_pred must hold real numbers"),
    ([1., 2.], [1., 2.], dict(regularization_strength=-0.1), ValueError,
     "finite and non-negative"),
    ([1., 2.], [1., 2.], dict(regularization_strength=np.inf), ValueError,
     "finite and non-negative"),
    ([1., 2.], [1., 2.], dict(regularization_strength=np.nan), ValueError,
     "finite and non-negative"),
    ([1., 2.], [1., 2.], dict(regularization_strength="big"), TypeError, "a real number"),
    ([1., 2.], [1., 2.], dict(regularization="l1"), ValueError, "regularization must be"),
    ([1., 2.], [1., 2.], dict(multioutput="variance_weighted"), ValueError,
     "multioutput must be"),
    (np.ones((3, 2)), np.ones((3, 2)), dict(multioutput=[1.0]), ValueError, r"shape \(2,\)"),
    (np.ones((3, 2)), np.ones((3, 2)), dict(multioutput=[-1.0, 2.0]), ValueError,
     "non-negative"),
    (np.ones((3, 2)), np.ones((3, 2)), dict(multioutput=[0.0, 0.0]), ValueError,
     "positive sum"),
    ([], [], {}, ValueError, "at least one sample"),
    (np.ones((3, 0)), np.ones((3, 0)), {}, ValueError, "at least one sample and one output"),
    (np.ones((2, 2, 2)), np.ones((2, 2, 2)), {}, ValueError, "1-D or 2-D"),
    (1.0, 2.0, {}, ValueError, "1-D or 2-D"),
])
def test_bad_input(y_true, y_pred, kw, error, match):
    with pytest.raises(error, match=match):
        soft_spearman(y_true, y_pred, **kw)
    with pytest.raises(error, match=match):
        skrank.vjp(soft_spearman, y_true, y_pred, argnums=1, **kw)


def test_bad_cotangent_and_argnums():
    y_true, y_pred = _problem(8, (10, 2))
    _, vjp_fn = skrank.vjp(soft_spearman, y_true, y_pred, argnums=1)
    with pytest.raises(ValueError, match=r"cotangent must have shape \(\)"):
        vjp_fn(np.ones(2))
    _, vjp_raw = skrank.vjp(soft_spearman, y_true, y_pred, argnums=1,
                            multioutput="raw_values")
    with pytest.raises(ValueError, match=r"cotangent must have shape \(2,\)"):
        vjp_raw(1.0)
    with pytest.raises(TypeError, match="real numbers"):
        vjp_fn("1")
    with pytest.raises(ValueError, match="argnums must name"):
        skrank.vjp(soft_spearman, y_true, y_pred, argnums=0)


# --------------------------------------------------------------------------- constant input
@pytest.mark.parametrize("s", [0.0, 0.1])
@pytest.mark.parametrize("reg", ["l2", "kl"])
def test_constant_columns_give_nan_with_warning(s, reg):
    y_true, y_pred = _problem(9, (20, 3))
    y_true[:, 0] = 2.0
    y_pred[:, 2] = -1.5
    kw = dict(regularization_strength=s, regularization=reg)
    with pytest.warns(ConstantInputWarning, match=r"constant in output\(s\) \[0 2\]"):
        raw = soft_spearman(y_true, y_pred, multioutput="raw_values", **kw)
    assert np.isnan(raw[0]) and np.isnan(raw[2]) and np.isfinite(raw[1])
    with pytest.warns(ConstantInputWarning):
        assert np.isnan(soft_spearman(y_true, y_pred, **kw))
    with pytest.warns(ConstantInputWarning):
        _, vjp_fn = skrank.vjp(soft_spearman, y_true, y_pred, argnums=1,
                               multioutput="raw_values", **kw)
    grad = vjp_fn(np.array([0.0, 1.0, 0.0]))
    assert np.isnan(grad[:, [0, 2]]).all() and np.isfinite(grad[:, 1]).all()
    # scipy agrees on the NaN
    with pytest.warns(ConstantInputWarning):
        assert np.isnan(spearmanr(y_true[:, 0], y_pred[:, 0]).statistic)


def test_single_sample_gives_nan_with_warning():
    with pytest.warns(ConstantInputWarning, match="single sample"):
        assert np.isnan(soft_spearman([1.0], [2.0]))
    with pytest.warns(ConstantInputWarning):
        raw = soft_spearman([[1.0, 2.0]], [[3.0, 4.0]], multioutput="raw_values")
    assert raw.shape == (2,) and np.isnan(raw).all()


def test_no_warning_on_ordinary_input():
    y_true, y_pred = _problem(10, (30, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        soft_spearman(y_true, y_pred)
        soft_spearman(y_true, y_pred, regularization_strength=0.0)
        skrank.vjp(soft_spearman, y_true, y_pred, argnums=1)[1](1.0)


# --------------------------------------------------------------------------- gradient
def _fd_grad(f, z, h=1e-6):
    """Central finite differences of the scalar function f at z."""
    grad = np.empty_like(z)
    for i in np.ndindex(z.shape):
        zp, zm = z.copy(), z.copy()
        zp[i] += h
        zm[i] -= h
        grad[i] = (f(zp) - f(zm)) / (2 * h)
    return grad


def _rel_err(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


# kl pools later than l2: its strengths are larger, so that every case has some pooling
@pytest.mark.parametrize("reg, s", [("l2", 0.25), ("l2", 2.5), ("l2", 12.5), ("l2", 75.0),
                                    ("kl", 2.5), ("kl", 12.5), ("kl", 25.0), ("kl", 125.0)])
@pytest.mark.parametrize("case", ["1-D", "raw_values", "weights", "uniform"])
def test_vjp_matches_finite_differences(reg, s, case):
    shape = (25,) if case == "1-D" else (25, 3)
    y_true, y_pred = _problem(11, shape)
    kw = dict(regularization_strength=s, regularization=reg)
    rng = np.random.default_rng(12)
    if case == "raw_values":
        kw["multioutput"] = "raw_values"
        g = rng.normal(size=3)
    else:
        if case == "weights":
            kw["multioutput"] = [0.2, 1.0, 0.5]
        g = np.array(-1.7)

    def f(z):
        return float(np.dot(g, soft_spearman(y_true, z, **kw)))

    value, vjp_fn = skrank.vjp(soft_spearman, y_true, y_pred, argnums=1, **kw)
    np.testing.assert_array_equal(value, soft_spearman(y_true, y_pred, **kw))
    grad = vjp_fn(g)
    assert grad.shape == y_pred.shape and grad.dtype == np.float64
    fd = _fd_grad(f, y_pred)
    assert np.abs(fd).max() > 1e-3  # the soft ranks are in play
    assert _rel_err(grad, fd) < 1e-6
    # scale and shift invariance: the gradient is orthogonal to y_pred and to 1
    for j in range(y_pred.reshape(25, -1).shape[1]):
        gj, zj = grad.reshape(25, -1)[:, j], y_pred.reshape(25, -1)[:, j]
        assert abs(gj @ zj) <= 1e-12 * np.abs(gj).sum() * np.abs(zj).max()
        assert abs(gj.sum()) <= 1e-12 * np.abs(gj).sum()


@pytest.mark.parametrize("reg, s", [("l2", 2.0), ("kl", 40.0)])
def test_vjp_needs_the_strength_dependence(reg, s):
    # the gradient at fixed eps (the soft ranks' alone) misses the term of eps = s *
    # IQR(z) / n; it matters with partial pooling (with one block, the metric is
    # scale-free anyway)
    y_true, y_pred = _problem(13, (25,))
    grad = skrank.vjp(soft_spearman, y_true, y_pred, argnums=1, regularization_strength=s,
                      regularization=reg)[1](1.0)

    def iqr(z):
        return np.subtract(*np.quantile(z, [0.75, 0.25]))

    eps = s * iqr(y_pred) / len(y_pred)

    def f_fixed(z):
        r = skrank.soft_rank(z, regularization_strength=eps, regularization=reg)
        return np.corrcoef(rankdata(y_true), r)[0, 1]

    fd_fixed = _fd_grad(f_fixed, y_pred)
    fd = _fd_grad(lambda z: soft_spearman(y_true, z, regularization_strength=s,
                                          regularization=reg), y_pred)
    # the correction is exactly the formula's, with the IQR's own gradient
    assert _rel_err(fd_fixed, fd) > 0.1
    corrected = fd_fixed - (fd_fixed @ y_pred) * _fd_grad(iqr, y_pred) / iqr(y_pred)
    assert _rel_err(corrected, fd) < 1e-6
    assert _rel_err(grad, fd) < 1e-6


def test_vjp_is_zero_at_strength_zero():
    y_true, y_pred = _problem(14, (20, 2))
    _, vjp_fn = skrank.vjp(soft_spearman, y_true, y_pred, argnums=1,
                           regularization_strength=0.0)
    np.testing.assert_array_equal(vjp_fn(1.0), np.zeros_like(y_pred))


# --------------------------------------------------------------------------- scorers
@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return X, y


def _manual_cv_scores(X, y, alphas, metric):
    cv = KFold(3)
    return np.array([np.mean([metric(y[test], Ridge(alpha=a).fit(X[train], y[train])
                                     .predict(X[test])) for train, test in cv.split(X)])
                     for a in alphas])


def test_scorers_in_grid_search(diabetes):
    X, y = diabetes
    alphas = [0.01, 1.0, 100.0]
    grid = {"alpha": alphas}
    want = {
        "soft": _manual_cv_scores(X, y, alphas, soft_spearman),
        "hard": _manual_cv_scores(X, y, alphas, lambda t, p: spearmanr(t, p).statistic),
    }
    for name, scorer in (("soft", soft_spearman_scorer), ("hard", spearman_scorer)):
        search = GridSearchCV(Ridge(), grid, scoring=scorer, cv=KFold(3)).fit(X, y)
        np.testing.assert_allclose(search.cv_results_["mean_test_score"], want[name],
                                   rtol=0, atol=1e-12)
        assert search.best_params_["alpha"] == alphas[int(np.argmax(want[name]))]
    # soft and hard differ (n ~ 147 per fold: the default strength is visible)
    assert np.abs(want["soft"] - want["hard"]).max() > 1e-5

    scoring = {"soft": soft_spearman_scorer, "hard": spearman_scorer, "r2": "r2"}
    for refit in ("soft", "hard"):
        search = GridSearchCV(Ridge(), grid, scoring=scoring, refit=refit,
                              cv=KFold(3)).fit(X, y)
        for name in ("soft", "hard"):
            np.testing.assert_allclose(search.cv_results_[f"mean_test_{name}"], want[name],
                                       rtol=0, atol=1e-12)
        assert search.best_index_ == int(np.argmax(want[refit]))
        assert search.best_estimator_.alpha == alphas[search.best_index_]
        assert search.score(X, y) == pytest.approx(
            (soft_spearman if refit == "soft" else
             lambda t, p: spearmanr(t, p).statistic)(y, search.predict(X)), abs=1e-12)


def test_scorer_is_greater_is_better(diabetes):
    X, y = diabetes
    model = Ridge(alpha=1.0).fit(X, y)
    assert spearman_scorer(model, X, y) == pytest.approx(
        spearmanr(y, model.predict(X)).statistic, abs=1e-12)
    assert soft_spearman_scorer(model, X, y) == pytest.approx(
        soft_spearman(y, model.predict(X)), abs=1e-12)
    assert skrank.metrics.spearman_scorer is spearman_scorer  # made once


# --------------------------------------------------------------------------- misc
def test_inputs_not_modified():
    y_true, y_pred = _problem(15, (30, 2))
    y_pred32 = y_pred.astype(np.float32)
    y_pred_f = np.asfortranarray(y_pred)
    for yp in (y_pred, y_pred32, y_pred_f):
        t0, p0 = y_true.copy(), yp.copy()
        for reg in ("l2", "kl"):
            soft_spearman(y_true, yp, regularization=reg, regularization_strength=0.3)
            value, vjp_fn = skrank.vjp(soft_spearman, y_true, yp, argnums=1,
                                       regularization=reg, regularization_strength=0.3,
                                       multioutput="raw_values")
            vjp_fn(np.ones(2))
            np.testing.assert_array_equal(y_true, t0)
            np.testing.assert_array_equal(yp, p0)


def test_gradient_does_not_see_later_changes_of_the_inputs():
    y_true, y_pred = _problem(16, (20,))
    _, vjp_fn = skrank.vjp(soft_spearman, y_true, y_pred, argnums=1,
                           regularization_strength=0.3, regularization="kl")
    before = vjp_fn(1.0)
    y_pred[:] = 0.0
    y_true[:] = 0.0
    np.testing.assert_array_equal(vjp_fn(1.0), before)


def test_public_names_and_lazy_scikit_learn():
    assert "metrics" in skrank.__all__ and skrank.metrics.soft_spearman is soft_spearman
    assert {"soft_spearman_scorer", "spearman_scorer"} <= set(dir(skrank.metrics))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        skrank.metrics.nope
    code = ("import sys, skrank; print('sklearn' in sys.modules or 'scipy.stats' in "
            "sys.modules)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "False"


def test_array_api_input():
    xp = pytest.importorskip("array_api_strict")
    y_true, y_pred = _problem(17, (15, 2))
    got = soft_spearman(xp.asarray(y_true), xp.asarray(y_pred), multioutput="raw_values")
    np.testing.assert_allclose(np.asarray(got), soft_spearman(y_true, y_pred,
                                                              multioutput="raw_values"))
