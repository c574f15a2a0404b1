"""The engine's public functions: ``derivation``, ``derivations``, ``check``, ``verify``."""
from __future__ import annotations

import math

from dataclasses import dataclass, field
from typing import Callable

import mpmath
import numpy as np
import sympy as sp

from . import catalogue as _catalogue
from .evaluate import EPS64, MAX_REFERENCE_DIGITS, reference_value, value_or_limit
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


# --- checking a candidate formula -----------------------------------------------------
#
# Two judges. The proved closed form (symgen/engine/judge.py) compares the candidate with
# it at 200 and more points; the empirical checks run the candidate through the
# derivation's Monte Carlo and quadrature checks, as for the shipped functions, over the
# domain and at the point where the closed form found the largest difference. Both are
# reported; the candidate is verified when neither refutes it.


@dataclass
class Counterexample:
    """Where a candidate fails: the point, what the refuting judge gives there (the closed
    form, or an estimate with its standard error), the candidate's value, and, for the
    closed form's counterexample, what the samples say at that point."""

    point: dict
    estimate: object
    standard_error: float
    candidate: object
    check: str
    detail: str = ""
    output: str = ""
    samples: str = ""

    def __str__(self):
        from .judge import format_value

        point = ", ".join(f"{k}={format_value(v)}" for k, v in self.point.items())
        if not _finite(self.candidate):
            text = f"at {point}: the candidate has no finite real value ({self.detail or self.candidate})"
        else:
            spread = f" +- {self.standard_error:.3g}" if self.standard_error else ""
            output = f" {self.output}" if self.output else ""
            text = (f"at {point}: {self.check} gives{output} {_value(self.estimate)}{spread}, "
                    f"the candidate gives {_value(self.candidate)}")
        return text + (f"\n  samples there: {self.samples}" if self.samples else "")


def _finite(value) -> bool:
    try:
        return bool(np.all(np.isfinite(np.asarray(value, dtype=float))))
    except (TypeError, ValueError):
        return False


def _value(value) -> str:
    if isinstance(value, (list, np.ndarray)):
        return "[" + ", ".join(f"{float(v):.10g}" for v in np.ravel(value)) + "]"
    return f"{float(value):.10g}"


@dataclass
class CheckResult:
    """The verdict on a candidate: both judges' reports, the counterexample when refuted,
    and for a callable its accuracy against the 50-digit closed form."""

    name: str
    candidate: object
    verified: bool
    counterexample: Counterexample | None = None
    reports: list[CheckReport] = field(default_factory=list)
    judgement: object = None                     # symgen.engine.judge.Judgement
    empirical_counterexample: Counterexample | None = None
    notes: list = field(default_factory=list)
    is_callable: bool = False
    #: Empirical refutations explained as rounding in the candidate's own arithmetic.
    explained: list = field(default_factory=list)

    def __bool__(self):
        return self.verified

    @property
    def max_relative_error(self) -> float:
        """The candidate's largest relative error against the 50-digit closed form over
        the judged points (the part of its error that is rounding, for a callable)."""
        return self.judgement.max_relative_error if self.judgement else math.nan

    @property
    def worst_point(self) -> dict | None:
        """Where :attr:`max_relative_error` occurs."""
        least = self.judgement.least_accurate if self.judgement else None
        return least.point if least else None

    @property
    def digits_lost(self) -> int:
        """Decimal digits of float64 the candidate loses at its least accurate point."""
        error = self.max_relative_error
        if not error > 2 * EPS64:
            return 0
        return min(16, max(0, round(math.log10(error / EPS64)))) if math.isfinite(error) else 16

    def __str__(self):
        judges = self._judges()
        lines = [self._headline(), f"  {judges[0]}"]
        if self.counterexample is not None:
            lines.append(f"  counterexample {self.counterexample}")
        shrunk = self.empirical_counterexample
        if shrunk is not None and shrunk is not self.counterexample:
            lines.append(f"  the simplest point the samples refute it at: {str(shrunk).removeprefix('at ')}")
        lines += [f"  {line}" for line in judges[1:]]
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)

    def _headline(self) -> str:
        shown = self.candidate if not self.is_callable else f"the callable {self.candidate}"
        if not self.verified:
            return f"refuted: {self.name} = {shown}"
        return f"verified: {self.name} = {shown}"

    def _judges(self) -> list[str]:
        from .judge import format_value

        lines = []
        judgement = self.judgement
        if judgement is not None:
            proof = f"; SymPy proves the difference 0 ({judgement.proved})" if judgement.proved else ""
            verdict = (f"agrees at all {judgement.points} points" if judgement.passed else
                       f"DIFFERS at {judgement.differing} of {judgement.points} points")
            lines.append(f"closed form: {verdict} (edges and near-equal points included; "
                         f"rtol {judgement.rtol:g}){proof}")
            if self.is_callable and judgement.least_accurate is not None:
                least = judgement.least_accurate
                where = ", ".join(f"{k}={format_value(v)}" for k, v in least.point.items())
                if self.verified and not math.isfinite(least.relative_error):
                    lines.append(f"accuracy: the right quantity, but no float64 value (NaN or inf) near {where}")
                elif self.verified and self.digits_lost >= 4:
                    lines.append(f"accuracy: the right quantity, loses {self.digits_lost} digits near {where} "
                                 f"(relative error {least.relative_error:.2g})")
                else:
                    lines.append(f"accuracy: max relative error {least.relative_error:.2g} at {where}")
        points = sum(report.points for report in self.reports)
        failed = [report for report in self.reports if not report.passed and report not in self.explained]
        lines.append(f"samples: {len(self.reports)} checks at {points} points, "
                     + (f"{len(failed)} refute it" if failed else "none refutes it"))
        return lines


