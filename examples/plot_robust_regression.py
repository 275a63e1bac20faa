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

What to look at: on top, one panel per estimator on a 1-D sample, with the true line
and the samples each robust fit leaves out (soft LTS: ``outlier_mask_``; RANSAC: outside
its ``inlier_mask_``); below, the relative error of the coefficients as the
contamination grows (soft LTS holds until the contamination reaches its
``trim_fraction``; its efficiency step, an MM step, brings it to the error of least
squares on clean data, where the trimmed fit alone, ``refit=None``, pays for trimming
good points), and soft LTS's error against its strength, which interpolates between
hard LTS (small strengths) and least squares (large ones). The printed table is for ``n
= 2000`` samples and ``p = 10`` features, scored on clean test data, with least squares
on the inliers alone (an oracle) as the reference.

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
rows = estimators() | {
    "soft LTS, refit=None": SoftTrimmedRegressor(refit=None, random_state=0),
    "soft LTS, strength 0": SoftTrimmedRegressor(regularization_strength=0.0,
                                                 random_state=0),
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

fig = plt.figure(figsize=(15, 8))
grid = fig.add_gridspec(2, 4)
X1, y1, coef1, out1 = make_data(200, 1, 0.2, seed=1)
line = np.linspace(X1.min(), X1.max(), 2)[:, None]
for i, (name, est) in enumerate(estimators().items()):
    ax = fig.add_subplot(grid[0, i])
    fit_error(est, X1, y1, coef1)
    left_out = {"RANSAC": lambda e: ~e.inlier_mask_,
                "soft LTS": lambda e: e.outlier_mask_}.get(name)
    flagged = np.zeros(len(y1), bool) if left_out is None else left_out(est)
    ax.scatter(X1[~flagged, 0], y1[~flagged], s=8, c="0.5",
               label="samples used" if left_out else "samples")
    if left_out is not None:
        ax.scatter(X1[flagged, 0], y1[flagged], s=14, c="r", marker="x",
                   label="left out by the fit")
    ax.plot(line, line[:, 0] * coef1[0] + 1.0, c="k", lw=1, ls=":", label="true line")
    ax.plot(line, est.predict(line), c=f"C{i}", lw=2, label=f"{name} fit")
    ax.set(title=name, xlabel="x", ylabel="y" if i == 0 else None,
           ylim=(y1.min() - 2, y1.max() + 2))
    ax.legend(fontsize=7, loc="upper left")

contaminations = (0.0, 0.2, 0.4) if SMALL else np.arange(0.0, 0.41, 0.05)
seeds = range(1 if SMALL else 3)
errors = {}  # the mean over the seeds, for each estimator and contamination
for c in contaminations:
    data = [make_data(n, p, c, seed) for seed in seeds]
    ests = estimators() | {
        "soft LTS, refit=None": SoftTrimmedRegressor(refit=None, random_state=0),
        "soft LTS, trim_fraction=0.45": SoftTrimmedRegressor(trim_fraction=0.45,
                                                             random_state=0)}
    for name, est in ests.items():
        errors.setdefault(name, []).append(
            np.mean([fit_error(est, Xc, yc, cc) for Xc, yc, cc, _ in data]))
ax = fig.add_subplot(grid[1, :2])
for name, errs in errors.items():
    ax.plot(contaminations, errs, "o-", ms=3, label=name)
ax.set(title=f"n = {n}, p = {p}, mean of {len(seeds)} draws", yscale="log",
       xlabel="fraction of outliers", ylabel="relative coefficient error")
ax.legend(fontsize=8)

strengths = np.logspace(-2, 6, 4 if SMALL else 17)
ax = fig.add_subplot(grid[1, 2:])
for refit in ("mm", None):
    ax.semilogx(strengths, [fit_error(SoftTrimmedRegressor(
        regularization_strength=s, refit=refit, random_state=0), X, y, coef)
        for s in strengths], "o-", label=f"soft LTS, refit={refit!r}")
ax.axhline(fit_error(LinearRegression(), X, y, coef), color="C0", ls=":",
           label="least squares")
ax.set(title="soft LTS, 20% outliers: strength (units of loss_scale_)",
       xlabel="regularization_strength", ylabel="relative coefficient error",
       yscale="log")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
