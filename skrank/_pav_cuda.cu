// PAV kernels for CuPy arrays, compiled at run time by NVRTC (skrank/_cupy.py).
//
// The same integer structure as skrank/_pav.pyx finds on the CPU -- PAV blocks of
// rows already sorted by CuPy -- with the same merge tests and anchored block
// statistics, so the CPU and GPU paths agree to rounding. Values and derivatives
// are written by _cupy.py as elementwise CuPy arithmetic on that structure.
//
// Parallel formulation (no thread ever walks a whole long row):
//   1. pav_chunks: rows are cut into chunks of at most C entries; one thread per
//      chunk runs PAV on it, keeping its blocks in the chunk's own slots.
//   2. merge_rows: one thread per row walks the chunk boundaries left to right and
//      pools the blocks that violate across them. Each boundary costs O(1) plus the
//      blocks it absorbs, so a row of n entries costs O(n / C + pools).
//   3. compact / block_ids: the surviving blocks, numbered row after row, and the
//      block of every position.
// A row of at most C entries is one chunk: one thread per row, and step 2 is empty.
//
// Modes: RANK, P(y / eps, w) with units of tied y (tied entries always pool);
// SORT, P(rho / eps, y); ISO, weighted l2 increasing isotonic regression.
// Every kernel is a grid of independent threads (no shared memory, no barriers),
// so the test-suite runs this very source on the CPU, one emulated thread at a
// time (tests/_fake_cupy.py). EXTERN_C and THREAD_ID are defined before this file.

#define SK_RANK 0
#define SK_SORT 1
#define SK_ISO 2
#define SK_DBL_MAX 1.7976931348623157e308

typedef long long i64;

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 600
// atomicAdd on doubles is native from compute capability 6.0; before, a CAS loop
__device__ double sk_atomic_add(double* address, double value) {
    unsigned long long* p = (unsigned long long*)address;
    unsigned long long old = *p, assumed;
    do {
        assumed = old;
        old = atomicCAS(p, assumed,
                        __double_as_longlong(value + __longlong_as_double(assumed)));
    } while (assumed != old);
    return __longlong_as_double(old);
}
#define atomicAdd sk_atomic_add
#endif

typedef struct {
    i64 st, en;   // positions [st, en) in the flat sorted rows
    double D;     // RANK/SORT: sum of (y - a) (l2) or of exp((y - a) / eps) (kl),
                  //   a = y[st] the block's first (largest) value; ISO: block mean
    double R;     // RANK: sum of w; ISO: sum of weights; SORT: unused
} Block;

typedef struct {
    int mode, kl;
    double eps, inv_eps, alpha, beta;
    const double* y;
} Problem;

__device__ double sk_over_eps(double num, const Problem* p) {
    // num / eps, by a multiplication unless 1 / eps overflows (subnormal eps)
    return p->inv_eps <= SK_DBL_MAX ? num * p->inv_eps : num / p->eps;
}

__device__ Problem sk_problem(int mode, int kl, double eps, const double* y) {
    Problem p;
    p.mode = mode; p.kl = kl; p.eps = eps; p.y = y;
    p.inv_eps = 1.0 / eps;
    // merge tests scaled by c = min(eps, 1): neither y / eps nor eps * w overflows
    if (eps < 1.0) { p.alpha = 1.0; p.beta = eps; }
    else { p.alpha = 1.0 / eps; p.beta = 1.0; }
    return p;
}

// True when blocks L and U (adjacent, L first) violate the order and must pool.
__device__ int sk_violates(const Problem* p, const Block* L, const Block* U) {
    double ta, a, kL, k, d, g, tG, G;
    if (p->mode == SK_ISO) return L->D >= U->D;  // pool ties too
    ta = p->y[L->st];
    a = p->y[U->st];
    kL = (double)(L->en - L->st);
    k = (double)(U->en - U->st);
    if (p->mode == SK_RANK) {
        if (p->y[U->st - 1] == a) return 1;  // a tie cut by a chunk boundary
        if (!(p->eps > 0.0)) return 0;
        if (p->kl) {
            d = sk_over_eps(ta - a, p);
            if ((1.0 + d) * L->D * U->R > U->D * L->R) return 0;  // exp(d) >= 1 + d
            d = exp(-d);
            return L->D * U->R <= d * U->D * L->R;
        }
        return !(kL * (k * p->alpha * (ta - a) - (p->alpha * U->D - p->beta * U->R))
                 + k * (p->alpha * L->D - p->beta * L->R) > 0.0);
    }
    if (!(p->eps > 0.0)) return 0;  // SORT at strength 0: the hard sort
    if (p->kl) {
        g = sk_over_eps(kL, p) + (a - ta);
        tG = -expm1(-sk_over_eps(kL, p));
        G = -expm1(-sk_over_eps(k, p));
        if (tG * U->D * (1.0 + g) > G * L->D) return 0;
        return tG * U->D * exp(g) <= G * L->D;
    }
    return !(kL * k * (p->alpha * 0.5 * (kL + k) - p->beta * (ta - a))
             - p->beta * (k * L->D - kL * U->D) > 0.0);
}

