"""A conditional law checked by regression: E[y | x = at] and Var[y | x] from joint draws.

Some closed forms are the law of one variable *given* another (the DDPM posterior
q(x_{t-1} | x_t, x_0)), and a simulation can only draw the pair jointly. When the
pair is jointly Gaussian, the conditional law is exactly a straight line with
constant residual variance,

    y = intercept + slope * x + e,    e ~ N(0, var), independent of x,

so ordinary least squares on n joint draws gives exact tests (no CLT needed):

* the fitted line at ``x = at`` has (fit - mean) / (s sqrt(1/n + (at - x_mean)^2 / Sxx))
  distributed as Student's t with n - 2 degrees of freedom;
* the residual variance s^2 has (n - 2) s^2 / var distributed as chi-square with
  n - 2 degrees of freedom.

The two tests share the per-evaluation false-alarm budget ``ALPHA_PER_EVALUATION``
equally, so the check's false-alarm probability over at most ``MAX_EVALUATIONS``
points is at most 1e-6, as for the engine's other checks. A small allowance for
the sampler's rounding (``ROUNDING_RTOL`` of the values' size) covers degenerate
points where the residual variance is 0 exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .checks import ALPHA_PER_EVALUATION, ROUNDING_RTOL, Outcome


@dataclass
class ConditionalCheck:
    """The law of y given x = ``at(**params)`` is N(output ``mean``, output ``var``),
    tested on joint draws ``sampler(rng, n, **params) -> (x, y)`` of a jointly
    Gaussian pair by least squares (exact t and chi-square tests)."""

    sampler: Callable
    at: Callable
    description: str
    mean: str
    var: str
    # 10^6 draws put the residual variance's standard error at 0.14% (sqrt(2/n)), so a
    # 1% error stands 7 standard errors out, past the 6.2 allowed at this false-alarm rate.
    samples: int = 1_000_000
    derivation: object = field(default=None, repr=False)
    kind = "conditional"
    applies_formula = False

    @property
    def outputs(self):
        return (self.mean, self.var)

    def run(self, values, params: dict, rng) -> Outcome:
        from scipy import stats

        point_values = values(params)
        mean, var = float(point_values[self.mean]), float(point_values[self.var])
        if not (math.isfinite(mean) and math.isfinite(var) and var >= 0):
            return Outcome(False, math.nan, math.nan, var, math.inf, "no valid law: "
                           f"mean {mean}, variance {var}")
        x, y = (np.asarray(a, dtype=np.float64) for a in self.sampler(rng, self.samples, **params))
        n = x.size
        at = float(self.at(**params))
        x_mean, y_mean = float(x.mean()), float(y.mean())
        dx, dy = x - x_mean, y - y_mean
        sxx = float(dx @ dx)
        slope = float(dx @ dy) / sxx
        residuals = dy - slope * dx
        residual_var = float(residuals @ residuals) / (n - 2)
        fitted = y_mean + slope * (at - x_mean)
        fitted_se = math.sqrt(residual_var * (1 / n + (at - x_mean) ** 2 / sxx))

        alpha = ALPHA_PER_EVALUATION / 2
        t_threshold = float(stats.t.isf(alpha / 2, n - 2))
        size = max(1.0, abs(y_mean), float(np.sqrt(np.mean(y * y))), abs(fitted))
        mean_allowance = t_threshold * fitted_se + ROUNDING_RTOL * size
        mean_stat = abs(fitted - mean) / mean_allowance

        # (n - 2) s^2 / var ~ chi-square(n - 2): accept var in the exact two-sided interval.
        low_quantile = float(stats.chi2.ppf(alpha / 2, n - 2)) / (n - 2)
        high_quantile = float(stats.chi2.isf(alpha / 2, n - 2)) / (n - 2)
        rounding = (ROUNDING_RTOL * size) ** 2
        if var > 0:
            # The ratio's exact acceptance interval, widened by the rounding allowance; the
            # statistic is the distance from 1 in units of that side's half-width (<= 1 inside).
            ratio = residual_var / var
            slack = rounding / var
            if ratio >= 1:
                var_stat = (ratio - 1) / (high_quantile - 1 + slack)
            else:
                var_stat = (1 - ratio) / (1 - low_quantile + slack)
        else:
            var_stat = residual_var / rounding if rounding > 0 else math.inf
        var_se = residual_var * math.sqrt(2 / (n - 2))
        detail = (f"fit at {at:.6g}: {fitted:.6g} +- {fitted_se:.3g} vs mean {mean:.6g}; "
                  f"residual variance {residual_var:.6g} vs {var:.6g}; slope {slope:.6g}; {n} draws")
        if mean_stat >= var_stat:
            return Outcome(mean_stat <= 1 and var_stat <= 1, fitted, fitted_se, mean, mean_stat, detail)
        return Outcome(mean_stat <= 1 and var_stat <= 1, residual_var, var_se, var, var_stat, detail)
