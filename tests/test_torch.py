"""skrank.torch: values equal the NumPy operators; autograd is exact to second order."""

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import skrank  # noqa: E402
from skrank import torch as st  # noqa: E402
from skrank.losses import spearman_loss as np_spearman_loss  # noqa: E402

REGS = ["l2", "kl"]
LOSS_REGS = REGS + ["p4/3", "p3/2"]  # (the losses offer the p-norms too)
DIRECTIONS = ["ascending", "descending"]


def tied(shape, seed=0):
    """Random values with ties (rounded), float64."""
    return np.round(np.random.default_rng(seed).normal(size=shape), 1)


def distinct(shape, seed=0):
    """Values at least 0.05 apart in each row: away from soft_sort's kinks."""
    rng = np.random.default_rng(seed)
    n = shape[-1]
    base = np.arange(n) * 0.3 + rng.uniform(0, 0.1, size=shape)
    return np.take_along_axis(base, rng.permuted(np.indices(shape)[-1], axis=-1), -1)


# ---------------------------------------------------------------------------- values
@pytest.mark.parametrize("reg", REGS)
@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("dim", [-1, 0, 1])
def test_values_equal_numpy(reg, direction, dim):
    x = tied((5, 7, 6), seed=1)
    eps = 0.4
    kw = dict(regularization_strength=eps, regularization=reg, direction=direction)
    got = st.soft_rank(torch.from_numpy(x), dim=dim, **kw)
    np.testing.assert_allclose(got.numpy(), skrank.soft_rank(x, axis=dim, **kw), atol=1e-12)
    got = st.soft_sort(torch.from_numpy(x), dim=dim, **kw)
    np.testing.assert_allclose(got.numpy(), skrank.soft_sort(x, axis=dim, **kw), atol=1e-12)


def test_per_row_strengths_and_strength_zero_rows():
    x = tied((4, 9), seed=2)
    eps = np.array([0.0, 0.1, 1.0, 0.0])
    for fun, np_fun in ((st.soft_rank, skrank.soft_rank), (st.soft_sort, skrank.soft_sort)):
        for reg in REGS:
            got = fun(torch.from_numpy(x), regularization_strength=eps, regularization=reg)
            want = np_fun(x, regularization_strength=eps, regularization=reg)
            np.testing.assert_allclose(got.numpy(), want, atol=1e-12)
    got = st.soft_rank(torch.from_numpy(x), regularization_strength=torch.tensor(eps))
    np.testing.assert_allclose(got.numpy(), skrank.soft_rank(x, regularization_strength=eps))


@pytest.mark.parametrize("k", [0, 1, 3, 8])
@pytest.mark.parametrize("eps", [0.0, 0.3, 5.0])
def test_topk_mask_equals_numpy(k, eps):
    x = tied((3, 8), seed=3)
    got = st.soft_topk_mask(torch.from_numpy(x), k, regularization_strength=eps)
    want = skrank.soft_topk_mask(x, k, regularization_strength=eps)
    np.testing.assert_allclose(got.numpy(), want, atol=1e-12)
    np.testing.assert_allclose(got.sum(-1).numpy(), k, atol=1e-12)


@pytest.mark.parametrize("reg", LOSS_REGS)
@pytest.mark.parametrize("eps", [0.0, 0.2, 3.0])
def test_spearman_loss_equals_numpy(reg, eps):
    y_true, y_pred = tied((4, 10), seed=4), tied((4, 10), seed=5)
    y_true[0] = 1.0  # a constant row contributes 0
    got = st.spearman_loss(torch.from_numpy(y_true), torch.from_numpy(y_pred),
                           regularization_strength=eps, regularization=reg)
    want = np_spearman_loss(y_true, y_pred, regularization_strength=eps, regularization=reg)
    assert got.item() == pytest.approx(want, abs=1e-12)
    g = torch.from_numpy(y_pred).requires_grad_()
    st.spearman_loss(torch.from_numpy(y_true), g, regularization_strength=eps,
                     regularization=reg).backward()
    _, vjp_fn = skrank.vjp(np_spearman_loss, y_true, y_pred, argnums=1,
                           regularization_strength=eps, regularization=reg)
    np.testing.assert_allclose(g.grad.numpy(), vjp_fn(1.0), atol=1e-12)


