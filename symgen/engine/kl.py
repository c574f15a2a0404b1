"""KL divergence between two families, derived when asked: the route a person takes.

KL(P || Q) = E_P[log p(X) - log q(X)]. Written as a sum of terms c(theta) T(x) (each family's
``log_terms``), the log-ratio's expectation is a sum of expectations of single statistics
T(X) under P, and each of those follows from an identity SymPy can prove
(symgen/engine/families.py): powers and logs from P's generating function, |X - m| by
splitting at the kink, with P's CDF and partial mean. The chain a pair's derivation shows:

1. the definition, E_P[log p - log q];
2. linearity: the log-ratio as a sum of statistics, each with its coefficient;
3. each expectation replaced by its value, from the lemmas (each proved by SymPy);
4. the closed form, infinite (oo) where Q's support does not cover P's or a moment of P that
   log q needs diverges;
5. for pairs that can be equal (the same family, or one family inside the other: Exponential
   in Gamma), a branch near P = Q that evaluates the Taylor series of the closed form in the
   exact parameter differences, where the closed form's terms cancel.

A pair whose statistics have no identity here (E_P[log(1 + ((X - m)/g)^2)] for most P) has no
closed form: :func:`kl_pair` says which term, and :func:`quadrature_function` offers the
integral itself, evaluated by scipy.integrate.quad and labelled as such.
"""
from __future__ import annotations

import functools
import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import mpmath
import sympy as sp

from .checks import IdentityCheck, MeanCheck
from .derivation import Derivation, Param
from .expectations import Expectation
from .families import COINCIDE, FAMILIES, Family, _mellin_lemma, family, in_library_functions, s, x, xlogy
from .functions import Lemma, special_function, textbook
from .lazy import lazy_module

# The Taylor branches are deep sums of products: SymPy's printers and cse recurse through them.
sys.setrecursionlimit(max(sys.getrecursionlimit(), 20_000))

integrate = lazy_module("scipy.integrate")
stats = lazy_module("scipy.stats")
np = lazy_module("numpy")

REFERENCE = ("Cover & Thomas (2006), Elements of Information Theory, 2nd ed., Eq. 2.26 (relative entropy "
             "as an expectation of the log-ratio)")

# Near P = Q the closed form's terms (each of size ~1) cancel to a KL of ~delta^2: where every
# parameter difference is below NEAR of its unit, the Taylor series through SERIES_ORDER - 1
# takes over (truncation ~NEAR^(SERIES_ORDER - 2) relative, ~1e-13).
NEAR = sp.Rational(1, 20)
SERIES_ORDER = 12

difference = special_function(
    "difference", 2, meaning=lambda a, b: a - b, mpmath=lambda a, b: a - b, real=True,
    numpy="({0} - {1})", torch="({0} - {1})", jax="({0} - {1})", latex=r"\left({0} - {1}\right)",
    text="({0} - {1})",
    doc="a - b as written: a difference of nearly equal parameters, exact in floating point, that "
        "common-subexpression elimination must not distribute a coefficient over.")


minus_reciprocal = special_function(
    "minus_reciprocal", 2, meaning=lambda a, c: a - 1 / c, mpmath=lambda a, c: a - 1 / c, real=True,
    numpy="stable.minus_reciprocal", latex=r"\left({0} - \frac{{1}}{{{1}}}\right)", text="({0} - 1/{1})",
    doc="a - 1/c for a near 1/c (where P = Q is a reciprocal, Exponential's rate against Weibull's "
        "scale): a c - 1 formed exactly, then divided by c, so 1/c's rounding does not swamp it.")


def parameter_difference(symbol, value):
    """symbol - value as the generated code must form it near P = Q: exactly."""
    if isinstance(value, sp.Pow) and value.exp == -1:
        return minus_reciprocal(symbol, value.base)
    return difference(symbol, value)


class Infinite(Exception):
    """The KL is +oo for every parameter value: the reason says why."""


class NoClosedForm(Exception):
    """A statistic's expectation has no identity here: the reason names it."""


@dataclass
class StatisticValue:
    value: sp.Basic
    finite_when: sp.Basic = sp.true
    lemmas: list = field(default_factory=list)
    how: str = ""


class FamilyExpectation(Expectation):
    """E_{X ~ family(params)}[f(X)], kept unevaluated. ``doit`` splits f into statistics and
    takes each from the family's lemmas; ``evalf`` integrates by mpmath quadrature over the
    support, which shares nothing with the lemmas."""

    def __new__(cls, integrand, variable, family_name, *params):
        name = family_name if isinstance(family_name, sp.Symbol) else sp.Symbol(family_name)
        return sp.Expr.__new__(cls, sp.sympify(integrand), variable, name, *params)

    integrand = property(lambda self: self.args[0])
    variable = property(lambda self: self.args[1])
    family = property(lambda self: FAMILIES.get(self.args[2].name) or USER_FAMILIES[self.args[2].name])

    @property
    def params(self) -> dict:
        return dict(zip((p.name for p in self.family.parameters), self.args[3:]))

    @property
    def free_symbols(self):
        return set().union(*(arg.free_symbols for arg in self.args[3:])) | (
            self.integrand.free_symbols - {self.variable})

    def doit(self, **hints):
        total = sp.Integer(0)
        for statistic, coefficient in split_statistics(self.integrand).items():
            found = statistic_expectation(self.family, self.params, statistic)
            for lemma in found.lemmas:
                lemma.prove()
            total += coefficient * found.value
        return total

    def _eval_evalf(self, prec):
        import mpmath

        dps = max(15, mpmath.libmp.prec_to_dps(prec))
        params = self.params
        if not all(value.is_number for value in params.values()):
            return None
        with mpmath.workdps(dps + 15):
            log_density = sp.lambdify(x, self.family.log_density(params), "mpmath")

            def density(t):
                # Where log p is below -1e5, p counts 0 (no statistic here outweighs e^-1e5): mpmath
                # would otherwise take minutes over exp(-e^(1e4)) in a Gumbel's left tail.
                value = log_density(t)
                return mpmath.exp(value) if value > -100_000 else mpmath.mpf(0)

            integrand = sp.lambdify(x, self.integrand, "mpmath")
            lower, upper = (mpmath.mpf(sp.Float(end, dps + 15)) if end.is_finite else
                            (mpmath.inf if end > 0 else -mpmath.inf)
                            for end in map(sp.sympify, self.family.support(params)))
            # Break at the kinks (|x - m|) and the centre, where the quadrature needs them.
            points = {float(kink(point)) for point in self.integrand.atoms(sp.Abs) if kink(point) is not None}
            points |= {float(point) for point in self.family.cuts(params)}
            inner = sorted(mpmath.mpf(point) for point in points if lower < point < upper)
            if self.family.quantile is not None:
                # x = F^-1(e^-t), t > 0, carries P onto Exponential(1): a tail like x^-(alpha + 1),
                # which the quadrature would follow out to 1e30, becomes e^-(1 - k/alpha) t for a
                # moment x^k, an exponential the pieces below take to 1e-50.
                t = sp.Symbol("t", positive=True)
                mapped = sp.lambdify(t, self.integrand.subs(x, self.family.quantile(params, sp.exp(-t))) * sp.exp(-t),
                                     "mpmath")
                # The kinks, in t = -log(1 - F(x)).
                kinks = {-mpmath.log(1 - mpmath.mpf(sp.Float(self.family.cdf(params, point), dps + 15)))
                         for point in inner}
                pieces = sorted({0, 1, 3, 10, 30, 100, 300, 1000, 3000, 10000} | kinks) + [mpmath.inf]
                value = mpmath.quad(mapped, pieces)
            else:
                value = mpmath.quad(lambda t: integrand(t) * density(t), [lower, *inner, upper], maxdegree=10)
        return sp.Float(value, dps)

    def _latex(self, printer):
        arguments = ", ".join(printer._print(value) for value in self.args[3:])
        return (rf"\mathbb{{E}}_{{X \sim \mathrm{{{self.family.name}}}({arguments})}}"
                rf"\left[{printer._print(self.integrand.subs(self.variable, sp.Symbol('X')))}\right]")

    def _sympystr(self, printer):
        arguments = ", ".join(printer._print(value) for value in self.args[3:])
        return f"E_{{X ~ {self.family.name}({arguments})}}[{printer._print(self.integrand)}]"


