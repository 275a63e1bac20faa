"""Array API inputs (array-api-strict): results come back in the input's namespace and
on its device, equal to the NumPy results."""

import numpy as np
import pytest

import skrank
from skrank.losses import ndcg_loss, spearman_loss, topk_loss

xp = pytest.importorskip("array_api_strict")

DEVICES = [xp.Device("CPU_DEVICE"), xp.Device("device1")]

CASES = [
    (skrank.soft_rank, (), dict(regularization_strength=0.5)),
    (skrank.soft_sort, (), dict(regularization_strength=0.5, regularization="kl")),
    (skrank.isotonic_regression, (), dict(increasing=False)),
    (skrank.soft_topk_mask, (2,), dict(regularization_strength=0.5)),
    (skrank.soft_quantile, (0.3,), dict(regularization_strength=0.5)),
    (skrank.soft_median, (), dict(regularization_strength=0.5)),
    (skrank.soft_trimmed_mean, (0.2,), dict(regularization_strength=0.5)),
]


def _data(dtype=np.float64):
    return np.random.default_rng(0).normal(size=(3, 7)).astype(dtype)


@pytest.mark.parametrize("fun, args, kw", CASES)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_functions_return_the_input_namespace_and_device(fun, args, kw, device, dtype):
    x = _data(dtype)
    a = xp.asarray(x, device=device)
    got = fun(a, *args, **kw)
    assert isinstance(got, type(a)) and got.device == device
    want = fun(x, *args, **kw)
    np.testing.assert_array_equal(np.from_dlpack(got), want)
    assert np.from_dlpack(got).dtype == want.dtype


def test_array_keyword_arguments_convert_too():
    x = _data()
    a = xp.asarray(x)
    eps = xp.asarray([0.0, 0.5, 2.0])
    got = skrank.soft_rank(a, regularization_strength=eps)
    np.testing.assert_array_equal(np.from_dlpack(got),
                                  skrank.soft_rank(x, regularization_strength=[0.0, 0.5, 2.0]))
    q = xp.asarray([0.1, 0.9])
    got = skrank.soft_quantile(a, q, regularization_strength=0.0)
    np.testing.assert_array_equal(np.from_dlpack(got), np.quantile(x, [0.1, 0.9], axis=-1))


@pytest.mark.parametrize("device", DEVICES)
def test_derivatives_in_the_input_namespace(device):
    x = _data()
    a = xp.asarray(x, device=device)
    g = np.random.default_rng(1).normal(size=x.shape)
    value, vjp_fn = skrank.vjp(skrank.soft_sort, a, regularization_strength=0.5)
    v = vjp_fn(xp.asarray(g, device=device))
    assert v.device == device and value.device == device
    _, ref_fn = skrank.vjp(skrank.soft_sort, x, regularization_strength=0.5)
    np.testing.assert_array_equal(np.from_dlpack(v), ref_fn(g))
    value, t = skrank.jvp(skrank.soft_rank, a, xp.asarray(g, device=device),
                          regularization_strength=0.5)
    assert t.device == device
    np.testing.assert_array_equal(
        np.from_dlpack(t), skrank.jvp(skrank.soft_rank, x, g, regularization_strength=0.5)[1])
    # in the strength (one per row), back in the input's namespace
    eps = np.array([0.5, 1.0, 2.0])
    kw = dict(argnums="regularization_strength", regularization_strength=eps)
    v = skrank.vjp(skrank.soft_sort, a, **kw)[1](xp.asarray(g, device=device))
    assert v.device == device
    np.testing.assert_array_equal(np.from_dlpack(v), skrank.vjp(skrank.soft_sort, x, **kw)[1](g))
    _, t = skrank.jvp(skrank.soft_median, a, xp.asarray(eps, device=device), **kw)
    assert t.device == device
    np.testing.assert_array_equal(np.from_dlpack(t),
                                  skrank.jvp(skrank.soft_median, x, eps, **kw)[1])


def test_losses_take_array_api_inputs():
    rng = np.random.default_rng(2)
    y_true = np.round(rng.uniform(0, 3, size=(4, 6)))
    y_pred = rng.normal(size=(4, 6))
    a_true, a_pred = xp.asarray(y_true), xp.asarray(y_pred)
    for loss in (spearman_loss, ndcg_loss):
        assert loss(a_true, a_pred) == loss(y_true, y_pred)
        _, vjp_fn = skrank.vjp(loss, a_true, a_pred, argnums=1)
        grad = vjp_fn(1.0)
        assert isinstance(grad, type(a_pred))
        np.testing.assert_array_equal(np.from_dlpack(grad),
                                      skrank.vjp(loss, y_true, y_pred, argnums=1)[1](1.0))
    labels = xp.asarray(np.array([0, 1, 2, 3]))
    assert topk_loss(labels, a_pred, k=2) == topk_loss(np.array([0, 1, 2, 3]), y_pred, k=2)


def test_inputs_are_not_modified():
    x = _data()
    a = xp.asarray(x)
    skrank.soft_rank(a)
    skrank.soft_quantile(a, 0.5)
    np.testing.assert_array_equal(np.from_dlpack(a), x)
