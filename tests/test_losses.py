"""skrank.losses: values against direct implementations, hard limits against SciPy and
scikit-learn, gradients against finite differences."""

import numpy as np
import pytest
from scipy.stats import rankdata, spearmanr
from sklearn.metrics import ndcg_score

import _reference as ref
import skrank
from skrank.losses import ndcg_loss, spearman_loss, topk_loss


# --------------------------------------------------------------------------- references
def ref_spearman_loss(y_true, y_pred, eps, reg="l2"):
    out = []
    for t, p in zip(np.atleast_2d(y_true), np.atleast_2d(y_pred)):
        a = rankdata(t)
        b = ref.soft_rank(p, eps, reg)
        a, b = a - a.mean(), b - b.mean()
        na, nb = np.linalg.norm(a), np.linalg.norm(b)
        out.append(1.0 - (a @ b / (na * nb) if na > 0 and nb > 0 else 0.0))
    return np.mean(out)


def ref_ndcg_loss(y_true, y_pred, eps, k=None, gains="linear", reg="l2"):
    out = []
    for t, p in zip(np.atleast_2d(y_true), np.atleast_2d(y_pred)):
        g = np.exp2(t) - 1 if gains == "exponential" else t
        n = len(p)
        kk = n if k is None else min(k, n)
        r = ref.soft_rank(p, eps, reg, "descending")
        # the soft top-k cutoff: a p-norm with its p-norm ranks, else l2
        cut = ref.topk_mask(p, kk, eps, power={"p4/3": 3, "p3/2": 2}.get(reg, 1))
        dcg = sum(g[i] * cut[i] / np.log2(1 + r[i]) for i in range(n))
        ideal = np.sort(g)[::-1][:kk]
        idcg = sum(ideal[i] / np.log2(i + 2) for i in range(len(ideal)))
        out.append(1.0 - (dcg / idcg if idcg > 0 else 0.0))
    return np.mean(out)


def ref_topk_loss(labels, scores, k, eps, reg="l2"):
    return np.mean([max(0.0, ref.soft_rank(s, eps, reg, "descending")[y] - k)
                    for y, s in zip(labels, scores)])


def _problem(seed, shape=(5, 8)):
    rng = np.random.default_rng(seed)
    y_true = np.round(rng.uniform(0, 3, size=shape))  # graded relevances with ties
    y_pred = rng.normal(size=shape)
    return y_true, y_pred


# --------------------------------------------------------------------------- values
@pytest.mark.parametrize("eps", [0.05, 0.5, 5.0])
@pytest.mark.parametrize("reg", ["l2", "kl", "p4/3", "p3/2"])
def test_values_match_references(eps, reg):
    y_true, y_pred = _problem(1)
    kw = dict(regularization_strength=eps, regularization=reg)
    assert abs(spearman_loss(y_true, y_pred, **kw) - ref_spearman_loss(y_true, y_pred, eps, reg)) < 1e-12
    for k in (None, 1, 3, 8):
        for gains in ("linear", "exponential"):
            got = ndcg_loss(y_true, y_pred, k=k, gains=gains, **kw)
            assert abs(got - ref_ndcg_loss(y_true, y_pred, eps, k, gains, reg)) < 1e-12
    labels = np.array([0, 3, 7, 2, 5])
    for k in (1, 2, 5):
        got = topk_loss(labels, y_pred, k=k, **kw)
        assert abs(got - ref_topk_loss(labels, y_pred, k, eps, reg)) < 1e-12


def test_strength_zero_matches_scipy_and_sklearn():
    y_true, y_pred = _problem(2)
    want = np.mean([1 - spearmanr(t, p).statistic for t, p in zip(y_true, y_pred)])
    assert abs(spearman_loss(y_true, y_pred, regularization_strength=0.0) - want) < 1e-12
    for k in (None, 1, 3, 20):
        want = 1 - ndcg_score(y_true, y_pred, k=k)
        assert abs(ndcg_loss(y_true, y_pred, k=k, regularization_strength=0.0) - want) < 1e-12
        want = 1 - ndcg_score(np.exp2(y_true) - 1, y_pred, k=k)
        got = ndcg_loss(y_true, y_pred, k=k, gains="exponential", regularization_strength=0.0)
        assert abs(got - want) < 1e-12
    labels = np.array([0, 3, 7, 2, 5])
    hard_ranks = np.array([rankdata(-s)[y] for y, s in zip(labels, y_pred)])
    for k in (1, 3):
        want = np.mean(np.maximum(0, hard_ranks - k))
        assert topk_loss(labels, y_pred, k=k, regularization_strength=0.0) == want


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_values_alone_equal_the_values_with_a_gradient(dtype):
    # without a derivative the values come from sums in the kernel and in chunks,
    # without float64 copies of the lists; with one, the same sums serve the gradient
    rng = np.random.default_rng(23)
    y_true = np.round(rng.uniform(0, 3, size=(4, 30))).astype(dtype)
    y_pred = np.round(rng.normal(size=(4, 30)), 1).astype(dtype)
    lengths = np.array([30, 1, 2, 29])
    eps = np.array([0.0, 0.1, 1.0, 20.0])
    for loss, kw in [(spearman_loss, {}), (ndcg_loss, {}), (ndcg_loss, {"k": 3}),
                     (ndcg_loss, {"k": 3, "gains": "exponential"})]:
        for t, p, shape in ((y_true, y_pred, {}),
                            (y_true.ravel()[:62], y_pred.ravel()[:62], {"lengths": lengths})):
            alone = loss(t, p, regularization_strength=eps, **shape, **kw)
            with_grad = skrank.vjp(loss, t, p, argnums=1, regularization_strength=eps,
                                   **shape, **kw)[0]
            assert alone == with_grad


