"""Solves with batches of Cholesky factors, in NumPy only.

NumPy has no batched triangular solve: ``np.linalg.solve`` would factor the triangular
factor again (an LU of it: 0.90 s for 10^4 systems at d = 64, where their Cholesky
factorization took 0.22 s). :class:`CholeskySolver` substitutes across the whole batch
instead: a row at a time for small d, and for larger d in blocks of rows, each block's
diagonal triangle inverted once (one batched ``np.linalg.inv``) and the rows already
solved subtracted by batched matrix products (BLAS). That is the blocked substitution of
LAPACK's own triangular solves with the diagonal blocks inverted beforehand, as batched
GPU solvers do; its error is a few ulps times the condition number of L, as the
row-at-a-time solve's. A factor shared by the whole batch is solved with once, the batch
folded into right-hand sides.

Batch 10^4, one thread, one solve with a triangular right side of d columns and one with
a vector (what ``kl_mvn`` needs): d = 8, a row at a time 6.1 ms (LU 12.9); d = 24, in
blocks 93 ms (a row at a time 143, LU 129); d = 64, in blocks 529 ms (LU 992).
"""
from __future__ import annotations

import numpy as np

#: Up to this dimension a row at a time across the batch; beyond it in blocks.
ROWS_UP_TO = 16
#: Rows per block: triangles of 8 rows invert at ~1 us each, of 16 rows at ~5 us, which at
#: d = 64 costs more than the fewer, larger products save (600 against 529 ms).
BLOCK_ROWS = 8


class CholeskySolver:
    """Solves ``L X = B`` and ``L^T X = B`` for lower-triangular factors ``L`` (..., d, d) with
    a positive diagonal and right sides ``B`` (..., d, m); batch dimensions broadcast.
    What the blocked solves need of ``L`` is computed once, on first use."""

    def __init__(self, lower: np.ndarray):
        self.lower = lower
        self.shared = lower.ndim == 2
        self.by_rows = not self.shared and lower.shape[-1] <= ROWS_UP_TO
        self._inverses = None

    def _rows_for(self, right_sides):
        # One column is solved a row at a time at any d: the row steps are then cheap
        # (d = 64, batch 10^4: 62 ms forward, 90 ms backward), and inverting the diagonal
        # blocks (116 ms) would cost more than it saves.
        return self.by_rows or right_sides.shape[-1] == 1

    def _blocks(self):
        if self._inverses is None:
            self._inverses = _inverted_diagonal_blocks(self.lower)
        return self._inverses

    def solve(self, right_sides: np.ndarray, lower_triangular: bool = False) -> np.ndarray:
        """``L^-1 B``. ``lower_triangular=True`` promises a ``B`` that is zero above the
        diagonal; then so is the solution, and only its lower part is computed."""
        if self.shared:
            return _solve_shared(self.lower, right_sides)
        if self._rows_for(right_sides):
            return _rows_forward(self.lower, right_sides)
        return _blocks_forward(self.lower, self._blocks(), right_sides, lower_triangular)

    def solve_transposed(self, right_sides: np.ndarray) -> np.ndarray:
        """``L^-T B``."""
        if self.shared:
            return _solve_shared(self.lower.T, right_sides)
        if self._rows_for(right_sides):
            return _rows_backward(self.lower, right_sides)
        return _blocks_backward(self.lower, self._blocks(), right_sides)


def _solution(lower, right_sides, zeros=False):
    shape = np.broadcast_shapes(lower.shape[:-2], right_sides.shape[:-2]) + right_sides.shape[-2:]
    dtype = np.result_type(lower, right_sides)
    return np.zeros(shape, dtype) if zeros else np.empty(shape, dtype)


