"""Change of variables for invertible maps, done by SymPy.

If z has log density log p_z and x = T(z) for a strictly monotone, continuous map T
of the real line, then X has log density

    log p_x(x) = log p_z(T^-1(x)) + log |d T^-1(x) / dx|,       x in T(R),

because P(X <= x) is P(z <= T^-1(x)) when T increases and P(z >= T^-1(x)) when it
decreases, and the derivative of either is p_z(T^-1(x)) |d T^-1/dx| (Papamakarios et al.
(2021), "Normalizing Flows for Probabilistic Modeling and Inference", JMLR 22,
Section 2.1). :func:`pushforward` lets SymPy find T^-1 (``solve``), differentiate it
(``diff``) and find the image T(R) (``function_range``); it refuses a map that it
cannot prove strictly monotone, since a map that folds the line (z^2, sin z) has no
inverse and its density is a sum over branches, not this formula.

For an invertible map of R^n, the factor is |det J|: :func:`log_abs_det_jacobian`
builds J with ``Matrix.jacobian``.

"""
from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

# --- one dimension --------------------------------------------------------------------


@dataclass(frozen=True)
class Pushforward:
    """The law of x = T(z), derived from the law of z.

    ``inverse`` is T^-1(x), ``log_abs_det`` is log |d T^-1/dx|, ``logpdf`` is
    log p_x(x) and ``image`` is T(R), where the density lives (0 outside);
    ``direction`` is +1 (increasing), -1 (decreasing) or the sign of a symbolic
    derivative (``sign(a)`` for x = a z + b).
    """

    transform: sp.Expr
    variable: sp.Symbol
    target: sp.Symbol
    inverse: sp.Expr
    log_abs_det: sp.Expr
    logpdf: sp.Expr
    image: sp.Set
    direction: sp.Expr


def monotone_direction(transform, variable) -> sp.Expr:
    """+1 or -1 when ``transform`` is strictly monotone on R (or sign(T') when T' is a
    nonzero symbolic constant); ValueError when SymPy cannot prove it."""
    transform = sp.sympify(transform)
    where = f"the map {variable} -> {transform}"
    continuous = sp.calculus.util.continuous_domain(transform, variable, sp.Reals)
    if continuous != sp.Reals:
        raise ValueError(f"{where} is not continuous on the real line (only on {continuous}), "
                         "so it is not a strictly monotone bijection onto an interval")
    if sp.is_strictly_increasing(transform, sp.Reals, variable):
        return sp.Integer(1)
    if sp.is_strictly_decreasing(transform, sp.Reals, variable):
        return sp.Integer(-1)
    derivative = sp.diff(transform, variable)
    zeros = sp.solveset(sp.Eq(derivative, 0), variable, sp.Reals)
    if variable not in derivative.free_symbols and derivative.is_nonzero:
        # A nonzero constant slope (x = a z + b with a != 0): monotone, in the direction of its sign.
        return sp.sign(derivative)
    if isinstance(zeros, sp.FiniteSet):
        # T' vanishes at isolated points only: monotone in the non-strict sense is then strict.
        if sp.is_increasing(transform, sp.Reals, variable):
            return sp.Integer(1)
        if sp.is_decreasing(transform, sp.Reals, variable):
            return sp.Integer(-1)
    raise ValueError(f"{where} is not strictly monotone on the real line (its derivative "
                     f"{derivative} changes sign or SymPy cannot fix its sign), so it has no "
                     "inverse and the change-of-variables formula does not apply")


def _probe_points(image: sp.Set) -> list:
    """A few points inside the image, to tell the real inverse branch from the others."""
    low, high = image.inf, image.sup
    if low.is_finite and high.is_finite:
        return [low + (high - low) * sp.Rational(k, 11) for k in (1, 4, 9)]
    if low.is_finite:
        return [low + sp.Rational(k, 7) for k in (2, 11, 40)]
    if high.is_finite:
        return [high - sp.Rational(k, 7) for k in (2, 11, 40)]
    return [sp.Rational(-23, 10), sp.Rational(2, 5), sp.Rational(31, 10)]


