"""Empirical checks, catalogue-wide: every check of every derivation passes for the
shipped function at points hypothesis draws from the declared domains (plus the engine's
fixed anchor points).

This is `symgen verify` at a smaller budget (EXAMPLES points instead of the default, plus
the anchors and the domain's edge points),
so the test suite stands on its own; the power of the same checks against wrong
formulas is tests/test_mutations.py's job. A new derivation is covered by being in the
catalogue.

False alarms: each statistical check is calibrated to at most 1e-9 per evaluation
(symgen.engine.checks.ALPHA_PER_EVALUATION), so at most 1e-8 over the EXAMPLES +
ANCHOR_POINTS evaluations of one test here; the deterministic checks (quadrature,
mpmath, enumeration) have none. CI runs hypothesis derandomized, so a run is repeatable.
"""

import pytest

import symgen
from symgen.engine.runner import ANCHOR_POINTS, edge_points, formula_values, run_check

EXAMPLES = 6
RESOLUTION = 1e-3

CASES = [(name, index, check.description)
         for name in symgen.derivations()
         for index, check in enumerate(symgen.derivation(name).checks)]


@pytest.mark.parametrize("name, index", [case[:2] for case in CASES],
                         ids=[f"{name}-{index}" for name, index, _ in CASES])
def test_every_empirical_check_passes_over_the_domain(name, index):
    found = symgen.derivation(name)
    report = run_check(found, found.checks[index], formula_values(found), examples=EXAMPLES)
    assert report.passed, report.as_dict()
    # Hypothesis stops early only when a small finite domain is exhausted; the anchors and
    # the domain's edge points are always evaluated.
    fixed = ANCHOR_POINTS + len(edge_points(found))
    assert fixed < report.points <= EXAMPLES + fixed
    # Every check states its resolution, and resolves a relative error of 0.1% (with
    # probability >= 0.99) at its sharpest point: the README's "1% off is refuted" rests on it.
    assert report.resolution <= RESOLUTION, (report.resolution, report.coarsest_resolution)


def test_every_derivation_has_an_empirical_check():
    assert {name for name, _, _ in CASES} == set(symgen.derivations())