@pytest.mark.parametrize("strength", [1.0, 1e8])
def test_spearman_keeps_its_digits_when_soft_ranks_are_nearly_constant(strength):
    # predictions in tiny units, or a large strength: the soft ranks stay close to their
    # mean (n + 1) / 2, and the correlation is their small deviations' (exact sums of
    # the same float64 soft ranks as the reference)
    from fractions import Fraction

    rng = np.random.default_rng(25)
    t = rng.normal(size=2000)
    p = (t + 2 * rng.normal(size=t.size)) * (1e-8 if strength == 1.0 else 1.0)
    b = [Fraction(float(v)) for v in skrank.soft_rank(p, regularization_strength=strength)]
    a = [Fraction(int(v), 2) for v in rankdata(t) * 2 - (t.size + 1)]
    mean = sum(b) / len(b)
    b = [v - mean for v in b]
    corr = float(sum(x * y for x, y in zip(a, b))) / np.sqrt(
        float(sum(x * x for x in a)) * float(sum(y * y for y in b)))
    got = 1.0 - spearman_loss(t, p, regularization_strength=strength)
    assert got == pytest.approx(corr, rel=1e-12)
    assert skrank.vjp(spearman_loss, t, p, argnums=1, regularization_strength=strength)[0] \
        == spearman_loss(t, p, regularization_strength=strength)


@pytest.mark.parametrize("n", [3, 40])
def test_sums_in_chunks_do_not_depend_on_the_chunk(monkeypatch, n):
    # the losses' sums go over chunks of whole rows (short rows) or pieces of a row
    # (long ones): a tiny chunk, which cuts rows and lists at every place, gives the
    # same values up to rounding
    from skrank import _rows

    rng = np.random.default_rng(24)
    y_true = np.round(rng.uniform(0, 3, size=(7, n)))
    y_pred = rng.normal(size=(7, n))
    lengths = np.r_[n, 1, 2, np.full(4, n)][:7]
    lengths[-1] = 7 * n - lengths[:-1].sum()
    cases = [(spearman_loss, {}), (ndcg_loss, {}), (ndcg_loss, {"k": 2}),
             (ndcg_loss, {"k": 2, "gains": "exponential"})]

    def values():
        return [loss(t, p, regularization_strength=0.3, **shape, **kw) for loss, kw in cases
                for t, p, shape in ((y_true, y_pred, {}),
                                    (y_true.ravel(), y_pred.ravel(), {"lengths": lengths}))]

    whole = values()
    monkeypatch.setattr(_rows, "CHUNK", 5)
    np.testing.assert_allclose(values(), whole, rtol=1e-14)
    assert ref_ndcg_loss(y_true, y_pred, 0.3, 2) == pytest.approx(whole[4], rel=1e-13)


def test_ndcg_never_exceeds_one_with_a_cutoff():
    # ties among relevant items must not beat the perfect order (loss < 0)
    assert ndcg_loss([[1.0, 1.0, 1.0]], [[0.0, 0.0, 0.0]], k=2, regularization_strength=1.0) > 0
    rng = np.random.default_rng(9)
    for _ in range(300):
        n = int(rng.integers(2, 7))
        y_true = rng.integers(0, 3, size=(1, n)).astype(float)
        y_pred = np.round(rng.normal(size=(1, n)), 1)
        for reg in ("l2", "kl", "p4/3", "p3/2"):
            loss = ndcg_loss(y_true, y_pred, k=int(rng.integers(1, n + 1)),
                             regularization_strength=float(rng.uniform(0.01, 5)),
                             regularization=reg)
            assert loss >= -1e-12


