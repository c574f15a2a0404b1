"""Normalizing flows: the change-of-variables log density of an affine flow.

If z ~ N(0, 1) and x = a z + b with a != 0, then P(x <= t) is Phi((t - b)/a) for a > 0
and 1 - Phi((t - b)/a) for a < 0; differentiating either,

    log p_x(x) = log p_z((x - b)/a) - log|a|.

The Jacobian term is -log|a|: with the absolute value (a < 0 flips the line but the
density stays positive) and with a minus sign (stretching the line by |a| spreads the
mass thinner). Theory notebook, section 6. The general formula
log p_x(x) = log p_z(T^-1(x)) + log|d T^-1/dx| is Papamakarios et al. (2021),
"Normalizing Flows for Probabilistic Modeling and Inference", JMLR 22, Section 2.1;
symgen.engine.change_of_variables derives it for any strictly monotone map.
"""
import functools

import mpmath
import numpy as np
import sympy as sp

from symgen.engine import DensityCheck, Derivation, IdentityCheck, NonZero, Param, Real, log_normal_pdf, pushforward

FLOWS_REFERENCE = ("Papamakarios, Nalisnick, Rezende, Mohamed & Lakshminarayanan (2021), "
                   "Normalizing Flows for Probabilistic Modeling and Inference, JMLR 22, Section 2.1")

x = sp.Symbol("x", real=True)
# Plain real, so that the requirement a != 0 stays a check in the generated code (with
# nonzero=True, SymPy would decide Ne(a, 0) is True and drop it).
a = sp.Symbol("a", real=True)
a_nonzero = sp.Symbol("a", real=True, nonzero=True)
b = sp.Symbol("b", real=True)
z = sp.Symbol("z", real=True)
t = sp.Symbol("t", real=True)    # the CDF's argument, set to x after differentiating

# --- the affine flow x = a z + b -----------------------------------------------------

affine_flow_logpdf = Derivation(
    "affine_flow_logpdf",
    notation={"affine_flow_logpdf": r"\log p_{X}(x)"},
    sections=(6,),
    title="Log density of the affine flow x = a z + b, z ~ N(0, 1)",
    summary="log p_x(x) = log N((x - b)/a; 0, 1) - log|a|, for either sign of a.",
    kind="likelihood",
    references=[FLOWS_REFERENCE],
    params=[
        Param(x, Real(-10, 10), "the point where the density is evaluated"),
        Param(a, NonZero(1e-2, 1e2), "scale of the flow; negative values flip the line, 0 is not invertible"),
        Param(b, Real(-10, 10), "shift of the flow"),
    ],
    requires=[(sp.Ne(a, 0), "argument 'a' must be nonzero: x = a z + b is not invertible at a = 0")],
    returns="log p_x(x) in nats, broadcast over the arguments",
)


def standard_normal_cdf(u):
    return (1 + sp.erf(u / sp.sqrt(2))) / 2


@functools.cache
def affine_change():
    """The law of x = a z + b, z ~ N(0, 1), by the engine's change of variables: SymPy
    solves for the inverse T^-1(x) and differentiates it. Derived where it exists, for
    a != 0; computed once, when the derivation is first derived."""
    return pushforward(a_nonzero * z + b, z, x, log_normal_pdf(z, 0, 1))


chain = affine_flow_logpdf.define(
    sp.log(sp.Abs(sp.Subs(sp.Derivative(standard_normal_cdf((t - b) / a), t), t, x))),
    "definition: p_x = dP(x' <= x)/dx, and P(a z + b <= x) is Phi((x - b)/a) for a > 0, "
    "1 - Phi((x - b)/a) for a < 0: either way p_x(x) = |d Phi((x - b)/a)/dx|")
chain.step(
    lambda previous: affine_change().logpdf.subs(a_nonzero, a),
    "chain rule with the inverse z = (x - b)/a that SymPy solves for (a != 0): "
    "log p_z(T^-1(x)) + log|dT^-1/dx|")
