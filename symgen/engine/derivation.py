"""Derivations: a chain of proved equalities from a definition to a closed form.

A derivation module writes its chains down when it is imported, and nothing more: a
step that SymPy must compute (solve, integrate, dsolve, simplify) is given as a function
of the previous step, ``chain.step(lambda previous: ..., reason)``, and runs when the
derivation is first needed (``Derivation.derive``). Proofs run when asked
(``Derivation.prove``). Both results are kept on disk by content
(symgen/engine/cache.py), so a second command neither re-derives nor re-proves.

Every step is an equality with a reason. :func:`prove_step` proves it twice:

* symbolically: the difference of the two sides, with every unevaluated
  expectation evaluated by SymPy and every stable primitive replaced by its textbook
  meaning, simplifies to 0 (for matrix expressions: on explicit symbolic matrices of
  each dimension in ``Derivation.explicit_dimensions``);
* numerically: both sides, with expectations evaluated by quadrature instead, agree
  to 25 digits at random points of the domain, so a wrong simplification that SymPy
  accepted (or an integral it got wrong) cannot slip through.
"""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import sympy as sp

from . import cache
from .functions import LemmaError
from .expectations import Expectation
from .primitives import rewrite_textbook

KINDS = ("likelihood", "elbo", "divergence", "adversarial", "denoising/score", "metric", "identity")

# Digits for the numeric spot checks of a step; agreement required to SPOT_CHECK_RTOL.
SPOT_CHECK_DIGITS = 40
SPOT_CHECK_RTOL = 1e-25
SPOT_CHECK_POINTS = 4


class DerivationError(Exception):
    """A step that SymPy could not prove, or that failed its numeric spot check."""


@dataclass(frozen=True)
class Param:
    """An argument of the derived function: its SymPy symbol, its domain, what it means."""

    symbol: sp.Basic
    domain: object
    doc: str

    @property
    def name(self) -> str:
        return self.symbol.name


@dataclass
class Step:
    expression: sp.Basic | None
    reason: str
    proof: str = ""          # how the equality with the previous step was proved
    seconds: float = 0.0
    # A step SymPy computes: recipe(previous expression) -> this step's expression, run
    # by Derivation.derive (None for a step written down).
    recipe: Callable | None = field(default=None, repr=False)
    # The form the cited reference writes (Chain.step(..., published=True)): what the views
    # show as the closed form, before the rewrites that follow it.
    published: bool = False


class Output:
    """One closed form of a derivation, with the chain that reaches it."""

    def __init__(self, derivation: "Derivation", name: str, doc: str = ""):
        self.derivation = derivation
        self.name = name
        self.doc = doc
        self.written: list[Step] = []      # the steps as written; expressions filled by derive()
        self.has_stable = False

    def __repr__(self):
        return f"<Output {self.derivation.name}.{self.name}: {len(self.written)} steps>"

    @property
    def steps(self) -> list[Step]:
        """The chain, every expression computed (derives the derivation if needed)."""
        self.derivation.derive()
        return self.written

    @property
    def stable(self) -> sp.Basic | None:
        """The expression the generated code evaluates, when it is a stable rewrite."""
        return self.steps[-1].expression if self.has_stable else None

    @property
    def closed_form(self) -> sp.Basic:
        """The textbook closed form: the last step before any stable rewrite."""
        return self.textbook_step.expression

    @property
    def textbook_step(self) -> Step:
        return self.steps[-2] if self.has_stable else self.steps[-1]

    @property
    def published_step(self) -> Step:
        """The step in the form its reference writes it, as marked by ``published=True``;
        otherwise the textbook closed form. The views show it as the closed form, and the
        steps after it as rewrites proved equal to it."""
        return next((step for step in self.steps if step.published), self.textbook_step)

    @property
    def implementation(self) -> sp.Basic:
        return self.steps[-1].expression


class Chain:
    """The chain of steps for one output, written one equality at a time."""

    def __init__(self, derivation: "Derivation", output: Output):
        self._derivation = derivation
        self._output = output

    @property
    def current(self) -> sp.Basic:
        """The last expression of the chain (derives the derivation if a step is computed)."""
        return self._output.steps[-1].expression

    def step(self, new: sp.Basic | Callable[[sp.Basic], sp.Basic], reason: str, *,
             published: bool = False) -> "Chain":
        """Equate the current expression with ``new``, for ``reason``. A function
        ``new(previous) -> expression`` is a step SymPy computes: it runs when the
        derivation is derived, not when the module is imported. ``published`` marks the
        form the reference writes (shown as the closed form)."""
        if self._output.has_stable:
            raise ValueError(f"{self._derivation.name}.{self._output.name}: the stable form is the last step")
        if callable(new) and not isinstance(new, sp.Basic):
            self._output.written.append(Step(None, reason, recipe=new, published=published))
        else:
            self._output.written.append(Step(sp.sympify(new), reason, published=published))
        self._derivation._invalidate()
        return self

    def stable(self, expression, reason: str) -> "Chain":
        """The form the generated code evaluates: one more step, proved like the rest."""
        self.step(expression, reason)
        self._output.has_stable = True
        return self


