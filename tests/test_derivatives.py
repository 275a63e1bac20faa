"""skrank.jvp / skrank.vjp for soft_rank and soft_sort."""
import functools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import softmax

import _reference as ref
import skrank

REGS = ("l2", "kl", "p4/3", "p3/2")
DIRS = ("ascending", "descending")
OPS = {
    "rank": (skrank.soft_rank, ref.soft_rank, ref.soft_rank_jacobian),
    "sort": (skrank.soft_sort, ref.soft_sort, ref.soft_sort_jacobian),
}
TIE_VALUES = (-2.0, -1.0, -0.25, 0.0, 0.5, 1.0, 3.0)
# tie values whose differences are not simple multiples of the strengths used below, so that
# block values never coincide exactly (a kink, where both one-sided derivatives are valid)
KINK_FREE_TIES = (-1.7320508075688772, -0.6931471805599453, 0.41421356237309515)


def _with_ties(rng, n):
    x = rng.normal(size=n)
    if n >= 2:
        k = rng.integers(2, n + 1)
        x[rng.choice(n, size=k, replace=False)] = rng.choice(KINK_FREE_TIES, size=k)
    return x


def _well_separated(rng, n, scale=1.0):
    """Distinct values with gaps in [0.3, 1.5] * scale, shuffled (no kinks of soft_sort)."""
    return rng.permutation(np.cumsum(rng.uniform(0.3, 1.5, size=n)) * scale - n * scale / 2)


def _input(op, rng, n):
    return _with_ties(rng, n) if op == "rank" else _well_separated(rng, n)


def _jac_from_jvp(fun, x, **kw):
    n = x.size
    cols = []
    for j in range(n):
        e = np.zeros(n)
        e[j] = 1.0
        cols.append(np.asarray(skrank.jvp(fun, x, e, **kw)[1], dtype=np.float64))
    return np.stack(cols, axis=1) if n else np.zeros((0, 0))


def _jac_from_vjp(fun, x, **kw):
    n = x.size
    _, vjp_fn = skrank.vjp(fun, x, **kw)
    rows = []
    for i in range(n):
        e = np.zeros(n)
        e[i] = 1.0
        rows.append(np.asarray(vjp_fn(e), dtype=np.float64))
    return np.stack(rows, axis=0) if n else np.zeros((0, 0))


def _close(got, want, rtol=1e-10):
    want = np.asarray(want, dtype=np.float64)
    scale = 1.0 + (np.max(np.abs(want)) if want.size else 0.0)
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64), want, rtol=rtol,
                               atol=rtol * scale)


# --------------------------------------------------------------------------- oracle sanity
@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("reg", REGS)
@pytest.mark.parametrize("direction", DIRS)
def test_reference_jacobian_matches_finite_differences(op, reg, direction):
    _, reffun, refjac = OPS[op]
    rng = np.random.default_rng(100)
    for eps in (0.1, 1.0, 5.0):
        x = _input(op, rng, 6)
        num = ref.num_jac(lambda y: reffun(y, eps, reg, direction), x)
        _close(refjac(x, eps, reg, direction), num, rtol=1e-6)


# --------------------------------------------------------------------------- values of jvp/vjp
@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("reg", REGS)
@pytest.mark.parametrize("direction", DIRS)
@pytest.mark.parametrize("eps", [0.01, 0.3, 1.0, 10.0, 100.0])
def test_jacobian_matches_reference(op, reg, direction, eps):
    fun, reffun, refjac = OPS[op]
    rng = np.random.default_rng(101)
    kw = dict(regularization_strength=eps, regularization=reg, direction=direction)
    for n in (1, 2, 3, 5, 8):
        for scale in (0.1, 1.0, 10.0):
            x = scale * _input(op, rng, n)
            want = refjac(x, eps, reg, direction)
            _close(_jac_from_jvp(fun, x, **kw), want)
            _close(_jac_from_vjp(fun, x, **kw), want)


