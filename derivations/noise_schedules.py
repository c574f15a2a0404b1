"""Noise schedules: the cosine schedule, and the linear schedule in continuous time.

A noise schedule fixes, step by step, the signal level alpha_bar_t = prod_{s<=t} (1 - beta_s) of
the forward process q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, 1 - alpha_bar_t) (Ho et al. 2020,
Eq. 4), and with it the signal-to-noise ratio SNR = alpha_bar/(1 - alpha_bar) of x_t (Kingma et
al. 2021, Eq. 2: SNR(t) = alpha_t^2/sigma_t^2, here alpha_t^2 = alpha_bar and sigma_t^2 =
1 - alpha_bar). Theory notebook, sections 7 (the noising step at level alpha_bar) and 12 (the
denoising loss by timestep, which the schedule maps to noise levels).

The cosine schedule (Nichol & Dhariwal 2021, Eq. 17) states alpha_bar_t = f(t)/f(0) directly,
f(t) = cos^2((t/T + s)/(1 + s) pi/2) with s = 0.008, and takes the steps' variances from it,
beta_t = 1 - alpha_bar_t/alpha_bar_{t-1}, clipped at 0.999 against the singularity at t = T
(their Sec. 3.2). The clip changes the last level: the code that uses the schedule
(improved-diffusion's ``betas_for_alpha_bar`` and diffusers' alike) takes alpha_bar_t as the running
product of its (1 - beta_s), so alpha_bar_T = 0.001 alpha_bar_{T-1} (2.4287669e-9 at T = 1000), not
f(T)/f(0) = 0. Here alpha_bar_t is that product, step 0 is the data (alpha_bar_0 = 1, beta_0 = 0), and
the three outputs agree with each other at every 0 <= t <= T. With the angle phi_t = pi/2 - (t/T + s)/(1 + s) pi/2 = c (T - t)/T,
c = pi/(2 (1 + s)), f(t) = sin^2(phi_t); and the difference of squares
sin^2 a - sin^2 b = sin(a + b) sin(a - b) removes both cancellations of the textbook forms:
1 - alpha_bar_t/alpha_bar_{t-1} for many steps (phi_{t-1} - phi_t = c/T is tiny) and 1 - alpha_bar_t
at small t/T (c - phi_t = c t/T is tiny). SymPy proves these identities once for symbols
(``sin_product``), so the steps that use them are proved like any other.

The linear schedule (Ho et al. 2020, Sec. 4: beta_s rising linearly from 1e-4 to 0.02 over
T = 1000 steps) has no closed form that NumPy can evaluate. SymPy's product
(``linear_schedule_product``) gives prod_{i<n} (a - b i) = b^n Gamma(a/b + 1)/Gamma(a/b - n + 1),
a ratio of Gamma functions at arguments near 5e4: it needs a log-gamma, which NumPy lacks, and
the two log-gammas (~5e5 each) cancel to the O(10) result. So the discrete product is derived and
tested here but not shipped; what is shipped, ``diffusion_linear_schedule``, is its
continuous-time limit, the variance-preserving SDE's alpha_bar(t) = exp(-int_0^t beta(u) du) with
beta(u) = beta_min + u (beta_max - beta_min) (Song et al. 2021, Eq. 11 and Apps. B-C), which its
second check reaches from the discrete product itself: with N steps of variance
beta_i = beta_min/N + (i - 1)(beta_max - beta_min)/(N (N - 1)) (DDPM's schedule is N = 1000,
beta_min = 0.1, beta_max = 20), prod_{i <= t N} (1 - beta_i) -> alpha_bar(t) as N -> infinity.
At N = 1000 the two are not the same number: the discrete product is smaller by about
sum_i beta_i^2 / 2, 6.5% at the last step (the tests measure it). Use alpha_bar(t) for
continuous-time models; for DDPM's discrete steps, take the running product of (1 - beta_s).
"""
import functools
import math

import mpmath
import numpy as np
import sympy as sp
from sympy.codegen.cfunctions import expm1

from symgen.engine import (Count, Derivation, DerivationError, IdentityCheck, Interval, Lemma, Param, Positive, at_most,
                           maximum,
                           minimum, sin_product, special_function)

NICHOL = "Nichol & Dhariwal (2021), Improved Denoising Diffusion Probabilistic Models"
KINGMA = ("Kingma, Salimans, Poole & Ho (2021), Variational Diffusion Models, Eq. 2 (SNR(t) = alpha_t^2/sigma_t^2; "
          "alpha_t^2 = alpha_bar, sigma_t^2 = 1 - alpha_bar for a variance-preserving process)")
DDPM = "Ho, Jain & Abbeel (2020), Denoising Diffusion Probabilistic Models"
SONG = ("Song, Sohl-Dickstein, Kingma, Kumar, Ermon & Poole (2021), Score-Based Generative Modeling through "
        "Stochastic Differential Equations")

# The clip min(beta, 0.999) is the engine's ``minimum``: kept as it is in proofs, so SymPy proves
# a rewrite of the value inside it without deciding inequalities between trigonometric
# expressions. The difference of squares is the engine's ``sin_product``, whose lemma
# sin(a + b) sin(a - b) = sin^2 a - sin^2 b SymPy proves for symbols a and b (its simplifier
# proves it for symbols in a fraction of a second, but not for the schedule's angles, sums of
# multiples of pi, t/T and 1/T: hence the lemma).


# --- the cosine schedule ---------------------------------------------------------------------

t = sp.Symbol("t", positive=True)
T = sp.Symbol("T", positive=True)
COSINE_OFFSET = sp.Rational(1, 125)                  # s = 0.008 (Nichol & Dhariwal 2021)
# beta_t <= 0.999 (their Sec. 3.2). A Float, not the Rational 999/1000: the mutation harness would
# change a Rational constant and, seeing no difference at its six random points (the clip acts only
# within ~0.033 steps of T), call the changed clip equivalent; the checks (t near T is a near pair)
# refute it, and the clip's slips below (none, 0.9999) are refuted by name.
BETA_CLIP = sp.Float("0.999", 30)
SIGNAL_ANGLE = sp.pi / (2 * (1 + COSINE_OFFSET))     # c = pi/(2 (1 + s)): f(0) = sin^2(c)


