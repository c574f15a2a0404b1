"""CholeskySolver (symgen/numerics/triangular.py) against SciPy's LAPACK triangular solve, and
the matrix formulas built on it against mpmath at dimensions past the row-at-a-time range.

Every path is exercised: a row at a time (d <= ROWS_UP_TO), in blocks (d a multiple of
BLOCK_ROWS or not), a factor shared by the batch, right sides that broadcast, and the
lower-triangular promise. The bound is the backward error of a triangular solve: the
residual L X - B within c d eps |L| |X| entrywise (Higham, Accuracy and Stability of
Numerical Algorithms, 2nd ed., Theorem 8.5), which any wrong block, index or transpose
exceeds by orders of magnitude.
"""
from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest
import scipy.linalg

from symgen.numerics import triangular
from symgen.numerics.gaussian import kl_mvn
from symgen.numerics.scores import score_mvn
from symgen.numerics.triangular import CholeskySolver

EPS = np.finfo(np.float64).eps
DIMENSIONS = [1, 5, triangular.ROWS_UP_TO, triangular.ROWS_UP_TO + 1, 24, 29, 64]


def random_factor(rng, batch, d, condition=1e3):
    """Cholesky factors of covariances with eigenvalues spread over ``condition``."""
    q, _ = np.linalg.qr(rng.standard_normal(batch + (d, d)))
    eigenvalues = np.geomspace(1.0, 1.0 / condition, d) * rng.uniform(0.5, 2.0, batch + (d,))
    cov = (q * eigenvalues[..., None, :]) @ np.swapaxes(q, -1, -2)
    return np.linalg.cholesky(0.5 * (cov + np.swapaxes(cov, -1, -2)))


def assert_backward_stable(lower, solution, right_sides):
    residual = np.abs(lower @ solution - right_sides)
    bound = 4 * lower.shape[-1] * EPS * (np.abs(lower) @ np.abs(solution))
    assert np.all(residual <= bound + 1e-300), np.max(residual / (bound + 1e-300))


@pytest.mark.parametrize("d", DIMENSIONS)
def test_forward_and_transposed_solves_match_lapack(d):
    rng = np.random.default_rng(d)
    lower = random_factor(rng, (7,), d)
    right_sides = rng.standard_normal((7, d, 3))
    solver = CholeskySolver(lower)
    assert solver.by_rows == (d <= triangular.ROWS_UP_TO)
    forward, transposed = solver.solve(right_sides), solver.solve_transposed(right_sides)
    for i in range(7):
        want = scipy.linalg.solve_triangular(lower[i], right_sides[i], lower=True)
        np.testing.assert_allclose(forward[i], want, rtol=1e-10, atol=1e-12 * np.max(np.abs(want)))
        want = scipy.linalg.solve_triangular(lower[i], right_sides[i], lower=True, trans="T")
        np.testing.assert_allclose(transposed[i], want, rtol=1e-10, atol=1e-12 * np.max(np.abs(want)))
    assert_backward_stable(lower, forward, right_sides)
    assert_backward_stable(np.swapaxes(lower, -1, -2), transposed, right_sides)


@pytest.mark.parametrize("d", DIMENSIONS)
def test_a_lower_triangular_right_side_gives_a_lower_triangular_solution(d):
    rng = np.random.default_rng(100 + d)
    lower, other = random_factor(rng, (5,), d), random_factor(rng, (5,), d)
    solver = CholeskySolver(lower)
    promised = solver.solve(other, lower_triangular=True)
    assert np.all(np.triu(promised, 1) == 0)
    np.testing.assert_allclose(promised, solver.solve(other), rtol=1e-12, atol=1e-14 * np.max(np.abs(promised)))
    assert_backward_stable(lower, promised, other)


@pytest.mark.parametrize("d", [3, 40])
def test_batch_dimensions_broadcast_and_a_shared_factor_is_solved_with_once(d):
    rng = np.random.default_rng(200 + d)
    lower = random_factor(rng, (2, 1), d)
    right_sides = rng.standard_normal((3, d, 2))          # broadcasts to (2, 3, d, 2)
    solution = CholeskySolver(lower).solve(right_sides)
    assert solution.shape == (2, 3, d, 2)
    assert_backward_stable(lower, solution, right_sides)
    shared = lower[0, 0]
    batched = rng.standard_normal((4, 5, d, 2))
    for solve, matrix in ((CholeskySolver(shared).solve, shared),
                          (CholeskySolver(shared).solve_transposed, shared.T)):
        solution = solve(batched)
        assert solution.shape == batched.shape
        assert_backward_stable(matrix, solution, batched)


