"""Numerical evaluation of SymPy expressions at parameter points.

Two uses: a 50-digit reference value of a closed form (for accuracy tests), and the
value of a candidate formula handed to ``symgen.check``. Scalar expressions go
through mpmath (``lambdify``, cached per expression); matrix expressions are
evaluated by substituting explicit high-precision matrices.
"""
from __future__ import annotations

import functools

import mpmath
import numpy as np
import sympy as sp

from .functions import mpmath_namespace


@functools.lru_cache(maxsize=256)
def _mpmath_function(arguments: tuple, expression):
    # Every special function evaluates by its declared mpmath route.
    modules = [{"log1p": mpmath.log1p, "expm1": mpmath.expm1, **mpmath_namespace()}, "mpmath"]
    # zoo (a division by a constant 0, in a wrong variant) has no mpmath name: it evaluates to NaN,
    # undefined, which refutes the variant.
    return sp.lambdify(arguments, expression.xreplace({sp.zoo: sp.nan}), modules)


def evaluate(derivation, expression, point: dict, digits: int = 50):
    """The value of ``expression`` at ``point`` ({param name: float or array}) as an mpf."""
    if derivation.is_matrix:
        return _evaluate_matrix(derivation, expression, point, digits)
    arguments = tuple(param.symbol for param in derivation.params)
    function = _mpmath_function(arguments, expression)
    with mpmath.workdps(digits):
        return function(*(_exact(point[param.name]) for param in derivation.params))


def _exact(value):
    """A parameter value as an mpf: a float exactly, an mpf (a point moved by less than a
    float can, to take a limit) as it is."""
    return value if isinstance(value, mpmath.mpf) else mpmath.mpf(float(value))


def _evaluate_matrix(derivation, expression, point: dict, digits: int):
    substitution = {}
    size = None
    for param in derivation.params:
        value = np.asarray(point[param.name], dtype=np.float64)
        if value.ndim == 0:
            substitution[param.symbol] = sp.Float(float(value), digits)
            continue
        matrix = value.reshape(-1, 1) if value.ndim == 1 else value
        size = matrix.shape[0]
        substitution[param.symbol] = sp.ImmutableMatrix(
            matrix.shape[0], matrix.shape[1], [sp.Float(float(v), digits) for v in matrix.flat])
    for dimension in derivation.dimensions:
        substitution[dimension] = sp.Integer(size)
    evaluated = sp.sympify(expression.xreplace(substitution)).doit()
    if isinstance(evaluated, sp.MatrixExpr) and not isinstance(evaluated, sp.MatrixBase):
        # A sum with a constant vector (OneMatrix, in a mutant) stays a MatAdd until made explicit.
        evaluated = evaluated.as_explicit()
    value = sp.N(evaluated, digits)
    with mpmath.workdps(digits):
        if isinstance(value, sp.MatrixBase):
            if value.shape != (1, 1):   # a vector- or matrix-valued output: its entries, flat
                return [_to_mpf(entry) for entry in value]
            value = value[0, 0]
        return _to_mpf(value)


def _to_mpf(value):
    return mpmath.mpmathify(value._to_mpmath(mpmath.mp.prec)) if value.is_real else mpmath.nan


def reference_value(derivation, expression, point: dict, digits: int = 50, agree: float = 1e-30):
    """A high-precision value of ``expression`` at ``point``, with at least ``digits``
    digits of working precision, raised until two successive evaluations agree.

    50 digits are not always enough for a textbook form: at loc = 1e-25, logvar = 0
    the VAE's KL (e^logvar + loc^2 - 1 - logvar)/2 cancels 50 digits away; doubling
    the precision until the value stops moving catches that. A zero does not count as
    agreement (total cancellation looks the same at every precision that is too low).
    """
    previous = evaluate(derivation, expression, point, digits)
    while digits < MAX_REFERENCE_DIGITS:
        digits *= 2
        current = evaluate(derivation, expression, point, digits)
        if not _is_zero(current) and _agree(previous, current, agree):
            return current
        if (_below(previous, FLOAT64_NEGLIGIBLE) and _below(current, FLOAT64_NEGLIGIBLE)
                and (digits > 2 * FLOAT64_NEGLIGIBLE or not (_is_zero(previous) or _is_zero(current)))):
            # Zero for float64 (a distance between identical distributions through a
            # matrix square root, say): the rounding noise of the cancellation differs at
            # every precision, so it never "agrees", but it is below the smallest subnormal.
            # An exact zero counts as such once the precision is so high that its noise
            # (10^-digits relative to the terms) is far below 10^-330 too; at lower
            # precision a zero may be a total cancellation hiding a small true value.
            return [mpmath.mpf(0)] * len(current) if isinstance(current, list) else mpmath.mpf(0)
        previous = current
    if _is_zero(previous):
        return previous
    raise ArithmeticError(f"no stable reference value at {point} even at {digits} digits")


MAX_REFERENCE_DIGITS = 1600


#: How far (relative) :func:`limit_value` moves a parameter: far below float64's
#: resolution, so the value there is the limit for every float64 purpose.
LIMIT_OFFSET = mpmath.mpf(10) ** -40


