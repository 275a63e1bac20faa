"""Peak memory of each soft operator, as a multiple of its input's size.

Run from the repository root, with skrank built::

    python benchmarks/bench_memory.py            # one row of 1e7 values
    python benchmarks/bench_memory.py --quick    # 1e6 values
    python benchmarks/bench_memory.py --output memory.md

Every case runs in a fresh process: the input is made, then the call is made twice,
forward alone or forward plus one vector-Jacobian product (``skrank.vjp``, then the
product with a random cotangent). Two peaks, beyond what the process held before the
call, over the input's size in bytes:

* ``traced``: the peak of :mod:`tracemalloc`, which sees every NumPy array and the
  kernels' scratch (allocated with ``PyMem_RawMalloc``);
* ``RSS``: the growth of the process's peak resident set (``ru_maxrss``) over what was
  resident before the call, which also sees what tracemalloc does not (the allocator's
  own overhead, pages touched by OpenMP); taken on the first call (a later call's peak
  hides under the first's), so it includes first-call allocations, small beside these
  sizes.

``ndcg_loss_cutoff`` is ``ndcg_loss`` with a cutoff ``k = n // 10`` (a top-k mask too).

The goal of the performance issue: forward at most about 6x the input for every
function, float32 and float64 (no structure kept unless a derivative is asked for).
"About": a float32 forward pass takes exactly 24 bytes per entry (6x: the kernel's
work space and the output, doc/design.rst section 15) plus allocations of fixed size
(the radix sort's histogram, per-row metadata), so the check allows 1% over 6x.
"""

import argparse
import json
import subprocess
import sys

import numpy as np

import skrank
from _timing import Report, Table, machine_basics  # benchmarks/_timing.py

GOAL = 6.0
SLACK = 1.01  # fixed-size allocations on top of 6x (see above)
NAMES = ("soft_rank", "soft_sort", "soft_topk_mask", "soft_quantile", "soft_median",
         "soft_trimmed_mean", "spearman_loss", "ndcg_loss", "ndcg_loss_cutoff")

CHILD = r"""
import json, resource, sys, tracemalloc
import numpy as np
import skrank, skrank.losses, skrank._pav
name, n, dtype, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
rng = np.random.default_rng(0)
x = rng.normal(size=n).astype(dtype)
y = rng.normal(size=n).astype(dtype)  # targets
g = rng.integers(0, 4, size=n).astype(dtype)  # relevances
CASES = {  # (function, positional arguments, the differentiated one)
    "soft_rank": (skrank.soft_rank, (x,), 0),
    "soft_sort": (skrank.soft_sort, (x,), 0),
    "soft_topk_mask": (skrank.soft_topk_mask, (x, n // 10), 0),
    "soft_quantile": (skrank.soft_quantile, (x, [0.1, 0.5, 0.9]), 0),
    "soft_median": (skrank.soft_median, (x,), 0),
    "soft_trimmed_mean": (skrank.soft_trimmed_mean, (x, 0.1), 0),
    "spearman_loss": (skrank.losses.spearman_loss, (y, x), 1),
    "ndcg_loss": (skrank.losses.ndcg_loss, (g, x), 1),
    "ndcg_loss_cutoff": (skrank.losses.ndcg_loss, (g, x), 1),  # k = n // 10
}
fun, args, argnum = CASES[name]
kwargs = {"k": n // 10} if name == "ndcg_loss_cutoff" else {}

def once():
    if mode == "forward":
        return fun(*args, **kwargs)
    value, back = skrank.vjp(fun, *args, argnums=argnum, **kwargs)
    return back(rng.normal(size=np.shape(value)) if np.ndim(value) else 1.0)

def resident():  # bytes resident now
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()

before = resident()  # the first call: its peak resident set, beyond what was there
once()
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
# the second: tracemalloc's peak (first-call allocations are done; the kernel's work
# space, which a call with derivatives keeps for the next, is freed: counted again)
getattr(skrank._pav, "release_work_space", lambda: None)()
tracemalloc.start()
once()
traced = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
print(json.dumps({"traced": traced / x.nbytes, "rss": rss / x.nbytes}))
"""


def measure(name, n, dtype, mode):
    out = subprocess.run([sys.executable, "-c", CHILD, name, str(n), dtype, mode],
                         capture_output=True, text=True, timeout=600)
    if out.returncode:
        raise RuntimeError(out.stderr.strip().splitlines()[-1])
    return json.loads(out.stdout)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1e6 values instead of 1e7")
    parser.add_argument("--n", type=float, help="the number of values (overrides --quick)")
    parser.add_argument("--functions", default=",".join(NAMES),
                        help="comma-separated names (default: all)")
    parser.add_argument("--output", help="also write the markdown report to this file")
    args = parser.parse_args(argv)
    n = int(args.n or (1e6 if args.quick else 1e7))
    report = Report(f"Peak memory, one row of {n:.0e} values, as a multiple of the input",
                    machine_basics() + [("numpy / skrank",
                                         f"{np.__version__} / {skrank.__version__}")],
                    args.output)
    table = Table(report, [("function", 18, "<"), ("dtype", 7, "<"), ("forward traced", 14, ">"),
                           ("forward RSS", 11, ">"), ("+vjp traced", 11, ">"),
                           ("+vjp RSS", 8, ">"), ("goal", 4, "<")])
    failed = []
    for name in args.functions.split(","):
        for dtype in ("float32", "float64"):
            try:
                fwd = measure(name, n, dtype, "forward")
                both = measure(name, n, dtype, "vjp")
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                report.errors.append(f"{name} {dtype}: {exc}")
                continue
            ok = fwd["traced"] <= GOAL * SLACK
            if not ok:
                failed.append(f"{name} {dtype}")
            table.row([name, dtype, f"{fwd['traced']:.2f}x", f"{fwd['rss']:.1f}x",
                       f"{both['traced']:.1f}x", f"{both['rss']:.1f}x",
                       "PASS" if ok else "FAIL"])
    report(f"\nGoal: forward traced peak <= about {GOAL:g}x the input: "
           + ("PASS" if not failed else f"FAIL ({len(failed)}: {', '.join(failed)})"))
    report.close()


if __name__ == "__main__":
    main()
