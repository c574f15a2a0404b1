"""An identity check for vector-valued outputs (a score -cov^-1 (x - loc), say).

Like :class:`~symgen.engine.checks.IdentityCheck`, but the output and the independent
reference are vectors, compared norm-wise: ``||value - reference|| <= rtol ||reference||
+ atol``. Deterministic, so it has no false-alarm probability beyond the reference's
own stated accuracy.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .checks import Outcome, relative_resolution


@dataclass
class VectorIdentityCheck:
    """The vector output equals ``reference(**params)``, an independent numerical route."""

    reference: Callable
    description: str
    output: str | None = None
    rtol: float = 1e-9
    atol: float = 0.0
    derivation: object = field(default=None, repr=False)
    kind = "identity"
    applies_formula = False

    @property
    def outputs(self):
        return (self.output or self.derivation.name,)

    def run(self, values, params: dict, rng) -> Outcome:
        value = np.asarray(values(params)[self.outputs[0]], dtype=np.float64).ravel()
        reference = np.asarray(self.reference(**params), dtype=np.float64).ravel()
        if value.shape != reference.shape or not np.all(np.isfinite(value)):
            return Outcome(False, float(np.linalg.norm(reference)), 0.0, math.nan, math.inf,
                           f"shape {value.shape} or non-finite entries, reference shape {reference.shape}")
        allowance = self.rtol * float(np.linalg.norm(reference)) + self.atol
        deviation = float(np.linalg.norm(value - reference))
        statistic = deviation / allowance if allowance > 0 else (0.0 if deviation == 0 else math.inf)
        # The report shows the first entries, where the two routes' values can be compared.
        return Outcome(statistic <= 1, float(reference[0]), 0.0, float(value[0]), statistic,
                       f"norm-wise relative tolerance {self.rtol:g}; deviation {deviation:.3g}",
                       relative_resolution(allowance, float(np.linalg.norm(reference))))
