"""Unadjusted Langevin dynamics on a Gaussian target: the stationary variance, the chains
that check it, accuracy and errors (the proof and the usual slips, declared in
derivations/langevin.py, are covered by the catalogue-wide tests)."""
import math

import numpy as np
import pytest

import symgen
from symgen import langevin_stationary_var, score_normal
from symgen.engine.accuracy import relative_error
from symgen.engine.evaluate import reference_value

FOUND = symgen.derivation("langevin_stationary_var")
EPS64 = np.finfo(np.float64).eps


def reference(point):
    return reference_value(FOUND, FOUND.output().closed_form, point)


def condition(scale, eta):
    """|d log v / d log eta| + |d log v / d log scale| + 1: v = scale^2 / (1 - eta/(2 scale^2))
    is ill-conditioned near the stability edge eta = 2 scale^2."""
    ratio = eta / (2 * scale**2)
    return 1 + 3 * ratio / (1 - ratio) + 2


@pytest.mark.parametrize("scale", [1e-150, 1e-60, 1.0, 1e60, 1e150])
@pytest.mark.parametrize("step_ratio", [1e-12, 1e-3, 0.5, 1.0, 1.9])
def test_tiny_and_huge_scales(scale, step_ratio):
    # step_ratio = eta / scale^2; the result scales with scale^2 exactly.
    point = dict(scale=scale, eta=step_ratio * scale**2)
    assert relative_error(langevin_stationary_var(**point), reference(point)) <= 1e-12


def test_small_steps_have_bias_eta_over_two():
    """Relations, not numbers: v -> scale^2 as eta -> 0, with v - scale^2 ~ eta/2 (first order)."""
    scale = 1.3
    for eta in (1e-3, 1e-5, 1e-7):
        excess = langevin_stationary_var(scale, eta) - scale**2
        assert excess / (eta / 2) == pytest.approx(1.0, abs=2 * eta / scale**2)


def test_a_chain_driven_by_score_normal_settles_at_this_variance():
    """The same dynamics with the library's own score function: 2e5 chains after 200
    steps from x = 0 (within e^-16 of stationarity at this step) against the variance;
    z threshold 6 (false alarm ~2e-9 per run)."""
    rng = np.random.default_rng(4)
    loc, scale, eta = 1.5, 0.8, 0.1
    x = np.full(200_000, loc)
    for _ in range(200):
        x = x + eta * score_normal(x, loc, scale) + math.sqrt(2 * eta) * rng.standard_normal(x.size)
    variance = langevin_stationary_var(scale, eta)
    assert abs(x.var() - variance) <= 6 * variance * math.sqrt(2 / x.size)
    assert abs(x.mean() - loc) <= 6 * math.sqrt(variance / x.size)
    # The bias is real: the target's variance is refuted at this precision.
    assert abs(x.var() - scale**2) > 6 * variance * math.sqrt(2 / x.size)


def test_float32_in_float32_out():
    assert langevin_stationary_var(np.float32(1.0), np.full(3, 0.1, np.float32)).dtype == np.float32


@pytest.mark.parametrize("scale, eta, message", [
    (1.0, 2.0, "argument 'eta' must be < 2 scale"),
    (np.array([1.0, 0.5]), 0.6, "argument 'eta' must be < 2 scale"),
    (1.0, 0.0, "argument 'eta' must be positive"),
    (1.0, -0.1, "argument 'eta' must be positive"),
    (0.0, 0.1, "argument 'scale' must be positive"),
    (1.0, np.nan, "argument 'eta' must be finite"),
])
def test_bad_arguments_raise_value_errors_naming_them(scale, eta, message):
    with pytest.raises(ValueError, match=f"langevin_stationary_var: {message}"):
        langevin_stationary_var(scale, eta)


# --- the invariance check (derivations/langevin.py) ------------------------------------------------

CLOSED_FORM = "scale**2/(1 - eta/(2*scale**2))"


def invariance_check_report(candidate):
    """The check that N(0, v) is invariant under a few Langevin steps, alone, on a candidate
    (2 hypothesis points, then the anchors and edge points; no shrinking)."""
    from symgen.engine.api import parse_candidate
    from symgen.engine.runner import expression_values, run_check

    (check,) = [check for check in FOUND.checks if check.kind == "mean"]
    values = expression_values(FOUND, FOUND.name, parse_candidate(FOUND, candidate))
    return run_check(FOUND, check, values, examples=2, shrink=False)


def test_the_invariance_check_refutes_a_thousandth_off():
    assert not invariance_check_report(f"({CLOSED_FORM})*1.001").passed


def test_the_invariance_check_verifies_the_closed_form_and_resolves_a_thousandth():
    report = invariance_check_report(CLOSED_FORM)
    assert report.passed, report.failure
    assert report.resolution <= 1e-3


def test_the_invariance_check_runs_at_the_stability_edge():
    """No chain has to converge: at eta = 2 scale^2 (1 - 1e-15), where chains started at the
    target would need ~1e15 steps, the check takes as long as anywhere (and its draws of the
    true variance pass)."""
    from symgen.engine.runner import formula_values

    (check,) = [check for check in FOUND.checks if check.kind == "mean"]
    point = dict(scale=1.0, eta=2 * (1 - 1e-15))
    outcome = check.run(formula_values(FOUND), point, np.random.default_rng(3))
    assert outcome.passed and outcome.resolution > 1e-3     # there the root search resolves it