def split_statistics(expression) -> dict:
    """``expression`` (a sum of coefficient * statistic(x)) as {statistic: coefficient}."""
    terms: dict = {}
    for term in sp.Add.make_args(sp.expand(expression, deep=False, power_exp=False, log=False,
                                           multinomial=False)):
        coefficient, statistic = term.as_independent(x, as_Add=False)
        terms[statistic] = terms.get(statistic, 0) + coefficient
    return {statistic: coefficient for statistic, coefficient in terms.items() if coefficient != 0}


# --- the expectation of one statistic ----------------------------------------------------


def statistic_expectation(fam: Family, p: dict, statistic) -> StatisticValue:
    """E[statistic(X)] for X ~ fam(p), with the lemmas it rests on; raises :class:`Infinite`
    or :class:`NoClosedForm`."""
    if statistic.free_symbols.isdisjoint({x}):
        return StatisticValue(statistic)
    if fam.special is not None:
        found = fam.special(p, statistic)
        if found is not None:
            return StatisticValue(found[0], lemmas=[found[1]], how=found[1].statement)
    if fam.name == "Uniform":
        return _uniform_expectation(p, statistic)
    if fam.no_mean:
        if isinstance(statistic, sp.log):
            raise NoClosedForm(f"E[{statistic}] under a {fam.name}: a closed form is known for a Cauchy "
                               "Q (Chyzak & Nielsen 2019) but SymPy does not prove it here")
        raise Infinite(f"a {fam.name} variable has no mean, so E[{statistic}] diverges")
    if isinstance(statistic, sp.Abs):
        return _kink_expectation(fam, p, statistic)
    power = _power_of_x(statistic)
    if power is not None:
        return _power_expectation(fam, p, power)
    log_power = _power_of_log(statistic)
    if log_power is not None and fam.transform == "mellin":
        generating, _ = fam.generating(p)
        value = sp.diff(generating, s, log_power).subs(s, 0)
        return StatisticValue(value, lemmas=[_mellin_lemma(fam, p)],
                              how=f"E[log(X)^{log_power}]: derivative {log_power} of E[X^s] at s = 0")
    if isinstance(statistic, sp.exp):
        rate = sp.simplify(statistic.args[0] / x)
        if rate.has(x):
            raise NoClosedForm(f"E[{statistic}] under a {fam.name}")
        if fam.transform == "mgf":
            generating, condition = fam.generating(p)
            return StatisticValue(generating.subs(s, rate), condition.subs(s, rate), [_mellin_lemma(fam, p)],
                                  f"E[exp({rate} X)]: the moment generating function at {rate}")
        if fam.laplace is not None and rate.is_negative:
            value = fam.laplace(p, -rate)
            # Proved by integration against the density, like the generating functions.
            lower, upper = fam.support(p)
            lemma = Lemma(f"{fam.name}: E[exp(-lam X)] = {sp.sstr(value)}",
                          (_integral(statistic * fam.density(p), lower, upper), textbook(value).rewrite(sp.erf)))
            return StatisticValue(value, lemmas=[lemma], how=f"E[exp({rate} X)]: the Laplace transform")
        raise NoClosedForm(f"E[{statistic}] under a {fam.name} (its Laplace transform is not elementary)")
    raise NoClosedForm(f"E[{statistic}] under a {fam.name}")


def kink(statistic):
    """m of |x - m| (SymPy may write it |m - x|); None for another absolute value."""
    argument = statistic.args[0]
    slope = sp.diff(argument, x)
    if slope not in (1, -1):
        return None
    return -argument.subs(x, 0) / slope


def _integral(integrand, lower, upper):
    from .families import _Integrated

    return _Integrated(sp.Integral(integrand, (x, lower, upper)))


def _power_of_x(statistic):
    if statistic == x:
        return sp.Integer(1)
    if isinstance(statistic, sp.Pow) and statistic.base == x and not statistic.exp.has(x):
        return statistic.exp
    return None


def _power_of_log(statistic):
    if statistic == sp.log(x):
        return 1
    if isinstance(statistic, sp.Pow) and statistic.base == sp.log(x) and statistic.exp.is_Integer:
        return int(statistic.exp)
    return None


def _power_expectation(fam: Family, p: dict, power) -> StatisticValue:
    generating, condition = fam.generating(p)
    if fam.transform == "mellin":
        # Gamma(a + 1)/Gamma(a) as a: the ratio would cancel against a elsewhere only numerically.
        return StatisticValue(sp.gammasimp(generating.subs(s, power)), condition.subs(s, power),
                              [_mellin_lemma(fam, p)],
                              f"E[X^{power}]: the Mellin transform E[X^s] at s = {power}")
    if power.is_Integer and power > 0:
        value = sp.diff(generating, s, int(power)).subs(s, 0)
        return StatisticValue(sp.simplify(value), lemmas=[_mellin_lemma(fam, p)],
                              how=f"E[X^{power}]: derivative {power} of the moment generating function at 0")
    raise NoClosedForm(f"E[X^{power}] under a {fam.name}")


