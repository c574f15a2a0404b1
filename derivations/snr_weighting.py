"""Signal-to-noise weighting of the denoising loss: Min-SNR-gamma, and zero terminal SNR.

Both act on the signal-to-noise ratio SNR = alpha_bar/(1 - alpha_bar) of x_t = sqrt(alpha_bar) x_0
+ sqrt(1 - alpha_bar) eps (Ho et al. 2020, Eq. 4; Kingma et al. 2021, Eq. 2), the quantity the
denoising loss by timestep is governed by (theory notebook, sections 7, 8 and 12).

Min-SNR-gamma (Hang et al. 2023) weighs the loss of each timestep so that, written as a loss on
the implied x_0, its weight is min(SNR, gamma). A network may predict eps, x_0 or v = sqrt(alpha_bar)
eps - sqrt(1 - alpha_bar) x_0 (Salimans & Ho 2022); each prediction implies the others through x_t,
and their errors are proportional: ||eps - eps_hat||^2 = SNR ||x_0 - x0_hat||^2 and ||v - v_hat||^2
= (SNR + 1) ||x_0 - x0_hat||^2 (SymPy proves both). So the plain eps loss is the x_0 loss weighted
by SNR, which Min-SNR-gamma clamps at gamma; and the weights on the eps and v losses that give
min(SNR, gamma) ||x_0 - x0_hat||^2 are min(SNR, gamma)/SNR and min(SNR, gamma)/(SNR + 1).

Zero terminal SNR (Lin, Liu, Li & Yang 2024, Algorithm 1) rescales a schedule so that its last
step is pure noise: sqrt(alpha_bar) is mapped by the affine function that keeps the first step's
value and sends the last step's to 0, and the schedule is read back from the squares.
"""
import functools
import math

import mpmath
import numpy as np
import sympy as sp

from symgen.engine import (Derivation, IdentityCheck, Interval, Lemma, Param, Positive, minimum,
                           special_function)

DDPM = "Ho, Jain & Abbeel (2020), Denoising Diffusion Probabilistic Models"
KINGMA = ("Kingma, Salimans, Poole & Ho (2021), Variational Diffusion Models, Eq. 2 (SNR = alpha_t^2/sigma_t^2; "
          "here alpha_t^2 = alpha_bar, sigma_t^2 = 1 - alpha_bar)")
HANG = "Hang, Gu, Li, Bao, Chen, Hu, Geng & Guo (2023), Efficient Diffusion Training via Min-SNR Weighting Strategy"
SALIMANS = ("Salimans & Ho (2022), Progressive Distillation for Fast Sampling of Diffusion Models "
            "(v = alpha_t eps - sigma_t x_0, and x_0 = alpha_t z_t - sigma_t v)")
LIN = ("Lin, Liu, Li & Yang (2024), Common Diffusion Noise Schedules and Sample Steps are Flawed (WACV; "
       "arXiv 2305.08891)")


# --- the errors of the three predictions, in units of the x_0 error --------------------------

level = sp.Symbol("alpha_bar", positive=True)          # alpha_bar in (0, 1), for the lemma
xt, eps, eps_hat = sp.symbols("x_t eps eps_hat", real=True)


def implied_clean(noise_value):
    """x_0 from x_t and a value of eps (DDPM Eq. 4 solved for x_0)."""
    return (xt - sp.sqrt(1 - level) * noise_value) / sp.sqrt(level)


def implied_velocity(noise_value):
    """v = sqrt(alpha_bar) eps - sqrt(1 - alpha_bar) x_0, with x_0 implied by the same eps."""
    return sp.sqrt(level) * noise_value - sp.sqrt(1 - level) * implied_clean(noise_value)


LEVEL_SNR = level / (1 - level)
x0_error = implied_clean(eps) - implied_clean(eps_hat)
ERRORS_IN_X0_UNITS = Lemma(
    "for x_t fixed and x_0, v implied by eps and by a prediction eps_hat: (eps - eps_hat)^2 = SNR (x_0 - x0_hat)^2 "
    "and (v - v_hat)^2 = (SNR + 1)(x_0 - x0_hat)^2, SNR = alpha_bar/(1 - alpha_bar)",
    ((eps - eps_hat) ** 2, LEVEL_SNR * x0_error**2),
    ((implied_velocity(eps) - implied_velocity(eps_hat)) ** 2, (LEVEL_SNR + 1) * x0_error**2))

