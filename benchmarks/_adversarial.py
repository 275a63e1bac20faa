"""Worst-case inputs for pool-adjacent-violators (PAV), for bench_pav.py and the tests.

A stack-based PAV pushes each entry once and pops it at most once, so it is O(n) on any
input; implementations that rescan pooled ranges or backtrack have been much slower on
the sequences below, each an increasing-isotonic problem ``z`` of length ``n``:

- ``pathological``: the input that showed an earlier scikit-learn PAV to be quadratic
  (scikit-learn pull request 6691): three ramps, each pooling into what came before.
- ``alternating``: a descending sequence with every other value lowered by 1.5, the input
  on which scikit-learn (issue 8063) and Spark (SPARK-17455) backtracked exponentially.
- ``descending``: one long violating run; everything pools into one block, one merge
  per entry.
- ``sawtooth``: descending teeth that pool, each tooth above the last, so the stack grows
  to n / 64 blocks.
- ``tied_weights``: equal values with weights alternating 1 and 1e6 (ties always pool).

``rank_input`` and ``sort_input`` turn ``z`` into an ``x`` whose soft rank (ascending)
or soft sort (descending), at strength 1, makes the kernel's PAV solve exactly ``z``'s
problem: the operators sort first, so an adversarial order of x means nothing to them,
but the gaps between sorted values decide every merge.
"""

import numpy as np

GENERATORS = ("pathological", "alternating", "descending", "sawtooth", "tied_weights")


def isotonic_problem(name, n):
    """(y, weights or None) of length n for generator `name`."""
    i = np.arange(n, dtype=np.float64)
    weights = None
    if name == "pathological":
        m = max(n // 4, 1)
        y = np.r_[np.arange(m), np.arange(-(m - 1), m), np.arange(-(m - 1), 1)]
        y = np.r_[y, y[-1] + np.arange(1, n - y.size + 1)][:n]  # an increasing tail
    elif name == "alternating":
        y = n - i
        y[1::2] -= 1.5
    elif name == "descending":
        y = n - i
    elif name == "sawtooth":
        y = (i // 64) * 32 - i % 64
    elif name == "tied_weights":
        y = np.zeros(n)
        weights = np.where(i % 2 == 0, 1.0, 1e6)
    else:
        raise ValueError(f"unknown generator {name!r}; choose from {GENERATORS}")
    return y.astype(np.float64), weights


def _power_of_two_below(bound):
    """The largest power of two c with c * bound < 1 (1 if bound <= 0)."""
    return 1.0 if bound <= 0 else 2.0 ** -(np.floor(np.log2(bound)) + 1)


def _shuffled(x, seed=0):
    return np.random.default_rng(seed).permutation(x)


def rank_input(z):
    """x such that soft_rank(x, regularization_strength=1.0) runs PAV on z's problem.

    The ascending soft rank pools the descending sort s of x against rho = (n, ..., 1),
    fitting s - rho decreasingly: with s = rho - c z that is -c times z's increasing fit,
    with the same blocks. c, a power of two, keeps s strictly decreasing (c times z's
    largest drop below 1) and every value exact in float64 for n < 2^24.
    """
    n = z.size
    c = _power_of_two_below(np.max(-np.diff(z), initial=0.0))
    return _shuffled(np.arange(n, 0, -1, dtype=np.float64) - c * z)


def sort_input(z):
    """x such that soft_sort(x, regularization_strength=1.0, direction="descending")
    runs PAV on z's problem: the descending sort t of x is fitted as rho - t, so
    t = rho + c z (c times z's largest rise below 1, keeping t strictly decreasing)."""
    n = z.size
    c = _power_of_two_below(np.max(np.diff(z), initial=0.0))
    return _shuffled(np.arange(n, 0, -1, dtype=np.float64) + c * z)
