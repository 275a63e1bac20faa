"""Benchmark skrank's soft ranking / sorting kernels against ``np.argsort``.

How to run (from the repository root, with skrank built/installed)::

    python benchmarks/bench_ops.py                 # full run, ~5-7 min on 2 cores
    python benchmarks/bench_ops.py --quick         # smoke run, < 20 s
    python benchmarks/bench_ops.py --shapes 1x1e6,1000x100 --dtypes float32 \\
        --ops soft_rank --threads 1,2 --output bench.md

Everything printed is markdown: a header with the machine and versions, the
main table, the isotonic regression table, a memory check and a list of the
issue's performance goals with PASS/FAIL (SKIP when the cell was not measured).

Main table columns:

* ``shape``, ``dtype``, ``op``, ``reg``: input shape (rows x n, ranked along
  the last axis), dtype, function and regularization.
* ``mode``: ``forward`` is ``op(x)``; ``vjp`` is ``vjp_fn(g)`` alone, after
  ``y, vjp_fn = skrank.vjp(op, x)`` was computed once; ``fwd+vjp`` is both, a
  training step's work (the forward pass that keeps the structure, then one vjp);
  ``jvp`` (opt-in) is ``skrank.jvp(op, x, t)``, forward included.
* ``argsort``: median time of ``np.argsort(x, axis=-1)`` on the same array in
  the same run (numpy sorts on one thread).
* ``sort``, ``packed``: the plain-sort floors, same array, same run: ``np.sort(x,
  axis=-1)`` (the sorted values alone), and for float32 ``np.sort`` of packed uint64
  keys, the order-preserving bits of each value above its 32-bit index (one plain
  sort that yields both the sorted values and the permutation a soft operator needs;
  the keys are built before timing). ``/sort 1t`` and ``/packed 1t`` divide the
  single-threaded skrank time by them.
* ``time Nt``: median time of the skrank call with the OpenMP thread pool
  limited to N threads (``threadpoolctl.threadpool_limits(N, "openmp")``).
* ``/argsort Nt``: ``time Nt`` divided by the (single-threaded) argsort time.
* ``1t/Nt``: speedup of N threads over the first thread count.

Timings are medians of ``time.perf_counter`` samples, one call per sample,
after one warm-up call; each cell repeats at least 5 times and then until its
time budget (``--budget`` seconds) is used.  Data are standard normal draws
from ``np.random.default_rng(0)``; isotonic regression uses random walks.

The memory check runs ``soft_rank`` on a 1x1e6 float64 array under
``tracemalloc`` and reports the peak of traced allocations (numpy arrays,
Python objects; the returned array included) divided by the input's nbytes.
Plain C ``malloc`` calls inside the extension are invisible to it.

Run it on an otherwise idle machine: with 2 threads on 2 cores, any other busy
process makes OpenMP threads wait for a scheduler slice, and the ``2t`` columns
then show inflated times (often near multiples of the kernel tick, e.g. 4 ms).
Compare the load averages printed at the start and the end.
"""

import argparse
import os
import sys
import tracemalloc

import numpy as np
import scipy
import scipy.optimize

import skrank
from _timing import Report, Table, machine_basics, median_time as _median_time  # benchmarks/_timing.py

try:
    import threadpoolctl
except ImportError:  # pragma: no cover - informative exit only
    sys.exit("bench_ops.py needs threadpoolctl (pip install threadpoolctl)")

OPS = ("soft_rank", "soft_sort")
REGS = ("l2", "kl", "p4/3", "p3/2")
MODES = ("forward", "vjp", "fwd+vjp", "jvp")
FULL_SHAPES = "1x1e3,1x1e5,1x1e6,1000x100,1000x1000,100x1e4"
QUICK_SHAPES = "1x1e3,1x1e5,1000x100"
FULL_ISO_SIZES = (10**3, 10**5, 10**6)
QUICK_ISO_SIZES = (10**3, 10**5)
MIN_REPEATS = 5


# ----------------------------------------------------------------- helpers --

def parse_shape(text):
    """'1000x100' or '1x1e6' -> (1000, 100) / (1, 1000000)."""
    return tuple(int(float(part)) for part in text.lower().split("x"))


def shape_label(shape):
    def short(n):
        exp = len(str(n)) - 1
        return f"1e{exp}" if n == 10**exp and exp >= 4 else str(n)
    return "x".join(short(n) for n in shape)


def csv(text):
    return [item.strip() for item in text.split(",") if item.strip()]


