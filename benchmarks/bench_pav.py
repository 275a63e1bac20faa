"""PAV on worst-case inputs: linear time from n = 1e3 to 1e7, for every kernel form.

Run from the repository root, with skrank built::

    python benchmarks/bench_pav.py                 # n = 1e3 ... 1e7, ~4 min on 2 cores
    python benchmarks/bench_pav.py --quick         # n = 1e3 ... 1e5, a smoke run
    python benchmarks/bench_pav.py --sizes 1e3,1e6 --forms rank,isotonic

The inputs are those of benchmarks/_adversarial.py (the sequences on which other PAV
implementations went quadratic or exponential), plus standard normal data for
comparison, carried into each form: ``isotonic_regression`` directly; ``soft_rank``
(rank form) and ``soft_sort`` (sort form) through inputs whose sorted gaps make the
kernel's PAV solve exactly the same problem; ``soft_topk_mask`` (k = n / 3, strength
n / 4, so a long run pools around the k-th value) on the rank form's input.

For each case: the median total time of the call, the median time of its PAV phase
alone (the kernel's per-phase timers, one thread), and ``np.sort`` of the same data in
the same run. Goals, for the worst-case inputs (issue 16): the PAV phase's time per
entry stays within 2x across n, and the total grows no faster than np.sort's (growth =
time at the largest n over time at the smallest, the ratio of the two growths at most 1).
The random inputs are a reference, marked "ref".
"""

import argparse
import platform
import time

import numpy as np
from threadpoolctl import threadpool_limits

import skrank
from skrank import _pav
from _adversarial import GENERATORS, isotonic_problem, rank_input, sort_input
from _timing import Table, cpu_model, median_time

FORMS = ("isotonic", "rank", "sort", "topk")
INPUTS = GENERATORS + ("normal",)


def _problem(name, n, seed):
    if name == "normal":
        return np.random.default_rng(seed).normal(size=n), None
    return isotonic_problem(name, n)


def cases(form, name, n):
    """[(a call, the array np.sort gets)], or [] where the input has no meaning.

    Random inputs come as several arrays, called in turn: a CPU's branch predictor
    learns the merge decisions of one short random array called again and again (PAV
    on 1e4 normal values then runs 3x faster than on fresh ones), which no real
    workload repeats. The adversarial inputs are regular whatever their n.
    """
    copies = min(256, max(1, 2 * 10**6 // n)) if name == "normal" else 1
    made = [case(form, name, n, seed) for seed in range(copies)]
    return [] if made[0] is None else made


def case(form, name, n, seed=0):
    """(the call, the array np.sort gets), or None where the input has no meaning."""
    z, w = _problem(name, n, seed)
    if form == "isotonic":
        return (lambda: skrank.isotonic_regression(z, weights=w)), z
    if name == "tied_weights":  # weights belong to the isotonic problem only
        return None
    if form == "sort":
        x = z if name == "normal" else sort_input(z)
        return (lambda: skrank.soft_sort(x, regularization_strength=1.0,
                                         direction="descending")), x
    x = z if name == "normal" else rank_input(z)
    if form == "rank":
        return (lambda: skrank.soft_rank(x, regularization_strength=1.0)), x
    spread = float(np.ptp(x))
    return (lambda: skrank.soft_topk_mask(x, n // 3,
                                          regularization_strength=spread / 4)), x


def timed(funs, budget, min_repeats):
    """(median total seconds, median seconds of the PAV phase) of the calls funs, in
    turn."""
    totals, pavs = [], []
    funs[0]()  # warm-up
    deadline = time.perf_counter() + budget
    try:
        while len(totals) < max(min_repeats, len(funs)) or time.perf_counter() < deadline:
            fun = funs[len(totals) % len(funs)]
            _pav.set_phase_timing(True)  # (and reset)
            t0 = time.perf_counter()
            fun()
            totals.append(time.perf_counter() - t0)
            pavs.append(_pav.phase_times()["pav"])
    finally:
        _pav.set_phase_timing(False)  # the kernels use every thread again
    return float(np.median(totals)), float(np.median(pavs))


def fmt(seconds):
    if seconds >= 1.0:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n = 1e3 ... 1e5")
    parser.add_argument("--sizes", help="comma-separated n, e.g. 1e3,1e5,1e7")
    parser.add_argument("--forms", default=",".join(FORMS),
                        help=f"comma-separated, from {','.join(FORMS)}")
    parser.add_argument("--inputs", default=",".join(INPUTS),
                        help=f"comma-separated, from {','.join(INPUTS)}")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds of repeats per measurement (default 0.3, quick 0.05)")
    args = parser.parse_args(argv)
    if args.sizes:
        sizes = [int(float(s)) for s in args.sizes.split(",")]
    else:
        sizes = [10**3, 10**4, 10**5] if args.quick else [10**k for k in range(3, 8)]
    budget = args.budget if args.budget is not None else (0.05 if args.quick else 0.3)
    forms, inputs = args.forms.split(","), args.inputs.split(",")
    for value, known in ((forms, FORMS), (inputs, INPUTS)):
        unknown = set(value) - set(known)
        if unknown:
            parser.error(f"unknown {sorted(unknown)}; choose from {known}")

    print(f"# skrank {skrank.__version__}, numpy {np.__version__}, {platform.platform()}, "
          f"{cpu_model()}, 1 thread, float64\n")
    table = Table(print, [("form", 8, "<"), ("input", 12, "<"), ("n", 9, ">"),
                          ("total", 9, ">"), ("np.sort", 9, ">"), ("/np.sort", 8, ">"),
                          ("PAV", 9, ">"), ("PAV ns/entry", 12, ">")])
    results = {}
    with threadpool_limits(1):
        for form in forms:
            for name in inputs:
                for n in sizes:
                    made = cases(form, name, n)
                    if not made:
                        continue
                    repeats = 3 if n >= 10**6 else 5
                    total, pav = timed([fun for fun, _ in made], budget, repeats)
                    data = made[0][1]
                    floor = median_time(lambda: np.sort(data), budget, repeats)
                    results[form, name, n] = total, pav, floor
                    table.row([form, name, f"{n:.0e}", fmt(total), fmt(floor),
                               f"{total / floor:.2f}", fmt(pav), f"{pav / n * 1e9:.2f}"])

    print("\nGoals: PAV time per entry within 2x across n; total growth over np.sort's "
          f"growth at most 1 (n = {sizes[0]:.0e} to {sizes[-1]:.0e}).\n")
    goals = Table(print, [("form", 8, "<"), ("input", 12, "<"),
                          ("PAV ns/entry max/min", 20, ">"), ("growth ratio", 12, ">"),
                          ("goal", 5, "<")])
    for form in forms:
        for name in inputs:
            rows = [results[form, name, n] for n in sizes if (form, name, n) in results]
            if len(rows) < 2:
                continue
            per_entry = [pav / n for (_, pav, _), n in zip(rows, sizes)]
            # (a phase below the clock's resolution reads 0: no ratio to take)
            spread = (max(per_entry) / min(per_entry) if min(per_entry) > 0
                      else float("inf"))
            growth = (rows[-1][0] / rows[0][0]) / (rows[-1][2] / rows[0][2])
            ok = spread <= 2.0 and growth <= 1.0
            verdict = "ref" if name == "normal" else ("PASS" if ok else "FAIL")
            goals.row([form, name, f"{spread:.2f}", f"{growth:.2f}", verdict])
    print("\n(normal: random data, a reference, not a worst case. Where nothing pools, PAV "
          "stores 24 bytes of block stack per entry, which leave the cache beyond ~1e5.)")


if __name__ == "__main__":
    main()
