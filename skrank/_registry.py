"""What skrank knows about each public array function, declared where it is defined.

A decorator next to each function records how its arguments and output relate to its
main array; the modules that serve every function the same way read these records and
never name a function: the Array API and CuPy dispatch (applied by the decorator), the
Dask path (:mod:`skrank._dask`, by roles and output kind) and the derivative API
(:mod:`skrank._diff`, by the differentiable argument and the value-and-structure form).
This module imports no operator, so any module may import it (design notes,
doc/design.rst, section 11).
"""

import inspect
from dataclasses import dataclass

from . import _array_api

# output kinds: "same" (aligned with the main array; 1-D with axis=None), "drop" (the
# operated axis removed, after q's dimensions for soft_quantile), "loss" (a scalar, the
# mean over rows), "metric" (one value per column of 2-D (samples, outputs) arrays,
# then averaged)
KINDS = ("same", "drop", "loss", "metric")
STRENGTH = "regularization_strength"


@dataclass(frozen=True)
class Operator:
    """A public function's record. Arguments not named in main, aligned or per_row are
    static: options and small values (k, q, axis, lengths...) that fix the output's
    shape."""

    fun: object  # the public function (dispatching; it pickles by reference)
    main: str  # the array whose rows are operated on
    kind: str  # one of KINDS
    positional: tuple  # the names of its positional-or-keyword parameters, in order
    aligned: tuple = ()  # arrays of main's shape (isotonic weights: or one row's)
    per_row: tuple = (STRENGTH,)  # main's shape without the axis (strengths broadcast)
    differentiable: str = None  # the argument skrank.vjp / jvp differentiate, if any
    structured: object = None  # (same arguments) -> (value, structure with jvp / vjp)
    # further differentiable arguments: positional ones (the masks' k), for which the
    # structure has arg_jvp(name, tangent) and arg_vjp(name, cotangent), and the
    # strength (STRENGTH), for which it has strength_products()
    also: tuple = ()

    @property
    def argnum(self):
        """The differentiable argument's position (None without derivatives)."""
        return None if self.differentiable is None else self.positional.index(
            self.differentiable)

    @property
    def public_name(self):
        module = self.fun.__module__
        prefix = module if module in ("skrank.losses", "skrank.metrics") else "skrank"
        return f"{prefix}.{self.fun.__name__}"


_RECORDS = {}  # public function and the function it wraps -> Operator


def operator(*, main, kind, aligned=(), per_row=(STRENGTH,), differentiable=None,
             structured=None, also=()):
    """Register a public array function and make it take any Array API namespace,
    CuPy or dask arrays (:func:`skrank._array_api.dispatch`)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if (differentiable is None) != (structured is None):
        raise ValueError("a differentiable argument needs a value-and-structure form")

    def register(fun):
        public = _array_api.dispatch(fun)
        parameters = inspect.signature(fun).parameters
        positional = tuple(p.name for p in parameters.values()
                           if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD)
        for name in (main, *aligned, *per_row, *also, *(() if differentiable is None
                                                        else (differentiable,))):
            if name not in parameters:
                raise ValueError(f"{fun.__name__} has no argument {name!r}")
        record = Operator(public, main, kind, positional, tuple(aligned), tuple(per_row),
                          differentiable, structured, tuple(also))
        _RECORDS[public] = _RECORDS[fun] = record
        return public

    return register


def lookup(fun):
    """The record of a public function (or of the function it wraps), or None."""
    try:
        return _RECORDS.get(fun)
    except TypeError:  # unhashable: not a function
        return None


def records():
    """Every record, once each, in registration order."""
    return list(dict.fromkeys(_RECORDS.values()))
