"""The symbolic vocabulary derivations are written in.

Three kinds of objects live here:

* expectations under Gaussians that stay unevaluated, so a step can show
  ``E_{x ~ N(loc, scale^2)}[f(x)]`` and the engine can still evaluate it exactly
  (``doit``: SymPy integrates) or numerically (``evalf``: quadrature);
* log densities written out term by term;
* the stable primitives (``log1pmx``, ``expm1mx``): SymPy functions whose meaning is
  their textbook form (``rewrite_textbook`` recovers it, so a derivation proves a
  stable rewrite equal to the original) and which print to ``symgen.numerics.stable``.
"""
from __future__ import annotations

import functools
import itertools

import mpmath
import sympy as sp

# --- densities -------------------------------------------------------------------


def log_normal_pdf(x, loc, scale):
    """log N(x; loc, scale^2), written out so each term can be followed."""
    return -(x - loc) ** 2 / (2 * scale**2) - sp.log(scale) - sp.log(2 * sp.pi) / 2


def normal_pdf(x, loc, scale):
    return sp.exp(-(x - loc) ** 2 / (2 * scale**2)) / (sp.sqrt(2 * sp.pi) * scale)


def log_mvn_pdf(x, loc, cov, dimension):
    """log N(x; loc, cov) for a column vector x of ``dimension`` entries, as a matrix expression."""
    centred = x - loc
    return (-sp.Trace(centred.T * cov.I * centred) / 2 - sp.log(sp.Determinant(cov)) / 2
            - dimension * sp.log(2 * sp.pi) / 2)


# --- expectations ----------------------------------------------------------------


class GaussianExpectation(sp.Expr):
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


class MvnExpectation(sp.Expr):
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


# --- stable primitives -----------------------------------------------------------


class log1pmx(sp.Function):
    """log(1 + u) - u, without the cancellation at small u."""

    nargs = 1

    def _eval_rewrite_as_log(self, u, **kwargs):
        return sp.log(1 + u) - u

    def fdiff(self, argindex=1):
        u = self.args[0]
        return -u / (1 + u)

    def _eval_evalf(self, prec):
        u = self.args[0]._to_mpmath(prec)
        with mpmath.workprec(prec + 20):
            return sp.Float(mpmath.log1p(u) - u, mpmath.libmp.prec_to_dps(prec))

    def _latex(self, printer, exp=None):
        body = rf"\operatorname{{log1pmx}}\left({printer._print(self.args[0])}\right)"
        return body if exp is None else rf"{body}^{{{exp}}}"


class expm1mx(sp.Function):
    """exp(x) - 1 - x, without the cancellation at small x."""

    nargs = 1

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return sp.exp(x) - 1 - x

    def fdiff(self, argindex=1):
        return sp.exp(self.args[0]) - 1

    def _eval_evalf(self, prec):
        x = self.args[0]._to_mpmath(prec)
        with mpmath.workprec(prec + 20):
            return sp.Float(mpmath.expm1(x) - x, mpmath.libmp.prec_to_dps(prec))

    def _latex(self, printer, exp=None):
        body = rf"\operatorname{{expm1mx}}\left({printer._print(self.args[0])}\right)"
        return body if exp is None else rf"{body}^{{{exp}}}"


class sqrt_ratio(sp.Function):
    """sqrt(a / b), formed as the square root of the quotient: for tiny a and b of similar
    size, sqrt(a)/sqrt(b) times a tiny value can underflow where sqrt(a / b) cannot."""

    nargs = 2

    def _eval_evalf(self, prec):
        a, b = (argument._to_mpmath(prec) for argument in self.args)
        with mpmath.workprec(prec + 20):
            return sp.Float(mpmath.sqrt(a / b), mpmath.libmp.prec_to_dps(prec))

    def _latex(self, printer, exp=None):
        body = rf"\sqrt{{\frac{{{printer._print(self.args[0])}}}{{{printer._print(self.args[1])}}}}}"
        return body if exp is None else rf"\left({body}\right)^{{{exp}}}"


STABLE_PRIMITIVES = (log1pmx, expm1mx, sqrt_ratio)


def rewrite_textbook(expression):
    """Replace every stable primitive (and log1p/expm1) by its textbook meaning."""
    from sympy.codegen.cfunctions import expm1, log1p

    return expression.replace(sqrt_ratio, lambda a, b: sp.sqrt(a / b)).replace(
        log1pmx, lambda u: sp.log(1 + u) - u).replace(
        expm1mx, lambda x: sp.exp(x) - 1 - x).replace(
        log1p, lambda u: sp.log(1 + u)).replace(expm1, lambda x: sp.exp(x) - 1).replace(
        log_normal_mass, lambda a, b: sp.log((sp.erf(b / sp.sqrt(2)) - sp.erf(a / sp.sqrt(2))) / 2))


