"""A 1-D log density against samples of the simulation it claims to describe.

``DistributionCheck`` compares samples with a law built from output *values*; a log
density, though, is a function of its argument, so this check applies the output (the
candidate) as a function: ``values.vectorized(output)``, with every other argument held
at the drawn point. Three comparisons, none of which uses the closed form:

* mass: the candidate density integrates to 1 over its support (Gauss-Legendre panels
  between sample quantiles plus adaptive quadrature on the two tails); deterministic,
  allowed ``mass_rtol``;
* Kolmogorov-Smirnov at grid points: the empirical CDF of n samples against the
  candidate's CDF at 199 sample quantiles. Under a correct density
  P(sup_t |F_n(t) - F(t)| > eps) <= 2 exp(-2 n eps^2) (Dvoretzky-Kiefer-Wolfowitz with
  Massart's constant), and a supremum over fewer points is smaller, so eps =
  sqrt(log(2/alpha) / (2n)) keeps the false alarm below alpha;
* an interval around the drawn argument: the number of samples in (x - h, x + h] is
  Binomial(n, p) with p the candidate's probability of the interval (quadrature); both
  binomial tails are tested exactly. The half-width h comes from a separate pilot
  sample, so the count stays binomial.

The two statistical tests share the per-evaluation false-alarm budget
``ALPHA_PER_EVALUATION`` equally.

:class:`BoxCheck` does the same for a log density of two variables: counts of samples in
boxes against the candidate's integral over each box.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .checks import ALPHA_PER_EVALUATION, Outcome

# 16-point Gauss-Legendre is exact for polynomials of degree 31; on panels between
# adjacent 0.5% sample quantiles a smooth density is resolved to rounding.
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(16)
GRID_LEVELS = np.linspace(0.005, 0.995, 199)


@dataclass
class DensityCheck:
    """The output, a log density in ``variable``, against ``sampler(rng, n, **params)``."""

    sampler: Callable
    description: str
    variable: str = "x"
    output: str | None = None
    support: Callable | None = None      # (**params) -> (low, high); default the real line
    samples: int = 1_000_000
    pilot: int = 10_000
    # quadrature of a smooth density on these panels is good to ~1e-13; 1e-9 leaves room.
    mass_rtol: float = 1e-9
    derivation: object = field(default=None, repr=False)
    kind = "density"
    applies_formula = True

    @property
    def outputs(self):
        return (self.output or self.derivation.name,)

    def run(self, values, params: dict, rng) -> Outcome:
        from scipy import integrate, stats

        logpdf = values.vectorized(self.outputs[0])
        others = {name: value for name, value in params.items() if name != self.variable}

        def density(points):
            points = np.asarray(points, dtype=np.float64)
            log_values = np.asarray(logpdf(**{self.variable: points}, **others))
            if np.iscomplexobj(log_values):
                raise ValueError("the candidate log density is complex on the support")
            result = np.exp(log_values.astype(np.float64))
            if not np.all(np.isfinite(result)):
                raise ValueError("the candidate density is not finite on the support")
            return np.broadcast_to(result, points.shape)

        def integral(low, high):
            if low >= high:
                return 0.0
            if math.isinf(low) or math.isinf(high):
                with warnings.catch_warnings():
                    # A wrong candidate may not be integrable; its mass is then refuted, not warned about.
                    warnings.simplefilter("ignore")
                    return integrate.quad(lambda t: float(density(np.array([t]))[0]), low, high,
                                          epsabs=1e-15, epsrel=1e-12, limit=200)[0]
            half = (high - low) / 2
            return float(half * np.dot(_WEIGHTS, density(low + half * (_NODES + 1))))

        low, high = self.support(**params) if self.support else (-math.inf, math.inf)
        draws = np.sort(np.asarray(self.sampler(rng, self.samples, **params), dtype=np.float64))
        n = draws.size
        grid = np.unique(np.quantile(draws, GRID_LEVELS))
        # The candidate's CDF at the grid: tail, then panels of 16-point Gauss-Legendre.
        edges = np.concatenate([grid[:-1], grid[1:]]).reshape(2, -1)
        half = (edges[1] - edges[0]) / 2
        panels = half * (density(edges[0][:, None] + half[:, None] * (_NODES + 1)) @ _WEIGHTS)
        lower_tail = integral(low, grid[0])
        cdf = lower_tail + np.concatenate([[0.0], np.cumsum(panels)])
        mass = cdf[-1] + integral(grid[-1], high)
        mass_stat = abs(mass - 1) / self.mass_rtol

        alpha = ALPHA_PER_EVALUATION / 2
        empirical = np.searchsorted(draws, grid, side="right") / n
        ks = float(np.max(np.abs(empirical - cdf)))
        ks_allowance = math.sqrt(math.log(2 / alpha) / (2 * n))
        ks_stat = ks / ks_allowance

        # The interval (x - h, x + h] with h a quarter of a pilot sample's interquartile range.
        pilot = np.asarray(self.sampler(rng, self.pilot, **params), dtype=np.float64)
        quartiles = np.quantile(pilot, [0.25, 0.75])
        h = max(float(quartiles[1] - quartiles[0]) / 4, 1e-300)
        centre = float(params[self.variable])
        left, right = max(centre - h, low), min(centre + h, high)
        probability = min(max(integral(left, right), 0.0), 1.0) if left < right else 0.0
        count = int(np.searchsorted(draws, right, side="right") - np.searchsorted(draws, left, side="right"))
        tail = min(float(stats.binom.cdf(count, n, probability)), float(stats.binom.sf(count - 1, n, probability)))
        binomial_stat = (alpha / 2) / max(tail, 1e-300)

        statistic = max(mass_stat, ks_stat, binomial_stat)
        standard_error = math.sqrt(max(probability * (1 - probability), 1 / n) / n)
        return Outcome(bool(statistic <= 1), count / n, standard_error, probability, statistic,
                       f"mass {mass:.12g}; KS {ks:.3g} (allowed {ks_allowance:.3g}); "
                       f"P({left:.4g} < x <= {right:.4g}): {count}/{n} vs {probability:.6g} "
                       f"(binomial tail {tail:.3g}); {n} draws")


# --- two dimensions ----------------------------------------------------------------------


def _box_probability(density, low, high, panels):
    """The integral of density(x1, x2) over the box [low, high], by a tensor product of
    composite 16-point Gauss-Legendre rules with ``panels`` panels per axis."""
    axes = []
    for lo, hi in zip(low, high):
        edges = np.linspace(lo, hi, panels + 1)
        half = (edges[1:] - edges[:-1]) / 2
        nodes = (edges[:-1, None] + half[:, None] * (_NODES + 1)).ravel()
        weights = (half[:, None] * _WEIGHTS).ravel()
        axes.append((nodes, weights))
    (nodes1, weights1), (nodes2, weights2) = axes
    grid1, grid2 = np.meshgrid(nodes1, nodes2, indexing="ij")
    return float(weights1 @ density(grid1, grid2) @ weights2)


@dataclass
class BoxCheck:
    """A log density of (x1, x2) against samples of the flow it claims to describe.

    The number of n samples that fall in a box is Binomial(n, P(box)), and P(box) is the
    candidate density's integral over the box (composite Gauss-Legendre quadrature; the
    difference between 8 and 16 panels per axis, times 10, bounds its error, and the
    test accepts any probability within that bound). Two boxes: one around the point the
    density is evaluated at, one around the pilot median (where the mass is); half-widths
    are a quarter of a pilot sample's interquartile ranges, and the pilot is a separate
    sample, so each count stays binomial. Both binomial tails are computed exactly; the
    two boxes share the per-evaluation false-alarm budget ALPHA_PER_EVALUATION = 1e-9
    equally (1e-6 over the at most 1000 evaluations of a run).
    """

    sampler: Callable           # (rng, n, **params) -> array (n, 2) of pushforward samples
    description: str
    variables: tuple = ("x1", "x2")
    output: str | None = None
    samples: int = 1_000_000
    pilot: int = 10_000
    derivation: object = field(default=None, repr=False)
    kind = "density"
    applies_formula = True

    @property
    def outputs(self):
        return (self.output or self.derivation.name,)

    def run(self, values, params: dict, rng) -> Outcome:
        from scipy import stats

        logpdf = values.vectorized(self.outputs[0])
        first, second = self.variables
        others = {name: value for name, value in params.items() if name not in self.variables}

        def density(grid1, grid2):
            log_values = np.asarray(logpdf(**{first: grid1, second: grid2}, **others))
            if np.iscomplexobj(log_values):
                raise ValueError("the candidate log density is complex")
            result = np.broadcast_to(np.exp(log_values.astype(np.float64)), grid1.shape)
            if not np.all(np.isfinite(result)):
                raise ValueError("the candidate density is not finite")
            return result

        draws = np.asarray(self.sampler(rng, self.samples, **params), dtype=np.float64)
        pilot = np.asarray(self.sampler(rng, self.pilot, **params), dtype=np.float64)
        quartiles = np.quantile(pilot, [0.25, 0.5, 0.75], axis=0)
        half_width = np.maximum((quartiles[2] - quartiles[0]) / 4, 1e-300)
        centres = [np.array([params[first], params[second]], dtype=np.float64), quartiles[1]]
        n = draws.shape[0]
        alpha = ALPHA_PER_EVALUATION / len(centres)
        worst = None
        for centre in centres:
            low, high = centre - half_width, centre + half_width
            coarse = _box_probability(density, low, high, 8)
            fine = _box_probability(density, low, high, 16)
            allowance = 10 * abs(fine - coarse) + 1e-15
            inside = np.all((draws > low) & (draws <= high), axis=1)
            count = int(np.count_nonzero(inside))
            smallest = min(max(fine - allowance, 0.0), 1.0)
            largest = min(max(fine + allowance, 0.0), 1.0)
            tail = min(float(stats.binom.cdf(count, n, largest)), float(stats.binom.sf(count - 1, n, smallest)))
            statistic = (alpha / 2) / max(tail, 1e-300)
            if worst is None or statistic > worst[0]:
                worst = (statistic, count, fine, tail, low, high)
        statistic, count, probability, tail, low, high = worst
        standard_error = math.sqrt(max(probability * (1 - probability), 1 / n) / n)
        return Outcome(bool(statistic <= 1), count / n, standard_error, probability, statistic,
                       f"P(box {np.round(low, 4).tolist()} .. {np.round(high, 4).tolist()}): "
                       f"{count}/{n} vs {probability:.6g} (binomial tail {tail:.3g}); {n} draws")
