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

from symgen.engine import Controlled, Derivation, IdentityCheck, MeanCheck, Param, Positive

scale = sp.Symbol("scale", positive=True)
eta = sp.Symbol("eta", positive=True)
v = sp.Symbol("v", positive=True)       # the unknown stationary variance

langevin_stationary_var = Derivation(
    "langevin_stationary_var",
    notation={"langevin_stationary_var": r"\mathrm{Var}_{\infty}[x]"},
    sections=(9,),
    title="Stationary variance of unadjusted Langevin dynamics on a Gaussian target",
    summary="The variance of the stationary law of x' = x + eta s(x) + sqrt(2 eta) xi for the target "
            "N(loc, scale^2), for steps 0 < eta < 2 scale^2 (the target's variance is scale^2).",
    kind="denoising/score",
    references=["Roberts & Tweedie (1996), Exponential convergence of Langevin distributions and "
                "their discrete approximations, Bernoulli 2(4)",
                "Song & Ermon (2019), Generative Modeling by Estimating Gradients of the Data Distribution"],
    params=[
        # Draws: target scales near 1 and steps eta/scale^2 >= 1/16, where a few Langevin steps
        # move a wrong variance by a good part of its error; any positive values are valid inputs.
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


# The root search is a deterministic route good to 50 digits; it carries the power against
# small slips (a 1% error is 1e8 times the tolerance) up to the stability edge.
langevin_stationary_var.add_check(IdentityCheck(
    fixed_point_by_root_search, "fixed point of one step's variance map by root search (mpmath, 50 digits)",
    rtol=1e-10))


#: Langevin steps run from the candidate's law. x_K is linear in the K + 1 normals it is built
#: from (the start and one per step), so x_K^2 - x_0^2 is a quadratic in them, which the
#: control variates (symgen/engine/controls.py) remove exactly: only rounding is left.
INVARIANCE_STEPS = 4


def langevin_steps(x, scale, eta, noises):
    """x after one step x' = x + eta s(x) + sqrt(2 eta) xi per row of ``noises``, on the target
    N(0, scale^2)."""
    for noise in noises:
        score = -x / scale**2                     # the target's score (score_normal)
        x = x + eta * score + math.sqrt(2 * eta) * noise
    return x


def second_moment_change(rng, n, formula, scale, eta):
    """((x_K^2 + x'_K^2)/2 - x_0^2) / v for n pairs of chains started at +-x_0 ~ N(0, v), v the
    output (the claimed stationary variance), after INVARIANCE_STEPS steps on the target
    N(0, scale^2) with the same noise: the relative change of the second moment; with the
    normals the chains were built from.

    Stationarity is the definition: a law is stationary when a step leaves it unchanged. The
    chain is linear, so the law stays N(0, .) and only its variance can move: after K steps from
    variance v it is v* - c^(2K) (v* - v), c = 1 - eta/scale^2, v* the stationary variance, and
    the mean here, (1 - c^(2K)) (v*/v - 1), is 0 for v = v* only. No chain needs to converge,
    so the check runs as fast at the stability edge (c -> -1) as anywhere, though there it sees
    little: an error delta of v moves the mean by (1 - c^(2K)) delta.

    Why this form. The pair's mirrored starts cancel the start-noise cross term of x_K^2 at every
    draw, so what a wrong v changes in the draws is their expected change, as MeanCheck's
    resolution assumes. Relative to v, the draws state their rounding on the scale MeanCheck
    allows for (1e-12): near the edge float64 cannot hold c to better than an ulp, and that alone
    moves E[x_K^2 - x_0^2] by ~2K eps v, which an absolute allowance would call an error."""
    variance = float(formula(scale=scale, eta=eta))
    normals = rng.standard_normal((n, INVARIANCE_STEPS + 1))
    start = math.sqrt(variance) * normals[:, 0]
    noises = normals[:, 1:].T
    ahead, mirrored = langevin_steps(start, scale, eta, noises), langevin_steps(-start, scale, eta, noises)
    return Controlled(((ahead * ahead + mirrored * mirrored) / 2 - start * start) / variance, normals)


# False alarms: 1e-9 per evaluation (ALPHA_PER_EVALUATION, batch-means t test with 399 degrees
# of freedom). Resolution: ~3e-12 of v where |c| = |1 - eta/scale^2| <= 15/16 (1 - c^8 >= 0.4),
# growing as ~1e-12 / (1 - c^8) towards the stability edge eta -> 2 scale^2 (14% at the edge
# points the runner tries), where the root search above resolves it instead. (Chains run to stationarity from the target, as before,
# resolved 3.8% with 1e5 chains and need ~1/(1 - c^2) steps: 1e16 at the edge.)
langevin_stationary_var.add_check(MeanCheck(
    second_moment_change, "N(0, v) is invariant under 4 Langevin steps run from it: mean relative "
    "change of x^2 is 0 (control variates)",
    samples=100_000, batches=400, target=lambda **params: 0.0, applies_formula=True))

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
