"""Scores: gradients of log densities, the quantity score-based models learn.

The score of a density p is s(x) = d/dx log p(x). For a Gaussian it is linear in x,

    score_normal(x, loc, scale) = -(x - loc) / scale^2,
    score_mvn(x, loc, cov) = -cov^-1 (x - loc),

and the score of the diffusion marginal q(x_t | x_0) = N(sqrt(alpha_bar) x_0, 1 - alpha_bar)
is -(x_t - sqrt(alpha_bar) x_0)/(1 - alpha_bar) = -eps / sqrt(1 - alpha_bar): the target of
denoising score matching (Vincent 2011). Tweedie's formula turns a score into a
denoiser, E[x_0 | x_t] = (x_t + (1 - alpha_bar) d/dx_t log p_t(x_t)) / sqrt(alpha_bar)
(Efron 2011), derived here for Gaussian data x_0 ~ N(loc, scale^2).

Every score satisfies Stein's identity E_p[s(x) f(x) + f'(x)] = 0 for smooth f of
moderate growth (integrate f p' by parts): the Monte Carlo checks below test it, with
f(x) = 1 + (x - loc)/scale, which sees a wrong constant (through E[f] = 1) as well as a
wrong slope (through E[f'] = 1/scale) (score_diffusion weights the constant less: see
STEIN_CONSTANT).
"""
import math

import mpmath
import numpy as np
import sympy as sp

from symgen.engine import (ConditionalCheck, Controlled, Covariance, Derivation, IdentityCheck, Interval, MeanCheck,
                           Param, Positive, Real, Vector, VectorIdentityCheck, lazy_module, log_normal_pdf,
                           quadratic_form)

# SciPy is loaded when a check first runs, not when the module is imported.
stats = lazy_module("scipy.stats")

HYVARINEN = "Hyvarinen (2005), Estimation of Non-Normalized Statistical Models by Score Matching"
VINCENT = "Vincent (2011), A Connection Between Score Matching and Denoising Autoencoders"
EFRON = "Efron (2011), Tweedie's Formula and Selection Bias"
DDPM = "Ho, Jain & Abbeel (2020), Denoising Diffusion Probabilistic Models, Eq. 4"

x = sp.Symbol("x", real=True)
loc = sp.Symbol("loc", real=True)
scale = sp.Symbol("scale", positive=True)
y = sp.Symbol("y", real=True)          # the variable a log density is differentiated in


def derivative_at(log_density, point):
    """d/dy log_density(y) at y = point, unevaluated."""
    return sp.Subs(sp.Derivative(log_density, y), y, point)


def stein_draws(draws, score_values, centre, spread, constant=1.0):
    """s(x) f(x) + f'(x) with f(x) = constant + (x - centre)/spread: mean 0 under the score's own law."""
    return score_values * (constant + (draws - centre) / spread) + 1 / spread


# --- the univariate normal ------------------------------------------------------------------

score_normal = Derivation(
    "score_normal",
    notation={"score_normal": r"\nabla_{x} \log p(x)"},
    sections=(9,),
    title="Score of a univariate normal",
    summary="d/dx log N(x; loc, scale^2) = -(x - loc)/scale^2.",
    kind="denoising/score",
    references=[HYVARINEN],
    params=[
        Param(x, Real(-20, 20), "where the score is evaluated"),
        Param(loc, Real(-10, 10), "mean of the normal"),
        Param(scale, Positive(1e-2, 1e2), "standard deviation of the normal (not the variance)"),
    ],
    returns="the score, broadcast over the arguments",
)
(score_normal
 .define(derivative_at(log_normal_pdf(y, loc, scale), x),
         "definition: the derivative of the log density at x")
 .step(-(x - loc) / scale**2, "differentiate: only the quadratic term depends on x")
 .stable(-sp.UnevaluatedExpr((x - loc) / scale) / scale,
         "divide by scale twice instead of by scale^2, which overflows or underflows for "
         "scales beyond 1e+-154"))


