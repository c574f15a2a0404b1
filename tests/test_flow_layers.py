"""Flow layers (affine coupling, planar, invertible linear, elementwise affine): how fast
and how the steps are proved, the inverses and Jacobians SymPy finds, where a usual slip
shows, right formulas in other words, accuracy against 50-digit mpmath, relations, errors.

The proofs, the empirical checks and the usual slips declared in derivations/flow_layers.py
are tested catalogue-wide (tests/test_proofs.py, tests/test_checks.py). The deterministic
tests use fixed inputs; hypothesis is derandomized on CI.
"""
import math

import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from scipy import integrate, stats

import symgen
from symgen.engine import BoxCheck, MeanCheck, jacobian
from symgen.engine.accuracy import relative_error
from symgen.engine.api import parse_candidate
from symgen.engine.density_checks import mass_by_quadrature
from symgen.engine.evaluate import reference_value
from symgen.engine.runner import expression_values, formula_function, parameter_strategy, run_check


NAMES = ["affine_coupling_logpdf_2d", "planar_flow_logdet_2d", "linear_flow_logpdf_2d", "elementwise_affine_logpdf_2d"]
EPS = 2.0**-52


def function(name):
    """The public NumPy function (generated in memory while the derivation is a draft)."""
    return formula_function(symgen.derivation(name))


affine_coupling_logpdf_2d = function("affine_coupling_logpdf_2d")
planar_flow_logdet_2d = function("planar_flow_logdet_2d")
linear_flow_logpdf_2d = function("linear_flow_logpdf_2d")
elementwise_affine_logpdf_2d = function("elementwise_affine_logpdf_2d")


def closed_form_reference(name, point):
    found = symgen.derivation(name)
    return reference_value(found, found.output().closed_form, point)


# --- derivation and verification ----------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_the_proofs_take_seconds_not_minutes(name):
    # The planar flow's draft took minutes (SymPy's simplify on tanh of a sum); written
    # through exponentials, every step is decided by expand in well under a second.
    steps = symgen.derivation(name).prove().output().steps[1:]
    assert sum(step.seconds for step in steps) < 10


def test_planar_steps_are_decided_by_expand():
    for step in symgen.derivation("planar_flow_logdet_2d").prove().output().steps[1:]:
        assert "by expand" in step.proof


def test_the_planar_flow_tanh_is_tanh():
    # tanh(s) = 2/(1 + e^(-2 s)) - 1, the form the planar derivation writes tanh in:
    # SymPy's own rewrite of tanh through exponentials, then rational simplification.
    s = sp.Symbol("s", real=True)
    module = symgen.derivation("planar_flow_logdet_2d").module
    assert sp.cancel((module.tanh_through_exp(s) - sp.tanh(s)).rewrite(sp.exp)) == 0


def test_sympy_finds_the_inverses_and_triangular_jacobian():
    symbols = dict(zip("x1 x2 s_weight s_bias t_weight t_bias w11 w12 w21 w22 b1 b2".split(),
                       sp.symbols("x1 x2 s_weight s_bias t_weight t_bias w11 w12 w21 w22 b1 b2", real=True)))
    x = (2.0, 0.5)
    # The coupling: z2 = (x2 - t(x1)) exp(-s(x1)) (RealNVP Section 3.3), dT/dz triangular.
    coupling = symgen.derivation("affine_coupling_logpdf_2d").module
    assert jacobian(coupling.coupling_forward, coupling.LATENT).is_lower
    values = {symbols[name]: value for name, value in zip(("x1", "x2", "s_weight", "s_bias", "t_weight", "t_bias"),
                                                          (*x, 0.3, -0.2, 1.1, 0.4))}
    z = [float(component.subs(values)) for component in coupling.inverse_of(coupling.coupling_forward)]
    np.testing.assert_allclose(z, [2.0, (0.5 - 1.1 * 2.0 - 0.4) * math.exp(-(0.3 * 2.0 - 0.2))], rtol=1e-14)
    # The linear layer: z = W^-1 (x - b).
    linear = symgen.derivation("linear_flow_logpdf_2d").module
    w, shift = np.array([[1.5, 0.3], [-0.2, -0.7]]), np.array([0.4, -1.0])
    values = {symbols[name]: value for name, value in zip(("w11", "w12", "w21", "w22", "b1", "b2", "x1", "x2"),
                                                          (*w.ravel(), *shift, *x))}
    z = [float(component.subs(values)) for component in linear.inverse_of(linear.linear_forward)]
    np.testing.assert_allclose(z, np.linalg.solve(w, np.array(x) - shift), rtol=1e-14)


