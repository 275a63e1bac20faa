"""The kernel's rank form accepts any descending w, not only (n, ..., 1): with
w = (1, ..., 1, 0, ..., 0) it is the projection onto the capped simplex (the soft top-k
mask of the design notes, section 7), which later operators build on."""

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import _reference as ref
import skrank
from skrank import _pav
from skrank._ops import _split_flat_blocks


def _project_l2(z, w):
    """Reference P(z, w) for w descending: sort, PAV, cancellation-free blocks."""
    order = np.argsort(-z, kind="stable")
    s = z[order]
    sizes = ref.pav_blocks(s, w, "l2")
    out = np.empty_like(z)
    out[order] = ref.blockwise_values(s, w, sizes, "l2")
    return out


def _project_kl(z, w):
    """Reference kl P(z, w) for w descending: softmax(z_B) sum(w_B) on the blocks of
    the isotonic problem in (z, log w), clipped to w's range as the kernel does."""
    from scipy.special import softmax
    order = np.argsort(-z, kind="stable")
    s, out = z[order], np.empty_like(z)
    sorted_out, i = np.empty_like(z), 0
    for size in ref.pav_blocks(s, np.log(w), "kl"):
        sorted_out[i:i + size] = softmax(s[i:i + size]) * w[i:i + size].sum()
        i += size
    out[order] = np.clip(sorted_out, w[-1], w[0])
    return out


