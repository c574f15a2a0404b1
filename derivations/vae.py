"""The VAE's ELBO, worked exactly for the linear-Gaussian model.

For a latent-variable model p(z) p(x|z) and any density q(z),

    log p(x) = ELBO(q) + KL(q(z) || p(z|x)),   ELBO(q) = E_q[log p(x|z)] - KL(q(z) || p(z)),

so the ELBO is a lower bound on the evidence log p(x), tight exactly at the posterior
(Kingma & Welling (2014), "Auto-Encoding Variational Bayes", Section 2.2, Eqs. 1-3).
For the linear-Gaussian model z ~ N(0, 1), x | z ~ N(w z + b, s^2) everything is in
closed form: the evidence (x ~ N(b, w^2 + s^2)), the posterior (Gaussian, by completing
the square in z) and the ELBO of any Gaussian q = N(loc, scale^2). Theory notebook,
section 4 (ELBO = reconstruction log-probability - KL).

The ELBO is maximised by gradients of expectations E_{z ~ N(loc, scale^2)}[f(z)]. Writing
z = loc + scale eps with eps ~ N(0, 1) (theory notebook, section 2) moves the parameters
into f, whose derivative gives the pathwise estimator; the score-function estimator
E[f(z) d log q(z)/d theta] needs no derivative of f but has a far larger variance. For
f = sin both estimate a gradient SymPy finds in closed form.
"""
import functools
import math

import numpy as np
import sympy as sp

from symgen.engine import (Controlled, DensityCheck, Derivation, GaussianExpectation, IdentityCheck, MeanCheck,
                           Param, Positive, Real, lazy_module, log_normal_pdf)

# SciPy is loaded when a check first runs, not when the module is imported.
integrate = lazy_module("scipy.integrate")
optimize = lazy_module("scipy.optimize")
stats = lazy_module("scipy.stats")

VAE_REFERENCE = "Kingma & Welling (2014), Auto-Encoding Variational Bayes, Section 2.2, Eqs. 1-3"

x = sp.Symbol("x", real=True)
w = sp.Symbol("w", real=True)
b = sp.Symbol("b", real=True)
s = sp.Symbol("s", positive=True)
loc = sp.Symbol("loc", real=True)
scale = sp.Symbol("scale", positive=True)
z = sp.Symbol("z", real=True)

# The proofs' numeric spot checks integrate p(z) p(x | z) by mpmath quadrature over the
# prior; the posterior mean, at most |x - b| / (2 s) standard deviations out, stays within
# 6 here, where that quadrature is good to 38 digits (it fails when the peak is ~20 out).
MODEL_PARAMS = [
    Param(x, Real(-3, 3), "the observation"),
    Param(w, Real(-3, 3), "weight of the decoder's mean w z + b"),
    Param(b, Real(-3, 3), "bias of the decoder's mean w z + b"),
    Param(s, Positive(0.5, 10), "standard deviation of x given z (not the variance)"),
]

log_likelihood = log_normal_pdf(x, w * z + b, s)          # log p(x | z)
log_joint = log_normal_pdf(z, 0, 1) + log_likelihood       # log p(z) + log p(x | z)


def likelihood():
    """p(x | z) with its exponent expanded in powers of z: the form SymPy integrates fastest
    (expanded when the derivation is derived, not at import)."""
    return sp.exp(sp.expand(-(x - w * z - b) ** 2 / (2 * s**2))) / (sp.sqrt(2 * sp.pi) * s)


# --- the evidence log p(x) ---------------------------------------------------------------

vae_linear_gaussian_evidence = Derivation(
    "vae_linear_gaussian_evidence",
    notation={"vae_linear_gaussian_evidence": r"\log p(x)"},
    sections=(4,),
    title="Evidence log p(x) of the linear-Gaussian latent-variable model",
    summary="log p(x) for z ~ N(0, 1), x | z ~ N(w z + b, s^2): x ~ N(b, w^2 + s^2).",
    kind="likelihood",
    references=[VAE_REFERENCE],
    params=MODEL_PARAMS,
    returns="log p(x) in nats, broadcast over the arguments",
)
chain = vae_linear_gaussian_evidence.define(
    lambda: sp.log(GaussianExpectation(likelihood(), z, 0, 1)),
    "definition: the marginal likelihood p(x) = E_{z ~ p(z)}[p(x | z)]")
chain.step(
    log_normal_pdf(x, b, sp.sqrt(w**2 + s**2)),
    "SymPy integrates the Gaussian integral (completing the square in z): x ~ N(b, w^2 + s^2)")