// L and U pooled: the block keeps L's start (and anchor).
__device__ Block sk_pool(const Problem* p, const Block* L, const Block* U) {
    Block B;
    double ta, a, k;
    B.st = L->st;
    B.en = U->en;
    B.R = L->R + U->R;
    if (p->mode == SK_ISO) {  // weighted mean; convex form where U - L overflows
        double d = U->D - L->D;
        if (B.R == 0.0) B.D = 0.5 * L->D + 0.5 * U->D;  // underflowed weights
        else if (fabs(d) <= SK_DBL_MAX) B.D = L->D + d * (U->R / B.R);
        else B.D = L->D * (L->R / B.R) + U->D * (U->R / B.R);
        return B;
    }
    ta = p->y[L->st];
    a = p->y[U->st];
    k = (double)(U->en - U->st);
    if (p->kl) {
        if (ta == a) B.D = L->D + U->D;  // ties (also at strength 0)
        else if (p->mode == SK_RANK) B.D = L->D + U->D * exp(-sk_over_eps(ta - a, p));
        else B.D = L->D + U->D * exp(a - ta);
    } else {
        B.D = L->D + U->D + k * (a - ta);
    }
    return B;
}

// Block slots: slot i holds a block whose start is in the chunk holding position i.
__device__ Block sk_load(const i64* bst, const i64* ben, const double* bD,
                         const double* bR, i64 i) {
    Block B;
    B.st = bst[i]; B.en = ben[i]; B.D = bD[i]; B.R = bR[i];
    return B;
}

__device__ void sk_store(i64* bst, i64* ben, double* bD, double* bR, i64 i,
                         const Block* B) {
    bst[i] = B->st; ben[i] = B->en; bD[i] = B->D; bR[i] = B->R;
}

// Step 1. Chunk c covers positions [cbeg[c], cend[c]) of row crow[c]. y: the sorted,
// sign-adjusted rows (RANK/SORT) or the values (ISO); w: per-position weights (RANK:
// the row's w in sorted order; ISO: the weights when has_w, else unit weights).
// Writes the chunk's blocks to slots [cbeg[c], chi[c]).
EXTERN_C __global__ void pav_chunks(i64 n_chunks, int mode, int kl,
                                    const double* y, const double* w, int has_w,
                                    const double* eps, const i64* cbeg,
                                    const i64* cend, const i64* crow,
                                    i64* bst, i64* ben, double* bD, double* bR,
                                    i64* chi) {
    i64 c = THREAD_ID, i, j, top;
    Block U, T;
    Problem p;
    if (c >= n_chunks) return;
    p = sk_problem(mode, kl, mode == SK_ISO ? 1.0 : eps[crow[c]], y);
    top = cbeg[c];  // next free slot
    i = cbeg[c];
    while (i < cend[c]) {
        U.st = i;
        if (mode == SK_RANK) {  // a unit is a run of tied values
            U.R = 0.0;
            j = i;
            while (j < cend[c] && y[j] == y[i]) { U.R += w[j]; j++; }
            U.D = kl ? (double)(j - i) : 0.0;
        } else if (mode == SK_SORT) {
            j = i + 1;
            U.D = kl ? 1.0 : 0.0;
            U.R = 0.0;
        } else {
            j = i + 1;
            U.D = y[i];
            U.R = has_w ? w[i] : 1.0;
        }
        U.en = j;
        while (top > cbeg[c]) {
            T = sk_load(bst, ben, bD, bR, top - 1);
            if (!sk_violates(&p, &T, &U)) break;
            U = sk_pool(&p, &T, &U);
            top--;
        }
        sk_store(bst, ben, bD, bR, top, &U);
        top++;
        i = j;
    }
    chi[c] = top;
}

