"""The unadjusted Langevin algorithm on a Gaussian target: its stationary law and bias.

Score-based sampling (theory notebook, section 9) iterates

    x' = x + eta s(x) + sqrt(2 eta) xi,    xi ~ N(0, 1),

with s the score of the target. For the target N(loc, scale^2), s(x) = -(x - loc)/scale^2
and the update is an autoregression,

    x' - loc = (1 - eta/scale^2)(x - loc) + sqrt(2 eta) xi,

which is stable exactly when |1 - eta/scale^2| < 1, i.e. 0 < eta < 2 scale^2. Its
stationary law is N(loc, v) with v the fixed point of the variance map
v -> (1 - eta/scale^2)^2 v + 2 eta:

    v = scale^2 / (1 - eta / (2 scale^2)),

larger than the target's scale^2: the discretisation bias of the unadjusted algorithm,
about eta/2 for small steps (Roberts & Tweedie 1996, "Exponential convergence of
Langevin distributions and their discrete approximations", discuss this chain; Song &
Ermon 2019 use it to sample from learned scores).
"""
import math

import mpmath
import sympy as sp

from symgen.engine import Derivation, DistributionCheck, IdentityCheck, Param, Positive, lazy_module

# SciPy is loaded when a check first runs, not when the module is imported.
stats = lazy_module("scipy.stats")

scale = sp.Symbol("scale", positive=True)
eta = sp.Symbol("eta", positive=True)
v = sp.Symbol("v", positive=True)       # the unknown stationary variance

langevin_stationary_var = Derivation(
    "langevin_stationary_var",
    sections=(9,),
    title="Stationary variance of unadjusted Langevin dynamics on a Gaussian target",
    summary="The variance of the stationary law of x' = x + eta s(x) + sqrt(2 eta) xi for the target "
            "N(loc, scale^2), for steps 0 < eta < 2 scale^2 (the target's variance is scale^2).",
    kind="denoising/score",
    references=["Roberts & Tweedie (1996), Exponential convergence of Langevin distributions and "
                "their discrete approximations, Bernoulli 2(4)",
                "Song & Ermon (2019), Generative Modeling by Estimating Gradients of the Data Distribution"],
    params=[
        # Draws: target scales near 1 and steps eta/scale^2 >= 1/16, where chains run from the
        # target settle within ~90 steps; any positive values are valid inputs.
        Param(scale, Positive(0.5, 2.0), "standard deviation of the Gaussian target"),
        Param(eta, Positive(0.25, 8.0), "step size eta (0 < eta < 2 scale^2)"),
    ],
    requires=[(eta < 2 * scale**2,
               "argument 'eta' must be < 2 scale^2: the chain diverges for larger steps")],
    returns="the stationary variance (> scale^2), broadcast over the arguments",
)

contraction = 1 - eta / scale**2          # x' - loc = contraction (x - loc) + sqrt(2 eta) xi
variance_map = sp.Eq(v, contraction**2 * v + 2 * eta)
(langevin_stationary_var
 # The map is linear in v: one fixed point, solved for when the derivation is derived.
 .define(lambda: sp.solve(variance_map, v)[0],
         "stationarity: x and xi are independent, so Var[x'] = (1 - eta/scale^2)^2 Var[x] + 2 eta; "
         "the stationary variance v is the fixed point of this map (SymPy solve)")
 .step(scale**2 / (1 - eta / (2 * scale**2)),
       "cancel eta/scale^2 from the numerator and denominator: the target's variance inflated by "
       "the discretisation bias")
 .stable(scale**2 * sp.UnevaluatedExpr(2 * scale**2 / (2 * scale**2 - eta)),
         "one subtraction, 2 scale^2 - eta, instead of the rounded ratio eta/(2 scale^2) "
         "subtracted from 1 (near the stability edge both are limited by the function's own "
         "conditioning, eta/(2 scale^2 - eta)); scale^2 times a ratio, never scale^4, which "
         "would underflow or overflow for scales beyond 1e+-77"))


