"""Dask: every dispatched function on dask arrays (lazy, equal to NumPy, dtypes kept,
option errors at call time), the derivatives, the estimators through dask-ml's
ParallelPostFit, and GridSearchCV with the soft Spearman scorer on a LocalCluster
through joblib's dask backend. Skipped without dask (``pip install -e ".[dask]"``)."""

import importlib.util
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import skrank
from skrank import losses, metrics

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")

ROOT = Path(__file__).resolve().parent.parent
requires_distributed = pytest.mark.skipif(
    importlib.util.find_spec("distributed") is None
    or importlib.util.find_spec("dask_ml") is None,
    reason="needs dask.distributed and dask-ml (the [dask] extra)")

OPS = {
    "soft_rank": (skrank.soft_rank, (), dict(regularization_strength=0.7)),
    "soft_rank_kl": (skrank.soft_rank, (), dict(regularization_strength=0.7,
                                                regularization="kl",
                                                direction="descending")),
    "soft_sort": (skrank.soft_sort, (), dict(regularization_strength=0.7)),
    "soft_sort_kl": (skrank.soft_sort, (), dict(regularization_strength=0.7,
                                                regularization="kl")),
    "isotonic_regression": (skrank.isotonic_regression, (), dict(increasing=False)),
    "soft_topk_mask": (skrank.soft_topk_mask, (3,), dict(regularization_strength=0.5)),
    "soft_quantile": (skrank.soft_quantile, ([0.1, 0.5, 0.9],),
                      dict(regularization_strength=0.5)),
    "soft_quantile_scalar": (skrank.soft_quantile, (0.3,),
                             dict(regularization_strength=0.5)),
    "soft_median": (skrank.soft_median, (), dict(regularization_strength=0.5)),
    "soft_trimmed_mean": (skrank.soft_trimmed_mean, (0.2,),
                          dict(regularization_strength=0.5)),
}
DIFFERENTIABLE = [name for name in OPS if name != "isotonic_regression"]
# shapes, and chunks that split every axis (the operated one included)
SHAPES = {"2d": ((9, 8), (4, 3)), "3d": ((5, 6, 7), (2, 4, 3))}


def _forbid(*args, **kwargs):
    raise AssertionError("a dask graph was computed at call time")


def lazily():
    """A context in which computing a dask graph fails."""
    return dask.config.set(scheduler=_forbid)


def assert_same(got, want):
    """got: a dask array whose result equals the NumPy result want (dtype included)."""
    assert isinstance(got, da.Array), type(got)
    want = np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype
    value = np.asarray(got.compute())
    assert value.shape == want.shape and value.dtype == want.dtype
    tol = 1e-6 if want.dtype == np.float32 else 1e-12
    np.testing.assert_allclose(value, want, rtol=tol, atol=tol)


