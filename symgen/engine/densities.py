"""Log densities written out term by term, so each term of a derivation can be followed."""
from __future__ import annotations

import sympy as sp


def log_normal_pdf(x, loc, scale):
    """log N(x; loc, scale^2), written out so each term can be followed."""
    return -(x - loc) ** 2 / (2 * scale**2) - sp.log(scale) - sp.log(2 * sp.pi) / 2


def normal_pdf(x, loc, scale):
    return sp.exp(-(x - loc) ** 2 / (2 * scale**2)) / (sp.sqrt(2 * sp.pi) * scale)


def log_mvn_pdf(x, loc, cov, dimension):
    """log N(x; loc, cov) for a column vector x of ``dimension`` entries, as a matrix expression."""
    centred = x - loc
    return (-sp.Trace(centred.T * cov.I * centred) / 2 - sp.log(sp.Determinant(cov)) / 2
            - dimension * sp.log(2 * sp.pi) / 2)
