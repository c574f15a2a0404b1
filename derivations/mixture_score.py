"""The score of a two-component Gaussian mixture, stable far in the tails.

For the mixture p(x) = w N(x; loc1, scale1^2) + (1 - w) N(x; loc2, scale2^2) the score is
the responsibility-weighted average of the component scores,

    d/dx log p(x) = r1(x) s1(x) + r2(x) s2(x),    s_k(x) = -(x - loc_k)/scale_k^2,
    r1(x) = w N1(x) / (w N1(x) + (1 - w) N2(x)),  r2 = 1 - r1

(the responsibilities of Bishop 2006, Eq. 9.13; Wenliang & Kanagawa 2020, Lemma 1, write
this score down and show how little it depends on w near an isolated component, as Song &
Ermon 2019, Sec. 3.2.2, point out for Langevin sampling). Far in the tails both N_k
underflow to 0 in float64 (at x = 50 with scales 1e-2 their exponents are near -1e7) and
the responsibility is 0/0. As a logistic function of the log-odds,

    t(x) = log w - log(1 - w) + log N1(x) - log N2(x),    r1 = sigma(t) = 1/(1 + e^-t),

no density is formed; multiplying numerator and denominator by e^(-|t|/2) leaves the
exponents min(t, 0) and min(-t, 0), one of them exactly 0, so nothing overflows either.

Accuracy. The generated function is within 1e-12 (in practice a few ulps) of the 50-digit
value wherever the score is well conditioned. It is not everywhere: the score crosses zero
between the modes and near each mode, and where the responsibility switches between two
components of very different slopes it changes by orders of magnitude within a few ulps of
x. There no float64 evaluation from rounded inputs can do better than eps times the score's
condition number in its six arguments; at the points tried this one stays within half of
that, and the tests assert twice it.

Checks that do not use the closed form: Stein's identity E_p[s f + f'] = 0 (Hyvarinen 2005,
Theorem 1) by Monte Carlo on draws from the components, and a central difference of the
log of the mixture density at 80 digits with mpmath.
"""

import math

import mpmath
import numpy as np
import sympy as sp

from symgen.engine import (Controlled, Derivation, IdentityCheck, Interval, MeanCheck, Param, Positive, Real, lazy_module,
                           log_normal_pdf, sigmoid)

# SciPy is loaded when a check first runs, not when the module is imported.
special = lazy_module("scipy.special")

HYVARINEN = ("Hyvarinen (2005), Estimation of Non-Normalized Statistical Models by Score Matching, "
             "Sec. 2 (the score psi = grad_x log p) and Theorem 1 (integration by parts)")
SONG_ERMON = ("Song & Ermon (2019), Generative Modeling by Estimating Gradients of the Data "
              "Distribution, Sec. 3.2.2 (the score of a two-component mixture)")
WENLIANG = ("Wenliang & Kanagawa (2020), Blindness of score-based methods to isolated components and "
            "mixing proportions, Lemma 1 (the score of a 1-D Gaussian mixture)")
BISHOP = "Bishop (2006), Pattern Recognition and Machine Learning, Eq. 9.13 (responsibilities)"

x = sp.Symbol("x", real=True)
weight = sp.Symbol("weight", positive=True)
loc1, loc2 = sp.symbols("loc1 loc2", real=True)
scale1, scale2 = sp.symbols("scale1 scale2", positive=True)
y = sp.Symbol("y", real=True)          # the variable the log density is differentiated in

score_mixture = Derivation(
    "score_mixture",
    notation={"score_mixture": r"\nabla_{x} \log p(x)", "weight": r"\pi"},
    sections=(9,),
    title="Score of a two-component Gaussian mixture",
    summary="d/dx log(w N(x; loc1, scale1^2) + (1 - w) N(x; loc2, scale2^2)): the responsibility-weighted "
            "component scores, with the responsibility a sigmoid of the log-odds so that nothing "
            "underflows or overflows far in the tails.",
    kind="denoising/score",
    references=[HYVARINEN, SONG_ERMON, WENLIANG, BISHOP],
    params=[
        Param(x, Real(-50, 50), "where the score is evaluated"),
        Param(weight, Interval(0.0, 1.0), "weight w of the first component, in (0, 1)"),
        Param(loc1, Real(-10, 10), "mean of the first component"),
        Param(scale1, Positive(1e-2, 1e2), "standard deviation of the first component (not the variance)"),
        Param(loc2, Real(-10, 10), "mean of the second component"),
        Param(scale2, Positive(1e-2, 1e2), "standard deviation of the second component (not the variance)"),
    ],
    returns="the score, broadcast over the arguments",
)


