"""Sample weights of the estimators: checked once, then read as counts or as ratios."""

import numpy as np

# float64 counts exactly up to 2^53: integer weights beyond that are read as ratios
_EXACT_COUNT = 2.0**53


def check_sample_weight(sample_weight, n):
    """sample_weight as a float64 array of n finite, non-negative weights, not all 0
    (a scalar is every sample's weight); a clear ValueError otherwise."""
    w = np.asarray(sample_weight)
    if w.dtype.kind == "c":
        raise ValueError(f"sample_weight must hold real numbers, got dtype {w.dtype}.")
    w = w.astype(np.float64, copy=False)
    if w.ndim == 0:
        w = np.full(n, float(w))
    if w.shape != (n,):
        raise ValueError(f"sample_weight has shape {w.shape}; expected ({n},), one weight "
                         "per sample.")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError("sample_weight must be finite and non-negative.")
    if not (w > 0).any():
        raise ValueError("sample_weight is zero everywhere: there is nothing to fit.")
    return w


def counts_or_ratios(w):
    """Positive weights read as repetitions when they are integers (and count exactly
    in float64), otherwise as ratios, rescaled to mean 1. Returns (weights, whether they
    are counts, the factor taking a rescaled weight back to the caller's)."""
    if w.max() <= _EXACT_COUNT and np.all(w == np.round(w)) and w.sum() <= _EXACT_COUNT:
        return w, True, 1.0
    top = w.max()
    w = w / top
    mean = np.sum(w) / w.size
    w /= mean
    return w, False, top * mean
