"""The first judge of a candidate formula: the derivation's proved closed form.

Every step from the definition to the closed form is proved, so a candidate that
differs from the closed form anywhere in the domain is wrong there, however small the
difference; no sampling error stands between them. The candidate is compared with the
closed form, evaluated at 50 digits from the same float64 inputs, at
:data:`JUDGE_POINTS` points of the domain (every other one with its ``near`` pairs
nearly equal, relative offsets 1e-12 to 1e-3), at the domain's edge points (each
parameter at each edge, the corners, the requirements' boundaries) and at points where
the real parameters that can be 0 are near it (:func:`near_zero_points`).

What counts as a difference depends on how the candidate is evaluated:

* an expression is evaluated at 30 digits and more (until its value stops moving), so
  it must agree with the closed form to ``rtol`` (default 1e-15) relative, or to 1e-20
  of the size of its terms where the value is 0 (a score at the mean);
* a callable runs in float64 (or float32), which rounds; it must agree to within

      rtol |f| + 8 eps (sum_i |x_i df/dx_i| + M(f)),     rtol = 1e-9 by default,

  eps its output's machine epsilon. The first part of the rounding term is what
  rounding the inputs moves f by (relative to |f| it is the condition number); the
  second, M(f), is a first-order running error bound of the textbook form
  (:func:`magnitude`), what a correct formula that cancels, the Gaussian KL of
  near-equal distributions written as its textbook terms, loses to rounding. For a
  matrix derivation the rounding term is 8 eps M(f) times the largest condition number
  of its matrices. A correct formula that loses digits that way is verified, and its
  accuracy is reported separately (:attr:`Judgement.max_relative_error`). A larger
  difference that the caller's ``rounding`` test explains (the same code at 60 digits
  computes the closed form: symgen/engine/api.py) does not refute either.

A callable with no value at a point where the quantity is defined (0/0 where
alpha_bar_t = alpha_bar_prev) is judged :data:`CALLABLE_OFFSET` (relative) away, with a
note; an expression comes with its limit there already (symgen/engine/evaluate.py).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import mpmath
import numpy as np
import sympy as sp

from .accuracy import UNDERFLOW, accuracy_points
from .evaluate import EPS64, ULPS_PER_CONDITION, evaluate, reference_value, sensitivity
from .runner import edge_points, near_zero_points

#: Domain points the closed form judges at, besides the edge points.
JUDGE_POINTS = 200
#: Default relative tolerance of an expression (evaluated at 30 digits and more)...
EXPRESSION_RTOL = 1e-15
#: ...of the rounding-free part of a zero's allowance for an expression, relative to M(f)...
EXPRESSION_FLOOR = 1e-20
#: ...and of a callable, on top of its rounding allowance.
CALLABLE_RTOL = 1e-9
#: How far a point moves (relative) when the candidate has no value there: an expression
#: is evaluated exactly at the moved point, a float64 callable loses ~eps/offset to the
#: cancellation of its 0/0.
EXPRESSION_OFFSET = 1e-9
CALLABLE_OFFSET = 1e-6


@dataclass
class Comparison:
    """The candidate against the closed form at one point, for one output."""

    point: dict
    output: str
    closed_form: object          # float, or a list of floats for a vector output
    candidate: object
    error: float                 # |candidate - closed form| (largest entry)
    allowance: float
    relative_error: float
    note: str = ""

    @property
    def ratio(self) -> float:
        if self.error == 0:
            return 0.0
        return self.error / self.allowance if self.allowance > 0 else math.inf


@dataclass
class Judgement:
    """The closed form's verdict on a candidate over the judged points."""

    points: int
    rtol: float
    worst: Comparison | None = None              # largest error / allowance
    refuting: Comparison | None = None           # the counterexample, when it refutes
    least_accurate: Comparison | None = None     # largest relative error
    proved: str | None = None                    # how SymPy proved candidate - closed form = 0
    differing: int = 0                           # comparisons beyond the allowance
    notes: list = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.refuting is None

    @property
    def max_relative_error(self) -> float:
        return self.least_accurate.relative_error if self.least_accurate else 0.0


def judge_points(derivation, seed: int = 0) -> list[dict]:
    """The points the closed form judges at: :data:`JUDGE_POINTS` domain points (half with
    their near pairs nearly equal), the edge points, and points near zero."""
    return accuracy_points(derivation, JUDGE_POINTS, seed) + edge_points(derivation) + near_zero_points(derivation)