def _kink_expectation(fam: Family, p: dict, statistic) -> StatisticValue:
    centre = kink(statistic)
    if centre is None:
        raise NoClosedForm(f"E[{statistic}] under a {fam.name}")
    mean = _power_expectation(fam, p, sp.Integer(1))
    m = sp.Symbol("m", real=True)
    lower, upper = map(sp.sympify, fam.support(p))
    cdf, partial = fam.cdf(p, m), fam.partial_mean(p, m)
    density = fam.density(p).subs(x, m)
    derivatives = [(sp.diff(cdf, m), density), (sp.diff(partial, m), m * density)]
    if cdf.has(sp.Piecewise):
        # A density with a kink of its own (Laplace's at loc): each side of it, m = loc -+ z.
        z = sp.Symbol("z", positive=True)
        derivatives = [(left.subs(m, p["loc"] + side * z), right.subs(m, p["loc"] + side * z))
                       for side in (-1, 1) for left, right in derivatives]
    elif lower.is_finite:
        # Inside the support m is above its lower end: m = lower + z, z > 0 (so m^a m = m^(a + 1)).
        z = sp.Symbol("z", positive=True)
        derivatives = [(left.subs(m, lower + z), right.subs(m, lower + z)) for left, right in derivatives]
    lemma = Lemma(f"{fam.name}: F(m) = {sp.sstr(cdf)} and G(m) = E[X; X <= m] = {sp.sstr(partial)}: "
                  "F' = p, G' = m p, both 0 at the lower end of the support",
                  *derivatives, (_at_lower_end(_first_piece(cdf), m, lower), 0),
                  (_at_lower_end(_first_piece(partial), m, lower), 0))
    inside = mean.value - m + 2 * (m * cdf - partial)
    cases = []
    if lower.is_finite:
        cases.append((mean.value - m, m <= lower))
    if upper.is_finite:
        cases.append((m - mean.value, m >= upper))
    value = sp.Piecewise(*cases, (inside, True)) if cases else inside
    return StatisticValue(value.subs(m, centre), mean.finite_when, mean.lemmas + [lemma],
                          "E|X - m| = E[X] - m + 2 (m F(m) - G(m)), splitting at the kink m")


def _at_lower_end(expression, m, lower):
    """The expression as m -> lower from above: at a finite end, its value there where SymPy
    finds one (a CDF and a partial mean written with gammainc or betainc are continuous at it;
    SymPy's limit cannot place the sign of a - 1 in lowergamma(a, z) as z -> 0), else the limit."""
    if lower.is_finite:
        value = expression.subs(m, lower).doit()
        # I_x(a, b) from x to x is an integral over an empty interval (SymPy leaves it standing).
        value = value.replace(lambda e: isinstance(e, sp.betainc_regularized) and e.args[2] == e.args[3],
                              lambda e: sp.Integer(0))
        if value.is_finite:
            return value
    return sp.Limit(expression, m, lower, "+")


def _first_piece(expression):
    # The piece that holds at the lower end of the support (Laplace's m < loc).
    return expression.args[0].expr if isinstance(expression, sp.Piecewise) else expression


def _uniform_expectation(p: dict, statistic) -> StatisticValue:
    low, high = p["low"], p["high"]
    if isinstance(statistic, sp.Abs):
        centre = kink(statistic)
        mean = (low + high) / 2
        value = sp.Piecewise((mean - centre, centre <= low), (centre - mean, centre >= high),
                             (((centre - low) ** 2 + (high - centre) ** 2) / (2 * (high - low)), True))
        how = "E|X - m| under a Uniform: integrated on each side of m"
        m = sp.Symbol("m", real=True)
        width = high - low
        lemma = Lemma("Uniform: E|X - m| = ((m - low)^2 + (high - m)^2) / (2 (high - low)) for low <= m <= high",
                      (_integral((m - x) / width, low, m) + _integral((x - m) / width, m, high),
                       ((m - low) ** 2 + (high - m) ** 2) / (2 * width)),
                      (_integral((x - m) / width, low, high), (low + high) / 2 - m))
        return StatisticValue(value, how=how, lemmas=[lemma])
    logarithm = _log_of_linear(statistic)
    if logarithm is not None:
        # log(c + x) or log(c - x): with y = c -+ x, the antiderivative y log y - y, written with
        # xlogy so that an end of the support at y = 0 gives 0 (SymPy's own antiderivative of
        # log(1 - x) takes logs of negative numbers that cancel only as complex values).
        slope, offset = logarithm
        def antiderivative(end):
            y = slope * end + offset
            return (_xlogy(y, y) - y) / slope
        value = (antiderivative(high) - antiderivative(low)) / (high - low)
        return StatisticValue(value, how=f"E[{statistic}] under a Uniform: y log y - y over (low, high)")
    value = sp.integrate(statistic, (x, low, high), conds="none") / (high - low)
    value = value.replace(lambda e: e.is_Mul and len(e.args) == 2 and any(
        isinstance(a, sp.log) and a.args[0] in (low, high) for a in e.args) and
        any(a in (low, high) for a in e.args),
        lambda e: _xlogy_of(e))
    return StatisticValue(value, how=f"E[{statistic}] under a Uniform: integrated over (low, high)")


def _log_of_linear(statistic):
    """(slope, offset) of log(slope x + offset), slope = +-1; None for another statistic."""
    if not isinstance(statistic, sp.log):
        return None
    argument = statistic.args[0]
    slope = sp.diff(argument, x)
    if slope not in (1, -1) or sp.diff(argument, x, 2) != 0:
        return None
    return slope, argument.subs(x, 0)


def _xlogy(a, b):
    from .families import xlogy

    return xlogy(a, b)


def _xlogy_of(product):
    from .families import xlogy

    factor = next(a for a in product.args if not isinstance(a, sp.log))
    logarithm = next(a for a in product.args if isinstance(a, sp.log))
    return xlogy(factor, logarithm.args[0])


# --- a pair ---------------------------------------------------------------------------------


@dataclass
class Pair:
    """What ``symgen.kl`` found for (P, Q): a closed form (``derivation``), or why not."""

    p: str
    q: str
    status: str                      # "closed form", "infinite", "no closed form"
    reason: str = ""
    derivation: Derivation | None = None

    @property
    def name(self) -> str:
        return function_name(self.p, self.q)


def function_name(p: str, q: str) -> str:
    return f"kl_{p.lower()}_{q.lower()}"


def _support_condition(fam_p, p, fam_q, q):
    lower_p, upper_p = fam_p.support(p)
    lower_q, upper_q = fam_q.support(q)
    condition = sp.And(sp.Ge(lower_p, lower_q), sp.Le(upper_p, upper_q))
    return condition, f"P's support ({lower_p}, {upper_p}) must lie in Q's ({lower_q}, {upper_q})"


@functools.lru_cache(maxsize=None)
def kl_pair(p_name: str, q_name: str) -> Pair:
    """The pair's derivation, or the reason it has none (infinite, no closed form)."""
    return family_pair(family(p_name), family(q_name))


