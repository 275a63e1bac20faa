"""Benchmark SoftTrimmedRegressor against scikit-learn's linear regressors on real data.

How to run (from the repository root, with skrank built/installed, and scikit-learn,
statsmodels and threadpoolctl; every data set ships with its package, nothing is
downloaded)::

    python benchmarks/bench_robust_real.py                  # 20 splits; ~3.5 min on 2 cores
    python benchmarks/bench_robust_real.py --quick          # 3 splits, no TheilSen; ~1 min
    python benchmarks/bench_robust_real.py --splits 50 --datasets engel,star98 \\
        --output robust_real.md

Everything printed is markdown: a header with the machine and versions, one table
per data set and scenario, a summary of mean R2, and the goals with PASS/FAIL.

Data sets (X -> y; rows x features):

* ``diabetes``: scikit-learn ``load_diabetes``, the ten baseline variables (already
  centred and scaled by scikit-learn) -> disease progression after one year; 442 x 10;
* ``engel``: statsmodels ``engel``, household income -> food expenditure (Belgian
  working-class households, 1857; the quantile regression classic, heteroscedastic);
  235 x 1;
* ``modechoice``: statsmodels ``modechoice`` (travel between Sydney and Melbourne,
  one row per traveller and mode), the numeric columns ``ttme`` (terminal waiting time),
  ``invc`` (in-vehicle cost), ``invt`` (travel time), ``hinc`` (household income),
  ``psize`` (party size) -> ``gc``, the generalised cost of the trip (cost plus the
  value of the time spent, nearly linear in ``invc`` and ``invt``: OLS's held-out R2 is
  about 0.95); ``individual``, ``mode`` and the 0/1 ``choice`` are left out; 840 x 5;
* ``star98``: statsmodels ``star98`` (California school districts, 1998), the 20
  ``exog`` columns (demographics, teacher experience and pay, spending, and their
  interactions) -> ``NABOVE / (NABOVE + NBELOW)``, the share of pupils above the
  national maths median; 303 x 20;
* ``grunfeld``: statsmodels ``grunfeld`` (11 US firms, 1935-1954), market ``value``
  and ``capital`` stock -> gross ``invest``ment; the firm-year rows are split at
  random like the others; 220 x 2 (two firms invest several times more than the
  other nine: pooled in levels, the robust fits follow the nine);
* ``grunfeld_log``: the same in logs (``log invest ~ log value + log capital``, the
  usual specification; the rows with a non-positive value are left out).

Protocol: for each seed ``0, ..., splits - 1``, ``train_test_split(X, y,
test_size=0.3, random_state=seed)``; every estimator is fitted on the training split
(with ``random_state=seed`` where it takes one) and scored (``r2_score``) on the test
split, which is never contaminated. Two scenarios:

* ``clean``: the training split as it is;
* ``contaminated``: the training split after ``np.random.default_rng(seed)`` replaces
  ``floor(0.15 n)`` rows, chosen at random, by gross y-outliers and ``floor(0.10 n)``
  other rows by bad leverage points (``n`` training rows; 25% in all, as much as the
  default ``trim_fraction`` trims). With ``med`` the median and ``s`` the robust scale
  (``1.4826 MAD``; ``IQR / 1.349`` where the MAD is 0, as for a binary column; then
  the standard deviation) of the clean training split, per column:

  - y-outliers: ``y += 10 s(y) (1 + |N(0, 1)|)`` (always upwards: a one-sided shift
    biases the intercept as well as the slopes); x untouched;
  - bad leverage points: ``x_j = med_j + s_j (10 d_j + N(0, 1))`` with ``d_j`` the
    sign of the j-th coefficient of least squares on the clean training split
    (``+1`` where it is 0), so that the clean fit predicts about ``10 sum_j |coef_j|
    s_j`` above its centre there, and ``y = med(y) - 5 sd(y)``: far below it.

Estimators: ``SoftTrimmedRegressor(random_state=seed)`` with its defaults
(``refit="mm"``, ``trim_fraction=0.25``), and as extra rows ``refit="reweighted"`` and
``refit=None`` (the trimmed fit alone); ``LinearRegression`` (OLS),
``HuberRegressor(max_iter=1000)``, ``RANSACRegressor(max_trials=1000,
random_state=seed)`` and ``TheilSenRegressor(random_state=seed)`` (its default
``max_subpopulation=1e4``), all with their other defaults on the raw features.
``--quick`` (or ``--no-theilsen``) leaves TheilSen out, the slowest by far. Huber's
L-BFGS depends on the scale of the features: on star98's raw columns it stops at
``max_iter`` (the ``warnings`` column); put a ``StandardScaler`` in front to see it
converge.

Columns of the per-scenario tables:

* ``mean R2`` and ``s.e.``: the mean held-out R2 over the splits and its standard
  error (standard deviation over the splits / sqrt(splits));
* ``- ref`` and ``s.e.``: the mean paired difference to the scenario's reference, and
  its standard error: the reference is OLS on clean data and, on contaminated data, the
  best (by mean R2) of Huber, RANSAC and TheilSen, named in the section title;
* ``fit time``: mean wall time of one ``fit`` (``time.perf_counter``), every thread
  pool limited to one thread with ``threadpoolctl``, after one untimed warm-up fit of
  each estimator;
* ``warnings``: ConvergenceWarnings raised over all the splits' fits (silenced, but
  counted), and other warnings if any.

``--per-split`` adds, per data set and scenario, the held-out R2 of the default
SoftTrimmedRegressor and of the reference on every split, and their difference.

Goals, per data set: clean, SoftTrimmedRegressor's (default) mean R2 at most 0.005
below OLS's; contaminated, at least the best of Huber, RANSAC and TheilSen; and no
ConvergenceWarning from SoftTrimmedRegressor anywhere.
"""

