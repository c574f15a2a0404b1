"""Empirical checks: a closed form against an estimate that never uses it.

Three kinds, as in DESIGN.md:

* :class:`MeanCheck`: closed form = E[g(params, omega)]; the estimate is a sample mean;
* :class:`DistributionCheck`: a simulation's samples against the closed-form law
  (goodness of fit plus mean and variance with their standard errors);
* :class:`IdentityCheck`: an independent deterministic route (quadrature, mpmath,
  finite differences, scipy).

False alarms. A check is evaluated at many parameter points (hypothesis draws them);
each evaluation of a statistical check has false-alarm probability at most
``ALPHA_PER_EVALUATION`` = 1e-9, and the runner never evaluates a check at more than
``MAX_EVALUATIONS`` = 1000 points before its first failure, so a correct formula is
reported wrong by a check with probability at most 1e-6 (union bound).

Mean checks use batch means: the draws are split into ``batches`` groups and the
group means, each an average of thousands of draws and so close to normal even for
the skewed, chi-square-like log-ratios of Gaussian KLs, are compared by a Student t
statistic with ``batches - 1`` degrees of freedom. The allowance for rounding in the
sampler's arithmetic (``ROUNDING_RTOL``, relative to the size of the values) is far
below any deviation the mutation tests need to see.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Callable

import numpy as np

from . import controls

ALPHA_PER_EVALUATION = 1e-9
#: The tests that rest on a normal or Student t approximation (batch means of skewed draws,
#: studentized sample moments) put their thresholds at ALPHA_PER_EVALUATION / this margin.
#: Measured at the threshold (tests/test_calibration.py), the approximation lets through up
#: to ~1.9 times the nominal rate on the most skewed draws in the catalogue; with the margin
#: the true rate stays below ALPHA_PER_EVALUATION, which the calibration tests assert.
APPROXIMATION_MARGIN = 4
# The relative change of an output used to measure how a check's estimate responds to it.
_PROBE = 1e-3
MAX_EVALUATIONS = 1000
ROUNDING_RTOL = 1e-12

#: Resolution. A check's resolution at a point is the smallest relative error of the output
#: that it refutes there with probability >= 0.99: an error that moves the compared quantity
#: past the allowance by this many more standard errors (the one-sided normal 0.99 quantile;
#: a t quantile with 399 degrees of freedom differs in the third digit).
POWER = 0.99
POWER_Z = NormalDist().inv_cdf(POWER)


@dataclass
class Outcome:
    """One evaluation of a check at one parameter point."""

    passed: bool
    estimate: float
    standard_error: float
    value: float              # the closed form's (or the candidate's) value
    statistic: float          # |estimate - value| in units of its allowance (> 1 fails)
    detail: str = ""
    #: The smallest relative error of the output refuted here with probability >= POWER
    #: (deterministic checks: with certainty); NaN where the check does not state one.
    resolution: float = math.nan

    def as_dict(self) -> dict:
        return {key: _plain(getattr(self, key)) for key in
                ("passed", "estimate", "standard_error", "value", "statistic", "detail", "resolution")}


def relative_resolution(shift_needed: float, change_per_unit: float) -> float:
    """The relative error delta at which an output error moves the compared quantity by
    ``change_per_unit * delta`` = ``shift_needed``; infinite where the output does not move it."""
    change = abs(change_per_unit)
    return shift_needed / change if change > 0 else math.inf


def _plain(value):
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    return value


def _student_threshold(alpha: float, degrees: int) -> float:
    from scipy import stats

    return float(stats.t.isf(alpha / 2, degrees))


def _normal_threshold(alpha: float) -> float:
    from scipy import stats

    return float(stats.norm.isf(alpha / 2))


# --- the statistics by themselves (pure, vectorized over leading axes), so that their
# --- calibration can be tested on simulated inputs (tests/test_calibration.py) ------------


def batch_means_statistic(batch_means, value, rounding=0.0):
    """:class:`MeanCheck`'s statistic from its batch means (the batches on the last axis).

    Returns (statistic, estimate, standard_error, threshold, allowance): the estimate is
    the mean of the batch means, the standard error their standard deviation over
    sqrt(batches), the threshold Student's t quantile at ALPHA_PER_EVALUATION /
    APPROXIMATION_MARGIN (two-sided)
    with batches - 1 degrees of freedom, the allowance threshold * standard_error +
    ``rounding`` (an absolute allowance for the sampler's rounding) and the statistic
    |estimate - value| / allowance (> 1 fails)."""
    batch_means = np.asarray(batch_means, dtype=np.float64)
    batches = batch_means.shape[-1]
    estimate = batch_means.mean(axis=-1)
    standard_error = batch_means.std(axis=-1, ddof=1) / math.sqrt(batches)
    threshold = _student_threshold(ALPHA_PER_EVALUATION / APPROXIMATION_MARGIN, batches - 1)
    allowance = threshold * standard_error + rounding
    value = np.asarray(value, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        deviation = np.where(np.isfinite(value), np.abs(estimate - value), np.inf)
        statistic = np.where(allowance > 0, deviation / allowance, np.where(deviation == 0, 0.0, np.inf))
    return statistic, estimate, standard_error, threshold, allowance


def moment_standard_errors(n, variance, fourth_moment):
    """:class:`DistributionCheck`'s standard errors of the sample mean and of the sample
    variance of n draws, from the variance and the fourth central sample moment."""
    variance = np.asarray(variance, dtype=np.float64)
    return (np.sqrt(variance / n),
            np.sqrt(np.maximum(np.asarray(fourth_moment, dtype=np.float64) - variance**2, 0.0) / n))


def distribution_statistics(mean, mean_se, variance, var_se, ks_pvalue, law_mean, law_var):
    """:class:`DistributionCheck`'s three statistics (mean, variance, Kolmogorov-Smirnov),
    each > 1 on failure; the three tests share ALPHA_PER_EVALUATION equally, the two
    moment tests (normal approximations) with APPROXIMATION_MARGIN."""
    alpha = ALPHA_PER_EVALUATION / 3
    z = _normal_threshold(alpha / APPROXIMATION_MARGIN)
    mean_stat = np.abs(mean - law_mean) / (z * mean_se + ROUNDING_RTOL * (1 + np.abs(law_mean)))
    var_stat = np.abs(variance - law_var) / (z * var_se + ROUNDING_RTOL * law_var)
    ks_stat = alpha / np.maximum(ks_pvalue, 1e-300)
    return mean_stat, var_stat, ks_stat


@dataclass
class MeanCheck:
    """E[sampler(rng, n, **params)] equals the output (or ``target(**params)``),
    checked by a batch-means t test.

    With ``applies_formula``, the sampler also receives ``formula``: the output as a
    vectorized function of the arguments, to apply to samples (Stein's identity
    E[s(x) f(x) + f'(x)] = 0 with ``target`` 0, for instance).
    """

    sampler: Callable
    description: str
    output: str | None = None
    samples: int = 1_000_000
    batches: int = 400
    target: Callable | None = None
    applies_formula: bool = False
    derivation: object = field(default=None, repr=False)
    kind = "mean"

    @property
    def outputs(self):
        return (self.output or self.derivation.name,)

    def run(self, values, params: dict, rng) -> Outcome:
        if self.target is None:
            value = float(values(params)[self.outputs[0]])
        else:
            value = float(self.target(**params))
        formula = values.vectorized(self.outputs[0]) if self.applies_formula else None
        replay = copy.deepcopy(rng) if formula is not None else None
        extra = {"formula": formula} if formula is not None else {}
        draws, normals = controls.split(self.sampler(rng, self.samples, **extra, **params))
        raw_mean = float(draws.mean())
        rounding = ROUNDING_RTOL * max(1.0, float(np.mean(np.abs(draws))))
        if normals is not None:
            # Control variates fitted on a separate pilot sample (symgen/engine/controls.py).
            pilot, pilot_normals = controls.split(
                self.sampler(rng, controls.pilot_size(self.samples), **extra, **params))
            beta = controls.fit(pilot, pilot_normals)
            draws = controls.adjusted(draws, normals, beta)
        batch_means = draws.reshape(self.batches, -1).mean(axis=1)
        statistic, estimate, standard_error, threshold, allowance = (
            float(part) for part in batch_means_statistic(batch_means, value, rounding))
        if formula is None:
            # An output off by delta moves the compared value by delta * value.
            change = value
        else:
            # The output enters through the samples: the same draws again with the output
            # scaled by 1 + 1e-3 give the estimate's change per unit of relative error.
            scaled = lambda **arguments: (1 + _PROBE) * formula(**arguments)  # noqa: E731
            # (The control variates, functions of the same normals, cancel in the difference.)
            again, _ = controls.split(self.sampler(replay, self.samples, formula=scaled, **params))
            change = (float(again.mean()) - raw_mean) / _PROBE
        resolution = relative_resolution(allowance + POWER_Z * standard_error, change)
        return Outcome(statistic <= 1, estimate, standard_error, value, statistic,
                       f"t threshold {threshold:.2f} on {self.batches} batch means of "
                       f"{self.samples // self.batches} draws", resolution)


@dataclass
class DistributionCheck:
    """Samples of a simulation against the closed-form law ``law(**outputs)``
    (a frozen ``scipy.stats`` distribution): Kolmogorov-Smirnov, mean and variance."""

    sampler: Callable
    law: Callable
    description: str
    outputs: tuple = ()
    # 10^6 draws put the variance's standard error at 0.14% of the variance, so a 1%
    # error stands 7 standard errors out, past the 6.3 allowed at this false-alarm rate.
    samples: int = 1_000_000
    derivation: object = field(default=None, repr=False)
    kind = "distribution"
    applies_formula = False

    def run(self, values, params: dict, rng) -> Outcome:
        from scipy import stats

        point_values = values(params)
        try:
            law = self.law(**{name: float(point_values[name]) for name in self.outputs})
            law_mean, law_var = float(law.mean()), float(law.var())
        except (ValueError, ZeroDivisionError):
            return Outcome(False, math.nan, math.nan, math.nan, math.inf, "no valid law")
        if not (math.isfinite(law_mean) and math.isfinite(law_var) and law_var > 0):
            return Outcome(False, math.nan, math.nan, law_mean, math.inf, "no valid law")
        draws, normals = controls.split(self.sampler(rng, self.samples, **params))
        n = draws.size
        # The threshold of the two moment tests (see distribution_statistics), for the resolution.
        z = _normal_threshold(ALPHA_PER_EVALUATION / 3 / APPROXIMATION_MARGIN)
        if normals is None:
            mean = float(draws.mean())
            centred = draws - mean
            variance = float(centred.var(ddof=1))
            mean_se, var_se = (float(se) for se in
                               moment_standard_errors(n, variance, float(np.mean(centred**4))))
        else:
            pilot = controls.split(self.sampler(rng, controls.pilot_size(self.samples), **params))
            mean, mean_se, variance, var_se = _controlled_moments(draws, normals, pilot, law_mean)
        ks = stats.kstest(draws, law.cdf)
        mean_stat, var_stat, ks_stat = (float(part) for part in distribution_statistics(
            mean, mean_se, variance, var_se, ks.pvalue, law_mean, law_var))
        statistic = max(mean_stat, var_stat, ks_stat)

        def moments(name):
            # How the law's mean and variance move per unit relative error of one output.
            moved = self.law(**{key: float(point_values[key]) * (1 + _PROBE if key == name else 1)
                                for key in self.outputs})
            return (float(moved.mean()) - law_mean) / _PROBE, (float(moved.var()) - law_var) / _PROBE

        needed_mean = z * mean_se + ROUNDING_RTOL * (1 + abs(law_mean)) + POWER_Z * mean_se
        needed_var = z * var_se + ROUNDING_RTOL * law_var + POWER_Z * var_se
        # Each output's resolution by the sharper of the mean and variance tests (the KS
        # test only adds power); the check's is its least sharp output's.
        resolution = max(min(relative_resolution(needed_mean, mean_change),
                             relative_resolution(needed_var, var_change))
                         for mean_change, var_change in map(moments, self.outputs))
        return Outcome(statistic <= 1, variance, var_se, law_var, statistic,
                       f"mean {mean:.6g} vs {law_mean:.6g} (SE {mean_se:.2g}); "
                       f"KS p = {ks.pvalue:.3g}; {n} draws", resolution)


def _controlled_moments(draws, normals, pilot, law_mean):
    """The mean and variance of the draws with control variates (symgen/engine/controls.py),
    each with its standard error: the variance as the mean of (x - law mean)^2, which is the
    law's variance under the null (a wrong law mean only adds to it)."""
    pilot_draws, pilot_normals = pilot
    results = []
    for values, pilot_values in ((draws, pilot_draws), ((draws - law_mean) ** 2, (pilot_draws - law_mean) ** 2)):
        adjusted = controls.adjusted(values, normals, controls.fit(pilot_values, pilot_normals))
        results += [float(adjusted.mean()), float(adjusted.std(ddof=1)) / math.sqrt(adjusted.size)]
    return tuple(results)


@dataclass
class IdentityCheck:
    """The output equals ``reference(**params)``, an independent numerical route.

    With ``using``, the value compared is ``using(formula, **params)`` instead of the
    output at the point: a property of the output as a function (``formula`` is the
    output's vectorized function), such as the product of (1 - beta_s) over the steps
    of a schedule, compared with what the definition says it is."""

    reference: Callable
    description: str
    output: str | None = None
    rtol: float = 1e-9
    atol: float = 0.0
    using: Callable | None = None
    #: The reference evaluates the quantity's definition at high precision (not an
    #: independent route to it): reported as kind "definition", not as an empirical check.
    definition: bool = False
    derivation: object = field(default=None, repr=False)

    @property
    def kind(self) -> str:
        return "definition" if self.definition else "identity"

    @property
    def applies_formula(self) -> bool:
        """Whether the check evaluates the output as a NumPy function (not only its values)."""
        return self.using is not None

    @property
    def outputs(self):
        return (self.output or self.derivation.name,)

    def run(self, values, params: dict, rng) -> Outcome:
        if self.using is None:
            value = float(values(params)[self.outputs[0]])
        else:
            value = float(self.using(values.vectorized(self.outputs[0]), **params))
        reference = float(self.reference(**params))
        allowance = self.rtol * abs(reference) + self.atol
        deviation = abs(reference - value) if math.isfinite(value) else math.inf
        if deviation > allowance and self.using is None:
            # Where the function itself is ill-conditioned, float64 code cannot do better
            # than a few ulps of its sensitivity to the inputs (see Evaluation.rounding).
            allowance += values.rounding(self.outputs[0], params)
        statistic = deviation / allowance if allowance > 0 else (0.0 if deviation == 0 else math.inf)
        # Deterministic: an error past the allowance is refuted with certainty.
        return Outcome(statistic <= 1, reference, 0.0, value, statistic,
                       f"relative tolerance {self.rtol:g}", relative_resolution(allowance, reference))