def _data(shape, dtype=np.float64, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(dtype)


# -- the array functions ---------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("axis", [0, 1, -1, None])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", OPS)
def test_functions_equal_numpy(name, shape, axis, dtype):
    fun, args, kw = OPS[name]
    shape, chunks = SHAPES[shape]
    x = _data(shape, dtype)
    with lazily():
        got = fun(da.from_array(x, chunks=chunks), *args, axis=axis, **kw)
    assert_same(got, fun(x, *args, axis=axis, **kw))


@pytest.mark.parametrize("axis", [0, None])
@pytest.mark.parametrize("name", OPS)
def test_one_dimensional(name, axis):
    fun, args, kw = OPS[name]
    x = _data(11)
    with lazily():
        got = fun(da.from_array(x, chunks=4), *args, axis=axis, **kw)
    assert_same(got, fun(x, *args, axis=axis, **kw))
    if fun in (skrank.soft_median, skrank.soft_trimmed_mean):
        assert got.shape == ()  # NumPy's scalar: a 0-d dask array


@pytest.mark.parametrize("name", ["soft_rank", "soft_topk_mask", "soft_quantile",
                                  "soft_trimmed_mean"])
def test_operated_axis_in_one_chunk_other_chunks_kept(name):
    fun, args, kw = OPS[name]
    d = da.from_array(_data((9, 8)), chunks=(4, 3))
    out = fun(d, *args, axis=0, **kw)
    batch = ((3, 3, 2),)
    if fun is skrank.soft_quantile:
        assert out.chunks == ((3,),) + batch
    elif out.ndim == 1:
        assert out.chunks == batch
    else:
        assert out.chunks == ((9,),) + batch


def test_integers_give_float64():
    x = np.arange(24).reshape(4, 6) % 5
    assert_same(skrank.soft_rank(da.from_array(x, chunks=(2, 4))), skrank.soft_rank(x))
    assert_same(skrank.soft_median(da.from_array(x, chunks=2), axis=0),
                skrank.soft_median(x, axis=0))


@pytest.mark.parametrize("name", [n for n in DIFFERENTIABLE if "kl" not in n])
@pytest.mark.parametrize("as_dask", [True, False])
def test_per_row_strengths(name, as_dask):
    fun, args, kw = OPS[name]
    x = _data((5, 6, 7))
    d = da.from_array(x, chunks=(2, 4, 3))
    rng = np.random.default_rng(1)
    for eps in (rng.uniform(0.1, 2.0, size=(5, 7)),  # one per row (axis 1 removed)
                rng.uniform(0.1, 2.0, size=7)):  # broadcast over the rows
        dask_eps = da.from_array(eps, chunks=3) if as_dask else eps  # not x's chunks
        kw = dict(kw, regularization_strength=dask_eps)
        with lazily():
            got = fun(d, *args, axis=1, **kw)
        assert_same(got, fun(x, *args, axis=1, **dict(kw, regularization_strength=eps)))


@pytest.mark.parametrize("name", [n for n in OPS if n != "isotonic_regression"])
def test_ragged_rows(name):
    fun, args, kw = OPS[name]
    stat = fun not in (skrank.soft_rank, skrank.soft_sort)  # others need non-empty rows
    lengths = np.array([3, 5, 4, 6]) if stat else np.array([3, 0, 5, 4, 6])
    x = _data(18, np.float32)
    eps = np.random.default_rng(1).uniform(0.1, 2.0, size=len(lengths))
    d = da.from_array(x, chunks=4)  # rows split across chunks: one chunk then
    with lazily():
        got = fun(d, *args, lengths=lengths, **kw)
        got_eps = fun(d, *args, lengths=lengths,
                      **dict(kw, regularization_strength=da.from_array(eps, chunks=2)))
    assert_same(got, fun(x, *args, lengths=lengths, **kw))
    assert_same(got_eps, fun(x, *args, lengths=lengths,
                             **dict(kw, regularization_strength=eps)))


def test_isotonic_weights():
    y, w = _data((6, 9)), np.random.default_rng(1).uniform(0.5, 2.0, size=(6, 9))
    d = da.from_array(y, chunks=(4, 4))
    for weights in (w, da.from_array(w, chunks=(3, 5)), w[0], da.from_array(w[0], 4)):
        with lazily():
            got = skrank.isotonic_regression(d, weights=weights)
        assert_same(got, skrank.isotonic_regression(y, weights=np.asarray(weights)))
    with lazily():
        got = skrank.isotonic_regression(d, weights=w, axis=None)
    assert_same(got, skrank.isotonic_regression(y, weights=w, axis=None))


def test_nan_raises_at_compute_or_propagates():
    x = _data((6, 5))
    x[2, 3] = np.nan
    d = da.from_array(x, chunks=(2, 2))
    with lazily():
        ranks = skrank.soft_rank(d)
        propagated = skrank.soft_rank(d, nan_policy="propagate")
    with pytest.raises(ValueError, match="NaN"):
        ranks.compute()
    assert_same(propagated, skrank.soft_rank(x, nan_policy="propagate"))


# -- losses and the metric ---------------------------------------------------------------

LOSSES = {
    "spearman": (losses.spearman_loss, dict(regularization_strength=0.3)),
    "spearman_kl": (losses.spearman_loss, dict(regularization_strength=0.3,
                                               regularization="kl")),
    "ndcg": (losses.ndcg_loss, dict(regularization_strength=0.3)),
    "ndcg_k": (losses.ndcg_loss, dict(regularization_strength=0.3, k=3,
                                      gains="exponential")),
}


def _relevance(shape, seed=2):
    return np.random.default_rng(seed).integers(0, 4, size=shape).astype(np.float64)


@pytest.mark.parametrize("which", ["both", "y_pred", "y_true"])
@pytest.mark.parametrize("axis", [0, 1, -1, None])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", LOSSES)
def test_losses_equal_numpy(name, shape, axis, which):
    fun, kw = LOSSES[name]
    shape, chunks = SHAPES[shape]
    y_true, y_pred = _relevance(shape), _data(shape, np.float32)
    args = [y_true, y_pred]
    for i, arg in enumerate(["y_true", "y_pred"]):
        if which in ("both", arg):
            args[i] = da.from_array(args[i], chunks=chunks)
    with lazily():
        got = fun(*args, axis=axis, **kw)
    # the mean over rows, from each block's share: equal up to rounding
    assert_same(got, fun(y_true, y_pred, axis=axis, **kw))
    if axis == -1 and which == "both":  # and one list
        with lazily():
            got = fun(y_true.ravel(), da.from_array(y_pred.ravel(), chunks=7), **kw)
        assert_same(got, fun(y_true.ravel(), y_pred.ravel(), **kw))


@pytest.mark.parametrize("name", LOSSES)
def test_losses_per_row_strengths_and_ragged(name):
    fun, kw = LOSSES[name]
    y_true, y_pred = _relevance((5, 6, 7)), _data((5, 6, 7))
    eps = np.random.default_rng(1).uniform(0.1, 2.0, size=(5, 6))
    with lazily():
        got = fun(y_true, da.from_array(y_pred, chunks=(2, 4, 3)),
                  **dict(kw, regularization_strength=da.from_array(eps, chunks=(3, 2))))
    assert_same(got, fun(y_true, y_pred, **dict(kw, regularization_strength=eps)))
    lengths = np.array([3, 5, 4, 6])
    with lazily():
        got = fun(da.from_array(y_true.ravel()[:18], chunks=5),
                  da.from_array(y_pred.ravel()[:18], chunks=4), lengths=lengths, **kw)
    assert_same(got, fun(y_true.ravel()[:18], y_pred.ravel()[:18], lengths=lengths, **kw))


@pytest.mark.parametrize("axis", [0, -1, None])
def test_topk_loss(axis):
    scores = _data((4, 5, 6))
    shape = scores.shape if axis is None else np.delete(scores.shape, axis)
    n = scores.size if axis is None else scores.shape[axis]
    labels = np.random.default_rng(1).integers(0, n, size=shape)
    eps = 0.5 if axis is None else np.random.default_rng(2).uniform(0.1, 2.0, size=shape)
    if axis is None:
        labels = np.asarray(labels.ravel()[0])  # a single list
    d = da.from_array(scores, chunks=(3, 2, 4))
    dl = da.from_array(labels, chunks=3) if labels.ndim else labels
    with lazily():
        got = losses.topk_loss(dl, d, k=2, regularization_strength=eps, axis=axis)
    assert_same(got, losses.topk_loss(labels, scores, k=2, regularization_strength=eps,
                                      axis=axis))
    lengths = np.array([3, 5, 4, 6])
    labels = np.array([0, 4, 1, 5])
    x = scores.ravel()[:18]
    with lazily():
        got = losses.topk_loss(labels, da.from_array(x, chunks=5), k=3, lengths=lengths)
    assert_same(got, losses.topk_loss(labels, x, k=3, lengths=lengths))


@pytest.mark.parametrize("multioutput", ["raw_values", "uniform_average",
                                         [1.0, 2.0, 0.0, 3.0, 1.0]])
@pytest.mark.parametrize("kw", [dict(regularization_strength=0.0),
                                dict(regularization_strength=0.01),
                                dict(regularization_strength=0.3, regularization="kl")],
                         ids=["hard", "l2", "kl"])
def test_soft_spearman(kw, multioutput):
    rng = np.random.default_rng(3)
    y_true = rng.normal(size=(40, 5))
    y_pred = (y_true + rng.normal(size=(40, 5))).astype(np.float32)
    with lazily():  # samples split: rechunked (a column needs all its samples)
        got = metrics.soft_spearman(da.from_array(y_true, chunks=(9, 2)),
                                    da.from_array(y_pred, chunks=(15, 3)),
                                    multioutput=multioutput, **kw)
    assert_same(got, metrics.soft_spearman(y_true, y_pred, multioutput=multioutput, **kw))


@pytest.mark.parametrize("multioutput", ["raw_values", "uniform_average"])
def test_soft_spearman_one_output(multioutput):
    rng = np.random.default_rng(3)
    y_true, y_pred = rng.normal(size=30), rng.normal(size=30)
    with lazily():
        got = metrics.soft_spearman(y_true, da.from_array(y_pred, chunks=7),
                                    multioutput=multioutput)
    assert_same(got, metrics.soft_spearman(y_true, y_pred, multioutput=multioutput))


# -- errors at call time ------------------------------------------------------------------

def _x(x):
    return (x,)


def _pair(x):
    return (np.abs(x), x)


# (function, its positional arguments from x, keywords): NumPy raises the same
ERRORS = [
    (skrank.soft_rank, _x, dict(regularization="l3")),
    (skrank.soft_rank, _x, dict(direction="up")),
    (skrank.soft_rank, _x, dict(nan_policy="omit")),
    (skrank.soft_rank, _x, dict(regularization_strength=-1.0)),
    (skrank.soft_rank, _x, dict(regularization_strength="0.5")),
    (skrank.soft_rank, _x, dict(axis=2)),
    (skrank.soft_rank, _x, dict(axis=1.0)),
    (skrank.soft_rank, lambda x: (x.astype(complex),), {}),
    (skrank.soft_sort, _x, dict(regularization="entropy")),
    (skrank.isotonic_regression, _x, dict(increasing=1)),
    (skrank.soft_topk_mask, lambda x: (x, 41), {}),
    (skrank.soft_topk_mask, lambda x: (x, -1), {}),
    (skrank.soft_topk_mask, lambda x: (x, "two"), {}),
    (skrank.soft_topk_mask, lambda x: (x, 40.5), {}),
    (skrank.soft_quantile, lambda x: (x, 1.5), {}),
    (skrank.soft_quantile, lambda x: (x, [[0.5]]), {}),
    (skrank.soft_trimmed_mean, lambda x: (x, 0.5), {}),
    (skrank.soft_median, _x, dict(regularization_strength=-0.1)),
    (losses.spearman_loss, _pair, dict(regularization="l1")),
    (losses.ndcg_loss, _pair, dict(gains="log")),
    (losses.ndcg_loss, _pair, dict(k=-1)),
    (losses.topk_loss, lambda x: (np.zeros(6, int), x), dict(k=41)),
    (losses.topk_loss, lambda x: (np.zeros(6), x), {}),
    (metrics.soft_spearman, _pair, dict(multioutput="mean")),
    (metrics.soft_spearman, _pair, dict(multioutput=[1.0, 2.0])),
    (metrics.soft_spearman, _pair, dict(regularization_strength=[0.1])),
    (metrics.soft_spearman, _pair, dict(regularization="l1")),
]


@pytest.mark.parametrize("fun, make_args, kw", ERRORS)
def test_option_errors_at_call_time(fun, make_args, kw):
    x = _data((6, 40))
    with pytest.raises((ValueError, TypeError)) as numpy_error:
        fun(*make_args(x), **kw)
    d = da.from_array(x, chunks=(4, 16))
    with lazily(), pytest.raises(type(numpy_error.value)) as dask_error:
        fun(*make_args(d), **kw)
    assert str(dask_error.value) == str(numpy_error.value)


@pytest.mark.parametrize("call", [
    lambda d: skrank.soft_rank(d, regularization_strength=np.ones(5)),
    lambda d: skrank.isotonic_regression(d, weights=np.ones(3)),
    lambda d: losses.spearman_loss(np.ones((6, 3)), d),
    lambda d: losses.topk_loss(np.zeros(5, int), d),
    lambda d: skrank.soft_rank(d.ravel(), lengths=[3, 3]),
    lambda d: skrank.soft_rank(d, lengths=[6, 34]),
    lambda d: skrank.soft_rank(d.ravel(), lengths=[0.5]),
    lambda d: skrank.soft_topk_mask(d.ravel(), 4, lengths=[3, 237]),
    lambda d: skrank.soft_median(d.ravel(), lengths=[0, 240]),
])
def test_shape_errors_at_call_time(call):
    with lazily(), pytest.raises((ValueError, TypeError)):
        call(da.from_array(_data((6, 40)), chunks=(4, 16)))


# -- derivatives --------------------------------------------------------------------------

def _keywords(fun, args):
    """The extra positional argument of a statistic, as jvp's keyword."""
    names = {skrank.soft_topk_mask: "k", skrank.soft_quantile: "q",
             skrank.soft_trimmed_mean: "proportiontocut"}
    return {names[fun]: args[0]} if args else {}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("axis", [0, -1, None])
@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_vjp_and_jvp(name, axis, dtype):
    fun, args, kw = OPS[name]
    x = _data((6, 7), dtype)
    d = da.from_array(x, chunks=(4, 3))
    rng = np.random.default_rng(4)
    value, vjp_fn = skrank.vjp(fun, x, *args, axis=axis, **kw)
    g = rng.normal(size=np.shape(value))
    tangent = rng.normal(size=x.shape)
    with lazily():
        dvalue, dvjp_fn = skrank.vjp(fun, d, *args, axis=axis, **kw)
        dvjp = dvjp_fn(g), dvjp_fn(da.from_array(g, chunks=2) if g.ndim else g)
        jvp = skrank.jvp(fun, d, da.from_array(tangent, chunks=(3, 3)), axis=axis,
                         **_keywords(fun, args), **kw)
    assert_same(dvalue, value)
    for got in dvjp:
        assert_same(got, vjp_fn(g))
    want = skrank.jvp(fun, x, tangent, axis=axis, **_keywords(fun, args), **kw)
    assert_same(jvp[0], want[0])
    assert_same(jvp[1], want[1])


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("axis", [0, -1, None])
def test_vjp_losses(name, axis):
    fun, kw = LOSSES[name]
    y_true, y_pred = _relevance((6, 7)), _data((6, 7))
    with lazily():
        value, vjp_fn = skrank.vjp(fun, y_true, da.from_array(y_pred, chunks=(4, 3)),
                                   argnums=1, axis=axis, **kw)
        grad = vjp_fn(2.0)
    want_value, want_fn = skrank.vjp(fun, y_true, y_pred, argnums=1, axis=axis, **kw)
    assert_same(value, want_value)
    assert_same(grad, want_fn(2.0))


def test_vjp_topk_loss_and_ragged():
    scores, labels = _data((6, 7)), np.arange(6)
    with lazily():
        value, vjp_fn = skrank.vjp(losses.topk_loss, labels,
                                   da.from_array(scores, chunks=(4, 3)), argnums=1, k=2)
        grad = vjp_fn(1.0)
    want_value, want_fn = skrank.vjp(losses.topk_loss, labels, scores, argnums=1, k=2)
    assert_same(value, want_value)
    assert_same(grad, want_fn(1.0))
    lengths, y_true, y_pred = [3, 5, 4, 6], _relevance(18), _data(18)
    with lazily():
        value, vjp_fn = skrank.vjp(losses.spearman_loss, y_true,
                                   da.from_array(y_pred, chunks=5), argnums=1,
                                   lengths=lengths)
        grad = vjp_fn(1.0)
    want_value, want_fn = skrank.vjp(losses.spearman_loss, y_true, y_pred, argnums=1,
                                     lengths=lengths)
    assert_same(value, want_value)
    assert_same(grad, want_fn(1.0))


@pytest.mark.parametrize("multioutput", ["raw_values", "uniform_average",
                                         [1.0, 2.0, 0.0, 3.0, 1.0]])
def test_vjp_soft_spearman(multioutput):
    rng = np.random.default_rng(3)
    y_true = rng.normal(size=(40, 5))
    y_pred = y_true + rng.normal(size=(40, 5))
    kw = dict(regularization_strength=0.05, multioutput=multioutput)
    want_value, want_fn = skrank.vjp(metrics.soft_spearman, y_true, y_pred, argnums=1, **kw)
    g = rng.normal(size=np.shape(want_value))
    with lazily():
        value, vjp_fn = skrank.vjp(metrics.soft_spearman, y_true,
                                   da.from_array(y_pred, chunks=(15, 2)), argnums=1, **kw)
        grad = vjp_fn(g)
    assert_same(value, want_value)
    assert_same(grad, want_fn(g))
    with lazily():  # one output, 1-D
        value, vjp_fn = skrank.vjp(metrics.soft_spearman, y_true[:, 0],
                                   da.from_array(y_pred[:, 0], chunks=15), argnums=1)
        grad = vjp_fn(1.0)
    want_value, want_fn = skrank.vjp(metrics.soft_spearman, y_true[:, 0], y_pred[:, 0],
                                     argnums=1)
    assert_same(grad, want_fn(1.0))


def test_derivative_errors_at_call_time():
    d = da.from_array(_data((6, 7)), chunks=(4, 3))
    with lazily():
        with pytest.raises(ValueError, match="argnums must name"):
            skrank.vjp(skrank.soft_rank, d, argnums=1)
        with pytest.raises(TypeError, match="fun must be a skrank function"):
            skrank.vjp(np.sort, d)
        with pytest.raises(TypeError, match="jvp is for the array operators"):
            skrank.jvp(losses.spearman_loss, d, d)
        with pytest.raises(ValueError, match="regularization must be one of"):
            skrank.vjp(skrank.soft_rank, d, regularization="l3")
        _, vjp_fn = skrank.vjp(skrank.soft_rank, d)
        with pytest.raises(ValueError, match="cotangent"):
            vjp_fn(np.ones((6, 6)))
        with pytest.raises(TypeError, match="cotangent must hold real numbers"):
            vjp_fn(np.full((6, 7), "a"))
        with pytest.raises(ValueError, match="tangent"):
            skrank.jvp(skrank.soft_sort, d, np.ones(7))


# -- the estimators through dask-ml ------------------------------------------------------

def test_parallel_post_fit_soft_rank_transformer():
    wrappers = pytest.importorskip("dask_ml.wrappers")
    from skrank.preprocessing import SoftRankTransformer

    rng = np.random.default_rng(5)
    X_fit, X = rng.normal(size=(300, 4)), rng.normal(size=(1000, 4))
    for kw in (dict(regularization_strength=1.0),
               dict(regularization_strength=0.5, output_distribution="normal")):
        wrapped = wrappers.ParallelPostFit(SoftRankTransformer(n_quantiles=100, **kw))
        wrapped.fit(X_fit)
        got = wrapped.transform(da.from_array(X, chunks=(250, 4)))
        assert got.chunks == ((250,) * 4, (4,))
        want = SoftRankTransformer(n_quantiles=100, **kw).fit(X_fit).transform(X)
        assert_same(got, want)


def test_parallel_post_fit_soft_trimmed_regressor():
    wrappers = pytest.importorskip("dask_ml.wrappers")
    from skrank.linear_model import SoftTrimmedRegressor

    rng = np.random.default_rng(6)
    X_fit = rng.normal(size=(200, 3))
    y_fit = X_fit @ [1.0, -2.0, 0.5] + 0.1 * rng.normal(size=200)
    y_fit[:20] += 30.0
    X = rng.normal(size=(1000, 3))
    wrapped = wrappers.ParallelPostFit(SoftTrimmedRegressor(random_state=0))
    wrapped.fit(X_fit, y_fit)
    got = wrapped.predict(da.from_array(X, chunks=(300, 3)))
    assert got.chunks == ((300, 300, 300, 100),)
    want = SoftTrimmedRegressor(random_state=0).fit(X_fit, y_fit).predict(X)
    assert_same(got, want)


# -- a LocalCluster: GridSearchCV through joblib, and dask arrays on the workers ----------

@requires_distributed
def test_grid_search_on_local_cluster():
    from distributed import Client, LocalCluster, get_task_stream
    from joblib import parallel_config
    from sklearn.base import clone
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import GridSearchCV, KFold
    from sklearn.pipeline import make_pipeline

    from skrank.metrics import soft_spearman_scorer
    from skrank.preprocessing import SoftRankTransformer

    X, y = load_diabetes(return_X_y=True)
    search = GridSearchCV(
        make_pipeline(SoftRankTransformer(n_quantiles=100), Ridge()),
        {"softranktransformer__regularization_strength": [0.0, 1.0, 10.0],
         "ridge__alpha": [0.1, 10.0]},
        scoring=soft_spearman_scorer, cv=KFold(3, shuffle=True, random_state=0),
        n_jobs=-1)
    sequential = clone(search).set_params(n_jobs=None).fit(X, y)
    x = _data((40, 30))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        with get_task_stream() as tasks, parallel_config(backend="dask"):
            search.fit(X, y)
        workers = {task["worker"] for task in tasks.data}  # where the fits ran
        # (asked of the scheduler at this point: scheduler_info() once came back
        # without the workers in CI)
        addresses = set(client.ncores())
        # the blockwise tasks travel to worker processes too
        ranks = skrank.soft_rank(da.from_array(x, chunks=(10, 10)), axis=0).compute()
        value, vjp_fn = skrank.vjp(losses.spearman_loss, np.abs(x),
                                   da.from_array(x, chunks=(10, 30)), argnums=1)
        value, grad = value.compute(), vjp_fn(1.0).compute()
    assert workers and workers <= addresses
    assert search.best_params_ == sequential.best_params_
    for key, scores in sequential.cv_results_.items():
        if "test_score" in key:
            np.testing.assert_array_equal(search.cv_results_[key], scores)
    np.testing.assert_array_equal(ranks, skrank.soft_rank(x, axis=0))
    want_value, want_fn = skrank.vjp(losses.spearman_loss, np.abs(x), x, argnums=1)
    np.testing.assert_allclose(value, want_value, rtol=1e-12)
    np.testing.assert_allclose(grad, want_fn(1.0), rtol=1e-12, atol=1e-15)


@requires_distributed
def test_example_runs(tmp_path):
    """examples/scaling_with_dask.py runs as a script, in its small mode (the gallery
    shows it without running it, and tests/test_examples.py runs plot_*.py only)."""
    env = dict(os.environ, MPLBACKEND="Agg", SKRANK_EXAMPLES_SMALL="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "scaling_with_dask.py")],
                          cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "the same scores as a sequential search" in proc.stdout


@requires_distributed
def test_user_guide_code_runs():
    """The code blocks of doc/user_guide/scaling.rst, in order (they have no ``>>>``:
    tests/test_doc.py would run those without dask). The cluster script's guarded part
    is left out: test_grid_search_on_local_cluster runs the same search."""
    text = (ROOT / "doc" / "user_guide" / "scaling.rst").read_text(encoding="utf-8")
    blocks = re.findall(r"\.\. code-block:: python\n\n((?:    .*\n|\n)+)", text)
    assert len(blocks) == 3
    namespace = {"__name__": "scaling"}
    for block in blocks:
        exec(compile(textwrap.dedent(block), "scaling.rst", "exec"), namespace)
    assert namespace["ranks"].dtype == np.float32


@requires_distributed
def test_benchmark_runs(tmp_path):
    """benchmarks/bench_dask.py runs end to end (tiny sizes: the times mean nothing)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_dask.py"),
                           "--rows", "200", "--n", "20", "--chunk-rows", "50",
                           "--workers", "1", "--repeats", "1"],
                          cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "| soft_quantile(0.9) |" in proc.stdout


def test_review_cases():
    """Small dask arguments are computed (no recursion), a loss's cotangent share is
    float64, empty inputs give NumPy's result or error at call time, and unknown chunk sizes
    work where they can and say so where they cannot."""
    x = np.random.default_rng(0).normal(size=(4, 5))
    dx = da.from_array(x, chunks=(1, 5))
    np.testing.assert_allclose(skrank.soft_trimmed_mean(dx, da.asarray(0.2)).compute(),
                               skrank.soft_trimmed_mean(x, 0.2), rtol=1e-12)
    np.testing.assert_allclose(skrank.soft_trimmed_mean(x, da.asarray(0.2)).compute(),
                               skrank.soft_trimmed_mean(x, 0.2), rtol=1e-12)
    y_true = np.arange(20.0).reshape(4, 5)
    got = skrank.vjp(losses.spearman_loss, y_true, dx, argnums=1)[1](np.float32(1))
    want = skrank.vjp(losses.spearman_loss, y_true, x, argnums=1)[1](np.float32(1))
    np.testing.assert_allclose(got.compute(), want, rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match="at least one list"):
        losses.spearman_loss(np.ones((0, 5)), da.ones((0, 5)))
    assert skrank.soft_topk_mask(da.ones((0, 5)), 1).compute().shape == (0, 5)  # as NumPy
    with pytest.raises(ValueError, match=r"k must lie in \[0, 5\]"):
        skrank.soft_topk_mask(da.ones((0, 5)), 6)
    unknown = dx[dx[:, 0] > -10]  # all rows, but dask does not know how many
    np.testing.assert_allclose(skrank.soft_rank(unknown).compute(), skrank.soft_rank(x),
                               rtol=1e-12)
    for call in (lambda: losses.spearman_loss(unknown, unknown),
                 lambda: skrank.soft_rank(unknown, axis=0),
                 lambda: skrank.vjp(skrank.soft_rank, unknown)[1](unknown)):
        with pytest.raises(ValueError, match="unknown chunk sizes"):
            call()


def test_real_k_on_dask():
    # a real k above the probe's row length, and a per-row k that broadcasts
    rng = np.random.default_rng(13)
    Y = rng.random((4, 60))
    np.testing.assert_allclose(
        skrank.soft_topk_mask(da.from_array(Y, chunks=(2, 60)), 40.5).compute(),
        skrank.soft_topk_mask(Y, 40.5), rtol=1e-12)
    X = rng.random((3, 4, 6))
    k = np.array([1.5, 2.5, 3.5, 0.5])
    np.testing.assert_allclose(
        skrank.soft_topk_mask(da.from_array(X, chunks=(1, 4, 6)), k).compute(),
        skrank.soft_topk_mask(X, k), rtol=1e-12)


def test_derivatives_in_k_and_the_strength_are_refused_clearly():
    x = da.from_array(np.arange(6.0))
    with pytest.raises(NotImplementedError, match="k is computed .* not for dask"):
        skrank.vjp(skrank.soft_topk_mask, x, 2, argnums=1)
    with pytest.raises(NotImplementedError, match="dask"):
        skrank.jvp(skrank.soft_topk_mask, x, 1.0, 2, argnums="k")
    with pytest.raises(NotImplementedError, match="regularization_strength is computed"):
        skrank.vjp(skrank.soft_rank, x, argnums="regularization_strength")
    with pytest.raises(NotImplementedError, match="dask"):
        skrank.jvp(skrank.soft_median, x, 1.0, argnums="regularization_strength")
    with pytest.raises(NotImplementedError, match="q is computed"):
        skrank.vjp(skrank.soft_quantile, x, 0.5, argnums=1)
