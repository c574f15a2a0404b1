"""Normalizing flows: closed forms for the standard layers in two dimensions.

A flow pushes z ~ N(0, I) through an invertible map x = T(z); the density of x is

    log p_x(x) = log p_z(T^-1(x)) - log|det J_T(T^-1(x))|,      J_T = dT/dz,

(Papamakarios et al. (2021), JMLR 22, Section 2.1). Each layer below is built so that
T^-1 and log|det J_T| are cheap; SymPy finds the inverse (``solve``), the Jacobian
(``Matrix.jacobian``) and its determinant, and proves each step to the closed form:

* affine coupling (RealNVP): x1 = z1, x2 = z2 exp(s(z1)) + t(z1); J_T is triangular and
  log|det J_T| = s(z1), whatever s and t are (here affine in z1);
* planar flow: f(z) = z + u tanh(w^T z + bias); by the matrix determinant lemma
  det J = 1 + (1 - tanh^2(w^T z + bias)) u^T w, positive when u^T w >= -1;
* invertible linear layer (Glow's 1x1 convolution on one pixel): x = W z + b,
  log|det J_T| = log|det W|;
* elementwise affine layer (Glow's actnorm): x = a * z + b, log|det J_T| = sum log|a_i|.

Theory notebook, section 6 (the 1-D affine flow there is the elementwise layer in one
dimension). The empirical checks never use the closed forms: log-determinants of
complex-step Jacobians (numpy slogdet), scipy's Gaussian densities, counts of pushforward
samples in boxes, and the change-of-variables integral as a Monte Carlo mean.

These are the proved small cases, one scalar per entry (hence ``_2d``). The layers you import for
arrays of any dimension d (``from symgen import planar_flow_logdet``: z, u, w of shape (..., d)) are
written by hand in symgen/numerics/flow_layers.py and held to these by tests/test_general_layers.py.
"""
import functools
import math

import mpmath
import numpy as np
import sympy as sp
from sympy.codegen.cfunctions import log1p

from symgen.engine import (BoxCheck, Derivation, IdentityCheck, Lemma, MeanCheck, NonZero, Param, Real, jacobian,
                           lazy_module, log_normal_pdf, special_function)

# SciPy is loaded when a check first runs, not when the module is imported.
stats = lazy_module("scipy.stats")

FLOWS_REFERENCE = ("Papamakarios, Nalisnick, Rezende, Mohamed & Lakshminarayanan (2021), "
                   "Normalizing Flows for Probabilistic Modeling and Inference, JMLR 22, Section 2.1")
REALNVP_REFERENCE = ("Dinh, Sohl-Dickstein & Bengio (2017), Density Estimation using Real NVP, ICLR, "
                     "Sections 3.2-3.3, Eqs. 4-6 (the affine coupling layer in 3.2, its triangular Jacobian in 3.3)")
PLANAR_REFERENCE = ("Rezende & Mohamed (2015), Variational Inference with Normalizing Flows, ICML, "
                    "Section 4.1, Eqs. 10-12 (planar flow, matrix determinant lemma) and Appendix A "
                    "(invertible for u^T w >= -1)")
GLOW_LINEAR_REFERENCE = ("Kingma & Dhariwal (2018), Glow: Generative Flow with Invertible 1x1 "
                         "Convolutions, NeurIPS, Section 3.2 (log-determinant log|det W| per pixel)")
GLOW_ACTNORM_REFERENCE = ("Kingma & Dhariwal (2018), Glow: Generative Flow with Invertible 1x1 "
                          "Convolutions, NeurIPS, Section 3.1 and Table 1 (actnorm: log-determinant "
                          "sum log|s|)")

# z1, z2: the latent point; x1, x2: the data point.
z1, z2 = sp.symbols("z1 z2", real=True)
x1, x2 = sp.symbols("x1 x2", real=True)
LATENT = (z1, z2)
DATA = (x1, x2)


def log_standard_normal_2d(first, second):
    """log N((first, second); 0, I) term by term."""
    return log_normal_pdf(first, 0, 1) + log_normal_pdf(second, 0, 1)


# Cached: a layer's definition and its next step both need the inverse, solved for once,
# when the derivation is first derived (never at import).
@functools.cache
def inverse_of(components):
    """T^-1: SymPy solves x = T(z) for z (a unique solution is required)."""
    solutions = sp.solve([sp.Eq(x, component) for x, component in zip(DATA, components)], LATENT, dict=True)
    if len(solutions) != 1:
        raise ValueError(f"expected one inverse of {components}, SymPy found {solutions}")
    return tuple(solutions[0][variable] for variable in LATENT)


