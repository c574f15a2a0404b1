"""Expectations kept unevaluated until a proof or a spot check asks for them.

A step can show ``E_{x ~ N(loc, scale^2)}[f(x)]`` and the engine still evaluates it two
ways that share nothing: exactly (``doit``: SymPy integrates) and numerically
(``evalf``: quadrature). The probability of an interval under a Gaussian,
:data:`log_gaussian_mass`, is the same idea for an indicator.
"""
from __future__ import annotations

import functools
import itertools

import mpmath
import sympy as sp

from .densities import normal_pdf
from .functions import special_function

class Expectation(sp.Expr):
    """Base of the unevaluated expectations: ``doit`` evaluates exactly, ``evalf`` by
    quadrature (the proofs and the spot checks of symgen/engine/derivation.py use both)."""


class GaussianExpectation(Expectation):
    """E_{x ~ N(loc, scale^2)}[f(x)], kept unevaluated until asked.

    ``doit`` evaluates it by SymPy's integration (through ``sympy.stats``), ``evalf``
    by mpmath quadrature: two routes that share nothing, so a step that evaluates
    an expectation is checked against both.
    """

    def __new__(cls, integrand, variable, loc, scale):
        return sp.Expr.__new__(cls, sp.sympify(integrand), variable, sp.sympify(loc), sp.sympify(scale))

    integrand = property(lambda self: self.args[0])
    variable = property(lambda self: self.args[1])
    loc = property(lambda self: self.args[2])
    scale = property(lambda self: self.args[3])

    @property
    def free_symbols(self):
        return (self.integrand.free_symbols - {self.variable}) | self.loc.free_symbols | self.scale.free_symbols

    def doit(self, **hints):
        from sympy import stats

        integrand = self.integrand.doit(**hints) if hints.get("deep", True) else self.integrand
        draw = stats.Normal(f"_{self.variable}", self.loc, self.scale)
        return sp.simplify(stats.E(integrand.subs(self.variable, draw)))

    def _eval_evalf(self, prec):
        dps = max(15, mpmath.libmp.prec_to_dps(prec))
        loc, scale = (sp.Float(arg.evalf(dps + 10), dps + 10) for arg in (self.loc, self.scale))
        if not (loc.is_number and scale.is_number):
            return None
        integrand = sp.lambdify(self.variable, self.integrand, "mpmath")
        with mpmath.workdps(dps + 10):
            m, s = mpmath.mpf(str(loc)), mpmath.mpf(str(scale))
            # Integrate in standard units so the quadrature sees a fixed bell shape.
            value = mpmath.quad(lambda z: integrand(m + s * z) * mpmath.npdf(z), [-mpmath.inf, 0, mpmath.inf])
        return sp.Float(value, dps)

    def _latex(self, printer):
        law = rf"\mathcal{{N}}\left({printer._print(self.loc)},\, {printer._print(self.scale ** 2)}\right)"
        return (rf"\mathbb{{E}}_{{{printer._print(self.variable)} \sim {law}}}"
                rf"\left[{printer._print(self.integrand)}\right]")

    def _sympystr(self, printer):
        return (f"E[{printer._print(self.integrand)}; {printer._print(self.variable)} ~ "
                f"N({printer._print(self.loc)}, {printer._print(self.scale ** 2)})]")