class Derivation:
    """A named derivation: parameters with domains, chains of steps, empirical checks.

    ``outputs`` maps output names to chains; a single-output derivation's output is
    named after the derivation. ``near`` lists pairs (second, first) of parameters
    that hypothesis also draws nearly equal (second = first x (1 + tiny)), where
    naive formulas cancel. ``implementation`` names a hand-written NumPy function
    ("module:function") that replaces printed code, for matrix-valued formulas.
    ``infinite_at`` says where an output is infinite as a limit, inside the domain (the SNR
    of step 0, the data): the NumPy code divides by zero there without a warning.
    ``notation`` declares how the views write what the conventions of
    symgen/engine/notation.py do not: a symbol's LaTeX, an output's (by its name), and a
    name for an expression a stable branch tests (the textbook KL -> KL).
    """

    def __init__(self, name: str, *, title: str, kind: str, params: list[Param],
                 references: list[str], summary: str = "", near: list[tuple] = (),
                 dimensions: dict | None = None, explicit_dimensions=(1, 2, 3),
                 implementation: str | None = None, returns: str = "", requires=(),
                 sections=(), explicit_matrices: "ExplicitMatrices | None" = None, infinite_at: str = "",
                 notation: dict | None = None):
        if kind not in KINDS:
            raise ValueError(f"derivation {name!r}: kind must be one of {KINDS}, got {kind!r}")
        self.name = name
        self.title = title
        self.kind = kind
        self.params = list(params)
        self.references = list(references)
        self.summary = summary
        self.near = [(a.name, b.name) for a, b in near]
        # Relations between parameters that the domains alone cannot say
        # (alpha_bar_prev >= alpha_bar_t): checked by the generated code, respected
        # by every draw.
        self.requires = [(sp.sympify(relation), message) for relation, message in requires]
        self.dimensions = dict(dimensions or {})
        self.explicit_dimensions = tuple(explicit_dimensions)
        self.explicit_matrices = explicit_matrices
        self.implementation = implementation
        self.infinite_at = infinite_at
        self.notation = dict(notation or {})
        self.returns = returns
        # Relations where the derivation's proofs and checks draw their points, that the code
        # does not require (a KL is +oo outside them): see symgen/engine/kl.py.
        self.finite_where: list = []
        # The theory notebook's sections this derivation makes real (for the notebook).
        self.sections = tuple(sections)
        self.outputs: dict[str, Output] = {}
        self.checks: list = []
        self.plots: list = []
        self.slips: list[tuple[str, str, str | None]] = []
        self.module = None          # set by the catalogue: the module that defined it
        self.source = None          # the file that defined it (set by the catalogue)
        self._derived = True        # nothing to compute until a computed step is written
        self._proved = False

    def __repr__(self):
        return f"<Derivation {self.name}: {self.title}>"

    @property
    def topic(self) -> str:
        """The module the derivation lives in (derivations/<topic>.py), by its file name."""
        return Path(self.source).stem if self.source else self.name

    # --- writing the chain --------------------------------------------------------

    def define(self, definition, reason: str, output: str | None = None, doc: str = "", *,
               published: bool = False) -> Chain:
        """Start the chain of ``output`` (default: the derivation's own name) at a
        definition; a function of no arguments is a definition SymPy computes (the
        solution of an ODE, say), run when the derivation is derived. ``published`` marks a
        definition that is already the closed form as the reference writes it."""
        output = output or self.name
        if output in self.outputs:
            raise ValueError(f"derivation {self.name!r} already has an output {output!r}")
        written = Output(self, output, doc=doc)
        if callable(definition) and not isinstance(definition, sp.Basic):
            written.written.append(Step(None, reason, "definition", recipe=lambda _: definition(),
                                        published=published))
        else:
            written.written.append(Step(sp.sympify(definition), reason, "definition", published=published))
        self.outputs[output] = written
        self._invalidate()
        return Chain(self, written)

    def add_check(self, check) -> None:
        """An empirical check of one or more outputs (symgen/engine/checks.py)."""
        check.derivation = self
        self.checks.append(check)

    def add_slip(self, candidate: str, description: str, output: str | None = None) -> None:
        """A mistake people make with this formula: ``candidate``, in the derivation's
        argument names, for ``output`` (needed when there are several). The docs list the
        slips, and a catalogue-wide test has the empirical checks refute every one."""
        self.slips.append((candidate, description, output))

    def _invalidate(self) -> None:
        self._proved = False
        if any(step.expression is None for output in self.outputs.values() for step in output.written):
            self._derived = False

    # --- deriving: the steps SymPy computes ------------------------------------------

    def derive(self) -> "Derivation":
        """Compute every step given as a function (from the cache when it has them)."""
        if self._derived:
            return self
        self._derived = True    # set first: a recipe may read this derivation's own chains
        try:
            entry = cache.load(cache.key(self), self.name)
            if entry is None or not self._fill(entry.get("expressions", {})):
                for output in self.outputs.values():
                    previous = None
                    for step in output.written:
                        if step.recipe is not None:
                            step.expression = sp.sympify(step.recipe(previous))
                        previous = step.expression
                self._store()
        except BaseException:
            self._derived = False
            raise
        return self

    def _computed(self) -> dict:
        return {name: {index: step.expression for index, step in enumerate(output.written)
                       if step.recipe is not None}
                for name, output in self.outputs.items()}

    def _fill(self, expressions: dict) -> bool:
        wanted = self._computed()
        if {name: sorted(steps) for name, steps in wanted.items()} != \
                {name: sorted(steps) for name, steps in expressions.items()}:
            return False
        for name, steps in expressions.items():
            for index, expression in steps.items():
                self.outputs[name].written[index].expression = expression
        return True

    def _store(self, proofs: dict | None = None) -> None:
        entry = {"expressions": self._computed()}
        if proofs is not None:
            entry["proofs"] = proofs
        cache.store(cache.key(self), self.name, entry)

    def add_plot(self, title: str, draw: Callable) -> None:
        """A figure for the docs and the notebook: ``draw(axes)`` draws on matplotlib axes
        (theory against samples, say), with its own fixed seed so it is reproducible."""
        self.plots.append((title, draw))

    # --- queries ------------------------------------------------------------------

    @property
    def param_names(self) -> list[str]:
        return [param.name for param in self.params]

    @property
    def is_matrix(self) -> bool:
        return any(param.domain.shape_kind != "scalar" for param in self.params)

    def output(self, name: str | None = None) -> Output:
        if name is None:
            if len(self.outputs) != 1:
                raise KeyError(f"{self.name} has outputs {list(self.outputs)}: name one as "
                               f"{self.name}.OUTPUT")
            return next(iter(self.outputs.values()))
        try:
            return self.outputs[name]
        except KeyError:
            raise KeyError(f"{self.name} has no output {name!r}; outputs: {list(self.outputs)}") from None

    def symbols(self) -> dict[str, sp.Basic]:
        names = {param.name: param.symbol for param in self.params}
        names.update({symbol.name: symbol for symbol in self.dimensions})
        return names

    # --- proofs -------------------------------------------------------------------

    def prove(self) -> "Derivation":
        """Prove every step of every output (kept in memory and, by content, on disk)."""
        if self._proved:
            return self
        self.derive()
        entry = cache.load(cache.key(self), self.name)
        if entry is not None and "proofs" in entry and self._fill(entry["expressions"]):
            for name, proofs in entry["proofs"].items():
                for step, (proof, seconds) in zip(self.outputs[name].written[1:], proofs):
                    step.proof, step.seconds = proof, seconds
            self._proved = True
            return self
        rng = np.random.default_rng(sum(map(ord, self.name)))
        for output in self.outputs.values():
            for previous, step in zip(output.written, output.written[1:]):
                start = time.perf_counter()
                try:
                    step.proof = prove_step(self, previous.expression, step.expression, rng)
                except (DerivationError, LemmaError) as error:
                    raise DerivationError(f"{self.name}, output {output.name}, step "
                                          f"{step.reason!r}: {error}") from None
                step.seconds = time.perf_counter() - start
        self._proved = True
        self._store({name: [(step.proof, step.seconds) for step in output.written[1:]]
                     for name, output in self.outputs.items()})
        return self

    def sample_point(self, rng, dimensions=None) -> dict:
        """A random point of the domain that satisfies ``requires`` (by rejection)."""
        for _ in range(10_000):
            sizes = dimensions or {d: int(rng.integers(low, high + 1))
                                   for d, (low, high) in self.dimensions.items()}
            point = {param.name: param.domain.sample(rng, sizes) for param in self.params}
            if self.satisfies_requirements(point):
                return point
        raise ValueError(f"{self.name}: no domain point satisfies {self.requires}")

    def satisfies_requirements(self, point: dict) -> bool:
        symbols = {param.name: param.symbol for param in self.params}
        for relation in [relation for relation, _ in self.requires] + self.finite_where:
            values = {symbols[s.name]: point[s.name] for s in relation.free_symbols}
            if not bool(relation.subs(values)):
                return False
        return True


