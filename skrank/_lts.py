"""The numerics of soft least trimmed squares (design notes, section 9).

Everything here works in the estimator's internal units (features and target robustly
standardised, then the target divided by the residual scale), on a design matrix ``Z``
(the features, then a column of ones when there is an intercept), with a ridge weight
per column of ``Z`` (``penalty``, 0 for the intercept) and optional sample weights
``sw`` (``None``: every sample counts once; otherwise positive weights, which count as
repetitions). ``SoftTrimmedRegressor`` in ``linear_model`` is the public face.

The soft LTS objective is a minimum over trimming masks ``u`` of a function that is
linear in the squared residuals ``l``,

    F(theta, u) = (1/h) (<u, l(theta)> + eps/2 sum_i u_i^2 / sw_i) + sum_j penalty_j theta_j^2,
    u in P = {0 <= u_i <= sw_i, sum_i u_i = h}.

For fixed ``theta`` the best mask is one projection (:func:`trimming_mask`); for a fixed
mask the best ``theta`` is a weighted ridge least squares (:func:`weighted_ridge_solve`).
Alternating the two (:func:`csteps`, the soft twin of FAST-LTS's concentration step)
never raises ``F``, needs no step size and does not care how ``Z`` is conditioned: each
step is exact.
"""

import math

import numpy as np
from scipy.linalg import solve_triangular
from scipy.special import ndtri
from scipy.stats import norm
from sklearn.utils.random import sample_without_replacement

from ._stats import soft_topk_mask

# Squared residuals are capped at LOSS_CAP (about 1 for a typical inlier here): the
# square of a residual beyond about 1e154 (gross outliers, far leverage points) would
# overflow. A capped loss is constant (its residual is reported as 0) and, far beyond
# the trimming boundary, gets weight exactly 0, so the cap changes nothing for gross
# outliers; n * LOSS_CAP stays finite, so sums of losses do too.
LOSS_CAP = 1e250

# Bisquare (Tukey) tuning constant of the MM step: 95% efficiency at the normal model.
BISQUARE_C = 4.685
# One-step reweighting (robustbase's ltsReg): standardised residuals beyond the 0.9875
# quantile of the standard normal get weight 0.
REWEIGHT_CUTOFF = float(ndtri(0.9875))


def overflow_handled():
    """Overflow where the callers expect it (far outliers, far leverage points): the
    results are capped or handled, silently."""
    return np.errstate(over="ignore", invalid="ignore")


def residuals_and_losses(Z, y, theta):
    """Residuals ``y - Z theta`` and losses ``min(r^2, LOSS_CAP)``; where the loss is
    capped (or the residual overflowed) the residual is returned as 0, since the capped
    loss does not depend on theta. Call it under :func:`overflow_handled`."""
    r = y - Z @ theta
    loss = r * r
    capped = ~(loss < LOSS_CAP)  # also NaN (inf - inf)
    if capped.any():
        loss[capped] = LOSS_CAP
        r[capped] = 0.0
    return r, loss


# --------------------------------------------------------------- weighted order statistics
def weighted_median(a, sw=None):
    """Median of ``a`` (of each column of a 2-D ``a``) where sample i counts ``sw[i]``
    times: the mean of the values at weight position ``W/2`` from below and from
    above (``W`` the total weight), which is ``np.median`` of the repeated sample for
    integer weights. The mean of the two is formed from halves, so that it cannot
    overflow. Columns are taken one at a time: no copy of a 2-D ``a``."""
    if a.ndim == 2:
        return np.array([weighted_median(a[:, j], sw) for j in range(a.shape[1])])
    if sw is None:
        return 2.0 * float(np.median(0.5 * a))
    order = np.argsort(a, kind="stable")
    cum = np.cumsum(sw[order])
    half = 0.5 * cum[-1]
    lo = a[order[np.argmax(cum >= half)]]
    hi = a[order[np.argmax(cum > half)]]
    return 0.5 * lo + 0.5 * hi


