"""What the benchmarks here share: the median of repeated timings, the CPU's name,
markdown tables."""

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


class Table:
    """Markdown table with fixed column widths, printed row by row."""

    def __init__(self, out, columns):
        self.out = out
        self.columns = columns  # (title, width, "<" or ">")
        self.row([title for title, _, _ in columns])
        self.out("|" + "|".join(("-" * (w + 1) + ":") if a == ">" else
                                ("-" * (w + 2)) for _, w, a in columns) + "|")

    def row(self, values):
        cells = (f" {str(v):{a}{w}} " for v, (_, w, a) in zip(values, self.columns))
        self.out("|" + "|".join(cells) + "|")
