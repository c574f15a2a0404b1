"""Writing a result into an operand that the generated code no longer needs.

Every NumPy operation allocates its result. On batches of a million numbers, getting
fresh memory from the system and touching it for the first time costs about as much as
the arithmetic itself. NumPy reuses an operand on its own ("temporary elision") only
when nothing else refers to it, which a named temporary of the generated code never
satisfies: ``_t0 = scale**2; _t0*(2*_t0/(2*_t0 - eta))`` allocates an array per
operation, where the same expression written out on one line allocates fewer.

The code generator (``symgen/engine/reuse.py``) knows when an operand is read for the
last time: a temporary at its last reading, or the unnamed result of an inner operation.
At that point it calls one of these functions. The result goes into that operand when
the operand can hold it (an ndarray of the result's shape and dtype); otherwise, for
Python and NumPy scalars, for an operand that the other one broadcasts to a larger
shape, or for a result of a wider dtype (a complex step, say), a new array is made
exactly as the plain expression would make it.
"""
from __future__ import annotations

from numpy import ndarray


def _holds(owned, other) -> bool:
    # A Python number adopts the array's dtype (NEP 50); a NumPy scalar or array of
    # another dtype may widen the result, which ``out=`` would silently narrow.
    return type(owned) is ndarray and getattr(other, "dtype", owned.dtype) == owned.dtype


def into_first(ufunc, first, second):
    """``ufunc(first, second)``, written into ``first`` when it can hold the result."""
    if _holds(first, second):
        try:
            return ufunc(first, second, out=first)
        except (TypeError, ValueError):  # broadcast to a larger shape, or a wider dtype
            pass
    return ufunc(first, second)


def into_second(ufunc, first, second):
    """``ufunc(first, second)``, written into ``second`` when it can hold the result."""
    if _holds(second, first):
        try:
            return ufunc(first, second, out=second)
        except (TypeError, ValueError):
            pass
    return ufunc(first, second)


def into_only(ufunc, operand):
    """``ufunc(operand)`` for a one-argument ufunc, written into ``operand`` when possible."""
    if type(operand) is ndarray:
        try:
            return ufunc(operand, out=operand)
        except (TypeError, ValueError):  # an integer array under exp, say
            pass
    return ufunc(operand)
