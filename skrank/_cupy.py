"""The kernels of :mod:`skrank._pav`, for CuPy arrays on the GPU.

Every function here has the signature of its twin in ``skrank/_pav.pyx`` and the
same contract, so the Python layer (``_ops``, ``_stats``) runs unchanged over
either: row metadata (offsets, strengths, weights) comes as NumPy arrays, the data
(``X``, outputs, the kept structure) as CuPy arrays on the input's device.

The architecture of design notes (doc/design.rst) section 6: CuPy sorts, the PAV
kernels of ``skrank/_pav_cuda.cu`` (compiled at run time by NVRTC, so installing skrank
never needs a CUDA toolkit) find the blocks, and the values and derivatives are
elementwise CuPy arithmetic on that structure, in the cancellation-free forms of
design notes section 5. Long rows are cut into chunks solved in parallel and merged
over the chunk boundaries (see the .cu file). All accumulation is in float64.
"""

import functools
import importlib.resources

import numpy as np

WEIGHTS_PREFIX, WEIGHTS_SUFFIX, WEIGHTS_ALIGNED, WEIGHTS_RHO = 0, 1, 2, 3
INDEX_DTYPE = np.int64  # the kept structure's (the CUDA kernels read long long)
_RANK, _SORT, _ISO = 0, 1, 2
_THREADS = 64  # threads per CUDA block: small blocks spread few long threads over all SMs
_DBL_MAX = np.finfo(np.float64).max

_CUDA_PRELUDE = """\
#define EXTERN_C extern "C"
#define THREAD_ID ((long long)blockIdx.x * blockDim.x + threadIdx.x)
"""


def is_cupy_array(a):
    """True for a CuPy array, without importing CuPy."""
    return type(a).__module__.partition(".")[0] == "cupy"


def source():
    """The CUDA source of the PAV kernels (without the prelude)."""
    return importlib.resources.files("skrank").joinpath("_pav_cuda.cu").read_text()


@functools.cache
def _cupy():
    import cupy

    return cupy


@functools.cache
def _kernels():
    """The compiled module (compiled on first use, then cached by CuPy on disk)."""
    cp = _cupy()
    # no fused multiply-adds: the merge tests must round as the CPU kernel's do, or
    # blocks whose values tie exactly could be split differently
    return cp.RawModule(code=_CUDA_PRELUDE + source(), options=("--fmad=false",))


