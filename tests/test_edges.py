"""Edges and corners: every check, and every candidate check, sees them.

Ordinary draws rarely land where formulas most often go wrong: 33 uniform draws of
alpha_bar in (0, 1) come within 1e-12 of 1 with probability 3e-11, and hypothesis's
derandomised points once stopped at 0.938. So each domain names its edges
(symgen.engine.domains: ``edges``), run_check evaluates every check at a fixed set of
edge points besides hypothesis's and the anchors (each parameter at each edge, the
all-low and all-high corners, near-equal pairs, the boundaries of the requirements),
and hypothesis draws edges now and then (symgen.engine.runner.parameter_strategy).

Power: formulas wrong only near an edge (alpha_bar > 0.99, u^T w < -0.99) are refuted.
"""
import math
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings

import symgen
from single_check import samples_refutation
from symgen.engine.api import parse_candidate
from symgen.engine.checks import MAX_EVALUATIONS, Outcome
from symgen.engine.domains import (Count, Covariance, Interval, NonNegative, NonZero, OneOf,
                                   Positive, Real, Vector)
from symgen.engine.runner import (ANCHOR_POINTS, edge_points, formula_values, onto_boundary, parameter_strategy,
                                  run_check)

# --- each domain names its edges ---------------------------------------------------------

d = sp.Symbol("d", integer=True, positive=True)


@pytest.mark.parametrize("domain, edges", [
    (Real(-3, 3), [-3.0, 3.0]),
    (Positive(1e-3, 1e3), [1e-3, 1e3]),
    (NonNegative(5.0), [0.0, 5.0]),
    (NonZero(0.5, 4), [-4.0, -0.5, 0.5, 4.0]),
    (Count(2, 40), [2.0, 40.0]),
    (OneOf((0, 1, 2)), [0.0, 2.0]),
    # alpha_bar in (0, 1], drawn up to 1 - 1e-12: the open end approached to 1e-12 too.
    (Interval(0.0, 1.0, high_closed=True, draw_high=1 - 1e-12), [1e-12, 1 - 1e-12]),
    (Interval(0.0, 1.0), [1e-12, 1 - 1e-12]),
    (Interval(0.0, 1.0, high_closed=True, draw_low=1e-9), [1e-9, 1.0]),
    (Interval(0.0, 1.0, low_closed=True, draw_low=1e-300, draw_high=1 - 2**-53), [1e-300, 1 - 2**-53]),
])
def test_scalar_domains_name_the_ends_of_what_they_draw(domain, edges):
    assert domain.edges({}) == edges
    assert all(domain.contains(edge) for edge in edges if isinstance(domain, Interval))


def test_vector_and_covariance_edges_are_the_extreme_scales_and_the_worst_conditioning():
    vectors = Vector(d, Real(-5, 5)).edges({d: 3})
    assert [vector.tolist() for vector in vectors] == [[-5.0] * 3, [5.0] * 3]
    low, spread, high = Covariance(d, 1e-2, 1e2).edges({d: 3})
    np.testing.assert_allclose(low, 1e-2 * np.eye(3))
    np.testing.assert_allclose(high, 1e2 * np.eye(3))
    np.testing.assert_allclose(np.linalg.eigvalsh(spread), [1e-2, 1.0, 1e2], rtol=1e-10)
    assert np.count_nonzero(np.abs(spread - np.diag(np.diag(spread))) > 1e-3)    # rotated, not diagonal
    assert len(Covariance(d).edges({d: 1})) == 2


# --- the edge points every check is evaluated at ------------------------------------------


@pytest.mark.parametrize("name", symgen.derivations())
def test_edge_points_lie_in_the_domain_and_cover_the_corners(name):
    found = symgen.derivation(name)
    points = edge_points(found)
    assert points and len(points) + ANCHOR_POINTS + 30 <= MAX_EVALUATIONS
    for point in points:
        assert set(point) == set(found.param_names)
        assert found.satisfies_requirements(point), point
    # Every parameter reaches each of its edges somewhere, unless a requirement forbids it
    # (alpha_bar_t at 1 - 1e-12 above alpha_bar_prev) and the point was moved onto its boundary.
    for param in found.params:
        if param.domain.shape_kind != "scalar" or any(
                param.symbol in relation.free_symbols for relation, _ in found.requires):
            continue
        reached = {point[param.name] for point in points}
        assert set(param.domain.edges({})) <= reached, param.name