def robust_scale(a, center, sw=None):
    """``1.4826 * MAD`` around ``center`` (weighted; of each column of a 2-D ``a``);
    the root mean square deviation where that is 0; else the largest deviation; else
    1 (a constant column). A deviation beyond the float64 range counts as inf."""
    if a.ndim == 2:
        return np.array([robust_scale(a[:, j], center[j], sw)
                         for j in range(a.shape[1])])
    with np.errstate(over="ignore"):
        dev = np.abs(a - center)
    scale = 1.482602218505602 * weighted_median(dev, sw)
    if scale > 0:
        return scale
    # the root mean square, formed relative to the largest deviation: the squares of
    # raw deviations overflow from about 1e154 and underflow below 1e-154
    top = float(np.max(dev))
    weights = 1.0 / a.shape[0] if sw is None else sw / np.sum(sw)
    with np.errstate(invalid="ignore"):  # inf / inf: NaN, then max |a - c| or 1
        ratio = dev / (top if top > 0 else 1.0)
        scale = top * math.sqrt(float(np.sum(weights * ratio * ratio)))
    if not (scale > 0 and math.isfinite(scale)):
        scale = top
    return scale if scale > 0 and math.isfinite(scale) else 1.0


# ------------------------------------------------------------------------ the two steps
def trimming_mask(loss, h, eps, sw=None):
    """The mask ``u`` minimising ``<u, loss> + eps/2 sum u_i^2 / sw_i`` over ``{0 <= u_i
    <= sw_i, sum u = h}`` (``sw`` all ones when None).

    Unweighted and ``eps > 0``, it is the soft top-h mask of ``-loss`` (one sort and
    PAV). Otherwise ``u_i = sw_i clip((tau - loss_i) / eps, 0, 1)`` with the threshold
    ``tau`` where the sum is ``h``: the sum is piecewise linear in ``tau`` with
    breakpoints ``loss_i`` and ``loss_i + eps``, so a bisection over the sorted
    breakpoints finds it. At ``eps = 0`` the smallest losses are kept whole up to a
    total weight ``h`` (the boundary sample partly; ties in sample order)."""
    n = loss.shape[0]
    total = n if sw is None else float(np.sum(sw))
    if h >= total:
        return np.ones(n) if sw is None else sw.astype(np.float64, copy=True)
    if sw is None:
        if eps > 0:
            return soft_topk_mask(-loss, h, regularization_strength=eps)
        u = np.zeros(n)
        u[np.argsort(loss, kind="stable")[:h]] = 1.0
        return u
    if eps == 0:
        order = np.argsort(loss, kind="stable")
        before = np.cumsum(sw[order]) - sw[order]  # weight kept before each sample
        u = np.empty(n)
        u[order] = np.clip(h - before, 0.0, sw[order])
        return u
    # eps > 0, weighted: S(tau) = sum u_i(tau) is piecewise linear between the sorted
    # breakpoints. A bisection over them with S evaluated directly (no running sums,
    # whose rounding can break monotonicity) finds the segment [a, b] holding h; u is
    # linear in tau on it, so interpolating u(a) and u(b) is exact, and it also splits
    # the jump of a band too narrow for floating point (loss + eps == loss) as the
    # eps = 0 path splits a boundary sample.
    top = loss + eps
    narrow = top == loss  # the band is a jump between loss and the next float
    points = np.unique(np.concatenate([loss, top, np.nextafter(top[narrow], np.inf)]))

    def mask_at(tau):
        return sw * np.clip((tau - loss) / eps, 0.0, 1.0)

    lo, hi = 0, points.size - 1  # S(points[lo]) = 0 <= h < total = S(points[hi])
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if np.sum(mask_at(points[mid])) <= h:
            lo = mid
        else:
            hi = mid
    u_lo, u_hi = mask_at(points[lo]), mask_at(points[hi])
    s_lo, s_hi = float(np.sum(u_lo)), float(np.sum(u_hi))
    return u_lo + (h - s_lo) / (s_hi - s_lo) * (u_hi - u_lo)


def objective(theta, Z, y, h, eps, penalty, sw=None):
    """``min_u F(theta, u)``: returns (value, mask, residuals, losses)."""
    with overflow_handled():
        r, loss = residuals_and_losses(Z, y, theta)
        u = trimming_mask(loss, h, eps, sw)
        value = u @ loss
        if eps > 0:
            value += 0.5 * eps * (u @ u if sw is None else u @ (u / np.where(
                sw > 0, sw, 1.0)))
    return value / h + np.sum(penalty * theta * theta), u, r, loss


