"""Diffusion models: the forward (noising) chain, its marginal and its posterior.

The forward process adds Gaussian noise in T steps (Ho et al. 2020, "Denoising
Diffusion Probabilistic Models", Eq. 2),

    q(x_s | x_{s-1}) = N(sqrt(1 - beta_s) x_{s-1}, beta_s),   alpha_bar_t = prod_{s<=t} (1 - beta_s).

Composing the Gaussian steps gives the marginal q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0,
1 - alpha_bar_t) (Ho et al. 2020, Eq. 4), so x_t = sqrt(alpha_bar) x_0 + sqrt(1 - alpha_bar) eps
is one draw of it (theory notebook, section 7: the diffusion noising step). Bayes' rule
then gives the posterior of one step back, q(x_{t-1} | x_t, x_0) = N(mu_tilde, beta_tilde)
(Ho et al. 2020, Eqs. 6-7), the target of every reverse step.

A network predicts eps (or x_0, or v = sqrt(alpha_bar) eps - sqrt(1 - alpha_bar) x_0);
the reparameterised sample converts one into the others. For Gaussian data the best
possible noise prediction E[eps | x_t] and its mean squared
error, the least value of the denoising loss at each noise level (theory notebook,
sections 8 and 12), are closed forms too; and in continuous time the forward process is
the variance-preserving SDE, whose marginal follows from its moment equations.

Everything here is per coordinate: the forward process is isotropic, so a vector x_0
is handled by broadcasting.
"""
import functools
import math

import mpmath
import numpy as np
import sympy as sp
from sympy.codegen.cfunctions import expm1

from symgen.engine import (ConditionalCheck, Controlled, Derivation, DistributionCheck, IdentityCheck, Interval, Lemma,
                           MeanCheck, Param, Positive, Real, complement, lazy_module, log_normal_pdf, special_function,
                           sqrt_ratio)

# SciPy is loaded when a check first runs, so importing this module stays cheap.
integrate = lazy_module("scipy.integrate")
stats = lazy_module("scipy.stats")

DDPM = "Ho, Jain & Abbeel (2020), Denoising Diffusion Probabilistic Models"

x0 = sp.Symbol("x0", real=True)
xt = sp.Symbol("xt", real=True)
alpha_bar = sp.Symbol("alpha_bar", positive=True)
alpha_bar_t = sp.Symbol("alpha_bar_t", positive=True)
alpha_bar_prev = sp.Symbol("alpha_bar_prev", positive=True)
u = sp.Symbol("u", real=True)                    # argument of a cumulant generating function
x_prev = sp.Symbol("x_prev", real=True)          # x_{t-1}, integrated out / solved for

# alpha_bar in (0, 1]. Draws stop 1e-12 short of 1: at alpha_bar = 1 the law is a point
# mass, which no sample-based test can take (the tests cover alpha_bar = 1 directly).
ALPHA_BAR = Interval(0.0, 1.0, high_closed=True, draw_high=1 - 1e-12)
# A schedule with zero terminal SNR (Lin et al. 2024) ends at alpha_bar = 0 exactly: the formulas
# that stay finite there take it. The checks draw from 1e-300 (their chains take logs); the tests
# cover alpha_bar = 0 directly.
ALPHA_BAR_WITH_ZERO = Interval(0.0, 1.0, low_closed=True, high_closed=True, draw_low=1e-300, draw_high=1 - 1e-12)


# --- the forward chain, composed --------------------------------------------------------


def gaussian_cgf(variable, mean, variance):
    """log E[exp(u X)] for X ~ N(mean, variance)."""
    return mean * variable + variance * variable**2 / 2


# Base case and induction step of q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, 1 - alpha_bar_t). One
# forward step x_s = sqrt(1 - beta) x_{s-1} + sqrt(beta) eps, eps ~ N(0, 1) independent, maps the
# CGF K_{s-1} to K_s(u) = K_{s-1}(sqrt(1 - beta) u) + log E[exp(u sqrt(beta) eps)], the noise term
# an integral against the standard normal density (evaluated when the lemma is proved).
level, beta_s = sp.symbols("a beta", positive=True)    # alpha_bar_{s-1} and beta_s
standard = sp.Symbol("s", real=True)                   # eps, integrated out
noise_cgf = sp.log(sp.Integral(sp.exp(u * sp.sqrt(beta_s) * standard) * sp.exp(-standard**2 / 2)
                               / sp.sqrt(2 * sp.pi), (standard, -sp.oo, sp.oo)))
kept = sp.sqrt(1 - beta_s) * u                         # the argument K_{s-1} is taken at
FORWARD_INDUCTION = Lemma(
    "one forward step maps K_0(u) = u x_0 to the CGF of N(sqrt(1 - beta) x_0, beta) (base case) and "
    "the CGF of N(sqrt(a) x_0, 1 - a) to that of N(sqrt(a (1 - beta)) x_0, 1 - a (1 - beta)) (induction step)",
    (kept * x0 + noise_cgf, gaussian_cgf(u, sp.sqrt(1 - beta_s) * x0, beta_s)),
    (gaussian_cgf(kept, sp.sqrt(level) * x0, 1 - level) + noise_cgf,
     gaussian_cgf(u, sp.sqrt(level * (1 - beta_s)) * x0, 1 - level * (1 - beta_s))))

# Relative sizes of -log(1 - beta_s) in the numeric route: an uneven schedule.
RECURSION_STEPS = (3, 1, 4, 1, 5)


def forward_chain_moments(start, alpha):
    """(mean, variance) of x_t given x_0 = ``start`` by the moment recursion
    m <- sqrt(1 - beta) m, v <- (1 - beta) v + beta, run through a fixed uneven schedule of
    ``RECURSION_STEPS`` steps whose product is ``alpha``, at the working precision (mpf)."""
    mean, log_alpha, variance = mpmath.mpf(start), mpmath.log(alpha), mpmath.mpf(0)
    for size in RECURSION_STEPS:
        keep = mpmath.exp(log_alpha * size / sum(RECURSION_STEPS))     # 1 - beta_s
        mean, variance = mpmath.sqrt(keep) * mean, keep * variance + (1 - keep)
    return mean, variance