# --- where a usual slip shows, and right formulas in other words: `symgen check NAME ...` ----

S = "(s_weight*x1 + s_bias)"
PLANAR_A, PLANAR_C = "(w1*z1 + w2*z2 + bias)", "(u1*w1 + u2*w2)"
DET_W = "(w11*w22 - w12*w21)"
LINEAR = ("-((w22*(x1 - b1) - w12*(x2 - b2))**2 + (w11*(x2 - b2) - w21*(x1 - b1))**2)/(2*" + DET_W + "**2)"
          " - log(2*pi)")


def declared_slip(name, description):
    return next(candidate for candidate, described, _ in symgen.derivation(name).slips if described == description)


def test_the_missing_absolute_value_fails_exactly_where_det_w_is_negative():
    result = symgen.check("linear_flow_logpdf_2d", declared_slip("linear_flow_logpdf_2d", "log-det without the absolute value"))
    point = result.counterexample.point
    assert point["w11"] * point["w22"] - point["w12"] * point["w21"] < 0


RIGHT_IN_OTHER_WORDS = {
    # The paper's form, with tanh: the draft's own h' = 1 - tanh^2.
    "planar_flow_logdet_2d": [f"log(1 + (1 - tanh{PLANAR_A}**2)*{PLANAR_C})",
                           f"log(1 + {PLANAR_C}/cosh{PLANAR_A}**2)"],
    # log|det W| = log det(W^T W)/2, with det(W^T W) as the Gram determinant.
    "linear_flow_logpdf_2d": [LINEAR + " - log((w11**2 + w21**2)*(w12**2 + w22**2) - (w11*w12 + w21*w22)**2)/2"],
    "affine_coupling_logpdf_2d": ["log(exp(-x1**2/2)*exp(-((x2 - t_weight*x1 - t_bias)/exp(" + S + "))**2/2)"
                               "/(2*pi*exp(" + S + ")))"],
}
RIGHT_CASES = [(name, form) for name, forms in RIGHT_IN_OTHER_WORDS.items() for form in forms]


@pytest.mark.parametrize("name, form", RIGHT_CASES)
def test_the_right_formula_in_other_words_is_verified(name, form):
    result = symgen.check(name, form, examples=6)
    assert result.verified, str(result)


# --- the empirical checks' power: candidates 0.1% off, each check on its own ------------

TEXTBOOK = {
    "affine_coupling_logpdf_2d": f"-x1**2/2 - (x2 - t_weight*x1 - t_bias)**2*exp(-2*{S})/2 - {S} - log(2*pi)",
    "linear_flow_logpdf_2d": f"{LINEAR} - log(Abs{DET_W})",
    "elementwise_affine_logpdf_2d": "-((x1 - b1)/a1)**2/2 - ((x2 - b2)/a2)**2/2 - log(Abs(a1)) - log(Abs(a2)) - log(2*pi)",
    "planar_flow_logdet_2d": f"log(1 + (1 - tanh{PLANAR_A}**2)*{PLANAR_C})",
}


def run_alone(name, kind, candidate, examples):
    """The derivation's check of type ``kind`` by itself (no identity check to help), on the
    candidate, at ``examples`` hypothesis points plus the fixed anchors and edges."""
    found = symgen.derivation(name)
    check = next(check for check in found.checks if isinstance(check, kind))
    values = expression_values(found, check.outputs[0], parse_candidate(found, candidate))
    return run_check(found, check, values, examples=examples, shrink=False)


@pytest.mark.parametrize("name", ["affine_coupling_logpdf_2d", "linear_flow_logpdf_2d", "elementwise_affine_logpdf_2d"])
@pytest.mark.parametrize("off", ["({})*1.001", "{} + 0.001", "{} - 0.001"])
def test_the_box_check_alone_refutes_a_density_a_tenth_of_a_percent_off_by_its_mass(name, off):
    # p^1.001 or p e^(+-0.001): a shape the box counts (resolution ~5%) cannot tell from p,
    # a mass the quadrature (resolution 1e-9) can.
    report = run_alone(name, BoxCheck, off.format(TEXTBOOK[name]), examples=3)
    assert not report.passed
    assert report.failure.estimate == 1.0 and abs(report.failure.value - 1) > 1e-4   # the mass decided