def abs_determinant(matrix):
    """|det matrix|, unevaluated (shown as such; SymPy evaluates it when a step is proved)."""
    return sp.Abs(sp.Determinant(sp.ImmutableMatrix(matrix)), evaluate=False)


def change_of_variables_logpdf(forward):
    """log N(z; 0, I) - log|det dT/dz| at z = T^-1(x), for the layer x = T(z) given by its
    components ``forward``: SymPy solves for T^-1 and builds dT/dz by Matrix.jacobian."""
    inverse = inverse_of(forward)
    jacobian_at_inverse = jacobian(forward, LATENT).subs(dict(zip(LATENT, inverse))).applyfunc(sp.powsimp)
    return log_standard_normal_2d(*inverse) - sp.log(abs_determinant(jacobian_at_inverse))


def complex_step_jacobian(forward, point, step=1e-30):
    """dT/dz at ``point`` column by column: Im T(z + i h e_j) / h, exact to rounding
    (no difference of nearby values is formed) for maps that are analytic in z."""
    point = np.asarray(point, dtype=complex)
    columns = [np.asarray(forward(point + 1j * step * unit)).imag / step for unit in np.eye(point.size)]
    return np.array(columns).T


def log_abs_det_by_complex_step(forward, point):
    return float(np.linalg.slogdet(complex_step_jacobian(forward, point))[1])


# --- an empirical check of 2-D log densities against pushforward samples -------------


def sample_pushforward(forward):
    """A sampler of x = forward(z1, z2, **params) with z ~ N(0, I)."""
    def sampler(rng, n, **params):
        latent = rng.standard_normal((2, n))
        return np.column_stack(forward(latent[0], latent[1], **params))
    return sampler


# --- the affine coupling layer (RealNVP) ----------------------------------------------

s_weight, s_bias, t_weight, t_bias = sp.symbols("s_weight s_bias t_weight t_bias", real=True)


def coupling_scale(first):
    """s(z1), the log-scale of the coupling: affine in the conditioning coordinate."""
    return s_weight * first + s_bias


def coupling_shift(first):
    """t(z1), the shift of the coupling."""
    return t_weight * first + t_bias


affine_coupling_logpdf_2d = Derivation(
    "affine_coupling_logpdf_2d",
    notation={"affine_coupling_logpdf_2d": r"\log p_{X}(x)"},
    sections=(6,),
    title="Log density of a 2-D affine coupling layer x2 = z2 exp(s(z1)) + t(z1), z ~ N(0, I)",
    summary="log p_x(x) = log N(x1; 0, 1) + log N((x2 - t(x1)) exp(-s(x1)); 0, 1) - s(x1), "
            "with s(z1) = s_weight z1 + s_bias and t(z1) = t_weight z1 + t_bias.",
    kind="likelihood",
    references=[REALNVP_REFERENCE, FLOWS_REFERENCE],
    params=[
        Param(x1, Real(-4, 4), "first coordinate of x (passed through: x1 = z1)"),
        Param(x2, Real(-8, 8), "second coordinate of x (transformed)"),
        Param(s_weight, Real(-1, 1), "slope of the log-scale s(z1) = s_weight z1 + s_bias"),
        Param(s_bias, Real(-1.5, 1.5), "intercept of the log-scale s(z1)"),
        Param(t_weight, Real(-2, 2), "slope of the shift t(z1) = t_weight z1 + t_bias"),
        Param(t_bias, Real(-3, 3), "intercept of the shift t(z1)"),
    ],
    returns="log p_x(x) in nats, broadcast over the arguments",
)
coupling_forward = (z1, z2 * sp.exp(coupling_scale(z1)) + coupling_shift(z1))
chain = affine_coupling_logpdf_2d.define(
    lambda: change_of_variables_logpdf(coupling_forward),
    "definition: change of variables, log p_x(x) = log N(z; 0, I) - log|det dT/dz| at z = T^-1(x); "
    "SymPy solves x = T(z) for z = (x1, (x2 - t(x1)) exp(-s(x1))) and builds dT/dz by Matrix.jacobian")
chain.step(
    -x1**2 / 2 - (x2 - coupling_shift(x1)) ** 2 * sp.exp(-2 * coupling_scale(x1)) / 2
    - coupling_scale(x1) - sp.log(2 * sp.pi),
    "dT/dz is lower triangular (x1 does not depend on z2; RealNVP Eq. 6), so det = 1 * exp(s(z1)) and "
    "log|det| = s(z1) = s(x1), whatever t is: the textbook form")


def coupling_forward_numeric(first, second, s_weight, s_bias, t_weight, t_bias, **_):
    return first, second * np.exp(s_weight * first + s_bias) + t_weight * first + t_bias


