# Soft rank of new values against a fitted reference (DESIGN section 9), the
# kernel under skrank.preprocessing.SoftRankTransformer.
#
# For one feature, the reference holds m values; a new value x is soft-ranked in
# the vector (reference..., x), ascending, without re-sorting or re-running PAV:
# PAV is order-independent and local, so the solution for m + 1 values coarsens
# the PAV solution of the reference entries above x (the "prefix", weights
# rho = m+1-i) and of those below x (the "suffix", rho = m-i), whatever x's
# position. build_stacks stores every prefix and every suffix stack persistently
# (one block statistic and one parent pointer per position); rank_values then
# starts from x as a unit between the two stacks and merges while the order
# constraint is violated: O(log m + merges) per value.
#
# Positions i = 0..m-1 index the reference in *descending* order; s = (a - c) / eps
# for a shift c inside the reference's range (soft ranks are shift invariant, and
# the shift keeps block sums free of cancellation). Block statistics, per
# position, in stat[..., :]:
#   l2: S = sum s, W = sum rho, C = count, V = (S - W) / C
#   kl: S = logsumexp s, W = sum rho, C unused, V = S - log W
# PAV keeps V strictly decreasing from block to block; ties (V equal) merge.
#
# No validation here: the Python layer checks shapes, finiteness and strengths.

from cython.parallel cimport prange
from libc.math cimport exp, log, log1p, NAN

cimport numpy as cnp