def test_alpha_bar_is_evaluated_within_1e_12_of_both_ends():
    found = symgen.derivation("diffusion_marginal")
    recorder = Recorder(outputs=("mean",))
    report = run_check(found, recorder, formula_values(found), examples=5)
    levels = [point["alpha_bar"] for point in recorder.points]
    # alpha_bar in [0, 1]: drawn from 1e-300 (0 itself, pure noise, is tested directly in
    # tests/test_schedules.py) to 1e-12 short of 1.
    assert {1e-300, 1 - 1e-12} <= set(levels) and max(levels) == 1 - 1e-12
    # Every edge point is among the evaluated ones, within the false-alarm budget.
    evaluated = {tuple(sorted(point.items())) for point in recorder.points}
    assert all(tuple(sorted(point.items())) in evaluated for point in edge_points(found))
    assert report.points == len(recorder.points) <= 5 + ANCHOR_POINTS + len(edge_points(found))


def test_the_time_near_zero_and_the_scales_at_their_bounds_are_evaluated():
    found = symgen.derivation("diffusion_vpsde_marginal")
    points = edge_points(found)
    assert min(point["time"] for point in points) == 1e-9 and max(point["time"] for point in points) == 1.0
    assert {1e-2, 1.0} <= {point["beta_min"] for point in points}
    assert {1.0, 30.0} <= {point["beta_max"] for point in points}


def test_near_equal_pairs_are_evaluated_at_a_relative_offset_of_1e_12():
    found = symgen.derivation("kl_normal")
    offsets = {point["scale_q"] / point["scale_p"] - 1 for point in edge_points(found)}
    assert any(1e-13 < abs(offset) < 1e-11 for offset in offsets)


# --- the boundaries of the requirements -----------------------------------------------------


def exact(value):
    return Fraction(float(value))


def test_the_planar_flow_is_evaluated_on_its_invertibility_boundary():
    # u^T w = -1 exactly as far as the floats allow, and never below in exact arithmetic
    # (the 50-digit reference evaluates the exact sum).
    points = edge_points(symgen.derivation("planar_flow_logdet_2d"))
    sums = [exact(p["u1"]) * exact(p["w1"]) + exact(p["u2"]) * exact(p["w2"]) for p in points]
    assert all(total >= -1 for total in sums)
    assert any(total + 1 < Fraction(1, 10**15) for total in sums)


def test_a_non_strict_boundary_is_reached_and_a_strict_one_approached_to_1e_12():
    posterior = edge_points(symgen.derivation("diffusion_posterior"))
    assert any(point["alpha_bar_prev"] == point["alpha_bar_t"] for point in posterior)
    # eta < 2 scale^2 excludes its boundary, where the stationary variance is infinite.
    langevin = edge_points(symgen.derivation("langevin_stationary_var"))
    margins = [1 - point["eta"] / (2 * point["scale"] ** 2) for point in langevin]
    assert all(margin > 0 for margin in margins)
    assert any(margin < 1e-11 for margin in margins)


def test_a_point_that_cannot_move_onto_a_boundary_is_left_out():
    # A != requirement: the segment only grazes its excluded set.
    found = symgen.derivation("elementwise_affine_logpdf_2d")
    inside = edge_points(found)[0]
    assert onto_boundary(found, inside, {**inside, "a1": 0.0}) is None


def test_hypothesis_draws_edges_and_boundaries_too():
    found = symgen.derivation("planar_flow_logdet_2d")
    drawn = []

    @settings(max_examples=200, derandomize=True, database=None, deadline=None)
    @given(point=parameter_strategy(found))
    def collect(point):
        drawn.append(point)

    collect()
    at_an_edge = [p for p in drawn if any(abs(p[name]) in (0.8, 3.0, 12.0) for name in p)]
    on_the_boundary = [p for p in drawn if p["u1"] * p["w1"] + p["u2"] * p["w2"] < -1 + 1e-12]
    assert at_an_edge and on_the_boundary


