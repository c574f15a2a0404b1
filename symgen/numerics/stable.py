"""Cancellation-free primitives that the derivations' stable rewrites print to.

Each is declared in SymPy (``symgen.engine.symbolic``) with its textbook meaning, so a
derivation proves the rewrite equal to the textbook form; here it is evaluated without
the catastrophic cancellation of that form near 0. Accuracy against 50-digit mpmath is
tested in ``tests/test_numerics_stable.py``.

Speed: the textbook form is accurate away from 0, so each primitive evaluates it
everywhere (a couple of ufunc passes, as fast as the naive code) and recomputes only
the entries near 0 with a short series. :func:`refine` does the same for the
branches of a derivation's piecewise stable form.
"""
from __future__ import annotations

import numpy as np

# Below these magnitudes the textbook forms, evaluated with the fast exp and log
# (not expm1 and log1p, which cost three times as much), lose too many digits: their
# rounding error is about ulp * max(1, |x|) against a result of about x^2/2. At the
# thresholds the textbook forms are within ~8 ulps (log1pmx) and ~30 ulps (expm1mx,
# whose series would cost more per entry than log1pmx's, so it covers less).
_LOG1PMX_SERIES_BELOW = 0.5
_EXPM1MX_SERIES_BELOW = 0.2

# log1p(u) - u through t = u / (2 + u), where log1p(u) = 2 atanh(t) and u = 2t / (1 - t):
#     log1p(u) - u = -2 t^2 / (1 - t) + 2 (t^3/3 + t^5/5 + ...),
# a sum without cancellation. For |u| < 0.5, t^2 < 1/9 and 16 odd terms leave a
# tail below 1e-17 of the result.
_LOG1PMX_TERMS = 16

# expm1(x) - x = x^2 (1/2! + x/3! + x^2/4! + ...); for |x| < 0.2, terms up to
# x^14/14! leave a tail below 1e-18 of the result.
_EXPM1MX_TERMS = 13
_INVERSE_FACTORIALS = [1.0]
for _k in range(1, 2 + _EXPM1MX_TERMS):
    _INVERSE_FACTORIALS.append(_INVERSE_FACTORIALS[-1] / _k)


def refine(default, mask, function, *arguments, in_place=False):
    """``default`` with the entries where ``mask`` holds replaced by ``function`` applied
    to those entries of ``arguments``: the accurate branch is paid for only where needed.

    The entries are found once (``flatnonzero``), so the cost beyond one scan of the
    mask is proportional to the number of entries refined, not to the array size.
    ``in_place`` lets ``default`` be overwritten when it is an array of its own (the
    generated code says so only when ``default`` is a freshly computed expression,
    never an argument).
    """
    mask = np.asarray(mask)
    if not mask.any():
        return default
    shape = np.broadcast_shapes(np.shape(default), mask.shape, *(np.shape(a) for a in arguments))
    if in_place and isinstance(default, np.ndarray) and default.shape == shape and default.flags.owndata:
        result = default      # a temporary of the generated code: no copy needed
    else:
        result = np.array(np.broadcast_to(default, shape))
    index = np.flatnonzero(np.broadcast_to(mask, shape))
    subset = [_entries(argument, shape, index) for argument in arguments]
    result.reshape(-1)[index] = function(*subset)
    return result[()]


def _entries(array, shape, index):
    array = np.asarray(array)
    if array.shape == shape and array.flags.c_contiguous:
        return array.reshape(-1)[index]
    return np.broadcast_to(array, shape).reshape(-1)[index] if array.ndim else np.full(index.size, array)


def log1pmx(u):
    """``log(1 + u) - u``, accurate to a few ulps relative, including at tiny ``u``."""
    u = np.asarray(u)
    with np.errstate(divide="ignore", invalid="ignore"):
        # For u <= -1/2, 1 + u is exact (Sterbenz), so log(1 + u) is as good as log1p.
        direct = np.log(1 + u) - u
    return refine(direct, np.abs(u) < _LOG1PMX_SERIES_BELOW, _log1pmx_series, u)


def _log1pmx_series(u):
    t = u / (2 + u)
    t2 = t * t
    odd_sum = 1.0 / (2 * _LOG1PMX_TERMS + 1)
    for k in range(_LOG1PMX_TERMS - 1, 0, -1):
        odd_sum = 1.0 / (2 * k + 1) + t2 * odd_sum
    return 2 * t2 * (t * odd_sum - 1 / (1 - t))


def expm1mx(x):
    """``exp(x) - 1 - x``, accurate to a few ulps relative, including at tiny ``x``."""
    x = np.asarray(x)
    with np.errstate(over="ignore"):
        direct = (np.exp(x) - 1) - x
    return refine(direct, np.abs(x) < _EXPM1MX_SERIES_BELOW, _expm1mx_series, x)


def _expm1mx_series(x):
    total = _INVERSE_FACTORIALS[_EXPM1MX_TERMS + 1]
    for k in range(_EXPM1MX_TERMS, 1, -1):
        total = _INVERSE_FACTORIALS[k] + x * total
    return x * x * total