def noise_angle(step):
    """phi_step = pi/2 - (step/T + s)/(1 + s) pi/2 = c (T - step)/T: how far the paper's cosine
    angle is from pi/2, where f vanishes; formed from T - step, exact near the end."""
    # The fraction (T - step)/T is formed first (kept so by UnevaluatedExpr; proofs evaluate it
    # away): at step 0 it is exactly 1, so phi_0 = c and alpha_bar_0 = 1 exactly, where c (T - 0)/T
    # rounds away from c for T = 3, 6, 11, ... and alpha_bar_0 came out 1 + 2e-16.
    return SIGNAL_ANGLE * sp.UnevaluatedExpr((T - step) / T)


def paper_cosine_level(step, steps, digits=60):
    """alpha_bar_step = f(step)/f(0), f(u) = cos^2((u/T + s)/(1 + s) pi/2), as Nichol & Dhariwal
    (2021, Eq. 17) write it, by mpmath (``step`` and ``steps`` are floats or mpf)."""
    with mpmath.workdps(digits):
        s = mpmath.mpf(8) / 1000
        f = lambda u: mpmath.cos((mpmath.mpf(u) / mpmath.mpf(steps) + s) / (1 + s) * mpmath.pi / 2) ** 2  # noqa: E731
        return f(step) / f(0)


def _as_mpf(number):
    return mpmath.mpf(sp.Float(sp.N(number, 60), 60)._mpf_)


# cos((x + s)/(1 + s) pi/2) = sin(c (1 - x)), x = step/T: the angles add up to pi/2 (a linear
# identity in the symbol x) and cos(pi/2 - y) = sin(y) for a symbol y.
step_fraction, angle = sp.symbols("x y", real=True)
COSINE_ANGLE = Lemma(
    "(t/T + s)/(1 + s) pi/2 = pi/2 - c (1 - t/T) and cos(pi/2 - y) = sin(y)",
    ((step_fraction + COSINE_OFFSET) / (1 + COSINE_OFFSET) * sp.pi / 2,
     sp.pi / 2 - SIGNAL_ANGLE * (1 - step_fraction)),
    (sp.cos(sp.pi / 2 - angle, evaluate=False), sp.sin(angle)))

# alpha_bar at ``step`` of the cosine schedule, f(step)/f(0), written as the paper writes it and
# kept unevaluated. It is evaluated two independent ways: symbolically, through the proved angle
# identity, as sin^2(phi_step)/sin^2(c); at numbers, from the paper's cosines by mpmath at 60
# digits, so a step's spot check compares two computations that share nothing.
cosine_level = special_function(
    "cosine_level", 2,
    meaning=lambda step, steps: sp.sin(SIGNAL_ANGLE * (steps - step) / steps) ** 2 / sp.sin(SIGNAL_ANGLE) ** 2,
    lemmas=[COSINE_ANGLE],
    numeric=lambda step, steps: sp.Float(paper_cosine_level(_as_mpf(step), _as_mpf(steps)), 55),
    mpmath=lambda step, steps: paper_cosine_level(step, steps, digits=mpmath.mp.dps),
    real=True,
    # Printed as the paper writes it, f(step)/f(0), f declared with the derivation's notation.
    latex=r"\frac{{f\left({0}\right)}}{{f(0)}}",
    text="(f({0})/f(0))",
    doc="alpha_bar at a step of the cosine schedule, f(step)/f(0) with f(u) = cos^2((u/T + s)/(1 + s) pi/2), "
        "s = 0.008 (Nichol & Dhariwal 2021, Eq. 17).")


diffusion_cosine_schedule = Derivation(
    "diffusion_cosine_schedule",
    sections=(7, 12),
    title="The cosine noise schedule: alpha_bar_t, the clipped beta_t and the signal-to-noise ratio",
    summary="beta_t = min(1 - f(t)/f(t-1), 0.999) with f(t) = cos^2((t/T + s)/(1 + s) pi/2), s = 0.008; "
            "alpha_bar_t = prod_{s<=t} (1 - beta_s) (= f(t)/f(0) until the clip acts at t = T); "
            "SNR = alpha_bar_t/(1 - alpha_bar_t); for steps 0 <= t <= T, step 0 the data (a real t "
            "interpolates).",
    kind="denoising/score",
    references=[NICHOL + ", Eq. 17 (alpha_bar_t = f(t)/f(0), s = 0.008) and Sec. 3.2 (beta_t from "
                         "alpha_bar, clipped at 0.999)",
                KINGMA, DDPM + ", Eq. 4 (q(x_t | x_0) at alpha_bar_t = prod_{s<=t} (1 - beta_s))"],
    params=[
        # Steps are drawn log-uniformly from 1e-3 to 4000, so both the first steps (1 - alpha_bar
        # tiny) and long schedules (T up to 4000, beta_t tiny) are reached; t near T (the
        # clip, alpha_bar -> 0) comes from the near pair below. t = 0 (the data: SNR is infinite)
        # is accepted but not drawn; tests/test_schedules.py covers it.
        Param(t, Positive(1e-3, 4000.0, zero_allowed=True), "the step t (0 <= t <= T; 0 is the data, "
                                                              "a real t interpolates)"),
        Param(T, Positive(1.0, 4000.0), "the number of steps T (>= 1)"),
    ],
    near=[(t, T)],
    infinite_at="the SNR at t = 0, the data",
    notation={"alpha_bar": r"\bar{\alpha}_{t}", "beta": r"\beta_{t}", "snr": r"\mathrm{SNR}(t)",
              # Nichol & Dhariwal (2021), Eq. 17.
              "f(u)": r"\cos^{2}\left(\frac{u/T + s}{1 + s} \cdot \frac{\pi}{2}\right), \quad s = 0.008"},
    requires=[(T >= 1, "argument 'T' must be >= 1 (a schedule has at least one step)"),
              (t <= T, "argument 't' must be <= T (the schedule ends at step T)")],
)

