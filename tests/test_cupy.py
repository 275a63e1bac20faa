"""The CuPy path: every operator on CuPy arrays equals the NumPy path.

Each test runs twice: on ``fake`` (tests/_fake_cupy.py: CuPy's interface over host
memory, the CUDA kernels compiled by the C compiler and run one thread at a time;
it runs everywhere) and on ``gpu`` (real CuPy on a GPU; skipped where CuPy or a GPU
is missing). Chunk sizes far below the default make every row a long row, so the
parallel merge over chunk boundaries is exercised on small inputs.
"""

import importlib.util

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import skrank
from skrank import _cupy, _pav, losses, metrics

import _fake_cupy


def _why_no_gpu():
    """None when real CuPy and a GPU are here, else the reason (checked once, at
    collection: without them the gpu variants are not generated, and the one test
    below reports the skip, instead of a skip line per test)."""
    if importlib.util.find_spec("cupy") is None:
        return "CuPy is not installed"
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() < 1:
            return "CuPy sees no GPU"
    except Exception as exc:  # CuPy without a driver or a device
        return f"CuPy has no GPU here: {exc}"
    return None


NO_GPU = _why_no_gpu()


def test_real_cupy_on_a_gpu():
    """The gpu variants of every test below run only where this one does not skip."""
    if NO_GPU:
        pytest.skip(f"{NO_GPU}: the tests run on the CuPy stand-in only")
    import cupy

    assert cupy.cuda.runtime.getDeviceCount() >= 1


@pytest.fixture(params=["fake"] + ([] if NO_GPU else ["gpu"]))
def cp(request, monkeypatch):
    if request.param == "fake":
        _fake_cupy.install(monkeypatch)
        module = _fake_cupy.module
    else:
        import cupy as module
    yield module
    _fake_cupy.uninstall()


@pytest.fixture(params=[None, 1, 3, 8], ids=["chunk=default", "chunk=1", "chunk=3",
                                             "chunk=8"])
def chunk(request, monkeypatch):
    if request.param is not None:
        monkeypatch.setattr(_cupy, "chunk_size", lambda n: request.param)
    return request.param


def host(a):
    return a.get() if _cupy.is_cupy_array(a) else np.asarray(a)


def assert_same(dev, ref, rtol=None):
    assert _cupy.is_cupy_array(dev), type(dev)
    got = host(dev)
    assert got.dtype == np.asarray(ref).dtype
    assert got.shape == np.shape(ref)
    if rtol is None:
        rtol = 2e-5 if got.dtype == np.float32 else 1e-10
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=rtol)


def data(rng, shape, ties=True, dtype=np.float64):
    x = rng.normal(size=shape)
    if ties:
        x = np.round(x * 2) / 2
    return x.astype(dtype)


