"""GAN costs, their logit-form gradients and the optimal discriminator: accuracy at the
float64 edges, the saturation of the minimax cost, Theorem 1 by Monte Carlo."""
import math

import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, special, stats

import symgen
from symgen import gan_losses, gan_losses_logits, gan_optimal_discriminator
from symgen.engine.accuracy import relative_error
from symgen.engine.evaluate import reference_value

FUNCTIONS = {"gan_losses": gan_losses, "gan_losses_logits": gan_losses_logits,
             "gan_optimal_discriminator": gan_optimal_discriminator}


def reference(name, output, point):
    found = symgen.derivation(name)
    return reference_value(found, found.output(output).closed_form, point)


# --- accuracy against 50-digit mpmath ----------------------------------------------------------


@pytest.mark.parametrize("logit", [-700.0, -40.0, -1e-12, 0.0, 3e-9, 38.0, 700.0])
def test_logit_form_at_the_float64_edges(logit):
    # Beyond |logit| ~ 37 sigmoid rounds to 0 or 1 and the probability form takes log(0);
    # the logit form keeps every digit out to the end of the float64 range.
    costs = gan_losses_logits(-logit, logit)
    with mpmath.workdps(60 + int(abs(logit))):
        x = mpmath.mpf(logit)
        softplus = lambda v: mpmath.log1p(mpmath.exp(v))  # noqa: E731
        sigmoid = lambda v: 1 / (1 + mpmath.exp(-v))  # noqa: E731
        expected = [softplus(x), -softplus(x), softplus(-x) / 2, -sigmoid(x) / 2, -sigmoid(-x) / 2]
    for value, exact in zip(costs, expected):
        assert relative_error(value, exact) <= 1e-12
    assert all(np.isfinite(costs))


def test_probability_form_takes_log_zero_where_the_logit_form_does_not():
    logit = 40.0
    d_fake = float(special.expit(logit))
    assert d_fake == 1.0                     # rounded: 1 - d_fake = 4e-18 is lost
    with np.errstate(divide="ignore"):
        assert np.isinf(gan_losses(0.5, d_fake).discriminator)
    assert np.isfinite(gan_losses_logits(0.0, logit).discriminator)


def test_log1p_keeps_small_fake_probabilities():
    # log(1 - 1e-20) rounds to 0 in the textbook form; log1p keeps it.
    point = dict(d_real=1 - 2**-53, d_fake=1e-20)
    value = gan_losses(**point).discriminator
    assert relative_error(value, reference("gan_losses", "discriminator", point)) <= 1e-12
    textbook = -(math.log(point["d_real"]) + math.log(1 - point["d_fake"])) / 2
    assert relative_error(textbook, reference("gan_losses", "discriminator", point)) > 1e-6


def test_the_notebooks_losses_are_twice_the_costs():
    d_real = np.array([0.9, 0.8, 0.7])
    d_fake = np.array([0.2, 0.3, 0.4])
    costs = gan_losses(d_real, d_fake)
    notebook_d_loss = -(np.log(d_real).mean() + np.log(1 - d_fake).mean())
    assert notebook_d_loss == pytest.approx(2 * costs.discriminator.mean(), rel=1e-14)
    assert -np.log(d_fake).mean() == pytest.approx(2 * costs.generator_non_saturating.mean(), rel=1e-14)
    assert np.log(1 - d_fake).mean() == pytest.approx(
        2 * costs.generator_minimax.mean() - np.log(d_real).mean(), rel=1e-14)
    logits = gan_losses_logits(special.logit(d_real), special.logit(d_fake))
    np.testing.assert_allclose(logits.discriminator, costs.discriminator, rtol=1e-13)


# --- gradients: the minimax cost saturates, the non-saturating one does not -------------------------


def test_gradients_in_terms_of_the_fake_probability():
    found = symgen.derivation("gan_losses_logits")
    logit = sp.Symbol("logit_fake", real=True)
    minimax = found.output("generator_minimax_grad").closed_form
    non_saturating = found.output("generator_non_saturating_grad").closed_form
    # As D(G(z)) -> 0 (logit -> -inf): the minimax gradient vanishes, the other tends to -1/2.
    assert sp.limit(minimax, logit, -sp.oo) == 0
    assert sp.limit(non_saturating, logit, -sp.oo) == -sp.Rational(1, 2)
    d_fake = np.array([1e-12, 1e-6, 1e-3, 0.1, 0.5, 0.9])
    values = gan_losses_logits(0.0, special.logit(d_fake))
    np.testing.assert_allclose(values.generator_minimax_grad, -d_fake / 2, rtol=1e-9)
    np.testing.assert_allclose(values.generator_non_saturating_grad, -(1 - d_fake) / 2, rtol=1e-9)
    # A confident discriminator (D(G(z)) = 1e-6): the minimax signal is 10^6 times weaker.
    assert abs(values.generator_non_saturating_grad[1] / values.generator_minimax_grad[1]) > 0.99e6


