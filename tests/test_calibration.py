"""Calibration of every statistical check's statistic at its production configuration.

Each statistical check claims a false-alarm probability of at most ALPHA_PER_EVALUATION =
1e-9 per evaluation (statistic > 1 fails). The exact tests (binomial tails, the conditional
check's t and chi-square on jointly Gaussian pairs) and the conservative ones (Bonferroni,
DKW, Kolmogorov-Smirnov) spend their shares of 1e-9 at face value; the two that rest on a
normal or Student t approximation, MeanCheck's batch-means t test and DistributionCheck's
mean and variance tests, put their thresholds at their share divided by APPROXIMATION_MARGIN
= 4 (symgen/engine/checks.py), so that the approximation's error stays inside the claim.
Here each check's own statistic code (the pure functions of symgen.engine.checks,
density_checks, discrete and conditional, or the check's run itself) runs many times on the
inputs a correct formula gives it, simulated exactly and cheaply at the production sample
sizes, and the p-value of each replication is compared with uniform at q = 0.1, 0.01 and
0.001 (one-sided, "at most q", where the stated law is a bound: Bonferroni, DKW, discrete
tails). The p-value is the probability that the law the check takes its threshold from
assigns to a statistic at least as large, so at statistic 1 it is the nominal level of the
threshold: for MeanCheck 2 P(T_399 >= statistic x 6.493), 1e-9 / 4 at statistic 1; for each
of DistributionCheck's moment tests 2 P(Z >= statistic x 6.494), 1e-9 / 12 at 1; for its
Kolmogorov-Smirnov test scipy's p-value, 1e-9 / 3 at 1; 1e-9 / 2 for the density check's two
tests and the box check; 1e-9 for the enumeration check (Bonferroni over 2 x 256 tails); 1e-9
/ 4 for each of the conditional check's two. At the approximate tests' thresholds the true
false-alarm probability is measured (importance sampling) or computed, and asserted to be at
most ALPHA_PER_EVALUATION. What is simulated, and to which tail level:

* MeanCheck (400 batch means, Student t with 399 degrees of freedom, threshold 6.493: the
  two-sided quantile at 1e-9 / 4). The most skewed draw law in the catalogue, and exactly
  simulable: mixture_variance at weight 0.001 with the modes 100 scales apart (both edges of
  its domain). Its sampler (antithetic pairs, a control variate) leaves scale^2 + (loc1 -
  loc2)^2 times the sample variance of a group's 16 mode labels: a rare event, skewness 7.8
  per draw. Given the multinomial numbers of groups by their count of rare-mode draws, a
  batch sum is exact. 2e4 replications of 200,000 draws: to 1e-3. And chi-square(1) draws,
  the skewest law of a quadratic in one normal (the Gaussian KL log-ratios and
  diffusion_marginal's squared noise before their control variates), 400 batches of 2,500:
  batch sums exactly Gamma(1250, 2); 1e5 replications: to 1e-3. At the threshold itself, both
  by importance sampling: the same exact laws exponentially tilted, with exact likelihood
  ratios. With control variates (Controlled draws, symgen/engine/controls.py): the check's
  own run at production size (1e6 draws, a pilot of 1e5) on z^2 + 0.1 z^5, which the Hermite
  controls leave 0.1 He_5(z): 100 replications in the test, to 0.1 only; 2,000 once, to 1e-2
  (199, 13, 1 p-values at or below 0.1, 0.01, 0.001; expected 200, 20, 2).
* DistributionCheck, on plain draws of a normal law (the catalogue's one distribution check,
  diffusion_marginal's, now uses control variates, whose moments are MeanCheck-like z tests
  on near-constant adjusted draws: not simulated here). The sample mean and variance
  of n normal draws exactly (normal, scaled chi-square(n - 1)); the fourth moment in the
  variance's standard error is the variance squared times the sample kurtosis, which is
  independent of both (Basu) and is drawn from its normal approximation with its exact
  mean and variance: the only input not simulated exactly. 1e5 replications at n = 1e5,
  2e5, 1e6: to 1e-3. At the threshold (6.494 standard errors), the exact false-alarm
  probabilities of the mean test (Student t) and of the variance test (chi-square,
  integrated over the kurtosis).
  Kolmogorov-Smirnov: scipy 1.17's kstest uses method "exact", kstwo.sf(D, n), which for
  n > 140 and n D^2 >= 2.2 (p below ~0.025) is 2 smirnov(n, D), twice the exact one-sided
  tail, hence at least the two-sided tail (union bound): P(p <= q) <= q there, at every
  level. That it matches an independent Birnbaum-Tingey sum at n = 1e5..1e6 down to 1e-12
  is checked; D itself, which needs all n order statistics, is simulated exactly 1,000
  times at n = 1e5: to 1e-2.
* DensityCheck. The grid Kolmogorov-Smirnov deviation exactly: grid points are linear
  interpolations between adjacent order statistics, drawn from gamma spacings (uniform law;
  for another law F at the interpolated point differs by ~1e-12); 5e4 replications at
  n = 2e5 and 1e6: to 1e-3 (the DKW bound is conservative: 0.6-0.8 q observed). The
  interval count: exactly binomial, 1e5 replications: to 1e-3.
* BoxCheck: two overlapping boxes' counts, exactly multinomial; 1e5 replications: to 1e-3.
* EnumerationCheck: the discretized Gaussian decoder's 256 cells among 1e6 draws, exactly
  multinomial, at two laws (54 cells expecting less than one draw; an edge cell holding half
  of them); 5e4 replications each: to 1e-3 (Bonferroni is conservative: 0.6-0.8 q observed).
* ConditionalCheck: the fitted line's t statistic and the residual variance exactly
  (normal, chi-square(n - 2)); 1e5 replications at n = 1e6: to 1e-3. (Its path for
  Controlled draws, t tests on jackknife standard errors, is not simulated here.)

Beyond the levels resolved. Exact at every level, given scipy's distribution functions
(binomial tails checked against 30-digit sums here at 1e-10 and 1e-12): the binomial tails
of the density, box and enumeration checks, and the t and chi-square tests of the
conditional check for a jointly Gaussian pair; conservative at every level: the Kolmogorov-Smirnov
p-value, DKW and Bonferroni. Approximate: the batch-means t test and the distribution
check's normal thresholds, hence the margin; their true false-alarm probabilities at the
production thresholds, measured or computed here (the tests assert each at most 1e-9):
chi-square(1) draws at 400 x 2,500: 2.534e-10 +- 0.018e-10 (6e5 importance samples per
tail), 1.014 times the nominal 2.5e-10 (one-sided 0.79 and 1.24 times nominal: the t
approximation's leading, skewness, error cancels between the tails only to first order),
2.62e-10 at 400 x 1,000. mixture_variance at weight 0.001: 5.40e-10 +- 0.13e-10 (5e4
samples per tail), 2.16 times nominal, nearly all of it in the lower tail (5.12e-10);
3.30e-10 at weight 0.003, 2.69e-10 at 0.01: the rare mode's ~3,200 groups among 200,000
make the t statistic's lower tail far heavier than Student's, relatively more so the
deeper the threshold (at the nominal 1e-9 threshold, without the margin, these were
1.90e-9, 1.25e-9, 1.06e-9, and 1.036e-9 for chi-square(1)). The distribution check, mean
and variance tests together: 1.97e-10, 1.82e-10, 1.70e-10 at n = 1e5, 2e5, 1e6 (nominal
1.67e-10; the variance test, a normal threshold on a studentized variance, 1.36, 1.18,
1.035 times its nominal 8.3e-11, the mean test 1.005, 1.002, 1.0005), with
Kolmogorov-Smirnov's at most 3.33e-10: 5.31e-10, 5.15e-10, 5.03e-10 in all. Assumed, not
shown: that the draw laws not simulated at their threshold (the planar flow's importance
weights, the Stein identities, control-variate-adjusted draws, near-constant or, like
z^2 + 0.1 z^5 above, simulated to 1e-2 only, and the conditional check's jackknife t tests)
leave the t and normal approximations within the margin, at most 4 times nominal, where the
skewest law measured here takes 2.16.

Each assertion's false-alarm probability is at most 1e-6 and stated; all seeds are fixed,
so the tests are deterministic.
"""
import math

