"""skrank.jax: the soft operators for JAX arrays, against the NumPy operators and finite
differences (float64)."""

import subprocess
import sys

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402

import skrank  # noqa: E402
import skrank.jax as sj  # noqa: E402
from skrank import losses  # noqa: E402

REGS = ["l2", "kl"]
DIRS = ["ascending", "descending"]
# (shape, axis)
LAYOUTS = [((7,), -1), ((4, 6), -1), ((4, 6), 0), ((2, 3, 5), 1), ((2, 3, 5), -1)]


def _batch(shape, axis):
    return tuple(s for i, s in enumerate(shape) if i != axis % len(shape))


def _strengths(rng, shape, axis, zeros=True):
    """Per-row strengths, some of them 0."""
    eps = rng.uniform(0.3, 2.0, _batch(shape, axis))
    if zeros and eps.size > 1:
        eps.ravel()[::3] = 0.0
    return eps


def _tied(rng, shape):
    return rng.integers(0, 4, shape).astype(np.float64) + rng.choice([0.0, 0.35], shape)


def _distinct(rng, shape):
    return rng.permutation(np.arange(np.prod(shape), dtype=np.float64)).reshape(shape) \
        * 0.37 + rng.uniform(0, 0.1, shape)


def _fd_jacobian(f, x, h=1e-6):
    """Central finite differences of f (JAX, float64) at x: (out.size, x.size)."""
    x, f = np.asarray(x, dtype=np.float64), jax.jit(f)
    cols = []
    for j in range(x.size):
        e = np.zeros(x.size)
        e[j] = h
        e = e.reshape(x.shape)
        cols.append((np.asarray(f(x + e)) - np.asarray(f(x - e))).ravel() / (2 * h))
    return np.stack(cols, axis=1)


def _numpy_jacobian(fun, x, **kwargs):
    """Jacobian of a NumPy skrank operator from skrank.jvp and from skrank.vjp."""
    basis = np.eye(x.size)
    jvp = np.stack([skrank.jvp(fun, x, b.reshape(x.shape), **kwargs)[1].ravel()
                    for b in basis], axis=1)
    vjp_fn = skrank.vjp(fun, x, **kwargs)[1]
    vjp = np.stack([vjp_fn(b.reshape(x.shape)).ravel() for b in basis], axis=0)
    np.testing.assert_allclose(jvp, vjp, atol=1e-12)
    return jvp


