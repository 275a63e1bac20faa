"""SoftRankTransformer: the exact per-value kernel against the brute-force definition
(design notes, section 8), its limits, inverse, and the scikit-learn estimator contract."""

import pathlib
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import sparse, stats
from sklearn.preprocessing import QuantileTransformer
from sklearn.utils.estimator_checks import parametrize_with_checks

from _reference import soft_rank as ref_soft_rank
import skrank
from skrank.preprocessing import SoftRankTransformer


def brute(quantiles, scale, strength, reg, x, soft_rank=ref_soft_rank):
    """The definition: x's soft rank in (reference..., x), rescaled to [0, 1]."""
    m = quantiles.shape[0]
    out = np.empty(x.shape)
    for j in range(x.shape[1]):
        for i in range(x.shape[0]):
            if np.isnan(x[i, j]):
                out[i, j] = np.nan
                continue
            z = np.append(quantiles[:, j], x[i, j])
            if strength == 0:
                r = stats.rankdata(z)[-1]
            else:
                r = soft_rank(z, strength * scale[j], reg)[-1]
            out[i, j] = (r - 1) / m
    return np.clip(out, 0, 1)


def fitted(X, **params):
    params.setdefault("n_quantiles", min(len(X), 1000))
    return SoftRankTransformer(**params).fit(X)


@parametrize_with_checks([
    SoftRankTransformer(),
    SoftRankTransformer(regularization="kl", output_distribution="normal",
                        regularization_strength=0.3),
    SoftRankTransformer(regularization_strength=0.0, n_quantiles=7),
])
def test_sklearn_compatible(estimator, check):
    check(estimator)


# ------------------------------------------------------------------ the definition
@pytest.mark.parametrize("reg", ["l2", "kl"])
@pytest.mark.parametrize("strength", [0.0, 0.05, 0.5, 1.0, 3.0, 50.0, 1e4])
def test_matches_brute_force(reg, strength):
    rng = np.random.default_rng(int(strength * 10) + (reg == "kl"))
    X = np.column_stack([
        rng.normal(size=60),
        np.round(rng.normal(size=60), 1),  # ties in the reference
        rng.exponential(size=60) * 1e3,  # skewed, other units
    ])
    tr = fitted(X, regularization_strength=strength, regularization=reg, n_quantiles=40)
    Xt = np.vstack([
        rng.normal(size=(30, 3)) * [2, 2, 2e3],
        tr.quantiles_[::7],  # ties with the reference
        [[-50, -50, -5e5], [50, 50, 5e5], [1e300, -1e300, 0]],  # far outside
    ])
    got = tr.transform(Xt)
    want = brute(tr.quantiles_, tr.scale_, strength, reg, Xt)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    assert got.min() >= 0 and got.max() <= 1


@given(st.lists(st.integers(-5, 5), min_size=1, max_size=25),
       st.lists(st.integers(-15, 15), min_size=1, max_size=10),
       st.sampled_from([0.0, 0.01, 0.3, 1.0, 4.0, 100.0]),
       st.sampled_from(["l2", "kl"]))
def test_matches_brute_force_property(ref, xs, strength, reg):
    ref = np.asarray(ref, dtype=float)[:, None] / 2
    tr = fitted(ref, regularization_strength=strength, regularization=reg)
    x = np.asarray(xs, dtype=float)[:, None] / 3
    np.testing.assert_allclose(tr.transform(x),
                               brute(tr.quantiles_, tr.scale_, strength, reg, x),
                               rtol=0, atol=1e-12)


def test_strength_zero_is_mid_distribution():
    X = np.array([[0.0], [1.0], [1.0], [2.0], [5.0]])
    tr = fitted(X, regularization_strength=0.0)
    out = tr.transform([[-1.0], [0.0], [0.5], [1.0], [3.0], [5.0], [9.0]]).ravel()
    np.testing.assert_array_equal(out, [0.0, 0.1, 0.2, 0.4, 0.8, 0.9, 1.0])


