"""Ranking metrics per query (``groups=``), computed for all queries at once.

Learning-to-rank data come in long format: one row per document, a query id per row.
:class:`Queries` sorts the documents by query once (stably, so that a query's documents
keep their order) and lays them out as ragged rows, which the kernel ranks in one
batched call; the per-query statistics are then segment sums. ``skrank.metrics`` holds
the public functions.

A query enters the mean only where its metric is defined: at least two documents, and
neither the relevance nor the scores constant (a correlation with a constant is not
defined, and such a query cannot tell rankings apart).
"""

import warnings

import numpy as np

from . import _ops

# queries of at most this many documents are compared pairwise in padded blocks
# (O(m^2) each, vectorised); longer ones go to scipy.stats.kendalltau (O(m log m))
_PAIRWISE_MAX = 64
# padded pairwise blocks hold at most about this many pairs at a time
_PAIRWISE_BLOCK = 1 << 22


class Queries:
    """The documents of ``groups`` (one query id per document) as ragged rows."""

    def __init__(self, groups, n):
        groups = np.asarray(groups)
        if groups.ndim != 1 or groups.shape[0] != n:
            raise ValueError(f"groups must be 1-D with one query id per sample ({n}), "
                             f"got shape {groups.shape}.")
        if groups.dtype.kind == "f" and not np.isfinite(groups).all():
            raise ValueError("groups contains NaN or infinity.")
        _, inverse, self.lengths = np.unique(groups, return_inverse=True,
                                             return_counts=True)
        self.order = np.argsort(inverse, kind="stable")
        self.starts = np.r_[0, np.cumsum(self.lengths)[:-1]]
        self.n = n

    def gather(self, values):
        """values (one per document) in query order."""
        return np.asarray(values)[self.order]

    def scatter(self, values):
        """values in query order back to the documents' order."""
        out = np.empty_like(values)
        out[self.order] = values
        return out

    def sums(self, values):
        """Per-query sums of values in query order."""
        return np.add.reduceat(values, self.starts) if self.n else values[:0]

    def expand(self, per_query):
        """A per-query array repeated for each of its documents."""
        return np.repeat(per_query, self.lengths)

    def centred(self, values):
        return values - self.expand(self.sums(values) / self.lengths)


def mean_over_defined(per_query, defined, metric):
    """The mean over the queries where the metric is defined; NaN, with a warning,
    where none is."""
    if not defined.any():
        warnings.warn(f"{metric}: no query has a defined value (each needs two documents "
                      "and neither constant relevance nor constant scores); the mean is "
                      "NaN.", RuntimeWarning, stacklevel=4)
        return np.nan
    return float(np.mean(per_query[defined]))


def _not_constant(queries, x):
    """Per query: True where x (in query order) takes two values at least."""
    top = np.maximum.reduceat(x, queries.starts)
    bottom = np.minimum.reduceat(x, queries.starts)
    return top > bottom