# ---------------------------------------------------------------- values
@pytest.mark.parametrize("shape, axis", LAYOUTS)
@pytest.mark.parametrize("regularization", REGS)
@pytest.mark.parametrize("direction", DIRS)
@pytest.mark.parametrize("op", ["soft_rank", "soft_sort"])
def test_values_match_numpy(op, direction, regularization, shape, axis, rng):
    x = _tied(rng, shape) if op == "soft_rank" else rng.normal(size=shape) * 2
    kw = dict(regularization_strength=_strengths(rng, shape, axis),
              regularization=regularization, direction=direction, axis=axis)
    expected = getattr(skrank, op)(x, **kw)
    out = getattr(sj, op)(jnp.asarray(x), **kw)
    assert out.shape == expected.shape and out.dtype == jnp.float64
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    kw["regularization_strength"] = 0.7  # a scalar strength, under jit
    jitted = jax.jit(lambda x: getattr(sj, op)(x, **kw))(x)
    np.testing.assert_allclose(jitted, getattr(skrank, op)(x, **kw), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("op", ["soft_rank", "soft_sort"])
@pytest.mark.parametrize("regularization", REGS)
def test_axis_none_and_empty(op, regularization, rng):
    x = _tied(rng, (3, 4))
    kw = dict(regularization_strength=0.8, regularization=regularization, axis=None)
    np.testing.assert_allclose(getattr(sj, op)(x, **kw), getattr(skrank, op)(x, **kw),
                               rtol=1e-12, atol=1e-12)
    for shape in [(0, 5), (3, 0)]:
        assert getattr(sj, op)(jnp.zeros(shape)).shape == shape


@pytest.mark.parametrize("shape, axis", LAYOUTS)
def test_topk_mask_matches_numpy(shape, axis, rng):
    x = _tied(rng, shape)
    eps = _strengths(rng, shape, axis)
    for k in range(shape[axis] + 1):
        expected = skrank.soft_topk_mask(x, k, regularization_strength=eps, axis=axis)
        out = sj.soft_topk_mask(x, k, regularization_strength=eps, axis=axis)
        np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(out.sum(axis), k, atol=1e-12)


@pytest.mark.parametrize("regularization", REGS)
@pytest.mark.parametrize("shape, axis", LAYOUTS)
def test_spearman_loss_matches_numpy(shape, axis, regularization, rng):
    y_true, y_pred = _tied(rng, shape), _tied(rng, shape)
    if len(shape) > 1:  # constant rows on either side contribute 0
        np.moveaxis(y_true, axis, -1)[(0,) * (len(shape) - 1)] = 1.0
        np.moveaxis(y_pred, axis, -1)[(-1,) * (len(shape) - 1)] = 2.0
        assert (np.ptp(y_true, axis) == 0).any() and (np.ptp(y_pred, axis) == 0).any()
    eps = _strengths(rng, shape, axis)
    kw = dict(regularization_strength=eps, regularization=regularization, axis=axis)
    expected = losses.spearman_loss(y_true, y_pred, **kw)
    np.testing.assert_allclose(sj.spearman_loss(y_true, y_pred, **kw), expected, rtol=1e-12)
    _, vjp_fn = skrank.vjp(losses.spearman_loss, y_true, y_pred, argnums=1, **kw)
    grad = jax.jit(jax.grad(lambda p: sj.spearman_loss(y_true, p, **kw)))(y_pred)
    assert np.all(np.isfinite(grad))
    np.testing.assert_allclose(grad, vjp_fn(np.float64(1.0)), atol=1e-12)


def test_spearman_loss_strength_zero_is_scipy(rng):
    from scipy.stats import spearmanr
    y_true, y_pred = _tied(rng, (9,)), _tied(rng, (9,))
    loss = sj.spearman_loss(y_true, y_pred, regularization_strength=0.0)
    np.testing.assert_allclose(loss, 1 - spearmanr(y_true, y_pred)[0], rtol=1e-12)


# ---------------------------------------------------------------- transformations
@pytest.mark.parametrize("regularization", REGS)
def test_vmap_equals_batched_call(regularization, rng):
    x = _tied(rng, (5, 3, 6))
    eps = rng.uniform(0.2, 2.0, (5, 3))
    eps[1] = 0.0
    kw = dict(regularization=regularization)
    for op in (sj.soft_rank, sj.soft_sort):
        batched = op(x, regularization_strength=eps, **kw)
        # strength batched too: traced inside vmap
        vmapped = jax.vmap(lambda a, e: op(a, regularization_strength=e, **kw))(x, eps)
        np.testing.assert_allclose(vmapped, batched, rtol=1e-12, atol=1e-12)
        # unbatched strength, batch on another axis, under jit
        f = jax.jit(jax.vmap(lambda a: op(a, regularization_strength=0.9, axis=0, **kw),
                             in_axes=2, out_axes=2))
        np.testing.assert_allclose(f(x), op(x, regularization_strength=0.9, axis=0, **kw),
                                   rtol=1e-12, atol=1e-12)
    # batched strength with an unbatched input
    rows = jax.vmap(lambda e: sj.soft_rank(x[0, 0], regularization_strength=e, **kw))(eps[:, 0])
    expected = skrank.soft_rank(np.broadcast_to(x[0, 0], (5, 6)),
                                regularization_strength=eps[:, 0], **kw)
    np.testing.assert_allclose(rows, expected, rtol=1e-12, atol=1e-12)
    # nested vmap, and vmap of a derivative
    nested = jax.vmap(jax.vmap(lambda a: sj.soft_rank(a, **kw)))(x)
    np.testing.assert_allclose(nested, skrank.soft_rank(x, **kw), rtol=1e-12, atol=1e-12)
    grads = jax.vmap(jax.grad(lambda a: sj.soft_rank(a, **kw)[0]))(x[:, 0])
    vjp_fn = skrank.vjp(skrank.soft_rank, x[:, 0], **kw)[1]
    np.testing.assert_allclose(grads, vjp_fn(np.eye(6)[[0] * 5]), atol=1e-12)
    masks = jax.vmap(lambda a: sj.soft_topk_mask(a, 2, regularization_strength=0.5))(x)
    np.testing.assert_allclose(masks, skrank.soft_topk_mask(x, 2, regularization_strength=0.5),
                               atol=1e-12)


def _ops_to_check():
    """(name, JAX function, NumPy function, kwargs, input kind) for the derivative tests."""
    cases = []
    for reg in REGS:
        for d in DIRS:
            cases.append((f"rank-{reg}-{d}", sj.soft_rank, skrank.soft_rank,
                          dict(regularization=reg, direction=d), "tied"))
            cases.append((f"sort-{reg}-{d}", sj.soft_sort, skrank.soft_sort,
                          dict(regularization=reg, direction=d), "distinct"))
    cases.append(("topk", lambda x, **kw: sj.soft_topk_mask(x, 2, **kw),
                  skrank.soft_topk_mask, dict(k=2), "distinct"))
    return cases


@pytest.mark.parametrize("name, f, g, kw, kind", _ops_to_check(),
                         ids=[case[0] for case in _ops_to_check()])
def test_jacobians_match_finite_differences_and_numpy(name, f, g, kw, kind, rng):
    shape, axis = (3, 6), 0
    x = _tied(rng, shape) if kind == "tied" else _distinct(rng, shape)
    eps = np.array([0.5, 1.3, 0.0, 2.0, 0.8, 0.0])  # per row (along axis 0)
    if kind == "distinct":
        eps *= 0.5
    jkw = {key: v for key, v in kw.items() if key != "k"}
    fun = lambda a: f(a, regularization_strength=eps, axis=axis, **jkw)  # noqa: E731
    n_out = x.size
    rev = np.asarray(jax.jacrev(fun)(x)).reshape(n_out, x.size)
    fwd = np.asarray(jax.jacfwd(fun)(x)).reshape(n_out, x.size)
    jit_rev = np.asarray(jax.jit(jax.jacrev(fun))(x)).reshape(n_out, x.size)
    fd = _fd_jacobian(fun, x)
    numpy_jac = _numpy_jacobian(g, x, regularization_strength=eps, axis=axis, **kw)
    assert np.abs(fd).max() > 0.1  # the test sees a non-trivial Jacobian
    np.testing.assert_allclose(rev, fd, atol=1e-7)
    np.testing.assert_allclose(fwd, rev, atol=1e-12)
    np.testing.assert_allclose(jit_rev, rev, atol=1e-12)
    np.testing.assert_allclose(rev, numpy_jac, atol=1e-10)
    # strength-0 rows: the hard operator's derivative (0 for masks and ranks,
    # the permutation for sorts)
    hard = rev.reshape(shape + shape)[:, 2, :, 2]
    if name.startswith("sort"):
        assert sorted(hard.sum(0).tolist()) == [1.0] * 3 and set(hard.ravel()) == {0.0, 1.0}
    else:
        assert not hard.any()


@pytest.mark.parametrize("regularization", REGS)
@pytest.mark.parametrize("op", ["soft_rank", "soft_sort"])
def test_hessian_matches_finite_differences_of_grad(op, regularization, rng):
    x = _tied(rng, (7,)) if op == "soft_rank" else _distinct(rng, (7,))
    c = rng.normal(size=7)
    eps = 1.5 if op == "soft_rank" else 0.6

    def scalar(a):
        v = getattr(sj, op)(a, regularization_strength=eps, regularization=regularization)
        return jnp.sum(c * v ** 2) + jnp.sum(jnp.sin(v))

    hess = np.asarray(jax.jit(jax.hessian(scalar))(x))
    fd = _fd_jacobian(jax.grad(scalar), x, h=1e-5)
    assert np.abs(hess).max() > 0.1
    np.testing.assert_allclose(hess, hess.T, atol=1e-10)
    np.testing.assert_allclose(hess, fd, atol=1e-6)
    rev_rev = jax.jit(jax.jacrev(jax.jacrev(scalar)))(x)  # reverse over reverse too
    np.testing.assert_allclose(rev_rev, hess, atol=1e-12)


def test_kl_soft_rank_has_curvature(rng):
    # kl soft ranks are not piecewise affine: their own second derivative is not 0
    # (eager, not jitted)
    x = jnp.array([0.1, 0.3, 0.2, 2.0])
    second = jax.hessian(lambda a: sj.soft_rank(a, regularization="kl")[0])(x)
    fd = _fd_jacobian(jax.grad(lambda a: sj.soft_rank(a, regularization="kl")[0]), x, h=1e-5)
    assert np.abs(second).max() > 0.01
    np.testing.assert_allclose(second, fd, atol=1e-6)


# ---------------------------------------------------------------- dtypes
@pytest.mark.parametrize("op", ["soft_rank", "soft_sort"])
@pytest.mark.parametrize("regularization", REGS)
def test_dtypes(op, regularization, rng):
    x = rng.normal(size=(3, 8))
    kw = dict(regularization_strength=0.4, regularization=regularization)
    expected = getattr(skrank, op)(x, **kw)
    for dtype, tol in [(jnp.float32, 1e-5), (jnp.float16, 5e-3), (jnp.bfloat16, 3e-2)]:
        out = jax.jit(lambda a: getattr(sj, op)(a, **kw))(jnp.asarray(x, dtype=dtype))
        assert out.dtype == dtype
        ref = getattr(skrank, op)(np.asarray(jnp.asarray(x, dtype=dtype), np.float64), **kw)
        np.testing.assert_allclose(np.asarray(out, np.float64), ref, rtol=tol, atol=tol * 8)
    grad = jax.grad(lambda a: getattr(sj, op)(a, **kw)[0, 0])(jnp.asarray(x, jnp.float32))
    assert grad.dtype == jnp.float32
    ints = getattr(sj, op)(jnp.arange(5), **kw)
    assert ints.dtype == jnp.float64
    np.testing.assert_allclose(ints, getattr(skrank, op)(np.arange(5.0), **kw), atol=1e-12)
    assert np.abs(expected).max() > 0


def test_without_x64(rng):
    # 32-bit mode: integer structure in int32, values in float32
    x = rng.normal(size=(2, 6))
    jax.config.update("jax_enable_x64", False)
    try:
        xj = jnp.asarray(x)
        assert xj.dtype == jnp.float32
        out = jax.jit(lambda a: sj.soft_rank(a, regularization="kl"))(xj)
        grad = jax.jit(jax.grad(lambda a: sj.spearman_loss(jnp.arange(6.0), a[0])))(xj)
        mask = jax.jit(lambda a: sj.soft_topk_mask(a, 2))(jnp.arange(6))
        median = jax.jit(sj.soft_median)(xj)
        ndcg_grad = jax.jit(jax.grad(lambda a: sj.ndcg_loss(jnp.arange(6.0), a, k=3)))(xj[0])
    finally:
        jax.config.update("jax_enable_x64", True)
    assert out.dtype == jnp.float32 and grad.dtype == jnp.float32
    assert mask.dtype == median.dtype == ndcg_grad.dtype == jnp.float32
    np.testing.assert_allclose(median, skrank.soft_median(x.astype(np.float32)), rtol=1e-5)
    _, vjp_fn = skrank.vjp(losses.ndcg_loss, np.arange(6.0), x[0], argnums=1, k=3)
    np.testing.assert_allclose(ndcg_grad, vjp_fn(np.float64(1.0)), atol=1e-5)
    np.testing.assert_allclose(out, skrank.soft_rank(x.astype(np.float32), regularization="kl"),
                               rtol=1e-5)
    _, vjp_fn = skrank.vjp(losses.spearman_loss, np.arange(6.0), x[0], argnums=1)
    np.testing.assert_allclose(grad[0], vjp_fn(np.float64(1.0)), atol=1e-5)


# ---------------------------------------------------------------- edge cases, errors
def test_non_finite_rows_raise_or_give_nan(rng):
    # NumPy's nan_policy: concrete values raise, or give NaN rows with "propagate";
    # traced ones (under jit) cannot raise and give NaN rows
    x = rng.normal(size=(3, 5))
    x[1, 2] = np.nan
    x[2, 0] = np.inf
    for op in (sj.soft_rank, sj.soft_sort):
        with pytest.raises(ValueError, match="nan_policy='propagate'"):
            op(x)
        for out in (op(x, nan_policy="propagate"), jax.jit(op)(x)):
            out = np.asarray(out)
            assert np.isnan(out[1:]).all()
            np.testing.assert_allclose(out[0], getattr(skrank, op.__name__)(x[0]),
                                       atol=1e-12)
        with pytest.raises(ValueError, match="nan_policy"):
            op(x, nan_policy="omit")
    for op, args in ((sj.soft_median, ()), (sj.soft_topk_mask, (2,))):
        with pytest.raises(ValueError, match="^x contains NaN or infinity.$"):
            op(x, *args)
        assert np.isnan(np.asarray(jax.jit(lambda x: op(x, *args))(x))[1:]).all()
    with pytest.raises(ValueError, match="y_pred contains NaN"):
        sj.spearman_loss(np.ones((3, 5)), x)


def test_large_offsets_are_exact():
    # design notes, section 5: forms that cancel nothing
    x = jnp.array([3e16, 1e16, 2e16, -1e16])
    np.testing.assert_array_equal(sj.soft_rank(x), [4.0, 2.0, 3.0, 1.0])
    for reg in REGS:
        out = sj.soft_sort(x, regularization_strength=1e-16, regularization=reg)
        np.testing.assert_allclose(out, skrank.soft_sort(np.asarray(x), regularization=reg,
                                                         regularization_strength=1e-16),
                                   rtol=1e-15)
        assert len(np.unique(np.asarray(out))) == 4


@pytest.mark.parametrize("call, error, match", [
    (lambda x: sj.soft_rank(x, regularization="l1"), ValueError, "regularization"),
    (lambda x: sj.soft_sort(x, direction="up"), ValueError, "direction"),
    (lambda x: sj.spearman_loss(x, x, regularization="L2"), ValueError, "regularization"),
    (lambda x: sj.soft_rank(x, regularization_strength=-1.0), ValueError, "non-negative"),
    (lambda x: sj.soft_sort(x, regularization_strength=np.inf), ValueError, "finite"),
    (lambda x: sj.soft_rank(x, regularization_strength=[1.0, -1.0]), ValueError,
     "non-negative"),
    (lambda x: sj.soft_rank(x, regularization_strength=np.ones(3)), ValueError, "shape"),
    (lambda x: sj.soft_rank(x, regularization_strength="a"), TypeError, "real"),
    (lambda x: sj.soft_topk_mask(x, 5), ValueError, r"\[0, 4\]"),
    (lambda x: sj.soft_topk_mask(x, -1), ValueError, r"\[0, 4\]"),
    (lambda x: sj.soft_topk_mask(x, "two"), TypeError, "number"),
    (lambda x: sj.soft_topk_mask(x, True), TypeError, "number"),
    (lambda x: sj.soft_topk_mask(x, 99.5), ValueError, "k must lie"),
    (lambda x: sj.soft_rank(x.astype(jnp.complex64)), TypeError, "real numbers"),
    (lambda x: sj.soft_rank(x, axis=2), ValueError, "out of bounds"),
    (lambda x: sj.soft_rank(x, axis=0.5), TypeError, "axis"),
    (lambda x: sj.spearman_loss(x, x[:, :3]), ValueError, "same shape"),
    (lambda x: sj.spearman_loss(x[:0], x[:0]), ValueError, "empty"),
])
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call(jnp.ones((2, 4)))


@pytest.mark.parametrize("op", ["soft_rank", "soft_sort"])
def test_traced_strength(op):
    f = jax.jit(lambda x, e: getattr(sj, op)(x, regularization_strength=e))
    x = jnp.array([[2.0, 1.9], [0.0, 0.5], [1.0, 3.0]])
    # traced, the strength cannot be checked in Python: invalid rows give NaN
    out = np.asarray(f(x, jnp.array([1.0, -1.0, np.nan])))
    np.testing.assert_allclose(out[0], getattr(skrank, op)(np.asarray(x[0])), atol=1e-12)
    assert np.isnan(out[1:]).all()
    # the derivative flows to the strength of the row it belongs to only (the first
    # row pools at strength 1 in the rank form; its soft sort is still the hard one)
    d = jax.grad(lambda e: f(x, e)[0, 0])(jnp.ones(3)).tolist()
    assert (d[0] != 0.0) == (op == "soft_rank") and d[1:] == [0.0, 0.0]


def test_k_static_or_traced_under_jit():
    # a static int k shares the masks' structures; a traced one takes the real-k path
    # (tests/test_sparse.py): the same mask
    x = jnp.array([3.0, 1.0, 1.0, 0.0])
    static = jax.jit(sj.soft_topk_mask, static_argnums=1)(x, 2)
    np.testing.assert_allclose(static, [1.0, 0.5, 0.5, 0.0])
    np.testing.assert_allclose(jax.jit(sj.soft_topk_mask)(x, 2), static, atol=1e-15)


def test_import_skrank_does_not_import_jax():
    code = ("import sys, skrank; skrank.soft_rank([1., 2.]); "
            "assert 'skrank.jax' not in sys.modules and 'jax' not in sys.modules, "
            "sorted(m for m in sys.modules if 'jax' in m)")
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------- statistics and losses
STAT_LAYOUTS = [((7,), -1), ((2, 3, 5), 1)]


def _stat_calls():
    """(name, JAX call, NumPy call): f(module, x, **kw) for the soft statistics."""
    return [
        ("quantile-0.5", lambda m, x, **kw: m.soft_quantile(x, 0.5, **kw)),
        ("quantile-0.3", lambda m, x, **kw: m.soft_quantile(x, 0.3, **kw)),
        ("quantiles", lambda m, x, **kw: m.soft_quantile(x, (0.0, 0.25, 0.8, 1.0), **kw)),
        ("median", lambda m, x, **kw: m.soft_median(x, **kw)),
        ("trim-0", lambda m, x, **kw: m.soft_trimmed_mean(x, 0.0, **kw)),
        ("trim-0.2", lambda m, x, **kw: m.soft_trimmed_mean(x, 0.2, **kw)),
        ("trim-0.34", lambda m, x, **kw: m.soft_trimmed_mean(x, 0.34, **kw)),
    ]


@pytest.mark.parametrize("shape, axis", STAT_LAYOUTS)
def test_statistics_match_numpy(shape, axis, rng):
    x = _tied(rng, shape)
    x.ravel()[-1] = 1e3  # an outlier
    for eps in (_strengths(rng, shape, axis), 0.0):  # per row (some 0), and 0
        for name, call in _stat_calls():
            expected = call(skrank, x, regularization_strength=eps, axis=axis)
            out = call(sj, jnp.asarray(x), regularization_strength=eps, axis=axis)
            assert out.shape == np.shape(expected) and out.dtype == jnp.float64, name
            np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12, err_msg=name)
    # axis=None, an empty q, and an even length's median
    np.testing.assert_allclose(sj.soft_median(x, axis=None, regularization_strength=0.0),
                               np.median(x), rtol=1e-15)
    assert sj.soft_quantile(x, [], axis=axis).shape == (0,) + _batch(shape, axis)


