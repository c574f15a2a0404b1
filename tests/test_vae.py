"""The linear-Gaussian ELBO: evidence, posterior, ELBO; the bound and its gap, accuracy, the
gradient estimators, dtypes, errors. (The proofs and the empirical checks are tested
catalogue-wide: tests/test_proofs.py, tests/test_checks.py.)"""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import symgen
from symgen import (vae_linear_gaussian_elbo, vae_linear_gaussian_evidence, vae_linear_gaussian_posterior,
                    vae_reparameterization_gradient_sin)
from symgen.engine import MeanCheck
from symgen.engine.accuracy import relative_error
from symgen.engine.api import parse_candidate
from symgen.engine.evaluate import reference_value
from symgen.engine.runner import expression_values, parameter_strategy, run_check

EPS = 2.0**-52


# --- the bound and its gap -----------------------------------------------------------------

MODEL = parameter_strategy(symgen.derivation("vae_linear_gaussian_evidence"))
Q = st.tuples(st.floats(-5, 5), st.floats(math.log(1e-2), math.log(1e2)).map(math.exp))


def rounding_allowance(*values):
    """A few ulps of the largest term: the ELBO and the evidence are sums of such terms."""
    return 64 * EPS * (1 + max(abs(float(v)) for v in values))


@settings(max_examples=200)
@given(model=MODEL, q=Q)
def test_the_elbo_never_exceeds_the_evidence(model, q):
    loc, scale = q
    elbo = vae_linear_gaussian_elbo(**model, loc=loc, scale=scale)
    evidence = vae_linear_gaussian_evidence(**model)
    scale_terms = (loc**2 + scale**2) / 2 + (model["w"] * scale / model["s"]) ** 2
    assert elbo <= evidence + rounding_allowance(elbo, evidence, scale_terms)


@settings(max_examples=100)
@given(model=MODEL)
def test_the_elbo_equals_the_evidence_at_the_posterior(model):
    posterior = vae_linear_gaussian_posterior(**model)
    elbo = vae_linear_gaussian_elbo(**model, loc=posterior.mean, scale=np.sqrt(posterior.var))
    evidence = vae_linear_gaussian_evidence(**model)
    assert abs(elbo - evidence) <= rounding_allowance(elbo, evidence)


@settings(max_examples=100)
@given(model=MODEL, q=Q)
def test_the_gap_is_the_kl_to_the_posterior(model, q):
    # log p(x) - ELBO(q) = KL(q || p(z | x)), with the KL from symgen's kl_normal.
    loc, scale = q
    posterior = vae_linear_gaussian_posterior(**model)
    gap = vae_linear_gaussian_evidence(**model) - vae_linear_gaussian_elbo(**model, loc=loc, scale=scale)
    kl = symgen.kl_normal(loc, scale, posterior.mean, np.sqrt(posterior.var))
    assert abs(gap - kl) <= rounding_allowance(gap, kl, vae_linear_gaussian_evidence(**model)) * (1 + kl)


def test_evidence_is_the_normal_density_of_the_marginal():
    x = np.linspace(-3, 3, 13)
    np.testing.assert_allclose(vae_linear_gaussian_evidence(x, 1.5, 0.3, 0.7),
                               stats.norm.logpdf(x, 0.3, math.sqrt(1.5**2 + 0.7**2)), rtol=1e-13)


def test_posterior_by_conjugate_updating():
    # Precision adds up: 1/var = 1 + w^2/s^2; mean = var * w (x - b) / s^2.
    w, b, s, x = -1.2, 0.4, 0.8, 2.0
    posterior = vae_linear_gaussian_posterior(x, w, b, s)
    assert posterior.var == pytest.approx(1 / (1 + w**2 / s**2), rel=1e-14)
    assert posterior.mean == pytest.approx(posterior.var * w * (x - b) / s**2, rel=1e-14)


# --- accuracy against 50-digit mpmath --------------------------------------------------------


def reference(name, output, point):
    found = symgen.derivation(name)
    return reference_value(found, found.output(output).closed_form, point)