# An arbitrary instance (x_0, eps, eps_hat) for the numeric route: the ratios do not depend on it.
INSTANCE = ("0.7", "1.3", "-0.45")


def error_ratio(signal_to_noise, target, digits=60):
    """||target - target_hat||^2/||x_0 - x0_hat||^2 at SNR ``signal_to_noise`` for the fixed
    INSTANCE, computed from its definitions (x_t, the implied x_0 and v) by mpmath: a route to the
    ratio that shares nothing with the lemma's algebra."""
    with mpmath.workdps(digits):
        snr_value = mpmath.mpf(signal_to_noise)
        signal, noise_share = snr_value / (1 + snr_value), 1 / (1 + snr_value)   # alpha_bar, 1 - alpha_bar
        clean, noise_true, noise_guess = (mpmath.mpf(value) for value in INSTANCE)
        noisy = mpmath.sqrt(signal) * clean + mpmath.sqrt(noise_share) * noise_true

        def clean_from(noise_value):
            return (noisy - mpmath.sqrt(noise_share) * noise_value) / mpmath.sqrt(signal)

        def velocity_from(noise_value):
            return mpmath.sqrt(signal) * noise_value - mpmath.sqrt(noise_share) * clean_from(noise_value)

        x0_error_value = (clean_from(noise_true) - clean_from(noise_guess)) ** 2
        if target == "eps":
            return (noise_true - noise_guess) ** 2 / x0_error_value
        return (velocity_from(noise_true) - velocity_from(noise_guess)) ** 2 / x0_error_value


def _ratio_function(name, target, meaning, symbol):
    return special_function(
        name, 1, meaning=meaning, lemmas=[ERRORS_IN_X0_UNITS],
        numeric=lambda value: sp.Float(error_ratio(sp.Float(value, 60), target), 55),
        mpmath=lambda value: error_ratio(value, target, digits=mpmath.mp.dps + 10),
        real=True,
        latex=r"\frac{{\|" + symbol + r" - \hat{{" + symbol + r"}}\|^{{2}}}}{{\|x_0 - \hat{{x}}_0\|^{{2}}}}"
              r"\Big|_{{\mathrm{{SNR}} = {0}}}",
        text=f"(|{target} - {target}_hat|^2/|x0 - x0_hat|^2 at SNR {{0}})",
        doc=f"||{target} - {target}_hat||^2/||x_0 - x0_hat||^2 for predictions that imply each other through x_t, "
            "at a signal-to-noise ratio.")


# ||eps - eps_hat||^2 and ||v - v_hat||^2 per unit of ||x_0 - x0_hat||^2, as functions of the SNR:
# SymPy gives SNR and SNR + 1 through the lemma; a numeric spot check computes the ratio from an
# instance by mpmath.
eps_error_ratio = _ratio_function("eps_error_ratio", "eps", lambda value: value, r"\epsilon")
v_error_ratio = _ratio_function("v_error_ratio", "v", lambda value: value + 1, "v")

snr = sp.Symbol("snr", positive=True)
gamma = sp.Symbol("gamma", positive=True)

