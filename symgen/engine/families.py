"""The twelve univariate families of ``symgen.kl``, as torch.distributions names them.

A family is what a person needs to take expectations under it by hand:

* its log-density written as a sum of terms ``coefficient * statistic(x)``, so the KL's
  log-ratio splits into expectations of single statistics (``log_terms``);
* its support, whose ends may be parameters (Uniform, Pareto);
* a generating function, from which the expectations of powers and logs follow by
  substitution and differentiation: the Mellin transform E[X^s] of a family on (0, oo), the
  moment generating function E[e^{tX}] of one on the real line, with the range of s or t where
  it is finite. Each is a :class:`Lemma` that SymPy proves by integrating against the density;
* where a statistic has a kink, |x - m| (Laplace's), its CDF F and partial mean
  G(m) = E[X; X <= m], each proved by differentiating (F' = p, G' = m p) and by its value at
  the lower end of the support, so that E|X - m| = E[X] - m + 2 (m F(m) - G(m));
* SciPy's frozen distribution, for samples and for quadrature, which never use SymPy.

Parameters are named and ordered as torch.distributions names and orders them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import mpmath
import sympy as sp

from .domains import Positive, Real
from .functions import Lemma, special_function

# --- the scipy.special functions a closed form may need ----------------------------------
# Each is declared once: its meaning (what the proofs use), mpmath's route and SciPy's name.

gammaln = special_function(
    "gammaln", 1, meaning=sp.loggamma, mpmath=mpmath.loggamma, numpy="scipy.special.gammaln",
    latex=r"\log\Gamma\left({0}\right)", doc="log Gamma(a) without overflow (scipy.special.gammaln).")
digamma = special_function(
    "digamma", 1, meaning=sp.digamma, mpmath=mpmath.digamma, numpy="scipy.special.digamma",
    latex=r"\psi\left({0}\right)", doc="The digamma function psi(a) = d/da log Gamma(a).")
polygamma = special_function(
    "polygamma", 2, meaning=sp.polygamma, mpmath=lambda n, a: mpmath.polygamma(int(n), a),
    numpy="scipy.special.polygamma({0}, {1})", latex=r"\psi^{{({0})}}\left({1}\right)",
    doc="The polygamma function psi^(n)(a), the n-th derivative of psi.")
gamma_function = special_function(
    "gamma_function", 1, meaning=sp.gamma, mpmath=mpmath.gamma, numpy="scipy.special.gamma",
    latex=r"\Gamma\left({0}\right)", doc="The gamma function.")
erfc = special_function(
    "erfc", 1, meaning=sp.erfc, mpmath=mpmath.erfc, numpy="scipy.special.erfc",
    latex=r"\operatorname{{erfc}}\left({0}\right)", doc="The complementary error function.")
exp1 = special_function(
    "exp1", 1, meaning=lambda z: sp.uppergamma(0, z), mpmath=lambda z: mpmath.e1(z), numpy="scipy.special.exp1",
    latex=r"E_{{1}}\left({0}\right)", doc="The exponential integral E1(z) = int_z^oo e^-u / u du.")
def _regularized_lower_gamma(a, z):
    # Off the positive axis (z < 0 or complex, in a branch a piecewise form does not take but a
    # spot check evaluates) mpmath's gammainc can recurse without end; there
    # P(a, z) = z^a 1F1(a; a + 1; -z) / Gamma(a + 1) (DLMF 8.5.1), a convergent series.
    if mpmath.im(z) == 0 and mpmath.re(z) >= 0:
        return mpmath.gammainc(a, 0, z, regularized=True)
    return mpmath.power(z, a) * mpmath.hyp1f1(a, a + 1, -z) / mpmath.gamma(a + 1)


gammainc = special_function(
    "gammainc", 2, meaning=lambda a, z: sp.lowergamma(a, z) / sp.gamma(a),
    mpmath=lambda a, z: _regularized_lower_gamma(a, z), numpy="scipy.special.gammainc",
    latex=r"P\left({0}, {1}\right)", doc="The regularized lower incomplete gamma function P(a, z).")
betainc = special_function(
    "betainc", 3, meaning=lambda a, b, z: sp.betainc_regularized(a, b, 0, z),
    mpmath=lambda a, b, z: mpmath.betainc(a, b, 0, z, regularized=True), numpy="scipy.special.betainc",
    latex=r"I_{{{2}}}\left({0}, {1}\right)", doc="The regularized incomplete beta function I_z(a, b).")
erfcx = special_function(
    "erfcx", 1, meaning=lambda z: sp.exp(z**2) * sp.erfc(z), mpmath=lambda z: mpmath.exp(z**2) * mpmath.erfc(z),
    numpy="scipy.special.erfcx", latex=r"\operatorname{{erfcx}}\left({0}\right)",
    doc="exp(z^2) erfc(z), without overflow or underflow for large z.")
xlogy = special_function(
    "xlogy", 2, meaning=lambda a, b: a * sp.log(b),
    mpmath=lambda a, b: mpmath.mpf(0) if a == 0 else a * mpmath.log(b), numpy="scipy.special.xlogy",
    latex=r"{0} \log {1}", text="xlogy({0}, {1})",
    doc="a log b, 0 where a = 0 (the limit x log x -> 0 at the end of a support).")

LIBRARY = {sp.loggamma: gammaln, sp.digamma: digamma, sp.gamma: gamma_function, sp.erfc: erfc}


def in_library_functions(expression):
    """``expression`` with SymPy's special functions as their declared scipy.special ones (a
    zeta value, from a polygamma at 1, as its number)."""
    expression = expression.replace(lambda e: isinstance(e, sp.zeta) and e.is_number,
                                    lambda e: sp.Float(e.evalf(40), 40))
    for sympy_function, declared in LIBRARY.items():
        expression = expression.replace(sympy_function, declared)
    expression = expression.replace(sp.polygamma, polygamma)
    expression = expression.replace(sp.beta, lambda a, b: sp.exp(gammaln(a) + gammaln(b) - gammaln(a + b)))
    return expression


x = sp.Symbol("x", real=True)
s = sp.Symbol("s", real=True)       # the argument of a generating function


@dataclass(frozen=True)
class Parameter:
    name: str
    positive: bool
    domain: object
    doc: str


@dataclass
class Family:
    """A family as written for expectations; see the module docstring."""

    name: str
    parameters: tuple
    # (params dict) -> list of (coefficient, statistic of x)
    log_terms: Callable
    support: Callable                    # params -> (lower, upper)
    scipy: Callable                      # (stats module, *values) -> frozen distribution
    reference: str = ""
    # "mellin": E[X^s] (support in (0, oo)); "mgf": E[e^{sX}]; None: neither is used
    transform: str | None = None
    generating: Callable | None = None   # params -> (value in s, condition on s for finiteness)
    # The integral SymPy evaluates to prove the generating function: params -> (integrand in
    # the variable, variable, lower, upper, what the substitution was[, {s: its value in the
    # proof's own exponent}])
    generating_proof: Callable | None = None
    laplace: Callable | None = None      # params, lam -> E[e^{-lam X}] for lam > 0 (support in (0, oo))
    cdf: Callable | None = None          # params, m -> F(m) for m inside the support
    partial_mean: Callable | None = None  # params, m -> E[X; X <= m]
    # further statistics with their own lemma: (params, statistic) -> (value, Lemma) or None
    special: Callable | None = None
    no_mean: bool = False                # E|X| is infinite (Cauchy)
    # params, u -> the u-quantile: a heavy tail's quadrature runs over u in (0, 1) instead (Pareto)
    quantile: Callable | None = None
    # the parameters that are the scale of each location (for a near-equal test)
    units: dict = field(default_factory=dict)

    # A user's density keeps the user's own symbols (they name the function's arguments).
    fixed_symbols: dict | None = None
    can_sample: bool = True              # SciPy's distribution (or the user's sampler) draws

    def cuts(self, params: dict) -> list:
        """Where a quadrature over the support should break: a grid of P's scales around its
        location (in log x for LogNormal), so no piece is wider than the mass it holds."""
        if "scale" not in params:
            return []
        centre, spread = params.get("loc", 0), params["scale"]
        grid = [centre + k * spread for k in (-60, -40, -30, -20, -15, -10, -6, -4, -2, -1, 0,
                                               1, 2, 4, 6, 10, 15, 20, 30, 40, 60)]
        return [sp.exp(point) for point in grid] if self.name == "LogNormal" else grid

    def symbols(self, suffix: str) -> dict:
        if self.fixed_symbols is not None:
            return dict(self.fixed_symbols)
        return {p.name: sp.Symbol(f"{p.name}_{suffix}", positive=True) if p.positive
                else sp.Symbol(f"{p.name}_{suffix}", real=True) for p in self.parameters}

    def log_density(self, params: dict):
        return sum(coefficient * statistic for coefficient, statistic in self.log_terms(params))

    def density(self, params: dict):
        # log Gamma as log(Gamma), so exp(-log Gamma(a)) is 1/Gamma(a) for the integrals' proofs.
        # Term by term, so exp(a log b) is b^a and exp((a - 1) log x) is x^(a - 1): the form
        # SymPy's integration recognises.
        log_density = sp.expand(self.log_density(params).replace(sp.loggamma, lambda z: sp.log(sp.gamma(z))))
        return sp.Mul(*[_exponential_of(term) for term in sp.Add.make_args(log_density)])


def _exponential_of(term):
    """exp(term), with exp(c log y) written y^c."""
    logarithms = [factor for factor in sp.Mul.make_args(term) if isinstance(factor, sp.log)]
    if len(logarithms) == 1:
        return logarithms[0].args[0] ** (term / logarithms[0])
    return sp.exp(term)


def _mellin_lemma(family: Family, params: dict) -> Lemma:
    integrand, variable, lower, upper, how, *substitution = family.generating_proof(params)
    value, _ = family.generating(params)
    # A proof may integrate in a shifted exponent (u = a + s > 0): the value follows it.
    integral = sp.Integral(integrand, (variable, lower, upper))
    return Lemma(f"{family.name}: {'E[X^s]' if family.transform == 'mellin' else 'E[exp(s X)]'} = "
                 f"{sp.sstr(value)}{how}", (_Integrated(integral), value.subs(substitution[0]) if substitution else value))


class _Integrated(sp.Expr):
    """An integral that SymPy evaluates without convergence conditions (they are stated with
    the generating function), simplifying hypergeometric results (Gauss's theorem)."""

    def doit(self, **hints):
        integral = self.args[0]
        return sp.hyperexpand(sp.integrate(integral.function, *integral.limits, conds="none"))


# --- the families -----------------------------------------------------------------------

LOC = Parameter("loc", False, Real(-5, 5), "location")


def _scale(doc="scale"):
    return Parameter("scale", True, Positive(0.1, 10), doc)


def _normal_terms(p):
    loc, scale = p["loc"], p["scale"]
    return [(-1 / (2 * scale**2), x**2), (loc / scale**2, x),
            (-loc**2 / (2 * scale**2) - sp.log(scale) - sp.log(2 * sp.pi) / 2, sp.Integer(1))]


def _normal_partial_mean(p, m):
    loc, scale = p["loc"], p["scale"]
    return loc * sp.erfc((loc - m) / (sp.sqrt(2) * scale)) / 2 \
        - scale / sp.sqrt(2 * sp.pi) * sp.exp(-(m - loc) ** 2 / (2 * scale**2))


NORMAL = Family(
    "Normal", (LOC, _scale("standard deviation")), _normal_terms, lambda p: (-sp.oo, sp.oo),
    lambda stats, loc, scale: stats.norm(loc, scale),
    transform="mgf",
    generating=lambda p: (sp.exp(p["loc"] * s + p["scale"] ** 2 * s**2 / 2), sp.true),
    generating_proof=lambda p: (sp.exp(s * x) * NORMAL.density(p), x, -sp.oo, sp.oo, ""),
    cdf=lambda p, m: sp.erfc((p["loc"] - m) / (sp.sqrt(2) * p["scale"])) / 2,
    partial_mean=_normal_partial_mean, units={"loc": "scale"})


def _laplace_cdf(p, m):
    loc, scale = p["loc"], p["scale"]
    return sp.Piecewise((sp.exp((m - loc) / scale) / 2, m < loc), (1 - sp.exp(-(m - loc) / scale) / 2, True))


def _laplace_partial_mean(p, m):
    loc, scale = p["loc"], p["scale"]
    return sp.Piecewise((sp.exp((m - loc) / scale) * (m - scale) / 2, m < loc),
                        (loc - sp.exp(-(m - loc) / scale) * (m + scale) / 2, True))


def _laplace_generating_proof(p):
    loc, scale = p["loc"], p["scale"]
    z = sp.Symbol("z", positive=True)
    # The two halves, z = |x - loc|: one integral SymPy does without the kink.
    integrand = (sp.exp(s * (loc + z)) + sp.exp(s * (loc - z))) * sp.exp(-z / scale) / (2 * scale)
    return integrand, z, 0, sp.oo, " (the two sides of loc, z = |x - loc|)"


LAPLACE = Family(
    "Laplace", (LOC, _scale()), lambda p: [(-1 / p["scale"], sp.Abs(x - p["loc"])),
                                           (-sp.log(2 * p["scale"]), sp.Integer(1))],
    lambda p: (-sp.oo, sp.oo), lambda stats, loc, scale: stats.laplace(loc, scale),
    transform="mgf",
    generating=lambda p: (sp.exp(p["loc"] * s) / (1 - p["scale"] ** 2 * s**2), sp.Abs(s) < 1 / p["scale"]),
    generating_proof=_laplace_generating_proof,
    cdf=_laplace_cdf, partial_mean=_laplace_partial_mean, units={"loc": "scale"})


def _gumbel_terms(p):
    loc, scale = p["loc"], p["scale"]
    return [(-1 / scale, x), (-sp.exp(loc / scale), sp.exp(-x / scale)),
            (loc / scale - sp.log(scale), sp.Integer(1))]


def _gumbel_generating_proof(p):
    z = sp.Symbol("z", positive=True)
    # x = loc - scale log z carries the density onto Exponential(1) in z.
    return (sp.exp(p["loc"] * s) * z ** (-p["scale"] * s) * sp.exp(-z), z, 0, sp.oo,
            " (substituting z = exp(-(x - loc)/scale), an Exponential(1) variable)")


GUMBEL = Family(
    "Gumbel", (LOC, _scale()), _gumbel_terms, lambda p: (-sp.oo, sp.oo),
    lambda stats, loc, scale: stats.gumbel_r(loc, scale),
    transform="mgf",
    generating=lambda p: (sp.exp(p["loc"] * s) * sp.gamma(1 - p["scale"] * s), s < 1 / p["scale"]),
    generating_proof=_gumbel_generating_proof,
    cdf=lambda p, m: sp.exp(-sp.exp(-(m - p["loc"]) / p["scale"])),
    partial_mean=lambda p, m: m * sp.exp(-sp.exp(-(m - p["loc"]) / p["scale"]))
    - p["scale"] * exp1(sp.exp(-(m - p["loc"]) / p["scale"])),
    units={"loc": "scale"})

class _ResidueIntegral(sp.Expr):
    """The integral over the real line of a rational function that decays like 1/t^2, by the
    residue theorem: 2 pi i times the sum of its residues in the upper half-plane (SymPy finds
    the poles and their residues)."""

    def doit(self, **hints):
        function, variable = self.args
        poles = sp.roots(sp.denom(sp.together(function)), variable)
        upper = [pole for pole in poles if sp.im(pole).is_positive]
        if len(upper) + len([pole for pole in poles if sp.im(pole).is_negative]) != len(poles):
            return self      # a pole SymPy cannot place: not proved
        return sp.simplify(2 * sp.pi * sp.I * sum(sp.residue(function, variable, pole) for pole in upper))


def _cauchy_special(p, statistic):
    """E[log((X - m)^2 + g^2)] = log((scale + g)^2 + (loc - m)^2) for X ~ Cauchy(loc, scale)
    (Chyzak & Nielsen 2019, Eq. 6, the Cauchy KL's key term). With X = loc + scale T and
    a = (m - loc)/scale, b = g/scale, it is 2 log(scale) + E[log((T - a)^2 + b^2)] for a
    standard Cauchy T; its derivative in b, E[2b/((T - a)^2 + b^2)], is the integral of a
    rational function, which SymPy evaluates by residues, and both sides are 2 log b + o(1)
    as b -> oo."""
    if not isinstance(statistic, sp.log):
        return None
    inner = sp.expand(statistic.args[0])
    if not inner.is_polynomial(x) or sp.degree(inner, x) != 2 or sp.Poly(inner, x).LC() != 1:
        return None
    m = -sp.Poly(inner, x).coeff_monomial(x) / 2
    g = sp.sqrt(sp.factor(sp.expand(inner.subs(x, m))))
    if not g.is_positive:
        return None
    loc, scale = p["loc"], p["scale"]
    value = sp.log((scale + g) ** 2 + (loc - m) ** 2)
    t, a, b = sp.Symbol("t", real=True), sp.Symbol("a", real=True), sp.Symbol("b", positive=True)
    standard = sp.log((1 + b) ** 2 + a**2)
    lemma = Lemma("Cauchy: E[log((X - m)^2 + g^2)] = log((scale + g)^2 + (loc - m)^2): in standard units, "
                  "d/db of E[log((T - a)^2 + b^2)] by residues, and both sides 2 log b + o(1) as b -> oo",
                  (_ResidueIntegral(2 * b / (((t - a) ** 2 + b**2) * sp.pi * (1 + t**2)), t), sp.diff(standard, b)),
                  (sp.Limit(standard - 2 * sp.log(b), b, sp.oo), 0),
                  (2 * sp.log(scale) + standard.subs({a: (m - loc) / scale, b: g / scale}), value))
    return value, lemma


CAUCHY = Family(
    "Cauchy", (LOC, _scale()),
    lambda p: [(-1, sp.log((x - p["loc"]) ** 2 + p["scale"] ** 2)),
               (sp.log(p["scale"]) - sp.log(sp.pi), sp.Integer(1))],
    lambda p: (-sp.oo, sp.oo), lambda stats, loc, scale: stats.cauchy(loc, scale),
    special=_cauchy_special, no_mean=True, units={"loc": "scale"}, reference="Chyzak & Nielsen (2019), A closed-form "
    "formula for the Kullback-Leibler divergence between Cauchy distributions, arXiv:1905.10965")


def _positive_proof(family_name):
    def proof(p):
        family = FAMILIES[family_name]
        lower, upper = family.support(p)
        # On (0, oo) the variable is positive: SymPy integrates x^(s + a - 1) e^(-b x) only knowing it.
        positive = sp.Symbol("x", positive=True)
        return (x ** s * family.density(p)).xreplace({x: positive}), positive, lower, upper, ""
    return proof


def _lognormal_proof(p):
    y = sp.Symbol("y", real=True)
    # x = e^y: log X is Normal(loc, scale), so E[X^s] is its moment generating function.
    return (sp.exp(s * y) * NORMAL.density(p).subs(x, y), y, -sp.oo, sp.oo,
            " (x = e^y: log X ~ Normal(loc, scale))")


LOG_NORMAL = Family(
    # sigma up to 2: the moments a Q's log-density needs, e^(k mu + k^2 sigma^2 / 2), stay within float64.
    "LogNormal", (LOC, Parameter("scale", True, Positive(0.1, 2), "standard deviation of log x")),
    lambda p: [(-1, sp.log(x)), (-1 / (2 * p["scale"] ** 2), sp.log(x) ** 2), (p["loc"] / p["scale"] ** 2, sp.log(x)),
               (-p["loc"] ** 2 / (2 * p["scale"] ** 2) - sp.log(p["scale"]) - sp.log(2 * sp.pi) / 2, sp.Integer(1))],
    lambda p: (0, sp.oo), lambda stats, loc, scale: stats.lognorm(scale, scale=float(mpmath.exp(loc))),
    transform="mellin",
    generating=lambda p: (sp.exp(p["loc"] * s + p["scale"] ** 2 * s**2 / 2), sp.true),
    generating_proof=_lognormal_proof,
    cdf=lambda p, m: sp.erfc((p["loc"] - sp.log(m)) / (sp.sqrt(2) * p["scale"])) / 2,
    partial_mean=lambda p, m: sp.exp(p["loc"] + p["scale"] ** 2 / 2)
    * sp.erfc((p["loc"] + p["scale"] ** 2 - sp.log(m)) / (sp.sqrt(2) * p["scale"])) / 2,
    units={"loc": "scale"})

HALF_NORMAL = Family(
    "HalfNormal", (_scale("scale of the normal folded at 0"),),
    lambda p: [(-1 / (2 * p["scale"] ** 2), x**2),
               (sp.log(2 / sp.pi) / 2 - sp.log(p["scale"]), sp.Integer(1))],
    lambda p: (0, sp.oo), lambda stats, scale: stats.halfnorm(scale=scale),
    transform="mellin",
    generating=lambda p: (p["scale"] ** s * 2 ** (s / 2) * sp.gamma((s + 1) / 2) / sp.sqrt(sp.pi), s > -1),
    generating_proof=_positive_proof("HalfNormal"),
    laplace=lambda p, lam: erfcx(lam * p["scale"] / sp.sqrt(2)),
    cdf=lambda p, m: 1 - sp.erfc(m / (sp.sqrt(2) * p["scale"])),
    partial_mean=lambda p, m: p["scale"] * sp.sqrt(2 / sp.pi) * (1 - sp.exp(-m**2 / (2 * p["scale"] ** 2))))

RATE = Parameter("rate", True, Positive(0.1, 10), "rate (inverse scale)")

EXPONENTIAL = Family(
    "Exponential", (RATE,), lambda p: [(-p["rate"], x), (sp.log(p["rate"]), sp.Integer(1))],
    lambda p: (0, sp.oo), lambda stats, rate: stats.expon(scale=1 / rate),
    transform="mellin",
    generating=lambda p: (sp.gamma(1 + s) / p["rate"] ** s, s > -1),
    generating_proof=_positive_proof("Exponential"),
    laplace=lambda p, lam: p["rate"] / (p["rate"] + lam),
    cdf=lambda p, m: 1 - sp.exp(-p["rate"] * m),
    partial_mean=lambda p, m: (1 - sp.exp(-p["rate"] * m) * (1 + p["rate"] * m)) / p["rate"])

CONCENTRATION = Parameter("concentration", True, Positive(0.5, 20), "shape")

GAMMA = Family(
    "Gamma", (CONCENTRATION, RATE),
    lambda p: [(p["concentration"] - 1, sp.log(x)), (-p["rate"], x),
               (p["concentration"] * sp.log(p["rate"]) - sp.loggamma(p["concentration"]), sp.Integer(1))],
    lambda p: (0, sp.oo), lambda stats, concentration, rate: stats.gamma(concentration, scale=1 / rate),
    transform="mellin",
    generating=lambda p: (sp.gamma(p["concentration"] + s) / (sp.gamma(p["concentration"]) * p["rate"] ** s),
                          s > -p["concentration"]),
    generating_proof=_positive_proof("Gamma"),
    laplace=lambda p, lam: (p["rate"] / (p["rate"] + lam)) ** p["concentration"],
    cdf=lambda p, m: gammainc(p["concentration"], p["rate"] * m),
    partial_mean=lambda p, m: p["concentration"] / p["rate"] * gammainc(p["concentration"] + 1, p["rate"] * m))


def _beta_integrand(p, exponent_of_x, exponent_of_complement):
    """x^(u - 1) (1 - x)^(v - 1) / B(a, b) on (0, 1), the form SymPy's Beta integral takes
    in seconds (as Gauss's hypergeometric sum at 1); x^s times the density, expanded, it
    does not recognise."""
    a, b = p["concentration1"], p["concentration0"]
    positive = sp.Symbol("x", positive=True)
    normaliser = sp.gamma(a + b) / (sp.gamma(a) * sp.gamma(b))
    return normaliser * positive ** (exponent_of_x - 1) * (1 - positive) ** (exponent_of_complement - 1), positive


def _beta_proof(p):
    a, b = p["concentration1"], p["concentration0"]
    u = sp.Symbol("u", positive=True)     # u = a + s > 0 is where E[X^s] is finite
    integrand, positive = _beta_integrand(p, u, b)
    return integrand, positive, 0, 1, " (u = concentration1 + s > 0)", {s: u - a}


def _beta_special(p, statistic):
    a, b = p["concentration1"], p["concentration0"]
    if statistic == sp.log(1 - x):
        # 1 - X is Beta(b, a): its E[log] is the derivative of its Mellin transform at 0.
        value = sp.digamma(b) - sp.digamma(a + b)
        mellin = sp.gamma(b + s) * sp.gamma(a + b) / (sp.gamma(b) * sp.gamma(a + b + s))
        v = sp.Symbol("v", positive=True)   # v = b + s > 0
        integrand, positive = _beta_integrand(p, a, v)
        lemma = Lemma("Beta: E[(1 - X)^s] = B(a, b + s)/B(a, b) (v = b + s > 0), so "
                      "E[log(1 - X)] = psi(b) - psi(a + b)",
                      (_Integrated(sp.Integral(integrand, (positive, 0, 1))), mellin.subs(s, v - b)),
                      (sp.diff(mellin, s).subs(s, 0), value))
        return value, lemma
    return None


BETA = Family(
    "Beta", (Parameter("concentration1", True, Positive(0.5, 20), "first shape (alpha)"),
             Parameter("concentration0", True, Positive(0.5, 20), "second shape (beta)")),
    lambda p: [(p["concentration1"] - 1, sp.log(x)), (p["concentration0"] - 1, sp.log(1 - x)),
               (sp.loggamma(p["concentration1"] + p["concentration0"]) - sp.loggamma(p["concentration1"])
                - sp.loggamma(p["concentration0"]), sp.Integer(1))],
    lambda p: (0, 1), lambda stats, a, b: stats.beta(a, b),
    transform="mellin",
    generating=lambda p: (sp.gamma(p["concentration1"] + s) * sp.gamma(p["concentration1"] + p["concentration0"])
                          / (sp.gamma(p["concentration1"]) * sp.gamma(p["concentration1"] + p["concentration0"] + s)),
                          s > -p["concentration1"]),
    generating_proof=_beta_proof,
    cdf=lambda p, m: betainc(p["concentration1"], p["concentration0"], m),
    partial_mean=lambda p, m: p["concentration1"] / (p["concentration1"] + p["concentration0"])
    * betainc(p["concentration1"] + 1, p["concentration0"], m),
    special=_beta_special)

UNIFORM = Family(
    "Uniform", (Parameter("low", False, Real(-5, 5), "lower end"), Parameter("high", False, Real(-5, 5), "upper end")),
    lambda p: [(-sp.log(p["high"] - p["low"]), sp.Integer(1))],
    lambda p: (p["low"], p["high"]), lambda stats, low, high: stats.uniform(low, high - low),
    units={"low": ("high", "low"), "high": ("high", "low")})

PARETO = Family(
    "Pareto", (Parameter("scale", True, Positive(0.1, 10), "scale (the lower end of the support)"),
               Parameter("alpha", True, Positive(0.5, 20), "tail index")),
    lambda p: [(-(p["alpha"] + 1), sp.log(x)), (sp.log(p["alpha"]) + p["alpha"] * sp.log(p["scale"]), sp.Integer(1))],
    lambda p: (p["scale"], sp.oo), lambda stats, scale, alpha: stats.pareto(alpha, scale=scale),
    transform="mellin",
    generating=lambda p: (p["alpha"] * p["scale"] ** s / (p["alpha"] - s), s < p["alpha"]),
    generating_proof=_positive_proof("Pareto"),
    quantile=lambda p, u: p["scale"] * u ** (-1 / p["alpha"]),
    cdf=lambda p, m: 1 - (p["scale"] / m) ** p["alpha"],
    partial_mean=lambda p, m: p["alpha"] * p["scale"] / (p["alpha"] - 1)
    * (1 - (p["scale"] / m) ** (p["alpha"] - 1)))

WEIBULL = Family(
    "Weibull", (Parameter("scale", True, Positive(0.1, 10), "scale"),
                Parameter("concentration", True, Positive(0.5, 10), "shape")),
    lambda p: [(p["concentration"] - 1, sp.log(x)), (-p["scale"] ** -p["concentration"], x ** p["concentration"]),
               (sp.log(p["concentration"]) - p["concentration"] * sp.log(p["scale"]), sp.Integer(1))],
    lambda p: (0, sp.oo), lambda stats, scale, concentration: stats.weibull_min(concentration, scale=scale),
    transform="mellin",
    generating=lambda p: (p["scale"] ** s * sp.gamma(1 + s / p["concentration"]), s > -p["concentration"]),
    generating_proof=_positive_proof("Weibull"),
    cdf=lambda p, m: 1 - sp.exp(-(m / p["scale"]) ** p["concentration"]),
    partial_mean=lambda p, m: p["scale"] * sp.gamma(1 + 1 / p["concentration"])
    * gammainc(1 + 1 / p["concentration"], (m / p["scale"]) ** p["concentration"]))

#: The families by torch.distributions' name, in the order of the issue's table.
FAMILIES = {family.name: family for family in (
    NORMAL, LAPLACE, GUMBEL, CAUCHY, LOG_NORMAL, HALF_NORMAL, EXPONENTIAL, GAMMA, BETA, UNIFORM, PARETO, WEIBULL)}

#: Families that contain another as a special case (Q = P possible across families): for
#: (P, Q), the values of the parameters at which the two coincide, given the rest.
COINCIDE = {
    ("Exponential", "Gamma"): lambda p, q: {q["concentration"]: 1, q["rate"]: p["rate"]},
    ("Gamma", "Exponential"): lambda p, q: {p["concentration"]: 1, q["rate"]: p["rate"]},
    ("Exponential", "Weibull"): lambda p, q: {q["concentration"]: 1, q["scale"]: 1 / p["rate"]},
    ("Weibull", "Exponential"): lambda p, q: {p["concentration"]: 1, q["rate"]: 1 / p["scale"]},
    ("Beta", "Uniform"): lambda p, q: {p["concentration1"]: 1, p["concentration0"]: 1, q["low"]: 0, q["high"]: 1},
    # Uniform's ends enter its KL against a Beta as low log(low) and (1 - high) log(1 - high), not
    # analytic at 0 and 1: the series branch takes each such term as a variable of its own.
    ("Uniform", "Beta"): lambda p, q: {q["concentration1"]: 1, q["concentration0"]: 1, p["low"]: 0, p["high"]: 1},
}


def family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        lowered = {key.lower(): value for key, value in FAMILIES.items()}
        if name.lower() in lowered:
            return lowered[name.lower()]
        raise ValueError(f"unknown family {name!r}; the families: {', '.join(FAMILIES)}") from None
