"""skrank.isotonic_regression against scipy.optimize.isotonic_regression."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.exceptions import AxisError
from scipy.optimize import isotonic_regression as scipy_iso

import skrank


def _scipy_rows(y, w, increasing, axis):
    y = np.asarray(y, dtype=np.float64)
    ym = np.moveaxis(y, axis, -1)
    wm = None if w is None else np.moveaxis(np.asarray(w, dtype=np.float64), axis, -1)
    out = np.empty_like(ym)
    for idx in np.ndindex(ym.shape[:-1]):
        kw = {} if wm is None else {"weights": wm[idx]}
        out[idx] = scipy_iso(ym[idx], increasing=increasing, **kw).x
    return np.moveaxis(out, -1, axis)


def _close(got, want):
    want = np.asarray(want, dtype=np.float64)
    scale = 1.0 + (np.abs(want).max() if want.size else 0.0)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * scale)


@pytest.mark.parametrize("increasing", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_matches_scipy_1d(increasing, weighted):
    rng = np.random.default_rng(200)
    for n in (0, 1, 2, 3, 5, 10, 31):
        for _ in range(5):
            y = rng.normal(size=n) + (0.1 if increasing else -0.1) * np.arange(n)
            if n > 2:
                y[rng.choice(n, size=n // 2, replace=False)] = rng.choice([-1.0, 0.0, 1.0])
            w = rng.uniform(0.1, 5.0, size=n) if weighted else None
            got = skrank.isotonic_regression(y, weights=w, increasing=increasing)
            assert isinstance(got, np.ndarray) and got.shape == y.shape
            if n:
                _close(got, scipy_iso(y, increasing=increasing,
                                      **({} if w is None else {"weights": w})).x)
                d = np.diff(got)
                assert np.all(d >= -1e-12) if increasing else np.all(d <= 1e-12)


def test_default_is_increasing_and_unweighted():
    y = np.array([3.0, 1.0, 2.0, 0.0, 5.0])
    _close(skrank.isotonic_regression(y), scipy_iso(y).x)
    _close(skrank.isotonic_regression(y), [1.5, 1.5, 1.5, 1.5, 5.0])
    _close(skrank.isotonic_regression(y, increasing=False), scipy_iso(y, increasing=False).x)
    _close(skrank.isotonic_regression(y, increasing=False), [3.0, 2.0, 2.0, 2.0, 2.0])


@pytest.mark.parametrize("increasing", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape,axis", [((4, 7), -1), ((4, 7), 0), ((2, 3, 5), 1),
                                        ((2, 3, 5), 0), ((2, 3, 5), 2), ((2, 3, 5), -2)])
def test_batched_along_axis(increasing, weighted, shape, axis):
    rng = np.random.default_rng(201)
    y = rng.normal(size=shape)
    y[y > 0.8] = 0.8  # ties
    w = rng.uniform(0.2, 3.0, size=shape) if weighted else None
    got = skrank.isotonic_regression(y, weights=w, increasing=increasing, axis=axis)
    assert got.shape == y.shape
    _close(got, _scipy_rows(y, w, increasing, axis))


@given(st.lists(st.one_of(st.sampled_from([-1.0, 0.0, 0.5, 2.0]),
                          st.floats(-100, 100, allow_nan=False)), min_size=1, max_size=20),
       st.booleans(), st.data())
def test_matches_scipy_hypothesis(ys, increasing, data):
    y = np.array(ys)
    w = None
    if data.draw(st.booleans()):
        w = np.array(data.draw(st.lists(st.floats(0.01, 100.0), min_size=y.size,
                                        max_size=y.size)))
    got = skrank.isotonic_regression(y, weights=w, increasing=increasing)
    want = scipy_iso(y, increasing=increasing, **({} if w is None else {"weights": w})).x
    _close(got, want)


def test_list_and_int_inputs():
    got = skrank.isotonic_regression([3, 1, 2])
    assert isinstance(got, np.ndarray)
    _close(got, [2.0, 2.0, 2.0])
    got = skrank.isotonic_regression([[3.0, 1.0], [0.0, 4.0]], weights=[[1.0, 3.0], [2.0, 2.0]],
                                     axis=0)
    _close(got, [[1.0, 1.0], [1.0, 4.0]])


def test_empty_and_single():
    for shape in ((0,), (3, 0)):
        assert skrank.isotonic_regression(np.empty(shape)).shape == shape
    np.testing.assert_array_equal(skrank.isotonic_regression(np.array([4.5])), [4.5])


def test_inputs_not_modified():
    rng = np.random.default_rng(202)
    y = rng.normal(size=(3, 6))
    w = rng.uniform(0.5, 2.0, size=(3, 6))
    yk, wk = y.copy(), w.copy()
    y.flags.writeable = False
    w.flags.writeable = False
    out = skrank.isotonic_regression(y, weights=w, axis=0)
    out2 = skrank.isotonic_regression(y[:, ::2], weights=w[:, ::2])
    np.testing.assert_array_equal(y, yk)
    np.testing.assert_array_equal(w, wk)
    assert not np.shares_memory(out, y)
    _close(out2, _scipy_rows(yk[:, ::2], wk[:, ::2], True, -1))


def test_bad_weights():
    y = np.array([[1.0, 0.0, 2.0], [3.0, 1.0, 0.5]])
    for bad in (0.0, -1.0, np.nan, np.inf):
        w = np.ones_like(y)
        w[1, 1] = bad
        with pytest.raises(ValueError):
            skrank.isotonic_regression(y, weights=w)
    for shape in ((2,), (2, 1), (3, 2), (1, 2, 3)):
        with pytest.raises(ValueError):
            skrank.isotonic_regression(y, weights=np.ones(shape))


def test_1d_weights_of_the_axis_length_are_shared_by_every_row():
    # documented: weights of y's shape, or 1-D of the axis length (shared by every row)
    rng = np.random.default_rng(3)
    y = rng.normal(size=(4, 6))
    w = rng.uniform(0.5, 2.0, size=6)
    got = skrank.isotonic_regression(y, weights=w)
    want = skrank.isotonic_regression(y, weights=np.broadcast_to(w, y.shape))
    np.testing.assert_array_equal(got, want)
    got0 = skrank.isotonic_regression(y.T, weights=w, axis=0)
    np.testing.assert_array_equal(got0, want.T)
    with pytest.raises(ValueError):
        skrank.isotonic_regression(y, weights=np.ones(4))  # length of the other axis


def test_bad_axis():
    with pytest.raises(AxisError):
        skrank.isotonic_regression(np.ones((2, 3)), axis=2)
