"""Wrong variants of a closed form, to measure the power of its empirical checks.

A check that cannot tell a formula from a slightly wrong one proves nothing. For each
closed form this module builds the slips people make: a 1% error, a wrong factor or
constant, a flipped sign, a dropped or sign-flipped term, a changed numeric constant,
swapped arguments. Variants that are in fact equal to the closed form (swapping the
arguments of a symmetric term, say) are recognised numerically at random domain
points and returned separately: those must be *verified*, the rest *refuted*.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy as sp

from .domains import Interval
from .evaluate import evaluate


@dataclass(frozen=True)
class Mutant:
    description: str
    expression: sp.Basic


def _variants(expression, params) -> list[Mutant]:
    # A vector-valued closed form (a score, -cov^-1 (x - loc)) is shifted by a vector of ones.
    one = sp.OneMatrix(*expression.shape) if getattr(expression, "is_Matrix", False) else sp.S.One
    variants = [
        Mutant("1% too large", sp.Float("1.01") * expression),
        Mutant("1% too small", sp.Float("0.99") * expression),
        Mutant("factor 2", 2 * expression),
        Mutant("factor 1/2", expression / 2),
        Mutant("constant +1", expression + one),
        Mutant("constant -1/2", expression - one / 2),
        Mutant("sign", -expression),
    ]
    terms = sp.Add.make_args(expression)
    if len(terms) > 1:
        for term in terms:
            variants.append(Mutant(f"dropped term {term}", expression - term))
            variants.append(Mutant(f"sign of term {term}", expression - 2 * term))
    for constant in sorted(expression.atoms(sp.Rational), key=sp.default_sort_key):
        if constant not in (1, -1, 0):
            variants.append(Mutant(f"constant {constant} doubled", expression.xreplace({constant: 2 * constant})))
            variants.append(Mutant(f"constant {constant} negated", expression.xreplace({constant: -constant})))
    for i, first in enumerate(params):
        for second in params[i + 1:]:
            if type(first.domain) is type(second.domain):
                swapped = expression.xreplace({first.symbol: second.symbol, second.symbol: first.symbol})
                variants.append(Mutant(f"swapped {first.name} and {second.name}", swapped))
    return variants


# A product such as sqrt(alpha_bar) x0 has fewer than MIN_WRONG of the slips above (no
# terms to drop, few constants); only then does it also face the analogues for
# factors and for parameters on (0, 1), so every other closed form's set is unchanged.
MIN_WRONG = 10

EQUIVALENCE_POINTS = 40


def _product_variants(expression, params) -> list[Mutant]:
    variants = []
    if isinstance(expression, sp.MatMul):
        # Matrix products: drop a factor where the shapes allow, or forget an inverse.
        for index, factor in enumerate(expression.args):
            rest = expression.args[:index] + expression.args[index + 1:]
            if not factor.is_number and rest and factor.shape[0] == factor.shape[1]:
                variants.append(Mutant(f"dropped factor {factor}", sp.MatMul(*rest).doit()))
        for inverse in sorted(expression.atoms(sp.Inverse), key=sp.default_sort_key):
            variants.append(Mutant(f"{inverse.arg} for its inverse", expression.xreplace({inverse: inverse.arg})))
            # Equal to the closed form when the matrix is symmetric (a covariance): verified.
            variants.append(Mutant(f"{inverse} transposed", expression.xreplace({inverse: inverse.T})))
        return variants
    if not getattr(expression, "is_Matrix", False):
        variants.append(Mutant("reciprocal", 1 / expression))    # divided where it multiplies
    factors = sp.Mul.make_args(expression)
    if len(factors) > 1:
        for factor in factors:
            if not factor.is_number:
                variants.append(Mutant(f"dropped factor {factor}", expression / factor))
    for param in params:
        domain = param.domain
        if param.symbol in expression.free_symbols and not getattr(expression, "is_Matrix", False):
            # An argument in the wrong units: nats for bits, a total for a mean per token.
            for factor, label in ((2, "doubled"), (sp.Rational(1, 2), "halved")):
                variants.append(Mutant(f"{param.name} {label}", expression.xreplace({param.symbol: factor * param.symbol})))
        if (isinstance(domain, Interval) and (domain.low, domain.high) == (0, 1)
                and param.symbol in expression.free_symbols):
            variants.append(Mutant(f"{param.name} replaced by 1 - {param.name}",
                                   expression.xreplace({param.symbol: 1 - param.symbol})))
    return variants


def _same_value(derivation, a, b, points) -> bool:
    for point in points:
        try:
            left = evaluate(derivation, a, point, digits=30)
        except (ValueError, ArithmeticError, TypeError):
            return False        # undefined where the closed form is defined: a wrong variant
        right = evaluate(derivation, b, point, digits=30)
        lefts, rights = (left, right) if isinstance(left, list) else ([left], [right])
        scale = max([abs(v) for v in lefts + rights] + [1e-300])
        if any(abs(x - y) > 1e-20 * scale for x, y in zip(lefts, rights)):
            return False
    return True


def mutants(derivation, output: str | None = None, seed: int = 1) -> tuple[list[Mutant], list[Mutant]]:
    """(wrong variants, equivalent variants) of the closed form of ``output``."""
    closed = derivation.output(output).closed_form
    rng = np.random.default_rng(seed)
    # Enough points that a variant wrong only on part of the domain (an edge bin of a
    # discretised density, one cell of a probability table) is not taken for an
    # equivalent one; matrix closed forms, slower to evaluate, are compared at fewer.
    points = [derivation.sample_point(rng) for _ in range(6 if derivation.is_matrix else EQUIVALENCE_POINTS)]
    wrong, equivalent, seen = [], [], set()
    for variant in _variants(closed, derivation.params):
        key = sp.srepr(variant.expression)
        if key in seen:
            continue
        seen.add(key)
        (equivalent if _same_value(derivation, variant.expression, closed, points) else wrong).append(variant)
    if len(wrong) < MIN_WRONG:
        for variant in _product_variants(closed, derivation.params):
            key = sp.srepr(variant.expression)
            if key in seen:
                continue
            seen.add(key)
            (equivalent if _same_value(derivation, variant.expression, closed, points) else wrong).append(variant)
    return wrong, equivalent
