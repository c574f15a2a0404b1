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

:class:`BoxCheck` does the same for a log density of two variables: its mass over the plane
by quadrature, and counts of samples in boxes against the candidate's integral over each box.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .checks import ALPHA_PER_EVALUATION, POWER_Z, Outcome, _normal_threshold

# 16-point Gauss-Legendre is exact for polynomials of degree 31; on panels between
# adjacent 0.5% sample quantiles a smooth density is resolved to rounding.
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(16)
GRID_LEVELS = np.linspace(0.005, 0.995, 199)


def grid_ks_statistic(empirical, cdf, n, alpha):
    """:class:`DensityCheck`'s Kolmogorov-Smirnov statistic at the grid (the grid on the last
    axis): returns (ks, allowance, statistic), ks = max |empirical - cdf|, allowance =
    sqrt(log(2 / alpha) / (2 n)) (Dvoretzky-Kiefer-Wolfowitz-Massart at false alarm alpha)."""
    ks = np.max(np.abs(np.asarray(empirical) - np.asarray(cdf)), axis=-1)
    allowance = math.sqrt(math.log(2 / alpha) / (2 * n))
    return ks, allowance, ks / allowance


def binomial_tail_statistic(count, n, smallest, largest, alpha):
    """Both tails of a count of n draws whose probability is known to lie in [smallest,
    largest]: returns (tail, statistic), tail = min(P(X <= count; largest), P(X >= count;
    smallest)) for X ~ Binomial(n, .), statistic = (alpha / 2) / tail (> 1 fails; false-alarm
    probability <= alpha, each tail alpha / 2). Vectorized over the arrays."""
    from scipy import stats

    tail = np.minimum(stats.binom.cdf(count, n, largest), stats.binom.sf(np.asarray(count) - 1, n, smallest))
    return tail, (alpha / 2) / np.maximum(tail, 1e-300)


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
        from scipy import integrate

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
        ks, ks_allowance, ks_stat = (float(part) for part in grid_ks_statistic(empirical, cdf, n, alpha))

        # The interval (x - h, x + h] with h a quarter of a pilot sample's interquartile range.
        pilot = np.asarray(self.sampler(rng, self.pilot, **params), dtype=np.float64)
        quartiles = np.quantile(pilot, [0.25, 0.75])
        h = max(float(quartiles[1] - quartiles[0]) / 4, 1e-300)
        centre = float(params[self.variable])
        left, right = max(centre - h, low), min(centre + h, high)
        probability = min(max(integral(left, right), 0.0), 1.0) if left < right else 0.0
        count = int(np.searchsorted(draws, right, side="right") - np.searchsorted(draws, left, side="right"))
        tail, binomial_stat = (float(part) for part in
                               binomial_tail_statistic(count, n, probability, probability, alpha))

        statistic = max(mass_stat, ks_stat, binomial_stat)
        standard_error = math.sqrt(max(probability * (1 - probability), 1 / n) / n)
        # A density off by a factor 1 + delta has mass 1 + delta: refuted by quadrature
        # once delta exceeds the mass tolerance (the error of the output, a log density, is
        # then delta in absolute terms).
        return Outcome(bool(statistic <= 1), count / n, standard_error, probability, statistic,
                       f"mass {mass:.12g}; KS {ks:.3g} (allowed {ks_allowance:.3g}); "
                       f"P({left:.4g} < x <= {right:.4g}): {count}/{n} vs {probability:.6g} "
                       f"(binomial tail {tail:.3g}); {n} draws", self.mass_rtol)


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


# The mass of a 2-D candidate over the plane, by iterated Gauss-Legendre quadrature. Each
# axis is stretched by x = centre + width sinh(v), |v| <= asinh(MASS_REACH): nodes dense
# within a few widths of the centre, sparse far out, so the 16-point rule on a few panels
# in v integrates a Gaussian to rounding. The outer axis x1 is centred on the pilot's
# median with its interquartile range / 1.349 (a standard deviation) as width; each inner
# axis x2 is centred on the candidate's own conditional peak at that x1, found by Newton's
# method, so a conditional law 1e-4 wide 10 units away (an affine coupling at |x1| = 5) is
# resolved as well as one centred at 0.

#: Widths covered either side of each axis's centre. No further: a candidate written with
#: cancelling terms (an expanded square times exp(-2 s(x1)), say) turns to rounding noise of
#: size e^(2 |x1|), +inf at 24 widths, where its density is e^-288 but its form is not.
MASS_REACH = 12.0
#: The stated tail bound: the mass a law puts beyond MASS_REACH widths on either axis. For a
#: Gaussian, even with the pilot's width 10% low and its centre 0.1 sd off, that is beyond
#: 10.7 sd: 2 Phi(-10.7) < 1e-26; every flow BoxCheck is used for pushes N(0, I) through a map
#: affine in z2 given z1, whose marginal x1 and conditional x2 | x1 are Gaussian. 1e-15
#: leaves room for laws with somewhat heavier tails; a heavy-tailed law needs a wider reach.
MASS_TAIL_BOUND = 1e-15
#: The ratio of a normal law's interquartile range to its standard deviation.
IQR_PER_SD = 1.349


