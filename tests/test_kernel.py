"""The kernel's rank form accepts any descending w, not only (n, ..., 1): with
w = (1, ..., 1, 0, ..., 0) it is the projection onto the capped simplex (the soft top-k
mask of DESIGN section 13), which later operators build on."""

import numpy as np
import pytest

import _reference as ref
from skrank import _pav


def _project_l2(z, w):
    """Reference P(z, w) for w descending: sort, PAV, cancellation-free blocks."""
    order = np.argsort(-z, kind="stable")
    s = z[order]
    sizes = ref.pav_blocks(s, w, "l2")
    out = np.empty_like(z)
    out[order] = ref.blockwise_values(s, w, sizes, "l2")
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
    perm = np.empty(X.shape, np.int64)
    start = np.empty(X.shape, np.int64)
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
