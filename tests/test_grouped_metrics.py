"""Ranking metrics per query (groups=): against a loop over scipy, query by query."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import kendalltau, spearmanr

import skrank
from skrank.metrics import kendall_tau, make_ndcg_scorer, soft_ndcg, soft_spearman


def loop(statistic, y_true, y_pred, groups):
    """The mean over the queries where the statistic is defined, one scipy call each."""
    values = []
    for q in np.unique(groups):
        t, p = y_true[groups == q], y_pred[groups == q]
        if len(t) < 2 or np.ptp(t) == 0 or np.ptp(p) == 0:
            continue
        values.append(statistic(t, p).statistic)
    return np.mean(values) if values else np.nan


def ndcg_loop(y_true, y_pred, groups, k=None):
    """The mean of sklearn.metrics.ndcg_score over the defined queries, one by one."""
    from sklearn.metrics import ndcg_score

    class Value:
        def __init__(self, statistic):
            self.statistic = statistic

    return loop(lambda t, p: Value(ndcg_score([t], [p], k=k)), y_true, y_pred, groups)


def learning_to_rank(seed, n=600, n_queries=80):
    """Long-format data: integer relevance (ties), scores with ties, queries of random
    sizes (some of one document, some constant), shuffled."""
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, n_queries, size=n)
    y_true = rng.integers(0, 4, size=n).astype(float)
    y_pred = np.round(y_true + rng.normal(size=n), 1)
    y_true[groups == 3] = 2.0  # constant relevance
    y_pred[groups == 5] = 0.5  # constant scores
    return y_true, y_pred, groups


@pytest.mark.parametrize("seed", range(4))
def test_equal_to_a_loop_over_scipy(seed):
    y_true, y_pred, groups = learning_to_rank(seed)
    assert soft_spearman(y_true, y_pred, groups=groups, regularization_strength=0.0) == \
        pytest.approx(loop(spearmanr, y_true, y_pred, groups), abs=1e-13)
    assert kendall_tau(y_true, y_pred, groups=groups) == \
        pytest.approx(loop(kendalltau, y_true, y_pred, groups), abs=1e-13)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 3), st.integers(-3, 3)),
                min_size=1, max_size=40))
def test_equal_to_a_loop_on_any_small_data(rows):
    groups, y_true, y_pred = (np.array(c, dtype=float) for c in zip(*rows))
    want_rho = loop(spearmanr, y_true, y_pred, groups)
    want_tau = loop(kendalltau, y_true, y_pred, groups)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # no defined query: NaN
        rho = soft_spearman(y_true, y_pred, groups=groups, regularization_strength=0.0)
        tau = kendall_tau(y_true, y_pred, groups=groups)
    np.testing.assert_allclose([rho, tau], [want_rho, want_tau], atol=1e-13)


def test_long_queries_and_kendall_without_groups():
    # queries longer than the pairwise blocks go through scipy; one query is scipy's
    rng = np.random.default_rng(7)
    groups = np.repeat([0, 1, 2], [500, 30, 200])
    y_true = rng.integers(0, 10, size=730).astype(float)
    y_pred = y_true + rng.normal(size=730)
    assert kendall_tau(y_true, y_pred, groups=groups) == \
        pytest.approx(loop(kendalltau, y_true, y_pred, groups), abs=1e-13)
    assert kendall_tau(y_true, y_pred) == pytest.approx(
        kendalltau(y_true, y_pred).statistic, abs=1e-13)


def test_order_of_the_samples_and_labels_of_the_queries_do_not_matter():
    y_true, y_pred, groups = learning_to_rank(8)
    perm = np.random.default_rng(9).permutation(len(groups))
    labels = np.array([f"query-{q}" for q in groups])
    for kw in ({"regularization_strength": 0.0}, {}):
        base = soft_spearman(y_true, y_pred, groups=groups, **kw)
        assert soft_spearman(y_true[perm], y_pred[perm], groups=labels[perm], **kw) == \
            pytest.approx(base, abs=1e-13)
    assert kendall_tau(y_true[perm], y_pred[perm], groups=labels[perm]) == \
        pytest.approx(kendall_tau(y_true, y_pred, groups=groups), abs=1e-13)


def test_the_soft_strength_is_relative_to_each_query():
    # rescaling one query's scores changes nothing: each query has its own spacing
    rng = np.random.default_rng(10)
    groups = np.repeat(np.arange(20), 15)
    y_true = rng.normal(size=300)
    y_pred = y_true + rng.normal(size=300)
    scaled = np.where(groups % 2 == 0, 1e6 * y_pred + 3.0, 1e-6 * y_pred)
    for s in (0.5, 5.0):
        base = soft_spearman(y_true, y_pred, groups=groups, regularization_strength=s)
        assert soft_spearman(y_true, scaled, groups=groups, regularization_strength=s) \
            == pytest.approx(base, abs=1e-12)
    # and each query alone is soft_spearman of that query
    per_query = [soft_spearman(y_true[groups == q], y_pred[groups == q])
                 for q in range(20)]
    assert soft_spearman(y_true, y_pred, groups=groups) == pytest.approx(
        np.mean(per_query), abs=1e-13)


@pytest.mark.parametrize("reg, s", [("l2", 1.0), ("l2", 4.0), ("kl", 20.0)])
def test_vjp_matches_finite_differences(reg, s):
    y_true, _, groups = learning_to_rank(11, n=200, n_queries=15)
    rng = np.random.default_rng(12)
    y_pred = y_true + rng.normal(size=200)  # continuous scores
    kw = dict(groups=groups, regularization_strength=s, regularization=reg)
    value, vjp_fn = skrank.vjp(soft_spearman, y_true, y_pred, argnums=1, **kw)
    assert value == soft_spearman(y_true, y_pred, **kw)
    grad = vjp_fn(-2.0)
    assert np.abs(grad).max() > 1e-4
    for _ in range(3):
        d = rng.normal(size=200)
        h = 1e-6
        fd = (soft_spearman(y_true, y_pred + h * d, **kw)
              - soft_spearman(y_true, y_pred - h * d, **kw)) / (2 * h)
        assert grad @ d == pytest.approx(-2.0 * fd, rel=1e-5, abs=1e-9)
    # left-out queries (one document, constant relevance) get no gradient
    single = np.flatnonzero(np.bincount(groups) == 1)
    assert np.all(grad[np.isin(groups, single)] == 0.0)
    assert np.all(grad[groups == 3] == 0.0)


def test_no_defined_query_gives_nan_with_a_warning():
    with pytest.warns(RuntimeWarning, match="no query has a defined value"):
        assert np.isnan(soft_spearman([1.0, 2.0, 3.0], [1.0, 2.0, 3.0],
                                      groups=[0, 1, 2]))
    with pytest.warns(RuntimeWarning, match="no query"):
        assert np.isnan(kendall_tau([1.0, 1.0, 2.0], [3.0, 2.0, 1.0],
                                    groups=[0, 0, 1]))


@pytest.mark.parametrize("kw, error, match", [
    (dict(groups=[0, 1]), ValueError, "one query id per sample"),
    (dict(groups=[[0, 0, 1, 1]]), ValueError, "one query id per sample"),
    (dict(groups=[0.0, np.nan, 1.0, 1.0]), ValueError, "NaN"),
    (dict(groups=[0, 0, 1, 1], multioutput="raw_values"), ValueError, "multioutput"),
])
def test_bad_groups(kw, error, match):
    with pytest.raises(error, match=match):
        soft_spearman([1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 4.0], **kw)


def test_groups_need_one_output():
    with pytest.raises(ValueError, match="1-D"):
        soft_spearman(np.ones((4, 2)), np.ones((4, 2)), groups=[0, 0, 1, 1])
    with pytest.raises(ValueError, match="1-D"):
        kendall_tau(np.ones((4, 2)), np.ones((4, 2)), groups=[0, 0, 1, 1])
    with pytest.raises(ValueError, match="inconsistent"):
        kendall_tau([1.0, 2.0, 3.0], [1.0, 2.0], groups=[0, 0, 0])
    for metric in (kendall_tau, soft_ndcg):
        with pytest.raises(ValueError, match="at least one sample"):
            metric([], [])
    with pytest.raises(ValueError, match="at least one sample"):
        soft_spearman([], [], groups=[])


# ---------------------------------------------------------------------------- scorers
def ranking_problem(seed=13, n_queries=120, m=8):
    """Queries whose relevance shifts by a per-query offset: across queries the scores
    hardly correlate, within them they do."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n_queries), m)
    X = rng.normal(size=(n_queries * m, 4))
    y = X @ [1.0, 2.0, 0.0, -1.0] + rng.normal(size=len(X)) + np.repeat(
        10 * rng.normal(size=n_queries), m)
    return X, y, groups