class log_normal_mass(sp.Function):
    """log(Phi(b) - Phi(a)), the log probability that a standard normal variable falls in
    (a, b] (a may be -oo, b may be oo). The difference of two CDFs cancels in the tails,
    where both round to 1 (or to 0); ``symgen.numerics.stable.log_normal_mass`` does not.
    Its textbook meaning, for proofs: log((erf(b / sqrt 2) - erf(a / sqrt 2)) / 2)."""

    nargs = 2

    def _eval_evalf(self, prec):
        a, b = (argument._to_mpmath(prec) for argument in self.args)
        with mpmath.workprec(prec + 20):
            return sp.Float(log_normal_mass_mpmath(a, b), mpmath.libmp.prec_to_dps(prec))

    def _latex(self, printer, exp=None):
        a, b = (printer._print(argument) for argument in self.args)
        body = rf"\log\left(\Phi\left({b}\right) - \Phi\left({a}\right)\right)"
        return body if exp is None else rf"\left({body}\right)^{{{exp}}}"


STABLE_PRIMITIVES = STABLE_PRIMITIVES + (log_normal_mass,)


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


class softplus(sp.Function):
    """softplus(x) = log(1 + e^x) = -log sigmoid(-x), evaluated without overflow or log(0)
    (``symgen.numerics.stable.softplus``). Its meaning for the proofs is the textbook form
    (``doit``); mpmath, which cannot overflow, evaluates that form directly."""

    nargs = 1

    def doit(self, deep=True, **hints):
        argument = self.args[0].doit(deep=deep, **hints) if deep else self.args[0]
        return sp.log(1 + sp.exp(argument))

    def fdiff(self, argindex=1):
        return 1 / (1 + sp.exp(-self.args[0]))

    def _eval_evalf(self, prec):
        x = self.args[0]._to_mpmath(prec)
        with mpmath.workprec(prec + 20):
            return sp.Float(mpmath.log1p(mpmath.exp(x)), mpmath.libmp.prec_to_dps(prec))

    def _numpycode(self, printer, **kwargs):
        custom = getattr(printer, "symgen_softplus", None)    # an export backend's own
        return custom(self) if custom else f"stable.softplus({printer._print(self.args[0])})"

    def _mpmathcode(self, printer, **kwargs):
        return f"log1p(exp({printer._print(self.args[0])}))"

    def _torchcode(self, printer, **kwargs):
        return f"torch.nn.functional.softplus(torch.as_tensor({printer._print(self.args[0])}))"

    def _latex(self, printer, exp=None):
        body = rf"\operatorname{{softplus}}\left({printer._print(self.args[0])}\right)"
        return body if exp is None else rf"{body}^{{{exp}}}"


class logaddexp(sp.Function):
    """log(e^x + e^y), without overflow (``symgen.numerics.stable.logaddexp``: max(x, y) +
    log1p(exp(-|x - y|))). Its meaning for the proofs is the textbook form (``doit``);
    mpmath, which cannot overflow, evaluates that form directly."""

    nargs = 2

    def doit(self, deep=True, **hints):
        x, y = (argument.doit(deep=deep, **hints) if deep else argument for argument in self.args)
        return sp.log(sp.exp(x) + sp.exp(y))

    def _eval_evalf(self, prec):
        x, y = (argument._to_mpmath(prec) for argument in self.args)
        with mpmath.workprec(prec + 20):
            return sp.Float(mpmath.log(mpmath.exp(x) + mpmath.exp(y)), mpmath.libmp.prec_to_dps(prec))

    def _numpycode(self, printer, **kwargs):
        custom = getattr(printer, "symgen_logaddexp", None)   # an export backend's own
        if custom:
            return custom(self)
        x, y = (printer._print(argument) for argument in self.args)
        return f"stable.logaddexp({x}, {y})"

    def _mpmathcode(self, printer, **kwargs):
        x, y = (printer._print(argument) for argument in self.args)
        return f"log(exp({x}) + exp({y}))"

    def _torchcode(self, printer, **kwargs):
        x, y = (printer._print(argument) for argument in self.args)
        return f"torch.logaddexp(torch.as_tensor({x}), torch.as_tensor({y}))"   # either may be a number

    def _latex(self, printer, exp=None):
        x, y = (printer._print(argument) for argument in self.args)
        body = rf"\operatorname{{logaddexp}}\left({x}, {y}\right)"
        return body if exp is None else rf"{body}^{{{exp}}}"


STABLE_PRIMITIVES = STABLE_PRIMITIVES + (softplus, logaddexp)
