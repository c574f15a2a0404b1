"""Discrete likelihoods and their units: a categorical autoregressive model, bits per
dimension, perplexity, and DDPM's discretized Gaussian decoder.

Proofs, the derivations' empirical checks, accuracy against mpmath (including logits of
+-700 and bins far in the Gaussian's tails, against quadrature of Eq. 13's integral),
normalisation over every value, and clear errors. The usual slips are declared in the
derivation module (a catalogue-wide test refutes them).
"""
import itertools
import math

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special, stats

import symgen
from symgen.engine import DerivationError
from symgen.engine.accuracy import max_relative_error, relative_error
from symgen.engine.derivation import prove_step
from symgen.engine.evaluate import reference_value
from symgen.engine.mutants import mutants
from symgen.engine.runner import formula_function


NAMES = ["autoregressive_categorical_logpmf_2x3", "bits_per_dim", "perplexity", "discretized_gaussian_logpmf"]
autoregressive_categorical_logpmf_2x3, bits_per_dim, perplexity, discretized_gaussian_logpmf = (
    formula_function(symgen.derivation(name)) for name in NAMES)
DRAFT = symgen.derivation(NAMES[0]).module      # the derivation module: its symbols and helpers

PAIRS = np.array(list(itertools.product([0, 1, 2], repeat=2)), dtype=float)
LOGITS = dict(a0=0.3, a1=-1.2, a2=1.0, b00=2.0, b01=0.0, b02=-0.5, b10=-1.0, b11=1.5, b12=0.2,
              b20=0.4, b21=0.4, b22=-2.0)
GRID = DRAFT.EIGHT_BIT_GRID


def softmax(logits):
    shifted = np.exp(np.asarray(logits) - np.max(logits))
    return shifted / shifted.sum()


def probability_by_hand(x1, x2, logits):
    """p(x1) p(x2 | x1) by NumPy softmaxes and table lookups."""
    first = softmax([logits[f"a{k}"] for k in range(3)])
    second = softmax([logits[f"b{int(x1)}{k}"] for k in range(3)])
    return first[int(x1)] * second[int(x2)]


# --- every derivation -------------------------------------------------------------------------


@pytest.mark.parametrize("name, wrong", [("bits_per_dim", "nll_nats/(dims*log(10))"),
                                         ("perplexity", "2**(nll_nats/tokens)")])
def test_a_wrong_step_is_not_proved(name, wrong):
    found = symgen.derivation(name)
    definition = found.output().steps[0].expression
    with pytest.raises(DerivationError):
        prove_step(found, definition, sp.sympify(wrong, locals=found.symbols()), np.random.default_rng(0))


@pytest.mark.parametrize("name", NAMES)
def test_matches_50_digit_mpmath_over_the_domain(name):
    errors = max_relative_error(symgen.derivation(name), points=40)
    assert max(errors.values()) <= 1e-12, errors


# --- the categorical autoregressive model ----------------------------------------------------

logits_up_to_700 = st.fixed_dictionaries({name: st.floats(-700.0, 700.0) for name in LOGITS})


@settings(max_examples=60)
@given(logits=logits_up_to_700)
def test_all_nine_sequences_sum_to_one_for_logits_up_to_700(logits):
    logp = autoregressive_categorical_logpmf_2x3(*PAIRS.T, **logits)
    assert np.all(np.isfinite(logp))
    assert abs(math.fsum(np.exp(logp)) - 1) <= 1e-14


@settings(max_examples=60)
@given(logits=logits_up_to_700, x1=st.sampled_from([0.0, 1.0, 2.0]), x2=st.sampled_from([0.0, 1.0, 2.0]))
def test_matches_mpmath_for_logits_up_to_700(logits, x1, x2):
    # A sum of two log-softmaxes, each <= 0: no cancellation, so no condition factor.
    found = symgen.derivation(NAMES[0])
    point = dict(x1=x1, x2=x2, **logits)
    reference = reference_value(found, found.output().closed_form, point)
    assert relative_error(autoregressive_categorical_logpmf_2x3(**point), reference) <= 1e-12