def kendall_per_query(queries, y_true, y_pred):
    """Kendall's tau-b per query (NaN where undefined) and the defined mask, equal to
    scipy.stats.kendalltau query by query."""
    t, p = queries.gather(y_true), queries.gather(y_pred)
    defined = (queries.lengths >= 2) & _not_constant(queries, t) & \
        _not_constant(queries, p)
    tau = np.full(len(queries.lengths), np.nan)
    small = np.flatnonzero(defined & (queries.lengths <= _PAIRWISE_MAX))
    # pairwise in padded blocks of equal-length padding: tau_b = sum s_t s_p /
    # sqrt(sum |s_t| sum |s_p|) over the pairs, s the signs of the differences
    width = int(queries.lengths[small].max()) if small.size else 0
    step = max(1, _PAIRWISE_BLOCK // max(width * width, 1))
    for chunk in range(0, small.size, step):
        ids = small[chunk:chunk + step]
        slot = np.arange(width)
        valid = slot < queries.lengths[ids, None]
        index = np.where(valid, queries.starts[ids, None] + slot, 0)
        T = np.where(valid, t[index], np.nan)
        P = np.where(valid, p[index], np.nan)
        with np.errstate(invalid="ignore"):
            st = np.nan_to_num(np.sign(T[:, :, None] - T[:, None, :]))
            sp = np.nan_to_num(np.sign(P[:, :, None] - P[:, None, :]))
        # every unordered pair is counted twice: the ratio does not change
        tau[ids] = np.einsum("qij,qij->q", st, sp) / np.sqrt(
            np.abs(st).sum(axis=(1, 2)) * np.abs(sp).sum(axis=(1, 2)))
    long = np.flatnonzero(defined & (queries.lengths > _PAIRWISE_MAX))
    if long.size:
        from scipy.stats import kendalltau  # slow to import: only when needed
    for q in long:
        s = slice(queries.starts[q], queries.starts[q] + queries.lengths[q])
        tau[q] = kendalltau(t[s], p[s]).statistic
    return np.clip(tau, -1.0, 1.0), defined


# ---------------------------------------------------------------------- Spearman
_QUARTILES = (0.25, 0.75)
IQR_PER_STD = 1.3489795003921634  # the IQR of a normal, in standard deviations


def spearman_per_query(queries, y_true, y_pred, strength, regularization, with_gradient):
    """Per query, the Pearson correlation of the hard ranks of y_true and the soft
    ranks of y_pred (strength ``strength * IQR / m`` within each query of m documents,
    as soft_spearman's columns); the defined mask; and, with_gradient, a function of
    the per-query cotangent giving the gradient in y_pred (documents' order)."""
    t = queries.gather(y_true).astype(np.float64)
    p = queries.gather(y_pred).astype(np.float64)
    lengths = queries.lengths
    defined = (lengths >= 2) & _not_constant(queries, t) & _not_constant(queries, p)
    # each query scaled by a power of two (exact) to |values| < 1, as the columns are
    _, e = np.frexp(np.maximum.reduceat(np.abs(p), queries.starts))
    ps = np.ldexp(p, -queries.expand(e))
    pc = queries.centred(ps)
    sd = np.sqrt(queries.sums(pc * pc) / lengths)
    # the quartiles of each query, by sorting within queries
    within = np.lexsort((ps, queries.expand(np.arange(len(lengths)))))
    pieces = []  # (positions in query order, weights in the IQR)
    for q, sign in zip(_QUARTILES, (-1.0, 1.0)):
        pos = q * (lengths - 1)
        k = np.floor(pos).astype(np.intp)
        f = pos - k
        pieces += [(within[queries.starts + k], sign * (1.0 - f)),
                   (within[queries.starts + np.minimum(k + 1, lengths - 1)], sign * f)]
    iqr = sum(w * ps[i] for i, w in pieces)
    fallback = ~(iqr > 0)
    spread = np.where(fallback, IQR_PER_STD * sd, iqr)
    eps = strength * spread / lengths
    A, _ = _ops._forward("rank", t, 0.0, "l2", "ascending", -1, "raise", False,
                         lengths=lengths)
    R, structure = _ops._forward("rank", ps, eps, regularization, "ascending", -1,
                                 "raise", keep_structure=with_gradient and strength > 0,
                                 lengths=lengths)
    A, B = queries.centred(A), queries.centred(R)
    na, nb = np.sqrt(queries.sums(A * A)), np.sqrt(queries.sums(B * B))
    defined &= nb > 0  # soft ranks made constant by an extreme strength
    denom = np.where(defined, na * nb, 1.0)
    corr = np.where(defined, np.clip(queries.sums(A * B) / denom, -1.0, 1.0), np.nan)
    if not with_gradient:
        return corr, defined, None

    def gradient(cotangent):
        """d (sum_q cotangent_q corr_q) / d y_pred, in the documents' order."""
        c = np.where(defined, cotangent, 0.0)
        nb2 = np.where(defined, nb * nb, 1.0)
        g = queries.expand(c / denom) * A - queries.expand(c * np.nan_to_num(corr) /
                                                           nb2) * B
        if structure is None:  # strength 0: piecewise constant ranks
            return queries.scatter(np.zeros_like(g))
        v = structure.vjp(g)
        # eps depends on y_pred through the spread: grad = v - (v . z) grad(spread) /
        # spread per query (v sums to 0 per query)
        alpha = queries.sums(v * pc) / np.where(spread > 0, spread, 1.0)
        D = v - queries.expand(np.where(fallback, alpha, 0.0) * IQR_PER_STD /
                               (lengths * np.where(sd > 0, sd, 1.0))) * pc
        kept = np.where(fallback, 0.0, alpha)
        for i, w in pieces:
            np.subtract.at(D, i, kept * w)
        return queries.scatter(np.ldexp(D, -queries.expand(e)))

    return corr, defined, gradient