# The step before t, max(t - 1, 0): the level before step 1 is the data's, f(0)/f(0) = 1, so
# step 0 < t <= 1 takes its variance from the data. The clip never acts there but at t = T
# (for T > 1 every unclipped ratio f(t)/f(t - 1) with t <= T - 1 is above 1/4, sin being concave),
# so the level before t is always unclipped, f(max(t - 1, 0))/f(0).
previous_step = maximum(t - 1, 0)
phi_t, phi_prev = noise_angle(t), noise_angle(previous_step)
ANGLE_REASON = ("with phi_u = pi/2 - (u/T + s)/(1 + s) pi/2 = c (T - u)/T, c = pi/(2 (1 + s)): "
                "f(u) = cos^2(pi/2 - phi_u) = sin^2(phi_u) and f(0) = sin^2(c) (angle identity proved by SymPy)")
PREVIOUS = "t' = max(t - 1, 0), the step before t (the data, alpha_bar = 1, before step 1)"
# Where the clip acts, 1 - beta_t is 0.001 rather than f(t)/f(t'); alpha_bar_t = alpha_bar_{t'} (1 - beta_t)
# is then the unclipped level f(t)/f(0) plus what the clip adds, alpha_bar_{t'} max(0.001 - r, 0) with
# r = f(t)/f(t'). Written as that sum, 1 - alpha_bar_t keeps the exact difference of squares, and the
# clip's term is exact too (no 1 - (1 - beta) loses the digits of 0.001).
_ratio, _ceiling = sp.Symbol("r", real=True), sp.Symbol("c", positive=True)
CLIP_EXCESS = Lemma("1 - min(1 - r, c) - r = max(1 - c - r, 0)",
                    (1 - sp.Min(1 - _ratio, _ceiling) - _ratio, sp.Max(1 - _ceiling - _ratio, 0)))
clip_excess = special_function(
    "clip_excess", 2,
    meaning=lambda ratio, ceiling: 1 - minimum(1 - ratio, ceiling) - ratio,
    lemmas=[CLIP_EXCESS],
    derivative=lambda ratio, ceiling: (-at_most(ratio, 1 - ceiling), -at_most(ratio, 1 - ceiling)),
    mpmath=lambda ratio, ceiling: max(1 - ceiling - ratio, 0),
    numpy="numpy.maximum(1 - {1} - {0}, 0)", torch="torch.clamp(1 - {1} - {0}, min=0)",
    jax="jax.numpy.maximum(1 - {1} - {0}, 0)", real=True,
    latex=r"\max\left(1 - {1} - {0}, 0\right)", text="max(1 - {1} - {0}, 0)",
    doc="What a clip min(1 - r, c) of a step's variance adds to its kept fraction r: "
        "1 - min(1 - r, c) - r = max(1 - c - r, 0) (lemma proved by SymPy, case by case).")


def clipped_fraction(ratio):
    """1 - beta_t = 1 - min(1 - r, 0.999) for the unclipped ratio r = f(t)/f(t')."""
    return 1 - minimum(1 - ratio, BETA_CLIP)


level_ratio = cosine_level(t, T) / cosine_level(previous_step, T)
sine_ratio = sp.sin(phi_t) ** 2 / sp.sin(phi_prev) ** 2
excess = clip_excess(sine_ratio, BETA_CLIP)
# 1 - alpha_bar_t = (sin^2 c - sin^2 phi_t - sin^2 phi_{t'} max(0.001 - r, 0))/sin^2 c, the difference of
# squares formed directly (c + phi_t = c (2T - t)/T, c - phi_t = c t/T): exact at small t/T.
noise_level = (sin_product(SIGNAL_ANGLE * (2 * T - t) / T, SIGNAL_ANGLE * t / T)
               - sp.sin(phi_prev) ** 2 * excess) / sp.sin(SIGNAL_ANGLE) ** 2
# The stable branch of alpha_bar tests this noise level: its condition reads 1 - alpha_bar_t <= 1/2.
diffusion_cosine_schedule.notation[noise_level] = r"1 - \bar{\alpha}_{t}"

(diffusion_cosine_schedule
 .define(cosine_level(previous_step, T) * clipped_fraction(level_ratio),
         "definition: alpha_bar_t = alpha_bar_{t'} (1 - beta_t), the running product of the (1 - beta_s) "
         "(Ho et al. 2020, Eq. 4), as the code that uses the schedule computes it; alpha_bar_{t'} = f(t')/f(0), "
         "unclipped (the clip acts only at the last step); " + PREVIOUS,
         output="alpha_bar", doc="alpha_bar_t, the signal level after t steps (1 at t = 0)", published=True)
 .step(sp.sin(phi_prev) ** 2 / sp.sin(SIGNAL_ANGLE) ** 2 * clipped_fraction(sine_ratio), ANGLE_REASON)
 .step((sp.sin(phi_t) ** 2 + sp.sin(phi_prev) ** 2 * excess) / sp.sin(SIGNAL_ANGLE) ** 2,
       "1 - min(1 - r, 0.999) = r + max(0.001 - r, 0), r = f(t)/f(t') (lemma proved by SymPy): the unclipped "
       "level f(t)/f(0) plus what the clip adds, 0 except within 0.033 steps of T")
 .stable(sp.Piecewise((1 - noise_level, sp.UnevaluatedExpr(noise_level) <= sp.Rational(1, 2)),
                      ((sp.sin(phi_t) ** 2 + sp.sin(phi_prev) ** 2 * excess) / sp.sin(SIGNAL_ANGLE) ** 2, True)),
         "where alpha_bar_t >= 1/2, as 1 - (1 - alpha_bar_t), the noise level a difference of squares: exactly "
         "1 at t = 0 (a ratio sin^2 phi_0/sin^2 c of separately rounded sines can come out 1 + 2e-16), and "
         "no cancellation at small t/T"))