def family_pair(fam_p: Family, fam_q: Family) -> Pair:
    p, q = fam_p.symbols("p"), fam_q.symbols("q")
    if set(p.values()) & set(q.values()):
        raise ValueError(f"P ({fam_p.name}) and Q ({fam_q.name}) share parameters "
                         f"{sorted(map(str, set(p.values()) & set(q.values())))}: name them apart")
    support, support_text = _support_condition(fam_p, p, fam_q, q)
    if support == sp.false:
        return Pair(fam_p.name, fam_q.name, "infinite", f"Q's support does not cover P's: {support_text}")
    log_ratio = fam_p.log_density(p) - fam_q.log_density(q)
    statistics = split_statistics(log_ratio)
    values, conditions, hows, missing = {}, [support], [], []
    for statistic in statistics:
        try:
            found = statistic_expectation(fam_p, p, statistic)
        except Infinite as error:
            # A divergent expectation decides, whatever the other terms.
            return Pair(fam_p.name, fam_q.name, "infinite", str(error))
        except NoClosedForm as error:
            missing.append(str(error))
            continue
        values[statistic] = found.value
        conditions.append(found.finite_when)
        if found.how:
            hows.append(found.how)
    if missing:
        return Pair(fam_p.name, fam_q.name, "no closed form", "no identity for " + "; ".join(missing))
    finite = sp.And(*conditions)
    if finite == sp.false:
        return Pair(fam_p.name, fam_q.name, "infinite", "a moment that log q needs diverges under P")
    derivation = _derivation(fam_p, p, fam_q, q, statistics, values, finite, hows)
    return Pair(fam_p.name, fam_q.name, "closed form", derivation=derivation)


def _params(fam: Family, symbols: dict, which: str) -> list[Param]:
    return [Param(symbols[parameter.name], parameter.domain, f"{parameter.doc} of {which}")
            for parameter in fam.parameters]


def _derivation(fam_p, p, fam_q, q, statistics, values, finite, hows) -> Derivation:
    name = function_name(fam_p.name, fam_q.name)
    p_args, q_args = tuple(p.values()), tuple(q.values())
    requires = []
    for fam, symbols in ((fam_p, p), (fam_q, q)):
        if fam.name == "Uniform":
            requires.append((symbols["low"] < symbols["high"], "low < high"))
    derivation = Derivation(
        name, title=f"KL divergence from {fam_q.name} to {fam_p.name}",
        summary=f"KL({fam_p.name}({', '.join(map(str, p_args))}) || {fam_q.name}({', '.join(map(str, q_args))})), "
                "in nats.",
        kind="divergence", references=[REFERENCE], params=_params(fam_p, p, "P") + _params(fam_q, q, "Q"),
        requires=requires, returns="KL(P || Q) >= 0 (oo where it diverges), broadcast over the arguments")
    # Cached by the families' and the engine's text; a user's pair (not in FAMILIES) is not.
    builtin = fam_p.name in FAMILIES and fam_q.name in FAMILIES
    derivation.source = Path(__file__).with_name("families.py") if builtin else None
    derivation.finite_where = [] if finite == sp.true else [finite]
    derivation.module = sys.modules[__name__]
    # Its branches are evaluated over every entry, so NumPy's warnings from a branch not taken
    # are silenced in the generated function (symgen/engine/printer.py).
    derivation.branches_evaluated_everywhere = True
    definition = FamilyExpectation(fam_p.log_density(p) - fam_q.log_density(q), x, fam_p.name, *p_args)
    chain = derivation.define(definition, "definition: the expected log-ratio under P")
    split = sum(coefficient * FamilyExpectation(statistic, x, fam_p.name, *p_args)
                for statistic, coefficient in statistics.items())
    chain.step(split, "linearity of E: the log-ratio is a sum of single statistics of x, each with its "
                      "coefficient")
    chain.step(sum(coefficient * values[statistic] for statistic, coefficient in statistics.items()),
               "each expectation from an identity proved by SymPy: " + "; ".join(dict.fromkeys(hows)))
    infinite = finite != sp.true
    chain.step(lambda previous: _with_infinity(_tidy(previous), finite),
               "collect terms" + ("; +oo where the KL diverges (" + sp.sstr(sp.Not(finite)) + ")" if infinite else ""))
    coincide = _coincidence(fam_p, p, fam_q, q) if builtin else None
    if coincide is None:
        chain.stable(lambda previous: _with_infinity(in_library_functions(_finite(previous)), finite),
                     "evaluated with scipy.special's functions")
    else:
        chain.stable(lambda previous: _with_infinity(_near_equal(name, p_args + q_args, _finite(previous), coincide),
                                                     finite),
                     f"where every parameter difference from P = Q is below {NEAR} of its unit, the Taylor "
                     f"series of the closed form through order {SERIES_ORDER - 1} in the exact differences "
                     "(the closed form's terms cancel there); elsewhere the closed form, in scipy.special's "
                     "functions")
    _add_checks(derivation, fam_p, fam_q, len(p_args))
    return derivation


def _tidy(expression):
    # Products distributed over sums, like terms collected; powers of sums kept whole, so a
    # square of a difference ((loc_p - loc_q)^2) is not expanded into terms that cancel.
    return sp.expand(expression, multinomial=False, power_exp=False, log=False)


def _finite(expression):
    if isinstance(expression, sp.Piecewise) and expression.args[-1].expr == sp.oo:
        return expression.args[0].expr
    return expression


def _with_infinity(expression, finite):
    if finite == sp.true:
        return expression
    return sp.Piecewise((expression, finite), (sp.oo, True))


def _coincidence(fam_p, p, fam_q, q):
    """The parameters that differ where P = Q, with the value each takes there and its unit."""
    if fam_p.name == fam_q.name:
        values = {q[name]: p[name] for name in q}
    elif (fam_p.name, fam_q.name) in COINCIDE:
        values = COINCIDE[fam_p.name, fam_q.name](p, q)
    else:
        return None
    units = {}
    for symbol, value in values.items():
        fam, symbols = (fam_q, q) if symbol in q.values() else (fam_p, p)
        name = next(key for key, item in symbols.items() if item == symbol)
        unit = fam.units.get(name)
        if unit is None:
            units[symbol] = sp.Abs(value) if value != 0 else sp.Integer(1)
        elif isinstance(unit, tuple):  # noqa: SIM114
            units[symbol] = _same_in(p, symbols, unit[0]) - _same_in(p, symbols, unit[1])
        else:
            units[symbol] = _same_in(p, symbols, unit)
    return values, units


def _same_in(p, symbols, name):
    # The unit is P's parameter of that name where P has it (its scale), else the symbol's own.
    return p.get(name, symbols[name])


