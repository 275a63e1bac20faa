"""Differentiable ranking losses built on soft ranks.

Each loss takes ``(y_true, y_pred)`` (or ``(labels, scores)``), treats the rows along
``axis`` as independent lists, and returns the mean over rows as a float. It is
differentiable in its second argument: ``skrank.vjp(loss, y_true, y_pred, argnums=1)``
gives the gradient, computed from the soft ranks' kept structure in O(n) per row.
Strengths are absolute, in the units of ``y_pred`` (see :func:`skrank.soft_rank`).
Everything follows ``y_pred``: with a CuPy ``y_pred``, ``y_true`` goes to its device
and the loss is computed there.
"""

import numbers

import numpy as np

from . import _ops, _pav, _rows, _stats
from ._registry import STRENGTH, operator

__all__ = ["ndcg_loss", "spearman_loss", "topk_loss"]

_GAINS = ("linear", "exponential")


class _LossStructure:
    """vjp of a scalar loss: the gradient was computed by the forward pass. ranks:
    the structure of the soft ranks of the scores, for the derivative in the
    strengths."""

    def __init__(self, grad, ranks):
        self.grad, self.rows = grad, ranks.rows
        self._scores, self._eps = ranks.X, ranks.eps

    @staticmethod
    def _scalar(cotangent):
        g = np.asarray(_rows.host(cotangent))
        if g.shape != ():
            raise ValueError(f"the cotangent of a scalar loss must be a scalar, got {g.shape}.")
        if g.dtype.kind not in "biuf":
            raise TypeError(f"the cotangent must hold real numbers, got dtype {g.dtype}.")
        return g[()]

    def vjp(self, cotangent):
        return (self.grad * self._scalar(cotangent)).astype(self.grad.dtype, copy=False)

    def strength_products(self):
        """(None, vjp) in the rows' strengths: the loss depends on each row's scores
        y through the soft ranks and masks of y / eps alone, so d loss / d eps =
        -<grad, y> / eps per row (grad sums to 0 over a row: y may be centred)."""
        rows, xp = self.rows, self.rows.xp
        Y = self._scores.astype(np.float64)
        m = xp.asarray(np.diff(rows.offsets))
        Y = Y - rows.expand(rows.row_sums(Y) / m)
        G = rows.to_rows(self.grad).astype(np.float64)
        d = _ops._over_strength(-rows.row_sums(G * Y), xp.asarray(self._eps), xp)
        return None, lambda g: _rows.host(d * float(self._scalar(g))).astype(self.grad.dtype)


def _lists(y_true, y_pred, axis, lengths, true_name="y_true"):
    """Validated inputs: (y_pred array, rows map, y_true rows (float32 or float64: no
    float64 copy, the losses' values are summed in chunks), row lengths)."""
    xp = _ops._namespace(y_pred)
    y_pred = _ops._as_float_array(y_pred, "y_pred", xp)
    y_true = _ops._asarray(y_true, xp)
    if y_true.dtype.kind in "biu" and y_true.dtype.itemsize <= 2:
        y_true = y_true.astype(np.float32)  # (exact; a float64 copy would be 8 bytes each)
    y_true = _ops._as_float_array(y_true, true_name, xp)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"{true_name} and y_pred must have the same shape, got {y_true.shape} and "
            f"{y_pred.shape}."
        )
    rows = _rows.make_rows(y_pred.shape, axis, lengths, xp)
    m = np.diff(rows.offsets)
    if rows.n_rows == 0 or (m == 0).any():
        raise ValueError("the losses need at least one list, and no empty list.")
    T = rows.to_rows(y_true)
    if not xp.isfinite(T).all():
        raise ValueError(f"{true_name} contains NaN or infinity.")
    return y_pred, rows, T, m


def _soft_ranks(y_pred, rows, regularization_strength, regularization, direction, axis,
                lengths, with_gradient, name="y_pred"):
    """Soft ranks of y_pred as rows (in y_pred's dtype) and their structure."""
    ranks, structure = _ops._forward("rank", y_pred, regularization_strength, regularization,
                                     direction, axis, "raise", keep_structure=with_gradient,
                                     lengths=lengths, name=name)
    return rows.to_rows(ranks, out_space=True, name="ranks"), structure


