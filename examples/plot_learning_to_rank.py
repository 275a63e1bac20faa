"""
Learning to rank with a soft Spearman loss in PyTorch
=====================================================

A small neural network scores documents, and only the order of the scores within each
query matters. :func:`skrank.torch.spearman_loss` (one minus the correlation of the
hard ranks of the labels and the *soft* ranks of the scores, averaged over queries)
trains it for that order directly; this example compares it with the same network
trained by mean squared error on the labels (pointwise regression).

The data are synthetic: 200 training and 200 held-out queries of 20 documents with 10
features each. A document's relevance is a noisy non-linear function ``f`` of its
features, reported on a different scale for every query and through a skewed monotone
transform, ``label = a_q + b_q * exp(f)`` (think of click counts or dwell times): the
order of the labels within a query is informative, their values much less so. The
score is the hard Spearman correlation on the held-out queries, one per query
(:func:`skrank.metrics.soft_spearman` with ``regularization_strength=0``), averaged.

What to look at: on the left, the training losses (each objective in its own units); in
the middle, the held-out Spearman correlation during training. MSE on the labels
(standardized as a whole) is dominated by the queries with the largest offsets and
scales: its held-out correlation peaks early and then falls as it fits the largest
labels. Standardizing the labels per query removes the offsets and scales, but the
regression still chases the skewed values. The Spearman loss sees only the order, and
comes within about 0.02 of ranking by the noiseless ``f``. Its edge over per-query
standardized MSE comes from the skewed transform: with labels affine in ``f`` (replace
``np.exp(noisy)`` by ``noisy``) the two do equally well, about 0.90 to 0.91.

On the right, the final held-out correlation against the strength, which is absolute,
in the units of the scores (unlike :func:`skrank.metrics.soft_spearman`'s, relative to
their spread): it matters little here. A very small strength (nearly hard ranks, whose
derivative is zero almost everywhere) slows training down. From a strength of about the
gaps between neighbouring scores on, the soft ranks are an affine function of the
scores, the loss is one minus the *Pearson* correlation of the label ranks and the
scores, and it no longer depends on the strength at all (strengths 1 and 10 train
identically, up to float32 rounding). At strength 0 the gradient is exactly zero and
nothing trains.

It needs PyTorch and matplotlib. Install torch pinned to the build you want, e.g.
``pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu`` for the
CPU build (a bare ``pip install torch`` pulls a large CUDA build on Linux), then
``pip install matplotlib``.
"""

import os
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

from skrank.metrics import soft_spearman
from skrank.torch import spearman_loss

SMALL = os.environ.get("SKRANK_EXAMPLES_SMALL") == "1"  # tiny sizes, for the tests

# the model is tiny: one thread is faster than several, which mostly wait on each other
# (by a factor of 40 when other processes compete for the cores)
torch.set_num_threads(1)

n_queries, n_docs, n_features = (40, 20, 10) if SMALL else (200, 20, 10)
n_steps, eval_every = (60, 10) if SMALL else (400, 10)


def make_queries(n_queries, rng, W):
    """Features, the noiseless relevance f, and the labels a_q + b_q exp(f + noise)."""
    X = rng.normal(size=(n_queries, n_docs, n_features))
    H = X @ W
    f = np.sin(2.0 * H[..., 0]) + H[..., 1] ** 2 - np.abs(H[..., 2])
    noisy = f + 0.3 * rng.normal(size=f.shape)
    a = 3.0 * rng.normal(size=(n_queries, 1))  # a per-query offset ...
    b = np.exp(rng.normal(size=(n_queries, 1)))  # ... and scale
    return X, f, a + b * np.exp(noisy)


rng = np.random.default_rng(0)
W = rng.normal(size=(n_features, 3)) / np.sqrt(n_features)
X_train, _, y_train = make_queries(n_queries, rng, W)
X_test, f_test, y_test = make_queries(n_queries, rng, W)
X_train, X_test = torch.tensor(X_train, dtype=torch.float32), torch.tensor(
    X_test, dtype=torch.float32)
y_train = torch.tensor(y_train, dtype=torch.float32)