def forward_chain_cgf_by_recursion(variable, start, alpha):
    """K(u) at numbers x_0 and alpha_bar (u stays a symbol): the recursion at 60 digits."""
    with mpmath.workdps(60):
        mean, variance = forward_chain_moments(mpmath.mpf(str(sp.Float(start, 60))),
                                               mpmath.mpf(str(sp.Float(alpha, 60))))
        return gaussian_cgf(variable, sp.Float(mean, 55), sp.Float(variance, 55))


def _forward_chain_cgf_mpmath(variable, start, alpha):
    mean, variance = forward_chain_moments(start, alpha)
    return gaussian_cgf(variable, mean, variance)


# K(u) = log E[exp(u x_t) | x_0] under the forward chain with prod(1 - beta_s) = alpha_bar, kept
# unevaluated in the derivation's first step and evaluated two independent ways: symbolically,
# by induction over the steps (the lemma above), as the CGF of N(sqrt(alpha_bar) x_0,
# 1 - alpha_bar); numerically (numbers for x_0 and alpha_bar, u still a symbol), by running the
# moment recursion through an uneven schedule at 60 digits.
forward_chain_cgf = special_function(
    "forward_chain_cgf", 3,
    meaning=lambda variable, start, alpha: gaussian_cgf(variable, sp.sqrt(alpha) * start, 1 - alpha),
    lemmas=[FORWARD_INDUCTION],
    variables=(0,),
    numeric=forward_chain_cgf_by_recursion,
    mpmath=_forward_chain_cgf_mpmath,
    latex=r"\log \mathbb{{E}}_q\left[e^{{{0} x_t}} \,\middle|\, x_0 = {1}\right]_{{\prod_s (1-\beta_s) = {2}}}",
    text="log E[exp({0} x_t) | x_0 = {1}; prod(1 - beta_s) = {2}]",
    doc="K(u) = log E[exp(u x_t) | x_0] under the diffusion forward chain whose signal levels multiply "
        "to alpha_bar.")


# --- q(x_t | x_0) ------------------------------------------------------------------------

diffusion_marginal = Derivation(
    "diffusion_marginal",
    notation={"mean": r"\mathbb{E}[x_{t} \mid x_{0}]", "var": r"\mathrm{Var}[x_{t} \mid x_{0}]"},
    sections=(7,),
    title="Marginal of the diffusion forward process, q(x_t | x_0)",
    summary="Mean and variance of x_t given x_0 after noising to level alpha_bar "
            "(x_t = sqrt(alpha_bar) x0 + sqrt(1 - alpha_bar) eps).",
    kind="denoising/score",
    references=[DDPM + ", Eq. 4 (and Eq. 2 for the forward steps)"],
    params=[
        Param(x0, Real(-10, 10), "the clean data value x_0"),
        Param(alpha_bar, ALPHA_BAR_WITH_ZERO, "cumulative signal level alpha_bar_t = prod_s (1 - beta_s) "
                                              "(0: pure noise, x_t ~ N(0, 1); 1: x_t = x_0)"),
    ],
)

forward_cgf = forward_chain_cgf(u, x0, alpha_bar)
closed_cgf = gaussian_cgf(u, sp.sqrt(alpha_bar) * x0, 1 - alpha_bar)
COMPOSE = ("compose the Gaussian steps: K_s(u) = K_{s-1}(sqrt(1 - beta_s) u) + beta_s u^2/2; "
           "by induction on s (base case and step proved by SymPy) K_t is the CGF of "
           "N(sqrt(alpha_bar) x0, 1 - alpha_bar)")
(diffusion_marginal
 .define(sp.Subs(sp.Derivative(forward_cgf, u), u, 0),
         "definition: E[x_t | x_0] = K'(0), K the cumulant generating function of x_t given x_0 "
         "under the forward chain", output="mean", doc="E[x_t | x_0] = sqrt(alpha_bar) x0")
 .step(sp.Subs(sp.Derivative(closed_cgf, u), u, 0), COMPOSE)
 .step(sp.sqrt(alpha_bar) * x0, "differentiate at u = 0"))
(diffusion_marginal
 .define(sp.Subs(sp.Derivative(forward_cgf, (u, 2)), u, 0),
         "definition: Var[x_t | x_0] = K''(0)", output="var",
         doc="Var[x_t | x_0] = 1 - alpha_bar")
 .step(sp.Subs(sp.Derivative(closed_cgf, (u, 2)), u, 0), COMPOSE)
 .step(1 - alpha_bar, "differentiate twice (1 - alpha_bar is exact in floating point for "
                      "alpha_bar >= 1/2, so no rewrite is needed near alpha_bar = 1)"))


def schedule_at(point, most_steps):
    """The split of log(alpha_bar) between the steps of the forward chain run at a parameter
    point: 1 to ``most_steps`` steps, Dirichlet fractions, drawn from a generator seeded by the
    point's own bits. It varies from point to point as a random schedule would, while every
    sample at one point (the main sample and the pilot the control variates are fitted on,
    symgen/engine/controls.py) runs the same chain."""
    seed = np.frombuffer(np.asarray(point, dtype=np.float64).tobytes(), dtype=np.uint32)
    generator = np.random.default_rng(seed.tolist())
    return generator.dirichlet(np.ones(int(generator.integers(1, most_steps + 1))))


def run_chain(start, alpha, fractions, normals):
    """x_t of the forward chain from ``start``, one step per column of ``normals`` (n, steps):
    x_s = sqrt(1 - beta_s) x_{s-1} + sqrt(beta_s) z_s, with log(1 - beta_s) the step's
    fraction of log(alpha) (DDPM Eq. 2).

    The chain is linear, so it runs as two, added at the end: its noise-free part from
    ``start`` and its noise from 0. Run as one, x_t rounds to an ulp of x_0 at every step, and
    over several steps that rounding correlates with the noise: at x_0 = 10, alpha = 1 - 1e-12
    (noise 1e-6) it moved the noise's variance by 1e-9 of itself, which the control variates
    resolve."""
    log_keeps = fractions * math.log(alpha) if alpha < 1 else np.zeros(len(fractions))
    signal, noise = float(start), np.zeros(normals.shape[0])
    for log_keep, column in zip(log_keeps, normals.T):
        # 1 - beta_s = exp(log_keep); beta_s by expm1, exact even for tiny steps.
        keep, noise_scale = math.exp(log_keep / 2), math.sqrt(-math.expm1(log_keep))
        signal, noise = keep * signal, keep * noise + noise_scale * column
    return signal + noise


