"""Ragged rows (lengths=): the concatenation of rows of different lengths gives exactly
what each row gives alone, values and derivatives, with no padding."""

import numpy as np
import pytest

import skrank

LENGTHS = np.array([5, 0, 1, 300, 2, 17, 3000, 4])  # empty, single and radix-sized rows


def _split(a, lengths):
    return np.split(a, np.cumsum(lengths)[:-1])


def _ragged_data(dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    return np.round(rng.normal(size=LENGTHS.sum()), 2).astype(dtype)  # ties


@pytest.mark.parametrize("op", [skrank.soft_rank, skrank.soft_sort])
@pytest.mark.parametrize("reg", ["l2", "kl"])
@pytest.mark.parametrize("direction", ["ascending", "descending"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ragged_equals_row_by_row(op, reg, direction, dtype):
    x = _ragged_data(dtype)
    eps = np.linspace(0.0, 2.0, len(LENGTHS))  # per-row strengths, 0 included
    kw = dict(regularization=reg, direction=direction)
    got = op(x, regularization_strength=eps, lengths=LENGTHS, **kw)
    assert got.shape == x.shape and got.dtype == dtype
    for part, row, e in zip(_split(got, LENGTHS), _split(x, LENGTHS), eps):
        np.testing.assert_array_equal(part, op(row, regularization_strength=e, **kw))


@pytest.mark.parametrize("op", [skrank.soft_rank, skrank.soft_sort])
def test_ragged_derivatives_equal_row_by_row(op):
    x = _ragged_data(seed=1)
    rng = np.random.default_rng(2)
    u, g = rng.normal(size=x.size), rng.normal(size=x.size)
    kw = dict(regularization_strength=0.3, regularization="kl")
    _, t = skrank.jvp(op, x, u, lengths=LENGTHS, **kw)
    _, vjp_fn = skrank.vjp(op, x, lengths=LENGTHS, **kw)
    v = vjp_fn(g)
    for row, ur, gr, tr, vr in zip(*(_split(a, LENGTHS) for a in (x, u, g, t, v))):
        np.testing.assert_allclose(tr, skrank.jvp(op, row, ur, **kw)[1], rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(vr, skrank.vjp(op, row, **kw)[1](gr), rtol=1e-13, atol=1e-13)


def test_ragged_topk_mask():
    lengths = np.array([3, 6, 2, 400])
    x = np.random.default_rng(3).normal(size=lengths.sum())
    got = skrank.soft_topk_mask(x, 2, regularization_strength=0.5, lengths=lengths)
    for part, row in zip(_split(got, lengths), _split(x, lengths)):
        np.testing.assert_array_equal(part, skrank.soft_topk_mask(row, 2,
                                                                  regularization_strength=0.5))
    _, vjp_fn = skrank.vjp(skrank.soft_topk_mask, x, 2, regularization_strength=0.5,
                           lengths=lengths)
    g = np.arange(x.size, dtype=float)
    for part, row, gr in zip(_split(vjp_fn(g), lengths), _split(x, lengths),
                             _split(g, lengths)):
        _, f = skrank.vjp(skrank.soft_topk_mask, row, 2, regularization_strength=0.5)
        np.testing.assert_allclose(part, f(gr), rtol=1e-14, atol=1e-14)
    with pytest.raises(ValueError, match="shortest row"):
        skrank.soft_topk_mask(x, 3, lengths=lengths)


def test_ragged_nan_policy_propagate_stays_in_its_row():
    x = _ragged_data(seed=4)
    x[3] = np.nan  # in the first row
    got = skrank.soft_rank(x, nan_policy="propagate", lengths=LENGTHS)
    parts = _split(got, LENGTHS)
    assert np.isnan(parts[0]).all()
    for part, row in zip(parts[1:], _split(x, LENGTHS)[1:]):
        np.testing.assert_array_equal(part, skrank.soft_rank(row))
    with pytest.raises(ValueError, match="NaN"):
        skrank.soft_rank(x, lengths=LENGTHS)


def test_bad_lengths():
    x = np.arange(6.0)
    for lengths, err in (([2, 3], ValueError), ([7, -1], ValueError), ([[3, 3]], ValueError),
                         ([3.0, 3.0], TypeError)):
        with pytest.raises(err):
            skrank.soft_rank(x, lengths=lengths)
    with pytest.raises(ValueError, match="1-D"):
        skrank.soft_rank(x.reshape(2, 3), lengths=[3, 3])
    with pytest.raises(ValueError, match="axis"):
        skrank.soft_sort(x, lengths=[3, 3], axis=None)
    with pytest.raises(ValueError, match="strength"):
        skrank.soft_rank(x, lengths=[3, 3], regularization_strength=[1.0, 2.0, 3.0])
    assert skrank.soft_rank(np.empty(0), lengths=[]).shape == (0,)
    assert skrank.soft_rank(np.empty(0), lengths=[0, 0]).shape == (0,)


STATS = [
    (skrank.soft_quantile, (0.3,)),
    (skrank.soft_quantile, ([0.0, 0.5, 0.9],)),
    (skrank.soft_median, ()),
    (skrank.soft_trimmed_mean, (0.2,)),
]


@pytest.mark.parametrize("fun, args", STATS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ragged_statistics_give_one_value_per_row(fun, args, dtype):
    lengths = np.array([5, 1, 300, 2, 17, 3000, 4])
    x = np.round(np.random.default_rng(5).normal(size=lengths.sum()), 2).astype(dtype)
    eps = np.linspace(0.0, 1.0, len(lengths))  # strength 0 included: exact there
    got = fun(x, *args, regularization_strength=eps, lengths=lengths)
    want = np.stack([fun(row, *args, regularization_strength=e)
                     for row, e in zip(_split(x, lengths), eps)], axis=-1)
    assert got.shape == want.shape and got.dtype == dtype
    np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == np.float32 else 1e-13)
    # derivatives, row by row
    g = np.ones(got.shape, dtype)
    _, vjp_fn = skrank.vjp(fun, x, *args, regularization_strength=eps, lengths=lengths)
    v = vjp_fn(g)
    for part, row, e in zip(_split(v, lengths), _split(x, lengths), eps):
        _, f = skrank.vjp(fun, row, *args, regularization_strength=e)
        np.testing.assert_allclose(part, f(g[..., 0]),  # this row's cotangent: ones
                                   rtol=1e-4 if dtype == np.float32 else 1e-12, atol=1e-6)


def test_ragged_statistics_reject_empty_rows():
    with pytest.raises(ValueError, match="empty row"):
        skrank.soft_median(np.arange(3.0), lengths=[3, 0])
    with pytest.raises(ValueError, match="empty row"):
        skrank.soft_trimmed_mean(np.arange(3.0), 0.1, lengths=[0, 3])


@pytest.mark.parametrize("loss, kw", [(skrank.losses.spearman_loss, {}),
                                      (skrank.losses.ndcg_loss, dict(k=3)),
                                      (skrank.losses.ndcg_loss, dict(gains="exponential"))])
def test_ragged_losses_equal_the_mean_over_lists(loss, kw):
    lengths = np.array([4, 1, 9, 2, 300])
    rng = np.random.default_rng(6)
    y_true = np.round(rng.uniform(0, 3, size=lengths.sum()))
    y_pred = rng.normal(size=lengths.sum())
    eps = np.linspace(0.1, 1.0, len(lengths))
    got = loss(y_true, y_pred, regularization_strength=eps, lengths=lengths, **kw)
    parts = [loss(t[None], p[None], regularization_strength=e, **kw)
             for t, p, e in zip(_split(y_true, lengths), _split(y_pred, lengths), eps)]
    assert abs(got - np.mean(parts)) < 1e-13
    _, vjp_fn = skrank.vjp(loss, y_true, y_pred, argnums=1, regularization_strength=eps,
                           lengths=lengths, **kw)
    for part, t, p, e in zip(_split(vjp_fn(1.0), lengths), _split(y_true, lengths),
                             _split(y_pred, lengths), eps):
        _, f = skrank.vjp(loss, t[None], p[None], argnums=1, regularization_strength=e, **kw)
        np.testing.assert_allclose(part, f(1.0)[0] / len(lengths), rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match="empty list"):
        loss(np.ones(3), np.ones(3), lengths=[3, 0], **kw)


def test_ragged_topk_loss():
    lengths = np.array([3, 7, 2, 5])
    scores = np.random.default_rng(7).normal(size=lengths.sum())
    labels = np.array([2, 0, 1, 4])
    got = skrank.losses.topk_loss(labels, scores, k=1, regularization_strength=0.3,
                                  lengths=lengths)
    parts = [skrank.losses.topk_loss([y], s[None], k=1, regularization_strength=0.3)
             for y, s in zip(labels, _split(scores, lengths))]
    assert abs(got - np.mean(parts)) < 1e-14
    _, vjp_fn = skrank.vjp(skrank.losses.topk_loss, labels, scores, argnums=1, k=1,
                           regularization_strength=0.3, lengths=lengths)
    for part, y, s in zip(_split(vjp_fn(1.0), lengths), labels, _split(scores, lengths)):
        _, f = skrank.vjp(skrank.losses.topk_loss, [y], s[None], argnums=1, k=1,
                          regularization_strength=0.3)
        np.testing.assert_allclose(part, f(1.0)[0] / len(lengths), rtol=1e-13, atol=1e-15)
    with pytest.raises(ValueError, match="class indices"):
        skrank.losses.topk_loss([2, 0, 2, 4], scores, lengths=lengths)