(diffusion_cosine_schedule
 .define(minimum(1 - level_ratio, BETA_CLIP),
         "definition (Nichol & Dhariwal 2021, Sec. 3.2): beta_t = 1 - alpha_bar_t/alpha_bar_{t-1} for the levels "
         "f(t)/f(0) of Eq. 17, clipped at 0.999 against the singularity at t = T; " + PREVIOUS,
         output="beta", doc="beta_t, the variance added at step t (at most 0.999; 0 at t = 0)", published=True)
 .step(minimum(1 - sine_ratio, BETA_CLIP), ANGLE_REASON)
 .step(minimum((sp.sin(phi_prev) ** 2 - sp.sin(phi_t) ** 2) / sp.sin(phi_prev) ** 2, BETA_CLIP),
       "over a common denominator")
 .stable(minimum(sin_product(SIGNAL_ANGLE * (2 * T - t - previous_step) / T,
                             SIGNAL_ANGLE * (t - previous_step) / T)
                 / sp.sin(phi_prev) ** 2, BETA_CLIP),
         "difference of squares, sin^2 a - sin^2 b = sin(a + b) sin(a - b) (proved by SymPy), with "
         "a + b = c (2T - t - t')/T and a - b = c (t - t')/T formed directly: no cancellation for long schedules, "
         "where 1 - alpha_bar_t/alpha_bar_{t-1} keeps only about 1/(T beta_t) of the digits"))

(diffusion_cosine_schedule
 .define(cosine_level(previous_step, T) * clipped_fraction(level_ratio)
         / (1 - cosine_level(previous_step, T) * clipped_fraction(level_ratio)),
         "definition: SNR = alpha_bar/(1 - alpha_bar), the signal-to-noise ratio of x_t "
         "(Kingma et al. 2021, Eq. 2), alpha_bar_t as above", output="snr",
         doc="alpha_bar_t/(1 - alpha_bar_t) (infinite at t = 0)", published=True)
 .step(sp.sin(phi_prev) ** 2 * clipped_fraction(sine_ratio)
       / (sp.sin(SIGNAL_ANGLE) ** 2 - sp.sin(phi_prev) ** 2 * clipped_fraction(sine_ratio)),
       ANGLE_REASON + "; multiply through by f(0)")
 .stable((sp.sin(phi_t) ** 2 / sp.sin(SIGNAL_ANGLE) ** 2 + sp.sin(phi_prev) ** 2 * excess / sp.sin(SIGNAL_ANGLE) ** 2)
         / noise_level,
         "the kept fraction as r + max(0.001 - r, 0) (lemma above), and the difference of squares "
         "sin^2 c - sin^2 phi_t with c + phi_t = c (2T - t)/T and c - phi_t = c t/T formed directly: no "
         "cancellation at small t/T, where 1 - alpha_bar_t keeps only about t/T of the digits"))


# --- checks of the cosine schedule --------------------------------------------------------------


def paper_schedule(t, T):
    """alpha_bar_t, beta_t and SNR from the paper's formulas (cosines), by mpmath at 60 digits, the
    levels chained as the code that uses the schedule chains them: beta_t = min(1 - f(t)/f(t'), 0.999)
    with t' = max(t - 1, 0), and alpha_bar_t = (f(t')/f(0)) (1 - beta_t)."""
    with mpmath.workdps(60):
        previous = paper_cosine_level(max(mpmath.mpf(t) - 1, 0), T)
        kept = max(paper_cosine_level(t, T) / previous, mpmath.mpf(1) / 1000)     # 1 - beta_t
        alpha_bar = previous * kept
        return alpha_bar, 1 - kept, alpha_bar / (1 - alpha_bar)


# Every check in this module is deterministic (mpmath routes, no sampling): its false-alarm
# probability is 0, within the engine's 1e-9 per evaluation, as long as each tolerance stays far
# above the worst error measured (the verify table shows 0.00 of the allowance used).
#
# Deterministic routes. The generated code is good to ~1e-13 (the sine of an angle near pi, in
# sin(a + b), is conditioned ~125); 1e-11 is far below any slip. At t = T the paper's cos(pi/2)
# evaluates to ~1e-61 at 60 digits (and a candidate's to ~1e-31 at its 30), not 0, so alpha_bar
# and SNR also get an absolute allowance of 1e-50: every nonzero alpha_bar of float steps is
# above 1e-33 (T - t is at least an ulp of T <= 4000).
for index, output in enumerate(("alpha_bar", "beta", "snr")):
    diffusion_cosine_schedule.add_check(IdentityCheck(
        lambda index=index, **point: float(paper_schedule(point["t"], point["T"])[index]),
        f"{output}: the paper's cosine formulas evaluated by mpmath at 60 digits",
        output=output, rtol=1e-11, atol=1e-50))


def steps_down_from(t):
    """t, t - 1, ..., t - floor(t) (the last in [0, 1): its level before is the data's, 1): the steps
    whose factors (1 - beta_s) multiply to alpha_bar_t, exact in float64."""
    return t - np.arange(math.floor(t) + 1, dtype=np.float64)


def product_of_step_factors(beta, t, T):
    """prod_s (1 - beta_s) over :func:`steps_down_from` (t), each beta_s from ``beta``, the output's
    own function, run in NumPy as the exponential of a sum of log1p(-beta_s)."""
    grid = steps_down_from(t)
    betas = np.broadcast_to(np.asarray(beta(t=grid, T=T), dtype=np.float64), grid.shape)
    if not np.all(betas < 1):
        raise ValueError("a step variance beta_s >= 1 (or NaN) leaves no signal")
    return math.exp(float(np.sum(np.log1p(-betas))))