def _is_inverse_branch(candidate, transform, variable, target, image, others) -> bool:
    for probe in _probe_points(image):
        inside = candidate.subs(target, probe).subs(others)
        value = sp.N(inside, 30)
        if not value.is_real:
            return False
        back = sp.N(transform.subs(variable, value).subs(others), 30)
        if abs(back - sp.N(probe, 30)) > sp.Float(1e-20) * (1 + abs(sp.N(probe, 30))):
            return False
    return True


def image_of(transform, variable) -> sp.Set:
    """T(R), where the pushforward density lives."""
    if variable not in sp.diff(transform, variable).free_symbols:
        return sp.Reals          # a nonzero constant slope maps R onto R
    return sp.calculus.util.function_range(transform, variable, sp.Reals)


def _real_odd_roots(expression):
    def odd_root(node):
        return node.is_Pow and node.exp.is_Rational and not node.exp.is_integer and node.exp.q % 2 == 1
    return expression.replace(odd_root, lambda node: sp.real_root(node.base, node.exp.q) ** node.exp.p)


def inverse_map(transform, variable, target, image=None) -> sp.Expr:
    """T^-1(target): the real branch of SymPy's solution of target = T(variable)."""
    transform = sp.sympify(transform)
    try:
        solutions = sp.solve(sp.Eq(target, transform), variable)
    except NotImplementedError:
        solutions = []
    if not solutions:
        raise ValueError(f"SymPy finds no closed-form inverse of {variable} -> {transform}")
    if len(solutions) == 1:
        return solutions[0]
    image = image if image is not None else image_of(transform, variable)
    # Other parameters (none for the maps that reach here in practice) get a generic value.
    others = {symbol: sp.Rational(7, 10) for symbol in transform.free_symbols - {variable}}
    # SymPy's x**(1/3) is the principal (complex for x < 0) root; the real odd root is
    # the inverse of an odd power.
    candidates = list(dict.fromkeys([*solutions, *map(_real_odd_roots, solutions)]))
    real = [s for s in candidates if _is_inverse_branch(s, transform, variable, target, image, others)]
    if len(real) != 1:
        raise ValueError(f"cannot single out the real inverse of {variable} -> {transform} "
                         f"among {solutions}")
    return real[0]


def _tidy(expression):
    """simplify, unless it only trades a real root for case analysis. DiracDelta terms
    (from differentiating the sign in a real root) vanish off a single point, and a
    density is only defined up to such null sets: they are dropped."""
    expression = expression.replace(sp.DiracDelta, lambda *arguments: sp.S.Zero)
    simpler = sp.simplify(expression)
    return expression if simpler.has(sp.Piecewise) else simpler


def pushforward(transform, variable, target, base_logpdf) -> Pushforward:
    """The log density of ``target`` = T(``variable``) when ``variable`` has log density
    ``base_logpdf`` (an expression in ``variable``). ValueError for a map that is not
    strictly monotone or has no closed-form inverse."""
    transform = sp.sympify(transform)
    direction = monotone_direction(transform, variable)
    image = image_of(transform, variable)
    inverse = inverse_map(transform, variable, target, image)
    slope = _tidy(sp.diff(inverse, target))
    log_abs_det = sp.log(sp.Abs(slope))
    logpdf = sp.sympify(base_logpdf).subs(variable, inverse) + log_abs_det
    return Pushforward(transform, variable, target, inverse, log_abs_det, logpdf, image, direction)


# --- n dimensions ---------------------------------------------------------------------


def jacobian(components, variables) -> sp.Matrix:
    """d components_i / d variables_j, by ``Matrix.jacobian``."""
    return sp.Matrix(list(components)).jacobian(sp.Matrix(list(variables)))


def log_abs_det_jacobian(components, variables) -> sp.Expr:
    """log |det J| of the map variables -> components; ValueError if det J is identically 0
    (the map collapses a direction and is not invertible)."""
    matrix = jacobian(components, variables)
    if matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"a map from R^{matrix.shape[1]} to R^{matrix.shape[0]} has no density "
                         "by change of variables: the dimensions differ")
    # expand (not simplify, which takes seconds on a planar flow's tanh) decides whether
    # the polynomial in the entries vanishes identically.
    determinant = sp.expand(matrix.det())
    if determinant == 0:
        raise ValueError(f"the Jacobian of {list(components)} is singular everywhere "
                         "(det J = 0): the map is not invertible")
    return sp.log(sp.Abs(determinant))