@pytest.mark.parametrize("name", ["affine_coupling_logpdf_2d", "linear_flow_logpdf_2d", "elementwise_affine_logpdf_2d"])
def test_the_box_check_alone_verifies_the_closed_form_with_its_mass_to_1e_9(name):
    report = run_alone(name, BoxCheck, TEXTBOOK[name], examples=1)
    assert report.passed, report.failure
    assert report.coarsest_resolution <= 1.1e-9


def test_the_mass_quadrature_finds_a_narrow_conditional_far_from_the_centre():
    # A coupling with s(x1) = x1 - 1.5, t(x1) = 2 x1 + 3: at x1 = -5, x2 | x1 is 1.5e-3 wide
    # and 10 from the centre the quadrature starts from; the mass is still 1 to rounding,
    # and a density 1e-9 too large shows.
    def log_density(first, second):
        scale = first - 1.5
        return -first**2 / 2 - (second - 2 * first - 3) ** 2 * np.exp(-2 * scale) / 2 - scale - math.log(2 * math.pi)

    for factor in (1.0, 1 + 1e-9):
        def density(first, second, factor=factor):
            return factor * np.exp(log_density(first, second))
        for panels in (6, 12):
            mass = mass_by_quadrature(log_density, density, np.array([0.0, 3.0]), np.array([1.0, 2.0]), panels)
            assert mass == pytest.approx(factor, abs=1e-14)


def test_the_mass_is_not_tested_where_the_candidate_underflows_around_the_start():
    # log(exp(.) * exp(.)) is -inf wherever the product underflows: no peak is found there
    # and the mass is left untested (the counts decide), rather than refuted.
    def log_density(first, second):
        with np.errstate(divide="ignore"):
            return np.log(np.exp(-first**2 / 2) * np.exp(-(second - 40 * first) ** 2 * 1e6 / 2))

    assert math.isnan(mass_by_quadrature(log_density, lambda a, b: np.exp(log_density(a, b)),
                                         np.array([0.0, 0.0]), np.array([1.0, 40.0]), 6))


def test_the_change_of_variables_check_alone_refutes_a_log_det_a_tenth_of_a_percent_off():
    # Each draw is the trapezoidal rule on a shifted grid, exact to ~1e-14: resolution ~1e-12.
    assert not run_alone("planar_flow_logdet_2d", MeanCheck, f"({TEXTBOOK['planar_flow_logdet_2d']})*1.001",
                         examples=3).passed
    right = run_alone("planar_flow_logdet_2d", MeanCheck, TEXTBOOK["planar_flow_logdet_2d"], examples=1)
    assert right.passed and right.resolution <= 1e-10


def test_each_shifted_grid_is_the_change_of_variables_integral_to_rounding():
    module = symgen.derivation("planar_flow_logdet_2d").module
    flow = dict(u1=-0.625, u2=-0.625, w1=0.8, w2=0.8, bias=0.3)      # u^T w = -1: the edge
    draws = module.planar_change_of_variables(np.random.default_rng(4), 8, lambda **point: planar_flow_logdet_2d(
        **point), z1=0.0, z2=0.0, **flow)
    np.testing.assert_allclose(draws, 1.0, rtol=0, atol=1e-13)


# --- accuracy against 50-digit mpmath ----------------------------------------------------
# Where a log density crosses 0 its terms cancel, and the relative error is bounded by
# rounding times the sum of the terms' sizes (with every subtraction inside them made an
# addition) over the result, not by 1e-12: each `rounding_size` below is that sum, a
# running-error bound in units of eps, and the tests allow 8 eps times it.


def rounding_size_coupling(x1, x2, s_weight, s_bias, t_weight, t_bias):
    scale = s_weight * x1 + s_bias
    scale_size = abs(s_weight * x1) + abs(s_bias)
    residual_size = (abs(x2) + abs(t_weight * x1) + abs(t_bias)) * math.exp(-scale)
    standard = (x2 - t_weight * x1 - t_bias) * math.exp(-scale)
    return (x1**2 / 2 + abs(standard) * residual_size + standard**2 * (1 + scale_size)
            + scale_size + abs(scale) + math.log(2 * math.pi))