ctypedef fused floating:
    float
    double

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    static int skrank_ref_max_threads(void) { return omp_get_max_threads(); }
    #else
    static int skrank_ref_max_threads(void) { return 1; }
    #endif
    """
    int skrank_ref_max_threads() nogil

cnp.import_array()

cdef enum:  # offsets of the block statistics
    S_ = 0
    W_ = 1
    C_ = 2
    V_ = 3


cdef inline double _logaddexp(double a, double b) noexcept nogil:
    if a >= b:
        return a + log1p(exp(b - a))
    return b + log1p(exp(a - b))


cdef inline double _value(double S, double W, double C, bint kl) noexcept nogil:
    if kl:
        return S - log(W)
    return (S - W) / C


cdef inline void _merge(double* S, double* W, double* C, const double* other,
                        bint kl) noexcept nogil:
    if kl:
        S[0] = _logaddexp(S[0], other[S_])
    else:
        S[0] += other[S_]
    W[0] += other[W_]
    C[0] += other[C_]


cdef void _stacks_one(const double* s, Py_ssize_t m, bint kl, Py_ssize_t* link_pre,
                      double* pre, Py_ssize_t* link_suf, double* suf,
                      Py_ssize_t* stack) noexcept nogil:
    cdef Py_ssize_t i, e, top, first
    cdef double S, W, C, V
    # prefixes, left to right: the block ending at i starts at link_pre[i]
    top = -1
    for i in range(m):
        first, S, W, C = i, s[i], <double>(m + 1 - i), 1.0
        V = _value(S, W, C, kl)
        while top >= 0 and pre[4 * stack[top] + V_] <= V:
            e = stack[top]
            top -= 1
            _merge(&S, &W, &C, &pre[4 * e], kl)
            first = link_pre[e]
            V = _value(S, W, C, kl)
        link_pre[i] = first
        pre[4 * i + S_], pre[4 * i + W_], pre[4 * i + C_], pre[4 * i + V_] = S, W, C, V
        top += 1
        stack[top] = i
    # suffixes, right to left: the block starting at i ends at link_suf[i]
    top = -1
    for i in range(m - 1, -1, -1):
        first, S, W, C = i, s[i], <double>(m - i), 1.0
        V = _value(S, W, C, kl)
        while top >= 0 and V <= suf[4 * stack[top] + V_]:
            e = stack[top]
            top -= 1
            _merge(&S, &W, &C, &suf[4 * e], kl)
            first = link_suf[e]
            V = _value(S, W, C, kl)
        link_suf[i] = first
        suf[4 * i + S_], suf[4 * i + W_], suf[4 * i + C_], suf[4 * i + V_] = S, W, C, V
        top += 1
        stack[top] = i


def build_stacks(const double[:, ::1] s, bint kl, Py_ssize_t[:, ::1] link_pre,
                 double[:, :, ::1] pre, Py_ssize_t[:, ::1] link_suf,
                 double[:, :, ::1] suf, Py_ssize_t[:, ::1] scratch):
    """The persistent prefix and suffix PAV stacks of every reference row
    (s: (n_features, m), descending along each row)."""
    cdef Py_ssize_t p = s.shape[0], m = s.shape[1], j
    cdef int nt = skrank_ref_max_threads() if p > 1 and p * m > 20000 else 1
    if m == 0:
        return
    with nogil:
        for j in prange(p, schedule="static", num_threads=nt):
            _stacks_one(&s[j, 0], m, kl, &link_pre[j, 0], &pre[j, 0, 0],
                        &link_suf[j, 0], &suf[j, 0, 0], &scratch[j, 0])


cdef inline double _rank_one(double sx, const double* s, Py_ssize_t m, bint kl,
                             const Py_ssize_t* link_pre, const double* pre,
                             const Py_ssize_t* link_suf, const double* suf,
                             double* block) noexcept nogil:
    """Soft rank (in [1, m + 1]) of the scaled value sx against one reference;
    block receives x's block statistics (S, W, C) and x's position k."""
    cdef Py_ssize_t lo = 0, hi = m, mid, left, right
    cdef double S, W, C, V
    while lo < hi:  # k = #{s > sx}: x goes after every strictly larger entry
        mid = (lo + hi) >> 1
        if s[mid] > sx:
            lo = mid + 1
        else:
            hi = mid
    S, W, C = sx, <double>(m + 1 - lo), 1.0
    V = _value(S, W, C, kl)
    left, right = lo - 1, lo
    while True:
        if left >= 0 and pre[4 * left + V_] <= V:
            _merge(&S, &W, &C, &pre[4 * left], kl)
            left = link_pre[left] - 1
        elif right < m and V <= suf[4 * right + V_]:
            _merge(&S, &W, &C, &suf[4 * right], kl)
            right = link_suf[right] + 1
        else:
            break
        V = _value(S, W, C, kl)
    block[0], block[1], block[2], block[3] = S, W, C, <double>lo
    # DESIGN section 7 forms: exact when x's block is the singleton {x}
    if kl:
        return exp(sx - S) * W
    return (sx - S / C) + W / C


cdef inline double _scaled(double x, double shift, double inv_eps, double s_lo,
                           double s_hi) noexcept nogil:
    cdef double sx = (x - shift) * inv_eps
    return s_lo if sx < s_lo else (s_hi if sx > s_hi else sx)


cdef inline double _hard_one(double x, const double* q, Py_ssize_t m) noexcept nogil:
    """The strength-0 map (#{q < x} + #{q == x} / 2) / m, q descending (unscaled)."""
    cdef Py_ssize_t lo = 0, hi = m, mid, gt
    while lo < hi:  # #{q > x}
        mid = (lo + hi) >> 1
        if q[mid] > x:
            lo = mid + 1
        else:
            hi = mid
    gt, hi = lo, m
    while lo < hi:  # #{q >= x}
        mid = (lo + hi) >> 1
        if q[mid] >= x:
            lo = mid + 1
        else:
            hi = mid
    return <double>(2 * m - lo - gt) / (2.0 * m)


def rank_values(const floating[:, :] X, const double[::1] shift, const double[::1] inv_eps,
                const double[::1] s_lo, const double[::1] s_hi,
                const double[:, ::1] s, bint kl,
                const Py_ssize_t[:, ::1] link_pre, const double[:, :, ::1] pre,
                const Py_ssize_t[:, ::1] link_suf, const double[:, :, ::1] suf,
                floating[:, :] out):
    """out[i, j] = (soft rank of X[i, j] in (reference j..., X[i, j]) - 1) / m,
    clipped to [0, 1]; NaN stays NaN. Values are scaled as (x - shift) * inv_eps
    and clamped to [s_lo, s_hi], beyond which x is a singleton end block anyway.
    inv_eps[j] == 0 marks a feature mapped at strength 0; its row of s holds the
    unscaled reference."""
    cdef Py_ssize_t n = X.shape[0], p = X.shape[1], m = s.shape[1], t, i, j
    cdef double x, u
    cdef double block[4]
    cdef int nt = skrank_ref_max_threads() if n * p > 4096 else 1
    with nogil:
        # feature by feature, so that one reference stays in cache
        for t in prange(n * p, schedule="static", num_threads=nt):
            j = t // n
            i = t - j * n
            x = X[i, j]
            if x != x:
                out[i, j] = NAN
            elif inv_eps[j] == 0.0:
                out[i, j] = _hard_one(x, &s[j, 0], m)
            else:
                u = (_rank_one(_scaled(x, shift[j], inv_eps[j], s_lo[j], s_hi[j]),
                               &s[j, 0], m, kl, &link_pre[j, 0], &pre[j, 0, 0],
                               &link_suf[j, 0], &suf[j, 0, 0], block) - 1.0) / m
                out[i, j] = 0.0 if u < 0.0 else (1.0 if u > 1.0 else u)


cdef double _invert_one(double target, const double* s, Py_ssize_t m, bint kl,
                        double s_lo, double s_hi,
                        const Py_ssize_t* link_pre, const double* pre,
                        const Py_ssize_t* link_suf, const double* suf) noexcept nogil:
    """The scaled value whose soft rank is target (in [1, m + 1]); on a flat part
    of the map (x alone in its block), the middle of that flat part, or its finite
    end for the tails. Newton steps on the piecewise closed form of x's block,
    safeguarded by bisection: the map is continuous and non-decreasing."""
    cdef double a = s_lo, b = s_hi, t, r, t_new, S, W, C, S_rest, lo_end, hi_end, w_x
    cdef double block[4]
    cdef Py_ssize_t k, it
    # start at the reference entry of about that rank (s is descending)
    k = m - <Py_ssize_t>(target - 1.0)
    t = s[0 if k < 0 else (m - 1 if k > m - 1 else k)]
    for it in range(200):
        r = _rank_one(t, s, m, kl, link_pre, pre, link_suf, suf, block)
        S, W, C, k = block[0], block[1], block[2], <Py_ssize_t>block[3]
        if r == target:
            break
        if r < target:
            a = t
        else:
            b = t
        t_new = a - 1.0  # marks "no Newton step"
        if C > 1.0:  # x's block has others: the rank is smooth in x there
            if kl:
                S_rest = S + log1p(-exp(t - S))
                if target < W:
                    t_new = S_rest + log(target / (W - target))
            else:
                t_new = (C * target - W + S - t) / (C - 1.0)
        if not (a < t_new < b):
            t_new = 0.5 * a + 0.5 * b
        if t_new == a or t_new == b:  # the bracket cannot shrink: rounding level
            return t
        t = t_new
    if C > 1.0:
        return t
    # x alone in its block at position k: flat while no neighbour pulls it in
    w_x = <double>(m + 1 - k)
    w_x = log(w_x) if kl else w_x
    lo_end = suf[4 * k + V_] + w_x if k < m else s_lo
    hi_end = pre[4 * (k - 1) + V_] + w_x if k > 0 else s_hi
    lo_end = s_lo if lo_end < s_lo else lo_end
    hi_end = s_hi if hi_end > s_hi else hi_end
    if k == m:
        return hi_end
    if k == 0:
        return lo_end
    return 0.5 * lo_end + 0.5 * hi_end


def invert_values(const floating[:, :] U, const double[::1] shift, const double[::1] inv_eps,
                  const double[::1] s_lo, const double[::1] s_hi,
                  const double[:, ::1] s, bint kl,
                  const Py_ssize_t[:, ::1] link_pre, const double[:, :, ::1] pre,
                  const Py_ssize_t[:, ::1] link_suf, const double[:, :, ::1] suf,
                  floating[:, :] out):
    """Inverse of rank_values: out[i, j] is the value x of feature j whose output
    is U[i, j] (in [0, 1]; NaN stays NaN), as described in _invert_one. Features
    with inv_eps[j] == 0 (strength 0) are left to the caller."""
    cdef Py_ssize_t n = U.shape[0], p = U.shape[1], m = s.shape[1], t, i, j
    cdef double u
    cdef int nt = skrank_ref_max_threads() if n * p > 1024 else 1
    with nogil:
        for t in prange(n * p, schedule="static", num_threads=nt):
            j = t // n
            i = t - j * n
            u = U[i, j]
            if u != u or inv_eps[j] == 0.0:  # strength-0 features: done by the caller
                out[i, j] = NAN
            else:
                u = 0.0 if u < 0.0 else (1.0 if u > 1.0 else u)
                out[i, j] = shift[j] + _invert_one(
                    u * m + 1.0, &s[j, 0], m, kl, s_lo[j], s_hi[j], &link_pre[j, 0],
                    &pre[j, 0, 0], &link_suf[j, 0], &suf[j, 0, 0]) / inv_eps[j]