def _sinh_rule(panels):
    """Nodes t and weights of  integral g(t) dt ~= sum_i g(t_i) weight_i  for t = sinh(v),
    |v| <= asinh(MASS_REACH): composite 16-point Gauss-Legendre in v, times dt/dv = cosh v."""
    top = math.asinh(MASS_REACH)
    edges = np.linspace(-top, top, panels + 1)
    half = (edges[1:] - edges[:-1]) / 2
    stretched = (edges[:-1, None] + half[:, None] * (_NODES + 1)).ravel()
    return np.sinh(stretched), np.cosh(stretched) * (half[:, None] * _WEIGHTS).ravel()


def conditional_peaks(log_density, outer, start, scale, iterations=24):
    """For each x1 in ``outer``, the mode of x2 -> log p(x1, x2) and the width
    1/sqrt(-d^2 log p/dx2^2) there, by Newton's method with central differences from
    (``start``, ``scale``), and whether it was found. Where log p is quadratic in x2 (a
    Gaussian conditional) the first step with a measurable curvature lands on the mode,
    whatever the start. Until the curvature shows, the differences are taken 8 times wider
    each step (a conditional 1e9 times wider than the scale curves by less than rounding).
    Where it never shows (log p -inf around the start, as when a candidate written as
    log(exp(.) * exp(.)) underflows far from its mode), the start and scale stay, unresolved."""
    centre = np.full(outer.shape, float(start))
    step = np.full(outer.shape, float(scale))
    width = np.full(outer.shape, math.nan)
    offsets = np.array([-1.0, 0.0, 1.0])
    for _ in range(iterations):
        points = centre[:, None] + step[:, None] * offsets
        below, middle, above = log_density(np.broadcast_to(outer[:, None], points.shape), points).T
        with np.errstate(all="ignore"):     # -inf and overflow far out are expected
            slope = (above - below) / (2 * step)
            curvature = (above - 2 * middle + below) / step**2
            moved, found = centre - slope / curvature, 1 / np.sqrt(-curvature)
        usable = (curvature < 0) & np.isfinite(moved) & np.isfinite(found) & (found > 0)
        centre = np.where(usable, moved, centre)
        width = np.where(usable, found, width)
        # The next differences over a quarter width (accurate for any smooth log density), or
        # wider where the curvature did not show.
        step = np.where(usable, found / 4, np.where(np.isfinite(width), step, 8 * step))
    resolved = np.isfinite(width)
    return np.where(resolved, centre, float(start)), np.where(resolved, width, float(scale)), resolved