# ------------------------------------------------------------------------ derivatives
@pytest.mark.parametrize("reg", REGS)
@pytest.mark.parametrize("direction", DIRECTIONS)
def test_rank_gradcheck_and_gradgradcheck_with_ties(reg, direction):
    x = torch.from_numpy(tied((3, 7), seed=6)).requires_grad_()
    # strengths off the 0.1 grid of the data: no merge sits exactly at its threshold
    eps = np.array([0.37, 1.13, 2.71])

    def f(v):
        return st.soft_rank(v, regularization_strength=eps, regularization=reg,
                            direction=direction)

    assert torch.autograd.gradcheck(f, (x,))
    assert torch.autograd.gradgradcheck(f, (x,))


@pytest.mark.parametrize("reg", REGS)
@pytest.mark.parametrize("direction", DIRECTIONS)
def test_sort_gradcheck_and_gradgradcheck_away_from_ties(reg, direction):
    x = torch.from_numpy(distinct((3, 7), seed=7)).requires_grad_()

    def f(v):
        return st.soft_sort(v, regularization_strength=np.array([0.53, 2.17, 10.3]),
                            regularization=reg, direction=direction)

    assert torch.autograd.gradcheck(f, (x,))
    assert torch.autograd.gradgradcheck(f, (x,))


def test_topk_and_loss_gradgradcheck():
    x = torch.from_numpy(tied((2, 8), seed=8)).requires_grad_()
    y = torch.from_numpy(tied((2, 8), seed=9))
    assert torch.autograd.gradgradcheck(
        lambda v: st.soft_topk_mask(v, 3, regularization_strength=0.73), (x,))
    for reg in REGS:
        assert torch.autograd.gradgradcheck(
            lambda v: st.spearman_loss(y, v, regularization_strength=0.53, regularization=reg),
            (x,))


@pytest.mark.parametrize("reg", REGS)
def test_gradient_equals_skrank_vjp(reg):
    x = tied((4, 9), seed=10)
    g = np.random.default_rng(11).normal(size=x.shape)
    for fun, np_fun, data in ((st.soft_rank, skrank.soft_rank, x),
                              (st.soft_sort, skrank.soft_sort, distinct(x.shape, 12))):
        xt = torch.from_numpy(data).requires_grad_()
        (fun(xt, regularization_strength=0.5, regularization=reg) * torch.from_numpy(g)) \
            .sum().backward()
        _, vjp_fn = skrank.vjp(np_fun, data, regularization_strength=0.5, regularization=reg)
        np.testing.assert_allclose(xt.grad.numpy(), vjp_fn(g), atol=1e-12)


def test_hessian_matches_finite_differences_of_the_gradient():
    # kl ranks are softmaxes, curved within a block: a non-zero Hessian that must match
    # finite differences of the gradient; l2 ranks are affine within a block: zero
    x0 = np.array([0.1, 0.2, 0.25, 0.3, 1.7])
    c = torch.tensor([0.3, -1.2, 0.7, 2.0, -0.4], dtype=torch.float64)

    for reg in REGS:
        def f(v):
            return (c * st.soft_rank(v, regularization_strength=1.1, regularization=reg)).sum()

        def grad(v):
            v = torch.from_numpy(v).requires_grad_()
            (g,) = torch.autograd.grad(f(v), v)
            return g.numpy()

        H = torch.autograd.functional.hessian(f, torch.from_numpy(x0)).numpy()
        h = 1e-6
        H_fd = np.stack([(grad(x0 + h * e) - grad(x0 - h * e)) / (2 * h) for e in np.eye(5)])
        np.testing.assert_allclose(H, H_fd, atol=1e-6)
        assert (np.abs(H).max() > 1e-3) == (reg == "kl")


