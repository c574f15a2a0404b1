"""The engine: derivations, their proofs, empirical checks, code generation.

Loaded lazily by ``symgen`` (it imports SymPy, SciPy and hypothesis). A derivation
module imports its vocabulary from here.
"""
from .change_of_variables import (NonZero, Pushforward, jacobian, log_abs_det_jacobian,
                                  monotone_direction, pushforward)
from .checks import DistributionCheck, IdentityCheck, MeanCheck
from .density_checks import DensityCheck
from .discrete import Binary, EnumerationCheck
from .derivation import KINDS, Derivation, DerivationError, Param
from .domains import Covariance, Interval, Positive, Real, Vector
from .symbolic import (GaussianExpectation, MvnExpectation, expm1mx, log1pmx, log_mvn_pdf,
                       log_normal_pdf, normal_pdf, sqrt_ratio)

__all__ = [
    "Binary", "DensityCheck", "EnumerationCheck", "NonZero", "Pushforward", "jacobian",
    "log_abs_det_jacobian", "monotone_direction", "pushforward",
    "Covariance", "Derivation", "DerivationError", "DistributionCheck", "GaussianExpectation",
    "IdentityCheck", "Interval", "KINDS", "MeanCheck", "MvnExpectation", "Param", "Positive",
    "Real", "Vector", "expm1mx", "sqrt_ratio", "log1pmx", "log_mvn_pdf", "log_normal_pdf", "normal_pdf",
]
