"""The stable primitives and special functions derivations are written in.

Each is declared once (:func:`symgen.engine.functions.special_function`): its meaning
for the proofs, its mpmath evaluation, the code each backend prints, its LaTeX. A
stable rewrite of a closed form replaces a cancelling expression by one of these, and
the derivation proves the rewrite equal to the textbook form by their meanings; the
generated NumPy code calls ``symgen.numerics.stable``, whose accuracy has its own tests.

=================  =======================================  ====================================
name               meaning                                  why it exists
=================  =======================================  ====================================
log1pmx(u)         log(1 + u) - u                           no cancellation at small u
expm1mx(x)         exp(x) - 1 - x                           no cancellation at small x
sqrt_ratio(a, b)   sqrt(a / b)                              the quotient first: no underflow
log_normal_mass    log(Phi(b) - Phi(a))                     accurate in both tails
softplus(x)        log(1 + exp(x))                          no overflow
logaddexp(x, y)    log(exp(x) + exp(y))                     no overflow
sigmoid(t)         1 / (1 + exp(-t))                        kept whole under SymPy's rewrites
normal_cdf(z)      (1 + erf(z / sqrt 2)) / 2                full relative precision in the tails
log_normal_cdf(z)  log((1 + erf(z / sqrt 2)) / 2)           log Phi(80) = -1e-1392, not 0
minimum(v, c)      min(v, c)                                a clip, kept as it is in proofs
maximum(v, f)      max(v, f)                                a clip from below, likewise
complement(v)      1 - v                                    printed as written: +0.0 at v = 1
hypot(a, b)        sqrt(a^2 + b^2)                          no overflow or underflow of the squares
sin_product(x, y)  sin^2((x+y)/2) - sin^2((x-y)/2)          a difference of squares, no cancellation
=================  =======================================  ====================================
"""
from __future__ import annotations

import mpmath
import sympy as sp

from .functions import Lemma, special_function


def log_normal_mass_mpmath(a, b):
    """log(Phi(b) - Phi(a)) in mpmath at the working precision, with no digits lost.

    An interval centred below 0 is reflected (Phi(b) - Phi(a) = Phi(-a) - Phi(-b)); one
    containing 0 is 1 minus the two tails, log1p(-(Phi(a) + Phi(-b))); one in the upper
    tail is Phi(-a) - Phi(-b), two tails whose difference is formed with enough guard
    digits for what it cancels (mpmath's ncdf keeps full relative precision in the tails).
    """
    a, b = mpmath.mpf(a), mpmath.mpf(b)
    if a + b < 0:              # (-inf, inf) gives nan here: not reflected
        a, b = -b, -a
    if a <= 0:
        with mpmath.extraprec(20):
            value = mpmath.log1p(-(mpmath.ncdf(a) + mpmath.ncdf(-b)))
        return +value
    guard = 20
    while True:
        with mpmath.extraprec(guard):
            upper_tail = mpmath.ncdf(-a)
            mass = upper_tail - mpmath.ncdf(-b)
            if mass <= 0:
                return mpmath.mpf("-inf") if mass == 0 else mpmath.nan
            lost = int(mpmath.log(upper_tail / mass, 2))   # bits cancelled in the difference
            if lost + 10 < guard:
                value = mpmath.log(mass)
                break
        guard = 2 * guard + lost
    return +value


def _log_normal_cdf_mpmath(z):
    return mpmath.log(mpmath.ncdf(z)) if z < 0 else mpmath.log1p(-mpmath.ncdf(-z))


def _phi(z):
    return (1 + sp.erf(z / sp.sqrt(2))) / 2


log1pmx = special_function(
    "log1pmx", 1, meaning=lambda u: sp.log(1 + u) - u,
    mpmath=lambda u: mpmath.log1p(u) - u,
    numpy="stable.log1pmx",
    doc="log(1 + u) - u, without the cancellation at small u.")

expm1mx = special_function(
    "expm1mx", 1, meaning=lambda x: sp.exp(x) - 1 - x,
    mpmath=lambda x: mpmath.expm1(x) - x,
    numpy="stable.expm1mx",
    doc="exp(x) - 1 - x, without the cancellation at small x.")

sqrt_ratio = special_function(
    "sqrt_ratio", 2, meaning=lambda a, b: sp.sqrt(a / b),
    mpmath=lambda a, b: mpmath.sqrt(a / b),
    numpy="numpy.sqrt({0:p}/{1:p})", torch="torch.sqrt({0:p}/{1:p})", jax="jax.numpy.sqrt({0:p}/{1:p})",
    latex=r"\sqrt{{\frac{{{0}}}{{{1}}}}}",
    doc="sqrt(a / b), formed as the square root of the quotient: for tiny a and b of similar "
        "size, sqrt(a)/sqrt(b) times a tiny value can underflow where sqrt(a / b) cannot.")

