"""EDM preconditioning: the scalings of a denoiser's input, output and skip connection.

Karras, Aittala, Aila & Laine (2022), "Elucidating the Design Space of Diffusion-Based
Generative Models", wrap the network F in a denoiser (their Eq. 7)

    D(x; sigma) = c_skip(sigma) x + c_out(sigma) F(c_in(sigma) x; c_noise(sigma)),

applied to x = y + n: a data value y (any law with variance sigma_data^2) plus noise n ~ N(0,
sigma^2), independent of it. Training D to predict y by least squares trains F on the target
(y - c_skip x)/c_out (their Eq. 8). Appendix B.6 chooses the scalings by three requirements,
which this module derives rather than transcribes (Table 1, EDM column, states the results):

* the network's input c_in x has unit variance: c_in = 1/sqrt(sigma^2 + sigma_data^2);
* its training target has unit variance, Var[(y - c_skip x)/c_out] = 1, so c_out^2 =
  Var[y - c_skip x] = (1 - c_skip)^2 sigma_data^2 + c_skip^2 sigma^2;
* c_skip makes c_out as small as it can be (the network's errors are amplified by c_out):
  c_skip = sigma_data^2/(sigma^2 + sigma_data^2), so c_out = sigma sigma_data/sqrt(sigma^2 +
  sigma_data^2). This c_skip is also the least-squares slope of y on x: the best linear
  denoiser, whose residual y - c_skip x is orthogonal to x.

Only second moments enter, so the scalings are the same for every data law with variance
sigma_data^2; the checks simulate non-Gaussian ones (uniform, two-point). c_noise(sigma) =
ln(sigma)/4, the noise level the network is conditioned on, is not derived: it is the paper's
choice (Table 1; App. B.6), which no requirement above fixes.

Theory notebook, sections 7 (the noising step: here x = y + n, the variance-exploding form)
and 8 (the denoising loss the scalings normalise).
"""
import functools
import math

import mpmath
import numpy as np
import sympy as sp

from symgen.engine import (ArgMax, Controlled, Derivation, IdentityCheck, MeanCheck, Param, Positive, hypot,
                           lazy_module)

# SciPy is loaded when a check first runs, not when the module is imported.
integrate = lazy_module("scipy.integrate")
stats = lazy_module("scipy.stats")

EDM = ("Karras, Aittala, Aila & Laine (2022), Elucidating the Design Space of Diffusion-Based Generative "
       "Models")

sigma = sp.Symbol("sigma", positive=True)
sigma_data = sp.Symbol("sigma_data", positive=True)
# The data value and the noise, centred (a constant shift of y leaves every variance below
# unchanged), and the scalings as unknowns to solve for.
y, n = sp.symbols("y n", real=True)
skip = sp.Symbol("c_skip", real=True)
scale_in, scale_out = sp.symbols("c_in c_out", positive=True)

# E[y^k] and E[n^k], k = 0, 1, 2, of the centred data value and the noise.
MOMENTS = {y: (1, 0, sigma_data**2), n: (1, 0, sigma**2)}


def variance_of(linear):
    """Var[a y + b n] for independent centred y and n: E[(a y + b n)^2] = a^2 E[y^2] + 2 a b E[y] E[n]
    + b^2 E[n^2], the coefficients a and b read off SymPy's Poly (the cross term vanishes:
    independence and E[y] = E[n] = 0)."""
    form = sp.Poly(linear, y, n)
    if form.total_degree() > 1 or form.coeff_monomial(1) != 0:
        raise ValueError(f"not a linear form in y and n: {linear}")
    a, b = form.coeff_monomial(y), form.coeff_monomial(n)
    return a**2 * MOMENTS[y][2] + 2 * a * b * MOMENTS[y][1] * MOMENTS[n][1] + b**2 * MOMENTS[n][2]


@functools.cache
def skip_optimum():
    """argmin over c_skip of Var[y - c_skip (y + n)], written as the argmax of its reciprocal (the
    variance is positive) and kept unevaluated: SymPy solves it in the proofs."""
    return ArgMax(1 / variance_of(y - skip * (y + n)), skip)


def positive_root(equation, unknown):
    """The one solution of ``equation`` for a positive ``unknown`` (SymPy's solve)."""
    (root,) = sp.solve(equation, unknown)
    return root


