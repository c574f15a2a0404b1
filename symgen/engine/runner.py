"""Running empirical checks over a derivation's domain, driven by hypothesis.

Hypothesis draws the parameter points (and the seed of each point's random
numbers), so a failing check shrinks to the simplest point where it fails: that is
the counterexample ``symgen.check`` reports. Runs are derandomized by default, so
``symgen verify`` gives the same table every time.
"""
from __future__ import annotations

import functools
import importlib
import math
import weakref
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import mpmath
import numpy as np
import sympy as sp

from .checks import MAX_EVALUATIONS, Outcome
from .domains import EDGE_DISTANCE, Count, OneOf, log_uniform_offsets

# Requirements with a boundary a segment crosses, which bisection finds (not a != 0).
INEQUALITIES = (sp.GreaterThan, sp.StrictGreaterThan, sp.LessThan, sp.StrictLessThan)
STRICT_INEQUALITIES = (sp.StrictGreaterThan, sp.StrictLessThan)

DEFAULT_EXAMPLES = 30

#: Points drawn from the domains by a fixed NumPy seed, evaluated after hypothesis's
#: own: a check's power must not hang on which points one hypothesis release happens
#: to generate (its derandomized sequence changes between releases), so every check
#: also sees a few ordinary interior points that are the same everywhere.
ANCHOR_POINTS = 3
ANCHOR_SEED = 20261127


@dataclass
class CheckReport:
    """The result of one check over many parameter points."""

    derivation: str
    check: str
    kind: str
    outputs: tuple
    points: int = 0
    worst_point: dict | None = None
    worst: Outcome | None = None
    counterexample: dict | None = None      # the shrunk failing point, when it failed
    failure: Outcome | None = None
    error: str | None = None
    #: The smallest relative error of the outputs this check refutes with probability >= 0.99
    #: at its sharpest point (an error of that size everywhere is refuted), and at its least
    #: sharp one (an error confined there must be larger to be seen); NaN when not stated.
    resolution: float = math.nan
    coarsest_resolution: float = math.nan

    @property
    def passed(self) -> bool:
        return self.failure is None and self.error is None

    def as_dict(self) -> dict:
        return {
            "derivation": self.derivation, "check": self.check, "kind": self.kind,
            "outputs": list(self.outputs), "points": self.points, "passed": self.passed,
            "worst_point": _plain_point(self.worst_point),
            "worst": self.worst.as_dict() if self.worst else None,
            "counterexample": _plain_point(self.counterexample),
            "failure": self.failure.as_dict() if self.failure else None,
            "error": self.error,
            "resolution": self.resolution, "coarsest_resolution": self.coarsest_resolution,
        }


def _plain_point(point):
    if point is None:
        return None
    return {name: (value.tolist() if isinstance(value, np.ndarray) else float(value))
            for name, value in point.items()}


#: One draw in EDGE_ODDS puts a parameter at one of its domain's edges (the rest are
#: ordinary draws, which shrink away from the edges), so hypothesis explores the edges
#: and a failure there shrinks among them. One point in BOUNDARY_ODDS goes onto the
#: boundary of the requirements: moved there if it falls outside one (rather than
#: discarded), pushed there if it is inside (u^T w = -1, rarely drawn by chance).
EDGE_ODDS = 8
BOUNDARY_ODDS = 8


def parameter_strategy(derivation):
    """A hypothesis strategy of parameter points {name: value} from the declared domains,
    the domains' edges among them (:data:`EDGE_ODDS`), requirement boundaries too
    (:data:`BOUNDARY_ODDS`)."""
    from hypothesis import assume
    from hypothesis import strategies as st

    @st.composite
    def points(draw):
        dimensions = {symbol: draw(st.integers(low, high), label=symbol.name)
                      for symbol, (low, high) in derivation.dimensions.items()}
        point = {}
        params = {param.name: param for param in derivation.params}
        for param in derivation.params:
            point[param.name] = draw(_value_or_edge(param, dimensions), label=param.name)
        for second, first in derivation.near:
            if draw(st.booleans(), label=f"{second} near {first}"):
                offset = draw(log_uniform_offsets(), label="relative offset")
                point[second] = params[second].domain.nearby(point[first], offset)
        onto = bool(derivation.requires) and draw(
            st.integers(0, BOUNDARY_ODDS - 1), label="onto the boundary") == BOUNDARY_ODDS - 1
        if not derivation.satisfies_requirements(point):
            point = towards_boundary(derivation, base_point(derivation), point) if onto else None
            assume(point is not None)
        elif onto:
            point = _pushed_onto_a_boundary(derivation, point, dimensions)
        # Whatever moved a value (a near pair, a boundary), it stays in its interval: a
        # candidate is never judged at alpha_bar = 0, outside (0, 1].
        assume(all(params[name].domain.contains(value) for name, value in point.items()
                   if hasattr(params[name].domain, "contains")))
        return point

    return points()