def forward_chain(rng, n, start, alpha, fractions):
    """n runs of the forward chain (``run_chain``) and the standard normals they were built from."""
    normals = rng.standard_normal((n, len(fractions)))
    return run_chain(start, alpha, fractions, normals), normals


# At most 4 steps: x_t is linear in the 4 normals, so every moment below is a polynomial of
# degree <= 2 in them, which the Hermite control variates remove exactly.
MARGINAL_STEPS = 4


def run_forward_chain(rng, n, x0, alpha_bar):
    x, normals = forward_chain(rng, n, x0, alpha_bar, schedule_at((x0, alpha_bar), MARGINAL_STEPS))
    return Controlled(x, normals)


def antithetic_runs(rng, n, x0, alpha_bar):
    """A run of the chain, its mirror (the same noise negated, equal in law) and the normals."""
    fractions = schedule_at((x0, alpha_bar), MARGINAL_STEPS)
    x, normals = forward_chain(rng, n, x0, alpha_bar, fractions)
    return x, run_chain(x0, alpha_bar, fractions, -normals), normals


def antithetic_mean(rng, n, x0, alpha_bar):
    # The chain is linear in its noise, so the average of a run and its mirror is its
    # noise-free part: an unbiased estimate of E[x_t | x_0] with no variance left, which
    # refutes any wrong mean at once.
    x, mirrored, _ = antithetic_runs(rng, n, x0, alpha_bar)
    return (x + mirrored) / 2


def squared_noise(rng, n, x0, alpha_bar):
    # Half the difference of a run and its mirror is its noise part, x_t - E[x_t | x_0],
    # without estimating the mean: its square has expectation Var[x_t | x_0]. It is a
    # quadratic in the normals, so the control variates leave only rounding.
    x, mirrored, normals = antithetic_runs(rng, n, x0, alpha_bar)
    return Controlled(((x - mirrored) / 2) ** 2, normals)


# False alarms: 1e-9 per evaluation for each check (ALPHA_PER_EVALUATION; batch-means t tests,
# and for the distribution check three tests at a third of it each).
diffusion_marginal.add_check(MeanCheck(
    antithetic_mean, "E[x_t | x_0]: forward chain run step by step (1-4 steps, random schedule), "
    "antithetic pairs", output="mean", samples=100_000, batches=100))
# Resolution ~1e-12 of the variance wherever it is >= 1e-3 (rounding only: the squared noise is
# a quadratic in the normals); it grows as 1e-12 / (1 - alpha_bar) towards alpha_bar = 1, where
# MeanCheck's rounding allowance, 1e-12 of max(1, |draws|), is absolute.
diffusion_marginal.add_check(MeanCheck(
    squared_noise, "Var[x_t | x_0]: squared noise part of antithetic forward-chain runs, "
    "control variates", output="var", samples=100_000, batches=400))
# Goodness of fit of the whole law on the raw draws (KS); the mean and variance tests use the
# control variates, exact here (x_t is linear in the normals, (x_t - mean)^2 quadratic), so both
# outputs are resolved to ~1e-12 of their size (the variance relative to itself at any level).
diffusion_marginal.add_check(DistributionCheck(
    run_forward_chain,
    lambda mean, var: stats.norm(mean, math.sqrt(var)),
    "forward chain run step by step (1-4 steps, random schedule) vs N(mean, var): "
    "KS, mean and variance (control variates)",
    outputs=("mean", "var"), samples=100_000))

diffusion_marginal.add_slip("alpha_bar*x0", "alpha_bar for sqrt(alpha_bar)", output="mean")
diffusion_marginal.add_slip("sqrt(1 - alpha_bar)*x0", "signal and noise swapped", output="mean")
diffusion_marginal.add_slip("sqrt(1 - alpha_bar)", "the scale for the variance", output="var")


# --- q(x_{t-1} | x_t, x_0) ---------------------------------------------------------------

diffusion_posterior = Derivation(
    "diffusion_posterior",
    notation={"mean": r"\tilde{\mu}_{t}", "var": r"\tilde{\beta}_{t}"},
    sections=(7,),
    title="Posterior of one diffusion step, q(x_{t-1} | x_t, x_0)",
    summary="Mean and variance of x_{t-1} given x_t and x_0 (the DDPM reverse-step target), "
            "for signal levels alpha_bar_t <= alpha_bar_prev.",
    kind="denoising/score",
    references=[DDPM + ", Eqs. 6-7"],
    params=[
        Param(x0, Real(-10, 10), "the clean data value x_0"),
        Param(xt, Real(-10, 10), "the noisy value x_t"),
        # Draws from 1e-12, the edge the open interval had: below it, with alpha_bar_prev at 1e-12 too,
        # autograd's quotient rule for d var/d alpha_bar_prev cancels terms of size 1/alpha_bar_prev.
        Param(alpha_bar_t, Interval(0.0, 1.0, low_closed=True, draw_low=1e-12, draw_high=1 - 1e-12),
              "signal level alpha_bar_t at step t (0 at the end of a zero-terminal-SNR schedule; < 1: "
              "step t >= 1)"),
        Param(alpha_bar_prev, ALPHA_BAR, "signal level alpha_bar_{t-1} at step t - 1 (>= alpha_bar_t)"),
    ],
    # One step of a fine schedule: alpha_bar_prev barely above alpha_bar_t, where
    # beta_t = 1 - alpha_bar_t / alpha_bar_prev cancels.
    near=[(alpha_bar_prev, alpha_bar_t)],
    requires=[(alpha_bar_prev >= alpha_bar_t,
               "argument 'alpha_bar_prev' must be >= alpha_bar_t (noise only grows along the chain)")],
)

