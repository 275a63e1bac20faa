"""Soft quantile normalization: :class:`SoftRankTransformer`."""

import warnings
from numbers import Integral, Real

import numpy as np
from scipy import sparse, stats
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin, _fit_context
from sklearn.utils import check_random_state, resample
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _reference_rank, _weights

__all__ = ["SoftRankTransformer"]

# as QuantileTransformer: normal outputs stay within norm.ppf(1e-7) and its mirror
_BOUNDS_THRESHOLD = 1e-7
_CLIP_MIN = stats.norm.ppf(_BOUNDS_THRESHOLD - np.spacing(1))
_CLIP_MAX = stats.norm.ppf(1 - (_BOUNDS_THRESHOLD - np.spacing(1)))


class _Reference:
    """The fitted reference of every feature, prepared for the kernel at one
    strength: descending rows and their prefix and suffix PAV stacks."""

    def __init__(self, quantiles, eps, kl):
        m, p = quantiles.shape
        self.m, self.kl, self.quantiles = m, kl, quantiles
        self.a = np.ascontiguousarray(quantiles[::-1].T, dtype=np.float64)  # descending
        self.all_nan = np.isnan(self.a[:, 0])  # features that were all NaN at fit
        # eps == 0 marks the strength-0 map (an all-NaN feature is mapped to NaN)
        self.eps = np.where(self.all_nan, 0.0, np.asarray(eps, dtype=np.float64))
        self.hard = self.eps == 0
        self.link_pre = np.empty((p, m), dtype=np.intp)
        self.link_suf = np.empty((p, m), dtype=np.intp)
        self.pre = np.empty((p, m, 5))
        self.suf = np.empty((p, m, 5))
        _reference_rank.build_stacks(self.a, self.eps, kl, self.link_pre, self.pre,
                                     self.link_suf, self.suf, np.empty((p, m), dtype=np.intp))

    def _kernel_args(self):
        return self.a, self.eps, self.kl, self.link_pre, self.pre, self.link_suf, self.suf

    def map(self, X, out):
        _reference_rank.rank_values(X, *self._kernel_args(), out)
        out[:, self.all_nan] = np.nan
        return out

    def feature(self, j):
        """The reference of feature j alone (its maps take one column)."""
        one = object.__new__(_Reference)
        one.m, one.kl, one.quantiles = self.m, self.kl, self.quantiles[:, j:j + 1]
        for name in ("a", "all_nan", "eps", "hard", "link_pre", "link_suf", "pre", "suf"):
            setattr(one, name, getattr(self, name)[j:j + 1])
        return one

    def inverse(self, U, out):
        # strength-0 features first: out may be U itself (copy=False)
        hard = {j: self._hard_inverse(U[:, j], self.quantiles[:, j])
                for j in np.flatnonzero(self.hard)}
        _reference_rank.invert_values(U, *self._kernel_args(), out)
        for j, values in hard.items():
            out[:, j] = values
        return out

    def _hard_inverse(self, u, q):
        if np.isnan(q).any():
            return np.full(u.shape, np.nan)
        values, counts = np.unique(q, return_counts=True)
        level_after = np.cumsum(counts) / self.m  # the flat level right of each value
        u = np.clip(u, 0.0, 1.0)
        i = np.minimum(np.searchsorted(level_after, u, side="left"), values.size - 1)
        # u on a flat level between two values: the middle of that gap
        flat = (u == level_after[i]) & (i + 1 < values.size)
        gap_mid = 0.5 * values[i] + 0.5 * values[np.minimum(i + 1, values.size - 1)]
        return np.where(np.isnan(u), np.nan, np.where(flat, gap_mid, values[i]))


