"""The autograd forms of skrank's operators, written once for torch and JAX (design
notes, doc/design.rst, section 6).

The kernel finds each row's integer structure (:mod:`skrank._structure`); the value is
then recomputed from it with the framework's own differentiable ops, so the framework
differentiates it to any order. Everything here is written against a *shim* ``F``, a
small object each adapter supplies (:mod:`skrank.torch`, :mod:`skrank.jax`):

- ``F.xp``: the array namespace (``torch`` or ``jax.numpy``), for ``exp``, ``log``,
  ``log2``, ``exp2``, ``sqrt``, ``where``, ``isfinite``, ``clip``, ``maximum``,
  ``zeros_like``, ``ones_like``;
- ``F.sg(v)``: stop-gradient; ``F.take(v, idx)``: gather along the last axis;
- ``F.rowsum``, ``F.rowmin``, ``F.rowmax`` ``(v, keepdims=False)``: reductions along
  the last axis; ``F.sort(v)``: ascending values along the last axis;
- ``F.segment_sum(v, seg, size)``: sums of a flat array over segment ids;
- ``F.const(a, like)``: a NumPy array as a constant of ``like``'s dtype and device;
  ``F.wide(v)``: ``v`` in the widest float the framework computes in;
  ``F.finfo_max(v)``: the largest finite value of ``v``'s dtype;
- ``F.structure(X, eps, form, *args)``: :func:`skrank._structure.host_structure` of
  the rows ``X`` (``form`` one of :mod:`skrank._structure`'s) as framework arrays,
  with the block ids made global and flat: ``(perm, inv, seg, first, count, wsum,
  value)``, one leading slice of the last five per weight vector (one for ranks and
  sorts, one per k for masks).

The functions take rows ``X`` of shape ``(n_rows, n)`` in their compute dtype and
per-row strengths ``eps`` of shape ``(n_rows,)`` in the same dtype; the adapters check
the arguments, lay the rows out, and take NaN and dtypes back to their caller.
"""

import numpy as np

from . import _pav, _stats, _structure


class _Blocks:
    """One slice of a structure (see ``F.structure``), and segment arithmetic over its
    PAV blocks: sums gathered back to every sorted position, the block's first entry
    (its maximum, as a constant, for values sorted descending), and the constants the
    host computed: each position's block size (``count``) and block sum of the weights
    (``wsum``)."""

    def __init__(self, F, shape, structure, j):
        self.F, self.shape, self.size = F, shape, shape[0] * shape[1]
        self.perm, self.inv, seg, first, count, wsum, value = structure
        self.seg, self.first, self.count, self.wsum, self.value = (
            seg[j], first[j], count[j], wsum[j], value[j])

    def sum(self, v):
        return self.F.segment_sum(v.reshape(-1), self.seg, self.size)[self.seg].reshape(
            self.shape)

    def max(self, v):
        return self.F.take(self.F.sg(v), self.first)


def _clip(F, v, lo, hi):
    """v clipped to [lo, hi] (rounding can step out by an ulp; a traced k can lie out
    of range) with its derivative unchanged."""
    return v + F.sg(F.xp.clip(v, lo, hi) - v)


def _soft_or_hard(F, eps):
    """(the divisor of the soft branch, finite where eps is 0; where to keep the
    kernel's strength-0 value)."""
    hard = (eps == 0)[:, None]
    return F.xp.where(hard, 1.0, eps[:, None]), hard


def _phi(F, r, reg):
    """A p-norm's output of r = z - v: r^3 (p4/3) or r |r| (p3/2)."""
    return r * r * r if reg == _pav.P43 else r * F.xp.abs(r)


def _phi_inverse(F, p, reg):
    """The r with _phi(r) = p, for a constant p (no derivative is taken through it)."""
    a = F.xp.abs(p)
    return F.xp.where(p < 0, -1.0, 1.0) * a ** (1.0 / 3.0 if reg == _pav.P43 else 0.5)


def _pnorm_root(F, blocks, u, v, target, reg):
    """A p-norm block equation sum_B phi(u - v) = target (gathered per position),
    solved for v by two Newton steps from v, a constant at the root (the kernel's):
    the value stays the root, and each step makes one more order of derivatives
    exact (the Newton map's derivative in v vanishes at the root), so first and
    second derivatives are the implicit function's (design notes, section 13). A
    block whose every output is 0 (all u = v) keeps v."""
    xp = F.xp
    for _ in range(2):
        r = u - v
        g = blocks.sum(3.0 * r * r if reg == _pav.P43 else 2.0 * xp.abs(r))
        ok = g > 0
        v = v + xp.where(ok, (blocks.sum(_phi(F, r, reg)) - target)
                         / xp.where(ok, g, 1.0), 0.0)
    return v


