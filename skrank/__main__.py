"""Demo: ``python -m skrank`` shows soft ranks and soft sorts beside the hard ones."""

import numpy as np

import skrank


def _row(label, values):
    return f"  {label:<22}" + " ".join(f"{v:7.3f}" for v in values)


def main():
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
    print(f"  (the mean is {y.mean():.1f}; the l2 soft sort's middle value at strength 0.01 is "
          f"{skrank.soft_sort(y, regularization_strength=0.01)[2]:.1f})")


if __name__ == "__main__":
    main()
