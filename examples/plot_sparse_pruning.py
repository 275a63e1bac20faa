"""
Pruning a classifier's weights with a sparse soft top-k
========================================================

A multinomial logistic regression on scikit-learn's bundled digits (1,797 images of
8 x 8 pixels, 10 classes) may keep only ``k = 40`` of its 640 weights. Which 40 is a
combinatorial choice; three ways to learn it by gradient descent, all through the same
model ``softmax(X @ W_kept + b)``:

- **hard top-k with a straight-through estimator**: ``W_kept`` is ``W`` with all but its
  40 largest magnitudes set to 0, and the gradient with respect to ``W_kept`` is passed
  to ``W`` as if the mask were not there;
- **soft top-k, l2**: ``W_kept = skrank.soft_topk(W, k, by="magnitude")``, the mask of
  the 40 largest ``|W|`` made soft by a strength that is lowered during training, with
  its exact derivative (:func:`skrank.vjp`);
- **soft top-k, p4/3**: the same with ``regularization="p4/3"``, whose mask is as sparse
  as l2's (exact 0s and 1s away from the boundary) but whose derivative does not jump
  where a weight enters the kept set (:ref:`sparse`).

At the end every model is pruned to exactly 40 weights (the hard mask at strength 0)
and scored on held-out digits; a dense model shows what pruning costs.

What to look at: the held-out accuracy of the pruned models (mean and spread over five
initialisations), and how many weights sit in the soft band (neither dropped nor fully
kept) while the strength decreases. The soft masks start with every weight in the band,
so every weight gets a gradient in proportion to its share of the mask, and the band
narrows to exactly 40 kept weights; they keep about 0.90 accuracy against 0.97 dense.
The straight-through estimator learns weights as if none were dropped and keeps the 40
largest, a poorer choice here (about 0.64, and spread widely between initialisations).
l2 and p4/3 reach the same accuracy on this problem: what p4/3 changes is the path, a
gradient that starts at zero for a weight entering the band instead of jumping, which
matters most when the band is narrow during the whole of training.

The second part learns the budget too: ``k`` is a real number moved by its exact
derivative (``skrank.vjp(..., argnums=1)``) against a price per kept weight. From 160,
it settles at about 95 weights in every run, with about 0.96 held-out accuracy, where a
straight-through model trained for the same budget reaches about 0.88.

Run it as a script or in a notebook (it needs matplotlib: ``pip install matplotlib``,
or ``pip install -e ".[examples]"`` from the skrank checkout).
"""

import os

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import skrank

SMALL = os.environ.get("SKRANK_EXAMPLES_SMALL") == "1"  # tiny sizes, for the tests

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0,
                                                    stratify=y)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
Y_train = np.eye(10)[y_train]
k = 40
steps = 60 if SMALL else 600
learning_rate = 0.5
seeds = [0] if SMALL else [0, 1, 2, 3, 4]


def loss_and_grad(W_kept, b):
    """Mean cross-entropy of softmax(X W + b) on the training set, and its gradient."""
    logits = X_train @ W_kept + b
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    loss = -np.mean(np.log(p[np.arange(len(y_train)), y_train]))
    g = (p - Y_train) / len(y_train)
    return loss, X_train.T @ g, g.sum(axis=0)


def hard_mask(W, k):
    return skrank.soft_topk_mask(W.ravel(), k, regularization_strength=0.0,
                                 by="magnitude").reshape(W.shape)


def strength(step, W):
    """From three times the largest |W| (every weight in the band: all of them learn)
    down to a thousandth of that, geometrically."""
    return 3.0 * np.abs(W).max() * (1e-3 ** (step / (steps - 1)))


def train(method, seed=0, k=k):
    rng = np.random.default_rng(seed)
    W = rng.normal(scale=0.01, size=(64, 10))
    b = np.zeros(10)
    band = []
    for step in range(steps):
        if method == "dense":
            W_kept, back = W, (lambda g: g)
        elif method == "straight-through":
            W_kept, back = W * hard_mask(W, k), (lambda g: g)
        else:
            eps = strength(step, W)
            kept, vjp_fn = skrank.vjp(skrank.soft_topk, W.ravel(), k,
                                      regularization_strength=eps, by="magnitude",
                                      regularization=method)
            W_kept = kept.reshape(W.shape)
            mask = np.abs(W_kept) / np.maximum(np.abs(W), 1e-300)
            band.append(int(((mask > 0) & (mask < 1)).sum()))

            def back(g, vjp_fn=vjp_fn):
                return vjp_fn(g.ravel()).reshape(W.shape)
        _, gW, gb = loss_and_grad(W_kept, b)
        W -= learning_rate * back(gW)
        b -= learning_rate * gb
    final = W if method == "dense" else W * hard_mask(W, k)
    accuracy = np.mean(np.argmax(X_test @ final + b, axis=1) == y_test)
    return accuracy, int(np.count_nonzero(final)), band