def _near_equal(name, params, closed, coincide):
    """The closed form near P = Q: a branch evaluating its Taylor series in the exact parameter
    differences. The series is a function of its own (``<name>_near``) whose meaning is the
    closed form, resting on a lemma: the closed form's Taylor coefficients through order
    SERIES_ORDER - 1, differentiated by mpmath (not by the series' recurrences), are the
    series'. What the truncation leaves, ~NEAR^(SERIES_ORDER - 2) relative, the accuracy check
    against 50 digits measures.

    A term t log t whose t vanishes at P = Q (a Uniform's low log(low) against a Beta) is not
    analytic there; it enters the series as a variable of its own, the closed form being a
    polynomial in it, and the branch evaluates it as scipy's xlogy(t, t), accurate at any t."""
    values, units = coincide
    values = dict(values)
    epsilon = sp.Symbol("epsilon", positive=True)
    singular = {atom: sp.Dummy(f"xlogx_{index}", real=True)
                for index, atom in enumerate(sorted(closed.atoms(xlogy), key=sp.default_sort_key))
                if atom.args[0] == atom.args[1] and atom.args[0].xreplace(values) == 0}
    # The other x log x terms are analytic at P = Q: their meaning goes into the series.
    closed_there = closed.xreplace(singular).replace(lambda e: isinstance(e, xlogy),
                                                                lambda e: e.args[0] * sp.log(e.args[1]))
    parameters = list(values)
    values.update({variable: sp.Integer(0) for variable in singular.values()})
    deltas = {symbol: sp.Dummy(f"d_{symbol.name}", real=True) for symbol in values}
    along = {symbol: values[symbol] + epsilon * deltas[symbol] for symbol in values}
    series = _series(closed_there.xreplace(along), epsilon)
    if series.has(sp.nan, sp.zoo, sp.oo, -sp.oo):
        # Not analytic where P = Q: no series branch.
        return in_library_functions(closed)
    printed = series.subs(epsilon, 1).xreplace(
        {**{deltas[symbol]: parameter_difference(symbol, values[symbol]) for symbol in parameters},
         **{deltas[variable]: atom for atom, variable in singular.items()}})
    agreement = Lemma(f"{name}: the closed form's Taylor coefficients about P = Q through order "
                      f"{SERIES_ORDER - 1}, differentiated numerically at 60 digits at two rational points, "
                      "are the series' to 25 digits",
                      (_SeriesRemainder(closed_there, series, epsilon, tuple(along.items())), 0))
    arguments = tuple(params)
    near_function = special_function(
        f"{name}_near", len(arguments),
        meaning=lambda *values_: closed.xreplace(dict(zip(arguments, values_))),
        numpy=lambda *values_: in_library_functions(printed).xreplace(dict(zip(arguments, values_))),
        lemmas=[agreement], real=True,
        doc=f"{name} near P = Q by its Taylor series through order {SERIES_ORDER - 1}.")
    near = sp.And(*[sp.Abs(parameter_difference(symbol, values[symbol])) < NEAR * units[symbol]
                    for symbol in parameters])
    return sp.Piecewise((near_function(*arguments), near), (in_library_functions(closed), True))


class _SeriesRemainder(sp.Expr):
    """The largest difference, at two rational points, between the Taylor coefficients of the
    closed form along P = Q + epsilon delta (by mpmath's numerical differentiation at 60 digits,
    a route independent of the series' recurrences) and those of the series: 0 when they agree
    to 25 digits. Each piece of a piecewise closed form (Laplace's sides of loc_p = loc_q) is
    analytic through epsilon = 0 and is compared by itself."""

    def doit(self, **hints):
        closed, series, epsilon, along = self.args
        shifted = sp.piecewise_fold(closed.xreplace(dict(along)))
        pieces = ([(piece.expr, piece.cond) for piece in shifted.args] if isinstance(shifted, sp.Piecewise)
                  else [(shifted, sp.true)])
        expansions = ([piece.expr for piece in series.args] if isinstance(series, sp.Piecewise) else [series])
        if len(expansions) != len(pieces):
            return self
        worst = sp.Integer(0)
        for point in _rational_points(closed.free_symbols | series.free_symbols - {epsilon}):
            for (piece, _), expansion in zip(pieces, expansions):
                worst = max(worst, _coefficient_disagreement(piece.xreplace(point), expansion.xreplace(point), epsilon))
        return worst


def _rational_points(symbols):
    """Two points with every parameter a different simple rational (positive: the families'
    parameters are), and every direction of approach nonzero."""
    ordered = sorted(symbols, key=sp.default_sort_key)
    return [{symbol: sp.Rational(5 + 3 * k + shift, 7 + 2 * k) for k, symbol in enumerate(ordered)}
            for shift in (0, 4)]


def _coefficient_disagreement(function, expansion, epsilon):
    """max_k |c_k - e_k| / max(1, |c_k|) over the orders below SERIES_ORDER, c_k from mpmath's
    Taylor coefficients of ``function`` at 0 and e_k those of ``expansion`` (a polynomial)."""
    evaluate = sp.lambdify(epsilon, function, "mpmath")
    polynomial = sp.Poly(sp.expand(expansion), epsilon)
    worst = mpmath.mpf(0)
    with mpmath.workdps(60):
        numeric = mpmath.taylor(evaluate, 0, SERIES_ORDER - 1)
        for order in range(SERIES_ORDER):
            expected = mpmath.mpf(sp.N(polynomial.coeff_monomial(epsilon**order), 60)) if order <= polynomial.degree() \
                else mpmath.mpf(0)
            worst = max(worst, abs(numeric[order] - expected) / max(1, abs(numeric[order])))
    return sp.Integer(0) if worst < mpmath.mpf(10) ** -25 else sp.Float(worst, 5)


def _series(expression, epsilon):
    """The Taylor series in epsilon through SERIES_ORDER - 1, piece by piece where the
    expression has pieces (Laplace's closed form on either side of loc_p = loc_q): each piece
    is smooth, the kink is between them."""
    folded = sp.piecewise_fold(expression)
    if isinstance(folded, sp.Piecewise):
        return sp.Piecewise(*[(_taylor(piece.expr, epsilon), piece.cond) for piece in folded.args])
    return _taylor(folded, epsilon)


def _taylor(expression, epsilon):
    """Taylor polynomial in epsilon through SERIES_ORDER - 1, from the coefficient lists of the
    expression's parts (:func:`_coefficients`). SymPy's series of a whole KL takes minutes where
    this takes a second."""
    total = _zero()
    for term in sp.Add.make_args(sp.expand(expression, multinomial=False, power_exp=False, log=False)):
        term = sp.powsimp(term)      # exp(a) exp(b) -> exp(a + b): one exponential to expand
        total = [a + b for a, b in zip(total, _coefficients(term, epsilon))]
    # At P = Q the KL and its gradient vanish: the coefficients of orders 0 and 1 must simplify to
    # 0 (left as terms, they would cancel only numerically, ~1e-16/delta relative).
    total[:2] = [sp.simplify(sp.gammasimp(coefficient)) for coefficient in total[:2]]
    return sp.expand(sum(coefficient * epsilon**order for order, coefficient in enumerate(total)))


def _zero() -> list:
    return [sp.Integer(0)] * SERIES_ORDER


def _constant(value) -> list:
    return [value] + [sp.Integer(0)] * (SERIES_ORDER - 1)