class UnknownName(KeyError, ValueError):
    """A derivation or output name :func:`check` does not know: a KeyError, as
    :func:`derivation` raises, and a ValueError, as every candidate that cannot be used."""

    def __str__(self):
        return str(self.args[0])


def parse_candidate(found, candidate) -> sp.Basic:
    """A candidate formula as a SymPy expression in the derivation's argument names
    (symgen/engine/reading.py)."""
    from .reading import read_expression

    return read_expression(found, candidate)


def check(name: str, candidate, *, args: dict | None = None, seed: int | None = None,
          rtol: float | None = None, grad: bool = False, examples: int = DEFAULT_EXAMPLES,
          derandomize: bool = True, shrink: bool = True) -> CheckResult:
    """Judge ``candidate`` as the formula of ``name`` (or ``NAME.OUTPUT``).

    ``candidate`` is a string (SymPy or NumPy syntax, decimals read exactly), a SymPy
    expression, or a Python callable (NumPy or torch; ``args`` maps its parameter names to
    the derivation's, else they are matched by name, then by position; for NAME without
    OUTPUT it returns the tuple of all outputs). Judged by the proved closed form at 200
    and more points (``rtol``: its relative tolerance, symgen/engine/judge.py) and by the
    empirical checks over the domain (``seed``: their random points; derandomized when
    None). ``grad=True`` also checks a torch callable's gradient against SymPy's
    derivative. Verified, or refuted with a counterexample."""
    from .callables import callable_candidate
    from .judge import CALLABLE_RTOL, judge, proved_equal

    try:
        found = derivation(name.split(".", 1)[0])
        named = name.split(".", 1)[1] if "." in name else None
        is_callable = callable(candidate) and not isinstance(candidate, (str, sp.Basic))
        if named or not is_callable:
            outputs = (found.output(named).name,)
        else:
            outputs = (found.output().name,) if len(found.outputs) == 1 else tuple(found.outputs)
    except KeyError as error:
        raise UnknownName(error.args[0]) from None
    if is_callable:
        wrapped = callable_candidate(candidate, found, outputs, args)
        values = callable_values(found, wrapped)
        candidate_at, shown = wrapped.at_points, wrapped.description
        high_precision, epsilon = False, (lambda: wrapped.epsilon)
    elif isinstance(candidate, (str, sp.Basic)):
        if args:
            raise ValueError("args maps a callable's parameter names; a formula uses the derivation's names")
        expression = parse_candidate(found, candidate)
        values = expression_values(found, outputs[0], expression)
        limits, unevaluable = [], []
        candidate_at = _expression_at(found, outputs[0], expression, limits, unevaluable)
        shown = " ".join(candidate.split()) if isinstance(candidate, str) else expression
        high_precision, epsilon = True, (lambda: 0.0)
    else:
        raise ValueError(f"candidate must be a string, a SymPy expression or a callable, "
                         f"not {type(candidate).__name__}")
    checks = [empirical for empirical in found.checks if set(outputs) & set(empirical.outputs)]
    if not checks:
        raise ValueError(f"{name} has no empirical check of output {', '.join(outputs)}")
    label = name if "." in name or len(outputs) > 1 or len(found.outputs) == 1 else f"{found.name}.{outputs[0]}"
    result = CheckResult(label, shown, True, is_callable=is_callable)
    rounding = _rounding_test(found, wrapped, rtol or CALLABLE_RTOL) if is_callable else None
    result.judgement = judge(found, outputs, candidate_at, high_precision=high_precision, rtol=rtol,
                             epsilon=epsilon, seed=seed or 0, rounding=rounding)
    if high_precision and result.judgement.passed:
        result.judgement.proved = proved_equal(expression, found.outputs[outputs[0]].closed_form)
    result.notes += result.judgement.notes
    if not is_callable and limits:
        result.notes.append(f"the candidate is 0/0 at {len(limits)} judged points (the first at "
                            f"{_point_text(limits[0])}); judged there by its limit")
    if not is_callable and unevaluable:
        result.notes.append(f"the candidate is infinite at {len(unevaluable)} judged points where the "
                            f"closed form is finite (the first at {_point_text(unevaluable[0])}): its "
                            f"terms cancel beyond {MAX_REFERENCE_DIGITS} digits there, so those points "
                            f"are left to the empirical checks")
    refuting = result.judgement.refuting
    if refuting is not None:
        result.verified = False
        result.counterexample = Counterexample(
            refuting.point, refuting.closed_form, 0.0, refuting.candidate, "the proved closed form",
            output=refuting.output if len(found.outputs) > 1 else "",
            samples=_samples_at(found, checks, values, refuting.point, seed or 0))
    for empirical in checks:
        report = run_check(found, empirical, values, examples=examples, derandomize=derandomize,
                           shrink=shrink, seed=seed)
        result.reports.append(report)
        if not report.passed and rounding is not None and _rounding_at(
                found, report, wrapped, rounding, result.judgement.rtol):
            result.explained.append(report)
            result.notes.append(f"{empirical.description}: its refutation at "
                                f"{_point_text(report.counterexample)} is rounding in the candidate's "
                                f"own arithmetic (the difference shrinks in more precision)")
            continue
        if not report.passed and result.empirical_counterexample is None:
            failure = report.failure
            result.verified = False
            result.empirical_counterexample = Counterexample(
                report.counterexample, failure.estimate, failure.standard_error, failure.value,
                empirical.description, failure.detail)
    result.counterexample = result.counterexample or result.empirical_counterexample
    if grad:
        from .gradients import check_gradient

        notes, failure = check_gradient(found, outputs, wrapped if is_callable else None, result.judgement.rtol)
        result.notes += notes
        if failure is not None:
            result.verified = False
            result.counterexample = result.counterexample or Counterexample(
                failure.point, failure.derivative, 0.0, failure.candidate,
                f"the derivative d/d{failure.parameter} of the proved closed form", output=failure.output)
    if is_callable:
        result.notes += [note for note in wrapped.notes if note not in result.notes]
    return result