log_normal_mass = special_function(
    "log_normal_mass", 2,
    meaning=lambda a, b: sp.log((sp.erf(b / sp.sqrt(2)) - sp.erf(a / sp.sqrt(2))) / 2),
    mpmath=log_normal_mass_mpmath,
    numpy="stable.log_normal_mass",
    latex=r"\log\left(\Phi\left({1}\right) - \Phi\left({0}\right)\right)",
    doc="log(Phi(b) - Phi(a)), the log probability that a standard normal variable falls in "
        "(a, b]; the difference of two CDFs cancels in the tails, where both round to 1 (or 0).")

softplus = special_function(
    "softplus", 1, meaning=lambda x: sp.log(1 + sp.exp(x)),
    mpmath=lambda x: mpmath.log1p(mpmath.exp(x)),
    derivative=lambda x: 1 / (1 + sp.exp(-x)),
    numpy="stable.softplus",
    doc="log(1 + e^x) = -log sigmoid(-x), evaluated without overflow or log(0).")

logaddexp = special_function(
    "logaddexp", 2, meaning=lambda x, y: sp.log(sp.exp(x) + sp.exp(y)),
    mpmath=lambda x, y: mpmath.log(mpmath.exp(x) + mpmath.exp(y)),
    numpy="stable.logaddexp",
    doc="log(e^x + e^y), without overflow.")

sigmoid = special_function(
    "sigmoid", 1, meaning=lambda t: 1 / (1 + sp.exp(-t)),
    mpmath=lambda t: 1 / (1 + mpmath.exp(-t)),
    derivative=lambda t: sigmoid(t) * sigmoid(-t), real=True,
    numpy="numpy.exp(-numpy.logaddexp(0.0, -{0:p}))", torch="torch.sigmoid({0})",
    jax="jax.nn.sigmoid({0})", latex=r"\sigma\left({0}\right)",
    doc="The logistic function 1/(1 + e^-t), kept whole under SymPy's rewrites (expand would split "
        "e^-t into factors that overflow where their product does not).")

normal_cdf = special_function(
    "normal_cdf", 1, meaning=_phi, mpmath=mpmath.ncdf,
    derivative=lambda z: sp.exp(-z**2 / 2) / sp.sqrt(2 * sp.pi), real=True,
    numpy="scipy.special.ndtr", torch="torch.special.ndtr", jax="jax.scipy.special.ndtr",
    latex=r"\Phi\left({0}\right)",
    doc="Phi(z), the standard normal CDF; mpmath's ncdf keeps full relative precision in both "
        "tails, where the erf form cancels in the upper one.")

log_normal_cdf = special_function(
    "log_normal_cdf", 1, meaning=lambda z: sp.log(_phi(z)), mpmath=_log_normal_cdf_mpmath,
    derivative=lambda z: sp.exp(-z**2 / 2) / sp.sqrt(2 * sp.pi) / normal_cdf(z), real=True,
    numpy="scipy.special.log_ndtr", torch="torch.special.log_ndtr", jax="jax.scipy.special.log_ndtr",
    latex=r"\log \Phi\left({0}\right)",
    doc="log Phi(z), evaluated as log1p(-Phi(-z)) for z >= 0: log Phi(80) = -1e-1392 at any "
        "precision, where log(ncdf(80)) needs 1400 digits not to be log 1 = 0.")

# The slope of a clip, 1 where the argument is taken and 0 where the bound is: a function of its
# own rather than a Piecewise of comparisons, which SymPy refuses to rebuild (xreplace, Heaviside)
# when it cannot decide that an argument such as 1/sin(x)^2 is real.
at_most = special_function(
    "at_most", 2, meaning=lambda value, bound: sp.Piecewise((1, sp.Le(value, bound, evaluate=False)), (0, True),
                                                            evaluate=False),
    mpmath=lambda value, bound: mpmath.mpf(1) if value <= bound else mpmath.mpf(0), opaque=True, real=True,
    derivative=lambda value, bound: (0, 0), latex=r"[{0} \le {1}]", text="[{0} <= {1}]",
    doc="1 where value <= bound, else 0: the slope of min(value, bound) in value.")


def _clip_slopes(value, bound, value_wins):
    """d/dvalue and d/dbound of a clip: 1 for the argument that is taken."""
    taken = value_wins(value, bound)
    return taken, 1 - taken