diffusion_min_snr_weight = Derivation(
    "diffusion_min_snr_weight",
    notation={"eps": r"w_{\varepsilon}", "x0": r"w_{x_{0}}", "v": r"w_{v}"},
    sections=(8, 12),
    title="Min-SNR-gamma loss weights for eps, x_0 and v prediction",
    summary="The weight of each timestep's squared error under Min-SNR-gamma, for a network predicting eps, "
            "x_0 or v: min(SNR, gamma)/SNR, min(SNR, gamma) and min(SNR, gamma)/(SNR + 1), so that each weighted "
            "loss is min(SNR, gamma) ||x_0 - x0_hat||^2.",
    kind="denoising/score",
    references=[HANG + " (ICCV 2023; arXiv 2303.09556), Sec. 3.4 (the Min-SNR-gamma weight w_t = min{SNR(t), gamma} "
                       "of the x_0 loss) and Sec. 4.2 (the weight when the network predicts eps or v instead)",
                DDPM + ", Eq. 4 (x_t from x_0 and eps) and Eq. 14 (the eps loss)", SALIMANS, KINGMA],
    params=[
        Param(snr, Positive(1e-10, 1e10), "the signal-to-noise ratio alpha_bar/(1 - alpha_bar) of the timestep"),
        Param(gamma, Positive(1e-3, 1e3), "the clamp gamma (5 in Hang et al.)"),
    ],
    # The clamp's corner, SNR = gamma, where the branches meet.
    near=[(gamma, snr)],
    returns="the three weights, elementwise; multiply each per-example squared error by its weight",
)

CLAMP = ("Min-SNR-gamma (Hang et al. 2023, Sec. 3.4) weighs the x_0 error by min(SNR, gamma): the plain eps loss "
         "weighs it by the ratio ||eps - eps_hat||^2/||x_0 - x0_hat||^2, and the clamp caps that weight at gamma")
RATIOS = "the ratio is SNR (and SNR + 1 for v): lemma proved by SymPy from x_t = sqrt(alpha_bar) x_0 + " \
         "sqrt(1 - alpha_bar) eps and v = sqrt(alpha_bar) eps - sqrt(1 - alpha_bar) x_0"

(diffusion_min_snr_weight
 .define(minimum(eps_error_ratio(snr), gamma) / eps_error_ratio(snr),
         "definition: " + CLAMP + "; for a network predicting eps the weight w with w ||eps - eps_hat||^2 = "
         "min(SNR, gamma) ||x_0 - x0_hat||^2 is the clamped weight over that ratio", output="eps",
         doc="min(SNR, gamma)/SNR: the weight of ||eps - eps_hat||^2 (1 up to SNR = gamma, gamma/SNR above)")
 .step(minimum(snr, gamma) / snr, RATIOS))
(diffusion_min_snr_weight
 .define(minimum(eps_error_ratio(snr), gamma),
         "definition: " + CLAMP, output="x0",
         doc="min(SNR, gamma): the weight of ||x_0 - x0_hat||^2")
 .step(minimum(snr, gamma), RATIOS))
(diffusion_min_snr_weight
 .define(minimum(eps_error_ratio(snr), gamma) / v_error_ratio(snr),
         "definition: " + CLAMP + "; for a network predicting v the weight w with w ||v - v_hat||^2 = "
         "min(SNR, gamma) ||x_0 - x0_hat||^2 is the clamped weight over ||v - v_hat||^2/||x_0 - x0_hat||^2",
         output="v", doc="min(SNR, gamma)/(SNR + 1): the weight of ||v - v_hat||^2")
 .step(minimum(snr, gamma) / (snr + 1), RATIOS))
# No stable rewrite is needed: min(SNR, gamma)/SNR is SNR/SNR = 1 exactly below the clamp and one
# rounding of gamma/SNR above it, and SNR + 1 is a sum of positive terms.


# --- checks: simulated predictions ------------------------------------------------------------
#
# Deterministic routes (false-alarm probability 0): predictions of each kind are drawn at random,
# converted to the x_0 they imply as a network's output would be, and the loss weights read off
# the losses, at 50 digits. The identity is exact for every draw, so the tolerance only covers the
# candidate's own rounding; a slip anywhere on the domain is refuted.

COORDINATES = 16


def point_generator(*values):
    """A NumPy generator seeded by the bits of the point: the same draws at the same point."""
    seed = np.frombuffer(np.asarray(values, dtype=np.float64).tobytes(), dtype=np.uint32)
    return np.random.default_rng(seed.tolist())