def _launch(name, n_threads, *args):
    if n_threads == 0:
        return
    kernel = _kernels().get_function(name)
    kernel(((n_threads + _THREADS - 1) // _THREADS,), (_THREADS,), args)


def chunk_size(n):
    """Entries per chunk for rows of at most n entries: rows up to 256 entries are
    one chunk (one thread per row); longer rows get chunks of about 2 sqrt(n),
    which balances the chunk threads' O(C) against the merge pass's O(n / C)."""
    return int(min(8192, max(256, 1 << int(2 * np.sqrt(max(n, 1))).bit_length())))


class _Layout:
    """Rows (host offsets) seen from the device: each position's row, position in
    its row, and the chunks that cut the rows for the PAV kernels."""

    def __init__(self, offsets, chunk=None):
        cp = _cupy()
        offsets = np.asarray(offsets, dtype=np.int64)
        m = np.diff(offsets)
        self.n_rows, self.total = m.size, int(offsets[-1])
        self.offsets = cp.asarray(offsets)
        self.chunk = chunk or chunk_size(int(m.max()) if m.size else 0)
        counts = -(-m // self.chunk)
        self.coff = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        crow = np.repeat(np.arange(self.n_rows, dtype=np.int64), counts)
        cbeg = offsets[crow] + (np.arange(crow.size) - self.coff[crow]) * self.chunk
        self.n_chunks = crow.size
        self.long_rows = bool((counts > 1).any())
        self.crow, self.cbeg = cp.asarray(crow), cp.asarray(cbeg)
        self.cend = cp.asarray(np.minimum(cbeg + self.chunk, offsets[crow + 1]))
        self.coff_dev = cp.asarray(self.coff)
        pos = cp.arange(self.total, dtype=np.int64)
        self.row = cp.searchsorted(self.offsets[1:], pos, side="right")
        self.first = self.offsets[self.row]  # each position's row start
        self.local = pos - self.first
        self.m = cp.asarray(m)
        self.uniform = bool(m.size) and bool((m == m[0]).all())

    def weights(self, w, layout):
        """Per-position weights (in sorted order) from skrank._pav's w layouts."""
        cp = _cupy()
        if layout == WEIGHTS_RHO:  # rho = (m, ..., 1) for a row of length m
            return (self.m[self.row] - self.local).astype(cp.float64)
        w = cp.asarray(np.asarray(w, dtype=np.float64))
        if layout == WEIGHTS_PREFIX:
            return w[self.local]
        if layout == WEIGHTS_SUFFIX:
            return w[w.size - self.m[self.row] + self.local]
        return w.reshape(-1)

    def sorted(self, X, sign, soft_rows):
        """(perm, order, y, e): each row's descending order of sign * X (indices
        within the row, and in the flat rows), sign * X in that order in float64,
        divided by 2^e, e the row's shift where soft_rows (see shift), else 0."""
        cp = _cupy()
        key = X * X.dtype.type(-sign)  # ascending order of -sign * x
        if self.uniform:
            perm = cp.argsort(key.reshape(self.n_rows, -1), axis=-1).reshape(-1)
            order = perm + self.first
        else:  # ragged rows: sort the values, then (stably) the rows
            by_value = cp.argsort(key, kind="stable")
            order = by_value[cp.argsort(self.row[by_value], kind="stable")]
            perm = order - self.first
        y = sign * X[order].astype(np.float64)
        e = self.shift(y, soft_rows)
        return perm.astype(np.int64, copy=False), order, cp.ldexp(y, -e[self.row]), e

    def shift(self, y, soft_rows):
        """Per-row power of two e that keeps a row's block sums and differences
        finite (as _pav.pyx's _row_shift), 0 where soft_rows is False and for empty
        rows."""
        cp = _cupy()
        last = self.total - 1
        first_y = y[cp.minimum(self.offsets[:-1], last)]
        last_y = y[cp.maximum(self.offsets[1:] - 1, 0)]
        amax = cp.where(self.m > 0, cp.maximum(cp.abs(first_y), cp.abs(last_y)), 0.0)
        limit = 1e300 / (4.0 * (self.m + 1.0) * (self.m + 1.0))
        e = cp.where(amax > limit, _ilogb(amax) - _ilogb(limit) + 1,
                     cp.where((amax > 0.0) & (amax < 1e-200), _ilogb(amax), 0))
        return cp.where(soft_rows, e, 0).astype(np.int32)

    def blocks(self, mode, kl, y, w, eps):
        """PAV blocks of every row: (block id per position, starts, ends, D, R,
        start (block starts within each row, _pav.pyx's layout), nblocks)."""
        cp = _cupy()
        N, i64 = self.total, np.int64
        bst, ben = cp.empty(N, dtype=i64), cp.empty(N, dtype=i64)
        bD, bR = cp.empty(N), cp.empty(N)
        chi = cp.empty(self.n_chunks, dtype=i64)
        has_w = w is not None
        w = w if has_w else cp.empty(1)
        _launch("pav_chunks", self.n_chunks, i64(self.n_chunks), np.int32(mode),
                np.int32(kl), y, w, np.int32(has_w), eps, self.cbeg, self.cend,
                self.crow, bst, ben, bD, bR, chi)
        clo = self.cbeg.copy()
        if self.long_rows:
            stk = cp.empty(self.n_chunks, dtype=i64)
            _launch("merge_rows", self.n_rows, i64(self.n_rows), np.int32(mode),
                    np.int32(kl), y, eps, self.coff_dev, bst, ben, bD, bR, clo, chi, stk)
        live = chi - clo
        ends = cp.cumsum(live)
        first = ends - live
        n_blocks = int(ends[-1].get()) if self.n_chunks else 0
        bounds = cp.concatenate([first, cp.asarray([n_blocks], dtype=i64)])
        row_first = bounds[self.coff_dev[:-1]]
        nblocks = bounds[self.coff_dev[1:]] - row_first
        gst, gen = cp.empty(n_blocks, dtype=i64), cp.empty(n_blocks, dtype=i64)
        gD, gR = cp.empty(n_blocks), cp.empty(n_blocks)
        start = cp.zeros(N, dtype=i64)
        _launch("compact", self.n_chunks, i64(self.n_chunks), first, self.crow,
                self.offsets, row_first, bst, ben, bD, bR, clo, chi, gst, gen, gD, gR,
                start)
        bid = cp.empty(N, dtype=i64)
        _launch("block_ids", self.n_chunks, i64(self.n_chunks), first, self.cbeg,
                self.cend, bst, clo, chi, bid)
        return bid, gst, gen, gD, gR, start, nblocks

    def kept_blocks(self, start, nblocks):
        """(block id per position, block starts, block ends) from the structure
        kept by forward (start, nblocks as _pav.pyx writes them)."""
        cp = _cupy()
        used = self.local < nblocks[self.row]
        is_start = cp.zeros(self.total, dtype=np.int64)
        is_start[(self.first + start)[used]] = 1
        bid = cp.cumsum(is_start) - 1
        gst = cp.flatnonzero(is_start)
        gen = cp.concatenate([gst[1:], cp.asarray([self.total], dtype=np.int64)])
        return bid, gst, gen

    def segment_sums(self, bid, n_blocks, v, v2):
        """Per-block sums of v and v2 (positions in block order)."""
        cp = _cupy()
        s, s2 = cp.zeros(n_blocks), cp.zeros(n_blocks)
        chunk = 1024
        n_chunks = -(-self.total // chunk)
        _launch("segment_sums", n_chunks, np.int64(n_chunks), np.int64(self.total),
                np.int64(chunk), bid, cp.ascontiguousarray(v, dtype=np.float64),
                cp.ascontiguousarray(v2, dtype=np.float64), s, s2)
        return s, s2


def _ilogb(v):
    """C's ilogb for positive finite v (frexp's exponent minus one)."""
    return _cupy().frexp(v)[1].astype(np.int64) - 1


def _over_eps(num, eps):
    # num / eps, by a multiplication unless 1 / eps overflows (as _pav.pyx); eps > 0
    cp = _cupy()
    with np.errstate(over="ignore", invalid="ignore"):
        inv = 1.0 / eps
        return cp.where(inv <= _DBL_MAX, num * inv, num / eps)


def _soft_eps(eps):
    """eps with zeros replaced by 1 (rows at strength 0 take another branch)."""
    cp = _cupy()
    return cp.where(eps > 0.0, eps, 1.0)


def _rank_values(L, y, wv, eps, kl, blocks):
    """P(y / eps, w) in sorted order (design notes, section 5), from the blocks."""
    cp = _cupy()
    bid, gst, gen, gD, gR = blocks[:5]
    st, size = gst[bid], (gen - gst)[bid]
    a, D, R = y[st], gD[bid], gR[bid]
    mR = R / size
    e = eps[L.row]
    es = _soft_eps(e)
    if kl:
        v = cp.exp(_over_eps(y - a, es)) * (R / cp.where(D > 0, D, 1.0))
    else:
        v = _over_eps((y - a) - D / size, es) + mR
    lo, hi = wv[L.first + L.m[L.row] - 1], wv[L.first]
    v = cp.clip(cp.where(e > 0.0, v, mR), lo, hi)
    return cp.where(size == 1, R, v)


def forward(X, offsets, eps, w, w_layout, sign, kl, sort_form, out, perm=None,
            start=None, nblocks=None):
    """skrank._pav.forward on the device (same arguments)."""
    cp = _cupy()
    L = _Layout(offsets)
    eps = cp.asarray(np.asarray(eps, dtype=np.float64))
    # as _pav.pyx: rank rows are rescaled (l2 and kl: only y / eps matters), and
    # l2 sort rows (kl sort rows depend on y itself)
    p, order, y, e = L.sorted(X, sign, (eps > 0.0) if not (kl and sort_form)
                              else cp.zeros(L.n_rows, dtype=bool))
    if sort_form:
        with np.errstate(over="ignore"):  # an overflowing eps is capped, as on the CPU
            eps_s = cp.minimum(cp.ldexp(eps, e), _DBL_MAX)
        blocks = L.blocks(_SORT, kl, y, None, eps_s)
        value = _sort_values(L, X, y, order, eps_s, e, sign, kl, blocks)
        out[...] = value.astype(out.dtype)
    else:
        eps_s = cp.minimum(cp.ldexp(eps, -e), _DBL_MAX)
        wv = L.weights(w, w_layout)
        blocks = L.blocks(_RANK, kl, y, wv, eps_s)
        out[order] = _rank_values(L, y, wv, eps_s, kl, blocks).astype(out.dtype)
    if perm is not None:
        perm[...] = p
        start[...] = blocks[5]
        nblocks[...] = blocks[6]


def _sort_values(L, X, y, order, eps, e, sign, kl, blocks):
    """sign * P(rho / eps, y) in sorted order (design notes, section 5)."""
    cp = _cupy()
    bid, gst, gen, gD = blocks[:4]
    pos = cp.arange(L.total, dtype=np.float64)
    st, en = gst[bid], gen[bid]
    size = (en - st).astype(np.float64)
    a, D = y[st], gD[bid]
    er = eps[L.row]
    es = _soft_eps(er)
    if kl:
        # log_softmax(rho_B / eps)_i + logsumexp(y_B), with log sum_{j<k} e^{-j/eps}
        with np.errstate(divide="ignore"):
            log_geo = cp.log(-cp.expm1(-size / es)) - cp.log(-cp.expm1(-1.0 / es))
        base = a + cp.log(cp.where(D > 0, D, 1.0)) - log_geo
        v = base - _over_eps(pos - st, es)
    else:
        v = _over_eps(0.5 * (st + en - 1) - pos, es) + (a + D / size)
    v = cp.clip(v, y[L.first + L.m[L.row] - 1], y[L.first])
    if not kl:
        v = cp.ldexp(v, e[L.row])
    return cp.where(size == 1, X[order].astype(np.float64), sign * v)


def masks_forward(X, offsets, eps, W, w_layout, out, perm, start, nblocks, ks=None,
                  reg=0):
    """skrank._pav.masks_forward on the device (same arguments; reg is l2 here:
    the callers reject the p-norms for CuPy arrays first)."""
    cp = _cupy()
    L = _Layout(offsets)
    eps = cp.asarray(np.asarray(eps, dtype=np.float64))
    p, order, y, e = L.sorted(X, 1.0, (eps > 0.0).any(axis=0))
    if perm is not None:
        perm[...] = p
    if W is not None:
        W, half = np.asarray(W), np.asarray(W).shape[1] // 2
    for j in range(eps.shape[0]):
        eps_s = cp.minimum(cp.ldexp(eps[j], -e), _DBL_MAX)
        if W is None:  # top-k weights: ks[j] ones, then zeros
            wv = (L.local < int(ks[j])).astype(cp.float64)
        else:
            w = W[j] if ks is None else W[0, half - int(ks[j]):2 * half - int(ks[j])]
            wv = L.weights(w, w_layout)
        blocks = L.blocks(_RANK, False, y, wv, eps_s)
        out[j, order] = _rank_values(L, y, wv, eps_s, False, blocks).astype(out.dtype)
        if start is not None:
            start[j] = blocks[5]
        nblocks[j] = blocks[6]


def rank_derivative(offsets, perm, start, nblocks, out, eps, sign, kl, T, res):
    """skrank._pav.rank_derivative on the device (same arguments)."""
    cp = _cupy()
    L = _Layout(offsets)
    bid, gst, gen = L.kept_blocks(start, nblocks)
    order = L.first + perm
    t = T[order].astype(np.float64)
    c = out[order].astype(np.float64) if kl else cp.ones(L.total)
    su, sc = L.segment_sums(bid, gst.size, c * t, c)
    er = cp.asarray(np.asarray(eps, dtype=np.float64))[L.row]
    d = sign * c * _over_eps(t - (su / sc)[bid], _soft_eps(er))
    d = cp.where(((gen - gst)[bid] == 1) | (er == 0.0), 0.0, d)
    res[order] = d.astype(res.dtype)


def sort_derivative(offsets, X, perm, start, nblocks, sign, kl, transpose, T, res):
    """skrank._pav.sort_derivative on the device (same arguments)."""
    cp = _cupy()
    L = _Layout(offsets)
    bid, gst, gen = L.kept_blocks(start, nblocks)
    order = L.first + perm
    size = (gen - gst)[bid]
    if kl:  # softmax(y_B), y = sign * x sorted descending, a the block's first y
        y = sign * X[order].astype(np.float64)
        c = cp.exp(y - y[gst][bid])
    else:
        c = cp.ones(L.total)
    if transpose:
        t = T.astype(np.float64)
        st, sc = L.segment_sums(bid, gst.size, t, c)
        d = cp.where(size == 1, t, c / sc[bid] * st[bid])
        res[order] = d.astype(res.dtype)
    else:
        t = T[order].astype(np.float64)
        su, sc = L.segment_sums(bid, gst.size, c * t, c)
        res[...] = cp.where(size == 1, t, (su / sc)[bid]).astype(res.dtype)


def isotonic_increasing(Y, Wt, out):
    """skrank._pav.isotonic_increasing on the device (same arguments)."""
    cp = _cupy()
    n_rows, n = Y.shape
    L = _Layout(np.arange(n_rows + 1, dtype=np.int64) * n)
    w = None if Wt is None else cp.ascontiguousarray(Wt, dtype=np.float64).reshape(-1)
    bid, _, _, gD = L.blocks(_ISO, False, Y.reshape(-1).astype(np.float64), w,
                             cp.ones(n_rows))[:4]
    out[...] = gD[bid].reshape(Y.shape).astype(out.dtype)