alpha_t = alpha_bar_t / alpha_bar_prev          # 1 - beta_t
beta_t = 1 - alpha_t
# Bayes' rule: log q(x_{t-1} | x_t, x_0) = log q(x_t | x_{t-1}) + log q(x_{t-1} | x_0) + const(x_{t-1}).
step_log_joint = (log_normal_pdf(xt, sp.sqrt(alpha_t) * x_prev, sp.sqrt(beta_t))
                  + log_normal_pdf(x_prev, sp.sqrt(alpha_bar_prev) * x0, sp.sqrt(1 - alpha_bar_prev)))
precision = alpha_t / beta_t + 1 / (1 - alpha_bar_prev)
BAYES = ("Bayes' rule: log q(x_{t-1} | x_t, x_0) = log q(x_t | x_{t-1}) + log q(x_{t-1} | x_0) + const "
         "= l(x_{t-1}), a quadratic in x_{t-1}, so the posterior is Gaussian: ")
SQUARE = "complete the square: l = -(precision/2) x^2 + (linear coefficient) x + const, SymPy's Poly"


@functools.cache
def completed_square():
    """(precision, linear coefficient) of l(x_{t-1}) = -(precision/2) x^2 + (linear coefficient) x
    + const, read off SymPy's Poly of the expanded log joint (when the derivation is derived)."""
    quadratic = sp.Poly(sp.expand(step_log_joint), x_prev)
    return -2 * quadratic.coeff_monomial(x_prev**2), quadratic.coeff_monomial(x_prev)


(diffusion_posterior
 .define(-sp.Subs(sp.Derivative(step_log_joint, x_prev), x_prev, 0) / sp.Derivative(step_log_joint, (x_prev, 2)),
         BAYES + "l'(x) = -(x - mean)/var, so the mean is -l'(0)/l''", output="mean",
         doc="E[x_{t-1} | x_t, x_0] = mu_tilde_t")
 .step(lambda previous: completed_square()[1] / completed_square()[0],
       SQUARE + ": mean = linear coefficient / precision")
 .step((sp.sqrt(alpha_t) / beta_t * xt + sp.sqrt(alpha_bar_prev) / (1 - alpha_bar_prev) * x0) / precision,
       "precision-weighted combination of the step's and the marginal's information")
 .step(sp.sqrt(alpha_bar_prev) * beta_t / (1 - alpha_bar_t) * x0
       + sp.sqrt(alpha_t) * (1 - alpha_bar_prev) / (1 - alpha_bar_t) * xt,
       "mu_tilde_t = sqrt(alpha_bar_{t-1}) beta_t/(1 - alpha_bar_t) x_0 + "
       "sqrt(alpha_t)(1 - alpha_bar_{t-1})/(1 - alpha_bar_t) x_t: Ho et al. (2020), Eq. 7")
 .stable((alpha_bar_prev - alpha_bar_t) / (sp.sqrt(alpha_bar_prev) * (1 - alpha_bar_t)) * x0
         + sqrt_ratio(alpha_bar_t, alpha_bar_prev) * (1 - alpha_bar_prev) / (1 - alpha_bar_t) * xt,
         "beta_t = (alpha_bar_prev - alpha_bar_t)/alpha_bar_prev (an exact subtraction where the levels "
         "nearly agree) and sqrt(alpha_t) = sqrt(alpha_bar_t / alpha_bar_prev), formed from the quotient "
         "(sqrt(alpha_bar_t) x_t alone underflows for tiny levels)"))

(diffusion_posterior
 .define(-1 / sp.Derivative(step_log_joint, (x_prev, 2)),
         BAYES + "its variance is -1/l''", output="var",
         doc="Var[x_{t-1} | x_t, x_0] = beta_tilde_t")
 .step(lambda previous: 1 / completed_square()[0], SQUARE)
 .step(1 / precision, "precisions add: alpha_t / beta_t from the step, 1/(1 - alpha_bar_prev) "
                      "from the marginal, alpha_t = alpha_bar_t / alpha_bar_prev")
 .step((1 - alpha_bar_prev) / (1 - alpha_bar_t) * beta_t,
       "beta_tilde_t = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) beta_t: Ho et al. (2020), Eq. 7")
 .stable(complement(alpha_bar_prev) * (alpha_bar_prev - alpha_bar_t) / (alpha_bar_prev * complement(alpha_bar_t)),
         "beta_t = (alpha_bar_prev - alpha_bar_t) / alpha_bar_prev: the subtraction is exact where "
         "the levels nearly agree, while 1 - alpha_bar_t / alpha_bar_prev cancels there; the factors "
         "1 - alpha_bar computed as written, so the variance at t = 1 is +0.0 (as -(alpha_bar - 1) it was -0.0)"))


def forward_pair(rng, n, x0, xt, alpha_bar_t, alpha_bar_prev):
    """Joint draws (x_t, x_{t-1}) given x_0: the forward chain to alpha_bar_prev (1-2 steps),
    then one step; with the normals they were built from."""
    fractions = schedule_at((x0, xt, alpha_bar_t, alpha_bar_prev), 2)
    previous, normals = forward_chain(rng, n, x0, alpha_bar_prev, fractions)
    # The last step: 1 - beta_t = alpha_bar_t / alpha_bar_prev, beta_t by an exact subtraction.
    keep = math.sqrt(alpha_bar_t) / math.sqrt(alpha_bar_prev)
    beta = (alpha_bar_prev - alpha_bar_t) / alpha_bar_prev
    last = rng.standard_normal(n)
    current = keep * previous + math.sqrt(beta) * last
    return Controlled((current, previous), np.column_stack([normals, last]))


# False alarms: 1e-9 per evaluation (two t tests at half of it each, jackknife over batches of
# control-variate-adjusted moments: symgen/engine/conditional.py). The pair is linear in 2-3
# normals, so the controls leave only rounding: the resolution is ~1e-12 of the outputs where
# they are not small, and 1e5 draws are plenty.
diffusion_posterior.add_check(ConditionalCheck(
    forward_pair, lambda x0, xt, alpha_bar_t, alpha_bar_prev: xt,
    "joint forward draws (x_t, x_{t-1}) given x_0: the regression line of x_{t-1} on x_t at xt "
    "and the residual variance, from moments with control variates",
    mean="mean", var="var", samples=100_000))