def simulated_weight(snr, gamma, prediction):
    """The Min-SNR-gamma weight on the loss of a network predicting ``prediction`` ("eps", "x0"
    or "v"), from simulated data and predictions (mpmath, 50 digits):

    * eps: min(SNR, gamma) ||x_0 - x0_hat||^2/||eps - eps_hat||^2, x0_hat implied by eps_hat;
    * x0: min(||eps - eps_hat||^2/||x_0 - x0_hat||^2, gamma), the SNR weight the eps loss puts on
      the implied x_0 error, clamped;
    * v: min(SNR, gamma) ||x_0 - x0_hat||^2/||v - v_hat||^2, x0_hat = sqrt(alpha_bar) x_t -
      sqrt(1 - alpha_bar) v_hat (Salimans & Ho's conversion)."""
    draws = point_generator(snr, gamma).standard_normal((3, COORDINATES))
    with mpmath.workdps(50):
        snr_value, clamp = mpmath.mpf(snr), mpmath.mpf(gamma)
        signal, noise_share = snr_value / (1 + snr_value), 1 / (1 + snr_value)
        root_signal, root_noise = mpmath.sqrt(signal), mpmath.sqrt(noise_share)
        clean = [mpmath.mpf(value) for value in draws[0]]
        noise_values = [mpmath.mpf(value) for value in draws[1]]
        guesses = [mpmath.mpf(value) for value in draws[2]]
        noisy = [root_signal * a + root_noise * b for a, b in zip(clean, noise_values)]
        if prediction == "v":
            velocity = [root_signal * b - root_noise * a for a, b in zip(clean, noise_values)]
            implied = [root_signal * x - root_noise * guess for x, guess in zip(noisy, guesses)]
            own_loss = mpmath.fsum((a - b) ** 2 for a, b in zip(velocity, guesses))
        else:
            implied = [(x - root_noise * guess) / root_signal for x, guess in zip(noisy, guesses)]
            own_loss = mpmath.fsum((a - b) ** 2 for a, b in zip(noise_values, guesses))
        x0_loss = mpmath.fsum((a - b) ** 2 for a, b in zip(clean, implied))
        if prediction == "x0":
            return min(own_loss / x0_loss, clamp)
        return min(snr_value, clamp) * x0_loss / own_loss


for prediction, conversion in (("eps", "x0_hat implied by a random eps_hat"),
                               ("x0", "the SNR weight the eps loss puts on the implied x_0 error, clamped"),
                               ("v", "x0_hat = sqrt(alpha_bar) x_t - sqrt(1 - alpha_bar) v_hat for a random v_hat")):
    diffusion_min_snr_weight.add_check(IdentityCheck(
        lambda prediction=prediction, **point: simulated_weight(point["snr"], point["gamma"], prediction),
        f"{prediction}: the weight that makes the weighted loss min(SNR, gamma) ||x_0 - x0_hat||^2, from "
        f"simulated data and predictions ({conversion}), 50 digits", output=prediction, rtol=1e-12))

diffusion_min_snr_weight.add_slip("Min(snr, gamma)", "the x_0 weight min(SNR, gamma) on the eps loss", output="eps")
diffusion_min_snr_weight.add_slip("gamma/snr", "gamma/SNR without the clamp at 1", output="eps")
diffusion_min_snr_weight.add_slip("Min(snr, gamma)/snr", "the eps weight on the x_0 loss", output="x0")
diffusion_min_snr_weight.add_slip("Min(snr, gamma)/snr", "SNR for SNR + 1 in the v weight", output="v")
diffusion_min_snr_weight.add_slip("Min(snr + 1, gamma)/(snr + 1)", "SNR + 1 in the clamp as well as the divisor",
                                  output="v")



def draw_min_snr_weights(axes):
    """The three weights along DDPM's linear schedule, gamma = 5."""
    from symgen.formulas import diffusion_min_snr_weight as weights

    levels = np.cumprod(1 - np.linspace(1e-4, 0.02, 1000))
    steps = np.arange(1, 1001)
    found = weights(levels / (1 - levels), 5.0)
    for name, label in (("eps", "eps loss: min(SNR, 5)/SNR"), ("x0", "x_0 loss: min(SNR, 5)"),
                        ("v", "v loss: min(SNR, 5)/(SNR + 1)")):
        axes.semilogy(steps, getattr(found, name), label=label)
    axes.set_xlabel("timestep (DDPM linear schedule, 1000 steps)")
    axes.set_ylabel("Min-SNR-5 loss weight")
    axes.legend()