def median_time(fn, budget):
    """Median wall time of ``fn()`` after a warm-up call (adaptive repeats)."""
    return _median_time(fn, budget, MIN_REPEATS)


def fmt_time(seconds):
    if seconds is None:
        return "ERR"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.3f} s"


def fmt_ratio(num, den):
    return "-" if num is None or den is None else f"{num / den:.2f}"


def openmp_limits(threads):
    return threadpoolctl.threadpool_limits(limits=threads, user_api="openmp")


# ------------------------------------------------------------------ header --

def numpy_simd():
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
        return " ".join(f for f in __cpu_dispatch__ if __cpu_features__.get(f)) or "none"
    except ImportError:
        return "unknown"


def machine_info(args):
    skrank.soft_rank(np.ones(8))  # make sure the extension (and OpenMP) is loaded
    omp_env = " ".join(f"{k}={v}" for k, v in sorted(os.environ.items())
                       if k.startswith(("OMP_", "GOMP_", "KMP_"))) or "(none set)"
    omp = [f"{i.get('prefix')} {i.get('version') or ''} default {i['num_threads']} threads"
           for i in threadpoolctl.threadpool_info() if i["user_api"] == "openmp"]
    return machine_basics() + [
        ("numpy", f"{np.__version__} (SIMD: {numpy_simd()})"),
        ("scipy", scipy.__version__),
        ("skrank", getattr(skrank, "__version__", "unknown")),
        ("threadpoolctl", threadpoolctl.__version__),
        ("OpenMP runtime", "; ".join(omp) or "NOT FOUND (thread limits have no effect)"),
        ("OMP environment", omp_env),
        ("settings", f"regularization_strength={args.strength}, budget {args.budget} s/cell, "
                     f">= {MIN_REPEATS} repeats, median"),
    ]


# -------------------------------------------------------------- benchmarks --

def packed_keys(x):
    """float32 rows as uint64 keys that sort like (value, index): the value's bits made
    order-preserving (-0.0 as 0.0; negative values bit-flipped, positive ones with the
    sign bit set) in the high 32 bits, the index within the row in the low 32."""
    bits = (x + np.float32(0.0)).view(np.uint32)  # -0.0 + 0.0 is 0.0
    key = np.where(bits >> 31, ~bits, bits | np.uint32(0x80000000)).astype(np.uint64)
    return (key << np.uint64(32)) | np.arange(x.shape[-1], dtype=np.uint64)


def make_call(op, reg, mode, x, strength, rng):
    """Return the zero-argument callable timed for one table cell."""
    fun = getattr(skrank, op)
    kwargs = dict(regularization_strength=strength, regularization=reg)
    if mode == "forward":
        return lambda: fun(x, **kwargs)
    if mode in ("vjp", "fwd+vjp"):
        y, vjp_fn = skrank.vjp(fun, x, **kwargs)
        g = rng.standard_normal(y.shape).astype(x.dtype)
        if mode == "fwd+vjp":
            return lambda: skrank.vjp(fun, x, **kwargs)[1](g)
        return lambda: vjp_fn(g)
    tangent = rng.standard_normal(x.shape).astype(x.dtype)
    return lambda: skrank.jvp(fun, x, tangent, **kwargs)


def bench_main(args, out, errors):
    """Main table.  Returns (times, floors) keyed by (shape, dtype, ...)."""
    threads = args.threads
    columns = [("shape", 10, "<"), ("dtype", 7, "<"), ("op", 9, "<"), ("reg", 3, "<"),
               ("mode", 7, "<"), ("argsort", 9, ">"), ("sort", 9, ">"), ("packed", 9, ">")]
    for k in threads:
        columns += [(f"time {k}t", 9, ">"), (f"/argsort {k}t", 11, ">")]
    columns += [(f"{threads[0]}t/{k}t", 6, ">") for k in threads[1:]]
    columns += [(f"/sort {threads[0]}t", 8, ">"), (f"/packed {threads[0]}t", 10, ">")]
    table = Table(out, columns)

    times, floors = {}, {}
    for shape in args.shapes:
        for dtype in args.dtypes:
            rng = np.random.default_rng(0)
            x = rng.standard_normal(shape).astype(dtype)
            floor = median_time(lambda: np.argsort(x, axis=-1), args.budget)
            floors[shape, dtype] = floor
            sort = median_time(lambda: np.sort(x, axis=-1), args.budget)
            floors[shape, dtype, "sort"] = sort
            packed = None
            if dtype == "float32":
                keys = packed_keys(x)
                packed = median_time(lambda: np.sort(keys, axis=-1), args.budget)
                floors[shape, dtype, "packed"] = packed
            for op in [o for o in args.ops if o in OPS]:
                for reg in args.regs:
                    for mode in args.modes:
                        row = {}
                        try:
                            call = make_call(op, reg, mode, x, args.strength, rng)
                            for k in threads:
                                with openmp_limits(k):
                                    row[k] = median_time(call, args.budget)
                        except Exception as exc:  # report and keep going
                            errors.append(f"{shape_label(shape)} {dtype} {op} {reg} {mode}: "
                                          f"{type(exc).__name__}: {exc}")
                        for k, t in row.items():
                            times[shape, dtype, op, reg, mode, k] = t
                        values = [shape_label(shape), dtype, op, reg, mode, fmt_time(floor),
                                  fmt_time(sort), fmt_time(packed) if packed else "-"]
                        for k in threads:
                            values += [fmt_time(row.get(k)), fmt_ratio(row.get(k), floor)]
                        values += [fmt_ratio(row.get(threads[0]), row.get(k))
                                   for k in threads[1:]]
                        first = row.get(threads[0])
                        values += [fmt_ratio(first, sort), fmt_ratio(first, packed)]
                        table.row(values)
    return times, floors