def coupling_by_complex_step(x1, x2, s_weight, s_bias, t_weight, t_bias):
    # z from the layer's own inverse (RealNVP Section 3.3: z2 = (x2 - t(x1)) exp(-s(x1))),
    # log|det dT/dz| from the complex-step Jacobian of the forward map and slogdet.
    latent = np.array([x1, (x2 - t_weight * x1 - t_bias) * math.exp(-(s_weight * x1 + s_bias))])
    coupling = dict(s_weight=s_weight, s_bias=s_bias, t_weight=t_weight, t_bias=t_bias)
    log_det = log_abs_det_by_complex_step(
        lambda point: np.array(coupling_forward_numeric(point[0], point[1], **coupling)), latent)
    log_latent = -0.5 * float(latent @ latent) - math.log(2 * math.pi)
    return log_latent - log_det


# Both routes are exact to rounding: 1e-9 relative (plus 1e-12 for log densities near 0)
# leaves ample room, and a 1% slip is 1e7 times that.
affine_coupling_logpdf_2d.add_check(IdentityCheck(
    coupling_by_complex_step, "log N(T^-1(x)) - log|det| of the complex-step Jacobian (numpy slogdet)",
    rtol=1e-9, atol=1e-12))
affine_coupling_logpdf_2d.add_check(BoxCheck(
    sample_pushforward(coupling_forward_numeric),
    "pushforward samples of the coupling layer: counts in two boxes (exact binomial)"))

# Usual slips, written from the log-density without its log-det term.
S = "(s_weight*x1 + s_bias)"
COUPLING_WITHOUT_LOG_DET = f"-x1**2/2 - (x2 - t_weight*x1 - t_bias)**2*exp(-2*{S})/2 - log(2*pi)"
affine_coupling_logpdf_2d.add_slip(f"{COUPLING_WITHOUT_LOG_DET} + {S}", "log-det with the wrong sign")
affine_coupling_logpdf_2d.add_slip(COUPLING_WITHOUT_LOG_DET, "log-det missing")
affine_coupling_logpdf_2d.add_slip(f"{COUPLING_WITHOUT_LOG_DET} - exp{S}", "log-det exp(s) instead of s")
affine_coupling_logpdf_2d.add_slip(
    f"-x1**2/2 - (x2 - t_weight*x1 - t_bias)**2*exp(2*{S})/2 - log(2*pi) - {S}",
    "multiplied by exp(s) where the inverse divides")
affine_coupling_logpdf_2d.add_slip(
    f"-x1**2/2 - (x2*exp(-{S}) - t_weight*x1 - t_bias)**2/2 - log(2*pi) - {S}",
    "shift removed after unscaling")


# --- the planar flow (Rezende & Mohamed 2015) -----------------------------------------

u1, u2, w1, w2, bias = sp.symbols("u1 u2 w1 w2 bias", real=True)
activation = w1 * z1 + w2 * z2 + bias
u_dot_w = u1 * w1 + u2 * w2
tanh_argument = sp.Symbol("s", real=True)


def tanh_through_exp(argument):
    """tanh(s) = 2 sigmoid(2 s) - 1 = 2/(1 + e^(-2 s)) - 1.

    The planar flow's tanh is written in this form from the start: every step below is
    then an identity between rational functions of exponentials, which SymPy's ``expand``
    decides in a fraction of a second; with tanh of the sum w^T z + bias, its simplify
    needs minutes (and fails) to see 1 - tanh^2 = 4 / (e^a + e^-a)^2. The form is checked
    against SymPy's tanh in tests/test_flow_layers.py."""
    return 2 / (1 + sp.exp(-2 * argument)) - 1


def log_det_2x2(matrix):
    """log det of a 2x2 matrix by the Leibniz formula J11 J22 - J12 J21 (SymPy's det of a
    matrix of exponentials cancels into a form that expand no longer recognises)."""
    return sp.log(matrix[0, 0] * matrix[1, 1] - matrix[0, 1] * matrix[1, 0])


def tanh_derivative(argument):
    """h'(argument) for h = tanh written through exponentials: 4 e^(-2 s)/(1 + e^(-2 s))^2,
    differentiated by SymPy (when the derivation is derived)."""
    return sp.diff(tanh_through_exp(tanh_argument), tanh_argument).subs(tanh_argument, argument)


planar_flow = (z1 + u1 * tanh_through_exp(activation), z2 + u2 * tanh_through_exp(activation))

# Drawn where |u^T w| <= 1.28, near the invertibility edge u^T w = -1 included, with the
# activation w^T z + bias reaching +-17, where tanh has saturated: there 1 - tanh^2
# cancels to nothing in floating point and the stable form below is needed.
PLANAR_ENTRY = Real(-0.8, 0.8)