diffusion_min_snr_weight.add_plot("Min-SNR-5 weights along DDPM's schedule", draw_min_snr_weights)

# --- zero terminal SNR ------------------------------------------------------------------------

alpha_bar = sp.Symbol("alpha_bar", positive=True)
alpha_bar_first = sp.Symbol("alpha_bar_first", positive=True)
alpha_bar_last = sp.Symbol("alpha_bar_last", positive=True)
slope, offset = sp.symbols("k b", real=True)           # the affine map g(s) = k s + b, solved for

# Levels in (0, 1): draws stop 1e-12 short of 1, where the first step's SNR would be infinite, and start
# at 1e-300: a subnormal alpha_bar_T (5e-324) left two equal levels in the check's schedule through the
# point, whose Algorithm 1 then divides by 0 (found by hypothesis 6.170 in CI).
LEVEL = Interval(0.0, 1.0, draw_low=1e-300, draw_high=1 - 1e-12)

diffusion_zero_terminal_snr = Derivation(
    "diffusion_zero_terminal_snr",
    notation={"alpha_bar": r"\bar{\alpha}'", "snr": r"\mathrm{SNR}'"},
    sections=(7, 12),
    title="A noise schedule rescaled to zero terminal SNR",
    summary="alpha_bar and the SNR at one step after Lin et al.'s rescaling: sqrt(alpha_bar) shifted and scaled "
            "so that the last step's becomes 0 (pure noise) and the first step's is unchanged, given the "
            "schedule's first and last levels alpha_bar_1 and alpha_bar_T.",
    kind="denoising/score",
    references=[LIN + ", Algorithm 1 (rescale the schedule's sqrt(alpha_bar) to zero terminal SNR) and Sec. 3.1",
                DDPM + ", Eq. 4 (x_t at alpha_bar_t)", KINGMA],
    params=[
        Param(alpha_bar, LEVEL, "alpha_bar_t of the original schedule at the step (alpha_bar_T <= it <= alpha_bar_1)"),
        Param(alpha_bar_first, LEVEL, "alpha_bar_1, the original schedule's first (largest) level"),
        Param(alpha_bar_last, LEVEL, "alpha_bar_T, the original schedule's last (smallest) level"),
    ],
    # The last steps (alpha_bar near alpha_bar_T: sqrt(alpha_bar) - sqrt(alpha_bar_T) cancels) and the
    # first (alpha_bar near alpha_bar_1: 1 - alpha_bar' is small when alpha_bar_1 is near 1).
    near=[(alpha_bar, alpha_bar_last), (alpha_bar, alpha_bar_first)],
    requires=[(alpha_bar >= alpha_bar_last, "argument 'alpha_bar' must be >= alpha_bar_last (the last step has "
                                            "the least signal)"),
              (alpha_bar <= alpha_bar_first, "argument 'alpha_bar' must be <= alpha_bar_first (the first step has "
                                             "the most signal)"),
              (alpha_bar_last < alpha_bar_first, "argument 'alpha_bar_last' must be < alpha_bar_first (a schedule "
                                                 "adds noise)")],
    returns="the rescaled alpha_bar and its SNR, elementwise (0 at the last step)",
)

root, root_first, root_last = sp.sqrt(alpha_bar), sp.sqrt(alpha_bar_first), sp.sqrt(alpha_bar_last)


@functools.cache
def rescaling_map():
    """(k, b) of the affine g(s) = k s + b with g(sqrt(alpha_bar_1)) = sqrt(alpha_bar_1) and
    g(sqrt(alpha_bar_T)) = 0, by SymPy's solve (when the derivation is derived)."""
    (solution,) = sp.solve([sp.Eq(slope * root_first + offset, root_first), sp.Eq(slope * root_last + offset, 0)],
                           [slope, offset], dict=True)
    return solution[slope], solution[offset]


def rescaled_root():
    """g(sqrt(alpha_bar)), the rescaled sqrt(alpha_bar)."""
    k, b = rescaling_map()
    return k * root + b