# The defining property of beta: the product of (1 - beta_s) over the steps s = t, t - 1, ...,
# t - floor(t), each beta_s from the output's own function, is alpha_bar_t, here from the paper's
# cosines (clipped where the clip acts). Up to 4001 factors, each good to a few ulps (1 - beta near
# the clip keeps 13 digits of 0.001): ~1e-12 in all. rtol 1e-9 leaves room and is far below a 1% slip
# in any factor. tests/test_schedules.py also holds the function's own alpha_bar to this product at
# 1e-12 at every whole step.
diffusion_cosine_schedule.add_check(IdentityCheck(
    lambda t, T: float(paper_schedule(t, T)[0]),
    "beta: prod_s (1 - beta_s) over the steps t, t - 1, ..., t - floor(t), run in NumPy, against "
    "alpha_bar_t from the paper's cosines (mpmath; the clip where it acts)",
    output="beta", rtol=1e-9, using=product_of_step_factors))

# --- the usual slips of the cosine schedule -------------------------------------------------------

# The paper's f as candidate strings, with s = 0.008 exact (a decimal 0.008 is a binary float,
# 1e-17 off, which shows near t = T where alpha_bar -> 0).
F_T = "cos(((t/T + 8/1000)/(1 + 8/1000))*pi/2)"
F_PREVIOUS = "cos(((Max(t - 1, 0)/T + 8/1000)/(1 + 8/1000))*pi/2)"
F_NEXT = "cos((((t + 1)/T + 8/1000)/(1 + 8/1000))*pi/2)"
F_0 = "cos((8/1000)/(1 + 8/1000)*pi/2)"
PAPER_ALPHA_BAR = f"({F_T}**2/{F_0}**2)"

diffusion_cosine_schedule.add_slip(f"{F_T}/{F_0}", "sqrt(alpha_bar) for alpha_bar", output="alpha_bar")
diffusion_cosine_schedule.add_slip(f"{F_T}**2", "the f(0) normalisation missing", output="alpha_bar")
diffusion_cosine_schedule.add_slip("cos(t/T*pi/2)**2", "the offset s missing", output="alpha_bar")
diffusion_cosine_schedule.add_slip(PAPER_ALPHA_BAR, "f(t)/f(0) at every step: the clipped last step not chained "
                                   "(alpha_bar_T = 0, not 0.001 alpha_bar_{T-1})", output="alpha_bar")
diffusion_cosine_schedule.add_slip(f"1 - {F_T}**2/{F_PREVIOUS}**2", "no clip", output="beta")
diffusion_cosine_schedule.add_slip(f"Min(1 - {F_T}**2/{F_PREVIOUS}**2, 0.9999)", "a clip at 0.9999",
                                   output="beta")
diffusion_cosine_schedule.add_slip(f"Min(1 - {F_NEXT}**2/{F_T}**2, 0.999)", "the next step's beta", output="beta")
diffusion_cosine_schedule.add_slip(f"(1 - {PAPER_ALPHA_BAR})/{PAPER_ALPHA_BAR}", "SNR inverted", output="snr")
diffusion_cosine_schedule.add_slip(f"sqrt({PAPER_ALPHA_BAR})/sqrt(1 - {PAPER_ALPHA_BAR})", "a ratio of scales",
                                   output="snr")


# --- the linear schedule: DDPM's discrete product, and its continuous-time limit ----------------


@functools.cache
def linear_schedule_product():
    """The signal level after n steps of a linear schedule, prod_{i=1}^n (1 - beta_i), by SymPy.

    With 1 - beta_i = keep - step (i - 1) (keep = 1 - beta_1 and step = (beta_T - beta_1)/(T - 1) > 0,
    DDPM's rising variances), SymPy's ``product`` and simplifier give
    step^n Gamma(keep/step + 1)/Gamma(keep/step - n + 1); with 1 - beta_i = keep + step (i - 1)
    (falling variances), a form equal to step^n Gamma(keep/step + n)/Gamma(keep/step). Each is
    checked by induction: it is 1 for n = 0, and SymPy proves the ratio of successive products is
    the next factor. The Gamma forms also interpolate real n. Returns
    (n, keep, step, {"rising": ..., "falling": ...})."""
    n = sp.Symbol("n", integer=True, nonnegative=True)
    i = sp.Symbol("i", integer=True, positive=True)
    keep, step = sp.symbols("keep step", positive=True)
    forms = {}
    for name, factor in (("rising", keep - step * (i - 1)), ("falling", keep + step * (i - 1))):
        product = sp.simplify(sp.product(factor, (i, 1, n)).rewrite(sp.gamma))
        if product.subs(n, 0) != 1:
            raise DerivationError(f"linear schedule ({name} variances): the empty product is not 1")
        if sp.simplify(sp.gammasimp(product.subs(n, n + 1) / product) - factor.subs(i, n + 1)) != 0:
            raise DerivationError(f"linear schedule ({name} variances): the ratio of successive products "
                                  "is not the next factor")
        forms[name] = product
    return n, keep, step, forms


@functools.cache
def _log_product_functions():
    """log of each form of :func:`linear_schedule_product`, log Gamma as mpmath's loggamma."""
    n, keep, step, forms = linear_schedule_product()
    functions = {}
    for name, product in forms.items():
        log_form = sp.expand_log(sp.log(product), force=True).replace(
            lambda e: isinstance(e, sp.log) and isinstance(e.args[0], sp.gamma),
            lambda e: sp.loggamma(e.args[0].args[0]))
        functions[name] = sp.lambdify((n, keep, step), log_form, "mpmath")
    return functions


def log_linear_product(count, first, increment):
    """log prod_{i=1}^{count} (first - increment (i - 1)), from the Gamma-function forms SymPy
    derived (:func:`linear_schedule_product`), by mpmath; ``count`` may be any real >= 0."""
    if increment == 0:
        return count * mpmath.log(first)
    functions = _log_product_functions()
    if increment > 0:
        return functions["rising"](count, first, increment)
    return functions["falling"](count, first, -increment)


