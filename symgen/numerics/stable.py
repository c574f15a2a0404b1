"""Cancellation-free primitives that the derivations' stable rewrites print to.

Each is declared in SymPy (``symgen.engine.symbolic``) with its textbook meaning, so a
derivation proves the rewrite equal to the textbook form; here it is evaluated without
the catastrophic cancellation of that form near 0. Accuracy against 50-digit mpmath is
tested in ``tests/test_numerics_stable.py``.
"""
from __future__ import annotations

import numpy as np

# Taylor coefficients 1/k! for expm1(x) - x = sum_{k>=2} x^k / k!; 18 terms reach
# 1/19! ~ 8e-18 relative at |x| = 1, below half an ulp of the leading x^2/2.
_EXPM1MX_TERMS = 18
_EXPM1MX_COEFFICIENTS = [1.0]
for _k in range(3, 2 + _EXPM1MX_TERMS):
    _EXPM1MX_COEFFICIENTS.append(_EXPM1MX_COEFFICIENTS[-1] / _k)
# Horner form: x^2 (1/2 + x (1/6 + x (1/24 + ...))); stored as 1/k! for k = 2, 3, ...
_EXPM1MX_COEFFICIENTS = [c / 2.0 for c in _EXPM1MX_COEFFICIENTS]

# log1p(u) - u through t = u / (2 + u), where log1p(u) = 2 atanh(t) and u = 2t / (1 - t):
#     log1p(u) - u = -2 t^2 / (1 - t) + 2 (t^3/3 + t^5/5 + ...),
# a sum without cancellation for |t| <= 1/3 (u in [-1/2, 1]); 16 odd terms make the
# truncated tail below 1e-17 of the result there.
_LOG1PMX_TERMS = 16


def log1pmx(u):
    """``log(1 + u) - u``, accurate to a few ulps relative, including at tiny ``u``."""
    u = np.asarray(u)
    near = (u >= -0.5) & (u <= 1.0)
    if np.all(near):
        return _log1pmx_series(u)
    with np.errstate(divide="ignore", invalid="ignore"):
        result = np.log1p(u) - u
    if np.any(near):
        result = np.where(near, _log1pmx_series(np.where(near, u, 0)), result)
    return result


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
    near = np.abs(x) <= 1.0
    if np.all(near):
        return _expm1mx_series(x)
    with np.errstate(over="ignore"):
        result = np.expm1(x) - x
    if np.any(near):
        result = np.where(near, _expm1mx_series(np.where(near, x, 0)), result)
    return result


def _expm1mx_series(x):
    total = _EXPM1MX_COEFFICIENTS[-1]
    for coefficient in reversed(_EXPM1MX_COEFFICIENTS[:-1]):
        total = coefficient + x * total
    return x * x * total
