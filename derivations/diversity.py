"""Diversity and mode collapse: sample variance, and how many modes a sampler covers.

Theory notebook, section 11, compares the per-dimension sample variance of healthy samples
with that of a collapsed sampler (every sample the same). Three pieces make that a test:

* the sample variance with the n - 1 correction, s^2 = sum (x_i - mean)^2 / (n - 1), is
  unbiased for the variance of any distribution with a second moment
  (:func:`corrected_variance_is_unbiased`, proved by SymPy for general n); NumPy's default
  ``var`` (ddof=0, the notebook's) is low by the factor (n - 1)/n;
* ``mixture_variance``: the variance of a two-mode Gaussian mixture, sigma^2 + w(1 - w)
  (loc1 - loc2)^2. A sampler that drops a mode loses the second term: what its sample
  variance shows. The empirical check compares it with corrected sample variances;
* ``expected_modes_covered``: the expected number of modes of an equally weighted K-mode
  mixture that n draws reach, K (1 - (1 - 1/K)^n). A sampler that covers fewer is
  collapsing; :func:`modes_covered` counts the modes a set of samples reaches.

:func:`collapse_flagged` is the test: for samples of a healthy sampler whose dimensions
have variance ``reference_variance`` (Gaussian samples), (n - 1) s^2 / variance is
chi-square with n - 1 degrees of freedom, so flagging a dimension whose statistic falls
below the alpha / d quantile flags a healthy sampler with probability at most alpha
(Bonferroni over the d dimensions), and a collapsed one (s^2 = 0) always.
"""
from __future__ import annotations

import numpy as np
import sympy as sp
from sympy.codegen.cfunctions import expm1, log1p

from symgen.engine import (Count, Derivation, GaussianExpectation, IdentityCheck, Interval, Lemma, MeanCheck, Param,
                           Positive, Real, lazy_module)

# SciPy is loaded when a check or diagnostic first runs, not at import.
stats = lazy_module("scipy.stats")

# --- the n - 1 correction ----------------------------------------------------------------------

# n iid draws with E x = m1, E x^2 = m2, and S = sum_i x_i: E[sum x_i^2] = n m2 and
# E[S^2] = n m2 + n (n - 1) m1^2 (the cross terms of independent draws), and
# sum (x_i - mean)^2 = sum x_i^2 - S^2 / n.
n, m1, m2 = sp.symbols("n m1 m2", positive=True)
expected_squared_deviations = n * m2 - (n * m2 + n * (n - 1) * m1**2) / n
CORRECTED_VARIANCE_IS_UNBIASED = Lemma(
    "E[sum_i (x_i - mean)^2] = (n - 1) Var x for n iid draws",
    (expected_squared_deviations, (n - 1) * (m2 - m1**2)))


def corrected_variance_is_unbiased():
    """E[sum_i (x_i - mean)^2] = (n - 1) Var x for n iid draws with E x = m1, E x^2 = m2
    (the lemma above). Returns (expectation, closed form), proved equal by SymPy for
    symbolic n."""
    CORRECTED_VARIANCE_IS_UNBIASED.prove()
    return CORRECTED_VARIANCE_IS_UNBIASED.equalities[0]


# --- the variance of a two-mode mixture ----------------------------------------------------------

weight = sp.Symbol("weight", positive=True)
loc1, loc2 = sp.symbols("loc1 loc2", real=True)
scale = sp.Symbol("scale", positive=True)
x = sp.Symbol("x", real=True)

mixture_variance = Derivation(
    "mixture_variance",
    notation={"mixture_variance": r"\mathrm{Var}[x]", "weight": r"\pi"},
    sections=(11,),
    title="Variance of a two-mode Gaussian mixture",
    summary="Var x for x ~ weight N(loc1, scale^2) + (1 - weight) N(loc2, scale^2): what the corrected "
            "sample variance of a sampler covering both modes estimates.",
    kind="metric",
    references=["The law of total variance; the sample variance with the n - 1 correction is unbiased "
                "(corrected_variance_is_unbiased in derivations/diversity.py)"],
    params=[
        Param(weight, Interval(0.0, 1.0, draw_low=1e-3, draw_high=1 - 1e-3), "probability of the first mode"),
        Param(loc1, Real(-5, 5), "mean of the first mode"),
        Param(loc2, Real(-5, 5), "mean of the second mode"),
        Param(scale, Positive(1e-1, 1e1), "standard deviation of each mode (not the variance)"),
    ],
    returns="the variance; a sampler that drops a mode shows only scale^2",
)
first_moment = (weight * GaussianExpectation(x, x, loc1, scale)
                + (1 - weight) * GaussianExpectation(x, x, loc2, scale))