def rounding_size_planar(z1, z2, u1, u2, w1, w2, bias):
    activation = w1 * z1 + w2 * z2 + bias
    dot = u1 * w1 + u2 * w2
    increment = dot / math.cosh(activation) ** 2
    cancellation = (abs(u1 * w1) + abs(u2 * w2)) / abs(dot) if dot else 0.0    # dot = 0: exact 0
    relative = cancellation + 2 * (abs(w1 * z1) + abs(w2 * z2) + abs(bias)) + 4
    value = math.log1p(increment)
    return abs(value) + relative * abs(increment) / (1 + increment)


def rounding_size_linear(x1, x2, w11, w12, w21, w22, b1, b2):
    det = w11 * w22 - w12 * w21
    det_size = abs(w11 * w22) + abs(w12 * w21)
    first = w22 * (x1 - b1) - w12 * (x2 - b2)
    second = w11 * (x2 - b2) - w21 * (x1 - b1)
    first_size = abs(w22) * (abs(x1) + abs(b1)) + abs(w12) * (abs(x2) + abs(b2))
    second_size = abs(w11) * (abs(x2) + abs(b2)) + abs(w21) * (abs(x1) + abs(b1))
    quadratic = (first**2 + second**2) / det**2
    return (quadratic * (1 + det_size / abs(det)) + (abs(first) * first_size + abs(second) * second_size) / det**2
            + det_size / abs(det) + abs(math.log(abs(det))) + math.log(2 * math.pi))


def rounding_size_elementwise(x1, x2, a1, a2, b1, b2):
    total = math.log(2 * math.pi)
    for x, a, b in ((x1, a1, b1), (x2, a2, b2)):
        standard = (x - b) / a
        total += standard**2 + abs(standard) * (abs(x) + abs(b)) / abs(a) + abs(math.log(abs(a)))
    return total


ROUNDING_SIZES = {
    "affine_coupling_logpdf_2d": rounding_size_coupling,
    "planar_flow_logdet_2d": rounding_size_planar,
    "linear_flow_logpdf_2d": rounding_size_linear,
    "elementwise_affine_logpdf_2d": rounding_size_elementwise,
}


def assert_accurate(name, point):
    reference = closed_form_reference(name, point)
    error = relative_error(function(name)(**point), reference)
    allowance = 8 * EPS * ROUNDING_SIZES[name](**point) / max(abs(float(reference)), 1e-300)
    assert error <= max(1e-12, allowance), (point, error, allowance)


@settings(max_examples=60)
@given(point=parameter_strategy(symgen.derivation("affine_coupling_logpdf_2d")))
def test_coupling_matches_mpmath_over_the_domain(point):
    assert_accurate("affine_coupling_logpdf_2d", point)


@settings(max_examples=60)
@given(point=parameter_strategy(symgen.derivation("planar_flow_logdet_2d")))
def test_planar_matches_mpmath_over_the_domain(point):
    assert_accurate("planar_flow_logdet_2d", point)


@settings(max_examples=60)
@given(point=parameter_strategy(symgen.derivation("linear_flow_logpdf_2d")))
def test_linear_matches_mpmath_over_the_domain(point):
    assert_accurate("linear_flow_logpdf_2d", point)


@settings(max_examples=60)
@given(point=parameter_strategy(symgen.derivation("elementwise_affine_logpdf_2d")))
def test_elementwise_matches_mpmath_over_the_domain(point):
    assert_accurate("elementwise_affine_logpdf_2d", point)


@pytest.mark.parametrize("bias", [8.0, -25.0, 60.0, -300.0, 700.0])
def test_planar_stays_accurate_where_tanh_saturates(bias):
    point = dict(z1=0.5, z2=-1.0, u1=0.7, u2=-0.3, w1=0.9, w2=0.4, bias=bias)
    reference = closed_form_reference("planar_flow_logdet_2d", point)
    assert relative_error(planar_flow_logdet_2d(**point), reference) <= 1e-12
    # The textbook h' = 1 - tanh^2 misses the 1e-12 bar there (and keeps no digit past
    # |a| ~ 19), except where the true value underflows anyway.
    activation = 0.9 * 0.5 - 0.4 * 1.0 + bias
    textbook = math.log1p((0.7 * 0.9 - 0.3 * 0.4) * (1 - math.tanh(activation) ** 2))
    assert relative_error(textbook, reference) > 1e-12 or float(reference) < 1e-300


