"""soft_rank / soft_sort: values, invariants, limits, dtypes, shapes, axis handling, errors."""
import zlib

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from numpy.exceptions import AxisError
from scipy.optimize import isotonic_regression as scipy_isotonic
from scipy.stats import rankdata

import _reference as ref
import skrank

REGS = ("l2", "kl", "p4/3", "p3/2")
DIRS = ("ascending", "descending")
OPS = {"rank": (skrank.soft_rank, ref.soft_rank), "sort": (skrank.soft_sort, ref.soft_sort)}
STRENGTHS = (0.01, 0.1, 0.5, 1.0, 3.0, 10.0, 100.0)
TIE_VALUES = (-2.0, -1.0, -0.25, 0.0, 0.5, 1.0, 3.0)


def _random_with_ties(rng, n):
    x = rng.normal(size=n)
    if n >= 2:
        k = rng.integers(1, n + 1)
        idx = rng.choice(n, size=k, replace=False)
        x[idx] = rng.choice(TIE_VALUES, size=k)
    return x


def _close(got, want, rtol=1e-10):
    want = np.asarray(want, dtype=np.float64)
    scale = 1.0 + (np.max(np.abs(want)) if want.size else 0.0)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale)


def _hard(op, x, direction):
    x = np.asarray(x, dtype=np.float64)
    if op == "rank":
        return rankdata(x if direction == "ascending" else -x, method="average")
    s = np.sort(x)
    return s if direction == "ascending" else s[::-1]


values_st = st.lists(
    st.one_of(
        st.sampled_from(TIE_VALUES),
        st.floats(-10, 10, allow_nan=False, allow_infinity=False),
    ),
    min_size=0,
    max_size=10,
)
strength_st = st.floats(0.01, 100.0)


# --------------------------------------------------------------------------- oracle sanity
def test_reference_oracle_self_checks():
    # the tests' own reference must satisfy the definitions it is used to check
    assert np.allclose(ref.soft_rank([5.0, 1.0, 2.0], 2.0), [3.0, 1.25, 1.75])
    x = np.random.default_rng(0).normal(size=7)
    s = np.sort(x)[::-1]
    rho = np.arange(7, 0, -1.0)
    sizes = ref.pav_blocks(s, rho, "l2")
    v = np.repeat([b.mean() for b in np.split(s - rho, np.cumsum(sizes)[:-1])], sizes)
    np.testing.assert_allclose(v, scipy_isotonic(s - rho, increasing=False).x, atol=1e-12)
    np.testing.assert_allclose(ref.isotonic_l2(x, increasing=False),
                               scipy_isotonic(x, increasing=False).x, atol=1e-12)
    np.testing.assert_array_equal(ref.soft_rank([3e16, 1e16, 2e16, -1e16], 1.0), [4, 2, 3, 1])
    # l2 soft ranks lie in the permutahedron of (1..n): sum and majorisation
    r = ref.soft_rank(x, 0.5)
    assert abs(r.sum() - 28.0) < 1e-12
    part = np.cumsum(np.sort(r)[::-1])
    assert np.all(part <= np.cumsum(np.arange(7, 0, -1.0)) + 1e-12)


# --------------------------------------------------------------------------- values
def test_documented_example():
    np.testing.assert_allclose(skrank.soft_rank([5.0, 1.0, 2.0], regularization_strength=2.0),
                               [3.0, 1.25, 1.75], rtol=1e-14)


def test_cancellation_case():
    x = np.array([3e16, 1e16, 2e16, -1e16])
    for reg in REGS:
        np.testing.assert_array_equal(
            skrank.soft_rank(x, regularization_strength=1.0, regularization=reg), [4, 2, 3, 1])
        np.testing.assert_array_equal(
            skrank.soft_rank(x, regularization_strength=1.0, regularization=reg,
                             direction="descending"), [1, 3, 2, 4])


@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("reg", REGS)
@pytest.mark.parametrize("direction", DIRS)
@pytest.mark.parametrize("eps", STRENGTHS)
def test_values_match_reference(op, reg, direction, eps):
    fun, reffun = OPS[op]
    rng = np.random.default_rng(zlib.crc32(repr((op, reg, direction, eps)).encode()))
    for n in (1, 2, 3, 5, 8, 13):
        for scale in (0.1, 1.0, 20.0):
            x = scale * _random_with_ties(rng, n)
            got = fun(x, regularization_strength=eps, regularization=reg, direction=direction)
            assert isinstance(got, np.ndarray) and got.dtype == np.float64
            assert got.shape == x.shape
            _close(got, reffun(x, eps, reg, direction))


@given(values_st, strength_st, st.sampled_from(REGS), st.sampled_from(DIRS),
       st.sampled_from(sorted(OPS)))