chain.step(
    -(x - b) ** 2 / (2 * (w**2 + s**2)) - sp.log(w**2 + s**2) / 2 - sp.log(2 * sp.pi) / 2,
    "log sqrt(v) = log(v)/2: the textbook form")


def _log_joint_numeric(z_values, x, w, b, s):
    return stats.norm.logpdf(z_values) + stats.norm.logpdf(x, w * z_values + b, s)


def _posterior_window(x, w, b, s):
    """Where the integrand p(z) p(x | z) lives, found numerically (not from the closed form):
    its maximiser and a width from the curvature of its log by finite differences."""
    peak = optimize.minimize_scalar(lambda t: -_log_joint_numeric(t, x, w, b, s), bracket=(-1.0, 1.0)).x
    h = 1e-3
    second = (_log_joint_numeric(peak + h, x, w, b, s) - 2 * _log_joint_numeric(peak, x, w, b, s)
              + _log_joint_numeric(peak - h, x, w, b, s)) / h**2
    return peak, 1 / math.sqrt(max(-second, 1e-12))


# Cached: hypothesis replays the same points for every candidate a check is asked about.
@functools.lru_cache(maxsize=4096)
def _posterior_moments_by_quadrature(x, w, b, s):
    """log p(x), E[z | x] and Var[z | x] by adaptive quadrature, scaled by the peak value."""
    peak, width = _posterior_window(x, w, b, s)
    top = _log_joint_numeric(peak, x, w, b, s)
    moments = []
    for power in (0, 1, 2):
        integrand = lambda t, k=power: (t - peak) ** k * math.exp(_log_joint_numeric(t, x, w, b, s) - top)  # noqa: E731
        moments.append(integrate.quad(integrand, peak - 40 * width, peak + 40 * width, points=[peak],
                                      epsabs=0, epsrel=1e-12, limit=200)[0])
    mass, first, second = moments
    mean_offset = first / mass
    return top + math.log(mass), peak + mean_offset, second / mass - mean_offset**2


def evidence_by_quadrature(x, w, b, s):
    return _posterior_moments_by_quadrature(x, w, b, s)[0]


def sample_marginal(rng, n, x, w, b, s):
    # Ancestral sampling: z ~ p(z), then x ~ p(x | z).
    return w * rng.standard_normal(n) + b + s * rng.standard_normal(n)


vae_linear_gaussian_evidence.add_check(IdentityCheck(
    evidence_by_quadrature, "log of the integral of p(z) p(x | z) by adaptive quadrature",
    rtol=1e-9, atol=1e-12))
# 200_000 draws: the quadrature identity above carries the power against small errors;
# this check shows the density is that of the simulated x (KS allowance 0.74%).
vae_linear_gaussian_evidence.add_check(DensityCheck(
    sample_marginal, "ancestral samples of x against the evidence as a density in x", samples=200_000))


# --- the ELBO of a Gaussian q -----------------------------------------------------------

vae_linear_gaussian_elbo = Derivation(
    "vae_linear_gaussian_elbo",
    notation={"vae_linear_gaussian_elbo": r"\mathrm{ELBO}"},
    sections=(4,),
    title="ELBO of a Gaussian q(z) = N(loc, scale^2) in the linear-Gaussian model",
    summary="E_q[log p(x | z)] - KL(q(z) || N(0, 1)) for x | z ~ N(w z + b, s^2); at most log p(x).",
    kind="elbo",
    references=[VAE_REFERENCE],
    params=[*MODEL_PARAMS,
            Param(loc, Real(-5, 5), "mean of the variational distribution q(z)"),
            Param(scale, Positive(1e-2, 1e2), "standard deviation of q(z) (not the variance)")],
    returns="the ELBO in nats, <= log p(x), broadcast over the arguments",
)
log_q = log_normal_pdf(z, loc, scale)
chain = vae_linear_gaussian_elbo.define(
    GaussianExpectation(log_joint - log_q, z, loc, scale),
    "definition: ELBO(q) = E_q[log p(x, z) - log q(z)]")
chain.step(
    GaussianExpectation(log_likelihood, z, loc, scale)
    - (sp.log(1 / scale) + (scale**2 + loc**2) / 2 - sp.Rational(1, 2)),
    "log p(x, z) = log p(x | z) + log p(z); E_q[log q - log p(z)] = KL(N(loc, scale^2) || N(0, 1)), "
    "the kl_normal closed form at loc_q = 0, scale_q = 1")
