"""Accuracy of the public functions against a 50-digit mpmath evaluation.

The reference is the textbook closed form (not the stable rewrite the code
evaluates), evaluated at 50 digits from the exact float64 inputs; where it cancels
at near-equal arguments, 50 digits leave more than 30 correct.

The contract, at every point of the stated domain, its edges included: a float64 value v
of f(x) is within

    max(1e-12 |f(x)|,  ULPS_PER_CONDITION * eps * sum_i |x_i df/dx_i|)

of the reference (eps = 2^-52, ULPS_PER_CONDITION = 8). The first term is 1e-12 relative
error; the second is what rounding the inputs by a few ulps moves the value by, all any
float64 code can promise where the function is ill-conditioned (two terms of either sign
cancelling: relative to |f| it is a few ulps times the condition number). The second
term is absolute, so it stays finite where f has a zero inside the domain (a score at
the mean): there the bound is absolute, a few ulps of the sensitivity, not a relative
one, which would be infinite and let any error pass. :func:`accuracy_bound` states the
same bound relative to the reference as :func:`relative_error` measures it.
"""
from __future__ import annotations

import math

import mpmath
import numpy as np

from .evaluate import EPS64, ULPS_PER_CONDITION, reference_value, sensitivity
from .runner import edge_points, formula_values, near_zero_points


def accuracy_points(derivation, count: int, seed: int = 0) -> list[dict]:
    """Points from the declared domains; every other one with the ``near`` pairs
    made nearly equal (relative offsets from 1e-12 to 1e-3)."""
    rng = np.random.default_rng(seed)
    points = []
    for index in range(count):
        point = derivation.sample_point(rng)
        if index % 2 and derivation.near:
            params = {param.name: param for param in derivation.params}
            for second, first in derivation.near:
                offset = float(rng.choice([-1, 1]) * 10 ** rng.uniform(-12, -3))
                moved = params[second].domain.nearby(point[first], offset)
                if not derivation.satisfies_requirements({**point, second: moved}):
                    # A relation (alpha_bar_prev >= alpha_bar_t) fixes the side of the offset.
                    moved = params[second].domain.nearby(point[first], -offset)
                point[second] = moved
        points.append(point)
    return points


# Below the smallest normal float64 a value can only be represented to an absolute
# accuracy, so errors there are measured relative to this floor (a true value of
# 3e-416 is correctly returned as 0.0).
UNDERFLOW = np.finfo(np.float64).tiny

#: The accuracy promised where the function is well-conditioned: 1e-12 relative.
BOUND = 1e-12


def relative_error(value, reference) -> float:
    """|value - reference| / |reference|; for vector outputs, the largest entry error
    relative to the largest reference entry (a norm-wise relative error)."""
    if isinstance(reference, list):
        entries = [mpmath.mpf(float(v)) for v in np.asarray(value, dtype=np.float64).ravel()]
        worst = max(abs(v - r) for v, r in zip(entries, reference))
        return float(worst / _scale(reference))
    # A vector output of length 1 (d = 1) against its scalar reference.
    value = mpmath.mpf(float(np.asarray(value, dtype=np.float64).reshape(-1)[0])
                       if np.size(value) == 1 else float(value))
    if value == reference:          # an infinite value where the reference is (log 0 = -inf)
        return 0.0
    return float(abs(value - reference) / _scale(reference))


def _scale(reference):
    """What :func:`relative_error` divides by: the largest |entry| of the reference, at
    least the smallest normal float64."""
    if isinstance(reference, list):
        return max([abs(r) for r in reference] + [UNDERFLOW])
    return max(abs(reference), UNDERFLOW)


def max_relative_error(derivation, points: int = 40, seed: int = 0, function=None) -> dict[str, float]:
    """The largest relative error of each output over ``points`` domain points, the
    domain's edge points and its points near zero (symgen.engine.runner.edge_points,
    near_zero_points). At an edge, where the function
    may be ill-conditioned (a score at alpha_bar within 1e-12 of 1), an error the contract
    allows there (:func:`accuracy_bound`) is left out: the maximum is then held to 1e-12
    where that is the contract, and an error beyond the contract at an edge is in it."""
    values = formula_values(derivation, function)
    worst = {name: 0.0 for name in derivation.outputs}

    def measure(point, at_edge: bool):
        with np.errstate(all="ignore"):
            computed = values(point)
        for name, output in derivation.outputs.items():
            reference = reference_value(derivation, output.closed_form, point)
            error = relative_error(computed[name], reference)
            error = error if math.isfinite(error) else math.inf
            if at_edge and BOUND < error <= accuracy_bound(derivation, name, point, BOUND, reference):
                continue        # ill-conditioned there, and within what float64 code can do
            worst[name] = max(worst[name], error)

    for point in accuracy_points(derivation, points, seed):
        measure(point, at_edge=False)
    for point in edge_points(derivation) + near_zero_points(derivation):
        measure(point, at_edge=True)
    return worst


def accuracy_bound(derivation, output: str, point: dict, bound: float = BOUND, reference=None) -> float:
    """The contract's bound on :func:`relative_error` at ``point``: ``bound`` where the
    function is well-conditioned; a few ulps times the condition number where it is not
    (two terms of either sign cancelling, say): the most any float64 code can promise
    there. Relative to the same scale as the error, |f| (at least the smallest normal),
    so at a zero of f the bound is the absolute one, ULPS_PER_CONDITION ulps of the
    sensitivity sum_i |x_i df/dx_i|, not an infinite relative one."""
    if reference is None:
        reference = reference_value(derivation, derivation.outputs[output].closed_form, point)
    from_rounding = ULPS_PER_CONDITION * EPS64 * sensitivity(derivation, output, point)
    return max(bound, from_rounding / float(_scale(reference)))