def gradient(theta, Z, u, r, h, penalty):
    """The gradient of ``min_u F`` at theta (Danskin: the mask held at its minimiser)."""
    return Z.T @ (u * r) * (-2.0 / h) + 2.0 * penalty * theta


# Where the soft C-step and Newton's step both fall short, the step is doubled at most
# MAX_DOUBLINGS times while the objective keeps decreasing.
MAX_DOUBLINGS = 20


# Gram matrices are accumulated over blocks of GRAM_ROWS rows, so that no weighted
# copy of the design is made (memory stays O(n) beyond the design itself).
GRAM_ROWS = 8192


def _gram(Z, u):
    """``Z^T diag(u) Z`` in row blocks (rows with ``u = 0`` add nothing)."""
    G = np.zeros((Z.shape[1], Z.shape[1]))
    with overflow_handled():
        for start in range(0, Z.shape[0], GRAM_ROWS):
            block = Z[start:start + GRAM_ROWS]
            G += (block * u[start:start + GRAM_ROWS, None]).T @ block
    return G


def _factor(Z, u, ridge):
    """Upper-triangular R with ``R^T R = Z^T diag(u) Z + diag(ridge)``, and whether the
    normal equations may be solved with it: a Cholesky factor when they are well
    conditioned (cond below about 1e10); otherwise the R of a QR factorisation of
    ``[sqrt(u) Z; sqrt(ridge)]`` (which does not square the condition number), good
    for a step that is tested before it is taken but not for solving the normal
    equations. (None, False) when the system is numerically singular or overflows
    (rows of ``Z`` beyond about 1e154)."""
    G = _gram(Z, u)
    G[np.diag_indices_from(G)] += ridge
    if not np.isfinite(G).all():
        return None, False
    try:
        R = np.linalg.cholesky(G).T
        d = np.abs(np.diagonal(R))
        if d.min() > 1e-5 * d.max():
            return R, True
    except np.linalg.LinAlgError:
        pass
    keep = u > 0
    with overflow_handled():
        A = Z[keep] * np.sqrt(u[keep])[:, None]
    R = np.linalg.qr(np.vstack([A, np.diag(np.sqrt(ridge))]), mode="r")
    d = np.abs(np.diagonal(R))
    if R.shape[0] < R.shape[1] or not d.min() > 1e-12 * d.max():
        return None, False
    return R, False


def _solve_normal(R, b):
    """``(R^T R)^{-1} b`` by two triangular solves."""
    return solve_triangular(R, solve_triangular(R, b, trans="T"))


def weighted_ridge_solve(Z, y, u, ridge, factor=None):
    """``argmin_theta sum_i u_i (y_i - z_i theta)^2 + sum_j ridge_j theta_j^2``: by
    the normal equations where they are well conditioned (see :func:`_factor`;
    ``factor`` is its result when already known), else by LAPACK's least squares on
    ``[sqrt(u) Z; sqrt(ridge)]`` (the minimum-norm solution when singular)."""
    R, normal = _factor(Z, u, ridge) if factor is None else factor
    with overflow_handled():
        if normal:
            return _solve_normal(R, Z.T @ (u * y))
        keep = u > 0
        root = np.sqrt(u[keep])
        A = np.vstack([Z[keep] * root[:, None], np.diag(np.sqrt(ridge))])
    return np.linalg.lstsq(A, np.r_[y[keep] * root, np.zeros(Z.shape[1])],
                           rcond=None)[0]