import numpy as np
import pytest
from scipy import optimize, special, stats

from symgen.engine.checks import (ALPHA_PER_EVALUATION, APPROXIMATION_MARGIN, ROUNDING_RTOL, MeanCheck,
                                  batch_means_statistic, distribution_statistics, moment_standard_errors)
from symgen.engine.conditional import conditional_statistics
from symgen.engine.controls import Controlled
from symgen.engine.density_checks import GRID_LEVELS, binomial_tail_statistic, grid_ks_statistic
from symgen.engine.discrete import enumeration_statistic

LEVELS = (0.1, 0.01, 0.001)
# The false-alarm probability of each assertion below (under a correctly calibrated statistic).
TEST_ALPHA = 1e-6
BATCHES = 400
# The production thresholds of the approximate tests, in standard errors: MeanCheck's, as its
# own code returns it (Student's t(399) two-sided quantile at ALPHA_PER_EVALUATION /
# APPROXIMATION_MARGIN = 2.5e-10: 6.493), and that of DistributionCheck's two moment tests
# (the normal two-sided quantile at ALPHA_PER_EVALUATION / (3 APPROXIMATION_MARGIN) = 8.3e-11:
# 6.494); test_the_thresholds_are_the_stated_ones checks both against the checks' code.
MEAN_THRESHOLD = float(batch_means_statistic(np.arange(BATCHES, dtype=np.float64), 0.0)[3])
DISTRIBUTION_Z = float(stats.norm.isf(ALPHA_PER_EVALUATION / (3 * APPROXIMATION_MARGIN) / 2))


def assert_uniform_tail(pvalues, conservative=False):
    """The number of p-values <= q is consistent with Binomial(R, q) for each q in LEVELS:
    exact binomial tests, each at TEST_ALPHA / 3 (two-sided; one-sided, too many only, if
    ``conservative``: the stated law is a bound). False-alarm probability <= TEST_ALPHA for
    uniform p-values (or stochastically larger ones, if conservative)."""
    pvalues = np.asarray(pvalues, dtype=np.float64)
    replications = pvalues.size
    each = TEST_ALPHA / len(LEVELS)
    for q in LEVELS:
        count = int(np.count_nonzero(pvalues <= q))
        too_many = float(stats.binom.sf(count - 1, replications, q))
        too_few = float(stats.binom.cdf(count, replications, q))
        message = f"{count} of {replications} p-values <= {q} (expected {replications * q:g})"
        if conservative:
            assert too_many >= each, message
        else:
            assert min(too_many, too_few) >= each / 2, message