def test_the_textbook_form_overflows_and_cancels_where_the_stable_one_does_not():
    found = symgen.derivation(NAMES[0])
    # x = (0, 1), each the likeliest category by 700: log p = -2 log1p(e^-700 + e^-1400) = -2e-304,
    # where the textbook 700 - log(e^700 + 1 + e^-700) is 0.
    point = dict(x1=0.0, x2=1.0, **dict(LOGITS, a0=700.0, a1=0.0, a2=-700.0, b00=0.0, b01=700.0, b02=-700.0))
    assert 700.0 - np.log(np.exp(700.0) + 1.0 + np.exp(-700.0)) == 0.0
    reference = reference_value(found, found.output().closed_form, point)
    assert float(reference) == pytest.approx(-2 * math.exp(-700), rel=1e-12)
    assert relative_error(autoregressive_categorical_logpmf_2x3(**point), reference) <= 1e-12
    # Logits of 710: the textbook sum of exponentials overflows.
    point.update(a0=710.0, a1=705.0)
    with np.errstate(over="ignore"):
        assert np.isinf(np.log(np.exp(710.0) + np.exp(705.0) + np.exp(-700.0)))
    reference = reference_value(found, found.output().closed_form, point)
    assert relative_error(autoregressive_categorical_logpmf_2x3(**point), reference) <= 1e-12


def test_the_chain_rule_by_hand():
    for x1, x2 in PAIRS:
        expected = np.log(probability_by_hand(x1, x2, LOGITS))
        assert autoregressive_categorical_logpmf_2x3(x1, x2, **LOGITS) == pytest.approx(expected, rel=1e-14)


def test_gumbel_max_ancestral_frequencies_by_chi_square():
    """Pearson's chi-square over the 9 sequences, 200_000 draws, every expected count above
    800, so the chi-square(8) approximation holds at this level: false alarm 1e-6."""
    draws = DRAFT.gumbel_max_samples(np.random.default_rng(11), 200_000, **LOGITS)
    counts = np.bincount(draws[:, 0] * 3 + draws[:, 1], minlength=9)
    expected = 200_000 * np.exp(autoregressive_categorical_logpmf_2x3(*PAIRS.T, **LOGITS))
    assert expected.min() > 800
    assert stats.chisquare(counts, expected).pvalue > 1e-6


def test_float32_and_broadcasting():
    f32 = {name: np.float32(value) for name, value in LOGITS.items()}
    assert autoregressive_categorical_logpmf_2x3(np.float32(2), np.float32(1), **f32).dtype == np.float32
    assert autoregressive_categorical_logpmf_2x3(*PAIRS.T, **LOGITS).shape == (9,)
    batch = dict(LOGITS, a0=np.linspace(-3, 3, 5)[:, None])
    assert autoregressive_categorical_logpmf_2x3(PAIRS[:, 0], PAIRS[:, 1], **batch).shape == (5, 9)


@pytest.mark.parametrize("change, message", [
    (dict(x1=3.0), "argument 'x1' must be 0, 1 or 2"),
    (dict(x2=0.5), "argument 'x2' must be 0, 1 or 2"),
    (dict(x1=-1.0), "argument 'x1' must be 0, 1 or 2"),
    (dict(b12=np.nan), "argument 'b12' must be finite"),
    (dict(a0=np.inf), "argument 'a0' must be finite"),
])
def test_values_outside_the_categories_and_non_finite_logits_are_rejected(change, message):
    arguments = dict(x1=1.0, x2=2.0, **LOGITS)
    arguments.update(change)
    with pytest.raises(ValueError, match=rf"autoregressive_categorical_logpmf_2x3: {message}"):
        autoregressive_categorical_logpmf_2x3(**arguments)


# --- bits per dimension and perplexity -------------------------------------------------------


def test_units_of_a_sequence_sampled_from_the_categorical_model():
    # 500 pairs (1000 tokens) by Gumbel-max; each token's probability by a NumPy softmax.
    pairs = DRAFT.gumbel_max_samples(np.random.default_rng(3), 500, **LOGITS)
    first = softmax([LOGITS[f"a{k}"] for k in range(3)])
    rows = [softmax([LOGITS[f"b{j}{k}"] for k in range(3)]) for j in range(3)]
    probabilities = np.array([[first[x1], rows[x1][x2]] for x1, x2 in pairs]).ravel()
    nll = -math.fsum(autoregressive_categorical_logpmf_2x3(pairs[:, 0], pairs[:, 1], **LOGITS))
    tokens = probabilities.size
    assert bits_per_dim(nll, tokens) == pytest.approx(-np.log2(probabilities).sum() / tokens, rel=1e-12)
    geometric_mean = np.exp(np.mean(np.log(probabilities)))
    assert perplexity(nll, tokens) == pytest.approx(1 / geometric_mean, rel=1e-12)
    assert perplexity(nll, tokens) == pytest.approx(2 ** bits_per_dim(nll, tokens), rel=1e-12)


@pytest.mark.parametrize("categories", [2, 3, 256, 50_257])
def test_a_uniform_model_has_log2_k_bits_and_perplexity_k(categories):
    tokens = 3072
    nll = tokens * math.log(categories)
    assert bits_per_dim(nll, tokens) == pytest.approx(math.log2(categories), rel=1e-15)
    assert perplexity(nll, tokens) == pytest.approx(categories, rel=1e-13)