# --- DDPM's discrete linear schedule --------------------------------------------------------

step_count = sp.Symbol("t", integer=True, nonnegative=True)      # a whole step, 0 = the data
steps_total = sp.Symbol("T", integer=True, positive=True)
beta_start = sp.Symbol("beta_start", positive=True)
beta_end = sp.Symbol("beta_end", positive=True)
factor_index = sp.Symbol("s", integer=True, positive=True)


def linspace_beta(index):
    """beta_s = beta_start + (s - 1)(beta_end - beta_start)/(T - 1): numpy.linspace(beta_start, beta_end, T)
    at step s (DDPM's betas, Ho et al. 2020, Sec. 4)."""
    return beta_start + (index - 1) * (beta_end - beta_start) / (steps_total - 1)


def ddpm_product_mpmath(count, steps, first, last):
    """prod_{s<=count} (1 - beta_s) of DDPM's linspace betas, factor by factor at the working precision
    (the betas from the exact inputs, not their float64 linspace)."""
    count, steps = int(count), int(steps)
    first, last = mpmath.mpf(first), mpmath.mpf(last)
    return mpmath.fprod(1 - (first + (index - 1) * (last - first) / (steps - 1)) for index in range(1, count + 1))


def ddpm_product_at(digits, *arguments):
    """:func:`ddpm_product_mpmath` at SymPy numbers, with ``digits`` of working precision."""
    with mpmath.workdps(digits):
        return ddpm_product_mpmath(*(_as_mpf(argument) for argument in arguments))


def ddpm_product(count, steps, first, last):
    """prod_{s=1}^{count} (1 - beta_s) for the linspace betas, unevaluated."""
    return sp.Product(1 - (first + (factor_index - 1) * (last - first) / (steps - 1)), (factor_index, 1, count))


# alpha_bar_t in closed form: SymPy's product of the linear factors, a power times a rising factorial
# (a ratio of Gamma functions). Kept as a function of its own: its meaning, for proofs, is what SymPy's
# product gives; at numbers it is evaluated factor by factor (mpmath), so the spot checks and the 50-digit
# references never use the Gamma form, whose log-Gammas of ~5e5 cancel to the O(10) result.
ddpm_level = special_function(
    "ddpm_level", 4,
    meaning=lambda count, steps, first, last: ddpm_product(count, steps, first, last).doit(),
    numeric=lambda *arguments: sp.Float(ddpm_product_at(60, *arguments), 55),
    mpmath=ddpm_product_mpmath, real=True,
    latex=r"\left(-\delta\right)^{{{0}}} \left(\frac{{1 - \beta_{{\mathrm{{start}}}}}}{{-\delta}}\right)^{{({0})}}",
    text="(-d)^{0} rf((1 - beta_start)/(-d), {0})",
    doc="alpha_bar_t of DDPM's linear schedule, (-d)^t ((1 - beta_start)/(-d))^(t) (a rising factorial), "
        "d = (beta_end - beta_start)/(T - 1): the product of (1 - beta_s) over the first t linspace betas.")

diffusion_discrete_linear_schedule = Derivation(
    "diffusion_discrete_linear_schedule",
    notation={"alpha_bar": r"\bar{\alpha}_{t}", "beta": r"\beta_{t}", "snr": r"\mathrm{SNR}(t)"},
    sections=(7, 12),
    title="DDPM's discrete linear noise schedule: alpha_bar_t, beta_t and the signal-to-noise ratio",
    summary="betas = linspace(beta_start, beta_end, T) (DDPM: 1e-4 to 0.02, T = 1000); alpha_bar_t = "
            "prod_{s<=t} (1 - beta_s) exactly (summed in log space); SNR = alpha_bar/(1 - alpha_bar); "
            "whole steps 0 <= t <= T, step 0 the data.",
    kind="denoising/score",
    references=[DDPM + ", Sec. 4 (beta_t linear from 1e-4 to 0.02, T = 1000) and Eq. 4 (alpha_bar_t = "
                       "prod_{s<=t} (1 - beta_s))", KINGMA],
    params=[
        Param(step_count, Count(1, 1000, zero_allowed=True),
              "the step t, a whole number 0 <= t <= T (0 is the data: SNR infinite; not drawn, tested directly)"),
        Param(steps_total, Count(2, 1000), "the number of steps T, a whole number >= 2"),
        Param(beta_start, Positive(1e-5, 0.05), "the first step's variance beta_1, in (0, 1) (DDPM: 1e-4)"),
        Param(beta_end, Positive(1e-3, 0.5), "the last step's variance beta_T, in (0, 1) (DDPM: 0.02)"),
    ],
    requires=[(step_count <= steps_total, "argument 't' must be <= T (the schedule ends at step T)"),
              (beta_start < 1, "argument 'beta_start' must lie in (0.0, 1.0)"),
              (beta_end < 1, "argument 'beta_end' must lie in (0.0, 1.0)")],
    implementation="symgen.numerics.schedules:diffusion_discrete_linear_schedule",
    returns="(alpha_bar, beta, snr), broadcast over the arguments",
)

(diffusion_discrete_linear_schedule
 .define(ddpm_product(step_count, steps_total, beta_start, beta_end),
         "definition (Ho et al. 2020, Eq. 4): alpha_bar_t = prod_{s<=t} (1 - beta_s), with DDPM's betas "
         "beta_s = beta_start + (s - 1)(beta_end - beta_start)/(T - 1) (numpy.linspace); its closed form, a "
         "ratio of Gamma functions, is derived by linear_schedule_product below, but its log-Gammas of ~5e5 "
         "cancel to the O(10) result, so the product is summed in log space (symgen/numerics/schedules.py)",
         output="alpha_bar",
         doc="alpha_bar_t, the signal level after t steps (1 at t = 0)", published=True)
 .step(ddpm_level(step_count, steps_total, beta_start, beta_end),
       "SymPy's product of the linear factors 1 - beta_s = (1 - beta_start) - (s - 1) d, d = (beta_end - "
       "beta_start)/(T - 1): (-d)^t ((1 - beta_start)/(-d))^(t), a rising factorial, i.e. a ratio of Gamma "
       "functions"))