@pytest.mark.parametrize("op", [skrank.soft_rank, skrank.soft_sort])
@pytest.mark.parametrize("regularization", ["l2", "kl"])
@pytest.mark.parametrize("direction", ["ascending", "descending"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_operators_match_numpy(cp, chunk, op, regularization, direction, dtype):
    rng = np.random.default_rng(0)
    x = data(rng, (5, 40), ties=op is skrank.soft_rank, dtype=dtype)
    for eps in [0.0, 0.01, 0.3, 1.0, 10.0, rng.uniform(0, 3, size=5)]:
        kw = dict(regularization_strength=eps, regularization=regularization,
                  direction=direction)
        assert_same(op(cp.asarray(x), **kw), op(x, **kw))


@pytest.mark.parametrize("op", [skrank.soft_rank, skrank.soft_sort])
def test_shapes_axes_and_edge_cases(cp, chunk, op):
    rng = np.random.default_rng(1)
    x = data(rng, (3, 7, 4))
    for axis in [0, 1, -1, None]:
        assert_same(op(cp.asarray(x), axis=axis), op(x, axis=axis))
    for shape in [(0,), (1,), (4, 1), (2, 0), (1, 1000)]:
        z = data(rng, shape, ties=False)
        assert_same(op(cp.asarray(z), regularization_strength=0.05),
                    op(z, regularization_strength=0.05))
    assert_same(op(cp.asarray(x[:, ::2, 1:])), op(x[:, ::2, 1:]))  # non-contiguous
    assert_same(op(cp.asarray([3, 1, 2])), op([3, 1, 2]))  # integers: float64


def test_ragged_rows_and_nan(cp, chunk):
    rng = np.random.default_rng(2)
    lengths = [5, 0, 1, 30, 12]
    x = data(rng, sum(lengths))
    for op in (skrank.soft_rank, skrank.soft_sort):
        for reg in ("l2", "kl"):
            kw = dict(lengths=lengths, regularization=reg,
                      regularization_strength=rng.uniform(0, 2, size=5))
            assert_same(op(cp.asarray(x), **kw), op(x, **kw))
    y = data(rng, (4, 9))
    y[1, 3] = np.nan
    kw = dict(nan_policy="propagate")
    assert_same(skrank.soft_rank(cp.asarray(y), **kw), skrank.soft_rank(y, **kw))
    with pytest.raises(ValueError, match="NaN"):
        skrank.soft_rank(cp.asarray(y))


@pytest.mark.parametrize("regularization", ["l2", "kl"])
def test_extreme_scales(cp, chunk, regularization):
    x = np.array([3e16, 1e16, 2e16, -1e16, 1.5e300, -1.7e308, 1e-300, 0.0, 1.7e308])
    for op in (skrank.soft_rank, skrank.soft_sort):
        for eps in [1e-300, 1.0, 1e300, 1.7e308]:
            kw = dict(regularization_strength=eps, regularization=regularization)
            assert_same(op(cp.asarray(x), **kw), op(x, **kw))


@pytest.mark.parametrize("op", [skrank.soft_rank, skrank.soft_sort])
@pytest.mark.parametrize("regularization", ["l2", "kl"])
def test_jvp_vjp_match_numpy(cp, chunk, op, regularization):
    rng = np.random.default_rng(3)
    x = data(rng, (4, 30), ties=op is skrank.soft_rank)
    kw = dict(regularization_strength=rng.uniform(0, 1, size=4),
              regularization=regularization, direction="descending")
    u, g = rng.normal(size=x.shape), rng.normal(size=x.shape)
    value, vjp_fn = skrank.vjp(op, cp.asarray(x), **kw)
    ref_value, ref_vjp = skrank.vjp(op, x, **kw)
    assert_same(value, ref_value)
    assert_same(vjp_fn(cp.asarray(g)), ref_vjp(g))
    value, tangent = skrank.jvp(op, cp.asarray(x), cp.asarray(u), **kw)
    assert_same(tangent, skrank.jvp(op, x, u, **kw)[1])
    # a cotangent or tangent on the other side follows x
    assert_same(vjp_fn(g), ref_vjp(g))
    np.testing.assert_allclose(ref_vjp(cp.asarray(g)), ref_vjp(g))
    np.testing.assert_allclose(skrank.jvp(op, x, cp.asarray(u), **kw)[1],
                               skrank.jvp(op, x, u, **kw)[1])


def test_isotonic_regression(cp, chunk):
    rng = np.random.default_rng(4)
    y = data(rng, (6, 50))
    w = rng.uniform(0.1, 3, size=y.shape)
    for increasing in (True, False):
        for weights in (None, w, w[0]):
            kw = dict(increasing=increasing)
            dev_w = None if weights is None else cp.asarray(weights)
            assert_same(skrank.isotonic_regression(cp.asarray(y), weights=dev_w, **kw),
                        skrank.isotonic_regression(y, weights=weights, **kw))
    assert_same(skrank.isotonic_regression(cp.asarray(y.astype(np.float32)), axis=0),
                skrank.isotonic_regression(y.astype(np.float32), axis=0))


def test_extreme_isotonic_statistics_and_empty_batches(cp, chunk):
    """Block means that cannot overflow, statistics within each row's [min, max],
    and no rows at all, as on the host."""
    y = np.array([[1e308, 1.5e308, -1e308, 1.7e308, -1.7e308, 0.0]] * 2)
    w = np.array([1e308, 1.0, 1.7e308, 2.0, 1e-300, 3.0])
    for weights in (None, w):
        got = skrank.isotonic_regression(cp.asarray(y), weights=weights)
        assert np.isfinite(host(got)).all()
        assert_same(got, skrank.isotonic_regression(y, weights=weights))
    x = np.array([[1.7e308, 1.6e308, 1.5e308, 1.79e308], [2.5] * 4])
    for eps in (0.0, 1.0, 1e300):
        assert_same(skrank.soft_median(cp.asarray(x), regularization_strength=eps),
                    skrank.soft_median(x, regularization_strength=eps))
    assert host(skrank.soft_median(cp.asarray(x)))[1] == 2.5
    lengths = [4, 4]
    assert_same(skrank.soft_trimmed_mean(cp.asarray(x.ravel()), 0.25, lengths=lengths),
                skrank.soft_trimmed_mean(x.ravel(), 0.25, lengths=lengths))
    assert_same(skrank.soft_quantile(cp.asarray(np.empty(0)), 0.5, lengths=[]),
                np.empty(0))
    assert_same(skrank.soft_topk_mask(cp.asarray(np.zeros((0, 3))), 1), np.zeros((0, 3)))


def test_statistics(cp, chunk):
    rng = np.random.default_rng(5)
    x = data(rng, (4, 25))
    dx = cp.asarray(x)
    for eps in (0.0, 0.2, 2.0):
        kw = dict(regularization_strength=eps)
        assert_same(skrank.soft_topk_mask(dx, 7, **kw), skrank.soft_topk_mask(x, 7, **kw))
        assert_same(skrank.soft_quantile(dx, [0.1, 0.5, 0.93], **kw),
                    skrank.soft_quantile(x, [0.1, 0.5, 0.93], **kw))
        assert_same(skrank.soft_median(dx, **kw), skrank.soft_median(x, **kw))
        assert_same(skrank.soft_trimmed_mean(dx, 0.2, **kw),
                    skrank.soft_trimmed_mean(x, 0.2, **kw))
    lengths = [10, 3, 12]
    z = data(rng, sum(lengths))
    kw = dict(lengths=lengths, regularization_strength=0.3)
    assert_same(skrank.soft_quantile(cp.asarray(z), 0.3, **kw),
                skrank.soft_quantile(z, 0.3, **kw))
    for fun, args in [(skrank.soft_topk_mask, (5,)), (skrank.soft_quantile, (0.3,)),
                      (skrank.soft_trimmed_mean, (0.1,))]:
        g = rng.normal(size=np.shape(fun(x, *args)))
        value, vjp_fn = skrank.vjp(fun, dx, *args, regularization_strength=0.4)
        ref_value, ref_vjp = skrank.vjp(fun, x, *args, regularization_strength=0.4)
        assert_same(value, ref_value)
        assert_same(vjp_fn(cp.asarray(g)), ref_vjp(g))


def test_losses_and_metric_follow_y_pred(cp, chunk):
    rng = np.random.default_rng(6)
    y_true = rng.integers(0, 4, size=(5, 20)).astype(float)
    y_pred = data(rng, (5, 20))
    d_pred = cp.asarray(y_pred)
    for loss, kw in [(losses.spearman_loss, {}), (losses.ndcg_loss, {"k": 5}),
                     (losses.ndcg_loss, {"regularization": "kl"})]:
        # y_true may stay on the host: it follows y_pred to the device
        value, vjp_fn = skrank.vjp(loss, y_true, d_pred, argnums=1, **kw)
        ref_value, ref_vjp = skrank.vjp(loss, y_true, y_pred, argnums=1, **kw)
        assert value == pytest.approx(ref_value, rel=1e-12)
        assert_same(vjp_fn(1.0), ref_vjp(1.0))
    # and a y_true on the device follows a y_pred on the host
    assert losses.spearman_loss(cp.asarray(y_true), y_pred) == pytest.approx(
        losses.spearman_loss(y_true, y_pred), rel=1e-15)
    labels = rng.integers(0, 20, size=5)
    assert losses.topk_loss(labels, d_pred, k=3) == pytest.approx(
        losses.topk_loss(labels, y_pred, k=3), rel=1e-12)
    col_true, col_pred = y_true.T, y_pred.T  # samples along axis 0
    for strength in (0.0, 0.001, 0.5):
        kw = dict(regularization_strength=strength)
        assert metrics.soft_spearman(cp.asarray(col_true), cp.asarray(col_pred), **kw) == \
            pytest.approx(metrics.soft_spearman(col_true, col_pred, **kw), rel=1e-12)
        assert_same(metrics.soft_spearman(col_true, cp.asarray(col_pred),
                                          multioutput="raw_values", **kw),
                    metrics.soft_spearman(col_true, col_pred, multioutput="raw_values",
                                          **kw))
    value, vjp_fn = skrank.vjp(metrics.soft_spearman, col_true, cp.asarray(col_pred),
                               argnums=1, regularization_strength=0.01)
    ref = skrank.vjp(metrics.soft_spearman, col_true, col_pred, argnums=1,
                     regularization_strength=0.01)[1]
    assert_same(vjp_fn(1.0), ref(1.0))


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.lists(st.integers(-4, 4), min_size=0, max_size=25), min_size=1,
                     max_size=4),
       eps=st.sampled_from([0.0, 0.05, 0.5, 3.0]), kl=st.booleans(),
       sort_form=st.booleans(), chunk=st.integers(1, 9))
