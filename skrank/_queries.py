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
IQR_PER_STD = 1.3489795003921634  # the IQR of a normal, in standard deviations


def quartile_pieces(m):
    """The IQR of m sorted values (m an int, or an array of them) as np.quantile's
    linear interpolation forms it: [(rank, weight), ...], the IQR being the sum of
    weight * value at rank over the four pieces (the lower quartile's with negative
    weights)."""
    pieces = []
    for q, sign in ((0.25, -1.0), (0.75, 1.0)):
        position = q * (np.asarray(m) - 1)
        k = np.floor(position).astype(np.intp)
        f = position - k
        pieces += [(k, sign * (1.0 - f)), (np.minimum(k + 1, np.asarray(m) - 1), sign * f)]
    return pieces


class _Spacing:
    """Each query's predictions scaled by a power of two (exact; |values| < 1, as
    soft_spearman's columns), their spread (the IQR, np.quantile's linear
    interpolation; where it is 0, IQR_PER_STD times the std) and what the gradient of
    a function of ``scaled / (strength * spread / m)`` needs."""

    def __init__(self, queries, p):
        self.queries = queries
        lengths = queries.lengths
        _, self.e = np.frexp(np.maximum.reduceat(np.abs(p), queries.starts))
        self.scaled = np.ldexp(p, -queries.expand(self.e))
        self.centred = queries.centred(self.scaled)
        self.sd = np.sqrt(queries.sums(self.centred * self.centred) / lengths)
        within = np.lexsort((self.scaled, queries.expand(np.arange(len(lengths)))))
        # (positions in query order, weights in the IQR)
        self.pieces = [(within[queries.starts + k], w)
                       for k, w in quartile_pieces(lengths)]
        iqr = sum(w * self.scaled[i] for i, w in self.pieces)
        self.fallback = ~(iqr > 0)
        self.spread = np.where(self.fallback, IQR_PER_STD * self.sd, iqr)

    def strengths(self, strength):
        """One strength per query, in the scaled units."""
        with np.errstate(over="ignore"):
            eps = strength * self.spread / self.queries.lengths
        return np.minimum(eps, np.finfo(np.float64).max)

    def gradient(self, v):
        """The gradient in the predictions (documents' order) of a function of
        ``scaled / eps`` whose gradient at fixed eps is v (query order, summing to 0
        per query): eps depends on the predictions through the spread, grad = v - (v .
        z) grad(spread) / spread per query, then undo the scaling."""
        queries, lengths = self.queries, self.queries.lengths
        alpha = queries.sums(v * self.centred) / np.where(self.spread > 0, self.spread,
                                                           1.0)
        D = v - queries.expand(np.where(self.fallback, alpha, 0.0) * IQR_PER_STD / (
            lengths * np.where(self.sd > 0, self.sd, 1.0))) * self.centred
        kept = np.where(self.fallback, 0.0, alpha)
        for i, w in self.pieces:
            np.subtract.at(D, i, kept * w)
        return queries.scatter(np.ldexp(D, -queries.expand(self.e)))


def spearman_per_query(queries, y_true, y_pred, strength, regularization, with_gradient):
    """Per query, the Pearson correlation of the hard ranks of y_true and the soft
    ranks of y_pred (strength ``strength * IQR / m`` within each query of m documents,
    as soft_spearman's columns); the defined mask; and, with_gradient, a function of
    the per-query cotangent giving the gradient in y_pred (documents' order)."""
    t = queries.gather(y_true).astype(np.float64)
    p = queries.gather(y_pred).astype(np.float64)
    lengths = queries.lengths
    defined = (lengths >= 2) & _not_constant(queries, t) & _not_constant(queries, p)
    spacing = _Spacing(queries, p)
    A, _ = _ops._forward("rank", t, 0.0, "l2", "ascending", -1, "raise", False,
                         lengths=lengths)
    R, structure = _ops._forward("rank", spacing.scaled, spacing.strengths(strength),
                                 regularization, "ascending", -1, "raise",
                                 keep_structure=with_gradient and strength > 0,
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
        if structure is None:  # strength 0: piecewise constant ranks
            return np.zeros(queries.n)
        c = np.where(defined, cotangent, 0.0)
        nb2 = np.where(defined, nb * nb, 1.0)
        g = queries.expand(c / denom) * A - queries.expand(
            c * np.nan_to_num(corr) / nb2) * B
        return spacing.gradient(structure.vjp(g))

    return corr, defined, gradient


# -------------------------------------------------------------------------- NDCG
def _hard_ndcg(queries, gains, p, k):
    """Per query (in query order), scikit-learn's NDCG@k (ndcg_score: tied scores
    share the mean of their gains over their positions)."""
    lengths = queries.lengths
    query_of = queries.expand(np.arange(len(lengths)))
    cut = lengths if k is None else np.minimum(k, lengths)
    position = np.arange(queries.n) - queries.expand(queries.starts)
    discount = np.where(position < queries.expand(cut), 1.0 / np.log2(position + 2.0),
                        0.0)
    # descending scores within each query, tied documents grouped
    order = np.lexsort((-p, query_of))
    scores, g = p[order], gains[order]
    first = np.r_[True, (np.diff(query_of) != 0) | (np.diff(scores) != 0)]
    tie_starts = np.flatnonzero(first)
    mean_gain = np.add.reduceat(g, tie_starts) / np.diff(np.r_[tie_starts, queries.n])
    dcg = queries.sums(mean_gain[np.cumsum(first) - 1] * discount)
    idcg = queries.sums(gains[np.lexsort((-gains, query_of))] * discount)
    return dcg / np.where(idcg > 0, idcg, 1.0)


def ndcg_mean(queries, y_true, y_pred, k, strength, regularization, gains):
    """The mean NDCG@k over the defined queries: at strength 0 scikit-learn's (ties
    averaged), otherwise ndcg_loss's soft NDCG with the strength ``strength * IQR /
    m`` per query."""
    from .losses import _ndcg

    t = queries.gather(y_true).astype(np.float64)
    p = queries.gather(y_pred).astype(np.float64)
    if (t < 0).any():
        raise ValueError("NDCG needs non-negative relevances in y_true.")
    defined = (queries.lengths >= 2) & _not_constant(queries, t) & \
        _not_constant(queries, p)
    if strength == 0.0:
        g = np.exp2(t) - 1.0 if gains == "exponential" else t
        return mean_over_defined(_hard_ndcg(queries, g, p, k), defined, "soft_ndcg")
    if not defined.any():
        return mean_over_defined(np.zeros(len(defined)), defined, "soft_ndcg")
    spacing = _Spacing(queries, p)
    docs = queries.expand(defined)
    loss, _ = _ndcg(t[docs], spacing.scaled[docs], spacing.strengths(strength)[defined],
                    regularization, -1, k, gains, False, queries.lengths[defined])
    return 1.0 - loss