def spearman(y, scores):
    """Mean over queries of the hard Spearman correlation (queries are rows here;
    soft_spearman takes samples along axis 0 and gives one correlation per column)."""
    return soft_spearman(np.asarray(y).T, np.asarray(scores).T, regularization_strength=0.0,
                         multioutput="raw_values").mean()


def make_model():
    torch.manual_seed(0)  # the same initial weights for every objective
    return torch.nn.Sequential(torch.nn.Linear(n_features, 32), torch.nn.Tanh(),
                               torch.nn.Linear(32, 1))


def train(objective, strength=None):
    """Adam on the whole training set; returns (losses, eval steps, held-out Spearman,
    final model, seconds)."""
    model = make_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    if objective == "mse":  # standardized as a whole, as a regression usually is
        target = (y_train - y_train.mean()) / y_train.std()
    elif objective == "mse per query":
        target = (y_train - y_train.mean(-1, keepdim=True)) / y_train.std(-1, keepdim=True)
    losses, steps, held_out = [], [], []
    start = time.perf_counter()
    for step in range(n_steps + 1):
        if step % eval_every == 0 or step == n_steps:
            with torch.no_grad():
                steps.append(step)
                held_out.append(spearman(y_test, model(X_test).squeeze(-1)))
        if step == n_steps:
            break
        scores = model(X_train).squeeze(-1)  # (n_queries, n_docs)
        if objective == "spearman":
            loss = spearman_loss(y_train, scores, regularization_strength=strength)
        else:
            loss = torch.nn.functional.mse_loss(scores, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses, steps, held_out, model, time.perf_counter() - start


runs = {"MSE": train("mse"), "MSE, per-query standardized": train("mse per query")}
strengths = (0.01, 1.0) if SMALL else (0.001, 0.01, 0.1, 1.0, 10.0)
for s in strengths:
    runs[f"Spearman loss, strength {s:g}"] = train("spearman", s)

print(f"{n_queries} training and {n_queries} held-out queries of {n_docs} documents, "
      f"{n_steps} Adam steps\n")
print("| objective                       | train Spearman | held-out Spearman | time (s) |")
print("|:--------------------------------|---------------:|------------------:|---------:|")
for name, (losses, steps, held_out, model, seconds) in runs.items():
    with torch.no_grad():
        train_rho = spearman(y_train, model(X_train).squeeze(-1))
    print(f"| {name:31} | {train_rho:14.3f} | {held_out[-1]:17.3f} | {seconds:8.2f} |")
print(f"| {'(ranking by the noiseless f)':31} | {'':14} | "
      f"{spearman(y_test, f_test):17.3f} | {'':8} |")

fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
shown = ["MSE", "MSE, per-query standardized"] + [
    f"Spearman loss, strength {s:g}" for s in strengths[:2] + strengths[3:4]]
for name in shown:
    losses, steps, held_out, _, _ = runs[name]
    axes[0].plot(np.arange(len(losses)), losses, label=name)
    axes[1].plot(steps, held_out, label=name)
axes[0].set(title="training loss (each objective in its own units)", xlabel="Adam step",
            ylabel="loss", yscale="log")
axes[1].set(title="held-out queries", xlabel="Adam step",
            ylabel="mean Spearman correlation per query")
axes[1].legend(fontsize=8, loc="lower right")

axes[2].semilogx(strengths, [runs[f"Spearman loss, strength {s:g}"][2][-1]
                             for s in strengths], "o-", color="C5", label="Spearman loss")
for name, ls in (("MSE", ":"), ("MSE, per-query standardized", "--")):
    axes[2].axhline(runs[name][2][-1], color="0.4", ls=ls, label=name)
axes[2].axhline(spearman(y_test, f_test), color="k", ls="-.",
                label="ranking by the noiseless f")
axes[2].set(title=f"after {n_steps} steps", xlabel="regularization_strength (score units)",
            ylabel="held-out mean Spearman correlation", ylim=(None, 0.95))
axes[2].legend(fontsize=8)
fig.tight_layout()
plt.show()