def _newton_direction(R, Z, u, r, rhs, eps, sw):
    """The Newton step of ``min_u F`` at theta, or None where its Hessian is not
    positive definite.

    In the soft band ``B`` (``0 < u_i < sw_i``) the mask moves with the losses, ``du_i
    = sw_i (dtau - dl_i) / eps`` with ``sum du = 0``, so the Hessian is the C-step's
    ``(2/h) R^T R`` minus ``(1 / (h eps))`` times the ``sw``-weighted scatter of ``a_i =
    -2 r_i z_i`` over ``B`` about its mean: ``(2/h) R^T (I - W^T W) R`` with ``W =
    V R^{-1} / sqrt(2 eps)``, ``V`` the centred, weighted ``a_i``. Working in the
    C-step's metric keeps the test and the solve as well conditioned as the C-step
    itself."""
    cap = 1.0 if sw is None else sw
    band = (u > 0) & (u < cap)
    if not band.any():
        return None
    wb = np.where(band, cap, 0.0)  # the weights of the band's samples, 0 elsewhere
    with overflow_handled():
        # V^T V = sum_B wb (a - mean)(a - mean)^T / (2 eps), a_i = -2 r_i z_i
        mean = Z.T @ (wb * r) * (-2.0 / np.sum(wb))
        scatter = 4.0 * _gram(Z, wb * r * r) - np.sum(wb) * np.outer(mean, mean)
        # W^T W with W = V R^{-1}: R^{-T} (V^T V) R^{-1}
        half = solve_triangular(R, scatter / (2.0 * eps), trans="T")
        M = np.eye(R.shape[0]) - solve_triangular(R, half.T, trans="T").T
    if not np.isfinite(M).all():
        return None
    M = 0.5 * (M + M.T)
    try:
        C = np.linalg.cholesky(M)
    except np.linalg.LinAlgError:
        return None
    if not np.diagonal(C).min() > 1e-4:  # barely positive definite: no trust in it
        return None
    t = solve_triangular(R, rhs, trans="T")
    t = solve_triangular(C, t, lower=True)
    t = solve_triangular(C, t, lower=True, trans="T")
    return solve_triangular(R, t)


def csteps(Z, y, theta, h, eps, penalty, sw=None, max_steps=100, tol=0.0, log=None):
    """Soft concentration steps from theta, until a step moves the fitted values by
    at most ``tol`` (root mean square over the mask, in the units of y), the mask
    stops changing, or the objective stops decreasing (rounding). At ``eps = 0`` these
    are FAST-LTS's C-steps. Returns (theta, objective value, mask, steps, converged).

    A C-step is the mask at theta, then the weighted ridge least squares with that
    mask: ``theta - H_C^{-1} g`` with ``g`` the gradient and ``H_C`` the Hessian of the
    mask-weighted least squares. It never raises the objective, but where many
    losses lie in the soft band (the mask moves with them) it converges slowly. So
    each step also tries the Newton step (:func:`_newton_direction`, from the same
    factorisation) where the exact Hessian is positive definite, and takes whichever
    of the two lowers the objective more: monotone like the C-steps, and
    quadratically convergent near a minimum like Newton."""
    value, u, r, _ = objective(theta, Z, y, h, eps, penalty, sw)
    ridge = h * penalty
    for step in range(1, max_steps + 1):
        factor = R, normal = _factor(Z, u, ridge)
        new = weighted_ridge_solve(Z, y, u, ridge, factor)
        new_value, new_u, new_r, _ = objective(new, Z, y, h, eps, penalty, sw)
        if eps > 0:
            direction = None
            if R is not None:
                with overflow_handled():
                    rhs = Z.T @ (u * r) - ridge * theta
                direction = _newton_direction(R, Z, u, r, rhs, eps, sw)
            newton = direction is not None
            if newton:
                candidate = theta + direction
                found = objective(candidate, Z, y, h, eps, penalty, sw)
                newton = found[0] < new_value
                if newton:
                    new, (new_value, new_u, new_r, _) = candidate, found
            if not newton:
                # negative curvature (or a Newton step that overshoots): the C-steps
                # crawl along the same direction, so try doubling the step
                direction = new - theta
                for _ in range(MAX_DOUBLINGS):
                    candidate = new + direction
                    found = objective(candidate, Z, y, h, eps, penalty, sw)
                    if not found[0] < new_value:
                        break
                    new, (new_value, new_u, new_r, _) = candidate, found
                    direction = direction + direction
        if not new_value <= value:  # no progress in floating point: a fixed point
            return theta, value, u, step, True
        with overflow_handled():
            moved = Z @ (new - theta)
            moved = math.sqrt(float(u @ np.minimum(moved * moved, LOSS_CAP)) / h)
        same_mask = np.array_equal(new_u, u)
        theta, value, u, r = new, new_value, new_u, new_r
        if log is not None:
            log(step, value, moved)
        if same_mask or moved <= tol:
            return theta, value, u, step, True
    return theta, value, u, max_steps, False