def stein_normal(rng, n, formula, x, loc, scale):
    # The normals the draws are built from come back too: Hermite polynomials of them are
    # control variates (symgen/engine/controls.py).
    normals = rng.standard_normal(n)
    draws = loc + scale * normals
    return Controlled(stein_draws(draws, formula(x=draws, loc=loc, scale=scale), loc, scale), normals)


def finite_difference_normal(x, loc, scale):
    # A central difference is exact for the quadratic log density whatever the step, so
    # the step is large (half a scale) to keep scipy's rounding small against it.
    step = scale / 2
    return (stats.norm.logpdf(x + step, loc, scale) - stats.norm.logpdf(x - step, loc, scale)) / (2 * step)


# False alarms: 1e-9 per evaluation (ALPHA_PER_EVALUATION, batch-means t test with 399 degrees
# of freedom). For a score linear in x the Stein terms are a quadratic in the normals, which the
# control variates remove: only rounding is left, so the resolution is ~1e-12 of the score and
# 2e5 draws are plenty (without the controls 2e6 draws resolved 1%).
score_normal.add_check(MeanCheck(
    stein_normal, "Stein's identity E[s(x) f(x) + f'(x)] = 0 under N(loc, scale^2)",
    samples=200_000, batches=400, target=lambda **params: 0.0, applies_formula=True))
# scipy's log density is accurate to ~1e-16 of its size (up to (x - loc)^2/2 scale^2 ~ 2e6
# here), so the difference is good to ~1e-9 relative; 1e-7 leaves room, and a 1% slip
# is 1e5 times that.
score_normal.add_check(IdentityCheck(
    finite_difference_normal, "central difference of scipy.stats.norm.logpdf",
    rtol=1e-7, atol=1e-9))

score_normal.add_slip("(x - loc)/scale**2", "the sign flipped")
score_normal.add_slip("-(x - loc)/scale", "the scale where the variance belongs")
score_normal.add_slip("-(x - loc)/(2*scale**2)", "the 1/2 of the log density kept")


# --- the multivariate normal ----------------------------------------------------------------

d = sp.Symbol("d", integer=True, positive=True)
x_vec, loc_vec = sp.MatrixSymbol("x", d, 1), sp.MatrixSymbol("loc", d, 1)
cov = sp.MatrixSymbol("cov", d, d)
y_vec = sp.MatrixSymbol("y", d, 1)

score_mvn = Derivation(
    "score_mvn",
    notation={"score_mvn": r"\nabla_{x} \log p(x)"},
    sections=(9,),
    title="Score of a multivariate normal",
    summary="grad_x log N(x; loc, cov) = -cov^-1 (x - loc), batched over leading dimensions.",
    kind="denoising/score",
    references=[HYVARINEN, "Petersen & Pedersen (2012), The Matrix Cookbook (derivative of a quadratic form)"],
    params=[
        Param(x_vec, Vector(d, Real(-10, 10)), "where the score is evaluated, shape (..., d)"),
        Param(loc_vec, Vector(d, Real(-5, 5)), "mean, shape (..., d)"),
        Param(cov, Covariance(d), "covariance, shape (..., d, d), symmetric positive definite"),
    ],
    dimensions={d: (1, 3)},
    implementation="symgen.numerics.scores:score_mvn",
    returns="the score, shape (..., d)",
)
(score_mvn
 # SymPy differentiates when the derivation is derived, not at import.
 .define(lambda: -sp.diff(quadratic_form(y_vec - loc_vec, cov.I), y_vec).xreplace({y_vec: x_vec}) / 2,
         "definition: grad_x of log N(x; loc, cov) = -(x - loc)^T cov^-1 (x - loc)/2 + const; "
         "SymPy's matrix calculus differentiates the quadratic form (d/dx x^T A x = (A + A^T) x)")
 .step(-cov.I * (x_vec - loc_vec), "cov is symmetric, so cov^-T = cov^-1"))


