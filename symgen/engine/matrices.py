"""Matrix functions for derivations with vector and matrix arguments.

SymPy's matrix expressions cover products, inverses, traces and determinants of matrix
symbols; these add the principal square root M^1/2 of a symmetric positive semi-definite
matrix and the diagonal part diag(diag(M)), kept unevaluated for matrix symbols and made
explicit (exactly when SymPy can, numerically from the entries otherwise) when a proof or
a spot check substitutes explicit matrices. A candidate handed to ``symgen check`` may use
them as ``sqrtm(A)`` and ``diagpart(A)``; a candidate may also take the square root of a
matrix that is not symmetric (FID code writes ``sqrtm(cov1 @ cov2)``), which is then the
principal square root, as ``scipy.linalg.sqrtm`` computes it.
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
    diagonal) and numerically, at the precision of the entries, when the entries are
    numbers: from mpmath's symmetric eigendecomposition when M is symmetric to within its
    rounding, and otherwise the principal square root of M (a candidate's sqrtm(cov1 cov2),
    whose eigenvalues are those of the symmetric cov1^1/2 cov2 cov1^1/2).
    """

    @classmethod
    def explicit(cls, matrix):
        size = matrix.shape[0]
        if all(entry.is_number for entry in matrix):
            return _numeric_root(matrix)
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


def _numeric_root(matrix):
    """The square root of a matrix of numbers, computed 40 bits beyond the entries' precision
    and returned at that precision."""
    entry_bits = max([entry._prec for entry in matrix.atoms(sp.Float)] + [133])
    bits = entry_bits + 40
    digits = mpmath.libmp.prec_to_dps(bits)
    with mpmath.workprec(bits):
        numeric = mpmath.matrix([[mpmath.mpmathify(sp.N(entry, digits)) for entry in row]
                                 for row in matrix.tolist()])
        # What the rounding of the entries leaves (2^20 of their units, on M's scale): a
        # product such as P cov2 P is symmetric to within it, cov1 cov2 is not.
        rounding = mpmath.mnorm(numeric, 1) * mpmath.ldexp(1, 20 - entry_bits)
        if mpmath.mnorm(numeric - numeric.T, 1) <= rounding:
            root = _symmetric_root((numeric + numeric.T) / 2)
        else:
            root = _principal_root(numeric, rounding)
        if root is None:          # no square root at all ([[0, 1], [0, 0]]): no value
            return sp.ImmutableMatrix(matrix.shape[0], matrix.shape[1], [sp.nan] * len(matrix))
        # A real matrix without negative eigenvalues has a real principal root: imaginary
        # parts at the level of the rounding are the eigenvectors' rounding, not a value.
        real = max(abs(mpmath.im(entry)) for entry in root) <= rounding
        return sp.ImmutableMatrix(matrix.shape[0], matrix.shape[1],
                                  [_number(entry, digits, real) for entry in root])


def _symmetric_root(numeric):
    eigenvalues, vectors = mpmath.eigsy(numeric)
    return vectors * mpmath.diag([mpmath.sqrt(max(e, 0)) for e in eigenvalues]) * vectors.T


def _principal_root(numeric, rounding):
    """V diag(sqrt(lambda)) V^-1, each eigenvalue's square root the principal one; an
    eigenvalue within the rounding of the real axis (of 0) is taken as real (as 0), as
    the eigenvalues of a product of PSD matrices are. None when M has no square root."""
    eigenvalues, vectors = mpmath.eig(numeric)

    def settled(value):
        value = mpmath.re(value) if abs(mpmath.im(value)) <= rounding else value
        return 0 if abs(value) <= rounding else value

    try:
        root = vectors * mpmath.diag([mpmath.sqrt(settled(e)) for e in eigenvalues]) * mpmath.inverse(vectors)
        # The eigenvectors of a defective M ([[1, 1], [0, 1]]) are singular, or nearly so
        # after rounding, and the product then is no root: checked.
        if mpmath.mnorm(root * root - numeric, 1) <= rounding * 2**20:
            return root
    except ZeroDivisionError:
        pass
    try:
        return mpmath.sqrtm(numeric)   # Denman-Beavers iteration, for a defective M
    except ZeroDivisionError:          # a singular Jordan block, which has no square root
        return None


def _number(value, digits, real):
    if real or mpmath.im(value) == 0:
        return sp.Float(mpmath.re(value), digits)
    return sp.Float(mpmath.re(value), digits) + sp.I * sp.Float(mpmath.im(value), digits)


def squared_norm(vector):
    """||v||^2 = v^T v, as the trace of a 1x1 matrix so it adds to scalars."""
    return sp.Trace(vector.T * vector)


def quadratic_form(vector, matrix):
    """v^T A v, as the trace of a 1x1 matrix so it adds to scalars."""
    return sp.Trace(vector.T * matrix * vector)