def test_quantiles_as_quantile_transformer():
    rng = np.random.default_rng(0)
    X = rng.lognormal(size=(3000, 4))
    X[rng.random(X.shape) < 0.1] = np.nan
    kw = dict(n_quantiles=100, subsample=1000, random_state=3)
    ours = SoftRankTransformer(**kw).fit(X)
    theirs = QuantileTransformer(**kw).fit(X)
    np.testing.assert_allclose(ours.quantiles_, theirs.quantiles_, rtol=1e-14)
    np.testing.assert_array_equal(ours.references_, theirs.references_)
    assert ours.n_quantiles_ == theirs.n_quantiles_ == 100
    assert (np.diff(ours.quantiles_, axis=0) >= 0).all()


def test_scale_is_reference_spacing():
    rng = np.random.default_rng(1)
    z = rng.normal(size=500)
    X = np.column_stack([z, 10 * z + 3,
                         np.r_[np.zeros(450), np.arange(50.0)], np.full(500, 3.0)])
    tr = fitted(X, n_quantiles=101)
    q = tr.quantiles_
    iqr = np.percentile(q, 75, axis=0) - np.percentile(q, 25, axis=0)
    np.testing.assert_allclose(tr.scale_[:2], iqr[:2] / 50)
    assert tr.scale_[1] == pytest.approx(10 * tr.scale_[0], rel=1e-12)
    assert tr.scale_[2] == pytest.approx(49 / 100)  # IQR 0: mean spacing of the range
    assert tr.scale_[3] == 1.0  # constant feature
    Xt = np.array([[0, 0, 0, 3.0], [0, 0, 0, 2.0], [0, 0, 0, 4.0], [0, 0, 0, 300.0]])
    out = tr.transform(Xt)
    np.testing.assert_allclose(out, brute(q, tr.scale_, 1.0, "l2", Xt), atol=1e-12)
    np.testing.assert_array_equal(out[:, 3], [0.5, 0.490196078431372531, 0.509803921568627416,
                                              1.0])
    hard = fitted(X, n_quantiles=101, regularization_strength=0.0)
    np.testing.assert_array_equal(hard.transform(Xt)[:, 3], [0.5, 0.0, 1.0, 1.0])
    # strength is scale-free: rescaling a feature does not change its map
    a = fitted(X[:, :1], regularization_strength=0.7).transform(X[:5, :1])
    b = fitted(1e-6 * X[:, :1], regularization_strength=0.7).transform(1e-6 * X[:5, :1])
    np.testing.assert_allclose(a, b, atol=1e-12)


@pytest.mark.parametrize("reg", ["l2", "kl"])
def test_map_is_monotone_continuous_and_limits(reg):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(400, 1))
    grid = np.linspace(-40, 40, 16001)[:, None]
    prev = None
    for strength in (0.1, 1.0, 10.0):
        tr = fitted(X, regularization_strength=strength, regularization=reg)
        u = tr.transform(grid)[:, 0]
        assert (np.diff(u) >= 0).all()
        # continuous: the slope is at most 1 / (eps m) for l2 (x's block of C entries
        # moves its rank by (1 - 1/C) / eps), (m + 1) / (eps m) for kl (rank W p of
        # weight W, share p: slope W p (1 - p) / eps, and W p <= m + 1)
        eps, m = strength * tr.scale_[0], tr.n_quantiles_
        slope = 1 / (eps * m) if reg == "l2" else (m + 1) / (eps * m)
        assert np.abs(np.diff(u)).max() <= slope * 0.005 + 1e-12
        # flat tails beyond the pooled reference, at 0 and 1
        assert tr.transform([[-1e6], [1e6]]).ravel().tolist() == [0.0, 1.0]
        if prev is not None:  # stronger smoothing: flatter middle
            mid = slice(7900, 8100)
            assert np.ptp(u[mid]) < np.ptp(prev[mid])
        prev = u
    # huge strength: everything pools, the map is 1/2 + (x - mean) / (eps m) near the center
    tr = fitted(X, regularization_strength=1e6, regularization="l2")
    eps = 1e6 * tr.scale_[0]
    x = np.array([[-1.0], [0.0], [1.0]])
    m = tr.n_quantiles_
    want = 0.5 + (1 - 1 / (m + 1)) * (x[:, 0] - tr.quantiles_.mean()) / eps / m
    np.testing.assert_allclose(tr.transform(x)[:, 0], want, atol=1e-12)