# ---------------------------------------------------------------------- the efficiency step
def consistency_factor(h_fraction):
    """The factor making ``sqrt(mean of the h smallest squared residuals)`` consistent
    for the standard deviation at the normal model, ``h = h_fraction n``: with ``q`` the
    ``(1 + h_fraction) / 2`` normal quantile, that mean tends to ``sigma^2 (1 - 2 q
    phi(q) / h_fraction)``."""
    if h_fraction >= 1.0:
        return 1.0
    q = ndtri(0.5 + 0.5 * h_fraction)
    return 1.0 / math.sqrt(1.0 - 2.0 * q * norm.pdf(q) / h_fraction)


def bisquare_weights(loss, scale):
    """IRLS weights of Tukey's bisquare at squared residuals ``loss`` (capped losses
    included) and residual scale ``scale``: ``(1 - (r / (c scale))^2)^2`` inside
    ``|r| < c scale``, 0 beyond."""
    with overflow_handled():
        v = 1.0 - np.minimum(loss / (BISQUARE_C * scale) ** 2, 1.0)
    return v * v


def _bisquare_objective(loss, scale, theta, ridge, sw):
    """``sum_i sw_i scale^2 rho(r_i / scale) + sum_j ridge_j theta_j^2`` with Tukey's
    bisquare ``rho(t) = (c^2 / 3) (1 - (1 - (t / c)^2)^3)``, constant beyond ``c``."""
    with overflow_handled():
        v = 1.0 - np.minimum(loss / (BISQUARE_C * scale) ** 2, 1.0)
    rho = (BISQUARE_C * scale) ** 2 / 3.0 * (1.0 - v * v * v)
    return float(np.sum(rho if sw is None else sw * rho) + ridge @ (theta * theta))


def mm_step(Z, y, theta, scale, ridge, sw=None, max_steps=100, tol=0.0, log=None):
    """Tukey's bisquare M-estimate with the scale held fixed, started at theta, by
    iteratively reweighted (ridge) least squares, which never increases its objective
    (:func:`_bisquare_objective`). Stops when a step moves the fitted values by at most
    ``tol`` scales (root mean square over the weights) or the objective stops
    decreasing (rounding). Returns (theta, steps, converged)."""
    sw1 = 1.0 if sw is None else sw
    with overflow_handled():
        loss = residuals_and_losses(Z, y, theta)[1]
    value = _bisquare_objective(loss, scale, theta, ridge, sw)
    for step in range(1, max_steps + 1):
        wts = sw1 * bisquare_weights(loss, scale)
        if not wts.any():  # every residual beyond the cutoff: nothing to refit
            return theta, step - 1, True
        new = weighted_ridge_solve(Z, y, wts, ridge)
        with overflow_handled():
            new_loss = residuals_and_losses(Z, y, new)[1]
            moved = Z @ (new - theta)
            moved = math.sqrt(float(wts @ np.minimum(moved * moved, LOSS_CAP))
                              / float(np.sum(wts))) / scale
        new_value = _bisquare_objective(new_loss, scale, new, ridge, sw)
        if not new_value <= value:  # no progress in floating point: a fixed point
            return theta, step, True
        theta, loss, value = new, new_loss, new_value
        if log is not None:
            log(step, moved)
        if moved <= tol:
            return theta, step, True
    return theta, max_steps, False