# --- proving one step -------------------------------------------------------------


def _evaluate_symbolically(expression):
    return rewrite_textbook(expression.doit())


def _simplifies_to_zero(difference) -> str | None:
    """Try increasingly expensive simplifications; return the one that reached 0."""
    attempts = [
        ("expand", lambda e: sp.expand(e)),
        ("cancel", lambda e: sp.cancel(sp.together(sp.expand(e)))),
        ("simplify", sp.simplify),
        ("expand_log + simplify", lambda e: sp.simplify(sp.expand_log(sp.expand(e)))),
        ("cancel", lambda e: sp.cancel(sp.expand_log(sp.expand(e)))),
        ("expand_log(force) + simplify", lambda e: sp.simplify(sp.expand_log(e, force=True))),
        # Powers with a symbolic exponent split into factors, (T - 1)^(t - 1) (T - 1) = (T - 1)^t (a
        # product's closed form divided by the one before it).
        ("expand powers + simplify", lambda e: sp.simplify(sp.expand(e, power_exp=True, power_base=True,
                                                                     force=True))),
        # A power with a symbolic exponent against its exponential, (1 - 1/K)^n = exp(n log(1 - 1/K)).
        ("powers as exponentials + simplify", lambda e: sp.simplify(e.rewrite(sp.exp))),
    ]
    for name, attempt in attempts:
        result = attempt(difference)
        # A vector-valued output (a score) reaches a zero matrix rather than 0.
        if result == 0 or (isinstance(result, sp.MatrixBase) and result.is_zero_matrix):
            return name
    return None