# --- the chain ----------------------------------------------------------------------------


def component_score(at, loc, scale):
    return -(at - loc) / scale**2


def weighted_density(at, component_weight, loc, scale):
    """w_k N(at; loc_k, scale_k^2), written as one exponential of the log."""
    return component_weight * sp.exp(log_normal_pdf(at, loc, scale))


mixture_density = weighted_density(y, weight, loc1, scale1) + weighted_density(y, 1 - weight, loc2, scale2)
densities = (weighted_density(x, weight, loc1, scale1), weighted_density(x, 1 - weight, loc2, scale2))
responsibilities = tuple(density / (densities[0] + densities[1]) for density in densities)
scores = (component_score(x, loc1, scale1), component_score(x, loc2, scale2))
# The log-odds of the first component, log(w N1) - log((1 - w) N2): the 2 pi terms cancel.
log_odds = (sp.log(weight) - sp.log(1 - weight)
            + log_normal_pdf(x, loc1, scale1) - log_normal_pdf(x, loc2, scale2))
# e^(t (1 - sgn t)/2) = e^min(t, 0) and e^(-t (1 + sgn t)/2) = e^min(-t, 0). Written as products,
# SymPy keeps t whole: the printed code forms t once, and each exponent is exactly 0 for the
# likelier component and exactly -|t| for the other.
factors = (sp.exp(log_odds * (1 - sp.sign(log_odds)) / 2), sp.exp(-log_odds * (1 + sp.sign(log_odds)) / 2))

(score_mixture
 .define(sp.Subs(sp.Derivative(sp.log(mixture_density), y), y, x),
         "definition: the derivative of the log of the mixture density at x")
 .step(responsibilities[0] * scores[0] + responsibilities[1] * scores[1],
       "SymPy differentiates: d/dx log sum_k w_k N_k = sum_k w_k N_k s_k / sum_j w_j N_j, since "
       "N_k' = N_k s_k: the responsibilities r_k = w_k N_k / sum_j w_j N_j weight the component scores "
       "s_k = -(x - loc_k)/scale_k^2", published=True)
 .step(sigmoid(log_odds) * scores[0] + sigmoid(-log_odds) * scores[1],
       "divide numerator and denominator of r1 by w1 N1 and of r2 by w2 N2: r1 = sigma(t) and "
       "r2 = sigma(-t), logistic functions of the log-odds t = log w - log(1 - w) + log N1 - log N2")
 .stable((factors[0] * scores[0] + factors[1] * scores[1]) / (factors[0] + factors[1]),
         "sigma(t) = e^(t/2)/(e^(t/2) + e^(-t/2)); multiply numerator and denominator by e^(-|t|/2): the "
         "exponents become min(t, 0) and min(-t, 0), written t (1 - sgn t)/2 and -t (1 + sgn t)/2, both "
         "<= 0 and one of them 0, so nothing overflows, nothing is 0/0, and the denominator lies in [1, 2]"))


# --- empirical checks ---------------------------------------------------------------------


def stein_test_function(at, loc1, scale1, loc2, scale2):
    """f(x) = sum_k (1 + u_k) e^(-u_k^2/2), u_k = (x - loc_k)/scale_k: a bump on each component,
    of height ~1 in its own units. Its constant part sees a wrong constant in the score
    (E[f] > 0), its slope part a wrong slope or factor (E[f'] = sum_k w_k/(2^1.5 scale_k) when
    the components are apart). Being local, f is near 0 on the other component, whose score
    may be 10^4 times larger, so the draws there add little variance."""
    total = 0.0
    for loc, scale in ((loc1, scale1), (loc2, scale2)):
        standard = (at - loc) / scale
        total = total + (1 + standard) * np.exp(-standard**2 / 2)
    return total