# -------------------------------------------------------------------- dtypes, devices
def test_dtypes_and_layouts():
    x = torch.from_numpy(tied((3, 6), seed=13))
    want = st.soft_rank(x, regularization_strength=0.5)
    assert st.soft_rank(x.float(), regularization_strength=0.5).dtype == torch.float32
    for dtype in (torch.float16, torch.bfloat16):
        got = st.soft_rank(x.to(dtype), regularization_strength=0.5)
        assert got.dtype == dtype
    ints = st.soft_rank(torch.tensor([3, 1, 2]), regularization_strength=0.0)
    assert ints.dtype == torch.get_default_dtype()
    np.testing.assert_array_equal(ints.numpy(), [3, 1, 2])
    xt = x.t()  # non-contiguous
    np.testing.assert_allclose(st.soft_rank(xt, regularization_strength=0.5, dim=0).numpy(),
                               want.numpy().T, atol=1e-12)
    before = x.clone()
    st.soft_sort(x, regularization_strength=0.5)
    assert torch.equal(x, before)
    assert st.soft_rank(torch.empty(0, 4, dtype=torch.float64)).shape == (0, 4)
    assert st.soft_rank(torch.tensor([2.0])).item() == 1.0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_tensors_stay_on_device():
    x = torch.from_numpy(tied((3, 6), seed=14)).cuda().requires_grad_()
    r = st.soft_rank(x, regularization_strength=0.5)
    assert r.device == x.device
    r.sum().backward()
    assert x.grad.device == x.device


def test_torch_compile_with_graph_break():
    x = torch.from_numpy(tied((4, 8), seed=15)).requires_grad_()

    def loss(v):
        return (st.soft_rank(v, regularization_strength=0.5) ** 2).sum()

    compiled = torch.compile(loss, backend="aot_eager")
    value = compiled(x)
    value.backward()
    grad = x.grad.clone()
    x.grad = None
    loss(x).backward()
    assert value.item() == pytest.approx(loss(x).item())
    torch.testing.assert_close(grad, x.grad)


def test_bad_input():
    x = torch.tensor([1.0, 2.0])
    with pytest.raises(TypeError, match="torch.Tensor"):
        st.soft_rank(np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="regularization"):
        st.soft_rank(x, regularization="l1")
    with pytest.raises(ValueError, match="direction"):
        st.soft_sort(x, direction="up")
    with pytest.raises(ValueError, match="non-negative"):
        st.soft_rank(x, regularization_strength=-1.0)
    with pytest.raises(ValueError, match="NaN"):
        st.soft_rank(torch.tensor([1.0, float("nan")]))
    with pytest.raises(ValueError, match="k must be"):
        st.soft_topk_mask(x, 3)
    with pytest.raises(ValueError, match="same shape"):
        st.spearman_loss(torch.ones(3), torch.ones(2))
    with pytest.raises(TypeError, match="real numbers"):
        st.soft_rank(torch.tensor([True, False]))


def test_nan_policy():
    # NumPy's nan_policy for soft_rank and soft_sort; the others raise
    x = torch.tensor([[0.3, 1.0, 2.0], [float("nan"), 1.0, 0.0], [0.0, float("inf"), 1.0]],
                     dtype=torch.float64, requires_grad=True)
    for op in (st.soft_rank, st.soft_sort):
        with pytest.raises(ValueError, match="nan_policy='propagate'"):
            op(x)
        out = op(x, nan_policy="propagate")
        assert torch.isnan(out[1:]).all()
        want = getattr(skrank, op.__name__)(x.detach().numpy()[:1])
        np.testing.assert_allclose(out[:1].detach().numpy(), want, atol=1e-12)
        out[0].sum().backward()  # the NaN rows take no part in the derivative
        assert torch.isfinite(x.grad).all() and (x.grad[1:] == 0).all()
        x.grad = None
        with pytest.raises(ValueError, match="nan_policy"):
            op(x, nan_policy="omit")
    with pytest.raises(ValueError, match="^x contains NaN or infinity.$"):
        st.soft_median(x)
    with pytest.raises(ValueError, match="y_pred contains NaN"):
        st.spearman_loss(torch.ones(3, 3), x)


def test_import_skrank_does_not_import_torch():
    code = "import sys, skrank; print('torch' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert res.stdout.strip() == "False", res.stderr