def test_kl_smooths_the_low_end_more():
    X = np.arange(200.0)[:, None]
    kl = fitted(X, regularization="kl", regularization_strength=0.3)
    assert kl.scale_[0] == pytest.approx(100.0)  # one spacing times n_quantiles_ / 2
    hard = fitted(X, regularization_strength=0.0)
    # pooling threshold about eps * log(rho_i / rho_{i+1}): 8.6 spacings at rank 3,
    # 0.15 at 198 (0.3 at the median, as l2's 0.3)
    d_lo = abs(kl.transform([[2.25]]) - hard.transform([[2.25]]))[0, 0]
    d_hi = abs(kl.transform([[197.25]]) - hard.transform([[197.25]]))[0, 0]
    assert d_lo > 1e-3 and d_hi == 0
    l2 = fitted(X, regularization="l2", regularization_strength=0.2)
    assert abs(l2.transform([[2.25]]) - hard.transform([[2.25]]))[0, 0] == 0


# ------------------------------------------------------------------------ inverse
@pytest.mark.parametrize("reg", ["l2", "kl"])
@pytest.mark.parametrize("strength", [0.2, 1.0, 5.0])
@pytest.mark.parametrize("dist", ["uniform", "normal"])
def test_inverse_transform(reg, strength, dist):
    rng = np.random.default_rng(4)
    X = np.column_stack([rng.normal(size=300), np.round(rng.gamma(2, size=300), 1)])
    tr = fitted(X, regularization_strength=strength, regularization=reg, n_quantiles=100,
                output_distribution=dist)
    U = np.linspace(0, 1, 201)[:, None].repeat(2, axis=1)
    if dist == "normal":
        U = stats.norm.ppf(np.clip(U, 1e-7, 1 - 1e-7))
    back = tr.transform(tr.inverse_transform(U))
    np.testing.assert_allclose(back, U, atol=1e-9 if dist == "normal" else 1e-12)
    # where the map increases, the inverse gives the value back
    Xt = rng.normal(size=(200, 2)) * [1, 2] + [0, 2]
    Ut = tr.transform(Xt)
    h = 1e-6
    increasing = (tr.transform(Xt + h) > tr.transform(Xt - h))
    again = tr.inverse_transform(Ut)
    np.testing.assert_allclose(again[increasing], Xt[increasing], atol=1e-8)
    # on flat parts it returns a value on the same flat part
    np.testing.assert_allclose(tr.transform(again), Ut, atol=1e-9)


def test_inverse_flat_parts_and_tails():
    X = np.array([[0.0], [1.0], [1.0], [2.0], [5.0]])
    hard = fitted(X, regularization_strength=0.0)
    u = [[0.0], [0.1], [0.15], [0.2], [0.4], [0.8], [1.0]]
    np.testing.assert_array_equal(hard.inverse_transform(u).ravel(),
                                  [0.0, 0.0, 0.0, 0.5, 1.0, 3.5, 5.0])
    soft = fitted(X, regularization_strength=0.01)  # eps = 0.01 * spacing: flat gaps
    gap = soft.inverse_transform([[0.6]])[0, 0]  # flat between 1 and 2, and 2 and 5
    assert 1.0 < gap < 2.0 and soft.transform([[gap]])[0, 0] == pytest.approx(0.6)
    lo, hi = soft.inverse_transform([[0.0], [1.0]]).ravel()
    # the tails: the finite end of the flat part, where the ramp starts
    assert soft.transform([[lo]])[0, 0] == pytest.approx(0, abs=1e-12) and -1 < lo < 0
    assert soft.transform([[lo - 1e-9]])[0, 0] == 0 < soft.transform([[lo + 1e-9]])[0, 0]
    assert soft.transform([[hi]])[0, 0] == pytest.approx(1, abs=1e-12) and 5 < hi < 6
    assert soft.transform([[hi + 1e-9]])[0, 0] == 1 > soft.transform([[hi - 1e-9]])[0, 0]


