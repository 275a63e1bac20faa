"""Soft top-k masks and the robust statistics built from them.

The soft top-k mask is the l2 projection of ``x / eps`` onto the capped simplex
``{y in [0, 1]^n : sum(y) = k}``: the kernel's rank form with the descending weights
``w = (1, ..., 1, 0, ..., 0)``. Only entries within about ``eps`` of the k-th largest
are soft; the others keep exactly 0 or 1. Differences of masks weigh soft order
statistics, quantiles and trimmed means: the weights are non-negative, sum to one,
and are exactly zero on far outliers (a soft sort, which averages far-apart values,
would let an outlier leak in).

Derivatives: each mask's Jacobian J is symmetric and block diagonal (l2 rank form),
so a statistic ``sum_m c_m <M_m(x), x>`` has the gradient
``G = sum_m c_m (M_m + J_m x)``. The forward pass computes G once when derivatives
are asked for (l2 on NumPy arrays: in the kernel, with the value, no mask formed;
design notes, section 15); a jvp or vjp is then one O(n) product with it.
"""

import numbers

import numpy as np

from . import _pav
from ._ops import (_PNORMS, _as_float_array, _asarray, _block_starts, _check_choice,
                   _check_kernels, _namespace, _over_strength, _pnorm_weights, _real_array,
                   _row_products, _run_kernel, _split_flat_blocks, _strengths, _Structure)
from ._registry import STRENGTH, operator
from ._rows import Rows, host, make_rows, sum_to_shape, tangent_of_shape


def _prepare(x, regularization_strength, axis, lengths=None):
    xp = _namespace(x)
    x = _as_float_array(x, xp=xp)
    rows = make_rows(x.shape, axis, lengths, xp)
    eps = _strengths(regularization_strength, rows)
    X = rows.to_rows(x)
    if not xp.isfinite(X).all():
        raise ValueError("x contains NaN or infinity.")
    return rows, eps, X