def _pushed_onto_a_boundary(derivation, point, dimensions) -> dict:
    """``point`` (inside the requirements) moved onto the boundary of the first inequality
    requirement it can reach (:func:`_requirement_boundary`), or left where it is."""
    edges = {param.name: param.domain.edges(dimensions) for param in derivation.params}
    for relation, _ in derivation.requires:
        pushed = _requirement_boundary(derivation, relation, point, edges)
        if pushed is not None:
            return pushed
    return point


def _value_or_edge(param, dimensions):
    from hypothesis import strategies as st

    ordinary = param.domain.strategy(dimensions)
    edges = param.domain.edges(dimensions)
    # The flag shrinks to 0, an ordinary draw: a counterexample leaves an edge if it can.
    at_edge = st.integers(0, EDGE_ODDS - 1).map(lambda flag: flag == EDGE_ODDS - 1)
    return at_edge.flatmap(lambda edge: st.sampled_from(edges) if edge else ordinary)


# --- the fixed edge and corner points of every check --------------------------------

#: The seed of the base point the edge points vary one parameter at a time from.
EDGE_SEED = 20261128
#: Bisection steps onto a requirement's boundary: the point found is within 2^-60 of the
#: segment it moves along from the boundary (a few ulps of the parameters).
BOUNDARY_STEPS = 60


def base_point(derivation) -> dict:
    """An ordinary interior point of the domain, the same every run, at the largest
    dimension drawn (where a covariance can be ill-conditioned)."""
    largest = {symbol: high for symbol, (_, high) in derivation.dimensions.items()}
    return derivation.sample_point(np.random.default_rng(EDGE_SEED), largest or None)


def edge_points(derivation) -> list[dict]:
    """The fixed points every check is evaluated at besides hypothesis's and the anchors
    (:func:`_edge_points`), computed once per derivation (a boundary takes a bisection)."""
    if derivation not in _EDGE_POINTS:
        _EDGE_POINTS[derivation] = _edge_points(derivation)
    return [dict(point) for point in _EDGE_POINTS[derivation]]


_EDGE_POINTS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _edge_points(derivation) -> list[dict]:
    """The fixed points every check is evaluated at besides hypothesis's and the anchors:

    * each parameter at each of its domain's edges, the others at :func:`base_point`;
    * the all-low and the all-high corners (every parameter at its first or last edge);
    * each ``near`` pair nearly equal (relative offsets +-1e-12) at the base point;
    * each inequality requirement's boundary (u^T w = -1; alpha_bar_prev = alpha_bar_t).

    A point outside a requirement moves along the segment from the base point towards it
    until it meets the boundary (:func:`onto_boundary`); where it cannot (a discrete
    parameter, an equation or an inequation), it is left out."""
    base = base_point(derivation)
    dimensions = _dimensions_of(derivation, base)
    edges = {param.name: param.domain.edges(dimensions) for param in derivation.params}
    candidates = [{**base, name: value} for name, values in edges.items() for value in values]
    candidates += [{name: values[0] for name, values in edges.items()},
                   {name: values[-1] for name, values in edges.items()}]
    candidates += _near_pairs(derivation, base)
    points = []
    for candidate in candidates:
        if not derivation.satisfies_requirements(candidate):
            candidate = towards_boundary(derivation, base, candidate)
        if candidate is not None:
            points.append(candidate)
    points += [point for point in (_requirement_boundary(derivation, relation, base, edges)
                                   for relation, _ in derivation.requires) if point is not None]
    return _distinct(points)


#: How near zero :func:`near_zero_points` puts the real parameters whose interval spans it.
NEAR_ZERO = (0.0, 1e-12, 1e-9, 1e-6, 1e-3)