def mass_by_quadrature(log_density, density, centre, scale, panels):
    """The integral of p(x1, x2) over the plane: outer nodes x1 = centre[0] + scale[0] sinh(v),
    inner nodes x2 = peak + width sinh(u) around the candidate's conditional peak at each x1
    (``conditional_peaks``), ``panels`` panels of 16-point Gauss-Legendre in v and in u.
    NaN where a peak was not found: the integral is then not known to be resolved."""
    unit_nodes, unit_weights = _sinh_rule(panels)
    outer = centre[0] + scale[0] * unit_nodes
    peak, width, resolved = conditional_peaks(log_density, outer, centre[1], scale[1])
    if not np.all(resolved):
        return math.nan
    inner = peak[:, None] + width[:, None] * unit_nodes
    conditional_mass = (density(np.broadcast_to(outer[:, None], inner.shape), inner) @ unit_weights) * width
    return float(conditional_mass @ unit_weights) * float(scale[0])


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

    Besides the counts, an exact test: the candidate density integrates to 1 over the plane
    (``mass_by_quadrature``; deterministic, so it spends none of the false-alarm budget).
    Allowed: ``mass_rtol``, plus 10 times the difference between 6 and 12 panels per axis
    (the quadrature's error bound), plus MASS_TAIL_BOUND (the mass beyond the reach). A
    density off by a constant factor 1 + delta has mass 1 + delta, so the mass refutes it
    once delta exceeds that allowance; the counts are there for errors of shape, which
    keep the mass at 1. A candidate whose log density is -inf around the quadrature's start
    (a form that underflows far from its peak) leaves the mass untested: the counts decide.
    """

    sampler: Callable           # (rng, n, **params) -> array (n, 2) of pushforward samples
    description: str
    variables: tuple = ("x1", "x2")
    output: str | None = None
    # The mass refutes a constant factor to 1e-9; 200_000 draws let the counts refute errors
    # of shape that move a box's probability by 4-7% (as DensityCheck's 200_000 in flows.py).
    samples: int = 200_000
    pilot: int = 10_000
    # Gauss-Legendre in the stretched coordinates integrates these Gaussian-tailed densities
    # to ~1e-15 (6 and 12 panels agree to rounding); 1e-9 leaves room, as in DensityCheck.
    mass_rtol: float = 1e-9
    derivation: object = field(default=None, repr=False)
    kind = "density"
    applies_formula = True

    @property
    def outputs(self):
        return (self.output or self.derivation.name,)

    def run(self, values, params: dict, rng) -> Outcome:
        logpdf = values.vectorized(self.outputs[0])
        first, second = self.variables
        others = {name: value for name, value in params.items() if name not in self.variables}

        def log_density(grid1, grid2):
            log_values = np.asarray(logpdf(**{first: grid1, second: grid2}, **others))
            if np.iscomplexobj(log_values):
                raise ValueError("the candidate log density is complex")
            return np.broadcast_to(log_values.astype(np.float64), grid1.shape)

        def density(grid1, grid2):
            result = np.exp(log_density(grid1, grid2))
            if not np.all(np.isfinite(result)):
                raise ValueError("the candidate density is not finite")
            return result

        draws = np.asarray(self.sampler(rng, self.samples, **params), dtype=np.float64)
        pilot = np.asarray(self.sampler(rng, self.pilot, **params), dtype=np.float64)
        quartiles = np.quantile(pilot, [0.25, 0.5, 0.75], axis=0)
        half_width = np.maximum((quartiles[2] - quartiles[0]) / 4, 1e-300)
        mass_scale = np.maximum((quartiles[2] - quartiles[0]) / IQR_PER_SD, 1e-300)
        coarse_mass, mass = (mass_by_quadrature(log_density, density, quartiles[1], mass_scale, panels)
                             for panels in (6, 12))
        mass_allowance = self.mass_rtol + 10 * abs(mass - coarse_mass) + MASS_TAIL_BOUND
        # Where the quadrature could not find the candidate's peaks the mass is not tested
        # (never refuted for that), and the counts alone decide and state the resolution.
        mass_tested = not (math.isnan(mass) or math.isnan(coarse_mass))
        mass_stat = 0.0 if not mass_tested else (
            abs(mass - 1) / mass_allowance if math.isfinite(mass_allowance) else math.inf)
        centres = [np.array([params[first], params[second]], dtype=np.float64), quartiles[1]]
        n = draws.shape[0]
        alpha = ALPHA_PER_EVALUATION / len(centres)
        worst = None
        # A density off by a factor 1 + delta moves a box's expected count by n p delta; refuted
        # with probability >= 0.99 past the quadrature allowance plus (z + POWER_Z) binomial SEs.
        z = _normal_threshold(alpha)
        # The sharpest test decides the resolution: the mass for a constant factor.
        resolution = mass_allowance if mass_tested else math.inf
        for centre in centres:
            low, high = centre - half_width, centre + half_width
            coarse = _box_probability(density, low, high, 8)
            fine = _box_probability(density, low, high, 16)
            allowance = 10 * abs(fine - coarse) + 1e-15
            inside = np.all((draws > low) & (draws <= high), axis=1)
            count = int(np.count_nonzero(inside))
            smallest = min(max(fine - allowance, 0.0), 1.0)
            largest = min(max(fine + allowance, 0.0), 1.0)
            tail, statistic = (float(part) for part in binomial_tail_statistic(count, n, smallest, largest, alpha))
            if fine > 0:
                spread = math.sqrt(fine * (1 - fine) / n) if fine < 1 else 0.0
                resolution = min(resolution, (allowance + (z + POWER_Z) * spread) / fine)
            if worst is None or statistic > worst[0]:
                worst = (statistic, count, fine, tail, low, high)
        box_stat, count, probability, tail, low, high = worst
        mass_detail = (f"mass {mass:.12g} (allowed 1 +- {mass_allowance:.2g}); " if mass_tested
                       else "mass not tested (the candidate's peaks not found); ")
        detail = (f"{mass_detail}P(box {np.round(low, 4).tolist()} .. {np.round(high, 4).tolist()}): "
                  f"{count}/{n} vs {probability:.6g} (binomial tail {tail:.3g}); {n} draws")
        if mass_stat > box_stat:
            # The mass decides: the definition says 1, the candidate integrates to ``mass``.
            return Outcome(bool(mass_stat <= 1), 1.0, 0.0, mass, mass_stat, detail, resolution)
        standard_error = math.sqrt(max(probability * (1 - probability), 1 / n) / n)
        return Outcome(bool(box_stat <= 1), count / n, standard_error, probability, box_stat, detail, resolution)
