"""Demo: ``python -m skrank`` shows soft ranks and soft sorts beside the hard ones, then
the scikit-learn estimators and the soft Spearman metric on the bundled diabetes data."""

import argparse

import numpy as np

import skrank

_DESCRIPTION = """\
Demo of skrank: soft ranks and soft sorts beside the hard ones, their exact
gradient, the outlier-robust soft median and trimmed mean, then the scikit-learn
estimators (SoftRankTransformer, SoftTrimmedRegressor) and the soft Spearman
metric on scikit-learn's bundled diabetes data. Nothing is downloaded."""

_EPILOG = """\
Tests: pip install -e ".[test]" && pytest.  Examples: the scripts in examples/.
Versions, for a bug report: python -c "import skrank; skrank.show_versions()"."""


def _row(label, values):
    return f"  {label:<22}" + " ".join(f"{v:7.3f}" for v in values)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m skrank", description=_DESCRIPTION,
                                     epilog=_EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--operators-only", action="store_true",
                        help="show the array operators only, not the estimators "
                             "(which import scikit-learn)")
    args = parser.parse_args(argv)
    operators()
    if not args.operators_only:
        estimators()


def operators():
    x = np.array([2.9, 0.1, 1.2, 3.0, 1.1, -0.5])
    print(f"skrank {skrank.__version__}: fast differentiable sorting and ranking")
    print(_row("x", x))
    for reg in ("l2", "kl"):
        print(f"\nsoft_rank, regularization={reg!r} (ascending: smallest -> 1)")
        print(_row("hard (strength 0)", skrank.soft_rank(x, regularization_strength=0.0)))
        for eps in (0.1, 0.5, 2.0, 10.0):
            r = skrank.soft_rank(x, regularization_strength=eps, regularization=reg)
            print(_row(f"strength {eps:g}", r))
        print(f"\nsoft_sort, regularization={reg!r} (ascending)")
        print(_row("hard (strength 0)", skrank.soft_sort(x, regularization_strength=0.0)))
        for eps in (0.1, 1.0, 10.0):
            s = skrank.soft_sort(x, regularization_strength=eps, regularization=reg)
            print(_row(f"strength {eps:g}", s))

    r, vjp_fn = skrank.vjp(skrank.soft_rank, x, regularization_strength=0.5)
    g = vjp_fn(np.eye(len(x))[3])
    print("\nGradient of the soft rank of x[3] (strength 0.5) with respect to x:")
    print(_row("d r[3] / d x", g))
    print("\nThe soft ranks sum to n(n+1)/2 =", r.sum(), "at every strength.")

    y = np.array([0.1, 0.2, 0.3, 0.4, 1000.0])
    print(f"\nRobust soft statistics of {y.tolist()} (one gross outlier):")
    for eps in (0.0, 0.01, 0.1, 1.0):
        med = skrank.soft_median(y, regularization_strength=eps)
        tm = skrank.soft_trimmed_mean(y, 0.2, regularization_strength=eps)
        print(f"  strength {eps:<5g} soft_median {med:.4f}   soft_trimmed_mean(20%) {tm:.4f}")
    middle = skrank.soft_sort(y, regularization_strength=0.01)[2]
    print(f"  The outlier gets weight exactly 0 in both. Not so in the mean ({y.mean():.1f}),\n"
          f"  nor in the middle entry of a soft sort ({middle:.1f} at strength 0.01): a soft\n"
          f"  sort averages values that lie far apart, so the outlier leaks in.")


def estimators():
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import LinearRegression
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import QuantileTransformer

    from .linear_model import SoftTrimmedRegressor
    from .metrics import soft_spearman
    from .preprocessing import SoftRankTransformer

    X, y = load_diabetes(return_X_y=True)
    print("\nscikit-learn estimators on the diabetes data (442 x 10, bundled with sklearn)")
    bmi = X[:, [2]]
    print("SoftRankTransformer (soft quantile normalization) of the bmi feature:")
    print(_row("bmi", bmi[:6, 0]))
    print(_row("QuantileTransformer", QuantileTransformer(n_quantiles=442)
               .fit_transform(bmi)[:6, 0]))
    for strength in (0.0, 1.0, 10.0):
        u = SoftRankTransformer(regularization_strength=strength, n_quantiles=442)
        print(_row(f"soft, strength {strength:g}", u.fit_transform(bmi)[:6, 0]))

    X_tr, X_te, y_tr, y_te = train_test_split(X, y, random_state=0)
    y_bad = y_tr.copy()
    rng = np.random.default_rng(0)
    bad = rng.choice(len(y_bad), size=len(y_bad) // 5, replace=False)
    y_bad[bad] = 4 * y_bad.max()  # 20% gross outliers in the training targets
    print("\nSoftTrimmedRegressor (soft least trimmed squares) with 20% of the training "
          "targets corrupted;\nSpearman correlation of the predictions with the clean test "
          "targets (soft_spearman, strength 0):")
    for name, model in [("LinearRegression, clean", LinearRegression().fit(X_tr, y_tr)),
                        ("LinearRegression", LinearRegression().fit(X_tr, y_bad)),
                        ("SoftTrimmedRegressor", SoftTrimmedRegressor(random_state=0)
                         .fit(X_tr, y_bad))]:
        rho = soft_spearman(y_te, model.predict(X_te), regularization_strength=0.0)
        print(f"  {name:<24} {rho:.3f}")


if __name__ == "__main__":
    main()