@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("reg", REGS)
@pytest.mark.parametrize("direction", DIRS)
def test_jvp_matches_finite_differences(op, reg, direction):
    fun = OPS[op][0]
    rng = np.random.default_rng(102)
    for eps in (0.05, 0.5, 2.0, 20.0):
        kw = dict(regularization_strength=eps, regularization=reg, direction=direction)
        for n in (2, 4, 7):
            x = _input(op, rng, n)
            num = ref.num_jac(lambda y: fun(y, **kw), x, h=1e-6)
            _close(_jac_from_jvp(fun, x, **kw), num, rtol=1e-6)
            u = rng.normal(size=n)
            h = 1e-6
            fd = (fun(x + h * u, **kw) - fun(x - h * u, **kw)) / (2 * h)
            y, t = skrank.jvp(fun, x, u, **kw)
            _close(t, fd, rtol=1e-6)
            np.testing.assert_array_equal(y, fun(x, **kw))


@pytest.mark.parametrize("direction", DIRS)
def test_kl_sort_derivative_when_blocks_pool(direction):
    """kl soft_sort derivative inside pooled blocks: softmax of the sorted input, not of
    rho/eps (the authors' reference code uses the latter and is wrong here)."""
    kw = dict(regularization="kl", direction=direction)
    cases = [(np.array([0.0, 1.0, 3.0, 6.0]), 2.0), (np.array([2.0, -1.0, 0.5, 4.0, 1.7]), 0.8),
             (np.array([5.0, 0.0, 2.5, -3.0]), 3.0)]
    for x, eps in cases:
        sizes = ref.sort_blocks(x, eps, "kl", direction)
        assert max(sizes) >= 2, sizes  # the case really pools
        num = ref.num_jac(lambda y: skrank.soft_sort(y, regularization_strength=eps, **kw), x)
        jac = _jac_from_jvp(skrank.soft_sort, x, regularization_strength=eps, **kw)
        _close(jac, num, rtol=1e-6)
        _close(_jac_from_vjp(skrank.soft_sort, x, regularization_strength=eps, **kw), num,
               rtol=1e-6)
        # the wrong (rho/eps) weights differ visibly, so this test can tell them apart
        n = x.size
        sgn = -1.0 if direction == "ascending" else 1.0
        order = np.argsort(-(sgn * x), kind="stable")
        rho = np.arange(n, 0, -1.0)
        wrong = np.zeros((n, n))
        start = 0
        for b in sizes:
            sl = slice(start, start + b)
            wrong[sl, sl] = softmax(rho[sl] / eps)
            start += b
        wrong = wrong @ np.eye(n)[order]
        assert np.abs(wrong - num).max() > 0.1


@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("reg", REGS)
@pytest.mark.parametrize("direction", DIRS)
def test_jacobian_row_sums(op, reg, direction):
    fun = OPS[op][0]
    rng = np.random.default_rng(103)
    target = 0.0 if op == "rank" else 1.0
    for eps in (0.05, 1.0, 30.0):
        for n in (1, 2, 3, 6):
            x = _input(op, rng, n)
            jac = _jac_from_jvp(fun, x, regularization_strength=eps, regularization=reg,
                                direction=direction)
            scale = 1.0 + np.abs(jac).max()
            # p-norm sorts keep the sum (columns sum to 1) but are not
            # shift-equivariant
            sums = jac.sum(axis=0 if reg in ("p4/3", "p3/2") and op == "sort" else 1)
            np.testing.assert_allclose(sums, np.full(n, target), rtol=0,
                                       atol=1e-12 * scale * n)
            # and a non-trivial Jacobian (not identically zero / identity)
            if op == "rank" and n >= 2 and eps == 30.0:
                assert np.abs(jac).max() > 0


