"""Diversity: the n - 1 correction, a mixture's variance, a collapse test with a stated
error rate, and the modes a sampler covers."""
import math

import numpy as np
import pytest
import sympy as sp
from scipy import stats

import symgen
from symgen import expected_modes_covered, mixture_variance
from symgen.engine.accuracy import relative_error
from symgen.engine.evaluate import reference_value

MODULE = symgen.derivation("mixture_variance").module
T_THRESHOLD = stats.t.isf(0.5e-6, 199)    # two-sided, false-alarm probability 1e-6 on 200 batch means


def batch_t(draws, value, batches=200):
    means = np.asarray(draws, dtype=np.float64).reshape(batches, -1).mean(axis=1)
    return (means.mean() - value) / (means.std(ddof=1) / math.sqrt(batches))


# --- derivation and verification --------------------------------------------------------------


@pytest.mark.parametrize("modes, draws", [(1e6, 3), (1e9, 2), (1e4, 1), (50, 7)])
def test_few_draws_among_many_modes(modes, draws):
    # n << K: nearly every draw reaches a new mode, K - K(1 - 1/K)^n cancels; the stable
    # form keeps every digit, the textbook form loses about log10(K/n) of them.
    found = symgen.derivation("expected_modes_covered")
    point = dict(modes=modes, draws=draws)
    reference = reference_value(found, found.output().closed_form, point)
    assert relative_error(expected_modes_covered(**point), reference) <= 1e-12
    if modes >= 1e6:
        assert relative_error(modes - modes * (1 - 1 / modes) ** draws, reference) > 1e-12


# --- the n - 1 correction ------------------------------------------------------------------------


def test_the_corrected_variance_is_unbiased_for_any_n():
    assert MODULE.CORRECTED_VARIANCE_IS_UNBIASED.prove().startswith("lemma proved by SymPy")
    expectation, closed = MODULE.corrected_variance_is_unbiased()
    n = [s for s in closed.free_symbols if s.name == "n"][0]
    assert sp.simplify(expectation / (n - 1) - closed / (n - 1)) == 0


@pytest.mark.parametrize("size", [2, 4, 16])
def test_numpys_default_variance_is_low_by_n_minus_one_over_n(size):
    # 400,000 groups of standard normal draws: ddof=1 averages to 1 (t test at false-alarm
    # probability 1e-6), ddof=0 (the notebook's samples.var) to (n - 1)/n, far from 1.
    draws = np.random.default_rng(size).standard_normal((400_000, size))
    assert abs(batch_t(draws.var(axis=1, ddof=1), 1.0)) < T_THRESHOLD
    assert abs(batch_t(draws.var(axis=1, ddof=0), (size - 1) / size)) < T_THRESHOLD
    assert abs(batch_t(draws.var(axis=1, ddof=0), 1.0)) > 20


def test_a_sampler_that_drops_a_mode_shows_only_the_within_mode_variance():
    rng = np.random.default_rng(4)
    point = dict(weight=0.3, loc1=-2.0, loc2=2.0, scale=0.7)
    full = MODULE.sample_corrected_variances(rng, 400_000, **point)
    assert abs(batch_t(full, float(mixture_variance(**point)))) < T_THRESHOLD
    dropped = rng.normal(point["loc2"], point["scale"], (400_000, 16)).var(axis=1, ddof=1)
    assert abs(batch_t(dropped, point["scale"] ** 2)) < T_THRESHOLD
    assert mixture_variance(**point) - point["scale"] ** 2 == pytest.approx(0.21 * 16, rel=1e-14)


# --- the collapse test ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dimensions", [1, 8])
def test_collapse_test_flags_healthy_samplers_at_most_alpha_of_the_time(dimensions):
    # 4,000 healthy trials at alpha = 0.05: the flagged count is Binomial(4000, rate) with
    # rate = 0.05 for one dimension and <= 0.05 (Bonferroni) for eight; the binomial tail
    # beyond the bounds below has probability < 1e-6 under the stated rate.
    rng = np.random.default_rng(dimensions)
    alpha, trials = 0.05, 4000
    flagged = sum(MODULE.collapse_flagged(rng.normal(0.0, 1.5, (50, dimensions)), 1.5**2, alpha)
                  for _ in range(trials))
    assert flagged <= stats.binom(trials, alpha).isf(1e-6)
    if dimensions == 1:
        assert flagged >= stats.binom(trials, alpha).ppf(1e-6)