def near_zero_points(derivation) -> list[dict]:
    """Zero is where textbook forms cancel without two parameters being near each other:
    the VAE's KL term at loc = 0, logvar = 1e-9 (exp(logvar) - 1 - logvar), a score at
    x - loc = 0. From the base point, every real parameter whose interval spans 0 is set
    to each of :data:`NEAR_ZERO` (signs alternating), all together and one at a time."""
    spanning = [param for param in derivation.params if param.domain.shape_kind == "scalar"
                and getattr(param.domain, "values", None) is None
                and getattr(param.domain, "low", 1) < 0 < getattr(param.domain, "high", -1)]
    if not spanning:
        return []
    base = base_point(derivation)
    points = []
    for size in NEAR_ZERO:
        points.append({**base, **{param.name: size * (-1) ** index for index, param in enumerate(spanning)}})
        if len(spanning) > 1:
            points += [{**base, param.name: size} for param in spanning]
    return [point for point in points if derivation.satisfies_requirements(point)]


def _dimensions_of(derivation, point) -> dict:
    return {param.domain.dimension: np.shape(point[param.name])[0]
            for param in derivation.params if param.domain.shape_kind != "scalar"}


def _near_pairs(derivation, base) -> list[dict]:
    params = {param.name: param for param in derivation.params}
    return [{**base, second: params[second].domain.nearby(base[first], sign * EDGE_DISTANCE)}
            for second, first in derivation.near for sign in (1, -1)]


def _distinct(points) -> list[dict]:
    seen, kept = set(), []
    for point in points:
        if _point_key(point) not in seen:
            seen.add(_point_key(point))
            kept.append(point)
    return kept


def towards_boundary(derivation, base: dict, outside: dict) -> dict | None:
    """``outside`` (a point that fails a requirement) moved onto the requirements'
    boundary: only the parameters of the failed requirements move, back towards their
    values at ``base`` (u and w onto u^T w = -1, z and the bias kept, small as they may
    be); where that is no path (another requirement fails at the start), every parameter
    moves towards ``base``."""
    failed = {symbol.name for relation, _ in derivation.requires
              if not _holds(derivation, relation, outside) for symbol in relation.free_symbols}
    partly_back = {**outside, **{name: base[name] for name in failed}}
    for inside in (partly_back, base):
        moved = onto_boundary(derivation, inside, outside)
        if moved is not None:
            return moved
    return None


def onto_boundary(derivation, inside: dict, outside: dict) -> dict | None:
    """The last point on the segment from ``inside`` (which satisfies the derivation's
    requirements) towards ``outside`` (which does not) that still satisfies them, by
    bisection: a point on the boundary of an inequality requirement. None where the
    segment is no path: a discrete parameter (a count, a grid value) would leave its
    values, an array changes shape, or what fails is an equation or an inequation
    (a != 0, whose excluded set a segment only grazes)."""
    if not _satisfies_exactly(derivation, inside) or not _can_move(derivation, inside, outside):
        return None
    violated = [relation for relation, _ in derivation.requires if not _holds(derivation, relation, outside)]
    if not all(isinstance(relation, INEQUALITIES) for relation in violated):
        return None
    low, high = 0.0, 1.0          # inside at 0, outside at 1
    for _ in range(BOUNDARY_STEPS):
        middle = (low + high) / 2
        if _satisfies_exactly(derivation, _along(inside, outside, middle)):
            low = middle
        else:
            high = middle
    if any(isinstance(relation, STRICT_INEQUALITIES) for relation in violated):
        # Not in the domain itself (eta < 2 scale^2, where the function is infinite): as
        # near as an open end of an interval, EDGE_DISTANCE inside, where the condition
        # number (~1e12) still leaves float64 values a few digits.
        low *= 1 - EDGE_DISTANCE
    return _along(inside, outside, low)


def _can_move(derivation, inside, outside) -> bool:
    """Whether the segment between the points stays in the domains: no array changes shape,
    no count or grid value moves."""
    for param in derivation.params:
        start, end = inside[param.name], outside[param.name]
        if np.shape(start) != np.shape(end):
            return False
        if isinstance(param.domain, (Count, OneOf)) and not np.array_equal(start, end):
            return False
    return True


def _along(inside, outside, fraction) -> dict:
    """inside + fraction (outside - inside), parameter by parameter; a parameter the two
    points share keeps its exact value."""
    point = {}
    for name, start in inside.items():
        end = outside[name]
        if isinstance(start, np.ndarray):
            point[name] = start + fraction * (end - start)
        else:
            point[name] = start if start == end else float(start + fraction * (end - start))
    return point