diffusion_posterior.add_slip(
    "sqrt(alpha_bar_prev)*(1 - alpha_bar_t/alpha_bar_prev)/(1 - alpha_bar_t)*xt"
    " + sqrt(alpha_bar_t/alpha_bar_prev)*(1 - alpha_bar_prev)/(1 - alpha_bar_t)*x0",
    "the coefficients of x0 and xt in mu_tilde (Ho et al. 2020, Eq. 7) swapped", output="mean")
diffusion_posterior.add_slip(
    "sqrt(alpha_bar_prev)*(1 - alpha_bar_t/alpha_bar_prev)/(1 - alpha_bar_t)*x0"
    " + (alpha_bar_t/alpha_bar_prev)*(1 - alpha_bar_prev)/(1 - alpha_bar_t)*xt",
    "alpha_t for sqrt(alpha_t) in the coefficient of xt", output="mean")
diffusion_posterior.add_slip("1 - alpha_bar_t/alpha_bar_prev", "beta_t for beta_tilde_t", output="var")


# --- the reparameterised sample and the eps / x0 / v predictions ----------------------------

eps = sp.Symbol("eps", real=True)
clean = sp.Symbol("clean", real=True)      # x_0, solved for

diffusion_predictions = Derivation(
    "diffusion_predictions",
    sections=(7, 8),
    title="The x_0 and v predictions implied by a noise prediction",
    summary="Given x_t = sqrt(alpha_bar) x_0 + sqrt(1 - alpha_bar) eps (the reparameterised sample) "
            "and eps (or a network's prediction of it): the implied x_0, and "
            "v = sqrt(alpha_bar) eps - sqrt(1 - alpha_bar) x_0.",
    kind="denoising/score",
    references=[DDPM + ", Eq. 4 (the reparameterised sample)",
                "Salimans & Ho (2022), Progressive Distillation for Fast Sampling of Diffusion Models "
                "(the v parameterisation)"],
    params=[
        Param(xt, Real(-10, 10), "the noisy value x_t"),
        # Draws from 1e-6: below it x_t says almost nothing about x_0, the implied x_0 and v
        # exceed 1e3 |x_t|, and mpmath's LU (the check) calls the system singular.
        Param(alpha_bar, Interval(0.0, 1.0, high_closed=True, draw_low=1e-6, draw_high=1 - 1e-12),
              "signal level alpha_bar_t"),
        Param(eps, Real(-5, 5), "the noise eps (or its prediction)"),
    ],
)
# Written down unevaluated: SymPy would otherwise try to decide the equation at import.
reparameterised = sp.Eq(xt, sp.sqrt(alpha_bar) * clean + sp.sqrt(1 - alpha_bar) * eps, evaluate=False)


@functools.cache
def implied_clean():
    """x_0 from the reparameterised sample, by SymPy's solve (when the derivation is derived)."""
    return sp.solve(reparameterised, clean)[0]


(diffusion_predictions
 .define(implied_clean, "solve the reparameterised sample x_t = sqrt(alpha_bar) x_0 + sqrt(1 - alpha_bar) eps "
                        "for x_0 (SymPy solve)", output="x0", doc="the implied x_0")
 .step((xt - sp.sqrt(1 - alpha_bar) * eps) / sp.sqrt(alpha_bar), "the x_0 prediction from an eps prediction"))
(diffusion_predictions
 .define(lambda: sp.sqrt(alpha_bar) * eps - sp.sqrt(1 - alpha_bar) * implied_clean(),
         "definition of v (Salimans & Ho 2022), with x_0 from the reparameterised sample", output="v",
         doc="v = sqrt(alpha_bar) eps - sqrt(1 - alpha_bar) x_0", published=True)
 .step((eps - sp.sqrt(1 - alpha_bar) * xt) / sp.sqrt(alpha_bar),
       "collect: alpha_bar eps + (1 - alpha_bar) eps = eps"))


def predictions_by_linear_solve(xt, alpha_bar, eps):
    """(x0, v) from the two defining equations, x_t = sqrt(alpha_bar) x_0 + sqrt(1 - alpha_bar) eps
    and v + sqrt(1 - alpha_bar) x_0 = sqrt(alpha_bar) eps, as a linear system solved by mpmath
    (LU, 40 digits)."""
    with mpmath.workdps(40):
        a, noise, noisy = mpmath.mpf(alpha_bar), mpmath.mpf(eps), mpmath.mpf(xt)
        system = mpmath.matrix([[mpmath.sqrt(a), 0], [mpmath.sqrt(1 - a), 1]])
        right = mpmath.matrix([noisy - mpmath.sqrt(1 - a) * noise, mpmath.sqrt(a) * noise])
        solution = mpmath.lu_solve(system, right)
        return solution[0], solution[1]


# Deterministic routes; the tolerance covers the cancellation of x_t - sqrt(1 - alpha_bar) eps
# (a few ulps of |x_t| + |eps| against the result), far below any slip.
diffusion_predictions.add_check(IdentityCheck(
    lambda **point: float(predictions_by_linear_solve(**point)[0]),
    "x0: the defining equations solved as a linear system (mpmath LU)", output="x0", rtol=1e-9, atol=1e-12))
diffusion_predictions.add_check(IdentityCheck(
    lambda **point: float(predictions_by_linear_solve(**point)[1]),
    "v: the defining equations solved as a linear system (mpmath LU)", output="v", rtol=1e-9, atol=1e-12))

diffusion_predictions.add_slip("(xt - (1 - alpha_bar)*eps)/sqrt(alpha_bar)", "the variance for the scale", output="x0")
diffusion_predictions.add_slip("sqrt(alpha_bar)*xt - sqrt(1 - alpha_bar)*eps", "x0 and v swapped roles", output="v")


# --- the x_0 and eps predictions implied by a v prediction ------------------------------------