planar_flow_logdet_2d = Derivation(
    "planar_flow_logdet_2d",
    notation={"planar_flow_logdet_2d": r"\log \left|\det \frac{\partial f}{\partial z}\right|"},
    sections=(6,),
    title="Log-determinant of a 2-D planar flow f(z) = z + u tanh(w^T z + bias)",
    summary="log det(df/dz) = log(1 + (1 - tanh^2(w^T z + bias)) u^T w), by the matrix determinant lemma.",
    kind="likelihood",
    references=[PLANAR_REFERENCE],
    params=[Param(z1, Real(-3, 3), "first coordinate of the input z"),
            Param(z2, Real(-3, 3), "second coordinate of the input z"),
            Param(u1, PLANAR_ENTRY, "first entry of the direction u"),
            Param(u2, PLANAR_ENTRY, "second entry of the direction u"),
            Param(w1, PLANAR_ENTRY, "first entry of the weight w"),
            Param(w2, PLANAR_ENTRY, "second entry of the weight w"),
            Param(bias, Real(-12, 12), "bias inside the tanh")],
    requires=[(u_dot_w >= -1,
               "the planar flow is invertible only for u^T w >= -1 (u1*w1 + u2*w2 >= -1 required; "
               "Rezende & Mohamed 2015, Appendix A)")],
    returns="log det df/dz (det > 0 for u^T w > -1), for log p_x(f(z)) = log p_z(z) - logdet",
)
chain = planar_flow_logdet_2d.define(
    lambda: log_det_2x2(jacobian(planar_flow, LATENT)),
    "definition: log det J, J = df/dz by Matrix.jacobian, det J = J11 J22 - J12 J21, with "
    "tanh(s) = 2/(1 + e^(-2 s)) - 1; det J > 0 for u^T w > -1 (>= 0 at u^T w = -1; Appendix A), so "
    "no absolute value is needed")
chain.step(
    lambda previous: sp.log(1 + tanh_derivative(activation) * u_dot_w),
    "J = I + h'(w^T z + bias) u w^T with h' = dtanh/ds (SymPy differentiates), and "
    "det(I + h' u w^T) = 1 + h' u^T w: the matrix determinant lemma (Eq. 12)")
# Near the invertibility edge u^T w = -1 with a small activation a, 1 + u^T w sech^2(a) is a
# difference of two numbers near 1: at u^T w = -1 it is tanh^2(a), 1e-18 at a = 1e-9, which
# the difference rounds to 0 (and the log to -inf). Since sech^2 + tanh^2 = 1, it is also
# (1 + u^T w) sech^2(a) + tanh^2(a): two terms >= 0 on the domain, nothing cancels; tanh^2
# comes from numpy.tanh, accurate to an ulp however small a is.
hyperbolic_argument = sp.Symbol("a", real=True)
TANH_SQUARED_IS_ONE_MINUS_SECH_SQUARED = Lemma(
    "tanh^2(a) = 1 - sech^2(a), sech(a) = 2/(e^a + e^-a)",
    (sp.tanh(hyperbolic_argument) ** 2,
     1 - (2 / (sp.exp(hyperbolic_argument) + sp.exp(-hyperbolic_argument))) ** 2))
tanh_squared = special_function(
    "tanh_squared", 1, meaning=lambda argument: 1 - (2 / (sp.exp(argument) + sp.exp(-argument))) ** 2,
    lemmas=[TANH_SQUARED_IS_ONE_MINUS_SECH_SQUARED], mpmath=lambda argument: mpmath.tanh(argument) ** 2,
    real=True, numpy="numpy.square(numpy.tanh({0}))",
    torch="torch.square(torch.tanh(torch.as_tensor({0})))", jax="jax.numpy.square(jax.numpy.tanh({0}))",
    latex=r"\tanh^{{2}}\left({0}\right)", text="tanh({0})**2",
    doc="tanh^2(a), evaluated by tanh itself (no cancellation at small a); in proofs "
        "1 - sech^2(a), a lemma SymPy proves.")
chain.step(
    sp.log(1 + (1 - tanh_squared(activation)) * u_dot_w),
    "h'(a) = 1 - tanh^2(a), a = w^T z + bias: the paper's log |1 + h'(w^T z + b) u^T w| (Eqs. 11-12)",
    published=True)
sech = 2 / (sp.exp(activation) + sp.exp(-activation))
# The stable form below keeps sech whole (UnevaluatedExpr): shown by its name there.
planar_flow_logdet_2d.notation[sech] = r"\operatorname{sech}\left(w^{\top} z + b\right)"
chain.step(
    sp.log(1 + u_dot_w * sech**2),
    "1 - tanh^2(a) = sech^2(a) = (2/(e^a + e^-a))^2, from two exponentials: no cancellation as |a| grows")

