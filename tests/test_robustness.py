"""Long rows (the radix-sort path), extreme scales, subnormals, and derivative closures
that must not see later changes of the caller's arrays."""

import numpy as np
import pytest

import _reference as ref
import skrank

REGS = ("l2", "kl")
DIRS = ("ascending", "descending")


def _rng_ties(n, seed):
    rng = np.random.default_rng(seed)
    return np.round(rng.normal(size=n), 2)  # many ties


# Rows longer than 384 (float64) or 256 (float32) are sorted by the kernel's own radix
# sort rather than NumPy's sorts: check that path against the oracle too.
@pytest.mark.parametrize("dtype, n", [(np.float64, 3000), (np.float32, 700)])
@pytest.mark.parametrize("reg", REGS)
@pytest.mark.parametrize("direction", DIRS)
def test_radix_path_values_and_derivatives(dtype, n, reg, direction):
    x = _rng_ties(n, 1).astype(dtype)
    x[:5] = [-0.0, 0.0, -0.0, 3.5, 3.5]  # signed zeros tie
    x64 = x.astype(np.float64)
    tol = 1e-9 if dtype == np.float64 else 2e-4
    kw = dict(regularization_strength=0.05, regularization=reg, direction=direction)
    for op, oracle in ((skrank.soft_rank, ref.soft_rank), (skrank.soft_sort, ref.soft_sort)):
        got = op(x, **kw)
        want = oracle(x64, 0.05, reg, direction)
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())
        hard = op(x, regularization_strength=0.0, regularization=reg, direction=direction)
        np.testing.assert_array_equal(hard, oracle(x64, 0.0, reg, direction).astype(dtype))
    # derivatives through the radix path: jvp against central differences of the
    # (oracle-checked) values, vjp as its exact transpose
    rng = np.random.default_rng(3)
    u, g = rng.normal(size=n), rng.normal(size=n)
    y, t = skrank.jvp(skrank.soft_rank, x64, u, **kw)
    h = 1e-7
    fd = (skrank.soft_rank(x64 + h * u, **kw) - skrank.soft_rank(x64 - h * u, **kw)) / (2 * h)
    np.testing.assert_allclose(t, fd, rtol=1e-5, atol=1e-5 * np.abs(fd).max())
    _, vjp_fn = skrank.vjp(skrank.soft_rank, x64, **kw)
    assert abs(g @ t - vjp_fn(g) @ u) <= 1e-10 * np.linalg.norm(g) * np.linalg.norm(t) * n


def test_radix_path_permutation_of_distinct_values():
    x = np.random.default_rng(2).permutation(5000).astype(np.float64) - 2500.5
    np.testing.assert_array_equal(skrank.soft_rank(x, regularization_strength=0.0),
                                  np.argsort(np.argsort(x)) + 1.0)
    g = np.arange(5000.0)
    _, vjp_fn = skrank.vjp(skrank.soft_sort, x, regularization_strength=0.0)
    # the hard sort's transpose Jacobian sends sorted slot j back to argsort(x)[j]
    want = np.empty(5000)
    want[np.argsort(x)] = g
    np.testing.assert_array_equal(vjp_fn(g), want)


