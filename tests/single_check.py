"""One empirical check of a derivation, alone, on a candidate formula: for tests that show a
particular check (not the whole of ``symgen.check``) refutes or verifies a candidate."""
import symgen
from symgen.engine.api import parse_candidate
from symgen.engine.runner import expression_values, run_check


def run_one_check(name, output, description, candidate):
    """The check of ``name`` whose description starts with ``description``, alone, on a candidate
    for ``output`` (2 hypothesis points, then the anchors and edge points; no shrinking)."""
    found = symgen.derivation(name)
    (check,) = [check for check in found.checks if check.description.startswith(description)]
    values = expression_values(found, output, parse_candidate(found, candidate))
    return run_check(found, check, values, examples=2, shrink=False)