def _finish(loss_rows, dloss_dR, structure, rows, with_gradient):
    """Mean over rows; gradient with respect to y_pred through the soft ranks."""
    value = float(loss_rows.mean())
    if not with_gradient:
        return value, None
    dloss_dR /= loss_rows.shape[0]  # (in place: every caller passes a fresh array)
    cot = rows.from_rows(dloss_dR)
    return value, _LossStructure(structure.vjp(cot), structure)


def _rank_correlation_sums(T, R, rows, lengths, with_ranks):
    """Per row (float64, shape (3, n_rows)): sum a (R - mean R), sum a^2 and
    sum (R - mean R)^2, where a are the hard, tie-averaged ranks of T, centred; and a
    itself (as rows, float64) if with_ranks. On NumPy arrays one kernel call sorts
    each row of T and sums, forming no rank array unless asked for (memory: design
    notes, section 15)."""
    xp = rows.xp
    if rows.kernels is _pav:
        sums = np.empty((3, rows.n_rows))
        A = np.empty(T.shape) if with_ranks else None
        _pav.rank_correlation_sums(T.reshape(-1), rows.offsets, R.reshape(-1), sums,
                                   None if A is None else A.reshape(-1))
        return sums, A
    m = xp.asarray(np.diff(rows.offsets))
    A = _ops._forward("rank", T.astype(np.float64), 0.0, "l2", "ascending", -1, "raise",
                      False, None if lengths is None else rows.lengths)[0]
    A = A - rows.expand((m + 1) / 2.0)  # (the mean of tie-averaged ranks)
    B = R.astype(np.float64)
    B = B - rows.expand(rows.row_sums(B) / m)
    return xp.stack([rows.row_sums(A * B), rows.row_sums(A * A), rows.row_sums(B * B)]), A


def _spearman(y_true, y_pred, regularization_strength, regularization, axis, with_gradient,
              lengths=None):
    y_pred, rows, T, m = _lists(y_true, y_pred, axis, lengths)
    R, structure = _soft_ranks(y_pred, rows, regularization_strength, regularization,
                               "ascending", axis, lengths, with_gradient)
    (ab, aa, bb), A = _rank_correlation_sums(T, R, rows, lengths, with_gradient)
    xp = rows.xp
    na, nb = xp.sqrt(aa), xp.sqrt(bb)
    ok = (na > 0) & (nb > 0)  # a constant row has no correlation: 0 by convention
    denom = xp.where(ok, na * nb, 1.0)
    corr = xp.where(ok, ab / denom, 0.0)
    if not with_gradient:
        return _finish(1.0 - corr, None, structure, rows, False)
    # d loss / d R = -(A / (na nb) - corr B / nb^2), B = R - mean R, 0 where not ok;
    # formed in place, in two float64 arrays of the rows' size
    G = R.astype(np.float64)
    G -= rows.expand(rows.row_sums(G) / xp.asarray(m))
    G *= rows.expand(xp.where(ok, corr / xp.where(ok, bb, 1.0), 0.0))
    A *= rows.expand(xp.where(ok, 1.0 / denom, 0.0))
    G -= A
    return _finish(1.0 - corr, G, structure, rows, True)


def _check_k(k, n, cutoff):
    """k as an int; a cutoff (ndcg) may be None or exceed n, meaning n."""
    if k is None and cutoff:
        return n
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, numbers.Integral):
        raise TypeError(f"k must be an integer{' or None' if cutoff else ''}, got {k!r}.")
    if k < 0 or (k > n and not cutoff):
        raise ValueError(f"k must lie in [0, {n}] (the length of the axis), got {k}.")
    return min(int(k), n)