def _finite_closed_form(found, output, point) -> bool:
    value = reference_value(found, found.outputs[output].closed_form, point)
    entries = value if isinstance(value, list) else [value]
    return all(mpmath.isfinite(entry) for entry in entries)


def _rounding_test(found, wrapped, tolerance: float):
    """Whether a difference from the closed form is rounding in the candidate's own
    arithmetic: recomputed at 60 digits or in extended precision (NumPy code) it shrinks
    tenfold, or recomputed in float32 (torch code) it grows thirtyfold; a different
    formula's difference stays the same in either. A NaN or infinite float64 value (an
    underflow, 0/0 of two underflowed densities) is rounding where the 60-digit or
    extended evaluation agrees with the closed form to ``tolerance``."""
    from .judge import difference

    def rounding(comparison) -> bool:
        if not comparison.error > 0:
            return False
        explains = (lambda error: error < comparison.error / 10) if math.isfinite(comparison.error) else \
            (lambda error: error <= tolerance * abs(float(reference)))     # NaN or inf in float64
        other = wrapped.in_other_precision(comparison.point)
        if other is None:
            return False
        values, precision = other
        reference = reference_value(found, found.outputs[comparison.output].closed_form, comparison.point)
        try:
            error = difference(values[comparison.output], reference)
        except (TypeError, ValueError):
            return False
        if precision == "float32":
            return math.isfinite(comparison.error) and error > 30 * comparison.error
        return explains(error)

    return rounding


def _rounding_at(found, report, wrapped, rounding, rtol) -> bool:
    """An empirical refutation of a callable explained by rounding in its arithmetic at
    the refuting point: wherever the candidate differs there from the closed form beyond
    the judge's tolerance, the difference is rounding (:func:`_rounding_test`)."""
    from .judge import compare

    point = report.counterexample
    for output in wrapped.outputs:
        value = wrapped.at_points([point])[output][0]
        comparison = compare(found, output, point, value, rtol, epsilon=wrapped.epsilon)
        if comparison.ratio > 1 and not rounding(comparison):
            return False
    return True


def _point_text(point: dict) -> str:
    from .judge import format_value

    return ", ".join(f"{name}={format_value(value)}" for name, value in point.items())


