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
(their Sec. 3.2). With the angle phi_t = pi/2 - (t/T + s)/(1 + s) pi/2 = c (T - t)/T,
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

from symgen.engine import (Derivation, DerivationError, IdentityCheck, Interval, Lemma, Param, Positive, minimum,
                           sin_product, special_function)

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
    return SIGNAL_ANGLE * (T - step) / T


def paper_cosine_level(step, steps, digits=60):
    """alpha_bar_step = f(step)/f(0), f(u) = cos^2((u/T + s)/(1 + s) pi/2), as Nichol & Dhariwal
    (2021, Eq. 17) write it, by mpmath (``step`` and ``steps`` are floats or mpf)."""
    with mpmath.workdps(digits):
        s = mpmath.mpf(8) / 1000
        f = lambda u: mpmath.cos((mpmath.mpf(u) / mpmath.mpf(steps) + s) / (1 + s) * mpmath.pi / 2) ** 2  # noqa: E731
        return f(step) / f(0)


def _as_mpf(number):
    return mpmath.mpf(sp.Float(number, 60)._mpf_)


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
    latex=r"\left.\frac{{\cos^{{2}}\left(\frac{{\frac{{{0}}}{{{1}}} + s}}{{1 + s}}\,\frac{{\pi}}{{2}}\right)}}"
          r"{{\cos^{{2}}\left(\frac{{s}}{{1 + s}}\,\frac{{\pi}}{{2}}\right)}}\right|_{{s = 0.008}}",
    text="(f({0})/f(0))",
    doc="alpha_bar at a step of the cosine schedule, f(step)/f(0) with f(u) = cos^2((u/T + s)/(1 + s) pi/2), "
        "s = 0.008 (Nichol & Dhariwal 2021, Eq. 17).")


diffusion_cosine_schedule = Derivation(
    "diffusion_cosine_schedule",
    sections=(7, 12),
    title="The cosine noise schedule: alpha_bar_t, the clipped beta_t and the signal-to-noise ratio",
    summary="alpha_bar_t = f(t)/f(0) with f(t) = cos^2((t/T + s)/(1 + s) pi/2), s = 0.008; "
            "beta_t = min(1 - alpha_bar_t/alpha_bar_{t-1}, 0.999); SNR = alpha_bar_t/(1 - alpha_bar_t); "
            "for steps 1 <= t <= T (a real t interpolates).",
    kind="denoising/score",
    references=[NICHOL + ", Eq. 17 (alpha_bar_t = f(t)/f(0), s = 0.008) and Sec. 3.2 (beta_t from "
                         "alpha_bar, clipped at 0.999)",
                KINGMA, DDPM + ", Eq. 4 (q(x_t | x_0) at alpha_bar_t = prod_{s<=t} (1 - beta_s))"],
    params=[
        # Steps are drawn log-uniformly from 1 to 4000, so both the first steps (1 - alpha_bar
        # tiny) and long schedules (T up to 4000, beta_t tiny) are reached; t near T (the
        # clip, alpha_bar -> 0) comes from the near pair below.
        Param(t, Positive(1.0, 4000.0), "the step t (1 <= t <= T; a real t interpolates)"),
        Param(T, Positive(1.0, 4000.0), "the number of steps T (>= 1)"),
    ],
    near=[(t, T)],
    requires=[(T >= 1, "argument 'T' must be >= 1 (a schedule has at least one step)"),
              (t >= 1, "argument 't' must be >= 1 (steps count from 1; t = 0 is the data)"),
              (t <= T, "argument 't' must be <= T (the schedule ends at step T)")],
)

phi_t, phi_prev = noise_angle(t), noise_angle(t - 1)
ANGLE_REASON = ("with phi_u = pi/2 - (u/T + s)/(1 + s) pi/2 = c (T - u)/T, c = pi/(2 (1 + s)): "
                "f(u) = cos^2(pi/2 - phi_u) = sin^2(phi_u) and f(0) = sin^2(c) (angle identity proved by SymPy)")

(diffusion_cosine_schedule
 .define(cosine_level(t, T), "definition (Nichol & Dhariwal 2021, Eq. 17): alpha_bar_t = f(t)/f(0), "
                            "f(u) = cos^2((u/T + s)/(1 + s) pi/2), s = 0.008", output="alpha_bar",
         doc="alpha_bar_t, the signal level after t steps")
 .step(sp.sin(phi_t) ** 2 / sp.sin(SIGNAL_ANGLE) ** 2,
       ANGLE_REASON + "; sin(phi_t) is accurate to the last step, where cos of an angle near pi/2 is not"))