def finite_difference_mvn(x, loc, cov):
    law = stats.multivariate_normal(loc, cov)
    # Exact for the quadratic log density whatever the step; a step of half the
    # coordinate's standard deviation keeps scipy's rounding small against it.
    steps = np.sqrt(np.diag(cov)) / 2
    gradient = np.empty(len(x))
    for i, step in enumerate(steps):
        offset = np.zeros(len(x))
        offset[i] = step
        gradient[i] = (law.logpdf(x + offset) - law.logpdf(x - offset)) / (2 * step)
    return gradient


# scipy's logpdf (an eigendecomposition) is accurate to ~eps x cond(cov) <= 2e-12 of its
# size; differenced over half a standard deviation that is < 1e-8 of the score's norm.
score_mvn.add_check(VectorIdentityCheck(
    finite_difference_mvn, "central differences of scipy.stats.multivariate_normal.logpdf",
    rtol=1e-7, atol=1e-9))

score_mvn.add_slip("inv(cov)*(x - loc)", "the sign flipped")
score_mvn.add_slip("-cov*(x - loc)", "the covariance where its inverse belongs")


# --- the diffusion marginal's score: the denoising score matching target -------------------

xt = sp.Symbol("xt", real=True)
x0 = sp.Symbol("x0", real=True)
alpha_bar = sp.Symbol("alpha_bar", positive=True)
# alpha_bar in [0, 1) (0: a zero-terminal-SNR schedule's last step, where the score is -x_t; at 1
# the law is a point mass and has no score); draws from 1e-300 to 1e-12 short of 1, where the
# score's scale is 1e6/sqrt(...).
ALPHA_BAR_OPEN = Interval(0.0, 1.0, low_closed=True, draw_low=1e-300, draw_high=1 - 1e-12)

score_diffusion = Derivation(
    "score_diffusion",
    notation={"score_diffusion": r"\nabla_{x_{t}} \log q(x_{t} \mid x_{0})"},
    sections=(8, 9),
    title="Score of the diffusion marginal q(x_t | x_0): the denoising score matching target",
    summary="d/dx_t log q(x_t | x_0) = -(x_t - sqrt(alpha_bar) x0)/(1 - alpha_bar) "
            "= -eps/sqrt(1 - alpha_bar) for x_t = sqrt(alpha_bar) x0 + sqrt(1 - alpha_bar) eps.",
    kind="denoising/score",
    references=[VINCENT, DDPM],
    params=[
        Param(x0, Real(-10, 10), "the clean value x_0"),
        Param(xt, Real(-10, 10), "the noisy value x_t"),
        Param(alpha_bar, ALPHA_BAR_OPEN, "signal level alpha_bar_t"),
    ],
    returns="the score of q(x_t | x_0) at xt, broadcast over the arguments",
)
(score_diffusion
 .define(derivative_at(log_normal_pdf(y, sp.sqrt(alpha_bar) * x0, sp.sqrt(1 - alpha_bar)), xt),
         "definition: the derivative in x_t of log q(x_t | x_0) = log N(x_t; sqrt(alpha_bar) x0, "
         "1 - alpha_bar)")
 .step(-(xt - sp.sqrt(alpha_bar) * x0) / (1 - alpha_bar),
       "differentiate; with x_t = sqrt(alpha_bar) x0 + sqrt(1 - alpha_bar) eps this is "
       "-eps/sqrt(1 - alpha_bar)"))


# The weight of the constant in the Stein test function of score_diffusion. Near alpha_bar = 1 a
# correct score written as sqrt(alpha_bar) x0/(1 - alpha_bar) - xt/(1 - alpha_bar) rounds its first
# term (3.5e12 at x0 = 3.5, 1 - alpha_bar = 1e-12) by up to half an ulp, a constant offset of
# ~1e-10 of the score, which with weight 1 stood 20 allowances out (E[f] = 1 passes it on whole).
# Weighted 1e-4, an error in the score's constant is still refuted from ~1e-8 of the score.
STEIN_CONSTANT = 1e-4