def test_gradients_match_finite_differences_of_the_costs():
    logits = np.linspace(-30, 30, 13)
    step = 1e-6
    for cost, gradient in [("generator_minimax", "generator_minimax_grad"),
                           ("generator_non_saturating", "generator_non_saturating_grad")]:
        ahead = getattr(gan_losses_logits(0.0, logits + step), cost)
        behind = getattr(gan_losses_logits(0.0, logits - step), cost)
        # Central differences: truncation ~ step^2, rounding ~ ulps x |cost| / step.
        np.testing.assert_allclose((ahead - behind) / (2 * step), getattr(gan_losses_logits(0.0, logits), gradient),
                                   rtol=1e-6, atol=1e-8)


# --- the optimal discriminator ------------------------------------------------------------------


def test_optimal_discriminator_is_the_density_ratio():
    p_data = np.array([0.1, 1.0, 3.0, 50.0])
    p_g = np.array([2.0, 1.0, 0.5, 1e-3])
    optimum = gan_optimal_discriminator(p_data, p_g)
    np.testing.assert_allclose(special.expit(optimum.logit), p_data / (p_data + p_g), rtol=1e-14)
    assert np.all(optimum.value <= 0)
    # Where the densities agree, D* = 1/2 and the value is -(p_data + p_g) log 2.
    assert gan_optimal_discriminator(0.3, 0.3).value == pytest.approx(-0.6 * math.log(2), rel=1e-15)
    assert gan_optimal_discriminator(0.3, 0.3).logit == 0.0


def test_the_maximiser_is_a_maximum():
    module = symgen.derivation("gan_optimal_discriminator").module
    curvature = sp.diff(module.pointwise_objective, module.discriminator, 2)
    assert sp.simplify(curvature.subs(module.discriminator, module.p_data / (module.p_data + module.p_g))).is_negative


def gaussian_jsd(loc_data, scale_data, loc_g, scale_g):
    """JSD(p_data || p_g) by adaptive quadrature of its integrand, in logs."""
    def integrand(x):
        log_p = stats.norm.logpdf(x, loc_data, scale_data)
        log_q = stats.norm.logpdf(x, loc_g, scale_g)
        # log(p/m) = log 2 - log(1 + q/p), written with logaddexp.
        return 0.5 * (np.exp(log_p) * (math.log(2) - np.logaddexp(0, log_q - log_p))
                      + np.exp(log_q) * (math.log(2) - np.logaddexp(0, log_p - log_q)))

    widest = max(scale_data, scale_g)
    low, high = min(loc_data, loc_g) - 40 * widest, max(loc_data, loc_g) + 40 * widest
    return integrate.quad(integrand, low, high, points=sorted({loc_data, loc_g}), limit=400,
                          epsabs=1e-13, epsrel=1e-11)[0]


def monte_carlo_objective(rng, n, loc_data, scale_data, loc_g, scale_g, perturb=lambda x: 0.0):
    """Per-draw V(D, G) = log D(x) + log(1 - D(y)), x ~ p_data, y ~ p_g, with D the optimal
    discriminator (from scipy's log densities) whose logit is shifted by perturb(x)."""
    def logit(x):
        return (stats.norm.logpdf(x, loc_data, scale_data) - stats.norm.logpdf(x, loc_g, scale_g)
                + perturb(x))

    real = rng.normal(loc_data, scale_data, n)
    fake = rng.normal(loc_g, scale_g, n)
    return -np.logaddexp(0, -logit(real)) - np.logaddexp(0, logit(fake))


def t_statistic(draws, value, batches=200):
    means = draws.reshape(batches, -1).mean(axis=1)
    return (means.mean() - value) / (means.std(ddof=1) / math.sqrt(batches))


gaussian_pairs = st.tuples(st.floats(-3, 3), st.floats(0.3, 3), st.floats(-3, 3), st.floats(0.3, 3))


@settings(max_examples=12)
@given(pair=gaussian_pairs, seed=st.integers(0, 2**32 - 1))
def test_value_at_the_optimum_is_minus_log_four_plus_twice_jsd(pair, seed):
    # Theorem 1 of Goodfellow et al. (2014), by Monte Carlo at the optimal discriminator
    # against quadrature of the JSD. Each example's t test has false-alarm probability
    # 1e-8 (Student t on 200 batch means), so at most 12e-8 for the test.
    rng = np.random.default_rng(seed)
    draws = monte_carlo_objective(rng, 200_000, *pair)
    theorem = -math.log(4) + 2 * gaussian_jsd(*pair)
    means = draws.reshape(200, -1).mean(axis=1)
    standard_error = means.std(ddof=1) / math.sqrt(200)
    # Equal Gaussians make every draw -log 4: the spread is then rounding, covered by the
    # same 1e-12 relative allowance as the engine's mean checks.
    allowance = stats.t.isf(0.5e-8, 199) * standard_error + 1e-12 * (1 + abs(theorem))
    assert abs(means.mean() - theorem) <= allowance