# --------------------------------------------------------------------------- adjoint identity
def _adjoint_check(fun, x, u, g, rtol, **kw):
    y, t = skrank.jvp(fun, x, u, **kw)
    y2, vjp_fn = skrank.vjp(fun, x, **kw)
    v = vjp_fn(g)
    assert np.shape(t) == np.shape(y)
    assert np.shape(v) == np.shape(x)
    np.testing.assert_array_equal(y, y2)
    t64, v64 = np.asarray(t, np.float64), np.asarray(v, np.float64)
    lhs = float(np.sum(np.asarray(g, np.float64) * t64))
    rhs = float(np.sum(v64 * np.asarray(u, np.float64)))
    # bound on |<g, J u>| from the Jacobian's size (ranks: ~n/eps; sorts: ~sqrt(n)), so that
    # rounding-level entries of an exactly-zero Jacobian do not make the check ill-posed
    eps = np.asarray(kw.get("regularization_strength", 1.0), dtype=np.float64)
    pos = eps[eps > 0]
    jac_bound = 2.0 * (1 + np.size(x)) * (1.0 + (1.0 / pos.min() if pos.size else 0.0))
    scale = np.linalg.norm(g) * np.linalg.norm(u) * jac_bound + 1e-300
    assert abs(lhs - rhs) <= rtol * scale, (lhs, rhs)


values_st = st.lists(st.one_of(st.sampled_from(TIE_VALUES),
                               st.floats(-10, 10, allow_nan=False, allow_infinity=False)),
                     min_size=0, max_size=9)


@given(values_st, st.floats(0.01, 100.0), st.sampled_from(REGS), st.sampled_from(DIRS),
       st.sampled_from(sorted(OPS)), st.integers(0, 2**32 - 1))
def test_adjoint_identity_hypothesis(xs, eps, reg, direction, op, seed):
    rng = np.random.default_rng(seed)
    x = np.array(xs, dtype=np.float64)
    u, g = rng.normal(size=x.size), rng.normal(size=x.size)
    _adjoint_check(OPS[op][0], x, u, g, 1e-10, regularization_strength=eps, regularization=reg,
                   direction=direction)


@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("reg", REGS)
@pytest.mark.parametrize("direction", DIRS)
@pytest.mark.parametrize("shape,axis", [((4, 6), -1), ((4, 6), 0), ((4, 6), None),
                                        ((2, 3, 5), 1), ((2, 3, 5), 0), ((2, 3, 5), None)])
def test_batched_jvp_vjp(op, reg, direction, shape, axis):
    fun, _, refjac = OPS[op]
    rng = np.random.default_rng(104)
    x = (_with_ties(rng, int(np.prod(shape))) if op == "rank"
         else _well_separated(rng, int(np.prod(shape)))).reshape(shape)
    u = rng.normal(size=shape)
    for eps in (0.3, 3.0):
        kw = dict(regularization_strength=eps, regularization=reg, direction=direction,
                  axis=axis)
        y, t = skrank.jvp(fun, x, u, **kw)
        np.testing.assert_array_equal(y, fun(x, **kw))
        _close(t, ref.batched_jvp(refjac, x, u, eps, reg, direction, axis))
        g = rng.normal(size=y.shape)
        y2, vjp_fn = skrank.vjp(fun, x, **kw)
        v = vjp_fn(g)
        assert v.shape == x.shape
        _close(v, ref.batched_vjp(refjac, x, g, eps, reg, direction, axis))
        _adjoint_check(fun, x, u, g, 1e-10, **kw)


@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("reg", REGS)
def test_per_row_strength_derivatives(op, reg):
    fun, _, refjac = OPS[op]
    rng = np.random.default_rng(105)
    x = (_with_ties(rng, 30) if op == "rank" else _well_separated(rng, 30)).reshape(5, 6)
    for axis in (0, 1):
        eps = rng.uniform(0.1, 4.0, size=x.shape[1 - axis])
        eps[0] = 0.0
        kw = dict(regularization_strength=eps, regularization=reg, axis=axis)
        u = rng.normal(size=x.shape)
        _, t = skrank.jvp(fun, x, u, **kw)
        _close(t, ref.batched_jvp(refjac, x, u, eps, reg, "ascending", axis))
        g = rng.normal(size=x.shape)
        _, vjp_fn = skrank.vjp(fun, x, **kw)
        _close(vjp_fn(g), ref.batched_vjp(refjac, x, g, eps, reg, "ascending", axis))