previous_product = ddpm_product(step_count - 1, steps_total, beta_start, beta_end)
current_product = ddpm_product(step_count, steps_total, beta_start, beta_end)
(diffusion_discrete_linear_schedule
 .define(sp.Piecewise((0, step_count < 1), (1 - current_product / previous_product, True)),
         "definition: beta_t = 1 - alpha_bar_t/alpha_bar_{t-1}, the variance step t adds (Ho et al. 2020, Eq. 2); "
         "0 at step 0 (no step)", output="beta", doc="beta_t, the variance added at step t")
 .step(sp.Piecewise((0, step_count < 1), (linspace_beta(step_count), True)),
       "the products differ by their last factor (SymPy): DDPM's beta_t, numpy.linspace(beta_start, beta_end, T) "
       "at step t"))
(diffusion_discrete_linear_schedule
 .define(current_product / (1 - current_product),
         "definition: SNR = alpha_bar/(1 - alpha_bar) (Kingma et al. 2021, Eq. 2), alpha_bar_t as above", output="snr",
         doc="alpha_bar_t/(1 - alpha_bar_t) (infinite at t = 0)", published=True)
 .step(ddpm_level(step_count, steps_total, beta_start, beta_end)
       / (1 - ddpm_level(step_count, steps_total, beta_start, beta_end)),
       "SymPy's product, as for alpha_bar; computed as alpha_bar/(-expm1(log alpha_bar)), no cancellation at "
       "small t"))


def ddpm_schedule_by_mpmath(t, T, beta_start, beta_end):
    """(alpha_bar, beta, SNR) from the betas and their product at 50 digits."""
    with mpmath.workdps(50):
        level = ddpm_product_mpmath(t, T, beta_start, beta_end)
        first, last = mpmath.mpf(beta_start), mpmath.mpf(beta_end)
        beta = first + (int(t) - 1) * (last - first) / (int(T) - 1) if t >= 1 else mpmath.mpf(0)
        return level, beta, level / (1 - level)


def numpy_running_product(beta, t, T, beta_start, beta_end):
    """numpy.cumprod(1 - betas) as DDPM's code computes alphas_cumprod, the betas from ``beta``, the
    output's own function at every step 1..t."""
    if t < 1:
        return 1.0
    steps = np.arange(1.0, t + 1)
    return float(np.prod(1 - np.asarray(beta(t=steps, T=T, beta_start=beta_start, beta_end=beta_end))))


# Deterministic: false-alarm probability 0. A product of up to 1000 factors in float64 is good to
# ~1e-13; 1e-10 is room, and far below any slip (the continuous-time limit is 1e-4 off at step 1).
for index, output in enumerate(("alpha_bar", "beta", "snr")):
    diffusion_discrete_linear_schedule.add_check(IdentityCheck(
        lambda index=index, **point: float(ddpm_schedule_by_mpmath(**point)[index]),
        f"{output}: the linspace betas and their product, factor by factor at 50 digits (mpmath)",
        output=output, rtol=1e-10, atol=1e-300))
diffusion_discrete_linear_schedule.add_check(IdentityCheck(
    lambda **point: float(ddpm_schedule_by_mpmath(**point)[0]),
    "beta: numpy.cumprod(1 - beta_s) of the output's own betas (DDPM's alphas_cumprod) against the "
    "50-digit product", output="beta", rtol=1e-10, using=numpy_running_product))

# The continuous-time limit (diffusion_linear_schedule's alpha_bar at time t/T with beta_min = T beta_start,
# beta_max = T beta_end): the slip the issue that asked for this schedule describes.
diffusion_discrete_linear_schedule.add_slip(
    "exp(-(beta_start*t + (beta_end - beta_start)*t**2/(2*T)))",
    "the continuous-time limit for the discrete product", output="alpha_bar")
diffusion_discrete_linear_schedule.add_slip(
    "beta_start + t*(beta_end - beta_start)/(T - 1)", "the next step's beta (s for s - 1)", output="beta")


time = sp.Symbol("time", positive=True)      # continuous time in [0, 1]; t is a step elsewhere
beta_min = sp.Symbol("beta_min", positive=True)
beta_max = sp.Symbol("beta_max", positive=True)
u = sp.Symbol("u", positive=True)                    # integration variable
rate = beta_min + u * (beta_max - beta_min)          # beta(u), the noise rate

diffusion_linear_schedule = Derivation(
    "diffusion_linear_schedule",
    notation={"alpha_bar": r"\bar{\alpha}(t)", "snr": r"\mathrm{SNR}(t)"},
    sections=(7, 12),
    title="The linear noise schedule in continuous time: alpha_bar(t) and the signal-to-noise ratio",
    summary="alpha_bar(t) = exp(-int_0^t beta(u) du) for the noise rate beta(u) = beta_min + u (beta_max - "
            "beta_min), time in [0, 1]: the limit of DDPM's linear schedule (T steps of variance from beta_min/T "
            "to beta_max/T, step t T) as T grows; and SNR = alpha_bar/(1 - alpha_bar).",
    kind="denoising/score",
    references=[DDPM + ", Sec. 4 (beta_t linear from 1e-4 to 0.02, T = 1000) and Eq. 4",
                SONG + ", Eq. 11 (the VP SDE), App. B (the VP SDE as the limit of DDPM's chain) and "
                       "App. C (DDPM's betas as beta_i = beta_min/N + (i - 1)(beta_max - beta_min)/(N (N - 1)) "
                       "and their N -> infinity limit beta_min + t (beta_max - beta_min))",
                KINGMA],
    infinite_at="the SNR at time 0, the data",
    params=[
        # time = 0 (the data: alpha_bar = 1, SNR infinite) is accepted, not drawn; tests/test_schedules.py.
        Param(time, Interval(0.0, 1.0, low_closed=True, high_closed=True, draw_low=1e-9),
              "time in [0, 1] (DDPM's step t T; 0 is the data)"),
        Param(beta_min, Positive(1e-2, 1.0), "noise rate at t = 0 (0.1 for DDPM: T beta_1 = 1000 x 1e-4)"),
        Param(beta_max, Positive(1.0, 30.0), "noise rate at t = 1 (20 for DDPM: T beta_T = 1000 x 0.02)"),
    ],
)
integrated_rate = time * (beta_min + time * (beta_max - beta_min) / 2)   # int_0^t beta, no cancellation
LIMIT = ("definition: the limit of prod_{i <= t N} (1 - beta_i) for N steps of variance beta_i = beta(i/N)/N "
         "(log(1 - beta_i) = -beta(i/N)/N + O(1/N^2), a Riemann sum): alpha_bar(t) = exp(-int_0^t beta(u) du)")