def test_statistics_under_jit_and_vmap(rng):
    x = _tied(rng, (4, 6))
    eps = _strengths(rng, (4, 6), -1)
    q = jax.jit(sj.soft_quantile, static_argnums=1)(x, (0.1, 0.5),
                                                    regularization_strength=eps)
    np.testing.assert_allclose(q, skrank.soft_quantile(x, [0.1, 0.5],
                                                       regularization_strength=eps),
                               rtol=1e-12, atol=1e-12)
    trim = jax.jit(sj.soft_trimmed_mean, static_argnames="proportiontocut")
    np.testing.assert_allclose(trim(x, proportiontocut=0.2, regularization_strength=0.7),
                               skrank.soft_trimmed_mean(x, 0.2, regularization_strength=0.7),
                               rtol=1e-12)
    # a traced strength, one per row under vmap
    med = jax.vmap(lambda a, e: sj.soft_median(a, regularization_strength=e))(x, eps)
    np.testing.assert_allclose(med, skrank.soft_median(x, regularization_strength=eps),
                               rtol=1e-12, atol=1e-12)
    with pytest.raises(TypeError, match="static"):
        jax.jit(sj.soft_quantile)(x, 0.5)
    with pytest.raises(TypeError, match="static"):
        jax.jit(sj.soft_trimmed_mean)(x, 0.2)