# ------------------------------------------------------------ statistics and losses
@pytest.mark.parametrize("eps", [0.0, 0.37, 4.1])
def test_statistics_equal_numpy_and_their_gradients(eps):
    x = tied((2, 3, 9), seed=16)
    cases = [
        (lambda v: st.soft_quantile(v, 0.3, regularization_strength=eps),
         skrank.soft_quantile, (0.3,)),
        (lambda v: st.soft_quantile(v, [0.1, 0.75], regularization_strength=eps),
         skrank.soft_quantile, ([0.1, 0.75],)),
        (lambda v: st.soft_median(v, regularization_strength=eps), skrank.soft_median, ()),
        (lambda v: st.soft_trimmed_mean(v, 0.2, regularization_strength=eps),
         skrank.soft_trimmed_mean, (0.2,)),
    ]
    for fun, np_fun, args in cases:
        xt = torch.from_numpy(x).requires_grad_()
        value = fun(xt)
        want, vjp_fn = skrank.vjp(np_fun, x, *args, regularization_strength=eps)
        np.testing.assert_allclose(value.detach().numpy(), want, atol=1e-12)
        g = np.random.default_rng(17).normal(size=np.shape(want))
        (value * torch.from_numpy(g)).sum().backward()
        np.testing.assert_allclose(xt.grad.numpy(), vjp_fn(g), atol=1e-10)


def test_statistics_per_row_strengths_and_gradgradcheck():
    x = tied((2, 3, 8), seed=18)
    eps = np.array([[0.0, 0.31, 1.7], [0.53, 2.9, 0.11]])
    got = st.soft_median(torch.from_numpy(x), regularization_strength=eps)
    np.testing.assert_allclose(got.numpy(), skrank.soft_median(x, regularization_strength=eps),
                               atol=1e-12)
    # away from ties: entries tied where the weights are flat split under a nudge
    xt = torch.from_numpy(distinct((2, 8), seed=19)).requires_grad_()
    assert torch.autograd.gradgradcheck(
        lambda v: st.soft_quantile(v, 0.4, regularization_strength=0.71), (xt,))
    assert torch.autograd.gradgradcheck(
        lambda v: st.soft_trimmed_mean(v, 0.25, regularization_strength=0.71), (xt,))


@pytest.mark.parametrize("reg", LOSS_REGS)
@pytest.mark.parametrize("k", [None, 3])
@pytest.mark.parametrize("gains", ["linear", "exponential"])
def test_ndcg_loss_equals_numpy(reg, k, gains):
    from skrank.losses import ndcg_loss
    rel = np.abs(tied((4, 8), seed=20)) * 2
    rel[0] = 0.0  # no relevant item: scores 0
    pred = tied((4, 8), seed=21)
    kw = dict(regularization_strength=0.43, regularization=reg, k=k, gains=gains)
    pt = torch.from_numpy(pred).requires_grad_()
    loss = st.ndcg_loss(torch.from_numpy(rel), pt, **kw)
    want, vjp_fn = skrank.vjp(ndcg_loss, rel, pred, argnums=1, **kw)
    assert loss.item() == pytest.approx(want, abs=1e-12)
    loss.backward()
    np.testing.assert_allclose(pt.grad.numpy(), vjp_fn(1.0), atol=1e-12)


@pytest.mark.parametrize("reg", LOSS_REGS)
def test_topk_loss_equals_numpy(reg):
    from skrank.losses import topk_loss
    scores = tied((6, 5), seed=22)
    labels = np.random.default_rng(23).integers(0, 5, size=6)
    st_scores = torch.from_numpy(scores).requires_grad_()
    loss = st.topk_loss(torch.from_numpy(labels), st_scores, k=2,
                        regularization_strength=0.37, regularization=reg)
    want, vjp_fn = skrank.vjp(topk_loss, labels, scores, argnums=1, k=2,
                              regularization_strength=0.37, regularization=reg)
    assert loss.item() == pytest.approx(want, abs=1e-12)
    loss.backward()
    np.testing.assert_allclose(st_scores.grad.numpy(), vjp_fn(1.0), atol=1e-12)


