"""
Soft quantile normalization of a skewed feature
===============================================

:class:`~skrank.preprocessing.SoftRankTransformer` plays the role of scikit-learn's
:class:`~sklearn.preprocessing.QuantileTransformer`: each feature is mapped by its
empirical CDF, estimated from a reference of ``n_quantiles`` quantiles. At strength 0
the map is the mid-distribution function of the reference, a staircase with one step
per reference value (QuantileTransformer interpolates linearly between the quantiles
instead, so its slope jumps at each of them). A positive strength turns the staircase
into a smooth, increasing map.

The strength is measured in units of ``scale_``, the typical spacing of the
reference in the body of the distribution (interquartile range over
``(n_quantiles - 1) / 2``): neighbouring reference values closer than
``eps = regularization_strength * scale_`` are pooled, and the map is affine over a
pooled block. Pooling cascades (a block grows while its neighbours' gaps are below
``eps``), so the useful range is narrow: at 0.3 only the smallest steps melt, at 1 the
body is smooth while the sparse right tail keeps its steps, at 3 the map is one affine
ramp over most of the data, and at 10 that ramp is so flat that the outputs crowd
around 0.5 (they are no longer uniform: see the printed spread).

What to look at: in the left panel ("l2") the pooling threshold is the same everywhere,
so the dense body of the distribution smooths first; in the middle panel ("kl") the
threshold depends on the position and the low end (small outputs) is smoothed much more
than the high end, at every strength; the right panel shows the
``output_distribution="normal"`` maps. A coarse reference (``n_quantiles=40``) keeps
the steps visible. The printed table gives the spread of the outputs and how far they
move from the strength-0 map in the bottom and top quarters.

Run it as a script or in a notebook (it needs matplotlib: ``pip install matplotlib``,
or ``pip install -e ".[examples]"`` from the skrank checkout).
"""

import os

import matplotlib.pyplot as plt
import numpy as np
from sklearn.preprocessing import QuantileTransformer

from skrank.preprocessing import SoftRankTransformer

SMALL = os.environ.get("SKRANK_EXAMPLES_SMALL") == "1"  # tiny sizes, for the tests

rng = np.random.default_rng(0)
X = rng.lognormal(sigma=0.8, size=(500 if SMALL else 5000, 1))  # a skewed feature
grid = np.linspace(0.0, np.quantile(X, 0.97), 300 if SMALL else 1500)[:, None]
strengths = (0.0, 0.3, 1.0, 3.0, 10.0)
N_QUANTILES = 40


def soft_map(strength, regularization="l2", output_distribution="uniform"):
    return SoftRankTransformer(regularization_strength=strength, n_quantiles=N_QUANTILES,
                               regularization=regularization,
                               output_distribution=output_distribution).fit(X)


hard = soft_map(0.0)
print(f"n_quantiles_ = {hard.n_quantiles_}, scale_ = {hard.scale_[0]:.4f} "
      f"(the reference's spacing in its body); strength s smooths over gaps below "
      f"eps = s * scale_")
gaps = np.diff(hard.quantiles_[:, 0])
print(f"reference gaps: median {np.median(gaps):.4f}, 90th percentile "
      f"{np.quantile(gaps, 0.9):.4f}, largest {gaps.max():.3f} (the right tail)\n")

fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
qt = QuantileTransformer(n_quantiles=N_QUANTILES).fit(X)
qt_normal = QuantileTransformer(n_quantiles=N_QUANTILES,
                                output_distribution="normal").fit(X)
for ax, reg in zip(axes[:2], ("l2", "kl")):
    for s in strengths:
        ax.plot(grid, soft_map(s, reg).transform(grid), lw=1.3, label=f"strength {s:g}")
    ax.plot(grid, qt.transform(grid), "k--", lw=1, label="QuantileTransformer")
    ax.set(title=f'SoftRankTransformer, regularization="{reg}"', xlabel="x (lognormal)",
           ylabel="output in [0, 1]")
for s in (0.0, 1.0, 3.0):
    axes[2].plot(grid, soft_map(s, output_distribution="normal").transform(grid), lw=1.3,
                 label=f"strength {s:g}")
axes[2].plot(grid, qt_normal.transform(grid), "k--", lw=1, label="QuantileTransformer")
axes[2].set(title='output_distribution="normal" ("l2")', xlabel="x (lognormal)",
            ylabel="normal score")
for ax in axes:
    bottom = np.full(N_QUANTILES, ax.get_ylim()[0])
    ax.plot(hard.quantiles_[:, 0], bottom, "|", color="0.4", ms=8)  # the reference
    ax.set_xlim(grid[0, 0], grid[-1, 0])
    ax.legend(fontsize=8, loc="lower right")
axes[1].annotate("kl: most smoothing\nat the low end", xy=(0.25, 0.1), xytext=(1.2, 0.2),
                 arrowprops=dict(arrowstyle="->"))

# the spread of the outputs (uniform: 0.289) and how far each map moves from the
# strength-0 staircase, on the samples in its bottom and top quarters
u0 = hard.transform(X).ravel()
print("| strength | reg | std of outputs | mean abs(soft - hard), low end | high end |")
print("|---------:|:---:|---------------:|-------------------------------:|---------:|")
for s in strengths:
    for reg in ("l2", "kl") if s > 0 else ("l2",):  # strength 0: the same map
        u = soft_map(s, reg).transform(X).ravel()
        d = np.abs(u - u0)
        print(f"| {s:8g} | {reg} | {u.std():14.3f} | {d[u0 < 0.25].mean():30.4f} "
              f"| {d[u0 > 0.75].mean():8.4f} |")
fig.tight_layout()
plt.show()