(diffusion_cosine_schedule
 .define(minimum(1 - cosine_level(t, T) / cosine_level(t - 1, T), BETA_CLIP),
         "definition (Nichol & Dhariwal 2021, Sec. 3.2): beta_t = 1 - alpha_bar_t/alpha_bar_{t-1}, so that "
         "prod_s (1 - beta_s) = alpha_bar_t, clipped at 0.999 against the singularity at t = T",
         output="beta", doc="beta_t, the variance added at step t (at most 0.999)")
 .step(minimum(1 - sp.sin(phi_t) ** 2 / sp.sin(phi_prev) ** 2, BETA_CLIP), ANGLE_REASON)
 .step(minimum((sp.sin(phi_prev) ** 2 - sp.sin(phi_t) ** 2) / sp.sin(phi_prev) ** 2, BETA_CLIP),
       "over a common denominator")
 .stable(minimum(sin_product(SIGNAL_ANGLE * (2 * (T - t) + 1) / T, SIGNAL_ANGLE / T)
                 / sp.sin(phi_prev) ** 2, BETA_CLIP),
         "difference of squares, sin^2 a - sin^2 b = sin(a + b) sin(a - b) (proved by SymPy), with "
         "a + b = c (2 (T - t) + 1)/T and a - b = c/T formed directly: no cancellation for long schedules, "
         "where 1 - alpha_bar_t/alpha_bar_{t-1} keeps only about 1/(T beta_t) of the digits"))

(diffusion_cosine_schedule
 .define(cosine_level(t, T) / (1 - cosine_level(t, T)),
         "definition: SNR = alpha_bar/(1 - alpha_bar), the signal-to-noise ratio of x_t "
         "(Kingma et al. 2021, Eq. 2)", output="snr", doc="alpha_bar_t/(1 - alpha_bar_t)")
 .step(sp.sin(phi_t) ** 2 / (sp.sin(SIGNAL_ANGLE) ** 2 - sp.sin(phi_t) ** 2),
       ANGLE_REASON + "; multiply through by f(0)")
 .stable(sp.sin(phi_t) ** 2 / sin_product(SIGNAL_ANGLE * (2 * T - t) / T, SIGNAL_ANGLE * t / T),
         "difference of squares with c + phi_t = c (2T - t)/T and c - phi_t = c t/T formed directly: no "
         "cancellation at small t/T, where 1 - alpha_bar_t keeps only about t/T of the digits"))


# --- checks of the cosine schedule --------------------------------------------------------------


def paper_schedule(t, T):
    """alpha_bar_t, beta_t and SNR from the paper's formulas (cosines), by mpmath at 60 digits."""
    with mpmath.workdps(60):
        alpha_bar = paper_cosine_level(t, T)
        beta = min(1 - alpha_bar / paper_cosine_level(mpmath.mpf(t) - 1, T), mpmath.mpf(999) / 1000)
        return alpha_bar, beta, alpha_bar / (1 - alpha_bar)


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
    """t, t - 1, ..., t - n + 1 (n = floor(t)): the steps whose factors (1 - beta_s) the product
    check multiplies, exact in float64."""
    return t - np.arange(math.floor(t), dtype=np.float64)


def product_of_step_factors(beta, t, T):
    """prod_s (1 - beta_s) over :func:`steps_down_from` (t), each beta_s from ``beta``, the output's
    own function, run in NumPy as the exponential of a sum of log1p(-beta_s)."""
    grid = steps_down_from(t)
    betas = np.broadcast_to(np.asarray(beta(t=grid, T=T), dtype=np.float64), grid.shape)
    if not np.all(betas < 1):
        raise ValueError("a step variance beta_s >= 1 (or NaN) leaves no signal")
    return math.exp(float(np.sum(np.log1p(-betas))))


def paper_step_product(t, T):
    """What :func:`product_of_step_factors` should give, from the paper's cosines (mpmath, 30 digits):
    alpha_bar_t/alpha_bar_{t-n} wherever the clip is inactive (alpha_bar_t itself for a whole-number
    t, since alpha_bar_0 = 1); where it acts, the product of the paper's clipped factors
    max(f(s)/f(s - 1), 0.001)."""
    grid = steps_down_from(t)
    with mpmath.workdps(30):
        levels = [paper_cosine_level(value, T, digits=30) for value in (*grid, grid[-1] - 1)]
        factors = [level / previous for level, previous in zip(levels, levels[1:])]
        ceiling = 1 - mpmath.mpf(999) / 1000
        if all(1 - factor <= 1 - ceiling for factor in factors):
            return levels[0] / levels[-1]           # alpha_bar_t / alpha_bar_{t-n}
        return mpmath.fprod(max(factor, ceiling) for factor in factors)


# The defining property of beta: the product of (1 - beta_s) over the steps s = t, t - 1, ...,
# t - n + 1 (n = floor(t)), each beta_s from the output's own function, against the paper.
# Up to 4000 factors, each good to a few ulps (1 - beta near the clip keeps 13 digits of
# 0.001): ~1e-12 in all. rtol 1e-9 leaves room and is far below a 1% slip in any factor.
diffusion_cosine_schedule.add_check(IdentityCheck(
    paper_step_product,
    "beta: prod_s (1 - beta_s) over the steps down to t - floor(t), run in NumPy, against "
    "alpha_bar_t/alpha_bar_{t - floor(t)} from the paper (mpmath; clipped factors where the clip acts)",
    output="beta", rtol=1e-9, using=product_of_step_factors))