minimum = special_function(
    "minimum", 2, meaning=lambda value, ceiling: sp.Min(value, ceiling),
    derivative=lambda value, ceiling: _clip_slopes(value, ceiling, at_most),
    mpmath=lambda value, ceiling: min(value, ceiling), opaque=True, real=True,
    numpy="numpy.minimum", torch="torch.clamp({0}, max={1})", jax="jax.numpy.minimum({0}, {1})",
    latex=r"\min\left({0}, {1}\right)", text="min({0}, {1})",
    doc="min(value, ceiling): a clip kept as it is in proofs, so SymPy proves a rewrite of the "
        "value inside it without deciding inequalities between the two.")

# sqrt(a^2 + b^2) as C99's hypot computes it: scaled, so neither square overflows (a = 1e200)
# nor underflows (a = 1e-200) where the result itself is representable.
hypot = special_function(
    "hypot", 2, meaning=lambda a, b: sp.sqrt(a**2 + b**2),
    mpmath=mpmath.hypot, real=True,
    numpy="numpy.hypot({0}, {1})", torch="torch.hypot({0}, {1})", jax="jax.numpy.hypot({0}, {1})",
    latex=r"\sqrt{{{0}^{{2}} + {1}^{{2}}}}", text="hypot({0}, {1})",
    doc="sqrt(a^2 + b^2), without overflow or underflow of the squares (C99 hypot).")

complement = special_function(
    "complement", 1, meaning=lambda value: 1 - value, mpmath=lambda value: 1 - value, real=True,
    numpy="(1 - {0})", torch="(1 - {0})", jax="(1 - {0})", latex=r"\left(1 - {0}\right)", text="(1 - {0})",
    doc="1 - value, printed as written: common-subexpression elimination would otherwise share it "
        "with value - 1 elsewhere and negate, and -(value - 1) is -0.0 at value = 1.")

maximum = special_function(
    "maximum", 2, meaning=lambda value, floor: sp.Max(value, floor),
    derivative=lambda value, floor: _clip_slopes(value, floor, lambda a, b: at_most(b, a)),
    mpmath=lambda value, floor: max(value, floor), opaque=True, real=True,
    numpy="numpy.maximum", torch="torch.clamp({0}, min={1})", jax="jax.numpy.maximum({0}, {1})",
    latex=r"\max\left({0}, {1}\right)", text="max({0}, {1})",
    doc="max(value, floor): a clip from below, kept as it is in proofs (see minimum).")

#: sin(a + b) sin(a - b) = sin^2 a - sin^2 b, for symbols a and b. SymPy's simplifier proves
#: it for symbols in a fraction of a second, though not for angles made of multiples of pi.
_a, _b = sp.symbols("a b", real=True)
DIFFERENCE_OF_SQUARES = Lemma("sin(a + b) sin(a - b) = sin^2 a - sin^2 b",
                              (sp.sin(_a + _b) * sp.sin(_a - _b), sp.sin(_a) ** 2 - sp.sin(_b) ** 2))

sin_product = special_function(
    "sin_product", 2,
    meaning=lambda x, y: sp.sin((x + y) / 2) ** 2 - sp.sin((x - y) / 2) ** 2,
    lemmas=[DIFFERENCE_OF_SQUARES],
    numeric=lambda x, y: sp.sin(x) * sp.sin(y),
    mpmath=lambda x, y: mpmath.sin(x) * mpmath.sin(y),
    numpy="(numpy.sin({0})*numpy.sin({1}))", torch="(torch.sin({0})*torch.sin({1}))",
    jax="(jax.numpy.sin({0})*jax.numpy.sin({1}))",
    latex=r"\sin\left({0}\right) \sin\left({1}\right)", text="(sin({0})*sin({1}))",
    doc="sin(x) sin(y), the product a stable rewrite evaluates with x and y formed directly; its "
        "meaning for proofs is the difference of squares sin^2((x + y)/2) - sin^2((x - y)/2), by "
        "the lemma sin(a + b) sin(a - b) = sin^2 a - sin^2 b.")


def rewrite_textbook(expression):
    """Every stable primitive (and SymPy's log1p, expm1) replaced by its textbook meaning;
    a clip stays (see :data:`minimum`)."""
    from sympy.codegen.cfunctions import expm1, log1p

    from .functions import textbook

    return textbook(expression, keep_opaque=True).replace(
        log1p, lambda u: sp.log(1 + u)).replace(expm1, lambda x: sp.exp(x) - 1)