chain.step(
    -((x - b - w * loc) ** 2 + w**2 * scale**2) / (2 * s**2) - sp.log(s) - sp.log(2 * sp.pi) / 2
    - (loc**2 + scale**2) / 2 + sp.log(scale) + sp.Rational(1, 2),
    "E_q[(x - b - w z)^2] = (x - b - w loc)^2 + w^2 scale^2 (SymPy integrates): the textbook form")


def sample_elbo_integrand(rng, n, x, w, b, s, loc, scale):
    # z = loc + scale eps: the integrand is a quadratic in eps, so the Hermite control
    # variates of eps (symgen/engine/controls.py) leave only rounding.
    normals = rng.standard_normal(n)
    draws = loc + scale * normals
    return Controlled(stats.norm.logpdf(x, w * draws + b, s) + stats.norm.logpdf(draws)
                      - stats.norm.logpdf(draws, loc, scale), normals)


@functools.lru_cache(maxsize=4096)
def elbo_by_quadrature(x, w, b, s, loc, scale):
    # In standard units of q, so the integrand has a fixed shape whatever the scale.
    def integrand(u):
        draw = loc + scale * u
        return stats.norm.pdf(u) * (stats.norm.logpdf(x, w * draw + b, s) + stats.norm.logpdf(draw)
                                    - stats.norm.logpdf(draw, loc, scale))

    return integrate.quad(integrand, -40, 40, points=[0.0], epsabs=0, epsrel=1e-13, limit=200)[0]


# The quadrature identity runs first: deterministic and cached, it refutes a wrong formula
# at once; the Monte Carlo estimate is the route that shares nothing with integration.
vae_linear_gaussian_elbo.add_check(IdentityCheck(
    elbo_by_quadrature, "E_q[log p(x | z) + log p(z) - log q(z)] by adaptive quadrature",
    rtol=1e-9, atol=1e-12))
# With the control variates 20_000 draws resolve ~1e-12 of the value (400_000 plain draws: 5e-5).
vae_linear_gaussian_elbo.add_check(MeanCheck(
    sample_elbo_integrand, "the same expectation by Monte Carlo", samples=20_000, batches=200))


# --- the exact posterior p(z | x) ---------------------------------------------------------

vae_linear_gaussian_posterior = Derivation(
    "vae_linear_gaussian_posterior",
    notation={"mean": r"\mathbb{E}[z \mid x]", "var": r"\mathrm{Var}[z \mid x]"},
    sections=(4,),
    title="Exact posterior p(z | x) of the linear-Gaussian latent-variable model",
    summary="p(z | x) = N(loc, var) for z ~ N(0, 1), x | z ~ N(w z + b, s^2).",
    kind="elbo",
    references=[VAE_REFERENCE, "Bishop (2006), Pattern Recognition and Machine Learning, Section 2.3.3"],
    params=MODEL_PARAMS,
)


# log p(x) - ELBO(q) = KL(q || p(z | x)) >= 0 vanishes only at q = p(z | x); here
# log p(z) + log p(x | z) is a concave quadratic in z, so p(z | x) is Gaussian and is the
# Gaussian q at which the ELBO is stationary.
@functools.cache
def elbo_optimum():
    """The (loc, scale) at which the ELBO's closed form is stationary, solved for by SymPy
    (once, when the posterior is first derived; both of its outputs start from it)."""
    elbo = vae_linear_gaussian_elbo.output().closed_form
    solutions = sp.solve([sp.diff(elbo, loc), sp.diff(elbo, scale)], [loc, scale], dict=True)
    return next(solution for solution in solutions if solution[scale].is_positive)


def curvature(log_density, variable):
    """The coefficient of variable^2 in a log density quadratic in it: -1/(2 var) for a Gaussian."""
    return sp.Poly(sp.expand(log_density), variable).coeff_monomial(variable**2)


chain = vae_linear_gaussian_posterior.define(
    lambda: elbo_optimum()[loc],
    "definition: p(z | x) maximises the ELBO (the gap is KL(q || p(z | x))); it is Gaussian, so SymPy "
    "solves dELBO/dloc = dELBO/dscale = 0 for it",
    output="mean", doc="posterior mean E[z | x]")
chain.step(
    lambda previous: sp.solve(sp.diff(log_joint, z), z)[0],
    "the mean of a Gaussian is its mode: the stationary point of log p(z) + log p(x | z)")
