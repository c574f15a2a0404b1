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

A sampler that builds the pair from independent standard normals may return
``Controlled((x, y), normals)`` instead: then the conditional mean and variance are
functions of the moments of the pair, each moment sharpened by control variates
(symgen/engine/controls.py) and the standard errors come from the jackknife over batches
(``ConditionalCheck._run_controlled``). For a pair linear in the normals the controls
remove every moment's randomness, and the resolution falls from ~1% at 10^6 draws to
rounding (~1e-12) at 10^5.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import controls
from .checks import (ALPHA_PER_EVALUATION, APPROXIMATION_MARGIN, POWER_Z, ROUNDING_RTOL, Outcome,
                     relative_resolution)
from .controls import Controlled


def conditional_statistics(n, fitted, fitted_se, residual_var, mean, var, size):
    """:class:`ConditionalCheck`'s two statistics from its least-squares fit of n joint draws
    (pure, vectorized over the arrays): the fitted line at ``at`` against ``mean`` (exact t
    test, n - 2 degrees of freedom) and the residual variance against ``var`` (exact
    chi-square interval), each at ALPHA_PER_EVALUATION / 2, plus allowances for rounding
    relative to ``size``. Returns (mean_stat, var_stat, mean_allowance, low_quantile,
    high_quantile): each statistic > 1 fails; var is accepted where the ratio residual_var /
    var lies in [low_quantile, high_quantile]."""
    from scipy import stats

    alpha = ALPHA_PER_EVALUATION / 2
    t_threshold = float(stats.t.isf(alpha / 2, n - 2))
    mean_allowance = t_threshold * np.asarray(fitted_se, dtype=np.float64) + ROUNDING_RTOL * size
    mean_stat = np.abs(np.asarray(fitted, dtype=np.float64) - mean) / mean_allowance

    # (n - 2) s^2 / var ~ chi-square(n - 2): accept var in the exact two-sided interval.
    low_quantile = float(stats.chi2.ppf(alpha / 2, n - 2)) / (n - 2)
    high_quantile = float(stats.chi2.isf(alpha / 2, n - 2)) / (n - 2)
    rounding = (ROUNDING_RTOL * np.asarray(size, dtype=np.float64)) ** 2
    residual_var, var = np.asarray(residual_var, dtype=np.float64), np.asarray(var, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        # The ratio's exact acceptance interval, widened by the rounding allowance; the
        # statistic is the distance from 1 in units of that side's half-width (<= 1 inside).
        ratio = residual_var / var
        slack = rounding / var
        inside = np.where(ratio >= 1, (ratio - 1) / (high_quantile - 1 + slack),
                          (1 - ratio) / (1 - low_quantile + slack))
        # A variance of 0 exactly: only rounding may be left in the residuals.
        degenerate = np.where(rounding > 0, residual_var / rounding, np.inf)
        var_stat = np.where(var > 0, inside, degenerate)
    return mean_stat, var_stat, mean_allowance, low_quantile, high_quantile


@dataclass
class ConditionalCheck:
    """The law of y given x = ``at(**params)`` is N(output ``mean``, output ``var``),
    tested on joint draws ``sampler(rng, n, **params) -> (x, y)`` of a jointly
    Gaussian pair by least squares (exact t and chi-square tests), or on
    ``Controlled((x, y), normals)`` by moments with control variates (jackknife t tests)."""

    sampler: Callable
    at: Callable
    description: str
    mean: str
    var: str
    # 10^6 draws put the residual variance's standard error at 0.14% (sqrt(2/n)), so a
    # 1% error stands 7 standard errors out, past the 6.2 allowed at this false-alarm rate.
    samples: int = 1_000_000
    # Batches of the jackknife, for samplers that return Controlled draws (below).
    batches: int = 200
    derivation: object = field(default=None, repr=False)
    kind = "conditional"
    applies_formula = False

    @property
    def outputs(self):
        return (self.mean, self.var)

    def run(self, values, params: dict, rng) -> Outcome:
        point_values = values(params)
        mean, var = float(point_values[self.mean]), float(point_values[self.var])
        if not (math.isfinite(mean) and math.isfinite(var) and var >= 0):
            return Outcome(False, math.nan, math.nan, var, math.inf, "no valid law: "
                           f"mean {mean}, variance {var}")
        drawn = self.sampler(rng, self.samples, **params)
        if isinstance(drawn, Controlled):
            return self._run_controlled(drawn, mean, var, params, rng)
        x, y = (np.asarray(a, dtype=np.float64) for a in drawn)
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

        size = max(1.0, abs(y_mean), float(np.sqrt(np.mean(y * y))), abs(fitted))
        mean_stat, var_stat, mean_allowance, low_quantile, high_quantile = (
            float(part) for part in conditional_statistics(n, fitted, fitted_se, residual_var, mean, var, size))
        var_se = residual_var * math.sqrt(2 / (n - 2))
        detail = (f"fit at {at:.6g}: {fitted:.6g} +- {fitted_se:.3g} vs mean {mean:.6g}; "
                  f"residual variance {residual_var:.6g} vs {var:.6g}; slope {slope:.6g}; {n} draws")
        # Resolution: the mean off by delta moves the compared mean by delta * mean; the
        # variance off by delta moves the ratio by about delta, against the wider side of its
        # interval plus the ratio's own noise, sqrt(2 / (n - 2)) per standard error.
        resolution = max(relative_resolution(mean_allowance + POWER_Z * fitted_se, mean),
                         max(high_quantile - 1, 1 - low_quantile) + POWER_Z * math.sqrt(2 / (n - 2)))
        if mean_stat >= var_stat:
            return Outcome(mean_stat <= 1 and var_stat <= 1, fitted, fitted_se, mean, mean_stat, detail,
                           resolution)
        return Outcome(mean_stat <= 1 and var_stat <= 1, residual_var, var_se, var, var_stat, detail, resolution)

    def _run_controlled(self, drawn: Controlled, mean: float, var: float, params: dict, rng) -> Outcome:
        """The same law from joint draws built from independent standard normals
        (``Controlled((x, y), normals)``): the conditional mean and variance as functions of
        the moments of (x, y), each moment's mean sharpened by control variates (Hermite
        polynomials of the normals, fitted on a separate pilot sample: symgen/engine/controls.py),
        standard errors by the jackknife over batches.

        The moments are those of u = x - c_x and r = y - c_y - b u, with the centres c and the
        slope b from the pilot: then E[y | x] = c_y + b u + E[r | u] and Var[y | x] = Var[r | u],
        where r is nearly uncorrelated with u, so the conditional variance is not a small
        difference of large moments (the posterior of one diffusion step has Var[y | x] ~ 1e-12
        Var[y]). For jointly Gaussian (x, y) linear in the normals every moment is a quadratic in
        them, which the control variates remove exactly: what is left is rounding.

        False alarms: each of the two tests is a two-sided t test with batches - 1 degrees of
        freedom at ALPHA_PER_EVALUATION / 2 (thresholds with APPROXIMATION_MARGIN), so at most
        ALPHA_PER_EVALUATION per evaluation
        (batch means of hundreds of draws close to normal where the controls leave randomness; the
        jackknife of a smooth function of batch means is its delta-method linearisation), plus
        rounding allowances of ROUNDING_RTOL, ~5000 ulps, of the values' size."""
        from scipy import stats

        pair, normals = controls.split(drawn)
        pilot = controls.split(self.sampler(rng, controls.pilot_size(self.samples), **params))
        centring = pilot_centring(*pilot[0])
        batch_means = controlled_batch_means(pair, normals, pilot, centring, self.batches)
        at_u = float(self.at(**params)) - centring[0]
        (offset, offset_se), (residual_var, var_se) = (
            jackknife(batch_means, lambda means, part=part: conditional_moments(means, at_u)[part])
            for part in (0, 1))
        if not (math.isfinite(offset) and math.isfinite(residual_var)):
            return Outcome(False, math.nan, math.nan, var, math.inf, "x does not vary in the joint draws")
        fitted = centring[1] + centring[2] * at_u + offset
        x, y = pair
        size = max(1.0, abs(centring[1]), float(np.sqrt(np.mean(y * y))), abs(fitted),
                   abs(centring[2]) * float(np.sqrt(np.mean((x - centring[0]) ** 2))))
        # Two two-sided tests, each at ALPHA_PER_EVALUATION / 2; the jackknife t is an
        # approximation, so with the same margin as the batch-means t test (checks.py).
        threshold = float(stats.t.isf(ALPHA_PER_EVALUATION / 4 / APPROXIMATION_MARGIN, self.batches - 1))
        mean_allowance = threshold * offset_se + ROUNDING_RTOL * size
        # Rounding of r: a few ulps of size per draw, which moves E[r^2] by at most
        # 2 sqrt(Var r) times that (Cauchy-Schwarz), plus its own square.
        var_rounding = ROUNDING_RTOL * size * (2 * math.sqrt(max(residual_var, 0.0)) + ROUNDING_RTOL * size)
        var_allowance = threshold * var_se + var_rounding
        mean_stat = abs(fitted - mean) / mean_allowance
        var_stat = abs(residual_var - var) / var_allowance if var_allowance > 0 else (
            0.0 if residual_var == var else math.inf)
        detail = (f"fit at {at_u + centring[0]:.6g}: {fitted:.6g} +- {offset_se:.3g} vs mean {mean:.6g}; "
                  f"conditional variance {residual_var:.6g} +- {var_se:.3g} vs {var:.6g}; {pair.shape[1]} "
                  f"draws with control variates, jackknife over {self.batches} batches "
                  f"(t threshold {threshold:.2f})")
        # Resolution: an output off by delta moves its compared value by delta times the
        # output; an output that is 0 here has no relative error to refute and is left out.
        parts = [relative_resolution(allowance + POWER_Z * se, value)
                 for allowance, se, value in ((mean_allowance, offset_se, mean), (var_allowance, var_se, var))
                 if value != 0]
        resolution = max(parts) if parts else math.inf
        passed = mean_stat <= 1 and var_stat <= 1
        if mean_stat >= var_stat:
            return Outcome(passed, fitted, offset_se, mean, mean_stat, detail, resolution)
        return Outcome(passed, residual_var, var_se, var, var_stat, detail, resolution)


# --- joint draws with control variates ----------------------------------------------------


def pilot_centring(x, y) -> tuple:
    """(c_x, c_y, b): the means of a pilot sample of (x, y) and its least-squares slope
    (0 where x does not vary)."""
    x_centre, y_centre = float(x.mean()), float(y.mean())
    dx = x - x_centre
    sxx = float(dx @ dx)
    slope = float(dx @ (y - y_centre)) / sxx if sxx > 0 else 0.0
    return x_centre, y_centre, slope


def moment_columns(x, y, centring) -> np.ndarray:
    """u, r, u^2, u r, r^2 per draw (columns), with u = x - c_x and r = y - c_y - b u."""
    x_centre, y_centre, slope = centring
    u = x - x_centre
    r = (y - y_centre) - slope * u
    return np.column_stack([u, r, u * u, u * r, r * r])


def controlled_batch_means(pair, normals, pilot, centring, batches: int) -> np.ndarray:
    """Batch means, shape (batches, 5), of the moment columns, each adjusted by its own control
    variates fitted on the pilot's columns (the same centring)."""
    pilot_pair, pilot_normals = pilot
    betas = np.column_stack([controls.fit(column, pilot_normals)
                             for column in moment_columns(*pilot_pair, centring).T])
    # One pass over the features for all five columns: draws - c(z) beta, column by column.
    adjusted = controls.adjusted(moment_columns(*pair, centring), normals, betas)
    return adjusted.reshape(batches, -1, adjusted.shape[1]).mean(axis=1)


def conditional_moments(means: np.ndarray, at_u: float) -> tuple:
    """(E[r | u = at_u], Var[r | u]) of a Gaussian pair from the means of u, r, u^2, u r, r^2
    (the last axis): the regression line and the residual variance, Var r - Cov(u, r)^2 / Var u."""
    eu, er, euu, eur, err = np.moveaxis(np.asarray(means, dtype=np.float64), -1, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = (eur - eu * er) / (euu - eu * eu)
    return er + slope * (at_u - eu), (err - er * er) - slope * (eur - eu * er)


def jackknife(batch_means: np.ndarray, statistic) -> tuple:
    """(statistic of the overall means, its jackknife standard error over the batches)."""
    batches = batch_means.shape[0]
    total = batch_means.sum(axis=0)
    estimate = float(statistic(total / batches))
    left_out = np.asarray(statistic((total - batch_means) / (batches - 1)), dtype=np.float64)
    spread = float(np.sum((left_out - left_out.mean()) ** 2))
    return estimate, math.sqrt((batches - 1) / batches * spread)