def assert_no_false_alarm(statistics):
    """At most one replication past the production threshold: under the claimed <= 1e-9 per
    evaluation, two or more among R <= 1e5 have probability <= (R 1e-9)^2 / 2 <= 5e-9."""
    statistics = np.asarray(statistics)
    assert statistics.size <= 100_000
    assert np.count_nonzero(~(statistics <= 1)) <= 1, np.max(statistics)


def two_sided_t_pvalue(statistic, threshold, degrees):
    """The nominal two-sided p-value of |t| = statistic * threshold under Student's t (the
    rounding allowance, 1e-12 of the values, is negligible): the law the test's threshold is
    taken from, so the p-value is ALPHA_PER_EVALUATION / APPROXIMATION_MARGIN at statistic 1
    for MeanCheck (and ALPHA_PER_EVALUATION / 4 for the conditional check's exact t test)."""
    return 2 * stats.t.sf(statistic * threshold, degrees)


def test_the_thresholds_are_the_stated_ones():
    """Deterministic. MeanCheck's threshold is Student's t(399) two-sided quantile at
    ALPHA_PER_EVALUATION / APPROXIMATION_MARGIN; DistributionCheck's moment tests reach
    statistic 1 at DISTRIBUTION_Z standard errors (to their rounding allowance, ~1e-12)."""
    assert APPROXIMATION_MARGIN == 4
    nominal = ALPHA_PER_EVALUATION / APPROXIMATION_MARGIN
    assert MEAN_THRESHOLD == pytest.approx(float(stats.t.isf(nominal / 2, BATCHES - 1)), rel=1e-12)
    mean_se, var_se = 0.01, 0.002
    mean_stat, var_stat, _ = distribution_statistics(0.3 + DISTRIBUTION_Z * mean_se, mean_se,
                                                     4.0 - DISTRIBUTION_Z * var_se, var_se, 1.0, 0.3, 4.0)
    np.testing.assert_allclose([mean_stat, var_stat], 1.0, rtol=1e-9)


# --- MeanCheck: batch means of the skewest exactly simulable laws --------------------------------


def chi_square_batch_means(rng, replications, per_batch, scale=1.0):
    """Batch means of chi-square(1) draws times ``scale``: a batch sum of m draws is exactly
    Gamma(m / 2, 2 scale)."""
    return rng.standard_gamma(per_batch / 2, size=(replications, BATCHES)) * (2 * scale / per_batch)


def mean_check_statistic(batch_means, value):
    # The draws are positive, so MeanCheck's rounding scale, the mean |draw|, is the estimate.
    rounding = ROUNDING_RTOL * np.fmax(1.0, batch_means.mean(axis=-1))
    return batch_means_statistic(batch_means, value, rounding)


# mixture_variance (derivations/diversity.py): its sampler averages the corrected sample variances
# of a group of GROUP draws from weight N(loc1, scale^2) + (1 - weight) N(loc2, scale^2) and of
# its mirror (normals negated) and takes off scale^2 (s_eps^2 - 1): what is left is exactly
# scale^2 + (loc1 - loc2)^2 k (GROUP - k) / (GROUP (GROUP - 1)), with k ~ Binomial(GROUP, weight)
# the group's draws from the first mode (test_mixture_variance_draws_are_the_simulated_law).
# 200,000 groups in 400 batches.
GROUP = 16
GROUPS = 200_000
FIRST = np.arange(GROUP + 1)
LABEL_VARIANCE = FIRST * (GROUP - FIRST) / (GROUP * (GROUP - 1))


def mixture_variance_value(weight, separation):
    """The closed form, scale 1: scale^2 + weight (1 - weight) (loc1 - loc2)^2."""
    return 1 + weight * (1 - weight) * separation**2


def mixture_variance_batch_means(rng, replications, weight, separation):
    """Exact batch means of mixture_variance's draws (scale 1), and for each replication the
    total number of draws from the first mode over all groups (for likelihood ratios).

    The numbers of groups with k = 0, 1, ... first-mode draws in a batch are multinomial,
    drawn as conditional binomials, stopping once no group is left (exactly)."""
    per_batch = GROUPS // BATCHES
    pmf = stats.binom.pmf(FIRST, GROUP, weight)
    at_least = np.cumsum(pmf[::-1])[::-1]
    remaining = np.full((replications, BATCHES), per_batch, dtype=np.int64)
    label_variance = np.zeros((replications, BATCHES))
    first_draws = np.zeros(replications)
    for k in range(GROUP):
        more = (rng.binomial(remaining, min(at_least[k + 1] / at_least[k], 1.0))
                if at_least[k + 1] > 0 else np.zeros_like(remaining))
        exactly = remaining - more
        label_variance += exactly * LABEL_VARIANCE[k]
        first_draws += k * exactly.sum(axis=1)
        remaining = more
        if not remaining.any():
            break
    first_draws += GROUP * remaining.sum(axis=1)         # LABEL_VARIANCE[GROUP] is 0
    return 1 + separation**2 * label_variance / per_batch, first_draws


def test_mixture_variance_draws_are_the_simulated_law():
    """The catalogue's sampler gives scale^2 + (loc1 - loc2)^2 k (GROUP - k) / (GROUP (GROUP - 1))
    for integers k (to rounding), the law simulated here. Deterministic given the seed."""
    import symgen

    sampler = symgen.derivation("mixture_variance").checks[0].sampler
    draws = sampler(np.random.default_rng(20260100), 20_000, weight=0.3, loc1=1.5, loc2=-0.5, scale=0.7)
    lattice = 0.49 + 4.0 * LABEL_VARIANCE
    nearest = lattice[np.argmin(np.abs(np.asarray(draws)[:, None] - lattice), axis=1)]
    np.testing.assert_allclose(draws, nearest, rtol=1e-12, atol=1e-12)


