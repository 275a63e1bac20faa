"""SoftRankTransformer or QuantileTransformer? What each map does to held-out rows of
real data.

Run from the repository root, with skrank built (needs statsmodels for three of the data
sets, all of which install with it; nothing is downloaded)::

    python benchmarks/bench_transformer_real.py              # 20 splits, about 1 minute
    python benchmarks/bench_transformer_real.py --splits 3   # a smoke run
    python benchmarks/bench_transformer_real.py --output transformer_real.md

Each transformer is fitted on 70% of the rows (default settings: ``n_quantiles=1000``,
used in full when there are fewer samples) and applied to the other 30%, for every
feature with at least 20 distinct values. Four numbers per data set, means over seeded
splits:

* ``KS``: the Kolmogorov-Smirnov distance between the held-out outputs and the uniform
  distribution, averaged over features: how well the map does its job (lower is better).
* ``jump``: the largest change of an output when its input moves by 1% of the feature's
  standard deviation: how stable the map is. QuantileTransformer's slope is unbounded where
  the reference has ties or near-ties; SoftRankTransformer's "l2" map has slope at most
  ``1 / (n_quantiles_ * regularization_strength * scale_)`` (checked on every row: the
  ``bound`` line counts violations).
* ``round trip``: the largest ``|inverse_transform(transform(x)) - x|``, relative to the
  feature's range, over the held-out values inside the training range. QuantileTransformer
  is exact there; SoftRankTransformer's map is flat where the reference's gaps exceed about
  twice ``eps``, and the round trip then moves ``x`` by less than half of the gap around it
  (checked on every value: the ``bound`` line counts violations).
* ``round trip, all``: the same over every held-out value; both maps are flat beyond the
  reference, so values outside the training range come back at its edge.
"""

import argparse
import warnings

import numpy as np
import scipy
import sklearn
from scipy.stats import kstest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import QuantileTransformer

import skrank
from skrank.preprocessing import SoftRankTransformer
from _timing import Report, Table, machine_basics  # benchmarks/_timing.py

try:
    import statsmodels.api as sm
except ImportError:  # pragma: no cover - informative exit only
    raise SystemExit("bench_transformer_real.py needs statsmodels (pip install statsmodels)")

TEST_SIZE = 0.3
SHIFT = 0.01  # the input move of "jump", in standard deviations


def _fair():
    d = sm.datasets.fair.load_pandas().data
    return d[["affairs"]].to_numpy(float)  # 68% zeros, then a long right tail


DATASETS = {
    "diabetes": (lambda: load_diabetes().data, "scikit-learn load_diabetes"),
    "breast_cancer": (lambda: load_breast_cancer().data, "scikit-learn load_breast_cancer"),
    "wine": (lambda: load_wine().data, "scikit-learn load_wine"),
    "star98": (lambda: sm.datasets.star98.load_pandas().exog.to_numpy(float),
               "statsmodels star98, the 20 exog columns"),
    "engel": (lambda: sm.datasets.engel.load_pandas().data.to_numpy(float),
              "statsmodels engel, income and foodexp"),
    "fair": (_fair, "statsmodels fair, affairs"),
}

TRANSFORMERS = {
    "QuantileTransformer": lambda: QuantileTransformer(n_quantiles=1000),
    "soft l2, 0.3": lambda: SoftRankTransformer(regularization_strength=0.3),
    "soft l2, 1 (default)": lambda: SoftRankTransformer(),
    "soft l2, 3": lambda: SoftRankTransformer(regularization_strength=3.0),
    "soft kl, 0.3": lambda: SoftRankTransformer(regularization_strength=0.3,
                                                regularization="kl"),
    "soft kl, 1": lambda: SoftRankTransformer(regularization="kl"),
}


def half_gaps(quantiles, x):
    """Half the gap between the two reference values around each x (inside the range)."""
    i = np.clip(np.searchsorted(quantiles, x, side="right"), 1, quantiles.size - 1)
    return (quantiles[i] - quantiles[i - 1]) / 2


def measure(X, make, seed, violations):
    X_tr, X_te = train_test_split(X, test_size=TEST_SIZE, random_state=seed)
    with warnings.catch_warnings():  # QuantileTransformer's n_quantiles > n_samples
        warnings.simplefilter("ignore", UserWarning)
        tr = make().fit(X_tr)
    U = tr.transform(X_te)
    shift = SHIFT * X.std(axis=0)
    jumps = np.abs(tr.transform(X_te + shift) - U)
    inside = (X_te >= X_tr.min(axis=0)) & (X_te <= X_tr.max(axis=0))
    moved = np.abs(tr.inverse_transform(U) - X_te)
    span = np.ptp(X, axis=0)
    if isinstance(tr, SoftRankTransformer):
        if tr.regularization == "l2":  # the slope bound
            bound = shift / (tr.n_quantiles_ * tr.regularization_strength * tr.scale_)
            violations["slope"] += int((jumps > bound * (1 + 1e-9) + 1e-12).sum())
        for j in range(X.shape[1]):  # the round-trip bound, inside the range
            x, q = X_te[inside[:, j], j], tr.quantiles_[:, j]
            over = moved[inside[:, j], j] > half_gaps(q, x) * (1 + 1e-9) + 1e-12 * span[j]
            violations["round trip"] += int(over.sum())
    return (np.mean([kstest(U[:, j], "uniform").statistic for j in range(X.shape[1])]),
            jumps.max(), np.max(np.where(inside, moved, 0) / span), np.max(moved / span))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--splits", type=int, default=20, help="seeded splits per data set")
    parser.add_argument("--output", help="also write the markdown report to this file")
    args = parser.parse_args(argv)
    import statsmodels
    report = Report(
        "SoftRankTransformer or QuantileTransformer? Held-out rows of real data",
        machine_basics() + [
            ("numpy / scipy / scikit-learn / statsmodels / skrank",
             f"{np.__version__} / {scipy.__version__} / {sklearn.__version__} / "
             f"{statsmodels.__version__} / {skrank.__version__}"),
            ("protocol", f"{args.splits} seeded {1 - TEST_SIZE:.0%}/{TEST_SIZE:.0%} "
                         f"splits; features with at least 20 distinct values; jump: "
                         f"inputs moved by {SHIFT:g} standard deviation")],
        args.output)
    violations = {"slope": 0, "round trip": 0}
    for name, (load, source) in DATASETS.items():
        X = load()
        X = X[:, [j for j in range(X.shape[1]) if np.unique(X[:, j]).size >= 20]]
        report(f"\n## {name}: {source}, {X.shape[0]} x {X.shape[1]}\n")
        table = Table(report, [("transformer", 20, "<"), ("KS", 5, ">"), ("jump", 5, ">"),
                               ("round trip", 10, ">"), ("round trip, all", 15, ">")])
        for label, make in TRANSFORMERS.items():
            rows = np.array([measure(X, make, seed, violations)
                             for seed in range(args.splits)])
            ks, jump, inside, every = rows.mean(axis=0)
            table.row([label, f"{ks:.3f}", f"{jump:.3f}", f"{inside:.3f}", f"{every:.3f}"])
    report("\n## Bounds\n")
    report(f"- l2 slope bound (jump <= shift / (n_quantiles_ * eps)): "
           f"{violations['slope']} violations")
    report(f"- round trip inside the range within half the reference gap: "
           f"{violations['round trip']} violations")
    for kind, count in violations.items():
        if count:
            report.errors.append(f"the {kind} bound failed {count} times")
    report.close()


if __name__ == "__main__":
    main()