class _Masks:
    """Soft top-k masks of the rows of X, computed once for each k, with J_k X
    (the mask's Jacobian applied to X itself) when derivatives are needed. k is
    one int for every row, or one per row (ragged rows of different lengths).
    reg: the kernel code of the regulariser (_pav.L2, P43 or P32)."""

    def __init__(self, rows, X, eps, with_gradient, reg=_pav.L2):
        self.rows, self.X, self.eps, self.with_gradient = rows, X, eps, with_gradient
        self.reg = reg
        self.m = np.diff(rows.offsets)  # row lengths
        self._cache = {}
        self._sorted = self._extremes = self._frame_cache = self._framed = None

    @staticmethod
    def _normal(k):
        """k as a 0-d int (one k for every row) or an int array (one per row)."""
        k = np.asarray(k, dtype=np.int64)
        if k.ndim and k.size and (k == k[0]).all():
            k = k[0]
        return k

    @staticmethod
    def _key(k):
        return int(k) if k.ndim == 0 else k.tobytes()

    def _plan(self, k):
        """(layout, eps) of the rank form whose output is the top-k mask: one k reads
        the first m weights of (1, ..., 1, 0, ...) for a row of length m; one k per
        row, weights aligned with X."""
        layout = _pav.WEIGHTS_PREFIX if k.ndim == 0 else _pav.WEIGHTS_ALIGNED
        # k = 0 and k = m give constant masks: strength 0 makes their
        # derivative exactly zero (clipping would hide it from the formula)
        return layout, np.where((0 < k) & (k < self.m), self.eps, 0.0)

    def _weights(self, k):
        """The weights of the rank form whose output is the top-k mask."""
        rows = self.rows
        if k.ndim == 0:
            w = np.zeros(rows.n)
            w[:k] = 1.0
            return w
        return _topk_weights(rows.offsets, k)

    def _store(self, key, mask, perm, start, nblocks, eps, w, layout):
        rows, X = self.rows, self.X
        jx = xjx = None
        if self.with_gradient:
            _split_flat_blocks(rows.offsets, start, nblocks, w, layout, rows.xp)
            jx = rows.xp.empty_like(X)
            if X.size:
                extra = (X.reshape(-1),) if self.reg in _PNORMS else ()
                rows.kernels.rank_derivative(rows.offsets, perm.reshape(-1),
                                             start.reshape(-1), nblocks, mask.reshape(-1),
                                             eps, 1.0, self.reg, self._centred().reshape(-1),
                                             jx.reshape(-1), *extra)
                scale = self._frame()[0]
                if (scale != 1.0).any():
                    jx /= rows.expand(scale).astype(X.dtype)
            # <J X, X> per row, for the derivative in the strength: J X sums to 0,
            # so the centred rows give the same sum with the digits of their spread
            xjx = rows.row_sums(jx * self._framed_rows()) / self._frame()[0]
        self._cache[key] = (mask, jx, perm, start, nblocks, eps, xjx)

    def prepare(self, ks):
        """Compute the masks for all these k at once: one sort of each row serves
        them all (a quantile needs up to four). Without derivatives no structure is
        kept, and one k for every row needs no weight vector per k."""
        todo = {}
        for k in map(self._normal, ks):
            if self._key(k) not in self._cache:
                todo[self._key(k)] = k
        plans = {key: self._plan(k) for key, k in todo.items()}
        layouts = {layout for layout, _ in plans.values()}
        values_only = not self.with_gradient and layouts == {_pav.WEIGHTS_PREFIX}
        if len(layouts) != 1 or (len(plans) < 2 and not values_only):
            for key, (layout, eps) in plans.items():
                w = self._weights(todo[key])
                mask, perm, start, nblocks = _run_kernel(
                    self.rows, self.X, eps, w, 1.0, self.reg, False, self.with_gradient,
                    layout)
                self._store(key, mask, perm, start, nblocks, eps, w, layout)
            return
        X, rows, n_w = self.X, self.rows, len(plans)
        eps = np.stack([e for _, e in plans.values()])
        layout = next(iter(plans.values()))[0]
        xp = rows.xp
        out = xp.empty((n_w, X.size), dtype=X.dtype)
        nblocks = xp.zeros((n_w, rows.n_rows), dtype=np.int64)
        ks = perm = start = None
        if not values_only:
            W = np.stack([self._weights(k) for k in todo.values()])
        else:  # values only, one k for every row: the kernel knows top-k weights
            W = None
            ks = np.array([int(k) for k in todo.values()], dtype=np.int64)
        if self.with_gradient:  # the structure of every mask
            perm = xp.empty(X.size, dtype=rows.kernels.INDEX_DTYPE)
            start = xp.empty((n_w, X.size), dtype=rows.kernels.INDEX_DTYPE)
        if X.size:
            _check_kernels(rows, self.reg)
            rows.kernels.masks_forward(X.reshape(-1), rows.offsets, eps, W, layout, out,
                                       perm, start, nblocks, ks, self.reg)
        for j, key in enumerate(plans):
            kept = (None, None) if perm is None else (perm.reshape(X.shape),
                                                      start[j].reshape(X.shape))
            self._store(key, out[j].reshape(X.shape), *kept, nblocks[j], eps[j],
                        None if ks is not None else W[j], layout)

    def structure(self, k):
        """(mask, J_k X or None, perm, start, nblocks, eps used, <J_k X, X> per row or
        None) for k."""
        k = self._normal(k)
        self.prepare([k])
        return self._cache[self._key(k)]

    def _frame(self):
        """(scale, c) per row, float64: c is the row's value closest to 0 within its
        [min, max] (0 where the row spans 0), and rows with values beyond 2^1000
        are scaled by 2^-24 (exactly). In the frame X * scale - c
        a constant row is exactly 0, a large common offset cancels, and neither
        x - c nor a sum of w (x - c) with sum(w) = 1 overflows."""
        if self._frame_cache is None:
            X, rows, xp = self.X, self.rows, self.rows.xp
            lo, hi = (a.astype(np.float64) for a in self.extremes())
            scale = xp.ones(rows.n_rows)
            if X.dtype == np.float64 and X.size:
                scale[xp.maximum(-lo, hi) > 2.0 ** 1000] = 2.0 ** -24
            self._frame_cache = scale, xp.minimum(xp.maximum(lo, 0.0), hi) * scale
        return self._frame_cache

    def _framed_rows(self):
        """X * scale - c in float64, formed once for every mask and statistic."""
        if self._framed is None:
            scale, c = self._frame()
            rows = self.rows
            self._framed = (self.X.astype(np.float64) * rows.expand(scale)
                            - rows.expand(c))
        return self._framed

    def _centred(self):
        """X in its frame, in X's dtype: J X = J (X * scale - c) / scale since J 1 = 0."""
        return self._framed_rows().astype(self.X.dtype, copy=False)

    def extremes(self):
        """Each row's (min, max), in X's dtype: a soft order statistic or trimmed
        mean is a convex combination of the row, clipped to this range against
        rounding."""
        if self._extremes is None:
            rows, X, xp = self.rows, self.X, self.rows.xp
            if X.size == 0:
                empty = xp.empty(rows.n_rows, X.dtype)
                self._extremes = empty, empty
            elif isinstance(rows, Rows):
                self._extremes = X.min(axis=1), X.max(axis=1)
            else:  # ragged rows; an empty one (a top-k mask's k = 0) gets (0, 0)
                full = self.m > 0
                starts = rows.offsets[:-1][full]
                lo, hi = xp.zeros(rows.n_rows, X.dtype), xp.zeros(rows.n_rows, X.dtype)
                if xp is np:  # the empty rows between two starts hold no entry
                    lo[full] = np.minimum.reduceat(X, starts)
                    hi[full] = np.maximum.reduceat(X, starts)
                else:
                    S, full_dev = self.sorted(), xp.asarray(full)
                    lo[full_dev] = S[xp.asarray(starts)]
                    hi[full_dev] = S[xp.asarray(rows.offsets[1:][full] - 1)]
                self._extremes = lo, hi
        return self._extremes

    def sorted(self):
        """The rows, each sorted (flat)."""
        if self._sorted is None:
            self._sorted = self.rows.sort_rows(self.X).reshape(-1)
        return self._sorted

    def mean(self, w, total):
        """Per-row sum(w x) / total, for weights w >= 0 summing to total (a scalar
        or one per row): formed in float64 in the rows' frame, the weights divided by
        total first (so no partial sum exceeds the row's range), and within each
        row's [min, max], in X's dtype."""
        rows = self.rows
        share = w / total if isinstance(total, float) else w / rows.expand(total)
        with np.errstate(under="ignore"):  # tiny shares of tiny values: harmless
            return self._unframe(rows.row_sums(share * self._framed_rows()))

    def _unframe(self, value):
        """A per-row mean formed in the rows' frame (float64), back from the frame,
        within each row's [min, max], in X's dtype."""
        scale, c = self._frame()
        with np.errstate(under="ignore"):  # tiny values: harmless
            value = (value + c) / scale
        lo, hi = self.extremes()
        return self.rows.xp.clip(value.astype(self.X.dtype), lo, hi)

    def in_kernel(self):
        """Whether statistics come from the kernel's pair sums (topk_pair_sums): l2
        masks of NumPy arrays. No mask is then formed outside the kernel, with a
        derivative or without."""
        return self.reg == _pav.L2 and self.rows.kernels is _pav

    def _pair_key(self, k_hi, k_lo):
        return self._key(self._normal(k_hi)), self._key(self._normal(k_lo))

    def pair_sums(self, pairs):
        """Per-row <M(k_hi) - M(k_lo), X * scale - c> / (k_hi - k_lo) in float64 (the
        mean of the rows' frame under the weights M(k_hi) - M(k_lo)) for each (k_hi,
        k_lo) in pairs, k_hi > k_lo, from one kernel call that sorts each row once
        (in_kernel only); cached, and returned in the order of pairs."""
        rows = self.rows
        todo = {}
        for k_hi, k_lo in pairs:
            key = ("pair",) + self._pair_key(k_hi, k_lo)
            if key not in self._cache and key not in todo:
                todo[key] = [np.broadcast_to(self._normal(k), rows.n_rows)
                             for k in (k_hi, k_lo)]
        if todo:
            # by decreasing k: consecutive order statistics then share a mask, which
            # the kernel computes once
            todo = dict(sorted(todo.items(), key=lambda item: -item[1][0].sum()))
            K_hi, K_lo = (np.ascontiguousarray(np.stack([ks[i] for ks in todo.values()]))
                          for i in (0, 1))
            E_hi, E_lo = (np.stack([self._plan(k)[1] for k in K]) for K in (K_hi, K_lo))
            sums = np.zeros((len(todo), rows.n_rows))
            if self.X.size:
                scale, c = self._frame()
                _pav.topk_pair_sums(self.X.reshape(-1), rows.offsets, E_hi, E_lo, K_hi,
                                    K_lo, scale, c, sums)
            self._cache.update(zip(todo, sums))
        return [self._cache[("pair",) + self._pair_key(*pair)] for pair in pairs]

    def pair_statistics(self, pairs, mix=None):
        """The means <M(k_hi) - M(k_lo), x> / (k_hi - k_lo) per row for each (k_hi, k_lo)
        in pairs (k_hi > k_lo; ints or one per row), in X's dtype within each row's
        range; with derivatives, for mix = (a, b, t) (pair indices a and b of shape
        (n_g,), weights t of shape (n_g, n_rows)), also the gradient rows
        G[g] = (1 - t[g]) grad_a[g] + t[g] grad_b[g] (n_g rows of X's shape and dtype,
        grad_p those of pair p's mean: a quantile's interpolation) and each pair's
        derivative in its row's strength, (len(pairs), n_rows). In the kernel
        (in_kernel) only G leaves it, at the size of the input per gradient row;
        otherwise from the masks and their structure."""
        if not self.with_gradient:
            if self.in_kernel():
                return [self._unframe(v) for v in self.pair_sums(pairs)], None, None
            self.prepare([k for pair in pairs for k in pair])
            return [self.mean(self.weights(*pair)[0], self._total(*pair))
                    for pair in pairs], None, None
        if self.in_kernel():
            return self._kernel_statistics(pairs, mix)
        rows, X, xp = self.rows, self.X, self.rows.xp
        a, b, t = mix
        self.prepare([k for pair in pairs for k in pair])
        G = xp.zeros((len(a),) + X.shape, dtype=X.dtype)
        values, D = [], []
        for p, pair in enumerate(pairs):
            total = self._total(*pair)
            w, grad, d_strength = self.weights(*pair)
            values.append(self.mean(w, total))
            grad /= rows.expand(total)
            for g in np.flatnonzero(a == p):
                G[g] += (rows.expand(1.0 - t[g]) * grad).astype(X.dtype, copy=False)
            for g in np.flatnonzero(b == p):
                G[g] += (rows.expand(t[g]) * grad).astype(X.dtype, copy=False)
            D.append(d_strength / xp.asarray(total))
        return values, G, xp.stack(D)

    def _total(self, k_hi, k_lo):
        """k_hi - k_lo per row, in X's dtype: what a pair's weights sum to."""
        return self.rows.xp.asarray(np.broadcast_to(
            self._normal(k_hi) - self._normal(k_lo), self.rows.n_rows).astype(self.X.dtype))

    def _kernel_statistics(self, pairs, mix):
        """pair_statistics with derivatives, from one kernel call (in_kernel only)."""
        rows, X = self.rows, self.X
        at = {}  # each distinct pair's slot, by decreasing k (consecutive order
        for pair in pairs:  # statistics then share a mask, computed once)
            at.setdefault(self._pair_key(*pair),
                          [np.broadcast_to(self._normal(k), rows.n_rows) for k in pair])
        keys = sorted(at, key=lambda key: -at[key][0].sum())
        K_hi, K_lo = (np.ascontiguousarray(np.stack([at[key][i] for key in keys]))
                      for i in (0, 1))
        E_hi, E_lo = (np.stack([self._plan(k)[1] for k in K]) for K in (K_hi, K_lo))
        slot = np.array([keys.index(self._pair_key(*pair)) for pair in pairs])
        # each distinct pair's uses: 2 g + side (side 1: weight t, side 0: 1 - t), by pair
        a, b, t = mix
        uses = np.concatenate([slot[a], slot[b]])
        code = np.concatenate([2 * np.arange(len(a)), 2 * np.arange(len(b)) + 1])
        order = np.argsort(uses, kind="stable")
        mix_ptr = np.searchsorted(uses[order], np.arange(len(keys) + 1)).astype(np.int64)
        sums, dsums = np.zeros((2, len(keys), rows.n_rows))
        G = np.zeros((len(a), X.size), dtype=X.dtype)
        if X.size:
            scale, c = self._frame()
            _pav.topk_pair_sums(X.reshape(-1), rows.offsets, E_hi, E_lo, K_hi, K_lo,
                                scale, c, sums, mix_ptr, code[order].astype(np.int64),
                                np.ascontiguousarray(t, dtype=np.float64), G, dsums)
        D = _over_strength(-dsums, np.asarray(self.eps), np)
        return ([self._unframe(sums[u]) for u in slot], G.reshape(G.shape[:1] + X.shape),
                D[slot])

    def weights(self, k_hi, k_lo):
        """Weights M(k_hi) - M(k_lo), the gradient rows of <M(k_hi) - M(k_lo), x>, and
        its derivative in each row's strength (both None without gradient): the
        masks depend on x / eps alone, so d/d eps <M, x> = -<J x, x> / eps, 0 at
        eps = 0 (from above)."""
        m_hi, jx_hi, *_, xjx_hi = self.structure(k_hi)
        m_lo, jx_lo, *_, xjx_lo = self.structure(k_lo)
        w = m_hi - m_lo
        if not self.with_gradient:
            return w, None, None
        xp = self.rows.xp
        return w, w + jx_hi - jx_lo, _over_strength(xjx_lo - xjx_hi, xp.asarray(self.eps),
                                                    xp)

    def exact_where_hard(self, value, i):
        """value, the soft (i + 1)-th smallest of each row (i: an int or one per row),
        made exact in rows of strength 0, where the shared weights of tied entries
        would round."""
        hard = self.eps == 0.0
        if hard.any():
            xp = self.rows.xp
            hard = xp.asarray(hard)
            value[hard] = self.sorted()[xp.asarray(self.rows.offsets[:-1] + i)][hard]
        return value


