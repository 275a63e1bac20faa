"""
Soft ranks and soft sorts as the strength grows
===============================================

The hard rank of an entry is a step function of its value: its derivative is zero
almost everywhere. The soft rank replaces the steps by affine ramps whose width is
the regularization strength (in the units of the data), so gradients flow. This
example plots the soft rank of one entry as its value sweeps across the others,
and the soft sort of a small vector, for a few strengths and both regularizations.

Run it as a script or in a notebook (it needs matplotlib: ``pip install matplotlib``).
"""

import matplotlib.pyplot as plt
import numpy as np

import skrank

others = np.array([-1.0, -0.2, 0.1, 1.5])
sweep = np.linspace(-2.5, 2.5, 501)
# one row per value of the swept entry: skrank works on every row at once
rows = np.column_stack([sweep, np.broadcast_to(others, (sweep.size, others.size))])

fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
for ax, reg in zip(axes[:2], ("l2", "kl")):
    for eps in (0.0, 0.1, 0.5, 2.0):
        ranks = skrank.soft_rank(rows, regularization_strength=eps, regularization=reg)
        ax.plot(sweep, ranks[:, 0], label=f"strength {eps:g}")
    for v in others:
        ax.axvline(v, color="0.85", lw=0.8, zorder=0)
    ax.set(title=f"soft_rank of the swept entry ({reg})", xlabel="value of the entry",
           ylabel="rank")
    ax.legend(loc="upper left", fontsize=8)

x = np.array([2.9, 0.1, 1.2, 3.0, 1.1, -0.5])
strengths = np.logspace(-2, 1.5, 200)
sorted_rows = skrank.soft_sort(np.broadcast_to(x, (strengths.size, x.size)),
                               regularization_strength=strengths)
axes[2].semilogx(strengths, sorted_rows)
axes[2].set(title="soft_sort of x (l2): values meet at the mean", xlabel="strength",
            ylabel="sorted values")
fig.tight_layout()
plt.show()
