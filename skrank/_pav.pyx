# Typed pool-adjacent-violators (PAV) kernels for soft sorting and ranking.
#
# The kernels find the integer structure of a soft operator -- the sorting
# permutation of each row and the PAV block partition -- and write the outputs in
# the cancellation-free forms of the design notes (doc/design.rst), section 5.
# Derivative kernels reuse that structure and never sort again. Rows are
# independent and run in parallel with OpenMP; each row's result is the same for
# any thread count.
#
# Notation (one row of length n, positions i = 0..n-1 in descending sorted order):
#   y      the sign-adjusted input (sign * x), sorted descending,
#   w      a descending weight vector (rho = n, n-1, ..., 1 for ranks).
# "rank form": P(y / eps, w)    (soft_rank, soft top-k masks)
# "sort form": P(rho / eps, y)  (soft_sort)
# PAV solves the decreasing isotonic problem of design notes section 3 on the blocks.
#
# Block statistics are kept relative to the block's first (largest) element a,
# so blocks of tied values are represented exactly (D = 0 / E = k), and the merge
# test is scaled by c = min(eps, 1) so that neither x / eps nor eps * w can
# overflow: gamma_c = c * gamma with alpha = c / eps, beta = c. l2 rows close to
# the float64 limits are rescaled exactly by a power of two (_row_shift).
#
# No validation happens here: the Python layer checks shapes, dtypes, finiteness
# and strengths (as sklearn/_isotonic.pyx under sklearn/isotonic.py).

cimport numpy as cnp
import numpy as np
from cython.parallel cimport parallel, prange
from libc.float cimport DBL_MAX, DBL_MIN, FLT_MIN
from libc.math cimport (NAN, cbrt, copysign, exp, expm1, fabs, floor, fmax, fmin, frexp,
                        ilogb, isnan, ldexp, log, sqrt)
from libc.stdint cimport INT32_MAX, int32_t, int64_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset
# Work space comes from PyMem_RawMalloc: thread-safe without the GIL, like malloc,
# and visible to tracemalloc, so memory benchmarks see the kernels' scratch too.
from cpython.mem cimport (PyMem_RawFree as free, PyMem_RawMalloc as malloc,
                          PyMem_RawRealloc as realloc)

ctypedef fused floating:
    float
    double

ctypedef fused floating_v:  # a second array's dtype, independent of the first's
    float
    double