@pytest.mark.parametrize("pair", [(0.0, 1.0, 1.5, 1.0), (-0.5, 0.6, 0.4, 2.0), (1.0, 1.0, 1.0, 1.0)])
def test_the_value_output_integrates_to_minus_log_four_plus_twice_jsd(pair):
    loc_data, scale_data, loc_g, scale_g = pair

    def integrand(x):
        return float(gan_optimal_discriminator(stats.norm.pdf(x, loc_data, scale_data),
                                               stats.norm.pdf(x, loc_g, scale_g)).value)

    # Where both densities underflow to 0 the integrand is 0: integrate where they do not.
    integral = integrate.quad(integrand, -12, 12, limit=400, epsabs=1e-12, epsrel=1e-10)[0]
    assert integral == pytest.approx(-math.log(4) + 2 * gaussian_jsd(*pair), rel=1e-8, abs=1e-10)


@pytest.mark.parametrize("perturb", [lambda x: 0.5, lambda x: -0.5, lambda x: 0.7 * np.tanh(x)])
@pytest.mark.parametrize("pair", [(0.0, 1.0, 1.0, 1.0), (0.0, 0.5, 0.5, 2.0)])
def test_perturbing_the_optimal_discriminator_lowers_the_objective(perturb, pair):
    # Common random numbers: the same draws under D* and under the perturbed D, so the
    # difference's spread is the perturbation's effect alone. The gap is a KL-like
    # positive quantity of order 0.01-0.05 here; it must stand more than 6.3 standard
    # errors above 0 (a Student t bound at false-alarm probability 1e-9).
    optimal = monte_carlo_objective(np.random.default_rng(1), 200_000, *pair)
    perturbed = monte_carlo_objective(np.random.default_rng(1), 200_000, *pair, perturb=perturb)
    assert t_statistic(optimal - perturbed, 0.0) > stats.t.isf(0.5e-9, 199)


# --- symgen check (the usual slip, declared in derivations/gan.py, is refuted by tests/test_proofs.py) ---


def test_symgen_check_verifies_minus_log_d():
    assert symgen.check("gan_losses.generator_non_saturating", "-log(d_fake)/2", examples=10).verified


# --- dtypes, broadcasting, bad input -----------------------------------------------------------------


def test_float32_in_float32_out_and_broadcasting():
    f32 = np.float32
    assert gan_losses(f32(0.3), np.full(4, 0.2, f32)).discriminator.dtype == np.float32
    costs = gan_losses_logits(np.zeros((3, 1), f32), np.zeros(4, f32))
    assert costs.discriminator.shape == (3, 4)
    # Each output broadcasts the arguments it depends on: the gradients only logit_fake.
    assert costs.generator_minimax_grad.shape == (4,)
    assert gan_losses_logits(np.zeros(2, f32), f32(1)).discriminator.dtype == np.float32
    assert gan_optimal_discriminator(f32(0.2), f32(0.3)).value.dtype == np.float32


@pytest.mark.parametrize("arguments, named, why", [
    ((1.5, 0.5), "d_real", r"must lie in \[0.0, 1.0\], got 1.5"),
    ((0.5, -0.1), "d_fake", r"must lie in \[0.0, 1.0\], got -0.1"),
    ((0.5, np.array([0.2, 1.0000001])), "d_fake", r"must lie in \[0.0, 1.0\]"),
    ((np.nan, 0.5), "d_real", "must be finite"),
])
def test_probabilities_outside_the_unit_interval_are_rejected(arguments, named, why):
    with pytest.raises(ValueError, match=rf"gan_losses: argument '{named}' {why}"):
        gan_losses(*arguments)


def test_other_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="gan_losses_logits: argument 'logit_fake'"):
        gan_losses_logits(0.0, np.inf)
    with pytest.raises(ValueError, match="gan_optimal_discriminator: argument 'p_g'"):
        gan_optimal_discriminator(0.3, 0.0)
    with pytest.raises(ValueError, match="gan_losses: arguments do not broadcast"):
        gan_losses(np.full(2, 0.5), np.full(3, 0.5))
    with np.errstate(divide="ignore"):      # legal: -log 0 = inf is the cost there
        assert gan_losses(0.0, 0.5).discriminator == np.inf
