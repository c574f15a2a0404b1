"""Matrix functions for derivations with vector and matrix arguments.

SymPy's matrix expressions cover products, inverses, traces and determinants of matrix
symbols; these add the principal square root M^1/2 of a symmetric positive semi-definite
matrix and the diagonal part diag(diag(M)), kept unevaluated for matrix symbols and made
explicit (exactly when SymPy can, numerically from the entries otherwise) when a proof or
a spot check substitutes explicit matrices. A candidate handed to ``symgen check`` may use
them as ``sqrtm(A)`` and ``diagpart(A)``.
"""
from __future__ import annotations

import mpmath
import sympy as sp


class SymmetricMatrixFunction(sp.MatrixExpr):
    """f(M) of a symmetric matrix M, a symmetric matrix of M's shape, kept unevaluated for a
    matrix symbol; ``doit`` applies :meth:`explicit` once M is an explicit matrix."""

    def __new__(cls, matrix):
        return sp.MatrixExpr.__new__(cls, sp.sympify(matrix))

    @property
    def shape(self):
        return self.args[0].shape

    def _entry(self, i, j, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has entries only for explicit matrices (use doit)")

    def _eval_transpose(self):
        return self          # a function of a symmetric matrix is symmetric

    def doit(self, **hints):
        matrix = self.args[0].doit(**hints) if hints.get("deep", True) else self.args[0]
        if isinstance(matrix, sp.MatrixBase):
            return self.explicit(sp.ImmutableMatrix(matrix))
        return type(self)(matrix)

    @classmethod
    def explicit(cls, matrix):
        raise NotImplementedError


class MatrixSqrt(SymmetricMatrixFunction):
    """M^1/2, the symmetric positive semi-definite square root of a symmetric PSD matrix M.

    Kept unevaluated for matrix symbols. With an explicit matrix substituted, ``doit``
    gives it exactly when SymPy can (1x1: sqrt(m); diagonal: the square roots of the
    diagonal) and numerically, at the precision of the entries, from mpmath's symmetric
    eigendecomposition when the entries are numbers.
    """

    @classmethod
    def explicit(cls, matrix):
        size = matrix.shape[0]
        if all(entry.is_number for entry in matrix):
            bits = max([entry._prec for entry in matrix.atoms(sp.Float)] + [133]) + 40
            with mpmath.workprec(bits):
                numeric = mpmath.matrix([[mpmath.mpmathify(sp.N(entry, mpmath.libmp.prec_to_dps(bits)))
                                          for entry in row] for row in matrix.tolist()])
                numeric = (numeric + numeric.T) / 2
                eigenvalues, vectors = mpmath.eigsy(numeric)
                root = vectors * mpmath.diag([mpmath.sqrt(max(e, 0)) for e in eigenvalues]) * vectors.T
                digits = mpmath.libmp.prec_to_dps(bits)
                return sp.ImmutableMatrix(size, size, [sp.Float(root[i, j], digits)
                                                       for i in range(size) for j in range(size)])
        if all(matrix[i, j] == 0 for i in range(size) for j in range(size) if i != j):
            return sp.ImmutableMatrix(sp.diag(*[sp.sqrt(matrix[i, i]) for i in range(size)]))
        return cls(matrix)

    def _latex(self, printer, exp=None):
        body = rf"\left({printer._print(self.args[0])}\right)^{{1/2}}"
        return body if exp is None else rf"{body}^{{{exp}}}"

    def _sympystr(self, printer):
        return f"sqrtm({printer._print(self.args[0])})"


class DiagonalPart(SymmetricMatrixFunction):
    """diag(diag(M)): M with its off-diagonal entries set to 0 (for explicit matrices)."""

    @classmethod
    def explicit(cls, matrix):
        return sp.ImmutableMatrix(sp.diag(*[matrix[i, i] for i in range(matrix.shape[0])]))

    def _sympystr(self, printer):
        return f"diag({printer._print(self.args[0])})"


def squared_norm(vector):
    """||v||^2 = v^T v, as the trace of a 1x1 matrix so it adds to scalars."""
    return sp.Trace(vector.T * vector)


def quadratic_form(vector, matrix):
    """v^T A v, as the trace of a 1x1 matrix so it adds to scalars."""
    return sp.Trace(vector.T * matrix * vector)
