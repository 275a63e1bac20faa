"""Inputs a new user tries that the rest of the suite does not: values at the float64
and float32 limits, NumPy scalars as options, empty batches, byte orders, and the
errors and argument forms of the public API. Each test here failed before its fix."""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import skrank
from skrank import losses, metrics

BIG = np.finfo(np.float64).max
BIG32 = float(np.finfo(np.float32).max)
STATISTICS = [
    (skrank.soft_median, ()),
    (skrank.soft_quantile, (0.5,)),
    (skrank.soft_quantile, ([0.0, 0.3, 0.9, 1.0],)),
    (skrank.soft_trimmed_mean, (0.1,)),
    (skrank.soft_trimmed_mean, (0.3,)),
]


def exact_isotonic(y, weights=None):
    """Weighted increasing isotonic regression in exact rational arithmetic (PAV)."""
    w = [1] * len(y) if weights is None else weights
    blocks = []  # [weighted sum, weight, count]
    for yi, wi in zip(map(Fraction, map(float, y)), map(Fraction, map(float, w))):
        block = [yi * wi, wi, 1]
        while blocks and blocks[-1][0] / blocks[-1][1] >= block[0] / block[1]:
            prev = blocks.pop()
            block = [prev[0] + block[0], prev[1] + block[1], prev[2] + block[2]]
        blocks.append(block)
    return np.array([float(s / t) for s, t, count in blocks for _ in range(count)])


# --- isotonic regression: block means that cannot overflow --------------------------
@pytest.mark.parametrize("y, weights", [
    ([1e308, 1.5e308, -1e308], None),
    ([1.7e308, -1.7e308] * 3, None),
    ([BIG, -BIG, BIG, -BIG, 0.0], None),
    ([1e308, 1.5e308, -1e308], [1e308, 1e308, 1.7e308]),  # weight sums overflow
    ([3.0, 2.0, 1.0, 0.0], [BIG, BIG, BIG, 1e-300]),
])
def test_isotonic_regression_at_the_float64_limits_matches_exact_means(y, weights):
    got = skrank.isotonic_regression(y, weights=weights)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, exact_isotonic(y, weights), rtol=1e-13)
    assert np.all(np.diff(got) >= 0)


def test_isotonic_regression_float32_limits():
    y = np.array([BIG32, -BIG32, BIG32, -BIG32, BIG32], np.float32)
    got = skrank.isotonic_regression(y)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, exact_isotonic(y).astype(np.float32))
    y = np.array([BIG32, BIG32, -BIG32, BIG32 / 2], np.float32)
    np.testing.assert_allclose(skrank.isotonic_regression(y), exact_isotonic(y), rtol=1e-7)


@settings(max_examples=25, deadline=None)
@given(hnp.arrays(np.float64, st.integers(1, 12),
                  elements=st.floats(-BIG, BIG, allow_nan=False, allow_infinity=False)),
       st.booleans())
def test_isotonic_regression_any_finite_input(y, increasing):
    got = skrank.isotonic_regression(y, increasing=increasing)
    assert np.isfinite(got).all()
    step = np.diff(got)
    assert np.all(step >= 0) if increasing else np.all(step <= 0)
    assert got.min() >= y.min() and got.max() <= y.max()
    want = exact_isotonic(y) if increasing else -exact_isotonic(-y)
    # pooled means are accurate to a few ulps of the row's largest magnitude: where
    # values of opposite signs near the limits cancel in a block (1.8e308 and -1.797e308
    # pooled to 5e303), that is not a few ulps of the result (found by hypothesis)
    np.testing.assert_allclose(got, want, rtol=1e-12,
                               atol=max(1e-300, 64 * 2.0 ** -52 * np.abs(y).max()))