def _rank_value(F, X, eps, blocks, sign, reg, lo, hi, wsum=None):
    """P(sign * X / eps, w) per row (kl: its exponential) from one structure slice,
    aligned with X, clipped to the weights' range [lo, hi]: block by block, about the
    block's maximum, so nothing overflows. reg: the kernel code of the regulariser.
    wsum: the block sums of the weights per sorted position, when they carry a
    derivative (a real k); else the host's constants."""
    xp = F.xp
    e, hard = _soft_or_hard(F, eps)
    hard_value = blocks.value
    if wsum is None:
        wsum = blocks.wsum
    else:  # at strength 0 the kernel's value is the blocks' mean weight, moving with k
        mean = wsum / blocks.count
        hard_value = hard_value + F.take(mean - F.sg(mean), blocks.inv)
    d = sign * F.take(X, blocks.perm)  # sorted, descending
    c = d - blocks.max(d)
    if reg in (_pav.P43, _pav.P32):
        # phi(u - v), u = (d - max_B d) / eps; singletons: w exactly
        u = c / e
        # the root relative to the block's maximum: u_first - v = phi^-1(P_first)
        v = -_phi_inverse(F, F.take(F.take(F.sg(blocks.value), blocks.perm), blocks.first),
                          reg)
        r = u - _pnorm_root(F, blocks, u, v, wsum, reg)
        p = xp.where(blocks.count == 1, wsum, _phi(F, r, reg))
    elif reg == _pav.KL:  # softmax_B(d / eps) * sum_B w
        ex = xp.exp(c / e)
        p = ex / blocks.sum(ex) * wsum
    else:  # (d - mean_B d) / eps + mean_B w
        p = (c - blocks.sum(c) / blocks.count) / e + wsum / blocks.count
    return xp.where(hard, hard_value, F.take(_clip(F, p, lo, hi), blocks.inv))


def rank_rows(F, X, eps, sign, reg):
    """Soft ranks of the rows (sign 1: ascending, -1: descending; reg: the kernel code
    of the regulariser)."""
    n = X.shape[1]
    if X.shape[0] * n == 0:
        return X
    rho = np.arange(n, 0, -1, dtype=np.float64)
    blocks = _Blocks(F, X.shape, F.structure(X, eps, _structure.rank_form, rho, sign, reg),
                     0)
    return _rank_value(F, X, eps, blocks, sign, reg, 1.0, float(n))


def sort_rows(F, X, eps, sign, reg):
    """sign * P(rho / eps, sort_desc(sign * X)) per row: soft sorts (sign -1:
    ascending, 1: descending; reg as for rank_rows)."""
    n, xp = X.shape[1], F.xp
    if X.shape[0] * n == 0:
        return X
    blocks = _Blocks(F, X.shape, F.structure(X, eps, _structure.sort_form, sign, reg), 0)
    e, hard = _soft_or_hard(F, eps)
    t = sign * F.take(X, blocks.perm)  # sorted, descending
    m = blocks.max(t)
    if reg in (_pav.P43, _pav.P32):
        # phi(u - v), u = (rho - rho_first) / eps; singletons: t exactly
        rho = F.const(np.arange(n, 0, -1, dtype=np.float64), X)
        u = (rho - blocks.max(xp.zeros_like(t) + rho)) / e
        # the kernel's sorted values are sign * P, and u_first - v = phi^-1(P_first)
        v = -_phi_inverse(F, F.take(sign * F.sg(blocks.value), blocks.first), reg)
        r = u - _pnorm_root(F, blocks, u, v, blocks.sum(t), reg)
        p = xp.where(blocks.count == 1, t, _phi(F, r, reg))
    elif reg == _pav.KL:  # log_softmax_B(rho / eps) + logsumexp_B(t)
        rho = xp.zeros_like(t) + F.const(np.arange(n, 0, -1, dtype=np.float64), X)
        z = (rho - blocks.max(rho)) / e
        p = z - xp.log(blocks.sum(xp.exp(z))) + m + xp.log(blocks.sum(xp.exp(t - m)))
    else:  # (rho - mean_B rho) / eps + mean_B t
        rho = F.const(np.arange(n, 0, -1, dtype=np.float64), X)
        p = (rho - blocks.wsum / blocks.count) / e + m + blocks.sum(t - m) / blocks.count
    return sign * xp.where(hard, t, _clip(F, p, t[:, -1:], t[:, :1]))


