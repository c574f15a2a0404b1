"""Autoregressive likelihood: the chain rule, enumeration, ancestral sampling, errors."""
import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from scipy import stats

import symgen
from symgen import autoregressive_binary_logpmf
from symgen.engine.accuracy import relative_error
from symgen.engine.evaluate import reference_value
from symgen.engine.runner import parameter_strategy

NAME = "autoregressive_binary_logpmf"
SEQUENCES = np.array(list(itertools.product([0, 1], repeat=3)), dtype=float)
PARAMS = dict(p1=0.3, q0=0.8, q1=0.25, r00=0.9, r01=0.5, r10=0.1, r11=0.65)


@settings(max_examples=100)
@given(point=parameter_strategy(symgen.derivation(NAME)))
def test_probabilities_of_all_sequences_sum_to_one(point):
    params = {k: v for k, v in point.items() if not k.startswith("x")}
    logp = autoregressive_binary_logpmf(*SEQUENCES.T, **params)
    assert abs(math.fsum(np.exp(logp)) - 1) <= 1e-14


def test_the_chain_rule_of_the_notebook():
    # Section 1: the log probability is the sum of the log conditionals.
    conditionals = [1 - PARAMS["p1"], PARAMS["q0"], 1 - PARAMS["r01"]]        # x = (0, 1, 0)
    assert autoregressive_binary_logpmf(0, 1, 0, **PARAMS) == pytest.approx(np.log(conditionals).sum(), rel=1e-15)


def test_ancestral_sampling_frequencies_match_by_chi_square():
    """Pearson's chi-square over the 8 sequences, 200_000 draws, every expected count
    above 900, so the chi-square(7) approximation holds at this level: false alarm 1e-6."""
    found = symgen.derivation(NAME)
    sampler = found.checks[0].sampler
    draws = sampler(np.random.default_rng(7), 200_000, x1=0, x2=0, x3=0, **PARAMS).astype(int)
    counts = np.bincount(draws @ np.array([4, 2, 1]), minlength=8)
    expected = 200_000 * np.exp(autoregressive_binary_logpmf(*SEQUENCES.T, **PARAMS))
    assert expected.min() > 900
    assert stats.chisquare(counts, expected).pvalue > 1e-6


@pytest.mark.parametrize("nats", [0.0, 1.0, 17.3])
def test_nats_to_bits_per_dimension_and_perplexity(nats):
    # bits/dim = -log p / (D log 2); perplexity = 2^(bits/dim) = exp(nats/dim).
    logp = float(autoregressive_binary_logpmf(1, 0, 1, **PARAMS))
    bits_per_dimension = -logp / (3 * math.log(2))
    assert bits_per_dimension == pytest.approx(-np.log2(np.exp(logp)) / 3, rel=1e-13)
    assert 2**bits_per_dimension == pytest.approx(math.exp(-logp / 3), rel=1e-13)


def test_tiny_probabilities_keep_their_digits():
    point = dict(x1=0, x2=0, x3=0, p1=1e-15, q0=3e-17, q1=0.5, r00=2e-13, r01=0.5, r10=0.5, r11=0.5)
    found = symgen.derivation(NAME)
    reference = reference_value(found, found.output().closed_form, point)
    assert relative_error(autoregressive_binary_logpmf(**point), reference) <= 1e-12
    textbook = math.log(1 - 1e-15) + math.log(1 - 3e-17) + math.log(1 - 2e-13)
    assert relative_error(textbook, reference) > 1e-4


def test_float32_and_broadcasting():
    f32 = {k: np.float32(v) for k, v in PARAMS.items()}
    assert autoregressive_binary_logpmf(np.float32(1), np.float32(0), np.float32(1), **f32).dtype == np.float32
    assert autoregressive_binary_logpmf(*SEQUENCES.T, **PARAMS).shape == (8,)


@pytest.mark.parametrize("change, message", [
    (dict(p1=1.2), "argument 'p1' must lie in"),
    (dict(r10=-0.1), "argument 'r10' must lie in"),
    (dict(q0=0.0), "argument 'q0' must lie in"),
    (dict(x2=0.5), "argument 'x2' must be 0 or 1"),
    (dict(x1=2.0), "argument 'x1' must be 0 or 1"),
])
def test_probabilities_outside_the_unit_interval_and_non_binary_values_are_rejected(change, message):
    arguments = dict(x1=1, x2=0, x3=1, **PARAMS)
    arguments.update(change)
    with pytest.raises(ValueError, match=rf"autoregressive_binary_logpmf: {message}"):
        autoregressive_binary_logpmf(**arguments)
