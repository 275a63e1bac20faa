"""Soft top-k masks, quantiles, medians and trimmed means (design notes, section 7).

The reference mask is computed independently of PAV: the projection of z onto the capped
simplex {y in [0, 1]^n, sum y = k} is clip(z - tau, 0, 1) with tau found by bisection."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import trim_mean

import skrank
from _reference import topk_mask as ref_mask


# --------------------------------------------------------------------------- reference
def ref_order_stat(x, i, eps):
    n = len(x)
    w = ref_mask(x, n - i, eps) - ref_mask(x, n - i - 1, eps)
    return float(w @ np.asarray(x, dtype=np.float64))


def ref_quantile(x, q, eps):
    n = len(x)
    h = (n - 1) * q
    j = min(int(np.floor(h)), n - 1)
    t = h - j
    a = ref_order_stat(x, j, eps)
    if t == 0:
        return a
    b = ref_order_stat(x, min(j + 1, n - 1), eps)
    return (1 - t) * a + t * b


def ref_trimmed_mean(x, p, eps):
    n = len(x)
    k = int(p * n)
    w = ref_mask(x, n - k, eps) - ref_mask(x, k, eps)
    return float(w @ np.asarray(x, dtype=np.float64)) / (n - 2 * k)


def _data(n, seed, ties=True):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return np.round(x, 1) if ties else x


# --------------------------------------------------------------------------- masks
@pytest.mark.parametrize("n", [1, 2, 3, 7, 50, 400])
@pytest.mark.parametrize("eps", [0.0, 0.05, 0.5, 5.0])
def test_mask_matches_the_bisection_projection(n, eps):
    x = _data(n, n)
    for k in sorted({0, 1, n // 2, n - 1, n} & set(range(n + 1))):
        got = skrank.soft_topk_mask(x, k, regularization_strength=eps)
        np.testing.assert_allclose(got, ref_mask(x, k, eps), atol=1e-10)
        assert abs(got.sum() - k) < 1e-9
        assert got.min() >= 0.0 and got.max() <= 1.0


def test_mask_examples_and_exact_zeros_and_ones():
    np.testing.assert_array_equal(
        skrank.soft_topk_mask([3.0, 1.0, 1.0, 0.0], 2, regularization_strength=0.0),
        [1.0, 0.5, 0.5, 0.0])
    # far from the boundary the mask is exactly 0 or 1 whatever the strength
    m = skrank.soft_topk_mask([100.0, 5.0, 4.9, 4.8, -100.0], 2, regularization_strength=1.0)
    assert m[0] == 1.0 and m[-1] == 0.0
    assert 0.0 < m[1] < 1.0 and 0.0 < m[2] < 1.0


@given(st.lists(st.floats(-5, 5), min_size=1, max_size=12), st.floats(0.01, 10.0),
       st.integers(0, 12))
def test_mask_properties(xs, eps, k):
    x = np.array(xs)
    k = min(k, x.size)
    m = skrank.soft_topk_mask(x, k, regularization_strength=eps)
    assert abs(m.sum() - k) < 1e-9
    assert (m >= 0).all() and (m <= 1).all()
    order = np.argsort(x, kind="stable")
    assert (np.diff(m[order]) >= -1e-12).all()  # larger entries never get less mask


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mask_batched_along_axes_and_dtype(dtype):
    X = _data(60, 1).reshape(3, 4, 5).astype(dtype)
    for axis in (0, 1, 2):
        got = skrank.soft_topk_mask(X, 2, regularization_strength=0.3, axis=axis)
        assert got.dtype == dtype and got.shape == X.shape
        want = np.apply_along_axis(lambda r: ref_mask(r, 2, 0.3), axis, X.astype(np.float64))
        np.testing.assert_allclose(got, want, atol=1e-6 if dtype == np.float32 else 1e-10)
    flat = skrank.soft_topk_mask(X, 7, regularization_strength=0.3, axis=None)
    np.testing.assert_allclose(flat, ref_mask(X.ravel().astype(np.float64), 7, 0.3),
                               atol=1e-6 if dtype == np.float32 else 1e-10)


# --------------------------------------------------------------------------- statistics
@pytest.mark.parametrize("n", [1, 2, 5, 6, 31, 200])
@pytest.mark.parametrize("eps", [0.05, 0.5, 3.0])
def test_quantile_median_trimmed_mean_match_references(n, eps):
    x = _data(n, 10 + n)
    for q in (0.0, 0.1, 0.25, 0.5, 0.77, 1.0):
        got = skrank.soft_quantile(x, q, regularization_strength=eps)
        assert abs(got - ref_quantile(x, q, eps)) < 1e-10
    assert abs(skrank.soft_median(x, regularization_strength=eps)
               - ref_quantile(x, 0.5, eps)) < 1e-10
    for p in (0.0, 0.1, 0.25, 0.45):
        got = skrank.soft_trimmed_mean(x, p, regularization_strength=eps)
        assert abs(got - ref_trimmed_mean(x, p, eps)) < 1e-10


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_strength_zero_is_numpy_and_scipy(dtype):
    rng = np.random.default_rng(3)
    for shape, axis in (((17,), -1), ((4, 9), 1), ((6, 5, 3), 0), ((4, 9), None)):
        x = np.round(rng.normal(size=shape), 1).astype(dtype)  # ties
        q = np.array([0.0, 0.13, 0.5, 0.5001, 0.9, 1.0])
        got = skrank.soft_quantile(x, q, regularization_strength=0.0, axis=axis)
        want = np.quantile(x, q, axis=axis)
        # skrank keeps float32 (numpy promotes to q's float64 for an array q)
        assert got.shape == want.shape and got.dtype == dtype
        if dtype == np.float64:
            np.testing.assert_array_equal(got, want)
        else:
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(
            skrank.soft_median(x, regularization_strength=0.0, axis=axis),
            np.median(x, axis=axis), rtol=1e-15 if dtype == np.float64 else 1e-6)
        for p in (0.0, 0.1, 0.3):
            t = skrank.soft_trimmed_mean(x, p, regularization_strength=0.0, axis=axis)
            np.testing.assert_allclose(t, trim_mean(x, p, axis=axis),
                                       rtol=1e-12 if dtype == np.float64 else 1e-5,
                                       atol=1e-15 if dtype == np.float64 else 1e-6)
    assert np.shape(skrank.soft_quantile(np.arange(5.0), 0.5, regularization_strength=0)) == ()


def test_large_strength_gives_the_mean():
    x = _data(40, 5)
    for value in (skrank.soft_quantile(x, 0.1, regularization_strength=1e6),
                  skrank.soft_median(x, regularization_strength=1e6),
                  skrank.soft_trimmed_mean(x, 0.3, regularization_strength=1e6)):
        assert abs(value - x.mean()) < 1e-5


def test_outliers_get_weight_zero():
    # the soft-sort route drags this median to about 200 at strength 0.01
    x = [0.1, 0.2, 0.3, 0.4, 1000.0]
    assert abs(skrank.soft_median(x, regularization_strength=0.01) - 0.3) < 1e-12
    y = [0.1, 0.2, 0.3, 0.4, 1e9]
    for eps in (0.01, 0.3, 3.0):
        assert skrank.soft_median(x, regularization_strength=eps) == \
            skrank.soft_median(y, regularization_strength=eps)
        assert skrank.soft_trimmed_mean(x, 0.2, regularization_strength=eps) == \
            skrank.soft_trimmed_mean(y, 0.2, regularization_strength=eps)


def test_per_row_strengths():
    X = _data(30, 8).reshape(3, 10)
    eps = np.array([0.0, 0.2, 2.0])
    got = skrank.soft_quantile(X, 0.3, regularization_strength=eps)
    want = [ref_quantile(r, 0.3, e) for r, e in zip(X, eps)]
    np.testing.assert_allclose(got, want, atol=1e-10)


# --------------------------------------------------------------------------- derivatives
CASES = [
    (skrank.soft_topk_mask, dict(k=3)),
    (skrank.soft_quantile, dict(q=0.3)),
    (skrank.soft_quantile, dict(q=[0.1, 0.5, 0.9])),
    (skrank.soft_median, {}),
    (skrank.soft_trimmed_mean, dict(proportiontocut=0.2)),
]


@pytest.mark.parametrize("fun, kw", CASES)
@pytest.mark.parametrize("axis", [-1, 0, None])
def test_jvp_matches_finite_differences_and_vjp_is_its_transpose(fun, kw, axis):
    rng = np.random.default_rng(11)
    x = rng.normal(size=(6, 7))  # continuous data: no kinks at the test point
    kw = dict(kw, regularization_strength=0.4, axis=axis)
    u = rng.normal(size=x.shape)
    y, t = skrank.jvp(fun, x, u, **kw)
    h = 1e-6
    fd = (np.asarray(fun(x + h * u, **kw)) - np.asarray(fun(x - h * u, **kw))) / (2 * h)
    np.testing.assert_allclose(t, fd, rtol=1e-6, atol=1e-7)
    y2, vjp_fn = skrank.vjp(fun, x, **kw)
    np.testing.assert_array_equal(y, y2)
    g = rng.normal(size=np.shape(y))
    v = vjp_fn(g)
    assert v.shape == x.shape
    assert abs(np.sum(g * t) - np.sum(v * u)) < 1e-10 * (1 + np.abs(v).sum() * np.abs(u).max())


def test_derivatives_at_strength_zero_are_the_hard_ones():
    x = np.array([0.3, -1.0, 2.0, 0.7, 5.0])
    _, t = skrank.jvp(skrank.soft_topk_mask, x, np.ones(5), k=2, regularization_strength=0.0)
    np.testing.assert_array_equal(t, np.zeros(5))
    _, vjp_fn = skrank.vjp(skrank.soft_median, x, regularization_strength=0.0)
    np.testing.assert_array_equal(vjp_fn(np.float64(1.0)), [0, 0, 0, 1, 0])  # picks 0.7
    _, vjp_fn = skrank.vjp(skrank.soft_quantile, x, 0.25, regularization_strength=0.0)
    np.testing.assert_array_equal(vjp_fn(np.float64(1.0)), [1, 0, 0, 0, 0])  # exactly 0.3
    _, vjp_fn = skrank.vjp(skrank.soft_trimmed_mean, x, 0.2, regularization_strength=0.0)
    np.testing.assert_allclose(vjp_fn(np.float64(1.0)), [1 / 3, 0, 1 / 3, 1 / 3, 0])


def test_positional_extra_arguments_and_argnums():
    x = np.array([3.0, 1.0, 2.0])
    y1, f1 = skrank.vjp(skrank.soft_topk_mask, x, 1)
    y2, f2 = skrank.vjp(skrank.soft_topk_mask, x, k=1)
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(f1(np.ones(3)), f2(np.ones(3)))
    with pytest.raises(ValueError, match="argnums"):
        skrank.vjp(skrank.soft_quantile, x, 0.5, argnums=2)


# --------------------------------------------------------------------------- errors
def test_bad_arguments():
    x = np.arange(5.0)
    for q in (-0.1, 1.1, np.nan, [[0.5]]):
        with pytest.raises(ValueError):
            skrank.soft_quantile(x, q)
    with pytest.raises(TypeError):
        skrank.soft_quantile(x, "half")
    for k in (-1, 6):
        with pytest.raises(ValueError, match="k must lie"):
            skrank.soft_topk_mask(x, k)
    for k in ("two", True, [1.0 + 1j]):  # a real k is accepted (tests/test_sparse.py)
        with pytest.raises(TypeError):
            skrank.soft_topk_mask(x, k)
    for k in (-0.5, 5.5, np.nan, [1.0, 2.0, 3.0]):
        with pytest.raises(ValueError, match="k must"):
            skrank.soft_topk_mask(x, k)
    for p in (0.5, 0.7, -0.1, "a"):
        with pytest.raises(ValueError, match="proportiontocut"):
            skrank.soft_trimmed_mean(x, p)
    for fun, args in ((skrank.soft_quantile, (0.5,)), (skrank.soft_median, ()),
                      (skrank.soft_trimmed_mean, (0.1,)), (skrank.soft_topk_mask, (1,))):
        with pytest.raises(ValueError, match="NaN"):
            fun(np.array([1.0, np.nan]), *args)
        with pytest.raises(ValueError, match="strength"):
            fun(x, *args, regularization_strength=-1.0)
    with pytest.raises(ValueError, match="empty"):
        skrank.soft_median(np.empty((3, 0)))
    assert skrank.soft_median(np.empty((0, 4))).shape == (0,)


def test_review_edge_cases():
    # np.median averages the two middle values: bit-exact at strength 0
    rng = np.random.default_rng(12)
    for _ in range(50):
        x = rng.normal(size=int(rng.integers(1, 9)) * 2)
        assert skrank.soft_median(x, regularization_strength=0.0) == np.median(x)
    # a large common offset cancels in the gradient (J 1 = 0)
    x = rng.uniform(size=200)
    _, f = skrank.vjp(skrank.soft_median, x + 1e10, regularization_strength=0.05)
    assert abs(f(1.0).sum() - 1.0) < 1e-12
    # empty q, as numpy; 0-d arrays for proportiontocut, as scipy
    assert skrank.soft_quantile(x, []).shape == (0,)
    assert skrank.soft_quantile(x.reshape(4, 50), []).shape == (0, 4)
    assert skrank.soft_trimmed_mean(x, np.array(0.1)) == skrank.soft_trimmed_mean(x, 0.1)


def test_mask_derivative_at_ties_where_the_weights_are_flat():
    # tied entries among the kept (or the dropped) are pooled by the kernel's tie
    # grouping, but the mask is locally constant there: its derivative must be 0
    _, j = skrank.jvp(skrank.soft_topk_mask, np.array([3.0, 3.0, 0.0]),
                      np.array([1.0, 0.0, 0.0]), k=2, regularization_strength=1.0)
    np.testing.assert_array_equal(j, 0.0)
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(300):
        n = int(rng.integers(2, 12))
        x = np.round(rng.normal(size=n), 0)  # many ties
        k, eps, u, h = int(rng.integers(0, n + 1)), float(rng.choice([0.3, 1.1])), \
            rng.normal(size=n), 1e-7

        def f(v):
            return skrank.soft_topk_mask(v, k, regularization_strength=eps)

        right, left = (f(x + h * u) - f(x)) / h, (f(x) - f(x - h * u)) / h
        if np.abs(right - left).max() > 1e-5:
            continue  # a kink in this direction
        checked += 1
        _, jv = skrank.jvp(skrank.soft_topk_mask, x, u, k=k, regularization_strength=eps)
        np.testing.assert_allclose(jv, (right + left) / 2, atol=1e-6)
    assert checked > 100


# ---------------------------------------------------------------- top-k in magnitude
@pytest.mark.parametrize("eps", [0.0, 0.4, 3.0])
def test_magnitude_mask_is_the_mask_of_abs(eps):
    rng = np.random.default_rng(21)
    x = np.round(rng.normal(size=(4, 9)), 1)  # ties, in value and in magnitude
    got = skrank.soft_topk_mask(x, 3, regularization_strength=eps, by="magnitude")
    np.testing.assert_array_equal(got, skrank.soft_topk_mask(np.abs(x), 3,
                                                             regularization_strength=eps))
    kept = skrank.soft_topk(x, 3, regularization_strength=eps, by="magnitude")
    np.testing.assert_array_equal(kept, got * x)
    if eps == 0:  # the hard magnitude top-k, wherever |x| has no tie at the boundary
        for row, m in zip(np.abs(x), got):
            kth = np.sort(row)[-3]
            if (row == kth).sum() == 1:
                np.testing.assert_array_equal(m, (row >= kth).astype(float))


@pytest.mark.parametrize("fun", [skrank.soft_topk_mask, skrank.soft_topk])
@pytest.mark.parametrize("by", ["value", "magnitude"])
def test_topk_derivatives_match_finite_differences(fun, by):
    rng = np.random.default_rng(22)
    x = rng.normal(size=(3, 8)) * 2  # negative entries near the magnitude boundary too
    kw = dict(regularization_strength=0.8, by=by)
    u, g = rng.normal(size=x.shape), rng.normal(size=x.shape)
    _, jv = skrank.jvp(fun, x, u, 3, **kw)
    h = 1e-6
    fd = (fun(x + h * u, 3, **kw) - fun(x - h * u, 3, **kw)) / (2 * h)
    np.testing.assert_allclose(jv, fd, atol=1e-7)
    _, vjp_fn = skrank.vjp(fun, x, 3, **kw)
    assert float((g * jv).sum()) == pytest.approx(float((vjp_fn(g) * u).sum()), abs=1e-12)


def test_magnitude_derivative_is_sign_aware_and_zero_at_zero():
    x = np.array([-1.0, 0.9, 0.0, 3.0])
    kw = dict(regularization_strength=1.0, by="magnitude")
    m = skrank.soft_topk_mask(x, 2, **kw)
    assert 0 < m[0] < 1 and 0 < m[1] < 1  # -1 and 0.9 share the second place
    _, vjp_fn = skrank.vjp(skrank.soft_topk_mask, x, 2, **kw)
    d = vjp_fn(np.array([1.0, 0.0, 0.0, 0.0]))  # d m[0] / dx
    # a more negative x[0] is a larger |x[0]| (m[0] grows); a larger x[1] competes
    np.testing.assert_allclose(d, [-0.5, -0.5, 0.0, 0.0], atol=1e-15)
    m, vjp_fn = skrank.vjp(skrank.soft_topk_mask, x, 3, **kw)
    assert 0 < m[2] < 1  # 0 in the band: its mask depends on |x[2]|, but
    d = vjp_fn(np.array([0.0, 0.0, 1.0, 0.0]))  # |x| has no derivative at 0: taken as 0
    assert d[2] == 0.0 and d[1] == -0.5  # x[1] still competes with it
    with pytest.raises(ValueError, match="by must be one of"):
        skrank.soft_topk_mask(x, 2, by="abs")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("regularization", ["l2", "p4/3", "p3/2"])
def test_values_alone_equal_the_values_with_a_gradient(dtype, regularization):
    # l2: with a derivative or without, the statistics are the kernel's pair sums
    # (no mask formed), bit for bit; the p-norms: the masks' sums, both ways
    rng = np.random.default_rng(21)
    x = np.round(rng.normal(size=(5, 40)), 1).astype(dtype)
    eps = np.array([0.0, 0.1, 0.5, 2.0, 30.0])
    lengths = np.array([40, 1, 2, 17, 33])
    cases = [(skrank.soft_quantile, ([0.0, 0.1, 0.5, 0.93, 1.0],)),
             (skrank.soft_median, ()), (skrank.soft_trimmed_mean, (0.2,))]
    ragged = x.reshape(-1)[:lengths.sum()]  # rows of these lengths, laid end to end
    for fun, args in cases:
        for a, kw in ((x, {"axis": 1}), (ragged, {"lengths": lengths})):
            kw = dict(kw, regularization_strength=eps, regularization=regularization)
            alone = fun(a, *args, **kw)
            with_grad = skrank.vjp(fun, a, *args, **kw)[0]
            assert alone.dtype == with_grad.dtype == dtype
            np.testing.assert_array_equal(alone, with_grad)
    if dtype == np.float64 and regularization == "l2":
        # a row spanning float64's range: the kernel rescales it, and its smallest
        # values keep their digits; the mean of all four (nothing cut from 4 entries)
        # is 1e-300 / 4, which the kernel's compensated sum keeps
        x = np.array([-1.79e308, 1e-300, 0.0, 1.79e308])
        for fun, args in cases:
            np.testing.assert_array_equal(fun(x, *args), skrank.vjp(fun, x, *args)[0])
        np.testing.assert_allclose(skrank.soft_trimmed_mean(x, 0.2), 1e-300 / 4,
                                   rtol=1e-15, atol=0)
        np.testing.assert_allclose(skrank.vjp(skrank.soft_trimmed_mean, x, 0.2)[0],
                                   1e-300 / 4, rtol=1e-15, atol=0)


@pytest.mark.parametrize("eps", [1e-9, 1e-12, 1e-14, 1e-300])
@pytest.mark.parametrize("offset", [0.0, 1e4])
def test_ties_straddling_the_median_at_a_small_strength(eps, offset):
    # integers with three 14s at the median: they share its weight exactly, whatever
    # the strength; the Jacobian of their block (I - 1 1^T / 3) / eps applied to x is
    # exactly 0 (its mean about the block's first value is exact), so nothing of
    # order ulp / eps leaks into the gradient or the derivative in the strength
    x = offset + np.array([13., 14, 28, 5, 14, 1, 12, 28, 18, 10, 29, 18, 28, 0, 13, 25,
                           22, 12, 14, 12, 15, 6, 23, 2])
    value, vjp_fn = skrank.vjp(skrank.soft_median, x, regularization_strength=eps)
    assert value == offset + 14.0
    g = vjp_fn(1.0)
    np.testing.assert_allclose(g, np.where(x == offset + 14, 1 / 3, 0.0), rtol=1e-15,
                               atol=0)
    _, d_eps = skrank.vjp(skrank.soft_median, x, regularization_strength=eps,
                          argnums="regularization_strength")
    assert d_eps(1.0) == 0.0
    # ties at the median near float64's limit, at the smallest strengths: finite
    x = np.array([8.52758513e306] * 7 + [1.6e308, 1.5e308, -1.5e308])
    for eps in (eps, 5e-324):
        g = skrank.vjp(skrank.soft_median, x, regularization_strength=eps)[1](1.0)
        np.testing.assert_allclose(g, np.where(x == x[0], 1 / 7, 0.0), rtol=1e-15, atol=0)


@pytest.mark.parametrize("offset, eps, q", [(0.0, 1e-2, 0.2), (100.0, 1e-3, 0.5),
                                             (100.0, 1e-4, 0.9)])
def test_derivative_in_the_strength_against_exact_sums(offset, eps, q):
    # d/d eps of <M_k, x> is -<J_k x, x> / eps with <J_k x, x> = sum over the block
    # that straddles k of (x_i - mean)^2 / eps: against exact rational sums over the
    # blocks the kernel found, with ties and values 1e-4 apart (the first case lost 9
    # digits when <J x, x> was summed as J x * x: the blocks' spread is tiny next to
    # their values)
    from fractions import Fraction

    from skrank import _pav

    rng = np.random.default_rng(5)
    m = 50
    x = rng.normal(size=(3, m))
    if offset:  # values crowded around an offset: many soft blocks
        x = offset + 1e-3 * x
        x[:, ::4] = np.round(x[:, ::4], 3)
    else:
        x[:, ::3] = np.round(x[:, ::3], 1)
        x[:, 1::3] = np.round(x[:, 1::3], 2) + 1e-4 * rng.normal(size=x[:, 1::3].shape)
    value, vjp_fn = skrank.vjp(skrank.soft_quantile, x, q, regularization_strength=eps,
                               argnums="regularization_strength")
    got = vjp_fn(np.ones(3))

    def d_mask(row, k):  # d/d eps <M_k, row>, exactly
        if k <= 0 or k >= m:
            return Fraction(0)
        out, perm, start = np.empty(m), np.empty(m, np.int32), np.empty(m, np.int32)
        nblocks = np.zeros(1, np.int64)
        _pav.forward(row, np.array([0, m]), np.array([eps]),
                     (np.arange(m) < k).astype(float), _pav.WEIGHTS_PREFIX, 1.0, _pav.L2,
                     False, out, perm, start, nblocks)
        bounds = list(start[:nblocks[0]]) + [m]
        total = Fraction(0)
        for st, en in zip(bounds[:-1], bounds[1:]):
            if st < k < en:
                v = [Fraction(float(row[perm[i]])) for i in range(st, en)]
                mean = sum(v) / len(v)
                total += sum((vi - mean) ** 2 for vi in v) / Fraction(eps)
        return -total / Fraction(eps)

    h = (m - 1) * q
    j, t = int(np.floor(h)), Fraction(h) - int(np.floor(h))
    want = Fraction(0)
    for row in x:
        a = d_mask(row, m - j) - d_mask(row, m - j - 1)
        b = d_mask(row, m - j - 1) - d_mask(row, m - j - 2)
        want += (1 - t) * a + t * b
    assert want != 0
    assert got == pytest.approx(float(want), rel=1e-13)


def test_topk_weights_are_the_clipped_ramp():
    # clip(k - j, 0, 1) at position j of each row (ones, the fraction, zeros), built
    # in place as a running sum: against the formula, with empty rows, k = 0, k = n
    from skrank._stats import _topk_weights

    rng = np.random.default_rng(3)
    for t in range(300):
        m = rng.integers(0, 8, size=rng.integers(1, 6))
        offsets = np.r_[0, np.cumsum(m)]
        k = rng.uniform(size=m.size) * m
        if t % 3 == 0:
            k = np.floor(k)
        if t % 5 == 0:
            k = m.astype(float)
        pos = np.arange(offsets[-1]) - np.repeat(offsets[:-1], m)
        want = np.clip(np.repeat(k, m) - pos, 0.0, 1.0)
        np.testing.assert_array_equal(_topk_weights(offsets, k), want)