AFFINE = ("definition (Lin et al. 2024, Algorithm 1): sqrt(alpha_bar) is mapped by the affine g(s) = k s + b "
          "that keeps the first step, g(sqrt(alpha_bar_1)) = sqrt(alpha_bar_1), and makes the last pure noise, "
          "g(sqrt(alpha_bar_T)) = 0 (k and b solved by SymPy)")
paper_root = (root - root_last) * root_first / (root_first - root_last)
# The stable pieces. sqrt(u) - sqrt(w) = (u - w)/(sqrt(u) + sqrt(w)): the difference of the levels
# themselves (a subtraction of the inputs, exact where they are within a factor 2 of each other,
# which is where the difference of their rounded square roots cancels) instead. With
# D = (sqrt(alpha_bar_1) + sqrt(alpha_bar_T))/(alpha_bar_1 - alpha_bar_T) = 1/(sqrt(alpha_bar_1) - sqrt(alpha_bar_T)):
#   q = g(sqrt(alpha_bar)) = sqrt(alpha_bar_1) D (alpha_bar - alpha_bar_T)/(sqrt(alpha_bar) + sqrt(alpha_bar_T)),
#   1 - q = (1 - sqrt(alpha_bar_1)) + sqrt(alpha_bar_1) D (sqrt(alpha_bar_1) - sqrt(alpha_bar))
#         = (1 - alpha_bar_1)/(1 + sqrt(alpha_bar_1)) + sqrt(alpha_bar_1) D (alpha_bar_1 - alpha_bar)/(sqrt(alpha_bar_1)
#           + sqrt(alpha_bar)),
# a sum of two terms >= 0: no cancellation where q -> 1 (the first steps, alpha_bar_1 near 1).
spread = (root_first + root_last) / (alpha_bar_first - alpha_bar_last)
stable_root = root_first * spread * (alpha_bar - alpha_bar_last) / (root + root_last)
stable_gap = ((1 - alpha_bar_first) / (1 + root_first)
              + root_first * spread * (alpha_bar_first - alpha_bar) / (root_first + root))
DIFFERENCES = ("sqrt(u) - sqrt(w) = (u - w)/(sqrt(u) + sqrt(w)) for every difference of square roots: the levels' own "
               "difference, exact in floating point where sqrt(alpha_bar) - sqrt(alpha_bar_T) cancels (the last "
               "steps)")

(diffusion_zero_terminal_snr
 .define(lambda: rescaled_root() ** 2, AFFINE + "; the rescaled level is g(sqrt(alpha_bar))^2", output="alpha_bar",
         doc="the rescaled alpha_bar_t: alpha_bar_1 at the first step, 0 at the last")
 .step(paper_root**2, "Algorithm 1: shift sqrt(alpha_bar) by sqrt(alpha_bar_T), scale by sqrt(alpha_bar_1)/("
                      "sqrt(alpha_bar_1) - sqrt(alpha_bar_T)), square")
 .stable(sp.UnevaluatedExpr(stable_root) ** 2, DIFFERENCES))
kept_root = sp.UnevaluatedExpr(stable_root)
(diffusion_zero_terminal_snr
 .define(lambda: rescaled_root() ** 2 / (1 - rescaled_root() ** 2),
         AFFINE + "; SNR = alpha_bar'/(1 - alpha_bar') of the rescaled level (Kingma et al. 2021, Eq. 2)",
         output="snr", doc="the rescaled SNR: exactly 0 at the last step, unchanged at the first")
 .step(paper_root**2 / (1 - paper_root**2), "Algorithm 1's rescaled level")
 .stable(kept_root**2 / (stable_gap * (1 + kept_root)),
         DIFFERENCES + "; 1 - alpha_bar' = (1 - q)(1 + q), q = g(sqrt(alpha_bar)), with 1 - q = "
         "(1 - sqrt(alpha_bar_1)) "
         "+ sqrt(alpha_bar_1)(sqrt(alpha_bar_1) - sqrt(alpha_bar))/(sqrt(alpha_bar_1) - sqrt(alpha_bar_T)), two terms "
         ">= 0, each difference of square roots rewritten the same way: no cancellation where alpha_bar' -> 1"))