chain.stable(
    sp.Piecewise(
        (sp.log((1 + u_dot_w) * sp.UnevaluatedExpr(sech) ** 2 + tanh_squared(activation)),
         u_dot_w * sp.UnevaluatedExpr(sech) ** 2 < -sp.Rational(1, 2)),
        (log1p(u_dot_w * sp.UnevaluatedExpr(sech) ** 2), True)),
    "where u^T w sech^2(a) < -1/2 (the determinant below 1/2, its log well-conditioned), "
    "1 = sech^2(a) + tanh^2(a) (a lemma SymPy proves) gives (1 + u^T w) sech^2(a) + tanh^2(a), "
    "two terms >= 0 for u^T w >= -1 (Appendix A): exact to rounding even at u^T w = -1, where it "
    "is tanh^2(a). Elsewhere log1p of the increment, which keeps its digits as the determinant tends to 1. "
    "sech(a) = 2/(e^a + e^-a) from two exponentials, where 1 - tanh^2(a) loses digits as |a| "
    "grows and cancels to 0 once |a| > 19; squared after the division, so it underflows "
    "gradually rather than at |a| = 355")


def planar_forward_numeric(first, second, u1, u2, w1, w2, bias, **_):
    hidden = np.tanh(w1 * first + w2 * second + bias)
    return first + u1 * hidden, second + u2 * hidden


def planar_by_complex_step(z1, z2, u1, u2, w1, w2, bias):
    # The Jacobian column by column by complex-step differentiation, then NumPy's
    # slogdet: shares nothing with the determinant lemma.
    flow = dict(u1=u1, u2=u2, w1=w1, w2=w2, bias=bias)
    jacobian_matrix = complex_step_jacobian(lambda point: np.array(planar_forward_numeric(*point, **flow)),
                                            np.array([z1, z2]))
    sign, log_det = np.linalg.slogdet(jacobian_matrix)
    return log_det if sign > 0 else np.nan


# The change-of-variables integral, 1 = integral of N(x; 0, I) dx = integral of
# N(f(z); 0, I) |det J_f(z)| dz for an invertible f of the plane, by the trapezoidal rule on a
# randomly shifted grid: with nodes z = shift + h k (k in Z^2) and the shift uniform on
# [0, h)^2, every point of the plane is a node for exactly one shift, so h^2 sum_k g(z_k) has
# mean exactly the integral of g. Each draw (one shift) is thus an unbiased estimate and the
# batch-means t test over independent shifts is as valid as for plain Monte Carlo (a randomly
# shifted lattice rule: Owen, Monte Carlo theory, methods and examples, 2013, ch. 17). For g
# analytic in the strip |Im z_i| < a the rule's error is below 2 M / (e^(2 pi a / h) - 1)
# (Trefethen & Weideman 2014, The exponentially convergent trapezoidal rule, SIAM Review 56,
# Theorem 5.1): tanh(w^T z + bias) has its poles at |Im z_i| >= pi / (2 * 0.8) ~ 1.96, so with
# a = 1.5 and h = 0.2 each draw is the integral to ~1e-19 plus rounding (~1e-14 measured), and
# the t test's rounding allowance (1e-12) decides: a relative error delta of the log-determinant
# moves the integral by delta * integral of g logdet, refuted once that passes ~1e-12.
PLANAR_GRID_STEP = 0.2
# |f(z)| >= |z| - |u| >= |z| - 1.14 (|tanh| <= 1, |u_i| <= 0.8) and det J <= 2.3, so the
# integrand's mass outside |z_i| < 10 is below 2.3 int_10^inf r e^(-(r - 1.14)^2/2) dr < 1e-16:
# truncating the grid there moves the mean by less.
PLANAR_GRID_REACH = 10.0


def planar_change_of_variables(rng, n, formula, z1, z2, u1, u2, w1, w2, bias):
    # n draws, each the rule on one shifted grid, with |det J_f(z)| from the candidate
    # log-determinant at the nodes (z1, z2 of the point are not used: the integral is over z).
    offsets = np.arange(-PLANAR_GRID_REACH, PLANAR_GRID_REACH, PLANAR_GRID_STEP)
    first, second = (offset.ravel() for offset in np.meshgrid(offsets, offsets, indexing="ij"))
    shifts = rng.random((n, 2)) * PLANAR_GRID_STEP
    nodes1, nodes2 = first + shifts[:, :1], second + shifts[:, 1:]
    flow = dict(u1=u1, u2=u2, w1=w1, w2=w2, bias=bias)
    image = planar_forward_numeric(nodes1, nodes2, **flow)
    log_integrand = -(image[0] ** 2 + image[1] ** 2) / 2 - math.log(2 * math.pi)
    integrand = np.exp(log_integrand + formula(z1=nodes1, z2=nodes2, **flow))
    return PLANAR_GRID_STEP**2 * integrand.sum(axis=1)