@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("reg", REGS)
@pytest.mark.parametrize("direction", DIRS)
def test_float32_derivatives(op, reg, direction):
    fun, _, refjac = OPS[op]
    rng = np.random.default_rng(106)
    x = (_with_ties(rng, 18) if op == "rank" else _well_separated(rng, 18)).reshape(3, 6)
    x32 = x.astype(np.float32)
    x64 = x32.astype(np.float64)
    for eps in (0.2, 2.0):
        kw = dict(regularization_strength=eps, regularization=reg, direction=direction)
        u = rng.normal(size=x.shape).astype(np.float32)
        y, t = skrank.jvp(fun, x32, u, **kw)
        assert y.dtype == np.float32
        _close(t, ref.batched_jvp(refjac, x64, u.astype(np.float64), eps, reg, direction),
               rtol=1e-4)
        g = rng.normal(size=x.shape).astype(np.float32)
        _, vjp_fn = skrank.vjp(fun, x32, **kw)
        v = vjp_fn(g)
        assert v.shape == x.shape
        _close(v, ref.batched_vjp(refjac, x64, g.astype(np.float64), eps, reg, direction),
               rtol=1e-4)
        _adjoint_check(fun, x32, u, g, 1e-5, **kw)


# --------------------------------------------------------------------------- special cases
@pytest.mark.parametrize("reg", REGS)
@pytest.mark.parametrize("direction", DIRS)
def test_strength_zero_derivatives(reg, direction):
    rng = np.random.default_rng(107)
    kw = dict(regularization_strength=0.0, regularization=reg, direction=direction)
    for n in (1, 2, 5):
        x = _well_separated(rng, n)
        u = rng.normal(size=n)
        g = rng.normal(size=n)
        _, t = skrank.jvp(skrank.soft_rank, x, u, **kw)
        np.testing.assert_array_equal(t, np.zeros(n))
        _, vjp_fn = skrank.vjp(skrank.soft_rank, x, **kw)
        np.testing.assert_array_equal(vjp_fn(g), np.zeros(n))
        order = np.argsort(x)
        if direction == "descending":
            order = order[::-1]
        _, t = skrank.jvp(skrank.soft_sort, x, u, **kw)
        np.testing.assert_array_equal(t, u[order])
        _, vjp_fn = skrank.vjp(skrank.soft_sort, x, **kw)
        want = np.empty(n)
        want[order] = g
        np.testing.assert_array_equal(vjp_fn(g), want)
    # ties at strength 0: rank derivative is still zero
    x = np.array([1.0, 1.0, 0.0, 1.0])
    _, t = skrank.jvp(skrank.soft_rank, x, np.ones(4), **kw)
    np.testing.assert_array_equal(t, np.zeros(4))


@pytest.mark.parametrize("reg", REGS)
def test_single_element_and_empty_derivatives(reg):
    for eps in (0.0, 0.5, 5.0):
        kw = dict(regularization_strength=eps, regularization=reg)
        x = np.array([2.5])
        _, t = skrank.jvp(skrank.soft_rank, x, np.array([3.0]), **kw)
        np.testing.assert_array_equal(t, [0.0])
        _, t = skrank.jvp(skrank.soft_sort, x, np.array([3.0]), **kw)
        np.testing.assert_allclose(t, [3.0], rtol=1e-15)
        _, vjp_fn = skrank.vjp(skrank.soft_sort, x, **kw)
        np.testing.assert_allclose(vjp_fn(np.array([-2.0])), [-2.0], rtol=1e-15)
        for fun in (skrank.soft_rank, skrank.soft_sort):
            e = np.empty((3, 0))
            y, t = skrank.jvp(fun, e, e, **kw)
            assert y.shape == (3, 0) and np.shape(t) == (3, 0)
            y, vjp_fn = skrank.vjp(fun, e, **kw)
            assert vjp_fn(np.empty((3, 0))).shape == (3, 0)


