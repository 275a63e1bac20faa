"""Benchmark the mask-based soft statistics against their hard NumPy/SciPy counterparts.

Run from the repository root, with skrank built::

    python benchmarks/bench_stats.py            # 1x1e6 and 1000x100, float64, 1 thread
    python benchmarks/bench_stats.py --quick    # smaller, for a smoke run

Each line gives the median time of the skrank call (strength 1.0, standard normal data)
and of the hard counterpart on the same array in the same run, and their ratio:

* soft_topk_mask(x, k = n // 10)   vs  np.argpartition(-x, k - 1) (the hard selection)
* soft_quantile(x, 0.3)            vs  np.quantile(x, 0.3)
* soft_median(x)                   vs  np.median(x)
* soft_trimmed_mean(x, 0.1)        vs  scipy.stats.trim_mean(x, 0.1, axis=-1)
* vjp of soft_quantile (after the forward) vs np.quantile
* losses.spearman_loss (mean over rows)  vs  scipy.stats.spearmanr row by row
  (1x1e6 only) / the same computed with rankdata along the axis (batches)
* losses.ndcg_loss (k = 10)             vs  sklearn.metrics.ndcg_score(k=10) (batches)

and ragged rows (``lengths=``, 1000 lists of 10 to 190 entries) against the same lists
padded to the longest length in a 2-D array (soft_rank and ndcg_loss).
"""

import argparse
import platform

import numpy as np
import scipy
from scipy.stats import rankdata, spearmanr, trim_mean
from sklearn.metrics import ndcg_score
from threadpoolctl import threadpool_limits

import skrank
from skrank.losses import ndcg_loss, spearman_loss
from _timing import median_time  # benchmarks/_timing.py


def _pearson_rows(a, b):
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    return np.mean((a * b).sum(-1) / np.sqrt((a * a).sum(-1) * (b * b).sum(-1)))


def fmt(seconds):
    if seconds >= 1e-3:
        return f"{seconds * 1e3:8.2f} ms"
    return f"{seconds * 1e6:8.1f} us"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    shapes = [(1, 10**5), (100, 100)] if args.quick else [(1, 10**6), (1000, 100)]
    budget = 0.1 if args.quick else 1.0
    print(f"# skrank {skrank.__version__}, numpy {np.__version__}, scipy {scipy.__version__}, "
          f"{platform.platform()}, 1 thread, strength 1.0, float64\n")
    print("| shape | operator | skrank | hard counterpart | ratio |")
    print("|---|---|---:|---:|---:|")
    rng = np.random.default_rng(0)
    with threadpool_limits(limits=1, user_api="openmp"):
        for shape in shapes:
            x = rng.normal(size=shape)
            if shape[0] == 1:
                x = x[0]
            n = shape[1]
            k = max(n // 10, 1)
            _, vjp_fn = skrank.vjp(skrank.soft_quantile, x, 0.3)
            g = np.ones(np.shape(np.quantile(x, 0.3, axis=-1)))
            cases = [
                ("soft_topk_mask", lambda: skrank.soft_topk_mask(x, k),
                 lambda: np.argpartition(-x, k - 1, axis=-1)),
                ("soft_quantile", lambda: skrank.soft_quantile(x, 0.3),
                 lambda: np.quantile(x, 0.3, axis=-1)),
                ("soft_median", lambda: skrank.soft_median(x), lambda: np.median(x, axis=-1)),
                ("soft_trimmed_mean", lambda: skrank.soft_trimmed_mean(x, 0.1),
                 lambda: trim_mean(x, 0.1, axis=-1)),
                ("soft_quantile vjp", lambda: vjp_fn(g), lambda: np.quantile(x, 0.3, axis=-1)),
            ]
            y_true = np.round(rng.uniform(0, 3, size=x.shape))
            if shape[0] == 1:
                cases.append(("spearman_loss", lambda: spearman_loss(y_true, x),
                              lambda: spearmanr(y_true, x).statistic))
            else:
                cases += [
                    ("spearman_loss", lambda: spearman_loss(y_true, x),
                     lambda: _pearson_rows(rankdata(y_true, axis=-1), rankdata(x, axis=-1))),
                    ("ndcg_loss k=10", lambda: ndcg_loss(y_true, x, k=10),
                     lambda: ndcg_score(y_true, x, k=10)),
                ]
            for name, soft, hard in cases:
                ts, th = median_time(soft, budget), median_time(hard, budget)
                print(f"| {shape[0]}x{n} | {name} | {fmt(ts)} | {fmt(th)} | {ts / th:6.2f} |")

        n_lists = 100 if args.quick else 1000
        lengths = rng.integers(10, 191, size=n_lists)
        flat = rng.normal(size=lengths.sum())
        relevance = np.round(rng.uniform(0, 3, size=lengths.sum()))
        padded = rng.normal(size=(n_lists, lengths.max()))
        padded_rel = np.round(rng.uniform(0, 3, size=padded.shape))
        print("\n| ragged lists | operator | ragged (lengths=) | padded 2-D | ratio |")
        print("|---|---|---:|---:|---:|")
        for name, ragged, pad in [
            ("soft_rank", lambda: skrank.soft_rank(flat, lengths=lengths),
             lambda: skrank.soft_rank(padded)),
            ("ndcg_loss", lambda: ndcg_loss(relevance, flat, lengths=lengths),
             lambda: ndcg_loss(padded_rel, padded)),
        ]:
            tr, tp = median_time(ragged, budget), median_time(pad, budget)
            print(f"| {n_lists} x 10..190 | {name} | {fmt(tr)} | {fmt(tp)} | {tr / tp:6.2f} |")


if __name__ == "__main__":
    main()