import argparse
import os
import subprocess
import sys
import time
import warnings

import numpy as np
import scipy
import sklearn
from sklearn.datasets import load_diabetes
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import (
    HuberRegressor,
    LinearRegression,
    RANSACRegressor,
    TheilSenRegressor,
)
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split

import skrank
from skrank.linear_model import SoftTrimmedRegressor
from _timing import Report, Table, machine_basics  # benchmarks/_timing.py

try:
    import threadpoolctl
except ImportError:  # pragma: no cover - informative exit only
    sys.exit("bench_robust_real.py needs threadpoolctl (pip install threadpoolctl)")
try:
    import statsmodels.api as sm
except ImportError:  # pragma: no cover - informative exit only
    sys.exit("bench_robust_real.py needs statsmodels (pip install statsmodels)")

SCENARIOS = ("clean", "contaminated")
Y_OUTLIERS = 0.15   # fraction of the training rows given gross y-outliers
LEVERAGE = 0.10     # fraction of the training rows made bad leverage points
TEST_SIZE = 0.3
CLEAN_GOAL = 0.005  # default SoftTrimmedRegressor at most this far below OLS, clean
OURS = "SoftTrimmed (mm)"
ROBUST = ("HuberRegressor", "RANSACRegressor", "TheilSenRegressor")


# ------------------------------------------------------------------- data --

def _diabetes():
    X, y = load_diabetes(return_X_y=True)
    return X, y


def _engel():
    d = sm.datasets.engel.load_pandas().data
    return d[["income"]].to_numpy(float), d["foodexp"].to_numpy(float)


def _modechoice():
    d = sm.datasets.modechoice.load_pandas().data
    return (d[["ttme", "invc", "invt", "hinc", "psize"]].to_numpy(float),
            d["gc"].to_numpy(float))


def _star98():
    d = sm.datasets.star98.load_pandas()
    y = d.endog["NABOVE"] / (d.endog["NABOVE"] + d.endog["NBELOW"])
    return d.exog.to_numpy(float), y.to_numpy(float)


def _grunfeld():
    d = sm.datasets.grunfeld.load_pandas().data
    return d[["value", "capital"]].to_numpy(float), d["invest"].to_numpy(float)


def _grunfeld_log():
    X, y = _grunfeld()
    keep = (X > 0).all(axis=1) & (y > 0)
    return np.log(X[keep]), np.log(y[keep])


DATASETS = {
    "diabetes": (_diabetes, "sklearn load_diabetes: 10 baseline variables -> progression"),
    "engel": (_engel, "statsmodels engel: income -> foodexp"),
    "modechoice": (_modechoice, "statsmodels modechoice: ttme, invc, invt, hinc, psize -> gc"),
    "star98": (_star98, "statsmodels star98: 20 exog columns -> NABOVE / (NABOVE + NBELOW)"),
    "grunfeld": (_grunfeld, "statsmodels grunfeld: value, capital -> invest"),
    "grunfeld_log": (_grunfeld_log, "statsmodels grunfeld, logs: log value, log "
                                    "capital -> log invest"),
}