def _topk_weights(n, k):
    return np.r_[np.ones(k), np.zeros(n - k)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, k", [(1, 1), (5, 2), (40, 7), (3000, 1500)])
@pytest.mark.parametrize("eps", [1e-3, 0.3, 10.0])
def test_rank_form_with_top_k_weights_is_the_capped_simplex_projection(dtype, n, k, eps):
    rng = np.random.default_rng(n + k)
    X = np.round(rng.normal(size=(3, n)), 1).astype(dtype)  # ties across the boundary
    w = _topk_weights(n, k)
    out = np.empty_like(X)
    perm = np.empty(X.shape, np.int32)
    start = np.empty(X.shape, np.int32)
    nblocks = np.empty(3, np.int64)
    offsets = np.arange(4, dtype=np.int64) * n
    _pav.forward(X.reshape(-1), offsets, np.full(3, eps), w, _pav.WEIGHTS_PREFIX, 1.0, False, False,
                 out.reshape(-1), perm.reshape(-1), start.reshape(-1), nblocks)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    for row, got in zip(X.astype(np.float64), out):
        want = _project_l2(row / eps, w)
        np.testing.assert_allclose(got, want, atol=tol)
        assert abs(got.sum() - k) <= tol * n
        assert got.min() >= 0.0 and got.max() <= 1.0


def test_top_k_weights_tied_boundary_entries_share_equally():
    X = np.array([[3.0, 1.0, 1.0, 0.0]])
    out = np.empty_like(X)
    _pav.forward(X.reshape(-1), np.array([0, 4]), np.zeros(1), _topk_weights(4, 2), _pav.WEIGHTS_PREFIX,
                 1.0, False, False, out.reshape(-1))
    np.testing.assert_array_equal(out, [[1.0, 0.5, 0.5, 0.0]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_masks_forward_shares_one_sort_and_equals_separate_calls(dtype):
    rng = np.random.default_rng(7)
    n_rows, n = 5, 600  # radix-sorted rows for float32
    X = np.round(rng.normal(size=(n_rows, n)), 1).astype(dtype)
    offsets = np.arange(n_rows + 1, dtype=np.int64) * n
    ks = [0, 1, 17, n - 1, n]
    W = np.stack([_topk_weights(n, k) for k in ks])
    eps = np.array([[0.0] * n_rows if k in (0, n) else [0.0, 0.1, 0.5, 1.0, 3.0] for k in ks])
    out = np.empty((len(ks), X.size), dtype)
    perm = np.empty(X.size, np.int32)
    start = np.empty((len(ks), X.size), np.int32)
    nblocks = np.empty((len(ks), n_rows), np.int64)
    _pav.masks_forward(X.reshape(-1), offsets, eps, W, _pav.WEIGHTS_PREFIX, out, perm,
                       start, nblocks)
    for j, k in enumerate(ks):
        one = np.empty_like(X)
        p1, s1 = np.empty(X.shape, np.int32), np.empty(X.shape, np.int32)
        nb1 = np.empty(n_rows, np.int64)
        _pav.forward(X.reshape(-1), offsets, eps[j], W[j], _pav.WEIGHTS_PREFIX, 1.0, False,
                     False, one.reshape(-1), p1.reshape(-1), s1.reshape(-1), nb1)
        np.testing.assert_array_equal(out[j], one.reshape(-1))
        np.testing.assert_array_equal(nblocks[j], nb1)
        for r in range(n_rows):
            np.testing.assert_array_equal(start[j, r * n:r * n + nb1[r]], s1[r, :nb1[r]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_masks_forward_values_only(dtype):
    # no structure kept (perm and start None) and one row of weights for every k
    # (ks): the same masks as with a weight matrix and the structure kept
    rng = np.random.default_rng(8)
    n_rows, n = 4, 500
    X = np.round(rng.normal(size=(n_rows, n)), 1).astype(dtype)
    offsets = np.arange(n_rows + 1, dtype=np.int64) * n
    ks = np.array([0, 3, 250, n], dtype=np.int64)
    eps = np.array([[0.0] * n_rows if k in (0, n) else [0.0, 0.2, 1.0, 4.0] for k in ks])
    want = np.empty((len(ks), X.size), dtype)
    _pav.masks_forward(X.reshape(-1), offsets, eps,
                       np.stack([_topk_weights(n, k) for k in ks]), _pav.WEIGHTS_PREFIX,
                       want, np.empty(X.size, np.int32), np.empty((len(ks), X.size), np.int32),
                       np.empty((len(ks), n_rows), np.int64))
    got = np.empty_like(want)
    W = np.concatenate([np.ones(n), np.zeros(n)])[None]
    _pav.masks_forward(X.reshape(-1), offsets, eps, W, _pav.WEIGHTS_PREFIX, got, None, None,
                       np.empty((len(ks), n_rows), np.int64), ks)
    np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="together"):
        _pav.masks_forward(X.reshape(-1), offsets, eps, W, _pav.WEIGHTS_PREFIX, got,
                           np.empty(X.size, np.int32), None,
                           np.empty((len(ks), n_rows), np.int64), ks)
    with pytest.raises(ValueError, match="non-negative"):
        _pav.masks_forward(X.reshape(-1), offsets, eps, None, _pav.WEIGHTS_PREFIX, got,
                           None, None, np.empty((len(ks), n_rows), np.int64), ks - 5)
    with pytest.raises(ValueError, match="prefix weights"):
        _pav.masks_forward(X.reshape(-1), offsets, eps, W[:, :n], _pav.WEIGHTS_PREFIX, got,
                           None, None, np.empty((len(ks), n_rows), np.int64), ks)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reg", [_pav.P43, _pav.P32])
def test_masks_forward_pnorm_equals_one_forward_per_k(dtype, reg):
    # the shared-sort path of the p-norm masks (statistics, several k) against forward,
    # with the weight matrix and with ks, structure kept and not
    rng = np.random.default_rng(9)
    n_rows, n = 3, 300
    X = np.round(rng.normal(size=(n_rows, n)), 1).astype(dtype)
    offsets = np.arange(n_rows + 1, dtype=np.int64) * n
    ks = np.array([1, 30, 150], dtype=np.int64)
    eps = np.array([[0.0, 0.2, 3.0]] * len(ks))
    want = np.empty((len(ks), X.size), dtype)
    for j, k in enumerate(ks):
        _pav.forward(X.reshape(-1), offsets, eps[j], _topk_weights(n, k), _pav.WEIGHTS_PREFIX,
                     1.0, reg, False, want[j])
    kept = np.empty((len(ks), X.size), dtype)
    _pav.masks_forward(X.reshape(-1), offsets, eps,
                       np.stack([_topk_weights(n, k) for k in ks]), _pav.WEIGHTS_PREFIX,
                       kept, np.empty(X.size, np.int32), np.empty((len(ks), X.size), np.int32),
                       np.empty((len(ks), n_rows), np.int64), None, reg)
    np.testing.assert_array_equal(kept, want)
    got = np.empty_like(want)
    W = np.concatenate([np.ones(n), np.zeros(n)])[None]
    _pav.masks_forward(X.reshape(-1), offsets, eps, W, _pav.WEIGHTS_PREFIX, got, None, None,
                       np.empty((len(ks), n_rows), np.int64), ks, reg)
    np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="serves l2, p4/3 and p3/2"):
        _pav.masks_forward(X.reshape(-1), offsets, eps, W, _pav.WEIGHTS_PREFIX, got, None,
                           None, np.empty((len(ks), n_rows), np.int64), ks, _pav.KL)


def test_phase_timers_add_up_and_change_nothing():
    """The benchmarks' per-phase timers: off by default; on, they split each call's
    time into sort, PAV and the rest, on one thread, with the same results."""
    x = np.random.default_rng(0).normal(size=(8, 3000))
    want = skrank.soft_rank(x, regularization_strength=0.1)
    assert _pav.phase_times() == {"sort": 0.0, "pav": 0.0, "other": 0.0}
    _pav.set_phase_timing(True)
    try:
        t0 = time.perf_counter()
        got = skrank.soft_rank(x, regularization_strength=0.1)
        wall = time.perf_counter() - t0
        phases = _pav.phase_times()
        skrank.isotonic_regression(x)
        assert _pav.phase_times()["pav"] > phases["pav"]  # isotonic PAV counted too
    finally:
        _pav.set_phase_timing(False)
    np.testing.assert_array_equal(got, want)
    assert phases["sort"] > 0 and phases["pav"] > 0 and phases["other"] >= 0
    assert sum(phases.values()) <= wall
    assert _pav.phase_times() == {"sort": 0.0, "pav": 0.0, "other": 0.0}


def test_split_flat_blocks_against_a_row_by_row_reference():
    # blocks over which the weights are constant become singletons, in every layout,
    # in ragged rows (empty ones too), touching only the rows that hold one
    from skrank import _ops, _stats
    from skrank._rows import RaggedRows

    rng = np.random.default_rng(21)
    splits = 0
    for trial in range(60):
        lengths = rng.integers(0, 12, size=5)
        x = rng.integers(-3, 4, size=int(lengths.sum())).astype(np.float64)  # many ties
        rows = RaggedRows(x.shape, lengths)
        k = np.minimum(rng.uniform(0, 6, size=5), lengths)
        w = _stats._topk_weights(rows.offsets, k)
        _, perm, start, nblocks = _ops._run_kernel(rows, x, np.full(5, rng.uniform(0.1, 3)),
                                                   w, 1.0, _pav.L2, False, True,
                                                   _pav.WEIGHTS_ALIGNED)
        want_start, want_nb = start.copy(), nblocks.copy()
        for r in range(5):  # the reference: walk the row's blocks
            lo, nb = rows.offsets[r], nblocks[r]
            firsts = list(start[lo:lo + nb]) + [lengths[r]]
            new = []
            for a, b in zip(firsts[:-1], firsts[1:]):
                new += list(range(a, b)) if w[lo + a] == w[lo + b - 1] else [a]
            want_start[lo:lo + len(new)] = new
            want_nb[r] = len(new)
        splits += int((want_nb != nblocks).any())
        _ops._split_flat_blocks(rows.offsets, start, nblocks, w, _pav.WEIGHTS_ALIGNED)
        np.testing.assert_array_equal(nblocks, want_nb)
        for r in range(5):
            lo = rows.offsets[r]
            np.testing.assert_array_equal(start[lo:lo + nblocks[r]],
                                          want_start[lo:lo + want_nb[r]])
    assert splits > 10  # (the case is exercised)


@pytest.mark.parametrize("n", [1, 2, 100, 256, 257, 3000])
@pytest.mark.parametrize("reg", ["l2", "kl", "p4/3", "p3/2"])
def test_float32_sorts_agree_with_float64(n, reg):
    """Rows of up to 256 entries are sorted as packed value-index keys (float32 exactly,
    float64 with an insertion pass), float64 rows of up to 384 by NumPy's argsort,
    longer rows by the radix sort. The
    kernels compute in float64 either way, so the same values give the same blocks:
    values and derivatives agree to float32 rounding. (Tied entries may come out of
    the sorts in different orders: the sort form's derivative, a permutation of the
    cotangent at small strengths, is then compared on distinct values only.)"""
    assert _pav.has_packed_sort()
    rng = np.random.default_rng(n)
    tied = np.round(rng.normal(size=(3, n)) * 4) / 4
    tied[:, ::7] *= -0.0  # signed zeros tie
    tied = tied.astype(np.float32)
    distinct = rng.permuted(np.arange(3 * n).reshape(3, n) - n, axis=1).astype(np.float32)
    g = rng.normal(size=tied.shape)
    for op, eps, x in ((skrank.soft_rank, 0.3, tied), (skrank.soft_sort, 3.0 / n, tied),
                       (skrank.soft_sort, 3.0, distinct)):
        for direction in ("ascending", "descending"):
            kw = dict(regularization_strength=eps, regularization=reg, direction=direction)
            v32, fn32 = skrank.vjp(op, x, **kw)
            v64, fn64 = skrank.vjp(op, x.astype(np.float64), **kw)
            assert v32.dtype == np.float32
            np.testing.assert_allclose(v32, v64, rtol=1e-6, atol=1e-6 * np.abs(v64).max())
            if x is tied and op is skrank.soft_sort:
                continue
            want = fn64(g)
            np.testing.assert_allclose(fn32(g), want, rtol=1e-5,
                                       atol=1e-5 * np.abs(want).max())


@pytest.mark.parametrize("n", [2, 40, 256])
@pytest.mark.parametrize("reg", ["l2", "kl", "p4/3", "p3/2"])
def test_float64_packed_keys_near_ties(n, reg):
    """float64 rows of up to 256 entries are sorted as keys whose 8 lowest bits hold the
    index; values that differ only there (within 2^-44 relative: here a few ulps apart,
    with exact ties and signed zeros) are put in order by an insertion pass over the
    exact values. The hard operators (strength 0) see any misordering. Soft ranks are
    compared with the same row padded to 300 entries by values far beyond it, which
    NumPy's argsort sorts and which leave the row's blocks and ranks unchanged."""
    from scipy.stats import rankdata
    rng = np.random.default_rng(n)
    base = rng.choice([-1.5, 0.0, 1.0, 3.0], size=n)
    x = base + rng.integers(-300, 300, size=n) * np.spacing(np.maximum(np.abs(base), 1.0))
    x[rng.random(n) < 0.3] = 1.0  # exact ties
    x[(base == 0.0) & (rng.random(n) < 0.5)] = -0.0
    for direction in ("ascending", "descending"):
        sign = 1.0 if direction == "ascending" else -1.0
        kw = dict(regularization=reg, direction=direction)
        np.testing.assert_array_equal(
            skrank.soft_rank(x, regularization_strength=0.0, **kw), rankdata(sign * x))
        np.testing.assert_array_equal(
            skrank.soft_sort(x, regularization_strength=0.0, **kw),
            np.sort(x) if sign > 0 else -np.sort(-x))
        padded = np.r_[x, sign * (1e6 + np.arange(300 - n))]
        g = np.r_[rng.normal(size=n), np.zeros(300 - n)]
        for eps in (1e-14, 1e-3, 1.0):
            value, vjp_fn = skrank.vjp(skrank.soft_rank, x, regularization_strength=eps, **kw)
            want, want_fn = skrank.vjp(skrank.soft_rank, padded,
                                       regularization_strength=eps, **kw)
            np.testing.assert_allclose(value, want[:n], rtol=1e-13)
            np.testing.assert_allclose(vjp_fn(g[:n]), want_fn(g)[:n], rtol=1e-9,
                                       atol=1e-12 * np.abs(want_fn(g)).max())


def _ragged_rows(rng, dtype):
    """Rows of lengths 1 to 300 (short rows sort as packed keys, longer ones by radix or
    argsort), rounded so that ties are common, with signed zeros."""
    lengths = np.array([1, 2, 7, 100, 256, 257, 300])
    offsets = np.r_[0, np.cumsum(lengths)].astype(np.int64)
    X = np.round(rng.normal(size=offsets[-1]), 1).astype(dtype)
    X[::11] = -0.0
    return X, offsets


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reg", [_pav.L2, _pav.KL, _pav.P43, _pav.P32])
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_rho_weights_computed_equal_rho_stored(dtype, reg, sign):
    # WEIGHTS_RHO (no array: the kernel sums rho over a block in closed form) gives
    # the same values and structure, bit for bit, as rho stored and read as a suffix
    rng = np.random.default_rng(5)
    X, offsets = _ragged_rows(rng, dtype)
    n_rows, n = offsets.size - 1, int(np.diff(offsets).max())
    rho = np.arange(n, 0, -1, dtype=np.float64)
    for eps in (0.0, 1e-3, 0.5, 40.0):
        E = np.full(n_rows, eps)
        results = []
        for w, layout in ((rho, _pav.WEIGHTS_SUFFIX), (None, _pav.WEIGHTS_RHO)):
            out = np.empty_like(X)
            perm, start = np.empty(X.size, np.int32), np.empty(X.size, np.int32)
            nblocks = np.empty(n_rows, np.int64)
            _pav.forward(X, offsets, E, w, layout, sign, reg, False, out, perm, start,
                         nblocks)
            light = np.empty_like(X)  # no structure kept
            _pav.forward(X, offsets, E, w, layout, sign, reg, False, light)
            np.testing.assert_array_equal(light, out)
            if w is None:  # each row alone (its own table of rho's cube roots)
                for lo, hi in zip(offsets[:-1], offsets[1:]):
                    alone = np.empty(hi - lo, X.dtype)
                    _pav.forward(X[lo:hi], np.array([0, hi - lo]), E[:1], None, layout,
                                 sign, reg, False, alone)
                    np.testing.assert_array_equal(alone, out[lo:hi])
            results.append((out, perm, nblocks,
                            [start[a:a + k] for a, k in zip(offsets[:-1], nblocks)]))
        (o1, p1, n1, s1), (o2, p2, n2, s2) = results
        np.testing.assert_array_equal(o2, o1)
        np.testing.assert_array_equal(p2, p1)
        np.testing.assert_array_equal(n2, n1)
        for a, b in zip(s1, s2):
            np.testing.assert_array_equal(b, a)
        # and the values are ranks: each row's sum is m (m + 1) / 2
        sums = np.add.reduceat(o2.astype(np.float64), offsets[:-1])
        m = np.diff(offsets)
        np.testing.assert_allclose(sums, m * (m + 1) / 2, rtol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reg", [_pav.L2, _pav.P43, _pav.P32])
def test_masks_forward_top_k_weights_without_an_array(dtype, reg):
    # W=None with ks: the kernel sums the top-k weights in closed form (and p4/3 takes
    # their cube roots, 0 or 1; l2 grows each mask's one soft block from k, with no
    # PAV over the row); the same masks and block counts, bit for bit, as one row of
    # half ones then half zeros
    rng = np.random.default_rng(9)
    X, offsets = _ragged_rows(rng, dtype)
    n_rows, n = offsets.size - 1, int(np.diff(offsets).max())
    ks = np.array([0, 1, 3, 128, n], dtype=np.int64)
    eps = np.array([[0.0] * n_rows if k in (0, n) else
                    [0.0, 0.05, 0.3, 1.0, 2.0, 7.0, 100.0] for k in ks])
    W = np.concatenate([np.ones(n), np.zeros(n)])[None]
    want = np.empty((len(ks), X.size), dtype)
    nb_want = np.empty((len(ks), n_rows), np.int64)
    _pav.masks_forward(X, offsets, eps, W, _pav.WEIGHTS_PREFIX, want, None, None, nb_want,
                       ks, reg)
    got = np.empty_like(want)
    nb_got = np.empty_like(nb_want)
    _pav.masks_forward(X, offsets, eps, None, _pav.WEIGHTS_PREFIX, got, None, None, nb_got,
                       ks, reg)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(nb_got, nb_want)
    # each row's mask sums to min(k, m), within [0, 1]
    m = np.diff(offsets)
    for j, k in enumerate(ks):
        sums = np.add.reduceat(got[j].astype(np.float64), offsets[:-1])
        np.testing.assert_allclose(sums, np.minimum(k, m), atol=1e-4 * n)
    assert got.min() >= 0.0 and got.max() <= 1.0
    with pytest.raises(ValueError, match="None only"):
        _pav.masks_forward(X, offsets, eps, None, _pav.WEIGHTS_PREFIX, got, None, None,
                           nb_got, None, reg)


@settings(max_examples=300, deadline=None)
@given(hnp.arrays(np.float64, st.integers(1, 40),
                  elements=st.sampled_from([0.0, -0.0, 1.0, 1.0 + 2 ** -52, 1.5, 2.0, -3.0,
                                            1e-300, 7.25, 7.25 + 1e-12])),
       st.sampled_from([0.0, 1e-300, 1e-12, 0.3, 1.0, 4.0, 1e12, 1e300]),
       st.integers(0, 45), st.sampled_from([np.float32, np.float64]))
def test_top_k_mask_bands_equal_pav_over_the_row(x, eps, k, dtype):
    # the l2 band (its soft block grown from k, PAV's merge test and order) against PAV
    # over the row with stored weights, with ties, near-ties and extreme strengths: the
    # same mask to an ulp (where two values' gap is below eps's last digit, PAV over
    # the row may pool them in rounding though their weights are equal, and give
    # outputs an ulp from the weight the band keeps), and the same block count where
    # no such gap exists
    X = x.astype(dtype)
    offsets = np.array([0, X.size])
    E = np.array([[eps]])
    ks = np.array([k])
    W = np.concatenate([np.ones(64), np.zeros(64)])[None]
    want, got = np.empty((2, 1, X.size), dtype)
    nb_want, nb_got = np.empty((2, 1, 1), np.int64)
    _pav.masks_forward(X, offsets, E, W, _pav.WEIGHTS_PREFIX, want, None, None, nb_want, ks)
    _pav.masks_forward(X, offsets, E, None, _pav.WEIGHTS_PREFIX, got, None, None, nb_got,
                       ks)
    np.testing.assert_allclose(got, want, rtol=0, atol=2 * np.finfo(dtype).eps)
    gaps = np.diff(np.unique(X.astype(np.float64)))
    if eps == 0.0 or not (gaps.size and gaps.min() <= 1e-15 * eps):
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(nb_got, nb_want)


@pytest.mark.parametrize("pnorm, power", [("p4/3", 3), ("p3/2", 2)])
def test_block_arrays_grow_beyond_their_first_room(pnorm, power):
    # the per-block arrays of the p-norm forms start with room for 1024 blocks and
    # grow (doubling) as a row needs more: rows of 4000 with up to 4000 blocks, against
    # the reference: p-norm ranks and top-k masks, alone and with the structure kept,
    # and the p-norm sorts (and the kl sorts, whose G(k) is recomputed from block sizes)
    rng = np.random.default_rng(14)
    X = rng.normal(size=(2, 4000))
    for eps in (1e-3, 0.05, 1.0):
        for reg in ("kl", pnorm):
            want = np.array([ref.soft_sort(x, eps * 1e3, reg) for x in X])
            got = skrank.soft_sort(X, regularization_strength=eps * 1e3, regularization=reg)
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
        want = np.array([ref.soft_rank(x, eps, pnorm) for x in X])
        got = skrank.soft_rank(X, regularization_strength=eps, regularization=pnorm)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
        value, back = skrank.vjp(skrank.soft_rank, X, regularization_strength=eps,
                                 regularization=pnorm)
        np.testing.assert_array_equal(value, got)
        mask = skrank.soft_topk_mask(X, 1500, regularization_strength=eps,
                                     regularization=pnorm)
        want = np.array([ref.topk_mask(x, 1500, eps, power=power) for x in X])
        np.testing.assert_allclose(mask, want, rtol=0, atol=1e-9)
    out, perm, start = np.empty(4000), np.empty(4000, np.int32), np.empty(4000, np.int32)
    nblocks = np.empty(1, np.int64)
    code = skrank._ops._REGULARIZERS[pnorm]
    _pav.forward(X[0], np.array([0, 4000]), np.array([1e-3]), None, _pav.WEIGHTS_RHO, 1.0,
                 code, False, out, perm, start, nblocks)
    assert nblocks[0] > 2048  # (grown twice)
    for reg in (_pav.KL, code):  # and the sorts
        _pav.forward(X[0], np.array([0, 4000]), np.array([1.0]), None, _pav.WEIGHTS_RHO,
                     1.0, reg, True, out, perm, start, nblocks)
        assert nblocks[0] > 2048


def test_rows_longer_than_int32_are_refused():
    # the kernels' scratch indices are int32: a longer row gets a clear error before
    # anything is read or allocated
    X = np.zeros(1)
    offsets = np.array([0, 2 ** 31], dtype=np.int64)
    with pytest.raises(ValueError, match="not supported"):
        _pav.forward(X, offsets, np.ones(1), None, _pav.WEIGHTS_RHO, 1.0, _pav.L2, False,
                     np.empty(1))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["soft_rank", "soft_sort", "soft_topk_mask",
                                  "spearman_loss", "ndcg_loss", "ndcg_loss_cutoff"])
def test_forward_scratch_stays_within_its_budget(dtype, name):
    # forward alone keeps no structure: the kernel's one block of scratch (keys, int32
    # indices, sorted values and block sums reusing the keys' memory) and the output,
    # 24 bytes per entry for float32, 36 for float64 (doc/design.rst, section 15); a
    # top-k mask forms no block starts (4 bytes less: its band needs none); the losses
    # hold their soft ranks while the targets are sorted in that scratch (or while
    # the cutoff's mask is made: K more), and sum in chunks (of 2^17 entries: here a
    # quarter of the row)
    import tracemalloc

    import skrank.losses

    rng = np.random.default_rng(0)
    x = rng.normal(size=2 ** (19 if "loss" in name else 17)).astype(dtype)
    y = np.round(rng.uniform(0, 3, size=x.size)).astype(dtype)  # targets, relevances
    fun = getattr(skrank, name, None) or getattr(skrank.losses, name.replace("_cutoff", ""))
    args = {"soft_topk_mask": (x, 1000), "spearman_loss": (y, x),
            "ndcg_loss": (y, x), "ndcg_loss_cutoff": (y, x)}.get(name, (x,))
    kwargs = {"k": 1000} if name == "ndcg_loss_cutoff" else {}
    K = x.itemsize  # bytes of a key: the work space takes 2 K + 12 per entry
    entry_bytes = {"soft_topk_mask": 2 * K + 8 + K,  # (no block starts)
                   "ndcg_loss_cutoff": K + 2 * K + 8 + K}.get(name, 2 * K + 12 + K)
    limit = entry_bytes / x.itemsize + 0.1
    fun(*args, **kwargs)
    _pav.release_work_space()  # (the call makes its work space again: counted)
    tracemalloc.start()
    fun(*args, **kwargs)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak / x.nbytes <= limit


@pytest.mark.parametrize("t_dtype", [np.float32, np.float64])
@pytest.mark.parametrize("v_dtype", [np.float32, np.float64])
def test_rank_correlation_sums_against_rankdata(t_dtype, v_dtype):
    # centred tie-averaged ranks a of T (scipy's rankdata), sum a V, sum a^2 and the
    # centred sum of squares of V per row, on rows with ties, signed zeros, one entry
    # and none; the ranks themselves when asked for
    from scipy.stats import rankdata

    rng = np.random.default_rng(12)
    T, offsets = _ragged_rows(rng, t_dtype)
    T, offsets = np.r_[T, 1.0].astype(t_dtype), np.r_[offsets, offsets[-1], T.size + 1]
    V = (rng.normal(size=T.size) * 50).astype(v_dtype)
    sums, A = np.full((3, offsets.size - 1), np.nan), np.full(T.size, np.nan)
    _pav.rank_correlation_sums(T, offsets, V, sums, A)
    alone = np.full_like(sums, np.nan)
    _pav.rank_correlation_sums(T, offsets, V, alone)
    np.testing.assert_array_equal(alone, sums)
    for r, (lo, hi) in enumerate(zip(offsets[:-1], offsets[1:])):
        t, v = T[lo:hi].astype(np.float64), V[lo:hi].astype(np.float64)
        a = rankdata(t) - (t.size + 1) / 2 if t.size else t
        np.testing.assert_array_equal(A[lo:hi], a)
        want = [a @ v, a @ a, ((v - v.mean()) ** 2).sum() if t.size else 0.0]
        np.testing.assert_allclose(sums[:, r], want, rtol=1e-14, atol=1e-9)
    # V close to its mean, as soft ranks at a large strength: sum a V keeps its digits
    # (a sums to 0 in exact arithmetic only; the kernel centres V), against exact sums
    from fractions import Fraction

    V = np.concatenate([(hi - lo + 1) / 2 + 1e-6 * rng.normal(size=hi - lo)
                        for lo, hi in zip(offsets[:-1], offsets[1:])]).astype(v_dtype)
    _pav.rank_correlation_sums(T, offsets, V, sums)
    for r, (lo, hi) in enumerate(zip(offsets[:-1], offsets[1:])):
        a = rankdata(T[lo:hi].astype(np.float64)) * 2 - (hi - lo + 1) if hi > lo else []
        exact = sum(Fraction(int(ai), 2) * Fraction(float(vi)) for ai, vi in zip(a, V[lo:hi]))
        assert sums[0, r] == pytest.approx(float(exact), rel=1e-12, abs=1e-300)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_topk_pair_sums_against_masks_from_forward(dtype):
    # <M(k_hi) - M(k_lo), x * scale - c> per row, the masks differenced in X's dtype,
    # against masks from forward with weights stored per row; pairs come in an order
    # that makes the kernel reuse, evict and recompute its two buffered masks
    rng = np.random.default_rng(11)
    X, offsets = _ragged_rows(rng, dtype)
    m = np.diff(offsets)
    if dtype == np.float64:  # a row near the float64 limit: rescaled in the kernel
        X[offsets[3]:offsets[4]] *= 1e300
    n_rows = m.size
    stat = [np.minimum(i, m - 1) for i in (0, 1, 2, 1, 5, 0, 2, 3, 2, 50)]
    K_hi = np.stack([m - i for i in stat] + [m - m // 10])
    K_lo = np.stack([m - i - 1 for i in stat] + [m // 10])
    eps = np.array([0.0, 0.3, 1.0, 2.0, 0.05, 4.0, 0.7])
    E_hi, E_lo = (np.where((K > 0) & (K < m), eps, 0.0) for K in (K_hi, K_lo))
    scale = np.where(np.arange(n_rows) == 3, 2.0 ** -24, 1.0)
    c = np.round(rng.normal(size=n_rows), 2)
    sums = np.empty(K_hi.shape)
    _pav.topk_pair_sums(X, offsets, E_hi, E_lo, K_hi, K_lo, scale, c, sums)

    def mask(K, E):
        w = np.concatenate([(np.arange(mm) < k).astype(float) for mm, k in zip(m, K)])
        out = np.empty_like(X)
        _pav.forward(X, offsets, E, w, _pav.WEIGHTS_ALIGNED, 1.0, _pav.L2, False, out)
        return out

    framed = X.astype(np.float64) * np.repeat(scale, m) - np.repeat(c, m)
    for p in range(len(K_hi)):
        # the weights M_hi - M_lo sum to k_hi - k_lo: the kernel returns the mean,
        # dividing them by it first in X's dtype (as the masks' own mean does)
        w = np.repeat(np.maximum(K_hi[p] - K_lo[p], 1), m).astype(dtype)
        terms = ((mask(K_hi[p], E_hi[p]) - mask(K_lo[p], E_lo[p])) / w) * framed
        want = np.add.reduceat(terms, offsets[:-1])
        bound = np.add.reduceat(np.abs(terms), offsets[:-1])
        assert np.all(np.abs(sums[p] - want) <= 1e-13 * bound), p


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_topk_pair_sums_derivatives_against_masks_structure(dtype):
    # G[q] = (1 - t_q) g_a + t_q g_b with g_p = (M_hi - M_lo + J_hi x - J_lo x) /
    # (k_hi - k_lo), and dsums[p] = (<J_hi x, x> - <J_lo x, x>) / (k_hi - k_lo),
    # against masks kept with
    # their structure by forward, their flat blocks split, and rank_derivative; the
    # same pair order as above (bands reused, evicted and recomputed), strengths
    # large enough that many blocks straddle k
    rng = np.random.default_rng(12)
    X, offsets = _ragged_rows(rng, dtype)
    X += (1e-3 * rng.normal(size=X.size)).astype(dtype)  # (ties within the eps band)
    X[offsets[2]:offsets[3]] = 0.5  # a constant row
    m = np.diff(offsets)
    if dtype == np.float64:
        X[offsets[3]:offsets[4]] *= 1e300
    n_rows = m.size
    stat = [np.minimum(i, m - 1) for i in (0, 1, 2, 1, 5, 0, 2, 3, 2, 50)]
    K_hi = np.stack([m - i for i in stat] + [m - m // 10])
    K_lo = np.stack([m - i - 1 for i in stat] + [m // 10])
    eps = np.array([0.0, 0.3, 1.0, 2.0, 0.05, 4.0, 0.7]) * np.where(
        np.arange(n_rows) == 3, 1e300 if dtype == np.float64 else 1.0, 1.0)
    E_hi, E_lo = (np.where((K > 0) & (K < m), eps, 0.0) for K in (K_hi, K_lo))
    scale = np.where(np.arange(n_rows) == 3, 2.0 ** -24, 1.0)
    c = np.round(rng.normal(size=n_rows), 2)
    c[3] = 0.0  # (the rescaled row's frame: x * 2^-24 - c would lose x's digits)
    n_p, n_q = len(K_hi), 3
    # each gradient row mixes two pairs (the second: one pair on both sides), with
    # weights t per row, 0 and 1 among them
    a, b = np.array([0, 4, 10]), np.array([3, 4, 1])
    t = rng.uniform(size=(n_q, n_rows))
    t[0, :2] = [0.0, 1.0]
    uses = np.concatenate([a, b])
    order = np.argsort(uses, kind="stable")
    mix_ptr = np.searchsorted(uses[order], np.arange(n_p + 1)).astype(np.int64)
    mix_g = np.concatenate([2 * np.arange(n_q), 2 * np.arange(n_q) + 1])[order]
    sums, dsums = np.empty((2, n_p, n_rows))
    G = np.zeros((n_q, X.size), dtype=dtype)
    _pav.topk_pair_sums(X, offsets, E_hi, E_lo, K_hi, K_lo, scale, c, sums, mix_ptr,
                        mix_g, t, G, dsums)
    alone = np.empty_like(sums)  # the values do not depend on the derivatives
    _pav.topk_pair_sums(X, offsets, E_hi, E_lo, K_hi, K_lo, scale, c, alone)
    np.testing.assert_array_equal(sums, alone)

    framed = X.astype(np.float64) * np.repeat(scale, m) - np.repeat(c, m)

    def mask_and_jx(K, E):
        w = np.concatenate([(np.arange(mm) < k).astype(float) for mm, k in zip(m, K)])
        out = np.empty_like(X)
        perm, start = np.empty((2, X.size), dtype=_pav.INDEX_DTYPE)
        nblocks = np.zeros(n_rows, dtype=np.int64)
        _pav.forward(X, offsets, E, w, _pav.WEIGHTS_ALIGNED, 1.0, _pav.L2, False, out,
                     perm, start, nblocks)
        _split_flat_blocks(offsets, start, nblocks, w, _pav.WEIGHTS_ALIGNED)
        jx = np.empty(X.size)  # J applied to the framed row, back in x's units
        _pav.rank_derivative(offsets, perm, start, nblocks, out.astype(np.float64), E,
                             1.0, _pav.L2, framed, jx)
        jx /= np.repeat(scale, m)
        # <J x, x> (J x sums to 0 over each row: x itself, not the frame, whose offset
        # c / scale would cancel)
        return out.astype(np.float64), jx, np.add.reduceat(jx * X, offsets[:-1])

    coef = np.zeros((n_q, n_p, n_rows))  # (the mix, spelled out)
    for q in range(n_q):
        coef[q, a[q]] += 1.0 - t[q]
        coef[q, b[q]] += t[q]
    want_G, size = np.zeros((2, n_q, X.size))  # (size: the sum of the terms' sizes)
    for p in range(n_p):
        m_hi, j_hi, x_hi = mask_and_jx(K_hi[p], E_hi[p])
        m_lo, j_lo, x_lo = mask_and_jx(K_lo[p], E_lo[p])
        w = np.maximum(K_hi[p] - K_lo[p], 1)
        grad = (m_hi - m_lo + j_hi - j_lo) / np.repeat(w, m)
        want_G += np.repeat(coef[:, p], m, axis=1) * grad
        size += np.abs(np.repeat(coef[:, p], m, axis=1)) * (
            np.abs(m_hi) + np.abs(m_lo) + np.abs(j_hi) + np.abs(j_lo)) / np.repeat(w, m)
        np.testing.assert_allclose(dsums[p], (x_hi - x_lo) / w, rtol=1e-9,
                                   atol=1e-12)
    # (G accumulates in X's dtype: one rounding per term)
    np.testing.assert_array_less(np.abs(G - want_G), 8 * np.finfo(dtype).eps * (size + 1e-3))
    # outputs of the wrong shape, or a mix naming a gradient row that does not exist
    with pytest.raises(ValueError, match="n_pairs, n_rows"):
        _pav.topk_pair_sums(X, offsets, E_hi, E_lo, K_hi, K_lo, scale, c, sums, mix_ptr,
                            mix_g, t, G, np.empty((n_p, 2)))
    with pytest.raises(ValueError, match="mix"):
        _pav.topk_pair_sums(X, offsets, E_hi, E_lo, K_hi, K_lo, scale, c, sums, mix_ptr,
                            np.where(mix_g == 0, 2 * n_q, mix_g), t, G, dsums)


@pytest.mark.parametrize("layout", [_pav.WEIGHTS_PREFIX, _pav.WEIGHTS_SUFFIX,
                                    _pav.WEIGHTS_ALIGNED])
def test_split_flat_blocks_in_the_kernel_equals_the_array_version(layout):
    # the kernel's in-place split (int32 starts) against the per-block array version
    # (which the CuPy path runs; int64 starts take it here), on rows with ties under
    # flat weights, ragged and empty rows among them
    rng = np.random.default_rng(4)
    split = 0
    for t in range(300):
        m = rng.integers(0, 30, size=rng.integers(1, 6))
        offsets = np.r_[0, np.cumsum(m)].astype(np.int64)
        X = np.round(rng.normal(size=offsets[-1]) * 2)
        n = int(m.max()) + 3
        if layout == _pav.WEIGHTS_ALIGNED:
            w = np.concatenate([np.sort(np.round(rng.uniform(size=mm), 1))[::-1]
                                for mm in m])
        else:
            w = np.sort(np.round(rng.uniform(size=n), 1))[::-1].copy()
        eps = np.full(m.size, 10 ** rng.uniform(-2, 1))
        out = np.empty_like(X)
        perm, start = np.empty((2, X.size), np.int32)
        nb = np.zeros(m.size, np.int64)
        _pav.forward(X, offsets, eps, w, layout, 1.0, _pav.L2, False, out, perm, start, nb)
        s1, n1 = start.copy(), nb.copy()
        s2, n2 = start.astype(np.int64), nb.copy()
        _split_flat_blocks(offsets, s1, n1, w, layout)
        _split_flat_blocks(offsets, s2, n2, w, layout)
        np.testing.assert_array_equal(n1, n2)
        for r, lo in enumerate(offsets[:-1]):
            np.testing.assert_array_equal(s1[lo:lo + n1[r]], s2[lo:lo + n2[r]])
        split += int((n1 > nb).sum())
    assert split > 50  # (rows where flat blocks were split)


def test_kernel_exp_within_one_ulp_and_one_rounding():
    """The kl rank form's exp (a polynomial the compiler vectorises): within 1 ulp of
    NumPy's on [-708, 0], 0 below, and the vector loop and the one-at-a-time call
    round alike (tied entries get one of each and must come out equal)."""
    rng = np.random.default_rng(0)
    t = np.concatenate([-np.logspace(-300, np.log10(708.0), 20000),
                        -rng.uniform(0, 40, 20000), [0.0, -0.0, -708.0, -1e-300]])
    vector, scalar = _pav._exp_nonpositive(t)
    np.testing.assert_array_equal(vector, scalar)
    want = np.exp(t)
    assert np.all(np.abs(vector - want) <= np.spacing(want))
    assert vector[-4] == 1.0 and vector[-3] == 1.0
    for below in _pav._exp_nonpositive(np.array([-708.5, -1000.0, -1e20])):
        assert below.tolist() == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kl_rank_form_by_cells_equals_an_exp_per_merge(dtype):
    """kl rank forms keep their sums per cell of 8-16 eps (one exp per entry, in a
    vector loop); rows where |y| / eps passes 2^54 keep them per block (an exp per
    merge). The same problem posed both ways, y and y + 2^62 (exact: y holds multiples
    of 2^10, 2^62's ulp, and eps below 2^8 sends the shifted row to the second way),
    gives the same values. The weights fall fast, so blocks pool across gaps of many
    eps and across cells (asserted)."""
    rng = np.random.default_rng(7)
    n, n_rows = 40, 12
    k = rng.integers(-15, 15, size=(n_rows, n)).astype(np.float64)
    steps = np.where(rng.random((n_rows, n)) < 0.2, 10.0, 0.1)  # log w falls by these
    w = np.exp(84.0 - np.cumsum(steps, axis=1)).ravel()  # (within float32's range)
    offsets = np.arange(0, n * n_rows + 1, n, dtype=np.int64)
    pooled = 0
    for eps in (60.0, 200.0):  # z gaps of 17 and 5 per unit of k
        E = np.full(n_rows, eps)
        outs = []
        for shift in (0.0, 2.0**62):
            X = ((k * 2.0**10 + shift).astype(dtype)).ravel()
            if dtype is np.float32 and shift:
                continue
            out = np.empty_like(X)
            perm, start = np.empty(X.size, np.int32), np.empty(X.size, np.int32)
            nblocks = np.empty(n_rows, np.int64)
            _pav.forward(X, offsets, E, w, _pav.WEIGHTS_ALIGNED, 1.0, _pav.KL, False,
                         out, perm, start, nblocks)
            outs.append(out)
            pooled += int((nblocks < np.array([np.unique(r).size for r in k])).sum())
        for r in range(n_rows):  # against the reference, row by row
            wr = w[r * n:(r + 1) * n]
            want = _project_kl(k[r] * 2.0**10 / eps, wr)
            rtol = 1e-5 if dtype is np.float32 else 1e-10
            np.testing.assert_allclose(outs[0][r * n:(r + 1) * n], want, rtol=rtol)
        if len(outs) == 2:
            np.testing.assert_allclose(outs[1], outs[0], rtol=1e-12)
    assert pooled > 0


@pytest.mark.parametrize("kept", ["p4/3", "p3/2"])
def test_a_kept_pnorm_work_space_serves_stored_weights_of_another_form(kept):
    """A p-norm work space's per-block arrays start at 1024 blocks and grow as its rows
    need; the l2 and kl forms with stored weights (a real k) take R to be a row long,
    and the p4/3 rank form needs S3, which p3/2's has not. A p-norm work space kept by
    a call with derivatives is not reused by them unless it is (it was, and a row of
    more than 1024 blocks wrote past R's end)."""
    x = np.random.default_rng(0).standard_normal(20000)
    _pav.release_work_space()
    fresh, _ = skrank.vjp(skrank.soft_topk_mask, x, 2.5, regularization_strength=1e-9)
    fresh43, _ = skrank.vjp(skrank.soft_topk_mask, x, 2.5, regularization_strength=1e-9,
                            regularization="p4/3")
    skrank.vjp(skrank.soft_topk_mask, x, 2.5, regularization=kept,
               regularization_strength=1e6)
    after, fn = skrank.vjp(skrank.soft_topk_mask, x, 2.5, regularization_strength=1e-9)
    np.testing.assert_array_equal(after, fresh)
    assert np.isfinite(fn(np.ones_like(x))).all()
    skrank.vjp(skrank.soft_topk_mask, x, 2.5, regularization=kept,
               regularization_strength=1e6)
    after43, _ = skrank.vjp(skrank.soft_topk_mask, x, 2.5, regularization_strength=1e-9,
                            regularization="p4/3")
    np.testing.assert_array_equal(after43, fresh43)


def test_kl_tied_block_keeps_to_the_weights_range():
    # the mean of tied non-integer weights can round an ulp above the largest one
    out = np.empty(4)
    _pav.forward(np.array([1.0, 1.0, 1.0, 0.0]), np.array([0, 4], np.int64), np.array([1.0]),
                 np.array([0.1, 0.1, 0.1, 0.05]), _pav.WEIGHTS_SUFFIX, 1.0, _pav.KL, False,
                 out)
    assert out.max() <= 0.1 and out[:3].tolist() == [out[0]] * 3


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_p32_sort_blocks_solve_their_piecewise_quadratic(dtype):
    # a p3/2 sort block of k entries outputs phi(t - j h), phi(u) = u |u|, h = 1 / eps,
    # with sum over the block = its sum of y (design notes, section 13): the signed
    # square roots of its outputs are evenly spaced by h, across 0 where the block
    # holds values of both signs (centred rows, at the smallest strength of those
    # tried that pools each into one block); and y = (a, -a) pools to (h^2 / 4,
    # -h^2 / 4)
    rng = np.random.default_rng(17)
    for n in (2, 9, 50, 2000):
        y = rng.normal(size=n)
        y = (y - y.mean() if n > 2 else np.array([1.0, -1.0])).astype(dtype)
        out = np.empty(n, dtype)
        perm, start = np.empty(n, np.int32), np.empty(n, np.int32)
        nblocks = np.empty(1, np.int64)
        for eps in 10.0 ** np.arange(0, 7):
            _pav.forward(y, np.array([0, n]), np.array([eps]), None, _pav.WEIGHTS_RHO,
                         1.0, _pav.P32, True, out, perm, start, nblocks)
            if nblocks[0] == 1:
                break
        assert nblocks[0] == 1
        p = out.astype(np.float64)
        assert p[0] > 0 > p[-1]
        u = np.sign(p) * np.sqrt(np.abs(p))
        tol = 1e-6 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(np.diff(u), -1.0 / eps, rtol=tol * n)
        np.testing.assert_allclose(p.sum(), y.astype(np.float64).sum(), rtol=0,
                                   atol=tol * np.abs(y).sum())
        if n == 2:
            np.testing.assert_allclose(p, [0.25, -0.25], rtol=tol)
