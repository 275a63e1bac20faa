"""Benchmark SoftTrimmedRegressor against scikit-learn's (robust) linear regressors.

How to run (from the repository root, with skrank built/installed)::

    python benchmarks/bench_trimmed.py             # n = 10,000, p = 20 (and 1e6 x 20)
    python benchmarks/bench_trimmed.py --quick     # n = 2,000, p = 10; smoke run
    python benchmarks/bench_trimmed.py --n 50000 --p 50 --contamination 0.3 --output t.md

Everything printed is markdown: a header with the machine and versions, one table
per scenario and the goals with PASS/FAIL.

Data (``np.random.default_rng(seed)``): ``X ~ N(0, I_p)``, ``y = X beta + 3 + e`` with
``beta ~ U(-2, 2)^p`` and ``e ~ N(0, 1)``; a fraction ``--contamination`` of the
training rows is then replaced, in one of two scenarios:

* ``vertical``: ``y`` shifted far, ``y += 100 + 10 N(0, 1)`` (x untouched);
* ``leverage``: bad leverage points, ``x = 10 sign(beta) + N(0, I_p)`` (about
  ``10 sqrt(p)`` from the centre of the clean rows) with ``y = -x beta + e`` (the
  mirrored plane, residuals of about ``-20 sum|beta|``).

The test set is ``n`` fresh clean rows. Columns:

* ``R2 clean test``: ``score`` on the clean test rows;
* ``- oracle``: that minus the R2 of the oracle, ``LinearRegression`` fitted on the clean
  training rows only;
* ``max coef err``: the largest ``|coef_ - beta|``;
* ``fit time``: one ``fit`` call (``time.perf_counter``), every thread pool (BLAS and
  OpenMP) limited to one thread with ``threadpoolctl``, after an untimed warm-up fit of
  the same estimator on a small sample.

The scale section fits the leverage scenario at ``--scale-n`` rows (1,000,000 by default)
with ``LinearRegression`` and ``SoftTrimmedRegressor``: fit time and peak memory during the
fit (``tracemalloc``, which sees every NumPy allocation) over the size of X.

Goals: SoftTrimmedRegressor's R2 at most 0.002 below the oracle's; its fit time at most
0.5x RANSAC's (10,000 x 20) and at most 30x one LinearRegression fit (1,000,000 x 20);
its peak memory at most 3x the size of X.

Estimators: ``SoftTrimmedRegressor(random_state=0)`` with its defaults
(``trim_fraction=0.25``, ``regularization_strength=1.0``, ``refit="mm"``),
``LinearRegression``,
``HuberRegressor`` (``max_iter=1000``), ``RANSACRegressor(max_trials=1000,
random_state=0)`` with its default stopping rule (``stop_probability=0.99``, residual
threshold the MAD of y), ``TheilSenRegressor(random_state=0)`` with its default
``max_subpopulation=1e4`` (all ``C(n, p + 1)`` subsets would be far too many), and the
oracle. ``--no-theilsen`` leaves TheilSen out (it is the slowest by far).
"""

import argparse
import sys
import time
import warnings

import numpy as np
import scipy
import sklearn
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import (
    HuberRegressor,
    LinearRegression,
    RANSACRegressor,
    TheilSenRegressor,
)

import skrank
from skrank.linear_model import SoftTrimmedRegressor
from _timing import Report, Table, machine_basics  # benchmarks/_timing.py

try:
    import threadpoolctl
except ImportError:  # pragma: no cover - informative exit only
    sys.exit("bench_trimmed.py needs threadpoolctl (pip install threadpoolctl)")

SCENARIOS = ("vertical", "leverage")
R2_GOAL = 0.002  # SoftTrimmedRegressor's R2 at most this far below the oracle's
RANSAC_GOAL = 0.5  # SoftTrimmedRegressor's fit time at most this times RANSAC's
SCALE_TIME_GOAL = 30.0  # ... at most this times one LinearRegression fit (--scale-n)
SCALE_MEMORY_GOAL = 3.0  # peak memory of the fit at most this times X's size


# ----------------------------------------------------------------- helpers --

def make_data(scenario, n, p, contamination, seed):
    """(X, y, X_test, y_test, clean_mask, beta) for one scenario (module docstring)."""
    rng = np.random.default_rng(seed)
    beta = rng.uniform(-2.0, 2.0, size=p)

    def clean(m):
        X = rng.standard_normal((m, p))
        return X, X @ beta + 3.0 + rng.standard_normal(m)

    X, y = clean(n)
    X_test, y_test = clean(n)
    m = int(contamination * n)
    out = rng.choice(n, size=m, replace=False)
    if scenario == "vertical":
        y[out] += 100.0 + 10.0 * rng.standard_normal(m)
    else:
        X[out] = 10.0 * np.sign(beta) + rng.standard_normal((m, p))
        y[out] = -(X[out] @ beta) + rng.standard_normal(m)
    clean_mask = np.ones(n, dtype=bool)
    clean_mask[out] = False
    return X, y, X_test, y_test, clean_mask, beta