@pytest.mark.parametrize("reg", ["l2", "kl"])
@pytest.mark.parametrize("strength", [0.3, 1.0, 3.0])
def test_round_trip_within_half_the_reference_gap(reg, strength):
    # a flat part lies inside one gap of the reference and the inverse returns its
    # middle, so the round trip moves a value by at most half the gap around it
    rng = np.random.default_rng(11)
    X = rng.lognormal(sigma=1.2, size=(300, 1))  # wide gaps in the right tail
    tr = fitted(X[:200], regularization_strength=strength, regularization=reg)
    q = tr.quantiles_[:, 0]
    x = X[200:, 0][(X[200:, 0] >= q[0]) & (X[200:, 0] <= q[-1])]
    back = tr.inverse_transform(tr.transform(x[:, None]))[:, 0]
    i = np.clip(np.searchsorted(q, x, side="right"), 1, q.size - 1)
    assert (np.abs(back - x) <= (q[i] - q[i - 1]) / 2 * (1 + 1e-12)).all()
    if reg == "l2" and strength < 3:  # some values do land on flat parts
        assert (np.abs(back - x) > 1e-6).any()


@pytest.mark.parametrize("reg", ["l2", "kl"])
def test_inverse_of_a_flat_level_is_its_middle(reg):
    # two far reference values: x between them is alone on a flat part at u = 1/2
    # (symmetric about 5 for l2); the inverse returns its middle, where a Newton step
    # on the neighbouring ramp would land on one of its ends
    tr = fitted(np.array([[0.0], [10.0]]), regularization_strength=0.1, regularization=reg)
    grid = np.linspace(0.0, 10.0, 100_001)
    flat = grid[tr.transform(grid[:, None])[:, 0] == 0.5]
    assert flat[0] < 4 and flat[-1] > 6
    middle = tr.inverse_transform([[0.5]])[0, 0]
    assert middle == pytest.approx((flat[0] + flat[-1]) / 2, abs=1e-4)
    if reg == "l2":
        assert middle == pytest.approx(5.0, abs=1e-12)


def test_ties_map_to_the_middle_of_their_mass():
    # 70% zeros: x = 0 pools with the tied block and maps to the middle of the mass,
    # 0.35 at strength 0 (the block also pulls in its nearest neighbours at a positive
    # strength); QuantileTransformer maps it to 0, and 0.05 to 0.7
    X = np.r_[np.zeros(70), 10.0 * np.arange(1, 31)][:, None]
    assert fitted(X, regularization_strength=0.0).transform([[0.0]])[0, 0] == 0.35
    tr = fitted(X)
    assert tr.transform([[0.0]])[0, 0] == pytest.approx(0.35, abs=0.01)
    lipschitz = 1 / (tr.n_quantiles_ * tr.regularization_strength * tr.scale_[0])
    step = tr.transform([[0.05]])[0, 0] - tr.transform([[0.0]])[0, 0]
    assert 0 < step <= 0.05 * lipschitz
    qt = QuantileTransformer(n_quantiles=100).fit(X)
    assert qt.transform([[0.0]])[0, 0] == 0.0 and qt.transform([[0.05]])[0, 0] > 0.69


def test_bounds_hold_on_real_data(capsys, monkeypatch):
    """benchmarks/bench_transformer_real.py, one split: the slope bound and the
    round-trip bound hold on every held-out value of six real data sets."""
    pytest.importorskip("statsmodels")
    import runpy

    bench = pathlib.Path(__file__).parents[1] / "benchmarks"
    monkeypatch.syspath_prepend(str(bench))
    runpy.run_path(str(bench / "bench_transformer_real.py"))["main"](["--splits", "1"])
    out = capsys.readouterr().out
    assert "## fair: statsmodels fair, affairs, 6366 x 1" in out
    assert out.count(": 0 violations") == 2 and "## Errors" not in out