# The complex-step Jacobian is exact to rounding, but slogdet of I + (tiny) only to ~1e-16
# absolute: hence 1e-13 absolute besides 1e-9 relative.
planar_flow_logdet_2d.add_check(IdentityCheck(
    planar_by_complex_step, "log det of the complex-step Jacobian (numpy slogdet)", rtol=1e-9, atol=1e-13))
# This check shows the log-determinant is the one that makes the change of variables
# integrate to 1, using only the forward map: no derivative of it is taken. 20 shifts of
# 10_000 nodes, one batch each: every draw is within ~1e-14 of the integral, far inside the
# 1e-12 rounding allowance, so a correct formula is never refuted (false alarm 0, within
# ALPHA_PER_EVALUATION = 1e-9) and the t threshold (11.1 at 19 degrees of freedom) barely counts.
planar_flow_logdet_2d.add_check(MeanCheck(
    planar_change_of_variables,
    "change of variables: the integral of N(f(z)) exp(logdet(z)) over the plane = 1 "
    "(trapezoidal rule on randomly shifted grids)",
    samples=20, batches=20, target=lambda **params: 1.0, applies_formula=True))

# Usual slips, in the paper's tanh form: A = w^T z + bias, C = u^T w.
A, C = "(w1*z1 + w2*z2 + bias)", "(u1*w1 + u2*w2)"
planar_flow_logdet_2d.add_slip(f"-log(1 + (1 - tanh{A}**2)*{C})", "log-det with the wrong sign")
planar_flow_logdet_2d.add_slip(f"log(1 + tanh{A}*{C})", "h instead of h' in psi")
planar_flow_logdet_2d.add_slip(f"log(1 + (1 - tanh{A})*{C})", "h' = 1 - tanh (square forgotten)")
planar_flow_logdet_2d.add_slip(f"log(1 + {C})", "h' forgotten (the linear layer's lemma)")
planar_flow_logdet_2d.add_slip(f"log(1 + (1 - tanh(w1*z1 + w2*z2)**2)*{C})", "bias left out of psi")
planar_flow_logdet_2d.add_slip(f"log(1 + (1 - tanh{A}**2)*(u1**2 + u2**2))", "u^T u for u^T w")


# --- the invertible linear layer (Glow) -----------------------------------------------

w11, w12, w21, w22, b1, b2 = sp.symbols("w11 w12 w21 w22 b1 b2", real=True)
weight_matrix = sp.Matrix([[w11, w12], [w21, w22]])
determinant_w = w11 * w22 - w12 * w21
# Diagonal entries of either sign, off-diagonal ones smaller: |det W| >= 0.25 - 0.16 on
# every draw, so draws stay well conditioned (any invertible W is accepted).
DIAGONAL = NonZero(0.5, 4)
OFF_DIAGONAL = Real(-0.4, 0.4)

linear_flow_logpdf_2d = Derivation(
    "linear_flow_logpdf_2d",
    notation={"linear_flow_logpdf_2d": r"\log p_{X}(x)"},
    sections=(6,),
    title="Log density of an invertible linear flow x = W z + b in 2-D, z ~ N(0, I)",
    summary="log p_x(x) = log N(W^-1 (x - b); 0, I) - log|det W|, for any invertible 2x2 W.",
    kind="likelihood",
    references=[GLOW_LINEAR_REFERENCE, FLOWS_REFERENCE],
    params=[
        Param(x1, Real(-8, 8), "first coordinate of x"),
        Param(x2, Real(-8, 8), "second coordinate of x"),
        Param(w11, DIAGONAL, "entry (1, 1) of W"),
        Param(w12, OFF_DIAGONAL, "entry (1, 2) of W"),
        Param(w21, OFF_DIAGONAL, "entry (2, 1) of W"),
        Param(w22, DIAGONAL, "entry (2, 2) of W"),
        Param(b1, Real(-3, 3), "first entry of the shift b"),
        Param(b2, Real(-3, 3), "second entry of the shift b"),
    ],
    requires=[(sp.Ne(determinant_w, 0),
               "the matrix W = [[w11, w12], [w21, w22]] is singular (det W = w11*w22 - w12*w21 = 0): "
               "x = W z + b is not invertible and has no density")],
    returns="log p_x(x) in nats, broadcast over the arguments",
)
linear_forward = tuple(weight_matrix * sp.Matrix(LATENT) + sp.Matrix([b1, b2]))
chain = linear_flow_logpdf_2d.define(
    lambda: change_of_variables_logpdf(linear_forward),
    "definition: change of variables, log p_x(x) = log N(z; 0, I) - log|det dT/dz| at z = T^-1(x); "
    "SymPy solves the linear system W z + b = x, and Matrix.jacobian gives dT/dz = W")