second_moment = (weight * GaussianExpectation(x**2, x, loc1, scale)
                 + (1 - weight) * GaussianExpectation(x**2, x, loc2, scale))
chain = mixture_variance.define(
    second_moment - first_moment**2,
    "definition: Var x = E x^2 - (E x)^2, each moment the weighted sum of the modes' moments")
chain.step(
    weight * (loc1**2 + scale**2) + (1 - weight) * (loc2**2 + scale**2)
    - (weight * loc1 + (1 - weight) * loc2) ** 2,
    "SymPy integrates the Gaussian moments: E x = loc, E x^2 = loc^2 + scale^2")
chain.step(
    scale**2 + weight * (1 - weight) * (loc1 - loc2) ** 2,
    "collect terms: within-mode variance plus between-mode variance (the law of total variance)")

GROUP_SIZE = 16


def sample_corrected_variances(rng, n, weight, loc1, loc2, scale):
    """Corrected sample variances (ddof = 1) of n independent groups of GROUP_SIZE mixture
    draws x_i = m_i + scale eps_i (m_i the drawn mode's mean), made sharper in two ways that
    keep their mean. Antithetic pairs: the mirrored group m_i - scale eps_i (same labels,
    normals negated) is a mixture sample too, and the two sample variances are averaged,
    which cancels their cross term in the labels and normals. A control variate of mean 0:
    scale^2 (s_eps^2 - 1) is taken off, s_eps^2 being the corrected sample variance of the
    group's normals, a chi-square with GROUP_SIZE - 1 degrees of freedom over GROUP_SIZE - 1
    (Cochran's theorem), of mean 1: the modes' own spread. What varies is then the labels'
    part, (loc1 - loc2)^2 times the labels' sample variance, the between-mode term the
    closed form's second term states (Owen, Monte Carlo theory, methods and examples, 2013,
    ch. 8.2 antithetic sampling, ch. 8.9 control variates)."""
    first = rng.random((n, GROUP_SIZE)) < weight
    means = np.where(first, loc1, loc2)
    normals = rng.standard_normal((n, GROUP_SIZE))
    mirrored_pair = (np.var(means + scale * normals, axis=1, ddof=1)
                     + np.var(means - scale * normals, axis=1, ddof=1)) / 2
    return mirrored_pair - scale**2 * (normals.var(axis=1, ddof=1) - 1)


# 200,000 groups of 16: only the labels' spread is left, so the check resolves ~1e-12 of
# the variance where the modes coincide, ~0.01-0.1% for modes of comparable weight, and
# ~1-10% only for a rare mode (weight ~ 1e-3) far from the other.
mixture_variance.add_check(MeanCheck(
    sample_corrected_variances, f"corrected sample variance of {GROUP_SIZE} mixture draws by Monte Carlo",
    samples=200_000))

# E[numpy var(ddof=0)] over the check's groups of 16 is 15/16 of the variance.
mixture_variance.add_slip("(scale**2 + weight*(1 - weight)*(loc1 - loc2)**2)*15/16",
                          "the uncorrected sample variance's expectation (NumPy's default ddof=0)")

# --- modes covered ---------------------------------------------------------------------------------


modes, draws = sp.symbols("modes draws", positive=True)
mode_index = sp.Symbol("k", integer=True, positive=True)

expected_modes_covered = Derivation(
    "expected_modes_covered",
    notation={"expected_modes_covered": r"\mathbb{E}[\text{modes covered}]", "modes": r"K", "draws": r"n"},
    sections=(11,),
    title="Expected number of modes covered by draws from an equally weighted mixture",
    summary="E[number of the K = modes components that n = draws independent draws reach], "
            "each component having probability 1/K.",
    kind="metric",
    references=["Linearity of expectation over the modes; the count of draws in a mode is "
                "Binomial(draws, 1/modes)"],
    params=[
        # Counts, drawn as integers; the generated code checks count >= low (any finite real
        # above: the formula is continuous in the counts).
        Param(modes, Count(2, 40), "number of modes K of the target mixture (at least 2)"),
        Param(draws, Count(1, 120), "number of draws n"),
    ],
    returns="the expected number of modes with at least one draw, in [1, min(modes, draws)]",
)
# P(no draw in mode k) = (1 - 1/K)^n, written exp(n log(1 - 1/K)) (the same number: SymPy's
# simplifier does not turn one into the other for symbolic n, so the chain keeps one form).
# evaluate=False writes the same log down without SymPy's 30 ms of asking about its sign.
miss_probability = sp.exp(draws * sp.log(1 - 1 / modes, evaluate=False))
chain = expected_modes_covered.define(
    sp.Sum(1 - miss_probability, (mode_index, 1, modes)),
    "definition: the expected count is the sum over the modes of P(mode k has a draw) = "
    "1 - P(Binomial(draws, 1/modes) = 0) = 1 - (1 - 1/modes)^draws (linearity of expectation)")