chain.step(w * (x - b) / (w**2 + s**2), "collect terms: the textbook form")
chain = vae_linear_gaussian_posterior.define(
    lambda: elbo_optimum()[scale] ** 2,
    "definition: the variance of the ELBO-maximising Gaussian q, which is p(z | x)",
    output="var", doc="posterior variance Var[z | x] (scale^2 of q at the optimum)")
chain.step(
    lambda previous: -1 / (2 * curvature(log_joint, z)),
    "a Gaussian log density has z^2 coefficient -1/(2 var); read off that of log p(z) + log p(x | z)")
chain.step(s**2 / (w**2 + s**2), "collect terms: the textbook form")


def posterior_mean_by_quadrature(x, w, b, s):
    return _posterior_moments_by_quadrature(x, w, b, s)[1]


def posterior_var_by_quadrature(x, w, b, s):
    return _posterior_moments_by_quadrature(x, w, b, s)[2]


def weighted_posterior_residual(rng, n, x, w, b, s, formula):
    # Bayes' rule without the normaliser: E_{p(z)}[(z - E[z | x]) p(x | z)] = 0, that is, the
    # integral of (z - loc) p(z) p(x | z) over z vanishes. Estimated by importance sampling
    # from r = N(peak, width^2) at the peak of p(z) p(x | z) found numerically (_posterior_window:
    # an optimiser and finite differences, not the closed form): (z - loc) p(z) p(x | z) / r(z)
    # has that integral as its mean whatever r is, and weights that are nearly constant where
    # r is close to the posterior. The weights are divided by their value at the peak (a
    # positive constant: the target stays 0), so the draws are of the order of the width, not
    # of p(x), which underflows when x is far out. With z = peak + width eps, the draws are
    # nearly linear in the normals eps, whose Hermite polynomials are control variates.
    peak, width = _posterior_window(x, w, b, s)
    normals = rng.standard_normal(n)
    draws = peak + width * normals
    log_weights = _log_joint_numeric(draws, x, w, b, s) - _log_joint_numeric(peak, x, w, b, s) + normals**2 / 2
    return Controlled((draws - formula(x=x, w=w, b=b, s=s)) * np.exp(log_weights), normals)


vae_linear_gaussian_posterior.add_check(IdentityCheck(
    posterior_mean_by_quadrature, "E[z | x] by adaptive quadrature of Bayes' rule", output="mean",
    rtol=1e-9, atol=1e-12))
# 20_000 draws: with weights this flat the control variates leave ~rounding, and the check
# resolves ~1e-12 / |loc| of loc (200_000 draws from the prior resolved 1e-3 to 27%).
vae_linear_gaussian_posterior.add_check(MeanCheck(
    weighted_posterior_residual,
    "E_{p(z)}[(z - loc) p(x | z)] = 0 by importance sampling around the numerically found peak",
    output="mean", target=lambda **params: 0.0, applies_formula=True, samples=20_000, batches=200))
vae_linear_gaussian_posterior.add_check(IdentityCheck(
    posterior_var_by_quadrature, "Var[z | x] by adaptive quadrature of Bayes' rule", output="var",
    rtol=1e-9))


# --- the reparameterisation gradient ------------------------------------------------------

REPARAMETERIZATION_REFERENCE = ("Kingma & Welling (2014), Auto-Encoding Variational Bayes, Section 2.4 "
                                "(the reparameterisation trick)")
SCORE_FUNCTION_REFERENCE = ("Williams (1992), Simple statistical gradient-following algorithms for "
                            "connectionist reinforcement learning (REINFORCE)")
grad_loc = sp.Symbol("loc", real=True)
grad_scale = sp.Symbol("scale", positive=True)
u = sp.Symbol("z", real=True)


# E[sin z] by SymPy's integration; the definitions differentiate it. (A derivative of an
# unevaluated expectation cannot be spot-checked: quadrature needs numeric loc and scale.)
@functools.cache
def expected_sin():
    """E[sin z] for z ~ N(loc, scale^2), integrated by SymPy: exp(-scale^2/2) sin(loc)."""
    return GaussianExpectation(sp.sin(u), u, grad_loc, grad_scale).doit()