chain.step(
    lambda previous: log_standard_normal_2d(*inverse_of(linear_forward)) - sp.log(sp.Abs(determinant_w)),
    "det W = w11 w22 - w12 w21; the Jacobian is the same at every z (Glow: log|det W| per pixel)")
inverse_numerators = [w22 * (x1 - b1) - w12 * (x2 - b2), w11 * (x2 - b2) - w21 * (x1 - b1)]
chain.step(
    -(inverse_numerators[0] ** 2 + inverse_numerators[1] ** 2) / (2 * determinant_w**2)
    - sp.log(sp.Abs(determinant_w)) - sp.log(2 * sp.pi),
    "W^-1 = adj(W)/det W, so |W^-1 (x - b)|^2 is |adj(W)(x - b)|^2 / det(W)^2: the textbook form")


def linear_forward_numeric(first, second, w11, w12, w21, w22, b1, b2, **_):
    return w11 * first + w12 * second + b1, w21 * first + w22 * second + b2


def linear_by_scipy(x1, x2, w11, w12, w21, w22, b1, b2):
    # A linear map of N(0, I) is N(b, W W^T): scipy's multivariate normal density
    # (its own eigendecomposition of the covariance) shares nothing with the Jacobian route.
    matrix = np.array([[w11, w12], [w21, w22]])
    return float(stats.multivariate_normal(mean=[b1, b2], cov=matrix @ matrix.T).logpdf([x1, x2]))


# cov = W W^T has condition number <= 1e3 on the draws, so scipy's value is good to ~1e-13.
linear_flow_logpdf_2d.add_check(IdentityCheck(
    linear_by_scipy, "scipy.stats.multivariate_normal(b, W W^T).logpdf", rtol=1e-9, atol=1e-12))
linear_flow_logpdf_2d.add_check(BoxCheck(
    sample_pushforward(linear_forward_numeric),
    "pushforward samples W z + b: counts in two boxes (exact binomial)"))

# Usual slips, written from the log-density without its log-det term.
DET_W = "(w11*w22 - w12*w21)"
LINEAR_WITHOUT_LOG_DET = (f"-((w22*(x1 - b1) - w12*(x2 - b2))**2 + (w11*(x2 - b2) - w21*(x1 - b1))**2)"
                          f"/(2*{DET_W}**2) - log(2*pi)")
linear_flow_logpdf_2d.add_slip(f"{LINEAR_WITHOUT_LOG_DET} + log(Abs{DET_W})", "log-det with the wrong sign")
linear_flow_logpdf_2d.add_slip(LINEAR_WITHOUT_LOG_DET, "log-det missing")
# Right where det W > 0: only a W that flips orientation shows the slip.
linear_flow_logpdf_2d.add_slip(f"{LINEAR_WITHOUT_LOG_DET} - log{DET_W}", "log-det without the absolute value")
linear_flow_logpdf_2d.add_slip(f"{LINEAR_WITHOUT_LOG_DET} - log({DET_W}**2)", "log det(W^T W) without the 1/2")
linear_flow_logpdf_2d.add_slip(
    f"-((w11*x1 + w12*x2 + b1)**2 + (w21*x1 + w22*x2 + b2)**2)/2 - log(2*pi) - log(Abs{DET_W})",
    "the forward map where the inverse belongs")
linear_flow_logpdf_2d.add_slip(
    f"-((w11*(x1 - b1) + w21*(x2 - b2))**2 + (w12*(x1 - b1) + w22*(x2 - b2))**2)/2 - log(2*pi)"
    f" - log(Abs{DET_W})",
    "W^T for W^-1 (as if W were orthogonal)")


# --- the elementwise affine layer (Glow's actnorm) --------------------------------------

a1, a2 = sp.symbols("a1 a2", real=True)