def bench_isotonic(args, out, errors):
    """skrank.isotonic_regression vs scipy.optimize.isotonic_regression (1-D)."""
    table = Table(out, [("n", 7, "<"), ("skrank", 9, ">"), ("scipy", 9, ">"),
                        ("skrank/scipy", 12, ">"), ("max abs diff", 12, ">")])
    ratios = {}
    for n in args.iso_sizes:
        y = np.cumsum(np.random.default_rng(0).standard_normal(n))
        t_ours = diff = None
        try:
            with openmp_limits(1):
                t_ours = median_time(lambda: skrank.isotonic_regression(y), args.budget)
                ours = np.asarray(skrank.isotonic_regression(y))
            diff = f"{np.max(np.abs(ours - scipy.optimize.isotonic_regression(y).x)):.1e}"
        except Exception as exc:
            errors.append(f"isotonic_regression n={n}: {type(exc).__name__}: {exc}")
        t_scipy = median_time(lambda: scipy.optimize.isotonic_regression(y), args.budget)
        if t_ours is not None:
            ratios[n] = t_ours / t_scipy
        table.row([shape_label((n,)), fmt_time(t_ours), fmt_time(t_scipy),
                   fmt_ratio(t_ours, t_scipy), diff or "ERR"])
    return ratios


def block_count(x, reg, eps):
    """The PAV blocks of soft_rank(x) over all rows."""
    _, structure = skrank._ops._forward("rank", x, eps, reg, "ascending", -1, "raise")
    return int(structure.nblocks.sum())


def equal_structure(args, out, errors):
    """soft_rank forward (float32, 1 thread) of each regulariser at --strength against
    l2 at the strength that gives as many PAV blocks: the cost of a regulariser's block
    arithmetic apart from the structure its strength makes (at strength 1 the l2 ranks
    of a row of 100 pool into one block, kl's and p4/3's into about 20-30)."""
    ratios = {}
    table = Table(out, [("shape", 10, "<"), ("reg", 5, "<"), ("blocks/row", 10, ">"),
                        ("l2 strength", 11, ">"), ("time", 9, ">"), ("l2 time", 9, ">"),
                        ("reg / l2", 8, ">")])
    for shape in [s for s in args.shapes if s in ((1, 10**6), (1000, 100))]:
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        for reg in [r for r in args.regs if r != "l2"]:
            try:
                target = block_count(x, reg, args.strength)
                lo, hi = np.log(1e-12), np.log(1e6)  # l2's blocks decrease in eps
                for _ in range(60):
                    mid = 0.5 * (lo + hi)
                    lo, hi = (mid, hi) if block_count(x, "l2", np.exp(mid)) > target else \
                        (lo, mid)
                eps = float(np.exp(hi))
                with openmp_limits(1):
                    t_reg = median_time(lambda: skrank.soft_rank(
                        x, regularization_strength=args.strength, regularization=reg),
                        args.budget)
                    t_l2 = median_time(lambda: skrank.soft_rank(
                        x, regularization_strength=eps), args.budget)
            except Exception as exc:  # report and keep going
                errors.append(f"equal structure {shape_label(shape)} {reg}: "
                              f"{type(exc).__name__}: {exc}")
                continue
            ratios[shape, reg] = t_reg / t_l2
            table.row([shape_label(shape), reg, f"{target / shape[0]:.1f}",
                       f"{eps:.3g}", fmt_time(t_reg), fmt_time(t_l2),
                       fmt_ratio(t_reg, t_l2)])
    return ratios


