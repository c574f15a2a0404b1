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
from dataclasses import dataclass
from pathlib import Path

import mpmath
import numpy as np

from .checks import MAX_EVALUATIONS, Outcome
from .domains import log_uniform_offsets

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
        }


def _plain_point(point):
    if point is None:
        return None
    return {name: (value.tolist() if isinstance(value, np.ndarray) else float(value))
            for name, value in point.items()}


def parameter_strategy(derivation):
    """A hypothesis strategy of parameter points {name: value} from the declared domains."""
    from hypothesis import assume
    from hypothesis import strategies as st

    @st.composite
    def points(draw):
        dimensions = {symbol: draw(st.integers(low, high), label=symbol.name)
                      for symbol, (low, high) in derivation.dimensions.items()}
        point = {}
        params = {param.name: param for param in derivation.params}
        for param in derivation.params:
            point[param.name] = draw(param.domain.strategy(dimensions), label=param.name)
        for second, first in derivation.near:
            if draw(st.booleans(), label=f"{second} near {first}"):
                offset = draw(log_uniform_offsets(), label="relative offset")
                point[second] = params[second].domain.nearby(point[first], offset)
        assume(derivation.satisfies_requirements(point))
        return point

    return points()


def _point_key(point: dict) -> tuple:
    """A point as a hashable key, exact (NumPy's repr of an array rounds its entries)."""
    return tuple((name, (value.shape, value.tobytes()) if isinstance(value, np.ndarray) else repr(value))
                 for name, value in sorted(point.items()))


class _CheckFailed(Exception):
    pass


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
              derandomize: bool = True, shrink: bool = True) -> CheckReport:
    """Evaluate ``check`` at up to ``examples`` points; on failure, shrink to a minimal one."""
    _keep_hypothesis_out_of_the_working_directory()
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st

    if examples + ANCHOR_POINTS > MAX_EVALUATIONS:
        raise ValueError(f"examples must be at most {MAX_EVALUATIONS - ANCHOR_POINTS} "
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
        except (ValueError, ArithmeticError, TypeError) as error:
            # A formula that cannot be evaluated here (log of a negative, 1/0, a complex
            # value) is refuted here.
            return Outcome(False, math.nan, math.nan, math.nan, math.inf, f"error: {error}")

    def record(point, outcome):
        report.points += 1
        if report.worst is None or not (outcome.statistic <= report.worst.statistic):
            report.worst, report.worst_point = outcome, point
        if not outcome.passed:
            report.failure, report.counterexample = outcome, point

    @settings(max_examples=examples, deadline=None, database=None, derandomize=derandomize,
              phases=phases, suppress_health_check=list(HealthCheck), report_multiple_bugs=False)
    @given(point=parameter_strategy(derivation), seed=st.integers(0, 2**32 - 1))
    def evaluate_at(point, seed):
        outcome = evaluate(point, seed)
        if report.failure is None:
            record(point, outcome)
        elif not outcome.passed:       # hypothesis shrinking: keep the smallest failure
            report.failure, report.counterexample = outcome, point
        if not outcome.passed:
            raise _CheckFailed

    try:
        evaluate_at()
    except _CheckFailed:
        pass
    # Anchors run after hypothesis, so a failure hypothesis finds is still shrunk.
    anchors = np.random.default_rng(ANCHOR_SEED)
    for _ in range(ANCHOR_POINTS if report.failure is None else 0):
        point = derivation.sample_point(anchors)
        record(point, evaluate(point, int(anchors.integers(0, 2**32 - 1))))
        if report.failure is not None:
            break
    return report


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

    if derivation.source.parent == builtin_directory() and not derivation.source.name.startswith("_"):
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
    from .evaluate import evaluate

    expressions = {name: derivation.outputs[name].closed_form for name in derivation.outputs}
    expressions[output] = expression

    def values(point):
        return {name: _as_float(evaluate(derivation, value, point, digits=30))
                for name, value in expressions.items()}

    return Evaluation(derivation, values, lambda name: numpy_function(derivation, expressions[name]))