def _satisfies_exactly(derivation, point) -> bool:
    """The requirements hold for the exact values of the floats at ``point`` (in rational
    arithmetic), not just after rounding: at a boundary point u1 w1 + u2 w2 may round to
    -1 where the exact sum, which the 50-digit reference evaluates, is below it."""
    for relation, _ in derivation.requires:
        names = sorted(symbol.name for symbol in relation.free_symbols)
        exact = [Fraction(float(point[name])) for name in names]
        try:
            holds = _rational_test(relation, tuple(names))(*exact)
        except TypeError:          # not a rational function of the parameters: SymPy decides
            holds = bool(relation.subs({symbol: sp.Rational(float(point[symbol.name]))
                                        for symbol in relation.free_symbols}))
        if not holds:
            return False
    return True


@functools.lru_cache(maxsize=64)
def _rational_test(relation, names):
    """``relation`` as a Python function of its parameters, exact on fractions."""
    symbols = sorted(relation.free_symbols, key=lambda symbol: symbol.name)
    return sp.lambdify(symbols, relation, modules=[{"Abs": abs}, "math"])


def _holds(derivation, relation, point) -> bool:
    symbols = {param.name: param.symbol for param in derivation.params}
    return bool(relation.subs({symbols[s.name]: point[s.name] for s in relation.free_symbols}))


def _slack(derivation, relation, point) -> float:
    """How far inside an inequality requirement ``point`` is (negative: outside)."""
    symbols = {param.name: param.symbol for param in derivation.params}
    gap = (relation.lhs - relation.rhs).subs({symbols[s.name]: point[s.name] for s in relation.free_symbols})
    return float(gap) if relation.rel_op in (">=", ">") else -float(gap)


def _requirement_boundary(derivation, relation, base, edges) -> dict | None:
    """A point on the boundary of the inequality ``relation``: from ``base`` (a point inside
    the requirements), each of its parameters in turn goes to the edge that takes it
    furthest outside (u1 and w1 at opposite edges, say); where that leaves the requirement,
    :func:`onto_boundary` comes back to it. None where no edge point lies outside (T >= 1
    for T drawn from [1, 4000])."""
    if not isinstance(relation, INEQUALITIES) or not relation.free_symbols:
        return None
    names = {symbol.name for symbol in relation.free_symbols}
    outside = dict(base)
    for param in derivation.params:
        if param.name in names and param.domain.shape_kind == "scalar":
            options = [outside] + [{**outside, param.name: value} for value in edges[param.name]]
            outside = min(options, key=lambda point: _slack(derivation, relation, point))
    if _holds(derivation, relation, outside):
        return None
    return onto_boundary(derivation, base, outside)


def _point_key(point: dict) -> tuple:
    """A point as a hashable key, exact (NumPy's repr of an array rounds its entries)."""
    return tuple((name, (value.shape, value.tobytes()) if isinstance(value, np.ndarray) else repr(value))
                 for name, value in sorted(point.items()))


class _CheckFailed(Exception):
    pass


class NoValueHere(Exception):
    """A user's function has no value at a point where the quantity is defined (a 0/0 it
    does not resolve): the closed form's judge compares it near the point, so the
    empirical checks pass over it."""


def _keep_hypothesis_out_of_the_working_directory() -> None:
    """Hypothesis keeps files (constants it found in the source) under ``.hypothesis/`` in
    the working directory. symgen's checks are its own business, not the user's project:
    unless the user chose a place, or this is a pytest session (whose project has its own
    ``.hypothesis/``), they go into symgen's cache directory."""
    import os
    import sys
    import tempfile

    from . import cache

    if "HYPOTHESIS_STORAGE_DIRECTORY" in os.environ or "pytest" in sys.modules:
        return
    root = cache.directory() or Path(tempfile.gettempdir()) / "symgen-cache"
    os.environ["HYPOTHESIS_STORAGE_DIRECTORY"] = str(root / "hypothesis")