def robust_scale(a):
    """Per column (axis 0): 1.4826 MAD, else IQR / 1.349, else the standard
    deviation, else 1."""
    a = np.asarray(a, dtype=float)
    med = np.median(a, axis=0)
    s = 1.4826 * np.median(np.abs(a - med), axis=0)
    q75, q25 = np.percentile(a, [75, 25], axis=0)
    s = np.where(s > 0, s, (q75 - q25) / 1.349)
    s = np.where(s > 0, s, np.std(a, axis=0))
    return med, np.where(s > 0, s, 1.0)


def contaminate(X, y, seed):
    """Copies of X, y with y-outliers and bad leverage points (module docstring)."""
    rng = np.random.default_rng(seed)
    X, y = X.copy(), y.copy()
    n = len(y)
    m_y, m_x = int(Y_OUTLIERS * n), int(LEVERAGE * n)
    med_x, s_x = robust_scale(X)
    med_y, s_y = robust_scale(y)
    sd_y = np.std(y)
    direction = np.sign(LinearRegression().fit(X, y).coef_)
    direction[direction == 0] = 1.0
    rows = rng.permutation(n)
    out_y, out_x = rows[:m_y], rows[m_y:m_y + m_x]
    y[out_y] += 10.0 * s_y * (1.0 + np.abs(rng.standard_normal(m_y)))
    X[out_x] = med_x + s_x * (10.0 * direction
                              + rng.standard_normal((m_x, X.shape[1])))
    y[out_x] = med_y - 5.0 * sd_y
    return X, y


# ------------------------------------------------------------- estimators --

def estimators(args):
    """(name, make(seed)) pairs; the default SoftTrimmedRegressor first."""
    ests = [
        (OURS, lambda s: SoftTrimmedRegressor(random_state=s)),
        ("SoftTrimmed (reweighted)",
         lambda s: SoftTrimmedRegressor(refit="reweighted", random_state=s)),
        ("SoftTrimmed (None)", lambda s: SoftTrimmedRegressor(refit=None, random_state=s)),
        ("LinearRegression", lambda s: LinearRegression()),
        ("HuberRegressor", lambda s: HuberRegressor(max_iter=1000)),
        ("RANSACRegressor", lambda s: RANSACRegressor(max_trials=1000, random_state=s)),
    ]
    if args.theilsen:
        ests.append(("TheilSenRegressor", lambda s: TheilSenRegressor(random_state=s)))
    return ests


def fit_once(make, seed, X, y):
    """(fitted estimator, seconds, ConvergenceWarning count, other warning texts)."""
    est = make(seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        est.fit(X, y)
        seconds = time.perf_counter() - t0
    n_conv = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
    others = [f"{w.category.__name__}: {w.message}" for w in caught
              if not issubclass(w.category, ConvergenceWarning)]
    return est, seconds, n_conv, others


def fmt_time(seconds):
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def git_revision():
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here,
                             capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=here, capture_output=True, text=True,
                               timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (rev + (" (with uncommitted changes)" if dirty else "")) if rev else "unknown"


def machine_info(args):
    import statsmodels
    return machine_basics() + [
        ("numpy / scipy / scikit-learn / statsmodels",
         f"{np.__version__} / {scipy.__version__} / {sklearn.__version__} / "
         f"{statsmodels.__version__}"),
        ("skrank", f"{getattr(skrank, '__version__', 'unknown')}, git {git_revision()}"),
        ("threadpoolctl", threadpoolctl.__version__),
        ("protocol", f"{args.splits} seeded {1 - TEST_SIZE:.0%}/{TEST_SIZE:.0%} splits "
                     f"(seeds 0-{args.splits - 1}); contaminated: {Y_OUTLIERS:.0%} "
                     f"y-outliers + {LEVERAGE:.0%} bad leverage rows of the training "
                     f"split; the test split stays clean"),
        ("timing", "mean of one fit per split, after an untimed warm-up fit, all thread "
                   "pools limited to 1 thread"),
    ]


# -------------------------------------------------------------- benchmark --

def run_dataset(name, args, errors):
    """{scenario: {estimator: dict(r2=array, time=array, conv=int, other=list)}}."""
    X, y = DATASETS[name][0]()
    ests = estimators(args)
    res = {sc: {e: dict(r2=[], time=[], conv=0, other=[]) for e, _ in ests}
           for sc in args.scenarios}
    failed = set()
    # warm-up (imports, first calls): one untimed fit of each on the first split
    X_tr, _, y_tr, _ = train_test_split(X, y, test_size=TEST_SIZE, random_state=0)
    for est_name, make in ests:
        try:
            fit_once(make, 0, X_tr, y_tr)
        except Exception:  # reported below, from the timed fits
            pass
    for seed in range(args.splits):
        X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=TEST_SIZE,
                                                  random_state=seed)
        for sc in args.scenarios:
            Xf, yf = (X_tr, y_tr) if sc == "clean" else contaminate(X_tr, y_tr, seed)
            for est_name, make in ests:
                if (sc, est_name) in failed:
                    continue
                cell = res[sc][est_name]
                try:
                    est, seconds, n_conv, others = fit_once(make, seed, Xf, yf)
                except Exception as exc:  # report and keep going
                    errors.append(f"{name} {sc} {est_name} (seed {seed}): "
                                  f"{type(exc).__name__}: {exc}")
                    failed.add((sc, est_name))
                    continue
                cell["r2"].append(r2_score(y_te, est.predict(X_te)))
                cell["time"].append(seconds)
                cell["conv"] += n_conv
                cell["other"].extend(others)
    for sc in res:
        for est_name in list(res[sc]):
            cell = res[sc][est_name]
            if (sc, est_name) in failed or not cell["r2"]:
                del res[sc][est_name]
                continue
            cell["r2"] = np.asarray(cell["r2"])
            cell["time"] = np.asarray(cell["time"])
    return X.shape, res