def test_axis_and_conventions():
    y_true, y_pred = _problem(3, shape=(4, 6))
    for loss in (spearman_loss, ndcg_loss):
        kw = dict(regularization_strength=0.3)
        assert loss(y_true.T, y_pred.T, axis=0, **kw) == pytest.approx(loss(y_true, y_pred, **kw),
                                                                       abs=1e-14)
        assert isinstance(loss(y_true, y_pred, **kw), float)
    # rows without relevant items score 0 (loss 1), as in scikit-learn
    assert ndcg_loss(np.zeros((2, 4)), y_pred[:2, :4]) == 1.0
    # a perfect order: loss 0 at strength 0
    assert ndcg_loss([[3.0, 2.0, 1.0]], [[9.0, 5.0, 1.0]], regularization_strength=0.0) == 0.0
    assert spearman_loss([1.0, 2.0, 3.0], [1.0, 5.0, 9.0],
                         regularization_strength=0.0) == pytest.approx(0.0, abs=1e-15)


# --------------------------------------------------------------------------- gradients
CASES = [
    (spearman_loss, {}),
    (ndcg_loss, {}),
    (ndcg_loss, dict(k=3, gains="exponential")),
    (topk_loss, dict(k=2)),
]


@pytest.mark.parametrize("loss, kw", CASES)
@pytest.mark.parametrize("reg", ["l2", "kl", "p4/3", "p3/2"])
def test_vjp_matches_finite_differences(loss, kw, reg):
    y_true, y_pred = _problem(4)
    if loss is topk_loss:
        y_true = np.array([0, 3, 7, 2, 5])
    kw = dict(kw, regularization_strength=0.7, regularization=reg)
    value, vjp_fn = skrank.vjp(loss, y_true, y_pred, argnums=1, **kw)
    assert value == loss(y_true, y_pred, **kw)
    grad = vjp_fn(1.0)
    assert grad.shape == y_pred.shape
    rng = np.random.default_rng(5)
    for _ in range(3):
        u = rng.normal(size=y_pred.shape)
        h = 1e-6
        fd = (loss(y_true, y_pred + h * u, **kw) - loss(y_true, y_pred - h * u, **kw)) / (2 * h)
        assert abs(np.sum(grad * u) - fd) < 1e-6 * (1 + abs(fd))
    np.testing.assert_allclose(vjp_fn(2.5), 2.5 * grad, rtol=1e-15)


def test_gradient_is_not_zero_where_hard_losses_are_flat():
    # the point of a soft loss: a useful gradient; at strength 0 it vanishes
    y_true, y_pred = _problem(6)
    _, soft = skrank.vjp(spearman_loss, y_true, y_pred, argnums=1, regularization_strength=1.0)
    _, hard = skrank.vjp(spearman_loss, y_true, y_pred, argnums=1, regularization_strength=0.0)
    assert np.abs(soft(1.0)).max() > 1e-3
    np.testing.assert_array_equal(hard(1.0), 0.0)


def test_float32_gradients_keep_dtype():
    y_true, y_pred = _problem(7)
    _, vjp_fn = skrank.vjp(ndcg_loss, y_true, y_pred.astype(np.float32), argnums=1)
    assert vjp_fn(1.0).dtype == np.float32


# --------------------------------------------------------------------------- errors
def test_bad_arguments():
    y_true, y_pred = _problem(8)
    with pytest.raises(ValueError, match="same shape"):
        spearman_loss(y_true[:, :3], y_pred)
    with pytest.raises(ValueError, match="non-negative"):
        ndcg_loss(-y_true, y_pred)
    with pytest.raises(ValueError, match="gains"):
        ndcg_loss(y_true, y_pred, gains="log")
    with pytest.raises(ValueError, match="k must lie"):
        ndcg_loss(y_true, y_pred, k=-1)
    with pytest.raises(ValueError, match="k must lie"):
        topk_loss(np.zeros(5, int), y_pred, k=9)
    with pytest.raises(ValueError, match="class indices"):
        topk_loss(np.array([0, 1, 2, 3, 8]), y_pred)
    with pytest.raises(TypeError, match="integer"):
        topk_loss(np.zeros(5), y_pred)
    with pytest.raises(ValueError, match="shape"):
        topk_loss(np.zeros(4, int), y_pred)
    with pytest.raises(ValueError, match="NaN"):
        spearman_loss(y_true, np.full(y_pred.shape, np.nan))
    with pytest.raises(ValueError, match="argnums must name"):
        skrank.vjp(spearman_loss, y_true, y_pred)
    with pytest.raises(TypeError, match="vjp"):
        skrank.jvp(spearman_loss, y_pred, y_pred)