def stein_diffusion(rng, n, formula, x0, xt, alpha_bar):
    centre, spread = math.sqrt(alpha_bar) * x0, math.sqrt(1 - alpha_bar)
    normals = rng.standard_normal(n)
    draws = centre + spread * normals      # x_t ~ q(x_t | x_0), DDPM Eq. 4
    # With the normals: for a score linear in x_t the Stein terms are a quadratic in them,
    # which the Hermite control variates remove exactly (symgen/engine/controls.py).
    score = formula(xt=draws, x0=x0, alpha_bar=alpha_bar)
    return Controlled(stein_draws(draws, score, centre, spread, STEIN_CONSTANT), normals)


def finite_difference_diffusion(x0, xt, alpha_bar):
    """Central difference of log q(x_t | x_0) = log N(x_t; sqrt(alpha_bar) x0, 1 - alpha_bar), at
    50 digits from the exact float inputs (mpmath). In float64 (scipy) x_t +- step rounds to an
    ulp of x_t, and sqrt(alpha_bar) x0 to an ulp of x0: at x_t = x0 = 10, alpha_bar = 1 - 1e-12
    (a spread of 1e-6 about a mean 5e-12 from x_t) that moved the difference by 1e-4 of the score."""
    with mpmath.workdps(50):
        noisy, clean, level = (mpmath.mpf(value) for value in (xt, x0, alpha_bar))
        centre, spread = mpmath.sqrt(level) * clean, mpmath.sqrt(1 - level)
        step = spread / 2        # exact for the quadratic log density whatever the step

        def log_density(at):
            return mpmath.log(mpmath.npdf(at, centre, spread))

        return float((log_density(noisy + step) - log_density(noisy - step)) / (2 * step))


# False alarms: 1e-9 per evaluation (ALPHA_PER_EVALUATION, batch-means t test with 399 degrees
# of freedom). Resolution: with the control variates only rounding is left of the Stein terms
# of the true score, so an error of ~1e-12 of the score is refuted; 2e5 draws are plenty.
score_diffusion.add_check(MeanCheck(
    stein_diffusion, "Stein's identity under q(x_t | x_0), control variates",
    samples=200_000, batches=400, target=lambda **params: 0.0, applies_formula=True))
# The 50-digit difference is exact for a float64 comparison (log densities up to 2e14, to 36
# digits); 1e-9 leaves room for the generated function's own rounding where the score cancels.
score_diffusion.add_check(IdentityCheck(
    finite_difference_diffusion, "central difference of mpmath's normal log density (50 digits)",
    rtol=1e-9, atol=1e-12))

score_diffusion.add_slip("-(xt - sqrt(alpha_bar)*x0)/sqrt(1 - alpha_bar)",
                         "the noise eps itself, not eps/sqrt(1 - alpha_bar)")
score_diffusion.add_slip("(xt - sqrt(alpha_bar)*x0)/(1 - alpha_bar)", "the sign flipped")
score_diffusion.add_slip("-(xt - alpha_bar*x0)/(1 - alpha_bar)", "alpha_bar where sqrt(alpha_bar) belongs")
score_diffusion.add_slip("-(x0 - sqrt(alpha_bar)*xt)/(1 - alpha_bar)", "x_0 and x_t swapped")


# --- Tweedie's formula for Gaussian data ------------------------------------------------------

