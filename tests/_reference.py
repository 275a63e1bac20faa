"""Slow, plain float64 NumPy/SciPy reference for skrank's soft operators.

Written from the definitions (Blondel et al. 2020, "Fast Differentiable Sorting and Ranking";
the 4/3- and 3/2-norms of Sander et al. 2023, "Fast, Differentiable and Sparse Top-k"):
a simple pool-adjacent-violators (PAV) for the decreasing isotonic problem, the
cancellation-free per-block output formulas, and dense Jacobians built from the PAV blocks.
This is the tests' oracle; it never imports skrank.

Conventions: "ascending" ranks give the smallest entry rank ~1; soft_sort returns its output in
sorted order (ascending for "ascending", descending for "descending").
"""
import numpy as np
from scipy.optimize import brentq
from scipy.special import logsumexp, softmax
from scipy.stats import rankdata

REGULARIZATIONS = ("l2", "kl", "p4/3", "p3/2")
DIRECTIONS = ("ascending", "descending")
# The p-norm regularisers (3/4) sum |mu|^(4/3) and (2/3) sum |mu|^(3/2)
PNORMS = ("p4/3", "p3/2")

# Per p-norm: phi, the derivative of the conjugate (|u|^4 / 4, |u|^3 / 3), which maps
# z - v to the output; its derivative; and its inverse (a single entry's z - v).
_PHI = {"p4/3": lambda u: u ** 3, "p3/2": lambda u: u * np.abs(u)}
_DPHI = {"p4/3": lambda u: 3.0 * u ** 2, "p3/2": lambda u: 2.0 * np.abs(u)}
_PHI_INV = {"p4/3": np.cbrt, "p3/2": lambda w: np.sign(w) * np.sqrt(np.abs(w))}


# --------------------------------------------------------------------------- isotonic core
def _pnorm_block_value(s, w, reg):
    """The v with sum phi(s - v) = sum w (the left side decreases in v), by bracketing
    and Brent's method, then one Newton step."""
    s = np.asarray(s, dtype=np.float64)
    phi, dphi = _PHI[reg], _DPHI[reg]
    W, k = float(np.sum(w)), s.size
    c = _PHI_INV[reg](abs(W) / k) + 1.0  # phi(c) > |W| / k: a sign change within c of s
    f = lambda v: np.sum(phi(s - v)) - W  # noqa: E731
    v = brentq(f, s.min() - c, s.max() + c, xtol=1e-300, rtol=1e-15, maxiter=500)
    d = np.sum(dphi(s - v))
    return v + f(v) / d if d > 0 else v


def cubic_block_value(s, w):
    """The p4/3 block value: the v with sum (s - v)^3 = sum w (the left side decreases
    in v), by bracketing and Brent's method, then one Newton step."""
    return _pnorm_block_value(s, w, "p4/3")


def quadratic_block_value(s, w):
    """The p3/2 block value: the v with sum (s - v) |s - v| = sum w (the left side
    decreases in v), by bracketing and Brent's method, then one Newton step."""
    return _pnorm_block_value(s, w, "p3/2")


