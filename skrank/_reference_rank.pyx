# Soft rank of new values against a fitted reference (design notes, section 8), the
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
# Positions i = 0..m-1 index the reference a in *descending* order, in the data's
# own units. Every block statistic is kept relative to an anchor A, a value of the
# block, so that no x / eps is ever formed: only differences (a - A) / eps of
# nearby values, which cancel nothing and cannot overflow where blocks pool.
# That keeps the result exact to rounding at any strength and any scale. Per
# position, in stat[..., :]:
#   l2: S = sum (a - A) / eps,        W = sum rho, C = count, V = (S - W) / C
#   kl: S = logsumexp (a - A) / eps,  W = sum rho, C = count, V = S - log W
# V is the block's PAV value minus A / eps; PAV keeps the values strictly
# decreasing from block to block (ties merge). eps == 0 marks a feature mapped
# at strength 0 (the mid-distribution function).
#
# No validation here: the Python layer checks shapes, finiteness and strengths.

from cython.parallel cimport prange
from libc.float cimport DBL_EPSILON, DBL_MAX
from libc.math cimport exp, expm1, fabs, floor, log, log1p, nextafter, NAN

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

cdef enum:  # the block statistics of a position
    A_ = 0
    S_ = 1
    W_ = 2
    C_ = 3
    V_ = 4
    NSTAT = 5


cdef struct Block:
    double A, S, W, C, V


cdef inline double _logaddexp(double a, double b) noexcept nogil:
    if a >= b:
        return a + log1p(exp(b - a))
    return b + log1p(exp(a - b))


cdef inline void _update(Block* b, bint kl) noexcept nogil:
    b.V = b.S - log(b.W) if kl else (b.S - b.W) / b.C


cdef inline Block _unit(double A, double W, bint kl) noexcept nogil:
    cdef Block b
    b.A, b.S, b.W, b.C = A, 0.0, W, 1.0
    _update(&b, kl)
    return b


cdef inline void _store(double* dst, const Block* b) noexcept nogil:
    dst[A_], dst[S_], dst[W_], dst[C_], dst[V_] = b.A, b.S, b.W, b.C, b.V


cdef inline void _absorb_at(Block* b, const double* other, double d, bint kl) noexcept nogil:
    """Merge the stored block other, whose anchor is d = (A_other - b.A) / eps
    away, into b. The l2 value b.V is left stale (the merge tests compare it
    multiplied out): _update it before storing the block."""
    if kl:
        b.S = _logaddexp(b.S, other[S_] + d)
        b.W += other[W_]
        b.V = b.S - log(b.W)
    else:
        b.S += other[S_] + other[C_] * d
        b.W += other[W_]
    b.C += other[C_]


cdef inline bint _below(double v, const Block* b, bint kl) noexcept nogil:
    # v <= b's value, with the l2 value (S - W) / C multiplied out (no division)
    return v <= b.V if kl else v * b.C <= b.S - b.W


cdef inline bint _above(double v, const Block* b, bint kl) noexcept nogil:
    # b's value <= v
    return b.V <= v if kl else b.S - b.W <= v * b.C


cdef void _stacks_side(const double* a, Py_ssize_t m, double eps, bint kl, bint prefix,
                      Py_ssize_t* link, double* stat, Py_ssize_t* stack) noexcept nogil:
    """Prefix stacks (prefix: left to right, the block ending at i starts at link[i],
    weights rho = m + 1 - i) or suffix stacks (right to left, the block starting at
    i ends at link[i], rho = m - i); the merge tests are those of _rank_block."""
    cdef Py_ssize_t i, j, e, top = -1, first
    cdef double d
    cdef const double* blk
    cdef Block b
    for j in range(m):
        i = j if prefix else m - 1 - j
        first, b = i, _unit(a[i], <double>(m + 1 - i if prefix else m - i), kl)
        while top >= 0:
            e = stack[top]
            blk = &stat[NSTAT * e]
            d = (blk[A_] - b.A) / eps
            # the block above must not be below b, the block below not above it
            if not (_below(blk[V_] + d, &b, kl) if prefix else _above(blk[V_] + d, &b, kl)):
                break
            top -= 1
            _absorb_at(&b, blk, d, kl)
            if not kl:
                _update(&b, kl)  # stored values must be current (kl's already is)
            first = link[e]
        link[i] = first
        _store(&stat[NSTAT * i], &b)
        top += 1
        stack[top] = i


def build_stacks(const double[:, ::1] a, const double[::1] eps, bint kl,
                 Py_ssize_t[:, ::1] link_pre, double[:, :, ::1] pre,
                 Py_ssize_t[:, ::1] link_suf, double[:, :, ::1] suf,
                 Py_ssize_t[:, ::1] scratch):
    """The persistent prefix and suffix PAV stacks of every reference row
    (a: (n_features, m), descending along each row; features with eps == 0 skipped)."""
    cdef Py_ssize_t p = a.shape[0], m = a.shape[1], j
    cdef int nt = skrank_ref_max_threads() if p > 1 and p * m > 20000 else 1
    if m == 0:
        return
    with nogil:
        for j in prange(p, schedule="static", num_threads=nt):
            if eps[j] > 0.0:
                _stacks_side(&a[j, 0], m, eps[j], kl, True, &link_pre[j, 0], &pre[j, 0, 0],
                             &scratch[j, 0])
                _stacks_side(&a[j, 0], m, eps[j], kl, False, &link_suf[j, 0], &suf[j, 0, 0],
                             &scratch[j, 0])