# ------------------------------------------------------------------ estimator API
def test_nan_ignored_at_fit_kept_at_transform():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(100, 2))
    Xn = X.copy()
    Xn[::3, 0] = np.nan
    a = fitted(Xn, n_quantiles=20)
    b = fitted(X[~np.isnan(Xn[:, 0])], n_quantiles=20)
    np.testing.assert_allclose(a.quantiles_[:, 0], b.quantiles_[:, 0])
    out = a.transform(Xn)
    assert np.isnan(out[::3, 0]).all() and not np.isnan(np.delete(out, np.s_[::3], 0)).any()
    allnan = fitted(np.c_[X[:, 0], np.full(100, np.nan)], n_quantiles=20)
    assert np.isnan(allnan.transform(X)[:, 1]).all()
    assert np.isnan(allnan.inverse_transform(np.full((3, 2), 0.5))[:, 1]).all()


def test_dtype_copy_layout():
    rng = np.random.default_rng(6)
    X = rng.normal(size=(50, 3))
    tr = fitted(X, n_quantiles=20)
    out32 = tr.transform(X.astype(np.float32))
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, tr.transform(X), atol=1e-6)
    Xf = np.asfortranarray(X[::2])
    ro = X[::2].copy()
    ro.flags.writeable = False
    np.testing.assert_array_equal(tr.transform(Xf), tr.transform(ro))
    Xc = X.copy()
    tr.transform(Xc)
    np.testing.assert_array_equal(Xc, X)  # copy=True leaves the input alone
    inplace = fitted(X, n_quantiles=20, copy=False)
    res = inplace.transform(Xc)
    assert res is Xc or np.shares_memory(res, Xc)
    assert tr.transform(np.empty((0, 3))).shape == (0, 3)


def test_feature_names_and_pandas_output():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"a": np.arange(10.0), "b": np.arange(10.0) ** 2})
    tr = fitted(df).set_output(transform="pandas")
    out = tr.transform(df)
    assert list(out.columns) == ["a", "b"] and list(tr.get_feature_names_out()) == ["a", "b"]
    np.testing.assert_array_equal(tr.feature_names_in_, ["a", "b"])


def test_bad_input():
    X = np.arange(20.0).reshape(10, 2)
    with pytest.raises(ValueError, match="non-negative sparse"):
        SoftRankTransformer().fit(sparse.csr_matrix(X - 5.0))
    with pytest.raises(ValueError, match="non-negative sparse"):
        fitted(X).transform(sparse.csr_matrix(-X))
    with pytest.raises(ValueError, match="regularization_strength"):
        SoftRankTransformer(regularization_strength=-1.0).fit(X)
    with pytest.raises(ValueError, match=r"range \[0.0, inf\)"):
        SoftRankTransformer(regularization_strength=np.inf).fit(X)
    with pytest.raises(ValueError, match="regularization"):
        SoftRankTransformer(regularization="l1").fit(X)
    with pytest.raises(ValueError, match="greater than the number of samples"):
        SoftRankTransformer(n_quantiles=100, subsample=10).fit(X)
    with pytest.raises(ValueError, match="infinity"):
        fitted(X).transform(np.array([[np.inf, 0.0]]))
    with pytest.raises(ValueError, match="features"):
        fitted(X).transform(np.zeros((3, 3)))
    with pytest.raises(ValueError):
        fitted(X).transform(np.array([["a", "b"]]))
    with warnings.catch_warnings():  # fewer samples than quantiles: no warning
        warnings.simplefilter("error")
        assert SoftRankTransformer(n_quantiles=50).fit(X).n_quantiles_ == len(X) < 50


def test_normal_output_clipped_as_quantile_transformer():
    X = np.arange(100.0)[:, None]
    ours = fitted(X, output_distribution="normal", regularization_strength=0.5)
    theirs = QuantileTransformer(n_quantiles=100, output_distribution="normal").fit(X)
    far = np.array([[-1e6], [1e6]])
    np.testing.assert_allclose(ours.transform(far), theirs.transform(far))
    assert ours.transform([[49.5]])[0, 0] == pytest.approx(0.0, abs=1e-12)


