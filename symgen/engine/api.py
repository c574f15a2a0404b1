"""The engine's public functions: ``derivation``, ``derivations``, ``check``, ``verify``."""
from __future__ import annotations

import math

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import sympy as sp

from . import catalogue as _catalogue
from .functions import SPECIAL_FUNCTIONS
from .matrices import DiagonalPart, MatrixSqrt
from .runner import (ANCHOR_POINTS, DEFAULT_EXAMPLES, CheckReport, expression_values, formula_values,
                     run_check)


def derivations(paths=None) -> list[str]:
    """Names of the known derivations (built-in, plus ``paths`` if given)."""
    for path in paths or ():
        _catalogue.add_path(path)
    return _catalogue.names()


def derivation(name: str):
    """The :class:`~symgen.engine.Derivation` called ``name`` (``NAME.OUTPUT`` also accepted).
    Only the module that defines it is imported, when the built index is current."""
    return _catalogue.find(name.split(".", 1)[0])


def _split(name: str):
    found = derivation(name)
    output = name.split(".", 1)[1] if "." in name else None
    return found, found.output(output).name


# --- checking a candidate formula -----------------------------------------------------


@dataclass
class Counterexample:
    """Where a candidate formula fails: the point, the estimate with its standard error,
    and the candidate's value there."""

    point: dict
    estimate: float
    standard_error: float
    candidate: float
    check: str
    detail: str = ""

    def __str__(self):
        point = ", ".join(f"{k}={_short(v)}" for k, v in self.point.items())
        if not np.all(np.isfinite(np.asarray(self.candidate, dtype=float))):
            return f"at {point}: the candidate has no finite real value ({self.detail or self.candidate})"
        spread = f" +- {self.standard_error:.3g}" if self.standard_error else ""
        return (f"at {point}: {self.check} gives {self.estimate:.6g}{spread}, "
                f"the candidate gives {self.candidate:.6g}")


def _short(value):
    if isinstance(value, np.ndarray):
        return np.array2string(value, precision=4, separator=", ").replace("\n", "")
    return f"{value:.6g}"


@dataclass
class CheckResult:
    """The verdict on a candidate formula."""

    name: str
    candidate: sp.Basic
    verified: bool
    counterexample: Counterexample | None = None
    reports: list[CheckReport] = field(default_factory=list)

    def __bool__(self):
        return self.verified

    def __str__(self):
        if self.verified:
            points = sum(report.points for report in self.reports)
            return f"verified: {self.name} = {self.candidate} ({len(self.reports)} checks, {points} points)"
        return f"refuted: {self.name} = {self.candidate}\n  counterexample {self.counterexample}"


MATRIX_FUNCTIONS = {
    "trace": sp.Trace, "tr": sp.Trace, "inv": sp.Inverse, "det": sp.Determinant,
    "logdet": lambda matrix: sp.log(sp.Determinant(matrix)),
    "quad": lambda vector, matrix: sp.Trace(vector.T * matrix * vector),
    "transpose": sp.Transpose, "sqrtm": MatrixSqrt, "diagpart": DiagonalPart,
}


def parse_candidate(found, candidate) -> sp.Basic:
    """A candidate formula as a SymPy expression in the derivation's argument names; it
    may use the special functions (sigmoid, softplus, log1pmx, ...) by name."""
    if isinstance(candidate, sp.Basic):
        expression = candidate
    else:
        names = dict(SPECIAL_FUNCTIONS)
        names.update(found.symbols())
        if found.is_matrix:
            names.update(MATRIX_FUNCTIONS)
        try:
            expression = sp.sympify(candidate, locals=names)
        except (sp.SympifyError, TypeError, SyntaxError) as error:
            hint = (" (write a quadratic form v^T A v as quad(v, A) or trace(v.T*A*v))"
                    if found.is_matrix else "")
            reason = " ".join(str(error).split())       # one line, however SymPy words it
            raise ValueError(f"cannot read the candidate {candidate!r}: {reason}{hint}") from None
    allowed = set(found.symbols().values())
    unknown = {s for s in expression.free_symbols if s not in allowed}
    if unknown:
        raise ValueError(f"the candidate uses {sorted(map(str, unknown))}, which are not arguments "
                         f"of {found.name} ({', '.join(found.param_names)})")
    return expression


def check(name: str, candidate, *, examples: int = DEFAULT_EXAMPLES, derandomize: bool = True,
          shrink: bool = True) -> CheckResult:
    """Run ``candidate`` (a string or SymPy expression) through the empirical checks of
    ``name`` (or ``NAME.OUTPUT``); verified, or refuted with a shrunk counterexample."""
    found, output = _split(name)
    expression = parse_candidate(found, candidate)
    values = expression_values(found, output, expression)
    result = CheckResult(name if "." in name or len(found.outputs) == 1 else f"{found.name}.{output}",
                         expression, True)
    for empirical in found.checks:
        if output not in empirical.outputs:
            continue
        report = run_check(found, empirical, values, examples=examples, derandomize=derandomize,
                           shrink=shrink)
        result.reports.append(report)
        if not report.passed:
            failure = report.failure
            result.verified = False
            result.counterexample = Counterexample(
                report.counterexample, failure.estimate, failure.standard_error, failure.value,
                empirical.description, failure.detail)
            break
    if not result.reports:
        raise ValueError(f"{name} has no empirical check of output {output!r}")
    return result