def test_kernel_structure_equals_cpu(rows, eps, kl, sort_form, chunk):
    """The GPU kernels find exactly the CPU's blocks (ties included), whatever the
    chunking, on the fake backend."""
    with pytest.MonkeyPatch.context() as mp:
        _fake_cupy.install(mp)
        mp.setattr(_cupy, "chunk_size", lambda n: chunk)
        cp = _fake_cupy.module
        # on a grid of exact binary fractions: sums do not round, so exact ties are
        # decided alike (where rounding decides one, the CPU's order of summation and
        # the chunks' may split a block differently; the values agree to rounding)
        x = np.array([v for r in rows for v in r], dtype=np.float64) * 0.75
        offsets = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
        n_rows, n = len(rows), max(len(r) for r in rows)
        eps_rows = np.full(n_rows, eps)
        w = None if sort_form else np.arange(n, 0, -1, dtype=np.float64)
        results = []
        for mod, xp in ((_pav, np), (_cupy, cp)):
            out = xp.zeros(x.size)
            perm, start = (xp.zeros(x.size, dtype=mod.INDEX_DTYPE) for _ in range(2))
            nblocks = xp.zeros(n_rows, dtype=np.int64)
            if x.size:
                mod.forward(xp.asarray(x), offsets, eps_rows, w, _pav.WEIGHTS_SUFFIX, 1.0,
                            kl, sort_form, out, perm, start, nblocks)
            nb, st_ = host(nblocks), host(start)
            starts = [tuple(st_[offsets[r]:offsets[r] + nb[r]]) for r in range(n_rows)]
            results.append((host(out), starts))
        _fake_cupy.uninstall()
    (out_cpu, blocks_cpu), (out_gpu, blocks_gpu) = results
    if not sort_form:  # tied entries always pool: the partitions are equal
        assert blocks_gpu == blocks_cpu
    np.testing.assert_allclose(out_gpu, out_cpu, rtol=1e-12, atol=1e-12)