chain.step(
    -(x - b) ** 2 / (2 * a**2) - sp.log(sp.Abs(a)) - sp.log(2 * sp.pi) / 2,
    "dT^-1/dx = 1/a, so the Jacobian term is -log|a|: the textbook form")
chain.stable(
    -sp.UnevaluatedExpr((x - b) / a) ** 2 / 2 - sp.log(sp.Abs(a)) - sp.log(2 * sp.pi) / 2,
    "in standard units u = (x - b)/a, kept unevaluated so the code squares u: "
    "a^2 underflows to 0 for |a| < 1e-154, u does not")


def sample_affine_flow(rng, n, x, a, b):
    return b + a * rng.standard_normal(n)


# Cached: hypothesis replays the same points for every candidate a check is asked about.
@functools.lru_cache(maxsize=4096)
def log_derivative_of_pushforward_cdf(x, a, b):
    # An independent route: the CDF of a z + b from the event {z <= (x - b)/a} (a > 0) or
    # {z >= (x - b)/a} (a < 0), differentiated numerically by mpmath at 50 digits. Where
    # the CDF is near 1 its complement is differentiated instead (Phi(u) = 1 - Phi(-u)),
    # so the digits that matter are not lost to 1 - tiny.
    with mpmath.workdps(50):
        xm, am, bm = mpmath.mpf(x), mpmath.mpf(a), mpmath.mpf(b)
        sign = 1 if am > 0 else -1
        if sign * (xm - bm) / am <= 0:
            cdf = lambda t: mpmath.ncdf(sign * (t - bm) / am)  # noqa: E731
        else:
            cdf = lambda t: -mpmath.ncdf(-sign * (t - bm) / am)  # noqa: E731
        return float(mpmath.log(mpmath.diff(cdf, xm)))


# The numeric derivative is good to ~40 digits; 1e-12 absolute covers log densities near 0.
affine_flow_logpdf.add_check(IdentityCheck(
    log_derivative_of_pushforward_cdf,
    "log of the numerical derivative of P(a z + b <= x) (mpmath)", rtol=1e-9, atol=1e-12))
# 200_000 draws (KS allowance 0.74%): the identity above carries the power against small
# errors; this check shows the density is that of the simulated pushforward.
affine_flow_logpdf.add_check(DensityCheck(
    sample_affine_flow, "pushforward samples b + a z against the density (mass, KS, interval)",
    samples=200_000))

# --- the usual slips --------------------------------------------------------------------

TEXTBOOK_WITHOUT_JACOBIAN = "-(x - b)**2/(2*a**2) - log(2*pi)/2"
affine_flow_logpdf.add_slip(TEXTBOOK_WITHOUT_JACOBIAN + " + log(Abs(a))", "Jacobian term with the wrong sign")
affine_flow_logpdf.add_slip(TEXTBOOK_WITHOUT_JACOBIAN, "Jacobian term missing")
# Right for a > 0: only a negative a (a flipped line) shows the slip.
affine_flow_logpdf.add_slip(TEXTBOOK_WITHOUT_JACOBIAN + " - log(a)", "Jacobian term without the absolute value")
affine_flow_logpdf.add_slip("-(a*x + b)**2/2 - log(2*pi)/2 - log(Abs(a))",
                            "the forward map where the inverse belongs")


def draw_pushforward_density(axes):
    """Samples of x = a z + b (a < 0 included) against exp(affine_flow_logpdf)."""
    from symgen.formulas import affine_flow_logpdf as logpdf

    a, b = -1.5, 0.5
    samples = a * np.random.default_rng(0).standard_normal(200_000) + b
    grid = np.linspace(-6, 7, 400)
    axes.hist(samples, bins=120, density=True, alpha=0.4, label="samples of a z + b")
    axes.plot(grid, np.exp(logpdf(grid, a, b)), label="exp(affine_flow_logpdf(x, -1.5, 0.5))")
    axes.set_xlabel("x")
    axes.set_ylabel("density")
    axes.legend()


affine_flow_logpdf.add_plot("The pushforward density against samples", draw_pushforward_density)
