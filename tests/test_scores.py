"""Scores and Tweedie's formula: accuracy, relations between the functions, dtypes, errors.
(The proofs, the Stein and finite-difference checks and the usual slips declared in
derivations/scores.py are tested catalogue-wide: tests/test_proofs.py, tests/test_checks.py.)"""
import math

import mpmath
import numpy as np
import pytest

from symgen import score_diffusion, score_mvn, score_normal, tweedie_normal
from symgen.engine.accuracy import relative_error
from single_check import (assert_refutes_a_thousandth_off, assert_verifies_and_resolves_a_thousandth,
                          one_per_check)

EPS64 = np.finfo(np.float64).eps


# --- accuracy against 50-digit mpmath ------------------------------------------------------


@pytest.mark.parametrize("scale", [1e-160, 1e-100, 1e-2, 1.0, 1e100, 1e200])
@pytest.mark.parametrize("x, loc", [(1.0, 0.0), (-3.5, 2.25), (1e300, -1e300)])
def test_score_normal_at_tiny_and_huge_scales(scale, x, loc):
    with mpmath.workdps(50):
        expected = -(mpmath.mpf(x) - mpmath.mpf(loc)) / mpmath.mpf(scale) ** 2
    if abs(expected) > np.finfo(np.float64).max:
        with np.errstate(over="ignore"):
            assert np.isinf(score_normal(x, loc, scale))
        return
    if x == 1e300 and scale < 1e200:
        return  # x - loc itself overflows: out of float64's range, not a formula issue
    # Dividing by scale twice keeps these in range where scale^2 would over/underflow.
    assert relative_error(score_normal(x, loc, scale), expected) <= 1e-12


# --- relations between the functions ------------------------------------------------------


def test_score_mvn_reduces_to_score_normal():
    x, loc, scales = np.array([0.3, -1.2, 4.0]), np.array([1.0, 0.5, -2.0]), np.array([0.1, 1.0, 7.0])
    np.testing.assert_allclose(score_mvn(x, loc, np.diag(scales**2)), score_normal(x, loc, scales), rtol=1e-14)
    assert score_mvn(x[:1], loc[:1], np.array([[scales[0] ** 2]]))[0] == pytest.approx(
        score_normal(x[0], loc[0], scales[0]), rel=1e-14)


def test_score_mvn_solves_the_linear_system():
    rng = np.random.default_rng(5)
    a = rng.standard_normal((4, 3, 3))
    cov = a @ np.swapaxes(a, -1, -2) + 0.1 * np.eye(3)
    x, loc = rng.standard_normal((4, 3)), rng.standard_normal(3)
    score = score_mvn(x, loc, cov)
    assert score.shape == (4, 3)
    np.testing.assert_allclose(np.einsum("...ij,...j->...i", cov, score), loc - x, rtol=1e-12, atol=1e-12)


def test_score_diffusion_is_minus_noise_over_its_scale():
    rng = np.random.default_rng(11)
    x0, alpha_bar, noise = rng.normal(size=50), rng.uniform(0.01, 0.99, 50), rng.normal(size=50)
    xt = np.sqrt(alpha_bar) * x0 + np.sqrt(1 - alpha_bar) * noise
    np.testing.assert_allclose(score_diffusion(x0, xt, alpha_bar), -noise / np.sqrt(1 - alpha_bar),
                               rtol=1e-9, atol=1e-12)
    # ... which is the score of the same Gaussian through score_normal.
    np.testing.assert_allclose(score_diffusion(x0, xt, alpha_bar),
                               score_normal(xt, np.sqrt(alpha_bar) * x0, np.sqrt(1 - alpha_bar)), rtol=1e-12)


def test_tweedie_formula_with_the_marginal_score():
    """E[x0 | xt] = (xt + (1 - alpha_bar) score_pt(xt)) / sqrt(alpha_bar), with p_t the law
    of x_t = N(sqrt(alpha_bar) loc, alpha_bar scale^2 + 1 - alpha_bar)."""
    xt, alpha_bar, loc, scale = np.linspace(-3, 3, 7), 0.37, 0.4, 1.7
    marginal_score = score_normal(xt, math.sqrt(alpha_bar) * loc, math.sqrt(alpha_bar * scale**2 + 1 - alpha_bar))
    np.testing.assert_allclose(tweedie_normal(xt, alpha_bar, loc, scale).mean,
                               (xt + (1 - alpha_bar) * marginal_score) / math.sqrt(alpha_bar), rtol=1e-13)