def test_dispatch_never_reaches_the_cython_kernels(monkeypatch):
    _fake_cupy.install(monkeypatch)
    cp = _fake_cupy.module

    def refuse(*args, **kwargs):
        raise AssertionError("a Cython kernel was called with device arrays")

    for name in ("forward", "masks_forward", "rank_derivative", "sort_derivative",
                 "isotonic_increasing"):
        monkeypatch.setattr(_pav, name, refuse)
    monkeypatch.setattr(_cupy, "chunk_size", lambda n: 4)
    _fake_cupy._LAUNCHES.clear()
    x = cp.asarray(np.linspace(0, 1, 30).reshape(2, 15))
    out = skrank.soft_rank(x, regularization_strength=0.1)
    assert isinstance(out, cp.ndarray)
    skrank.vjp(skrank.soft_sort, x)[1](x)
    skrank.soft_quantile(x, 0.4)
    skrank.isotonic_regression(x)
    launched = {name for name, _ in _fake_cupy._LAUNCHES}
    assert {"pav_chunks", "merge_rows", "compact", "block_ids", "segment_sums"} <= launched
    _fake_cupy.uninstall()


def test_numpy_inputs_stay_on_the_host(monkeypatch):
    """Without a CuPy array among the inputs, CuPy is never imported."""
    monkeypatch.setattr(_cupy, "_cupy", lambda: pytest.fail("CuPy was imported"))
    skrank.soft_rank(np.ones(3))
    losses.spearman_loss(np.arange(4.0), np.arange(4.0))