def _expression_at(found, output, expression, limits: list, unevaluable: list):
    """The candidate expression's values at points, at 30 digits and more; where it has
    none but a limit (a removable 0/0), its limit, the point noted in ``limits``; the text
    of the error where it has neither (a complex value, a pole). An infinite value where
    the closed form is finite is noted in ``unevaluable`` and given as None, which the
    judge passes over."""
    def at(points):
        values = []
        for point in points:
            try:
                value, limited = value_or_limit(found, expression, point)
            except (ArithmeticError, ValueError, TypeError) as error:
                values.append(f"{type(error).__name__}: {error}".rstrip(": "))
                continue
            if limited:
                limits.append(point)
            entries = value if isinstance(value, list) else [value]
            if any(mpmath.isinf(entry) for entry in entries) and _finite_closed_form(found, output, point):
                # A textbook form whose terms cancel beyond any precision (log of a
                # difference of two erfs 1e8 standard deviations out): not evaluable here.
                unevaluable.append(point)
                values.append(None)
                continue
            if any(isinstance(entry, mpmath.mpc) and entry.imag != 0 for entry in entries):
                values.append(f"a complex value, {mpmath.nstr(entries[0], 6)}")
            else:
                real = [mpmath.re(entry) for entry in entries]
                values.append(real if isinstance(value, list) else real[0])
        return {output: values}
    return at


def callable_values(found, wrapped):
    """What the empirical checks compare with (an Evaluation): the callable's outputs
    (float64, or 60 digits for NumPy code at single points), the shipped function's for the
    outputs it does not give."""
    from .runner import Evaluation, NoValueHere

    shipped = formula_values(found)

    def values(point):
        # NumPy code runs at 60 digits (or in extended precision) where it can: the checks
        # judge its formula, and its float64 rounding is the accuracy report's business.
        result = shipped(point)
        extended = wrapped.in_other_precision(point) if wrapped.backend == "numpy" else None
        if extended is not None:
            mine = {name: np.asarray(np.vectorize(float, otypes=[np.float64])(value))
                    for name, value in extended[0].items()}
        else:
            mine = {name: value[0] for name, value in wrapped.at_points([point]).items()}
        for name, value in mine.items():
            if np.any(np.isnan(value)) and np.all(np.isfinite(result[name])):
                raise NoValueHere(f"the candidate has no value for {name} here, where it is "
                                  f"{result[name]}: judged near it by the closed form")
        result.update(mine)
        return result

    def vectorized(output):
        return wrapped.on_arrays(output) if output in wrapped.outputs else shipped.vectorized(output)

    return Evaluation(found, values, vectorized, float64=True)


def _samples_at(found, checks, values, point, seed: int) -> str:
    """What the empirical checks say at ``point``: which side their estimate supports, the
    closed form's or the candidate's, or that the difference is below their resolution."""
    from .runner import NoValueHere

    shipped = formula_values(found)
    verdicts = []
    for empirical in checks:
        try:
            with np.errstate(all="ignore"):
                mine = empirical.run(values, point, np.random.default_rng(seed))
                closed = empirical.run(shipped, point, np.random.default_rng(seed))
        except NoValueHere:
            verdicts.append(f"{empirical.description}: the candidate has no value to compare here")
            continue
        except (ValueError, ArithmeticError, TypeError) as error:
            verdicts.append(f"{empirical.description}: not evaluable ({error})")
            continue
        spread = f" +- {mine.standard_error:.3g}" if mine.standard_error else ""
        estimate = f"estimate {mine.estimate:.10g}{spread}"
        if closed.passed and not mine.passed:
            side = "supports the closed form"
        elif mine.passed and not closed.passed:
            side = "supports the candidate"
        elif mine.passed:
            side = "the difference is below its resolution"
        else:
            side = "supports neither"
        verdicts.append(f"{empirical.description}: {estimate}, {side}")
    return "; ".join(verdicts)


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
           jobs: int = 1, seed: int | None = None) -> VerifyReport:
    """Prove every step, check the public function's accuracy against 50-digit mpmath,
    and run every empirical check, for ``names`` (default: the whole catalogue).
    ``jobs`` > 1 runs the derivations in that many processes; the rows come back in
    the catalogue's order whatever the order they finish in. ``seed`` chooses the checks'
    random points (None: derandomized, the same every run)."""
    selected = list(names) if names else derivations()
    for name in selected:
        derivation(name)         # an unknown name fails before any work starts
    tell = progress or (lambda message: None)
    settings = dict(examples=examples, accuracy_points=accuracy_points, derandomize=derandomize, seed=seed)
    if jobs > 1 and len(selected) > 1:
        return _verify_in_processes(selected, settings, tell, jobs)
    rows: list[VerifyRow] = []
    for index, name in enumerate(selected, 1):
        rows += _verify_one(derivation(name), f"[{index}/{len(selected)}] {name}", tell, **settings)
    return VerifyReport(rows)


def _verify_one(found, prefix: str, tell, *, examples: int, accuracy_points: int,
                derandomize: bool, seed: int | None = None) -> list[VerifyRow]:
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
                           derandomize=derandomize, seed=seed)
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
