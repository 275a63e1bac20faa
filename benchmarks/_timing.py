"""What every benchmark here shares: the median of repeated timings, the CPU's name."""

import platform
import statistics
import time


def median_time(fun, budget, min_repeats=5):
    """Median wall time of ``fun()`` after a warm-up call (which also compiles what a
    JIT compiles): at least ``min_repeats`` runs, more while ``budget`` seconds last."""
    fun()
    times = []
    deadline = time.perf_counter() + budget
    while len(times) < min_repeats or time.perf_counter() < deadline:
        t0 = time.perf_counter()
        fun()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def cpu_model():
    """The CPU's model name (Linux), or what platform knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