@pytest.mark.parametrize("scale", [-1e-170, 1e-200, 1e-300])
def test_elementwise_tiny_scales_do_not_underflow(scale):
    point = dict(x1=1.5 * abs(scale), x2=0.3, a1=scale, a2=2.0, b1=0.0, b2=0.1)
    reference = closed_form_reference("elementwise_affine_logpdf_2d", point)
    assert relative_error(elementwise_affine_logpdf_2d(**point), reference) <= 1e-12


# --- relations ----------------------------------------------------------------------------

_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(16)


def mass_2d(density, first_range, second_range, panels=96):
    """The integral of density(x1, x2): scipy's adaptive quad over x1 of a composite
    16-point Gauss-Legendre rule over x2 in second_range(x1) (vectorized, one call per x1;
    with panels no wider than a scale of the density it is exact to rounding)."""
    def inner(first):
        low, high = second_range(first)
        edges = np.linspace(low, high, panels + 1)
        half = (edges[1:] - edges[:-1])[:, None] / 2
        nodes = (edges[:-1, None] + half * (_NODES + 1)).ravel()
        return float(np.dot((half * _WEIGHTS).ravel(), density(first, nodes)))

    return integrate.quad(inner, *first_range, epsabs=1e-13, epsrel=1e-12, limit=400)[0]


def test_coupling_is_a_conditional_gaussian():
    # x1 ~ N(0, 1) and, given x1, x2 ~ N(t(x1), exp(2 s(x1))): no Jacobian involved.
    rng = np.random.default_rng(1)
    x1, x2 = rng.normal(0, 2, 40), rng.normal(0, 4, 40)
    s_weight, s_bias, t_weight, t_bias = 0.6, -0.4, 1.3, 0.2
    expected = stats.norm.logpdf(x1) + stats.norm.logpdf(x2, t_weight * x1 + t_bias, np.exp(s_weight * x1 + s_bias))
    np.testing.assert_allclose(affine_coupling_logpdf_2d(x1, x2, s_weight, s_bias, t_weight, t_bias), expected,
                               rtol=1e-13)


@pytest.mark.parametrize("coupling", [(0.0, 0.0, 0.0, 0.0), (0.8, -0.5, 1.5, 2.0), (-1.0, 1.2, -2.0, -3.0)])
def test_coupling_density_integrates_to_one(coupling):
    s_weight, s_bias, t_weight, t_bias = coupling
    # Given x1, the mass lies within 40 conditional scales of the shift; x1 within 40.
    mass = mass_2d(lambda x1, x2: np.exp(affine_coupling_logpdf_2d(x1, x2, *coupling)), (-40, 40),
                   lambda x1: (t_weight * x1 + t_bias - 40 * math.exp(s_weight * x1 + s_bias),
                               t_weight * x1 + t_bias + 40 * math.exp(s_weight * x1 + s_bias)))
    assert abs(mass - 1) <= 1e-10


def random_matrices(count, seed):
    rng = np.random.default_rng(seed)
    return [rng.normal(0, 1, (2, 2)) for _ in range(count)]


@pytest.mark.parametrize("matrix", random_matrices(4, 7))
def test_linear_equals_scipy_and_the_slogdet(matrix):
    rng = np.random.default_rng(3)
    x, shift = rng.normal(0, 3, (30, 2)), rng.normal(0, 1, 2)
    value = linear_flow_logpdf_2d(x[:, 0], x[:, 1], *matrix.ravel(), *shift)
    expected = stats.multivariate_normal(shift, matrix @ matrix.T).logpdf(x)
    np.testing.assert_allclose(value, expected, rtol=1e-10)
    latent = np.linalg.solve(matrix, (x - shift).T).T
    log_det = stats.norm.logpdf(latent).sum(axis=1) - value
    np.testing.assert_allclose(log_det, np.linalg.slogdet(matrix)[1], rtol=1e-10, atol=1e-12)