def test_scorers_evaluate_per_query_under_metadata_routing():
    import sklearn
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import GridSearchCV, GroupKFold

    from skrank.metrics import kendall_scorer, soft_spearman_scorer, spearman_scorer

    X, y, groups = ranking_problem()
    scoring = {"spearman": spearman_scorer, "soft": soft_spearman_scorer,
               "kendall": kendall_scorer}
    with sklearn.config_context(enable_metadata_routing=True):
        search = GridSearchCV(Ridge(), {"alpha": [0.1, 100.0]}, scoring=scoring,
                              refit="spearman", cv=GroupKFold(3)).fit(X, y, groups=groups)
    train, test = next(GroupKFold(3).split(X, y, groups))
    pred = Ridge(alpha=0.1).fit(X[train], y[train]).predict(X[test])
    res = search.cv_results_
    assert res["split0_test_spearman"][0] == pytest.approx(
        loop(spearmanr, y[test], pred, groups[test]), abs=1e-13)
    assert res["split0_test_kendall"][0] == pytest.approx(
        loop(kendalltau, y[test], pred, groups[test]), abs=1e-13)
    assert res["split0_test_soft"][0] == pytest.approx(
        soft_spearman(y[test], pred, groups=groups[test]), abs=1e-13)
    # without routing the fold is one query, as before
    plain = GridSearchCV(Ridge(), {"alpha": [0.1]}, scoring=spearman_scorer,
                         cv=GroupKFold(3)).fit(X, y, groups=groups)
    assert plain.cv_results_["split0_test_score"][0] == pytest.approx(
        spearmanr(y[test], pred).statistic, abs=1e-13)
    assert res["split0_test_spearman"][0] > plain.cv_results_["split0_test_score"][0] + 0.2