velocity = sp.Symbol("v", real=True)
noise_solved = sp.Symbol("noise", real=True)     # eps, solved for

diffusion_predictions_from_v = Derivation(
    "diffusion_predictions_from_v",
    sections=(7, 8),
    title="The x_0 and eps predictions implied by a v prediction",
    summary="Given x_t = sqrt(alpha_bar) x_0 + sqrt(1 - alpha_bar) eps and v = sqrt(alpha_bar) eps - "
            "sqrt(1 - alpha_bar) x_0 (or a network's prediction of v): x_0 = sqrt(alpha_bar) x_t - "
            "sqrt(1 - alpha_bar) v and eps = sqrt(1 - alpha_bar) x_t + sqrt(alpha_bar) v, defined at every "
            "level 0 <= alpha_bar <= 1, the last step of a zero-terminal-SNR schedule included (where an eps "
            "prediction says nothing about x_0).",
    kind="denoising/score",
    references=["Salimans & Ho (2022), Progressive Distillation for Fast Sampling of Diffusion Models, "
                "Sec. 4 and App. D (the v parameterisation)",
                "Lin, Liu, Li & Yang (2024), Common Diffusion Noise Schedules and Sample Steps are Flawed, "
                "Sec. 3.2 (v prediction at zero terminal SNR)"],
    params=[
        Param(xt, Real(-10, 10), "the noisy value x_t"),
        Param(alpha_bar, ALPHA_BAR_WITH_ZERO, "signal level alpha_bar_t (0: pure noise; 1: the data)"),
        Param(velocity, Real(-5, 5), "v (or its prediction)"),
    ],
)
# The two defining equations, unevaluated; SymPy solves them as a linear system in (x_0, eps).
defining_equations = (
    sp.Eq(xt, sp.sqrt(alpha_bar) * clean + sp.sqrt(1 - alpha_bar) * noise_solved, evaluate=False),
    sp.Eq(velocity, sp.sqrt(alpha_bar) * noise_solved - sp.sqrt(1 - alpha_bar) * clean, evaluate=False))


@functools.cache
def solved_from_v():
    """(x_0, eps) from x_t and v, by SymPy's solve of the two linear equations (when derived)."""
    solution = sp.solve(defining_equations, [clean, noise_solved], dict=True)[0]
    return solution[clean], solution[noise_solved]


(diffusion_predictions_from_v
 .define(lambda: solved_from_v()[0],
         "solve x_t = sqrt(alpha_bar) x_0 + sqrt(1 - alpha_bar) eps and v = sqrt(alpha_bar) eps - "
         "sqrt(1 - alpha_bar) x_0 for x_0 and eps (SymPy solve)", output="x0", doc="the implied x_0")
 .step(sp.sqrt(alpha_bar) * xt - sp.sqrt(1 - alpha_bar) * velocity,
       "alpha_bar + (1 - alpha_bar) = 1: the rotation by the angle with cosine sqrt(alpha_bar), inverted"))
(diffusion_predictions_from_v
 .define(lambda: solved_from_v()[1], "the same linear system, solved for eps", output="eps",
         doc="the implied eps")
 .step(sp.sqrt(1 - alpha_bar) * xt + sp.sqrt(alpha_bar) * velocity, "collect, as for x_0"))


def predictions_from_v_by_linear_solve(xt, alpha_bar, v):
    """(x0, eps) from the two defining equations as a linear system solved by mpmath (LU, 40 digits)."""
    with mpmath.workdps(40):
        a, noisy, velocity_value = mpmath.mpf(alpha_bar), mpmath.mpf(xt), mpmath.mpf(v)
        system = mpmath.matrix([[mpmath.sqrt(a), mpmath.sqrt(1 - a)], [-mpmath.sqrt(1 - a), mpmath.sqrt(a)]])
        solution = mpmath.lu_solve(system, mpmath.matrix([noisy, velocity_value]))
        return solution[0], solution[1]


# Deterministic routes (false-alarm probability 0); the system is a rotation, perfectly conditioned, so
# 1e-9 relative (with 1e-12 absolute where the terms cancel) is far below any slip.
for index, output in enumerate(("x0", "eps")):
    diffusion_predictions_from_v.add_check(IdentityCheck(
        lambda index=index, **point: float(predictions_from_v_by_linear_solve(**point)[index]),
        f"{output}: the defining equations solved as a linear system (mpmath LU)", output=output,
        rtol=1e-9, atol=1e-12))

diffusion_predictions_from_v.add_slip("sqrt(alpha_bar)*xt + sqrt(1 - alpha_bar)*v", "the sign of v's term",
                                      output="x0")
diffusion_predictions_from_v.add_slip("sqrt(1 - alpha_bar)*xt - sqrt(alpha_bar)*v", "the sign of v's term",
                                      output="eps")
diffusion_predictions_from_v.add_slip("alpha_bar*xt - (1 - alpha_bar)*v", "variances for scales", output="x0")


# --- the optimal noise prediction and its loss, for Gaussian data --------------------------

loc = sp.Symbol("loc", real=True)
scale = sp.Symbol("scale", positive=True)
noise = sp.Symbol("noise", real=True)     # eps, the variable solved for

diffusion_optimal_eps = Derivation(
    "diffusion_optimal_eps",
    notation={"mean": r"\mathbb{E}[\varepsilon \mid x_{t}]", "var": r"\mathrm{Var}[\varepsilon \mid x_{t}]"},
    sections=(8, 12),
    title="The optimal noise prediction E[eps | x_t] and its loss, for Gaussian data",
    summary="For data x_0 ~ N(loc, scale^2) and x_t = sqrt(alpha_bar) x_0 + sqrt(1 - alpha_bar) eps: "
            "the best prediction of eps from x_t (mean) and its mean squared error (var), the least "
            "value the denoising loss of DDPM can reach at this noise level.",
    kind="denoising/score",
    references=[DDPM + ", Eq. 14 (the simplified loss E||eps - eps_theta(x_t, t)||^2)"],
    params=[
        Param(xt, Real(-10, 10), "the noisy value x_t"),
        Param(alpha_bar, ALPHA_BAR, "signal level alpha_bar_t"),
        Param(loc, Real(-5, 5), "mean of the data x_0"),
        Param(scale, Positive(1e-2, 1e2), "standard deviation of the data x_0"),
    ],
)
noise_var = 1 - alpha_bar
signal_var = alpha_bar * scale**2
# Given eps, x_t = sqrt(alpha_bar) x_0 + sqrt(1 - alpha_bar) eps ~ N(sqrt(alpha_bar) loc +
# sqrt(1 - alpha_bar) eps, alpha_bar scale^2); with eps ~ N(0, 1), Bayes' rule gives
# log p(eps | x_t) = log p(x_t | eps) + log N(eps; 0, 1) + const, a quadratic in eps.
noise_log_joint = (log_normal_pdf(xt, sp.sqrt(alpha_bar) * loc + sp.sqrt(noise_var) * noise, sp.sqrt(signal_var))
                   + log_normal_pdf(noise, 0, 1))