def test_statistics_and_losses_bad_input():
    x = torch.tensor([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="q must"):
        st.soft_quantile(x, 1.5)
    with pytest.raises(ValueError, match="proportiontocut"):
        st.soft_trimmed_mean(x, 0.5)
    with pytest.raises(ValueError, match="non-negative relevances"):
        st.ndcg_loss(-x, x)
    with pytest.raises(ValueError, match="gains"):
        st.ndcg_loss(x, x, gains="log")
    with pytest.raises(ValueError, match="class indices"):
        st.topk_loss(torch.tensor(3), x)
    with pytest.raises(TypeError, match="integer class"):
        st.topk_loss(torch.tensor(1.0), x)
    with pytest.raises(ValueError, match="shape"):
        st.soft_median(torch.ones(2, 3), regularization_strength=np.ones(3))


def test_spearman_loss_under_torch_compile():
    y = torch.from_numpy(tied((3, 8), seed=24))
    x = torch.from_numpy(tied((3, 8), seed=25)).requires_grad_()
    compiled = torch.compile(lambda v: st.spearman_loss(y, v, regularization_strength=0.37),
                             backend="aot_eager")
    value = compiled(x)
    value.backward()
    want = st.spearman_loss(y, x.detach(), regularization_strength=0.37)
    assert value.item() == pytest.approx(want.item(), abs=1e-12)
    assert torch.isfinite(x.grad).all() and x.grad.abs().max() > 0


@pytest.mark.parametrize("fun, args", [(st.soft_median, ()), (st.soft_quantile, ([0.3, 0.5],)),
                                       (st.soft_trimmed_mean, (0.2,))])
def test_statistics_stay_within_each_row(fun, args):
    """Convex combinations of the row, as the NumPy twins: a constant row gives the
    constant exactly, values near the float limits do not overflow, float32 too."""
    for value, dtype in [(2.5, torch.float64), (0.1, torch.float32), (3.4e38, torch.float32),
                         (1.7e308, torch.float64)]:
        x = torch.full((2, 9), value, dtype=dtype)
        for eps in (0.0, 1.0, 1e3):
            got = fun(x, *args, regularization_strength=eps)
            assert got.dtype == dtype
            assert torch.equal(got, torch.full_like(got, value))
    x = torch.tensor([[1.7e308, 1.6e308, 1.5e308, 1.79e308], [-1.79e308, 1e-300, 0.0, 1.79e308]],
                     dtype=torch.float64, requires_grad=True)
    got = fun(x, *args, regularization_strength=1.0)
    assert torch.isfinite(got).all()
    lo, hi = x.detach().amin(-1), x.detach().amax(-1)
    assert ((got >= lo) & (got <= hi)).all()
    # (a sum's error is relative to the row's largest values: the trimmed mean of the
    # second row, 1e-300 / 4, is kept by NumPy's compensated sum, lost here)
    np.testing.assert_allclose(got.detach().numpy(),
                               getattr(skrank, fun.__name__)(x.detach().numpy(), *args),
                               rtol=1e-14, atol=1e-14 * float(x.detach().abs().max()))
    got.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_derivative_in_the_strength():
    # a strength that requires grad: exact derivatives (the structure found with its
    # values does not move with them), to second order; 0 for rows at strength 0
    x = torch.from_numpy(distinct((3, 6), seed=4))
    eps = torch.tensor([0.4, 1.5, 3.0], dtype=torch.float64, requires_grad=True)
    for reg in REGS:
        for fun in (st.soft_rank, st.soft_sort):
            assert torch.autograd.gradcheck(
                lambda e: fun(x, regularization_strength=e, regularization=reg), (eps,))
    assert torch.autograd.gradgradcheck(
        lambda e: st.soft_rank(x, regularization_strength=e), (eps,))
    for fun, args in ((st.soft_topk_mask, (2,)), (st.soft_quantile, ([0.3, 0.5],)),
                      (st.soft_trimmed_mean, (0.2,))):
        assert torch.autograd.gradcheck(
            lambda e: fun(x, *args, regularization_strength=e), (eps,))
    y = torch.from_numpy(tied((3, 6), seed=5))
    scalar = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda e: st.spearman_loss(y, x, regularization_strength=e), (scalar,))
    hard = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64, requires_grad=True)
    r = st.soft_rank(x, regularization_strength=hard)
    (r * torch.arange(6.0, dtype=torch.float64)).sum().backward()
    assert hard.grad[0] == 0 and hard.grad[2] == 0 and hard.grad[1] != 0