def judge(derivation, outputs, candidate_at, *, high_precision: bool, rtol: float | None = None,
          epsilon=lambda: EPS64, seed: int = 0, rounding=None) -> Judgement:
    """Compare the candidate with the closed form of each of ``outputs`` at
    :func:`judge_points`. ``candidate_at(points)`` gives {output: [value per point]} (an
    mpf, a float, or a list of entries; NaN or an exception's text where it has none).
    ``high_precision`` says the values come from a 30-digit evaluation (an expression),
    else from float64 code, whose rounding is allowed for (``epsilon()``: its machine
    epsilon, known once it has run). ``rounding(comparison)``, for float64 code, says
    whether a difference beyond the allowance is rounding in the candidate's own
    arithmetic (it shrinks when the candidate computes in more precision): such a point
    does not refute it, and its accuracy report shows the digits lost there."""
    rtol = (EXPRESSION_RTOL if high_precision else CALLABLE_RTOL) if rtol is None else rtol
    result = Judgement(0, rtol)
    points = judge_points(derivation, seed)
    values = candidate_at(points)
    offset = EXPRESSION_OFFSET if high_precision else CALLABLE_OFFSET
    beyond, unvalued = [], []
    for index, point in enumerate(points):
        for output in outputs:
            value, note = values[output][index], ""
            if value is None:          # not evaluable here: the candidate_at says why
                continue
            if not _has_value(value):
                moved = _nearby_with_value(derivation, point, output, candidate_at, offset)
                if moved is not None:
                    note = (f"no value at {_format_point(point)} ({_reason(values[output][index])}); "
                            f"judged {offset:g} (relative) away")
                    unvalued.append(note)
                    point, value = moved
            comparison = _compare(derivation, output, point, value, rtol, high_precision, epsilon(), note)
            if result.worst is None or comparison.ratio > result.worst.ratio:
                result.worst = comparison
            if comparison.ratio > 1:
                beyond.append(comparison)
            if (result.least_accurate is None
                    or not comparison.relative_error <= result.least_accurate.relative_error):
                result.least_accurate = comparison
    result.points = len(points)
    result.differing = len(beyond)
    if unvalued:
        result.notes.append(f"{len(unvalued)} judged points where the candidate has no value, "
                            f"the first {unvalued[0]}")
    explained = 0
    # A counterexample with a value says more than one where the candidate has none.
    for comparison in sorted(beyond, key=lambda c: (not math.isfinite(c.error), -c.ratio))[:MOST_EXPLAINED]:
        if rounding is None or isinstance(comparison.candidate, str) or not rounding(comparison):
            result.refuting = comparison
            break
        explained += 1
    else:
        if len(beyond) > MOST_EXPLAINED:      # too many to explain them all away
            result.refuting = max(beyond, key=lambda c: c.ratio)
    if explained and result.refuting is None:
        result.differing = 0
        result.notes.append(f"at {explained} points the difference exceeds float64 rounding of the "
                            f"textbook form but shrinks when the candidate computes in more precision: "
                            f"rounding in its own arithmetic, not a different formula")
    return result


#: The points beyond the allowance that the rounding test may explain; more than this
#: many refute the candidate whatever the test says of them.
MOST_EXPLAINED = 120


def compare(derivation, output, point, value, rtol, high_precision=False, epsilon=EPS64) -> Comparison:
    """The candidate's ``value`` against the closed form of ``output`` at ``point``."""
    return _compare(derivation, output, point, value, rtol, high_precision, epsilon, "")


def difference(value, reference) -> float:
    """|value - reference| (largest entry), with ``value`` at its own precision (an
    extended-precision longdouble keeps its digits)."""
    return float(_error_and_scale(value, reference)[0])