BAYES = ("Bayes' rule: log p(eps | x_t) = log p(x_t | eps) + log N(eps; 0, 1) + const = l(eps), a quadratic, "
         "so the posterior is Gaussian: ")
# As in tweedie_normal: 1 - alpha_bar formed first, so alpha_bar scale^2 + (1 - alpha_bar) is a sum
# of two positive terms.
KEPT_NOISE_VAR = sp.UnevaluatedExpr(1 - alpha_bar)
KEEP_REASON = "the same, with 1 - alpha_bar formed first (the variance of x_t is a sum of two positive terms)"
(diffusion_optimal_eps
 .define(-sp.Subs(sp.Derivative(noise_log_joint, noise), noise, 0) / sp.Derivative(noise_log_joint, (noise, 2)),
         BAYES + "its mean is -l'(0)/l''", output="mean",
         doc="E[eps | x_t]: the prediction that minimises E(eps - eps_hat(x_t))^2")
 .step(sp.sqrt(noise_var) * (xt - sp.sqrt(alpha_bar) * loc) / (signal_var + noise_var),
       "collect: Cov(eps, x_t) / Var(x_t) times x_t - E[x_t]")
 .stable(sp.sqrt(KEPT_NOISE_VAR) * (xt - sp.sqrt(alpha_bar) * loc) / (signal_var + KEPT_NOISE_VAR), KEEP_REASON))
(diffusion_optimal_eps
 .define(-1 / sp.Derivative(noise_log_joint, (noise, 2)),
         BAYES + "its variance -1/l'' is the mean squared error of the best prediction E[eps | x_t] "
         "(the same for every x_t), i.e. the minimum of the denoising loss", output="var",
         doc="Var[eps | x_t]: the least mean squared error of any noise prediction")
 .step(1 / (noise_var / signal_var + 1), "precisions add: (1 - alpha_bar)/(alpha_bar scale^2) from x_t, 1 from the prior")
 .step(signal_var / (signal_var + noise_var),
       "the signal's share of Var(x_t): 0 at alpha_bar -> 0 (x_t is the noise), 1 at alpha_bar = 1")
 .stable(signal_var / (signal_var + KEPT_NOISE_VAR), KEEP_REASON))


def noise_and_noisy(rng, n, xt, alpha_bar, loc, scale):
    """Joint draws (x_t, eps): data from N(loc, scale^2), noised with eps (DDPM Eq. 4); with
    the two normals they were built from."""
    normals = rng.standard_normal((n, 2))
    data, eps = loc + scale * normals[:, 0], normals[:, 1]
    return Controlled((math.sqrt(alpha_bar) * data + math.sqrt(1 - alpha_bar) * eps, eps), normals)


# False alarms: 1e-9 per evaluation (symgen/engine/conditional.py, jackknife t tests on moments
# with control variates, exact for this pair linear in two normals: resolution ~1e-12).
diffusion_optimal_eps.add_check(ConditionalCheck(
    noise_and_noisy, lambda xt, alpha_bar, loc, scale: xt,
    "joint draws (x_t, eps): the regression line of eps on x_t at xt (the best predictor is "
    "linear here) and the residual variance = the least squared error, from moments with "
    "control variates",
    mean="mean", var="var", samples=100_000))

diffusion_optimal_eps.add_slip("1 - alpha_bar", "the data variance forgotten", output="var")


# --- the variance-preserving SDE ---------------------------------------------------------

t = sp.Symbol("time", positive=True)      # continuous time in [0, 1]; t is a step elsewhere
beta_min = sp.Symbol("beta_min", positive=True)
beta_max = sp.Symbol("beta_max", positive=True)
time_ = sp.Symbol("s", positive=True)            # integration variable
m_fn, v_fn = sp.Function("m"), sp.Function("v")

diffusion_vpsde_marginal = Derivation(
    "diffusion_vpsde_marginal",
    notation={"mean": r"\mathbb{E}[x_{t} \mid x_{0}]", "var": r"\mathrm{Var}[x_{t} \mid x_{0}]"},
    sections=(7,),
    title="Marginal of the variance-preserving SDE with a linear noise rate",
    summary="Mean and variance of x(t) given x(0) = x0 for dx = -beta(t) x dt / 2 + sqrt(beta(t)) dW, "
            "beta(t) = beta_min + t (beta_max - beta_min), t in [0, 1] (DDPM's continuous-time limit).",
    kind="denoising/score",
    references=["Song, Sohl-Dickstein, Kingma, Kumar, Ermon & Poole (2021), Score-Based Generative "
                "Modeling through Stochastic Differential Equations (the VP SDE and its perturbation kernel)"],
    params=[
        Param(x0, Real(-10, 10), "the clean value x(0)"),
        Param(t, Interval(0.0, 1.0, low_closed=True, high_closed=True, draw_low=1e-9),
              "time in [0, 1] (0: x(0) = x0)"),
        Param(beta_min, Positive(1e-2, 1.0), "noise rate at t = 0 (0.1 in Song et al.)"),
        Param(beta_max, Positive(1.0, 30.0), "noise rate at t = 1 (20 in Song et al.)"),
    ],
)
rate = beta_min + time_ * (beta_max - beta_min)