class _Reduction:
    """Derivatives of a statistic (one or several values per row) from its gradient
    rows G, of shape (m,) + the rows' shape: jvp = <G, u> per row, vjp = g G; and
    in the strengths from its derivative D in each row's, of shape (m, n_rows)."""

    def __init__(self, grads, d_strength, rows, value_shape, d_q=None):
        self.G, self.D, self.rows, self.value_shape = grads, d_strength, rows, value_shape
        # a quantile's derivative in q: (m, n_rows), and q's shape
        self.d_q, self.q_shape = (None, None) if d_q is None else d_q

    def _cotangent(self, cotangent):
        """A cotangent of the value's shape, as (m, n_rows)."""
        g = _real_array(cotangent, "cotangent", self.rows.xp)
        if g.shape != self.value_shape:
            raise ValueError(f"cotangent must have shape {self.value_shape}, got {g.shape}.")
        return g.reshape(self.G.shape[0], self.rows.n_rows)

    def arg_jvp(self, name, tangent):  # (name: "q")
        t = tangent_of_shape(tangent, self.q_shape, name)
        return (self.d_q * self.rows.xp.asarray(t.reshape(-1, 1))).astype(
            self.G.dtype).reshape(self.value_shape)[()]

    def arg_vjp(self, name, cotangent):
        res = (self._cotangent(cotangent) * self.d_q).sum(axis=1)
        return host(res).astype(self.G.dtype).reshape(self.q_shape)[()]

    def strength_products(self):
        def jvp(t):
            return (self.D * self.rows.xp.asarray(t)).astype(self.G.dtype).reshape(
                self.value_shape)[()]

        def vjp(g):
            return host((self._cotangent(g) * self.D).sum(axis=0)).astype(self.G.dtype)

        return jvp, vjp

    def jvp(self, tangent):
        t = _asarray(tangent, self.rows.xp)
        if t.dtype.kind not in "biuf":
            raise TypeError(f"the tangent must hold real numbers, got dtype {t.dtype}.")
        U = self.rows.to_rows(t.astype(self.G.dtype, copy=False), name="tangent")
        return self.rows.row_sums(self.G * U).reshape(self.value_shape)[()]

    def vjp(self, cotangent):
        g = self._cotangent(cotangent).astype(self.G.dtype, copy=False)
        res = (self.rows.expand(g) * self.G).sum(axis=0)
        return self.rows.from_rows(res, out_space=False)