def _weighted_percentiles(x, w, q):
    """np.percentile(x, 100 q)'s linear interpolation where sample i counts w[i]
    times: the value at rank position q (W - 1) of the repeated sample (W the total
    weight), interpolated between the ranks around it; NaN values left out (all
    NaN: NaN)."""
    valid = ~np.isnan(x)
    x, w = x[valid], w[valid]
    if x.size == 0:
        return np.full(q.shape, np.nan)
    order = np.argsort(x, kind="stable")
    x, cum = x[order], np.cumsum(w[order])
    position = q * (cum[-1] - 1.0)
    below = np.floor(position)
    frac = position - below

    def at(rank):  # the value of the repeated sample at 0-based rank
        return x[np.minimum(np.searchsorted(cum, rank, side="right"), x.size - 1)]

    a, b = at(below), at(np.minimum(below + 1.0, cum[-1] - 1.0))
    # numpy's lerp: exact at both ends, monotone
    return np.where(frac >= 0.5, b - (b - a) * (1.0 - frac), a + (b - a) * frac)


class SoftRankTransformer(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Soft quantile normalization: each feature mapped by its smoothed empirical CDF.

    The role of :class:`sklearn.preprocessing.QuantileTransformer`, as a soft rank
    with a strength. ``fit`` keeps a reference of ``n_quantiles_`` quantiles per
    feature, computed exactly as QuantileTransformer does. ``transform`` maps a value
    ``x`` of feature ``j`` to its soft rank in the vector ``(quantiles_[:, j]..., x)``,
    rescaled to ``[0, 1]``::

        u = (soft_rank(concat(quantiles_[:, j], [x]), eps_j, regularization)[-1] - 1)
            / n_quantiles_,        eps_j = regularization_strength * scale_[j]

    so every value is mapped on its own (samples never interact) and the map is
    the same at fit and at transform time. With "l2" its slope is at most
    ``1 / (n_quantiles_ * eps_j)``: a small change of the input never moves the
    output much, at ties and near-ties too. At strength 0 it is the mid-distribution
    function ``(#{q < x} + #{q == x} / 2) / n_quantiles_``, a staircase with a step
    at each reference value (QuantileTransformer instead interpolates linearly
    between them); a positive strength turns the steps into ramps, so the map is
    continuous and differentiable almost everywhere, and samples whose values are
    close get close outputs. Each value costs O(log ``n_quantiles_`` + merges), computed
    exactly from PAV stacks of the reference kept for every prefix and suffix, in
    parallel with OpenMP.

    Parameters
    ----------
    regularization_strength : float, default=1.0
        Smoothing, in units of ``scale_``, the typical spacing of the reference
        (see ``scale_``): 1 is about one reference spacing. 0 gives the step-like
        mid-distribution function. With "l2", pooling cascades: from about 3, the
        map is one straight line over most of the data, and larger values squeeze
        the outputs toward 0.5 (the map becomes affine in ``x`` near the
        reference's center, flat beyond). The useful range is about 0.1 to 3.
    regularization : {"l2", "kl"}, default="l2"
        ``"l2"``: the map is piecewise linear; neighbouring reference values whose
        gap is below ``eps_j`` pool, the same amount everywhere in the
        distribution. ``"kl"``: the pooling threshold depends on the position
        (about ``eps_j * log(rank_i / rank_{i+1})``), so kl smooths the low end of
        the distribution (small outputs) much more than the high end; its unit
        ``scale_`` makes the threshold one spacing per unit of strength at the
        median, as "l2"'s. kl costs more per value, up to about 10x "l2" at
        strengths 0.5 to 5 (many merges per value).
    n_quantiles : int, default=1000
        Number of reference quantiles per feature; ``min(n_quantiles, n_samples)``
        are used (recorded in ``n_quantiles_``), without a warning.
    subsample : int or None, default=10_000
        Maximum number of samples used to compute the quantiles (a random
        subsample, as in QuantileTransformer). None uses all of them.
    output_distribution : {"uniform", "normal"}, default="uniform"
        ``"normal"`` applies the standard normal quantile function to the
        ``[0, 1]`` output, clipped at ``norm.ppf(1e-7)`` and its mirror as
        QuantileTransformer does.
    random_state : int, RandomState instance or None, default=None
        Draws the subsample.
    copy : bool, default=True
        False lets ``transform`` write into ``X`` when it is a float array.
    ignore_implicit_zeros : bool, default=False
        Sparse input only: leave the implicit zeros out of the reference
        quantiles (as QuantileTransformer's option). Either way ``transform`` maps
        the stored values only, and the implicit zeros stay zeros.

    Attributes
    ----------
    n_quantiles_ : int
        The number of quantiles used.
    quantiles_ : ndarray of shape (n_quantiles, n_features)
        The reference of each feature, ascending.
    references_ : ndarray of shape (n_quantiles,)
        The probabilities of the quantiles, evenly spaced in ``[0, 1]``.
    scale_ : ndarray of shape (n_features,)
        The unit of the strength for each feature: the reference's interquartile
        range divided by ``(n_quantiles_ - 1) / 2``, its mean spacing in the body
        of the distribution. The spacing, not the spread, is the right unit: the
        soft rank pools neighbours whose gap is below the strength. When the
        interquartile range is 0, the mean spacing over the whole range is used;
        for a constant feature (or one quantile), 1.0. With ``"kl"``, times
        ``n_quantiles_ / 2``: kl pools neighbours at rank ``rho`` whose gap is
        below about ``eps_j / rho``.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features,)
        Names of features seen during fit, when they are all strings.

    See Also
    --------
    sklearn.preprocessing.QuantileTransformer : The hard (step-like) map.
    skrank.soft_rank : Soft ranks within one vector.

    Notes
    -----
    NaN values are ignored by ``fit`` and stay NaN in ``transform``, as in
    QuantileTransformer; a feature that is all NaN at fit maps everything to NaN.
    Sparse input (CSR or CSC, non-negative; the result is CSC) is treated as
    QuantileTransformer treats it: the implicit zeros count in the reference quantiles unless
    ``ignore_implicit_zeros``, and ``transform`` and ``inverse_transform`` map the
    stored values only, so the output keeps the sparsity pattern (an implicit zero
    stays 0, which is not the soft rank of 0).

    ``inverse_transform`` returns, for an output ``u``, a value ``x`` that maps to
    it. Where the map is flat (``x`` far from every reference value at small
    strengths, the tails beyond the reference, and the gaps of the strength-0 step
    map), it returns the middle of the flat part, or its finite end for the tails
    ``u = 0`` and ``u = 1``; at a jump of the strength-0 map it returns the jump's
    location. So ``transform(inverse_transform(U)) == U`` wherever the map takes
    the value, and ``inverse_transform(transform(X)) == X`` where it is
    increasing. A flat part lies within one gap of the reference (ties pool at
    any positive strength), so inside the reference's range the round trip moves
    a value by at most half the gap around it. One exception: at strength 0 the
    tails are open intervals
    (``x < min(quantiles_)`` maps to 0), so ``u = 0`` and ``u = 1`` return the
    reference's minimum and maximum, where the steps start.

    References
    ----------
    M. Blondel, O. Teboul, Q. Berthet, J. Djolonga. "Fast Differentiable Sorting
    and Ranking". ICML 2020.

    Examples
    --------
    >>> import numpy as np
    >>> from skrank.preprocessing import SoftRankTransformer
    >>> X = np.arange(10.0).reshape(-1, 1)
    >>> hard = SoftRankTransformer(regularization_strength=0.0, n_quantiles=10).fit(X)
    >>> hard.transform([[-1.0], [2.0], [2.5], [20.0]]).ravel()
    array([0.  , 0.25, 0.3 , 1.  ])
    >>> soft = SoftRankTransformer(regularization_strength=1.0, n_quantiles=10).fit(X)
    >>> soft.transform([[-1.0], [2.0], [2.5], [20.0]]).ravel().round(4)
    array([0.    , 0.2727, 0.3182, 1.    ])
    >>> soft.inverse_transform(soft.transform([[2.5]])).round(12)
    array([[2.5]])
    """

    _parameter_constraints: dict = {
        "regularization_strength": [Interval(Real, 0, None, closed="left")],
        "regularization": [StrOptions({"l2", "kl"})],
        "n_quantiles": [Interval(Integral, 1, None, closed="left")],
        "subsample": [Interval(Integral, 1, None, closed="left"), None],
        "output_distribution": [StrOptions({"uniform", "normal"})],
        "random_state": ["random_state"],
        "copy": ["boolean"],
        "ignore_implicit_zeros": ["boolean"],
    }

    def __init__(self, *, regularization_strength=1.0, regularization="l2",
                 n_quantiles=1000, subsample=10_000, output_distribution="uniform",
                 random_state=None, copy=True, ignore_implicit_zeros=False):
        self.regularization_strength = regularization_strength
        self.regularization = regularization
        self.n_quantiles = n_quantiles
        self.subsample = subsample
        self.output_distribution = output_distribution
        self.random_state = random_state
        self.copy = copy
        self.ignore_implicit_zeros = ignore_implicit_zeros

    def _check_X(self, X, reset, copy=False, nonnegative=True):
        # transform maps values one by one, so an empty batch is fine there
        # float16 is computed in float64, as scikit-learn's own estimators do; sparse
        # input becomes CSC (columns are features), as in QuantileTransformer
        X = validate_data(self, X, reset=reset, dtype=(np.float64, np.float32), copy=copy,
                          accept_sparse="csc", ensure_all_finite="allow-nan",
                          ensure_min_samples=1 if reset else 0)
        # as QuantileTransformer: with negative values, the implicit zeros (kept as
        # zeros) would not be the smallest values, and the map would not be monotone
        if sparse.issparse(X) and nonnegative and np.any(X.data < 0):
            raise ValueError("SoftRankTransformer only accepts non-negative sparse "
                             "matrices (as QuantileTransformer).")
        return X

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Compute the reference quantiles and the strength unit of each feature.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The data; NaN values are ignored.
        y : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the samples in the reference quantiles. Integer
            weights count as repetitions: when ``subsample`` does not bind, the fit
            equals the fit on the repeated samples. Other weights count relative to
            each other (rescaled to mean 1). Samples of weight 0 take no part.

        Returns
        -------
        self : object
            Fitted transformer.
        """
        if self.subsample is not None and self.n_quantiles > self.subsample:
            raise ValueError(
                f"The number of quantiles cannot be greater than the number of samples "
                f"used. Got {self.n_quantiles} quantiles and {self.subsample} samples."
            )
        X = self._check_X(X, reset=True)
        weights = (None if sample_weight is None else
                   _weights.check_sample_weight(sample_weight, X.shape[0]))
        if weights is not None:
            keep = weights > 0
            X, weights = X[keep], weights[keep]
        n_samples = X.shape[0]
        if self.subsample is not None and self.subsample < n_samples:
            rows = resample(np.arange(n_samples), replace=False,
                            n_samples=self.subsample,
                            random_state=check_random_state(self.random_state))
            X = X[rows]
            weights = None if weights is None else weights[rows]
        if weights is not None:  # counts, or ratios rescaled to mean 1
            weights = _weights.counts_or_ratios(weights)[0]
        total = n_samples if weights is None else round(float(weights.sum()))
        # fewer samples than quantiles: each sample is a quantile (no warning, unlike
        # QuantileTransformer: the default is 1000, and small data sets are common)
        self.n_quantiles_ = max(1, min(self.n_quantiles, total))
        self.references_ = np.linspace(0, 1, self.n_quantiles_, endpoint=True)
        if sparse.issparse(X):
            q = np.column_stack([self._sparse_percentiles(X, j, weights)
                                 for j in range(X.shape[1])])
        elif weights is not None:
            q = np.column_stack([_weighted_percentiles(X[:, j], weights, self.references_)
                                 for j in range(X.shape[1])])
        else:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)
                q = np.nanpercentile(X, self.references_ * 100, axis=0)
        # rounding in the interpolation may break monotonicity by an ulp
        self.quantiles_ = np.maximum.accumulate(q.astype(np.float64, copy=False), axis=0)
        self.scale_ = self._spacing(self.quantiles_)
        if self.regularization == "kl":
            # kl pools neighbours at rank rho when their gap is below about
            # eps * log(1 + 1 / rho): one body spacing at the median rank m / 2
            self.scale_ *= self.n_quantiles_ / 2.0
        return self

    def _sparse_percentiles(self, X, j, weights):
        """The reference of column j of a CSC matrix: its stored values, and (unless
        ignore_implicit_zeros) the implicit zeros, counted once with their total
        weight."""
        rows = X.indices[X.indptr[j]:X.indptr[j + 1]]
        values = X.data[X.indptr[j]:X.indptr[j + 1]].astype(np.float64)
        w = np.ones(values.size) if weights is None else weights[rows]
        zeros = (X.shape[0] if weights is None else weights.sum()) - w.sum()
        if not self.ignore_implicit_zeros and zeros > 0:
            values, w = np.r_[values, 0.0], np.r_[w, zeros]
        return _weighted_percentiles(values, w, self.references_)

    @staticmethod
    def _spacing(q):
        m = q.shape[0]
        if m < 2:
            return np.ones(q.shape[1])
        refs = np.linspace(0.0, 1.0, m)
        # differences of halves: a reference spanning +-1e308 must not overflow
        iqr = np.array([np.interp(0.75, refs, c / 2) - np.interp(0.25, refs, c / 2)
                        for c in q.T])
        spacing = iqr / ((m - 1) / 4.0)
        whole = (q[-1] / 2 - q[0] / 2) / ((m - 1) / 2.0)
        spacing = np.where(spacing > 0, spacing, whole)
        return np.where((spacing > 0) & np.isfinite(spacing), spacing, 1.0)

    def _reference(self):
        with np.errstate(over="ignore"):  # an infinite eps is the infinite-strength limit
            eps = self.regularization_strength * self.scale_
        return _Reference(self.quantiles_, eps, self.regularization == "kl")

    def transform(self, X):
        """Map each value to its soft rank against the fitted reference.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The data; NaN values stay NaN.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_features)
            In ``[0, 1]`` (uniform) or the clipped normal scores; float32 input
            gives float32 output.
        """
        check_is_fitted(self)
        X = self._check_X(X, reset=False)
        if sparse.issparse(X):
            return self._sparse_apply(X, "map")
        out = X if not self.copy and X.flags.writeable else np.empty_like(X)
        out = self._reference().map(X, out)
        if self.output_distribution == "normal":
            with np.errstate(divide="ignore"):
                out[...] = np.clip(stats.norm.ppf(out), _CLIP_MIN, _CLIP_MAX)
        return out

    def _sparse_apply(self, X, method):
        """transform ("map") or inverse_transform ("inverse") of the stored values of
        a CSC matrix, feature by feature; the implicit zeros stay zeros, as in
        QuantileTransformer."""
        X = X.copy() if self.copy else X
        reference = self._reference()
        for j in range(X.shape[1]):
            column = slice(X.indptr[j], X.indptr[j + 1])
            values = X.data[column][:, None]
            if method == "inverse" and self.output_distribution == "normal":
                values = stats.norm.cdf(values).astype(X.dtype, copy=False)
            out = np.empty_like(values)
            getattr(reference.feature(j), method)(values, out)
            if method == "map" and self.output_distribution == "normal":
                with np.errstate(divide="ignore"):
                    out = np.clip(stats.norm.ppf(out), _CLIP_MIN, _CLIP_MAX)
            X.data[column] = out[:, 0]
        return X

    def inverse_transform(self, X):
        """Map outputs back to values of the features (see Notes for flat parts).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Outputs of :meth:`transform` (values outside ``[0, 1]`` for
            ``"uniform"`` are clipped); NaN values stay NaN.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features)
            Values whose transform is ``X``.
        """
        check_is_fitted(self)
        X = self._check_X(X, reset=False, nonnegative=False)  # normal scores may be < 0
        if sparse.issparse(X):
            return self._sparse_apply(X, "inverse")
        U = X
        if self.output_distribution == "normal":
            U = stats.norm.cdf(X).astype(X.dtype, copy=False)
        out = X if not self.copy and X.flags.writeable else np.empty_like(X)
        return self._reference().inverse(U, out)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