edm_preconditioning = Derivation(
    "edm_preconditioning",
    sections=(7, 8),
    title="EDM preconditioning: c_skip, c_out, c_in and c_noise",
    summary="The scalings of D(x; sigma) = c_skip x + c_out F(c_in x; c_noise) for x = y + n, Var y = "
            "sigma_data^2, n ~ N(0, sigma^2): unit-variance network input and training target, with c_skip "
            "making c_out least; c_noise = ln(sigma)/4 is the paper's choice.",
    kind="denoising/score",
    references=[EDM + ", Eq. 7 (the preconditioned denoiser), Eq. 8 (the effective training target), "
                      "Table 1 (EDM column) and Appendix B.6 (the derivation of the scalings)"],
    params=[
        # EDM samples sigma in [0.002, 80] with sigma_data = 0.5; the domains reach far beyond,
        # both ratios sigma/sigma_data up to 1e8 and down to 1e-8.
        Param(sigma, Positive(1e-5, 1e5), "the noise level sigma (standard deviation of n, not the variance)"),
        Param(sigma_data, Positive(1e-3, 1e3), "the standard deviation of the data (0.5 in EDM)"),
    ],
    near=[(sigma, sigma_data)],
    returns="the four scalings, elementwise",
)

SECOND_MOMENTS = ("E[(a y + b n)^2] = a^2 E[y^2] + 2 a b E[y] E[n] + b^2 E[n^2] for independent y and n, "
                  "with E[y] = E[n] = 0, E[y^2] = sigma_data^2, E[n^2] = sigma^2")

skip_value = sigma_data**2 / (sigma**2 + sigma_data**2)
(edm_preconditioning
 .define(skip_optimum,
         "definition (App. B.6): c_skip minimises c_out. The target (y - c_skip x)/c_out has unit "
         "variance, so c_out^2 = Var[y - c_skip x] = (1 - c_skip)^2 sigma_data^2 + c_skip^2 sigma^2 ("
         + SECOND_MOMENTS + "); c_skip is its minimiser, the maximiser of 1/Var", output="c_skip",
         doc="c_skip = sigma_data^2/(sigma^2 + sigma_data^2): 1 for sigma -> 0 (D passes x through), "
             "0 for sigma -> infinity (D relies on F)")
 .step(skip_value,
       "SymPy solves d/dc_skip [(1 - c_skip)^2 sigma_data^2 + c_skip^2 sigma^2] = 0 and finds a minimum (the "
       "second derivative is 2 (sigma^2 + sigma_data^2) > 0): Table 1, EDM column")
 .stable(sp.UnevaluatedExpr(sigma_data / hypot(sigma, sigma_data)) ** 2,
         "the ratio sigma_data/hypot(sigma, sigma_data) <= 1 first, then squared: no square of an "
         "argument overflows or underflows"))


def unit_target_scale():
    """c_out > 0 with Var[(y - c_skip x)/c_out] = 1, solved by SymPy, its square's terms collected by
    sigma_data^2 and sigma^2, at the minimising c_skip (unevaluated)."""
    root = positive_root(sp.Eq(variance_of((y - skip * (y + n)) / scale_out), 1), scale_out)
    collected = sp.collect(sp.expand(root**2), [sigma_data**2, sigma**2], func=sp.factor)
    return sp.sqrt(collected).subs(skip, skip_optimum())


(edm_preconditioning
 .define(unit_target_scale,
         "definition (Eq. 8, App. B.6): the effective training target (y - c_skip x)/c_out has unit variance: "
         "Var[(y - c_skip x)/c_out] = ((1 - c_skip)^2 sigma_data^2 + c_skip^2 sigma^2)/c_out^2 ("
         + SECOND_MOMENTS + "), = 1 solved for c_out > 0 by SymPy, at the minimising c_skip",
         output="c_out", doc="c_out = sigma sigma_data/sqrt(sigma^2 + sigma_data^2): the least output scale")
 .step(sp.sqrt((1 - skip_value) ** 2 * sigma_data**2 + skip_value**2 * sigma**2),
       "at c_skip = sigma_data^2/(sigma^2 + sigma_data^2), which SymPy finds as above")
 .step(sigma * sigma_data / sp.sqrt(sigma**2 + sigma_data**2),
       "1 - c_skip = sigma^2/(sigma^2 + sigma_data^2), so c_out^2 = sigma^2 sigma_data^2/(sigma^2 + "
       "sigma_data^2): Table 1, EDM column")
 .stable(sigma_data * sp.UnevaluatedExpr(sigma / hypot(sigma, sigma_data)),
         "the ratio sigma/hypot(sigma, sigma_data) <= 1 first: neither the product sigma sigma_data nor a "
         "square overflows or underflows"))