STAT_JACOBIANS = [("quantile-0.5", "soft_quantile", (0.5,)),
                  ("quantiles", "soft_quantile", ((0.0, 0.25, 0.8, 1.0),)),
                  ("median", "soft_median", ()),
                  ("trim-0", "soft_trimmed_mean", (0.0,)),
                  ("trim-0.34", "soft_trimmed_mean", (0.34,))]


@pytest.mark.parametrize("name, op, args", STAT_JACOBIANS, ids=[c[0] for c in STAT_JACOBIANS])
def test_statistics_jacobians_match_numpy(name, op, args, rng):
    shape, axis = (3, 6), 0
    x = _tied(rng, shape)
    eps = np.array([0.5, 1.3, 0.0, 2.0, 0.8, 0.0])  # per row (along axis 0)
    fun = lambda a: getattr(sj, op)(a, *args, regularization_strength=eps,  # noqa: E731
                                    axis=axis)
    rev = np.asarray(jax.jit(jax.jacrev(fun))(x)).reshape(-1, x.size)
    value, vjp_fn = skrank.vjp(getattr(skrank, op), x, *args, regularization_strength=eps,
                               axis=axis)
    basis = np.eye(np.size(value)).reshape((-1,) + np.shape(value))
    expected = np.stack([vjp_fn(b).ravel() for b in basis])
    assert np.abs(expected).max() > 0.1
    np.testing.assert_allclose(rev, expected, atol=1e-12)
    if name == "median":  # jax.grad of a scalar
        grad = jax.jit(jax.grad(lambda a: fun(a)[1]))(x)
        np.testing.assert_allclose(grad, expected[1].reshape(shape), atol=1e-12)