def run_check(derivation, check, values: "Evaluation", *, examples: int = DEFAULT_EXAMPLES,
              derandomize: bool = True, shrink: bool = True, seed: int | None = None) -> CheckReport:
    """Evaluate ``check`` at up to ``examples`` points; on failure, shrink to a minimal one.
    ``seed`` chooses hypothesis's points (a run with a seed is not derandomized)."""
    _keep_hypothesis_out_of_the_working_directory()
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as seeded
    from hypothesis import strategies as st

    edges = edge_points(derivation)
    if examples + ANCHOR_POINTS + len(edges) > MAX_EVALUATIONS:
        raise ValueError(f"examples must be at most {MAX_EVALUATIONS - ANCHOR_POINTS - len(edges)} "
                         f"(the false-alarm bound assumes at most {MAX_EVALUATIONS} evaluations)")
    report = CheckReport(derivation.name, check.description, check.kind, tuple(check.outputs))
    phases = [Phase.explicit, Phase.generate] + ([Phase.shrink] if shrink else [])

    # Hypothesis runs a failing example once more to report it, and shrinking may revisit
    # a point: an evaluation is a function of the point and the seed, so each is done once.
    seen: dict = {}

    def evaluate(point, seed):
        key = (_point_key(point), seed)
        if key not in seen:
            seen[key] = _evaluate(point, seed)
        return seen[key]

    def _evaluate(point, seed):
        try:
            with np.errstate(all="ignore"):
                return check.run(values, point, np.random.default_rng(seed))
        except NoValueHere as reason:
            return Outcome(True, math.nan, math.nan, math.nan, 0.0, str(reason))
        except (ValueError, ArithmeticError, TypeError) as error:
            # A formula that cannot be evaluated here (log of a negative, 1/0, a complex
            # value) is refuted here.
            return Outcome(False, math.nan, math.nan, math.nan, math.inf, f"error: {error}")

    def record(point, outcome):
        report.points += 1
        if not math.isnan(outcome.resolution):
            report.resolution = min(outcome.resolution, report.resolution) \
                if not math.isnan(report.resolution) else outcome.resolution
            report.coarsest_resolution = max(outcome.resolution, report.coarsest_resolution) \
                if not math.isnan(report.coarsest_resolution) else outcome.resolution
        if report.worst is None or not (outcome.statistic <= report.worst.statistic):
            report.worst, report.worst_point = outcome, point
        if not outcome.passed:
            report.failure, report.counterexample = outcome, point

    @settings(max_examples=examples, deadline=None, database=None,
              derandomize=derandomize and seed is None, phases=phases, suppress_health_check=list(HealthCheck), report_multiple_bugs=False)
    @given(point=parameter_strategy(derivation), seed=st.integers(0, 2**32 - 1))
    def evaluate_at(point, seed):
        outcome = evaluate(point, seed)
        if report.failure is None:
            record(point, outcome)
        elif not outcome.passed:       # hypothesis shrinking: keep the smallest failure
            report.failure, report.counterexample = outcome, point
        if not outcome.passed:
            raise _CheckFailed

    if seed is not None:
        evaluate_at = seeded(seed)(evaluate_at)
    try:
        evaluate_at()
    except _CheckFailed:
        pass
    # Anchors and edges run after hypothesis, so a failure hypothesis finds is still shrunk.
    for point, seed in _fixed_points(derivation, edges) if report.failure is None else ():
        record(point, evaluate(point, seed))
        if report.failure is not None:
            break
    return report


def _fixed_points(derivation, edges):
    """The anchors, then the edge points, each with the seed of its random numbers."""
    anchors = np.random.default_rng(ANCHOR_SEED)
    for _ in range(ANCHOR_POINTS):
        point = derivation.sample_point(anchors)
        yield point, int(anchors.integers(0, 2**32 - 1))
    seeds = np.random.default_rng(EDGE_SEED)
    for point in edges:
        yield point, int(seeds.integers(0, 2**32 - 1))


# --- the values a check compares with ---------------------------------------------


class Evaluation:
    """What a check compares against: the value of every output at a point
    (``evaluation(point) -> {output: value}``) and, for checks that apply the
    formula to samples (Stein's identity, say), a vectorized NumPy function of each
    output (``evaluation.vectorized(output)(**arrays)``).

    ``float64`` says the values come from float64 code (the shipped function) rather than
    from a high-precision evaluation (a candidate formula): then a deterministic check must
    allow for the rounding any float64 code makes where the function is ill-conditioned
    (:meth:`rounding`)."""

    def __init__(self, derivation, point_values, vectorized, float64: bool = False):
        self.derivation = derivation
        self._point_values = point_values
        self._vectorized = vectorized
        self._compiled: dict = {}
        self.float64 = float64

    def __call__(self, point: dict) -> dict:
        return self._point_values(point)

    def vectorized(self, output: str):
        if output not in self._compiled:       # compiled once per output, not per point
            self._compiled[output] = self._vectorized(output)
        return self._compiled[output]

    def rounding(self, output: str, point: dict) -> float:
        """The absolute error a backward-stable float64 evaluation may make at ``point``:
        ULPS_PER_CONDITION ulps of sum_i |x_i df/dx_i| (0 for high-precision values)."""
        if not self.float64:
            return 0.0
        from .evaluate import EPS64, ULPS_PER_CONDITION, sensitivity

        return ULPS_PER_CONDITION * EPS64 * sensitivity(self.derivation, output, point)


