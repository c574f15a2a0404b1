"""Empirical checks alone on a candidate formula, for tests about the checks' power: the
second of ``symgen.check``'s judges without the first (the proved closed form refutes
every wrong formula by itself, so a test of the checks must leave it out)."""
import symgen
from symgen.engine.api import parse_candidate
from symgen.engine.runner import DEFAULT_EXAMPLES, expression_values, run_check


def run_one_check(name, output, description, candidate):
    """The check of ``name`` whose description starts with ``description``, alone, on a candidate
    for ``output`` (2 hypothesis points, then the anchors and edge points; no shrinking)."""
    found = symgen.derivation(name)
    (check,) = [check for check in found.checks if check.description.startswith(description)]
    values = expression_values(found, output, parse_candidate(found, candidate))
    return run_check(found, check, values, examples=2, shrink=False)


def samples_refutation(address, candidate, *, examples=DEFAULT_EXAMPLES, shrink=False):
    """The first of the empirical checks of ``address`` (NAME or NAME.OUTPUT) that refutes
    ``candidate``, as its CheckReport (``.counterexample``: the point), or None when every
    one of them passes it."""
    name, _, output = address.partition(".")
    found = symgen.derivation(name)
    output = found.output(output or None).name
    values = expression_values(found, output, parse_candidate(found, candidate))
    for check in found.checks:
        if output in check.outputs:
            report = run_check(found, check, values, examples=examples, shrink=shrink)
            if not report.passed:
                return report
    return None


# --- checks sharpened by control variates: a thousandth off is refuted ------------------


def assert_refutes_a_thousandth_off(name, output, description, closed_form):
    """The check alone refutes the closed form times 1.001."""
    assert not run_one_check(name, output, description, f"({closed_form})*1.001").passed


def one_per_check(controlled):
    """(name, output, description, closed form) rows, one per check: a check of two outputs
    compares both at once (the other from its closed form)."""
    return list({(name, description): (name, output, description, closed_form)
                 for name, output, description, closed_form in controlled}.values())


def assert_verifies_and_resolves_a_thousandth(name, output, description, closed_form):
    """The check alone verifies the closed form and states a resolution of 1e-3 or finer."""
    report = run_one_check(name, output, description, closed_form)
    assert report.passed, report.failure
    assert report.resolution <= 1e-3
