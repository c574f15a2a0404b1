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

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

ALPHA_PER_EVALUATION = 1e-9
MAX_EVALUATIONS = 1000
ROUNDING_RTOL = 1e-12


@dataclass
class Outcome:
    """One evaluation of a check at one parameter point."""

    passed: bool
    estimate: float
    standard_error: float
    value: float              # the closed form's (or the candidate's) value
    statistic: float          # |estimate - value| in units of its allowance (> 1 fails)
    detail: str = ""

    def as_dict(self) -> dict:
        return {key: _plain(getattr(self, key)) for key in
                ("passed", "estimate", "standard_error", "value", "statistic", "detail")}


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
        extra = {"formula": values.vectorized(self.outputs[0])} if self.applies_formula else {}
        draws = np.asarray(self.sampler(rng, self.samples, **extra, **params), dtype=np.float64)
        batch_means = draws.reshape(self.batches, -1).mean(axis=1)
        estimate = float(batch_means.mean())
        standard_error = float(batch_means.std(ddof=1) / math.sqrt(self.batches))
        threshold = _student_threshold(ALPHA_PER_EVALUATION, self.batches - 1)
        rounding = ROUNDING_RTOL * max(1.0, float(np.mean(np.abs(draws))))
        allowance = threshold * standard_error + rounding
        deviation = abs(estimate - value) if math.isfinite(value) else math.inf
        statistic = deviation / allowance if allowance > 0 else (0.0 if deviation == 0 else math.inf)
        return Outcome(statistic <= 1, estimate, standard_error, value, statistic,
                       f"t threshold {threshold:.2f} on {self.batches} batch means of "
                       f"{self.samples // self.batches} draws")


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
        draws = np.asarray(self.sampler(rng, self.samples, **params), dtype=np.float64)
        n = draws.size
        # Three tests share the per-evaluation false-alarm budget equally.
        alpha = ALPHA_PER_EVALUATION / 3
        z = _normal_threshold(alpha)
        mean = float(draws.mean())
        centred = draws - mean
        variance = float(centred.var(ddof=1))
        mean_se = math.sqrt(variance / n)
        var_se = math.sqrt(max(float(np.mean(centred**4)) - variance**2, 0.0) / n)
        ks = stats.kstest(draws, law.cdf)
        mean_stat = abs(mean - law_mean) / (z * mean_se + ROUNDING_RTOL * (1 + abs(law_mean)))
        var_stat = abs(variance - law_var) / (z * var_se + ROUNDING_RTOL * law_var)
        ks_stat = alpha / max(ks.pvalue, 1e-300)
        statistic = max(mean_stat, var_stat, ks_stat)
        return Outcome(statistic <= 1, variance, var_se, law_var, statistic,
                       f"mean {mean:.6g} vs {law_mean:.6g} (SE {mean_se:.2g}); "
                       f"KS p = {ks.pvalue:.3g}; {n} draws")


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
    derivation: object = field(default=None, repr=False)
    kind = "identity"

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
        return Outcome(statistic <= 1, reference, 0.0, value, statistic,
                       f"relative tolerance {self.rtol:g}")
