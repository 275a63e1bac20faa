"""Benchmark the per-query ranking metrics (groups=) against a loop over SciPy.

How to run (from the repository root, with skrank built/installed)::

    python benchmarks/bench_grouped.py            # 100,000 documents in 10,000 queries
    python benchmarks/bench_grouped.py --quick    # 10,000 documents in 1,000 queries
    python benchmarks/bench_grouped.py --docs 1000000 --queries 50000 --output g.md

Everything printed is markdown: a header with the machine, a table and the goals.

Data (``np.random.default_rng(--seed)``): ``--docs`` documents shuffled over ``--queries``
queries of random sizes (query ids drawn uniformly, so sizes are about Poisson), integer
relevance 0-4 and scores ``relevance + N(0, 1)`` rounded to 0.1 (ties on both sides).

Rows: :func:`skrank.metrics.soft_spearman` (``groups=``, strength 0 and the default
strength, and the default strength with its gradient through ``skrank.vjp``),
:func:`skrank.metrics.kendall_tau` and :func:`skrank.metrics.soft_ndcg` (``k=10``, hard
and soft), against the loop a user would write: ``scipy.stats.spearmanr`` /
``kendalltau`` / ``sklearn.metrics.ndcg_score`` per query over the rows selected by a
``np.unique(..., return_inverse=True)`` split, the queries with one document or a
constant side left out (the same queries skrank leaves out; the values are checked
equal). Times are medians of repeated calls (one thread), ``_timing.median_time``.

Goal: the grouped functions at least 10x faster than the SciPy loop.
"""

import argparse

import numpy as np
import scipy
from scipy.stats import kendalltau, spearmanr
from sklearn.metrics import ndcg_score

import skrank
from skrank.metrics import kendall_tau, soft_ndcg, soft_spearman

from _timing import Report, Table, machine_basics, median_time  # benchmarks/_timing.py

SPEEDUP_GOAL = 10.0


def make_data(n_docs, n_queries, seed):
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, n_queries, size=n_docs)
    y_true = rng.integers(0, 5, size=n_docs).astype(float)
    y_pred = np.round(y_true + rng.normal(size=n_docs), 1)
    return y_true, y_pred, groups


def scipy_loop(statistic, y_true, y_pred, groups):
    """The mean of statistic over the queries where it is defined, query by query."""
    _, inverse = np.unique(groups, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.flatnonzero(np.diff(inverse[order])) + 1
    values = []
    for rows in np.split(order, bounds):
        t, p = y_true[rows], y_pred[rows]
        if len(rows) < 2 or np.ptp(t) == 0 or np.ptp(p) == 0:
            continue
        values.append(statistic(t, p).statistic)
    return float(np.mean(values))


class _Statistic:
    def __init__(self, statistic):
        self.statistic = statistic


def _ndcg_at_10(y_true, y_pred):
    """sklearn.metrics.ndcg_score of one query, shaped as SciPy's results."""
    return _Statistic(ndcg_score([y_true], [y_pred], k=10))


def machine_info(args):
    return machine_basics() + [
        ("numpy / scipy", f"{np.__version__} / {scipy.__version__}"),
        ("skrank", skrank.__version__),
        ("data", f"{args.docs:,} documents in {args.queries:,} queries, seed {args.seed}"),
        ("timing", f"median of repeated calls, budget {args.budget} s per cell"),
    ]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="10,000 documents, 1,000 queries")
    p.add_argument("--docs", type=int, help="documents (default 100,000)")
    p.add_argument("--queries", type=int, help="queries (default 10,000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--budget", type=float, default=1.0,
                   help="seconds of repeated calls per cell (default 1)")
    p.add_argument("--output", help="also write the markdown report to this file")
    args = p.parse_args(argv)
    args.docs = args.docs or (10_000 if args.quick else 100_000)
    args.queries = args.queries or (1_000 if args.quick else 10_000)

    from threadpoolctl import threadpool_limits

    out = Report("Per-query ranking metrics against a SciPy loop", machine_info(args),
                 args.output)
    y_true, y_pred, groups = make_data(args.docs, args.queries, args.seed)
    cases = [
        ("Spearman, hard", lambda: soft_spearman(y_true, y_pred, groups=groups,
                                                 regularization_strength=0.0),
         lambda: scipy_loop(spearmanr, y_true, y_pred, groups)),
        ("Spearman, soft (default)", lambda: soft_spearman(y_true, y_pred,
                                                           groups=groups), None),
        ("Spearman, soft + gradient", lambda: skrank.vjp(
            soft_spearman, y_true, y_pred, argnums=1, groups=groups)[1](1.0), None),
        ("Kendall tau-b", lambda: kendall_tau(y_true, y_pred, groups=groups),
         lambda: scipy_loop(kendalltau, y_true, y_pred, groups)),
        ("NDCG@10, hard", lambda: soft_ndcg(y_true, y_pred, groups=groups, k=10),
         lambda: scipy_loop(_ndcg_at_10, y_true, y_pred, groups)),
        ("NDCG@10, soft (0.5)", lambda: soft_ndcg(y_true, y_pred, groups=groups, k=10,
                                                  regularization_strength=0.5), None),
    ]
    out("\n## Times (1 thread)\n")
    table = Table(out, [("metric", 26, "<"), ("skrank", 10, ">"), ("SciPy loop", 10, ">"),
                        ("speed-up", 8, ">")])
    speedups = {}
    with threadpool_limits(limits=1):
        for name, ours, theirs in cases:
            t_ours = median_time(ours, args.budget, min_repeats=3)
            if theirs is None:
                table.row([name, f"{t_ours * 1e3:.1f} ms", "-", "-"])
                continue
            if abs(ours() - theirs()) > 1e-12:
                out.errors.append(f"{name}: skrank {ours()!r} != SciPy loop {theirs()!r}")
            t_theirs = median_time(theirs, args.budget, min_repeats=1)
            speedups[name] = t_theirs / t_ours
            table.row([name, f"{t_ours * 1e3:.1f} ms", f"{t_theirs * 1e3:.0f} ms",
                       f"{speedups[name]:.0f}x"])
    out("\n## Goals\n")
    goals = Table(out, [("goal", 44, "<"), ("value", 8, ">"), ("target", 8, ">"),
                        ("result", 6, "<")])
    for name, value in speedups.items():
        goals.row([f"{name}: speed-up over the SciPy loop", f"{value:.0f}x",
                   f">= {SPEEDUP_GOAL:g}x", "PASS" if value >= SPEEDUP_GOAL else "FAIL"])
    out.close()


if __name__ == "__main__":
    main()
