"""regularization="p4/3" and "p3/2": sparse and smooth top-k masks (design notes,
section 13).

soft_rank and soft_sort with the p-norms are checked against the reference PAV with the
other regularisers (test_soft_ops.py, test_derivatives.py); here are the masks, checked
against their optimality conditions (no PAV), their sparsity, limits, and where their
derivative is continuous and where it jumps.
"""
import importlib.util

import numpy as np
import pytest

import _reference as ref
import skrank

PNORMS = ("p4/3", "p3/2")
# inside its band a p-norm's mask is clip(x / eps - tau, 0, 1) to this power
_MASK_POWER = {"p4/3": 3, "p3/2": 2}


def _jac(fun, x, *args, **kw):
    _, vjp_fn = skrank.vjp(fun, x, *args, **kw)
    return np.stack([vjp_fn(e) for e in np.eye(x.size)])  # row i: d out_i / d x


@pytest.mark.parametrize("pnorm", PNORMS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_mask_matches_its_optimality_conditions(dtype, pnorm):
    rng = np.random.default_rng(0)
    tol = 1e-9 if dtype == np.float64 else 2e-5
    for n in (1, 2, 5, 12):
        for k in range(n + 1):
            for eps in (0.05, 0.5, 3.0):
                x = rng.normal(size=n).astype(dtype)
                m = skrank.soft_topk_mask(x, k, regularization_strength=eps,
                                          regularization=pnorm)
                assert m.dtype == dtype
                want = ref.topk_mask(x.astype(np.float64), k, eps, power=_MASK_POWER[pnorm])
                np.testing.assert_allclose(m, want, rtol=0, atol=tol)
                np.testing.assert_allclose(m.astype(np.float64).sum(), k, atol=tol * n)


@pytest.mark.parametrize("pnorm", PNORMS)
def test_mask_is_sparse_far_from_the_boundary(pnorm):
    # exact 0s and 1s, as l2's, where kl's mask would be dense
    x = np.array([9.0, 8.0, 1.1, 1.0, 0.9, -5.0, -7.0])
    m = skrank.soft_topk_mask(x, 3, regularization_strength=1.0, regularization=pnorm)
    np.testing.assert_array_equal(m[[0, 1]], [1.0, 1.0])
    np.testing.assert_array_equal(m[[5, 6]], [0.0, 0.0])
    assert np.all((m[2:5] > 0) & (m[2:5] < 1))
    # the same holds in magnitude, for pruning
    w = np.array([-9.0, 0.01, 1.1, -1.0, 0.9, 8.0])
    t = skrank.soft_topk(w, 3, regularization_strength=1.0, by="magnitude",
                         regularization=pnorm)
    np.testing.assert_array_equal(t[[0, 5]], w[[0, 5]])
    assert t[1] == 0.0


@pytest.mark.parametrize("pnorm", PNORMS)
def test_mask_limits(pnorm):
    rng = np.random.default_rng(1)
    kw = dict(regularization=pnorm)
    x = rng.normal(size=8)
    np.testing.assert_array_equal(
        skrank.soft_topk_mask(x, 3, regularization_strength=0.0, **kw),
        skrank.soft_topk_mask(x, 3, regularization_strength=0.0))
    np.testing.assert_allclose(
        skrank.soft_topk_mask(x, 3, regularization_strength=1e9, **kw), np.full(8, 3 / 8),
        atol=1e-9)
    # ties at the boundary share the mass, as the hard mask's tie rule
    np.testing.assert_allclose(
        skrank.soft_topk_mask([3.0, 1.0, 1.0, 0.0], 2, regularization_strength=1e-6, **kw),
        [1.0, 0.5, 0.5, 0.0], atol=1e-12)


@pytest.mark.parametrize("by", ["value", "magnitude"])
@pytest.mark.parametrize("fun", [skrank.soft_topk_mask, skrank.soft_topk])
@pytest.mark.parametrize("pnorm", PNORMS)
def test_derivatives_match_finite_differences_and_are_transposes(fun, by, pnorm):
    rng = np.random.default_rng(2)
    for eps in (0.2, 1.0, 5.0):
        x = rng.normal(size=9)
        kw = dict(regularization_strength=eps, by=by, regularization=pnorm)
        u, g = rng.normal(size=9), rng.normal(size=9)
        h = 1e-6
        fd = (fun(x + h * u, 4, **kw) - fun(x - h * u, 4, **kw)) / (2 * h)
        y, t = skrank.jvp(fun, x, u, 4, **kw)
        np.testing.assert_allclose(t, fd, rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(y, fun(x, 4, **kw))
        v = skrank.vjp(fun, x, 4, **kw)[1](g)
        np.testing.assert_allclose(g @ t, v @ u, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("fun,args", [(skrank.soft_quantile, ([0.1, 0.5, 0.9],)),
                                      (skrank.soft_median, ()),
                                      (skrank.soft_trimmed_mean, (0.2,))])
@pytest.mark.parametrize("pnorm", PNORMS)
def test_statistics_on_p_norm_masks(fun, args, pnorm):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 11))
    x[0, 3] = 40.0  # an outlier far from every boundary: weight exactly 0
    kw = dict(regularization=pnorm)
    # (to the last bit but one: l2 values come from the kernel's pair sums, p-norm ones
    # from the masks, which round in another order)
    np.testing.assert_allclose(fun(x, *args, regularization_strength=0.0, **kw),
                               fun(x, *args, regularization_strength=0.0), rtol=4e-16)
    v = fun(x, *args, regularization_strength=0.5, **kw)
    assert np.all(np.isfinite(v)) and not np.allclose(v, fun(x, *args,
                                                             regularization_strength=0.5))
    np.testing.assert_allclose(fun(x, *args, regularization_strength=1e12, **kw),
                               np.broadcast_to(x.mean(axis=-1), np.shape(v)), atol=1e-7)
    _, vjp_fn = skrank.vjp(fun, x, *args, regularization_strength=0.5, **kw)
    g = rng.normal(size=np.shape(v))
    grad = vjp_fn(g)
    assert grad[0, 3] == 0.0
    u = rng.normal(size=x.shape)
    h = 1e-6
    fd = (fun(x + h * u, *args, regularization_strength=0.5, **kw)
          - fun(x - h * u, *args, regularization_strength=0.5, **kw)) / (2 * h)
    y, t = skrank.jvp(fun, x, u, *args, regularization_strength=0.5, **kw)
    np.testing.assert_allclose(t, fd, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.sum(g * t), np.sum(grad * u), rtol=1e-12)


@pytest.mark.parametrize("pnorm", PNORMS)
def test_tied_entries_pooled_at_a_constant_weight_have_zero_derivative(pnorm):
    # entries tied among the kept are locally constant (each is 1): no derivative
    x = np.array([5.0, 5.0, 0.3, 0.0, -4.0])
    J = _jac(skrank.soft_topk_mask, x, 3, regularization_strength=1.0, regularization=pnorm)
    np.testing.assert_array_equal(J[:2], 0.0)
    assert np.abs(J[2:4]).max() > 0.1


def _entry_point(x, k, i, lo, hi, **kw):
    """The value of x[i] in [lo, hi] where the block structure of the mask changes
    (bisection on the number of blocks, taken from the kept structure)."""
    def nblocks(t):
        y = x.copy()
        y[i] = t
        from skrank import _stats

        return int(_stats._topk_mask(y, k, kw["regularization_strength"], -1, True,
                                     regularization=kw["regularization"])[1].nblocks[0])
    n_lo = nblocks(lo)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if nblocks(mid) == n_lo:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


@pytest.mark.parametrize("reg,order", [("p4/3", 2), ("p3/2", 1), ("l2", 0)])
def test_derivative_where_an_entry_enters_the_band_from_zero(reg, order):
    # x[2] rises into the band of a k = 1 mask: below it its output is 0 (alone in its
    # block); the p-norms' Jacobians are continuous there: the entry's weight starts at
    # 0, at h past the entry point p4/3's g = 3 P^(2/3) is about 3 h^2 and p3/2's
    # g = 2 P^(1/2) about 2 h, and so is the change of the Jacobian across it; l2's jumps
    x = np.array([1.0, 0.5, -3.0])
    kw = dict(regularization_strength=1.0, regularization=reg)
    t0 = _entry_point(x, 1, 2, -3.0, 0.5, **kw)
    for h in (1e-6, 1e-7):
        below, above = x.copy(), x.copy()
        below[2], above[2] = t0 - h, t0 + h
        jump = np.abs(_jac(skrank.soft_topk_mask, above, 1, **kw)
                      - _jac(skrank.soft_topk_mask, below, 1, **kw)).max()
        assert (jump < 10 * h ** order) if order else (jump > 0.1)


@pytest.mark.parametrize("pnorm", PNORMS)
def test_derivative_jumps_where_an_entry_leaves_one(pnorm):
    # x[0] falls onto the band of a k = 2 mask from the kept side, where its output is 1:
    # g does not vanish there, so the p-norms' Jacobians jump, as documented
    x = np.array([2.0, 0.3, 0.0])
    kw = dict(regularization_strength=1.0, regularization=pnorm)
    t0 = _entry_point(x, 2, 0, 2.0, 0.31, **kw)
    below, above = x.copy(), x.copy()
    below[0], above[0] = t0 - 1e-6, t0 + 1e-6
    J_in = _jac(skrank.soft_topk_mask, below, 2, **kw)
    J_out = _jac(skrank.soft_topk_mask, above, 2, **kw)
    np.testing.assert_array_equal(J_out[0], 0.0)
    assert J_in[0, 0] > 1.0


def test_unsupported_places_name_the_option():
    x = np.array([3.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="regularization must be one of"):
        skrank.soft_topk_mask(x, 1, regularization="kl")
    with pytest.raises(ValueError, match="regularization must be one of"):
        skrank.soft_trimmed_mean(x, 0.2, regularization="kl")


@pytest.mark.parametrize("pnorm", PNORMS)
def test_metrics_offer_the_p_norms(pnorm):
    # (the losses are checked against their references in test_losses.py)
    from scipy.stats import spearmanr

    rng = np.random.default_rng(15)
    t, y = rng.normal(size=40), rng.normal(size=40)
    kw = dict(regularization=pnorm)
    hard = skrank.metrics.soft_spearman(t, y, regularization_strength=1e-9, **kw)
    assert hard == pytest.approx(spearmanr(t, y).statistic, abs=1e-9)
    value, vjp_fn = skrank.vjp(skrank.metrics.soft_spearman, t, y, argnums=1,
                               regularization_strength=0.5, **kw)
    u, h = rng.normal(size=40), 1e-6
    fd = (skrank.metrics.soft_spearman(t, y + h * u, regularization_strength=0.5, **kw)
          - skrank.metrics.soft_spearman(t, y - h * u, regularization_strength=0.5, **kw)
          ) / (2 * h)
    assert vjp_fn(1.0) @ u == pytest.approx(fd, abs=1e-7)
    groups = np.repeat([0, 1], 20)
    assert 0 < skrank.metrics.soft_ndcg(np.abs(t), y, groups=groups, k=5,
                                        regularization_strength=0.5, **kw) <= 1
    assert skrank.metrics.soft_spearman(t, y, groups=groups, regularization_strength=1e-9,
                                        **kw) == pytest.approx(np.mean(
        [spearmanr(t[groups == g], y[groups == g]).statistic for g in (0, 1)]), abs=1e-9)


_ADAPTED = [("soft_rank", (), {}), ("soft_sort", (), {}),
            ("soft_rank", (), {"direction": "descending"}),
            ("soft_topk_mask", (3,), {}), ("soft_topk", (3,), {"by": "magnitude"}),
            ("soft_quantile", ([0.2, 0.5],), {}), ("soft_median", (), {}),
            ("soft_trimmed_mean", (0.2,), {})]


@pytest.mark.parametrize("pnorm", PNORMS)
@pytest.mark.parametrize("name,args,kw", _ADAPTED)
def test_torch_adapter_matches_numpy_and_has_exact_second_derivatives(name, args, kw, pnorm):
    torch = pytest.importorskip("torch")
    import skrank.torch as st

    rng = np.random.default_rng(5)
    x = rng.normal(size=(3, 6))
    x[0, 1] = x[0, 4]  # a tie
    kw = dict(kw, regularization=pnorm)
    for eps in (0.0, 0.4, 2.0):
        t = torch.tensor(x, requires_grad=True)
        y = getattr(st, name)(t, *args, regularization_strength=eps, **kw)
        fun = getattr(skrank, name)
        np.testing.assert_allclose(y.detach().numpy(),
                                   fun(x, *args, regularization_strength=eps, **kw),
                                   rtol=0, atol=1e-13)
        g = rng.normal(size=tuple(y.shape))
        (got,) = torch.autograd.grad(y, t, torch.tensor(g))
        want = skrank.vjp(fun, x, *args, regularization_strength=eps, **kw)[1](g)
        np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-12)
    # second derivatives in x and in a learnable strength, away from ties (a sort's kink)
    z = torch.tensor(x[1:2], requires_grad=True)
    e = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    op = getattr(st, name)
    assert torch.autograd.gradgradcheck(
        lambda v: op(v, *args, regularization_strength=0.7, **kw), (z,))
    assert torch.autograd.gradgradcheck(
        lambda s: op(z.detach(), *args, regularization_strength=s, **kw), (e,))


@pytest.mark.parametrize("pnorm", PNORMS)
@pytest.mark.parametrize("name,args,kw", _ADAPTED)
def test_jax_adapter_matches_numpy_under_jit_to_second_order(name, args, kw, pnorm):
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    import skrank.jax as sj

    rng = np.random.default_rng(6)
    x = rng.normal(size=(2, 6))
    kw = dict(kw, regularization=pnorm)
    fun, op = getattr(skrank, name), getattr(sj, name)
    x64 = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        f = jax.jit(lambda v: op(v, *args, regularization_strength=0.8, **kw))
        y, vjp_fn = jax.vjp(f, jnp.asarray(x))
        np.testing.assert_allclose(np.asarray(y),
                                   fun(x, *args, regularization_strength=0.8, **kw),
                                   rtol=0, atol=1e-13)
        g = rng.normal(size=y.shape)
        want = skrank.vjp(fun, x, *args, regularization_strength=0.8, **kw)[1](g)
        np.testing.assert_allclose(np.asarray(vjp_fn(jnp.asarray(g))[0]), want, rtol=0,
                                   atol=1e-12)
        # Hessian-vector product of a scalar of the output against finite differences
        grad = jax.grad(lambda v: jnp.sum(f(v) ** 2))
        u = jnp.asarray(rng.normal(size=x.shape))
        hvp = jax.jvp(grad, (jnp.asarray(x),), (u,))[1]
        h = 1e-6
        fd = (grad(jnp.asarray(x) + h * u) - grad(jnp.asarray(x) - h * u)) / (2 * h)
        np.testing.assert_allclose(np.asarray(hvp), np.asarray(fd), rtol=0, atol=1e-6)
    finally:
        jax.config.update("jax_enable_x64", x64)


def test_adapters_reject_kl_where_it_is_not_offered():
    torch = pytest.importorskip("torch")
    import skrank.torch as st

    x = torch.tensor([[3.0, 1.0, 2.0]])
    with pytest.raises(ValueError, match="regularization must be one of"):
        st.soft_topk_mask(x, 1, regularization="kl")
    with pytest.raises(ValueError, match="regularization must be one of"):
        st.soft_quantile(x, 0.5, regularization="kl")


# --------------------------------------------------------------------------- a real k
@pytest.mark.parametrize("reg", ["l2", *PNORMS])
def test_real_k_masks(reg):
    rng = np.random.default_rng(7)
    x = rng.normal(size=(3, 8))
    kw = dict(regularization_strength=0.4, regularization=reg)
    # an integer-valued float is the integer's mask; a real k sums to k
    np.testing.assert_array_equal(skrank.soft_topk_mask(x, 3.0, **kw),
                                  skrank.soft_topk_mask(x, 3, **kw))
    k = np.array([0.0, 2.5, 8.0])
    m = skrank.soft_topk_mask(x, k, **kw)
    np.testing.assert_allclose(m.sum(axis=1), k, atol=1e-12)
    np.testing.assert_array_equal(m[0], 0.0)
    np.testing.assert_array_equal(m[2], 1.0)
    # strength 0: the hard mask with the fractional weight on the (k + 1)-th largest
    hard = skrank.soft_topk_mask(x, 2.5, regularization_strength=0.0, regularization=reg)
    order = np.argsort(-x, axis=1)
    np.testing.assert_array_equal(np.take_along_axis(hard, order, axis=1)[:, :4],
                                  np.tile([1.0, 1.0, 0.5, 0.0], (3, 1)))
    # the mask grows with k, entry by entry
    assert np.all(skrank.soft_topk_mask(x, 2.75, **kw)[1] >= m[1] - 1e-12)
    # derivatives in x at a real k, per-row k included
    u, g = rng.normal(size=x.shape), rng.normal(size=x.shape)
    h = 1e-6
    fd = (skrank.soft_topk_mask(x + h * u, k, **kw)
          - skrank.soft_topk_mask(x - h * u, k, **kw)) / (2 * h)
    _, t = skrank.jvp(skrank.soft_topk_mask, x, u, k, **kw)
    np.testing.assert_allclose(t, fd, rtol=1e-6, atol=1e-7)
    v = skrank.vjp(skrank.soft_topk_mask, x, k, **kw)[1](g)
    np.testing.assert_allclose(np.sum(g * t), np.sum(v * u), rtol=1e-12)


@pytest.mark.parametrize("reg", ["l2", *PNORMS])
def test_torch_learns_k(reg):
    torch = pytest.importorskip("torch")
    import skrank.torch as st

    rng = np.random.default_rng(8)
    x = torch.tensor(rng.normal(size=(3, 7)))
    k = torch.tensor([1.5, 3.2, 5.5], dtype=torch.float64, requires_grad=True)
    kw = dict(regularization_strength=0.5, regularization=reg)
    np.testing.assert_allclose(st.soft_topk_mask(x, k, **kw).detach().numpy(),
                               skrank.soft_topk_mask(x.numpy(), k.detach().numpy(), **kw),
                               rtol=0, atol=1e-13)
    assert torch.autograd.gradcheck(lambda kk: st.soft_topk_mask(x, kk, **kw), (k,))
    assert torch.autograd.gradgradcheck(lambda kk: st.soft_topk_mask(x, kk, **kw), (k,))
    # a budget learned by gradient descent: the derivative in k moves it to the target
    budget = torch.tensor(1.2, dtype=torch.float64, requires_grad=True)
    for _ in range(100):
        loss = (st.soft_topk_mask(x[0], budget, **kw).sum() - 4.0) ** 2
        (grad,) = torch.autograd.grad(loss, budget)
        with torch.no_grad():
            budget -= 0.2 * grad
    assert abs(float(budget.detach()) - 4.0) < 1e-6


@pytest.mark.parametrize("reg", ["l2", *PNORMS])
def test_adapters_share_the_derivative_in_k_among_tied_entries(reg):
    # as NumPy does: at an integer k (from above) and at a fractional one
    x = np.array([[3.0, 2.0, 2.0, 1.0], [0.5, 4.0, 0.5, 0.5]])
    kw = dict(regularization_strength=0.1, regularization=reg)
    ks = (np.array([1.0, 1.0]), np.array([1.5, 2.0]), np.array([2.0, 3.5]))
    want = [skrank.jvp(skrank.soft_topk_mask, x, np.ones(2), k, argnums=1, **kw)[1]
            for k in ks]
    np.testing.assert_allclose(want[0], [[0, 0.5, 0.5, 0], [1 / 3, 0, 1 / 3, 1 / 3]],
                               atol=1e-12)
    torch = importlib.util.find_spec("torch")
    if torch is not None:
        import torch
        import skrank.torch as st

        for k, w in zip(ks, want):
            kt = torch.tensor(k, requires_grad=True)
            m = st.soft_topk_mask(torch.tensor(x), kt, **kw)
            (g,) = torch.autograd.grad(m, kt, torch.ones_like(m))
            np.testing.assert_allclose(g.numpy(), w.sum(axis=1), atol=1e-12)
            J = torch.autograd.functional.jacobian(
                lambda kk: st.soft_topk_mask(torch.tensor(x), kk, **kw), kt)
            np.testing.assert_allclose(np.einsum("rnr->rn", J.numpy()), w, atol=1e-12)
    if importlib.util.find_spec("jax") is not None:
        import jax
        import skrank.jax as sj

        x64 = jax.config.jax_enable_x64
        jax.config.update("jax_enable_x64", True)
        try:
            f = jax.jit(lambda kk: sj.soft_topk_mask(x, kk, **kw))
            for k, w in zip(ks, want):
                J = np.asarray(jax.jacfwd(f)(k))
                np.testing.assert_allclose(np.einsum("rnr->rn", J), w, atol=1e-12)
        finally:
            jax.config.update("jax_enable_x64", x64)
    if torch is None and importlib.util.find_spec("jax") is None:
        pytest.skip("neither torch nor jax is installed")


def test_adapters_derivative_in_k_at_its_bounds_at_strength_zero_and_of_magnitudes():
    # as NumPy: k = 0 (a bound: nothing halves it), strength 0 (the hard mask's weights
    # move with k), and |x|'s derivative 0 at x = 0
    x = np.array([2.0, 1.0, 0.0, -1.5])
    cases = [(k, eps) for k in (0.0, 0.5, 1.0) for eps in (0.0, 0.5)]
    want = {c: skrank.jvp(skrank.soft_topk_mask, x, 1.0, c[0], argnums=1,
                          regularization_strength=c[1])[1] for c in cases}
    ran = False
    if importlib.util.find_spec("torch") is not None:
        import torch
        import skrank.torch as st

        ran = True
        for k, eps in cases:
            J = torch.autograd.functional.jacobian(
                lambda kk: st.soft_topk_mask(torch.tensor(x), kk, regularization_strength=eps),
                torch.tensor(k, dtype=torch.float64))
            np.testing.assert_allclose(J.numpy(), want[k, eps], atol=1e-12)
    if importlib.util.find_spec("jax") is not None:
        import jax
        import jax.numpy as jnp
        import skrank.jax as sj

        ran = True
        x64 = jax.config.jax_enable_x64
        jax.config.update("jax_enable_x64", True)
        try:
            for k, eps in cases:
                J = jax.jacfwd(lambda kk: sj.soft_topk_mask(jnp.asarray(x), kk,
                                                            regularization_strength=eps))(k)
                np.testing.assert_allclose(np.asarray(J), want[k, eps], atol=1e-12)
            grad = jax.grad(lambda w: sj.soft_topk(w, 2, by="magnitude").sum())(jnp.asarray(x))
            numpy_grad = skrank.vjp(skrank.soft_topk, x, 2, by="magnitude")[1](np.ones(4))
            np.testing.assert_allclose(np.asarray(grad), numpy_grad, atol=1e-12)
            assert float(grad[2]) == 0.0
        finally:
            jax.config.update("jax_enable_x64", x64)
    if not ran:
        pytest.skip("neither torch nor jax is installed")


@pytest.mark.parametrize("reg", ["l2", *PNORMS])
def test_jax_k_derivative_under_jit(reg):
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    import skrank.jax as sj

    x64 = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        rng = np.random.default_rng(9)
        x = rng.normal(size=(3, 7))
        K = np.array([1.5, 3.2, 5.5])
        kw = dict(regularization_strength=0.5, regularization=reg)
        f = jax.jit(lambda kk: sj.soft_topk_mask(jnp.asarray(x), kk, **kw))
        np.testing.assert_allclose(np.asarray(f(jnp.asarray(K))),
                                   skrank.soft_topk_mask(x, K, **kw), rtol=0, atol=1e-13)
        J = np.asarray(jax.jacfwd(f)(jnp.asarray(K)))
        h = 1e-6
        for i in range(3):
            e = np.zeros(3)
            e[i] = h
            fd = (skrank.soft_topk_mask(x, K + e, **kw)
                  - skrank.soft_topk_mask(x, K - e, **kw)) / (2 * h)
            np.testing.assert_allclose(J[:, :, i], fd, rtol=0, atol=1e-8)
    finally:
        jax.config.update("jax_enable_x64", x64)


@pytest.mark.parametrize("reg", ["l2", *PNORMS])
@pytest.mark.parametrize("fun", [skrank.soft_topk_mask, skrank.soft_topk])
@pytest.mark.parametrize("by", ["value", "magnitude"])
def test_numpy_derivative_in_k(reg, fun, by):
    rng = np.random.default_rng(10)
    x = rng.normal(size=(3, 8))
    x[1, 2] = x[1, 5]  # a tie
    kw = dict(regularization_strength=0.5, regularization=reg, by=by)
    h = 1e-7
    for k in (2.5, np.array([1.5, 3.2, 6.7]), 3, 0, 8):
        k0 = np.asarray(k, dtype=np.float64)
        # from above at an integer k (at k = n: 0, no room above)
        up = np.minimum(k0 + h, 8.0)
        fd = (fun(x, up, **kw) - fun(x, k0, **kw)) / h
        _, t = skrank.jvp(fun, x, np.ones_like(k0), k, argnums=1, **kw)
        np.testing.assert_allclose(t, fd, rtol=0, atol=1e-6)
        g = rng.normal(size=x.shape)
        v = skrank.vjp(fun, x, k, argnums=1, **kw)[1](g)
        assert np.shape(v) == np.shape(k0)
        if k0.ndim:  # one k per row: row r's derivative moves row r only
            np.testing.assert_allclose(v, np.sum(g * t, axis=1), rtol=1e-12, atol=1e-14)
        else:
            np.testing.assert_allclose(v, np.sum(g * t), rtol=1e-12, atol=1e-14)


def test_derivative_in_k_errors():
    x = np.arange(6.0)
    with pytest.raises(ValueError, match="argnums must name"):
        skrank.vjp(skrank.soft_topk_mask, x, 2, argnums=2)
    with pytest.raises(TypeError, match="positionally"):
        skrank.vjp(skrank.soft_topk_mask, x, k=2, argnums=1)
    with pytest.raises(ValueError, match="argnums must name"):
        skrank.vjp(skrank.soft_trimmed_mean, x, 0.1, argnums=1)


def test_derivative_in_k_review_cases():
    # tied entries at the fractional position share dw/dk (from above at an integer k)
    x = np.array([3.0, 2.0, 2.0, 1.0])
    for k in (1, 1.0, 1.5):
        _, t = skrank.jvp(skrank.soft_topk_mask, x, 1.0, k, argnums=1,
                          regularization_strength=0.1)
        np.testing.assert_allclose(t, [0.0, 0.5, 0.5, 0.0], atol=1e-12)
    # a k that broadcasts over the rows: its derivative sums over the broadcast axes
    rng = np.random.default_rng(11)
    X = rng.random((3, 4, 6))
    k = np.array([1.5, 2.5, 3.5, 0.5])
    g = rng.normal(size=X.shape)
    v = skrank.vjp(skrank.soft_topk_mask, X, k, argnums=1)[1](g)
    per_row = skrank.vjp(skrank.soft_topk_mask, X, np.broadcast_to(k, (3, 4)),
                         argnums=1)[1](g)
    np.testing.assert_allclose(v, per_row.sum(axis=0), rtol=1e-12)
    _, t = skrank.jvp(skrank.soft_topk_mask, X, np.ones(4), k, argnums=1)
    assert t.shape == X.shape
    # soft_topk's derivatives keep their own copy of x
    x = np.array([3.0, 1.0, 2.0, 0.5])
    _, vjp_fn = skrank.vjp(skrank.soft_topk, x, 1.5, argnums=1)
    before = vjp_fn(np.ones(4))
    x *= 10
    assert vjp_fn(np.ones(4)) == before
    with pytest.raises(ValueError, match="argnums"):
        skrank.vjp(skrank.soft_topk_mask, x, 1, argnums=1.0)


@pytest.mark.parametrize("pnorm", PNORMS)
def test_p_norm_sort_derivatives_agree_where_outputs_underflow(pnorm):
    x = np.array([1e-200, -1e-200])
    kw = dict(regularization_strength=1e300, regularization=pnorm)
    J = np.stack([skrank.jvp(skrank.soft_sort, x, e, **kw)[1] for e in np.eye(2)], axis=1)
    _, vjp_fn = skrank.vjp(skrank.soft_sort, x, **kw)
    np.testing.assert_allclose(np.stack([vjp_fn(e) for e in np.eye(2)]), J, rtol=1e-12)


# the derivative in the strength (design notes, section 14)
STRENGTH = "regularization_strength"
_LOSSES = (skrank.losses.spearman_loss, skrank.losses.ndcg_loss, skrank.losses.topk_loss)
_IN_STRENGTH = [
    (skrank.soft_rank, (), dict(regularization="l2")),
    (skrank.soft_rank, (), dict(regularization="kl", direction="descending")),
    *[(skrank.soft_rank, (), dict(regularization=p)) for p in PNORMS],
    (skrank.soft_sort, (), dict(regularization="l2")),
    (skrank.soft_sort, (), dict(regularization="kl", direction="descending")),
    *[(skrank.soft_sort, (), dict(regularization=p)) for p in PNORMS],
    *[(skrank.soft_topk_mask, (3.5,), dict(regularization=p)) for p in PNORMS],
    (skrank.soft_topk_mask, (3,), dict(by="magnitude")),
    *[(skrank.soft_topk, (2.5,), dict(regularization=p, by="magnitude")) for p in PNORMS],
    *[(skrank.soft_quantile, ([0.2, 0.5, 0.85],), dict(regularization=p)) for p in PNORMS],
    (skrank.soft_median, (), {}),
    *[(skrank.soft_trimmed_mean, (0.2,), dict(regularization=p)) for p in PNORMS],
    (skrank.losses.spearman_loss, (), dict(regularization="kl")),
    (skrank.losses.ndcg_loss, (), dict(k=3)),
    (skrank.losses.topk_loss, (), dict(k=2)),
]


def _call(fun, x, args, kw, eps):
    """fun at scores x: a loss's first argument is its targets."""
    if fun in _LOSSES:
        first = (np.array([0, 3, 5]) if fun is skrank.losses.topk_loss
                 else np.abs(np.cos(np.arange(x.size))).reshape(x.shape))
        return (first, x, *args), {**kw, STRENGTH: eps}
    return (x, *args), {**kw, STRENGTH: eps}


@pytest.mark.parametrize("fun,args,kw", _IN_STRENGTH,
                         ids=[f"{f.__name__}-{i}" for i, (f, _, _) in enumerate(_IN_STRENGTH)])
def test_numpy_derivative_in_the_strength(fun, args, kw):
    rng = np.random.default_rng(12)
    x = rng.normal(size=(3, 7))
    x[1, 2] = x[1, 5]  # a tie
    h = 1e-6
    for eps in (0.7, np.array([0.3, 1.0, 2.5])):
        e = np.asarray(eps)
        a, k = _call(fun, x, args, kw, eps)
        value, vjp_fn = skrank.vjp(fun, *a, argnums=STRENGTH, **k)
        g = rng.normal(size=np.shape(value))
        v = vjp_fn(g)
        assert np.shape(v) == e.shape and v.dtype == np.float64
        fd = np.zeros(e.shape)
        for i in np.ndindex(e.shape):
            up, down = e.copy(), e.copy()
            up[i] += h
            down[i] -= h
            fd[i] = np.sum(g * (fun(*a, **{**k, STRENGTH: up})
                                - fun(*a, **{**k, STRENGTH: down}))) / (2 * h)
        np.testing.assert_allclose(v, fd, rtol=1e-6, atol=1e-7)
        if fun not in _LOSSES:  # jvp: the transpose
            t = rng.normal(size=e.shape)
            _, jv = skrank.jvp(fun, x, t, *args, argnums=STRENGTH, **k)
            np.testing.assert_allclose(np.sum(g * jv), np.sum(v * t), rtol=1e-10,
                                       atol=1e-12)


def test_derivative_in_the_strength_from_above_at_zero_and_in_float32():
    # (exact in float32 after the offset below)
    x = np.array([[0.25, -1.25, 0.3125, 2.0, 0.25], [1.0, 2.0, 3.0, 4.0, 5.0]])
    for fun, args in ((skrank.soft_rank, ()), (skrank.soft_sort, ()),
                      (skrank.soft_topk_mask, (2.5,)), (skrank.soft_quantile, (0.4,))):
        for reg in ("l2", *PNORMS):
            kw = dict(regularization=reg)
            _, t = skrank.jvp(fun, x, np.array([1.0, 1.0]), *args, argnums=STRENGTH,
                              **kw, regularization_strength=np.array([0.0, 0.5]))
            np.testing.assert_array_equal(np.asarray(t)[..., 0, :] if np.ndim(t) == 2
                                          and fun in (skrank.soft_rank, skrank.soft_sort,
                                                      skrank.soft_topk_mask)
                                          else np.asarray(t)[..., 0], 0.0)
            # the output is constant just above 0 (ties pool into constant blocks)
            fd = (fun(x, *args, **kw, regularization_strength=1e-4)
                  - fun(x, *args, **kw, regularization_strength=0.0))
            np.testing.assert_allclose(np.asarray(fd)[..., 0, :] if np.ndim(fd) == 2
                                       else np.asarray(fd)[..., 0], 0.0, atol=1e-12)
            # float32 in, float32 out; a large common offset keeps its digits
            x32 = (x + 2.0 ** 18).astype(np.float32)
            _, t32 = skrank.jvp(fun, x32, 1.0, *args, argnums=STRENGTH, **kw,
                                regularization_strength=0.5)
            _, t64 = skrank.jvp(fun, x, 1.0, *args, argnums=STRENGTH, **kw,
                                regularization_strength=0.5)
            assert t32.dtype == np.float32
            np.testing.assert_allclose(t32, t64, rtol=1e-3, atol=1e-3)
            _, vjp_fn = skrank.vjp(fun, x32, *args, argnums=STRENGTH, **kw,
                                   regularization_strength=np.float32(0.5))
            assert vjp_fn(np.ones(np.shape(t32), np.float32)).dtype == np.float32


def test_derivative_in_the_strength_shapes_rows_and_errors():
    rng = np.random.default_rng(13)
    X = rng.normal(size=(3, 4, 6))
    eps = np.array([0.5, 1.0, 1.5, 2.0])  # broadcast over the leading axis
    g = rng.normal(size=X.shape)
    v = skrank.vjp(skrank.soft_rank, X, argnums=STRENGTH, regularization_strength=eps)[1](g)
    per_row = skrank.vjp(skrank.soft_rank, X, argnums=STRENGTH,
                         regularization_strength=np.broadcast_to(eps, (3, 4)))[1](g)
    np.testing.assert_allclose(v, per_row.sum(axis=0), rtol=1e-12)
    # axis=0, ragged rows, NaN rows
    _, t = skrank.jvp(skrank.soft_sort, X, 1.0, axis=0, argnums=STRENGTH)
    _, t0 = skrank.jvp(skrank.soft_sort, np.moveaxis(X, 0, -1), 1.0, argnums=STRENGTH)
    np.testing.assert_allclose(t, np.moveaxis(t0, -1, 0), rtol=1e-12)
    flat, lengths = X[0].ravel()[:10], [3, 0, 7]
    for fun, reg in ((skrank.soft_rank, "l2"), (skrank.soft_sort, "kl"),
                     (skrank.soft_sort, "p4/3"), (skrank.soft_sort, "p3/2")):
        _, t = skrank.jvp(fun, flat, np.array([1.0, 2.0, 3.0]), lengths=lengths,
                          argnums=STRENGTH, regularization=reg,
                          regularization_strength=np.array([0.5, 1.0, 2.0]))
        for piece, lo, hi, eps_r, scale in ((t[:3], 0, 3, 0.5, 1.0),
                                            (t[3:], 3, 10, 2.0, 3.0)):
            _, one = skrank.jvp(fun, flat[lo:hi], scale, argnums=STRENGTH,
                                regularization=reg, regularization_strength=eps_r)
            np.testing.assert_allclose(piece, one, rtol=1e-12)
        assert np.abs(t).max() > 0
    # a row of NaN does not move with the strength: a shared one keeps its derivative
    x = np.array([[1.0, np.nan, 2.0], [3.0, 1.0, 2.0]])
    _, t = skrank.jvp(skrank.soft_rank, x, 1.0, argnums=STRENGTH, nan_policy="propagate")
    np.testing.assert_array_equal(t[0], 0.0)
    assert np.abs(t[1]).max() > 0
    one = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    v = skrank.vjp(skrank.soft_rank, x, argnums=STRENGTH, nan_policy="propagate")[1](one)
    assert v == pytest.approx(t[1, 0], rel=1e-12)
    with pytest.raises(ValueError, match="argnums must name"):
        skrank.vjp(skrank.metrics.soft_spearman, x[1], x[1], argnums=STRENGTH)
    with pytest.raises(ValueError, match="strength's shape"):
        skrank.jvp(skrank.soft_rank, X, np.ones(3), argnums=STRENGTH,
                   regularization_strength=eps)
    with pytest.raises(ValueError, match="argnums must name"):
        skrank.vjp(skrank.soft_rank, X, argnums="direction")
    # named like the positional arguments too
    a = skrank.vjp(skrank.soft_topk_mask, X, 2.5, argnums="k")[1](g)
    b = skrank.vjp(skrank.soft_topk_mask, X, 2.5, argnums=1)[1](g)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("reg", ["l2", *PNORMS])
def test_numpy_derivative_of_a_quantile_in_q(reg):
    rng = np.random.default_rng(16)
    x = rng.normal(size=(3, 9))
    x[0, 1] = x[0, 2]  # a tie
    kw = dict(regularization_strength=0.4, regularization=reg)
    h = 1e-7
    # (m - 1) q = 5 at q = 0.625: a knot, where the derivative is the one from above
    for q in (0.3, np.array([0.0, 0.1, 0.5, 0.625, 1.0])):
        q0 = np.asarray(q, dtype=np.float64)
        fd = (skrank.soft_quantile(x, np.minimum(q0 + h, 1.0), **kw)
              - skrank.soft_quantile(x, q0, **kw)) / h
        _, t = skrank.jvp(skrank.soft_quantile, x, np.ones_like(q0), q, argnums="q", **kw)
        np.testing.assert_allclose(t, fd, rtol=1e-6, atol=1e-6)
        g = rng.normal(size=np.shape(t))
        v = skrank.vjp(skrank.soft_quantile, x, q, argnums=1, **kw)[1](g)
        assert np.shape(v) == q0.shape
        np.testing.assert_allclose(v, np.sum(g * t, axis=-1), rtol=1e-12, atol=1e-14)
    # d/dq at q = 1 is 0 (no room above); between knots, (m - 1) times the gap
    _, t = skrank.jvp(skrank.soft_quantile, x, 1.0, 1.0, argnums=1, **kw)
    np.testing.assert_array_equal(t, 0.0)
    # an empty q, as numpy.quantile allows
    empty = np.array([])
    assert skrank.vjp(skrank.soft_quantile, x, empty, argnums="q")[1](
        np.ones((0, 3))).shape == (0,)
    assert skrank.jvp(skrank.soft_quantile, x, empty, empty, argnums="q")[1].shape == (0, 3)
    with pytest.raises(ValueError, match="q's shape"):
        skrank.jvp(skrank.soft_quantile, x, np.ones(3), np.array([0.1, 0.5]), argnums="q")
    with pytest.raises(ValueError, match="got 'proportiontocut'"):
        skrank.vjp(skrank.soft_trimmed_mean, x, 0.2, argnums="proportiontocut")
    with pytest.raises(TypeError, match="positionally"):
        skrank.vjp(skrank.soft_topk_mask, x, k=1, argnums=np.int64(1))


@pytest.mark.parametrize("reg", ["l2", "kl", *PNORMS])
def test_tied_blocks_do_not_move_with_a_small_strength(reg):
    # a block of tied values outputs its mean weight at any strength: J x and the
    # derivative in the strength are exactly 0 there, not rounding of x's weighted
    # mean magnified by 1 / eps^2 (it was inf or NaN at eps = 1e-300)
    rng = np.random.default_rng(3)
    for dtype in (np.float64, np.float32):
        for _ in range(20):
            x = rng.choice(rng.normal(size=3), size=9).astype(dtype)
            for eps in (1e-8, 1e-300):
                kw = dict(regularization_strength=eps, regularization=reg)
                assert not skrank.jvp(skrank.soft_rank, x, x, **kw)[1].any()
                assert not skrank.jvp(skrank.soft_rank, x, 1.0, argnums=STRENGTH,
                                      **kw)[1].any()
                if reg == "kl":
                    continue
                assert not skrank.jvp(skrank.soft_topk_mask, x, 1.0, 2.5,
                                      argnums=STRENGTH, **kw)[1].any()
                _, vjp_fn = skrank.vjp(skrank.soft_quantile, x, 0.3, argnums=STRENGTH,
                                       **kw)
                assert vjp_fn(1.0) == 0.0


def test_p32_sort_root_near_the_middle_at_a_large_strength():
    # a zero-sum block at a large strength: its root is (k - 1) h / 2, within k h of
    # the block's middle and far below the parts' roots; Newton steps alone halve
    # their distance to it and stopped after 100 steps near 1e-31 (outputs 2.5e-62
    # of one sign, and the Jacobian's equal shares)
    x = np.array([1.0, 1.0, 0.0, -1.0, -1.0])
    for eps in (1e10, 1e40, 1e100):
        h = 1.0 / eps
        out = skrank.soft_sort(x, regularization_strength=eps, regularization="p3/2",
                               direction="descending")
        np.testing.assert_allclose(out, [4 * h * h, h * h, 0.0, -h * h, -4 * h * h],
                                   rtol=1e-12, atol=1e-300)
        _, jv = skrank.jvp(skrank.soft_sort, x, np.eye(5)[0], regularization_strength=eps,
                           regularization="p3/2", direction="descending")
        np.testing.assert_allclose(jv, np.array([2, 1, 0, 1, 2]) / 6.0, rtol=1e-12)