# -------------------------------------------------------------------------- robust starts
# FAST-LTS (Rousseeuw & Van Driessen 2006): N_STARTS random elemental subsets and two
# deterministic starts, each refined by SEED_STEPS C-steps; the N_KEEP best are iterated
# to C-step fixed points and the best of those is returned. Random elemental starts
# alone need about log(0.01) / log(1 - (1 - contamination)^n_params) draws to include a
# clean one with 99% probability (about 500 for 20% and 21 parameters); the start on the
# least outlying rows of X covers far bad leverage points, the least-squares start plus
# C-steps far vertical outliers. Beyond SUBSAMPLE samples all of this runs on a random
# subsample of that size (FAST-LTS's nested subsamples, in one level): the starts only
# need to land in the right basin, which the soft C-steps on the whole sample descend.
# The starts are refined together, in an orthonormal basis of the design's column space
# (so that the batched normal equations stay well conditioned whatever X is).
N_STARTS = 500
SEED_STEPS = 2
N_KEEP = 10
# Small problems get more starts, up to MAX_STARTS, and iterate all of them to fixed
# points, as long as that costs at most about START_WORK multiply-adds (n * n_params^2
# per C-step and start): on the classic data sets of robustbase's tests (hbk) the
# best ten after two C-steps can miss the LTS optimum, and there all of it is cheap.
MAX_STARTS = 1000
START_WORK = 5e7
MAX_START_STEPS = 100
SUBSAMPLE = 1500
# Standardised features are clipped at this magnitude where only their outlyingness
# matters (the low-leverage start), so that their squares stay finite.
OUTLYING_CAP = 1e100


def _hard_masks(loss, h, sw):
    """Hard trimming masks, one per row of ``loss``: the smallest losses kept whole up
    to a total weight h (the boundary sample partly)."""
    k, n = loss.shape
    if sw is None and h == int(h):
        u = np.zeros((k, n))
        kept = np.argpartition(loss, int(h) - 1, axis=1)[:, :int(h)]
        np.put_along_axis(u, kept, 1.0, axis=1)
        return u
    order = np.argsort(loss, axis=1, kind="stable")
    w = np.ones(order.shape) if sw is None else sw[order]
    kept = np.clip(h - (np.cumsum(w, axis=1) - w), 0.0, w)
    u = np.empty_like(kept)
    np.put_along_axis(u, order, kept, axis=1)
    return u


def _elemental_subsets(n, k, count, rng):
    """``count`` random k-subsets of range(n), one per row (without repetition)."""
    if 4 * k > n:  # dense: the k smallest of n uniforms
        return np.argpartition(rng.random_sample((count, n)), k - 1, axis=1)[:, :k]
    subsets = rng.randint(0, n, size=(count, k))
    while True:  # sparse: redraw the (few) rows that repeat an index
        ordered = np.sort(subsets, axis=1)
        repeats = np.flatnonzero((ordered[:, 1:] == ordered[:, :-1]).any(axis=1))
        if repeats.size == 0:
            return subsets
        subsets[repeats] = rng.randint(0, n, size=(repeats.size, k))