// Step 2. Row r owns chunks [coff[r], coff[r + 1]); clo/chi bound each chunk's live
// slots (clo starts at the chunk's first slot). stk: scratch, one entry per chunk,
// holding the row's non-empty chunks left to right (the PAV stack is the
// concatenation of their live slots).
EXTERN_C __global__ void merge_rows(i64 n_rows, int mode, int kl, const double* y,
                                    const double* eps, const i64* coff,
                                    i64* bst, i64* ben, double* bD, double* bR,
                                    i64* clo, i64* chi, i64* stk) {
    i64 r = THREAD_ID, c, c0, sp, tc, ti, bc, bi;
    Block U, T, B;
    Problem p;
    if (r >= n_rows) return;
    c0 = coff[r];
    if (coff[r + 1] - c0 < 2) return;
    p = sk_problem(mode, kl, mode == SK_ISO ? 1.0 : eps[r], y);
    sp = 0;
    stk[c0 + sp++] = c0;  // a row's first chunk always keeps its first block
    for (c = c0 + 1; c < coff[r + 1]; c++) {
        while (clo[c] < chi[c]) {
            U = sk_load(bst, ben, bD, bR, clo[c]);
            tc = stk[c0 + sp - 1];
            T = sk_load(bst, ben, bD, bR, chi[tc] - 1);
            if (!sk_violates(&p, &T, &U)) break;  // the rest of chunk c is in order
            T = sk_pool(&p, &T, &U);
            sk_store(bst, ben, bD, bR, chi[tc] - 1, &T);
            clo[c]++;
            for (;;) {  // the grown top may now violate with the block below it
                tc = stk[c0 + sp - 1];
                ti = chi[tc] - 1;
                if (ti > clo[tc]) { bc = tc; bi = ti - 1; }
                else if (sp >= 2) { bc = stk[c0 + sp - 2]; bi = chi[bc] - 1; }
                else break;
                T = sk_load(bst, ben, bD, bR, ti);
                B = sk_load(bst, ben, bD, bR, bi);
                if (!sk_violates(&p, &B, &T)) break;
                B = sk_pool(&p, &B, &T);
                sk_store(bst, ben, bD, bR, bi, &B);
                chi[tc]--;
                if (clo[tc] >= chi[tc]) sp--;
            }
        }
        if (clo[c] < chi[c]) stk[c0 + sp++] = c;
    }
}

// Step 3a. Live blocks, numbered in order: chunk c's first live block gets number
// first[c]. rstart: the row's first position; start: each row's block starts
// relative to the row, at the row's first positions (skrank/_pav.pyx's layout).
EXTERN_C __global__ void compact(i64 n_chunks, const i64* first, const i64* crow,
                                 const i64* offsets, const i64* row_first_block,
                                 const i64* bst, const i64* ben, const double* bD,
                                 const double* bR, const i64* clo, const i64* chi,
                                 i64* gst, i64* gen, double* gD, double* gR,
                                 i64* start) {
    i64 c = THREAD_ID, k, g, r;
    if (c >= n_chunks) return;
    r = crow[c];
    for (k = clo[c]; k < chi[c]; k++) {
        g = first[c] + (k - clo[c]);
        gst[g] = bst[k]; gen[g] = ben[k]; gD[g] = bD[k]; gR[g] = bR[k];
        start[offsets[r] + g - row_first_block[r]] = bst[k] - offsets[r];
    }
}

// Step 3b. The block number of every position of chunk c.
EXTERN_C __global__ void block_ids(i64 n_chunks, const i64* first, const i64* cbeg,
                                   const i64* cend, const i64* bst, const i64* clo,
                                   const i64* chi, i64* bid) {
    i64 c = THREAD_ID, i, k, g;
    if (c >= n_chunks) return;
    g = first[c] - 1;  // the chunk may begin inside a block of an earlier chunk
    k = clo[c];
    for (i = cbeg[c]; i < cend[c]; i++) {
        if (k < chi[c] && bst[k] == i) { g = first[c] + (k - clo[c]); k++; }
        bid[i] = g;
    }
}

// Segment sums: sums[bid[i]] += v[i] and sums2[bid[i]] += v2[i], for positions
// sorted by block, one thread per chunk of positions: a block inside a chunk is
// summed in a register, and only the blocks cut by chunk ends use atomics.
EXTERN_C __global__ void segment_sums(i64 n_chunks, i64 n, i64 chunk, const i64* bid,
                                      const double* v, const double* v2,
                                      double* sums, double* sums2) {
    i64 c = THREAD_ID, i, end, b;
    double s = 0.0, s2 = 0.0;
    if (c >= n_chunks) return;
    i = c * chunk;
    end = i + chunk < n ? i + chunk : n;
    b = bid[i];
    for (; i < end; i++) {
        if (bid[i] != b) {
            atomicAdd(&sums[b], s);
            atomicAdd(&sums2[b], s2);
            b = bid[i]; s = 0.0; s2 = 0.0;
        }
        s += v[i];
        s2 += v2[i];
    }
    atomicAdd(&sums[b], s);
    atomicAdd(&sums2[b], s2);
}
