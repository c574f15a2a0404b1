"""Numerics, catalogue-wide: every output of every derivation within 1e-12 relative
error of a 50-digit mpmath evaluation of its (textbook) closed form, at points that
hypothesis draws from the declared domains, near-equal pairs included. Where the
function itself is ill-conditioned (its condition number above ~500: two terms of
either sign cancelling), the bound is a few ulps times the condition number, which is
all any float64 code can promise (symgen.engine.accuracy.accuracy_bound).

A new derivation is covered by being in the catalogue; the topic test files keep only
the edges that need a named point (tiny alpha_bar, saturated tanh, ...).
"""

import numpy as np
import pytest
from hypothesis import given, settings

import symgen
from symgen.engine.accuracy import accuracy_bound, relative_error
from symgen.engine.evaluate import reference_value
from symgen.engine.runner import formula_values, parameter_strategy

BOUND = 1e-12


@pytest.mark.parametrize("name", symgen.derivations())
def test_every_output_matches_mpmath_over_the_domain(name):
    found = symgen.derivation(name)
    values = formula_values(found)

    @settings(max_examples=25 if found.is_matrix else 60, deadline=None)
    @given(point=parameter_strategy(found))
    def matches(point):
        with np.errstate(all="ignore"):
            computed = values(point)
        for output_name, output in found.outputs.items():
            reference = reference_value(found, output.closed_form, point)
            error = relative_error(computed[output_name], reference)
            if not error <= BOUND:   # NaN included
                assert error <= accuracy_bound(found, output_name, point, BOUND), (output_name, point, error)

    matches()