def formula_function(derivation):
    """The public NumPy function of a derivation: the committed generated one for the
    built-in catalogue (what users import), or one generated in memory for a user's
    own derivation, by the same code generator."""
    from .catalogue import builtin_directory

    if derivation.source is not None and derivation.source.parent == builtin_directory() \
            and not derivation.source.name.startswith("_"):
        return getattr(importlib.import_module("symgen.formulas"), derivation.name)
    return generated_function(derivation)


def generated_function(derivation, reuse: bool = True):
    """The derivation's NumPy function generated in memory; ``reuse=False`` leaves out
    the array reuse (symgen/engine/reuse.py), to compare the two."""
    from .printer import module_source

    namespace: dict = {"__name__": f"symgen_generated_{derivation.name}"}
    exec(compile(module_source(derivation.topic, [derivation], reuse), f"<generated {derivation.name}>",
                 "exec"), namespace)
    return namespace[derivation.name]


def _select(derivation, function, output):
    names = list(derivation.outputs)
    if len(names) == 1:
        return function
    index = names.index(output)
    return lambda **arguments: function(**arguments)[index]


def formula_values(derivation, function=None) -> Evaluation:
    """Values of all outputs from the public NumPy function."""
    function = function or formula_function(derivation)
    names = list(derivation.outputs)

    def values(point):
        result = function(**point)
        if len(names) == 1:
            return {names[0]: result}
        return dict(zip(names, result))

    return Evaluation(derivation, values, lambda output: _select(derivation, function, output), float64=True)


def _elementwise(reduce):
    # SymPy prints Min(a, b) as amin((a, b), axis=0), which cannot stack an array with a
    # number: reduce elementwise instead, with NumPy's broadcasting.
    return lambda operands, axis=0: functools.reduce(reduce, operands)


def numpy_function(derivation, expression):
    """``expression`` as a vectorized NumPy function of the derivation's arguments (special
    functions print their own NumPy code)."""
    import sympy as sp
    from scipy import special

    from symgen.numerics import stable

    if derivation.is_matrix:
        raise ValueError(f"{derivation.name}: matrix-valued candidates cannot be applied to samples")
    symbols = [param.symbol for param in derivation.params]
    # erf/erfc: NumPy has none; they appear in textbook forms (log_normal_mass's meaning).
    compiled = sp.lambdify(symbols, expression,
                           [{"stable": stable, "erf": special.erf, "erfc": special.erfc,
                             "amin": _elementwise(np.minimum), "amax": _elementwise(np.maximum)}, "numpy"])
    names = derivation.param_names
    return lambda **arguments: compiled(*(arguments[name] for name in names))


def _as_float(value):
    if isinstance(value, list):   # a vector-valued output
        return np.array([_as_float(entry) for entry in value])
    if isinstance(value, mpmath.mpc):
        raise ValueError(f"the value is complex ({mpmath.nstr(value, 6)}), not real")
    return float(value)


def expression_values(derivation, output: str, expression, base=None) -> Evaluation:
    """Values where ``output`` comes from ``expression`` (evaluated with mpmath at a
    point, NumPy on samples) and the other outputs from their closed forms."""
    from .evaluate import value_or_limit

    expressions = {name: derivation.outputs[name].closed_form for name in derivation.outputs}
    expressions[output] = expression

    def values(point):
        # From 30 digits up until the value stops moving: a textbook form that cancels
        # (a distance between near-equal Gaussians, 1e-25 from terms of 1e2) is judged by
        # its exact value, not by the rounding noise of one precision. Where it has no
        # value (a removable 0/0), by its limit.
        return {name: _as_float(value_or_limit(derivation, value, point)[0]) for name, value in expressions.items()}

    return Evaluation(derivation, values, lambda name: numpy_function(derivation, expressions[name]))