class Masks:
    """Soft top-k masks of the rows X (l2, p4/3 or p3/2: reg; strengths eps), the
    structures of all the k asked for found together from one sort of each row, and
    the soft statistics weighted by their differences (design notes, section 7).

    Each use of a mask is its own piece of the graph: the derivative of a statistic
    with respect to its weights is about x itself, so two statistics sharing a mask
    node would add two such terms there, which overflows for x near the dtype's
    limit; separate nodes add them after the weights' own derivative has scaled them
    down."""

    def __init__(self, F, X, eps, reg=_pav.L2):
        self.F, self.X, self.eps, self._structures, self._sorted = F, X, eps, {}, None
        self._frame, self.reg = None, reg

    def prepare(self, ks):
        """Find the structures of all these k (a quantile needs up to four) at once."""
        todo = sorted({int(k) for k in ks} - set(self._structures))
        X, n = self.X, self.X.shape[1]
        if not todo or X.shape[0] * n == 0:
            return
        structure = self.F.structure(X, self.eps, _structure.masks_form, todo, self.reg)
        for j, k in enumerate(todo):
            self._structures[k] = _Blocks(self.F, X.shape, structure, j)

    def mask(self, k):
        k, X, n = int(k), self.X, self.X.shape[1]
        if X.shape[0] * n == 0:
            return X
        self.prepare([k])
        eps = self.eps if 0 < k < n else self.F.xp.zeros_like(self.eps)  # constant
        # masks: derivative 0
        return _rank_value(self.F, X, eps, self._structures[k], 1.0, self.reg, 0.0, 1.0)

    def within_rows(self, value):
        """value (one per row) clipped to its row's [min, max], where a convex
        combination of the row lies in exact arithmetic; the derivative stays the
        unclipped one's."""
        return _clip(self.F, value, self.F.rowmin(self.X), self.F.rowmax(self.X))

    def mean(self, k_hi, k_lo, total):
        """Per row <M(k_hi) - M(k_lo), x> / total (the weights sum to total), in the
        widest float: about c, the row's value closest to 0 within its range (scaled
        by 2^-24 near the dtype's limit), so that nothing overflows, derivatives
        included, and a constant row gives its value exactly; within the row's range."""
        F = self.F
        self.prepare([k_hi, k_lo])
        framed, scale, c = self.frame()
        w = F.wide(self.mask(k_hi) - self.mask(k_lo))
        value = (F.rowsum((w / total) * framed, keepdims=True) + c) / scale
        return self.within_rows(value[:, 0])

    def frame(self):
        """(X * scale - c, scale, c) in the widest float, formed once for every
        statistic of these rows (their cotangents there are bounded by the weights,
        so sharing the node cannot overflow): see mean."""
        if self._frame is None:
            F, xp = self.F, self.F.xp
            W = F.wide(self.X)
            lo, hi = F.rowmin(F.sg(W), keepdims=True), F.rowmax(F.sg(W), keepdims=True)
            near_limit = xp.maximum(-lo, hi) > F.finfo_max(W) * 2.0 ** -23
            scale = xp.where(near_limit, 2.0 ** -24, 1.0)
            c = xp.clip(xp.zeros_like(lo), lo, hi) * scale  # sum(w) = total: c's own
            # derivative is 0
            self._frame = W * scale - c, scale, c
        return self._frame

    def order_statistic(self, i):
        """The soft (i + 1)-th smallest value of each row: <M(n - i) - M(n - i - 1), x>."""
        n = self.X.shape[-1]
        value = self.mean(n - i, n - i - 1, 1.0)
        if self._sorted is None:
            self._sorted = self.F.wide(self.F.sort(self.F.sg(self.X)))
        # strength 0: exactly the sorted value, as NumPy (the shared weights of tied
        # entries could round); the derivative stays that of the weights
        return value + self.F.xp.where(self.eps == 0, self.F.sg(self._sorted[:, i] - value),
                                       0.0)