@settings(max_examples=100)
@given(nll=st.floats(0.0, 1e5), dims=st.floats(1.0, 1e5))
def test_perplexity_is_two_to_the_bits_per_token(nll, dims):
    # 2^b with b rounded: relative error ~ b ln 2 ulps, below 1e-13 for b <= 700 bits.
    if nll / dims < 700:
        assert perplexity(nll, dims) == pytest.approx(2.0 ** bits_per_dim(nll, dims), rel=1e-12)


def test_float32_and_overflow():
    assert bits_per_dim(np.float32(100), np.float32(3072)).dtype == np.float32
    with np.errstate(over="ignore"):
        assert perplexity(1e4, 1.0) == np.inf               # e^10000: beyond float64


@pytest.mark.parametrize("function, arguments, message", [
    ("bits_per_dim", dict(nll_nats=10.0, dims=0.0), "argument 'dims' must be positive, got 0.0"),
    ("bits_per_dim", dict(nll_nats=10.0, dims=-3.0), "argument 'dims' must be positive, got -3.0"),
    ("bits_per_dim", dict(nll_nats=-0.5, dims=3.0), "argument 'nll_nats' must be >= 0"),
    ("bits_per_dim", dict(nll_nats=np.nan, dims=3.0), "argument 'nll_nats' must be finite"),
    ("perplexity", dict(nll_nats=10.0, tokens=0.0), "argument 'tokens' must be positive, got 0.0"),
    ("perplexity", dict(nll_nats=-1e-9, tokens=5.0), "argument 'nll_nats' must be >= 0"),
    ("perplexity", dict(nll_nats=np.inf, tokens=5.0), "argument 'nll_nats' must be finite"),
])
def test_bad_counts_and_negative_likelihoods_are_rejected(function, arguments, message):
    with pytest.raises(ValueError, match=rf"{function}: {message}"):
        {"bits_per_dim": bits_per_dim, "perplexity": perplexity}[function](**arguments)


# --- the discretized Gaussian decoder --------------------------------------------------------


@settings(max_examples=60)
@given(loc=st.floats(-3.0, 3.0), log_scale=st.floats(math.log(1e-4), math.log(100.0)))
def test_all_256_values_sum_to_one(loc, log_scale):
    # The float grid values miss 2k/255 - 1 by up to 1.1e-16, so neighbouring bins overlap or
    # leave a gap that wide: at scale 1e-4 (density 4e3) that is up to 4.4e-13 of mass.
    logp = discretized_gaussian_logpmf(GRID, loc, math.exp(log_scale))
    assert abs(math.fsum(np.exp(logp)) - 1) <= 1e-12


far_bins = st.tuples(st.integers(0, 255), st.floats(-3.0, 3.0), st.floats(math.log(1e-4), math.log(3e-2)))


@settings(max_examples=60)
@given(bin_=far_bins)
def test_accurate_in_the_tails_against_quadrature_of_the_bin_integral(bin_):
    # Tiny scales put most bins tens to thousands of standard deviations from loc, where
    # both CDFs round to 1 or 0. Quadrature of Eq. 13's integral never uses the CDF formula.
    k, loc, log_scale = bin_
    x, scale = float(GRID[k]), math.exp(log_scale)
    reference = DRAFT.log_bin_mass_by_quadrature(x, loc, scale, digits=40)
    assert relative_error(discretized_gaussian_logpmf(x, loc, scale), reference) <= 1e-12


def test_the_textbook_difference_is_log_zero_where_the_function_is_accurate():
    x, loc, scale = float(GRID[200]), -0.3, 0.01      # x = 0.569, 87 scales above loc
    a, b = (x - 1 / 255 - loc) / scale, (x + 1 / 255 - loc) / scale
    with np.errstate(divide="ignore"):
        assert np.log(special.ndtr(b) - special.ndtr(a)) == -np.inf
    reference = DRAFT.log_bin_mass_by_quadrature(x, loc, scale, digits=40)
    assert relative_error(discretized_gaussian_logpmf(x, loc, scale), reference) <= 1e-12
    # loc on the grid value with scale 3.2e-4: P = 1 - 2 Q(12.25) = 1 - 1.7e-34, so log P = -1.7e-34,
    # from log1p of the two tails; the textbook log(Phi(b) - Phi(a)) is log 1 = 0.
    found = symgen.derivation(NAMES[3])
    point = dict(x=float(GRID[100]), loc=float(GRID[100]), scale=3.2e-4)
    a, b = -1 / 255 / 3.2e-4, 1 / 255 / 3.2e-4
    assert np.log(special.ndtr(b) - special.ndtr(a)) == 0.0
    reference = reference_value(found, found.output().closed_form, point)
    assert float(reference) == pytest.approx(-2 * special.ndtr(-b), rel=1e-12)
    assert relative_error(discretized_gaussian_logpmf(**point), reference) <= 1e-12