def _ndcg(y_true, y_pred, regularization_strength, regularization, axis, k, gains,
          with_gradient, lengths=None):
    if not isinstance(gains, str) or gains not in _GAINS:
        raise ValueError(f"gains must be one of {_GAINS}, got {gains!r}.")
    y_pred, rows, G, m = _lists(y_true, y_pred, axis, lengths)
    xp = rows.xp
    if (G < 0).any():
        raise ValueError("ndcg_loss needs non-negative relevances in y_true.")

    def gain(g):
        g = g.astype(np.float64)
        return xp.exp2(g) - 1.0 if gains == "exponential" else g

    R, structure = _soft_ranks(y_pred, rows, regularization_strength, regularization,
                               "descending", axis, lengths, with_gradient)
    k_rows = np.minimum(_check_k(k, rows.n, cutoff=True), m)  # one cutoff per list
    # the cutoff: a soft top-k mask of the scores (in [0, 1], summing to k; the
    # hard top-k indicator at strength 0), so the cut never keeps more than k
    cut, cut_structure = None, None
    if (k_rows < m).any():
        eps = _ops._strengths(regularization_strength, rows)
        reg = _stats._mask_code(_ops._REGULARIZERS[regularization])
        masks = _stats._Masks(rows, rows.to_rows(y_pred), eps, with_gradient, reg)
        cut, _, perm, start, nblocks, eps_used, _ = masks.structure(k_rows)
        if with_gradient:  # (read at once, below: no private copies needed)
            cut_structure = _ops._Structure("rank", reg, 1.0, eps_used, masks.X, cut,
                                            perm, start, nblocks, rows, None)

    # the ideal DCG: relevances sorted in decreasing order, discounted up to k;
    # summed in chunks, as the DCG without a gradient: no float64 copy of the lists
    G_sorted = rows.sort_rows(G, descending=True)
    k_cut = xp.asarray(k_rows)

    def ideal_terms(chunk):
        place = chunk.positions  # (one per column of 2-D rows: the discount is cheap)
        return gain(chunk.take(G_sorted)) * xp.where(
            place < chunk.expand(k_cut), 1.0 / xp.log2(place + 2.0), 0.0)

    idcg = rows.chunked_sums(ideal_terms)
    del G_sorted
    ok = idcg > 0  # rows without relevant items score 0, as in scikit-learn
    inv_idcg = xp.where(ok, 1.0 / xp.where(ok, idcg, 1.0), 0.0)
    if not with_gradient:
        def dcg_terms(chunk):  # (the same arithmetic as below, entry by entry)
            gc = gain(chunk.take(G))
            if cut is not None:
                gc = gc * chunk.take(cut).astype(np.float64)
            return gc / xp.log2(1.0 + chunk.take(R).astype(np.float64))

        ndcg = rows.chunked_sums(dcg_terms) * inv_idcg
        return _finish(1.0 - ndcg, None, structure, rows, False)
    G, R = gain(G), R.astype(np.float64)
    cut = 1.0 if cut is None else cut.astype(np.float64)
    log_r, scale = xp.log2(1.0 + R), rows.expand(inv_idcg)
    ndcg = rows.row_sums(G * cut / log_r) * inv_idcg
    value, grad = _finish(1.0 - ndcg, G * cut / (log_r * log_r * (1.0 + R) * np.log(2.0))
                          * scale, structure, rows, True)
    if cut_structure is not None:  # the cutoff moves with y_pred too
        grad.grad = grad.grad + cut_structure.vjp(rows.from_rows(-(G / log_r) * scale
                                                                 / rows.n_rows))
    return value, grad


