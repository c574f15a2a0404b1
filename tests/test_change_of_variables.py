"""Change of variables by SymPy: 1-D monotone maps (exp, sinh, tanh, compositions, a cube)
against pushforward samples, quadrature and finite differences; n-D log|det J| against
known layers; clear errors for maps that are not invertible.

Statistical tests here have false-alarm probability 1e-7 each (fixed seeds, so the suite
is deterministic besides)."""
import math

import numpy as np
import pytest
import sympy as sp
from scipy import integrate, stats

from symgen.engine import (NonZero, jacobian, log_abs_det_jacobian, log_normal_pdf, monotone_direction,
                           pushforward)

z = sp.Symbol("z", real=True)
x = sp.Symbol("x", real=True)
STANDARD_NORMAL = log_normal_pdf(z, 0, 1)
FALSE_ALARM = 1e-7


def numeric(expression):
    return sp.lambdify(x, expression, "numpy")


def mass(logpdf, forward, limit=5.0):
    """The integral of the density over forward([-limit, limit]) (which must equal
    1 - 2 Phi(-limit)), in pieces between the images of 65 equally spaced z, so the
    pieces follow the density however the map stretches the line."""
    breakpoints = np.sort(forward(np.linspace(-limit, limit, 65)))
    density = lambda t: math.exp(float(logpdf(t)))  # noqa: E731
    with np.errstate(all="ignore"):
        return sum(integrate.quad(density, lo, hi, epsabs=1e-15, epsrel=1e-12, limit=200)[0]
                   for lo, hi in zip(breakpoints[:-1], breakpoints[1:]))


def assert_matches_samples(logpdf, image, samples):
    """KS test of pushforward samples against the CDF of the derived density (quadrature
    between consecutive sorted samples), false alarm FALSE_ALARM."""
    density = lambda t: math.exp(float(logpdf(t)))  # noqa: E731
    ordered = np.sort(samples)
    pieces = [integrate.quad(density, float(image.inf), ordered[0], epsabs=1e-13, limit=200)[0]]
    pieces += [integrate.quad(density, lo, hi, epsabs=1e-13)[0] for lo, hi in zip(ordered[:-1], ordered[1:])]
    cdf_at_samples = np.cumsum(pieces)
    lookup = dict(zip(ordered.tolist(), cdf_at_samples.tolist()))
    result = stats.kstest(ordered, lambda t: np.array([lookup[v] for v in np.atleast_1d(t)]))
    assert result.pvalue > FALSE_ALARM, result


MAPS = {
    "exp (log-normal)": (sp.exp(z), np.exp),
    "sinh": (sp.sinh(z), np.sinh),
    "tanh": (sp.tanh(z), np.tanh),
    "exp of sinh": (sp.exp(sp.sinh(z)), lambda v: np.exp(np.sinh(v))),
    "decreasing affine": (1 - 2 * z, lambda v: 1 - 2 * v),
    "exp(-z)": (sp.exp(-z), lambda v: np.exp(-v)),
}


@pytest.mark.parametrize("name", MAPS)
def test_pushforward_density_integrates_to_one_and_matches_samples(name):
    transform, forward = MAPS[name]
    derived = pushforward(transform, z, x, STANDARD_NORMAL)
    logpdf = numeric(derived.logpdf)
    assert mass(logpdf, forward) == pytest.approx(1 - 2 * stats.norm.cdf(-5.0), rel=1e-10)
    samples = forward(np.random.default_rng(sum(map(ord, name))).standard_normal(2000))
    assert_matches_samples(logpdf, derived.image, samples)


@pytest.mark.parametrize("name", MAPS)
def test_the_inverse_inverts_and_the_log_det_is_a_finite_difference(name):
    transform, forward = MAPS[name]
    derived = pushforward(transform, z, x, STANDARD_NORMAL)
    inverse, log_det = numeric(derived.inverse), numeric(derived.log_abs_det)
    for value in (-1.3, -0.2, 0.4, 1.1):
        point = float(forward(value))
        assert inverse(point) == pytest.approx(value, rel=1e-12, abs=1e-12)
        h = 1e-6 * max(1.0, abs(point))
        slope = (inverse(point + h) - inverse(point - h)) / (2 * h)
        assert log_det(point) == pytest.approx(math.log(abs(slope)), abs=1e-6)


def test_exp_gives_the_log_normal_exactly():
    loc = sp.Symbol("loc", real=True)
    scale = sp.Symbol("scale", positive=True)
    positive_x = sp.Symbol("x", positive=True)
    derived = pushforward(sp.exp(loc + scale * z), z, positive_x, STANDARD_NORMAL)
    log_normal = (-(sp.log(positive_x) - loc) ** 2 / (2 * scale**2) - sp.log(positive_x * scale)
                  - sp.log(2 * sp.pi) / 2)
    assert sp.simplify(sp.expand_log(derived.logpdf - log_normal, force=True)) == 0
    assert derived.image == sp.Interval.open(0, sp.oo) and derived.direction == 1
    values = sp.lambdify((positive_x, loc, scale), derived.logpdf, "numpy")(np.array([0.3, 1.0, 7.0]), 0.2, 1.5)
    np.testing.assert_allclose(values, stats.lognorm(s=1.5, scale=math.exp(0.2)).logpdf([0.3, 1.0, 7.0]),
                               rtol=1e-13)