def test_the_edge_bins_reach_to_infinity():
    # loc below -1: most of the mass is in the bin of x = -1, which takes (-inf, -1 + 1/255].
    assert discretized_gaussian_logpmf(-1.0, -3.0, 0.5) == pytest.approx(
        special.log_ndtr((-1 + 1 / 255 + 3.0) / 0.5), rel=1e-14)
    assert discretized_gaussian_logpmf(1.0, 2.5, 0.7) == pytest.approx(
        special.log_ndtr((2.5 - 1 + 1 / 255) / 0.7), rel=1e-14)
    # An interior bin is the difference of two CDFs (where that does not cancel).
    x = float(GRID[130])
    assert discretized_gaussian_logpmf(x, 0.1, 0.3) == pytest.approx(
        np.log(special.ndtr((x + 1 / 255 - 0.1) / 0.3) - special.ndtr((x - 1 / 255 - 0.1) / 0.3)), rel=1e-13)


def test_frequencies_of_clipped_and_rounded_gaussian_draws_by_chi_square():
    """Pearson's chi-square over the bins with expected counts above 1000 (the rest pooled),
    10^6 draws: the chi-square approximation holds at this level: false alarm 1e-6."""
    loc, scale = 0.9, 0.15
    indices = DRAFT.clipped_rounded_samples(np.random.default_rng(5), 10**6, x=0.0, loc=loc, scale=scale)[:, 0]
    counts = np.bincount(indices, minlength=256)
    expected = 10**6 * np.exp(discretized_gaussian_logpmf(GRID, loc, scale))
    large = expected > 1000
    observed = np.append(counts[large], counts[~large].sum())
    expected = np.append(expected[large], expected[~large].sum())
    assert counts[255] > 2 * 10**5                          # the edge bin at 1 holds the clipped mass
    assert stats.chisquare(observed, expected).pvalue > 1e-6


def test_float32_pixels_stay_on_the_grid_and_broadcast():
    pixels = np.arange(256, dtype=np.uint8)
    scaled = pixels.astype(np.float32) / np.float32(127.5) - np.float32(1)
    logp = discretized_gaussian_logpmf(scaled, np.float32(0.2), np.float32(0.1))
    assert logp.dtype == np.float32 and logp.shape == (256,)
    assert abs(np.exp(logp.astype(np.float64)).sum() - 1) <= 1e-5
    images = discretized_gaussian_logpmf(GRID[:, None, None], np.zeros((1, 4, 1)), np.full((1, 1, 3), 0.2))
    assert images.shape == (256, 4, 3)


@pytest.mark.parametrize("change, message", [
    (dict(x=0.0), "argument 'x' must lie on the 8-bit grid"),              # 127.5 is no pixel value
    (dict(x=float(GRID[7]) + 1e-4), "argument 'x' must lie on the 8-bit grid"),
    (dict(x=1.5), r"argument 'x' must lie in \[-1.0, 1.0\], got 1.5"),
    (dict(x=-1.01), r"argument 'x' must lie in \[-1.0, 1.0\], got -1.01"),
    (dict(scale=0.0), "argument 'scale' must be positive, got 0.0"),
    (dict(scale=-0.1), "argument 'scale' must be positive, got -0.1"),
    (dict(loc=np.nan), "argument 'loc' must be finite"),
])
def test_values_off_the_grid_and_bad_scales_are_rejected(change, message):
    arguments = dict(x=float(GRID[7]), loc=0.1, scale=0.3)
    arguments.update(change)
    with pytest.raises(ValueError, match=rf"discretized_gaussian_logpmf: {message}"):
        discretized_gaussian_logpmf(**arguments)


# --- mutants wrong on part of a finite domain ------------------------------------------------


def test_variants_wrong_only_on_part_of_a_finite_domain_count_as_wrong():
    """The mutation harness judges equivalence at enough domain points that a variant wrong
    only on part of a finite domain (two swapped logits of one row; the lost lower edge bin
    of the 8-bit decoder) is classed as wrong, and so must be refuted."""
    categorical, _ = mutants(symgen.derivation(NAMES[0]))
    decoder, _ = mutants(symgen.derivation(NAMES[3]))
    wrong = {m.description for m in categorical} | {m.description for m in decoder}
    assert {"swapped b00 and b02", "swapped b21 and b22", "constant -254/255 doubled"} <= wrong
