"""The score of a two-component Gaussian mixture: its chain, the Stein and finite-difference
checks (and the Stein statistic's calibration), accuracy against 50-digit mpmath with a
condition-number bound where the score is ill-conditioned, the tails, relations with the
Gaussian score, dtypes, errors, and the Stein check's power against the usual slips."""
import functools

import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from scipy import integrate, special, stats

import symgen
from symgen import score_normal
from symgen.engine.accuracy import relative_error
from symgen.engine.api import parse_candidate
from symgen.engine.evaluate import reference_value
from symgen.engine.runner import (expression_values, formula_function, formula_values, parameter_strategy,
                                  run_check)


NAME = "score_mixture"
FOUND = symgen.derivation(NAME)
score_mixture = formula_function(FOUND)
EPS64 = np.finfo(np.float64).eps
ARGUMENTS = ("x", "weight", "loc1", "scale1", "loc2", "scale2")


def reference(point):
    return reference_value(FOUND, FOUND.output().closed_form, point)


@functools.lru_cache(maxsize=1)
def _value_and_gradient():
    closed = FOUND.output().closed_form
    symbols = [param.symbol for param in FOUND.params]
    value = sp.lambdify(symbols, closed, "mpmath")
    gradient = [sp.lambdify(symbols, sp.diff(closed, symbol), "mpmath") for symbol in symbols]
    return value, gradient


def condition(point):
    """sum_p |p ds/dp| / |s| over the six arguments at 50 digits: the factor by which relative
    rounding of the inputs (or of any intermediate that is as exact as the inputs) can grow."""
    value, gradient = _value_and_gradient()
    with mpmath.workdps(50):
        arguments = [mpmath.mpf(float(point[name])) for name in ARGUMENTS]
        score = value(*arguments)
        spread = sum(abs(argument * partial(*arguments)) for argument, partial in zip(arguments, gradient))
        return float(spread / abs(score)) if score != 0 else float("inf")


def accuracy_bound(point):
    # 1e-12 where the score is well conditioned; where it is not (near its zeros, or where the
    # responsibility switches between components of very different slopes) no float64
    # evaluation can beat eps times the condition number. Measured: at most 0.48 eps cond
    # over 9,000 points, zero crossings included; 2 eps cond is asserted.
    return max(1e-12, 2 * EPS64 * condition(point))


# --- derivation and verification -------------------------------------------------------------


def test_the_chain_starts_at_the_derivative_of_the_log_density():
    # The definition is the derivative of the log density, which SymPy differentiates (the
    # proofs of the steps are covered by tests/test_proofs.py).
    steps = FOUND.output().steps
    assert len(steps) == 4
    assert steps[0].expression.atoms(sp.Derivative)


RARE_COMPONENT = dict(x=0.0, weight=1e-6, loc1=0.3, scale1=0.01, loc2=0.0, scale2=100.0)


def test_stein_terms_vanish_for_the_true_score_where_a_component_is_rare():
    """For the true score the two components' parts cancel at every draw, (f/q)(p s - p') = 0,
    so the Stein check has no sampling noise to raise a false alarm with, even with a narrow
    component of weight 1e-6 inside a wide one (where drawing from the mixture itself would see
    that component as a rare event): its terms are rounding, 1e-13 of those of the score 0.1%
    off, and far inside the rounding allowance."""
    check = FOUND.checks[0]
    formula = formula_values(FOUND).vectorized(NAME)
    rng = np.random.default_rng(2025)
    true_terms = check.sampler(rng, 50_000, formula=formula, **RARE_COMPONENT).draws
    wrong_terms = check.sampler(rng, 50_000, formula=lambda **point: 1.001 * formula(**point),
                                **RARE_COMPONENT).draws
    assert np.max(np.abs(true_terms)) <= 1e-11 * np.max(np.abs(wrong_terms))
    assert check.run(formula_values(FOUND), RARE_COMPONENT, np.random.default_rng(1)).statistic < 0.01


def test_a_score_off_by_a_thousandth_is_refuted_where_a_component_is_rare():
    candidate = f"1.001*({FOUND.module.sigmoid_form(FOUND.module.LOG_ODDS)})"
    values = expression_values(FOUND, NAME, parse_candidate(FOUND, candidate))
    outcome = FOUND.checks[0].run(values, RARE_COMPONENT, np.random.default_rng(1))
    assert not outcome.passed and outcome.statistic > 10


# --- accuracy against 50-digit mpmath --------------------------------------------------------


@settings(max_examples=60)
@given(point=parameter_strategy(FOUND))
def test_matches_mpmath_over_the_domain(point):
    assert relative_error(score_mixture(**point), reference(point)) <= accuracy_bound(point)


def test_accuracy_is_1e_12_where_the_score_is_well_conditioned():
    rng = np.random.default_rng(17)
    well_conditioned = 0
    for _ in range(40):
        point = FOUND.sample_point(rng)
        if condition(point) < 1e3:
            well_conditioned += 1
            assert relative_error(score_mixture(**point), reference(point)) <= 1e-12
    assert well_conditioned >= 30