methods = ("dense", "straight-through", "l2", "p4/3")
runs = {m: [train(m, seed) for seed in seeds] for m in methods}
print(f"held-out accuracy over {len(seeds)} initialisations (mean, std)\n")
print("| method           | weights kept | accuracy | std   |")
print("|------------------|-------------:|---------:|------:|")
for method in methods:
    acc = [run[0] for run in runs[method]]
    print(f"| {method:16s} | {runs[method][0][1]:12d} | {np.mean(acc):8.3f} | "
          f"{np.std(acc):5.3f} |")

# %%
# Learning the budget
# -------------------
#
# ``k`` itself can be learned: with NumPy arrays, :func:`skrank.vjp` with ``argnums=1``
# gives the derivative of the kept weights with respect to a real ``k`` (design notes,
# section 7), and a price ``penalty`` per kept weight pulls ``k`` down until the loss
# it saves is worth less than that price. Starting from 160 weights, p4/3 settles the
# budget and the weights together; a straight-through model is then trained for the
# budget it found.

penalty = 1e-3  # in units of the cross-entropy, per kept weight


def train_budget(seed=0, k_start=160.0, k_rate=2000.0):
    rng = np.random.default_rng(seed)
    W = rng.normal(scale=0.01, size=(64, 10))
    b = np.zeros(10)
    budget, path = k_start, []
    for step in range(steps):
        options = dict(regularization_strength=strength(step, W), by="magnitude",
                       regularization="p4/3")
        kept, vjp_w = skrank.vjp(skrank.soft_topk, W.ravel(), budget, **options)
        _, vjp_k = skrank.vjp(skrank.soft_topk, W.ravel(), budget, argnums=1, **options)
        _, gW, gb = loss_and_grad(kept.reshape(W.shape), b)
        W -= learning_rate * vjp_w(gW.ravel()).reshape(W.shape)
        b -= learning_rate * gb
        budget = float(np.clip(budget - k_rate * (vjp_k(gW.ravel()) + penalty), 1, 640))
        path.append(budget)
    learned = int(round(budget))
    final = W * hard_mask(W, learned)
    accuracy = np.mean(np.argmax(X_test @ final + b, axis=1) == y_test)
    return learned, accuracy, path


print("\n| seed | learned k | p4/3 accuracy | straight-through at that k |")
print("|-----:|----------:|--------------:|---------------------------:|")
budgets = []
for seed in seeds:
    learned, accuracy, path = train_budget(seed)
    budgets.append(path)
    print(f"| {seed:4d} | {learned:9d} | {accuracy:13.3f} | "
          f"{train('straight-through', seed, learned)[0]:26.3f} |")

fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(13, 3.6))
ax1.bar(methods, [np.mean([run[0] for run in runs[m]]) for m in methods],
        yerr=[np.std([run[0] for run in runs[m]]) for m in methods],
        color=["0.6", "C3", "C0", "C2"])
ax1.set_ylim(0.5, 1.0)
ax1.set_ylabel("held-out accuracy")
ax1.set_title("digits, 40 of 640 weights kept")
for m in ("l2", "p4/3"):
    ax2.plot(runs[m][0][2], label=m)
ax2.set_xlabel("gradient step (strength decreasing)")
ax2.set_ylabel("weights in the soft band")
ax2.set_yscale("symlog")
ax2.legend()
ax2.set_title("neither dropped nor fully kept")
for path in budgets:
    ax3.plot(path, color="C2", alpha=0.6)
ax3.set_xlabel("gradient step")
ax3.set_ylabel("k")
ax3.set_title(f"learned budget (price {penalty:g} per weight)")
fig.tight_layout()
plt.show()