def _topk(labels, scores, k, regularization_strength, regularization, axis, with_gradient,
          lengths=None):
    xp = _ops._namespace(scores)
    scores = _ops._as_float_array(scores, "scores", xp)
    rows = _rows.make_rows(scores.shape, axis, lengths, xp)
    m = np.diff(rows.offsets)  # classes per sample
    if rows.n_rows == 0 or (m == 0).any():
        raise ValueError("topk_loss needs at least one sample, and classes for each.")
    R, structure = _soft_ranks(scores, rows, regularization_strength, regularization,
                               "descending", axis, lengths, with_gradient, name="scores")
    k = _check_k(k, int(m.min()), cutoff=False)
    labels = np.asarray(_rows.host(labels))
    if labels.dtype.kind not in "iu":
        raise TypeError(f"labels must be integer class indices, got dtype {labels.dtype}.")
    if labels.shape != rows.batch_shape:
        raise ValueError(
            f"labels must have shape {rows.batch_shape} (scores' shape without the class "
            f"axis, or one per list), got {labels.shape}."
        )
    lab = labels.reshape(rows.n_rows)
    if ((lab < 0) | (lab >= m)).any():
        raise ValueError("labels must be class indices: in [0, number of classes).")
    where = xp.asarray(rows.offsets[:-1] + lab)  # the true class's entry in the rows
    r_true = R.reshape(-1)[where]
    dloss = xp.zeros(R.size)
    dloss[where] = r_true > k
    return _finish(xp.maximum(0.0, r_true - k), dloss.reshape(R.shape), structure, rows,
                   with_gradient)


# value-and-structure forms, for skrank.vjp (differentiable in the second argument)
def _spearman_loss_structured(y_true, y_pred, *, regularization_strength=1.0,
                              regularization="l2", axis=-1, lengths=None):
    return _spearman(y_true, y_pred, regularization_strength, regularization, axis, True,
                     lengths)


def _ndcg_loss_structured(y_true, y_pred, *, regularization_strength=1.0,
                          regularization="l2", axis=-1, k=None, gains="linear",
                          lengths=None):
    return _ndcg(y_true, y_pred, regularization_strength, regularization, axis, k, gains,
                 True, lengths)


def _topk_loss_structured(labels, scores, *, k=1, regularization_strength=1.0,
                          regularization="l2", axis=-1, lengths=None):
    return _topk(labels, scores, k, regularization_strength, regularization, axis, True,
                 lengths)


_PARAMS = """\
    regularization_strength : float or array-like of float, default=1.0
        Strength of the soft ranks of ``{pred}``, in its units: a scalar or one
        value per row. 0 gives the hard ranks.
    regularization : {{"l2", "kl", "p4/3", "p3/2"}}, default="l2"
        Regularization of the soft ranks (and of ndcg_loss's cutoff mask: the same
        p-norm with "p4/3" or "p3/2", else l2), as for :func:`skrank.soft_rank`.
    axis : int or None, default=-1
        Axis along which the lists lie; every other axis indexes lists.
"""

_LENGTHS = """\
    lengths : 1-D array-like of int, optional
        Lists of different lengths: both arrays are then 1-D, the concatenation
        of non-empty lists of these lengths.
"""


@operator(main="y_pred", kind="loss", aligned=("y_true",), differentiable="y_pred",
          structured=_spearman_loss_structured, also=(STRENGTH,))
def spearman_loss(y_true, y_pred, *, regularization_strength=1.0, regularization="l2",
                  axis=-1, lengths=None):
    return _spearman(y_true, y_pred, regularization_strength, regularization, axis, False,
                     lengths)[0]


spearman_loss.__doc__ = f"""One minus the soft Spearman correlation, averaged over rows.

    For each list, the Pearson correlation between the hard (tie-averaged) ranks of
    ``y_true`` and the soft ranks of ``y_pred``. A list where either side is constant
    has no correlation and contributes 0 (scipy returns NaN there).

    Parameters
    ----------
    y_true : array-like of real numbers
        Targets; only their order matters.
    y_pred : array-like of real numbers
        Predictions, of ``y_true``'s shape. The loss is differentiable in them.
{_PARAMS.format(pred="y_pred")}{_LENGTHS}
    Returns
    -------
    loss : float
        ``mean(1 - rho)`` over lists, in ``[0, 2]``. At strength 0,
        ``1 - scipy.stats.spearmanr(y_true, y_pred).statistic`` for one list.

    Examples
    --------
    >>> import numpy as np, skrank
    >>> from skrank.losses import spearman_loss
    >>> y_true, y_pred = np.array([1., 2., 3., 4.]), np.array([0.1, 0.4, 0.3, 0.9])
    >>> round(spearman_loss(y_true, y_pred, regularization_strength=0.0), 6)
    0.2
    >>> loss, vjp_fn = skrank.vjp(spearman_loss, y_true, y_pred, argnums=1,
    ...                           regularization_strength=0.1)
    >>> vjp_fn(1.0).shape
    (4,)
    """