# ---------------------------------------------------------- extreme strengths, scales
@pytest.mark.parametrize("reg", ["l2", "kl"])
@pytest.mark.parametrize("strength", [1e-4, 1e-9, 1e-14, 1e-200])
def test_tiny_strengths_exact_near_the_reference(reg, strength):
    # statistics anchored within blocks: no x / eps is formed, nothing rounds away.
    # The plain oracle of tests/_reference.py forms x / eps and loses digits here, so
    # the reference is skrank.soft_rank (checked against exact rational arithmetic)
    def exact(z, eps, reg):
        return skrank.soft_rank(z, regularization_strength=eps, regularization=reg)

    rng = np.random.default_rng(7)
    tr = fitted(rng.normal(size=(2000, 1)), regularization_strength=strength,
                regularization=reg, n_quantiles=200)
    q, eps = tr.quantiles_[:, 0], strength * tr.scale_[0]
    x = np.r_[q[::9] + eps * rng.uniform(-3, 3, size=q[::9].size), q[::13], -10, 10][:, None]
    np.testing.assert_allclose(tr.transform(x), brute(tr.quantiles_, tr.scale_, strength,
                                                      reg, x, exact), rtol=0, atol=1e-12)
    assert tr.transform([[-10.0], [10.0]]).ravel().tolist() == [0.0, 1.0]


def test_extreme_scales_and_strengths():
    rng = np.random.default_rng(8)
    X = rng.normal(size=(300, 1))
    X[0] = 1e290  # one huge value must not change the map of the others
    tr = fitted(X, n_quantiles=100)
    x = np.array([[0.001], [0.5], [1e300]])
    np.testing.assert_allclose(tr.transform(x), brute(tr.quantiles_, tr.scale_, 1.0, "l2", x),
                               atol=1e-12)
    # strength * scale_ overflows: the infinite-strength limit, everything at 1/2
    big = fitted(np.arange(100.0)[:, None] * 1e10, regularization_strength=1e300)
    np.testing.assert_array_equal(big.transform([[0.0], [5e11], [-1e300]]).ravel(), 0.5)
    # near the float64 limits
    huge = fitted(np.array([[-1.7e308], [-1e308], [0.0], [1e308], [1.7e308]]))
    out = huge.transform([[-1.7e308], [0.0], [1.7e308]]).ravel()
    assert np.isfinite(out).all() and (np.diff(out) > 0).all()


def test_float16_and_inverse_in_place_at_strength_zero():
    X = np.arange(20.0).reshape(10, 2)
    tr = fitted(X)
    np.testing.assert_allclose(tr.transform(X.astype(np.float16)), tr.transform(X))
    hard = fitted(X, regularization_strength=0.0, copy=False)
    U = np.array([[0.3, 0.7], [0.5, 0.5]])
    want = fitted(X, regularization_strength=0.0).inverse_transform(U)
    np.testing.assert_array_equal(hard.inverse_transform(U.copy()), want)
    assert np.isfinite(want).all()


# ------------------------------------------------------------------------ sample weights
def test_integer_weights_are_repeated_samples():
    rng = np.random.default_rng(70)
    X = rng.normal(size=(60, 3))
    X[5, 1] = np.nan
    w = rng.integers(0, 4, size=60)
    for strength in (0.0, 1.0):
        est = dict(n_quantiles=40, regularization_strength=strength)
        weighted = SoftRankTransformer(**est).fit(X, sample_weight=w)
        repeated = SoftRankTransformer(**est).fit(np.repeat(X, w, axis=0))
        assert weighted.n_quantiles_ == repeated.n_quantiles_ == 40
        np.testing.assert_allclose(weighted.quantiles_, repeated.quantiles_, rtol=0,
                                   atol=1e-14)
        Z = rng.normal(size=(30, 3))
        np.testing.assert_allclose(weighted.transform(Z), repeated.transform(Z),
                                   atol=1e-12)
    # fewer repeated samples than quantiles: as many quantiles as repeated samples
    few = SoftRankTransformer().fit(X[:4], sample_weight=[1, 2, 3, 0])
    assert few.n_quantiles_ == 6