def test_sharp_regime_derivatives():
    # far below the smallest gap: rank derivative 0, sort derivative the permutation
    x = np.array([0.003, -0.001, 0.0, 0.002, 0.001])
    order = np.argsort(x)
    for reg in REGS:
        kw = dict(regularization_strength=1e-12, regularization=reg)
        jac = _jac_from_jvp(skrank.soft_rank, x, **kw)
        np.testing.assert_array_equal(jac, np.zeros((5, 5)))
        jac = _jac_from_jvp(skrank.soft_sort, x, **kw)
        np.testing.assert_array_equal(jac, np.eye(5)[order])


def test_explicit_argnums_zero():
    x = np.array([0.4, -1.0, 2.0, 0.4])
    g = np.array([1.0, -2.0, 0.5, 3.0])
    y, vjp_fn = skrank.vjp(skrank.soft_rank, x, argnums=0, regularization_strength=0.6,
                           regularization="kl")
    _close(y, ref.soft_rank(x, 0.6, "kl"))
    _close(vjp_fn(g), ref.soft_rank_jacobian(x, 0.6, "kl").T @ g)


def test_list_input_and_shapes():
    x = [3.0, 1.0, 2.0]
    y, vjp_fn = skrank.vjp(skrank.soft_rank, x, regularization_strength=0.5)
    assert isinstance(y, np.ndarray) and y.shape == (3,)
    v = vjp_fn([1.0, 0.0, 0.0])
    assert isinstance(v, np.ndarray) and v.shape == (3,)
    _close(v, ref.soft_rank_jacobian(np.array(x), 0.5).T @ np.array([1.0, 0.0, 0.0]))
    y, t = skrank.jvp(skrank.soft_sort, x, [1.0, 0.0, 0.0], regularization_strength=0.5)
    _close(t, ref.soft_sort_jacobian(np.array(x), 0.5) @ np.array([1.0, 0.0, 0.0]))


def test_inputs_not_modified_by_derivatives():
    rng = np.random.default_rng(108)
    x = _with_ties(rng, 12).reshape(3, 4)
    u = rng.normal(size=(3, 4))
    g = rng.normal(size=(3, 4))
    keep = (x.copy(), u.copy(), g.copy())
    for fun in (skrank.soft_rank, skrank.soft_sort):
        skrank.jvp(fun, x, u, regularization_strength=0.7)
        _, vjp_fn = skrank.vjp(fun, x, regularization_strength=0.7)
        vjp_fn(g)
        vjp_fn(g)  # reusable
        for a, b in zip((x, u, g), keep):
            np.testing.assert_array_equal(a, b)


def test_vjp_fn_reusable_and_linear():
    rng = np.random.default_rng(109)
    x = _with_ties(rng, 7)
    for fun in (skrank.soft_rank, skrank.soft_sort):
        for reg in REGS:
            _, vjp_fn = skrank.vjp(fun, x, regularization_strength=0.8, regularization=reg)
            g1, g2 = rng.normal(size=7), rng.normal(size=7)
            a = vjp_fn(g1)
            b = vjp_fn(g2)
            np.testing.assert_allclose(vjp_fn(2.0 * g1 - g2), 2.0 * a - b, rtol=1e-12,
                                       atol=1e-12)
            np.testing.assert_array_equal(vjp_fn(g1), a)


def test_arbitrary_callable_rejected():
    x = np.array([1.0, 3.0, 2.0])
    for fun in (np.sort, lambda v, **kw: skrank.soft_rank(v, **kw), sorted,
                functools.partial(np.sort)):
        with pytest.raises(TypeError):
            skrank.vjp(fun, x)
        with pytest.raises(TypeError):
            skrank.jvp(fun, x, np.ones(3))