def test_ill_conditioned_at_the_zero_between_the_modes():
    """Where the score crosses zero its relative error cannot be small (the nearest floats to
    the zero have scores of size eps x slope), but it stays within the condition-number bound."""
    point = dict(weight=0.5, loc1=-3.0, scale1=0.5, loc2=2.0, scale2=1.5)
    with mpmath.workdps(50):
        args = [mpmath.mpf(point[name]) for name in ARGUMENTS[1:]]
        value, _ = _value_and_gradient()
        zero = float(mpmath.findroot(lambda at: value(at, *args), (-2.0, 1.0), solver="anderson"))
    for x in (zero, np.nextafter(zero, 1.0), zero + 1e-9, zero + 1e-6):
        at = dict(point, x=x)
        assert relative_error(score_mixture(**at), reference(at)) <= accuracy_bound(at)
    assert condition(dict(point, x=zero)) > 1e12


TAILS = [
    # x at +-50 with tiny scales: both densities underflow (exponents near -1e7).
    dict(x=50.0, weight=0.5, loc1=-10.0, scale1=1e-2, loc2=10.0, scale2=1e-2),
    dict(x=-50.0, weight=0.5, loc1=-10.0, scale1=1e-2, loc2=10.0, scale2=1e-2),
    dict(x=50.0, weight=1 - 2**-53, loc1=-10.0, scale1=1e-2, loc2=10.0, scale2=1e-2),
    dict(x=-50.0, weight=5e-324, loc1=-10.0, scale1=1e-2, loc2=10.0, scale2=1e-2),
    # The wide component takes over far out, however small its weight.
    dict(x=50.0, weight=1e-300, loc1=10.0, scale1=100.0, loc2=10.0, scale2=1e-2),
    dict(x=-50.0, weight=1 - 1e-16, loc1=-10.0, scale1=1e-2, loc2=10.0, scale2=100.0),
    # Weights near 0 and 1 where they matter: x between narrow components.
    dict(x=0.02, weight=1e-12, loc1=0.0, scale1=1e-2, loc2=0.05, scale2=1e-2),
    dict(x=0.03, weight=1 - 1e-12, loc1=0.0, scale1=1e-2, loc2=0.05, scale2=1e-2),
    # At a component's mean its own score is 0 and the other one's weight is all that is left.
    dict(x=10.0, weight=0.5, loc1=10.0, scale1=1e-2, loc2=9.8, scale2=1e-2),
]


@pytest.mark.parametrize("point", TAILS)
def test_accurate_in_the_tails_without_overflow(point):
    # Underflow of e^min(t, 0) to 0 is the correct result (a responsibility below 1e-308);
    # overflow, 0/0 and division by zero must not happen.
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        value = score_mixture(**point)
    assert np.isfinite(value)
    assert relative_error(value, reference(point)) <= accuracy_bound(point)


def test_the_textbook_form_is_0_over_0_in_the_tails():
    """Why the stable form: the responsibilities formed from the densities are 0/0 at x = 50."""
    x, weight, loc1, scale1, loc2, scale2 = 50.0, 0.5, -10.0, 1e-2, 10.0, 1e-2
    with np.errstate(all="ignore"):
        first = weight * stats.norm.pdf(x, loc1, scale1)
        second = (1 - weight) * stats.norm.pdf(x, loc2, scale2)
        naive = (first * -(x - loc1) / scale1**2 + second * -(x - loc2) / scale2**2) / (first + second)
    assert first == second == 0 and np.isnan(naive)
    assert score_mixture(x, weight, loc1, scale1, loc2, scale2) == pytest.approx(-(x - loc2) / scale2**2, rel=1e-15)


# --- relations -----------------------------------------------------------------------------------


@pytest.mark.parametrize("weight", [1e-9, 0.3, 1 - 1e-9])
def test_equal_components_give_the_gaussian_score(weight):
    x = np.linspace(-50, 50, 11)
    np.testing.assert_allclose(score_mixture(x, weight, 1.5, 0.7, 1.5, 0.7), score_normal(x, 1.5, 0.7), rtol=1e-14)


@pytest.mark.parametrize("weight", [1e-3, 0.5, 1 - 1e-3])
def test_an_isolated_component_hides_the_weights(weight):
    """Near a component that is far from the other the score is that component's own, whatever
    the weights (Song & Ermon 2019, Sec. 3.2.2; Wenliang & Kanagawa 2020, Lemma 1)."""
    x = np.linspace(-0.3, 0.3, 7)
    np.testing.assert_allclose(score_mixture(x, weight, 0.0, 0.1, 10.0, 0.1), score_normal(x, 0.0, 0.1), rtol=1e-14)


def test_relabelling_the_components():
    # 1 - weight is exact for these dyadic weights; x lies left of both means, where the score
    # does not cross zero and is well conditioned.
    x = np.linspace(-50, -5, 10)
    for weight in (0.25, 0.375, 0.9375):
        np.testing.assert_allclose(score_mixture(x, weight, 0.0, 0.5, 5.0, 3.0),
                                   score_mixture(x, 1 - weight, 5.0, 3.0, 0.0, 0.5), rtol=1e-13)