@dataclass(frozen=True)
class ExplicitMatrices:
    """How a matrix derivation's proofs make its matrices explicit, when one symbolic matrix
    per parameter is not enough: ``substitution(size)`` maps the derivation's matrix
    symbols (and matrix functions of them, such as square roots) to explicit symbolic
    matrices of that size, for each of ``sizes``; ``description`` says what that covers
    and is printed in every proof line."""

    description: str
    substitution: Callable[[int], dict]
    sizes: tuple = (1, 2)


def prove_step(derivation: Derivation, before, after, rng) -> str:
    if derivation.is_matrix:
        proofs = []
        declared = derivation.explicit_matrices
        for size in declared.sizes if declared else derivation.explicit_dimensions:
            substitution = _explicit_substitution(derivation, size)
            if declared:
                substitution.update(declared.substitution(size))
            difference = (_evaluate_symbolically(before.xreplace(substitution))
                          - _evaluate_symbolically(after.xreplace(substitution)))
            how = _simplifies_to_zero(difference)
            if how is None:
                raise DerivationError(f"not proved for explicit {size}x{size} matrices; "
                                      f"residual {sp.simplify(difference)}")
            proofs.append(size)
        _spot_check(derivation, before, after, rng)
        return (f"SymPy, on {_explicit_matrices(derivation)} for d = {', '.join(map(str, proofs))}; "
                f"numerically at {SPOT_CHECK_POINTS} points")
    difference = (_evaluate_symbolically(_finite_part(derivation, before))
                  - _evaluate_symbolically(_finite_part(derivation, after)))
    how = _simplifies_to_zero(difference) or _by_cases(derivation, difference)
    if how is None:
        raise DerivationError(f"SymPy could not prove the equality; residual {sp.simplify(difference)}")
    _spot_check(derivation, before, after, rng)
    integrated = "E integrated by SymPy, " if _has_expectation(before) or _has_expectation(after) else ""
    return f"SymPy: {integrated}difference = 0 by {how}; numerically at {SPOT_CHECK_POINTS} points"


def _finite_part(derivation: Derivation, expression):
    """Where a derivation says where its output is finite (``finite_where``), a step written
    ``Piecewise((value, finite), (oo, True))`` is proved by its finite value: outside, both
    sides are +oo by the same condition."""
    if not derivation.finite_where:
        return expression
    return expression.replace(
        lambda e: isinstance(e, sp.Piecewise) and len(e.args) == 2 and e.args[1].expr == sp.oo
        and e.args[1].cond == sp.true,
        lambda e: e.args[0].expr)