def estimators(args):
    ests = [
        ("SoftTrimmedRegressor", lambda: SoftTrimmedRegressor(random_state=0)),
        ("LinearRegression", LinearRegression),
        ("HuberRegressor", lambda: HuberRegressor(max_iter=1000)),
        ("RANSACRegressor", lambda: RANSACRegressor(max_trials=1000, random_state=0)),
    ]
    if args.theilsen:
        ests.append(("TheilSenRegressor", lambda: TheilSenRegressor(random_state=0)))
    return ests


def fmt_time(seconds):
    if seconds is None:
        return "ERR"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def machine_info(args):
    return machine_basics() + [
        ("numpy / scipy / scikit-learn", f"{np.__version__} / {scipy.__version__} / "
                                         f"{sklearn.__version__}"),
        ("skrank", getattr(skrank, "__version__", "unknown")),
        ("threadpoolctl", threadpoolctl.__version__),
        ("data", f"n = {args.n} train + {args.n} clean test rows, p = {args.p}, "
                 f"contamination {args.contamination:g}, seed {args.seed}"),
        ("timing", "one fit per cell after an untimed warm-up fit, all thread pools "
                   "limited to 1 thread"),
    ]


# -------------------------------------------------------------- benchmarks --

def fit_once(make, X, y):
    """(fitted estimator, seconds) of one fit, warnings silenced."""
    est = make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t0 = time.perf_counter()
        est.fit(X, y)
        seconds = time.perf_counter() - t0
    return est, seconds


def bench_scenario(scenario, args, out, errors):
    """One table; returns {estimator name: (R2, fit seconds)} (oracle included)."""
    X, y, X_test, y_test, clean, beta = make_data(scenario, args.n, args.p,
                                                  args.contamination, args.seed)
    table = Table(out, [("estimator", 22, "<"), ("R2 clean test", 13, ">"),
                        ("- oracle", 9, ">"), ("max coef err", 12, ">"),
                        ("fit time", 9, ">"), ("notes", 34, "<")])
    results = {}
    rows = []
    with threadpoolctl.threadpool_limits(limits=1):
        fit_once(LinearRegression, X[clean][:100], y[clean][:100])  # warm-up
        oracle, t_oracle = fit_once(LinearRegression, X[clean], y[clean])
        r2_oracle = oracle.score(X_test, y_test)
        results["oracle"] = (r2_oracle, t_oracle)
        warm = np.random.default_rng(1).choice(args.n, size=min(args.n, 500),
                                               replace=False)
        for name, make in estimators(args):
            try:
                fit_once(make, X[warm], y[warm])  # warm-up: imports, first calls
                est, seconds = fit_once(make, X, y)
            except Exception as exc:  # report and keep going
                errors.append(f"{scenario} {name}: {type(exc).__name__}: {exc}")
                rows.append([name, "ERR", "-", "-", "ERR", ""])
                continue
            r2 = est.score(X_test, y_test)
            coef = getattr(est, "coef_", None)
            if coef is None:  # RANSAC keeps its final model in estimator_
                coef = est.estimator_.coef_
            notes = ""
            if name == "SoftTrimmedRegressor":
                notes = f"n_iter_ {est.n_iter_}, outliers trimmed " \
                        f"{np.mean(~est.inlier_mask_[~clean]):.0%}"
            elif name == "RANSACRegressor":
                notes = f"n_trials_ {est.n_trials_}"
            elif name == "HuberRegressor":
                notes = f"n_iter_ {est.n_iter_}"
            elif name == "TheilSenRegressor":
                notes = f"{est.n_subpopulation_} subsets"
            results[name] = (r2, seconds)
            rows.append([name, f"{r2:.5f}", f"{r2 - r2_oracle:+.5f}",
                         f"{np.max(np.abs(coef - beta)):.4f}", fmt_time(seconds), notes])
    for row in rows:
        table.row(row)
    table.row(["oracle (clean rows LR)", f"{r2_oracle:.5f}", "+0.00000",
               f"{np.max(np.abs(oracle.coef_ - beta)):.4f}", fmt_time(t_oracle),
               f"{int(clean.sum())} clean rows"])
    return results