(edm_preconditioning
 .define(lambda: positive_root(sp.Eq(variance_of(scale_in * (y + n)), 1), scale_in),
         "definition (App. B.6): the network's input c_in x has unit variance; Var[c_in (y + n)] = "
         "c_in^2 (sigma_data^2 + sigma^2) (" + SECOND_MOMENTS + "), = 1 solved for c_in > 0 by SymPy",
         output="c_in", doc="c_in = 1/sqrt(sigma^2 + sigma_data^2): the network sees unit-variance inputs")
 .step(1 / sp.sqrt(sigma**2 + sigma_data**2), "Table 1, EDM column")
 .stable(1 / hypot(sigma, sigma_data),
         "hypot(sigma, sigma_data): neither square overflows or underflows, at any float"))

(edm_preconditioning
 .define(sp.log(sigma) / 4,
         "a choice of the paper, not derived: c_noise(sigma) = ln(sigma)/4 (Table 1, EDM column; App. B.6), "
         "the noise level as the network is conditioned on it, which none of the variance requirements fixes",
         output="c_noise",
         doc="c_noise = ln(sigma)/4, the paper's choice of noise conditioning")
 .step(sp.log(sigma_data) / 4 - sp.log(sigma_data**2 / sigma**2) / 8,
       "equivalently an affine function of the log signal-to-noise ratio ln(sigma_data^2/sigma^2) of x = y + n: "
       "F is told the noise level on a log scale")
 .step(sp.log(sigma) / 4, "the logarithms collected again: ln(sigma)/4, one logarithm, exact at sigma = 1"))


# --- checks -----------------------------------------------------------------------------------
#
# False alarms: each MeanCheck 1e-9 per evaluation (batch-means t test, symgen/engine/checks.py),
# so at most 1e-6 over the runner's at most 1000 evaluations; the IdentityChecks are
# deterministic (false-alarm probability 0, their tolerances far above the errors measured).
#
# Two data laws with variance sigma_data^2, neither Gaussian: uniform on [-sqrt(3), sqrt(3)]
# sigma_data (simulated), and the two-point law +-sigma_data (its two values averaged exactly,
# so only the noise is simulated: each draw is then a quadratic in one normal, which the
# Hermite control variates remove, and the check resolves ~1e-12 of the output).


def uniform_data(rng, count, sigma_data):
    """Draws of a uniform law with mean 0 and variance sigma_data^2."""
    return math.sqrt(3) * sigma_data * rng.uniform(-1.0, 1.0, count)


def noise(rng, count, sigma):
    """(n, z): noise n = sigma z of the standard normals z (the control variates' variables)."""
    normals = rng.standard_normal(count)
    return sigma * normals, normals


def input_square_uniform(rng, count, formula, sigma, sigma_data):
    noisy_part, normals = noise(rng, count, sigma)
    x = uniform_data(rng, count, sigma_data) + noisy_part
    return Controlled((formula(sigma=sigma, sigma_data=sigma_data) * x) ** 2, normals)


def input_square_two_point(rng, count, formula, sigma, sigma_data):
    noisy_part, normals = noise(rng, count, sigma)
    scale = formula(sigma=sigma, sigma_data=sigma_data)
    squares = [(scale * (value + noisy_part)) ** 2 for value in (sigma_data, -sigma_data)]
    return Controlled((squares[0] + squares[1]) / 2, normals)


def variance_scale(skip_value, sigma, sigma_data):
    """Var[y - c x] = Var[(1 - c) y - c n] as a sum of the independent parts' variances
    ((1 - c)^2 sigma_data^2 + c^2 sigma^2), at mpmath numbers."""
    return ((1 - skip_value) * sigma_data) ** 2 + (skip_value * sigma) ** 2


@functools.lru_cache(maxsize=4096)
def minimising_skip(sigma, sigma_data):
    """The c minimising Var[y - c x], found numerically: the root of its derivative, both by
    mpmath (numerical differentiation, secant steps) at 40 digits, checked to be a minimum."""
    with mpmath.workdps(40):
        low, data = mpmath.mpf(sigma), mpmath.mpf(sigma_data)
        objective = lambda c: variance_scale(c, low, data)  # noqa: E731
        found = mpmath.findroot(lambda c: mpmath.diff(objective, c), mpmath.mpf(1) / 2)
        if not mpmath.diff(objective, found, 2) > 0:
            raise ArithmeticError("the stationary point of Var[y - c x] is not a minimum")
        return found