def test_integrates_to_the_log_density():
    """int_a^b s(x) dx = log p(b) - log p(a), with log p from scipy.special.logsumexp."""
    params = dict(weight=0.3, loc1=-1.0, scale1=0.4, loc2=2.0, scale2=1.1)

    def log_density(at):
        return special.logsumexp([stats.norm.logpdf(at, params["loc1"], params["scale1"]),
                                  stats.norm.logpdf(at, params["loc2"], params["scale2"])],
                                 b=[params["weight"], 1 - params["weight"]])

    for a, b in [(-3.0, 4.0), (-1.0, -0.5), (0.0, 10.0)]:
        integral, _ = integrate.quad(lambda at: float(score_mixture(at, **params)), a, b, epsabs=0, epsrel=1e-12,
                                     points=[-1.0, 2.0] if a < -1 < 2 < b else None, limit=200)
        assert integral == pytest.approx(log_density(b) - log_density(a), rel=1e-9, abs=1e-12)


# --- dtypes and errors -----------------------------------------------------------------------------


def test_float32_in_float32_out_and_broadcasting():
    f32 = np.float32
    assert score_mixture(np.ones(3, f32), f32(0.3), f32(0), f32(1), f32(2), f32(0.5)).dtype == np.float32
    assert score_mixture(np.zeros((4, 1)), np.array([0.2, 0.8]), 0.0, 1.0, 1.0, 2.0).shape == (4, 2)


@pytest.mark.parametrize("arguments, message", [
    ((0.0, 0.5, 0.0, 0.0, 1.0, 1.0), "argument 'scale1' must be positive"),
    ((0.0, 0.5, 0.0, 1.0, 1.0, -2.0), "argument 'scale2' must be positive"),
    ((0.0, 0.0, 0.0, 1.0, 1.0, 1.0), r"argument 'weight' must lie in \(0.0, 1.0\)"),
    ((0.0, 1.0, 0.0, 1.0, 1.0, 1.0), r"argument 'weight' must lie in \(0.0, 1.0\)"),
    ((0.0, 1.5, 0.0, 1.0, 1.0, 1.0), r"argument 'weight' must lie in \(0.0, 1.0\)"),
    ((0.0, -0.1, 0.0, 1.0, 1.0, 1.0), r"argument 'weight' must lie in \(0.0, 1.0\)"),
    ((np.nan, 0.5, 0.0, 1.0, 1.0, 1.0), "argument 'x' must be finite"),
    ((0.0, 0.5, np.inf, 1.0, 1.0, 1.0), "argument 'loc1' must be finite"),
])
def test_bad_arguments_raise_value_errors_naming_them(arguments, message):
    with pytest.raises(ValueError, match="score_mixture: " + message):
        score_mixture(*arguments)


# --- the usual slips (declared in derivations/mixture_score.py) -------------------------------------

SLIPS = {description: candidate for candidate, description, _ in FOUND.slips}
sigmoid_form, LOG_ODDS = FOUND.module.sigmoid_form, FOUND.module.LOG_ODDS


def test_a_refuted_slip_shrinks_to_a_counterexample():
    # Every declared slip is refuted by tests/test_proofs.py; here the report of one, shrunk.
    result = symgen.check(NAME, SLIPS["sign flipped"], shrink=True)
    assert not result.verified
    assert set(result.counterexample.point) == set(FOUND.param_names)
    assert "counterexample" in str(result)


@pytest.mark.parametrize("slip", SLIPS)
def test_the_stein_check_alone_refutes_the_usual_slips(slip):
    # Power of the Monte Carlo check by itself, without the finite difference's help.
    values = expression_values(FOUND, NAME, parse_candidate(FOUND, SLIPS[slip]))
    assert not run_check(FOUND, FOUND.checks[0], values, shrink=False).passed


@pytest.mark.parametrize("candidate", [
    sigmoid_form(LOG_ODDS),
    # The textbook responsibilities, as a user would type them.
    "(weight*exp(-(x - loc1)**2/(2*scale1**2))/scale1*(loc1 - x)/scale1**2"
    " + (1 - weight)*exp(-(x - loc2)**2/(2*scale2**2))/scale2*(loc2 - x)/scale2**2)"
    " / (weight*exp(-(x - loc1)**2/(2*scale1**2))/scale1 + (1 - weight)*exp(-(x - loc2)**2/(2*scale2**2))/scale2)",
])
def test_symgen_check_verifies_the_right_answer(candidate):
    result = symgen.check(NAME, candidate, examples=8)
    assert result.verified, str(result)


def test_symgen_check_refutes_a_score_off_by_a_thousandth_by_the_stein_check():
    # The Stein check runs first and resolves ~1e-10 of the score (the resolution it states).
    result = symgen.check(NAME, f"1.001*({sigmoid_form(LOG_ODDS)})", examples=2, shrink=False)
    assert not result.verified
    assert result.empirical_counterexample.check == FOUND.checks[0].description