def stein_terms(draws, formula, weight, loc1, scale1, loc2, scale2):
    """sum_k w_k (N_k/q)(s - s_k) f at the draws, q = (N1 + N2)/2, f = stein_test_function: its
    mean under q estimates E_p[s f + f'] for the mixture p = sum_k w_k N_k, which is 0 for the
    true score s (Stein's identity).

    Split by component, E_p[s f + f'] = sum_k w_k E_k[s f + f'], and from each part Stein's
    identity for the Gaussian N_k itself, E_k[s_k f + f'] = 0 with s_k = -(x - loc_k)/scale_k^2,
    is subtracted as a control variate: the k-th part becomes w_k E_k[(s - s_k) f], where f'
    cancels. Each part is estimated by importance sampling from q (weights N_k/q <= 2): drawn
    from N_k itself, the region where the other component takes over (a narrow component inside
    a wide one, or in its tail) is a rare event that carries the mean; under q it holds half of
    the draws. Summed at the same draw the parts are (f/q)(p s - p'), p' = sum_k w_k N_k s_k:
    0 at every draw for the true score, up to rounding, and for a wrong one the error p (s - s_true)
    weighted by f/q. Nothing here knows the mixture's score."""
    score = formula(x=draws, weight=weight, loc1=loc1, scale1=scale1, loc2=loc2, scale2=scale2)
    if not np.all(np.isfinite(score)):
        raise ValueError(f"the formula is not finite in float64 at {np.size(score) - np.isfinite(score).sum()} "
                         f"of {draws.size} draws (write it so that no exponential over- or underflows, "
                         f"e.g. with sigmoid(t))")
    bumps = stein_test_function(draws, loc1, scale1, loc2, scale2)
    total = np.zeros_like(draws)
    for own_weight, loc, scale, other_loc, other_scale in ((weight, loc1, scale1, loc2, scale2),
                                                           (1 - weight, loc2, scale2, loc1, scale1)):
        # N_k/q = 2/(1 + N_j/N_k), from the log densities so that nothing underflows (their
        # common constant log sqrt(2 pi) cancels).
        log_ratio = (((draws - loc) / scale) ** 2 - ((draws - other_loc) / other_scale) ** 2) / 2 \
            + math.log(scale / other_scale)
        importance = 2 * special.expit(-log_ratio)
        own_score = -(draws - loc) / scale**2
        total += own_weight * importance * (score - own_score) * bumps
    return total


def stein_mixture(rng, n, formula, x, weight, loc1, scale1, loc2, scale2):
    """n draws whose mean is E_q[stein_terms] / D, stratified: draw i averages the terms at one
    draw of each component, loc_k + scale_k z_ik (q gives the components equal shares), and
    comes back with its two normals z_i1, z_i2, whose Hermite polynomials are control variates
    (symgen/engine/controls.py): they remove most of the variance a wrong score leaves.

    D = sum_k w_k / scale_k, the size of the scores on the components' ground, is a constant of
    the point: the draws are 0 for the true score whatever it is, and in these units MeanCheck's
    rounding allowance (1e-12 of max(1, |draws|)) is relative to the scores the candidate
    computes rather than absolute. Without it a correct score written expanded, whose terms of
    1e5 round to 1e-11 (x = -50 with both components at N(-10, 0.01^2)), was refuted."""
    normals = rng.standard_normal((n, 2))
    arguments = (formula, weight, loc1, scale1, loc2, scale2)
    first = stein_terms(loc1 + scale1 * normals[:, 0], *arguments)
    second = stein_terms(loc2 + scale2 * normals[:, 1], *arguments)
    score_size = weight / scale1 + (1 - weight) / scale2
    return Controlled((first + second) / (2 * score_size), normals)


def log_mixture_density(at, weight, loc1, scale1, loc2, scale2):
    """log(w N1 + (1 - w) N2) in mpmath, whose exponent range means no density underflows."""
    return mpmath.log(weight * mpmath.npdf(at, loc1, scale1) + (1 - weight) * mpmath.npdf(at, loc2, scale2))