def test_float32_factors_solve_in_float32():
    rng = np.random.default_rng(5)
    lower = random_factor(rng, (3,), 24).astype(np.float32)
    solution = CholeskySolver(lower).solve(rng.standard_normal((3, 24, 2)).astype(np.float32))
    assert solution.dtype == np.float32


def test_a_wrong_block_is_caught():
    # The mutant: the blocks' rows subtracted with the wrong sign. The bound refutes it.
    rng = np.random.default_rng(9)
    lower = random_factor(rng, (4,), 24)
    right_sides = rng.standard_normal((4, 24, 2))
    original = triangular._blocks_forward

    def mutant(lower, inverses, right_sides, lower_triangular):
        return original(lower * np.where(np.tri(24, k=-triangular.BLOCK_ROWS), -1, 1), inverses,
                        right_sides, lower_triangular)

    triangular._blocks_forward = mutant
    try:
        wrong = CholeskySolver(lower).solve(right_sides)
    finally:
        triangular._blocks_forward = original
    with pytest.raises(AssertionError):
        assert_backward_stable(lower, wrong, right_sides)


# ------------------------------------------------ kl_mvn and score_mvn past the rows range

def spd(rng, d, condition):
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    cov = (q * np.geomspace(1.0, 1.0 / condition, d)) @ q.T
    return 0.5 * (cov + cov.T)


def mp_kl(loc_p, cov_p, loc_q, cov_q, digits=60):
    with mp.workdps(digits):
        d = len(loc_p)
        sp, sq = mp.matrix(cov_p.tolist()), mp.matrix(cov_q.tolist())
        solved = mp.inverse(sq) * sp
        diff = mp.matrix((loc_q - loc_p).tolist())
        mahalanobis = (diff.T * mp.lu_solve(sq, diff))[0, 0]
        value = (sum(solved[i, i] for i in range(d)) - d + mp.log(mp.det(sq)) - mp.log(mp.det(sp))
                 + mahalanobis) / 2
        return float(value)


@pytest.mark.parametrize("d", [triangular.ROWS_UP_TO + 1, 40])
@pytest.mark.parametrize("closeness", [None, 1e-9], ids=["general", "near-equal"])
def test_kl_mvn_agrees_with_mpmath_in_the_block_range(d, closeness):
    # Condition numbers 100: the bound is 1e-12 relative, as for d <= 6 in
    # tests/test_kl_mvn_numerics.py (the near-equal pairs need 60 digits to resolve).
    rng = np.random.default_rng(d)
    cov_p = spd(rng, d, 100.0)
    cov_q = cov_p * (1 + closeness) if closeness else spd(rng, d, 100.0)
    loc_p = rng.standard_normal(d)
    loc_q = loc_p + (closeness or 1.0) * rng.standard_normal(d)
    got, want = kl_mvn(loc_p, cov_p, loc_q, cov_q), mp_kl(loc_p, cov_p, loc_q, cov_q)
    assert abs(got - want) <= 1e-12 * abs(want), (got, want)


@pytest.mark.parametrize("d", [triangular.ROWS_UP_TO + 1, 40])
@pytest.mark.parametrize("condition", [1e2, 1e8])
def test_score_mvn_agrees_with_mpmath_in_the_block_range(d, condition):
    # The refinement's long-double residual keeps the error near ulps x (1 + cond eps 2^-11).
    rng = np.random.default_rng(int(d + np.log10(condition)))
    cov = spd(rng, d, condition)
    x, loc = 10 * rng.standard_normal(d), rng.standard_normal(d)
    with mp.workdps(60):
        exact = mp.lu_solve(mp.matrix(cov.tolist()), mp.matrix((x - loc).tolist()))
    want = -np.array([float(v) for v in exact])
    error = np.max(np.abs(score_mvn(x, loc, cov) - want)) / np.max(np.abs(want))
    plain = np.max(np.abs(-np.linalg.solve(cov, x - loc) - want)) / np.max(np.abs(want))
    assert error <= max(1e-14, 1e-3 * plain), (error, plain)


@pytest.mark.parametrize("d", [3, 20])
def test_an_empty_batch_gives_an_empty_result(d):
    eye = np.broadcast_to(np.eye(d), (0, d, d))
    assert kl_mvn(np.zeros((0, d)), eye, np.zeros((0, d)), eye).shape == (0,)
    assert score_mvn(np.zeros((0, d)), np.zeros((0, d)), eye).shape == (0, d)
