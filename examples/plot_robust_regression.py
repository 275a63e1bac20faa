"""
Robust regression by soft least trimmed squares
===============================================

:class:`~skrank.linear_model.SoftTrimmedRegressor` fits a linear model to the samples
with the smallest squared residuals, trimming a fraction ``trim_fraction`` (0.25 by
default) of them through a soft top-k mask: the objective is differentiable and a gross
outlier gets weight exactly 0. This example compares it with least squares,
:class:`~sklearn.linear_model.HuberRegressor` and
:class:`~sklearn.linear_model.RANSACRegressor` on data where 20% of the samples are
outliers, half of them vertical outliers (``y`` shifted up) and half *bad leverage
points* (a cluster of samples far from the others in ``X``, with a wrong ``y``), which
Huber's loss does not protect against.

What to look at: on the left, the fitted lines on a 1-D sample (the outliers are
marked); in the middle, the relative error of the coefficients as the contamination
grows (soft LTS holds until the contamination reaches its ``trim_fraction``, and pays
for the trimming with a larger error than least squares on clean data); on the right,
soft LTS's error against its strength, which interpolates between hard LTS (small
strengths) and least squares (large ones): it is flat over four decades. The printed
table is for ``n = 2000`` samples and ``p = 10`` features, scored on clean test data,
with least squares on the inliers alone (an oracle) as the reference.

Run it as a script or in a notebook (it needs matplotlib: ``pip install matplotlib``,
or ``pip install -e ".[examples]"`` from the skrank checkout).
"""

import os
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.linear_model import HuberRegressor, LinearRegression, RANSACRegressor
from sklearn.metrics import r2_score

from skrank.linear_model import SoftTrimmedRegressor

SMALL = os.environ.get("SKRANK_EXAMPLES_SMALL") == "1"  # tiny sizes, for the tests


def make_data(n, p, contamination, seed):
    """y = X coef + 1 + noise, then half the outliers vertical, half bad leverage."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    coef = rng.uniform(1.0, 3.0, size=p) * rng.choice([-1, 1], size=p)
    y = X @ coef + 1.0 + 0.5 * rng.normal(size=n)
    bad = rng.permutation(n)[:int(contamination * n)]
    lev, vert = bad[: len(bad) // 2], bad[len(bad) // 2:]
    X[lev] = 4.0 * np.sign(coef) + 0.5 * rng.normal(size=(len(lev), p))  # far in X ...
    y[lev] = -10.0 + rng.normal(size=len(lev))  # ... with y on the wrong side
    y[vert] += 20.0 + 5.0 * rng.normal(size=len(vert))
    return X, y, coef, np.isin(np.arange(n), bad)


def estimators():
    return {"least squares": LinearRegression(),
            "Huber": HuberRegressor(max_iter=1000),
            "RANSAC": RANSACRegressor(random_state=0),
            "soft LTS": SoftTrimmedRegressor(random_state=0)}


def fit_error(est, X, y, coef):
    with warnings.catch_warnings():  # Huber may not converge on such data
        warnings.simplefilter("ignore")
        est.fit(X, y)
    fitted = est.estimator_.coef_ if isinstance(est, RANSACRegressor) else est.coef_
    return np.linalg.norm(fitted - coef) / np.linalg.norm(coef)


# the table: n = 2000, p = 10, 20% outliers; scores on clean test data
n, p = (300, 5) if SMALL else (2000, 10)
X, y, coef, outlier = make_data(n, p, 0.2, seed=0)
rng = np.random.default_rng(42)
X_test = rng.normal(size=(5000, p))
y_test = X_test @ coef + 1.0 + 0.5 * rng.normal(size=5000)  # the same model, no outliers
print(f"n = {n}, p = {p}, 20% outliers ({outlier.sum()} samples)\n")
print("| estimator                | coef error | R2 (clean test) | fit time (s) |")
print("|:-------------------------|-----------:|----------------:|-------------:|")
rows = estimators() | {"soft LTS, strength 0": SoftTrimmedRegressor(
    regularization_strength=0.0, random_state=0),
    "least squares on inliers": LinearRegression()}
for name, est in rows.items():
    Xf, yf = (X[~outlier], y[~outlier]) if name.endswith("inliers") else (X, y)
    times = []
    for _ in range(1 if SMALL else 3):  # best of 3: the first fit pays warm-up costs
        start = time.perf_counter()
        err = fit_error(est, Xf, yf, coef)
        times.append(time.perf_counter() - start)
    r2 = r2_score(y_test, est.predict(X_test))
    print(f"| {name:24} | {err:10.4f} | {r2:15.4f} | {min(times):12.3f} |")

fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
X1, y1, coef1, out1 = make_data(200, 1, 0.2, seed=1)
axes[0].scatter(X1[~out1, 0], y1[~out1], s=8, c="0.5", label="inliers")
axes[0].scatter(X1[out1, 0], y1[out1], s=14, c="r", marker="x", label="outliers")
line = np.linspace(X1.min(), X1.max(), 2)[:, None]
for (name, est), ls in zip(estimators().items(), ("-", "-", "--", ":")):
    fit_error(est, X1, y1, coef1)
    axes[0].plot(line, est.predict(line), lw=2, ls=ls, label=name)
axes[0].set(title="20% outliers, half of them bad leverage points", xlabel="x",
            ylabel="y")
axes[0].legend(fontsize=8)

contaminations = (0.0, 0.2, 0.4) if SMALL else np.arange(0.0, 0.41, 0.05)
seeds = range(1 if SMALL else 3)
errors = {}  # the mean over the seeds, for each estimator and contamination
for c in contaminations:
    data = [make_data(n, p, c, seed) for seed in seeds]
    ests = estimators() | {"soft LTS, trim_fraction=0.45": SoftTrimmedRegressor(
        trim_fraction=0.45, random_state=0)}
    for name, est in ests.items():
        errors.setdefault(name, []).append(
            np.mean([fit_error(est, Xc, yc, cc) for Xc, yc, cc, _ in data]))
for name, errs in errors.items():
    axes[1].plot(contaminations, errs, "o-", ms=3, label=name)
axes[1].set(title=f"n = {n}, p = {p}, mean of {len(seeds)} draws", yscale="log",
            xlabel="fraction of outliers", ylabel="relative coefficient error")
axes[1].legend(fontsize=8)

strengths = np.logspace(-2, 6, 4 if SMALL else 17)
axes[2].semilogx(strengths, [fit_error(SoftTrimmedRegressor(
    regularization_strength=s, random_state=0), X, y, coef) for s in strengths], "o-")
axes[2].axhline(fit_error(LinearRegression(), X, y, coef), color="C0", ls=":",
                label="least squares")
axes[2].set(title="soft LTS, 20% outliers: strength (units of loss_scale_)",
            xlabel="regularization_strength", ylabel="relative coefficient error",
            yscale="log")
axes[2].legend(fontsize=8)
fig.tight_layout()
plt.show()