tweedie_normal = Derivation(
    "tweedie_normal",
    notation={"mean": r"\mathbb{E}[x_{0} \mid x_{t}]", "var": r"\mathrm{Var}[x_{0} \mid x_{t}]"},
    sections=(8,),
    title="Tweedie's formula: the optimal denoiser E[x_0 | x_t] for Gaussian data",
    summary="Mean and variance of x_0 given x_t = sqrt(alpha_bar) x_0 + sqrt(1 - alpha_bar) eps, "
            "for data x_0 ~ N(loc, scale^2).",
    kind="denoising/score",
    references=[EFRON, DDPM],
    params=[
        Param(xt, Real(-10, 10), "the noisy value x_t"),
        Param(alpha_bar, Interval(0.0, 1.0, high_closed=True, draw_high=1 - 1e-12), "signal level alpha_bar_t"),
        Param(loc, Real(-5, 5), "mean of the data x_0"),
        Param(scale, Positive(1e-2, 1e2), "standard deviation of the data x_0"),
    ],
)
noise_var = 1 - alpha_bar
# Bayes' rule: log p(x_0 | x_t) = log q(x_t | x_0) + log p(x_0) + const, a quadratic in x_0.
log_joint = log_normal_pdf(xt, sp.sqrt(alpha_bar) * y, sp.sqrt(noise_var)) + log_normal_pdf(y, loc, scale)
marginal_var = alpha_bar * scale**2 + noise_var         # Var[x_t]: signal plus noise
# Kept as one term in the generated code: SymPy would flatten alpha_bar scale^2 + 1 - alpha_bar
# and evaluate (alpha_bar scale^2 - alpha_bar) + 1, which cancels for small scales near
# alpha_bar = 1, while a sum of two positive terms cannot.
KEPT_NOISE_VAR = sp.UnevaluatedExpr(1 - alpha_bar)
KEEP_REASON = "the same, with 1 - alpha_bar formed first (the variance is a sum of two positive terms)"
BAYES = ("Bayes' rule: log p(x_0 | x_t) = log q(x_t | x_0) + log p(x_0) + const = l(x_0), a quadratic, "
         "so the posterior is Gaussian: ")
(tweedie_normal
 .define(-sp.Subs(sp.Derivative(log_joint, y), y, 0) / sp.Derivative(log_joint, (y, 2)),
         BAYES + "its mean is -l'(0)/l''", output="mean", doc="E[x_0 | x_t], the optimal denoiser")
 .step((xt + noise_var * derivative_at(log_normal_pdf(y, sp.sqrt(alpha_bar) * loc, sp.sqrt(marginal_var)), xt))
       / sp.sqrt(alpha_bar),
       "Tweedie's formula E[x_0 | x_t] = (x_t + (1 - alpha_bar) d/dx_t log p_t(x_t))/sqrt(alpha_bar), "
       "with p_t = N(sqrt(alpha_bar) loc, alpha_bar scale^2 + 1 - alpha_bar) the law of x_t")
 .step((sp.sqrt(alpha_bar) * scale**2 * xt + noise_var * loc) / marginal_var,
       "differentiate and collect: a precision-weighted average of x_t/sqrt(alpha_bar) and loc")
 .stable((sp.sqrt(alpha_bar) * scale**2 * xt + KEPT_NOISE_VAR * loc) / (alpha_bar * scale**2 + KEPT_NOISE_VAR),
         KEEP_REASON))
(tweedie_normal
 .define(-1 / sp.Derivative(log_joint, (y, 2)), BAYES + "its variance is -1/l''", output="var",
         doc="Var[x_0 | x_t], the least mean squared error of any denoiser")
 .step(1 / (alpha_bar / noise_var + 1 / scale**2), "precisions add")
 .step(scale**2 * noise_var / marginal_var, "collect")
 .stable(scale**2 * KEPT_NOISE_VAR / (alpha_bar * scale**2 + KEPT_NOISE_VAR), KEEP_REASON))


def data_and_noisy(rng, n, xt, alpha_bar, loc, scale):
    """Joint draws (x_t, x_0): data from N(loc, scale^2), then noised (DDPM Eq. 4); with the
    two normals they were built from."""
    normals = rng.standard_normal((n, 2))
    data = loc + scale * normals[:, 0]
    return Controlled((math.sqrt(alpha_bar) * data + math.sqrt(1 - alpha_bar) * normals[:, 1], data), normals)


# False alarms: 1e-9 per evaluation (symgen/engine/conditional.py: two jackknife t tests on
# moments with control variates). The pair is linear in two normals, so the controls leave
# only rounding: resolution ~1e-12 of the outputs where they are not small.
tweedie_normal.add_check(ConditionalCheck(
    data_and_noisy, lambda xt, alpha_bar, loc, scale: xt,
    "joint draws (x_t, x_0): the regression line of x_0 on x_t at xt and the residual variance, "
    "from moments with control variates",
    mean="mean", var="var", samples=100_000))

tweedie_normal.add_slip("xt/sqrt(alpha_bar)", "the prior ignored: x_t rescaled, as if there were no noise",
                        output="mean")