def test_run_check_refuses_more_evaluations_than_the_false_alarm_budget():
    found = symgen.derivation("diffusion_marginal")
    with pytest.raises(ValueError, match="examples must be at most"):
        run_check(found, Recorder(outputs=("mean",)), formula_values(found), examples=MAX_EVALUATIONS)


@dataclass
class Recorder:
    """A check that passes everywhere and keeps the points it is evaluated at."""

    outputs: tuple
    description: str = "records its points"
    kind: str = "identity"
    applies_formula: bool = False
    points: list = field(default_factory=list)

    def run(self, values, params, rng):
        self.points.append(dict(params))
        return Outcome(True, 0.0, 0.0, 0.0, 0.0)


# --- power: formulas wrong only near an edge are refuted ------------------------------------
# Each is right wherever the old derandomised points went (alpha_bar <= 0.938, u^T w well
# above -1) and 1% off beyond: `symgen check` verified all of them before the edges.

POSTERIOR_MEAN = ("(sqrt(alpha_bar_prev)*x0*(1 - alpha_bar_t/alpha_bar_prev)/(1 - alpha_bar_t) "
                  "+ sqrt(alpha_bar_t)*xt*(1 - alpha_bar_prev)/(sqrt(alpha_bar_prev)*(1 - alpha_bar_t)))")
PLANAR = "log(1 + (u1*w1 + u2*w2)*(1 - tanh(w1*z1 + w2*z2 + bias)**2))"
ONE_PERCENT_ABOVE = "(1 + Piecewise((1/100, {} > 99/100), (0, True)))"

EDGE_MUTANTS = [
    ("diffusion_marginal.mean", f"sqrt(alpha_bar)*x0*{ONE_PERCENT_ABOVE.format('alpha_bar')}",
     lambda p: p["alpha_bar"] > 0.99),
    ("diffusion_marginal.var", f"(1 - alpha_bar)*{ONE_PERCENT_ABOVE.format('alpha_bar')}",
     lambda p: p["alpha_bar"] > 0.99),
    # No noise at all once alpha_bar is within 1e-3 of 1.
    ("diffusion_marginal.var", "Piecewise((1 - alpha_bar, alpha_bar <= 999/1000), (0, True))",
     lambda p: p["alpha_bar"] > 0.999),
    ("diffusion_posterior.mean", f"{POSTERIOR_MEAN}*{ONE_PERCENT_ABOVE.format('alpha_bar_prev')}",
     lambda p: p["alpha_bar_prev"] > 0.99),
    ("score_diffusion", f"(sqrt(alpha_bar)*x0 - xt)/(1 - alpha_bar)*{ONE_PERCENT_ABOVE.format('alpha_bar')}",
     lambda p: p["alpha_bar"] > 0.99),
    # Off by 0.01 only within 1% of the invertibility boundary u^T w = -1.
    ("planar_flow_logdet_2d", f"{PLANAR} + Piecewise((1/100, u1*w1 + u2*w2 < -99/100), (0, True))",
     lambda p: p["u1"] * p["w1"] + p["u2"] * p["w2"] < -0.99),
]


@pytest.mark.parametrize("name, candidate, at_the_edge", EDGE_MUTANTS,
                         ids=[f"{name}-{index}" for index, (name, _, _) in enumerate(EDGE_MUTANTS)])
def test_a_formula_wrong_only_near_an_edge_is_refuted(name, candidate, at_the_edge):
    # The empirical checks alone must see it (the proved closed form does too).
    refutation = samples_refutation(name, candidate, examples=3)
    assert refutation is not None
    assert at_the_edge(refutation.counterexample)


def test_the_mutants_are_right_away_from_the_edges():
    # The mutants differ from the closed forms only in their edge regions.
    rng = np.random.default_rng(0)
    for name, candidate, at_the_edge in EDGE_MUTANTS:
        found = symgen.derivation(name.split(".")[0])
        output = found.output(name.split(".")[1] if "." in name else None)
        expression = parse_candidate(found, candidate)
        for _ in range(20):
            point = found.sample_point(rng)
            if at_the_edge(point):
                continue
            values = {param.symbol: point[param.name] for param in found.params}
            assert math.isclose(float(expression.subs(values)), float(output.closed_form.subs(values)),
                                rel_tol=1e-12, abs_tol=1e-12)