def test_chunk_size():
    assert _cupy.chunk_size(1) == _cupy.chunk_size(256) == 256
    assert _cupy.chunk_size(10_000) == 256
    assert _cupy.chunk_size(1_000_000) == 2048
    assert _cupy.chunk_size(10**9) == 8192
    assert "merge_rows" in _cupy.source()
    # the Python layer passes _pav's weight layouts to either backend
    assert (_cupy.WEIGHTS_PREFIX, _cupy.WEIGHTS_SUFFIX, _cupy.WEIGHTS_ALIGNED) == (
        _pav.WEIGHTS_PREFIX, _pav.WEIGHTS_SUFFIX, _pav.WEIGHTS_ALIGNED)


def test_fake_offers_only_what_cupy_has():
    """Every function the stand-in offers (and so skrank may call) exists in CuPy."""
    cupy = pytest.importorskip("cupy")
    missing = [name for name in sorted(_fake_cupy._FUNCTIONS | _fake_cupy._DTYPES)
               if not hasattr(cupy, name)]
    assert not missing


def test_benchmark_runs(monkeypatch, capsys):
    """benchmarks/bench_cupy.py runs end to end (on the stand-in: times mean nothing)."""
    import pathlib
    import runpy

    _fake_cupy.install(monkeypatch)
    bench = pathlib.Path(__file__).parents[1] / "benchmarks"
    monkeypatch.syspath_prepend(str(bench))
    module = runpy.run_path(str(bench / "bench_cupy.py"))
    module["main"](["--shapes", "2x600", "--chunks", "8,64", "--budget", "0"])
    out = capsys.readouterr().out
    assert "| 2x600 | soft_rank |" in out and "C=256" in out and "*" in out
    _fake_cupy.uninstall()


def test_runs_on_the_input_device(monkeypatch):
    """CuPy allocates on the current device: every call, and a vjp function called
    later, makes the input's device current."""
    _fake_cupy.install(monkeypatch)
    cp = _fake_cupy.module
    entered = []
    monkeypatch.setattr(_fake_cupy._Device, "__enter__", lambda self: entered.append(1))
    x = cp.asarray(np.arange(6.0).reshape(2, 3))
    skrank.soft_rank(x)
    assert len(entered) == 1
    value, vjp_fn = skrank.vjp(skrank.soft_rank, x)
    before = len(entered)
    vjp_fn(x)
    assert len(entered) == before + 1
    skrank.jvp(skrank.soft_sort, x, x)
    assert len(entered) == before + 2
    _fake_cupy.uninstall()


def test_ragged_statistics_losses_and_device_metadata(cp, chunk):
    """Ragged rows with one k per row (weights aligned with x), ragged losses, and
    strengths, q and lengths given on the device."""
    rng = np.random.default_rng(7)
    lengths = [6, 13, 4, 9]
    x = data(rng, sum(lengths))
    eps = rng.uniform(0.05, 1.0, size=4)
    kw = dict(lengths=lengths, regularization_strength=eps)
    dkw = dict(lengths=cp.asarray(np.array(lengths)), regularization_strength=cp.asarray(eps))
    dx = cp.asarray(x)
    assert_same(skrank.soft_trimmed_mean(dx, 0.25, **dkw),
                skrank.soft_trimmed_mean(x, 0.25, **kw))
    assert_same(skrank.soft_median(dx, **dkw), skrank.soft_median(x, **kw))
    assert_same(skrank.soft_quantile(dx, cp.asarray([0.2, 0.7]), **dkw),
                skrank.soft_quantile(x, [0.2, 0.7], **kw))
    relevance = rng.integers(0, 3, size=x.size).astype(float)
    for loss, lkw in [(losses.ndcg_loss, {"k": 3}), (losses.spearman_loss, {})]:
        value, vjp_fn = skrank.vjp(loss, relevance, dx, argnums=1, **kw, **lkw)
        ref_value, ref_vjp = skrank.vjp(loss, relevance, x, argnums=1, **kw, **lkw)
        assert value == pytest.approx(ref_value, rel=1e-12)
        assert_same(vjp_fn(1.0), ref_vjp(1.0))
    y = data(rng, (3, 8))
    y[2, 1] = np.inf
    value, vjp_fn = skrank.vjp(skrank.soft_sort, cp.asarray(y), nan_policy="propagate")
    ref_value, ref_vjp = skrank.vjp(skrank.soft_sort, y, nan_policy="propagate")
    assert_same(value, ref_value)
    assert_same(vjp_fn(cp.asarray(np.ones_like(y))), ref_vjp(np.ones_like(y)))


