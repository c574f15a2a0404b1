"""Flows: the affine flow's change of variables: the inverse SymPy finds, where a slip shows,
relations, accuracy, dtypes, errors. (The proofs, the empirical checks and the usual slips
declared in derivations/flows.py are tested catalogue-wide: tests/test_proofs.py,
tests/test_checks.py.)"""
import math

import numpy as np
import pytest
import sympy as sp
from scipy import integrate, stats

import symgen
from symgen import affine_flow_logpdf
from symgen.engine.accuracy import relative_error
from symgen.engine.evaluate import reference_value


def closed_form_reference(name, point):
    found = symgen.derivation(name)
    return reference_value(found, found.output().closed_form, point)


# --- the derivation -------------------------------------------------------------------


def test_the_inverse_is_found_by_sympy():
    # The reason of the chain-rule step quotes this inverse; the engine's pushforward finds it.
    module = symgen.derivation("affine_flow_logpdf").module
    change = module.affine_change()
    assert sp.simplify(change.inverse - (module.x - module.b) / module.a_nonzero) == 0
    assert "z = (x - b)/a" in symgen.derivation("affine_flow_logpdf").output().steps[1].reason


# --- where a usual slip shows: `symgen check affine_flow_logpdf ...` ----------------------


def test_the_missing_absolute_value_fails_exactly_at_negative_a():
    found = symgen.derivation("affine_flow_logpdf")
    candidate = next(candidate for candidate, description, _ in found.slips
                     if description == "Jacobian term without the absolute value")
    result = symgen.check("affine_flow_logpdf", candidate)
    assert result.counterexample.point["a"] < 0
    # ... and the same formula is right where a > 0: the slip hides until a flips the line.
    assert math.isclose(float(affine_flow_logpdf(0.3, 2.0, -1.0)),
                        -(0.3 + 1.0) ** 2 / 8 - math.log(2 * math.pi) / 2 - math.log(2.0), rel_tol=1e-14)


def test_the_right_formula_in_other_words_is_verified():
    result = symgen.check("affine_flow_logpdf", "log(exp(-((x - b)/a)**2/2)/(sqrt(2*pi)*Abs(a)))",
                          examples=8)
    assert result.verified, str(result)


# --- relations ------------------------------------------------------------------------


def test_equals_the_normal_log_density_with_scale_abs_a():
    rng = np.random.default_rng(4)
    x, a, b = rng.normal(0, 5, 50), rng.choice([-1, 1], 50) * np.exp(rng.uniform(-4, 4, 50)), rng.normal(0, 5, 50)
    np.testing.assert_allclose(affine_flow_logpdf(x, a, b), stats.norm.logpdf(x, b, np.abs(a)), rtol=1e-13)


def test_flipping_the_sign_of_a_leaves_the_density_unchanged():
    x = np.linspace(-5, 5, 11)
    assert np.array_equal(affine_flow_logpdf(x, -1.7, 0.4), affine_flow_logpdf(x, 1.7, 0.4))


@pytest.mark.parametrize("a, b", [(0.01, 3.0), (-2.5, -1.0), (40.0, 0.0)])
def test_the_density_integrates_to_one(a, b):
    # 40 standard deviations either side hold all but e^-800 of the mass.
    mass = integrate.quad(lambda t: math.exp(float(affine_flow_logpdf(t, a, b))), b - 40 * abs(a),
                          b + 40 * abs(a), points=[b], epsabs=1e-14, epsrel=1e-12, limit=200)[0]
    assert abs(mass - 1) <= 1e-10


def test_finite_difference_jacobian_of_the_inverse_gives_the_log_det():
    # log p_x(x) - log p_z(T^-1(x)) = log|d T^-1/dx|, with the derivative by central differences.
    for a in (0.3, -0.3, 5.0, -5.0):
        b, x, h = 0.7, 1.3, 1e-5
        inverse = lambda t: (t - b) / a  # noqa: E731
        slope = (inverse(x + h) - inverse(x - h)) / (2 * h)
        log_det = float(affine_flow_logpdf(x, a, b)) - stats.norm.logpdf(inverse(x))
        assert abs(log_det - math.log(abs(slope))) <= 1e-9


# --- accuracy against 50-digit mpmath -------------------------------------------------


@pytest.mark.parametrize("a", [-1e-170, 1e-200, 1e-300])
def test_tiny_scales_do_not_underflow(a):
    point = dict(x=1.5 * abs(a), a=a, b=0.0)
    reference = closed_form_reference("affine_flow_logpdf", point)
    assert relative_error(affine_flow_logpdf(**point), reference) <= 1e-12
    # The textbook (x - b)^2 / (2 a^2) squares both to 0 there: 0/0.
    with np.errstate(all="ignore"):
        x, a64 = np.float64(point["x"]), np.float64(a)
        textbook = -x**2 / (2 * a64**2) - np.log(abs(a64)) - np.log(2 * np.pi) / 2
    assert np.isnan(textbook)


# --- dtypes, broadcasting, errors ------------------------------------------------------


def test_float32_in_float32_out_and_broadcasting():
    f32 = np.float32
    assert affine_flow_logpdf(np.zeros(3, f32), f32(2), f32(1)).dtype == np.float32
    assert affine_flow_logpdf(0, 1, 0).dtype == np.float64
    result = affine_flow_logpdf(np.linspace(-1, 1, 4)[:, None], np.array([0.5, -1.0, 2.0]), 0.0)
    assert result.shape == (4, 3)


@pytest.mark.parametrize("a", [0.0, -0.0, np.array([1.0, 0.0])])
def test_a_zero_scale_is_not_invertible(a):
    with pytest.raises(ValueError, match=r"affine_flow_logpdf: argument 'a' must be nonzero"):
        affine_flow_logpdf(0.0, a, 0.0)


@pytest.mark.parametrize("arguments, named", [
    ((np.nan, 1.0, 0.0), "x"), ((0.0, np.inf, 0.0), "a"), ((0.0, 1.0, np.nan), "b")])
def test_non_finite_arguments_are_rejected(arguments, named):
    with pytest.raises(ValueError, match=rf"affine_flow_logpdf: argument '{named}'"):
        affine_flow_logpdf(*arguments)


def test_validate_false_skips_the_checks():
    with np.errstate(all="ignore"):
        assert not np.isfinite(affine_flow_logpdf(1.0, 0.0, 0.0, validate=False))