# --- NumPy scalars stand for the Python numbers and strings they hold --------------
def test_numpy_scalars_as_options():
    x = np.array([3.0, 1.0, 2.0, 5.0])
    np.testing.assert_array_equal(skrank.soft_topk_mask(x, np.int64(2)),
                                  skrank.soft_topk_mask(x, 2))
    np.testing.assert_array_equal(skrank.soft_topk_mask(x, k=np.uint8(2)),
                                  skrank.soft_topk_mask(x, 2))
    np.testing.assert_array_equal(skrank.soft_rank(x, axis=np.int64(0)), skrank.soft_rank(x))
    np.testing.assert_array_equal(skrank.soft_rank(x, regularization=np.str_("kl")),
                                  skrank.soft_rank(x, regularization="kl"))
    np.testing.assert_array_equal(skrank.soft_sort(x, direction=np.str_("descending")),
                                  skrank.soft_sort(x, direction="descending"))
    np.testing.assert_array_equal(skrank.soft_rank(x, regularization_strength=np.float32(0.5)),
                                  skrank.soft_rank(x, regularization_strength=0.5))
    assert losses.ndcg_loss(x, x, k=np.int64(2)) == losses.ndcg_loss(x, x, k=2)
    assert losses.topk_loss(np.int64(1), x, k=np.int32(2)) == losses.topk_loss(1, x, k=2)
    np.testing.assert_array_equal(skrank.vjp(skrank.soft_topk_mask, x, np.int64(2))[0],
                                  skrank.soft_topk_mask(x, 2))
    np.testing.assert_array_equal(skrank.isotonic_regression(x, increasing=np.True_),
                                  skrank.isotonic_regression(x))
    q = skrank.soft_quantile(x, np.float64(0.3))
    assert type(q) is np.float64 and q == skrank.soft_quantile(x, 0.3)
    assert type(skrank.soft_trimmed_mean(x, np.float32(0.25))) is np.float64


# --- statistics: a convex combination of the row, never outside it ------------------
@pytest.mark.parametrize("fun, args", STATISTICS)
@pytest.mark.parametrize("eps", [0.0, 1e-3, 1.0, 1e3, 1e300])
def test_constant_rows_give_the_constant_exactly(fun, args, eps):
    for value, dtype in [(2.5, np.float64), (0.1, np.float64), (-7.3, np.float32),
                         (BIG, np.float64), (BIG32, np.float32)]:
        x = np.full((3, 9), value, dtype)
        got = fun(x, *args, regularization_strength=eps)
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, np.full(got.shape, value, dtype))


@pytest.mark.parametrize("fun, args", STATISTICS)
@pytest.mark.parametrize("eps", [0.0, 1.0, 1e307, 1e300 * 1e8])
def test_statistics_near_overflow_stay_finite_and_in_range(fun, args, eps):
    x = np.array([[1.7e308, 1.6e308, 1.5e308, 1.79e308],
                  [-BIG, BIG, -BIG, BIG],
                  [-1.7e308, 1e-300, 0.0, 1.7e308]])
    with np.errstate(all="raise"):  # and no stray overflow warnings
        got = fun(x, *args, regularization_strength=eps)
    assert np.isfinite(got).all()
    assert np.all(got >= x.min(axis=-1)) and np.all(got <= x.max(axis=-1))
    value, vjp_fn = skrank.vjp(fun, x, *args, regularization_strength=eps)
    # (with a derivative or without, the statistics are the kernel's compensated sums)
    np.testing.assert_array_equal(value, got)
    with np.errstate(all="raise"):
        assert np.isfinite(vjp_fn(np.ones(value.shape))).all()
    if eps == 0.0 and fun is skrank.soft_median:
        np.testing.assert_allclose(got, [1.65e308, 0.0, 1e-300 / 2], rtol=1e-15)


def test_the_issue_examples():
    assert skrank.soft_median(np.full(9, 2.5)) == 2.5
    x = [1.7e308, 1.6e308, 1.5e308, 1.79e308]
    assert skrank.soft_median(x) == pytest.approx(skrank.soft_quantile(x, 0.5), rel=1e-12)
    x32 = np.full(5, 3.4e38, np.float32)
    assert skrank.soft_trimmed_mean(x32, 0.1) == np.float32(3.4e38)
    assert skrank.soft_median(x32) == np.float32(3.4e38)


@settings(max_examples=30, deadline=None)
@given(hnp.arrays(st.sampled_from([np.float32, np.float64]),
                  st.tuples(st.integers(1, 3), st.integers(1, 9)),
                  elements=st.floats(-2.0 ** 100, 2.0 ** 100, width=32)),
       st.sampled_from([0.0, 1e-6, 1e-2, 1.0, 1e4, 1e40]),
       st.sampled_from(range(len(STATISTICS))))