class _Batch:
    """Hard C-steps for many starts at once (one per row of T), in coordinates where
    the design is Q."""

    def __init__(self, Q, y, h, ridge, sw):
        self.h, self.ridge, self.sw = h, ridge, sw
        r = Q.shape[1]
        # rows beyond 1e150 (far bad leverage points) are clipped in the normal
        # equations so that their products stay finite: 0 * inf would be NaN where
        # the mask leaves them out, and where it does not, the start is a bad one
        # whatever its exact value
        self.Qc = Qc = np.clip(Q, -1e150, 1e150)
        self.QT = np.ascontiguousarray(Q.T)
        self.y = y
        with overflow_handled():
            self.QQ = (Qc[:, :, None] * Qc[:, None, :]).reshape(Q.shape[0], r * r)
            self.Qy = Qc * np.clip(y, -1e150, 1e150)[:, None]

    def objective(self, T):
        """Hard LTS objectives (inf where overflowed) and masks of the rows of T."""
        with overflow_handled():
            res = self.y - T @ self.QT
            loss = np.minimum(res * res, LOSS_CAP)
        u = _hard_masks(loss, self.h, self.sw)
        with overflow_handled():
            pen = np.einsum("ki,ij,kj->k", T, self.ridge, T)
            value = (np.einsum("kn,kn->k", u, loss) + pen) / self.h
        return np.where(np.isnan(value), np.inf, value), u

    def solve(self, U):
        """The (ridge) least squares for each mask (row of U)."""
        r = self.ridge.shape[0]
        with overflow_handled():
            G = (U @ self.QQ).reshape(-1, r, r) + self.ridge
            c = U @ self.Qy
        bad = ~(np.isfinite(G).all(axis=(1, 2)) & np.isfinite(c).all(axis=1))
        G[bad], c[bad] = np.eye(r), 0.0  # overflowed: such a start is dropped anyway
        try:
            T = np.linalg.solve(G, c[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:  # a degenerate subset: least squares, one by one
            T = np.stack([np.linalg.lstsq(g, b, rcond=None)[0] for g, b in zip(G, c)])
        T[bad] = np.nan  # its objective is then inf
        return T

    def steps(self, T, n_steps):
        """At most n_steps C-steps per row of T; a row stops when its objective stops
        decreasing. Returns (T, objectives)."""
        value, u = self.objective(T)
        active = np.arange(T.shape[0])
        for _ in range(n_steps):
            if active.size == 0:
                break
            new = self.solve(u[active])
            new_value, new_u = self.objective(new)
            better = new_value < value[active]
            take = active[better]
            T[take], value[take], u[take] = new[better], new_value[better], new_u[better]
            active = take
        return T, value


def robust_start(Xs, Z, y, h, penalty, sw, rng):
    """A robust starting point for the descent: the hard C-step fixed point of the best
    of the FAST-LTS starts. Returns (theta, its hard LTS objective on the sample the
    starts used, the numerical rank of the design there)."""
    n, n_params = Z.shape
    total = n if sw is None else float(np.sum(sw))
    if h >= total:  # nothing to trim: (ridge) least squares is the only fixed point
        theta = weighted_ridge_solve(Z, y, np.ones(n) if sw is None else sw,
                                     total * penalty)
        return theta, objective(theta, Z, y, h, 0.0, penalty, sw)[0], n_params
    if n > SUBSAMPLE:
        sub = np.sort(sample_without_replacement(n, SUBSAMPLE, random_state=rng))
        Xs, Z, y = Xs[sub], Z[sub], y[sub]
        if sw is None:
            h = max(int(round(h * SUBSAMPLE / n)), n_params + 1)
        else:
            sw = sw[sub]
            h = h * float(np.sum(sw)) / total
        n = SUBSAMPLE
    # the h samples least outlying in X (the sum of squared robust z-scores)
    clipped = np.minimum(np.abs(Xs), OUTLYING_CAP)
    low_leverage = _hard_masks(np.sum(clipped * clipped, axis=1)[None], h, sw)[0]
    # the starts work in coordinates t with theta = back @ t, orthonormal on those
    # samples (far leverage points elsewhere would swamp an SVD of all of Z); a
    # direction they do not span is left out of the starts, not of the fit
    with overflow_handled():
        _, S, Vt = np.linalg.svd(Z[low_leverage > 0], full_matrices=False)
    rank = int(np.sum(S > S[0] * 1e-12)) if np.isfinite(S).all() and S[0] > 0 else 0
    if rank == 0:  # nothing to span: least squares alone
        theta = weighted_ridge_solve(Z, y, np.ones(n) if sw is None else sw,
                                     total * penalty)
        return theta, objective(theta, Z, y, h, 0.0, penalty, sw)[0], 0
    back = Vt[:rank].T / S[:rank]
    with overflow_handled():
        Q = Z @ back
    ridge = h * (back.T * penalty) @ back  # theta^T diag(h penalty) theta
    batch = _Batch(Q, y, h, ridge, sw)
    ones = np.ones(n) if sw is None else sw
    # two deterministic starts: (ridge) least squares on the whole sample, and on the
    # least outlying samples
    T = [batch.solve(np.stack([ones * (h / float(np.sum(ones))), low_leverage]))]
    k = min(n, rank)
    work = n * rank * rank
    n_starts = int(min(MAX_STARTS, max(N_STARTS, START_WORK / work)))
    subsets = _elemental_subsets(n, k, n_starts, rng)
    # each subset fitted exactly: a tiny ridge keeps the (batched) solve defined for
    # the singular subsets that discrete features produce
    A = batch.Qc[subsets]
    with overflow_handled():
        G = np.einsum("sij,sik->sjk", A, A)
        G += (1e-10 * np.trace(G, axis1=1, axis2=2) / k)[:, None, None] * np.eye(k)
        b = np.einsum("sij,si->sj", A, y[subsets])
        good = np.isfinite(G).all(axis=(1, 2)) & np.isfinite(b).all(axis=1)
        good &= np.trace(G, axis1=1, axis2=2) > 0
    T.append(np.linalg.solve(G[good], b[good][:, :, None])[:, :, 0])
    T = np.concatenate(T)
    if work * n_starts > START_WORK:
        T, value = batch.steps(T, SEED_STEPS)
        T = T[np.argsort(value, kind="stable")[:N_KEEP]]
    T, value = batch.steps(T, MAX_START_STEPS)
    theta = back @ T[int(np.argmin(value))]
    return theta, objective(theta, Z, y, h, 0.0, penalty, sw)[0], rank


# The small-sample factors of Pison, Van Aelst and Willems (2002) for the raw LTS scale,
# with the constants robustbase's ltsReg uses (R/ltsReg.R, LTScnp2). At the two levels
# alpha = 0.5 and 0.875 the scale's expectation is f(n) = 1 - exp(c0) / n^c1 times its
# limit: for one slope (c0, c1) directly, for more slopes p from two fitted pairs (a, b)
# at q = 3 and 5 (log(-a / p^b) = c0 - c1 log(q p^2)). Keys: (intercept, level).
_PISON_ONE_SLOPE = {
    (True, 0.5): (0.630869217886906, 0.650789250442946),
    (True, 0.875): (0.565065391014791, 1.03044199012509),
    (False, 0.5): (-0.0181777452315321, 0.697629772271099),
    (False, 0.875): (-0.310122738776431, 1.06241615923172),
}
_PISON_SLOPES = {
    (True, 0.5): ((-0.746945886714663, 0.56264937192689),
                  (-0.535478048924724, 0.543323462033445)),
    (True, 0.875): ((-0.458580153984614, 1.12236071104403),
                    (-0.267178168108996, 1.1022478781154)),
    (False, 0.5): ((-0.487338281979106, 0.405511279418594),
                   (-0.340762058011, 0.37972360544988)),
    (False, 0.875): ((-0.251778730491252, 0.883966931611758),
                     (-0.146660023184295, 0.86292940340761)),
}


MAX_SMALL_SAMPLE = 4.0


def _pison_level(n, slopes, intercept, level):
    if slopes == 1:
        c0, c1 = _PISON_ONE_SLOPE[intercept, level]
    else:
        (a3, b3), (a5, b5) = _PISON_SLOPES[intercept, level]
        y3 = math.log(-a3 / slopes**b3)
        y5 = math.log(-a5 / slopes**b5)
        c1 = (y3 - y5) / math.log(5.0 / 3.0)
        c0 = y3 + c1 * math.log(3.0 * slopes * slopes)
    return 1.0 - math.exp(c0) / float(n) ** c1


def small_sample_factor(n, n_slopes, intercept, h):
    """The small-sample correction of the raw LTS scale (robustbase's ``LTScnp2``) for
    ``n`` samples, ``n_slopes`` coefficients besides the intercept, and ``h`` kept. The
    trimming level is robustbase's ``alpha`` for that ``h`` (``h = floor(2 m - n + 2
    (n - m) alpha)``, ``m = floor((n + p + 1) / 2)``, ``p`` counting the intercept),
    in ``[0.5, 1]``; the factor ``1 / f`` interpolates ``f`` linearly in alpha between
    0.5, 0.875 and 1 (no correction), at most ``MAX_SMALL_SAMPLE`` (robustbase's curves
    reach their pole at a handful of samples per parameter)."""
    if n_slopes < 1 or n < 1:
        return 1.0
    m = (n + n_slopes + int(intercept) + 1) // 2
    alpha = 1.0 if n == m else (h - 2 * m + n) / (2.0 * (n - m))
    alpha = min(max(alpha, 0.5), 1.0)
    f500 = _pison_level(n, n_slopes, intercept, 0.5)
    f875 = _pison_level(n, n_slopes, intercept, 0.875)
    if alpha <= 0.875:
        f = f500 + (f875 - f500) / 0.375 * (alpha - 0.5)
    else:
        f = f875 + (1.0 - f875) / 0.125 * (alpha - 0.875)
    # the fitted curves have a pole at a handful of samples per parameter, which they
    # were not fitted for: the factor is capped at MAX_SMALL_SAMPLE there
    return 1.0 / max(f, 1.0 / MAX_SMALL_SAMPLE) if f <= 1.0 else 1.0