def test_zero_and_fractional_weights():
    rng = np.random.default_rng(71)
    X = rng.normal(size=(80, 2))
    w = rng.uniform(0.1, 3.0, size=80)
    w[:10] = 0.0
    base = SoftRankTransformer(n_quantiles=50).fit(X, sample_weight=w)
    # weight 0 is removal; only the ratios of fractional weights count
    np.testing.assert_allclose(
        SoftRankTransformer(n_quantiles=50).fit(X[10:], sample_weight=w[10:]).quantiles_,
        base.quantiles_, atol=1e-14)
    for factor in (1e-300, 1.0 / w.sum(), 1e300 / w.max()):
        np.testing.assert_allclose(SoftRankTransformer(n_quantiles=50).fit(
            X, sample_weight=factor * w).quantiles_, base.quantiles_, atol=1e-13)
    # heavier samples pull the quantiles toward them
    heavy = np.where(X[:, 0] > 1.0, 100.0, 1.0)
    shifted = SoftRankTransformer(n_quantiles=50).fit(X, sample_weight=heavy)
    assert np.median(shifted.quantiles_[:, 0]) > np.median(base.quantiles_[:, 0]) + 0.5


@pytest.mark.parametrize("sample_weight, match", [
    (-np.ones(20), "non-negative"),
    (np.full(20, np.inf), "finite"),
    (np.ones(19), "shape"),
    (np.zeros(20), "zero everywhere"),
    (np.ones(20) + 1j, "real numbers"),
])
def test_bad_sample_weight(sample_weight, match):
    X = np.random.default_rng(72).normal(size=(20, 2))
    with pytest.raises(ValueError, match=match):
        SoftRankTransformer().fit(X, sample_weight=sample_weight)


# ----------------------------------------------------------------------- sparse input
def sparse_data(seed=73, density=0.4):
    rng = np.random.default_rng(seed)
    X = np.abs(rng.normal(size=(300, 3)))
    X[rng.random(X.shape) > density] = 0.0
    return X


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("ignore", [False, True])
def test_sparse_input_as_quantile_transformer(fmt, ignore):
    from sklearn.preprocessing import QuantileTransformer

    X = sparse_data()
    S = getattr(sparse, f"{fmt}_matrix")(X)
    est = SoftRankTransformer(n_quantiles=60, ignore_implicit_zeros=ignore).fit(S)
    ref = QuantileTransformer(n_quantiles=60, ignore_implicit_zeros=ignore).fit(S)
    np.testing.assert_allclose(est.quantiles_, ref.quantiles_, rtol=0, atol=1e-13)
    # the stored values are mapped as the dense path maps them; zeros stay zeros
    out = est.transform(S)
    assert sparse.issparse(out) and out.format == "csc" and out.nnz == S.nnz
    stored = X != 0
    dense = SoftRankTransformer(n_quantiles=60).fit(X) if not ignore else None
    if dense is not None:
        np.testing.assert_allclose(dense.quantiles_, est.quantiles_, atol=1e-13)
    np.testing.assert_allclose(out.toarray()[stored], est.transform(X)[stored],
                               atol=1e-14)
    assert np.all(out.toarray()[~stored] == 0.0)
    # the inverse maps the stored values back as the dense inverse does
    back = est.inverse_transform(out)
    assert sparse.issparse(back) and back.nnz == S.nnz
    np.testing.assert_allclose(back.toarray()[stored],
                               est.inverse_transform(est.transform(X))[stored],
                               atol=1e-12)
    # the input is not modified
    np.testing.assert_array_equal(S.toarray(), X)


def test_sparse_with_normal_output_and_weights():
    X = sparse_data(74)
    S = sparse.csc_matrix(X)
    w = np.random.default_rng(75).integers(0, 3, size=300)
    est = SoftRankTransformer(n_quantiles=50, output_distribution="normal").fit(
        S, sample_weight=w)
    dense = SoftRankTransformer(n_quantiles=50, output_distribution="normal").fit(
        X, sample_weight=w)
    np.testing.assert_allclose(est.quantiles_, dense.quantiles_, atol=1e-13)
    out = est.transform(S)
    stored = X != 0
    np.testing.assert_allclose(out.toarray()[stored], dense.transform(X)[stored],
                               atol=1e-12)
    back = est.inverse_transform(out)  # normal scores may be negative: accepted
    np.testing.assert_allclose(back.toarray()[stored],
                               dense.inverse_transform(dense.transform(X))[stored],
                               atol=1e-10)
