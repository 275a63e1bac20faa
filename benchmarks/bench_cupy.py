"""Benchmark skrank's CuPy path on a GPU against ``cupy.argsort`` and the CPU path.

How to run (from the repository root, skrank installed, CuPy and a GPU present)::

    python benchmarks/bench_cupy.py            # the issue's shapes, ~1 min
    python benchmarks/bench_cupy.py --quick    # smoke run
    python benchmarks/bench_cupy.py --shapes 1x1e6 --chunks 256,1024,4096,16384

Everything printed is markdown: the device and versions, then two tables.

Main table (``soft_rank`` / ``soft_sort``, l2, strength 1, standard normal data
from ``np.random.default_rng(0)``, rows x n sorted along the last axis):

* ``argsort``: median time of ``cupy.argsort(x, axis=-1)`` on the same device
  array in the same run (the floor: every soft operator sorts once).
* ``forward`` / ``vjp``: median time of ``op(x)``, and of ``vjp_fn(g)`` alone
  after ``skrank.vjp(op, x)`` was computed once; ``/argsort``: their ratio to it.
* ``cpu``: median time of the same call on the NumPy copy (skrank's Cython
  kernels, all OpenMP threads); ``cpu/gpu``: the GPU's speedup.

Chunk table: the forward time of ``soft_rank`` for each chunk size (entries per
PAV thread; see ``skrank/_pav_cuda.cu``), the default marked ``*``. A row of at
most C entries is one thread; longer rows are cut into chunks solved in
parallel and merged over their boundaries by one thread per row, so a small C
starves the merge pass and a large C the chunk threads: the table shows where
the crossover lies on this GPU (``skrank._cupy.chunk_size`` picks the default).

Every GPU time is wall time around the call followed by a device synchronise:
the median of at least 5 samples after one warm-up call (which also compiles the
kernels with NVRTC), then more samples while ``--budget`` seconds last.
"""

import argparse
import sys

import numpy as np

import skrank
from skrank import _cupy
from _timing import cpu_model, median_time  # benchmarks/_timing.py

SHAPES = ["1x1e6", "4096x100", "100x1e4"]


def parse_shape(text):
    rows, n = text.lower().split("x")
    return int(float(rows)), int(float(n))


def gpu_time(cp, fun, budget):
    def synced():
        fun()
        cp.cuda.Device().synchronize()
    return median_time(synced, budget)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--chunks", default="64,256,1024,4096,16384")
    parser.add_argument("--budget", type=float, help="seconds per cell (1, quick 0.2)")
    parser.add_argument("--quick", action="store_true", help="small shapes, short budget")
    args = parser.parse_args(argv)
    try:
        import cupy as cp
        device = cp.cuda.Device()
        name = cp.cuda.runtime.getDeviceProperties(device.id)["name"]
        name = name.decode() if isinstance(name, bytes) else name
    except Exception as exc:  # no CuPy, no driver or no device
        sys.exit(f"bench_cupy needs CuPy and a GPU: {exc}")
    shapes = [parse_shape(s) for s in args.shapes.split(",")]
    if args.quick:
        shapes = [(1, 10_000), (256, 100)]
    budget = args.budget if args.budget is not None else (0.2 if args.quick else 1.0)
    default = _cupy.chunk_size
    chunks = sorted(set(map(int, args.chunks.split(","))) | {default(n) for _, n in shapes})
    print(f"# skrank CuPy benchmark\n\nskrank {skrank.__version__}, CuPy {cp.__version__}, "
          f"NumPy {np.__version__}; GPU: {name}; CPU: {cpu_model()}\n")
    print("| shape | op | argsort | forward | /argsort | vjp | /argsort | cpu | cpu/gpu |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    rng = np.random.default_rng(0)
    for rows, n in shapes:
        x_host = rng.normal(size=(rows, n))
        x = cp.asarray(x_host)
        g = cp.asarray(rng.normal(size=(rows, n)))
        floor = gpu_time(cp, lambda: cp.argsort(x, axis=-1), budget)
        for op in (skrank.soft_rank, skrank.soft_sort):
            fwd = gpu_time(cp, lambda: op(x), budget)
            vjp_fn = skrank.vjp(op, x)[1]
            bwd = gpu_time(cp, lambda: vjp_fn(g), budget)
            cpu = median_time(lambda: op(x_host), budget)
            print(f"| {rows}x{n} | {op.__name__} | {floor * 1e3:.3f} ms | "
                  f"{fwd * 1e3:.3f} ms | {fwd / floor:.2f} | {bwd * 1e3:.3f} ms | "
                  f"{bwd / floor:.2f} | {cpu * 1e3:.2f} ms | {cpu / fwd:.1f} |")
    print("\n| shape | " + " | ".join(f"C={c}" for c in chunks) + " |")
    print("|---|" + "---:|" * len(chunks))
    for rows, n in shapes:
        x = cp.asarray(rng.normal(size=(rows, n)))
        cells = []
        for c in chunks:
            _cupy.chunk_size = lambda m, c=c: c
            try:
                t = gpu_time(cp, lambda: skrank.soft_rank(x), budget)
            finally:
                _cupy.chunk_size = default
            mark = "*" if c == default(n) else ""
            cells.append(f"{t * 1e3:.3f} ms{mark}")
        print(f"| {rows}x{n} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