def bench_scale(args, out):
    """The leverage scenario at --scale-n rows: fit time against one LinearRegression
    fit on the same data, and the fit's peak memory (tracemalloc: every NumPy
    allocation) against X's size. Returns (time ratio, memory ratio)."""
    import tracemalloc

    X, y, X_test, y_test, clean, beta = make_data("leverage", args.scale_n, args.p,
                                                  args.contamination, args.seed)
    table = Table(out, [("estimator", 22, "<"), ("fit time", 9, ">"),
                        ("peak memory / X", 15, ">"), ("max coef err", 12, ">")])
    rows = []
    with threadpoolctl.threadpool_limits(limits=1):
        warm = slice(0, 2000)
        for name, make in (("LinearRegression", LinearRegression),
                           ("SoftTrimmedRegressor",
                            lambda: SoftTrimmedRegressor(random_state=0))):
            fit_once(make, X[warm], y[warm])
            tracemalloc.start()
            est, seconds = fit_once(make, X, y)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            rows.append((name, seconds, peak / X.nbytes,
                         np.max(np.abs(est.coef_ - beta))))
    for name, seconds, memory, err in rows:
        table.row([name, fmt_time(seconds), f"{memory:.2f}", f"{err:.4f}"])
    return rows[1][1] / rows[0][1], rows[1][2]


# ------------------------------------------------------------------- goals --

def report_goals(out, all_results, scale=None):
    table = Table(out, [("goal", 58, "<"), ("value", 9, ">"), ("target", 9, ">"),
                        ("result", 6, "<")])
    for scenario, res in all_results.items():
        ours, oracle = res.get("SoftTrimmedRegressor"), res.get("oracle")
        ransac = res.get("RANSACRegressor")
        gap = None if ours is None else oracle[0] - ours[0]
        ratio = None if ours is None or ransac is None else ours[1] / ransac[1]
        for text, value, limit in (
            (f"{scenario}: oracle R2 - SoftTrimmedRegressor R2", gap, R2_GOAL),
            (f"{scenario}: SoftTrimmedRegressor / RANSACRegressor fit time", ratio,
             RANSAC_GOAL),
        ):
            if value is None:
                table.row([text, "-", f"<= {limit}", "SKIP"])
            else:
                table.row([text, f"{value:.4f}", f"<= {limit}",
                           "PASS" if value <= limit else "FAIL"])
    if scale is not None:
        for text, value, limit in (
            ("scale: SoftTrimmedRegressor / LinearRegression fit time", scale[0],
             SCALE_TIME_GOAL),
            ("scale: SoftTrimmedRegressor peak memory / size of X", scale[1],
             SCALE_MEMORY_GOAL),
        ):
            table.row([text, f"{value:.4f}", f"<= {limit}",
                       "PASS" if value <= limit else "FAIL"])


# -------------------------------------------------------------------- main --

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="smoke run: n = 2,000, p = 10 (unless --n / --p are given)")
    p.add_argument("--n", type=int, help="training rows (default 10000; --quick 2000)")
    p.add_argument("--p", type=int, help="features (default 20; --quick 10)")
    p.add_argument("--contamination", type=float, default=0.2,
                   help="fraction of training rows replaced by outliers (default 0.2)")
    p.add_argument("--scenarios", default=",".join(SCENARIOS),
                   help=f"subset of {','.join(SCENARIOS)}")
    p.add_argument("--seed", type=int, default=0, help="data seed (default 0)")
    p.add_argument("--no-theilsen", dest="theilsen", action="store_false",
                   help="leave TheilSenRegressor out (the slowest)")
    p.add_argument("--scale-n", type=int,
                   help="rows of the scale section, the leverage scenario against one "
                        "LinearRegression fit (default 1,000,000; --quick 100,000; "
                        "0 leaves it out)")
    p.add_argument("--output", help="also write the markdown report to this file")
    args = p.parse_args(argv)
    if args.n is None:
        args.n = 2000 if args.quick else 10_000
    if args.p is None:
        args.p = 10 if args.quick else 20
    if args.scale_n is None:
        args.scale_n = 100_000 if args.quick else 1_000_000
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    bad = set(args.scenarios) - set(SCENARIOS)
    if bad:
        p.error(f"unknown scenarios: {', '.join(sorted(bad))}")
    if not 0 <= args.contamination < 0.25:
        p.error("--contamination must lie in [0, 0.25) (the estimator trims 25%)")
    return args


def main(argv=None):
    args = parse_args(argv)
    out = Report("SoftTrimmedRegressor benchmark", machine_info(args), args.output)
    errors = out.errors
    all_results = {}
    for scenario in args.scenarios:
        out(f"\n## {scenario}: R2 on clean test data and fit time (1 thread)\n")
        all_results[scenario] = bench_scenario(scenario, args, out, errors)
    scale = None
    if args.scale_n:
        out(f"\n## scale: {args.scale_n:,} x {args.p}, leverage scenario (1 thread)\n")
        scale = bench_scale(args, out)
    out("\n## Goals\n")
    report_goals(out, all_results, scale)
    out.close()


if __name__ == "__main__":
    main()