def _lerp(a, b, t, xp):
    # numpy.quantile's interpolation, written the same way so that strength 0
    # reproduces it exactly (t: one fraction per row); where b - a overflows, the
    # convex combination, whose terms cannot
    with np.errstate(over="ignore", invalid="ignore"):
        diff = b - a
        t = xp.asarray(t)
        value = xp.where(t >= 0.5, b - diff * (1.0 - t), a + diff * t)
        overflow = ~xp.isfinite(diff)
        if overflow.any():
            value = xp.where(overflow, a * (1.0 - t) + b * t, value)
    return value


def _midpoint(a, b, xp):
    # numpy.median's mean of the two middle values, halved first where a + b overflows
    with np.errstate(over="ignore"):
        mid = (a + b) / 2
    return xp.where(xp.isfinite(mid), mid, a / 2 + b / 2)


def _check_q(q):
    q = np.asarray(host(q))
    if q.dtype.kind not in "biuf":
        raise TypeError(f"q must hold real numbers, got dtype {q.dtype}.")
    if q.ndim > 1:
        raise ValueError(f"q must be a scalar or a 1-D array, got shape {q.shape}.")
    q = q.astype(np.float64)
    if not (np.isfinite(q).all() and (q >= 0).all() and (q <= 1).all()):
        raise ValueError("q must lie in [0, 1].")
    return q


def _mask_regularizer(regularization):
    _check_choice("regularization", regularization, tuple(_MASK_REGULARIZERS))
    return _MASK_REGULARIZERS[regularization]


def _quantile(x, q, regularization_strength, axis, with_gradient, lengths=None,
              median=False, regularization="l2"):
    q = _check_q(q)
    reg = _mask_regularizer(regularization)
    rows, eps, X = _prepare(x, regularization_strength, axis, lengths)
    masks = _Masks(rows, X, eps, with_gradient, reg)
    m = masks.m
    if (m == 0).any():
        raise ValueError("cannot take a quantile of an empty row.")
    xp = rows.xp
    if q.size == 0:  # as numpy.quantile: an empty result
        value = xp.empty(q.shape + rows.batch_shape, dtype=X.dtype)
        grads = xp.empty((0,) + X.shape, dtype=X.dtype)
        empty = xp.empty((0, rows.n_rows))
        return value, (_Reduction(grads, empty, rows, value.shape, (empty, q.shape))
                       if with_gradient else None)
    # numpy's default ("linear") method: the virtual index (m - 1) q, per row,
    # between order statistics j and j1 = j + 1; statistic i is the mean of the mask
    # difference M(m - i) - M(m - i - 1), and the gradient of the interpolation
    # (1 - t) a + t b combines theirs
    h = (m - 1) * q.ravel()[:, None]
    j = np.minimum(np.floor(h).astype(np.int64), m - 1)
    j1 = np.minimum(j + 1, m - 1)
    t = h - j
    n_q = len(h)
    pairs = [(m - i, m - i - 1) for i in (*j, *j1)]
    mix = (np.arange(n_q), n_q + np.arange(n_q), t) if with_gradient else None
    stats, grads, d_pairs = masks.pair_statistics(pairs, mix)
    values, d_strengths, d_q = [], [], []
    for g in range(n_q):
        a = masks.exact_where_hard(stats[g], j[g])
        if t[g].any():
            b = masks.exact_where_hard(stats[n_q + g], j1[g])
            value = _lerp(a, b, t[g], xp).astype(X.dtype, copy=False)
            if median:  # as numpy.median: the mean of the two middle values
                value = xp.where(xp.asarray(t[g] == 0.5), _midpoint(a, b, xp),
                                 value).astype(X.dtype, copy=False)
            lo, hi = masks.extremes()
            values.append(xp.clip(value, lo, hi))
        else:
            values.append(a)
        if with_gradient:
            b = masks.exact_where_hard(stats[n_q + g], j1[g])
            tg = xp.asarray(t[g])
            d_strengths.append((1.0 - tg) * d_pairs[g] + tg * d_pairs[n_q + g])
            # d/dq of the interpolation: (m - 1) (b - a), from above at a knot (where
            # b is the next order statistic), 0 at q = 1; infinite where the gap
            # overflows (rows spanning the whole float64 range)
            with np.errstate(over="ignore"):
                d_q.append(xp.asarray(m - 1.0) * (b.astype(np.float64) - a))
    value_shape = q.shape + rows.batch_shape
    value = xp.stack(values).reshape(value_shape)[()]
    structure = None
    if with_gradient:
        structure = _Reduction(grads, xp.stack(d_strengths), rows, value_shape,
                               (xp.stack(d_q), q.shape))
    return value, structure