def test_statistics_within_each_rows_range(x, eps, which):
    fun, args = STATISTICS[which]
    got = fun(x, *args, regularization_strength=eps)
    assert got.dtype == x.dtype
    lo, hi = x.min(axis=-1), x.max(axis=-1)
    assert np.all(got >= lo) and np.all(got <= hi)


# --- no rows: an empty result of the right shape ------------------------------------
@pytest.mark.parametrize("fun, args, shape", [
    (skrank.soft_quantile, (0.5,), (0,)),
    (skrank.soft_quantile, ([0.1, 0.5],), (2, 0)),
    (skrank.soft_median, (), (0,)),
    (skrank.soft_trimmed_mean, (0.1,), (0,)),
    (skrank.soft_topk_mask, (3,), (0,)),
    (skrank.soft_rank, (), (0,)),
])
def test_no_ragged_rows(fun, args, shape):
    got = fun(np.empty(0), *args, lengths=[])
    assert got.shape == shape and got.dtype == np.float64
    value, vjp_fn = skrank.vjp(fun, np.empty(0), *args, lengths=[])
    assert vjp_fn(np.zeros(shape)).shape == (0,)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_no_rows_of_a_given_length(dtype):
    x = np.zeros((0, 3), dtype)
    for k in (0, 1, 3):
        got = skrank.soft_topk_mask(x, k)
        assert got.shape == (0, 3) and got.dtype == dtype
    with pytest.raises(ValueError, match=r"\[0, 3\]"):
        skrank.soft_topk_mask(x, 4)
    assert skrank.soft_quantile(x, [0.2, 0.7]).shape == (2, 0)
    assert skrank.soft_median(np.zeros((4, 0, 3), dtype), axis=0).shape == (0, 3)
    with pytest.raises(ValueError, match="empty row"):  # rows exist, but are empty
        skrank.soft_median(np.zeros((4, 0, 3), dtype), axis=1)
    assert skrank.soft_trimmed_mean(x, 0.2).shape == (0,)
    with pytest.raises(ValueError, match="non-negative"):
        skrank.soft_topk_mask(np.empty(0), -1, lengths=[])


# --- byte order: the dtype rule looks at kind and size ------------------------------
@pytest.mark.parametrize("code", [">f4", ">f8", "<f4"])
def test_byte_order(code):
    x = np.array([[3.0, 1.0, 2.0], [0.5, 0.25, 1.0]], dtype=code)
    native = x.astype(x.dtype.newbyteorder("="))
    for fun, args in [(skrank.soft_rank, ()), (skrank.soft_sort, ()),
                      (skrank.soft_topk_mask, (1,)), (skrank.soft_quantile, (0.4,)),
                      (skrank.isotonic_regression, ())]:
        got = fun(x, *args)
        assert got.dtype == native.dtype and got.dtype.isnative
        np.testing.assert_array_equal(got, fun(native, *args))


# --- errors that name the caller's argument, and only options that exist ------------
def test_loss_errors_name_their_own_argument():
    x = np.array([[1.0, np.nan, 2.0]])
    for loss in (losses.spearman_loss, losses.ndcg_loss):
        with pytest.raises(ValueError, match="y_pred contains NaN") as info:
            loss(np.ones((1, 3)), x)
        assert "nan_policy" not in str(info.value)
    with pytest.raises(ValueError, match="scores contains NaN") as info:
        losses.topk_loss([0], x)
    assert "nan_policy" not in str(info.value)
    with pytest.raises(ValueError, match="nan_policy='propagate'"):  # it has one
        skrank.soft_rank(x)


def test_jvp_takes_positional_extras_as_vjp_does():
    x = np.array([3.0, 1.0, 2.0, 7.0])
    t = np.array([1.0, -2.0, 0.5, 0.0])
    for fun, extra in [(skrank.soft_quantile, 0.3), (skrank.soft_topk_mask, 2),
                       (skrank.soft_trimmed_mean, 0.25)]:
        name = {skrank.soft_quantile: "q", skrank.soft_topk_mask: "k",
                skrank.soft_trimmed_mean: "proportiontocut"}[fun]
        value, out = skrank.jvp(fun, x, t, extra, regularization_strength=0.7)
        value_kw, out_kw = skrank.jvp(fun, x, t, regularization_strength=0.7,
                                      **{name: extra})
        np.testing.assert_array_equal(value, value_kw)
        np.testing.assert_array_equal(out, out_kw)
        with pytest.raises(TypeError, match="multiple values"):
            skrank.jvp(fun, x, t, extra, **{name: extra})
    with pytest.raises(TypeError, match="takes 1 positional argument"):
        skrank.jvp(skrank.soft_rank, x, t, 2)