ctypedef fused ukey:
    uint32_t
    uint64_t

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    static int skrank_max_threads(void) { return omp_get_max_threads(); }
    static int skrank_has_openmp(void) { return 1; }
    static int skrank_thread_num(void) { return omp_get_thread_num(); }
    #else
    static int skrank_max_threads(void) { return 1; }
    static int skrank_has_openmp(void) { return 0; }
    static int skrank_thread_num(void) { return 0; }
    #endif
    /* *p = v, returning the old *p, atomically (a kept work space changes hands) */
    #if defined(_MSC_VER)
    #include <intrin.h>
    #define skrank_exchange(p, v) _InterlockedExchangePointer((void *volatile *)(p), (v))
    #else
    #define skrank_exchange(p, v) __atomic_exchange_n((p), (v), __ATOMIC_ACQ_REL)
    #endif
    """
    int skrank_max_threads() nogil
    int skrank_has_openmp() nogil
    int skrank_thread_num() nogil
    void* skrank_exchange(void** p, void* v) nogil


cnp.import_array()

# The work space holds one phase's data, then the next one's under another type (keys,
# then values; indices, then block sums or a mask). A compiler barrier between the
# phases keeps the compiler from moving one phase's reads past the next one's writes
# on the grounds that their types differ (type-based alias analysis); it emits no
# instruction. (MSVC does no type-based alias analysis.)
cdef extern from *:
    """
    #if defined(__GNUC__) || defined(__clang__)
    #define skrank_phase_barrier() __asm__ __volatile__("" ::: "memory")
    #else
    #define skrank_phase_barrier() ((void)0)
    #endif
    """
    void skrank_phase_barrier() nogil

# Per-phase timers for the benchmarks (benchmarks/bench_pav.py): off by default, a
# flag test per row when off. While on, the entry points run on one thread, so the
# accumulators below are written by one thread only, as long as one Python thread
# at a time calls the kernels (a benchmark's business).
cdef extern from *:
    """
    #include <time.h>
    static double skrank_now(void) {  /* C11: seconds, ns resolution where the OS has it */
        struct timespec t;
        timespec_get(&t, TIME_UTC);
        return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
    }
    """
    double skrank_now() nogil

# Regularisations: quadratic, entropic, and the 4/3- and 3/2-norms (design notes,
# section 13).
cdef enum:
    REG_L2 = 0
    REG_KL = 1
    REG_P43 = 2
    REG_P32 = 3

L2, KL, P43, P32 = REG_L2, REG_KL, REG_P43, REG_P32

cdef enum:
    PHASE_SORT = 0   # sorting a row (keys, radix or NumPy's argsort)
    PHASE_PAV = 1    # the PAV merge loop
    PHASE_OUT = 2    # everything else: outputs, structure, scaling
    N_PHASES = 3

cdef bint _timing = False
cdef double _phase_seconds[3]


def set_phase_timing(bint enabled):
    """Turn the per-phase timers on or off, and reset them. While on, every kernel
    call runs on one thread."""
    global _timing
    _timing = enabled
    for i in range(N_PHASES):
        _phase_seconds[i] = 0.0


def phase_times():
    """Seconds spent in each phase since the timers were turned on: a dict with
    "sort", "pav" and "other" (outputs, structure, scaling; whole kernel calls
    minus the first two)."""
    return {"sort": _phase_seconds[PHASE_SORT], "pav": _phase_seconds[PHASE_PAV],
            "other": _phase_seconds[PHASE_OUT]}


cdef inline double _tick() noexcept nogil:
    return skrank_now() if _timing else 0.0


cdef inline void _tock(int phase, double since) noexcept nogil:
    # add the time since `since` to phase (and take it from PHASE_OUT, which the
    # entry points charge with their whole duration)
    cdef double dt
    if _timing:
        dt = skrank_now() - since
        _phase_seconds[phase] += dt
        if phase != PHASE_OUT:
            _phase_seconds[PHASE_OUT] -= dt

# NumPy's own sort kernels (SIMD sorting networks where the CPU has them) are the
# fastest sorts for short rows: its plain sort of packed uint64 keys up to 256
# entries, its float64 argsort a little beyond. They touch no Python object, so they
# run without the GIL inside our parallel loops. Long rows use the radix sort below.
cdef extern from *:
    """
    typedef int (*skrank_argsort_t)(void *, npy_intp *, npy_intp, void *);
    static skrank_argsort_t skrank_numpy_argsort(int typenum) {
        skrank_argsort_t f = NULL;
        PyArray_Descr *d = PyArray_DescrFromType(typenum);
        if (d != NULL && sizeof(npy_intp) == sizeof(int64_t)) {
            f = PyDataType_GetArrFuncs(d)->argsort[NPY_QUICKSORT];
        }
        Py_XDECREF(d);
        return f;
    }
    """
    ctypedef int (*skrank_argsort_t)(void*, cnp.npy_intp*, cnp.npy_intp, void*) noexcept nogil
    skrank_argsort_t skrank_numpy_argsort(int typenum)

cdef extern from *:
    """
    typedef int (*skrank_sort_t)(void *, npy_intp, void *);
    static skrank_sort_t skrank_numpy_sort(int typenum) {
        skrank_sort_t f = NULL;
        PyArray_Descr *d = PyArray_DescrFromType(typenum);
        if (d != NULL) {
            f = PyDataType_GetArrFuncs(d)->sort[NPY_QUICKSORT];
        }
        Py_XDECREF(d);
        return f;
    }
    """
    ctypedef int (*skrank_sort_t)(void*, cnp.npy_intp, void*) noexcept nogil
    skrank_sort_t skrank_numpy_sort(int typenum)

# exp over arrays, for the kl rank form (PAV's merges and the outputs read exps computed
# once per entry, design notes section 5): a polynomial exp the compiler vectorises, in
# clones for AVX-512, AVX2 and the baseline chosen at load time where GCC and glibc
# allow it (elsewhere one loop, vectorised as far as the target allows). Arguments are
# at most 0: the result is within 1 ulp of exp's, and 0 below -708 (near where exp turns
# subnormal, 1e-308 of the block's largest term).
cdef extern from *:
    """
    #include <math.h>
    #include <string.h>
    #if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__GLIBC__)
    #define SKRANK_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
    #else
    #define SKRANK_CLONES
    #endif
    static CYTHON_INLINE double skrank_exp_neg(double t) {
        /* t = k ln2 + r, |r| <= ln2 / 2 (Cody and Waite's two-part ln2), then
           exp(r) by its Taylor polynomial to degree 13 (error below 2^-60) and the
           power of two built in the exponent's bits */
        const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
        const double shifter = 6755399441055744.0;  /* 1.5 * 2^52: rounds to an integer */
        double tt = t < -708.0 ? -708.0 : t;
        double ks = tt * 1.44269504088896338700 + shifter, kf = ks - shifter;
        double r = (tt - kf * ln2_hi) - kf * ln2_lo, p, scale;
        uint64_t kb, sb, bits;
        memcpy(&kb, &ks, 8);
        memcpy(&sb, &shifter, 8);
        bits = (kb - sb + 1023) << 52;
        memcpy(&scale, &bits, 8);
        p = 1.0 / 6227020800.0;
        p = p * r + 1.0 / 479001600.0; p = p * r + 1.0 / 39916800.0;
        p = p * r + 1.0 / 3628800.0; p = p * r + 1.0 / 362880.0;
        p = p * r + 1.0 / 40320.0; p = p * r + 1.0 / 5040.0; p = p * r + 1.0 / 720.0;
        p = p * r + 1.0 / 120.0; p = p * r + 1.0 / 24.0; p = p * r + 1.0 / 6.0;
        p = p * r + 0.5; p = p * r + 1.0; p = p * r + 1.0;
        return t < -708.0 ? 0.0 : p * scale;
    }
    /* ceil(y / cell) * cell, the multiple of the power of two cell at or above y, for
       |y / cell| < 2^51: exact (y / cell rounded to an integer by the shifter, which
       vectorises where ceil does not, then one step up if that lies below y) */
    static CYTHON_INLINE double skrank_cell_ref(double y, double inv_cell, double cell) {
        const double shifter = 6755399441055744.0;
        double c = ((y * inv_cell + shifter) - shifter) * cell;
        return c < y ? c + cell : c;
    }
    /* out[i] = exp((y[i] - skrank_cell_ref(y[i])) * inv_eps) */
    SKRANK_CLONES static void skrank_cell_exps_f32(const float *y, Py_ssize_t n, double cell,
                                                  double inv_cell, double inv_eps, double *out) {
        for (Py_ssize_t i = 0; i < n; i++) {
            double v = (double)y[i];
            out[i] = skrank_exp_neg((v - skrank_cell_ref(v, inv_cell, cell)) * inv_eps);
        }
    }
    SKRANK_CLONES static void skrank_cell_exps_f64(const double *y, Py_ssize_t n, double cell,
                                                  double inv_cell, double inv_eps, double *out) {
        for (Py_ssize_t i = 0; i < n; i++)
            out[i] = skrank_exp_neg((y[i] - skrank_cell_ref(y[i], inv_cell, cell)) * inv_eps);
    }
    """
    double skrank_exp_neg(double t) nogil
    double skrank_cell_ref(double y, double inv_cell, double cell) nogil
    void skrank_cell_exps_f32(const float* y, Py_ssize_t n, double cell, double inv_cell,
                              double inv_eps, double* out) nogil
    void skrank_cell_exps_f64(const double* y, Py_ssize_t n, double cell, double inv_cell,
                              double inv_eps, double* out) nogil


def _exp_nonpositive(const double[::1] t):
    """exp of each entry of t (all <= 0, |t| < 2^100) by the kernels' exp, in the
    vector loop (one cell, reference 0) and one at a time: for the tests."""
    cdef Py_ssize_t i, n = t.shape[0]
    vector = np.empty(n)
    scalar = np.empty(n)
    cdef double[::1] v = vector, sc = scalar
    if n:
        skrank_cell_exps_f64(&t[0], n, ldexp(1.0, 150), ldexp(1.0, -150), 1.0, &v[0])
    for i in range(n):
        sc[i] = skrank_exp_neg(t[i])
    return vector, scalar


# The dtype of the structure forward and masks_forward keep (perm, start): indices
# within a row, which is at most INT32_MAX long (the kernels check)
INDEX_DTYPE = np.int32

cdef skrank_argsort_t _argsort32 = skrank_numpy_argsort(cnp.NPY_FLOAT32)
cdef skrank_argsort_t _argsort64 = skrank_numpy_argsort(cnp.NPY_FLOAT64)
# A short row is sorted as packed uint64 keys: one plain (SIMD) sort of 8-byte keys
# gives the sorted values and the permutation, where an argsort moves keys and
# indices. float32: the value's descending key above the entry's index (exact).
# float64: the key with its lowest 8 bits replaced by the index; keys that differ
# only there (values within 2^-44 relative) may come out of order, and an insertion
# pass over the exact values puts them back.
cdef skrank_sort_t _sort_u64 = skrank_numpy_sort(cnp.NPY_UINT64)

# Row lengths up to which NumPy's sorts beat the radix sort, whose fixed cost is 256
# counters per byte of key (sort phase, one thread, x86-64 with AVX-512, NumPy 2.4:
# packed keys 3 ns per entry up to 256 entries, 7-9 beyond, radix 6-7 (float32);
# float64 argsort 13.7, 14.3, 16.5, 17.9 ns per entry at 300, 384, 512, 640 entries,
# radix 15.6, 14.8, 13.6, 13.3).
cdef enum:
    PACKED_SORT_MAX = 256      # (and the float64 index fits in 8 bits)
    NUMPY_SORT_MAX_64 = 384    # float64 rows up to here: NumPy's argsort


def openmp_effective_n_threads():
    """Threads an OpenMP region would use now (follows OMP_NUM_THREADS and
    threadpoolctl limits), or 1 when built without OpenMP."""
    return skrank_max_threads()


def built_with_openmp():
    return bool(skrank_has_openmp())


def has_packed_sort():
    """Whether short rows are sorted as packed keys (NumPy's uint64 sort was found);
    otherwise they go to NumPy's argsort."""
    return _sort_u64 != NULL


cdef inline int _n_threads(Py_ssize_t n_rows, Py_ssize_t size) noexcept nogil:
    # Small batches are not worth waking a thread team for (nor timed phases).
    cdef int nt = skrank_max_threads()
    if size < 4096 or _timing:
        return 1
    if nt > n_rows:
        nt = <int>n_rows
    return nt if nt > 0 else 1


# --------------------------------------------------------------------------
# Sorting: descending order of y through an LSD radix sort of order-preserving
# integer keys (the float's bits with the sign handled), stable, O(n) passes.
# --------------------------------------------------------------------------

cdef inline uint32_t _key32(float y) noexcept nogil:
    cdef uint32_t u
    y = y + 0.0  # -0.0 -> +0.0, so the two zeros tie
    memcpy(&u, &y, 4)
    # ascending key: flip all bits of negatives, the sign bit of the others; the
    # complement turns it into a descending key: negatives keep their bits, the
    # others flip all but the sign bit (without a branch: signs are random)
    return u ^ (((u >> 31) - 1) & <uint32_t>0x7FFFFFFF)


cdef inline float _unkey32(uint32_t k) noexcept nogil:
    cdef float y
    cdef uint32_t u = ~k
    if u >> 31:
        u = u ^ <uint32_t>0x80000000
    else:
        u = ~u
    memcpy(&y, &u, 4)
    return y


cdef inline uint64_t _key64(double y) noexcept nogil:
    cdef uint64_t u
    y = y + 0.0
    memcpy(&u, &y, 8)
    return u ^ (((u >> 63) - 1) & <uint64_t>0x7FFFFFFFFFFFFFFF)


cdef inline double _unkey64(uint64_t k) noexcept nogil:
    cdef double y
    cdef uint64_t u = ~k
    if u >> 63:
        u = u ^ <uint64_t>0x8000000000000000
    else:
        u = ~u
    memcpy(&y, &u, 8)
    return y


cdef ukey* _sort_keys(ukey* k0, ukey* k1, int32_t* perm, int32_t* i1,
                      Py_ssize_t n, int64_t* hist) noexcept nogil:
    """Sort keys k0[:n] ascending; perm receives the source index of each sorted
    key. Returns the buffer (k0 or k1) that holds the sorted keys."""
    cdef Py_ssize_t i, j, pos
    cdef int b, shift, nbytes = sizeof(ukey)
    cdef ukey key
    cdef int64_t* h
    cdef int64_t total, c, first_pass = 1
    cdef ukey* ks = k0
    cdef ukey* kd = k1
    cdef int32_t* is_ = perm
    cdef int32_t* id_ = i1
    cdef ukey* kt
    cdef int32_t* it

    memset(hist, 0, nbytes * 256 * sizeof(int64_t))
    for i in range(n):
        key = k0[i]
        for b in range(nbytes):
            hist[b * 256 + <int>((key >> (8 * b)) & 255)] += 1
    for b in range(nbytes):
        h = hist + b * 256
        shift = 8 * b
        if h[<int>((k0[0] >> shift) & 255)] == n:
            continue  # every key has the same digit here: nothing to do
        total = 0
        for j in range(256):
            c = h[j]
            h[j] = total
            total += c
        if first_pass:
            for i in range(n):
                key = ks[i]
                pos = h[<int>((key >> shift) & 255)]
                h[<int>((key >> shift) & 255)] = pos + 1
                kd[pos] = key
                id_[pos] = <int32_t>i
            first_pass = 0
        else:
            for i in range(n):
                key = ks[i]
                pos = h[<int>((key >> shift) & 255)]
                h[<int>((key >> shift) & 255)] = pos + 1
                kd[pos] = key
                id_[pos] = is_[i]
        kt = ks; ks = kd; kd = kt
        it = is_; is_ = id_; id_ = it
    if first_pass:  # all keys equal (or already one digit): identity order
        for i in range(n):
            perm[i] = <int32_t>i
    elif is_ != perm:
        memcpy(perm, is_, n * sizeof(int32_t))
    return ks


cdef struct Scratch:
    # One block of memory, A = [k0 | k1 | i1 | perm], serves a row from its sort to
    # its outputs (design notes, section 15): the sort uses keys k0, k1 and index
    # buffers perm, i1; the sorted values ys then take k0's place (floats for float32
    # rows, doubles for float64), and PAV's per-block sums D take k1 (and i1 for
    # float32, whose keys are 4 bytes), while perm keeps the order for the outputs.
    # Scratch indices are int32 (rows are at most INT32_MAX long). _sort_row starts
    # and ends with a compiler barrier: memory changes type between phases. Hot
    # loops copy the array pointers they use into locals.
    char* A
    void* k0
    void* k1
    int32_t* i1
    int32_t* perm
    void* ys       # (= k0) sorted y, descending, in the row's dtype
    double* D      # (= k1) per block: sum of (y - a) (l2), or of exp(...) (kl)
    double* R      # per block: sum of w (stored weights only: not rho or top-k's)
    double* gam    # per block, p4/3 and p3/2: S2 (rank form), or the root (sort form)
    double* S3     # p4/3 rank form only: per block, third central moment
    double* tau    # p4/3 and p3/2 rank forms: per block, the root of its equation
    size_t cap     # the blocks R, gam, S3 and tau have room for: the row's length,
                   # except in the p-norm forms, where they grow as needed
                   # (_grow_blocks)
    int32_t* start
    int64_t* hist
    size_t m       # the longest row it serves (even)
    Py_ssize_t key_bytes
    int need
    bint was_kept  # taken from the kept ones (_scratch_take)


cdef enum:
    BLOCKS_START = 1024  # blocks the p-norm forms have room for at first
    RHO_CBRT_KEPT = 1 << 20  # the longest table of rho's cube roots kept between calls
    KEPT_THREADS = 64  # threads 0..63 keep a work space between calls
    SCRATCH_KEPT_ENTRIES = 1 << 21  # of rows up to 2M entries (28 bytes each at most)

cdef enum:
    # what a call's rows need beyond the common part (flags of _scratch_new)
    NEED_R = 1      # rank form with stored weights (not rho's or top-k's closed forms)
    NEED_GAM = 2    # p-norm sort and rank forms
    NEED_MOMENTS = 4  # p4/3 rank form (S3)
    NEED_TAU = 16   # p-norm rank forms
    NEED_START = 8  # PAV over whole rows (block starts); a top-k band or a sort alone
                    # needs none, which keeps their forward passes a row lighter


cdef void _scratch_free(Scratch* s) noexcept nogil:
    if s != NULL:
        free(s.A); free(s.start); free(s.hist)
        free(s.R); free(s.gam); free(s.S3); free(s.tau)
        free(s)


# Work spaces kept between calls, one per OpenMP thread number: a long
# row's work space is tens of megabytes, which the allocator returns to the system when
# a call frees it, and the next call's is then fresh pages, faulted in one by one (on a
# row of 1e6 float32 values with its structure kept, 5,800 faults, half the call). A
# call takes its thread's with an atomic exchange (two Python threads may run calls at
# once: one of them then makes its own) and gives it back the same way. One, not one
# per key size: a call that needs another frees the kept one before it makes its own,
# so a peak holds one work space per thread, as without keeping.
cdef void* _kept[KEPT_THREADS]


cdef Scratch* _scratch_take(Py_ssize_t n, Py_ssize_t key_bytes, int need) noexcept nogil:
    """This thread's kept work space if it serves rows of length n (_scratch_new's
    arguments: wider keys serve narrower ones, whose block sums take k1 alone then),
    else a new one; NULL if out of memory. Give it back with _scratch_give."""
    cdef int t = skrank_thread_num()
    cdef Scratch* s = NULL
    if 0 <= t < KEPT_THREADS:
        s = <Scratch*>skrank_exchange(&_kept[t], NULL)
        # (a p-norm work space's per-block arrays grow with its rows' blocks; the l2 and
        # kl forms with stored weights take R to be a row long)
        if s != NULL and (s.m < <size_t>n or s.key_bytes < key_bytes
                          or (s.need & need) != need
                          or (need & NEED_R and not need & NEED_GAM and s.cap < <size_t>n)):
            _scratch_free(s)
            s = NULL
    if s != NULL:
        s.was_kept = True
        return s
    return _scratch_new(n, key_bytes, need)


cdef void _scratch_give(Scratch* s, bint keep) noexcept nogil:
    """Keep s for this thread's next call (freeing the one kept before) if keep (the
    call computed derivatives: training loops call again and again) or s was kept
    before, and s is not too large; else free it. A forward pass alone frees the work
    space it made, so a function that makes more arrays after it (a loss) peaks as
    before."""
    cdef int t = skrank_thread_num()
    if (s != NULL and (keep or s.was_kept) and 0 <= t < KEPT_THREADS
            and s.m <= SCRATCH_KEPT_ENTRIES):
        s = <Scratch*>skrank_exchange(&_kept[t], <void*>s)
    _scratch_free(s)


def release_work_space():
    """Free the work spaces the kernels keep between calls (one per thread, for rows
    of up to 2M entries)."""
    cdef int t
    for t in range(KEPT_THREADS):
        _scratch_free(<Scratch*>skrank_exchange(&_kept[t], NULL))


cdef Scratch* _scratch_new(Py_ssize_t n, Py_ssize_t key_bytes, int need) noexcept nogil:
    """Per-thread work space for rows of length n whose keys take key_bytes (4 for
    float32, 8 for float64), or NULL if out of memory: 2 key_bytes + 12 bytes per
    entry (8 without start), and 8 more for each of R, gam, S3 and tau where need
    asks."""
    cdef size_t m = <size_t>((n + 1) // 2 * 2 if n > 0 else 2)  # even: D is 8-aligned
    cdef size_t kb = m * <size_t>key_bytes
    cdef Scratch* s = <Scratch*>malloc(sizeof(Scratch))
    if s == NULL:
        return NULL
    s.m = m
    s.key_bytes = key_bytes
    s.need = need
    s.was_kept = False
    s.A = <char*>malloc(2 * kb + 8 * m)
    s.k0 = <void*>s.A
    s.k1 = <void*>(s.A + kb)
    s.i1 = <int32_t*>(s.A + 2 * kb)
    s.perm = <int32_t*>(s.A + 2 * kb + 4 * m)
    s.ys = s.k0
    s.D = <double*>s.k1  # 8 m bytes: k1 (float64), or k1 and i1 (float32)
    s.start = <int32_t*>malloc(m * sizeof(int32_t)) if need & NEED_START else NULL
    s.hist = <int64_t*>malloc(8 * 256 * sizeof(int64_t))
    # the per-block arrays of the p-norm forms start small: rows usually have
    # few blocks, and untouched megabytes still cost (the allocator returns a call's
    # large frees to the system, and the next call's work space is then fresh pages,
    # about 2.5 us each to fault in on the machine measured)
    s.cap = (m if not need & (NEED_GAM | NEED_MOMENTS | NEED_TAU) else
             (m if m < BLOCKS_START else BLOCKS_START))
    s.R = <double*>malloc(s.cap * sizeof(double)) if need & NEED_R else NULL
    s.gam = <double*>malloc(s.cap * sizeof(double)) if need & NEED_GAM else NULL
    s.S3 = <double*>malloc(s.cap * sizeof(double)) if need & NEED_MOMENTS else NULL
    s.tau = <double*>malloc(s.cap * sizeof(double)) if need & NEED_TAU else NULL
    if (s.A == NULL or (need & NEED_START and s.start == NULL) or s.hist == NULL
            or (need & NEED_R and s.R == NULL) or (need & NEED_GAM and s.gam == NULL)
            or (need & NEED_MOMENTS and s.S3 == NULL)
            or (need & NEED_TAU and s.tau == NULL)):
        _scratch_free(s)
        return NULL
    return s


cdef inline int _grow(double** a, size_t cap) noexcept nogil:
    cdef void* p
    if a[0] != NULL:
        p = realloc(a[0], cap * sizeof(double))
        if p == NULL:
            return -1
        a[0] = <double*>p
    return 0


cdef int _grow_blocks(Scratch* s, Py_ssize_t nb, Py_ssize_t n) noexcept nogil:
    """Room for at least nb blocks in R, gam, S3 and tau (those allocated), doubling,
    at most n; -1 if out of memory (what was there stays valid)."""
    cdef size_t cap = s.cap
    while cap < <size_t>nb:
        cap = 2 * cap
    if cap > <size_t>n:
        cap = <size_t>n
    if (_grow(&s.R, cap) < 0 or _grow(&s.gam, cap) < 0 or _grow(&s.S3, cap) < 0
            or _grow(&s.tau, cap) < 0):
        return -1
    s.cap = cap
    return 0


cdef void _sort_row(const floating* x, Py_ssize_t n, double sign,
                    Scratch* s) noexcept nogil:
    """ys <- (sign * x) sorted descending (in k0), perm <- its source indices; timed
    as the sort phase. The packed keys and NumPy's argsort indices go to k1 (8 bytes
    per entry there), so that the values can go to k0 while they are read."""
    cdef double t0 = _tick()
    cdef Py_ssize_t i
    cdef int32_t j
    cdef int32_t* perm = s.perm
    cdef floating* ys = <floating*>s.ys
    cdef uint32_t* k32
    cdef uint64_t* k64
    cdef skrank_argsort_t argsort
    cdef uint64_t* packed
    cdef cnp.npy_intp* idx
    cdef Py_ssize_t m, numpy_max
    cdef floating v
    if floating is float:
        argsort = _argsort32
        numpy_max = PACKED_SORT_MAX
    else:
        argsort = _argsort64
        numpy_max = NUMPY_SORT_MAX_64
    skrank_phase_barrier()  # (the previous row's reads are done)
    if _sort_u64 != NULL and n <= PACKED_SORT_MAX:
        packed = <uint64_t*>s.k1
        if floating is float:
            for i in range(n):
                packed[i] = (<uint64_t>_key32(<float>(sign * x[i])) << 32) | <uint64_t>i
            _sort_u64(<void*>packed, n, NULL)
            for i in range(n):
                perm[i] = <int32_t>(<uint32_t>packed[i])
                ys[i] = _unkey32(<uint32_t>(packed[i] >> 32))
        else:
            for i in range(n):
                packed[i] = (_key64(sign * x[i]) & ~(<uint64_t>0xFF)) | <uint64_t>i
            _sort_u64(<void*>packed, n, NULL)
            for i in range(n):
                perm[i] = <int32_t>(packed[i] & 0xFF)
                ys[i] = sign * x[perm[i]]
            for i in range(1, n):  # descending by the exact values (rarely moves)
                v = ys[i]
                if v > ys[i - 1]:
                    j = perm[i]
                    m = i
                    while m > 0 and ys[m - 1] < v:
                        ys[m] = ys[m - 1]
                        perm[m] = perm[m - 1]
                        m -= 1
                    ys[m] = v
                    perm[m] = j
    elif argsort != NULL and n <= numpy_max:
        # argsort x itself (ascending); y = sign * x descending is that order for
        # sign < 0 and its reverse for sign > 0. Equal values (0.0 and -0.0
        # included) compare equal, so ties stay adjacent.
        idx = <cnp.npy_intp*>s.k1
        for i in range(n):
            idx[i] = i
        argsort(<void*>x, idx, n, NULL)
        for i in range(n):
            perm[i] = <int32_t>(idx[n - 1 - i] if sign > 0 else idx[i])
        for i in range(n):
            ys[i] = sign * x[perm[i]]
    elif floating is float:
        k32 = <uint32_t*>s.k0
        for i in range(n):
            k32[i] = _key32(<float>(sign * x[i]))
        k32 = _sort_keys(k32, <uint32_t*>s.k1, perm, s.i1, n, s.hist)
        for i in range(n):  # (in place when the keys ended in k0: same slot, same size)
            ys[i] = _unkey32(k32[i])
    else:
        k64 = <uint64_t*>s.k0
        for i in range(n):
            k64[i] = _key64(sign * x[i])
        k64 = _sort_keys(k64, <uint64_t*>s.k1, perm, s.i1, n, s.hist)
        for i in range(n):
            ys[i] = _unkey64(k64[i])
    skrank_phase_barrier()  # (before PAV writes its block sums where keys were)
    _tock(PHASE_SORT, t0)


cdef int _row_shift(const double* ys, Py_ssize_t n) noexcept nogil:
    """Power of two to divide a row by (0 when none is needed).

    The l2 block sums and the multiplied-out merge tests reach about
    4 (n + 1)^2 max|y|; rows whose values are that close to overflow, or so small
    that block means would round in subnormals, are rescaled exactly by a power
    of two (with eps, so y / eps is unchanged). Values more than ~1e300 times
    smaller than the row's largest one may then round to zero: only rows that
    span the whole float64 range are affected.
    """
    cdef double amax = fmax(fabs(ys[0]), fabs(ys[n - 1]))
    cdef double limit = 1e300 / (4.0 * (n + 1.0) * (n + 1.0))
    if amax > limit:
        return ilogb(amax) - ilogb(limit) + 1
    if 0.0 < amax < 1e-200:
        return ilogb(amax)
    return 0


# --------------------------------------------------------------------------
# PAV, rank form: P(y / eps, w). Units are groups of tied y (they always pool).
# --------------------------------------------------------------------------

cdef inline double _over_eps(double num, double eps, double inv_eps) noexcept nogil:
    # num / eps, by a multiplication unless 1 / eps overflows (subnormal eps)
    return num * inv_eps if inv_eps <= DBL_MAX else num / eps


# The rank form's weights: stored in w, or one of two closed forms that need no array
# (their sums over a block are closed forms of its bounds, and no R is stored)
cdef enum:
    WK_STORED = 0
    WK_RHO = 1     # rho = (n, ..., 1) (soft ranks)
    WK_TOPK = 2    # k ones, then zeros (soft top-k masks)


cdef inline double _wsum(int wkind, Py_ssize_t n, Py_ssize_t k, Py_ssize_t lo,
                         Py_ssize_t hi) noexcept nogil:
    """sum of w_j over j in [lo, hi) for closed-form weights, in integers (exact
    where float64 can be)."""
    cdef int64_t c, t
    if wkind == WK_RHO:  # sum of n - j
        c = hi - lo
        t = 2 * n - lo - hi + 1  # (even when c is odd)
        return <double>((c // 2) * t if c % 2 == 0 else c * (t // 2))
    return <double>((hi if hi < k else k) - (lo if lo < k else k))


cdef inline Py_ssize_t _next_unit(const floating* ys, Py_ssize_t n, Py_ssize_t i,
                                  const double* w, int wkind, Py_ssize_t topk,
                                  double* R) noexcept nogil:
    """The end of the run of values tied with ys[i] (a unit of the rank form: tied
    values always pool), and in R the sum of their weights."""
    cdef Py_ssize_t j = i + 1
    cdef double total
    if wkind != WK_STORED:
        while j < n and ys[j] == ys[i]:
            j += 1
        R[0] = _wsum(wkind, n, topk, i, j)
    else:
        total = w[i]
        while j < n and ys[j] == ys[i]:
            total += w[j]
            j += 1
        R[0] = total
    return j


cdef inline Py_ssize_t _pav_rank(Py_ssize_t n, const floating* ys, const double* w,
                                 double eps, bint kl, int wkind, Py_ssize_t topk,
                                 Scratch* s, int32_t* start) noexcept nogil:
    """Blocks of the rank-form problem; returns their number, fills start[].

    Block b holds start[b], R[b] = sum of w and D[b]: sum of (y - a) (l2) or
    E = sum of exp((y - a) / eps) (kl), a being the block's first (largest) y.
    l2 merge test gamma_L <= gamma_U on gamma_c = alpha a + (alpha D - beta R) / k,
    multiplied out; kl merge test gamma_L <= gamma_U written without logarithms
    as E_L R_U <= exp(-(a_L - a_U) / eps) E_U R_L. The top block stays in
    registers (tst, ta, tD, tR) and is written out only when a block is pushed
    above it: pooling long runs then touches no memory. With closed-form weights
    (wkind rho, or top-k with k = topk; w unused) a block's sum of w is a closed form
    of its bounds: no R is stored.
    """
    cdef double* sD = s.D
    cdef double* sR = s.R
    cdef double alpha, beta, a, D, R, d, inv_eps = 1.0 / eps
    cdef double ta = 0.0, tD = 0.0, tR = 0.0
    cdef Py_ssize_t i = 0, j, st, nb = 0, k, kL, tst = 0
    if eps < 1.0:
        alpha = 1.0; beta = eps
    else:
        alpha = 1.0 / eps; beta = 1.0
    while i < n:
        if not kl and nb == 1 and eps > 0.0:
            # one block so far (in registers), and the next units single entries: the
            # merge test and sums below with k = 1 and D = 0 (the same roundings), with
            # no block beneath to chain to. Long runs of merges (a strength that
            # pools most of a row) take this loop.
            while i + 1 < n and ys[i + 1] != ys[i]:
                a = ys[i]
                R = w[i] if wkind == WK_STORED else _wsum(wkind, n, topk, i, i + 1)
                d = <double>(i - tst)  # the block's size
                if d * (alpha * (ta - a) + beta * R) + (alpha * tD - beta * tR) > 0.0:
                    break
                tD = tD + (a - ta)
                tR = tR + R
                i += 1
        a = ys[i]  # the next unit: a group of tied values (they always pool)
        j = _next_unit(ys, n, i, w, wkind, topk, &R)
        st = i
        k = j - i
        D = <double>k if kl else 0.0
        while eps > 0.0 and nb > 0:  # merge with the top block while it violates
            if kl:
                d = _over_eps(ta - a, eps, inv_eps)
                # exp(d) >= 1 + d: most failing tests need no exponential
                if (1.0 + d) * tD * R > D * tR:
                    break
                d = exp(-d)  # in [0, 1]; 0 (far apart) means no merge
                if not (tD * R <= d * D * tR):
                    break
                D = tD + D * d
            else:
                # gamma_L <= gamma_U times k_L k_U: no division on the chain
                kL = st - tst
                if (kL * (k * alpha * (ta - a) - (alpha * D - beta * R))
                        + k * (alpha * tD - beta * tR)) > 0.0:
                    break
                D = tD + D + k * (a - ta)
                k += kL
            R += tR
            st = tst
            a = ta
            nb -= 1
            if nb > 0:  # the block below becomes the top
                tst = start[nb - 1]; tD = sD[nb - 1]; ta = ys[tst]
                tR = sR[nb - 1] if wkind == WK_STORED else _wsum(wkind, n, topk, tst, st)
        if nb > 0:  # push: write the old top out
            start[nb - 1] = <int32_t>tst; sD[nb - 1] = tD
            if wkind == WK_STORED:
                sR[nb - 1] = tR
        tst = st; ta = a; tD = D; tR = R
        nb += 1
        i = j
    if nb > 0:
        start[nb - 1] = <int32_t>tst; sD[nb - 1] = tD
        if wkind == WK_STORED:
            sR[nb - 1] = tR
    return nb


cdef bint _kl_cells(const floating* ys, Py_ssize_t n, double eps, double* cell,
                    double* inv_cell) noexcept nogil:
    """Whether the kl rank form can keep its sums per cell (_pav_rank_kl): cell, the
    power of two in (8 eps, 16 eps], its inverse and 1 / eps are normal, and
    |y| <= 2^50 cell (skrank_cell_ref is exact). Otherwise (strength 0,
    extreme y / eps) the row takes _pav_rank."""
    cdef int ex
    cdef double amax = fmax(fabs(<double>ys[0]), fabs(<double>ys[n - 1]))
    if not (eps > 0.0 and 1.0 / eps <= DBL_MAX and 16.0 * eps <= DBL_MAX):
        return False
    frexp(16.0 * eps, &ex)  # 16 eps = f 2^ex, f in [1/2, 1)
    if not (-1021 <= ex - 1 <= 1022):
        return False
    cell[0] = ldexp(1.0, ex - 1)
    inv_cell[0] = ldexp(1.0, 1 - ex)
    return amax * inv_cell[0] <= 1125899906842624.0  # 2^50


cdef Py_ssize_t _pav_rank_kl(Py_ssize_t n, const floating* ys, const double* w,
                             double eps, double cell, double inv_cell, int wkind,
                             Py_ssize_t topk, Scratch* s, int32_t* start) noexcept nogil:
    """_pav_rank's kl blocks, with one exp per entry, computed ahead in vector
    loops, instead of one per merge. A block's E is the sum of exp((y - c) / eps) over
    it, c the reference of its first value's cell (skrank_cell_ref; the entries of one
    cell lie within 16 eps below it, so no term underflows). The merge test
    E_L R_U <= E_U R_L needs no exp when both blocks start in one cell (nearly every
    test when eps is large enough for blocks to grow), else one for the pair of cells
    (kept for the next test). The entries' terms are written to D first, and a
    block's E goes to D at its first position: the terms of the other entries stay
    for the outputs (a block that pools into the one above gets its first term back,
    by one exp)."""
    cdef double* sD = s.D
    cdef double* sR = s.R
    cdef double inv_eps = 1.0 / eps, E, R, c, f
    cdef double tE = 0.0, tR = 0.0, tc = 0.0, fc_top = NAN, fc_unit = NAN, fval = 0.0
    cdef double cu = skrank_cell_ref(ys[0], inv_cell, cell)
    cdef Py_ssize_t i = 0, j, st, nb = 0, tst = 0
    if floating is float:
        skrank_cell_exps_f32(ys, n, cell, inv_cell, inv_eps, sD)
    else:
        skrank_cell_exps_f64(ys, n, cell, inv_cell, inv_eps, sD)
    while i < n:
        E = sD[i]
        if ys[i] <= cu - cell:  # (cu: the last unit's cell)
            cu = skrank_cell_ref(ys[i], inv_cell, cell)
        c = cu
        j = _next_unit(ys, n, i, w, wkind, topk, &R)
        E = E * (j - i)  # (tied values: equal terms)
        st = i
        while nb > 0:  # merge with the top block while it violates
            if tc == c:
                f = 1.0
            else:  # the current block's terms, scaled to the top's cell
                if tc != fc_top or c != fc_unit:
                    fc_top = tc; fc_unit = c
                    fval = exp((c - tc) * inv_eps)  # (c - tc exact: multiples of cell)
                f = fval
            if not (tE * R <= f * E * tR):
                break
            if st != i:  # (a unit's first term was never overwritten)
                sD[st] = skrank_exp_neg((ys[st] - c) * inv_eps)
            E = tE + f * E
            c = tc
            R += tR
            st = tst
            nb -= 1
            if nb > 0:  # the block below becomes the top
                tst = start[nb - 1]; tE = sD[tst]
                tc = skrank_cell_ref(ys[tst], inv_cell, cell)
                tR = sR[nb - 1] if wkind == WK_STORED else _wsum(wkind, n, topk, tst, st)
        if nb > 0:  # push: write the old top out
            start[nb - 1] = <int32_t>tst; sD[tst] = tE
            if wkind == WK_STORED:
                sR[nb - 1] = tR
        tst = st; tE = E; tR = R; tc = c
        nb += 1
        i = j
    if nb > 0:
        start[nb - 1] = <int32_t>tst; sD[tst] = tE
        if wkind == WK_STORED:
            sR[nb - 1] = tR
    return nb


# --------------------------------------------------------------------------
# p4/3 (design notes, section 13): a block's value v solves sum_B (z_i - v)^3 =
# sum_B w_i. Blocks keep their count k, mean, and central moments S2, S3 of z;
# v = mean + tau with tau the one real root of tau^3 + 3 (S2 / k) tau + (W - S3) / k.
# --------------------------------------------------------------------------

cdef inline double _cubic_root(double P, double Q) noexcept nogil:
    """The real root of t^3 + 3 P t + Q = 0 for P >= 0 (the cubic increases: it has
    one), by Cardano's formula in a form that cancels nothing."""
    cdef double u = 1.0, r, A, A2
    if P == 0.0 or Q == 0.0:
        return -cbrt(Q)
    if P > 1e300:  # t^3 is negligible
        return -Q / (3.0 * P)
    if P > 1e100 or fabs(Q) > 1e150:  # rescale t = u t' so P^3 and A^4 stay finite
        u = fmax(sqrt(P), cbrt(fabs(Q)))
        P = P / u / u
        Q = Q / u / u / u
    # A^3 = |Q| / 2 + sqrt(Q^2 / 4 + P^3) and B = P / A give the root
    # -sign(Q) (A - B) = -Q / (A^2 + A B + B^2) = -Q A^2 / (A^4 + P A^2 + P^2):
    # every term positive, so the root is as accurate as A (a few ulps; a Newton
    # step after it changed nothing measurable and cost a division on PAV's chain)
    r = sqrt(0.25 * Q * Q + P * P * P)
    A = cbrt(0.5 * fabs(Q) + r)
    A2 = A * A
    return u * (-Q * A2 / (A2 * (A2 + P) + P * P))


cdef inline double _cubic_root_from(double P, double Q, double t) noexcept nogil:
    """The root of t^3 + 3 P t + Q = 0 (P >= 0) by Halley steps from a guess t, or
    by _cubic_root when values are large or the steps do not settle. PAV merges
    come with a good guess (the parts' values weighted by their sizes) and one or
    two steps reach the root; cbrt alone costs about five divisions."""
    cdef double f, q, tn
    cdef int it
    if P > 1e100 or fabs(Q) > 1e150 or fabs(t) > 1e50:
        return _cubic_root(P, Q)
    for it in range(6):
        q = t * t + P  # f' / 3 (f'' = 6 t)
        f = (q + 2.0 * P) * t + Q
        tn = t - f * q / (3.0 * q * q - f * t)  # Halley: t - 2 f f' / (2 f'^2 - f f'')
        # Halley's error cubes at each step: after a step below 1e-7 of the
        # block's scale (|t| or its spread sqrt(P)) only rounding is left
        if (tn - t) * (tn - t) <= 1e-14 * (tn * tn + P):
            return tn
        t = tn
    return _cubic_root(P, Q)


cdef inline double _p43_side(double t, double k, double S2, double Q) noexcept nogil:
    """The sign of t - tau for the root tau of a block's cubic k t^3 + 3 S2 t + Q (Q =
    W - S3; it increases in t), without solving it: positive where t lies above the
    root. Where the terms could overflow, the root itself is compared."""
    if fabs(t) > 1e50 or S2 > 1e100 * k or fabs(Q) > 1e150 * k:
        return t - _cubic_root(S2 / k, Q / k)
    return (k * t * t + 3.0 * S2) * t + Q


cdef Py_ssize_t _pav_rank_p43(Py_ssize_t n, const floating* ys, const double* w,
                              const double* cw, double eps, int wkind, Py_ssize_t topk,
                              Scratch* s, int32_t* start) noexcept nogil:
    """Blocks of the p4/3 rank-form problem (z = y / eps); returns their number.

    Block b holds start[b], D[b] = mean of (y - a) (a its first y), R[b] = sum of
    w (stored weights only: closed-form weights, wkind as in _pav_rank, sum over a
    block's bounds), gam[b] = S2 and S3[b] (central moments of z) and tau[b] (v =
    mean z + tau). A unit of one entry has tau = -cbrt(w), read from cw where given
    (one table of cube roots serves a batch's rows). Returns -1 if the per-block
    arrays could not grow (out of memory). Merge test v_L <= v_U as
    (mean_L - mean_U) / eps <= tau_U - tau_L; moments combine exactly (Pebay).

    Roots are solved lazily: a merged block keeps only a guess (its parts' roots
    weighted by their sizes) until it is pushed below a new block or ends the row.
    A merge test needs one root at most: the new unit's is known (cw, or the cube root
    of its mean weight), and a block popped from the stack was solved when pushed; the
    other side is settled by the sign of its cubic at the threshold (the cubic
    increases). A run of merges into one block thus solves no cubic at all (design
    notes, section 13).
    """
    cdef double* sD = s.D
    cdef double* sR = s.R
    cdef double* sgam = s.gam
    cdef double* sS3 = s.S3
    cdef double* stau = s.tau
    cdef double a, M, R, S2, S3, tau, d, kT, kN, inv, inv_eps = 1.0 / eps
    cdef double ta = 0.0, tM = 0.0, tR = 0.0, tS2 = 0.0, tS3 = 0.0, ttau = 0.0
    cdef bint solved, tsolved = True, merge
    cdef Py_ssize_t i = 0, j, st, nb = 0, k, tst = 0
    while i < n:
        a = ys[i]  # the next unit: a group of tied values (they always pool)
        j = _next_unit(ys, n, i, w, wkind, topk, &R)
        st = i
        k = j - i
        M = 0.0; S2 = 0.0; S3 = 0.0
        tau = -cw[i] if k == 1 and cw != NULL else -cbrt(R / k)
        solved = True
        while eps > 0.0 and nb > 0:  # merge with the top block while it violates
            d = _over_eps((ta - a) + (tM - M), eps, inv_eps)  # (mean_L - mean_U) / eps
            kT = <double>(st - tst); kN = <double>k
            if solved and tsolved:
                merge = d <= tau - ttau
            elif solved:  # tau_T <= tau - d
                merge = _p43_side(tau - d, kT, tS2, tR - tS3) >= 0.0
            else:  # (a popped top is solved) tau >= tau_T + d
                merge = _p43_side(ttau + d, kN, S2, R - S3) <= 0.0
            if not merge:
                break
            inv = 1.0 / (kT + kN)
            # moments about the merged mean; the new block's mean is -d from the top's
            S3 = (tS3 + S3 - d * d * d * kT * kN * (kT - kN) * inv * inv
                  - 3.0 * d * (kT * S2 - kN * tS2) * inv)
            S2 = tS2 + S2 + d * d * kT * kN * inv
            M = tM + ((a - ta) + (M - tM)) * (kN * inv)
            R += tR
            k += st - tst
            st = tst
            a = ta
            # the merged value lies between its parts' values v_L and v_U, near
            # their size-weighted mean: relative to the merged mean, that guess is
            # (kT (tau_L + d kN / kk) + kN (tau_U - d kT / kk)) / kk
            tau = (kT * ttau + kN * tau) * inv
            solved = False
            nb -= 1
            if nb > 0:  # the block below becomes the top (solved when pushed)
                tst = start[nb - 1]; ta = ys[tst]; tM = sD[nb - 1]
                tR = sR[nb - 1] if wkind == WK_STORED else _wsum(wkind, n, topk, tst, st)
                tS2 = sgam[nb - 1]; tS3 = sS3[nb - 1]; ttau = stau[nb - 1]
                tsolved = True
        if nb > 0:  # push: write the old top out, solved
            if not tsolved:
                kT = <double>(st - tst)
                ttau = _cubic_root_from(tS2 / kT, (tR - tS3) / kT, ttau)
            if <size_t>nb > s.cap:
                if _grow_blocks(s, nb, n) < 0:
                    return -1
                sR = s.R; sgam = s.gam; sS3 = s.S3; stau = s.tau
            start[nb - 1] = <int32_t>tst; sD[nb - 1] = tM
            if wkind == WK_STORED:
                sR[nb - 1] = tR
            sgam[nb - 1] = tS2; sS3[nb - 1] = tS3; stau[nb - 1] = ttau
        tst = st; ta = a; tM = M; tR = R; tS2 = S2; tS3 = S3; ttau = tau
        tsolved = solved
        nb += 1
        i = j
    if nb > 0:
        if not tsolved:
            kT = <double>(n - tst)
            ttau = _cubic_root_from(tS2 / kT, (tR - tS3) / kT, ttau)
        if <size_t>nb > s.cap:
            if _grow_blocks(s, nb, n) < 0:
                return -1
            sR = s.R; sgam = s.gam; sS3 = s.S3; stau = s.tau
        start[nb - 1] = <int32_t>tst; sD[nb - 1] = tM
        if wkind == WK_STORED:
            sR[nb - 1] = tR
        sgam[nb - 1] = tS2; sS3[nb - 1] = tS3; stau[nb - 1] = ttau
    return nb


# --------------------------------------------------------------------------
# p3/2 (design notes, section 13): a block's value v solves sum_B phi(z_i - v) =
# sum_B w_i with phi(u) = u |u|. Rank forms have w >= 0, so every z_i - v >= 0 and
# the equation is sum_B (z_i - v)^2 = W: with the block's mean and S2 = sum (z_i -
# mean)^2, v = mean + tau, tau = -sqrt((W - S2) / k). Sort forms have z evenly
# spaced and weights of any sign: a block's equation is piecewise quadratic, each
# piece a closed form (_p32_sum).
# --------------------------------------------------------------------------

cdef inline double _p32_tau(double R, double S2, double k) noexcept nogil:
    """The root of a rank-form block (W - S2 >= 0 in exact arithmetic: 0 when
    rounding says otherwise)."""
    cdef double q = R - S2
    return -sqrt(q / k) if q > 0.0 else 0.0


cdef Py_ssize_t _pav_rank_p32(Py_ssize_t n, const floating* ys, const double* w,
                              double eps, int wkind, Py_ssize_t topk, Scratch* s,
                              int32_t* start) noexcept nogil:
    """Blocks of the p3/2 rank-form problem (z = y / eps); returns their number, or
    -1 if the per-block arrays could not grow (out of memory).

    Block b holds start[b], D[b] = mean of (y - a) (a its first y), R[b] = sum of w
    (stored weights only), gam[b] = S2 (the central second moment of z) and tau[b]
    (v = mean z + tau). A unit of k tied entries with weights summing to R has
    tau = -sqrt(R / k). Merge test v_L <= v_U as (mean_L - mean_U) / eps <= tau_U -
    tau_L, S2 combined exactly (Pebay), as _pav_rank_p43 does with one moment less.

    Roots are solved lazily, as there: a merged block's tau is taken only when it is
    pushed below a new unit or ends the row. A test needs one root at most (a new
    unit's, or that of a block popped from the stack, solved when pushed), and the
    other side is settled by squares: tau_T <= c exactly when c >= 0 or W - S2 >=
    k c^2. A run of merges into one block then has no square root or division on its
    chain of dependent operations (at strength 1 every entry of a short row merges).
    """
    cdef double* sD = s.D
    cdef double* sR = s.R
    cdef double* sgam = s.gam
    cdef double* stau = s.tau
    cdef double a, M, R, S2, tau, d, c, kT, kN, inv, inv_eps = 1.0 / eps
    cdef double ta = 0.0, tM = 0.0, tR = 0.0, tS2 = 0.0, ttau = 0.0
    cdef bint solved, tsolved = True, merge
    cdef Py_ssize_t i = 0, j, st, nb = 0, k, tst = 0
    while i < n:
        if nb == 1 and eps > 0.0:
            # one block so far (in registers), and the next units single entries: the
            # test and sums below with k = 1, M = S2 = 0 (the same roundings), with no
            # block beneath to chain to (as _pav_rank's loop of the same purpose)
            while i + 1 < n and ys[i + 1] != ys[i]:
                a = ys[i]
                R = w[i] if wkind == WK_STORED else _wsum(wkind, n, topk, i, i + 1)
                tau = -sqrt(R)
                d = _over_eps((ta - a) + tM, eps, inv_eps)
                kT = <double>(i - tst)
                if tsolved:
                    merge = d <= tau - ttau
                else:
                    c = tau - d
                    merge = c >= 0.0 or tR - tS2 >= kT * c * c
                if not merge:
                    break
                inv = 1.0 / (kT + 1.0)
                tS2 = tS2 + d * d * kT * inv
                tM = tM + ((a - ta) - tM) * inv
                tR = R + tR
                tsolved = False
                i += 1
        a = ys[i]  # the next unit: a group of tied values (they always pool)
        j = _next_unit(ys, n, i, w, wkind, topk, &R)
        st = i
        k = j - i
        M = 0.0; S2 = 0.0
        tau = -sqrt(R) if k == 1 else -sqrt(R / k)
        solved = True
        while eps > 0.0 and nb > 0:  # merge with the top block while it violates
            d = _over_eps((ta - a) + (tM - M), eps, inv_eps)  # (mean_L - mean_U) / eps
            kT = <double>(st - tst); kN = <double>k
            if solved and tsolved:
                merge = d <= tau - ttau
            elif solved:  # tau_T <= tau - d
                c = tau - d
                merge = c >= 0.0 or tR - tS2 >= kT * c * c
            else:  # (a popped top is solved) tau >= tau_T + d
                c = ttau + d
                merge = c <= 0.0 and R - S2 <= kN * c * c
            if not merge:
                break
            inv = 1.0 / (kT + kN)
            S2 = tS2 + S2 + d * d * kT * kN * inv
            M = tM + ((a - ta) + (M - tM)) * (kN * inv)
            R += tR
            k += st - tst
            st = tst
            a = ta
            solved = False
            nb -= 1
            if nb > 0:  # the block below becomes the top (solved when pushed)
                tst = start[nb - 1]; ta = ys[tst]; tM = sD[nb - 1]
                tR = sR[nb - 1] if wkind == WK_STORED else _wsum(wkind, n, topk, tst, st)
                tS2 = sgam[nb - 1]; ttau = stau[nb - 1]
                tsolved = True
        if nb > 0:  # push: write the old top out, solved
            if not tsolved:
                ttau = _p32_tau(tR, tS2, <double>(st - tst))
            if <size_t>nb > s.cap:
                if _grow_blocks(s, nb, n) < 0:
                    return -1
                sR = s.R; sgam = s.gam; stau = s.tau
            start[nb - 1] = <int32_t>tst; sD[nb - 1] = tM
            if wkind == WK_STORED:
                sR[nb - 1] = tR
            sgam[nb - 1] = tS2; stau[nb - 1] = ttau
        tst = st; ta = a; tM = M; tR = R; tS2 = S2; ttau = tau
        tsolved = solved
        nb += 1
        i = j
    if nb > 0:
        if not tsolved:
            ttau = _p32_tau(tR, tS2, <double>(n - tst))
        if <size_t>nb > s.cap:
            if _grow_blocks(s, nb, n) < 0:
                return -1
            sR = s.R; sgam = s.gam; stau = s.tau
        start[nb - 1] = <int32_t>tst; sD[nb - 1] = tM
        if wkind == WK_STORED:
            sR[nb - 1] = tR
        sgam[nb - 1] = tS2; stau[nb - 1] = ttau
    return nb


cdef inline double _p32_sum(double t, double h, double k, double* dG) noexcept nogil:
    """G(t) = sum over j < k of phi(t - j h) (phi(u) = u |u|, h > 0) in closed form,
    and its derivative 2 sum |t - j h| in dG: the p entries with t - j h >= 0 and the
    r = k - p others are each a sum of squares about their mean (a p off by one
    where t / h rounds onto an integer moves a term of about 0 across: G stays
    continuous)."""
    cdef double c, p, r, a, b, pos, neg, hh = h * h
    if t <= 0.0:
        p = 0.0
    else:
        c = t / h
        p = k if c >= k - 1.0 else floor(c) + 1.0
    r = k - p
    a = t - 0.5 * (p - 1.0) * h  # the mean of t - j h over j < p
    b = 0.5 * (p + k - 1.0) * h - t  # the mean of j h - t over j >= p
    pos = p * a * a + (p * ((p * p - 1.0) / 12.0) * hh if p > 1.0 else 0.0)
    neg = r * b * b + (r * ((r * r - 1.0) / 12.0) * hh if r > 1.0 else 0.0)
    dG[0] = 2.0 * (p * a + r * b)
    return pos - neg


cdef double _p32_sort_root(double k, double h, double W, double lo, double hi,
                           double t) noexcept nogil:
    """The t with _p32_sum(t) = W, in [lo, hi] (a merged block's root lies between
    its parts'), by Newton steps from the guess t, bisecting where a step leaves the
    bracket (G increases, convex above the block's middle and concave below).
    Above (k - 1) h every entry is positive and below 0 every one negative: there G
    is k (t - m)^2 + C or -(k (m - t)^2 + C) (m = (k - 1) h / 2, C = k (k^2 - 1) h^2 /
    12), whose root is taken in closed form, or the step goes to that end of the
    middle part when the root lies inside it. (Newton steps alone converge linearly
    there, halving t - m, when the root lies within k h << |t| of the middle: a sum
    W near 0 at a large strength.)"""
    cdef double f, dG, tn, e, m, C, top = (k - 1.0) * h
    cdef double slack = 1e-9 * (fabs(lo) + fabs(hi) + k * h)
    cdef int it
    cdef bint jump
    lo -= slack  # (the parts' roots are rounded)
    hi += slack
    for it in range(100):
        f = _p32_sum(t, h, k, &dG) - W
        if f == 0.0:
            return t
        if f > 0.0:
            hi = t
        else:
            lo = t
        jump = False
        if (t > top and f > 0.0) or (t < 0.0 and f < 0.0):
            m = 0.5 * (k - 1.0) * h
            C = k * ((k * k - 1.0) / 12.0) * (h * h)
            if f > 0.0:  # all positive: k (t - m)^2 + C = W, or t below top
                e = W - C
                tn = m + sqrt(e / k) if e >= 0.0 else top
                if tn < top:
                    tn = top
                    jump = True
            else:  # all negative: k (m - t)^2 + C = -W, or t above 0
                e = -W - C
                tn = m - sqrt(e / k) if e >= 0.0 else 0.0
                if tn > 0.0:
                    tn = 0.0
                    jump = True
        else:
            tn = t - f / dG if dG > 0.0 else 0.5 * (lo + hi)
        if not (lo <= tn <= hi):
            tn = 0.5 * (lo + hi)
            jump = False
        if not jump and fabs(tn - t) <= 1e-15 * (fabs(tn) + k * h):
            return tn
        t = tn
    return t


cdef Py_ssize_t _pav_sort_p32(Py_ssize_t n, const floating* ys, double eps, Scratch* s,
                              int32_t* start) noexcept nogil:
    """Blocks of the p3/2 sort-form problem (z = rho / eps, weights y); returns
    their number, or -1 if out of memory. Block b holds start[b], D[b] = sum of
    (y - a) and gam[b] = t = z_first - v, the first entry's z - v; entry j of the
    block then has z - v = t - j h (h = 1 / eps). A single entry's t is sign(y)
    sqrt(|y|). Merge test v_L <= v_U as t_L - t_U >= k_L h.
    """
    cdef double* sD = s.D
    cdef double* sgam = s.gam
    cdef double a, D, t, kd, g, gap, h = 1.0 / eps
    cdef double ta = 0.0, tD = 0.0, tt = 0.0
    cdef Py_ssize_t i, st, nb = 0, tst = 0
    if h > DBL_MAX:  # (subnormal eps: nothing pools)
        h = DBL_MAX
    for i in range(n):
        st = i
        a = ys[i]
        D = 0.0
        t = copysign(sqrt(fabs(a)), a)
        while nb > 0:  # merge with the top block while it violates
            gap = (st - tst) * h
            if not (tt - t >= gap):
                break
            D = tD + D + (i + 1 - st) * (a - ta)
            kd = <double>(i + 1 - tst)
            # the guess: the parts' roots (relative to the merged block's first
            # entry) weighted by their sizes
            g = ((st - tst) * tt + (i + 1 - st) * (t + gap)) / kd
            t = _p32_sort_root(kd, h, kd * ta + D, t + gap, tt, g)
            st = tst
            a = ta
            nb -= 1
            if nb > 0:  # the block below becomes the top
                tst = start[nb - 1]; tD = sD[nb - 1]; tt = sgam[nb - 1]; ta = ys[tst]
        if nb > 0:  # push: write the old top out
            if _keep_sort_block(s, nb, n, start, tst, tD, tt) < 0:
                return -1
            sgam = s.gam  # (it may have grown)
        tst = st; ta = a; tD = D; tt = t
        nb += 1
    if nb > 0 and _keep_sort_block(s, nb, n, start, tst, tD, tt) < 0:
        return -1
    return nb


cdef int _scale_row(floating* ys, Py_ssize_t n) noexcept nogil:
    """Rescale the sorted l2 row by 2^-e when _row_shift asks; returns e. float32
    rows never need it: their values lie far inside both of its limits."""
    cdef Py_ssize_t i
    cdef int e
    if floating is float:
        return 0
    else:
        e = _row_shift(ys, n)
        if e != 0:
            for i in range(n):
                ys[i] = ldexp(ys[i], -e)
        return e


cdef Py_ssize_t _rank_sorted(Py_ssize_t n, double eps, int e, const double* w,
                             Py_ssize_t topk, const double* cw, int reg, Scratch* s,
                             floating* out) noexcept nogil:
    """PAV and outputs of the rank form for a row already in s.ys (sorted, and
    divided by 2^e): P(y / eps, w) = P((y / 2^e) / (eps / 2^e), w). w = NULL means
    closed-form weights: k = topk ones then zeros where topk >= 0, else rho. cw: the
    cube roots of the weights (p4/3), or NULL (computed per entry). Returns the
    number of blocks (their starts in s.start), or -1 if out of memory."""
    cdef double* sD = s.D
    cdef double* sR
    cdef double* sgam
    cdef double* stau
    cdef int32_t* sstart = s.start
    cdef Py_ssize_t b, i, st, en, nb
    cdef double a, mD, mR, R, v, scale, lo, hi, inv_eps, t0, ci, fi = 0.0
    cdef const floating* ys = <const floating*>s.ys
    cdef const int32_t* perm = s.perm
    cdef int wkind = WK_STORED if w != NULL else (WK_TOPK if topk >= 0 else WK_RHO)
    cdef double cell = 0.0, inv_cell = 0.0
    cdef bint cells
    if e != 0:
        eps = fmin(ldexp(eps, -e), DBL_MAX)
    inv_eps = 1.0 / eps
    t0 = _tick()
    cells = reg == REG_KL and n > 0 and _kl_cells(ys, n, eps, &cell, &inv_cell)
    if reg == REG_P43:
        nb = _pav_rank_p43(n, ys, w, cw, eps, wkind, topk, s, s.start)
    elif reg == REG_P32:
        nb = _pav_rank_p32(n, ys, w, eps, wkind, topk, s, s.start)
    elif reg == REG_L2:  # (inlined with kl a constant, l2 gets loops of its own: 7% faster)
        if wkind == WK_RHO:
            nb = _pav_rank(n, ys, w, eps, False, WK_RHO, 0, s, s.start)
        elif wkind == WK_TOPK:
            nb = _pav_rank(n, ys, w, eps, False, WK_TOPK, topk, s, s.start)
        else:
            nb = _pav_rank(n, ys, w, eps, False, WK_STORED, 0, s, s.start)
    elif cells:
        nb = _pav_rank_kl(n, ys, w, eps, cell, inv_cell, wkind, topk, s, s.start)
    else:  # kl off the cells' range: an exp per merge
        nb = _pav_rank(n, ys, w, eps, True, wkind, topk, s, s.start)
    _tock(PHASE_PAV, t0)
    if nb < 0:  # (out of memory)
        return -1
    sR = s.R; sgam = s.gam; stau = s.tau  # (PAV may have moved them)
    if wkind == WK_STORED:
        lo, hi = w[n - 1], w[0]
    else:
        lo, hi = _wsum(wkind, n, topk, n - 1, n), _wsum(wkind, n, topk, 0, 1)
    for b in range(nb):
        st = sstart[b]
        en = sstart[b + 1] if b + 1 < nb else n
        a = ys[st]
        R = sR[b] if wkind == WK_STORED else _wsum(wkind, n, topk, st, en)
        if en - st == 1:  # exact for singletons
            out[perm[st]] = <floating>R
            continue
        mR = R / (en - st)
        if eps == 0.0:  # hard rank: tied entries share their mean weight
            for i in range(st, en):
                out[perm[i]] = <floating>mR
        elif reg == REG_P43 or reg == REG_P32:
            # (z_i - v)^3 or (z_i - v)^2, z_i - v = (y_i - mean_B y) / eps - tau
            if sgam[b] == 0.0:  # tied: exactly the mean weight
                mR = lo if mR < lo else (hi if mR > hi else mR)
                for i in range(st, en):
                    out[perm[i]] = <floating>mR
                continue
            for i in range(st, en):
                v = _over_eps((ys[i] - a) - sD[b], eps, inv_eps) - stau[b]
                v = v * v * v if reg == REG_P43 else v * v
                out[perm[i]] = <floating>(lo if v < lo else (hi if v > hi else v))
        elif cells:  # softmax(y_B / eps)_i * sum(w_B) from PAV's terms (_pav_rank_kl)
            if ys[en - 1] == a:  # tied: exactly the mean weight
                mR = lo if mR < lo else (hi if mR > hi else mR)
                for i in range(st, en):
                    out[perm[i]] = <floating>mR
                continue
            scale = R / sD[st]
            a = skrank_cell_ref(a, inv_cell, cell)  # the block's cell
            v = skrank_exp_neg((ys[st] - a) * inv_eps) * scale
            out[perm[st]] = <floating>(lo if v < lo else (hi if v > hi else v))
            ci = a
            for i in range(st + 1, en):
                if ys[i] <= ci - cell:  # into a lower cell: its terms' scale
                    ci = skrank_cell_ref(ys[i], inv_cell, cell)
                    fi = scale * exp((ci - a) * inv_eps)
                v = sD[i] * (scale if ci == a else fi)
                out[perm[i]] = <floating>(lo if v < lo else (hi if v > hi else v))
        elif reg == REG_KL:
            scale = R / sD[b]
            for i in range(st, en):
                v = exp(_over_eps(ys[i] - a, eps, inv_eps)) * scale
                out[perm[i]] = <floating>(lo if v < lo else (hi if v > hi else v))
        else:
            mD = sD[b] / (en - st)
            for i in range(st, en):
                out[perm[i]] = <floating>_l2_value(ys[i] - a, mD, mR, eps, inv_eps, lo, hi)
    return nb


cdef inline double _l2_value(double ya, double mD, double mR, double eps, double inv_eps,
                             double lo, double hi) noexcept nogil:
    # an l2 rank form's output in a block: (y_i - mean_B y) / eps + mean_B w, from
    # ya = y_i - a, clipped to the weights' range
    cdef double v = _over_eps(ya - mD, eps, inv_eps) + mR
    return lo if v < lo else (hi if v > hi else v)


cdef struct Band:
    # An l2 top-k mask of a sorted row, in O(1) (design notes, section 15): its only
    # block with weights 1 and 0 holds positions k - 1 and k; every other block is a
    # singleton or ties under equal weights, whose outputs are their weights. So the
    # mask is 1 before st, 0 from en on, and the block's values in [st, en)
    # (st = en = k where no block straddles k). Its Jacobian (1 / eps) (I - 1 1^T / |B|)
    # is zero outside the block too (flat blocks split, as _split_flat_blocks does).
    Py_ssize_t k, st, en
    double a, mD, mR, eps, inv_eps, lo, hi  # _l2_value's (eps divided by 2^e)
    # derivatives (_band_moments): the framed row's mean over the block, 1 / scale,
    # the strength, and <J x, x> in x's units
    double mean, jf, geps, inv_geps, xjx


cdef inline bint _l2_pools(Py_ssize_t kL, double ta, double tD, double tR, Py_ssize_t k,
                           double a, double D, double R, double alpha,
                           double beta) noexcept nogil:
    # _pav_rank's l2 merge test: the block (kL entries from ta, tD, tR) above one of
    # k entries (a, D, R) violates the order and pools with it
    return not ((kL * (k * alpha * (ta - a) - (alpha * D - beta * R))
                 + k * (alpha * tD - beta * tR)) > 0.0)


cdef inline void _pool_above(const floating* ys, Py_ssize_t n, Py_ssize_t k, double alpha,
                             double beta, Py_ssize_t* st, Py_ssize_t en, double* a,
                             double* D) noexcept nogil:
    # pool the block [st, en) (first value a, sum D of y - a) with the units above it
    # while they violate the order, as PAV's stack does when the block is pushed
    cdef Py_ssize_t up
    while st[0] > 0:
        up = st[0] - 1  # the unit above: the run of ties ending at st
        while up > 0 and ys[up - 1] == ys[st[0] - 1]:
            up -= 1
        if not _l2_pools(st[0] - up, ys[up], 0.0, _wsum(WK_TOPK, n, k, up, st[0]),
                         en - st[0], a[0], D[0], _wsum(WK_TOPK, n, k, st[0], en), alpha,
                         beta):
            return
        D[0] = 0.0 + D[0] + (en - st[0]) * (a[0] - ys[up])
        st[0] = up
        a[0] = ys[up]


cdef void _topk_band(const floating* ys, Py_ssize_t n, double eps, int e, Py_ssize_t k,
                     Band* B) noexcept nogil:
    """The l2 top-k mask of a sorted row ys (divided by 2^e), as a band, in O(its
    block): PAV's units (runs of ties) away from k never pool with each other (equal
    weights, decreasing values), so its one straddling block grows from the unit at
    k - 1, in PAV's own order: each unit below joins it while the two violate the
    order, and then the units above join it while they do. The block sums are PAV's,
    bit for bit."""
    cdef Py_ssize_t st, en, nx, kB
    cdef double a, D, alpha, beta
    B.k = k
    B.st = B.en = 0 if k < 0 else (k if k < n else n)
    B.eps = fmin(ldexp(eps, -e), DBL_MAX) if e != 0 else eps
    B.inv_eps = 1.0 / B.eps
    B.lo = _wsum(WK_TOPK, n, k, n - 1, n)
    B.hi = _wsum(WK_TOPK, n, k, 0, 1)
    B.geps = 0.0
    B.xjx = 0.0
    if k <= 0 or k >= n:  # a constant mask: no block holds both weights
        return
    st = k - 1  # the unit at k - 1: its run of ties
    while st > 0 and ys[st - 1] == ys[k - 1]:
        st -= 1
    en = k
    while en < n and ys[en] == ys[k - 1]:
        en += 1
    a = ys[st]
    D = 0.0
    if B.eps > 0.0:
        if B.eps < 1.0:
            alpha = 1.0; beta = B.eps
        else:
            alpha = 1.0 / B.eps; beta = 1.0
        _pool_above(ys, n, k, alpha, beta, &st, en, &a, &D)
        while en < n:  # the unit below, [en, nx)
            nx = en + 1
            while nx < n and ys[nx] == ys[en]:
                nx += 1
            if not _l2_pools(en - st, a, D, _wsum(WK_TOPK, n, k, st, en), nx - en,
                             ys[en], 0.0, _wsum(WK_TOPK, n, k, en, nx), alpha, beta):
                break  # (and no later unit can reach the block)
            D = D + 0.0 + (nx - en) * (ys[en] - a)
            en = nx
            _pool_above(ys, n, k, alpha, beta, &st, en, &a, &D)
    if en > k:  # (st < k: the block holds both weights)
        B.st = st
        B.en = en
        kB = en - st
        B.mR = _wsum(WK_TOPK, n, k, st, en) / kB
        B.mD = D / kB
        B.a = a


cdef inline floating _band_value(const Band* B, const floating* ys,
                                 Py_ssize_t i) noexcept nogil:
    # the mask at sorted position i, in the row's dtype (as _rank_sorted writes it)
    if i < B.st:
        return 1
    if i >= B.en:
        return 0
    if B.eps == 0.0:  # hard: tied entries share their mean weight
        return <floating>B.mR
    return <floating>_l2_value(ys[i] - B.a, B.mD, B.mR, B.eps, B.inv_eps, B.lo, B.hi)


cdef Py_ssize_t _band_out(const Band* B, const floating* ys, const int32_t* perm,
                          Py_ssize_t n, floating* out) noexcept nogil:
    """The band's mask aligned with x, as _rank_sorted writes it; returns PAV's number
    of blocks (the band, and the runs of ties outside it)."""
    cdef Py_ssize_t i, nb = 1 if B.en > B.st else 0
    for i in range(B.st):
        out[perm[i]] = 1
        nb += i == 0 or ys[i] != ys[i - 1]
    for i in range(B.st, B.en):
        out[perm[i]] = _band_value(B, ys, i)
    for i in range(B.en, n):
        out[perm[i]] = 0
        nb += i == B.en or ys[i] != ys[i - 1]
    return nb


cdef inline double _framed(const floating* ys, const floating* x, const int32_t* perm,
                           int e, double scale, double c, Py_ssize_t i) noexcept nogil:
    # the framed value x * scale - c at sorted position i; a rescaled row (e != 0) may
    # have lost its smallest values' digits, so it reads them from x through perm
    return (ys[i] if e == 0 else x[perm[i]]) * scale - c


cdef void _band_moments(Band* B, const floating* ys, const floating* x, const int32_t* perm,
                        int e, double scale, double c, double eps) noexcept nogil:
    """What the band's Jacobian needs: J x = (x_i - mean) / eps over the block (in the
    frame, divided by scale), and <J x, x> = sum (x_i - mean)^2 / eps in x's units
    (J x sums to 0 over the block, so the squares are the same sum with the spread's
    digits)."""
    cdef Py_ssize_t i
    cdef double total = 0.0, v, share, f0
    B.jf = 1.0 / scale
    if eps == 0.0 or B.en - B.st < 2:
        return  # (geps 0: no Jacobian)
    B.geps = eps
    B.inv_geps = 1.0 / eps
    # the mean about the block's first value: exact for a run of ties (J x is then
    # exactly 0, however small eps), and shares keep partial sums in the row's range
    share = 1.0 / (B.en - B.st)
    f0 = _framed(ys, x, perm, e, scale, c, B.st)
    for i in range(B.st + 1, B.en):
        total += (_framed(ys, x, perm, e, scale, c, i) - f0) * share
    B.mean = f0 + total
    total = 0.0
    for i in range(B.st, B.en):  # (each square divided by eps as it is formed: a
        # spread near the float64 limit at a strength as large stays finite)
        v = (_framed(ys, x, perm, e, scale, c, i) - B.mean) * B.jf
        total += v * _over_eps(v, eps, B.inv_geps)
    B.xjx = total


cdef inline double _band_jx(const Band* B, Py_ssize_t i, double xc) noexcept nogil:
    # (J x)_i from the framed value xc at sorted position i
    if B.geps == 0.0 or i < B.st or i >= B.en:
        return 0.0
    return _over_eps((xc - B.mean) * B.jf, B.geps, B.inv_geps)


cdef inline void _keep_order(const Scratch* s, Py_ssize_t n, int32_t* perm) noexcept nogil:
    # the row's sorting permutation, into the caller's structure (int32, as the
    # scratch's: indices within a row, which is at most INT32_MAX long)
    memcpy(perm, s.perm, n * sizeof(int32_t))


cdef inline void _keep_blocks(const Scratch* s, Py_ssize_t nb, int32_t* start,
                              int64_t* nblocks) noexcept nogil:
    memcpy(start, s.start, nb * sizeof(int32_t))
    nblocks[0] = nb


cdef Py_ssize_t _rank_row(const floating* x, Py_ssize_t n, double sign, double eps,
                          const double* w, const double* cw, int reg, Scratch* s,
                          floating* out) noexcept nogil:
    _sort_row(x, n, sign, s)
    # rows near the float64 limits are rescaled (never at strength 0: exact); the rank
    # form depends on y / eps only, so this holds for kl as well (where y_1 - y_n
    # would overflow otherwise)
    return _rank_sorted(n, eps, _scale_row(<floating*>s.ys, n) if eps > 0.0 else 0,
                        w, -1, cw, reg, s, out)


# --------------------------------------------------------------------------
# PAV, sort form: P(rho / eps, y). Units are single entries.
# --------------------------------------------------------------------------

cdef inline double _log_geo(double k, double eps) noexcept nogil:
    # log sum_{j<k} exp(-j / eps) = log(1 - e^{-k/eps}) - log(1 - e^{-1/eps})
    return log(-expm1(-k / eps)) - log(-expm1(-1.0 / eps))


cdef Py_ssize_t _pav_sort(Py_ssize_t n, const floating* ys, double eps, bint kl,
                          Scratch* s, int32_t* start) noexcept nogil:
    """Blocks of the sort-form problem; returns their number, fills start[].

    Block b holds start[b] and D[b]: sum of (y - a) (l2) or E = sum of exp(y - a)
    (kl), a being the block's first (largest) y. l2 merge test gamma_L <= gamma_U
    on gamma_c = alpha mean(rho_B) - beta mean(y_B), multiplied out; kl merge test
    gamma_L <= gamma_U written with G(k) = 1 - exp(-k / eps), as
    G(k_L) E_U exp(k_L / eps + a_U - a_L) <= G(k_U) E_L (an overflow: no merge). G is
    a function of a block's size: the top block keeps it, and a block popped from the
    stack gets it again (G1 for a single entry; no per-block array).
    The top block stays in registers, as in _pav_rank.
    """
    cdef double* sD = s.D
    cdef double alpha, beta, a, D, g, G, G1, inv_eps = 1.0 / eps
    cdef double ta = 0.0, tD = 0.0, tG = 0.0
    cdef Py_ssize_t i, st, nb = 0, kL, kU, tst = 0
    if eps == 0.0:  # hard sort: every entry is its own block
        for i in range(n):
            start[i] = <int32_t>i
            sD[i] = 1.0 if kl else 0.0
        return n
    if eps < 1.0:
        alpha = 1.0; beta = eps
    else:
        alpha = 1.0 / eps; beta = 1.0
    G1 = -expm1(-inv_eps) if inv_eps <= DBL_MAX else 1.0
    i = 0
    while i < n:
        if not kl and nb == 1:
            # one block so far, in registers: its merges with single entries, with
            # k_U = 1 and D = 0 in the test and sums below (the same roundings), as
            # _pav_rank's loop of merges into one block
            while i < n:
                a = ys[i]
                g = <double>(i - tst)
                if g * (alpha * 0.5 * (g + 1.0) - beta * (ta - a)) - beta * tD > 0.0:
                    break
                tD = tD + (a - ta)
                i += 1
            if i == n:
                break
        st = i
        a = ys[i]
        D = 1.0 if kl else 0.0
        G = G1
        while nb > 0:  # merge with the top block while it violates
            kL = st - tst
            if kl:
                g = _over_eps(kL, eps, inv_eps) + (a - ta)
                # exp(g) >= 1 + g: most failing tests need no exponential
                if tG * D * (1.0 + g) > G * tD:
                    break
                if not (tG * D * exp(g) <= G * tD):
                    break
                D = tD + D * exp(a - ta)
                G = -expm1(-_over_eps(i + 1 - tst, eps, inv_eps))
            else:
                # gamma_L <= gamma_U times k_L k_U (mean rho_L - mean rho_U is
                # (k_L + k_U) / 2): no division on the chain
                kU = i + 1 - st
                if (<double>kL * kU * (alpha * 0.5 * (kL + kU) - beta * (ta - a))
                        - beta * (kU * tD - kL * D)) > 0.0:
                    break
                D = tD + D + kU * (a - ta)
            st = tst
            a = ta
            nb -= 1
            if nb > 0:  # the block below becomes the top
                tst = start[nb - 1]; tD = sD[nb - 1]; ta = ys[tst]
                if kl:  # (its G, as computed when it was formed)
                    tG = G1 if st - tst == 1 else -expm1(-_over_eps(st - tst, eps, inv_eps))
        if nb > 0:  # push: write the old top out
            start[nb - 1] = <int32_t>tst; sD[nb - 1] = tD
        tst = st; ta = a; tD = D; tG = G
        nb += 1
        i += 1
    if nb > 0:
        start[nb - 1] = <int32_t>tst; sD[nb - 1] = tD
    return nb


cdef inline int _keep_sort_block(Scratch* s, Py_ssize_t nb, Py_ssize_t n, int32_t* start,
                                 Py_ssize_t tst, double tD, double root) noexcept nogil:
    """Write block nb - 1 of a p-norm sort form (its start, D and root, in gam),
    growing the per-block arrays as needed; -1 if out of memory."""
    if <size_t>nb > s.cap and _grow_blocks(s, nb, n) < 0:
        return -1
    start[nb - 1] = <int32_t>tst; s.D[nb - 1] = tD; s.gam[nb - 1] = root
    return 0


cdef Py_ssize_t _pav_sort_p43(Py_ssize_t n, const floating* ys, double eps, Scratch* s,
                              int32_t* start) noexcept nogil:
    """Blocks of the p4/3 sort-form problem (z = rho / eps, weights y); returns
    their number. Block b holds start[b], D[b] = sum of (y - a) and gam[b] = tau
    (NaN for a single entry whose root no test needed yet).
    z is evenly spaced, so a block's central moments are closed forms: S3 = 0 and
    S2 / k = (k^2 - 1) / (12 eps^2). Merge test v_L <= v_U as
    (k_L + k_U) / (2 eps) <= tau_U - tau_L. The top block stays in registers.
    """
    cdef double* sD = s.D
    cdef double* sgam = s.gam
    cdef double a, D, tau, kd, g, gap, t, inv_eps = 1.0 / eps
    cdef double ta = 0.0, tD = 0.0, ttau = 0.0
    cdef Py_ssize_t i, st, nb = 0, tst = 0
    for i in range(n):
        st = i
        a = ys[i]
        D = 0.0
        tau = NAN  # a single entry's root, -cbrt(y), is found only when a test needs it
        while nb > 0:  # merge with the top block while it violates
            gap = _over_eps(0.5 * (i + 1 - tst), eps, inv_eps)
            if isnan(tau) and isnan(ttau):
                # two single entries: cbrt(a_L) - cbrt(a) <= 2^(2/3) cbrt(a_L - a),
                # so no merge when 4 (a_L - a) < gap^3 (most rows, most entries)
                if 4.0 * (ta - a) < gap * gap * gap:
                    break
                ttau = -cbrt(ta)
            # one root is known: the test gap <= tau - ttau compares the other
            # entry's y with a cube (cubes increase), so a root is taken only for
            # a merge; a root found for a test no longer forces one on the next
            if isnan(tau):  # -cbrt(a) >= ttau + gap
                t = ttau + gap
                if not (a <= -(t * t * t)):
                    break
                tau = -cbrt(a)
            elif isnan(ttau):  # -cbrt(a_L) <= tau - gap
                t = tau - gap
                if not (ta >= -(t * t * t)):
                    break
                ttau = -cbrt(ta)
            elif not (gap <= tau - ttau):
                break
            D = tD + D + (i + 1 - st) * (a - ta)
            kd = <double>(i + 1 - tst)
            # the guess: the parts' roots weighted by their sizes (as _pav_rank_p43)
            g = ((st - tst) * ttau + (i + 1 - st) * tau) / kd
            st = tst
            a = ta
            tau = _cubic_root_from(
                _over_eps(_over_eps((kd * kd - 1.0) / 12.0, eps, inv_eps), eps, inv_eps),
                a + D / kd, g)
            nb -= 1
            if nb > 0:  # the block below becomes the top
                tst = start[nb - 1]; tD = sD[nb - 1]; ttau = sgam[nb - 1]; ta = ys[tst]
        if nb > 0:  # push: write the old top out
            if _keep_sort_block(s, nb, n, start, tst, tD, ttau) < 0:
                return -1
            sgam = s.gam  # (it may have grown)
        tst = st; ta = a; tD = D; ttau = tau
        nb += 1
    if nb > 0 and _keep_sort_block(s, nb, n, start, tst, tD, ttau) < 0:
        return -1
    return nb


cdef int _shift_pnorm(floating* ys, Py_ssize_t n, int q) noexcept nogil:
    """As _scale_row, by a power of two 2^e with e a multiple of q = 3 (p4/3) or 2
    (p3/2): P(rho / eps, y) = 2^e P(rho / (eps 2^(e/q)), y / 2^e), the outputs being
    q-th powers."""
    cdef Py_ssize_t i
    cdef int e
    if floating is float:
        return 0
    else:
        e = _row_shift(ys, n)
        if e > 0:
            e = q * ((e + q - 1) // q)
        elif e < 0:
            e = -q * ((q - 1 - e) // q)
        if e != 0:
            for i in range(n):
                ys[i] = ldexp(ys[i], -e)
        return e


cdef Py_ssize_t _sort_row_op(const floating* x, Py_ssize_t n, double sign, double eps,
                             int reg, Scratch* s, floating* out) noexcept nogil:
    """The sort form of one row into out; returns the number of blocks (their starts
    in s.start, the order in s.perm), or -1 if out of memory."""
    cdef double* sD = s.D
    cdef double* sgam
    cdef Py_ssize_t b, i, st, en, nb
    cdef int e, q
    cdef bint kl = reg == REG_KL
    cdef double a, k, mrho, base, v, lo, hi, inv_eps = 1.0 / eps, t0
    cdef floating* ys = <floating*>s.ys
    cdef const int32_t* perm = s.perm
    cdef const int32_t* start = s.start
    _sort_row(x, n, sign, s)
    e = 0
    if reg == REG_L2 and eps > 0.0:  # P(rho / eps, y) = 2^e P(rho / (eps 2^e), y / 2^e)
        e = _scale_row(ys, n)
        if e != 0:
            eps = fmin(ldexp(eps, e), DBL_MAX)
            inv_eps = 1.0 / eps
    elif (reg == REG_P43 or reg == REG_P32) and eps > 0.0:
        q = 3 if reg == REG_P43 else 2  # (the outputs are q-th powers)
        e = _shift_pnorm(ys, n, q)
        if e != 0:
            eps = fmin(ldexp(eps, e // q), DBL_MAX)
            inv_eps = 1.0 / eps
    t0 = _tick()
    if reg == REG_P43 and eps > 0.0:
        nb = _pav_sort_p43(n, ys, eps, s, s.start)
    elif reg == REG_P32 and eps > 0.0:
        nb = _pav_sort_p32(n, ys, eps, s, s.start)
    else:
        nb = _pav_sort(n, ys, eps, kl, s, s.start)
    _tock(PHASE_PAV, t0)
    if nb < 0:
        return -1
    sgam = s.gam  # (PAV may have moved it)
    lo = ys[n - 1]
    hi = ys[0]
    for b in range(nb):
        st = start[b]
        en = start[b + 1] if b + 1 < nb else n
        a = ys[st]
        k = <double>(en - st)
        if en - st == 1:  # a singleton keeps its input value exactly
            out[st] = x[perm[st]]
            continue
        if reg == REG_P43:  # (z_i - v)^3, z_i - v = (mean_B rho - rho_i) / eps - tau
            mrho = 0.5 * (st + en - 1)
            for i in range(st, en):
                v = _over_eps(mrho - i, eps, inv_eps) - sgam[b]
                v = v * v * v
                v = lo if v < lo else (hi if v > hi else v)
                out[i] = <floating>(sign * (v if e == 0 else ldexp(v, e)))
        elif reg == REG_P32:  # phi(z_i - v), z_i - v = t - (i - st) / eps
            for i in range(st, en):
                v = sgam[b] - _over_eps(i - st, eps, inv_eps)
                v = v * fabs(v)
                v = lo if v < lo else (hi if v > hi else v)
                out[i] = <floating>(sign * (v if e == 0 else ldexp(v, e)))
        elif kl:  # log_softmax(rho_B / eps)_i + logsumexp(y_B)
            base = a + log(sD[b]) - _log_geo(k, eps)
            for i in range(st, en):
                v = base - _over_eps(i - st, eps, inv_eps)
                out[i] = <floating>(sign * (lo if v < lo else (hi if v > hi else v)))
        else:  # (rho_i - mean_B rho) / eps + mean_B y
            mrho = 0.5 * (st + en - 1)
            base = a + sD[b] / k
            for i in range(st, en):
                v = _over_eps(mrho - i, eps, inv_eps) + base
                v = lo if v < lo else (hi if v > hi else v)
                out[i] = <floating>(sign * (v if e == 0 else ldexp(v, e)))
    return nb


# --------------------------------------------------------------------------
# Python entry points. All arguments are validated by the caller; rows have
# n >= 1 entries (the caller returns early on empty input).
# --------------------------------------------------------------------------

cdef enum:
    W_PREFIX = 0
    W_SUFFIX = 1
    W_ALIGNED = 2
    W_RHO = 3  # rho = (m, ..., 1) for a row of length m, never stored (w is None)

# the same layouts for Python callers
WEIGHTS_PREFIX, WEIGHTS_SUFFIX, WEIGHTS_ALIGNED, WEIGHTS_RHO = (W_PREFIX, W_SUFFIX,
                                                                W_ALIGNED, W_RHO)


cdef Py_ssize_t _longest_row(const int64_t[::1] offsets) except -1:
    """The longest row's length; rows longer than INT32_MAX are refused (the
    kernels' scratch indices are int32)."""
    cdef Py_ssize_t r, longest = 0
    for r in range(offsets.shape[0] - 1):
        if offsets[r + 1] - offsets[r] > longest:
            longest = offsets[r + 1] - offsets[r]
    if longest > INT32_MAX:
        raise ValueError(f"rows of more than {INT32_MAX} entries are not supported; "
                         f"got a row of {longest}.")
    return longest


_rho_cbrt = np.zeros(0)  # cbrt(N, ..., 1) for the longest row so far, up to RHO_CBRT_KEPT


def _rho_cube_roots(Py_ssize_t n):
    """cbrt(n, ..., 1), rho's cube roots (a row of length m reads the last m), from
    NumPy's vectorised cbrt (several times faster than libm's, entry by entry). Kept
    between calls for rows of up to RHO_CBRT_KEPT entries (8 MB): a long row's p4/3
    rank form would otherwise compute it, in fresh memory, at each call."""
    global _rho_cbrt
    cdef object table = _rho_cbrt
    if table.shape[0] >= n:
        return table[table.shape[0] - n:]
    table = np.arange(n, 0, -1, dtype=np.float64)
    np.cbrt(table, out=table)
    if n <= RHO_CBRT_KEPT:
        _rho_cbrt = table
    return table


def _cube_roots(w, int reg):
    """cbrt(w) for the p4/3 rank form (a one-entry block's root), computed once per
    call for every row; None otherwise (and without stored weights)."""
    if reg != REG_P43 or w is None:
        return None
    return np.ascontiguousarray(np.cbrt(w), dtype=np.float64)


def forward(const floating[::1] X, const int64_t[::1] offsets, const double[::1] eps,
            const double[::1] w, int w_layout, double sign, int reg, bint sort_form,
            floating[::1] out, int32_t[::1] perm=None, int32_t[::1] start=None,
            int64_t[::1] nblocks=None):
    """Soft operator on every row of X, written to out.

    Row r is X[offsets[r]:offsets[r + 1]] (rows may differ in length; a 2-D
    C-contiguous batch is the flat array with evenly spaced offsets).
    reg is L2, KL, P43 or P32 (the regularisation; True and False mean KL and L2).
    Rank form (sort_form=False): P(sign * x / eps, w), aligned with x, for w
    descending within each row. w_layout says which entries of w a row of
    length m uses: WEIGHTS_PREFIX the first m (top-k weights), WEIGHTS_SUFFIX
    the last m, WEIGHTS_ALIGNED the row's own slice of a w aligned with X (weights
    that differ between rows), WEIGHTS_RHO none: w is None and the row's weights are
    rho = (m, ..., 1), computed, not stored. Sort form (sort_form=True, w unused):
    sign * P(rho / eps, sort_desc(sign * x)), in sorted order.

    When perm, start and nblocks are given, the structure is kept for the
    derivatives (int32, INDEX_DTYPE): for each row, the descending order of sign * x
    (indices within the row), the block starts (the first nblocks[r] entries of the row's slice
    of start) and the block count. Otherwise it lives in per-thread scratch only.
    """
    cdef Py_ssize_t n_rows = offsets.shape[0] - 1, n = _longest_row(offsets)
    cdef Py_ssize_t r, lo, m, nb, wlen
    cdef int nt = _n_threads(n_rows, X.shape[0]), failed = 0
    cdef int* fail = &failed  # written through a pointer: shared, not thread-private
    cdef bint keep = perm is not None
    cdef int need = NEED_START
    cdef const double* wp = NULL
    cdef const double[::1] cw_view
    cdef const double* cwp = NULL
    cdef Py_ssize_t wofs, cofs
    cdef Scratch* s  # assigned inside the parallel block: private to each thread
    cdef double t_call = _tick()
    cw_view = None
    if not sort_form:
        if w_layout != W_RHO:
            wp = &w[0]
            need = need | NEED_R
            cw_view = _cube_roots(w, reg)
        elif reg == REG_P43:  # rho's cube roots, shared by the rows
            cw_view = _rho_cube_roots(n)
        if cw_view is not None:
            cwp = &cw_view[0]
        if reg == REG_P43:
            need = need | NEED_GAM | NEED_MOMENTS | NEED_TAU
        elif reg == REG_P32:
            need = need | NEED_GAM | NEED_TAU
    elif reg == REG_P43 or reg == REG_P32:
        need = need | NEED_GAM
    wlen = 0 if w is None else w.shape[0]
    with nogil, parallel(num_threads=nt):
        s = _scratch_take(n, sizeof(floating), need)
        if s == NULL:
            fail[0] = 1
        # every thread reaches the worksharing loop (OpenMP requires it); one
        # without scratch skips its rows, and the call raises MemoryError
        for r in prange(n_rows, schedule="dynamic"):
            lo = offsets[r]
            m = offsets[r + 1] - lo
            nb = 0
            if s != NULL and m > 0:
                if sort_form:
                    nb = _sort_row_op(&X[lo], m, sign, eps[r], reg, s, &out[lo])
                    if nb < 0:  # (p4/3 blocks could not grow: out of memory)
                        fail[0] = 1
                        nb = 0
                else:
                    wofs = (lo if w_layout == W_ALIGNED else
                            (wlen - m if w_layout == W_SUFFIX else 0))
                    cofs = n - m if w_layout == W_RHO else wofs  # (rho's table: n long)
                    nb = _rank_row(&X[lo], m, sign, eps[r],
                                   NULL if wp == NULL else wp + wofs,
                                   NULL if cwp == NULL else cwp + cofs, reg, s, &out[lo])
                    if nb < 0:  # (out of memory)
                        fail[0] = 1
                        nb = 0
                if keep:
                    _keep_order(s, m, &perm[lo])
            if keep:
                _keep_blocks(s, nb, &start[lo], &nblocks[r])
        _scratch_give(s, keep)
    _tock(PHASE_OUT, t_call)
    if failed:
        raise MemoryError()


def masks_forward(const floating[::1] X, const int64_t[::1] offsets,
                  const double[:, ::1] eps, const double[:, ::1] W, int w_layout,
                  floating[:, ::1] out, int32_t[::1] perm, int32_t[:, ::1] start,
                  int64_t[:, ::1] nblocks, const int64_t[::1] ks=None, int reg=REG_L2):
    """Several rank forms P(x / eps_j, w_j) of the same rows (l2, p4/3 or p3/2: reg),
    sharing one sort (soft top-k masks for several k). Rows and w_layout as in
    forward; out, start and nblocks get one slice per weight vector j, perm is shared.
    perm and start may both be None: no structure is kept (it lives in per-thread
    scratch).
    ks: top-k masks without a weight vector per k (w_layout prefix): slice j's
    weights are ks[j] ones then zeros. W is then None (the kernel sums them in
    closed form, no array), or one row of half ones then half zeros from which slice
    j reads them at W[0, half - ks[j]]."""
    cdef Py_ssize_t n_rows = offsets.shape[0] - 1, n = _longest_row(offsets)
    cdef Py_ssize_t n_w = eps.shape[0], wlen = 0 if W is None else W.shape[1]
    cdef Py_ssize_t half = wlen // 2, wofs = 0, r, j, lo, m, nb
    cdef int nt = _n_threads(n_rows, X.shape[0]), failed = 0, e
    cdef int* fail = &failed
    cdef Scratch* s
    cdef bint soft, keep = perm is not None, by_k = ks is not None
    cdef bint stored = W is not None
    cdef const double* w = NULL
    cdef const double[:, ::1] CW
    cdef int need = (NEED_R if stored else 0) | (
        NEED_GAM | NEED_MOMENTS | NEED_TAU if reg == REG_P43 else
        (NEED_GAM | NEED_TAU if reg == REG_P32 else 0))
    # l2 masks of closed-form weights, no structure kept: each is a band, whose
    # block needs no PAV over the row (_topk_band); per thread, assigned in the
    # parallel block (private)
    cdef bint bands = reg == REG_L2 and by_k and not stored and not keep
    cdef Band* band
    cdef double t_pav
    cdef double t_call = _tick()
    if not bands:
        need = need | NEED_START
    if reg == REG_KL:
        raise ValueError("masks_forward serves l2, p4/3 and p3/2")
    if keep != (start is not None):
        raise ValueError("perm and start are kept together, or not at all")
    if not stored and not by_k:
        raise ValueError("W may be None only for top-k masks given by ks")
    if by_k and ks.shape[0] and np.min(ks) < 0:  # (-1 means rho to _rank_sorted)
        raise ValueError("ks must be non-negative")
    if by_k and (w_layout != W_PREFIX or ks.shape[0] != n_w
                 or (stored and (W.shape[0] != 1 or n > half))):
        raise ValueError("ks needs prefix weights: one row of half ones, half zeros")
    if not by_k and W.shape[0] != n_w:
        raise ValueError("W needs one row per slice of eps")
    CW = _cube_roots(W, reg)
    with nogil, parallel(num_threads=nt):
        s = _scratch_take(n, sizeof(floating), need)
        band = <Band*>malloc(sizeof(Band)) if bands else NULL
        if s == NULL or (bands and band == NULL):
            fail[0] = 1
        for r in prange(n_rows, schedule="dynamic"):  # reached by every thread
            lo = offsets[r]
            m = offsets[r + 1] - lo
            if s != NULL and (band != NULL or not bands) and m > 0:
                _sort_row(&X[lo], m, 1.0, s)
                if keep:
                    _keep_order(s, m, &perm[lo])
                soft = False
                for j in range(n_w):
                    soft = soft or eps[j, r] > 0.0
                e = _scale_row(<floating*>s.ys, m) if soft else 0
                for j in range(n_w):
                    if stored and by_k:  # (not stored: closed-form top-k weights)
                        wofs = half - ks[j]
                        w = &W[0, wofs]
                    elif stored:
                        wofs = (lo if w_layout == W_ALIGNED else
                                (wlen - m if w_layout == W_SUFFIX else 0))
                        w = &W[j, wofs]
                    if bands:  # (its growth timed as the PAV phase)
                        t_pav = _tick()
                        _topk_band(<const floating*>s.ys, m, eps[j, r], e, ks[j], band)
                        _tock(PHASE_PAV, t_pav)
                        nblocks[j, r] = _band_out(band, <const floating*>s.ys, s.perm, m,
                                                  &out[j, lo])
                        continue
                    nb = _rank_sorted(m, eps[j, r], e, w, ks[j] if by_k else -1,
                                      NULL if CW is None else &CW[0 if by_k else j, wofs],
                                      reg, s, &out[j, lo])
                    if nb < 0:  # (out of memory)
                        fail[0] = 1
                        nb = 0
                    if keep:
                        _keep_blocks(s, nb, &start[j, lo], &nblocks[j, r])
                    else:
                        nblocks[j, r] = nb
            elif m == 0:
                for j in range(n_w):
                    nblocks[j, r] = 0
        _scratch_give(s, keep)
        free(band)
    _tock(PHASE_OUT, t_call)
    if failed:
        raise MemoryError()


cdef inline void _neumaier(double term, double* acc, double* comp) noexcept nogil:
    # acc + comp <- acc + comp + term, with Neumaier's compensation: the rounding
    # error of each addition is kept in comp
    cdef double total = acc[0] + term
    if fabs(acc[0]) >= fabs(term):
        comp[0] += (acc[0] - total) + term
    else:
        comp[0] += (term - total) + acc[0]
    acc[0] = total


def topk_pair_sums(const floating[::1] X, const int64_t[::1] offsets,
                   const double[:, ::1] eps_hi, const double[:, ::1] eps_lo,
                   const int64_t[:, ::1] k_hi, const int64_t[:, ::1] k_lo,
                   const double[::1] scale, const double[::1] c, double[:, ::1] sums,
                   const int64_t[::1] mix_ptr=None, const int64_t[::1] mix_g=None,
                   const double[:, ::1] mix_t=None, floating[:, ::1] G=None,
                   double[:, ::1] dsums=None):
    """For each pair p of l2 top-k masks (k_hi[p, r] > k_lo[p, r] and their strengths
    per row r): sums[p, r] = <M_hi - M_lo, x * scale[r] - c[r]> / (k_hi - k_lo) over
    row r, in float64: the mean of the framed row under the weights M_hi - M_lo
    (formed entry by entry in X's dtype), which sum to k_hi - k_lo. One sort of each
    row serves every pair, and no mask is formed: each is a band (design notes,
    section 15), so a pair costs its PAV passes and the entries where its masks
    differ. The last two bands are kept, so pairs that share a mask in a row
    (consecutive order statistics: (m - j, m - j - 1), (m - j - 1, m - j - 2))
    compute it once.

    Derivatives, where the mix, G and dsums are given: pair p's mean has the gradient
    row g_p = (M_hi - M_lo + J_hi x - J_lo x) / (k_hi - k_lo), and dsums[p, r] =
    (<J_hi x, x> - <J_lo x, x>) / (k_hi - k_lo) (the pair's derivative in the
    strength is -dsums / eps). G[q] (aligned with X, zero on entry) gets a mix of
    two pairs, (1 - t) g_a + t g_b with t = mix_t[q, r] in row r (a quantile's
    interpolation): pair p's uses are mix_g[mix_ptr[p]:mix_ptr[p + 1]], each
    2 q + side (side 0: weight 1 - t, side 1: t)."""
    cdef Py_ssize_t n_rows = offsets.shape[0] - 1, n = _longest_row(offsets)
    cdef Py_ssize_t n_p = eps_hi.shape[0], n_q = 0, n_use = 0, r, p, q, i, u, lo, m
    cdef Py_ssize_t b_lo, b_hi, n_act
    cdef int nt = _n_threads(n_rows, X.shape[0]), failed = 0, e, hi_at, lo_at
    cdef int* fail = &failed
    cdef Scratch* s
    cdef bint soft, grad = G is not None
    cdef const floating* ys
    cdef const floating* xr
    # per thread: the two bands kept, and the gradient rows a pair adds to (index and
    # coefficient); pointers assigned inside the parallel block are private to it
    cdef Band* bands
    cdef Band* Bh
    cdef Band* Bl
    cdef Py_ssize_t* act
    cdef double* acoef
    cdef int64_t khi, klo
    cdef floating d, w
    cdef double acc, comp, xc, gd, t, t_call = _tick()
    if (eps_lo.shape[0] != n_p or k_hi.shape[0] != n_p or k_lo.shape[0] != n_p
            or sums.shape[0] != n_p or eps_hi.shape[1] != n_rows
            or eps_lo.shape[1] != n_rows or k_hi.shape[1] != n_rows
            or k_lo.shape[1] != n_rows or sums.shape[1] != n_rows
            or (grad and (dsums is None or dsums.shape[0] != n_p
                          or dsums.shape[1] != n_rows))):
        raise ValueError("pair arrays must be (n_pairs, n_rows)")
    if grad:
        n_q = G.shape[0]
        if (mix_ptr is None or mix_g is None or mix_t is None
                or mix_ptr.shape[0] != n_p + 1 or mix_t.shape[0] != n_q
                or mix_t.shape[1] != n_rows or G.shape[1] != X.shape[0]
                or mix_ptr[0] != 0 or mix_ptr[n_p] != mix_g.shape[0]
                or (mix_g.shape[0] and not 0 <= np.min(mix_g) <= np.max(mix_g) < 2 * n_q)):
            raise ValueError("derivatives need a mix (mix_ptr, mix_g, mix_t), G (n_q, "
                             "X.size) and dsums")
        for p in range(n_p):
            if not 0 <= mix_ptr[p] <= mix_ptr[p + 1] <= mix_g.shape[0]:
                raise ValueError("mix_ptr must be nondecreasing within mix_g")
            n_use = max(n_use, mix_ptr[p + 1] - mix_ptr[p])
    with nogil, parallel(num_threads=nt):
        s = _scratch_take(n, sizeof(floating), 0)
        bands = <Band*>malloc(2 * sizeof(Band))
        act = <Py_ssize_t*>malloc((n_use + 1) * sizeof(Py_ssize_t))
        acoef = <double*>malloc((n_use + 1) * sizeof(double))
        if s == NULL or bands == NULL or act == NULL or acoef == NULL:
            fail[0] = 1
        for r in prange(n_rows, schedule="dynamic"):  # reached by every thread
            lo = offsets[r]
            m = offsets[r + 1] - lo
            if (s != NULL and bands != NULL and act != NULL and acoef != NULL
                    and m > 0):
                _sort_row(&X[lo], m, 1.0, s)
                soft = False
                for p in range(n_p):
                    soft = soft or eps_hi[p, r] > 0.0 or eps_lo[p, r] > 0.0
                e = _scale_row(<floating*>s.ys, m) if soft else 0
                ys = <const floating*>s.ys
                xr = &X[lo]
                bands[0].k = -1
                bands[1].k = -1
                for p in range(n_p):
                    khi = k_hi[p, r]
                    klo = k_lo[p, r]
                    hi_at = 0 if bands[0].k == khi else (1 if bands[1].k == khi else -1)
                    lo_at = 0 if bands[0].k == klo else (1 if bands[1].k == klo else -1)
                    if lo_at < 0:  # (into the slot that does not hold M_hi)
                        lo_at = 1 if hi_at == 0 else 0
                        _topk_band(ys, m, eps_lo[p, r], e, klo, &bands[lo_at])
                        if grad:
                            _band_moments(&bands[lo_at], ys, xr, s.perm, e, scale[r],
                                          c[r], eps_lo[p, r])
                    if hi_at < 0:
                        hi_at = 1 - lo_at
                        _topk_band(ys, m, eps_hi[p, r], e, khi, &bands[hi_at])
                        if grad:
                            _band_moments(&bands[hi_at], ys, xr, s.perm, e, scale[r],
                                          c[r], eps_hi[p, r])
                    Bh = &bands[hi_at]
                    Bl = &bands[lo_at]
                    # the weights M_hi - M_lo sum to khi - klo: divided by it first (in
                    # the row's dtype, as the masks' mean does), no partial sum leaves
                    # the row's range; and Neumaier's compensated sum, since a trimmed
                    # mean sums most of its row. Outside [b_lo, b_hi) both masks are
                    # 1, or both 0.
                    w = <floating>(khi - klo if khi > klo else 1)
                    b_lo = Bh.st if Bh.st < Bl.st else Bl.st
                    b_hi = Bh.en if Bh.en > Bl.en else Bl.en
                    n_act = 0
                    if grad:
                        dsums[p, r] = (Bh.xjx - Bl.xjx) / <double>w
                        for u in range(mix_ptr[p], mix_ptr[p + 1]):
                            q = mix_g[u] // 2
                            t = mix_t[q, r] if mix_g[u] % 2 else 1.0 - mix_t[q, r]
                            if t != 0.0:
                                act[n_act] = q
                                acoef[n_act] = t / <double>w
                                n_act = n_act + 1
                    acc = 0.0
                    comp = 0.0
                    for i in range(b_lo, b_hi):
                        d = _band_value(Bh, ys, i) - _band_value(Bl, ys, i)
                        xc = _framed(ys, xr, s.perm, e, scale[r], c[r], i)
                        if d != 0:
                            _neumaier(<floating>(d / w) * xc, &acc, &comp)
                        if n_act > 0:
                            gd = d + (_band_jx(Bh, i, xc) - _band_jx(Bl, i, xc))
                            if gd != 0.0:
                                for q in range(n_act):
                                    G[act[q], lo + s.perm[i]] = <floating>(
                                        G[act[q], lo + s.perm[i]] + acoef[q] * gd)
                    sums[p, r] = acc + comp
            elif m == 0:
                for p in range(n_p):
                    sums[p, r] = 0.0
                    if grad:
                        dsums[p, r] = 0.0
        _scratch_give(s, grad)
        free(bands)
        free(act)
        free(acoef)
    _tock(PHASE_OUT, t_call)
    if failed:
        raise MemoryError()


cdef inline double _blocked_sum(const floating_v* v, Py_ssize_t n, double mean,
                                bint squares) noexcept nogil:
    """sum v_i, or sum (v_i - mean)^2 if squares: plain sums of 256 terms (four
    accumulators, which the CPU runs side by side), compensated across the blocks."""
    cdef double acc = 0.0, comp = 0.0, s0, s1, s2, s3, d0, d1, d2, d3
    cdef Py_ssize_t b, i, hi
    for b in range(0, n, 256):
        hi = b + 256 if b + 256 < n else n
        s0 = s1 = s2 = s3 = 0.0
        i = b
        while i + 4 <= hi:
            d0, d1, d2, d3 = v[i] - mean, v[i + 1] - mean, v[i + 2] - mean, v[i + 3] - mean
            if squares:
                d0, d1, d2, d3 = d0 * d0, d1 * d1, d2 * d2, d3 * d3
            s0, s1, s2, s3 = s0 + d0, s1 + d1, s2 + d2, s3 + d3
            i = i + 4
        while i < hi:
            d0 = v[i] - mean
            s0 = s0 + (d0 * d0 if squares else d0)
            i = i + 1
        _neumaier((s0 + s1) + (s2 + s3), &acc, &comp)
    return acc + comp


def rank_correlation_sums(const floating[::1] T, const int64_t[::1] offsets,
                          const floating_v[::1] V, double[:, ::1] sums,
                          double[::1] A=None):
    """What Spearman's correlation of each row needs, without forming a rank array:
    with a_i the hard, tie-averaged ascending rank of T_i within its row of length m,
    centred (a_i - (m + 1) / 2), and V the other side (soft ranks), in float64

        sums[0, r] = sum a_i V_i,   sums[1, r] = sum a_i^2,
        sums[2, r] = sum (V_i - mean V)^2.

    Per row one sort of T (the kernel's work space, no output array); a tie group at
    descending sorted positions [st, en) shares the centred rank (m - st - en) / 2,
    exact in float64. sums[0] is summed as sum a_i (V_i - mean V): a sums to 0 only in
    exact arithmetic, and V near its mean (soft ranks at a large strength) would lose
    its digits to the products' rounding otherwise. sums[0] and sums[1] are
    compensated (Neumaier) over the groups, sums[2] over blocks of entries. A, when
    given, gets the centred ranks a (aligned with T: the gradient of the correlation
    needs them)."""
    cdef Py_ssize_t n_rows = offsets.shape[0] - 1, n = _longest_row(offsets)
    cdef Py_ssize_t r, i, st, en, lo, m
    cdef int nt = _n_threads(n_rows, T.shape[0]), failed = 0
    cdef int* fail = &failed
    cdef Scratch* s
    cdef const floating* ys
    cdef const floating_v* v
    cdef const int32_t* perm
    cdef double a, group, ab, ab_c, aa, aa_c, mean
    cdef bint ranks = A is not None
    with nogil, parallel(num_threads=nt):
        s = _scratch_take(n, sizeof(floating), 0)
        if s == NULL:
            fail[0] = 1
        for r in prange(n_rows, schedule="dynamic"):  # reached by every thread
            lo = offsets[r]
            m = offsets[r + 1] - lo
            ab = 0.0
            ab_c = 0.0
            aa = 0.0
            aa_c = 0.0
            mean = 0.0
            if s != NULL and m > 0:
                _sort_row(&T[lo], m, 1.0, s)
                ys = <const floating*>s.ys
                perm = s.perm
                v = &V[lo]
                mean = _blocked_sum(v, m, 0.0, False) / m
                st = 0
                while st < m:
                    en = st + 1
                    group = v[perm[st]] - mean
                    while en < m and ys[en] == ys[st]:
                        group = group + (v[perm[en]] - mean)
                        en = en + 1
                    a = 0.5 * <double>(m - st - en)
                    if ranks:
                        for i in range(st, en):
                            A[lo + perm[i]] = a
                    _neumaier(a * group, &ab, &ab_c)
                    _neumaier((en - st) * (a * a), &aa, &aa_c)
                    st = en
            sums[0, r] = ab + ab_c
            sums[1, r] = aa + aa_c
            sums[2, r] = _blocked_sum(&V[lo], m, mean, True) if m > 0 else 0.0
        _scratch_give(s, ranks)
    if failed:
        raise MemoryError()


# --------------------------------------------------------------------------
# Derivatives over the kept structure: O(n) per row, no sorting. In sorted
# coordinates the Jacobians are block diagonal (design notes, section 4):
#   rank l2:  (sign / eps) (I - 1 1^T / |B|)
#   rank kl:  (sign / eps) diag(r) (I - 1 softmax_B^T),  softmax_B = r_B / sum r_B
#   sort l2:  1 1^T / |B|
#   sort kl:  1 softmax(y_B)^T
#   rank p4/3: (sign / eps) (diag(g) - g g^T / sum g),  g = 3 P^(2/3) = 3 (z - v)^2
#   sort p4/3: g 1^T / sum g
#   rank and sort p3/2: the same with g = 2 |P|^(1/2) = 2 |z - v|
# where rank outputs are aligned with x and sort outputs are in sorted order.
# --------------------------------------------------------------------------

cdef inline double _jac_weight(double r, int reg) noexcept nogil:
    # the block Jacobians' weight of an entry with output r
    cdef double c
    if reg == REG_KL:
        return r
    if reg == REG_P43:
        c = cbrt(r)
        return 3.0 * c * c
    return 1.0  # (p3/2 reads g from the input or the block's end: _rank_deriv_row,
                # _sort_weight)


cdef void _rank_deriv_row(const int32_t* perm, const int32_t* start, Py_ssize_t nb,
                          Py_ssize_t n, const floating* r, double sign, double eps,
                          int reg, const floating* x, const floating* t,
                          floating* res) noexcept nogil:
    # The rank Jacobians are symmetric (f = sign / eps, per block in sorted order):
    #   l2: f (I - 1 1^T / |B|),  kl: f (diag(r) - r r^T / sum r),  p4/3 and p3/2:
    #   the same with g = 3 r^(2/3) or 2 r^(1/2) for r
    # so one routine serves jvp and vjp: f * c_i * (t_i - sum(c t) / sum(c)), with
    # c = 1 (l2), c = r (kl) or c = g (p-norms).
    cdef Py_ssize_t b, i, st, en
    cdef double su, sc, m, ci, c0, y0, t0, inv_eps = 1.0 / eps
    if eps == 0.0:  # hard ranks are piecewise constant
        for i in range(n):
            res[i] = 0.0
        return
    for b in range(nb):
        st = start[b]
        en = start[b + 1] if b + 1 < nb else n
        if en - st == 1:  # a singleton's rank is locally constant: exactly 0
            res[perm[st]] = 0.0
            continue
        su = 0.0
        sc = 0.0
        # (sums about the block's first t: a tied block of t, as J x for tied x, gets
        # exactly 0, and a common offset of t cancels before it is weighted)
        t0 = t[perm[st]]
        if reg == REG_P43 or reg == REG_P32:
            # g_i / 3 = (z_i - v)^2 or g_i / 2 = z_i - v, with z_i - v = (y_i - y_0) /
            # eps + cbrt(P_0) or sqrt(P_0), y_0 the block's first (largest) entry:
            # one root per block, not per entry, and no root of an output near 0
            # (which would keep half its digits or less); g is parked in res until
            # the second pass
            c0 = cbrt(r[perm[st]]) if reg == REG_P43 else sqrt(fabs(r[perm[st]]))
            y0 = sign * x[perm[st]]
            for i in range(st, en):
                ci = _over_eps(sign * x[perm[i]] - y0, eps, inv_eps) + c0
                if reg == REG_P32:
                    ci = 2.0 * fmax(ci, 0.0)
                else:
                    ci = 3.0 * ci * ci if fabs(ci) <= 1e150 else _jac_weight(r[perm[i]], reg)
                res[perm[i]] = <floating>ci
                su += ci * (t[perm[i]] - t0)
                sc += ci
            if sc == 0.0:
                for i in range(st, en):
                    res[perm[i]] = 0.0
                continue
            m = su / sc
            for i in range(st, en):
                res[perm[i]] = <floating>(sign * res[perm[i]]
                                          * _over_eps((t[perm[i]] - t0) - m, eps, inv_eps))
            continue
        for i in range(st, en):
            ci = _jac_weight(r[perm[i]], reg)
            su += ci * (t[perm[i]] - t0)
            sc += ci
        if sc == 0.0:  # p-norms: every output 0 (an all-zero tied block): constant
            for i in range(st, en):
                res[perm[i]] = 0.0
            continue
        m = su / sc
        for i in range(st, en):
            ci = _jac_weight(r[perm[i]], reg)
            res[perm[i]] = <floating>(sign * ci * _over_eps((t[perm[i]] - t0) - m, eps,
                                                            inv_eps))


cdef inline double _sort_weight(const floating* out, Py_ssize_t i, int reg, double u_ref,
                                Py_ssize_t ref, double eps, double inv_eps) noexcept nogil:
    # g_i of a p-norm sort block: 3 out^(2/3) (p4/3), or 2 |z_i - v| (p3/2) with
    # z_i - v = u_ref + (ref - i) / eps, from the block's end of larger output
    if reg == REG_P43:
        return _jac_weight(out[i], reg)
    return 2.0 * fabs(u_ref + _over_eps(<double>(ref - i), eps, inv_eps))


cdef void _sort_deriv_row(const floating* x, const int32_t* perm, const int32_t* start,
                          Py_ssize_t nb, Py_ssize_t n, double sign, int reg,
                          bint transpose, const floating* t, const floating* out,
                          double eps, floating* res) noexcept nogil:
    cdef Py_ssize_t b, i, st, en, ref = 0
    cdef double a, E, su, m, e, u_ref = 0.0, inv_eps = 1.0 / eps if eps > 0.0 else 0.0
    cdef double tiny  # the smallest normal output
    if floating is float:
        tiny = FLT_MIN
    else:
        tiny = DBL_MIN
    for b in range(nb):
        st = start[b]
        en = start[b + 1] if b + 1 < nb else n
        if en - st == 1:  # the permutation
            if transpose:
                res[perm[st]] = t[st]
            else:
                res[st] = t[perm[st]]
            continue
        if reg == REG_P43 or reg == REG_P32:
            # g 1^T / sum g, g = 3 out^(2/3) or 2 |out|^(1/2) (sorted order); p3/2's g
            # from the block's end of larger |output|, whose root keeps its digits
            E = 0.0
            if reg == REG_P32:
                ref = st if fabs(out[st]) >= fabs(out[en - 1]) else en - 1
                u_ref = sign * out[ref]
                # (outputs that underflowed, even in part, say nothing of z - v: E = 0
                # gives equal shares, as for p4/3)
                u_ref = copysign(sqrt(fabs(u_ref)), u_ref) if fabs(u_ref) >= tiny else NAN
            if not isnan(u_ref):
                for i in range(st, en):
                    E += _sort_weight(out, i, reg, u_ref, ref, eps, inv_eps)
            su = 0.0
            if transpose:
                for i in range(st, en):
                    su += (_sort_weight(out, i, reg, u_ref, ref, eps, inv_eps)
                           if E > 0.0 else 1.0) * t[i]
                # (outputs that underflowed to 0: equal shares, as the jvp below)
                m = su / E if E > 0.0 else su / (en - st)
                for i in range(st, en):
                    res[perm[i]] = <floating>m
            else:
                for i in range(st, en):
                    su += t[perm[i]]
                for i in range(st, en):
                    res[i] = <floating>(_sort_weight(out, i, reg, u_ref, ref, eps, inv_eps)
                                        / E * su if E > 0.0 else su / (en - st))
            continue
        if reg == REG_L2:
            su = 0.0
            if transpose:
                for i in range(st, en):
                    su += t[i]
                m = su / (en - st)
                for i in range(st, en):
                    res[perm[i]] = <floating>m
            else:
                for i in range(st, en):
                    su += t[perm[i]]
                m = su / (en - st)
                for i in range(st, en):
                    res[i] = <floating>m
            continue
        # kl: softmax(y_B), y = sign * x sorted descending (a is the block max)
        a = sign * x[perm[st]]
        E = 0.0
        su = 0.0
        if transpose:
            for i in range(st, en):
                E += exp(sign * x[perm[i]] - a)
                su += t[i]
            for i in range(st, en):
                res[perm[i]] = <floating>(exp(sign * x[perm[i]] - a) / E * su)
        else:
            for i in range(st, en):
                e = exp(sign * x[perm[i]] - a)
                E += e
                su += e * t[perm[i]]
            m = su / E
            for i in range(st, en):
                res[i] = <floating>m


def rank_derivative(const int64_t[::1] offsets, const int32_t[::1] perm,
                    const int32_t[::1] start, const int64_t[::1] nblocks,
                    const floating[::1] out, const double[::1] eps, double sign, int reg,
                    const floating[::1] T, floating[::1] res,
                    const floating[::1] X=None):
    """Jacobian-vector product of the rank form with T (aligned with x), from
    the structure kept by forward (rows as in forward; p4/3 and p3/2 also read the
    input X, which must not alias res). The Jacobian is symmetric, so this is also
    the vector-Jacobian product."""
    cdef Py_ssize_t n_rows = offsets.shape[0] - 1, r, lo
    cdef int nt = _n_threads(n_rows, T.shape[0])
    cdef const floating* xp = NULL
    if reg == REG_P43 or reg == REG_P32:
        if X is None:
            raise ValueError("the p-norm rank forms' derivative needs their input X")
        xp = &X[0]
    with nogil:
        for r in prange(n_rows, schedule="static", num_threads=nt):
            lo = offsets[r]
            if offsets[r + 1] > lo:
                _rank_deriv_row(&perm[lo], &start[lo], nblocks[r], offsets[r + 1] - lo,
                                &out[lo], sign, eps[r], reg,
                                NULL if xp == NULL else xp + lo, &T[lo], &res[lo])


def split_flat_blocks(const int64_t[::1] offsets, int32_t[::1] start,
                      int64_t[::1] nblocks, const double[::1] w, int w_layout):
    """In place, the PAV blocks over which the weights w are constant become singletons
    (skrank._ops._split_flat_blocks says why): start and nblocks as forward keeps them,
    w read as forward reads it (w_layout: prefix, suffix or aligned). Row by row, in
    two passes over its blocks and no memory of the rows' size: the first counts the
    singletons a row gains, the second writes its starts from the last block back
    (they only move right, so no start is overwritten before it is read)."""
    cdef Py_ssize_t n_rows = offsets.shape[0] - 1, wlen = w.shape[0], r, lo, m, nb, b, j
    cdef Py_ssize_t st, en, shift, extra, i
    cdef int nt = _n_threads(n_rows, start.shape[0])
    if w_layout == W_RHO:
        raise ValueError("split_flat_blocks needs stored weights")
    with nogil:
        for r in prange(n_rows, schedule="static", num_threads=nt):
            lo = offsets[r]
            m = offsets[r + 1] - lo
            nb = nblocks[r]
            shift = lo if w_layout == W_ALIGNED else (wlen - m if w_layout == W_SUFFIX
                                                      else 0)
            extra = 0
            for b in range(nb):
                st = start[lo + b]
                en = start[lo + b + 1] if b + 1 < nb else m
                if en - st > 1 and w[shift + st] == w[shift + en - 1]:
                    extra = extra + en - st - 1
            if extra == 0:
                continue
            j = nb + extra
            en = m
            for b in range(nb - 1, -1, -1):
                st = start[lo + b]
                if en - st > 1 and w[shift + st] == w[shift + en - 1]:
                    for i in range(en - 1, st - 1, -1):
                        j = j - 1
                        start[lo + j] = <int32_t>i
                else:
                    j = j - 1
                    start[lo + j] = <int32_t>st
                en = st
            nblocks[r] = nb + extra


def block_arrays(const int32_t[:, ::1] perm, const int32_t[:, ::1] start,
                 const int64_t[::1] nblocks, const double[::1] w, int64_t[:, ::1] inv,
                 int64_t[:, ::1] local, int64_t[:, ::1] first, double[:, ::1] count,
                 double[:, ::1] wsum):
    """The structure of equal-length rows spelled out per sorted position, for the
    autograd adapters (skrank._structure.host_structure): the inverse permutation, the
    block id within the row, where the block starts, its size, and the block sum of
    the weights w (one per sorted position)."""
    cdef Py_ssize_t n_rows = perm.shape[0], n = perm.shape[1], r, i, b, lo, hi
    cdef double total
    cdef int nt = _n_threads(n_rows, n_rows * n)
    with nogil:
        for r in prange(n_rows, schedule="static", num_threads=nt):
            for i in range(n):
                inv[r, perm[r, i]] = i
            for b in range(nblocks[r]):
                lo = start[r, b]
                hi = start[r, b + 1] if b + 1 < nblocks[r] else n
                total = 0.0
                for i in range(lo, hi):
                    total = total + w[i]
                for i in range(lo, hi):
                    local[r, i] = b
                    first[r, i] = lo
                    count[r, i] = <double>(hi - lo)
                    wsum[r, i] = total


def sort_derivative(const int64_t[::1] offsets, const floating[::1] X,
                    const int32_t[::1] perm, const int32_t[::1] start,
                    const int64_t[::1] nblocks, double sign, int reg, bint transpose,
                    const floating[::1] T, floating[::1] res,
                    const floating[::1] out=None, const double[::1] eps=None):
    """Jacobian-vector product (transpose=False: tangent aligned with x, result
    in sorted order) or its transpose (cotangent in sorted order, result aligned
    with x) of the sort form, from the structure kept by forward (and, for p4/3 and
    p3/2, its output; for p3/2 the rows' strengths eps too)."""
    cdef Py_ssize_t n_rows = offsets.shape[0] - 1, r, lo
    cdef int nt = _n_threads(n_rows, T.shape[0])
    cdef const floating* outp = NULL
    cdef const double* epsp = NULL
    if reg == REG_P43 or reg == REG_P32:
        if out is None:
            raise ValueError("the p-norm sort forms' derivative needs their output")
        outp = &out[0]
    if reg == REG_P32:
        if eps is None or eps.shape[0] != n_rows:
            raise ValueError("the p3/2 sort form's derivative needs the rows' strengths")
        epsp = &eps[0]
    with nogil:
        for r in prange(n_rows, schedule="static", num_threads=nt):
            lo = offsets[r]
            if offsets[r + 1] > lo:
                _sort_deriv_row(&X[lo], &perm[lo], &start[lo], nblocks[r],
                                offsets[r + 1] - lo, sign, reg, transpose, &T[lo],
                                NULL if outp == NULL else outp + lo,
                                0.0 if epsp == NULL else epsp[r], &res[lo])


# --------------------------------------------------------------------------
# Weighted l2 isotonic regression (increasing), for isotonic_regression.
# --------------------------------------------------------------------------

cdef inline double _pool_mean(double a, double b, double wa, double wb) noexcept nogil:
    """Weighted mean of a and b: a + (b - a) wb / (wa + wb), exact for a == b;
    when b - a overflows (a and b of opposite signs near the float64 limits), the
    convex combination, whose terms cannot overflow."""
    cdef double d = b - a, s = wa + wb
    if s == 0.0:  # two weights that underflowed: no preference
        return 0.5 * a + 0.5 * b
    if fabs(d) <= DBL_MAX:
        return a + d * (wb / s)
    return a * (wa / s) + b * (wb / s)


cdef void _isotonic_row(const floating* y, const double* wt, Py_ssize_t n,
                        double* M, double* W, int64_t* start,
                        floating* out) noexcept nogil:
    # M: block weighted means, W: block weights (wt == NULL: unit weights).
    # Means, not sums of w * y, pooled by _pool_mean: no overflow or underflow
    # whatever the scale of y (the caller scales weights so sums stay finite).
    cdef Py_ssize_t i, b, nb = 0, st, en
    cdef double m, ww, t0 = _tick()
    for i in range(n):
        m = y[i]
        ww = wt[i] if wt != NULL else 1.0
        st = i
        # pool while the previous block's mean is >= the current one (ties merge)
        while nb > 0 and M[nb - 1] >= m:
            nb -= 1
            m = _pool_mean(M[nb], m, W[nb], ww)
            ww += W[nb]
            st = start[nb]
        start[nb] = st
        M[nb] = m
        W[nb] = ww
        nb += 1
    _tock(PHASE_PAV, t0)
    for b in range(nb):
        st = start[b]
        en = start[b + 1] if b + 1 < nb else n
        for i in range(st, en):
            out[i] = <floating>M[b]


def isotonic_increasing(const floating[:, ::1] Y, const double[:, ::1] Wt,
                        floating[:, ::1] out):
    """Weighted least-squares nondecreasing fit of each row of Y (Wt=None: unit
    weights)."""
    cdef Py_ssize_t n_rows = Y.shape[0], n = Y.shape[1], r
    cdef int nt = _n_threads(n_rows, n_rows * n), failed = 0
    cdef int* fail = &failed
    cdef bint unit = Wt is None
    cdef double* M
    cdef double* W
    cdef int64_t* start
    cdef double t_call = _tick()
    with nogil, parallel(num_threads=nt):
        M = <double*>malloc(n * sizeof(double))
        W = <double*>malloc(n * sizeof(double))
        start = <int64_t*>malloc(n * sizeof(int64_t))
        if M == NULL or W == NULL or start == NULL:
            fail[0] = 1
        for r in prange(n_rows, schedule="dynamic"):  # reached by every thread
            if M != NULL and W != NULL and start != NULL:
                _isotonic_row(&Y[r, 0], NULL if unit else &Wt[r, 0], n, M, W, start,
                              &out[r, 0])
        free(M); free(W); free(start)
    _tock(PHASE_OUT, t_call)
    if failed:
        raise MemoryError()