@settings(max_examples=60)
@given(point=MODEL)
def test_evidence_and_posterior_match_mpmath(point):
    evidence = vae_linear_gaussian_evidence(**point)
    terms = [(point["x"] - point["b"]) ** 2 / (2 * (point["w"] ** 2 + point["s"] ** 2)),
             math.log(point["w"] ** 2 + point["s"] ** 2) / 2, 0.92]
    # The log density crosses 0 where its terms cancel: rounding times that condition number.
    condition = sum(map(abs, terms)) / max(abs(float(evidence)), 1e-300)
    error = relative_error(evidence, reference("vae_linear_gaussian_evidence", None, point))
    assert error <= max(1e-12, 8 * EPS * condition)
    posterior = vae_linear_gaussian_posterior(**point)
    assert relative_error(posterior.var, reference("vae_linear_gaussian_posterior", "var", point)) <= 1e-12
    loc_reference = reference("vae_linear_gaussian_posterior", "mean", point)
    # loc is proportional to x - b, exact in float64 up to one rounding: relative to |x| + |b|.
    assert abs(float(posterior.mean) - float(loc_reference)) <= 1e-12 * max(
        abs(float(loc_reference)), 1e-300) + 4 * EPS * abs(point["w"]) * (abs(point["x"]) + abs(point["b"])) / (
        point["w"] ** 2 + point["s"] ** 2)


@settings(max_examples=60)
@given(point=parameter_strategy(symgen.derivation("vae_linear_gaussian_elbo")))
def test_elbo_matches_mpmath(point):
    elbo = vae_linear_gaussian_elbo(**point)
    magnitude = ((point["x"] - point["b"]) ** 2 + (point["w"] * point["loc"]) ** 2
                 + (point["w"] * point["scale"]) ** 2) / (2 * point["s"] ** 2) + abs(math.log(point["s"])) \
        + abs(math.log(point["scale"])) + (point["loc"] ** 2 + point["scale"] ** 2) / 2 + 2
    condition = magnitude / max(abs(float(elbo)), 1e-300)
    error = relative_error(elbo, reference("vae_linear_gaussian_elbo", None, point))
    assert error <= max(1e-12, 8 * EPS * condition)


# --- the reparameterisation gradient ----------------------------------------------------------


def estimator_draws(loc, scale, n=200_000, seed=11):
    """Each estimator's raw draws (the samplers also return the normals they were built from,
    for the checks' control variates; these tests are about the estimators themselves)."""
    found = symgen.derivation("vae_reparameterization_gradient_sin")
    rng = np.random.default_rng(seed)
    return {check.description: check.sampler(rng, n, loc=loc, scale=scale).draws for check in found.checks}


@pytest.mark.parametrize("loc, scale", [(0.3, 0.1), (0.3, 1.0), (-2.0, 0.5)])
def test_pathwise_estimates_have_smaller_variance_than_score_function(loc, scale):
    """Both estimators are unbiased for the exact gradient (each within 6 standard errors:
    false alarm < 1e-8 by the CLT for these bounded-moment estimators); for scale <= 1 the
    pathwise one has the smaller variance (printed with -s). The score function's variance
    grows like 1/scale^2 as q narrows, which is the VAE's regime."""
    exact = vae_reparameterization_gradient_sin(loc, scale)
    draws = estimator_draws(loc, scale)
    for output, value in (("d_loc", exact.d_loc), ("d_scale", exact.d_scale)):
        pathwise = draws[f"pathwise (reparameterisation) Monte Carlo estimate of {output}"]
        score = draws[f"score-function (REINFORCE) Monte Carlo estimate of {output}"]
        for estimate in (pathwise, score):
            assert abs(estimate.mean() - value) <= 6 * estimate.std() / math.sqrt(estimate.size)
        print(f"{output} at loc={loc}, scale={scale}: variance pathwise {pathwise.var():.3g}, "
              f"score function {score.var():.3g}")
        # The variances differ by factors of 2 to 10^4 here; 1.5 leaves room for sampling error.
        assert score.var() > 1.5 * pathwise.var()


def test_for_a_wide_q_and_bounded_f_the_score_function_can_win():
    # Not a law: at scale 2.5 the score-function estimate of d_loc for f = sin has the
    # smaller variance (sin is bounded, and the score (z - loc)/scale^2 is small).
    draws = estimator_draws(-2.0, 2.5)
    pathwise = draws["pathwise (reparameterisation) Monte Carlo estimate of d_loc"]
    score = draws["score-function (REINFORCE) Monte Carlo estimate of d_loc"]
    assert score.var() < pathwise.var() / 1.5