# --- the usual slips of the cosine schedule -------------------------------------------------------

# The paper's f as candidate strings, with s = 0.008 exact (a decimal 0.008 is a binary float,
# 1e-17 off, which shows near t = T where alpha_bar -> 0).
F_T = "cos(((t/T + 8/1000)/(1 + 8/1000))*pi/2)"
F_PREVIOUS = "cos((((t - 1)/T + 8/1000)/(1 + 8/1000))*pi/2)"
F_NEXT = "cos((((t + 1)/T + 8/1000)/(1 + 8/1000))*pi/2)"
F_0 = "cos((8/1000)/(1 + 8/1000)*pi/2)"
PAPER_ALPHA_BAR = f"({F_T}**2/{F_0}**2)"

diffusion_cosine_schedule.add_slip(f"{F_T}/{F_0}", "sqrt(alpha_bar) for alpha_bar", output="alpha_bar")
diffusion_cosine_schedule.add_slip(f"{F_T}**2", "the f(0) normalisation missing", output="alpha_bar")
diffusion_cosine_schedule.add_slip("cos(t/T*pi/2)**2", "the offset s missing", output="alpha_bar")
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


time = sp.Symbol("t", positive=True)
beta_min = sp.Symbol("beta_min", positive=True)
beta_max = sp.Symbol("beta_max", positive=True)
u = sp.Symbol("u", positive=True)                    # integration variable
rate = beta_min + u * (beta_max - beta_min)          # beta(u), the noise rate

diffusion_linear_schedule = Derivation(
    "diffusion_linear_schedule",
    sections=(7, 12),
    title="The linear noise schedule in continuous time: alpha_bar(t) and the signal-to-noise ratio",
    summary="alpha_bar(t) = exp(-int_0^t beta(u) du) for the noise rate beta(u) = beta_min + u (beta_max - "
            "beta_min), t in (0, 1]: the limit of DDPM's linear schedule (T steps of variance from beta_min/T "
            "to beta_max/T, step t T) as T grows; and SNR = alpha_bar/(1 - alpha_bar).",
    kind="denoising/score",
    references=[DDPM + ", Sec. 4 (beta_t linear from 1e-4 to 0.02, T = 1000) and Eq. 4",
                SONG + ", Eq. 11 (the VP SDE), App. B (the VP SDE as the limit of DDPM's chain) and "
                       "App. C (DDPM's betas as beta_i = beta_min/N + (i - 1)(beta_max - beta_min)/(N (N - 1)) "
                       "and their N -> infinity limit beta_min + t (beta_max - beta_min))",
                KINGMA],
    params=[
        Param(time, Interval(0.0, 1.0, high_closed=True, draw_low=1e-9), "time t in (0, 1] (DDPM's step t T)"),
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


def linear_by_quadrature(t, beta_min, beta_max):
    """(alpha_bar, SNR) from the integral of the noise rate, by mpmath quadrature at 40 digits."""
    with mpmath.workdps(40):
        low, high = mpmath.mpf(beta_min), mpmath.mpf(beta_max)
        integral = mpmath.quad(lambda v: low + v * (high - low), [0, mpmath.mpf(t)])
        alpha_bar = mpmath.exp(-integral)
        return alpha_bar, alpha_bar / (1 - alpha_bar)


# Levels of the Richardson table: N = 2^12 ... 2^16 steps. The log of the discrete product is a
# smooth function of 1/N (Stirling's series of the Gamma functions), so each level removes one
# power of 1/N; five leave less than 2e-14 of the limit (measured over the domain).
RICHARDSON_STEPS = tuple(2 ** (12 + level) for level in range(5))


def linear_by_ddpm_limit(t, beta_min, beta_max):
    """(alpha_bar, SNR) as the limit of DDPM's discrete schedule: the exact log-product of N steps of
    variance beta_i = beta_min/N + (i - 1)(beta_max - beta_min)/(N (N - 1)), up to step t N, from
    SymPy's product (Gamma functions, mpmath), Richardson-extrapolated to N -> infinity."""
    with mpmath.workdps(40):
        low, high, when = mpmath.mpf(beta_min), mpmath.mpf(beta_max), mpmath.mpf(t)
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

INTEGRAL = "(beta_min*t + (beta_max - beta_min)*t**2/2)"       # int_0^t beta, as a candidate string
diffusion_linear_schedule.add_slip("exp(-t*(beta_min + t*(beta_max - beta_min)))", "the 1/2 lost",
                                   output="alpha_bar")
diffusion_linear_schedule.add_slip(f"exp(-{INTEGRAL}/2)", "sqrt(alpha_bar) (the SDE's mean factor)",
                                   output="alpha_bar")
diffusion_linear_schedule.add_slip(f"expm1({INTEGRAL})", "SNR inverted", output="snr")
diffusion_linear_schedule.add_slip(f"exp(-{INTEGRAL})", "alpha_bar for the SNR", output="snr")