def _trimmed_mean(x, proportiontocut, regularization_strength, axis, with_gradient,
                  lengths=None, regularization="l2"):
    reg = _mask_regularizer(regularization)
    proportiontocut = host(proportiontocut)
    if np.ndim(proportiontocut) == 0 and np.asarray(proportiontocut).dtype.kind in "iuf":
        proportiontocut = float(proportiontocut)  # numpy scalars and 0-d arrays too
    if not isinstance(proportiontocut, numbers.Real) or not 0 <= proportiontocut < 0.5:
        raise ValueError(
            f"proportiontocut must be a number in [0, 0.5), got {proportiontocut!r}."
        )
    rows, eps, X = _prepare(x, regularization_strength, axis, lengths)
    masks = _Masks(rows, X, eps, with_gradient, reg)
    m = masks.m
    if (m == 0).any():
        raise ValueError("cannot take a trimmed mean of an empty row.")
    k = (proportiontocut * m).astype(np.int64)  # cut from each end, as scipy's trim_mean
    mix = (np.zeros(1, int), np.zeros(1, int), np.zeros((1, rows.n_rows))) if (
        with_gradient) else None
    # (the weights M(m - k) - M(k) sum to m - 2 k: the mean divides by it)
    values, grads, d_strength = masks.pair_statistics([(m - k, k)], mix)
    value = values[0].reshape(rows.batch_shape)[()]
    structure = None
    if with_gradient:
        structure = _Reduction(grads, d_strength, rows, rows.batch_shape)
    return value, structure


_BY = ("value", "magnitude")


class _Signed:
    """The structure of a mask of |x|: derivatives in x through |x|' = sign(x), taken
    as 0 at x = 0, where |x| has none (its one-sided derivatives are -1 and 1)."""

    def __init__(self, inner, sign):
        self.inner, self.sign, self.rows = inner, sign, inner.rows

    def jvp(self, tangent):
        return self.inner.jvp(_asarray(tangent, self.rows.xp) * self.sign)

    def vjp(self, cotangent):
        return self.inner.vjp(cotangent) * self.sign

    def arg_jvp(self, name, tangent):  # the mask of |x|: k moves it as it is
        return self.inner.arg_jvp(name, tangent)

    def arg_vjp(self, name, cotangent):
        return self.inner.arg_vjp(name, cotangent)

    def strength_rows(self):  # (so does the strength)
        return self.inner.strength_rows()

    def strength_products(self):
        return _row_products(self.rows, self.strength_rows())


class _MaskK:
    """A top-k mask's structure with its derivative in k (design notes, section 7):
    dw / dk is 1 at the fractional sorted position j = floor(k) (from above at an
    integer k), and the block B holding j shares it as c_i / sum_B c, with c = 1
    (l2) or g (p-norms: 3 P^(2/3), 2 P^(1/2)); a block of one entry, or of outputs all
    0, shares it equally. k_rows: k per row; k_shape: the shape k was given in."""

    def __init__(self, inner, reg, mask, k_rows, k_shape, pooled):
        self.inner, self.rows, self.reg = inner, inner.rows, reg
        self.mask, self.k_rows, self.k_shape = mask, k_rows, k_shape
        self.start, self.nblocks = pooled  # blocks with tied entries pooled
        self._shares = None

    def __getattr__(self, name):  # the mask's structure (perm, start, nblocks, ...)
        if name == "inner":  # (not set yet: no recursion)
            raise AttributeError(name)
        return getattr(self.inner, name)

    def jvp(self, tangent):
        return self.inner.jvp(tangent)

    def vjp(self, cotangent):
        return self.inner.vjp(cotangent)

    def _plan(self):
        """(each sorted position's original flat index, its block, its share c /
        sum_B c, and per row the block of the fractional position or -1)."""
        if self._shares is None:
            rows, xp = self.rows, self.rows.xp
            offsets = rows.offsets
            m = np.diff(offsets)
            total = int(offsets[-1])
            row, _, is_start = _block_starts(offsets, self.start, self.nblocks, xp)
            where = xp.asarray(offsets)[row] + self.inner.perm.reshape(-1)
            block = xp.cumsum(is_start) - 1
            out = self.mask.reshape(-1)[where].astype(np.float64)
            c = _pnorm_weights(out, self.reg, xp) if self.reg in _PNORMS else xp.ones(total)
            size = xp.bincount(block)
            total_c = xp.bincount(block, weights=c)
            even = (total_c == 0) | (size == 1)
            share = xp.where(even[block], 1.0 / size[block],
                             c / xp.where(even, 1.0, total_c)[block])
            j = np.floor(self.k_rows).astype(np.int64)
            inside = j < m
            frac = np.full(m.size, -1)
            frac[inside] = host(block)[offsets[:-1][inside] + j[inside]]
            self._shares = where, block, share, xp.asarray(frac)
        return self._shares

    def arg_jvp(self, name, tangent):
        rows, xp = self.rows, self.rows.xp
        where, block, share, frac = self._plan()
        t = tangent_of_shape(tangent, self.k_shape, name)
        t = xp.asarray(np.broadcast_to(t, rows.batch_shape).reshape(-1))
        row = xp.asarray(np.repeat(np.arange(rows.n_rows), np.diff(rows.offsets)))
        res = xp.zeros(where.size, dtype=self.mask.dtype)
        res[where] = (xp.where(block == frac[row], share, 0.0) * t[row]).astype(res.dtype)
        return rows.from_rows(res.reshape(self.mask.shape))

    def arg_vjp(self, name, cotangent):
        rows, xp = self.rows, self.rows.xp
        where, block, share, frac = self._plan()
        g = rows.to_rows(_asarray(cotangent, xp).astype(np.float64), True,
                         "cotangent").reshape(-1)[where]
        per_block = xp.bincount(block, weights=share * g, minlength=int(block[-1]) + 1
                                if block.size else 0)
        res = xp.where(frac >= 0, per_block[xp.maximum(frac, 0)] if per_block.size
                       else 0.0, 0.0)
        # k broadcast over the rows: its derivative sums over the broadcast axes
        return sum_to_shape(host(res).astype(self.mask.dtype).reshape(rows.batch_shape),
                            self.k_shape)


class _Product:
    """The structure of mask * x: jvp u -> J u * x + mask * u, vjp g -> J^T (g x) +
    mask * g (in the input's layout; J the mask's Jacobian)."""

    def __init__(self, inner, mask, x):
        self.inner, self.mask, self.x, self.rows = inner, mask, x, inner.rows

    def jvp(self, tangent):
        u = _asarray(tangent, self.rows.xp)
        return self.inner.jvp(u) * self.x + self.mask * u

    def vjp(self, cotangent):
        g = _asarray(cotangent, self.rows.xp)
        return self.inner.vjp(g * self.x) + self.mask * g

    def arg_jvp(self, name, tangent):  # the kept values move with the mask alone
        return self.inner.arg_jvp(name, tangent) * self.x

    def arg_vjp(self, name, cotangent):
        return self.inner.arg_vjp(name, _asarray(cotangent, self.rows.xp) * self.x)

    def strength_rows(self):
        return self.inner.strength_rows() * self.rows.to_rows(self.x, True)

    def strength_products(self):
        return _row_products(self.rows, self.strength_rows())


