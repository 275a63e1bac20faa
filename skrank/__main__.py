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


if __name__ == "__main__":
    main()
