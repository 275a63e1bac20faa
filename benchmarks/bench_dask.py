"""Benchmark skrank on dask arrays against the same call on the NumPy array.

How to run (from the repository root, with skrank and the ``dask`` extra installed)::

    python benchmarks/bench_dask.py            # ~1 min on 2 cores
    python benchmarks/bench_dask.py --quick    # smoke run
    python benchmarks/bench_dask.py --rows 100000 --n 1000 --chunk-rows 10000

Everything printed is markdown: the machine and versions, then one table. For each
function (on standard normal float64 data of shape rows x n, operated along the last
axis), the median time of:

* ``numpy``: the function on the NumPy array (skrank's kernels, all OpenMP threads);
* ``dask threads``: ``fun(x).compute()`` on a dask array of row chunks, with dask's
  threaded scheduler (one task per chunk; each task's kernel call is itself threaded);
* ``dask rechunk``: the same on an array chunked along the operated axis too, which
  the call rechunks to one chunk first (what the chunking rule in the user guide
  avoids);
* ``cluster``: the row-chunked call on a ``dask.distributed.LocalCluster`` of worker
  processes (one thread each), data created on the workers, the result gathered by
  the client (for ``soft_rank`` and ``soft_sort``, an array as large as the input).

The ratios are to ``numpy``: they show what dask costs on one machine (task overhead,
copies between processes), not what a cluster of many machines gains.
"""

import argparse
import os
import statistics
import time

import numpy as np

import skrank
from _timing import cpu_model  # benchmarks/_timing.py


def median_compute(make, repeats):
    """Median wall time of make() (which computes), after one warm-up call."""
    make()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        make()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=40_000)
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--chunk-rows", type=int, default=5_000)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    import dask
    import dask.array as da
    from dask.distributed import Client, LocalCluster

    rows, n, chunk = args.rows, args.n, args.chunk_rows
    if args.quick:
        rows, n, chunk, args.repeats = 4_000, 200, 1_000, 3
    x_np = np.random.default_rng(0).standard_normal((rows, n))
    x = da.from_array(x_np, chunks=(chunk, n))
    x_split = da.from_array(x_np, chunks=(chunk, n // 2))
    funs = {
        "soft_rank": lambda a: skrank.soft_rank(a, regularization_strength=0.1),
        "soft_sort": lambda a: skrank.soft_sort(a),
        "soft_quantile(0.9)": lambda a: skrank.soft_quantile(a, 0.9,
                                                             regularization_strength=0.1),
    }
    print(f"# skrank on dask arrays\n\nskrank {skrank.__version__}, dask {dask.__version__}, "
          f"NumPy {np.__version__}; CPU: {cpu_model()}, {os.cpu_count()} cores; data "
          f"{rows} x {n} float64, chunks of {chunk} rows; median of {args.repeats}\n")
    print("| function | numpy | dask threads | ratio | dask rechunk | ratio | cluster | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        x_remote = client.persist(da.random.default_rng(0).standard_normal(
            (rows, n), chunks=(chunk, n)))
        results = []
        for name, fun in funs.items():
            t_np = median_compute(lambda: fun(x_np), args.repeats)
            with dask.config.set(scheduler="threads"):
                t_th = median_compute(lambda: fun(x).compute(), args.repeats)
                t_re = median_compute(lambda: fun(x_split).compute(), args.repeats)
            t_cl = median_compute(lambda: client.compute(fun(x_remote)).result(),
                                  args.repeats)
            results.append((name, t_np, t_th, t_re, t_cl))
    for name, t_np, t_th, t_re, t_cl in results:
        print(f"| {name} | {t_np * 1e3:.0f} ms | {t_th * 1e3:.0f} ms | {t_th / t_np:.2f} | "
              f"{t_re * 1e3:.0f} ms | {t_re / t_np:.2f} | {t_cl * 1e3:.0f} ms | "
              f"{t_cl / t_np:.2f} |")


if __name__ == "__main__":
    main()