def test_linear_density_is_unchanged_by_a_rotation_of_the_latent():
    # z ~ N(0, I) is rotation invariant, so W R gives the law of W: the same density.
    matrix = np.array([[1.3, -0.4], [0.6, 0.9]])
    angle = 0.7
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    x1, x2 = np.meshgrid(np.linspace(-4, 4, 9), np.linspace(-3, 5, 9))
    np.testing.assert_allclose(linear_flow_logpdf_2d(x1, x2, *(matrix @ rotation).ravel(), 0.5, 1.0),
                               linear_flow_logpdf_2d(x1, x2, *matrix.ravel(), 0.5, 1.0), rtol=1e-13)


def test_linear_density_integrates_to_one():
    matrix, shift = np.array([[0.3, -1.2], [0.8, 0.5]]), (1.0, -2.0)
    reach = 40 * np.linalg.norm(matrix, 2)
    mass = mass_2d(lambda x1, x2: np.exp(linear_flow_logpdf_2d(x1, x2, *matrix.ravel(), *shift)),
                   (shift[0] - reach, shift[0] + reach), lambda x1: (shift[1] - reach, shift[1] + reach), panels=256)
    assert abs(mass - 1) <= 1e-10


def test_elementwise_is_a_diagonal_linear_flow_and_two_affine_flows():
    from symgen import affine_flow_logpdf

    rng = np.random.default_rng(5)
    x1, x2, b1, b2 = rng.normal(0, 3, (4, 25))
    a1, a2 = rng.choice([-1, 1], (2, 25)) * np.exp(rng.uniform(-3, 3, (2, 25)))
    value = elementwise_affine_logpdf_2d(x1, x2, a1, a2, b1, b2)
    np.testing.assert_allclose(value, linear_flow_logpdf_2d(x1, x2, a1, 0.0, 0.0, a2, b1, b2), rtol=1e-13)
    np.testing.assert_allclose(value, affine_flow_logpdf(x1, a1, b1) + affine_flow_logpdf(x2, a2, b2), rtol=1e-13)


def finite_difference_log_det(z, flow, h=1e-6):
    forward = symgen.derivation("planar_flow_logdet_2d").module.planar_forward_numeric
    columns = [(np.array(forward(*(z + h * e), **flow)) - np.array(forward(*(z - h * e), **flow))) / (2 * h)
               for e in np.eye(2)]
    return np.linalg.slogdet(np.array(columns).T)[1]


@pytest.mark.parametrize("seed", range(4))
def test_planar_matches_a_finite_difference_jacobian(seed):
    rng = np.random.default_rng(seed)
    flow = dict(zip(("u1", "u2", "w1", "w2"), rng.uniform(-1, 1, 4)), bias=float(rng.normal()))
    z = rng.normal(0, 1, 2)
    assert planar_flow_logdet_2d(*z, **flow) == pytest.approx(finite_difference_log_det(z, flow), abs=1e-8)


@pytest.mark.parametrize("flow", [dict(u1=0.7, u2=-0.4, w1=1.3, w2=0.2, bias=0.1),
                                  dict(u1=-1.0, u2=0.0, w1=1.0, w2=0.0, bias=0.3)])
def test_planar_change_of_variables_integrates_to_one(flow):
    # integral of N(f(z); 0, I) |det J_f(z)| dz = integral of N(x; 0, I) dx = 1 for a
    # bijection f of the plane (the second flow sits on the edge u^T w = -1).
    forward = symgen.derivation("planar_flow_logdet_2d").module.planar_forward_numeric

    def integrand(first, second):
        image = forward(first, second, **flow)
        log_density = -(image[0] ** 2 + image[1] ** 2) / 2 - math.log(2 * math.pi)
        return np.exp(log_density + planar_flow_logdet_2d(first, second, **flow))

    mass = mass_2d(integrand, (-12, 12), lambda first: (-12, 12))
    assert abs(mass - 1) <= 1e-10