def _solve_shared(matrix, right_sides):
    """One triangular matrix for the whole batch: its batch folded into right-hand-side
    columns, so LAPACK factors it once instead of once per batch entry."""
    if right_sides.ndim == 2:
        return np.linalg.solve(matrix, right_sides)
    d, columns = right_sides.shape[-2:]
    folded = np.moveaxis(right_sides, -2, 0).reshape(d, -1)
    solved = np.linalg.solve(matrix, folded).reshape((d,) + right_sides.shape[:-2] + (columns,))
    return np.moveaxis(solved, 0, -2)


def _rows_forward(lower, right_sides):
    """Row i of X is (row i of B - L[i, :i] X[:i]) / L[i, i], each step for every batch entry
    at once (the order of LAPACK's trsv: backward stable)."""
    solution = _solution(lower, right_sides)
    for i in range(lower.shape[-1]):
        row = right_sides[..., i, :]
        if i:
            row = row - np.einsum("...j,...jk->...k", lower[..., i, :i], solution[..., :i, :])
        solution[..., i, :] = row / lower[..., i, i, None]
    return solution


def _rows_backward(lower, right_sides):
    """``L^T X = B`` from the last row up: X[i] = B'[i] / L[i, i], then B'[:i] -= L[i, :i]^T X[i]
    (row i of L, read contiguously; a column of L would be read with a stride)."""
    solution = _solution(lower, right_sides)
    solution[...] = right_sides
    for i in range(lower.shape[-1] - 1, -1, -1):
        solution[..., i, :] /= lower[..., i, i, None]
        if i:
            solution[..., :i, :] -= lower[..., i, :i, None] * solution[..., i, None, :]
    return solution


def _inverted_diagonal_blocks(lower):
    """The inverses of the triangles of BLOCK_ROWS rows on the diagonal of ``lower``, from
    one batched LAPACK call (the last block is shorter when d is not a multiple)."""
    d = lower.shape[-1]
    full = range(0, d - d % BLOCK_ROWS, BLOCK_ROWS)
    stacked = np.stack([lower[..., k:k + BLOCK_ROWS, k:k + BLOCK_ROWS] for k in full], axis=-3)
    # The inverse of a lower triangle is lower triangular: what LAPACK leaves above the
    # diagonal is rounding noise, zeroed so that triangular right sides stay triangular.
    inverted = np.tril(np.linalg.inv(stacked))
    inverses = [inverted[..., i, :, :] for i in range(len(full))]
    if d % BLOCK_ROWS:
        rest = d - d % BLOCK_ROWS
        inverses.append(np.tril(np.linalg.inv(lower[..., rest:, rest:])))
    return inverses


def _blocks_forward(lower, inverses, right_sides, lower_triangular):
    """Rows k:e of X are L_kk^-1 (B[k:e] - L[k:e, :k] X[:k]). A right side zero above the
    diagonal keeps the solution so, and then X[:k] is zero past column k: the product needs
    only the first e columns (half the work)."""
    solution = _solution(lower, right_sides, zeros=lower_triangular)
    for inverse, k in zip(inverses, range(0, lower.shape[-1], BLOCK_ROWS)):
        e = k + inverse.shape[-1]
        columns = slice(0, e) if lower_triangular else slice(None)
        block = right_sides[..., k:e, columns]
        if k:
            block = block - lower[..., k:e, :k] @ solution[..., :k, columns]
        solution[..., k:e, columns] = inverse @ block
    return solution


def _blocks_backward(lower, inverses, right_sides):
    """``L^T X = B`` by blocks from the last up: rows k:e of X are L_kk^-T (B[k:e] -
    L[e:, k:e]^T X[e:])."""
    d = lower.shape[-1]
    solution = _solution(lower, right_sides)
    starts = list(range(0, d, BLOCK_ROWS))
    for inverse, k in zip(reversed(inverses), reversed(starts)):
        e = k + inverse.shape[-1]
        block = right_sides[..., k:e, :]
        if e < d:
            block = block - np.swapaxes(lower[..., e:, k:e], -1, -2) @ solution[..., e:, :]
        solution[..., k:e, :] = np.swapaxes(inverse, -1, -2) @ block
    return solution