def memory_check(args, out, errors):
    """Peak traced memory of soft_rank on 1x1e6 float64, in input nbytes."""
    x = np.random.default_rng(0).standard_normal((1, 10**6))
    for reg in args.regs:
        kwargs = dict(regularization_strength=args.strength, regularization=reg)
        try:
            skrank.soft_rank(x, **kwargs)  # warm-up: one-time allocations
            tracemalloc.start()
            base = tracemalloc.get_traced_memory()[0]
            y = skrank.soft_rank(x, **kwargs)
            peak = tracemalloc.get_traced_memory()[1] - base
            tracemalloc.stop()
            del y
            out(f"- soft_rank {reg} forward, 1x1e6 float64: peak extra memory "
                f"{peak / x.nbytes:.2f} x input nbytes ({peak / 2**20:.1f} MiB, output included)")
        except Exception as exc:
            tracemalloc.stop()
            errors.append(f"memory check {reg}: {type(exc).__name__}: {exc}")


# ------------------------------------------------------------------- goals --

def goal_lines(times, floors, iso_ratios, equal):
    """The issue's performance goals as (description, value, op, limit)."""
    n6, batch, big, small = (1, 10**6), (1000, 100), (1000, 1000), (1, 1000)

    def t(shape, dtype, op, reg, mode, k):
        return times.get((shape, dtype, op, reg, mode, k))

    def vs_argsort(shape, dtype, op, reg, mode, k=1):
        value, floor = t(shape, dtype, op, reg, mode, k), floors.get((shape, dtype))
        return None if value is None or floor is None else value / floor

    def quotient(a, b):
        return None if a is None or b is None else a / b

    def vs_floor(shape, dtype, op, kind):  # the single-threaded l2 forward over a floor
        return quotient(t(shape, dtype, op, "l2", "forward", 1), floors.get((shape, dtype,
                                                                             kind)))

    goals = [("soft_rank l2 forward 1x1e6 float32, 1t: x argsort",
              vs_argsort(n6, "float32", "soft_rank", "l2", "forward"), "<=", 1.3)]
    for op in OPS:
        for reg in REGS:
            goals.append((f"{op} {reg} vjp alone 1x1e6 float32, 1t: x argsort",
                          vs_argsort(n6, "float32", op, reg, "vjp"), "<=", 0.3))
    for op in OPS:
        goals.append((f"{op} forward 1x1e6 float32, 1t: kl / l2 time",
                      quotient(t(n6, "float32", op, "kl", "forward", 1),
                               t(n6, "float32", op, "l2", "forward", 1)), "<=", 1.5))
    for op in OPS:  # issue 18: the p-norms within 2x l2
        for shape in (n6, batch):
            for pnorm in ("p4/3", "p3/2"):
                goals.append((f"{op} forward {shape} float32, 1t: {pnorm} / l2 time",
                              quotient(t(shape, "float32", op, pnorm, "forward", 1),
                                       t(shape, "float32", op, "l2", "forward", 1)),
                              "<=", 2.0))
    for shape in (n6, batch):  # the same at equal block structure (kl: issue 17's 1.2)
        for reg, limit in (("kl", 1.2), ("p4/3", 2.0), ("p3/2", 2.0)):
            goals.append((f"soft_rank forward {shape} float32, 1t: {reg} / l2 time, "
                          "equal blocks", equal.get((shape, reg)), "<=", limit))
    for op in OPS:
        for dtype in ("float32", "float64"):
            goals.append((f"{op} l2 forward 1000x100 {dtype}, 1t: x argsort",
                          vs_argsort(batch, dtype, op, "l2", "forward"), "<=", 1.5))
    for op in OPS:  # issue 17: short rows at the cost of a sort
        goals.append((f"{op} l2 forward+vjp 1000x100 float32, 1t: x argsort",
                      vs_argsort(batch, "float32", op, "l2", "fwd+vjp"), "<=", 2.0))
        for shape in (big, (100, 10**4)):
            goals.append((f"{op} l2 forward {shape_label(shape)} float32, 1t: x argsort",
                          vs_argsort(shape, "float32", op, "l2", "forward"), "<=", 1.0))
    for op in OPS:
        for dtype in ("float32", "float64"):
            goals.append((f"{op} l2 forward 1000x1000 {dtype}: 1t / 2t speedup",
                          quotient(t(big, dtype, op, "l2", "forward", 1),
                                   t(big, dtype, op, "l2", "forward", 2)), ">=", 1.5))
    for op in OPS:
        for dtype in ("float32", "float64"):
            goals.append((f"{op} l2 forward 1x1000 {dtype}, 1t: x argsort",
                          vs_argsort(small, dtype, op, "l2", "forward"), "<=", 3.0))
    # the plain-sort floors (issue 17)
    goals.append(("soft_rank l2 forward 1x1e6 float32, 1t: x packed key-index sort",
                  vs_floor(n6, "float32", "soft_rank", "packed"), "<=", 1.0))
    for op in OPS:
        goals.append((f"{op} l2 forward 1000x100 float32, 1t: x np.sort",
                      vs_floor(batch, "float32", op, "sort"), "<=", 2.0))
    goals.append(("isotonic_regression 1e6 float64: skrank / scipy",
                  iso_ratios.get(10**6), "<=", 1.0))
    return goals