def skip_and_keep(sigma, sigma_data):
    """(c, 1 - c) for the numerically minimising c, as floats: 1 - c formed at 40 digits, so the
    residual (1 - c) y - c n keeps its digits where c is near 1 (sigma << sigma_data)."""
    found = minimising_skip(sigma, sigma_data)
    with mpmath.workdps(40):
        return float(found), float(1 - found)


def target_square_uniform(rng, count, formula, sigma, sigma_data):
    skip_value, keep = skip_and_keep(sigma, sigma_data)
    noisy_part, normals = noise(rng, count, sigma)
    data = uniform_data(rng, count, sigma_data)
    # y - c (y + n), written as (1 - c) y - c n.
    target = (keep * data - skip_value * noisy_part) / formula(sigma=sigma, sigma_data=sigma_data)
    return Controlled(target**2, normals)


def target_square_two_point(rng, count, formula, sigma, sigma_data):
    skip_value, keep = skip_and_keep(sigma, sigma_data)
    noisy_part, normals = noise(rng, count, sigma)
    scale = formula(sigma=sigma, sigma_data=sigma_data)
    squares = [((keep * value - skip_value * noisy_part) / scale) ** 2 for value in (sigma_data, -sigma_data)]
    return Controlled((squares[0] + squares[1]) / 2, normals)


def two_point_expectation(function, sigma, sigma_data):
    """E[function(y, n)] for y = +-sigma_data (probability 1/2 each) and n ~ N(0, sigma^2)
    independent: the two values of y averaged, n integrated by SciPy's adaptive quadrature in
    standard units (n = sigma z)."""
    def integrand(z):
        return stats.norm.pdf(z) * (function(sigma_data, sigma * z) + function(-sigma_data, sigma * z)) / 2

    return integrate.quad(integrand, -40, 40, epsabs=0, epsrel=1e-13, limit=200)[0]


def positive_input_scale(sigma, sigma_data):
    """The c > 0 with E[(c x)^2] = 1: 1/sqrt(E[x^2]), E[x^2] = E[(y + n)^2] by quadrature."""
    return 1 / math.sqrt(two_point_expectation(lambda data, noisy: (data + noisy) ** 2, sigma, sigma_data))


def positive_output_scale(sigma, sigma_data):
    """The c_out > 0 with E[((y - c x)/c_out)^2] = 1 at the numerically minimising c:
    sqrt(E[((1 - c) y - c n)^2]) by quadrature."""
    skip_value, keep = skip_and_keep(sigma, sigma_data)
    return math.sqrt(two_point_expectation(lambda data, noisy: (keep * data - skip_value * noisy) ** 2,
                                           sigma, sigma_data))


def orthogonality_two_point(rng, count, formula, sigma, sigma_data):
    # The normal equation of least squares: c minimises E[(y - c x)^2] exactly where the residual
    # is orthogonal to x, E[x (y - c x)] = 0. Divided by Var x = sigma^2 + sigma_data^2 (the
    # simulated law's), so a relative error d of c_skip moves the mean by -d c_skip.
    noisy_part, normals = noise(rng, count, sigma)
    skip_value = formula(sigma=sigma, sigma_data=sigma_data)
    products = [(value + noisy_part) * (value - skip_value * (value + noisy_part))
                for value in (sigma_data, -sigma_data)]
    return Controlled((products[0] + products[1]) / 2 / (sigma**2 + sigma_data**2), normals)


UNIT = lambda **params: 1.0  # noqa: E731
ZERO = lambda **params: 0.0  # noqa: E731

# c_in. Simulated uniform data: (c_in x)^2 keeps the part of its variance that comes from y (the
# controls remove the noise's), so 200_000 draws resolve ~1% where sigma ~ sigma_data and far
# finer elsewhere; the two-point law resolves ~1e-12 everywhere. Neither sees the sign of c_in
# (-c_in gives the same variance): the quadrature route takes the positive root, as the
# definition does. SciPy's quadrature is good to ~1e-13 here; 1e-9 is far below any slip.
edm_preconditioning.add_check(MeanCheck(
    input_square_uniform, "c_in: Var[c_in x] = E[(c_in (y + n))^2] = 1 by simulation, y uniform with "
    "variance sigma_data^2, control variates for the noise", output="c_in", samples=200_000,
    target=UNIT, applies_formula=True))
edm_preconditioning.add_check(MeanCheck(
    input_square_two_point, "c_in: E[(c_in (y + n))^2] = 1, y = +-sigma_data averaged exactly, the noise "
    "simulated (control variates)", output="c_in", samples=100_000, target=UNIT, applies_formula=True))