_MASK_REGULARIZERS = {"l2": _pav.L2, "p4/3": _pav.P43, "p3/2": _pav.P32}


def _mask_code(reg):
    """The masks' regulariser beside soft ranks of kernel code reg (a loss's cutoff):
    a p-norm with itself, else l2 (kl masks would need log 0)."""
    return reg if reg in _PNORMS else _pav.L2


def _topk_mask(x, k, regularization_strength, axis, with_gradient, lengths=None,
               by="value", regularization="l2"):
    _check_choice("by", by, _BY)
    reg = _mask_regularizer(regularization)
    if by == "magnitude":
        x = _as_float_array(x, xp=_namespace(x))
        mask, structure = _topk_mask(abs(x), k, regularization_strength, axis,
                                     with_gradient, lengths, regularization=regularization)
        if structure is not None:
            structure = _Signed(structure, structure.rows.xp.sign(
                x.reshape(-1) if axis is None else x))
        return mask, structure
    rows, eps, X = _prepare(x, regularization_strength, axis, lengths)
    if isinstance(k, (bool, np.bool_)):
        raise TypeError(f"k must be a number or an array of numbers, got {k!r}.")
    if not isinstance(k, numbers.Integral) or with_gradient:
        # (with derivatives: the derivative in k needs the structure before flat blocks
        # are split, and at k = 0 the soft one, which the shared masks replace by a
        # constant one; the values are the same)
        return _real_topk_mask(rows, eps, X, k, reg, with_gradient)
    if rows.n_rows:
        shortest = int(np.diff(rows.offsets).min())
    else:  # no rows: (0, n) rows still have length n; no ragged row bounds k
        shortest = rows.n if isinstance(rows, Rows) else None
    if k < 0 or (shortest is not None and k > shortest):
        bound = "k must be non-negative" if shortest is None else (
            f"k must lie in [0, {shortest}] (the length of the shortest row)")
        raise ValueError(f"{bound}, got {k}.")
    mask = _Masks(rows, X, eps, False, reg).structure(int(k))[0]
    return rows.from_rows(mask), None


def _topk_weights(offsets, k):
    """The weights of the top-k masks' rank forms, aligned with the rows (bounds
    offsets) for k per row: clip(k - j, 0, 1) at sorted position j, ones then zeros
    for an integer k, summing to k. k lies in [0, m] for a row of length m (callers
    check it)."""
    m = np.diff(offsets)
    k = np.broadcast_to(np.asarray(k, dtype=np.float64), m.shape)
    whole = np.minimum(np.floor(k).astype(np.int64), m)
    # ones over [start, start + floor(k)) as the running sum of +1 and -1 marks, in
    # place (one array of the rows' size, no temporaries of it), then the fraction
    w = np.zeros(int(offsets[-1]) + 1)
    np.add.at(w, offsets[:-1], 1.0)
    np.add.at(w, offsets[:-1] + whole, -1.0)
    np.cumsum(w, out=w)
    part = whole < m
    w[(offsets[:-1] + whole)[part]] = (k - whole)[part]
    return w[:-1]


def _real_k(k, rows):
    """A real k (a number, or one per row: an array of the shape of x without the
    axis) as one float64 per row, each in [0, that row's length]."""
    k = host(k)
    kk = np.asarray(k)
    if kk.dtype.kind not in "iuf":
        raise TypeError(f"k must be a number or an array of numbers, got {k!r}.")
    try:
        kk = np.broadcast_to(kk.astype(np.float64), rows.batch_shape).reshape(-1)
    except ValueError:
        raise ValueError(f"k must be a number or an array of shape {rows.batch_shape} "
                         f"(x's shape without the axis), got shape {kk.shape}.") from None
    m = np.diff(rows.offsets)
    if not (np.isfinite(kk).all() and (kk >= 0).all() and (kk <= m).all()):
        raise ValueError("k must lie in [0, n] for each row of length n, got "
                         f"{k!r}.")
    return kk


def _real_topk_mask(rows, eps, X, k, reg, with_gradient):
    """The top-k mask for a real k (one per row allowed): the rank form with the weights
    w_j = clip(k - j, 0, 1) at sorted position j, which sum to k; for an integer k
    the usual mask (design notes, section 7)."""
    kk = _real_k(k, rows)
    w = _topk_weights(rows.offsets, kk)
    layout = _pav.WEIGHTS_ALIGNED
    mask, perm, start, nblocks = _run_kernel(rows, X, eps, w, 1.0, reg, False,
                                             with_gradient, layout)
    structure = None
    if with_gradient:
        # the derivative in k sees tied entries pooled (just above an integer k they
        # share the new weight); the one in x, split where w is flat (locally constant)
        pooled = (start.copy(), nblocks.copy())
        _split_flat_blocks(rows.offsets, start, nblocks, w, layout, rows.xp)
        pnorm = reg in _PNORMS  # (p-norms read the mask and the input: private copies)
        structure = _Structure("rank", reg, 1.0, eps, X.copy() if pnorm else X,
                               mask.copy() if pnorm else mask, perm, start, nblocks, rows,
                               None)
        structure = _MaskK(structure, reg, structure.out, kk, np.shape(host(k)), pooled)
    return rows.from_rows(mask), structure


def _topk(x, k, regularization_strength, axis, with_gradient, lengths, by,
          regularization):
    x = _as_float_array(x, xp=_namespace(x))
    mask, structure = _topk_mask(x, k, regularization_strength, axis, with_gradient,
                                 lengths, by, regularization)
    flat = x.reshape(-1) if axis is None else x
    value = mask * flat
    if structure is None:
        return value, None
    # (the derivatives must not see later in-place changes of the caller's arrays)
    return value, _Product(structure, mask.copy(), flat.copy())


# value-and-structure forms, for skrank.vjp / skrank.jvp
def _soft_topk_mask_structured(x, k, *, regularization_strength=1.0, axis=-1, lengths=None,
                               by="value", regularization="l2"):
    return _topk_mask(x, k, regularization_strength, axis, True, lengths, by,
                      regularization)