def reference(sc, res):
    """(name, R2 array) of the scenario's reference (module docstring)."""
    if sc == "clean":
        name = "LinearRegression"
    else:
        present = [e for e in ROBUST if e in res]
        if not present:
            return None, None
        name = max(present, key=lambda e: res[e]["r2"].mean())
    return (name, res[name]["r2"]) if name in res else (None, None)


def se(a):
    return np.std(a, ddof=1) / np.sqrt(len(a)) if len(a) > 1 else float("nan")


def report_scenario(out, res, sc):
    ref_name, ref_r2 = reference(sc, res)
    table = Table(out, [("estimator", 24, "<"), ("mean R2", 9, ">"), ("s.e.", 7, ">"),
                        ("- ref", 9, ">"), ("s.e.", 7, ">"), ("fit time", 9, ">"),
                        ("warnings", 22, "<")])
    for est_name, cell in res.items():
        r2 = cell["r2"]
        if ref_r2 is not None and len(ref_r2) == len(r2):
            d = r2 - ref_r2
            diff, diff_se = f"{d.mean():+.4f}", f"{se(d):.4f}"
        else:
            diff = diff_se = "-"
        warn = f"{cell['conv']} convergence"
        if cell["other"]:
            warn += f", {len(cell['other'])} other"
        table.row([est_name, f"{r2.mean():.4f}", f"{se(r2):.4f}", diff, diff_se,
                   fmt_time(cell["time"].mean()), warn])
    return ref_name


def report_splits(out, res, sc):
    ref_name, ref_r2 = reference(sc, res)
    if OURS not in res or ref_r2 is None or len(ref_r2) != len(res[OURS]["r2"]):
        return
    out(f"\nPer split, {OURS} against {ref_name}:\n")
    table = Table(out, [("seed", 4, ">"), (OURS, 16, ">"), (ref_name, 17, ">"),
                        ("difference", 10, ">")])
    for seed, (a, b) in enumerate(zip(res[OURS]["r2"], ref_r2)):
        table.row([seed, f"{a:.4f}", f"{b:.4f}", f"{a - b:+.4f}"])


def report_summary(out, all_results, ests):
    names = [e for e, _ in ests]
    short = {OURS: "STR mm", "SoftTrimmed (reweighted)": "STR rw",
             "SoftTrimmed (None)": "STR raw", "LinearRegression": "OLS",
             "HuberRegressor": "Huber", "RANSACRegressor": "RANSAC",
             "TheilSenRegressor": "TheilSen"}
    table = Table(out, [("data set", 11, "<"), ("scenario", 12, "<")]
                  + [(short[e], 8, ">") for e in names])
    for ds, (_, res) in all_results.items():
        for sc, cells in res.items():
            table.row([ds, sc] + [f"{cells[e]['r2'].mean():.4f}" if e in cells else "ERR"
                                  for e in names])