def finite_difference_mixture(x, weight, loc1, scale1, loc2, scale2):
    # Central difference at 80 digits with a step of 1e-25 of the smaller scale: the
    # truncation error (step^2/6 times the third derivative, at most ~2e18 on this domain)
    # is below 1e-36 and the rounding error (1e-80 of a log density up to 2e7, over the
    # step) below 1e-45, so this is exact for a float64 comparison.
    with mpmath.workdps(80):
        arguments = [mpmath.mpf(value) for value in (weight, loc1, scale1, loc2, scale2)]
        step = mpmath.mpf(10) ** -25 * min(arguments[2], arguments[4])
        centre = mpmath.mpf(x)
        forward = log_mixture_density(centre + step, *arguments)
        backward = log_mixture_density(centre - step, *arguments)
        return float((forward - backward) / (2 * step))


# False-alarm probability per evaluation: 1e-9 (ALPHA_PER_EVALUATION: batch-means t test, 399
# degrees of freedom). For the true score every draw is 0 up to rounding (see stein_terms), far
# inside MeanCheck's rounding allowance (1e-12 absolute; measured: at most ~1% of it), so there is
# no sampling noise to raise a false alarm, rare components or not. Power: the draws of a wrong
# score s + e are those of e alone, and the test refutes e when the mean of its terms, -E_p[e f]
# up to the control variates, stands past the threshold: for the score scaled by 1 + delta that
# is 43 to 170 thresholds at the fixed points with 2e5 draws, whatever delta above rounding
# (resolution ~1e-10 to 1e-14; without the stratification and the controls 2e6 draws resolved
# 0.5% to 2.6% at overlapping components). Every wrong variant of symgen.engine.mutants and the
# usual slips are refuted by this check alone.
score_mixture.add_check(MeanCheck(
    stein_mixture, "Stein's identity by stratified importance sampling, component Stein identities and "
    "Hermite polynomials as control variates",
    samples=200_000, batches=400, target=lambda **params: 0.0, applies_formula=True))
# Deterministic. The float64 function is within ~1e-12 of the exact score except where the
# score is ill-conditioned (near its zeros), where it is within eps times the condition number;
# 1e-9 relative plus 1e-9 absolute leaves room for that, and a 1% slip is 1e7 times larger.
score_mixture.add_check(IdentityCheck(
    finite_difference_mixture, "central difference of the mpmath mixture log density (80 digits)",
    rtol=1e-9, atol=1e-9))


# --- the usual slips ----------------------------------------------------------------------

# The log-odds of the first component in the argument names, and the slips written in the
# sigmoid form of the right answer, which stays finite in float64 on the Stein check's draws.
LOG_ODDS = ("log(weight) - log(1 - weight) - log(scale1) + log(scale2) - (x - loc1)**2/(2*scale1**2) "
            "+ (x - loc2)**2/(2*scale2**2)")
UNWEIGHTED = "- log(scale1) + log(scale2) - (x - loc1)**2/(2*scale1**2) + (x - loc2)**2/(2*scale2**2)"


def sigmoid_form(log_odds, first="-(x - loc1)/scale1**2", second="-(x - loc2)/scale2**2"):
    """The responsibility-weighted scores with r1 = sigmoid(log_odds), as a candidate string."""
    return f"({first})*sigmoid({log_odds}) + ({second})*sigmoid(-({log_odds}))"


score_mixture.add_slip(sigmoid_form(LOG_ODDS, "(x - loc1)/scale1**2", "(x - loc2)/scale2**2"), "sign flipped")
score_mixture.add_slip(sigmoid_form(LOG_ODDS, "-(x - loc1)", "-(x - loc2)"), "missing 1/scale^2")
score_mixture.add_slip("-(x - loc1)/(2*scale1**2) - (x - loc2)/(2*scale2**2)",
                       "unweighted average of the component scores")
score_mixture.add_slip(sigmoid_form(UNWEIGHTED), "responsibilities without the weights")
score_mixture.add_slip(sigmoid_form(f"-log(weight) + log(1 - weight) {UNWEIGHTED}"),
                       "weights on the wrong components")
score_mixture.add_slip(sigmoid_form("log(weight) - log(1 - weight) - (x - loc1)**2/(2*scale1**2) "
                                    "+ (x - loc2)**2/(2*scale2**2)"),
                       "densities without their 1/scale")