@operator(main="y_pred", kind="loss", aligned=("y_true",), differentiable="y_pred",
          structured=_ndcg_loss_structured, also=(STRENGTH,))
def ndcg_loss(y_true, y_pred, *, regularization_strength=1.0, regularization="l2",
              axis=-1, k=None, gains="linear", lengths=None):
    return _ndcg(y_true, y_pred, regularization_strength, regularization, axis, k, gains,
                 False, lengths)[0]


ndcg_loss.__doc__ = f"""One minus the soft NDCG, averaged over rows.

    DCG with the descending soft ranks ``r`` of ``y_pred`` (rank 1 = highest score):
    ``sum(gain * c / log2(1 + r))``, where the cutoff ``c`` is the soft top-k mask
    of ``y_pred`` (:func:`skrank.soft_topk_mask` at the same strength: in
    ``[0, 1]``, summing to k, the hard top-k indicator at strength 0), so no more
    than k items' worth of gain ever counts. It is divided by the ideal DCG (the
    hard one of the best order). Lists whose relevances are all zero score 0, as in
    scikit-learn.

    Parameters
    ----------
    y_true : array-like of non-negative numbers
        Relevances (negative values raise ``ValueError``).
    y_pred : array-like of real numbers
        Scores, of ``y_true``'s shape. The loss is differentiable in them.
{_PARAMS.format(pred="y_pred")}    k : int or None, default=None
        Cutoff: only the top k ranks count (None, or k >= n: all).
    gains : {{"linear", "exponential"}}, default="linear"
        Gain ``y_true`` (as scikit-learn) or ``2 ** y_true - 1``.
{_LENGTHS}
    Returns
    -------
    loss : float
        ``mean(1 - ndcg)`` over lists, in ``[0, 1]``. At strength 0 and without ties
        in ``y_pred``, ``1 - sklearn.metrics.ndcg_score(y_true, y_pred, k=k)`` for 2-D
        inputs (with ``2 ** y_true - 1`` as ``y_true`` for "exponential").

    Examples
    --------
    >>> from skrank.losses import ndcg_loss
    >>> round(ndcg_loss([[3., 2., 0., 1.]], [[0.9, 0.1, 0.3, 0.2]],
    ...                 regularization_strength=0.0), 4)
    0.0841
    """


@operator(main="scores", kind="loss", per_row=("labels", "regularization_strength"),
          differentiable="scores", structured=_topk_loss_structured, also=(STRENGTH,))
def topk_loss(labels, scores, *, k=1, regularization_strength=1.0, regularization="l2",
              axis=-1, lengths=None):
    return _topk(labels, scores, k, regularization_strength, regularization, axis, False,
                 lengths)[0]


topk_loss.__doc__ = f"""Soft top-k classification loss, averaged over samples.

    ``max(0, r_y - k)``, where ``r_y`` is the descending soft rank of the true class's
    score among the classes (rank 1 = highest score): zero when the true class is
    softly within the top k, growing linearly with how far outside it falls.

    Parameters
    ----------
    labels : array-like of int
        True class indices, of ``scores``' shape without ``axis``.
    scores : array-like of real numbers
        Class scores; the classes lie along ``axis``. The loss is differentiable in
        them.
    k : int, default=1
        How many top classes count as correct.
{_PARAMS.format(pred="scores")}    lengths : 1-D array-like of int, optional
        Samples with different numbers of classes: ``scores`` is then 1-D, the
        concatenation of each sample's class scores, and ``labels`` has one
        entry per sample.

    Returns
    -------
    loss : float
        At strength 0, the mean of the hard "how far outside the top k" counts.

    Examples
    --------
    >>> from skrank.losses import topk_loss
    >>> topk_loss([0, 2], [[0.1, 0.5, 0.4], [0.3, 0.2, 0.9]], k=1,
    ...           regularization_strength=0.0)
    1.0
    """