class MvnExpectation(Expectation):
    """E_{x ~ N(loc, cov)}[f(x)] for a column-vector variable, kept unevaluated.

    With explicit matrices substituted for the symbols, ``doit`` evaluates it from
    the moments that define loc and cov (E[x_i] = loc_i, E[x_i x_j] = cov_ij +
    loc_i loc_j), which fixes the expectation of any polynomial of degree <= 2 in x;
    ``evalf`` instead uses a tensor Gauss-Hermite rule on a numeric Cholesky factor,
    an independent route.
    """

    def __new__(cls, integrand, variable, loc, cov):
        return sp.Expr.__new__(cls, integrand, variable, loc, cov)

    integrand = property(lambda self: self.args[0])
    variable = property(lambda self: self.args[1])
    loc = property(lambda self: self.args[2])
    cov = property(lambda self: self.args[3])

    @property
    def free_symbols(self):
        return ((self.integrand.free_symbols - {self.variable}) | self.loc.free_symbols
                | self.cov.free_symbols)

    def _explicit(self):
        loc = self.loc.doit()
        cov = self.cov.doit()
        if not isinstance(loc, sp.MatrixBase) or not isinstance(cov, sp.MatrixBase):
            return None
        return sp.ImmutableMatrix(loc), sp.ImmutableMatrix(cov)

    def doit(self, **hints):
        explicit = self._explicit()
        if explicit is None:
            return self
        loc, cov = explicit
        dimension = loc.shape[0]
        components = sp.symbols(f"_x0:{dimension}", real=True)
        integrand = self.integrand.xreplace({self.variable: sp.ImmutableMatrix(components)}).doit()
        polynomial = sp.Poly(sp.expand(integrand), *components)
        if polynomial.total_degree() > 2:
            raise NotImplementedError("MvnExpectation.doit handles polynomials of degree <= 2")
        moments = {}
        for i in range(dimension):
            moments[(i,)] = loc[i]
            for j in range(dimension):
                moments[tuple(sorted((i, j)))] = cov[i, j] + loc[i] * loc[j]
        total = sp.S.Zero
        for powers, coefficient in polynomial.terms():
            indices = tuple(sorted(itertools.chain.from_iterable([k] * p for k, p in enumerate(powers))))
            total += coefficient * (moments[indices] if indices else 1)
        return total

    def _eval_evalf(self, prec):
        explicit = self._explicit()
        if explicit is None:
            return None
        loc, cov = explicit
        if not all(entry.is_number for entry in (*loc, *cov)):
            return None
        dps = max(15, mpmath.libmp.prec_to_dps(prec))
        dimension = loc.shape[0]
        components = sp.symbols(f"_x0:{dimension}", real=True)
        integrand = self.integrand.xreplace({self.variable: sp.ImmutableMatrix(components)}).doit()
        function = sp.lambdify(components, integrand, "mpmath")
        with mpmath.workdps(dps + 10):
            factor = mpmath.cholesky(mpmath.matrix([[mpmath.mpf(str(c.evalf(dps + 10))) for c in row]
                                                    for row in cov.tolist()]))
            mean = [mpmath.mpf(str(m.evalf(dps + 10))) for m in loc]
            nodes, weights = _gauss_hermite(dps + 10)
            value = mpmath.mpf(0)
            for index in itertools.product(range(len(nodes)), repeat=dimension):
                z = [nodes[k] for k in index]
                x = [mean[i] + sum(factor[i, j] * z[j] for j in range(i + 1)) for i in range(dimension)]
                value += mpmath.fprod(weights[k] for k in index) * function(*x)
        return sp.Float(value, dps)

    def _latex(self, printer):
        law = rf"\mathcal{{N}}\left({printer._print(self.loc)},\, {printer._print(self.cov)}\right)"
        return (rf"\mathbb{{E}}_{{{printer._print(self.variable)} \sim {law}}}"
                rf"\left[{printer._print(self.integrand)}\right]")

    def _sympystr(self, printer):
        return (f"E[{printer._print(self.integrand)}; {printer._print(self.variable)} ~ "
                f"N({printer._print(self.loc)}, {printer._print(self.cov)})]")