def _compare(derivation, output, point, value, rtol, high_precision, epsilon, note) -> Comparison:
    reference = reference_value(derivation, derivation.outputs[output].closed_form, point)
    closed = _plain(reference)
    if not _has_value(value):
        return Comparison(point, output, closed, _plain_or_text(value), math.inf, 0.0, math.inf, note)
    error, scale = _error_and_scale(value, reference)
    if error == 0:
        return Comparison(point, output, closed, _plain(value), 0.0, 0.0, 0.0, note)
    relative = float(error / max(scale, UNDERFLOW))
    allowance = rtol * scale
    if error > allowance:        # only then is the rounding term worth its derivatives
        floor = EXPRESSION_FLOOR if high_precision else ULPS_PER_CONDITION * epsilon
        allowance += floor * rounding_scale(derivation, output, point)
    return Comparison(point, output, closed, _plain(value), float(error), float(allowance), relative, note)


def rounding_scale(derivation, output, point) -> float:
    """sum_i |x_i df/dx_i| + M(f) (see the module docstring); for a matrix derivation,
    M(f) times the largest condition number of its matrices."""
    closed_form = derivation.outputs[output].closed_form
    if derivation.is_matrix:
        conditions = [np.linalg.cond(np.asarray(value, dtype=np.float64)) for value in point.values()
                      if np.ndim(value) == 2]
        return float(max(conditions, default=1.0)) * _matrix_magnitude(derivation, closed_form, point)
    return sensitivity(derivation, output, point) + float(magnitude(derivation, closed_form, point))


def magnitude(derivation, expression, point):
    """M(f): the size of what a naive evaluation of ``expression`` at ``point`` rounds, a
    first-order running error bound: a sum's M is the sum of its terms' M (not |sum|),
    a product's the product of its factors', and a function of an argument g adds what
    the rounding of g does to it, |F(g)| + |F'(g)| M(g) (log(1 + y) with y tiny: the
    rounding of 1 + y, not |log(1 + y)|; cos(theta) at its zero: |sin(theta)| M(theta))."""
    if expression.is_Add:
        return sum(magnitude(derivation, term, point) for term in expression.args)
    if expression.is_Mul:
        return functools.reduce(lambda a, b: a * b, (magnitude(derivation, factor, point)
                                                     for factor in expression.args))
    if expression.is_Pow and expression.exp.is_Integer and expression.exp > 0:
        return magnitude(derivation, expression.base, point) ** int(expression.exp)
    if expression.is_Number:
        return abs(mpmath.mpf(float(expression)))
    value = _absolute_value(derivation, expression, point)
    inner, outer_slope = _outer_derivative(expression)
    if inner is None or inner.is_Symbol or inner.is_Number:
        return value            # the argument is an input, exact as given
    return value + _absolute_value(derivation, outer_slope, point) * magnitude(derivation, inner, point)


def _absolute_value(derivation, expression, point):
    try:
        value = reference_value(derivation, expression, point, digits=30, agree=1e-10)
        return abs(value) if not mpmath.isnan(value) else mpmath.mpf(0)
    except (ArithmeticError, ValueError, TypeError):
        return mpmath.mpf(0)


@functools.lru_cache(maxsize=512)
def _outer_derivative(expression):
    """(g, F'(g)) for ``expression`` = F(g), a function or a power of one argument g;
    (None, None) for anything else or where SymPy has no derivative of F."""
    if expression.is_Pow and expression.exp.is_Number:
        inner = expression.base
    elif isinstance(expression, sp.Function) and len(expression.args) == 1:
        inner = expression.args[0]
    else:
        return None, None
    argument = sp.Dummy("g", real=True)
    try:
        slope = sp.diff(expression.xreplace({inner: argument}), argument).xreplace({argument: inner})
    except (TypeError, ValueError, NotImplementedError, AttributeError):
        return None, None
    if slope.has(sp.Derivative, sp.Subs):
        return None, None
    return inner, slope


def _matrix_magnitude(derivation, expression, point) -> float:
    """M(f) of a matrix derivation's output: sums (of scalars, or of matrices inside a
    trace) replaced by the sums of their terms' magnitudes, a matrix term inside a trace
    measured by |trace|, a vector output by its largest entry."""
    if isinstance(expression, sp.Trace):
        return _matrix_magnitude(derivation, expression.args[0], point)
    if isinstance(expression, (sp.Add, sp.MatAdd)):
        return sum(_matrix_magnitude(derivation, term, point) for term in expression.args)
    if isinstance(expression, (sp.Mul, sp.MatMul)) and expression.args[0].is_Number:
        rest = expression.func(*expression.args[1:])
        return abs(float(expression.args[0])) * _matrix_magnitude(derivation, rest, point)
    if isinstance(expression, sp.MatrixExpr) and expression.shape[0] == expression.shape[1] \
            and expression.shape != (1, 1) and not expression.shape[1] == 1:
        expression = sp.Trace(expression)
    value = evaluate(derivation, expression, point, 30)
    return float(max(abs(v) for v in value) if isinstance(value, list) else abs(value))