# --- verifying the catalogue ----------------------------------------------------------


@dataclass
class VerifyRow:
    derivation: str
    check: str
    kind: str
    passed: bool
    summary: str
    report: CheckReport | None = None
    seconds: float = 0.0

    def as_dict(self):
        row = {"derivation": self.derivation, "check": self.check, "kind": self.kind,
               "passed": self.passed, "summary": self.summary, "seconds": round(self.seconds, 3)}
        if self.report is not None:
            row["detail"] = self.report.as_dict()
        return row


@dataclass
class VerifyReport:
    rows: list[VerifyRow]

    @property
    def passed(self) -> bool:
        return all(row.passed for row in self.rows)


def verify(names=None, *, examples: int = DEFAULT_EXAMPLES, accuracy_points: int = 40,
           derandomize: bool = True, progress: Callable[[str], None] | None = None,
           jobs: int = 1) -> VerifyReport:
    """Prove every step, check the public function's accuracy against 50-digit mpmath,
    and run every empirical check, for ``names`` (default: the whole catalogue).
    ``jobs`` > 1 runs the derivations in that many processes; the rows come back in
    the catalogue's order whatever the order they finish in."""
    selected = list(names) if names else derivations()
    for name in selected:
        derivation(name)         # an unknown name fails before any work starts
    tell = progress or (lambda message: None)
    settings = dict(examples=examples, accuracy_points=accuracy_points, derandomize=derandomize)
    if jobs > 1 and len(selected) > 1:
        return _verify_in_processes(selected, settings, tell, jobs)
    rows: list[VerifyRow] = []
    for index, name in enumerate(selected, 1):
        rows += _verify_one(derivation(name), f"[{index}/{len(selected)}] {name}", tell, **settings)
    return VerifyReport(rows)


def _verify_one(found, prefix: str, tell, *, examples: int, accuracy_points: int,
                derandomize: bool) -> list[VerifyRow]:
    import time

    from .accuracy import max_relative_error
    from .derivation import DerivationError

    rows = []
    steps = sum(len(o.written) - 1 for o in found.outputs.values())
    tell(f"{prefix}: proving {steps} steps")
    start = time.perf_counter()
    try:
        found.prove()
        rows.append(VerifyRow(found.name, f"{steps} steps proved by SymPy", "proof", True,
                              "every step symbolic + numeric", seconds=time.perf_counter() - start))
    except DerivationError as error:
        rows.append(VerifyRow(found.name, "steps proved by SymPy", "proof", False, str(error),
                              seconds=time.perf_counter() - start))
    tell(f"{prefix}: accuracy against 50-digit mpmath at {accuracy_points} points")
    start = time.perf_counter()
    for output, error in max_relative_error(found, points=accuracy_points).items():
        rows.append(VerifyRow(found.name, f"{output}: accuracy vs 50-digit mpmath", "accuracy",
                              error <= 1e-12, f"max relative error {error:.2g} (bound 1e-12)",
                              seconds=time.perf_counter() - start))
    for empirical in found.checks:
        tell(f"{prefix}: {empirical.description} ({examples + ANCHOR_POINTS} points)")
        start = time.perf_counter()
        report = run_check(found, empirical, formula_values(found), examples=examples,
                           derandomize=derandomize)
        rows.append(VerifyRow(found.name, empirical.description, empirical.kind, report.passed,
                              _summarise(report), report, time.perf_counter() - start))
    return rows


def _verify_in_worker(name: str, paths: list, settings: dict) -> list[VerifyRow]:
    for path in paths:
        _catalogue.add_path(path)
    return _verify_one(derivation(name), name, lambda message: None, **settings)


def _verify_in_processes(selected: list, settings: dict, tell, jobs: int) -> VerifyReport:
    from concurrent.futures import ProcessPoolExecutor, as_completed

    results: dict[str, list[VerifyRow]] = {}
    paths = [str(path) for path in _catalogue._extra_paths]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(_verify_in_worker, name, paths, settings): name for name in selected}
        tell(f"verifying {len(selected)} derivations in {jobs} processes")
        for done, future in enumerate(as_completed(futures), 1):
            name = futures[future]
            results[name] = future.result()
            failed = sum(not row.passed for row in results[name])
            tell(f"[{done}/{len(selected)}] {name}: " + (f"{failed} FAILED" if failed else "passed"))
    return VerifyReport([row for name in selected for row in results[name]])


def _summarise(report: CheckReport) -> str:
    outcome = report.failure or report.worst
    if outcome is None:
        return report.error or "not run"
    spread = f" +- {outcome.standard_error:.2g}" if outcome.standard_error else ""
    verdict = "worst" if report.passed else "FAILED"
    return (f"{verdict} of {report.points} points: estimate {outcome.estimate:.6g}{spread}, "
            f"closed form {outcome.value:.6g} ({outcome.statistic:.2f} of allowance)"
            + (f"; resolution {format_resolution(report.resolution)} "
               f"(coarsest point {format_resolution(report.coarsest_resolution)})"
               if not math.isnan(report.resolution) else ""))


def format_resolution(relative: float) -> str:
    """A relative error for reading: 0.12%, 3e-10; "none" where no relative error is
    resolved (the output is 0 there, or does not move the compared quantity)."""
    if not math.isfinite(relative):
        return "none"
    if relative >= 1e-4:
        return f"{100 * relative:.2g}%"
    return f"{relative:.1g}"
