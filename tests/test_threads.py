"""The kernels run rows in parallel with OpenMP: results must not depend on the
thread count, and threadpoolctl must control it."""

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import skrank
from skrank import _pav


def _all_outputs(x):
    outs = []
    for op in (skrank.soft_rank, skrank.soft_sort):
        for reg in ("l2", "kl"):
            for direction in ("ascending", "descending"):
                kw = dict(regularization_strength=0.3, regularization=reg,
                          direction=direction)
                y, vjp_fn = skrank.vjp(op, x, **kw)
                outs += [y, vjp_fn(np.cos(np.arange(x.size)).reshape(x.shape)),
                         skrank.jvp(op, x, np.sin(np.arange(x.size)).reshape(x.shape),
                                    **kw)[1]]
    outs.append(skrank.isotonic_regression(x))
    # forward passes that keep no structure, and the statistics that the kernel sums
    # without forming masks (each thread with its own work space and mask buffers)
    outs += [skrank.soft_rank(x), skrank.soft_sort(x, regularization="kl"),
             skrank.soft_topk_mask(x, 7, axis=-1),
             skrank.soft_quantile(x, [0.1, 0.5, 0.9], axis=-1),
             skrank.soft_median(x, axis=-1), skrank.soft_trimmed_mean(x, 0.2, axis=-1)]
    return outs


@pytest.mark.parametrize("shape", [(64, 300), (9, 3000), (200, 40)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_results_identical_for_any_thread_count(shape, dtype):
    rng = np.random.default_rng(0)
    x = np.round(rng.normal(size=shape), 2).astype(dtype)  # ties included
    with threadpool_limits(limits=1, user_api="openmp"):
        one = _all_outputs(x)
    with threadpool_limits(limits=2, user_api="openmp"):
        two = _all_outputs(x)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)


@pytest.mark.skipif(not _pav.built_with_openmp(), reason="built without OpenMP")
def test_threadpoolctl_limits_the_kernels():
    with threadpool_limits(limits=1, user_api="openmp"):
        assert _pav.openmp_effective_n_threads() == 1
    with threadpool_limits(limits=2, user_api="openmp"):
        assert _pav.openmp_effective_n_threads() == 2


def test_python_threads_calling_at_once_get_the_serial_results():
    """The kernels keep a work space per OpenMP thread number between calls; Python
    threads running calls at once (the kernels release the GIL) take and give them back
    with atomic exchanges, so none is shared. Rows of several lengths and both dtypes
    make the calls swap, outgrow and replace each other's work spaces."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(3)
    inputs = [np.round(rng.normal(size=shape), 2).astype(dtype)
              for shape in [(1, 20000), (50, 300), (3, 7000), (400, 30)]
              for dtype in (np.float32, np.float64)]

    def outputs(x):
        return [skrank.soft_rank(x), skrank.soft_rank(x, regularization="kl"),
                skrank.soft_sort(x, regularization="p4/3"),
                skrank.soft_sort(x, regularization="p3/2"),
                skrank.soft_rank(x, regularization="p3/2"),
                skrank.soft_quantile(x, [0.2, 0.7], axis=-1),
                skrank.vjp(skrank.soft_rank, x)[1](np.ones_like(x))]

    want = [outputs(x) for x in inputs]
    _pav.release_work_space()
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(outputs, inputs * 6))
    for i, outs in enumerate(got):
        for a, b in zip(outs, want[i % len(inputs)]):
            np.testing.assert_array_equal(a, b)