def test_quantile_hessian_matches_finite_differences_of_grad(rng):
    x, c = _distinct(rng, (7,)), rng.normal(size=3)

    def scalar(a):
        v = sj.soft_quantile(a, (0.2, 0.5, 0.9), regularization_strength=0.8)
        return jnp.sum(c * v) + jnp.sum(v ** 2)

    hess = np.asarray(jax.jit(jax.hessian(scalar))(x))
    fd = _fd_jacobian(jax.grad(scalar), x, h=1e-5)
    assert np.abs(hess).max() > 0.1
    np.testing.assert_allclose(hess, hess.T, atol=1e-10)
    np.testing.assert_allclose(hess, fd, atol=1e-6)


@pytest.mark.parametrize("regularization, shape, axis", [("l2", (4, 6), -1),
                                                         ("kl", (2, 3, 5), 1),
                                                         ("p4/3", (3, 7), -1),
                                                         ("p3/2", (2, 9), -1)])
def test_losses_match_numpy(regularization, shape, axis, rng):
    y_true, y_pred = _tied(rng, shape), _tied(rng, shape)
    np.moveaxis(y_true, axis, -1)[(0,) * (len(shape) - 1)] = 0.0  # no relevance: 0
    eps = _strengths(rng, shape, axis)
    kw = dict(regularization_strength=eps, regularization=regularization, axis=axis)
    for k, gains in [(None, "linear"), (2, "exponential"), (0, "linear"), (9, "linear")]:
        expected = losses.ndcg_loss(y_true, y_pred, k=k, gains=gains, **kw)
        out = sj.ndcg_loss(y_true, jnp.asarray(y_pred), k=k, gains=gains, **kw)
        assert out.shape == () and out.dtype == jnp.float64
        np.testing.assert_allclose(out, expected, rtol=1e-12, err_msg=f"{k} {gains}")
        if k in (None, 2):
            _, vjp_fn = skrank.vjp(losses.ndcg_loss, y_true, y_pred, argnums=1, k=k,
                                   gains=gains, **kw)
            grad = jax.jit(jax.grad(lambda p: sj.ndcg_loss(y_true, p, k=k, gains=gains,
                                                           **kw)))(y_pred)
            assert np.abs(grad).max() > 1e-3
            np.testing.assert_allclose(grad, vjp_fn(np.float64(1.0)), atol=1e-12)
    labels = rng.integers(0, shape[axis], _batch(shape, axis))
    for k in (1, 2):
        expected = losses.topk_loss(labels, y_pred, k=k, **kw)
        np.testing.assert_allclose(sj.topk_loss(labels, y_pred, k=k, **kw), expected,
                                   rtol=1e-12)
        _, vjp_fn = skrank.vjp(losses.topk_loss, labels, y_pred, argnums=1, k=k, **kw)
        grad = jax.jit(jax.grad(lambda p: sj.topk_loss(labels, p, k=k, **kw)))(y_pred)
        np.testing.assert_allclose(grad, vjp_fn(np.float64(1.0)), atol=1e-12)
    kw["regularization_strength"] = 0.0  # hard: the NumPy losses at strength 0
    np.testing.assert_allclose(sj.ndcg_loss(y_true, y_pred, k=3, **kw),
                               losses.ndcg_loss(y_true, y_pred, k=3, **kw), rtol=1e-12)
    np.testing.assert_allclose(sj.topk_loss(labels, y_pred, **kw),
                               losses.topk_loss(labels, y_pred, **kw), rtol=1e-12)