def _coefficients(expression, epsilon) -> list:
    """Taylor coefficients in epsilon (orders 0 to SERIES_ORDER - 1) by the rules for series:
    sums add, products multiply (truncated), a constant power of a series with a nonzero
    constant term by J. C. P. Miller's recurrence (Knuth, TAOCP vol. 2, 4.7, Eq. 9), exp and
    log by their recurrences, log Gamma and polygamma of a linear argument by their own
    derivatives (polygammas); anything else by differentiating. A power with epsilon in its
    exponent, or Gamma, goes through its logarithm, whose coefficients stay small."""
    if not expression.has(epsilon):
        return _constant(expression)
    if isinstance(expression, sp.Add):
        total = _zero()
        for term in expression.args:
            total = [a + b for a, b in zip(total, _coefficients(term, epsilon))]
        return total
    if isinstance(expression, sp.Mul):
        product = _constant(sp.Integer(1))
        for factor in expression.args:
            product = _multiply(product, _coefficients(factor, epsilon))
        return product
    if isinstance(expression, sp.Pow) and expression.exp.has(epsilon):
        return _exponential(_coefficients(expression.exp * sp.log(expression.base), epsilon))
    if isinstance(expression, sp.Pow):
        base = _coefficients(expression.base, epsilon)
        if base[0] != 0:
            return _power(base, expression.exp)
    if isinstance(expression, sp.exp):
        return _exponential(_coefficients(expression.args[0], epsilon))
    if isinstance(expression, sp.gamma):
        return _exponential(_coefficients(sp.loggamma(expression.args[0]), epsilon))
    if isinstance(expression, sp.log):
        inner = _coefficients(expression.args[0], epsilon)
        if inner[0] != 0:
            return _logarithm(inner)
    if isinstance(expression, (sp.loggamma, sp.digamma, sp.polygamma)):
        order, argument = (expression.args if isinstance(expression, sp.polygamma) else
                           (-1 if isinstance(expression, sp.loggamma) else 0, expression.args[0]))
        inner = _coefficients(argument, epsilon)
        if all(coefficient == 0 for coefficient in inner[2:]):
            # f(a + b epsilon) = sum_k f^(k)(a) b^k epsilon^k / k!, with f^(k) a polygamma.
            derivative = (lambda k: sp.loggamma(inner[0]) if k == 0 else sp.polygamma(k - 1, inner[0])) \
                if order == -1 else (lambda k: sp.polygamma(order + k, inner[0]))
            return [derivative(k) * inner[1] ** k / sp.factorial(k) for k in range(SERIES_ORDER)]
    return _derivative_coefficients(expression, epsilon)


def _derivative_coefficients(expression, epsilon) -> list:
    coefficients, derivative = [], expression
    for order in range(SERIES_ORDER):
        coefficients.append(sp.expand(derivative.subs(epsilon, 0)) / sp.factorial(order))
        derivative = sp.diff(derivative, epsilon)
    return coefficients


def _multiply(a: list, b: list) -> list:
    return [sp.expand(sum(a[i] * b[order - i] for i in range(order + 1) if a[i] != 0 and b[order - i] != 0))
            for order in range(SERIES_ORDER)]


def _power(a: list, exponent) -> list:
    """Coefficients of a(epsilon)^exponent, a_0 != 0: b_0 = a_0^exponent and
    b_k = (1/(k a_0)) sum_{j=1..k} ((exponent + 1) j - k) a_j b_{k-j}."""
    b = [a[0] ** exponent]
    for k in range(1, SERIES_ORDER):
        b.append(sp.expand(sum(((exponent + 1) * j - k) * a[j] * b[k - j] for j in range(1, k + 1) if a[j] != 0)
                           / (k * a[0])))
    return b


def _logarithm(a: list) -> list:
    """Coefficients of log a(epsilon), a_0 != 0: c_k = (a_k - (1/k) sum_{j=1..k-1} j c_j a_{k-j}) / a_0."""
    c = [sp.log(a[0])]
    for k in range(1, SERIES_ORDER):
        c.append(sp.expand((a[k] - sum(j * c[j] * a[k - j] for j in range(1, k) if a[k - j] != 0) / k) / a[0]))
    return c


def _exponential(h: list) -> list:
    """Coefficients of exp(h(epsilon)): e_0 = exp(h_0), e_k = (1/k) sum_{j=1..k} j h_j e_{k-j}."""
    e = [sp.exp(h[0])]
    for k in range(1, SERIES_ORDER):
        e.append(sp.expand(sum(j * h[j] * e[k - j] for j in range(1, k + 1) if h[j] != 0) / k))
    return e


# --- empirical checks: samples and quadrature from SciPy's distributions ----------------------

#: Monte Carlo draws; 200 batch means. The batch-means t test's false alarm is <= 1e-6 where the
#: log-ratio has a finite variance (the points drawn are where the KL is finite).
SAMPLES = 400_000


def _split(arguments: dict, count_p: int):
    values = list(arguments.values())
    return values[:count_p], values[count_p:]


def _add_checks(derivation: Derivation, fam_p: Family, fam_q: Family, count_p: int):
    def sample_log_ratio(rng, n, **arguments):
        p_values, q_values = _split(arguments, count_p)
        law_p, law_q = fam_p.scipy(stats, *p_values), fam_q.scipy(stats, *q_values)
        draws = law_p.rvs(size=n, random_state=rng)
        return law_p.logpdf(draws) - law_q.logpdf(draws)

    def quadrature(**arguments):
        p_values, q_values = _split(arguments, count_p)
        return quadrature_kl(fam_p, p_values, fam_q, q_values)

    if fam_p.can_sample:
        derivation.add_check(MeanCheck(sample_log_ratio, "E_P[log p(X) - log q(X)] by Monte Carlo under P",
                                       samples=SAMPLES, batches=200))
    derivation.add_check(IdentityCheck(quadrature, "the same integral by adaptive quadrature (scipy)",
                                       rtol=1e-8, atol=1e-12))


def quadrature_kl(fam_p: Family, p_values, fam_q: Family, q_values) -> float:
    """KL(P || Q) by scipy.integrate.quad of p (log p - log q) over P's support, split at the
    quantiles of P so the integrand's mass is where the quadrature looks."""
    law_p, law_q = fam_p.scipy(stats, *p_values), fam_q.scipy(stats, *q_values)
    lower, upper = law_p.support()
    if law_q.support()[0] > lower or law_q.support()[1] < upper:
        return float("inf")

    def integrand(t):
        log_p = law_p.logpdf(t)
        if not np.isfinite(log_p):
            return 0.0
        return float(np.exp(log_p) * (log_p - law_q.logpdf(t)))

    cuts = ([float(law_p.ppf(level)) for level in (1e-12, 0.01, 0.25, 0.5, 0.75, 0.99, 1 - 1e-12)]
            if hasattr(law_p, "ppf") else [])
    cuts += [float(v) for v in q_values if lower < v < upper] + [float(v) for v in p_values if lower < v < upper]
    ends = sorted({lower, upper, *(c for c in cuts if lower < c < upper)})
    return float(sum(integrate.quad(integrand, a, b, epsabs=1e-15, epsrel=1e-12, limit=200)[0]
                     for a, b in zip(ends, ends[1:])))