(diffusion_linear_schedule
 .define(sp.exp(-sp.Integral(rate, (u, 0, time))), LIMIT, output="alpha_bar",
         doc="alpha_bar(t), the signal level at time t")
 .step(sp.exp(-(beta_min * time + (beta_max - beta_min) * time**2 / 2)),
       "integrate the linear rate (SymPy): int_0^t beta = beta_min t + (beta_max - beta_min) t^2/2"))
(diffusion_linear_schedule
 .define(sp.exp(-sp.Integral(rate, (u, 0, time))) / (1 - sp.exp(-sp.Integral(rate, (u, 0, time)))),
         "definition: SNR = alpha_bar/(1 - alpha_bar) (Kingma et al. 2021, Eq. 2), alpha_bar as above",
         output="snr", doc="alpha_bar(t)/(1 - alpha_bar(t))")
 .step(1 / (sp.exp(beta_min * time + (beta_max - beta_min) * time**2 / 2) - 1),
       "integrate (SymPy) and divide through by alpha_bar")
 .stable(1 / expm1(integrated_rate),
         "expm1 of the integral written as t (beta_min + t (beta_max - beta_min)/2): exact at small t, "
         "where exp(int beta) - 1 cancels"))


def linear_by_quadrature(time, beta_min, beta_max):
    """(alpha_bar, SNR) from the integral of the noise rate, by mpmath quadrature at 40 digits."""
    with mpmath.workdps(40):
        low, high = mpmath.mpf(beta_min), mpmath.mpf(beta_max)
        integral = mpmath.quad(lambda v: low + v * (high - low), [0, mpmath.mpf(time)])
        alpha_bar = mpmath.exp(-integral)
        return alpha_bar, alpha_bar / (1 - alpha_bar)


# Levels of the Richardson table: N = 2^12 ... 2^16 steps. The log of the discrete product is a
# smooth function of 1/N (Stirling's series of the Gamma functions), so each level removes one
# power of 1/N; five leave less than 2e-14 of the limit (measured over the domain).
RICHARDSON_STEPS = tuple(2 ** (12 + level) for level in range(5))


def linear_by_ddpm_limit(time, beta_min, beta_max):
    """(alpha_bar, SNR) as the limit of DDPM's discrete schedule: the exact log-product of N steps of
    variance beta_i = beta_min/N + (i - 1)(beta_max - beta_min)/(N (N - 1)), up to step t N, from
    SymPy's product (Gamma functions, mpmath), Richardson-extrapolated to N -> infinity."""
    with mpmath.workdps(40):
        low, high, when = mpmath.mpf(beta_min), mpmath.mpf(beta_max), mpmath.mpf(time)
        column = [log_linear_product(when * steps, 1 - low / steps, (high - low) / (steps * (steps - 1)))
                  for steps in RICHARDSON_STEPS]
        for level in range(1, len(column)):
            column = [(2 ** level * finer - coarser) / (2 ** level - 1)
                      for coarser, finer in zip(column, column[1:])]
        log_level = column[0]
        return mpmath.exp(log_level), mpmath.exp(log_level) / -mpmath.expm1(log_level)


for index, output in enumerate(("alpha_bar", "snr")):
    # Quadrature of a linear rate is exact to the working precision: 1e-11 is room for the
    # generated code (a few ulps times the size of int beta, <= 31).
    diffusion_linear_schedule.add_check(IdentityCheck(
        lambda index=index, **point: float(linear_by_quadrature(**point)[index]),
        f"{output}: the integral of the noise rate by mpmath quadrature", output=output, rtol=1e-11))
    # The extrapolated limit is good to 2e-14; 1e-10 is far below any slip.
    diffusion_linear_schedule.add_check(IdentityCheck(
        lambda index=index, **point: float(linear_by_ddpm_limit(**point)[index]),
        f"{output}: DDPM's discrete product over N = 4096...65536 steps (SymPy's Gamma-function form), "
        "Richardson-extrapolated to N -> infinity", output=output, rtol=1e-10))


# --- the usual slips of the linear schedule ------------------------------------------------------

INTEGRAL = "(beta_min*time + (beta_max - beta_min)*time**2/2)"       # int_0^t beta, as a candidate string
diffusion_linear_schedule.add_slip("exp(-time*(beta_min + time*(beta_max - beta_min)))", "the 1/2 lost",
                                   output="alpha_bar")
diffusion_linear_schedule.add_slip(f"exp(-{INTEGRAL}/2)", "sqrt(alpha_bar) (the SDE's mean factor)",
                                   output="alpha_bar")
diffusion_linear_schedule.add_slip(f"expm1({INTEGRAL})", "SNR inverted", output="snr")
diffusion_linear_schedule.add_slip(f"exp(-{INTEGRAL})", "alpha_bar for the SNR", output="snr")