@pytest.mark.parametrize("reg", ["p4/3", "p3/2"])
def test_pnorms_are_refused_with_the_option_named(cp, reg):
    # the CuPy kernels have l2 and kl only: a p-norm gets a clear error, not l2 or kl
    x = cp.asarray(np.array([3.0, 1.0, 2.0, 0.5]))
    for call in (lambda: skrank.soft_rank(x, regularization=reg),
                 lambda: skrank.soft_sort(x, regularization=reg),
                 lambda: skrank.soft_topk_mask(x, 2, regularization=reg),
                 lambda: skrank.soft_topk(x, 2, regularization=reg, by="magnitude")):
        with pytest.raises(ValueError, match=f"regularization='{reg}'"):
            call()


def test_real_k_and_its_derivative(cp):
    # a real k (one per row) and the derivative in k follow the NumPy path
    rng = np.random.default_rng(12)
    x = rng.normal(size=(3, 9))
    k = np.array([1.5, 4.0, 7.25])
    kw = dict(regularization_strength=0.4)
    assert_same(skrank.soft_topk_mask(cp.asarray(x), k, **kw), skrank.soft_topk_mask(x, k, **kw))
    g = rng.normal(size=x.shape)
    want = skrank.vjp(skrank.soft_topk_mask, x, k, argnums=1, **kw)[1](g)
    got = skrank.vjp(skrank.soft_topk_mask, cp.asarray(x), k, argnums=1, **kw)[1](cp.asarray(g))
    # (k lives on the host, as the strengths do: so does its derivative)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_derivative_in_the_strength_follows_numpy(cp, chunk):
    # d / d eps on the device: the rank form's jvp, the sort form's closed form on its
    # blocks (bincounts), the statistics and losses; the result lives on the host
    rng = np.random.default_rng(14)
    x = data(rng, (4, 12), ties=True)
    eps = rng.uniform(0.2, 1.5, size=4)
    g = rng.normal(size=x.shape)
    cases = [(skrank.soft_rank, (), dict(regularization="kl")),
             (skrank.soft_sort, (), dict(regularization="kl", direction="descending")),
             (skrank.soft_sort, (), {}), (skrank.soft_topk_mask, (np.array([1.5, 3, 6, 11]),), {}),
             (skrank.soft_quantile, ([0.3, 0.6],), {})]
    for fun, args, kw in cases:
        kw = dict(kw, argnums="regularization_strength", regularization_strength=eps)
        value, vjp_fn = skrank.vjp(fun, cp.asarray(x), *args, **kw)
        ref_value, ref_vjp = skrank.vjp(fun, x, *args, **kw)
        gg = rng.normal(size=np.shape(ref_value))
        np.testing.assert_allclose(cp.asnumpy(vjp_fn(cp.asarray(gg))), ref_vjp(gg),
                                   rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(
            cp.asnumpy(skrank.jvp(fun, cp.asarray(x), eps, *args, **kw)[1]),
            skrank.jvp(fun, x, eps, *args, **kw)[1], rtol=1e-10, atol=1e-12)
    q = np.array([0.2, 0.5])  # and a quantile's derivative in q
    np.testing.assert_allclose(
        cp.asnumpy(skrank.jvp(skrank.soft_quantile, cp.asarray(x), np.ones(2), q,
                              argnums="q")[1]),
        skrank.jvp(skrank.soft_quantile, x, np.ones(2), q, argnums="q")[1], rtol=1e-10)
    value, vjp_fn = skrank.vjp(losses.ndcg_loss, np.abs(g), cp.asarray(x), k=5,
                               argnums="regularization_strength", regularization_strength=eps)
    np.testing.assert_allclose(
        cp.asnumpy(vjp_fn(1.0)),
        skrank.vjp(losses.ndcg_loss, np.abs(g), x, k=5, argnums="regularization_strength",
                   regularization_strength=eps)[1](1.0), rtol=1e-10, atol=1e-12)