def _error_and_scale(value, reference):
    if isinstance(reference, list):
        entries = np.asarray(value, dtype=object).reshape(-1)
        if len(entries) != len(reference):
            return mpmath.inf, max([abs(r) for r in reference] + [mpmath.mpf(0)])
        error = max(abs(mpmath.mpf(_entry(v)) - r) for v, r in zip(entries, reference))
        return error, max(abs(r) for r in reference)
    value = mpmath.mpf(_entry(value))
    if value == reference:            # both -inf (log 0), say
        return mpmath.mpf(0), abs(reference)
    return abs(value - reference), abs(reference)


def _entry(value):
    if isinstance(value, np.ndarray) or isinstance(value, list):
        flat = np.asarray(value, dtype=object).reshape(-1)
        if len(flat) != 1:
            raise ValueError("a vector where a number was expected")
        value = flat[0]
    if isinstance(value, np.longdouble) and np.finfo(np.longdouble).eps < EPS64:
        return mpmath.mpf(np.format_float_scientific(value, unique=True))
    return value if isinstance(value, mpmath.mpf) else float(value)


def _has_value(value) -> bool:
    if isinstance(value, str):
        return False
    if isinstance(value, mpmath.mpf):
        return not mpmath.isnan(value)
    try:
        return not np.any(np.isnan(np.asarray(value, dtype=np.float64)))
    except (TypeError, ValueError):
        return False


def _reason(value) -> str:
    return value if isinstance(value, str) else "NaN"


def _nearby_with_value(derivation, point, output, candidate_at, offset):
    """The first point ``offset`` (relative) from ``point``, one scalar parameter moved,
    inside the domain and its requirements, where the candidate has a value."""
    for param in derivation.params:
        value = point[param.name]
        if np.ndim(value) or getattr(param.domain, "values", None) is not None:
            continue
        for sign in (1, -1):
            moved = dict(point)
            moved[param.name] = float(value * (1 + sign * offset)) if value else sign * offset
            inside = getattr(param.domain, "contains", lambda v: True)(moved[param.name])
            if not inside or not derivation.satisfies_requirements(moved):
                continue
            candidate = candidate_at([moved])[output][0]
            if _has_value(candidate):
                return moved, candidate
    return None


def _plain(value):
    if isinstance(value, list):
        return [float(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.astype(float).tolist() if value.ndim else float(value)
    return float(value)


def _plain_or_text(value):
    return value if isinstance(value, str) else _plain(value)


def _format_point(point: dict) -> str:
    return ", ".join(f"{name}={format_value(value)}" for name, value in point.items())


def format_value(value) -> str:
    """A parameter value with every digit needed to reproduce it (repr of a float: the
    shortest string that reads back as the same double, so 1 - 1e-12 is not printed as 1)."""
    if isinstance(value, np.ndarray) or isinstance(value, list):
        return "[" + ", ".join(format_value(v) for v in np.asarray(value).tolist()) + "]"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return repr(float(value))


# --- a proof, where SymPy finds one cheaply --------------------------------------------

#: Larger candidates are not given to SymPy's simplification (it may take minutes).
PROOF_MAX_OPERATIONS = 120


def proved_equal(candidate, closed_form) -> str | None:
    """How SymPy shows candidate - closed form = 0, trying cheap rewrites only; None
    when it does not (which proves nothing: the points judge)."""
    if isinstance(candidate, sp.MatrixExpr) or sp.count_ops(candidate) > PROOF_MAX_OPERATIONS:
        return None
    difference = candidate - closed_form
    attempts = [
        ("expand", sp.expand),
        ("cancel", lambda e: sp.cancel(sp.together(sp.expand(e)))),
        ("expand_log + cancel", lambda e: sp.cancel(sp.expand(sp.expand_log(e)))),
    ]
    for name, attempt in attempts:
        try:
            if attempt(difference) == 0:
                return name
        except (sp.PolynomialError, TypeError, ValueError, NotImplementedError):
            continue
    return None