def topk_mask_real(F, X, eps, k, reg):
    """The top-k masks of the rows for a real k per row (a differentiable array of
    shape (n_rows,)): the rank form with the weights w_j = clip(k - j, 0, 1) at sorted
    position j. Their derivative in k is taken from above at an integer k (where the
    position that becomes fractional is j = k), and is 0 at k = n; entries tied there
    share it."""
    n, xp = X.shape[1], F.xp
    if X.shape[0] * n == 0:
        return X
    structure = F.structure(X, eps, _structure.topk_form, F.sg(k), reg)
    blocks, pooled = (_Blocks(F, X.shape, structure, j) for j in (0, 1))
    d = k[:, None] - F.const(np.arange(n, dtype=np.float64), X)
    inside = (d >= 0) & (d < 1)  # the fractional position: the only one with a derivative
    w = xp.where(inside, d, xp.where(d >= 1, 1.0, 0.0))
    # w averaged over the blocks as pooled: the same values (the split blocks are the
    # flat ones, where w is constant), and tied entries share dw / dk
    w = pooled.sum(w) / pooled.count
    return _rank_value(F, X, eps, blocks, 1.0, reg, 0.0, 1.0, wsum=blocks.sum(w))


def quantiles(F, X, eps, qs, median=False, reg=_pav.L2):
    """NumPy's "linear" quantiles of the rows at each probability of qs (a list): one
    (n_rows,) value per q, in the widest float. ``median``: the midpoint of the two
    middle values is formed as numpy.median forms it."""
    n, xp = X.shape[-1], F.xp
    masks, steps = Masks(F, X, eps, reg), []
    for q in qs:  # between order statistics j and j + 1
        h = (n - 1) * float(q)
        j = min(int(np.floor(h)), n - 1)
        steps.append((j, min(j + 1, n - 1), h - j))
    masks.prepare([n - i - d for j, j1, _ in steps for i in (j, j1) for d in (0, 1)])
    values = []
    for j, j1, t in steps:
        a = masks.order_statistic(j)
        if t == 0:
            values.append(a)
            continue
        b = masks.order_statistic(j1)
        if median and t == 0.5:  # the mean of the two middle values, halved first
            value = xp.where(xp.isfinite(a + b), (a + b) / 2, a / 2 + b / 2)  # where
        else:  # a + b overflows; numpy.quantile's interpolation as it writes it, or
            d = b - a  # the convex combination where b - a overflows
            value = xp.where(xp.isfinite(d), b - d * (1.0 - t) if t >= 0.5 else a + d * t,
                             a * (1.0 - t) + b * t)
        values.append(masks.within_rows(value))
    return values


def trimmed_mean(F, X, eps, proportiontocut, reg=_pav.L2):
    """scipy's trim_mean of the rows, softly: k = int(proportiontocut * n) values cut
    from each end with the weights M(n - k) - M(k)."""
    n = X.shape[-1]
    k = int(proportiontocut * n)
    return Masks(F, X, eps, reg).mean(n - k, k, n - 2 * k)


def spearman_rows(F, T, P, eps, reg):
    """1 - the Pearson correlation of T's hard ranks and P's soft ranks, per row; a row
    where either side is constant scores 0 correlation. reg: the kernel code of the
    soft ranks' regulariser."""
    xp = F.xp
    B = rank_rows(F, P, eps, 1.0, reg)
    A = F.sg(rank_rows(F, F.sg(T), xp.zeros_like(eps), 1.0, _pav.L2))
    A = A - F.rowsum(A, keepdims=True) / A.shape[-1]
    B = B - F.rowsum(B, keepdims=True) / B.shape[-1]
    saa, sbb = F.rowsum(A * A), F.rowsum(B * B)
    ok = (saa > 0) & (sbb > 0)
    denom = xp.sqrt(xp.where(ok, saa, 1.0)) * xp.sqrt(xp.where(ok, sbb, 1.0))
    return 1.0 - xp.where(ok, F.rowsum(A * B) / denom, 0.0)


def ndcg_rows(F, G, P, eps, reg, k, gains):
    """1 - NDCG@k per row: DCG with P's descending soft ranks and, for k < n, the soft
    top-k mask as the cutoff (a p-norm with its ranks' p-norm, else l2), over the
    ideal (hard) DCG; rows without a relevant item score NDCG 0, as in scikit-learn."""
    xp, n = F.xp, P.shape[-1]
    if gains == "exponential":
        G = xp.exp2(G) - 1.0
    kk = n if k is None else min(int(k), n)
    R = rank_rows(F, P, eps, -1.0, reg)
    cut = Masks(F, P, eps, _stats._mask_code(reg)).mask(kk) if kk < n else xp.ones_like(R)
    dcg = F.rowsum(G * cut / xp.log2(1.0 + R))
    position = np.arange(n)
    discount = np.where(position < kk, 1.0 / np.log2(position + 2.0), 0.0)
    idcg = F.rowsum(-F.sort(-G) * F.const(discount, G))
    has = idcg > 0
    return 1.0 - dcg * xp.where(has, 1.0 / xp.where(has, idcg, 1.0), 0.0)


