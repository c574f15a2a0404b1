"""Draft: the cosine noise schedule (to be merged into derivations/diffusion.py)."""
import math

import mpmath
import sympy as sp

from symgen.engine import Derivation, IdentityCheck, Interval, Param, Positive

NICHOL = "Nichol & Dhariwal (2021), Improved Denoising Diffusion Probabilistic Models, Sec. 3.2"

# --- the cosine noise schedule -------------------------------------------------------------

t = sp.Symbol("t", positive=True)
T = sp.Symbol("T", positive=True)
COSINE_OFFSET = sp.Rational(1, 125)          # s = 0.008 (Nichol & Dhariwal 2021)
BETA_CLIP = sp.Rational(999, 1000)


def cosine_angle_to_noise(step):
    """phi(step) = pi/2 - (step/T + s)/(1 + s) pi/2 = pi/2 (1 - step/T)/(1 + s): how far the
    paper's cosine angle is from pi/2, where cos vanishes."""
    return sp.pi / 2 * (1 - step / T) / (1 + COSINE_OFFSET)


def cosine_f(step):
    """f(step) = cos^2((step/T + s)/(1 + s) pi/2), written as cos^2(pi/2 - phi): SymPy turns it
    into sin^2(phi), which a computer evaluates without the cancellation of cos near pi/2."""
    return sp.cos(sp.pi / 2 - cosine_angle_to_noise(step)) ** 2


diffusion_cosine_schedule = Derivation(
    "diffusion_cosine_schedule",
    title="The cosine noise schedule: alpha_bar_t, the clipped beta_t and the signal-to-noise ratio",
    summary="alpha_bar_t = f(t)/f(0) with f(t) = cos^2((t/T + s)/(1 + s) pi/2), s = 0.008; "
            "beta_t = min(1 - alpha_bar_t/alpha_bar_{t-1}, 0.999); SNR = alpha_bar_t/(1 - alpha_bar_t); "
            "for steps 1 <= t <= T (real t gives the continuous-time schedule).",
    kind="denoising/score",
    references=[NICHOL, "Kingma, Salimans, Poole & Ho (2021), Variational Diffusion Models "
                        "(the signal-to-noise ratio alpha_bar/(1 - alpha_bar))"],
    params=[
        Param(t, Interval(1.0, math.inf, low_closed=True, draw_high=1000.0), "step t (>= 1, <= T)"),
        Param(T, Positive(1.0, 1000.0), "number of steps T"),
    ],
    requires=[(t <= T, "argument 't' must be <= T")],
)
start = cosine_f(0)                                  # f(0) = cos^2(s/(1 + s) pi/2)
phi_t, phi_prev = cosine_angle_to_noise(t), cosine_angle_to_noise(t - 1)
(diffusion_cosine_schedule
 .define(cosine_f(t) / start,
         "definition (Nichol & Dhariwal 2021, Sec. 3.2): f(t)/f(0); cos(pi/2 - phi) = sin(phi), "
         "with phi = pi/2 (1 - t/T)/(1 + s) formed from 1 - t/T", output="alpha_bar",
         doc="alpha_bar_t, the signal level after t steps"))


class clipped(sp.Function):
    """min(value, ceiling): a clip kept unevaluated, so SymPy proves a rewrite of ``value``
    inside it without deciding inequalities between trigonometric expressions."""

    nargs = 2

    def _eval_evalf(self, prec):
        value, ceiling = (arg._eval_evalf(prec) if not arg.is_Number else arg for arg in self.args)
        if value is None or not value.is_number:
            return None
        return sp.Min(value, ceiling).evalf(mpmath.libmp.prec_to_dps(prec))

    def _numpycode(self, printer):       # NumPy's minimum broadcasts and keeps float32
        return f"numpy.minimum({printer._print(self.args[0])}, {printer._print(self.args[1])})"

    def _mpmathcode(self, printer):
        return f"min({printer._print(self.args[0])}, {printer._print(self.args[1])})"

    def _latex(self, printer, exp=None):
        return rf"\min\left({printer._print(self.args[0])}, {printer._print(self.args[1])}\right)"


ratio_minus = 1 - cosine_f(t) / cosine_f(t - 1)
(diffusion_cosine_schedule
 .define(clipped(ratio_minus, BETA_CLIP),
         "definition: beta_t = 1 - alpha_bar_t/alpha_bar_{t-1} (so that prod (1 - beta_s) = alpha_bar_t), "
         "clipped at 0.999 against the singularity at t = T", output="beta",
         doc="beta_t, the variance of step t")
 .stable(clipped(sp.sin(phi_prev + phi_t) * sp.sin(phi_prev - phi_t) / sp.sin(phi_prev) ** 2, BETA_CLIP),
     "sin^2 b - sin^2 a = sin(b + a) sin(b - a), with b - a = pi/(2 T (1 + s)) exact: no "
     "cancellation for large T, where 1 - alpha_bar_t/alpha_bar_{t-1} loses digits"))
snr_textbook = (cosine_f(t) / start) / (1 - cosine_f(t) / start)
signal_angle = sp.pi / 2 / (1 + COSINE_OFFSET)      # f(0) = sin^2(signal_angle)
(diffusion_cosine_schedule
 .define(snr_textbook, "definition: SNR = alpha_bar/(1 - alpha_bar), the signal-to-noise ratio of x_t",
         output="snr", doc="alpha_bar_t/(1 - alpha_bar_t)")
 .stable(sp.sin(phi_t) ** 2 / (sp.sin(signal_angle + phi_t) * sp.sin(signal_angle - phi_t)),
         "f(0) - f(t) = sin^2(c) - sin^2(phi_t) = sin(c + phi_t) sin(c - phi_t), c - phi_t = "
         "pi/2 (t/T)/(1 + s): no cancellation at small t, where 1 - alpha_bar_t loses digits"))


def paper_schedule(t, T):
    """alpha_bar_t, beta_t and SNR from the paper's formulas, evaluated by mpmath at 60 digits."""
    with mpmath.workdps(60):
        s = mpmath.mpf(8) / 1000
        f = lambda step: mpmath.cos((mpmath.mpf(step) / T + s) / (1 + s) * mpmath.pi / 2) ** 2  # noqa: E731
        alpha_bar = f(t) / f(0)
        beta = min(1 - f(t) / f(mpmath.mpf(t) - 1), mpmath.mpf(999) / 1000)
        return alpha_bar, beta, alpha_bar / (1 - alpha_bar)


for index, output in enumerate(("alpha_bar", "beta", "snr")):
    diffusion_cosine_schedule.add_check(IdentityCheck(
        lambda index=index, **point: float(paper_schedule(point["t"], point["T"])[index]),
        f"{output}: the paper's cosine formulas evaluated by mpmath at 60 digits",
        output=output, rtol=1e-11))