def report_goals(out, goals):
    width = max(len(text) for text, *_ in goals)
    table = Table(out, [("goal", width, "<"), ("value", 6, ">"), ("target", 7, ">"),
                        ("result", 6, "<")])
    for text, value, op, limit in goals:
        if value is None:
            verdict, shown = "SKIP", "-"
        else:
            ok = value <= limit if op == "<=" else value >= limit
            verdict, shown = ("PASS" if ok else "FAIL"), f"{value:.2f}"
        table.row([text, shown, f"{op} {limit}", verdict])


# -------------------------------------------------------------------- main --

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help=f"smoke run: shapes {QUICK_SHAPES}, short budget")
    p.add_argument("--shapes", help=f"comma-separated RxN shapes (default {FULL_SHAPES})")
    p.add_argument("--dtypes", default="float32,float64")
    p.add_argument("--threads", default="1,2", help="OpenMP thread counts (default 1,2)")
    p.add_argument("--ops", default="soft_rank,soft_sort,isotonic_regression",
                   help="subset of soft_rank,soft_sort,isotonic_regression")
    p.add_argument("--regs", default="l2,kl,p4/3,p3/2")
    p.add_argument("--modes", default="forward,vjp,fwd+vjp",
                   help="subset of forward,vjp,fwd+vjp,jvp")
    p.add_argument("--strength", type=float, default=1.0, help="regularization_strength")
    p.add_argument("--budget", type=float,
                   help="seconds of repeats per cell (default 0.8, --quick 0.05)")
    p.add_argument("--output", help="also write the markdown report to this file")
    args = p.parse_args(argv)

    args.shapes = [parse_shape(s) for s in csv(args.shapes or
                                               (QUICK_SHAPES if args.quick else FULL_SHAPES))]
    args.dtypes = csv(args.dtypes)
    args.threads = [int(k) for k in csv(args.threads)]
    args.ops, args.regs, args.modes = csv(args.ops), csv(args.regs), csv(args.modes)
    if args.budget is None:
        args.budget = 0.05 if args.quick else 0.8
    args.iso_sizes = QUICK_ISO_SIZES if args.quick else FULL_ISO_SIZES
    for name, allowed in (("ops", OPS + ("isotonic_regression",)), ("regs", REGS),
                          ("modes", MODES), ("dtypes", ("float32", "float64"))):
        bad = set(getattr(args, name)) - set(allowed)
        if bad:
            p.error(f"unknown {name}: {', '.join(sorted(bad))}")
    return args


def main(argv=None):
    args = parse_args(argv)
    out = Report("skrank benchmark", machine_info(args), args.output)
    errors = out.errors

    times, floors, iso_ratios, equal = {}, {}, {}, {}
    if set(args.ops) & set(OPS):
        out("\n## soft_rank / soft_sort vs np.argsort (median times)\n")
        times, floors = bench_main(args, out, errors)
    if "isotonic_regression" in args.ops:
        out("\n## isotonic_regression vs scipy.optimize.isotonic_regression "
            "(1-D random walk, float64, 1 thread)\n")
        iso_ratios = bench_isotonic(args, out, errors)
    if "soft_rank" in args.ops and set(args.regs) - {"l2"}:
        out("\n## soft_rank at equal block structure (float32, 1 thread)\n")
        equal = equal_structure(args, out, errors)
    if "soft_rank" in args.ops:
        out("\n## Memory (tracemalloc)\n")
        memory_check(args, out, errors)

    out("\n## Goals\n")
    report_goals(out, goal_lines(times, floors, iso_ratios, equal))
    out.close()


if __name__ == "__main__":
    main()