def limit_value(derivation, expression, point: dict):
    """The value of ``expression`` at ``point`` where it has none there but is continuous
    (a removable 0/0: (b^2 - a^2)/((b - a)(b + a)) at a = b): its value with one scalar
    parameter moved by :data:`LIMIT_OFFSET` (relative), inside the domain and its
    requirements, evaluated at high precision. Returns (value, the parameter moved);
    raises ArithmeticError where no such move gives a value."""
    for param in derivation.params:
        value = point[param.name]
        if np.ndim(value) or getattr(param.domain, "values", None) is not None:
            continue
        low, high = getattr(param.domain, "low", None), getattr(param.domain, "high", None)
        # Towards the middle of the parameter's interval first: from an edge, inward.
        inward = 1 if low is None or high is None or value < (low + high) / 2 else -1
        for sign in (inward, -inward):
            moved = dict(point)
            with mpmath.workdps(80):
                start = mpmath.mpf(float(value))
                moved[param.name] = start * (1 + sign * LIMIT_OFFSET) if start else sign * LIMIT_OFFSET
            if not _requirements_hold_exactly(derivation, moved):
                continue
            try:
                found = reference_value(derivation, expression, moved, digits=80, agree=1e-20)
            except (ArithmeticError, ValueError, TypeError):
                continue
            if not _is_nan(found):
                return found, param.name
    raise ArithmeticError(f"no value at {point}, nor {mpmath.nstr(LIMIT_OFFSET, 1)} (relative) away from it")


def value_or_limit(derivation, expression, point: dict):
    """(value, False) of a candidate ``expression`` at ``point``, at 30 digits and more
    (until it stops moving); (its limit, True) where it has no value there but one
    :data:`LIMIT_OFFSET` away (a removable 0/0)."""
    try:
        value = reference_value(derivation, expression, point, digits=30, agree=1e-20)
        if not _is_nan(value):
            return value, False
    except ZeroDivisionError:
        pass
    return limit_value(derivation, expression, point)[0], True


def _requirements_hold_exactly(derivation, point) -> bool:
    """The requirements at ``point`` in exact rational arithmetic (an mpf moved by 1e-40
    would round back onto the boundary as a SymPy Float)."""
    def exact(value):
        if isinstance(value, mpmath.mpf):
            mantissa, exponent = value.man_exp
            return sp.Integer(mantissa) * sp.Integer(2) ** exponent
        return sp.Rational(float(value))

    symbols = {param.name: param.symbol for param in derivation.params}
    return all(bool(relation.subs({symbols[s.name]: exact(point[s.name]) for s in relation.free_symbols}))
               for relation, _ in derivation.requires)


def _is_nan(value) -> bool:
    entries = value if isinstance(value, list) else [value]
    return any(mpmath.isnan(entry) for entry in entries if isinstance(entry, mpmath.mpf))
# 10^-330 is below float64's smallest subnormal (4.9e-324): a value that small is 0 there.
FLOAT64_NEGLIGIBLE = 330


def _below(value, digits: int) -> bool:
    bound = mpmath.mpf(10) ** -digits
    return all(abs(v) < bound for v in value) if isinstance(value, list) else abs(value) < bound


def _is_zero(value) -> bool:
    return all(v == 0 for v in value) if isinstance(value, list) else value == 0


def _agree(previous, current, tolerance) -> bool:
    if isinstance(current, list):
        scale = max(abs(c) for c in current)
        return all(abs(c - p) <= tolerance * scale for p, c in zip(previous, current))
    return previous == current or abs(current - previous) <= tolerance * abs(current)


# --- the sensitivity: where 1e-12 is out of reach of any float64 code ----------------
#
# Relative to |f| the sensitivity is the componentwise condition number; the accuracy
# bound (symgen/engine/accuracy.py) uses it absolutely, so it stays finite at a zero of f.

EPS64 = float(np.finfo(np.float64).eps)

#: A float64 evaluation that is backward stable (each operation exact up to a rounding of
#: its inputs) is accurate to a few ulps times the condition number; this many ulps.
ULPS_PER_CONDITION = 8


def sensitivity(derivation, output: str, point: dict) -> float:
    """sum_i |x_i df/dx_i| for a scalar output at ``point``: how far a relative rounding
    of the inputs by one unit moves the value, in absolute terms. A backward-stable float64
    code is within a few ulps of this of the exact value; unlike the relative condition
    number (this over |f|) it stays finite where f = 0. From SymPy's derivatives of the
    textbook closed form, evaluated by mpmath; 0 for a matrix-valued derivation (held to
    the plain bound)."""
    if derivation.is_matrix:
        return 0.0
    closed_form = derivation.outputs[output].closed_form
    total = mpmath.mpf(0)
    for param in derivation.params:
        if point[param.name] == 0:
            continue
        slope = reference_value(derivation, _derivative(closed_form, param.symbol), point, digits=30,
                                agree=1e-20)
        total += abs(mpmath.mpf(float(point[param.name])) * slope)
    return float(total)


@functools.lru_cache(maxsize=256)
def _derivative(expression, symbol):
    # UnevaluatedExpr only fixes an order of rounding for the printed code (a fraction formed first);
    # SymPy would keep its derivative unevaluated.
    plain = expression.replace(lambda node: isinstance(node, sp.UnevaluatedExpr), lambda node: node.args[0])
    return sp.diff(plain, symbol)