@functools.lru_cache(maxsize=4)
def _gauss_hermite(dps, points=6):
    """Nodes and weights of the probabilists' Gauss-Hermite rule (exact to degree 11)."""
    with mpmath.workdps(dps):
        hermite = lambda z: mpmath.hermite(points, z / mpmath.sqrt(2))  # noqa: E731
        roots = mpmath.polyroots(mpmath.taylor(hermite, 0, points)[::-1], maxsteps=200, extraprec=4 * dps)
        nodes = sorted(mpmath.re(r) for r in roots)
        # w_k = n! / (n^2 He_{n-1}(z_k)^2), normalised to the standard normal density.
        previous = lambda z: mpmath.hermite(points - 1, z / mpmath.sqrt(2)) * mpmath.power(2, -(points - 1) / mpmath.mpf(2))  # noqa: E731
        weights = [mpmath.factorial(points) / (points**2 * previous(z) ** 2) for z in nodes]
        return nodes, weights


# --- the mass of an interval under a Gaussian -----------------------------------------------


@functools.lru_cache(maxsize=8)
def _normal_antiderivative(variable, loc, scale):
    return sp.integrate(normal_pdf(variable, loc, scale), variable)


def _log_mass_meaning(lower, upper, loc, scale):
    variable = sp.Dummy("y", real=True)
    antiderivative = _normal_antiderivative(variable, loc, scale)
    return sp.log(antiderivative.subs(variable, upper) - antiderivative.subs(variable, lower))


def standard_normal_mass_by_quadrature(a, b):
    """The integral of the standard normal density over (a, b], by mpmath quadrature at the
    working precision. A bin centred below 0 is reflected; one in the upper tail, from a >= 1,
    is integrated as phi(a)/a * int_0^{a (b - a)} exp(-s - s^2 / (2 a^2)) ds (y = a + s/a),
    whose integrand decays on the scale of 1 however far out the bin lies."""
    a, b = mpmath.mpf(a), mpmath.mpf(b)
    if a + b < 0:
        a, b = -b, -a
    if not a < b:            # an empty bin (or one beyond infinity)
        return mpmath.mpf(0)
    if a < 0:
        return mpmath.quad(mpmath.npdf, [a, 0, b])
    if a < 1:
        return mpmath.quad(mpmath.npdf, [a, b])
    width = (b - a) * a
    breaks = [mpmath.mpf(0)] + [mpmath.mpf(s) for s in (1, 4, 16, 64) if s < width] + [width]
    return mpmath.npdf(a) / a * mpmath.quad(lambda s: mpmath.exp(-s - s * s / (2 * a * a)), breaks)


def log_standard_normal_mass_by_quadrature(a, b):
    """log of the mass above, accurate also when the mass is 1 - 1e-300: then it is
    log1p(-(the two tails outside the bin)), each tail integrated by quadrature."""
    a, b = mpmath.mpf(a), mpmath.mpf(b)
    if a + b < 0:
        a, b = -b, -a
    if a < 0:
        outside = (standard_normal_mass_by_quadrature(b, mpmath.inf)
                   + standard_normal_mass_by_quadrature(-a, mpmath.inf))
        if outside < 0.5:
            return mpmath.log1p(-outside)
    return mpmath.log(standard_normal_mass_by_quadrature(a, b))


def _log_mass_by_quadrature(lower, upper, loc, scale):
    with mpmath.extraprec(30):
        return log_standard_normal_mass_by_quadrature((lower - loc) / scale, (upper - loc) / scale)


log_gaussian_mass = special_function(
    "log_gaussian_mass", 4, meaning=_log_mass_meaning, mpmath=_log_mass_by_quadrature,
    latex=r"\log \int_{{{0}}}^{{{1}}} \mathcal{{N}}\left(y;\, {2},\, \left({3}\right)^{{2}}\right) dy",
    text="log(Integral(N(y; {2}, {3}**2), (y, {0}, {1})))",
    doc="log P(lower < y <= upper) for y ~ N(loc, scale^2), kept unevaluated: for a proof SymPy "
        "integrates the density (its antiderivative at the ends); at numbers mpmath integrates it by "
        "quadrature in standard units, so a step from this definition is checked by two routes.")