def test_mean_check_is_calibrated_on_the_skewest_catalogue_law():
    """mixture_variance at weight 0.001, modes 100 scales apart (both edges of its domain),
    200,000 draws in 400 batches: 2e4 replications of the exact batch means."""
    weight, separation = 0.001, 100.0
    rng = np.random.default_rng(20260101)
    batch_means = np.concatenate([mixture_variance_batch_means(rng, 5_000, weight, separation)[0]
                                  for _ in range(4)])
    statistic, _, _, threshold, _ = mean_check_statistic(batch_means, mixture_variance_value(weight, separation))
    assert_uniform_tail(two_sided_t_pvalue(statistic, threshold, BATCHES - 1))
    assert_no_false_alarm(statistic)


def test_mean_check_is_calibrated_on_chi_square_draws():
    """Draws a + c z^2 (z standard normal) at 400 batches of 2,500: 1e5 replications."""
    rng = np.random.default_rng(20260102)
    batch_means = np.concatenate([chi_square_batch_means(rng, 25_000, 2_500) for _ in range(4)])
    statistic, _, _, threshold, _ = mean_check_statistic(batch_means, 1.0)
    assert_uniform_tail(two_sided_t_pvalue(statistic, threshold, BATCHES - 1))
    assert_no_false_alarm(statistic)


def importance_estimate(weights):
    """The mean of importance weights and its standard error."""
    return float(weights.mean()), float(weights.std() / math.sqrt(weights.size))


def assert_below_the_claim(estimates):
    """The false-alarm probability at the production threshold, the sum of two independent
    importance-sampling estimates (each tail) with standard errors, is below the claimed
    ALPHA_PER_EVALUATION by at least 5 standard errors (and the standard error is below 5% of
    the estimate, so the normal approximation to the estimator is sound): false-alarm
    probability ~3e-7 if the true value were ALPHA_PER_EVALUATION."""
    total = sum(estimate for estimate, _ in estimates)
    error = math.hypot(*(error for _, error in estimates))
    assert error < 0.05 * total, estimates
    assert total + 5 * error <= ALPHA_PER_EVALUATION, (total, error, estimates)


def chi_square_false_alarm(replications, seeds, per_batch=2_500):
    """P(statistic > 1) on chi-square(1) draws, each tail (upper, lower) by importance sampling
    with its standard error: batch sums drawn from Gamma(m / 2, 2 rho), rho moving the mean by
    the threshold's number of standard errors (either way), weighted by the exact likelihood
    ratio rho^(m / 2 * 400) exp(-(1 - 1/rho) sum / 2)."""
    shape = per_batch / 2
    spread = math.sqrt(2 / (per_batch * BATCHES))     # the standard error of the mean, value 1
    estimates = []
    for side, seed in zip((1, -1), seeds):
        rho = 1 / (1 - side * MEAN_THRESHOLD * spread)
        rng = np.random.default_rng(seed)
        batch_means = chi_square_batch_means(rng, replications, per_batch, scale=rho)
        sums = batch_means.sum(axis=1) * per_batch / 2      # the sums in Gamma(shape, 1) units
        log_ratio = BATCHES * shape * math.log(rho) - sums * (1 - 1 / rho)
        statistic, estimate, _, _, _ = mean_check_statistic(batch_means, 1.0)
        failed = (statistic > 1) & (np.sign(estimate - 1) == side)
        estimates.append(importance_estimate(np.where(failed, np.exp(log_ratio), 0.0)))
    return estimates


def test_mean_check_false_alarm_at_the_production_threshold_on_chi_square_draws():
    """At most ALPHA_PER_EVALUATION at the production threshold (importance sampling, 3e4
    replications per tail: 2.57e-10 +- 0.08e-10; 6e5 per tail gave 2.534e-10 +- 0.018e-10)."""
    assert_below_the_claim(chi_square_false_alarm(30_000, (20260103, 20260104)))


def mixture_variance_moments(weight, separation):
    """Mean and variance of one of mixture_variance's draws (scale 1)."""
    pmf = stats.binom.pmf(FIRST, GROUP, weight)
    draw = 1 + separation**2 * LABEL_VARIANCE
    mean = pmf @ draw
    return mean, pmf @ draw**2 - mean**2


def mixture_variance_false_alarm(weight, separation, replications, seeds):
    """P(statistic > 1) on mixture_variance's draws, each tail (upper, lower) by importance
    sampling with its standard error: the weight of the rare mode tilted to move the mean by the
    threshold's number of standard errors (either way), each replication weighted by the exact
    likelihood ratio of its first-mode draws, binomial in GROUP * GROUPS draws."""
    value = mixture_variance_value(weight, separation)
    estimates = []
    for side, seed in zip((1, -1), seeds):
        def shift(tilted):
            mean, variance = mixture_variance_moments(tilted, separation)
            return (mean - value) / math.sqrt(variance / GROUPS) - side * MEAN_THRESHOLD

        tilted = optimize.brentq(shift, *((weight, 10 * weight) if side > 0 else (weight / 10, weight)))
        rng = np.random.default_rng(seed)
        batch_means, first_draws = mixture_variance_batch_means(rng, replications, tilted, separation)
        others = GROUP * GROUPS - first_draws
        log_ratio = (first_draws * math.log(weight / tilted)
                     + others * (math.log1p(-weight) - math.log1p(-tilted)))
        statistic, estimate, _, _, _ = mean_check_statistic(batch_means, value)
        failed = (statistic > 1) & (np.sign(estimate - value) == side)
        estimates.append(importance_estimate(np.where(failed, np.exp(log_ratio), 0.0)))
    return estimates


