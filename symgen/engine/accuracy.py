"""Accuracy of the public functions against a 50-digit mpmath evaluation.

The reference is the textbook closed form (not the stable rewrite the code
evaluates), evaluated at 50 digits from the exact float64 inputs; where it cancels
at near-equal arguments, 50 digits leave more than 30 correct.
"""
from __future__ import annotations

import math

import mpmath
import numpy as np

from .evaluate import EPS64, ULPS_PER_CONDITION, condition_number, reference_value
from .runner import formula_values


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


def relative_error(value, reference) -> float:
    """|value - reference| / |reference|; for vector outputs, the largest entry error
    relative to the largest reference entry (a norm-wise relative error)."""
    if isinstance(reference, list):
        entries = [mpmath.mpf(float(v)) for v in np.asarray(value, dtype=np.float64).ravel()]
        scale = max([abs(r) for r in reference] + [UNDERFLOW])
        worst = max(abs(v - r) for v, r in zip(entries, reference))
        return float(worst / scale)
    # A vector output of length 1 (d = 1) against its scalar reference.
    value = mpmath.mpf(float(np.asarray(value, dtype=np.float64).reshape(-1)[0])
                       if np.size(value) == 1 else float(value))
    return float(abs(value - reference) / max(abs(reference), UNDERFLOW))


def max_relative_error(derivation, points: int = 40, seed: int = 0, function=None) -> dict[str, float]:
    """The largest relative error of each output over ``points`` domain points."""
    values = formula_values(derivation, function)
    worst = {name: 0.0 for name in derivation.outputs}
    for point in accuracy_points(derivation, points, seed):
        computed = values(point)
        for name, output in derivation.outputs.items():
            reference = reference_value(derivation, output.closed_form, point)
            error = relative_error(computed[name], reference)
            worst[name] = max(worst[name], error if math.isfinite(error) else math.inf)
    return worst


def accuracy_bound(derivation, output: str, point: dict, bound: float = 1e-12) -> float:
    """1e-12, or a few ulps times the condition number where the function itself is
    ill-conditioned (two terms of either sign cancelling, say): the most any float64
    code can promise there."""
    return max(bound, ULPS_PER_CONDITION * EPS64 * condition_number(derivation, output, point))
