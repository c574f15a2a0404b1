"""The engine: derivations, their proofs, empirical checks, code generation.

Loaded lazily by ``symgen`` (it imports SymPy, SciPy and hypothesis). A derivation
module imports its vocabulary from here.
"""
from .checks import DistributionCheck, IdentityCheck, MeanCheck
from .derivation import KINDS, Derivation, DerivationError, Param
from .domains import Covariance, Interval, Positive, Real, Vector
from .symbolic import (GaussianExpectation, MvnExpectation, expm1mx, log1pmx, log_mvn_pdf,
                       log_normal_pdf, normal_pdf)

__all__ = [
    "Covariance", "Derivation", "DerivationError", "DistributionCheck", "GaussianExpectation",
    "IdentityCheck", "Interval", "KINDS", "MeanCheck", "MvnExpectation", "Param", "Positive",
    "Real", "Vector", "expm1mx", "log1pmx", "log_mvn_pdf", "log_normal_pdf", "normal_pdf",
]