def report_goals(out, all_results):
    table = Table(out, [("goal", 80, "<"), ("value", 8, ">"), ("target", 9, ">"),
                        ("result", 6, "<")])
    n_pass = n_fail = 0
    total_conv = 0
    for ds, (_, res) in all_results.items():
        for sc, cells in res.items():
            total_conv += cells.get(OURS, {}).get("conv", 0)
            ref_name, ref_r2 = reference(sc, cells)
            ours = cells.get(OURS)
            if sc == "clean":
                text = f"{ds} clean: {OURS} R2 - OLS R2"
                limit, target = -CLEAN_GOAL, f">= {-CLEAN_GOAL}"
            else:
                text = f"{ds} contaminated: {OURS} R2 - best robust ({ref_name})"
                limit, target = 0.0, ">= 0"
            if ours is None or ref_r2 is None:
                table.row([text, "-", target, "SKIP"])
                continue
            value = ours["r2"].mean() - ref_r2.mean()
            ok = value >= limit
            n_pass += ok
            n_fail += not ok
            table.row([text, f"{value:+.5f}", target, "PASS" if ok else "FAIL"])
    ok = total_conv == 0
    table.row([f"ConvergenceWarnings from {OURS}, all fits", str(total_conv), "0",
               "PASS" if ok else "FAIL"])
    return n_pass + ok, n_fail + (not ok)


# ------------------------------------------------------------------- main --

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 3 splits (unless --splits is given), no TheilSen")
    p.add_argument("--splits", type=int, help="seeded train/test splits (default 20)")
    p.add_argument("--datasets", default=",".join(DATASETS),
                   help=f"subset of {','.join(DATASETS)}")
    p.add_argument("--scenarios", default=",".join(SCENARIOS),
                   help=f"subset of {','.join(SCENARIOS)}")
    p.add_argument("--no-theilsen", dest="theilsen", action="store_false",
                   help="leave TheilSenRegressor out (the slowest)")
    p.add_argument("--per-split", action="store_true",
                   help="also print the default's and the reference's R2 per split")
    p.add_argument("--output", help="also write the markdown report to this file")
    args = p.parse_args(argv)
    if args.splits is None:
        args.splits = 3 if args.quick else 20
    if args.splits < 1:
        p.error("--splits must be at least 1")
    if args.quick:
        args.theilsen = False
    for opt, known in (("datasets", DATASETS), ("scenarios", SCENARIOS)):
        chosen = [s.strip() for s in getattr(args, opt).split(",") if s.strip()]
        bad = set(chosen) - set(known)
        if bad:
            p.error(f"unknown {opt}: {', '.join(sorted(bad))}")
        setattr(args, opt, chosen)
    return args


def main(argv=None):
    args = parse_args(argv)
    out = Report("SoftTrimmedRegressor on real data", machine_info(args), args.output)
    errors = out.errors
    all_results = {}
    with threadpoolctl.threadpool_limits(limits=1):
        for ds in args.datasets:
            t0 = time.perf_counter()
            shape, res = run_dataset(ds, args, errors)
            all_results[ds] = (shape, res)
            out(f"\n## {ds} ({shape[0]} x {shape[1]}; {DATASETS[ds][1]})")
            out(f"\n{time.perf_counter() - t0:.0f} s for this data set.")
            for sc in args.scenarios:
                ref_name, _ = reference(sc, res[sc])
                out(f"\n### {sc}: held-out R2 over {args.splits} splits "
                    f"(ref: {ref_name})\n")
                report_scenario(out, res[sc], sc)
                if args.per_split:
                    report_splits(out, res[sc], sc)
    out("\n## Summary: mean held-out R2\n")
    report_summary(out, all_results, estimators(args))
    out("\n## Goals\n")
    n_pass, n_fail = report_goals(out, all_results)
    out(f"\n{n_pass} PASS, {n_fail} FAIL")
    other = {}
    for ds, (_, res) in all_results.items():
        for sc, cells in res.items():
            for est_name, cell in cells.items():
                for text in cell["other"]:
                    key = (ds, sc, est_name, text)
                    other[key] = other.get(key, 0) + 1
    if other:
        out("\n## Other warnings\n")
        for (ds, sc, est_name, text), count in other.items():
            out(f"- {ds} {sc} {est_name} ({count}x): {text}")
    out.close()


if __name__ == "__main__":
    main()
