"""The sparse p4/3 top-k mask against the authors' published method (issue 18, part 4).

Run from the repository root, with skrank built::

    python benchmarks/bench_sparse.py                 # n = 1e3 ... 2e4 both, 1e5, 1e6 skrank
    python benchmarks/bench_sparse.py --quick         # n = 1e3, 4e3
    python benchmarks/bench_sparse.py --sizes 500,2e3 # these n, both methods
    python benchmarks/bench_sparse.py --output sparse.md

The method of Sander et al. (ICML 2023, google-research/sparse_soft_topk), written
again here in NumPy (their code is JAX around a Numba kernel called back on the host):

- the sorting permutation as an n x n one-hot matrix ``P``; ``s = P x`` sorts and
  ``P^T out`` unsorts, both dense products: O(n^2) time and memory;
- pool-adjacent-violators in float32 in and out, where each block keeps the sums of
  the coefficients of its cubic ``sum (s_i - v)^3 - l^3 sum w`` expanded in powers of
  ``v`` (``k``, ``-3 sum s``, ``3 sum s^2``, ``-sum s^3 + l^3 sum w``) and solves it by
  the general cubic formula;
- the mask ``((s - v) / l)^3``.

It is timed with Numba when Numba is installed (as the authors run it), else in plain
Python (marked "python": far slower, not a fair comparison). skrank's
``soft_topk_mask(x, k, regularization_strength=l, regularization="p4/3")`` computes
the same mask. Both run forward on one float32 row of standard normal values, k = n / 10,
l = 0.1 (their default); reported: median times, the peak of ``tracemalloc`` during
one call (NumPy arrays and skrank's kernels; Numba's own arrays are not traced), and the
largest difference between the two masks. Goals (issue 18): skrank at least 10x faster
at the largest common n, and O(n) memory: skrank's peak per entry flat in n.
"""

import argparse
import tracemalloc

import numpy as np

import skrank
from _timing import Report, Table, machine_basics, median_time

try:
    import numba
except ImportError:  # the reference then runs in plain Python
    numba = None


def _cubic_root(a, b, c, d):
    """One real root of a v^3 + b v^2 + c v + d, by the general formula (depressed
    cubic f, g and discriminant h), as the authors solve a block's equation."""
    f = (3.0 * c / a - (b / a) ** 2) / 3.0
    g = (2.0 * (b / a) ** 3 - 9.0 * b * c / a ** 2 + 27.0 * d / a) / 27.0
    h = g * g / 4.0 + f ** 3 / 27.0
    if h > 0:  # one real root
        r = -g / 2.0 + np.sqrt(h)
        t = -g / 2.0 - np.sqrt(h)
        return np.sign(r) * np.abs(r) ** (1 / 3) + np.sign(t) * np.abs(t) ** (1 / 3) - b / (3.0 * a)
    if h < 0:  # three real roots (not reached for this monotone cubic, up to rounding)
        i = np.sqrt(g * g / 4.0 - h)
        j = np.abs(i) ** (1 / 3)
        return 2.0 * j * np.cos(np.arccos(-g / (2.0 * i)) / 3.0) - b / (3.0 * a)
    return -np.sign(d / a) * np.abs(d / a) ** (1 / 3)


def _pav_power_sums(s, w, lam):
    """Block values v (decreasing) of the p4/3 mask problem for s sorted descending,
    each block's cubic kept as sums of its expanded coefficients."""
    n = s.shape[0]
    s = s.astype(np.float64)
    start = np.zeros(n, np.int64)
    c3, c2, c1, c0, val = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    nb = 0
    for i in range(n):
        b3, b2, b1, b0 = 1.0, -3.0 * s[i], 3.0 * s[i] ** 2, -s[i] ** 3 + lam ** 3 * w[i]
        v = s[i] - lam * w[i] ** (1 / 3)
        st = i
        while nb > 0 and val[nb - 1] <= v:  # pool with the block above
            nb -= 1
            b3 += c3[nb]
            b2 += c2[nb]
            b1 += c1[nb]
            b0 += c0[nb]
            st = start[nb]
            v = _cubic_root(b3, b2, b1, b0)
        start[nb], c3[nb], c2[nb], c1[nb], c0[nb], val[nb] = st, b3, b2, b1, b0, v
        nb += 1
    out = np.empty(n)
    for b in range(nb):
        out[start[b]:(start[b + 1] if b + 1 < nb else n)] = val[b]
    return out.astype(np.float32)