# --- checks of the rescaled schedule ----------------------------------------------------------
#
# Deterministic routes (false-alarm probability 0). Both endpoints are among the points every
# check is evaluated at (the runner puts alpha_bar on each requirement's boundary: alpha_bar =
# alpha_bar_T, where the SNR must be exactly 0, and alpha_bar = alpha_bar_1, where the level must
# be unchanged), so the checks see them too.

STEPS = 1000
DIGITS = 80


def schedule_through(alpha_bar, alpha_bar_first, alpha_bar_last, steps=STEPS):
    """(betas, k): the betas of a ``steps``-step schedule whose alphas_cumprod is geometric between
    its entries 0, k and -1, which are alpha_bar_first, alpha_bar and alpha_bar_last (k placed by
    log-level), as mpmath numbers at DIGITS digits (beta_t = 1 - alpha_bar_t/alpha_bar_{t-1})."""
    if alpha_bar == alpha_bar_first:
        index = 0
    elif alpha_bar == alpha_bar_last:
        index = steps - 1
    else:
        fraction = math.log(alpha_bar_first / alpha_bar) / math.log(alpha_bar_first / alpha_bar_last)
        index = min(max(round(fraction * (steps - 1)), 1), steps - 2)
    with mpmath.workdps(DIGITS):
        first, level, last = (mpmath.mpf(value) for value in (alpha_bar_first, alpha_bar, alpha_bar_last))
        levels = ([first * (level / first) ** (mpmath.mpf(i) / index) for i in range(index)]
                  + [level * (last / level) ** (mpmath.mpf(i) / (steps - 1 - index)) for i in range(steps - 1 - index)]
                  + [last])
        levels[index] = level
        ratios = [levels[0]] + [current / previous for previous, current in zip(levels, levels[1:])]
        return np.array([1 - ratio for ratio in ratios], dtype=object), index


def algorithm_1(betas):
    """Lin et al.'s Algorithm 1, line by line, on NumPy arrays (of mpmath numbers here: the arithmetic
    is the paper's, the precision DIGITS digits): alphas_cumprod by cumprod, their square roots
    shifted by the last and scaled by first/(first - last), squared; returned with the betas it
    gives back (alpha_1 = alpha_bar_1, alpha_t = alpha_bar_t/alpha_bar_{t-1})."""
    with mpmath.workdps(DIGITS):
        alphas = 1 - betas
        alphas_bar = np.cumprod(alphas)
        alphas_bar_sqrt = np.frompyfunc(mpmath.sqrt, 1, 1)(alphas_bar)
        first, last = alphas_bar_sqrt[0], alphas_bar_sqrt[-1]
        alphas_bar_sqrt = alphas_bar_sqrt - last
        alphas_bar_sqrt = alphas_bar_sqrt * (first / (first - last))
        alphas_bar = alphas_bar_sqrt**2
        alphas = np.concatenate([alphas_bar[:1], alphas_bar[1:] / alphas_bar[:-1]])
        return alphas_bar, 1 - alphas


@functools.lru_cache(maxsize=256)
def algorithm_1_at(alpha_bar, alpha_bar_first, alpha_bar_last):
    """(alpha_bar', SNR') at the point, from Algorithm 1 run on a whole schedule through it."""
    betas, index = schedule_through(alpha_bar, alpha_bar_first, alpha_bar_last)
    rescaled, _ = algorithm_1(betas)
    with mpmath.workdps(DIGITS):
        return rescaled[index], rescaled[index] / (1 - rescaled[index])


def affine_map_by_linear_solve(alpha_bar, alpha_bar_first, alpha_bar_last):
    """(alpha_bar', SNR') at DIGITS digits: the two conditions g(sqrt(alpha_bar_1)) = sqrt(alpha_bar_1),
    g(sqrt(alpha_bar_T)) = 0 on g(s) = k s + b solved as a linear system (mpmath LU), g applied to
    sqrt(alpha_bar) and squared."""
    with mpmath.workdps(DIGITS):
        level, first, last = (mpmath.mpf(value) for value in (alpha_bar, alpha_bar_first, alpha_bar_last))
        system = mpmath.matrix([[mpmath.sqrt(first), 1], [mpmath.sqrt(last), 1]])
        k, b = mpmath.lu_solve(system, mpmath.matrix([mpmath.sqrt(first), 0]))
        rescaled = (k * mpmath.sqrt(level) + b) ** 2
        return rescaled, rescaled / (1 - rescaled)