def test_losses_under_jit_with_traced_targets():
    y_true = jnp.array([[3.0, 0.0, 1.0], [1.0, -1.0, 0.0]])
    y_pred = jnp.array([[0.2, 0.9, 0.1], [0.5, 0.4, 0.3]])
    # traced relevances cannot be checked in Python: a negative one makes its row NaN
    out = jax.jit(sj.ndcg_loss, static_argnames="k")(y_true, y_pred, k=2)
    assert np.isnan(out)
    out = jax.jit(sj.ndcg_loss, static_argnames="k")(y_true[:1], y_pred[:1], k=2)
    np.testing.assert_allclose(out, losses.ndcg_loss(y_true[:1], y_pred[:1], k=2),
                               rtol=1e-12)
    f = jax.jit(sj.topk_loss, static_argnames="k")
    assert np.isnan(f(jnp.array([0, 3]), y_pred, k=1))
    np.testing.assert_allclose(f(jnp.array([0, 2]), y_pred, k=1),
                               losses.topk_loss([0, 2], y_pred, k=1), rtol=1e-12)
    with pytest.raises(TypeError, match="static"):
        jax.jit(lambda p, k: sj.ndcg_loss(y_true, p, k=k))(y_pred, 1)
    with pytest.raises(TypeError, match="static"):
        jax.jit(lambda p, k: sj.topk_loss(jnp.array([0, 2]), p, k=k))(y_pred, 1)