def test_mean_check_false_alarm_at_the_production_threshold_on_the_skewest_catalogue_law():
    """mixture_variance at weight 0.001, modes 100 scales apart: at most ALPHA_PER_EVALUATION
    at the production threshold (importance sampling, 2.5e4 replications per tail: 5.38e-10 +-
    0.19e-10; 5e4 per tail gave 5.40e-10 +- 0.13e-10, 2.16 times the nominal 2.5e-10)."""
    assert_below_the_claim(mixture_variance_false_alarm(0.001, 100.0, 25_000, (20260105, 20260106)))


def test_mean_check_with_control_variates_is_calibrated():
    """MeanCheck's own run on Controlled draws z^2 + 0.1 z^5 (z standard normal, mean 1) at
    production size: 1e6 draws, beta fitted on a separate pilot of 1e5 from the same generator,
    400 batch means of the adjusted draws. The Hermite controls (He_1..He_4) take out z^2 and the
    lower part of z^5 = He_5 + 10 He_3 + 15 He_1, leaving 0.1 He_5(z) (variance 1.2, symmetric,
    kurtosis 4,653 per draw: excess 1.9 per batch mean of 2,500) and the pilot's error in beta.
    (The check takes its value from ``target``, so it needs no evaluation of a formula.) 100
    replications (~0.1 s each): to q = 0.1 only (2,000 replications, once: 199, 13 and 1
    p-values at or below 0.1, 0.01, 0.001; expected 200, 20, 2)."""
    def sampler(rng, n):
        z = rng.standard_normal(n)
        return Controlled(z**2 + 0.1 * z**5, z)

    check = MeanCheck(sampler, "z^2 + 0.1 z^5 with Hermite controls", target=lambda: 1.0)
    rng = np.random.default_rng(20260115)
    statistic = np.array([check.run(None, {}, rng).statistic for _ in range(100)])
    assert_uniform_tail(two_sided_t_pvalue(statistic, MEAN_THRESHOLD, BATCHES - 1))
    assert_no_false_alarm(statistic)


# --- DistributionCheck -----------------------------------------------------------------------------

# The catalogue's distribution checks draw 1e5 (langevin) and 2e5 (diffusion); the default is 1e6.
DISTRIBUTION_SIZES = (100_000, 200_000, 1_000_000)


def kurtosis_moments(n):
    """Exact mean and variance of the sample kurtosis m4 / m2^2 of n normal draws."""
    return 3 * (n - 1) / (n + 1), 24 * n * (n - 2) * (n - 3) / ((n + 1) ** 2 * (n + 3) * (n + 5))


@pytest.mark.parametrize("n", DISTRIBUTION_SIZES)
def test_distribution_check_mean_and_variance_are_calibrated(n):
    """The mean and variance tests on n normal draws (law N(0.3, 2^2)): 1e5 replications of
    the exact sample mean and variance; the fourth moment from the sample kurtosis (normal
    approximation with exact moments, independent of both)."""
    replications, law_mean, law_sd = 100_000, 0.3, 2.0
    rng = np.random.default_rng([20260107, n])
    mean = law_mean + law_sd / math.sqrt(n) * rng.standard_normal(replications)
    variance = law_sd**2 * rng.chisquare(n - 1, replications) / (n - 1)
    kurtosis_mean, kurtosis_var = kurtosis_moments(n)
    # m4 / s^4 with s^2 at ddof = 1, as the check computes them.
    kurtosis = (kurtosis_mean + math.sqrt(kurtosis_var) * rng.standard_normal(replications)) * ((n - 1) / n) ** 2
    mean_se, var_se = moment_standard_errors(n, variance, kurtosis * variance**2)
    mean_stat, var_stat, _ = distribution_statistics(mean, mean_se, variance, var_se, 1.0, law_mean, law_sd**2)
    for statistic in (mean_stat, var_stat):
        # The nominal two-sided normal p-value of the studentized deviation, statistic *
        # DISTRIBUTION_Z standard errors: ALPHA_PER_EVALUATION / (3 APPROXIMATION_MARGIN) at 1.
        assert_uniform_tail(2 * stats.norm.sf(statistic * DISTRIBUTION_Z))
        assert_no_false_alarm(statistic)


def distribution_false_alarm(n):
    """The exact false-alarm probabilities at the production threshold z of the mean test (the
    studentized mean of normal draws is Student t(n - 1)) and of the variance test: with W =
    s^2 / var ~ chi-square(n - 1) / (n - 1) and K = m4 / s^4 independent of W, the test fails
    where |W - 1| > z W sqrt((K - 1) / n); integrated over K (normal, exact moments; 60-point
    Gauss-Hermite)."""
    z = DISTRIBUTION_Z
    mean_rate = 2 * stats.t.sf(z, n - 1)
    nodes, weights = np.polynomial.hermite_e.hermegauss(60)
    kurtosis_mean, kurtosis_var = kurtosis_moments(n)
    kurtosis = (kurtosis_mean + math.sqrt(kurtosis_var) * nodes) * ((n - 1) / n) ** 2
    width = z * np.sqrt((kurtosis - 1) / n)
    var_rate = (stats.chi2.sf((n - 1) / (1 - width), n - 1) + stats.chi2.cdf((n - 1) / (1 + width), n - 1))
    return float(mean_rate), float(weights @ var_rate / weights.sum())