# 80 digits leave more than 40 after the worst cancellations of the domain (the linear system is
# near-singular for alpha_bar_1 near alpha_bar_T; sqrt(alpha_bar) - sqrt(alpha_bar_T) cancels near the
# last step; the schedule's cumprod reproduces its levels to ~1e-77). At alpha_bar = alpha_bar_T a
# route's residue (< 1e-60) is below atol, which is below every nonzero value floats allow (> 1e-45).
# 1e-10 is far below any slip.
for index, output in enumerate(("alpha_bar", "snr")):
    diffusion_zero_terminal_snr.add_check(IdentityCheck(
        lambda index=index, **point: algorithm_1_at(point["alpha_bar"], point["alpha_bar_first"],
                                                    point["alpha_bar_last"])[index],
        f"{output}: Lin et al.'s Algorithm 1 line by line on a {STEPS}-step schedule through the point (its betas, "
        f"cumprod, square roots shifted and scaled, squared; NumPy arrays of {DIGITS}-digit mpmath numbers)"
        + (", SNR = alpha_bar'/(1 - alpha_bar')" if output == "snr" else ""),
        output=output, rtol=1e-10, atol=1e-60))
    diffusion_zero_terminal_snr.add_check(IdentityCheck(
        lambda index=index, **point: affine_map_by_linear_solve(**point)[index],
        f"{output}: the affine map's two conditions solved as a linear system (mpmath LU, {DIGITS} digits), "
        "applied to sqrt(alpha_bar)", output=output, rtol=1e-10, atol=1e-60))

ROOT_SHIFT = "(sqrt(alpha_bar) - sqrt(alpha_bar_last))"
ROOT_SCALE = "sqrt(alpha_bar_first)/(sqrt(alpha_bar_first) - sqrt(alpha_bar_last))"
diffusion_zero_terminal_snr.add_slip("alpha_bar_first*(alpha_bar - alpha_bar_last)/(alpha_bar_first - alpha_bar_last)",
                                     "alpha_bar shifted and scaled instead of sqrt(alpha_bar)", output="alpha_bar")
diffusion_zero_terminal_snr.add_slip(f"{ROOT_SHIFT}**2", "shifted, not rescaled", output="alpha_bar")
diffusion_zero_terminal_snr.add_slip(f"{ROOT_SHIFT}*{ROOT_SCALE}", "the rescaled sqrt(alpha_bar), not squared",
                                     output="alpha_bar")
diffusion_zero_terminal_snr.add_slip("alpha_bar/(1 - alpha_bar)", "the SNR of the original level", output="snr")
diffusion_zero_terminal_snr.add_slip(f"({ROOT_SHIFT}*{ROOT_SCALE})**2", "the rescaled level for its SNR",
                                     output="snr")


def draw_rescaled_ddpm(axes):
    """log SNR of DDPM's linear schedule (T = 1000), before and after the rescaling."""
    from symgen.formulas import diffusion_zero_terminal_snr as rescale

    levels = np.cumprod(1 - np.linspace(1e-4, 0.02, STEPS))
    steps = np.arange(1, STEPS + 1)
    rescaled = rescale(levels, levels[0], levels[-1])
    with np.errstate(divide="ignore"):
        axes.plot(steps, np.log(levels / (1 - levels)), label="DDPM linear schedule")
        axes.plot(steps, np.log(rescaled.snr), label="rescaled to zero terminal SNR")
    axes.set_xlabel("timestep")
    axes.set_ylabel("log SNR (the last rescaled step is -inf)")
    axes.legend()


diffusion_zero_terminal_snr.add_plot("DDPM's schedule rescaled to zero terminal SNR", draw_rescaled_ddpm)