elementwise_affine_logpdf_2d = Derivation(
    "elementwise_affine_logpdf_2d",
    notation={"elementwise_affine_logpdf_2d": r"\log p_{X}(x)"},
    sections=(6,),
    title="Log density of an elementwise affine flow x = a * z + b in 2-D, z ~ N(0, I)",
    summary="log p_x(x) = sum_i [log N((x_i - b_i)/a_i; 0, 1) - log|a_i|], for nonzero scales of either sign.",
    kind="likelihood",
    references=[GLOW_ACTNORM_REFERENCE, FLOWS_REFERENCE],
    params=[
        Param(x1, Real(-10, 10), "first coordinate of x"),
        Param(x2, Real(-10, 10), "second coordinate of x"),
        Param(a1, NonZero(1e-2, 1e2), "first scale; negative flips the axis, 0 is not invertible"),
        Param(a2, NonZero(1e-2, 1e2), "second scale; negative flips the axis, 0 is not invertible"),
        Param(b1, Real(-10, 10), "first shift"),
        Param(b2, Real(-10, 10), "second shift"),
    ],
    requires=[(sp.Ne(a1, 0), "argument 'a1' must be nonzero: x = a * z + b is not invertible when a scale is 0"),
              (sp.Ne(a2, 0), "argument 'a2' must be nonzero: x = a * z + b is not invertible when a scale is 0")],
    returns="log p_x(x) in nats, broadcast over the arguments",
)
elementwise_forward = (a1 * z1 + b1, a2 * z2 + b2)
chain = elementwise_affine_logpdf_2d.define(
    lambda: change_of_variables_logpdf(elementwise_forward),
    "definition: change of variables, log p_x(x) = log N(z; 0, I) - log|det dT/dz| at z = T^-1(x); "
    "SymPy solves for z and Matrix.jacobian gives dT/dz = diag(a1, a2)")
chain.step(
    lambda previous: log_standard_normal_2d(*inverse_of(elementwise_forward)) - sp.log(sp.Abs(a1) * sp.Abs(a2)),
    "the Jacobian is diagonal, det = a1 a2, and |a1 a2| = |a1| |a2|")
chain.step(
    -(x1 - b1) ** 2 / (2 * a1**2) - (x2 - b2) ** 2 / (2 * a2**2)
    - sp.log(sp.Abs(a1)) - sp.log(sp.Abs(a2)) - sp.log(2 * sp.pi),
    "the log of the product is log|a1| + log|a2| (actnorm: sum log|s|); written out with the "
    "standard normal log densities: the textbook form")
chain.stable(
    -sp.UnevaluatedExpr((x1 - b1) / a1) ** 2 / 2 - sp.UnevaluatedExpr((x2 - b2) / a2) ** 2 / 2
    - sp.log(sp.Abs(a1)) - sp.log(sp.Abs(a2)) - sp.log(2 * sp.pi),
    "in standard units u_i = (x_i - b_i)/a_i, squared by the code: a_i^2 underflows to 0 for "
    "|a_i| < 1e-154, u_i does not")


def elementwise_forward_numeric(first, second, a1, a2, b1, b2, **_):
    return a1 * first + b1, a2 * second + b2


def elementwise_by_scipy(x1, x2, a1, a2, b1, b2):
    # Coordinates are independent normals N(b_i, a_i^2): scipy's univariate log densities.
    return float(stats.norm.logpdf(x1, b1, abs(a1)) + stats.norm.logpdf(x2, b2, abs(a2)))


elementwise_affine_logpdf_2d.add_check(IdentityCheck(
    elementwise_by_scipy, "sum of scipy.stats.norm.logpdf(x_i, b_i, |a_i|)", rtol=1e-9, atol=1e-12))
elementwise_affine_logpdf_2d.add_check(BoxCheck(
    sample_pushforward(elementwise_forward_numeric),
    "pushforward samples a * z + b: counts in two boxes (exact binomial)"))

# Usual slips, written from the log-density without its log-det term.
ELEMENTWISE_WITHOUT_LOG_DET = "-((x1 - b1)/a1)**2/2 - ((x2 - b2)/a2)**2/2 - log(2*pi)"
elementwise_affine_logpdf_2d.add_slip(f"{ELEMENTWISE_WITHOUT_LOG_DET} + log(Abs(a1)) + log(Abs(a2))",
                                   "log-det with the wrong sign")
elementwise_affine_logpdf_2d.add_slip(ELEMENTWISE_WITHOUT_LOG_DET, "log-det missing")
elementwise_affine_logpdf_2d.add_slip(f"{ELEMENTWISE_WITHOUT_LOG_DET} - log(a1) - log(a2)",
                                   "log-det without the absolute value")
elementwise_affine_logpdf_2d.add_slip(f"{ELEMENTWISE_WITHOUT_LOG_DET} - log(Abs(a1))", "one scale's log-det forgotten")
elementwise_affine_logpdf_2d.add_slip(f"{ELEMENTWISE_WITHOUT_LOG_DET} - log(a1**2) - log(a2**2)",
                                   "variances for scales in the log-det")