def test_scalar_input_says_what_to_do():
    with pytest.raises(np.exceptions.AxisError, match="scalar.*axis=None"):
        skrank.soft_rank(3.0)
    with pytest.raises(ValueError, match="scalar"):  # AxisError is a ValueError
        skrank.soft_median(np.float64(2.0))
    np.testing.assert_array_equal(skrank.soft_rank(3.0, axis=None), [1.0])


def test_metric_accepts_numpy_scalar_options():
    y = np.array([1.0, 3.0, 2.0, 5.0])
    assert metrics.soft_spearman(y, y, regularization_strength=np.float64(0.0)) == 1.0


# --- every dtype, byte order and layout, property-based ------------------------------
OPERATORS = [
    (skrank.soft_rank, (), {}),
    (skrank.soft_sort, (), {"regularization": "kl"}),
    (skrank.soft_topk_mask, (1,), {}),
    (skrank.soft_quantile, ([0.25, 0.5],), {}),
    (skrank.soft_median, (), {}),
    (skrank.soft_trimmed_mean, (0.2,), {}),
    (skrank.isotonic_regression, (), {}),
]
DTYPES = ["?", "i1", "u2", "<i8", ">i4", "e", "<f4", ">f4", "<f8", ">f8", "g"]


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(range(len(OPERATORS))), st.sampled_from(DTYPES),
       st.tuples(st.integers(0, 3), st.integers(1, 6)),
       st.sampled_from(["C", "F", "strided", "readonly"]), st.data())
def test_any_dtype_and_layout(which, code, shape, layout, data):
    """Every real dtype and byte order, C/F order, strided and read-only views: the
    result equals the float64 computation (float32 kept as float32, everything else
    float64), and the input is never modified."""
    fun, args, kw = OPERATORS[which]
    dtype = np.dtype(code)
    values = data.draw(hnp.arrays(np.float64, shape, elements=st.sampled_from(
        [0.0, -0.0, 1.0, 2.0, 2.0, -3.0, 0.5, 7.0, 100.0])))
    x = values.astype(dtype)
    if layout == "F":
        x = np.asfortranarray(x)
    elif layout == "strided":
        x = np.repeat(x, 2, axis=-1)[..., ::2]
    elif layout == "readonly":
        x.flags.writeable = False
    before = x.copy()
    got = fun(x, *args, **kw)
    np.testing.assert_array_equal(x, before)
    float32 = dtype.kind == "f" and dtype.itemsize == 4
    assert got.dtype == (np.float32 if float32 else np.float64)
    want = fun(x.astype(np.float32 if float32 else np.float64), *args, **kw)
    np.testing.assert_array_equal(got, want)


# --- found in review ----------------------------------------------------------------
def test_huge_weights_in_one_row_leave_the_others_and_small_weights_exact():
    y = np.array([[0.0, 1.0], [2.0, 1.0]])
    w = np.array([[1e300, 1.0], [1e-300, 1e-300]])
    np.testing.assert_allclose(skrank.isotonic_regression(y, weights=w),
                               [exact_isotonic(r, v) for r, v in zip(y, w)], rtol=1e-13)
    got = skrank.isotonic_regression([2.0, 1.0, 0.0], weights=[1e-300, 1e-300, 1e300])
    np.testing.assert_array_equal(got, exact_isotonic([2.0, 1.0, 0.0], [1e-300, 1e-300, 1e300]))


def test_derivatives_of_masks_with_an_empty_ragged_row():
    x = np.array([1.0, 2.0, 3.0, 0.5])
    for lengths in ([3, 0, 1], [4, 0], [0, 4]):
        value, vjp_fn = skrank.vjp(skrank.soft_topk_mask, x, 0, lengths=lengths)
        np.testing.assert_array_equal(value, np.zeros(4))
        np.testing.assert_array_equal(vjp_fn(np.ones(4)), np.zeros(4))
        np.testing.assert_array_equal(
            skrank.jvp(skrank.soft_topk_mask, x, np.ones(4), 0, lengths=lengths)[1],
            np.zeros(4))