chain.step(modes - modes * (1 - 1 / modes) ** draws, "SymPy sums the K equal terms: the textbook form",
           published=True)
chain.step(modes - modes * miss_probability, "(1 - 1/K)^n = exp(n log(1 - 1/K)), the form the stable rewrite starts from")
chain.stable(-modes * expm1(draws * log1p(-1 / modes)),
             "log(1 - 1/K) = log1p(-1/K), and 1 - exp(u) = -expm1(u): no cancellation when "
             "n << K, where nearly every draw reaches a new mode and K - K(1 - 1/K)^n loses its digits")

MODE_SPACING = 40.0   # in units of the modes' standard deviation: a draw lands nearest its own mode


def simulate_modes_covered(rng, replications, modes, draws):
    """Simulated counts of covered modes: draws from K unit-variance modes MODE_SPACING apart,
    each assigned to its nearest mode, distinct modes counted (used by the tests: where
    nearly every replication covers every mode the count is almost surely constant, and a
    batch-means t test has no spread to work with, so this is not an engine MeanCheck)."""
    modes, draws = int(modes), int(draws)
    labels = rng.integers(0, modes, (replications, draws))
    samples = MODE_SPACING * labels + rng.standard_normal((replications, draws))
    nearest = np.clip(np.rint(samples / MODE_SPACING), 0, modes - 1).astype(int)
    covered = np.zeros((replications, modes), dtype=bool)
    np.put_along_axis(covered, nearest, True, axis=1)
    return covered.sum(axis=1)


def exact_expected_modes_covered(modes, draws):
    """sum_k P(mode k has a draw) from scipy's binomial law (an independent route)."""
    return float(int(modes) * stats.binom(int(draws), 1 / int(modes)).sf(0))


expected_modes_covered.add_check(IdentityCheck(
    exact_expected_modes_covered, "sum of binomial probabilities by scipy.stats", rtol=1e-12))

# --- the diagnostics ----------------------------------------------------------------------------------


def collapse_flagged(samples, reference_variance, alpha=1e-3):
    """True when the samples (n, d) are too concentrated for a healthy sampler whose
    dimensions have variance ``reference_variance`` (Gaussian samples).

    Per dimension, (n - 1) s^2 / reference_variance is chi-square(n - 1) for a healthy
    sampler; a dimension is flagged below its alpha/d quantile, so a healthy sampler is
    flagged with probability at most alpha (exactly alpha for one dimension).
    """
    samples = np.asarray(samples, dtype=np.float64)
    if samples.ndim != 2 or samples.shape[0] < 2:
        raise ValueError(f"collapse_flagged: argument 'samples' must have shape (n >= 2, d), got {samples.shape}")
    if not 0 < alpha < 1:
        raise ValueError(f"collapse_flagged: argument 'alpha' must lie in (0, 1), got {alpha}")
    count, dimensions = samples.shape
    statistic = (count - 1) * samples.var(axis=0, ddof=1) / np.asarray(reference_variance, dtype=np.float64)
    return bool(np.any(statistic < stats.chi2.ppf(alpha / dimensions, count - 1)))


def modes_covered(samples, mode_locations, radius):
    """The number of modes (rows of ``mode_locations``, shape (K, d)) with a sample within ``radius``."""
    samples = np.atleast_2d(np.asarray(samples, dtype=np.float64))
    mode_locations = np.atleast_2d(np.asarray(mode_locations, dtype=np.float64))
    distances = np.linalg.norm(samples[:, None, :] - mode_locations[None, :, :], axis=-1)
    return int(np.sum(np.any(distances <= radius, axis=0)))
