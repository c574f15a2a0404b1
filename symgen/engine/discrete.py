"""A log pmf over finitely many values, checked by enumeration and sampling.

:class:`EnumerationCheck` applies the output (the candidate log pmf over binary
sequences) to every one of the 2^L sequences, with the other arguments held at the
drawn point:

* exact enumeration: the probabilities sum to 1 (deterministic, ``mass_rtol``);
* ancestral samples: n sequences drawn by ``sampler`` fall into the 2^L cells. Each cell's
  count is Binomial(n, p_cell) exactly under a correct pmf, so both binomial tails are
  tested exactly at alpha / (2 * 2^L) per cell (Bonferroni). A Pearson chi-square test
  would pool the same information, but its chi-square approximation is not trustworthy
  at a false-alarm rate of 1e-9 when some cells are rare; the exact cell tests are.

The per-evaluation false-alarm probability is ``ALPHA_PER_EVALUATION``.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .checks import ALPHA_PER_EVALUATION, Outcome
from .density_checks import binomial_tail_statistic


def enumeration_statistic(counts, n, probabilities, alpha=ALPHA_PER_EVALUATION):
    """:class:`EnumerationCheck`'s sampling statistic (pure, vectorized over leading axes) from
    the cells' counts among n draws (the cells on the last axis) and the candidate's
    probabilities of the cells (clipped to [0, 1]). Under a correct pmf each count is
    Binomial(n, p_cell) exactly; both tails of every cell are tested exactly at alpha / (2 cells)
    (:func:`binomial_tail_statistic` at alpha / cells; Bonferroni over the cells).

    Returns (tails, worst, statistic): each cell's smaller tail min(P(X <= count), P(X >= count)),
    the index of the smallest (the worst cell) and statistic = alpha / (2 cells) / that tail
    (> 1 fails; false-alarm probability <= alpha)."""
    counts = np.asarray(counts)
    clipped = np.clip(np.asarray(probabilities, dtype=np.float64), 0.0, 1.0)
    tails, statistics = binomial_tail_statistic(counts, n, clipped, clipped, alpha / counts.shape[-1])
    worst = np.argmin(tails, axis=-1)
    statistic = np.take_along_axis(statistics, np.expand_dims(worst, -1), axis=-1)[..., 0]
    return tails, worst, statistic


@dataclass
class EnumerationCheck:
    """The output, a log pmf of ``variables``, against exact enumeration and
    ``sampler(rng, n, **params)``: an (n, L) array of indices into ``grids``, the values
    each variable takes (by default 0 and 1, so a binary sequence's 0/1 draws are their
    own indices).

    * exact enumeration: the probabilities of all cells sum to 1 (``mass_rtol``: a sum
      of exponentials of float64 logs, a few ulps each);
    * sampling: each cell's count is Binomial(n, p_cell) exactly under a correct pmf, so
      both binomial tails are tested exactly at ALPHA_PER_EVALUATION / (2 * cells) per
      cell (Bonferroni): false-alarm probability <= ALPHA_PER_EVALUATION per evaluation.
      Exact tails, not Pearson's chi-square, whose approximation is not trustworthy at
      1e-9 when cells are rare.
    """

    sampler: Callable
    description: str
    variables: tuple
    grids: tuple | None = None
    output: str | None = None
    samples: int = 1_000_000
    mass_rtol: float = 1e-12
    derivation: object = field(default=None, repr=False)
    kind = "enumeration"
    applies_formula = True

    @property
    def outputs(self):
        return (self.output or self.derivation.name,)

    def run(self, values, params: dict, rng) -> Outcome:
        grids = self.grids or ((0.0, 1.0),) * len(self.variables)
        logpmf = values.vectorized(self.outputs[0])
        cells = np.array(list(itertools.product(*grids)), dtype=np.float64)
        others = {name: value for name, value in params.items() if name not in self.variables}
        log_values = np.asarray(logpmf(**{name: cells[:, i] for i, name in enumerate(self.variables)}, **others))
        if np.iscomplexobj(log_values):
            raise ValueError("the candidate log pmf is complex")
        probabilities = np.broadcast_to(np.exp(log_values.astype(np.float64)), (len(cells),))
        if not np.all(np.isfinite(probabilities)):
            raise ValueError("the candidate pmf is not finite")
        mass = math.fsum(probabilities)
        mass_stat = abs(mass - 1) / self.mass_rtol
        if not mass_stat <= 1:
            # Refuted by enumeration alone: no need to sample.
            return Outcome(False, 1.0, 0.0, mass, mass_stat,
                           f"the {len(cells)} cells' probabilities sum to {mass:.15g}, not 1", self.mass_rtol)

        draws = np.asarray(self.sampler(rng, self.samples, **params)).astype(np.int64)
        n = draws.shape[0]
        shape = tuple(len(grid) for grid in grids)
        counts = np.bincount(np.ravel_multi_index(tuple(draws.T), shape), minlength=len(cells))
        tails, worst, cell_stat = enumeration_statistic(counts, n, probabilities)
        worst, tail, cell_stat = int(worst), float(tails[worst]), float(cell_stat)
        clipped = np.clip(probabilities, 0.0, 1.0)
        statistic = max(mass_stat, cell_stat)
        return Outcome(bool(statistic <= 1), counts[worst] / n,
                       math.sqrt(max(clipped[worst] * (1 - clipped[worst]), 1 / n) / n),
                       float(probabilities[worst]), statistic,
                       f"sum over {len(cells)} cells {mass:.15g}; worst cell {cells[worst].tolist()}: "
                       f"{counts[worst]}/{n} vs {probabilities[worst]:.6g} (binomial tail {tail:.3g})",
                       # A pmf off by a factor 1 + delta sums to 1 + delta: refuted by
                       # enumeration past the mass tolerance.
                       self.mass_rtol)