def _soft_topk_structured(x, k, *, regularization_strength=1.0, axis=-1, lengths=None,
                          by="value", regularization="l2"):
    return _topk(x, k, regularization_strength, axis, True, lengths, by, regularization)


def _soft_quantile_structured(x, q, *, regularization_strength=1.0, axis=-1, lengths=None,
                              regularization="l2"):
    return _quantile(x, q, regularization_strength, axis, True, lengths,
                     regularization=regularization)


def _soft_median_structured(x, *, regularization_strength=1.0, axis=-1, lengths=None,
                            regularization="l2"):
    return _quantile(x, 0.5, regularization_strength, axis, True, lengths, median=True,
                     regularization=regularization)


def _soft_trimmed_mean_structured(x, proportiontocut, *, regularization_strength=1.0,
                                  axis=-1, lengths=None, regularization="l2"):
    return _trimmed_mean(x, proportiontocut, regularization_strength, axis, True, lengths,
                         regularization)


@operator(main="x", kind="same", differentiable="x", per_row=(STRENGTH, "k"),
          structured=_soft_topk_mask_structured, also=("k", STRENGTH))
def soft_topk_mask(x, k, *, regularization_strength=1.0, axis=-1, lengths=None,
                   by="value", regularization="l2"):
    """Soft mask of the k largest entries along an axis.

    The l2 projection of ``x / eps`` onto the capped simplex
    ``{y in [0, 1]^n : sum(y) = k}`` (Blondel et al., 2020), computed exactly by one
    sort and pool-adjacent-violators. With ``by="magnitude"``, the mask of the k
    entries of largest ``|x|`` (for pruning), differentiated through ``|x|``.

    Parameters
    ----------
    x : array-like of real numbers
        Scores. float32 stays float32; other real dtypes give float64.
    k : int, float or array-like of float
        How many entries to keep, ``0 <= k <= n`` (n: the length of the axis). A real
        k keeps ``floor(k)`` entries and a fraction of the next: the weights of the
        rank form are ``clip(k - j, 0, 1)`` at sorted position j. One value per row is
        allowed (an array of ``x``'s shape without ``axis``). The adapters
        differentiate with respect to a k that requires grad (or is traced).
    regularization_strength : float or array-like of float, default=1.0
        ``eps >= 0``, in the units of ``x``: entries within about ``eps`` of the
        k-th largest share the mask softly; the others get exactly 0 or 1. A scalar
        or one value per row (``x``'s shape without ``axis``).
    axis : int or None, default=-1
        Axis along which to select; ``None`` flattens ``x`` first.
    lengths : 1-D array-like of int, optional
        Ragged rows: ``x`` is then 1-D, the concatenation of rows of these
        lengths; ``k`` applies to every row (at most the shortest one's length).
    by : {"value", "magnitude"}, default="value"
        Rank the entries by ``x`` or by ``|x|``. With "magnitude" the derivative
        is the mask's in ``|x|`` times ``sign(x)``: an entry's sign does not matter
        to the mask, and an entry at exactly 0 gets derivative 0.
    regularization : {"l2", "p4/3", "p3/2"}, default="l2"
        The regulariser of the projection. "l2": the mask is piecewise linear in
        ``x``. "p4/3" (the 4/3-norm of Sander et al., 2023): inside the band the
        mask is ``clip(x / eps - tau, 0, 1) ** 3``, as sparse as l2's, and its
        derivative is continuous where an entry enters the band from 0 (see the
        user guide, "Sparse and learnable operators"). "p3/2" (the 3/2-norm):
        the same with a square, ``clip(x / eps - tau, 0, 1) ** 2``.

    Returns
    -------
    mask : ndarray
        Values in ``[0, 1]`` of ``x``'s shape (1-D when ``axis=None``), summing to
        ``k`` along the axis. At strength 0, the 0/1 mask of the k largest entries,
        tied entries at the boundary sharing equally.

    See Also
    --------
    soft_topk : The masked values, ``mask * x``.
    soft_rank, soft_quantile, soft_trimmed_mean
    numpy.argpartition : The hard selection.

    Examples
    --------
    >>> import skrank
    >>> skrank.soft_topk_mask([3., 1., 1., 0.], 2, regularization_strength=0.0)
    array([1. , 0.5, 0.5, 0. ])
    >>> skrank.soft_topk_mask([3., 1.2, 1., 0.], 2, regularization_strength=1.0)
    array([1. , 0.6, 0.4, 0. ])
    >>> skrank.soft_topk_mask([-3., 1.2, -1., 0.], 2, regularization_strength=1.0,
    ...                       by="magnitude")
    array([1. , 0.6, 0.4, 0. ])
    """
    return _topk_mask(x, k, regularization_strength, axis, False, lengths, by,
                      regularization)[0]


@operator(main="x", kind="same", differentiable="x", per_row=(STRENGTH, "k"),
          structured=_soft_topk_structured, also=("k", STRENGTH))
def soft_topk(x, k, *, regularization_strength=1.0, axis=-1, lengths=None, by="value",
              regularization="l2"):
    """The k largest entries along an axis, softly kept: ``soft_topk_mask(x, k) * x``.

    Entries well inside the top k keep their value, entries well outside become exactly
    0, and those within about the strength of the boundary are scaled by their soft
    mask. With ``by="magnitude"``, the k entries of largest ``|x|`` keep their signed
    values: the soft counterpart of magnitude pruning.

    Parameters
    ----------
    x : array-like of real numbers
        Values. float32 stays float32; other real dtypes give float64.
    k : int, float or array-like of float
        How many entries to keep, as for :func:`soft_topk_mask`.
    regularization_strength : float or array-like of float, default=1.0
        ``eps >= 0``, in the units of ``x``, as for :func:`soft_topk_mask`. A scalar or
        one value per row (``x``'s shape without ``axis``).
    axis : int or None, default=-1
        Axis along which to select; ``None`` flattens ``x`` first.
    lengths : 1-D array-like of int, optional
        Ragged rows, as for :func:`soft_topk_mask`.
    by : {"value", "magnitude"}, default="value"
        Rank the entries by ``x`` or by ``|x|``.
    regularization : {"l2", "p4/3", "p3/2"}, default="l2"
        The mask's regulariser, as in :func:`soft_topk_mask`.

    Returns
    -------
    values : ndarray
        ``mask * x``, of ``x``'s shape (1-D when ``axis=None``). At strength 0, ``x``
        with all but its k largest entries (in value or magnitude) set to 0, tied
        entries at the boundary scaled by their share.

    See Also
    --------
    soft_topk_mask : The mask alone.

    Examples
    --------
    >>> import skrank
    >>> skrank.soft_topk([-3., 1.2, -1., 0.5], 2, regularization_strength=0.0,
    ...                  by="magnitude")
    array([-3. ,  1.2, -0. ,  0. ])
    >>> skrank.soft_topk([-3., 1.2, -1., 0.5], 2, regularization_strength=1.0,
    ...                  by="magnitude")
    array([-3.  ,  0.72, -0.4 ,  0.  ])
    """
    return _topk(x, k, regularization_strength, axis, False, lengths, by,
                 regularization)[0]


