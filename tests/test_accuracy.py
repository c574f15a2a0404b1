"""Numerics, catalogue-wide: every output of every derivation against a 50-digit mpmath
evaluation of its (textbook) closed form, over the whole declared domain, its edges
included: the ends of every domain, the corners, near-equal pairs and the boundaries of
the requirements (the planar flow's u^T w = -1), both at the fixed edge points every
check sees (symgen.engine.runner.edge_points) and among the points hypothesis draws
(parameter_strategy puts parameters at their edges, and requirement failures onto the
boundary, now and then).

The bound (symgen.engine.accuracy.accuracy_bound): a float64 value v of f(x) passes when

    |v - f(x)| <= max(1e-12 |f(x)|,  8 eps sum_i |x_i df/dx_i|),      eps = 2^-52.

Where f is well-conditioned that is 1e-12 relative error. Where it is ill-conditioned
(two terms of either sign cancelling), the second term, a few ulps times the condition
number relative to |f|, is all any float64 code can promise. At and near a zero of f
inside the domain (a score at the mean) the second term makes the bound absolute: a few
ulps of the sensitivity sum_i |x_i df/dx_i|, which stays finite there, so an error of
1e-10 at a zero fails (a relative bound, infinite there, would let anything pass).

A new derivation is covered by being in the catalogue; the topic test files keep only
the edges that need a named point (tiny alpha_bar, saturated tanh, ...).
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings

import symgen
from symgen.engine.accuracy import BOUND, accuracy_bound, relative_error
from symgen.engine.evaluate import reference_value
from symgen.engine.runner import edge_points, formula_function, formula_values, parameter_strategy


def assert_within_contract(found, values, point):
    with np.errstate(all="ignore"):
        computed = values(point)
    for output_name, output in found.outputs.items():
        reference = reference_value(found, output.closed_form, point)
        error = relative_error(computed[output_name], reference)
        if not error <= BOUND:   # NaN included
            bound = accuracy_bound(found, output_name, point, BOUND, reference)
            assert error <= bound, (output_name, point, error, bound)


@pytest.mark.parametrize("name", symgen.derivations())
def test_every_output_matches_mpmath_over_the_domain(name):
    found = symgen.derivation(name)
    values = formula_values(found)

    @settings(max_examples=25 if found.is_matrix else 60, deadline=None)
    @given(point=parameter_strategy(found))
    def matches(point):
        assert_within_contract(found, values, point)

    matches()


@pytest.mark.parametrize("name", symgen.derivations())
def test_every_output_matches_mpmath_at_the_edges_and_corners(name):
    found = symgen.derivation(name)
    values = formula_values(found)
    for point in edge_points(found):
        assert_within_contract(found, values, point)


# The planar flow at its invertibility boundary u^T w = -1 (u = (-1, 0), w = (1, 0)), where
# det J = 1 - sech^2(a) = tanh^2(a) for the activation a = z1: the textbook form's
# 1 + u^T w sech^2(a) cancels to 0 below |a| ~ 1e-8 (log 0 = -inf where the value is
# log tanh^2(1e-9) = -41.4465), and loses digits well above that.
@pytest.mark.parametrize("activation", [1e-9, -3e-5, 1e-20, 0.25, -2.0, 30.0])
def test_the_planar_flow_is_accurate_on_its_invertibility_boundary(activation):
    found = symgen.derivation("planar_flow_logdet_2d")
    point = dict(z1=activation, z2=0.0, u1=-1.0, u2=0.0, w1=1.0, w2=0.0, bias=0.0)
    value = formula_function(found)(**point)
    reference = reference_value(found, found.output().closed_form, point)
    assert relative_error(value, reference) <= BOUND
    if activation == 1e-9:
        assert value == pytest.approx(2 * math.log(math.tanh(1e-9)), rel=1e-15)   # -41.4465


# --- the bound at a zero of the function is absolute ----------------------------------


SCORE = symgen.derivation("score_normal")
AT_THE_MEAN = dict(x=1.5, loc=1.5, scale=0.7)          # s(x) = (loc - x)/scale^2 = 0 here


def test_the_bound_at_a_zero_is_a_few_ulps_of_the_sensitivity():
    # sum_i |x_i ds/dx_i| = (|x| + |loc|)/scale^2 at x = loc (the scale term vanishes with s).
    sensitivity = (1.5 + 1.5) / 0.7**2
    reference = reference_value(SCORE, SCORE.output().closed_form, AT_THE_MEAN)
    assert reference == 0
    bound = accuracy_bound(SCORE, "score_normal", AT_THE_MEAN)
    allowed = bound * np.finfo(np.float64).tiny          # relative_error's scale at f = 0
    assert math.isfinite(bound)
    assert allowed == pytest.approx(8 * 2.0**-52 * sensitivity, rel=1e-12)


@pytest.mark.parametrize("offset", [0.0, 1e-14, -1e-9])
def test_a_small_absolute_error_at_a_zero_is_caught(offset):
    # Wrong by 1e-10 everywhere: at the zero and beside it (x = loc (1 + offset), value ~
    # 3e-14 or 3e-9) that is far beyond a few ulps of the sensitivity (5e-15), though the
    # relative condition number there is infinite or huge. The right function passes.
    right = formula_function(SCORE)

    def wrong(**arguments):
        return right(**arguments) + 1e-10

    point = {**AT_THE_MEAN, "x": AT_THE_MEAN["loc"] * (1 + offset)}
    reference = reference_value(SCORE, SCORE.output().closed_form, point)
    bound = accuracy_bound(SCORE, "score_normal", point, BOUND, reference)
    assert relative_error(right(**point), reference) <= bound
    assert relative_error(wrong(**point), reference) > bound