def topk_rows(F, labels, S, eps, reg, k):
    """max(0, r_y - k) per sample, r_y the descending soft rank of the true class
    (labels: in-range class indices, one per row); derivative 0 at r_y == k."""
    R = rank_rows(F, S, eps, -1.0, reg)
    r = F.take(R, labels[:, None])[:, 0]
    return F.xp.where(r > k, r - k, 0.0)


# ------------------------------------------------------------------ docstrings
def _sections(doc):
    """A numpydoc docstring (4-space indented) as {title: text}; the summary and the
    extended summary under ""."""
    out, title, lines = {}, "", []
    doc_lines = doc.splitlines()
    i = 0
    while i < len(doc_lines):
        line = doc_lines[i]
        underline = doc_lines[i + 1].strip() if i + 1 < len(doc_lines) else ""
        if line.strip() and underline and set(underline) == {"-"} \
                and len(underline) == len(line.strip()):
            out[title] = "\n".join(lines).strip("\n")
            title, lines = line.strip(), []
            i += 2
            continue
        lines.append(line)
        i += 1
    out[title] = "\n".join(lines).strip("\n")
    return out


def _entries(text):
    """The entries of a Parameters or Returns section: {name: "name : type\\n desc"}."""
    out, name = {}, None
    for line in text.splitlines():
        if line.startswith("    ") and not line.startswith("     ") and " : " in line:
            name = line.strip().split(" : ")[0]
            out[name] = [line]
        elif name is not None:
            out[name].append(line)
    return {k: "\n".join(v) for k, v in out.items()}


def adapted_doc(twin, fun, *, intro, types, parameters, examples, axis="axis", drop=(),
                entries_from=None, returns=None):
    """The docstring of an adapter's ``fun`` from its NumPy twin's: the twin's summary,
    ``intro`` (what differs), the twin's entries for ``fun``'s parameters with the
    array types of ``types`` ({name: type}; ``"return"``: the result's), ``parameters``
    replacing entries by name, the twin's Returns, a See Also line to the twin, and the
    adapter's own ``examples``. ``axis``: the adapter's name for the twin's ``axis``
    argument; ``drop``: phrases of the twin's text that do not hold for the adapter;
    ``entries_from``: the function whose entries to use when the twin has none
    (soft_median: soft_quantile's); ``returns``: the Returns entry, when the twin's does
    not fit."""
    import inspect
    import re
    import textwrap

    twin_doc = twin.__doc__
    for phrase in drop:
        twin_doc = twin_doc.replace(phrase, "")
    parts = _sections(twin_doc)
    if entries_from is not None and "Parameters" not in parts:
        parts = {**_sections(entries_from.__doc__), "": parts[""]}

    def adapt(entry, name):
        head, _, body = entry.partition("\n")
        if name in types:
            head = f"    {head.split(' : ')[0].strip()} : {types[name]}"
        body = body.replace("axis=axis", f"axis={axis}")
        body = re.sub(r"(?<![\w=])axis\b(?!=)", axis, body)
        return head + ("\n" + body if body else "")

    known = _entries(parts.get("Parameters", ""))
    entries = []
    for name in inspect.signature(fun).parameters:
        if name in parameters:
            entries.append(parameters[name])
            continue
        entry = known.get("axis" if name == axis else name)
        if entry is None:
            raise AssertionError(f"{fun.__name__}: no description of {name!r}")
        entries.append(adapt(entry, name))
    if returns is None:
        returns = adapt(parts["Returns"], "return")
    module = twin.__module__
    qual = f"{'skrank' if module.startswith('skrank._') else module}.{twin.__name__}"
    doc = [parts[""], "", textwrap.fill(intro, 88, initial_indent="    ",
                                         subsequent_indent="    "), "",
           "    Parameters", "    ----------", "\n".join(entries), "",
           "    Returns", "    -------", returns, "",
           "    See Also", "    --------", f"    {qual} : The NumPy twin.", "",
           "    Examples", "    --------", examples.strip("\n"), ""]
    return "\n".join(doc) + "\n    "