@pytest.mark.parametrize("n", DISTRIBUTION_SIZES)
def test_distribution_check_false_alarm_at_the_production_threshold(n):
    """Deterministic. Mean test + variance test + Kolmogorov-Smirnov (<= its third, below) at
    most ALPHA_PER_EVALUATION: 5.31e-10, 5.15e-10, 5.03e-10 at n = 1e5, 2e5, 1e6, the
    variance test 1.36, 1.18, 1.035 times its nominal 1e-9 / 12 and the mean test 1.005,
    1.002, 1.0005 times it."""
    mean_rate, var_rate = distribution_false_alarm(n)
    assert mean_rate + var_rate + ALPHA_PER_EVALUATION / 3 <= ALPHA_PER_EVALUATION


def smirnov_by_birnbaum_tingey(n, d):
    """P(D+_n >= d) = d sum_j C(n, j) (1 - d - j/n)^(n - j) (d + j/n)^(j - 1), j <= n (1 - d):
    positive terms, summed from their logarithms (independent of scipy's smirnov)."""
    j = np.arange(0, math.floor(n * (1 - d)) + 1, dtype=np.float64)
    log_terms = (special.gammaln(n + 1) - special.gammaln(j + 1) - special.gammaln(n - j + 1)
                 + (n - j) * np.log1p(-d - j / n) + (j - 1) * np.log(d + j / n))
    largest = log_terms.max()
    return d * math.exp(largest) * float(np.exp(log_terms - largest).sum())


@pytest.mark.parametrize("n, levels", [(100_000, (1e-2, 1e-3, 1e-6, 1e-9, 1e-12)),
                                       (200_000, (1e-2, 1e-3, 1e-6, 1e-9, 1e-12)),
                                       # scipy's smirnov costs ~2 s a call at 1e6 draws.
                                       (1_000_000, (1e-9,))])
def test_kolmogorov_smirnov_pvalue_is_exact_or_conservative_in_the_tail(n, levels):
    """Deterministic. scipy's kstest p-value is kstwo.sf(D, n), and in the tail (p < 0.025)
    that is twice the exact one-sided tail (the Birnbaum-Tingey sum, computed here on its own),
    to 1e-8, down to 1e-12: the two-sided tail is at most that (union bound), so the p-value
    is conservative there. (Up to p ~ 0.025 scipy uses Pelz-Good's asymptotic series.)"""
    rng = np.random.default_rng([20260108, n])
    result = stats.kstest(rng.standard_normal(n), stats.norm.cdf)
    assert result.pvalue == pytest.approx(float(stats.kstwo.sf(result.statistic, n)), rel=1e-12)
    for level in levels:
        d = math.sqrt(math.log(2 / level) / (2 * n))     # where the two-sided tail is ~level
        assert float(stats.kstwo.sf(d, n)) == pytest.approx(2 * smirnov_by_birnbaum_tingey(n, d), rel=1e-8)


def simulated_kolmogorov_smirnov(rng, n, replications, chunk=10):
    """D_n of n uniform draws, exactly: the order statistics are cumulative sums of
    exponentials over their total (n + 1 of them)."""
    result = []
    ranks = np.arange(1, n + 1)
    for start in range(0, replications, chunk):
        spacings = rng.standard_exponential((min(chunk, replications - start), n + 1))
        sums = np.cumsum(spacings, axis=1)
        uniforms = sums[:, :n] / sums[:, n:]
        result.append(np.maximum((ranks / n - uniforms).max(axis=1), (uniforms - (ranks - 1) / n).max(axis=1)))
    return np.concatenate(result)


def test_kolmogorov_smirnov_is_calibrated_at_the_production_size():
    """1,000 replications of D at n = 1e5 (the langevin check; ~5 ms each, all n draws are
    needed), which reaches 1e-2: p <= q exactly where D >= kstwo.isf(q, n) (sf is monotone; the
    quantiles are checked against sf); the DistributionCheck's KS statistic is never past 1."""
    n, replications = 100_000, 1_000
    rng = np.random.default_rng(20260109)
    deviations = simulated_kolmogorov_smirnov(rng, n, replications)
    for q in LEVELS[:2]:
        critical = float(stats.kstwo.isf(q, n))
        assert float(stats.kstwo.sf(critical, n)) == pytest.approx(q, rel=1e-6)
        count = int(np.count_nonzero(deviations >= critical))
        # Two-sided binomial tests at 2.5e-7 a side: false-alarm probability 1e-6.
        assert min(stats.binom.sf(count - 1, replications, q), stats.binom.cdf(count, replications, q)) >= 2.5e-7
    _, _, ks_stat = distribution_statistics(0.0, 1.0, 1.0, 1.0, stats.kstwo.sf(deviations.max(), n), 0.0, 1.0)
    # At most 1e3 * 1e-9 / 3 that any replication fails.
    assert ks_stat <= 1


# --- DensityCheck and BoxCheck -------------------------------------------------------------------


def grid_ks_inputs(order_statistic, n):
    """(empirical, cdf) at DensityCheck's grid for n uniform draws, from ``order_statistic(i)``,
    the (i + 1)-th smallest draw (arrays of indices i): the grid point at level p is
    np.quantile's linear interpolation x[i] + g (x[i + 1] - x[i]), h = (n - 1) p, i = floor(h),
    g = h - i; the draws at or below it number i + 1."""
    position = (n - 1) * GRID_LEVELS
    index = np.floor(position).astype(np.int64)
    fraction = position - index
    lower, upper = order_statistic(index), order_statistic(index + 1)
    return (index + 1) / n, lower + fraction * (upper - lower)


