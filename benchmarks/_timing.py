"""What the benchmarks here share: the median of repeated timings, the CPU's name,
markdown reports and tables."""

import os
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


def machine_basics():
    """The lines every report's header starts with: the platform, the CPU, the cores
    this process may use, the load average, the Python version."""
    nproc = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
             else os.cpu_count())
    return [
        ("platform", platform.platform()),
        ("cpu", cpu_model()),
        ("nproc", nproc),
        ("load average at start", " ".join(f"{v:.2f}" for v in os.getloadavg())),
        ("python", platform.python_version()),
    ]


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


class Report:
    """A markdown report, printed line by line as it is made (call it with a line):
    a title and the machine (``info``, (key, value) pairs) first; :meth:`close` adds
    the ``errors`` collected, the total time and the load, and writes the whole report
    to ``output`` when one is given."""

    def __init__(self, title, info, output=None):
        self.lines, self.errors, self.output = [], [], output
        self.start = time.perf_counter()
        self(f"# {title}\n")
        for key, value in info:
            self(f"- {key}: {value}")

    def __call__(self, line=""):
        print(line, flush=True)
        self.lines.append(line)

    def close(self):
        if self.errors:
            self("\n## Errors\n")
            for err in self.errors:
                self(f"- {err}")
        load = " ".join(f"{v:.2f}" for v in os.getloadavg())
        self(f"\nTotal benchmark time: {time.perf_counter() - self.start:.0f} s; "
             f"load average at end: {load}")
        if self.output:
            with open(self.output, "w") as f:
                f.write("\n".join(self.lines) + "\n")