def _by_cases(derivation: Derivation, difference):
    """An equality that holds only on a finite domain (a table lookup written with
    indicator polynomials, say), proved value by value: every combination of the values
    of the finite parameters it involves, each difference simplified to 0."""
    finite = [param for param in derivation.params
              if hasattr(param.domain, "values") and param.symbol in difference.free_symbols]
    if not finite:
        return None
    methods = set()
    for combination in itertools.product(*(param.domain.values for param in finite)):
        case = difference.xreplace({param.symbol: sp.Integer(value) for param, value in zip(finite, combination)})
        how = _simplifies_to_zero(case)
        if how is None:
            return None
        methods.add(how)
    names = ", ".join(f"{param.name} in {{{', '.join(map(str, param.domain.values))}}}" for param in finite)
    return f"cases {names}, each by {' / '.join(sorted(methods))}"


def _explicit_matrices(derivation) -> str:
    """What the symbolic matrices of a proof were: general symmetric ones (a symbol per
    entry), or as the derivation declares (ExplicitMatrices)."""
    if derivation.explicit_matrices:
        return derivation.explicit_matrices.description
    return "explicit general symbolic matrices"


def _has_expectation(expression) -> bool:
    return bool(expression.atoms(Expectation))


def _explicit_substitution(derivation: Derivation, size: int) -> dict:
    substitution = {dimension: size for dimension in derivation.dimensions}
    for param in derivation.params:
        if param.domain.shape_kind != "scalar":
            explicit = param.domain.explicit(param.name, size)
            substitution[param.symbol] = explicit
            if param.domain.shape_kind == "matrix":
                # adj(M)/det(M) without simplification: SymPy's default inverse
                # simplifies as it eliminates and takes tens of seconds at d = 3.
                substitution[sp.Inverse(param.symbol)] = sp.ImmutableMatrix(
                    explicit.adjugate(method="berkowitz") / explicit.det(method="berkowitz"))
    return substitution


def exact_float(value) -> sp.Float:
    """A float64 as a SymPy Float carrying more digits than the spot check works at: the value
    is exact either way, but SymPy evaluates to the least precision among its inputs, and a step
    whose value cancels (the planar flow's 1 + h' u^T w near 0 loses 7 digits) must still show
    SPOT_CHECK_RTOL agreement."""
    return sp.Float(float(value), SPOT_CHECK_DIGITS + 20)


def _numeric_substitution(derivation: Derivation, point: dict, size: int | None) -> dict:
    substitution = {}
    for param in derivation.params:
        value = point[param.name]
        if isinstance(value, np.ndarray):
            matrix = value.reshape(-1, 1) if value.ndim == 1 else value
            substitution[param.symbol] = sp.ImmutableMatrix(matrix.shape[0], matrix.shape[1],
                                                           [exact_float(v) for v in matrix.flat])
        else:
            substitution[param.symbol] = exact_float(value)
    for dimension in derivation.dimensions:
        substitution[dimension] = size
    return substitution


def _spot_check(derivation: Derivation, before, after, rng) -> None:
    for index in range(SPOT_CHECK_POINTS):
        size = None
        dimensions = None
        if derivation.dimensions:
            size = derivation.explicit_dimensions[index % len(derivation.explicit_dimensions)]
            dimensions = {d: size for d in derivation.dimensions}
        point = derivation.sample_point(rng, dimensions)
        substitution = _numeric_substitution(derivation, point, size)
        left = _numeric_value(before.xreplace(substitution))
        right = _numeric_value(after.xreplace(substitution))
        scale = max(abs(left), abs(right), sp.Float(1e-300))
        if abs(left - right) > SPOT_CHECK_RTOL * scale:
            raise DerivationError(f"numeric spot check failed at {point}: {left} != {right}")


def _numeric_value(expression):
    """Evaluate a step numerically: expectations by quadrature first, then the rest."""
    expectations = lambda e: isinstance(e, Expectation)  # noqa: E731
    quadrature = expression.replace(expectations, lambda e: e.evalf(SPOT_CHECK_DIGITS))
    # A product or sum with numeric bounds term by term: SymPy's doit would first find its closed
    # form with the numbers inside, rounding them to 15 digits (a rising factorial of a Float).
    quadrature = quadrature.replace(lambda e: isinstance(e, (sp.Product, sp.Sum)) and not e.free_symbols,
                                    lambda e: e.evalf(SPOT_CHECK_DIGITS))
    value = sp.N(quadrature.doit(), SPOT_CHECK_DIGITS)
    if isinstance(value, sp.MatrixBase):
        value = value[0, 0]
    return value