@functools.cache
def integrated_rate():
    """int_0^t beta(s) ds, by SymPy's integrate (when the derivation is derived)."""
    return sp.integrate(rate, (time_, 0, t))


# The moments of a linear SDE solve ODEs (Ito): dm/dt = -beta m / 2, dv/dt = -beta v + beta,
# solved by SymPy's dsolve when the derivation is derived.
mean_ode = sp.Eq(sp.Derivative(m_fn(time_), time_), -rate * m_fn(time_) / 2, evaluate=False)
var_ode = sp.Eq(sp.Derivative(v_fn(time_), time_), -rate * v_fn(time_) + rate, evaluate=False)
(diffusion_vpsde_marginal
 .define(lambda: sp.dsolve(mean_ode, m_fn(time_), ics={m_fn(0): x0}).rhs.subs(time_, t),
         "the mean solves dm/dt = -beta(t) m / 2, m(0) = x0 (take expectations of the SDE; SymPy dsolve)",
         output="mean", doc="E[x(t) | x(0) = x0]")
 .step(lambda previous: x0 * sp.exp(-integrated_rate() / 2), "= x0 exp(-int_0^t beta / 2)")
 .stable(x0 * sp.exp(-t * (beta_min + t * (beta_max - beta_min) / 2) / 2),
         "the integral written as t (beta_min + t (beta_max - beta_min)/2): no cancellation"))
(diffusion_vpsde_marginal
 .define(lambda: sp.dsolve(var_ode, v_fn(time_), ics={v_fn(0): 0}).rhs.subs(time_, t),
         "the variance solves dv/dt = -beta(t) v + beta(t), v(0) = 0 (Ito's formula for x^2; SymPy dsolve)",
         output="var", doc="Var[x(t) | x(0) = x0]")
 .step(lambda previous: 1 - sp.exp(-integrated_rate()),
       "= 1 - exp(-int_0^t beta): variance preserving for unit-variance data")
 .stable(-expm1(-t * (beta_min + t * (beta_max - beta_min) / 2)),
         "-expm1(-int_0^t beta): exact at small t, where 1 - exp(-int beta) cancels"))


def moments_by_ode(x0, time, beta_min, beta_max):
    """(mean, var) at time by integrating the moment ODEs numerically (scipy, tight tolerances)."""
    def derivatives(s, state):
        beta = beta_min + s * (beta_max - beta_min)
        mean, var = state
        return [-beta * mean / 2, beta * (1 - var)]
    solution = integrate.solve_ivp(derivatives, (0.0, time), [x0, 0.0], method="DOP853", rtol=1e-13, atol=1e-20)
    if not solution.success:
        raise ArithmeticError(f"moment ODE: {solution.message}")
    return solution.y[:, -1]


diffusion_vpsde_marginal.add_check(IdentityCheck(
    lambda **p: moments_by_ode(**p)[0], "mean: the moment ODE integrated numerically (scipy DOP853)",
    output="mean", rtol=1e-9, atol=1e-300))
diffusion_vpsde_marginal.add_check(IdentityCheck(
    lambda **p: moments_by_ode(**p)[1], "variance: the moment ODE integrated numerically (scipy DOP853)",
    output="var", rtol=1e-9, atol=1e-300))

diffusion_vpsde_marginal.add_slip("x0*exp(-time*(beta_min + time*(beta_max - beta_min)/2))", "the 1/2 lost", output="mean")


def draw_marginal_against_the_chain(axes):
    """x_t from the forward chain run step by step against N(mean, var) from diffusion_marginal."""
    import numpy as np

    from symgen.formulas import diffusion_marginal as marginal

    rng = np.random.default_rng(0)
    betas = np.linspace(1e-4, 0.02, 200)
    x0, draws = 1.5, np.full(200_000, 1.5)
    for beta in betas:
        draws = np.sqrt(1 - beta) * draws + np.sqrt(beta) * rng.standard_normal(draws.size)
    mean, var = marginal(x0, np.prod(1 - betas))
    grid = np.linspace(draws.min(), draws.max(), 400)
    axes.hist(draws, bins=120, density=True, alpha=0.4, label="forward chain, 200 linear-schedule steps")
    axes.plot(grid, np.exp(-(grid - mean) ** 2 / (2 * var)) / np.sqrt(2 * np.pi * var),
              label="N(mean, var) from diffusion_marginal")
    axes.set_xlabel("x_t (x_0 = 1.5)")
    axes.set_ylabel("density")
    axes.legend()


diffusion_marginal.add_plot("q(x_t | x_0) against the simulated chain", draw_marginal_against_the_chain)


def draw_optimal_loss_by_timestep(axes):
    """The minimum mean squared error of predicting eps from x_t, by timestep, for data
    x0 ~ N(0.5, 0.8^2): the closed form, and Monte Carlo points of the posterior-mean denoiser."""
    import numpy as np

    from symgen.formulas import diffusion_optimal_eps as optimal

    rng = np.random.default_rng(0)
    loc, scale = 0.5, 0.8
    alpha_bar = np.cumprod(1 - np.linspace(1e-4, 0.02, 1000))
    steps = np.arange(1, 1001)
    axes.plot(steps, optimal(0.0, alpha_bar, loc, scale).var, label="minimum MSE (closed form)")
    chosen = steps[::100]
    estimates = []
    for step in chosen:
        x0 = loc + scale * rng.standard_normal(100_000)
        eps = rng.standard_normal(x0.size)
        xt = np.sqrt(alpha_bar[step - 1]) * x0 + np.sqrt(1 - alpha_bar[step - 1]) * eps
        prediction = optimal(xt, alpha_bar[step - 1], loc, scale).mean
        estimates.append(np.mean((eps - prediction) ** 2))
    axes.plot(chosen, estimates, "o", label="Monte Carlo: posterior-mean denoiser on samples")
    axes.set_xlabel("timestep (linear schedule, 1000 steps)")
    axes.set_ylabel("E||eps - eps_hat(x_t)||^2")
    axes.legend()


diffusion_optimal_eps.add_plot("Optimal denoising loss by timestep", draw_optimal_loss_by_timestep)