@pytest.mark.parametrize("scale", [1e306, 1e-306])
def test_l2_is_scale_free_up_to_the_float64_limits(scale):
    # n * (max - min) overflows float64 at 1e306: results must not change with the scale
    base = np.linspace(-1.0, 1.0, 200)
    for eps in (0.003, 1.0):
        r = skrank.soft_rank(base * scale, regularization_strength=eps * scale)
        np.testing.assert_allclose(r, skrank.soft_rank(base, regularization_strength=eps),
                                   rtol=1e-12, atol=1e-12)
        s = skrank.soft_sort(base * scale, regularization_strength=eps / scale)
        np.testing.assert_allclose(s / scale, skrank.soft_sort(base, regularization_strength=eps),
                                   rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("scale", [1e308, 1e-306])
def test_kl_rank_is_scale_free_up_to_the_float64_limits(scale):
    # y_1 - y_n overflows when the row spans more than float64's range: kl rank rows
    # are rescaled by a power of two, as l2 rows are (only x / eps matters)
    base = np.array([-1, -1, .5, .5, .1, 0, 0, 1.7, -1, 1, .5, 1.7, 0, .1, 0])
    for eps in (0.003, 0.3, 1.0, 1.7):
        r = skrank.soft_rank(base * scale, regularization_strength=eps * scale,
                             regularization="kl")
        np.testing.assert_allclose(
            r, skrank.soft_rank(base, regularization_strength=eps, regularization="kl"),
            rtol=1e-12, atol=1e-12)


def test_values_at_the_edge_of_float64():
    r = skrank.soft_rank([1.7e308, -1.7e308] + [0.0] * 8, regularization_strength=1e308)
    np.testing.assert_allclose(r, ref.soft_rank(np.r_[1.7, -1.7, np.zeros(8)], 1.0), rtol=1e-12)
    np.testing.assert_allclose(skrank.soft_sort([1e308, -1e308], regularization_strength=1.0),
                               [-0.5, 0.5])
    np.testing.assert_array_equal(skrank.soft_sort([1e308, -1e308], regularization_strength=1e-310),
                                  [-1e308, 1e308])
    x = np.random.default_rng(0).normal(size=1000) * 1e305
    np.testing.assert_allclose(skrank.soft_rank(x), ref.soft_rank(x / 1e305, 1e-305), atol=1e-9)


def test_subnormal_values_and_strengths():
    np.testing.assert_array_equal(
        skrank.soft_rank([0.0, 5e-324], regularization_strength=5e-324), [1.0, 2.0])
    r = skrank.soft_rank([0.0, 3e-323, 1e-323], regularization_strength=2e-323)
    np.testing.assert_allclose(r, ref.soft_rank(np.array([0.0, 3.0, 1.0]), 2.0), rtol=1e-12)
    # a subnormal strength must not turn an exact zero derivative into NaN
    _, t = skrank.jvp(skrank.soft_rank, np.array([1.0, 1.0, 2.0]), np.array([1.0, 1.0, 5.0]),
                      regularization_strength=1e-310)
    np.testing.assert_array_equal(t, [0.0, 0.0, 0.0])


@pytest.mark.parametrize("wscale", [1e-200, 1e160])
def test_isotonic_with_uniformly_scaled_weights(wscale):
    y = np.array([1.0, 0.0, 0.5, 2.0, -1.0])
    want = skrank.isotonic_regression(y, increasing=False)
    got = skrank.isotonic_regression(y, weights=np.full(5, wscale), increasing=False)
    np.testing.assert_allclose(got, want, rtol=1e-14)
    np.testing.assert_allclose(want, ref.isotonic_l2(y, increasing=False), rtol=1e-14)


def test_isotonic_with_huge_values():
    # already decreasing: returned as is, even with weights that would overflow w * y
    got = skrank.isotonic_regression([1e300, 9e299], weights=[1e10, 1e10], increasing=False)
    np.testing.assert_array_equal(got, [1e300, 9e299])
    # a violation between values near the float64 maximum pools to their mean
    got = skrank.isotonic_regression([1e308, 1.5e308, -1.7e308], increasing=False)
    np.testing.assert_allclose(got, [1.25e308, 1.25e308, -1.7e308], rtol=1e-15)


@pytest.mark.parametrize("op", [skrank.soft_rank, skrank.soft_sort])
@pytest.mark.parametrize("reg", REGS)
def test_vjp_closure_ignores_later_changes_to_value_and_input(op, reg):
    x = np.random.default_rng(4).normal(size=30)
    g = np.random.default_rng(5).normal(size=30)
    value, vjp_fn = skrank.vjp(op, x, regularization_strength=0.3, regularization=reg)
    before = vjp_fn(g).copy()
    value *= 0.0
    x += 10.0
    np.testing.assert_array_equal(vjp_fn(g), before)


def test_strength_beyond_float64_is_a_value_error():
    with pytest.raises(ValueError, match="regularization_strength"):
        skrank.soft_rank([1.0, 2.0], regularization_strength=10**400)