@pytest.mark.parametrize("call, error, match", [
    (lambda x: sj.soft_quantile(x, 1.5), ValueError, r"\[0, 1\]"),
    (lambda x: sj.soft_quantile(x, [[0.5]]), ValueError, "1-D"),
    (lambda x: sj.soft_quantile(x, "a"), TypeError, "real"),
    (lambda x: sj.soft_quantile(x[:, :0], 0.5), ValueError, "empty row"),
    (lambda x: sj.soft_median(x, regularization_strength=-1.0), ValueError, "non-negative"),
    (lambda x: sj.soft_median(x, axis=3), ValueError, "out of bounds"),
    (lambda x: sj.soft_trimmed_mean(x, 0.5), ValueError, "proportiontocut"),
    (lambda x: sj.soft_trimmed_mean(x, [0.1]), ValueError, "proportiontocut"),
    (lambda x: sj.soft_trimmed_mean(x[:, :0], 0.1), ValueError, "empty row"),
    (lambda x: sj.ndcg_loss(-x, x), ValueError, "non-negative"),
    (lambda x: sj.ndcg_loss(x.at[0, 0].set(jnp.nan), x), ValueError, "NaN"),
    (lambda x: sj.ndcg_loss(x, x, gains="log"), ValueError, "gains"),
    (lambda x: sj.ndcg_loss(x, x, k=-1), ValueError, "non-negative"),
    (lambda x: sj.ndcg_loss(x, x, k=1.0), TypeError, "Python int"),
    (lambda x: sj.ndcg_loss(x, x, regularization="l1"), ValueError, "regularization"),
    (lambda x: sj.ndcg_loss(x, x[:, :2]), ValueError, "same shape"),
    (lambda x: sj.ndcg_loss(x[:0], x[:0]), ValueError, "empty"),
    (lambda x: sj.topk_loss(jnp.array([0, 1]), x, k=5), ValueError, r"\[0, 4\]"),
    (lambda x: sj.topk_loss(jnp.array([0, 1]), x, k=True), TypeError, "Python int"),
    (lambda x: sj.topk_loss(jnp.array([0.0, 1.0]), x), TypeError, "integer"),
    (lambda x: sj.topk_loss(jnp.array([0, 1, 2]), x), ValueError, "shape"),
    (lambda x: sj.topk_loss(jnp.array([0, 4]), x), ValueError, "class indices"),
    (lambda x: sj.topk_loss(jnp.array([0, 1]), x[:, :0], k=0), ValueError, "at least one"),
])
def test_statistics_and_losses_errors(call, error, match):
    with pytest.raises(error, match=match):
        call(jnp.ones((2, 4)))