def quadrature_function(p_name: str, q_name: str):
    """KL(P || Q) by quadrature for a pair without a closed form: a NumPy-vectorised function of
    P's then Q's parameters, labelled ``quadrature`` (it is not derived)."""
    fam_p, fam_q = family(p_name), family(q_name)
    count_p = len(fam_p.parameters)

    def kl_by_quadrature(*arguments):
        arrays = np.broadcast_arrays(*map(np.asarray, arguments))
        out = np.empty(arrays[0].shape)
        for index in np.ndindex(out.shape):
            values = [float(a[index]) for a in arrays]
            out[index] = quadrature_kl(fam_p, values[:count_p], fam_q, values[count_p:])
        return out[()] if out.ndim == 0 else out

    kl_by_quadrature.__name__ = function_name(fam_p.name, fam_q.name) + "_quadrature"
    kl_by_quadrature.kind = "quadrature"
    kl_by_quadrature.__doc__ = (f"KL({fam_p.name} || {fam_q.name}) by scipy.integrate.quad (no closed form "
                                "here): arguments P's then Q's parameters.")
    return kl_by_quadrature


def table() -> list[Pair]:
    """Every ordered pair of the families, classified."""
    return [kl_pair(p, q) for p in FAMILIES for q in FAMILIES]


# --- the public answer ----------------------------------------------------------------------


class KL:
    """``symgen.kl(P, Q)``: KL(P || Q) for two families named as torch.distributions names them.

    Call it with P's parameters then Q's, positional in torch's order (``kl("Gamma", "Gamma")(
    concentration_p, rate_p, concentration_q, rate_q)``), or by keyword (``rate_p=...``); arrays
    broadcast, and bad input raises ``ValueError`` naming the argument, as the catalogue's
    functions do. ``status`` is "closed form", "infinite" or "no closed form"; ``reason`` says
    why for the last two; ``derivation`` is the proved chain; ``show()`` prints it;
    ``verify()`` proves it, checks the generated function against 50-digit mpmath and runs its
    Monte Carlo and quadrature checks. A pair without a closed form is evaluated by quadrature
    (``kind == "quadrature"``)."""

    def __init__(self, p, q):
        if isinstance(p, Density) and isinstance(q, Density):
            fam_p, fam_q = p.family(), q.family()
            self.pair = family_pair(fam_p, fam_q)
        elif isinstance(p, Density) or isinstance(q, Density):
            raise ValueError("give two family names, or two Density objects")
        else:
            fam_p, fam_q = family(p), family(q)
            self.pair = kl_pair(fam_p.name, fam_q.name)
        self.status, self.reason, self.derivation = self.pair.status, self.pair.reason, self.pair.derivation
        self.name = self.pair.name
        self.parameters = [str(s) for s in fam_p.symbols("p").values()] + \
            [str(s) for s in fam_q.symbols("q").values()]
        self.kind = {"closed form": "closed form", "no closed form": "quadrature", "infinite": "infinite"}[self.status]
        self._function = None

    def __repr__(self):
        detail = f": {self.reason}" if self.reason else ""
        return f"<KL {self.pair.p} || {self.pair.q}, {self.status}{detail}>"

    @property
    def function(self):
        if self._function is None:
            if self.derivation is not None:
                from .runner import generated_function

                self.derivation.prove()
                self._function = generated_function(self.derivation)
            elif self.status == "no closed form":
                self._function = quadrature_function(self.pair.p, self.pair.q)
            else:
                self._function = _infinite_function(self)
        return self._function

    def __call__(self, *arguments, **keywords):
        return self.function(*arguments, **keywords)

    def show(self) -> str:
        if self.derivation is None:
            return f"KL({self.pair.p} || {self.pair.q}): {self.status}. {self.reason}\n"
        from symgen import view

        from .record import record_of

        return view.text(record_of(self.derivation))

    def verify(self, examples: int = 10):
        from .api import VerifyReport, _verify_one

        if self.derivation is None:
            raise ValueError(f"KL({self.pair.p} || {self.pair.q}) has no derivation: {self.status}")
        return VerifyReport(_verify_one(self.derivation, self.name, lambda message: None, examples=examples,
                                        accuracy_points=20, derandomize=True))


def _infinite_function(answer: KL):
    def infinite(*arguments, **keywords):
        values = list(arguments) + list(keywords.values())
        if len(values) != len(answer.parameters):
            raise TypeError(f"{answer.name} takes {len(answer.parameters)} arguments: {', '.join(answer.parameters)}")
        return np.full(np.broadcast(*map(np.asarray, values)).shape, np.inf)[()]

    infinite.__doc__ = f"KL({answer.pair.p} || {answer.pair.q}) = +oo: {answer.reason}"
    return infinite


def kl(p, q) -> KL:
    """KL(P || Q) between two families, by name, or two :class:`Density` objects (see :class:`KL`)."""
    if isinstance(p, str) and isinstance(q, str):
        return _named(family(p).name, family(q).name)
    return KL(p, q)


@functools.lru_cache(maxsize=None)
def _named(p: str, q: str) -> KL:
    return KL(p, q)


def table_text() -> str:
    """The table of ordered pairs: closed form, infinite, or no closed form (with why)."""
    lines = [f"{'P':<12} {'Q':<12} {'KL(P || Q)':<15} why"]
    for pair in table():
        lines.append(f"{pair.p:<12} {pair.q:<12} {pair.status:<15} {pair.reason}")
    return "\n".join(lines) + "\n"


def prove_pair(p_name: str, q_name: str) -> tuple:
    """Derive and prove one pair: (P, Q, "proved" or the error, seconds)."""
    import time

    started = time.perf_counter()
    try:
        kl_pair(p_name, q_name).derivation.prove()
        outcome = "proved"
    except Exception as error:  # noqa: BLE001 - the table reports every failure and goes on
        outcome = f"FAILED: {type(error).__name__}: {error}"
    return p_name, q_name, outcome, time.perf_counter() - started


def prove_table(jobs: int = 1):
    """Every closed-form pair derived and proved, ``jobs`` pairs at a time, each in a process
    of its own (so each is timed as a first derivation would be, apart from the disk cache:
    SYMGEN_CACHE_DIR=off times them cold). Yields prove_pair's tuples as they finish."""
    from concurrent.futures import ProcessPoolExecutor, as_completed

    closed = [(pair.p, pair.q) for pair in table() if pair.status == "closed form"]
    with ProcessPoolExecutor(max_workers=max(1, jobs), max_tasks_per_child=1) as pool:
        futures = [pool.submit(prove_pair, *pair) for pair in closed]
        for future in as_completed(futures):
            yield future.result()


# --- a user's own densities ----------------------------------------------------------------------

#: Families made from users' densities, by name (FamilyExpectation finds them here).
USER_FAMILIES: dict = {}