def test_values_match_reference_hypothesis(xs, eps, reg, direction, op):
    fun, reffun = OPS[op]
    x = np.array(xs, dtype=np.float64)
    got = fun(x, regularization_strength=eps, regularization=reg, direction=direction)
    _close(got, reffun(x, eps, reg, direction))


def test_pooling_actually_happens_in_value_tests():
    # guard against a test set that only ever sees singleton blocks
    x = np.array([0.0, 0.3, 0.5, 2.0, 2.1])
    assert max(ref.rank_blocks(x, 1.0)) > 1
    assert max(ref.sort_blocks(np.array([0.0, 1.0, 3.0, 6.0]), 1.0, "kl")) > 1
    for reg in REGS:
        _close(skrank.soft_rank(x, regularization=reg), ref.soft_rank(x, 1.0, reg))
        _close(skrank.soft_sort(x * 5, regularization=reg), ref.soft_sort(x * 5, 1.0, reg))


@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("reg", REGS)
def test_values_match_reference_larger_n(op, reg):
    fun, reffun = OPS[op]
    rng = np.random.default_rng(14)
    for n in (64, 257):
        x = _random_with_ties(rng, n)
        for eps in (0.003, 0.05, 1.0):
            for direction in DIRS:
                e = eps if op == "rank" else 1.0 / (eps * n)
                got = fun(x, regularization_strength=e, regularization=reg, direction=direction)
                _close(got, reffun(x, e, reg, direction))


def test_signed_zeros_are_ties():
    x = np.array([0.0, -0.0, 1.0, -0.0, -1.0, 0.0])
    for dtype in (np.float64, np.float32):
        xd = x.astype(dtype)
        for reg in REGS:
            for eps in (0.0, 1e-9, 0.5):
                r = skrank.soft_rank(xd, regularization_strength=eps, regularization=reg)
                np.testing.assert_allclose(r[[0, 1, 3, 5]], np.full(4, r[0]), rtol=1e-6)
                if eps == 0.0 or eps == 1e-9:
                    np.testing.assert_allclose(r, rankdata(x), rtol=1e-6)
                s = skrank.soft_sort(xd, regularization_strength=eps, regularization=reg)
                assert np.all(np.diff(s.astype(np.float64)) >= -1e-6)


full_floats64 = st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=True)
full_floats32 = st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=True, width=32)


@given(st.one_of(st.lists(full_floats64, max_size=12).map(lambda v: np.array(v, np.float64)),
                 st.lists(full_floats32, max_size=12).map(lambda v: np.array(v, np.float32))),
       st.sampled_from(REGS), st.sampled_from(DIRS))
def test_strength_zero_any_floats(x, reg, direction):
    # any finite floats (subnormals, signed zeros, extremes): exact hard operators
    kw = dict(regularization_strength=0.0, regularization=reg, direction=direction)
    np.testing.assert_array_equal(skrank.soft_rank(x, **kw), _hard("rank", x, direction))
    np.testing.assert_array_equal(skrank.soft_sort(x, **kw),
                                  _hard("sort", x, direction).astype(x.dtype))


@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=12,
                unique=True),
       st.sampled_from(REGS), st.sampled_from(DIRS))
def test_sharp_regime_any_distinct_floats(xs, reg, direction):
    # strength far below every gap (and gaps far above 1/strength for sort): exact
    x = np.array(xs)
    srt = np.sort(x)
    gap = np.min(np.diff(srt)) if x.size > 1 else 1.0
    # keep x / eps injective in floating point (no two entries round to one value)
    assume(gap > 1e-9 * (1.0 + np.abs(x).max()))
    eps = gap * 1e-20
    kw = dict(regularization=reg, direction=direction)
    np.testing.assert_array_equal(skrank.soft_rank(x, regularization_strength=eps, **kw),
                                  _hard("rank", x, direction))
    np.testing.assert_array_equal(skrank.soft_sort(x, regularization_strength=eps, **kw),
                                  _hard("sort", x, direction))


