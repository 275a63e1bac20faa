"""
Scaling out with Dask
=====================

skrank's functions take dask arrays, and its estimators and scorers work with the
tools Dask already has for scikit-learn. This script runs everything on a
:class:`dask.distributed.LocalCluster` (two worker processes on this machine):

1. soft ranks and a soft trimmed mean of a chunked dask array: lazy, block by block,
   equal to NumPy's results;
2. :class:`~skrank.preprocessing.SoftRankTransformer` and
   :class:`~skrank.linear_model.SoftTrimmedRegressor`, fitted on a NumPy sample, then
   transforming and predicting on a dask array through dask-ml's
   :class:`~dask_ml.wrappers.ParallelPostFit`;
3. :class:`~sklearn.model_selection.GridSearchCV` with
   :data:`~skrank.metrics.soft_spearman_scorer`, its fits and scores spread over the
   workers by joblib's dask backend, with the same result as a sequential search.

Pointing it at a real cluster changes one line: ``Client("tcp://scheduler:8786")``
instead of the ``LocalCluster`` (the workers need skrank installed). See the user
guide's page on scaling.

It needs the ``dask`` extra (``pip install -e ".[dask]"``: dask, distributed and
dask-ml). It starts worker processes, so the work sits under an
``if __name__ == "__main__":`` guard, and the documentation shows it without running
it: run it as a script, ``python examples/scaling_with_dask.py``.
"""

import os

import dask.array as da
import numpy as np
from dask_ml.wrappers import ParallelPostFit
from distributed import Client, LocalCluster
from joblib import parallel_config
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import make_pipeline

import skrank
from skrank.linear_model import SoftTrimmedRegressor
from skrank.metrics import soft_spearman_scorer
from skrank.preprocessing import SoftRankTransformer

SMALL = os.environ.get("SKRANK_EXAMPLES_SMALL") == "1"  # tiny sizes, for the tests


def dask_arrays():
    """1. The functions on a dask array: rows along the operated axis (here the last)
    must sit in one chunk; skrank rechunks that axis when it is split."""
    n_rows, n = (2_000, 200) if SMALL else (100_000, 1_000)
    x = da.random.default_rng(0).standard_normal(
        (n_rows, n), chunks=(n_rows // 8, n // 2), dtype=np.float32)
    ranks = skrank.soft_rank(x, regularization_strength=0.1)  # lazy: nothing runs yet
    print(f"x: {x.dtype}, chunks {x.chunksize}; soft ranks: {ranks.dtype}, "
          f"chunks {ranks.chunksize} (the operated axis in one chunk)")
    trimmed = skrank.soft_trimmed_mean(x, 0.1, regularization_strength=0.1)  # per row
    print(f"mean soft trimmed mean over {n_rows} rows: {float(trimmed.mean()):.5f}")
    # the same as NumPy, row for row
    head = x[:100].compute()
    np.testing.assert_array_equal(ranks[:100].compute(),
                                  skrank.soft_rank(head, regularization_strength=0.1))
    print("soft ranks of the first 100 rows: equal to NumPy's\n")


def estimators():
    """2. Fit on a NumPy sample, transform and predict on a dask array."""
    rng = np.random.default_rng(0)
    coef = np.array([1.0, -2.0, 0.5])
    X_fit = rng.normal(size=(500, 3))
    y_fit = X_fit @ coef + 0.1 * rng.normal(size=500)
    y_fit[:50] += 20.0  # gross outliers, which the trimmed regression ignores
    n_rows = 10_000 if SMALL else 2_000_000
    X = da.random.default_rng(1).standard_normal((n_rows, 3), chunks=n_rows // 8)

    transformer = ParallelPostFit(SoftRankTransformer(n_quantiles=200)).fit(X_fit)
    U = transformer.transform(X)  # a dask array, transformed block by block
    regressor = ParallelPostFit(SoftTrimmedRegressor(random_state=0)).fit(X_fit, y_fit)
    y_hat = regressor.predict(X)
    print(f"transformed: {type(U).__name__} {U.shape}, mean {float(U.mean()):.3f} "
          "(uniform outputs: about 0.5)")
    print(f"coefficients {np.round(regressor.coef_, 2)} (true {coef}); "
          f"predictions: {type(y_hat).__name__} {y_hat.shape}")
    np.testing.assert_array_equal(y_hat[:100].compute(),
                                  regressor.estimator.predict(X[:100].compute()))
    print("first 100 predictions: equal to the unwrapped estimator's\n")


def grid_search():
    """3. GridSearchCV's fits and scores on the cluster's workers, via joblib."""
    X, y = load_diabetes(return_X_y=True)
    pipe = make_pipeline(SoftRankTransformer(n_quantiles=100), Ridge())
    grid = {"softranktransformer__regularization_strength":
            [0.0, 1.0] if SMALL else [0.0, 0.3, 1.0, 3.0, 10.0],
            "ridge__alpha": [0.1, 1.0] if SMALL else [0.01, 0.1, 1.0, 10.0]}
    cv = KFold(n_splits=3 if SMALL else 5, shuffle=True, random_state=0)
    search = GridSearchCV(pipe, grid, scoring=soft_spearman_scorer, cv=cv, n_jobs=-1)
    with parallel_config(backend="dask"):  # the fits run on the Client's cluster
        search.fit(X, y)
    print(f"best parameters: {search.best_params_}")
    print(f"best mean soft Spearman: {search.best_score_:.4f}")
    sequential = GridSearchCV(pipe, grid, scoring=soft_spearman_scorer, cv=cv).fit(X, y)
    np.testing.assert_array_equal(search.cv_results_["mean_test_score"],
                                  sequential.cv_results_["mean_test_score"])
    print("the same scores as a sequential search")


if __name__ == "__main__":
    # two single-threaded worker processes on this machine; on a real cluster:
    # with Client("tcp://scheduler:8786") as client:
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        print(f"{client}\n")
        dask_arrays()
        estimators()
        grid_search()
