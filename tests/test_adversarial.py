"""Worst-case inputs for PAV (benchmarks/_adversarial.py): the sequences on which other
libraries' PAV went quadratic or exponential, carried into each kernel form. Each input
must give the exact answer, and must really stress PAV: the kernel finds exactly the
blocks of the isotonic problem it was built from, and they are few (long merge chains).
How the time grows with n is measured by benchmarks/bench_pav.py, not here."""

import pathlib
import sys

import numpy as np
import pytest
import scipy.optimize

import _reference as ref
import skrank
from skrank import _ops, _stats

sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / "benchmarks"))
import _adversarial as adv  # noqa: E402

OPERATOR_INPUTS = ("pathological", "alternating", "descending", "sawtooth")
SIZES = (5, 258, 1001)


def fitted_block_sizes(z):
    """Block sizes of z's increasing isotonic fit: its runs of equal values (PAV's
    final block values strictly increase, since tied blocks pool)."""
    fit = scipy.optimize.isotonic_regression(z).x
    edges = np.flatnonzero(np.diff(fit) != 0) + 1
    return np.diff(np.r_[0, edges, z.size]).tolist()


def kernel_block_sizes(structure):
    n, nb = structure.perm.shape[-1], int(structure.nblocks[0])
    return np.diff(np.r_[structure.start.reshape(-1)[:nb], n]).tolist()


@pytest.mark.parametrize("name", adv.GENERATORS)
@pytest.mark.parametrize("n", SIZES)
def test_isotonic_regression(name, n):
    y, w = adv.isotonic_problem(name, n)
    got = skrank.isotonic_regression(y, weights=w)
    np.testing.assert_allclose(got, ref.isotonic_l2(y, w), rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(got, scipy.optimize.isotonic_regression(y, weights=w).x,
                               rtol=1e-12, atol=1e-9)
    w_reversed = None if w is None else w[::-1]
    np.testing.assert_allclose(skrank.isotonic_regression(y[::-1], weights=w_reversed,
                                                          increasing=False),
                               got[::-1], rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("name", OPERATOR_INPUTS)
@pytest.mark.parametrize("n", SIZES)
def test_rank_form_solves_the_embedded_problem(name, n):
    z, _ = adv.isotonic_problem(name, n)
    x = adv.rank_input(z)
    value, structure = _ops._soft_rank_structured(x, regularization_strength=1.0)
    sizes = fitted_block_sizes(z)
    assert kernel_block_sizes(structure) == sizes == ref.rank_blocks(x, 1.0)
    if name != "sawtooth" and n > 5:
        assert len(sizes) <= n // 2  # long merge chains, not singletons
    np.testing.assert_allclose(value, ref.soft_rank(x, 1.0), rtol=1e-12)
    assert np.isclose(value.sum(), n * (n + 1) / 2, rtol=1e-13)


@pytest.mark.parametrize("name", OPERATOR_INPUTS)
@pytest.mark.parametrize("n", SIZES)
def test_sort_form_solves_the_embedded_problem(name, n):
    z, _ = adv.isotonic_problem(name, n)
    x = adv.sort_input(z)
    kw = dict(regularization_strength=1.0, direction="descending")
    value, structure = _ops._soft_sort_structured(x, **kw)
    assert kernel_block_sizes(structure) == fitted_block_sizes(z)
    np.testing.assert_allclose(value, ref.soft_sort(x, 1.0, direction="descending"),
                               rtol=1e-12)
    assert np.isclose(value.sum(), x.sum(), rtol=1e-13)


@pytest.mark.parametrize("name", OPERATOR_INPUTS)
@pytest.mark.parametrize("n", SIZES[1:])
def test_topk_masks_on_the_same_inputs(name, n):
    # masks run the rank form's PAV with weights (1, ..., 1, 0, ..., 0); a strength of
    # about n / 4 pools a long run around the k-th value
    x = adv.rank_input(adv.isotonic_problem(name, n)[0])
    k, eps = n // 3, n / 4
    mask, structure = _stats._soft_topk_mask_structured(x, k, regularization_strength=eps)
    np.testing.assert_allclose(mask, ref.topk_mask(x, k, eps), atol=1e-9)
    assert int(structure.nblocks[0]) < n - n // 8


def test_benchmark_runs(capsys):
    """benchmarks/bench_pav.py runs end to end (tiny sizes: the times mean nothing)."""
    import runpy

    bench = pathlib.Path(__file__).parents[1] / "benchmarks" / "bench_pav.py"
    runpy.run_path(str(bench))["main"](["--sizes", "64,300", "--budget", "0"])
    out = capsys.readouterr().out
    for form in ("isotonic", "rank", "sort", "topk"):
        assert f"| {form:<8} | pathological |" in out
    assert "| isotonic | tied_weights |" in out and "| rank     | tied_weights |" not in out
    assert "PAV ns/entry max/min" in out
    assert ("PASS" in out) or ("FAIL" in out)


def test_memory_benchmark_runs(capsys):
    """benchmarks/bench_memory.py runs end to end (one function, a tiny row)."""
    import runpy

    bench = pathlib.Path(__file__).parents[1] / "benchmarks" / "bench_memory.py"
    runpy.run_path(str(bench))["main"](["--n", "2000", "--functions", "soft_median"])
    out = capsys.readouterr().out
    assert "| soft_median        | float32 |" in out and "## Errors" not in out


def test_sparse_benchmark_runs_and_agrees(capsys):
    """benchmarks/bench_sparse.py runs end to end on tiny rows, and its reimplementation
    of the authors' method agrees with skrank's p4/3 mask (float32 rounding)."""
    import runpy

    bench = pathlib.Path(__file__).parents[1] / "benchmarks" / "bench_sparse.py"
    module = runpy.run_path(str(bench))
    module["main"](["--sizes", "60,300", "--budget", "0.01"])
    out = capsys.readouterr().out
    assert "|       300 |" in out and "## Errors" not in out
    x = np.random.default_rng(0).normal(size=300).astype(np.float32)
    theirs = module["authors_mask"](x, 30, 0.1)
    ours = skrank.soft_topk_mask(x, 30, regularization_strength=0.1, regularization="p4/3")
    np.testing.assert_allclose(theirs, ours, rtol=0, atol=1e-4)