@operator(main="x", kind="drop", differentiable="x",
          structured=_soft_quantile_structured, also=("q", STRENGTH))
def soft_quantile(x, q, *, regularization_strength=1.0, axis=-1, lengths=None,
                  regularization="l2"):
    """Soft (differentiable, outlier-robust) quantiles along an axis.

    numpy.quantile's default ("linear") interpolation between order statistics,
    where the j-th smallest value is replaced by the soft order statistic
    ``sum(w * x)`` with the weights ``w = M(n - j + 1) - M(n - j)`` of soft top-k
    masks M (see :func:`soft_topk_mask`): non-negative, summing to one, soft only
    among entries within about the strength of the order statistic, and exactly
    zero on far outliers.

    Parameters
    ----------
    x : array-like of real numbers
        Values. float32 stays float32; other real dtypes give float64.
    q : float or 1-D array-like of float
        Probabilities in ``[0, 1]``.
    regularization_strength : float or array-like of float, default=1.0
        ``eps >= 0``, in the units of ``x``. A scalar or one value per row.
    axis : int or None, default=-1
        Axis along which to compute; ``None`` flattens ``x`` first.
    lengths : 1-D array-like of int, optional
        Ragged rows: ``x`` is then 1-D, the concatenation of non-empty rows of
        these lengths, and the result has one value per row.
    regularization : {"l2", "p4/3", "p3/2"}, default="l2"
        The regulariser of the masks, as in :func:`soft_topk_mask`: with "p4/3"
        or "p3/2" the weights are as sparse, and their derivative is continuous
        where an entry enters them from 0.

    Returns
    -------
    quantile : ndarray or scalar
        Of shape ``q.shape + x.shape without axis``, as :func:`numpy.quantile`.
        Strength 0 gives ``np.quantile(x, q, axis=axis)``; as the strength grows,
        every quantile tends to the mean.

    Notes
    -----
    Each order statistic costs two masks (one sort each); quantiles that share
    order statistics share their masks.

    Examples
    --------
    >>> import skrank
    >>> x = [0.1, 0.2, 0.3, 0.4, 1000.]
    >>> float(skrank.soft_quantile(x, 0.5, regularization_strength=0.0))
    0.3
    >>> round(float(skrank.soft_quantile(x, 0.5, regularization_strength=0.01)), 6)
    0.3
    >>> skrank.soft_quantile([[1., 2., 3., 4.]], [0.25, 0.5], regularization_strength=0.0)
    array([[1.75],
           [2.5 ]])
    """
    return _quantile(x, q, regularization_strength, axis, False, lengths,
                     regularization=regularization)[0]


@operator(main="x", kind="drop", differentiable="x",
          structured=_soft_median_structured, also=(STRENGTH,))
def soft_median(x, *, regularization_strength=1.0, axis=-1, lengths=None,
                regularization="l2"):
    """Soft median along an axis: :func:`soft_quantile` at ``q = 0.5`` (same
    keywords, ragged rows included).

    Strength 0 gives :func:`numpy.median`.

    Examples
    --------
    >>> import skrank
    >>> float(skrank.soft_median([4., 1., 3., 2.], regularization_strength=0.0))
    2.5
    """
    return _quantile(x, 0.5, regularization_strength, axis, False, lengths, median=True,
                     regularization=regularization)[0]


@operator(main="x", kind="drop", differentiable="x",
          structured=_soft_trimmed_mean_structured, also=(STRENGTH,))
def soft_trimmed_mean(x, proportiontocut, *, regularization_strength=1.0, axis=-1,
                      lengths=None, regularization="l2"):
    """Soft trimmed mean along an axis.

    ``k = floor(proportiontocut * n)`` entries are trimmed from each end, as
    :func:`scipy.stats.trim_mean` does, softly: the weights are
    ``M(n - k) - M(k)`` for soft top-k masks M (in ``[0, 1]``, summing to
    ``n - 2k``), and the value is ``sum(weights * x) / (n - 2k)``. An outlier far
    from both trimming boundaries gets weight exactly 0 at any strength.

    Parameters
    ----------
    x : array-like of real numbers
        Values. float32 stays float32; other real dtypes give float64.
    proportiontocut : float
        Fraction to cut from each end, in ``[0, 0.5)``.
    regularization_strength : float or array-like of float, default=1.0
        ``eps >= 0``, in the units of ``x``. A scalar or one value per row.
    axis : int or None, default=-1
        Axis along which to compute (note: scipy's default is 0); ``None``
        flattens ``x`` first.
    lengths : 1-D array-like of int, optional
        Ragged rows, as for :func:`soft_quantile`.
    regularization : {"l2", "p4/3", "p3/2"}, default="l2"
        The regulariser of the masks, as in :func:`soft_topk_mask`: with "p4/3"
        or "p3/2" the weights are as sparse, and their derivative is continuous
        where an entry enters them from 0.

    Returns
    -------
    mean : ndarray or scalar
        Of ``x``'s shape without ``axis``. Strength 0 gives
        ``scipy.stats.trim_mean(x, proportiontocut, axis=axis)``.

    Examples
    --------
    >>> import skrank
    >>> float(skrank.soft_trimmed_mean([1., 2., 3., 4., 1000.], 0.2,
    ...                                regularization_strength=0.0))
    3.0
    >>> float(skrank.soft_trimmed_mean([1., 2., 3., 4., 1000.], 0.2,
    ...                                regularization_strength=0.5))
    3.0
    >>> float(skrank.soft_trimmed_mean([1., 2., 3., 4., 1e6], 0.2,  # outlier: weight 0
    ...                                regularization_strength=0.5))
    3.0
    >>> round(float(skrank.soft_trimmed_mean([1., 2., 3., 4., 1000.], 0.2,
    ...                                      regularization_strength=10.0)), 12)
    2.666666666667
    """
    return _trimmed_mean(x, proportiontocut, regularization_strength, axis, False,
                         lengths, regularization)[0]