# --------------------------------------------------------------------------- invariants
def _check_invariants(x, eps, reg, direction, dtype):
    x = np.asarray(x, dtype=dtype)
    n = x.size
    x64 = x.astype(np.float64)
    tol = 1e-10 if dtype == np.float64 else 2e-5
    kw = dict(regularization_strength=eps, regularization=reg, direction=direction)
    r = skrank.soft_rank(x, **kw)
    s = skrank.soft_sort(x, **kw)
    assert r.dtype == dtype and s.dtype == dtype
    assert r.shape == (n,) and s.shape == (n,)
    r64, s64 = r.astype(np.float64), s.astype(np.float64)
    # sum of ranks and bounds
    np.testing.assert_allclose(r64.sum(), n * (n + 1) / 2, rtol=tol, atol=tol)
    if n:
        assert r64.min() >= 1.0 and r64.max() <= n
    # sort sums (the p-norms as l2: the block equation keeps each block's sum)
    if reg in ("l2", "p4/3", "p3/2"):
        np.testing.assert_allclose(s64.sum(), x64.sum(), rtol=tol,
                                   atol=tol * (1 + np.abs(x64).sum()))
    elif direction == "ascending":
        np.testing.assert_allclose(np.exp(-s64).sum(), np.exp(-x64).sum(), rtol=tol, atol=tol)
    else:
        np.testing.assert_allclose(np.exp(s64).sum(), np.exp(x64).sum(), rtol=tol, atol=tol)
    # order: ranks follow x (ties equal), sort output monotone
    slack = tol * (1 + n)
    for i in range(n):
        for j in range(n):
            if x64[i] == x64[j]:
                np.testing.assert_allclose(r64[i], r64[j], rtol=tol, atol=slack)
            elif (x64[i] < x64[j]) == (direction == "ascending"):
                assert r64[i] <= r64[j] + slack
    d = np.diff(s64)
    sslack = tol * (1 + np.abs(s64).max()) if n else 0.0
    if direction == "ascending":
        assert np.all(d >= -sslack)
    else:
        assert np.all(d <= sslack)
    return r64, s64


@pytest.mark.parametrize("reg", REGS)
@pytest.mark.parametrize("direction", DIRS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [0, 1, 2, 3, 6, 11])
def test_invariants(reg, direction, dtype, n):
    rng = np.random.default_rng(n)
    for eps in (0.05, 1.0, 7.0):
        for _ in range(3):
            _check_invariants(_random_with_ties(rng, n), eps, reg, direction, dtype)


@given(values_st, strength_st, st.sampled_from(REGS), st.sampled_from(DIRS),
       st.sampled_from([np.float32, np.float64]))
def test_invariants_hypothesis(xs, eps, reg, direction, dtype):
    _check_invariants(np.array(xs), eps, reg, direction, dtype)