edm_preconditioning.add_check(IdentityCheck(
    positive_input_scale, "c_in: the positive c with E[(c (y + n))^2] = 1, E[(y + n)^2] by quadrature over n "
    "(SciPy), y = +-sigma_data", output="c_in", rtol=1e-9))

# c_skip. The minimiser at 40 digits (1e-10 covers the generated function's rounding), and the
# least-squares normal equation by simulation; the latter's resolution fades where c_skip is tiny
# (sigma >> sigma_data: an error of c_skip hardly moves E[x (y - c_skip x)]), which the former covers.
edm_preconditioning.add_check(IdentityCheck(
    lambda sigma, sigma_data: minimising_skip(sigma, sigma_data),
    "c_skip: Var[y - c x] minimised numerically (mpmath: the root of its numerical derivative, "
    "a minimum), 40 digits", output="c_skip", rtol=1e-10))
edm_preconditioning.add_check(MeanCheck(
    orthogonality_two_point, "c_skip: the least-squares normal equation E[x (y - c_skip x)] = 0 (c_skip "
    "minimises E[(y - c x)^2]), y = +-sigma_data averaged exactly, the noise simulated (control variates)",
    output="c_skip", samples=100_000, target=ZERO, applies_formula=True))

# c_out, at the numerically minimising c_skip (an error there moves the target's variance only to
# second order): as for c_in, by simulation with both laws, and the positive root by quadrature.
edm_preconditioning.add_check(MeanCheck(
    target_square_uniform, "c_out: Var[(y - c_skip x)/c_out] = 1 by simulation at the numerically "
    "minimising c_skip, y uniform with variance sigma_data^2, control variates for the noise",
    output="c_out", samples=200_000, target=UNIT, applies_formula=True))
edm_preconditioning.add_check(MeanCheck(
    target_square_two_point, "c_out: E[((y - c_skip x)/c_out)^2] = 1 at the numerically minimising "
    "c_skip, y = +-sigma_data averaged exactly, the noise simulated (control variates)",
    output="c_out", samples=100_000, target=UNIT, applies_formula=True))
edm_preconditioning.add_check(IdentityCheck(
    positive_output_scale, "c_out: the positive c_out with E[((y - c x)/c_out)^2] = 1 at the numerically "
    "minimising c, the expectation by quadrature over n (SciPy), y = +-sigma_data", output="c_out", rtol=1e-9))

# c_noise is a choice, not a consequence: its check evaluates the choice (kind "definition").
edm_preconditioning.add_check(IdentityCheck(
    lambda sigma, sigma_data: mpmath.log(sigma) / 4,
    "c_noise: the paper's choice ln(sigma)/4 (Table 1) by mpmath", output="c_noise", rtol=1e-12,
    atol=1e-300, definition=True))

edm_preconditioning.add_slip("1/(sigma**2 + sigma_data**2)", "c_in without the square root", output="c_in")
edm_preconditioning.add_slip("1/sqrt(sigma**2 + 1)", "c_in for unit-variance data (sigma_data dropped)",
                             output="c_in")
edm_preconditioning.add_slip("sigma**2/(sigma**2 + sigma_data**2)", "c_skip with sigma^2 for sigma_data^2 "
                             "in the numerator", output="c_skip")
edm_preconditioning.add_slip("sigma_data/sqrt(sigma**2 + sigma_data**2)", "c_skip with the square root "
                             "of its numerator and denominator", output="c_skip")
edm_preconditioning.add_slip("sigma*sigma_data/(sigma**2 + sigma_data**2)", "c_out without the square root "
                             "in the denominator", output="c_out")
edm_preconditioning.add_slip("sigma/sqrt(sigma**2 + sigma_data**2)", "c_out with sigma_data dropped from "
                             "the numerator", output="c_out")
edm_preconditioning.add_slip("log(sigma)/2", "c_noise as ln(sigma)/2", output="c_noise")


def draw_scalings(axes):
    """c_skip, c_out and c_in over EDM's noise levels, sigma_data = 0.5."""
    from symgen.formulas import edm_preconditioning as scalings

    levels = np.geomspace(2e-3, 80, 400)
    values = scalings(levels, 0.5)
    for name in ("c_skip", "c_out", "c_in"):
        axes.loglog(levels, getattr(values, name), label=name)
    axes.axvline(0.5, color="grey", linewidth=0.8, linestyle=":", label="sigma = sigma_data")
    axes.set_xlabel("sigma (sigma_data = 0.5)")
    axes.set_ylabel("scaling")
    axes.legend()


edm_preconditioning.add_plot("The scalings over EDM's noise levels", draw_scalings)