@pytest.mark.parametrize("fun, args", [(sj.soft_median, ()), (sj.soft_quantile, ([0.3, 0.5],)),
                                       (sj.soft_trimmed_mean, (0.2,))])
def test_statistics_stay_within_each_row(fun, args):
    """Convex combinations of the row, as the NumPy twins: a constant row gives the
    constant exactly, values near the float limits do not overflow, float32 too."""
    for value, dtype in [(2.5, jnp.float64), (0.1, jnp.float32), (3.4e38, jnp.float32),
                         (1.7e308, jnp.float64)]:
        x = jnp.full((2, 9), value, dtype=dtype)
        for eps in (0.0, 1.0, 1e3):
            got = fun(x, *args, regularization_strength=eps)
            assert got.dtype == dtype
            np.testing.assert_array_equal(got, np.full(got.shape, value, dtype))
    x = jnp.array([[1.7e308, 1.6e308, 1.5e308, 1.79e308], [-1.79e308, 1e-300, 0.0, 1.79e308]])
    got = fun(x, *args, regularization_strength=1.0)
    assert jnp.isfinite(got).all()
    assert ((got >= x.min(-1)) & (got <= x.max(-1))).all()
    # (a sum's error is relative to the row's largest values: the trimmed mean of the
    # second row, 1e-300 / 4, is kept by NumPy's compensated sum, lost here)
    np.testing.assert_allclose(got, getattr(skrank, fun.__name__)(np.asarray(x), *args),
                               rtol=1e-14, atol=1e-14 * float(jnp.abs(x).max()))
    # derivatives: finite, with several statistics too (each use of a mask is its own
    # graph node, so cotangents about the row's values never add up past the limit)
    grad = jax.grad(lambda x: fun(x, *args, regularization_strength=1.0).sum())(x)
    assert jnp.isfinite(grad).all()


def test_derivative_in_the_strength(rng):
    # traced strengths are differentiated exactly, under jit too; 0 at strength 0
    x = jnp.asarray(_distinct(rng, (3, 6)))
    w = jnp.arange(6.0)
    for reg in REGS:
        for op in (sj.soft_rank, sj.soft_sort):
            def f(e):
                return (op(x, regularization_strength=e, regularization=reg) * w).sum()
            e, h = jnp.array([0.4, 1.5, 3.0]), 1e-6
            got = jax.jit(jax.grad(f))(e)
            for i in range(3):
                step = jnp.zeros(3).at[i].set(h)
                assert float(got[i]) == pytest.approx(
                    float((f(e + step) - f(e - step)) / (2 * h)), abs=1e-6)
    g = jax.grad(lambda e: sj.soft_quantile(x, 0.3, regularization_strength=e).sum())
    e, h = 0.8, 1e-6
    fd = (sj.soft_quantile(x, 0.3, regularization_strength=e + h).sum()
          - sj.soft_quantile(x, 0.3, regularization_strength=e - h).sum()) / (2 * h)
    assert float(g(e)) == pytest.approx(float(fd), abs=1e-6)
    hard = jax.grad(lambda e: (sj.soft_rank(x, regularization_strength=e) * w).sum())(
        jnp.array([0.0, 1.0, 0.0]))
    assert hard[0] == 0 and hard[2] == 0 and hard[1] != 0