def test_collapse_test_flags_collapsed_samplers():
    rng = np.random.default_rng(0)
    samples = rng.normal(size=(100, 2))
    collapsed = np.repeat(samples[:1], repeats=100, axis=0)     # the notebook's collapsed sampler
    assert MODULE.collapse_flagged(collapsed, 1.0, alpha=1e-6)
    # A sampler whose spread shrank to half: flagged in every one of 200 trials at alpha 1e-3
    # (its statistic is chi-square(99)/4, below the 1e-3/2 quantile with probability > 1 - 1e-12).
    assert all(MODULE.collapse_flagged(rng.normal(0.0, 0.5, (100, 2)), 1.0, alpha=1e-3) for _ in range(200))
    assert not MODULE.collapse_flagged(samples, 1.0, alpha=1e-6)


@pytest.mark.parametrize("arguments, match", [
    (dict(samples=np.zeros(5), reference_variance=1.0), "samples"),
    (dict(samples=np.zeros((1, 2)), reference_variance=1.0), "samples"),
    (dict(samples=np.zeros((5, 2)), reference_variance=1.0, alpha=1.5), "alpha"),
])
def test_collapse_test_rejects_bad_arguments(arguments, match):
    with pytest.raises(ValueError, match=rf"collapse_flagged: argument '{match}'"):
        MODULE.collapse_flagged(**arguments)


# --- modes covered -------------------------------------------------------------------------------------


@pytest.mark.parametrize("modes, draws", [(10, 10), (5, 8), (40, 20), (3, 2)])
def test_simulated_samplers_cover_the_expected_number_of_modes(modes, draws):
    # Regimes where some modes are missed often enough for the batch means to spread
    # (see simulate_modes_covered); t test at false-alarm probability 1e-6.
    counts = MODULE.simulate_modes_covered(np.random.default_rng(modes), 100_000, modes, draws)
    assert abs(batch_t(counts, float(expected_modes_covered(modes, draws)))) < T_THRESHOLD


def test_modes_covered_tells_a_collapsed_sampler_from_a_healthy_one():
    # Eight modes on a circle; a healthy sampler reaches all of them with 200 draws except
    # with probability 8 (7/8)^200 < 1e-10; a sampler collapsed onto three modes reaches three.
    rng = np.random.default_rng(8)
    angles = 2 * np.pi * np.arange(8) / 8
    modes = 10 * np.column_stack([np.cos(angles), np.sin(angles)])
    healthy = modes[rng.integers(0, 8, 200)] + rng.normal(size=(200, 2))
    collapsed = modes[rng.integers(0, 3, 200)] + rng.normal(size=(200, 2))
    assert MODULE.modes_covered(healthy, modes, radius=3.0) == 8
    assert MODULE.modes_covered(collapsed, modes, radius=3.0) == 3
    assert expected_modes_covered(8, 200) > 8 - 1e-10


# --- dtypes and bad input --------------------------------------------------------------------------------


def test_float32_and_broadcasting():
    f32 = np.float32
    assert mixture_variance(f32(0.5), np.zeros(3, f32), f32(1), f32(2)).dtype == np.float32
    assert expected_modes_covered(np.arange(2, 6)[:, None], np.arange(1, 4)).shape == (4, 3)


@pytest.mark.parametrize("call, named", [
    (lambda: mixture_variance(1.5, 0.0, 1.0, 1.0), "weight"),
    (lambda: mixture_variance(0.5, 0.0, 1.0, -1.0), "scale"),
    (lambda: expected_modes_covered(1, 10), "modes"),
    (lambda: expected_modes_covered(5, 0), "draws"),
])
def test_bad_arguments_are_rejected(call, named):
    with pytest.raises(ValueError, match=rf"argument '{named}'"):
        call()