@pytest.mark.parametrize("reg", REGS)
@pytest.mark.parametrize("direction", DIRS)
def test_shift_invariance(reg, direction):
    rng = np.random.default_rng(1)
    kw = dict(regularization=reg, direction=direction)
    for eps in (0.1, 1.0, 10.0):
        for c in (-3.0, 0.75, 12.5):
            x = _random_with_ties(rng, 9)
            r0 = skrank.soft_rank(x, regularization_strength=eps, **kw)
            r1 = skrank.soft_rank(x + c, regularization_strength=eps, **kw)
            np.testing.assert_allclose(r1, r0, rtol=1e-9, atol=1e-9)
            if reg in ("p4/3", "p3/2"):  # their sorts take powers: not
                # shift-equivariant (below)
                continue
            s0 = skrank.soft_sort(x, regularization_strength=eps, **kw)
            s1 = skrank.soft_sort(x + c, regularization_strength=eps, **kw)
            np.testing.assert_allclose(s1, s0 + c, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("direction", DIRS)
def test_p43_sort_scales_by_cube_roots_and_is_not_shift_equivariant(direction):
    # P(z, a y) = a P(z / a^(1/3), y): soft_sort(a x, eps) = a soft_sort(x, a^(1/3) eps)
    rng = np.random.default_rng(11)
    kw = dict(regularization="p4/3", direction=direction)
    x = rng.normal(size=9)
    for eps in (0.3, 1.0, 4.0):
        for a in (0.125, 8.0, 27.0):
            s0 = skrank.soft_sort(a * x, regularization_strength=eps, **kw)
            s1 = a * skrank.soft_sort(x, regularization_strength=eps * np.cbrt(a), **kw)
            np.testing.assert_allclose(s0, s1, rtol=1e-9, atol=1e-12)
    # documented: shifting x changes which neighbours pool (values near 0 pool first)
    s0 = skrank.soft_sort(x, regularization_strength=3.0, **kw)
    s1 = skrank.soft_sort(x + 5.0, regularization_strength=3.0, **kw)
    assert np.abs(s0 - np.sort(x)[::1 if direction == "ascending" else -1]).max() > 1e-3
    np.testing.assert_array_equal(s1, np.sort(x + 5.0)[::1 if direction == "ascending"
                                                       else -1])


@pytest.mark.parametrize("reg", REGS)
@pytest.mark.parametrize("direction", DIRS)
def test_rank_scale_invariance(reg, direction):
    rng = np.random.default_rng(2)
    kw = dict(regularization=reg, direction=direction)
    for eps in (0.1, 1.0, 10.0):
        for a in (0.5, 3.0, 40.0):
            x = _random_with_ties(rng, 9)
            r0 = skrank.soft_rank(a * x, regularization_strength=eps, **kw)
            r1 = skrank.soft_rank(x, regularization_strength=eps / a, **kw)
            np.testing.assert_allclose(r0, r1, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("direction", DIRS)
def test_l2_sort_scale_equivariance(direction):
    # soft_sort(a x, eps) = a soft_sort(x, a eps) for l2
    rng = np.random.default_rng(3)
    for eps in (0.1, 1.0, 10.0):
        for a in (0.5, 3.0):
            x = rng.normal(size=8)
            s0 = skrank.soft_sort(a * x, regularization_strength=eps, direction=direction)
            s1 = a * skrank.soft_sort(x, regularization_strength=a * eps, direction=direction)
            np.testing.assert_allclose(s0, s1, rtol=1e-9, atol=1e-9)


@given(values_st, strength_st)
def test_l2_rank_ascending_plus_descending(xs, eps):
    x = np.array(xs)
    n = x.size
    up = skrank.soft_rank(x, regularization_strength=eps, direction="ascending")
    down = skrank.soft_rank(x, regularization_strength=eps, direction="descending")
    np.testing.assert_allclose(up + down, np.full(n, n + 1.0), rtol=1e-10, atol=1e-10)


def test_direction_relations():
    # descending rank of x is ascending rank of -x; descending sort is -ascending sort of -x
    rng = np.random.default_rng(4)
    for reg in REGS:
        for eps in (0.3, 2.0):
            x = _random_with_ties(rng, 7)
            kw = dict(regularization_strength=eps, regularization=reg)
            np.testing.assert_allclose(skrank.soft_rank(x, direction="descending", **kw),
                                       skrank.soft_rank(-x, **kw), rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(skrank.soft_sort(x, direction="descending", **kw),
                                       -skrank.soft_sort(-x, **kw), rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- limits
@pytest.mark.parametrize("reg", REGS)
@pytest.mark.parametrize("direction", DIRS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_strength_zero_is_hard(reg, direction, dtype):
    rng = np.random.default_rng(5)
    for n in (0, 1, 2, 3, 8):
        x = _random_with_ties(rng, n).astype(dtype)
        kw = dict(regularization_strength=0.0, regularization=reg, direction=direction)
        r = skrank.soft_rank(x, **kw)
        s = skrank.soft_sort(x, **kw)
        assert r.dtype == dtype and s.dtype == dtype
        np.testing.assert_array_equal(r, _hard("rank", x, direction).astype(dtype))
        np.testing.assert_array_equal(s, _hard("sort", x, direction).astype(dtype))


@pytest.mark.parametrize("reg", REGS)
@pytest.mark.parametrize("direction", DIRS)
def test_small_strength_ties_average(reg, direction):
    # eps -> 0 with ties: tie-averaged ranks; sort -> np.sort
    x = np.array([0.5, -1.0, 0.5, 2.0, -1.0, 0.5, 3.0])
    for eps in (1e-3, 1e-6):
        r = skrank.soft_rank(x, regularization_strength=eps, regularization=reg,
                             direction=direction)
        np.testing.assert_allclose(r, _hard("rank", x, direction), rtol=0, atol=1e-8)
        s = skrank.soft_sort(x, regularization_strength=eps, regularization=reg,
                             direction=direction)
        np.testing.assert_allclose(s, _hard("sort", x, direction), rtol=0, atol=1e-8)


@pytest.mark.parametrize("reg", REGS)
@pytest.mark.parametrize("direction", DIRS)
@pytest.mark.parametrize("eps", [1e-12, 1e-300])
def test_sharp_regime_exact(reg, direction, eps):
    # strength far below the smallest gap (~1e-3): exactly the hard operators
    rng = np.random.default_rng(6)
    for dtype in (np.float64, np.float32):
        for n in (2, 5, 12):
            x = (rng.permutation(n) * 1e-3 + rng.integers(-3, 3)).astype(dtype)
            kw = dict(regularization_strength=eps, regularization=reg, direction=direction)
            r = skrank.soft_rank(x, **kw)
            s = skrank.soft_sort(x, **kw)
            assert np.all(np.isfinite(r)) and np.all(np.isfinite(s))
            np.testing.assert_array_equal(r, _hard("rank", x, direction))
            np.testing.assert_array_equal(s, _hard("sort", x, direction).astype(dtype))


@pytest.mark.parametrize("reg", REGS)
@pytest.mark.parametrize("direction", DIRS)
def test_sharp_regime_sort_with_ties_exact(reg, direction):
    # tied inputs never pool in a sort at small strength: the output is exactly np.sort
    x = np.array([0.5, -1.0, 0.5, 2.0, -1.0, 0.5, 3.0])
    s = skrank.soft_sort(x, regularization_strength=1e-12, regularization=reg,
                         direction=direction)
    np.testing.assert_array_equal(s, _hard("sort", x, direction))


@pytest.mark.parametrize("reg", REGS)
@pytest.mark.parametrize("direction", DIRS)
def test_huge_scales_float64(reg, direction):
    x = np.array([1e300, -1e300, 3e299, -7e299, 0.0, 5e299])
    kw = dict(regularization=reg, direction=direction)
    for eps in (1.0, 1e3):
        r = skrank.soft_rank(x, regularization_strength=eps, **kw)
        np.testing.assert_array_equal(r, _hard("rank", x, direction))
    s = skrank.soft_sort(x, regularization_strength=1e-305, **kw)
    np.testing.assert_array_equal(s, _hard("sort", x, direction))
    # pooled regime at huge scale: still finite, sums preserved (l2)
    for eps in (1.0, 1e10):
        s = skrank.soft_sort(x, regularization_strength=eps, **kw)
        assert np.all(np.isfinite(s))
        if reg == "l2":
            np.testing.assert_allclose(s.sum(), x.sum(), rtol=1e-12, atol=1e288)


@pytest.mark.parametrize("reg", REGS)
@pytest.mark.parametrize("direction", DIRS)
def test_huge_scales_float32(reg, direction):
    x = np.array([3e37, -2e37, 1e37, 2e37, -1e37, 0.0], dtype=np.float32)
    kw = dict(regularization=reg, direction=direction)
    r = skrank.soft_rank(x, regularization_strength=1.0, **kw)
    assert r.dtype == np.float32
    np.testing.assert_array_equal(r, _hard("rank", x, direction))
    s = skrank.soft_sort(x, regularization_strength=5e-38, **kw)
    assert s.dtype == np.float32
    np.testing.assert_array_equal(s, _hard("sort", x, direction).astype(np.float32))
    for eps in (1.0, 1e10):
        s = skrank.soft_sort(x, regularization_strength=eps, **kw)
        assert s.dtype == np.float32 and np.all(np.isfinite(s))


@pytest.mark.parametrize("reg", REGS)
@pytest.mark.parametrize("direction", DIRS)
def test_large_strength_limits(reg, direction):
    rng = np.random.default_rng(7)
    eps = 1e10
    for n in (1, 2, 3, 7):
        x = _random_with_ties(rng, n)
        kw = dict(regularization_strength=eps, regularization=reg, direction=direction)
        r = skrank.soft_rank(x, **kw)
        np.testing.assert_allclose(r, np.full(n, (n + 1) / 2), rtol=0, atol=1e-7)
        s = skrank.soft_sort(x, **kw)
        if reg in ("l2", "p4/3", "p3/2"):
            want = np.mean(x)
        elif direction == "descending":
            want = np.log(np.mean(np.exp(x)))
        else:
            want = -np.log(np.mean(np.exp(-x)))
        np.testing.assert_allclose(s, np.full(n, want), rtol=0, atol=1e-7)


# --------------------------------------------------------------------------- sizes
@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,axis", [((0,), -1), ((3, 0), -1), ((0, 4), -1), ((0, 4), 0),
                                        ((2, 0, 3), 1), ((2, 0, 3), 0), ((0,), None)])
def test_empty(op, dtype, shape, axis):
    fun = OPS[op][0]
    x = np.empty(shape, dtype=dtype)
    out = fun(x, axis=axis)
    assert isinstance(out, np.ndarray)
    assert out.dtype == dtype
    assert out.shape == (shape if axis is not None else (0,))


@pytest.mark.parametrize("reg", REGS)
@pytest.mark.parametrize("direction", DIRS)
@pytest.mark.parametrize("eps", [0.0, 1e-3, 1.0, 1e6])
def test_single_element(reg, direction, eps):
    kw = dict(regularization_strength=eps, regularization=reg, direction=direction)
    for v in (-2.5, 0.0, 7.0, 1e300):
        x = np.array([v])
        np.testing.assert_array_equal(skrank.soft_rank(x, **kw), [1.0])
        np.testing.assert_array_equal(skrank.soft_sort(x, **kw), [v])
    x = np.array([[1.5], [-3.0]])
    np.testing.assert_array_equal(skrank.soft_rank(x, **kw), [[1.0], [1.0]])
    np.testing.assert_array_equal(skrank.soft_sort(x, **kw), x)


# --------------------------------------------------------------------------- dtypes & inputs
@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("reg", REGS)
def test_float32_in_float32_out(op, reg):
    fun, reffun = OPS[op]
    rng = np.random.default_rng(8)
    for eps in (0.1, 1.0, 10.0):
        x = _random_with_ties(rng, 9).astype(np.float32)
        for direction in DIRS:
            got = fun(x, regularization_strength=eps, regularization=reg, direction=direction)
            assert got.dtype == np.float32
            _close(got.astype(np.float64), reffun(x.astype(np.float64), eps, reg, direction),
                   rtol=2e-5)


@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.int8, np.bool_,
                                   np.float16])
def test_other_dtypes_give_float64(op, dtype):
    fun, reffun = OPS[op]
    x = np.array([3, 0, 1, 1, 5, 2]).astype(dtype)
    for eps in (0.0, 0.5, 2.0):
        got = fun(x, regularization_strength=eps)
        assert got.dtype == np.float64
        _close(got, reffun(x.astype(np.float64), eps, "l2", "ascending"))


@pytest.mark.parametrize("op", sorted(OPS))
def test_list_input(op):
    fun, reffun = OPS[op]
    out = fun([3.0, 1.0, 2.0, 2.0], regularization_strength=0.7)
    assert type(out) is np.ndarray and out.dtype == np.float64
    _close(out, reffun([3.0, 1.0, 2.0, 2.0], 0.7))
    out2 = fun([[3.0, 1.0], [2.0, 5.0]], regularization_strength=0.7, axis=0)
    _close(out2, ref.batched(reffun, [[3.0, 1.0], [2.0, 5.0]], 0.7, axis=0))
    out3 = fun([1, 4, 2])  # ints in a list
    assert out3.dtype == np.float64


@pytest.mark.parametrize("op", sorted(OPS))
def test_pandas_input(op):
    pd = pytest.importorskip("pandas")
    fun, reffun = OPS[op]
    s = pd.Series([3.0, 1.0, 2.0, 2.0], index=[10, 20, 30, 40])
    out = fun(s, regularization_strength=0.7)
    assert type(out) is np.ndarray
    _close(out, reffun(s.to_numpy(), 0.7))
    df = pd.DataFrame({"a": [3.0, 1.0, 2.0], "b": [0.0, 5.0, -1.0]})
    out = fun(df, regularization_strength=0.7, axis=0)
    assert type(out) is np.ndarray and out.shape == (3, 2)
    _close(out, ref.batched(reffun, df.to_numpy(), 0.7, axis=0))


@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("reg", REGS)
def test_inputs_not_modified(op, reg):
    fun = OPS[op][0]
    rng = np.random.default_rng(9)
    for dtype in (np.float32, np.float64):
        x = _random_with_ties(rng, 24).reshape(4, 6).astype(dtype)
        keep = x.copy()
        strengths = np.array([0.0, 0.5, 1.0, 2.0])
        keep_s = strengths.copy()
        for axis in (0, 1, None):
            for eps in (0.0, 0.3, 3.0):
                out = fun(x, regularization_strength=eps, regularization=reg, axis=axis)
                assert not np.shares_memory(out, x)
                np.testing.assert_array_equal(x, keep)
        fun(x, regularization_strength=strengths, regularization=reg, axis=1)
        np.testing.assert_array_equal(x, keep)
        np.testing.assert_array_equal(strengths, keep_s)
        # read-only input works and gives the same values
        ro = x.copy()
        ro.flags.writeable = False
        np.testing.assert_array_equal(fun(ro, regularization=reg), fun(x, regularization=reg))
        out = fun(ro, regularization=reg)
        out[...] = 0  # the output is a fresh writeable array
        np.testing.assert_array_equal(ro, keep)


def test_output_never_aliases_input():
    for fun in (skrank.soft_rank, skrank.soft_sort):
        for x in (np.array([2.0]), np.array([[1.0], [2.0]]), np.array([1.0, 3.0, 2.0])):
            for eps in (0.0, 1.0):
                out = fun(x, regularization_strength=eps)
                assert not np.shares_memory(out, x)


@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("reg", REGS)
def test_non_contiguous_views(op, reg):
    fun, reffun = OPS[op]
    rng = np.random.default_rng(10)
    base = _random_with_ties(rng, 6 * 10).reshape(6, 10)
    for dtype in (np.float32, np.float64):
        b = base.astype(dtype)
        for view, axis in ((b[:, ::2], -1), (b.T, -1), (b.T, 0), (b[::2, 1::3], 0),
                           (b[:, ::-1], 1), (b.T[::2], None)):
            assert not view.flags.c_contiguous
            got = fun(view, regularization_strength=0.4, regularization=reg, axis=axis)
            want = fun(np.ascontiguousarray(view), regularization_strength=0.4,
                       regularization=reg, axis=axis)
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
            if dtype == np.float64:
                _close(got, ref.batched(reffun, view, 0.4, reg, axis=axis))


# --------------------------------------------------------------------------- batching & axis
@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("reg", REGS)
@pytest.mark.parametrize("direction", DIRS)
@pytest.mark.parametrize("shape,axis", [((4, 7), -1), ((4, 7), 0), ((4, 7), 1), ((4, 7), -2),
                                        ((4, 7), None), ((2, 3, 5), 0), ((2, 3, 5), 1),
                                        ((2, 3, 5), 2), ((2, 3, 5), -2), ((2, 3, 5), None),
                                        ((7,), 0), ((2, 1, 3, 4), 2)])
def test_batched_matches_per_row_reference(op, reg, direction, shape, axis):
    fun, reffun = OPS[op]
    rng = np.random.default_rng(11)
    x = _random_with_ties(rng, int(np.prod(shape))).reshape(shape)
    for eps in (0.2, 2.0):
        got = fun(x, regularization_strength=eps, regularization=reg, direction=direction,
                  axis=axis)
        want = ref.batched(reffun, x, eps, reg, direction, axis)
        assert got.shape == want.shape
        if axis is None:
            assert got.ndim == 1
        _close(got, want)
        # rows are independent: each row alone gives the same values
        if axis is not None and x.ndim > 1:
            moved = np.moveaxis(x, axis, -1)
            gm = np.moveaxis(got, axis, -1)
            idx = (0,) * (x.ndim - 1)
            alone = fun(moved[idx], regularization_strength=eps, regularization=reg,
                        direction=direction)
            np.testing.assert_allclose(gm[idx], alone, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("reg", REGS)
@pytest.mark.parametrize("direction", DIRS)
def test_per_row_strengths(op, reg, direction):
    fun, reffun = OPS[op]
    rng = np.random.default_rng(12)
    x = _random_with_ties(rng, 3 * 6 * 4).reshape(3, 6, 4)
    kw = dict(regularization=reg, direction=direction)
    for axis in (0, 1, 2, -1):
        bshape = np.delete(np.array(x.shape), axis % 3)
        eps = rng.uniform(0.05, 5.0, size=tuple(bshape))
        eps.flat[0] = 0.0  # a hard row among soft ones
        eps.flat[-1] = 50.0
        got = fun(x, regularization_strength=eps, axis=axis, **kw)
        want = ref.batched(reffun, x, eps, reg, direction, axis)
        _close(got, want)
        # the hard row is exactly the hard operator
        moved_got = np.moveaxis(got, axis, -1).reshape(-1, x.shape[axis])
        moved_x = np.moveaxis(x, axis, -1).reshape(-1, x.shape[axis])
        np.testing.assert_array_equal(moved_got[0], _hard(op, moved_x[0], direction))
    # 2-D, float32, one strength per row
    x2 = x[0].astype(np.float32)
    eps2 = np.array([0.1, 1.0, 10.0, 0.0, 3.0, 0.5])
    got = fun(x2, regularization_strength=eps2, axis=-1, **kw)
    assert got.dtype == np.float32
    _close(got.astype(np.float64), ref.batched(reffun, x2.astype(np.float64), eps2, reg,
                                               direction, -1), rtol=2e-5)
    # 1-D input: a 0-d array strength is a scalar
    got = fun(x[0, 0], regularization_strength=np.array(0.7), **kw)
    _close(got, reffun(x[0, 0], 0.7, reg, direction))


def test_strength_scalar_types():
    x = np.array([0.3, -1.0, 2.0, 0.3])
    want = ref.soft_rank(x, 2.0)
    for eps in (2, 2.0, np.float32(2.0), np.int64(2), np.array(2.0)):
        _close(skrank.soft_rank(x, regularization_strength=eps), want)


# --------------------------------------------------------------------------- nan policy
@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("reg", REGS)
def test_nan_inf_raise(op, reg):
    fun = OPS[op][0]
    for bad in (np.nan, np.inf, -np.inf):
        x = np.array([[1.0, 2.0, 3.0], [0.0, bad, 1.0]])
        with pytest.raises(ValueError):
            fun(x, regularization=reg)
        with pytest.raises(ValueError):
            fun(x, regularization=reg, nan_policy="raise")
        with pytest.raises(ValueError):
            fun(x.astype(np.float32), regularization=reg)


@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("reg", REGS)
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_nan_propagate(op, reg, axis):
    fun = OPS[op][0]
    rng = np.random.default_rng(13)
    for dtype in (np.float64, np.float32):
        x = rng.normal(size=(4, 5)).astype(dtype)
        x[2, 3] = np.nan
        out = fun(x, regularization_strength=0.5, regularization=reg, axis=axis,
                  nan_policy="propagate")
        assert out.dtype == dtype and out.shape == x.shape
        om = np.moveaxis(out, axis, -1)
        xm = np.moveaxis(x, axis, -1)
        bad_row = 2 if axis in (1, -1) else 3
        for i in range(xm.shape[0]):
            if i == bad_row:
                assert np.all(np.isnan(om[i]))
            else:
                assert not np.any(np.isnan(om[i]))
                np.testing.assert_array_equal(
                    om[i], fun(xm[i], regularization_strength=0.5, regularization=reg))
    out = fun(np.array([1.0, np.nan]), nan_policy="propagate", axis=None)
    assert np.all(np.isnan(out))


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize("op", sorted(OPS))
def test_bad_strength(op):
    fun = OPS[op][0]
    x = np.array([[1.0, 2.0, 0.5], [3.0, -1.0, 0.0]])
    for eps in (-1.0, -1e-300, np.nan, np.inf, -np.inf):
        with pytest.raises(ValueError):
            fun(x, regularization_strength=eps)
        with pytest.raises(ValueError):
            fun(x, regularization_strength=np.array([1.0, eps]))
    for shape in ((3,), (2, 3), (2, 1, 1)):
        with pytest.raises(ValueError):
            fun(x, regularization_strength=np.ones(shape))
    with pytest.raises(ValueError):  # axis=0 wants 3 strengths
        fun(x, regularization_strength=np.ones(2), axis=0)
    with pytest.raises(ValueError):  # axis=None wants a scalar
        fun(x, regularization_strength=np.ones(2), axis=None)


@pytest.mark.parametrize("op", sorted(OPS))
def test_bad_choices_list_the_options(op):
    fun = OPS[op][0]
    x = np.array([1.0, 2.0])
    with pytest.raises(ValueError) as e:
        fun(x, regularization="l1")
    assert "l2" in str(e.value) and "kl" in str(e.value)
    with pytest.raises(ValueError) as e:
        fun(x, direction="up")
    assert "ascending" in str(e.value) and "descending" in str(e.value)
    with pytest.raises(ValueError) as e:
        fun(x, nan_policy="bogus")
    assert "raise" in str(e.value) and "propagate" in str(e.value)


@pytest.mark.parametrize("op", sorted(OPS))
def test_bad_dtypes(op):
    fun = OPS[op][0]
    for x in (np.array([1 + 2j, 3.0]), np.array([1.0, 2.0], dtype=object),
              np.array(["a", "b"]), ["a", "b"], np.array([b"a", b"b"]),
              np.array([1.0, 2.0], dtype=np.complex64)):
        with pytest.raises(TypeError):
            fun(x)


@pytest.mark.parametrize("op", sorted(OPS))
def test_bad_axis(op):
    fun = OPS[op][0]
    with pytest.raises(AxisError):
        fun(np.ones((2, 3)), axis=2)
    with pytest.raises(AxisError):
        fun(np.ones((2, 3)), axis=-3)
    with pytest.raises(AxisError):
        fun(np.ones(3), axis=1)


@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("reg", REGS)
def test_many_rows_parallel_path(op, reg):
    # enough rows to use any multi-threaded row loop; every row must match the reference
    fun, reffun = OPS[op]
    rng = np.random.default_rng(15)
    x = _random_with_ties(rng, 300 * 17).reshape(300, 17)
    eps = rng.uniform(0.05, 5.0, size=300)
    for dtype, rtol in ((np.float64, 1e-10), (np.float32, 2e-5)):
        xd = x.astype(dtype)
        got = fun(xd, regularization_strength=eps, regularization=reg)
        want = ref.batched(reffun, xd.astype(np.float64), eps, reg, "ascending", -1)
        _close(got.astype(np.float64), want, rtol=rtol)
        got_t = fun(xd.T, regularization_strength=eps, regularization=reg, axis=0)
        np.testing.assert_allclose(got_t.T, got, rtol=1e-12, atol=1e-12)


def test_strength_array_dtypes_and_views():
    rng = np.random.default_rng(16)
    x = _random_with_ties(rng, 24).reshape(4, 6)
    eps64 = np.array([4.0, 0.5, 2.0, 1.0])
    want = ref.batched(ref.soft_rank, x, eps64, axis=-1)
    strided = np.array([1.0, 9.0, 2.0, 9.0, 0.5, 9.0, 4.0])[::-2]  # non-contiguous view
    np.testing.assert_array_equal(strided, eps64)
    for eps in (eps64, eps64.astype(np.float32), strided, list(eps64)):
        _close(skrank.soft_rank(x, regularization_strength=eps), want)
    ints = np.array([1, 2, 3, 4])
    _close(skrank.soft_rank(x, regularization_strength=ints),
           ref.batched(ref.soft_rank, x, ints.astype(np.float64), axis=-1))