def pav_blocks(s, w, reg):
    """Blocks of argmin_{v_1 >= ... >= v_n} of the l2 / kl / p4/3 / p3/2 isotonic objective.

    l2: 1/2 ||v - (s - w)||^2, block value mean(s_B - w_B).
    kl: <exp(s - v), 1> + <exp(w), v>, block value logsumexp(s_B) - logsumexp(w_B).
    p4/3: sum (s - v)^4 / 4 + <w, v>, block value solving sum_B (s - v)^3 = sum_B w.
    p3/2: sum |s - v|^3 / 3 + <w, v>, block value solving sum_B (s - v) |s - v| = sum_B w.
    Returns the list of block sizes (left to right).
    """
    s = np.asarray(s, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    if reg in PNORMS:  # [start, end, value], values recomputed from the block's entries
        blocks = []
        for i in range(s.size):
            cur = [i, i + 1, s[i] - _PHI_INV[reg](w[i])]
            while blocks and blocks[-1][2] <= cur[2]:
                st = blocks.pop()[0]
                cur = [st, cur[1], _pnorm_block_value(s[st:cur[1]], w[st:cur[1]], reg)]
            blocks.append(cur)
        return [b[1] - b[0] for b in blocks]
    blocks = []  # [start, end, value, stat1, stat2]
    for i in range(s.size):
        if reg == "l2":
            cur = [i, i + 1, s[i] - w[i], s[i] - w[i], 1.0]
        else:
            cur = [i, i + 1, s[i] - w[i], s[i], w[i]]
        while blocks and blocks[-1][2] <= cur[2]:
            prev = blocks.pop()
            if reg == "l2":
                tot, cnt = prev[3] + cur[3], prev[4] + cur[4]
                cur = [prev[0], cur[1], tot / cnt, tot, cnt]
            else:
                ls = np.logaddexp(prev[3], cur[3])
                lw = np.logaddexp(prev[4], cur[4])
                cur = [prev[0], cur[1], ls - lw, ls, lw]
        blocks.append(cur)
    return [b[1] - b[0] for b in blocks]


def _segments(sizes):
    start = 0
    for b in sizes:
        yield slice(start, start + b)
        start += b


def blockwise_values(z, w, sizes, reg):
    """Per-block outputs of the projection P(z, w) in sorted coordinates, cancellation-free:
    l2: (z_i - mean_B z) + mean_B w;  kl: log_softmax(z_B)_i + logsumexp(w_B);
    p4/3, p3/2: phi(z_i - v) with phi(u) = u^3, u |u|."""
    out = np.empty(len(z))
    for sl in _segments(sizes):
        zb, wb = z[sl], w[sl]
        if reg in PNORMS:  # a single entry's or a tied block's is its mean weight exactly
            tied = np.all(zb == zb[0])  # (a root-found v leaves tied zero weights at -1e-40)
            out[sl] = wb.mean() if tied else _PHI[reg](zb - _pnorm_block_value(zb, wb, reg))
        elif reg == "l2":
            out[sl] = (zb - zb.mean()) + wb.mean()
        else:
            out[sl] = (zb - logsumexp(zb)) + logsumexp(wb)
    return out


def _block_matrix(sizes, weights_source, reg):
    """Dense block-diagonal matrix: l2 blocks (1/|B|) 1 1^T; kl blocks 1 softmax(t_B)^T."""
    n = int(sum(sizes))
    m = np.zeros((n, n))
    for sl in _segments(sizes):
        b = sl.stop - sl.start
        if reg == "l2":
            m[sl, sl] = 1.0 / b
        else:
            m[sl, sl] = np.broadcast_to(softmax(weights_source[sl]), (b, b))
    return m


def isotonic_l2(y, weights=None, increasing=True):
    """Weighted least-squares isotonic regression by a simple PAV (for oracle self-checks)."""
    y = np.asarray(y, dtype=np.float64)
    w = np.ones_like(y) if weights is None else np.asarray(weights, dtype=np.float64)
    sgn = 1.0 if increasing else -1.0
    blocks = []  # [start, end, weighted_sum, weight]
    for i in range(y.size):
        cur = [i, i + 1, sgn * y[i] * w[i], w[i]]
        while blocks and blocks[-1][2] / blocks[-1][3] >= cur[2] / cur[3]:
            prev = blocks.pop()
            cur = [prev[0], cur[1], prev[2] + cur[2], prev[3] + cur[3]]
        blocks.append(cur)
    out = np.empty_like(y)
    for b in blocks:
        out[b[0]:b[1]] = sgn * b[2] / b[3]
    return out


# --------------------------------------------------------------------------- 1-D operators
def _check(reg, direction):
    if reg not in REGULARIZATIONS:
        raise ValueError(reg)
    if direction not in DIRECTIONS:
        raise ValueError(direction)


def _rank_structure(x, eps, reg, direction):
    sgn = 1.0 if direction == "ascending" else -1.0
    n = x.size
    z = sgn * x / eps
    order = np.argsort(-z, kind="stable")
    s = z[order]
    rho = np.arange(n, 0, -1, dtype=np.float64)
    w = np.log(rho) if reg == "kl" else rho
    sizes = pav_blocks(s, w, reg)
    return sgn, z, order, s, rho, w, sizes


def soft_rank(x, eps=1.0, reg="l2", direction="ascending"):
    """Soft ranks of a 1-D array (float64)."""
    _check(reg, direction)
    x = np.asarray(x, dtype=np.float64).ravel()
    n = x.size
    if n == 0:
        return x.copy()
    if eps == 0:
        sgn = 1.0 if direction == "ascending" else -1.0
        return rankdata(sgn * x, method="average").astype(np.float64)
    sgn, z, order, s, rho, w, sizes = _rank_structure(x, eps, reg, direction)
    sorted_out = np.empty(n)
    for sl in _segments(sizes):
        sb = s[sl]
        if reg in PNORMS:
            sorted_out[sl] = blockwise_values(sb, rho[sl], [sb.size], reg)
        elif reg == "l2":
            sorted_out[sl] = (sb - sb.mean()) + rho[sl].mean()
        else:  # r = softmax(z_B) * sum_B rho: exact for singletons
            sorted_out[sl] = softmax(sb) * rho[sl].sum()
    out = np.empty(n)
    out[order] = sorted_out
    return np.clip(out, 1.0, float(n))


def _sort_structure(x, eps, reg, direction):
    sgn = -1.0 if direction == "ascending" else 1.0  # descending sort of sgn * x
    n = x.size
    order = np.argsort(-(sgn * x), kind="stable")
    s = sgn * x[order]  # sgn * x sorted descending
    rho = np.arange(n, 0, -1, dtype=np.float64)
    z = rho / eps
    sizes = pav_blocks(z, s, reg)
    return sgn, order, s, z, sizes


def soft_sort(x, eps=1.0, reg="l2", direction="ascending"):
    """Soft sort of a 1-D array (float64), output in sorted order."""
    _check(reg, direction)
    x = np.asarray(x, dtype=np.float64).ravel()
    n = x.size
    if n == 0:
        return x.copy()
    if eps == 0:
        out = np.sort(x)
        return out if direction == "ascending" else out[::-1].copy()
    sgn, order, s, z, sizes = _sort_structure(x, eps, reg, direction)
    return sgn * blockwise_values(z, s, sizes, reg)


def soft_rank_jacobian(x, eps=1.0, reg="l2", direction="ascending"):
    """Dense Jacobian d soft_rank / d x (n x n)."""
    x = np.asarray(x, dtype=np.float64).ravel()
    n = x.size
    if n == 0 or eps == 0:
        return np.zeros((n, n))
    sgn, z, order, s, rho, w, sizes = _rank_structure(x, eps, reg, direction)
    perm = np.eye(n)[order]  # (perm @ u) = u[order]
    if reg in PNORMS:  # per block diag(g) - g g^T / sum g, g = phi'(s - v)
        m = np.zeros((n, n))
        for sl in _segments(sizes):
            if sl.stop - sl.start > 1:
                g = _DPHI[reg](s[sl] - _pnorm_block_value(s[sl], rho[sl], reg))
                m[sl, sl] = np.diag(g) - np.outer(g, g) / g.sum()
        return (sgn / eps) * perm.T @ m @ perm
    m = _block_matrix(sizes, s, reg)
    jp = np.eye(n) - perm.T @ m @ perm
    jac = (sgn / eps) * jp
    if reg == "kl":
        jac = soft_rank(x, eps, reg, direction)[:, None] * jac
    return jac


def soft_sort_jacobian(x, eps=1.0, reg="l2", direction="ascending"):
    """Dense Jacobian d soft_sort / d x (n x n), rows in sorted order."""
    x = np.asarray(x, dtype=np.float64).ravel()
    n = x.size
    if n == 0:
        return np.zeros((n, n))
    if eps == 0:
        order = np.argsort(x, kind="stable")
        if direction == "descending":
            order = order[::-1]
        return np.eye(n)[order]
    sgn, order, s, z, sizes = _sort_structure(x, eps, reg, direction)
    perm = np.eye(n)[order]
    if reg in PNORMS:  # per block g 1^T / sum g, g = phi'(z - v)
        m = np.eye(n)  # a single entry outputs its input (g = 0 / 0 for an input of 0)
        for sl in _segments(sizes):
            if sl.stop - sl.start > 1:
                g = _DPHI[reg](z[sl] - _pnorm_block_value(z[sl], s[sl], reg))
                m[sl, sl] = np.outer(g / g.sum(), np.ones(sl.stop - sl.start))
        return m @ perm
    m = _block_matrix(sizes, s, reg)  # derivative w.r.t. the sorted (sign-adjusted) input
    return m @ perm  # sgn * m * sgn * perm


def sort_blocks(x, eps, reg="l2", direction="ascending"):
    """Block sizes of the soft_sort PAV (to check that a test input really pools)."""
    x = np.asarray(x, dtype=np.float64).ravel()
    return _sort_structure(x, eps, reg, direction)[4]


def rank_blocks(x, eps, reg="l2", direction="ascending"):
    x = np.asarray(x, dtype=np.float64).ravel()
    return _rank_structure(x, eps, reg, direction)[6]


# --------------------------------------------------------------------------- batched helpers
def _rows(x, axis):
    """Move `axis` last; axis=None flattens. Returns (2-D rows, batch shape, restore fn)."""
    x = np.asarray(x, dtype=np.float64)
    if axis is None:
        flat = x.reshape(1, -1)
        return flat, (), lambda out: out.reshape(-1)
    moved = np.moveaxis(x, axis, -1)
    batch = moved.shape[:-1]
    rows = moved.reshape(-1, moved.shape[-1])

    def restore(out):
        return np.moveaxis(out.reshape(moved.shape), -1, axis)

    return rows, batch, restore


def _row_strengths(eps, batch, nrows):
    e = np.asarray(eps, dtype=np.float64)
    if e.ndim == 0:
        return np.full(nrows, float(e))
    assert e.shape == batch, (e.shape, batch)
    return e.reshape(-1)


def batched(fun, x, eps=1.0, reg="l2", direction="ascending", axis=-1):
    """Apply a 1-D reference operator along `axis` with a scalar or per-row strength."""
    rows, batch, restore = _rows(x, axis)
    strengths = _row_strengths(eps, batch, rows.shape[0])
    out = np.empty_like(rows)
    for i in range(rows.shape[0]):
        out[i] = fun(rows[i], strengths[i], reg, direction)
    return restore(out)


def batched_jvp(jac_fun, x, u, eps=1.0, reg="l2", direction="ascending", axis=-1):
    """J u per row along `axis` (output aligned like the operator's output)."""
    rows, batch, restore = _rows(x, axis)
    urows = _rows(u, axis)[0]
    strengths = _row_strengths(eps, batch, rows.shape[0])
    out = np.empty_like(rows)
    for i in range(rows.shape[0]):
        out[i] = jac_fun(rows[i], strengths[i], reg, direction) @ urows[i]
    return restore(out)


def batched_vjp(jac_fun, x, g, eps=1.0, reg="l2", direction="ascending", axis=-1):
    """J^T g per row along `axis`, returned with x's shape."""
    x = np.asarray(x, dtype=np.float64)
    rows, batch, restore = _rows(x, axis)
    grows = _rows(g, axis)[0] if axis is not None else np.asarray(g, np.float64).reshape(1, -1)
    strengths = _row_strengths(eps, batch, rows.shape[0])
    out = np.empty_like(rows)
    for i in range(rows.shape[0]):
        out[i] = jac_fun(rows[i], strengths[i], reg, direction).T @ grows[i]
    if axis is None:
        return out.reshape(x.shape)
    return restore(out)


def num_jac(f, x, h=1e-6):
    """Central finite-difference Jacobian of f: R^n -> R^m."""
    x = np.asarray(x, dtype=np.float64)
    cols = []
    for j in range(x.size):
        e = np.zeros_like(x)
        e.flat[j] = h
        cols.append((np.asarray(f(x + e)) - np.asarray(f(x - e))).ravel() / (2 * h))
    return np.stack(cols, axis=1)


# --------------------------------------------------------------------------- top-k masks
def topk_mask(x, k, eps, power=1):
    """Soft top-k mask, independently of PAV: the projection of x / eps onto the capped
    simplex {y in [0, 1]^n, sum y = k} is clip(x / eps - tau, 0, 1), tau by bisection.
    power=3: the 4/3-norm's mask clip(x / eps - tau, 0, 1)^3 (its optimality conditions:
    z_i - mu_i^(1/3) = tau where 0 < mu_i < 1); power=2: the 3/2-norm's, with
    z_i - mu_i^(1/2) = tau."""
    x = np.asarray(x, dtype=np.float64)
    n = x.size
    if k == 0:
        return np.zeros(n)
    if k == n:
        return np.ones(n)
    if eps == 0.0:  # hard mask; tied entries at the boundary share equally
        kth = np.sort(x)[::-1][k - 1]
        above = x > kth
        tied = x == kth
        out = above.astype(float)
        out[tied] = (k - above.sum()) / tied.sum()
        return out
    z = x / eps
    lo, hi = z.min() - 1.0, z.max()
    for _ in range(200):  # sum(clip(z - tau, 0, 1)^power) decreases in tau
        tau = 0.5 * (lo + hi)
        if (np.clip(z - tau, 0.0, 1.0) ** power).sum() > k:
            lo = tau
        else:
            hi = tau
    return np.clip(z - 0.5 * (lo + hi), 0.0, 1.0) ** power