def test_tweedie_at_the_ends():
    # No noise: x_0 = x_t exactly. Almost all noise: the prior mean, with the prior variance.
    mean, var = tweedie_normal(0.7, 1.0, -2.0, 3.0)
    assert mean == 0.7 and var == 0.0
    mean, var = tweedie_normal(0.7, 1e-300, -2.0, 3.0)
    assert mean == pytest.approx(-2.0, rel=1e-14) and var == pytest.approx(9.0, rel=1e-14)


# --- dtypes and errors ------------------------------------------------------------------------


def test_score_diffusion_at_zero_terminal_snr_is_minus_xt():
    """alpha_bar = 0 (the last step of a zero-terminal-SNR schedule): q(x_t | x_0) = N(0, 1)."""
    xt = np.array([-2.0, 0.0, 3.5])
    np.testing.assert_array_equal(score_diffusion(1.5, xt, 0.0), -xt)


def test_float32_in_float32_out():
    f32 = np.float32
    assert score_normal(np.ones(3, f32), f32(0), f32(2)).dtype == np.float32
    assert score_diffusion(f32(0.5), np.ones(3, f32), f32(0.3)).dtype == np.float32
    assert tweedie_normal(np.ones(3, f32), f32(0.5), f32(0), f32(2)).mean.dtype == np.float32
    assert score_mvn(np.ones(2, f32), np.zeros(2, f32), np.eye(2, dtype=f32)).dtype == np.float32


@pytest.mark.parametrize("call, message", [
    (lambda: score_normal(0.0, 0.0, 0.0), "score_normal: argument 'scale' must be positive"),
    (lambda: score_normal(np.nan, 0.0, 1.0), "score_normal: argument 'x' must be finite"),
    (lambda: score_diffusion(0.0, 0.0, 1.0), "score_diffusion: argument 'alpha_bar' must lie in"),
    (lambda: score_diffusion(0.0, 0.0, -0.5), "score_diffusion: argument 'alpha_bar' must lie in"),
    (lambda: tweedie_normal(0.0, 1.5, 0.0, 1.0), "tweedie_normal: argument 'alpha_bar' must lie in"),
    (lambda: tweedie_normal(0.0, 0.5, 0.0, -1.0), "tweedie_normal: argument 'scale' must be positive"),
    (lambda: score_mvn(np.zeros(2), np.zeros(2), np.array([[1.0, 2.0], [2.0, 1.0]])),
     "score_mvn: argument 'cov' must be positive definite"),
    (lambda: score_mvn(np.zeros(2), np.zeros(2), np.array([[1.0, 0.5], [0.0, 1.0]])),
     "score_mvn: argument 'cov' must be symmetric"),
    (lambda: score_mvn(np.zeros(3), np.zeros(2), np.eye(2)), "score_mvn: argument 'loc' has dimension"),
    (lambda: score_mvn(np.zeros(2), np.zeros(2), np.full((2, 2), np.nan)), "score_mvn: argument 'cov' must be finite"),
])
def test_bad_arguments_raise_value_errors_naming_them(call, message):
    with pytest.raises(ValueError, match=message):
        call()



# --- power of the checks with control variates (derivations/scores.py) ----------------------------

TWEEDIE_MEAN = "(sqrt(alpha_bar)*scale**2*xt + loc*(1 - alpha_bar))/(alpha_bar*scale**2 + 1 - alpha_bar)"
TWEEDIE_VAR = "scale**2*(1 - alpha_bar)/(alpha_bar*scale**2 + 1 - alpha_bar)"

CONTROLLED_CHECKS = [
    ("score_normal", "score_normal", "Stein's identity", "(loc - x)/scale**2"),
    ("score_diffusion", "score_diffusion", "Stein's identity", "(sqrt(alpha_bar)*x0 - xt)/(1 - alpha_bar)"),
    ("tweedie_normal", "mean", "joint draws (x_t, x_0)", TWEEDIE_MEAN),
    ("tweedie_normal", "var", "joint draws (x_t, x_0)", TWEEDIE_VAR),
]


@pytest.mark.parametrize("name, output, description, closed_form", CONTROLLED_CHECKS)
def test_a_check_with_control_variates_refutes_a_thousandth_off(name, output, description, closed_form):
    assert_refutes_a_thousandth_off(name, output, description, closed_form)


@pytest.mark.parametrize("name, output, description, closed_form", one_per_check(CONTROLLED_CHECKS))
def test_a_check_with_control_variates_verifies_the_closed_form_and_resolves_a_thousandth(
        name, output, description, closed_form):
    assert_verifies_and_resolves_a_thousandth(name, output, description, closed_form)