def test_planar_log_det_vanishes_when_u_is_orthogonal_to_w_and_is_even_in_the_activation():
    z1, z2 = np.linspace(-2, 2, 5), np.linspace(1, -1, 5)
    assert np.array_equal(planar_flow_logdet_2d(z1, z2, 0.6, -0.3, 0.5, 1.0, 0.2), np.zeros(5))
    np.testing.assert_allclose(planar_flow_logdet_2d(z1, z2, 0.6, 0.3, 0.5, 1.0, 0.2),
                               planar_flow_logdet_2d(-z1, -z2, 0.6, 0.3, 0.5, 1.0, -0.2), rtol=1e-14)


def test_planar_on_the_invertibility_edge():
    # u^T w = -1: det J = 1 - sech^2(a) = tanh^2(a), zero only at a = 0.
    value = planar_flow_logdet_2d(0.5, 0.0, -1.0, 0.0, 1.0, 0.0, 0.0)
    with mpmath.workdps(30):
        assert float(value) == pytest.approx(float(2 * mpmath.log(mpmath.tanh(0.5))), rel=1e-13)
    with np.errstate(divide="ignore"):
        assert planar_flow_logdet_2d(0.0, 0.0, -1.0, 0.0, 1.0, 0.0, 0.0) == -np.inf


# --- dtypes, broadcasting, errors ------------------------------------------------------------


def test_float32_in_float32_out_and_broadcasting():
    f32 = np.float32
    assert planar_flow_logdet_2d(np.zeros(3, f32), f32(0), f32(0.5), f32(0.5), f32(1), f32(1), f32(0)).dtype == np.float32
    assert linear_flow_logpdf_2d(0, 0, 1, 0, 0, 1, 0, 0).dtype == np.float64
    grid = np.linspace(-1, 1, 4)[:, None]
    assert affine_coupling_logpdf_2d(grid, np.array([0.0, 1.0, 2.0]), 0.5, 0.0, 1.0, 0.0).shape == (4, 3)
    assert elementwise_affine_logpdf_2d(grid, 0.0, np.array([1.0, -2.0]), 1.0, 0.0, 0.0).shape == (4, 2)


@pytest.mark.parametrize("matrix", [(1.0, 2.0, 2.0, 4.0), (0.0, 0.0, 0.0, 0.0), (0.0, 1.0, 0.0, 3.0),
                                    (np.array([1.0, 1.0]), 2.0, np.array([0.5, 2.0]), np.array([4.0, 4.0]))])
def test_a_singular_w_is_not_invertible(matrix):
    with pytest.raises(ValueError, match=r"linear_flow_logpdf_2d: the matrix W .* is singular"):
        linear_flow_logpdf_2d(0.3, -0.2, *matrix, 0.0, 0.0)


@pytest.mark.parametrize("u1, w1", [(-1.0, 1.5), (2.0, -0.6)])
def test_planar_flow_that_is_not_invertible_is_rejected(u1, w1):
    with pytest.raises(ValueError, match=r"planar_flow_logdet_2d: the planar flow is invertible only for u\^T w >= -1"):
        planar_flow_logdet_2d(0.0, 0.0, u1, 0.0, w1, 0.0, 0.0)


@pytest.mark.parametrize("named", ["a1", "a2"])
def test_a_zero_scale_is_not_invertible(named):
    scales = {"a1": 1.0, "a2": 1.0, named: 0.0}
    with pytest.raises(ValueError, match=rf"elementwise_affine_logpdf_2d: argument '{named}' must be nonzero"):
        elementwise_affine_logpdf_2d(0.0, 0.0, scales["a1"], scales["a2"], 0.0, 0.0)


@pytest.mark.parametrize("name, named", [("affine_coupling_logpdf_2d", "s_weight"), ("planar_flow_logdet_2d", "bias"),
                                         ("linear_flow_logpdf_2d", "w12"), ("elementwise_affine_logpdf_2d", "x2")])
def test_non_finite_arguments_are_rejected(name, named):
    point = {param: 0.5 for param in symgen.derivation(name).param_names}
    point[named] = np.nan
    with pytest.raises(ValueError, match=rf"{name}: argument '{named}'"):
        function(name)(**point)


def test_validate_false_skips_the_checks():
    with np.errstate(all="ignore"):
        assert not np.isfinite(linear_flow_logpdf_2d(0.3, 0.2, 1.0, 2.0, 2.0, 4.0, 0.0, 0.0, validate=False))