@dataclass
class Density:
    """A user's density for ``symgen.kl``: its log-density, a SymPy expression in ``variable``
    and the parameters; its ``support`` (lower, upper), which may involve the parameters; and
    each parameter's domain (``Real(...)``, ``Positive(...)``), as a dict {symbol: domain}.
    The parameters' names become the KL function's arguments, so P's and Q's must differ
    (mu_p, mu_q). ``sample(rng, n, **params)`` optionally draws from it, for the Monte Carlo
    check; without it the value is checked by quadrature alone."""

    log_density: sp.Basic
    variable: sp.Symbol
    support: tuple
    params: dict
    name: str = "P"
    sample: object = None

    def family(self) -> Family:
        from .families import Parameter

        log_density = sp.sympify(self.log_density).xreplace({self.variable: x})
        support = tuple(sp.sympify(end).xreplace({self.variable: x}) for end in self.support)
        parameters = tuple(Parameter(symbol.name, bool(symbol.is_positive), domain, f"parameter {symbol.name}")
                           for symbol, domain in self.params.items())
        symbols = {symbol.name: symbol for symbol in self.params}
        stray = log_density.free_symbols - set(self.params) - {x}
        if stray:
            raise ValueError(f"density {self.name!r}: log_density has symbols that are not parameters: "
                             f"{sorted(map(str, stray))}")
        own = Family(self.name, parameters,
                     lambda p: [(coefficient, statistic) for statistic, coefficient in
                                split_statistics(log_density.xreplace({symbols[k]: v for k, v in p.items()})).items()],
                     lambda p: tuple(end.xreplace({symbols[k]: v for k, v in p.items()}) for end in support),
                     lambda stats_, *values: _UserLaw(log_density, support, list(self.params), values, self.sample),
                     special=lambda p, statistic: _integrated_expectation(own, p, statistic))
        own.fixed_symbols = symbols
        own.can_sample = self.sample is not None
        USER_FAMILIES[self.name] = own
        return own


def _integrated_expectation(fam: Family, p: dict, statistic):
    """E[statistic] under a user's density: SymPy integrates it against the density over the
    support (the integral is the lemma); None where SymPy leaves an integral."""
    lower, upper = fam.support(p)
    integrand = statistic * sp.exp(fam.log_density(p))
    value = sp.integrate(integrand, (x, lower, upper), conds="none")
    if value.has(sp.Integral):
        raise NoClosedForm(f"E[{statistic}] under {fam.name}: SymPy could not integrate "
                           f"{sp.sstr(integrand)} over ({lower}, {upper})")
    return sp.simplify(value), Lemma(f"{fam.name}: E[{statistic}] by integration against the density",
                                     (_integral(integrand, lower, upper), value))


class _UserLaw:
    """What the checks ask of a SciPy distribution (logpdf, support, rvs), for a user's density."""

    def __init__(self, log_density, support, symbols, values, sample):
        substitution = dict(zip(symbols, values))
        self._logpdf = sp.lambdify(x, log_density.xreplace(substitution), "numpy")
        self._support = tuple(float(end.xreplace(substitution)) for end in support)
        self._sample, self._values = sample, dict(zip((s.name for s in symbols), values))

    def logpdf(self, t):
        return self._logpdf(t)

    def support(self):
        return self._support

    def rvs(self, size, random_state):
        if self._sample is None:
            raise ValueError("this density has no sampler: pass Density(..., sample=...)")
        return np.asarray(self._sample(random_state, size, **self._values), dtype=float)


# --- generated into the package by `symgen build` -----------------------------------------------

PACKAGE = "kl_pairs"
FAMILIES_BY_LOWER = {name.lower(): name for name in FAMILIES}


def inputs_line() -> str:
    """What the generated pairs are made from: the engine's source (families, this module, the
    printer) and SymPy's version."""
    from . import cache

    return f"engine {cache.engine_fingerprint()[:16]}, SymPy {sp.__version__}"


def generated_current(directory: Path) -> bool:
    """Whether symgen/kl_pairs/ is what a build would write, without deriving: made from the
    same inputs, and every module as the build recorded it."""
    init = directory / "__init__.py"
    if not init.is_file():
        return False
    header = init.read_text().splitlines()[:4]
    if len(header) < 4 or header[2] != f"# Inputs: {inputs_line()}" or not header[3].startswith("# Modules: "):
        return False
    recorded = json.loads(header[3].removeprefix("# Modules: "))
    present = {path.name for path in directory.glob("*.py")} - {"__init__.py"}
    return present == set(recorded) and all(
        hashlib.sha256((directory / name).read_bytes()).hexdigest()[:16] == digest
        for name, digest in recorded.items())


def generated_files() -> dict[str, str]:
    """symgen/kl_pairs/: a module per P family with the closed-form pairs' NumPy functions,
    and an __init__ with the table (status, reason, arguments, module) that ``symgen.kl``
    reads without loading SymPy."""
    from .printer import module_source

    files, rows = {}, []
    by_p: dict = {}
    for pair in table():
        fam_p, fam_q = FAMILIES[pair.p], FAMILIES[pair.q]
        arguments = [str(s) for s in fam_p.symbols("p").values()] + [str(s) for s in fam_q.symbols("q").values()]
        module = pair.p.lower() if pair.derivation is not None else None
        rows.append((pair.p, pair.q, pair.status, pair.reason, arguments, module, pair.name))
        if pair.derivation is not None:
            pair.derivation.derive()
            by_p.setdefault(module, []).append(pair.derivation)
    for module, members in sorted(by_p.items()):
        source = module_source(module, members).replace(
            f"# GENERATED by `symgen build` from derivations/{module}.py",
            "# GENERATED by `symgen build` from symgen/engine/families.py")
        for member in members:
            p_name, q_name = member.name.split("_")[1:3]
            source = source.replace(
                f"Derived step by step in derivations/families.py (``symgen show {member.name}``; the page\n"
                f"    docs/{member.name}.md).",
                f"Derived step by step, every step proved: ``symgen kl {FAMILIES_BY_LOWER[p_name]} "
                f"{FAMILIES_BY_LOWER[q_name]}``.")
        files[f"symgen/{PACKAGE}/{module}.py"] = source
    digests = {Path(relative).name: hashlib.sha256(contents.encode()).hexdigest()[:16]
               for relative, contents in files.items()}
    lines = ["# GENERATED by `symgen build` from symgen/engine/families.py and symgen/engine/kl.py: do not edit.",
             "# `symgen build --check` (run by the tests) fails when this file is stale.",
             f"# Inputs: {inputs_line()}",
             f"# Modules: {json.dumps(digests, sort_keys=True)}",
             '"""KL(P || Q) between torch.distributions\' families: the table of ordered pairs, and the',
             "closed forms' NumPy functions, one module per P family, imported on first use.",
             '"""',
             "",
             "# (P, Q) -> (status, reason, arguments, module, function name)",
             "PAIRS = {"]
    for p_name, q_name, status, reason, arguments, module, name in rows:
        lines.append(f"    ({p_name!r}, {q_name!r}): ({status!r}, {reason!r}, {tuple(arguments)!r}, {module!r}, {name!r}),")
    lines += ["}", ""]
    files[f"symgen/{PACKAGE}/__init__.py"] = "\n".join(lines)
    return files