cdef inline Block _rank_block(double x, const double* a, Py_ssize_t m, double eps, bint kl,
                              const Py_ssize_t* link_pre, const double* pre,
                              const Py_ssize_t* link_suf, const double* suf,
                              Py_ssize_t* k) noexcept nogil:
    """x's PAV block in (reference..., x), anchored at x; k receives x's position."""
    cdef Py_ssize_t lo = 0, hi = m, mid, left, right
    cdef double d
    cdef const double* blk
    cdef Block b
    while lo < hi:  # k = #{a > x}: x goes after every strictly larger entry
        mid = (lo + hi) >> 1
        if a[mid] > x:
            lo = mid + 1
        else:
            hi = mid
    k[0] = lo
    b = _unit(x, <double>(m + 1 - lo), kl)
    left, right = lo - 1, lo
    while True:
        if left >= 0:  # does the block above pull x's block in?
            blk = &pre[NSTAT * left]
            d = (blk[A_] - x) / eps
            if _below(blk[V_] + d, &b, kl):
                _absorb_at(&b, blk, d, kl)
                left = link_pre[left] - 1
                continue
        if right < m:  # or the block below?
            blk = &suf[NSTAT * right]
            d = (blk[A_] - x) / eps
            if _above(blk[V_] + d, &b, kl):
                _absorb_at(&b, blk, d, kl)
                right = link_suf[right] + 1
                continue
        _update(&b, kl)
        return b


cdef inline double _rank(const Block* b, bint kl) noexcept nogil:
    # the block forms of design notes section 5, anchored at x: exact for the singleton {x}
    if kl:
        return exp(-b.S) * b.W
    return (b.W - b.S) / b.C


cdef inline double _hard_one(double x, const double* a, Py_ssize_t m) noexcept nogil:
    """The strength-0 map (#{a < x} + #{a == x} / 2) / m, a descending."""
    cdef Py_ssize_t lo = 0, hi = m, mid, gt
    while lo < hi:  # #{a > x}
        mid = (lo + hi) >> 1
        if a[mid] > x:
            lo = mid + 1
        else:
            hi = mid
    gt, hi = lo, m
    while lo < hi:  # #{a >= x}
        mid = (lo + hi) >> 1
        if a[mid] >= x:
            lo = mid + 1
        else:
            hi = mid
    return <double>(2 * m - lo - gt) / (2.0 * m)


def rank_values(const floating[:, :] X, const double[:, ::1] a, const double[::1] eps,
                bint kl, const Py_ssize_t[:, ::1] link_pre, const double[:, :, ::1] pre,
                const Py_ssize_t[:, ::1] link_suf, const double[:, :, ::1] suf,
                floating[:, :] out):
    """out[i, j] = (soft rank of X[i, j] in (reference j..., X[i, j]) - 1) / m,
    clipped to [0, 1]; NaN stays NaN; eps[j] == 0: the strength-0 map."""
    cdef Py_ssize_t n = X.shape[0], p = X.shape[1], m = a.shape[1], t, i, j, k
    cdef double x, u
    cdef Block b
    cdef int nt = skrank_ref_max_threads() if n * p > 4096 else 1
    with nogil:
        # feature by feature, so that one reference stays in cache
        for t in prange(n * p, schedule="static", num_threads=nt):
            j = t // n
            i = t - j * n
            x = X[i, j]
            if x != x:
                out[i, j] = NAN
            elif eps[j] == 0.0:
                out[i, j] = _hard_one(x, &a[j, 0], m)
            else:
                k = 0  # assigned here: private to each thread, as b is
                b = _rank_block(x, &a[j, 0], m, eps[j], kl, &link_pre[j, 0], &pre[j, 0, 0],
                                &link_suf[j, 0], &suf[j, 0, 0], &k)
                u = (_rank(&b, kl) - 1.0) / m
                out[i, j] = 0.0 if u < 0.0 else (1.0 if u > 1.0 else u)


cdef inline double _clamp(double v, double lo, double hi) noexcept nogil:
    return lo if v < lo else (hi if v > hi else v)