def fixed_point_by_root_search(scale, eta):
    """The fixed point of v -> (1 - eta/scale^2)^2 v + 2 eta, by bracketing root search
    (mpmath's Illinois method at 50 digits, from the exact float inputs): accurate up to
    the stability edge eta -> 2 scale^2, where 1 - (1 - eta/scale^2)^2 cancels in float64."""
    with mpmath.workdps(50):
        scale, eta = mpmath.mpf(scale), mpmath.mpf(eta)
        contraction_squared = (1 - eta / scale**2) ** 2

        def excess(variance):
            return contraction_squared * variance + 2 * eta - variance

        high = 2 * eta
        while excess(high) > 0:        # the map pushes up until the fixed point is passed
            high *= 2
        return float(mpmath.findroot(excess, (mpmath.mpf(0), high), solver="illinois"))


def run_langevin_chains(rng, n, scale, eta):
    """Final states of n independent chains on the target N(0, scale^2), started at the target.

    Started at variance scale^2 < v, a chain's variance after K steps is
    v - (1 - eta/scale^2)^(2K) (v - scale^2), which is within 1e-5 of v (relative) once
    (1 - eta/scale^2)^(2K) <= 1e-5: far below the check's resolution (~5e-3 at 1e5 chains).
    """
    contraction_squared = (1 - eta / scale**2) ** 2
    steps = 1 if contraction_squared == 0 else max(1, math.ceil(math.log(1e-5) / math.log(contraction_squared)))
    x = rng.normal(0.0, scale, n)
    noise_scale = math.sqrt(2 * eta)
    for _ in range(steps):
        score = -x / scale**2                     # the target's score (score_normal)
        x = x + eta * score + noise_scale * rng.standard_normal(n)
    return x


# The root search is a deterministic route good to 50 digits; it carries the power against
# small slips (a 1% error is 1e8 times the tolerance).
langevin_stationary_var.add_check(IdentityCheck(
    fixed_point_by_root_search, "fixed point of one step's variance map by root search (mpmath, 50 digits)",
    rtol=1e-10))
# 10^5 chains resolve the variance to ~0.45% (standard error), enough to refute any gross
# slip by running the dynamics itself; KS tests the whole stationary law.
langevin_stationary_var.add_check(DistributionCheck(
    run_langevin_chains,
    lambda langevin_stationary_var: stats.norm(0.0, math.sqrt(langevin_stationary_var)),
    "final states of Langevin chains run step by step (to within 1e-5 of stationarity) vs "
    "N(0, v): KS, mean and variance",
    outputs=("langevin_stationary_var",), samples=100_000))

# --- the usual slips ------------------------------------------------------------------------

langevin_stationary_var.add_slip("scale**2", "no discretisation bias: the target's variance")
langevin_stationary_var.add_slip("scale**2 + eta/2", "the first-order bias only")
langevin_stationary_var.add_slip("scale**2/(1 - eta/scale**2)", "the factor 2 lost")
langevin_stationary_var.add_slip("scale/(1 - eta/(2*scale**2))", "the scale for the variance")


def draw_stationary_variance_against_eta(axes):
    """The unadjusted Langevin chain's stationary variance for N(0, 1) against its step size:
    the closed form and the variance of chains run to stationarity."""
    import numpy as np

    from symgen.formulas import langevin_stationary_var as stationary_var

    rng = np.random.default_rng(0)
    etas = np.linspace(0.05, 1.8, 200)
    axes.plot(etas, stationary_var(1.0, etas), label="stationary variance (closed form)")
    axes.axhline(1.0, color="gray", linestyle=":", label="target variance 1")
    for eta in np.linspace(0.1, 1.6, 8):
        x = np.zeros(50_000)
        for _ in range(400):
            x = x - eta * x + np.sqrt(2 * eta) * rng.standard_normal(x.size)
        axes.plot(eta, x.var(), "o", color="C1")
    axes.plot([], [], "o", color="C1", label="chains after 400 steps")
    axes.set_xlabel("step size eta")
    axes.set_ylabel("variance")
    axes.legend()


langevin_stationary_var.add_plot("Langevin stationary variance against the step size",
                                 draw_stationary_variance_against_eta)