def test_gradient_matches_finite_differences_of_the_expectation():
    # E[sin z] = exp(-scale^2/2) sin(loc), differentiated by central differences.
    loc, scale, h = 0.7, 1.3, 1e-6
    expectation = lambda m, v: math.exp(-v**2 / 2) * math.sin(m)  # noqa: E731
    exact = vae_reparameterization_gradient_sin(loc, scale)
    assert exact.d_loc == pytest.approx((expectation(loc + h, scale) - expectation(loc - h, scale)) / (2 * h),
                                        abs=1e-9)
    assert exact.d_scale == pytest.approx((expectation(loc, scale + h) - expectation(loc, scale - h)) / (2 * h),
                                          abs=1e-9)


# --- the Monte Carlo checks' power: candidates 0.1% off, each check on its own ------------------

ELBO = ("-((x - b - w*loc)**2 + w**2*scale**2)/(2*s**2) - log(s) - log(2*pi)/2 - (loc**2 + scale**2)/2"
        " + log(scale) + 1/2")
D_LOC, D_SCALE = "exp(-scale**2/2)*cos(loc)", "-scale*exp(-scale**2/2)*sin(loc)"


def mean_check_alone(address, description, candidate, examples):
    """The Monte Carlo check of the output at ``address`` whose description starts with
    ``description``, by itself (no quadrature identity to help), on the candidate."""
    found = symgen.derivation(address.split(".")[0])
    output = found.output(address.split(".")[1] if "." in address else None).name
    check = next(check for check in found.checks if isinstance(check, MeanCheck)
                 and check.outputs == (output,) and check.description.startswith(description))
    values = expression_values(found, check.outputs[0], parse_candidate(found, candidate))
    return run_check(found, check, values, examples=examples, shrink=False)


@pytest.mark.parametrize("address, description, closed_form", [
    ("vae_linear_gaussian_elbo", "the same expectation", ELBO),
    ("vae_linear_gaussian_posterior.mean", "E_{p(z)}", "w*(x - b)/(w**2 + s**2)"),
    ("vae_reparameterization_gradient_sin.d_loc", "pathwise", D_LOC),
    ("vae_reparameterization_gradient_sin.d_loc", "score-function", D_LOC),
    ("vae_reparameterization_gradient_sin.d_scale", "pathwise", D_SCALE),
    ("vae_reparameterization_gradient_sin.d_scale", "score-function", D_SCALE),
])
def test_each_monte_carlo_check_alone_refutes_a_tenth_of_a_percent(address, description, closed_form):
    # Control variates (and, for the posterior, importance sampling around the peak) bring
    # each check's resolution at its best points below 0.1%: from 0.7-2.9% before.
    assert not mean_check_alone(address, description, f"({closed_form})*1.001", examples=4).passed
    right = mean_check_alone(address, description, closed_form, examples=1)
    assert right.passed, right.failure
    assert right.resolution <= 1e-3


# --- dtypes, broadcasting, errors --------------------------------------------------------------


def test_float32_and_broadcasting():
    f32 = np.float32
    assert vae_linear_gaussian_elbo(*(f32(v) for v in (0.5, 1.0, 0.0, 1.0, 0.2, 0.7))).dtype == np.float32
    assert vae_linear_gaussian_evidence(np.zeros(3, f32), f32(1), f32(0), f32(1)).dtype == np.float32
    result = vae_linear_gaussian_elbo(np.linspace(-1, 1, 4)[:, None], 1.0, 0.0, 1.0, np.zeros(5), 1.0)
    assert result.shape == (4, 5)


@pytest.mark.parametrize("function, arguments, named", [
    (vae_linear_gaussian_evidence, (0.0, 1.0, 0.0, 0.0), "s"),
    (vae_linear_gaussian_posterior, (0.0, np.nan, 0.0, 1.0), "w"),
    (vae_linear_gaussian_elbo, (0.0, 1.0, 0.0, 1.0, 0.0, -1.0), "scale"),
])
def test_bad_arguments_are_named(function, arguments, named):
    with pytest.raises(ValueError, match=rf"{function.__name__}: argument '{named}'"):
        function(*arguments)