def test_scorers_request_groups():
    from skrank.metrics import kendall_scorer, soft_spearman_scorer, spearman_scorer

    for scorer in (kendall_scorer, soft_spearman_scorer, spearman_scorer):
        requests = scorer.get_metadata_routing().score.requests
        assert requests == {"groups": True}


# ---------------------------------------------------------------------------- NDCG
@pytest.mark.parametrize("k", [None, 1, 3, 10])
@pytest.mark.parametrize("seed", range(3))
def test_ndcg_equal_to_a_loop_over_scikit_learn(seed, k):
    # ties in the scores: scikit-learn averages the tied documents' gains
    y_true, y_pred, groups = learning_to_rank(seed)
    assert soft_ndcg(y_true, y_pred, groups=groups, k=k) == pytest.approx(
        ndcg_loop(y_true, y_pred, groups, k), abs=1e-13)
    # exponential gains: scikit-learn's NDCG of 2^y - 1
    assert soft_ndcg(y_true, y_pred, groups=groups, k=k, gains="exponential") == \
        pytest.approx(ndcg_loop(np.exp2(y_true) - 1, y_pred, groups, k), abs=1e-13)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 3), st.integers(-3, 3)),
                min_size=1, max_size=40), st.sampled_from([None, 1, 2, 5]))
def test_ndcg_equal_to_a_loop_on_any_small_data(rows, k):
    groups, y_true, y_pred = (np.array(c, dtype=float) for c in zip(*rows))
    want = ndcg_loop(y_true, y_pred, groups, k)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # no defined query: NaN
        got = soft_ndcg(y_true, y_pred, groups=groups, k=k)
    np.testing.assert_allclose(got, want, atol=1e-13)


def test_soft_ndcg_is_ndcg_loss_per_query_and_tends_to_the_hard_one():
    from skrank.losses import ndcg_loss

    rng = np.random.default_rng(14)
    groups = np.repeat(np.arange(30), 12)
    y_true = rng.integers(0, 4, size=360).astype(float)
    y_pred = y_true + rng.normal(size=360)  # continuous: no ties
    for k in (None, 5):
        hard = soft_ndcg(y_true, y_pred, groups=groups, k=k)
        assert soft_ndcg(y_true, y_pred, groups=groups, k=k,
                         regularization_strength=1e-9) == pytest.approx(hard, abs=1e-9)
        soft = soft_ndcg(y_true, y_pred, groups=groups, k=k, regularization_strength=2.0)
        assert abs(soft - hard) > 1e-4
        # the same as ndcg_loss with each query's strength 2 * IQR / 12
        iqr = np.array([np.subtract(*np.quantile(y_pred[groups == q], [0.75, 0.25]))
                        for q in range(30)])
        assert soft == pytest.approx(1 - ndcg_loss(
            y_true, y_pred, lengths=np.full(30, 12), k=k,
            regularization_strength=2.0 * iqr / 12), abs=1e-12)


@pytest.mark.parametrize("kw, error, match", [
    (dict(k=0), ValueError, "k must be"),
    (dict(k=2.5), ValueError, "k must be"),
    (dict(gains="squared"), ValueError, "gains"),
    (dict(regularization_strength=-1.0), ValueError, "non-negative"),
])
def test_bad_ndcg_options(kw, error, match):
    with pytest.raises(error, match=match):
        soft_ndcg([1.0, 2.0, 0.0], [0.1, 0.2, 0.3], **kw)
    with pytest.raises(error, match=match):
        make_ndcg_scorer(**kw)


def test_negative_relevance_is_an_error():
    with pytest.raises(ValueError, match="non-negative relevances"):
        soft_ndcg([1.0, -2.0, 0.0], [0.1, 0.2, 0.3])


def test_ndcg_scorer_per_query_under_metadata_routing():
    import sklearn
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import GroupKFold, cross_validate

    X, y, groups = ranking_problem()
    y = np.round(y - y.min())  # non-negative relevances
    scorer = make_ndcg_scorer(k=5)
    with sklearn.config_context(enable_metadata_routing=True):
        result = cross_validate(Ridge(), X, y, cv=GroupKFold(3),
                                scoring={"ndcg": scorer}, params={"groups": groups})
    train, test = next(GroupKFold(3).split(X, y, groups))
    pred = Ridge().fit(X[train], y[train]).predict(X[test])
    assert result["test_ndcg"][0] == pytest.approx(
        ndcg_loop(y[test], pred, groups[test], k=5), abs=1e-13)