def test_an_odd_power_is_inverted_by_its_real_root():
    derived = pushforward(z**3, z, x, STANDARD_NORMAL)
    logpdf = numeric(derived.logpdf)
    for point in (-8.0, -0.5, 0.7, 5.0):
        # P(z^3 <= t) = Phi(cbrt(t)), differentiated numerically.
        h = 1e-6
        density = (stats.norm.cdf(np.cbrt(point + h)) - stats.norm.cdf(np.cbrt(point - h))) / (2 * h)
        assert float(logpdf(point)) == pytest.approx(math.log(density), abs=1e-6)


def test_directions():
    assert monotone_direction(sp.tanh(z), z) == 1
    assert monotone_direction(-sp.sinh(z), z) == -1
    a = sp.Symbol("a", real=True, nonzero=True)
    assert monotone_direction(a * z + 1, z) == sp.sign(a)


@pytest.mark.parametrize("transform, message", [
    (z**2, "not strictly monotone"),
    (sp.sin(z), "not strictly monotone"),
    (sp.cosh(z), "not strictly monotone"),
    (z**3 - z, "not strictly monotone"),
    (1 / z, "not continuous"),
    (sp.Symbol("a", real=True) * z, "not strictly monotone"),   # a may be 0
])
def test_a_map_that_is_not_invertible_is_rejected(transform, message):
    with pytest.raises(ValueError, match=message):
        pushforward(transform, z, x, STANDARD_NORMAL)


def test_a_map_without_a_closed_form_inverse_is_rejected():
    with pytest.raises(ValueError, match="no closed-form inverse"):
        pushforward(z + sp.sinh(z), z, x, STANDARD_NORMAL)


# --- n dimensions ------------------------------------------------------------------------

z1, z2, z3 = sp.symbols("z1 z2 z3", real=True)


def finite_difference_log_det(function, point, h=1e-6):
    point = np.asarray(point, dtype=float)
    columns = [(function(point + h * e) - function(point - h * e)) / (2 * h) for e in np.eye(point.size)]
    return np.linalg.slogdet(np.array(columns).T)[1]


def test_affine_coupling_log_det_is_the_sum_of_log_scales():
    # x_1 = z_1, x_2 = z_2 exp(s(z_1)) + t(z_1), x_3 = z_3 exp(s2(z_1)) + z_1: triangular Jacobian.
    s, t, s2 = (sp.Function(name, real=True) for name in ("s", "t", "s2"))
    components = [z1, z2 * sp.exp(s(z1)) + t(z1), z3 * sp.exp(s2(z1)) + z1]
    assert sp.simplify(log_abs_det_jacobian(components, [z1, z2, z3]) - (s(z1) + s2(z1))) == 0
    assert jacobian(components, [z1, z2, z3]).is_lower


def test_planar_flow_log_det_is_the_matrix_determinant_lemma():
    u = sp.symbols("u1 u2", real=True)
    w = sp.symbols("w1 w2", real=True)
    bias = sp.Symbol("bias", real=True)
    activation = sp.tanh(w[0] * z1 + w[1] * z2 + bias)
    components = [z1 + u[0] * activation, z2 + u[1] * activation]
    lemma = 1 + (1 - activation**2) * (u[0] * w[0] + u[1] * w[1])
    assert sp.expand(jacobian(components, [z1, z2]).det() - lemma) == 0
    assert sp.expand(log_abs_det_jacobian(components, [z1, z2]) - sp.log(sp.Abs(lemma))) == 0
    values = {u[0]: 0.7, u[1]: -0.4, w[0]: 1.3, w[1]: 0.2, bias: 0.1}
    function = sp.lambdify([(z1, z2)], [c.subs(values) for c in components], "numpy")
    point = np.array([0.3, -0.8])
    exact = float(log_abs_det_jacobian(components, [z1, z2]).subs(values).subs({z1: point[0], z2: point[1]}))
    assert exact == pytest.approx(finite_difference_log_det(lambda p: np.array(function(p)), point), abs=1e-8)


def test_invertible_linear_log_det_is_log_abs_det_w():
    rng = np.random.default_rng(0)
    weights = rng.standard_normal((3, 3))
    matrix = sp.Matrix(3, 3, [sp.Float(v, 30) for v in weights.flat])
    components = matrix * sp.Matrix([z1, z2, z3])
    value = float(log_abs_det_jacobian(components, [z1, z2, z3]))
    assert value == pytest.approx(np.linalg.slogdet(weights)[1], rel=1e-13)


def test_a_singular_map_is_rejected():
    with pytest.raises(ValueError, match="singular"):
        log_abs_det_jacobian([z1 + z2, 2 * z1 + 2 * z2], [z1, z2])
    with pytest.raises(ValueError, match="dimensions differ"):
        log_abs_det_jacobian([z1 + z2], [z1, z2])


# --- the nonzero domain ---------------------------------------------------------------------


def test_nonzero_domain_draws_both_signs_and_never_zero():
    domain = NonZero(1e-2, 1e2)
    rng = np.random.default_rng(1)
    draws = np.array([domain.sample(rng, {}) for _ in range(2000)])
    assert np.all(np.abs(draws) >= 1e-2) and np.all(np.abs(draws) <= 1e2)
    assert 0.4 < np.mean(draws > 0) < 0.6