def test_grid_inputs_match_the_density_check():
    """The simulation's model of DensityCheck's grid (quantiles, then counts at them) gives the
    check's own empirical and candidate CDFs on a real uniform sample (to rounding)."""
    n = 200_000
    draws = np.sort(np.random.default_rng(20260110).random(n))
    grid = np.unique(np.quantile(draws, GRID_LEVELS))
    empirical, cdf = grid_ks_inputs(lambda index: draws[index], n)
    assert grid.size == GRID_LEVELS.size
    np.testing.assert_array_equal(empirical, np.searchsorted(draws, grid, side="right") / n)
    np.testing.assert_allclose(cdf, grid, rtol=0, atol=1e-15)


@pytest.mark.parametrize("n", (200_000, 1_000_000))
def test_density_check_grid_kolmogorov_smirnov_is_conservative(n):
    """5e4 replications of the exact order statistics at the grid (gamma spacings between the
    ranks it uses); the p-value is the DKW bound 2 exp(-2 n ks^2), 1e-9 / 2 at statistic 1."""
    replications = 50_000
    position = (n - 1) * GRID_LEVELS
    index = np.floor(position).astype(np.int64)
    ranks = np.concatenate([index, index + 1]) + 1          # 1-based ranks of the draws used
    ranks = np.unique(ranks)
    shapes = np.diff(np.concatenate([[0], ranks, [n + 1]])).astype(np.float64)
    rng = np.random.default_rng([20260111, n])
    deviations, statistics = [], []
    for _ in range(5):
        sums = np.cumsum(rng.standard_gamma(shapes, size=(replications // 5, shapes.size)), axis=1)
        uniforms = sums[:, :-1] / sums[:, -1:]
        empirical, cdf = grid_ks_inputs(lambda i: uniforms[:, np.searchsorted(ranks, i + 1)], n)
        ks, _, statistic = grid_ks_statistic(empirical, cdf, n, ALPHA_PER_EVALUATION / 2)
        deviations.append(ks)
        statistics.append(statistic)
    ks = np.concatenate(deviations)
    assert_uniform_tail(np.minimum(1.0, 2 * np.exp(-2 * n * ks**2)), conservative=True)
    assert_no_false_alarm(np.concatenate(statistics))


@pytest.mark.parametrize("n, probability", [(200_000, 0.25), (200_000, 1e-3), (1_000_000, 0.1), (1_000_000, 1e-5)])
def test_density_check_interval_count_is_calibrated(n, probability):
    """1e5 exact binomial counts; the p-value 2 x the smaller tail (conservative, discrete)."""
    rng = np.random.default_rng([20260112, n, int(1 / probability)])
    counts = rng.binomial(n, probability, 100_000)
    tail, statistic = binomial_tail_statistic(counts, n, probability, probability, ALPHA_PER_EVALUATION / 2)
    assert_uniform_tail(np.minimum(1.0, 2 * tail), conservative=True)
    assert_no_false_alarm(statistic)


def binomial_tail_by_mpmath(n, probability, count, upper):
    """P(X >= count) (``upper``) or P(X <= count) for X ~ Binomial(n, probability): the pmf
    summed at 30 digits from the count outwards until the terms no longer matter."""
    import mpmath

    with mpmath.workdps(30):
        p = mpmath.mpf(probability)
        term = mpmath.binomial(n, count) * p**count * (1 - p) ** (n - count)
        total, j = term, count
        while (j < n if upper else j > 0) and term > total * mpmath.mpf(10) ** -25:
            if upper:
                term *= (n - j) * p / ((j + 1) * (1 - p))
                j += 1
            else:
                term *= j * (1 - p) / ((n - j + 1) * p)
                j -= 1
            total += term
        return float(total)


def test_binomial_tail_is_exact_at_the_production_level():
    """Deterministic. scipy's binomial tails, which the density, box and enumeration checks
    compare with 1e-9 / 4 and below (the enumeration check's 256 cells: 1e-9 / 512), against
    the pmf summed at 30 digits (mpmath), to 1e-9."""
    for n, probability in ((1_000_000, 0.1), (200_000, 1e-3), (1_000_000, 1e-5)):
        for level in (1e-10, 1e-12):
            # Counts just past each tail's level (the lower one only where it exists).
            low = int(stats.binom.ppf(level, n, probability)) - 1
            high = int(stats.binom.isf(level, n, probability)) + 1
            for count, upper in ((low, False), (high, True)) if low >= 0 else ((high, True),):
                tail = float(stats.binom.sf(count - 1, n, probability) if upper
                             else stats.binom.cdf(count, n, probability))
                assert tail < 10 * level
                assert tail == pytest.approx(binomial_tail_by_mpmath(n, probability, count, upper), rel=1e-9)


def test_box_check_is_calibrated():
    """Two overlapping boxes (probabilities 0.05 and 0.08, 0.02 in both) among 1e6 draws: 1e5
    exact multinomial replications; the check's statistic is the worse box's, its p-value 4 x
    the smallest of the four tails (Bonferroni; conservative)."""
    n, alpha = 1_000_000, ALPHA_PER_EVALUATION / 2
    only_first, only_second, both = 0.03, 0.06, 0.02
    rng = np.random.default_rng(20260113)
    cells = rng.multinomial(n, [only_first, only_second, both, 1 - only_first - only_second - both], 100_000)
    tails, statistics = [], []
    for count, probability in ((cells[:, 0] + cells[:, 2], only_first + both),
                               (cells[:, 1] + cells[:, 2], only_second + both)):
        # The quadrature allowance of a smooth density: ~1e-15 either side.
        tail, statistic = binomial_tail_statistic(count, n, probability - 1e-15, probability + 1e-15, alpha)
        tails.append(tail)
        statistics.append(statistic)
    assert_uniform_tail(np.minimum(1.0, 4 * np.minimum(*tails)), conservative=True)
    assert_no_false_alarm(np.maximum(*statistics))


# --- EnumerationCheck ------------------------------------------------------------------------------


def discretized_gaussian_pmf(loc, scale):
    """The law of discretized_gaussian_logpmf's sampler (derivations/discrete_likelihoods.py):
    N(loc, scale^2) draws clipped to [-1, 1] and rounded to the nearest of the 256 grid values
    k / 127.5 - 1; cell k takes ((k - 1/2) / 127.5 - 1, (k + 1/2) / 127.5 - 1], the edge cells
    extended to -inf and inf. Differences of lower tails below loc and of upper tails above it."""
    z = ((np.arange(1, 256) - 0.5) / 127.5 - 1 - loc) / scale
    below = np.diff(np.concatenate([[0.0], stats.norm.cdf(z), [1.0]]))
    above = -np.diff(np.concatenate([[1.0], stats.norm.sf(z), [0.0]]))
    return np.where(np.concatenate([z, [np.inf]]) <= 0, below, above)


@pytest.mark.parametrize("loc, scale", [(0.3, 0.2), (-1.0, 0.5)])
def test_enumeration_check_is_calibrated(loc, scale):
    """The discretized Gaussian decoder's 256 cells among 1e6 draws (its EnumerationCheck's
    production size), exactly multinomial; 5e4 replications. At loc 0.3, scale 0.2, 54 cells
    expect fewer than one draw (the rarest 1e-11); at loc -1, scale 0.5 the edge cell at -1
    holds half the draws, the edge cell at 1 a fraction 3e-5. The p-value is Bonferroni's, min(1, 2 x 256 x the
    smallest of the cells' tails) = ALPHA_PER_EVALUATION / statistic (conservative; the tests
    are exact binomial tails, no margin). The tails come from the check's enumeration_statistic
    applied to a table of each cell's observed counts (each cell's tail depends on its own count
    only), and on the first 1,000 replications directly, which must agree."""
    n, replications = 1_000_000, 50_000
    pmf = discretized_gaussian_pmf(loc, scale)
    assert abs(math.fsum(pmf) - 1) < 1e-15
    rng = np.random.default_rng([20260116, int(100 * (loc + 1)), int(100 * scale)])
    counts = rng.multinomial(n, pmf, size=replications)
    lowest = counts.min(axis=0)
    offsets = counts - lowest
    table = lowest + np.minimum(np.arange(offsets.max() + 1)[:, None], offsets.max(axis=0))
    table_tails, _, _ = enumeration_statistic(table, n, pmf)
    smallest = np.take_along_axis(table_tails, offsets, axis=0).min(axis=1)
    statistic = ALPHA_PER_EVALUATION / (2 * pmf.size) / np.maximum(smallest, 1e-300)
    _, _, direct = enumeration_statistic(counts[:1_000], n, pmf)
    np.testing.assert_array_equal(direct, statistic[:1_000])
    assert_uniform_tail(np.minimum(1.0, 2 * pmf.size * smallest), conservative=True)
    assert_no_false_alarm(statistic)


# --- ConditionalCheck ------------------------------------------------------------------------------


def test_conditional_check_is_calibrated():
    """Least squares on n = 1e6 jointly Gaussian draws: the fitted line at ``at`` is exactly
    normal about the conditional mean with standard deviation sigma L (L = sqrt(1/n + (at -
    x_mean)^2 / Sxx)), and (n - 2) s^2 / sigma^2 is chi-square(n - 2), independent of it; 1e5
    replications of both. The p-values of the t and chi-square tests, from each statistic."""
    n, replications, mean, var = 1_000_000, 100_000, 0.7, 2.5
    leverage = 1.7 / math.sqrt(n)
    rng = np.random.default_rng(20260114)
    fitted = mean + math.sqrt(var) * leverage * rng.standard_normal(replications)
    residual_var = var * rng.chisquare(n - 2, replications) / (n - 2)
    fitted_se = np.sqrt(residual_var) * leverage
    mean_stat, var_stat, allowance, low, high = conditional_statistics(n, fitted, fitted_se, residual_var,
                                                                       mean, var, 1.0)
    # The check's own t threshold, its allowance less the rounding allowance (ROUNDING_RTOL x
    # size 1), in standard errors: Student's t(n - 2) two-sided quantile at 1e-9 / 4 (exact).
    t_threshold = (allowance - ROUNDING_RTOL) / fitted_se
    assert_uniform_tail(two_sided_t_pvalue(mean_stat, t_threshold, n - 2))
    # P(the statistic of either side >= the observed one) under chi-square(n - 2).
    var_pvalue = (stats.chi2.sf((n - 2) * (1 + var_stat * (high - 1)), n - 2)
                  + stats.chi2.cdf((n - 2) * (1 - var_stat * (1 - low)), n - 2))
    assert_uniform_tail(var_pvalue)
    assert_no_false_alarm(np.maximum(mean_stat, var_stat))