cdef double _flat_part(Py_ssize_t k, const double* a, Py_ssize_t m, double eps, bint kl,
                       const double* pre, const double* suf, double a_lo, double b_hi,
                       bint* found) noexcept nogil:
    """Where x alone in its block at position k (rank m + 1 - k) stays alone: the
    interval between the suffix block below pulling it in and the prefix block above
    pulling it in. found is set when that interval is not empty; the result is its
    middle, or its finite end for the tails (k == m and k == 0)."""
    cdef double w = <double>(m + 1 - k), lo_end, hi_end
    w = log(w) if kl else w
    lo_end = _clamp(suf[NSTAT * k + A_] + eps * (suf[NSTAT * k + V_] + w), a_lo, b_hi) \
        if k < m else a_lo
    hi_end = _clamp(pre[NSTAT * (k - 1) + A_] + eps * (pre[NSTAT * (k - 1) + V_] + w),
                    a_lo, b_hi) if k > 0 else b_hi
    found[0] = lo_end < hi_end
    if k == m:
        return hi_end
    if k == 0:
        return lo_end
    return 0.5 * lo_end + 0.5 * hi_end


cdef double _invert_one(double target, const double* a, Py_ssize_t m, double eps, bint kl,
                        const Py_ssize_t* link_pre, const double* pre,
                        const Py_ssize_t* link_suf, const double* suf) noexcept nogil:
    """The value whose soft rank is target (in [1, m + 1]); on a flat part of the
    map (x alone in its block), the middle of that flat part, or its finite end
    for the tails. Newton steps on the closed form of x's block, safeguarded by
    bisection: the map is continuous and non-decreasing."""
    cdef double margin = eps * 2.0 * (m + 2), r, t_new, rest, flat
    # beyond these the map is exactly 0 and 1 (x alone at an end of the order)
    cdef double a_lo = _clamp(a[m - 1] - margin, -DBL_MAX, nextafter(a[m - 1], -DBL_MAX))
    cdef double b_hi = _clamp(a[0] + margin, nextafter(a[0], DBL_MAX), DBL_MAX)
    cdef double lo = a_lo, hi = b_hi, t, level = floor(target + 0.5)
    cdef Py_ssize_t k, it
    cdef bint found = False
    cdef Block b
    # an integer rank (to the rounding of u * m + 1) is the level of a flat part when x
    # can be alone there: its middle, not whichever end a Newton step lands on first
    if fabs(target - level) <= 4.0 * DBL_EPSILON * level:
        flat = _flat_part(m + 1 - <Py_ssize_t>level, a, m, eps, kl, pre, suf, a_lo, b_hi,
                          &found)
        if found:
            return flat
    # start at the reference entry of about that rank (a is descending)
    k = m - <Py_ssize_t>(target - 1.0)
    t = a[0 if k < 0 else (m - 1 if k > m - 1 else k)]
    for it in range(200):
        b = _rank_block(t, a, m, eps, kl, link_pre, pre, link_suf, suf, &k)
        r = _rank(&b, kl)
        if r == target:
            break
        if r < target:
            lo = t
        else:
            hi = t
        t_new = NAN  # no Newton step unless x shares its block
        if b.C > 1.0:  # the rank is smooth in x there: solve its closed form
            if kl:
                rest = b.S + log(-expm1(-b.S))  # log-sum-exp of the others, from x
                if 0.0 < target < b.W:
                    t_new = t + eps * (rest - log((b.W - target) / target))
            else:
                t_new = t + eps * (b.C * target - b.W + b.S) / (b.C - 1.0)
        if not (lo < t_new < hi):
            t_new = 0.5 * lo + 0.5 * hi
        if t_new == lo or t_new == hi:  # the bracket cannot shrink: rounding level
            return t
        t = t_new
    if b.C > 1.0:
        return t
    # x alone in its block at position k: flat while no neighbour pulls it in
    return _flat_part(k, a, m, eps, kl, pre, suf, a_lo, b_hi, &found)


def invert_values(const floating[:, :] U, const double[:, ::1] a, const double[::1] eps,
                  bint kl, const Py_ssize_t[:, ::1] link_pre, const double[:, :, ::1] pre,
                  const Py_ssize_t[:, ::1] link_suf, const double[:, :, ::1] suf,
                  floating[:, :] out):
    """Inverse of rank_values: out[i, j] is a value of feature j whose output is
    U[i, j] (clipped to [0, 1]; NaN stays NaN), as described in _invert_one.
    Features with eps[j] == 0 (strength 0) are left untouched for the caller."""
    cdef Py_ssize_t n = U.shape[0], p = U.shape[1], m = a.shape[1], t, i, j
    cdef double u
    cdef int nt = skrank_ref_max_threads() if n * p > 1024 else 1
    with nogil:
        for t in prange(n * p, schedule="static", num_threads=nt):
            j = t // n
            i = t - j * n
            if eps[j] > 0.0:
                u = U[i, j]
                if u != u:
                    out[i, j] = NAN
                else:
                    u = 0.0 if u < 0.0 else (1.0 if u > 1.0 else u)
                    out[i, j] = _invert_one(u * m + 1.0, &a[j, 0], m, eps[j], kl,
                                            &link_pre[j, 0], &pre[j, 0, 0], &link_suf[j, 0],
                                            &suf[j, 0, 0])