if numba is not None:
    _cubic_root = numba.njit(_cubic_root)
    _pav_power_sums = numba.njit(_pav_power_sums)


def authors_mask(x, k, lam):
    """Their soft top-k mask of one float32 row: one-hot permutation matrix, PAV."""
    n = x.shape[0]
    P = np.eye(n, dtype=x.dtype)[np.argsort(-x, kind="stable")]  # n x n
    w = np.zeros(n, np.float32)
    w[:k] = 1.0
    s = P @ x
    v = _pav_power_sums(s, w, np.float32(lam))
    return P.T @ (((s - v) / np.float32(lam)) ** 3)


def peak_bytes(fun):
    tracemalloc.start()
    try:
        fun()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="n = 1e3 and 4e3 only")
    p.add_argument("--sizes", help="comma-separated n for both methods (no skrank-only n)")
    p.add_argument("--lam", type=float, default=0.1, help="the strength l (default 0.1)")
    p.add_argument("--budget", type=float, default=1.0, help="seconds of repeats per cell")
    p.add_argument("--output", help="also write the markdown report to this file")
    args = p.parse_args(argv)
    common = [1000, 4000] if args.quick else [1000, 4000, 10000, 20000]
    alone = [] if args.quick or args.sizes else [100_000, 1_000_000]
    if args.sizes:
        common = [int(float(v)) for v in args.sizes.split(",")]
    engine = f"numba {numba.__version__}" if numba is not None else "python"
    out = Report("Sparse soft top-k mask (p4/3): skrank against the authors' method",
                 machine_basics() + [("numpy / skrank", f"{np.__version__} / "
                                                        f"{skrank.__version__}"),
                                     ("reference PAV", engine),
                                     ("strength l, k", f"{args.lam}, n / 10")])
    out("\n## Forward, one float32 row\n")
    table = Table(out, [("n", 9, ">"), ("reference", 11, ">"), ("skrank", 10, ">"),
                        ("speedup", 8, ">"), ("ref peak", 10, ">"), ("skrank peak", 11, ">"),
                        ("skrank B/entry", 14, ">"), ("max |diff|", 10, ">")])
    rng = np.random.default_rng(0)
    speedup = per_entry = None
    per_entries = []
    for n in common + alone:
        x = rng.normal(size=n).astype(np.float32)
        k = n // 10

        def ours():
            return skrank.soft_topk_mask(x, k, regularization_strength=args.lam,
                                         regularization="p4/3")

        t_ours = median_time(ours, args.budget)
        m_ours = peak_bytes(ours)
        per_entry = m_ours / n
        per_entries.append(per_entry)
        cells = ["-"] * 3 + ["-"]
        if n in common:
            def theirs():
                return authors_mask(x, k, args.lam)

            t_theirs = median_time(theirs, args.budget, min_repeats=3)
            m_theirs = peak_bytes(theirs)
            diff = float(np.abs(theirs().astype(np.float64) - ours()).max())
            speedup = t_theirs / t_ours
            cells = [f"{t_theirs * 1e3:.1f} ms", f"{speedup:.0f}x",
                     f"{m_theirs / 2**20:.0f} MiB", f"{diff:.1e}"]
        table.row([n, cells[0], f"{t_ours * 1e3:.2f} ms", cells[1], cells[2],
                   f"{m_ours / 2**20:.1f} MiB", f"{per_entry:.0f}", cells[3]])
    out("\n## Goals\n")
    flat = max(per_entries) / min(per_entries)
    out(f"- speedup at n = {common[-1]}: {speedup:.0f}x (goal >= 10x): "
        f"{'PASS' if speedup >= 10 else 'FAIL'}")
    out(f"- skrank's peak bytes per entry, largest over smallest across n: {flat:.2f} "
        f"(O(n) memory: within 2): {'PASS' if flat <= 2 else 'FAIL'}")
    out.close()


if __name__ == "__main__":
    main()
