"""
Soft top-k masks, quantiles and trimmed means
=============================================

Differences of soft top-k masks weigh robust statistics: the weights are non-negative,
sum to one, are soft only near the order statistic, and are exactly zero on far outliers.
This example shows a soft top-3 mask as the strength grows, and the soft median and
trimmed mean of a sample with one gross outlier beside the hard ones (the soft-sort route
other libraries take would let the outlier drag them).

Run it as a script or in a notebook (it needs matplotlib: ``pip install matplotlib``).
"""

import matplotlib.pyplot as plt
import numpy as np
from scipy.stats import trim_mean

import skrank

rng = np.random.default_rng(0)
x = np.sort(rng.normal(size=12))
x[-1] = 40.0  # one gross outlier
strengths = np.logspace(-2, 1.5, 120)

fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
masks = skrank.soft_topk_mask(np.broadcast_to(x, (strengths.size, x.size)), 3,
                              regularization_strength=strengths)
axes[0].semilogx(strengths, masks)
axes[0].set(title="soft_topk_mask(x, 3): one curve per entry", xlabel="strength",
            ylabel="mask value")

rows = np.broadcast_to(x, (strengths.size, x.size))
axes[1].semilogx(strengths, skrank.soft_median(rows, regularization_strength=strengths),
                 label="soft_median")
axes[1].semilogx(strengths, skrank.soft_trimmed_mean(rows, 0.2,
                                                     regularization_strength=strengths),
                 label="soft_trimmed_mean (20%)")
axes[1].axhline(np.median(x), color="C0", ls=":", label="np.median")
axes[1].axhline(trim_mean(x, 0.2), color="C1", ls=":", label="scipy trim_mean")
axes[1].set(title=f"the outlier at 40 has no effect (the mean is {x.mean():.2f})",
            xlabel="strength", ylim=(-0.6, 0.6))
axes[1].legend(fontsize=8)
fig.tight_layout()
plt.show()