vae_reparameterization_gradient_sin = Derivation(
    "vae_reparameterization_gradient_sin",
    notation={"d_loc": r"\partial_{\mu}\, \mathbb{E}[\sin z]",
              "d_scale": r"\partial_{\sigma}\, \mathbb{E}[\sin z]"},
    sections=(2,),
    title="Gradient of E[sin z], z ~ N(loc, scale^2), in loc and scale",
    summary=("The exact gradient that the pathwise (reparameterisation, z = loc + scale eps) and the "
             "score-function (REINFORCE) Monte Carlo estimators both estimate, for f(z) = sin z."),
    kind="elbo",
    references=[REPARAMETERIZATION_REFERENCE, SCORE_FUNCTION_REFERENCE],
    params=[Param(grad_loc, Real(-10, 10), "mean of z"),
            Param(grad_scale, Positive(1e-2, 5), "standard deviation of z (not the variance)")],
)
chain = vae_reparameterization_gradient_sin.define(
    lambda: sp.diff(expected_sin(), grad_loc),
    "definition: d/dloc E_{z ~ N(loc, scale^2)}[sin z], where SymPy integrates E[sin z] = "
    "exp(-scale**2/2)*sin(loc)", output="d_loc", doc="d E[sin z] / d loc")
chain.step(
    GaussianExpectation(sp.cos(u), u, grad_loc, grad_scale),
    "reparameterise z = loc + scale eps, eps ~ N(0, 1): d/dloc E[f(loc + scale eps)] = E[f'(z)]")
chain.step(sp.exp(-grad_scale**2 / 2) * sp.cos(grad_loc), "SymPy integrates E[cos z]: the closed form")
chain = vae_reparameterization_gradient_sin.define(
    lambda: sp.diff(expected_sin(), grad_scale),
    "definition: d/dscale E_{z ~ N(loc, scale^2)}[sin z], differentiating SymPy's E[sin z]",
    output="d_scale", doc="d E[sin z] / d scale")
chain.step(
    GaussianExpectation(sp.cos(u) * (u - grad_loc) / grad_scale, u, grad_loc, grad_scale),
    "reparameterise: d/dscale f(loc + scale eps) = f'(z) eps, with eps = (z - loc)/scale")
chain.step(-grad_scale * sp.exp(-grad_scale**2 / 2) * sp.sin(grad_loc),
           "SymPy integrates E[cos(z) (z - loc)]/scale: the closed form")


# Every estimator below is a function of the normals eps that z = loc + scale eps is built
# from, returned with them: polynomials of eps are control variates (symgen/engine/controls.py),
# which take out the parts of f(z) that are polynomial in eps up to degree 4 (all of it as
# scale -> 0) while leaving each estimator's mean, the gradient, as it is.


def pathwise_loc(rng, n, loc, scale):
    eps = rng.standard_normal(n)
    return Controlled(np.cos(loc + scale * eps), eps)


def pathwise_scale(rng, n, loc, scale):
    eps = rng.standard_normal(n)
    return Controlled(np.cos(loc + scale * eps) * eps, eps)


def score_function_loc(rng, n, loc, scale):
    # f(z) d/dloc log N(z; loc, scale^2) = sin z (z - loc)/scale^2: no derivative of f needed.
    eps = rng.standard_normal(n)
    draws = loc + scale * eps
    return Controlled(np.sin(draws) * (draws - loc) / scale**2, eps)


def score_function_scale(rng, n, loc, scale):
    eps = rng.standard_normal(n)
    draws = loc + scale * eps
    return Controlled(np.sin(draws) * ((draws - loc) ** 2 / scale**3 - 1 / scale), eps)


for output, pathwise, score in (("d_loc", pathwise_loc, score_function_loc),
                                ("d_scale", pathwise_scale, score_function_scale)):
    # 200_000 draws each: with the control variates the best points resolve 1e-11 (d_loc)
    # and 1e-7 (d_scale) of the gradient, where 10^6 plain draws resolved 6e-7 and 0.8%. Where
    # scale is large the gradient, exp(-scale^2/2) times a sine or cosine, is far below the
    # draws' spread, and no number of draws resolves it relative to itself.
    vae_reparameterization_gradient_sin.add_check(MeanCheck(
        pathwise, f"pathwise (reparameterisation) Monte Carlo estimate of {output}", output=output,
        samples=200_000, batches=200))
    # The score-function estimate is the noisier one (its variance grows like 1/scale^2, a
    # term the control variate He_1(eps) takes out): best points 1e-7 (d_loc), 2e-4 (d_scale).
    vae_reparameterization_gradient_sin.add_check(MeanCheck(
        score, f"score-function (REINFORCE) Monte Carlo estimate of {output}", output=output,
        samples=200_000, batches=200))
