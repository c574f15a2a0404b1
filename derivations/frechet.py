"""The Fréchet distance between Gaussians: the squared 2-Wasserstein distance, and FID.

The squared 2-Wasserstein distance between two laws is the least expected squared
distance E||x - y||^2 over all couplings (x, y) with those marginals. Between Gaussians
N(loc1, cov1) and N(loc2, cov2) the least cost is attained by the linear map

    T(x) = loc2 + A (x - loc1),   A = cov1^-1/2 (cov1^1/2 cov2 cov1^1/2)^1/2 cov1^-1/2,

which pushes N(loc1, cov1) to N(loc2, cov2) (A cov1 A = cov2) and is the gradient of a
convex function (A is symmetric positive definite), hence optimal (Knott & Smith 1984;
Dowson & Landau 1982 give the resulting distance). Its cost is

    ||loc1 - loc2||^2 + tr(cov1 + cov2 - 2 (cov1^1/2 cov2 cov1^1/2)^1/2).

FID (Heusel et al. 2017) is this distance between Gaussians fitted to Inception features
of real and generated images.

Theory notebook, section 10: the notebook's "FID-style" distance uses
tr(2 diag(sqrt(diag(cov1) diag(cov2)))) for the cross term. That is the closed form only
when the covariances are diagonal (more generally: commute, so that the square root of
the product is the product of the square roots); :func:`diagonal_case` derives it, and
the tests show it wrong for covariances that do not commute.

Proofs. SymPy has no simplifier for square roots of general symbolic matrices (for 2x2
ones the nested radicals do not cancel). So the proofs parametrize the covariances by the
square roots themselves: cov1 = P^2 and cov2 = P^-1 S^2 P^-1 for general symmetric symbolic
P and S, which covers every positive definite pair (P = cov1^1/2, S = (P cov2 P)^1/2), and
turns each step into an identity of rational functions that SymPy proves, at d = 1 and on
full, non-commuting 2x2 matrices (:func:`square_root_parametrization`). Each step is also
checked numerically at 40 digits on general pairs of sizes 1 to 3 (the engine's spot
check), the matrix square roots evaluated by mpmath.

Checks. Neither evaluates the closed form or the square-root formula for the map: the map
is found by Newton's method on A cov1 A = cov2 and certified optimal by Brenier's theorem,
its cost computed from moments (to 60 digits) and by Monte Carlo (see the section below).
"""
from __future__ import annotations

import functools

import mpmath
import numpy as np
import sympy as sp

from symgen.engine import (Controlled, Covariance, Derivation, DiagonalPart, ExplicitMatrices, IdentityCheck,
                           MatrixSqrt, MeanCheck, MvnExpectation, Param, Real, Vector, lazy_module, squared_norm)

# SciPy is loaded when a check first runs, not when the module is imported.
linalg = lazy_module("scipy.linalg")
stats = lazy_module("scipy.stats")

# --- the Fréchet distance ------------------------------------------------------------------

d = sp.Symbol("d", integer=True, positive=True)
loc1, loc2 = sp.MatrixSymbol("loc1", d, 1), sp.MatrixSymbol("loc2", d, 1)
cov1, cov2 = sp.MatrixSymbol("cov1", d, d), sp.MatrixSymbol("cov2", d, d)
x = sp.MatrixSymbol("x", d, 1)

FRECHET_REFERENCES = [
    "Dowson & Landau (1982), The Fréchet distance between multivariate normal distributions, "
    "J. Multivariate Analysis 12",
    "Knott & Smith (1984), On the optimal mapping of distributions, J. Optimization Theory and "
    "Applications 43 (the optimal map between Gaussians)",
    "Heusel et al. (2017), GANs trained by a two time-scale update rule converge to a local Nash "
    "equilibrium (the Fréchet Inception Distance)",
]

COVARIANCE = Covariance(d, semidefinite=True)
root1 = MatrixSqrt(cov1)
cross_root = MatrixSqrt(root1 * cov2 * root1)


def square_root_parametrization(size):
    """Explicit matrices for the proofs: cov1 = P^2 and cov2 = P^-1 S^2 P^-1 with P and S general
    symmetric symbolic matrices, so that cov1^1/2 = P and (cov1^1/2 cov2 cov1^1/2)^1/2 = S.

    Every pair of positive definite covariances is of this form (P = cov1^1/2 and S = (P cov2
    P)^1/2 are positive definite), so an identity of rational functions of the entries of P and
    S, proved by SymPy, holds for every such pair of that size: no square root of a symbolic
    matrix is needed, and P and S, like cov1 and cov2, do not commute."""
    root = Covariance(d).explicit("P", size)
    inverse_root = sp.ImmutableMatrix(root.adjugate(method="berkowitz") / root.det(method="berkowitz"))
    cross = Covariance(d).explicit("S", size)
    return {root1: root, sp.Inverse(root1): inverse_root, cross_root: cross,
            cov1: sp.ImmutableMatrix(root * root),
            cov2: sp.ImmutableMatrix(inverse_root * cross * cross * inverse_root)}


PROOF_MATRICES = ExplicitMatrices(
    "explicit symbolic matrices cov1 = P^2, cov2 = P^-1 S^2 P^-1 with P, S general symmetric "
    "(every positive definite pair)", square_root_parametrization, sizes=(1, 2))

frechet_distance = Derivation(
    "frechet_distance",
    notation={"frechet_distance": r"d_{F}^{2}"},
    sections=(10,),
    title="Squared Fréchet (2-Wasserstein) distance between two Gaussians",
    summary="W2^2(N(loc1, cov1), N(loc2, cov2)); FID is this between Gaussians fitted to features.",
    kind="metric",
    references=FRECHET_REFERENCES,
    params=[
        Param(loc1, Vector(d, Real(-5, 5)), "mean of the first Gaussian, shape (..., d)"),
        Param(cov1, COVARIANCE,
              "covariance of the first Gaussian, shape (..., d, d), symmetric positive semi-definite"),
        Param(loc2, Vector(d, Real(-5, 5)), "mean of the second Gaussian, shape (..., d)"),
        Param(cov2, COVARIANCE,
              "covariance of the second Gaussian, shape (..., d, d), symmetric positive semi-definite"),
    ],
    # Near-equal Gaussians (a good generator) are where tr(cov1 + cov2 - 2 ...) cancels.
    near=[(cov2, cov1), (loc2, loc1)],
    dimensions={d: (1, 4)},
    implementation="symgen.numerics.frechet:frechet_distance",
    returns="the squared distance >= 0, with the broadcast batch shape of the arguments",
    explicit_matrices=PROOF_MATRICES,
)

transport = sp.Inverse(root1) * cross_root * sp.Inverse(root1)       # A, symmetric
displacement = x - (loc2 + transport * (x - loc1))                    # x - T(x)

chain = frechet_distance.define(
    MvnExpectation(squared_norm(displacement), x, loc1, cov1),
    "definition: W2^2 is the cost E||x - T(x)||^2, x ~ N(loc1, cov1), of the optimal coupling, "
    "given by the map T(x) = loc2 + A (x - loc1) with A = cov1^-1/2 (cov1^1/2 cov2 cov1^1/2)^1/2 "
    "cov1^-1/2 (Knott & Smith 1984)")
chain.step(
    squared_norm(loc1 - loc2)
    + sp.Trace(cov1 - transport * cov1 - cov1 * transport.T + transport * cov1 * transport.T),
    "x - T(x) = (I - A)(x - loc1) + (loc1 - loc2) has mean loc1 - loc2 and covariance "
    "(I - A) cov1 (I - A)^T, expanded; E||y||^2 = ||E y||^2 + tr Cov y")
chain.step(
    squared_norm(loc1 - loc2) + sp.Trace(cov1) - 2 * sp.Trace(transport * cov1)
    + sp.Trace(transport * cov1 * transport.T),
    "expand the product; A is symmetric, so tr(A cov1) = tr(cov1 A^T)")
chain.step(
    squared_norm(loc1 - loc2) + sp.Trace(cov1 + cov2 - 2 * cross_root),
    "A cov1 A = cov1^-1/2 (cov1^1/2 cov2 cov1^1/2) cov1^-1/2 = cov2 (T pushes N(loc1, cov1) to "
    "N(loc2, cov2)), and tr(A cov1) = tr(cov1^-1/2 S cov1^1/2) = tr S by cyclicity, "
    "S = (cov1^1/2 cov2 cov1^1/2)^1/2: the closed form")


# --- empirical checks: an optimality certificate, and the cost by Monte Carlo -----------------
#
# Neither check evaluates the closed form or the square-root formula for the map. A map
# T(x) = loc2 + A (x - loc1) with A symmetric positive semi-definite is the gradient of the
# convex function x -> loc2^T x + (x - loc1)^T A (x - loc1) / 2; if it pushes N(loc1, cov1) to
# N(loc2, cov2), which for a linear map means A cov1 A = cov2, it is an optimal transport map
# (Brenier 1991, Polar factorization and monotone rearrangement, Theorem 1.1: the gradient of a
# convex function is optimal for the quadratic cost; Knott & Smith 1984 for linear maps). Its
# cost is then the distance. So the check finds A by Newton's method on the Riccati equation
# A cov1 A = cov2 (no matrix square root is taken), verifies the certificate at 60 digits
# (A symmetric, positive definite by a Cholesky factorisation, the residual of the equation
# negligible) and only then evaluates the cost E||x - T(x)||^2 from the first two moments of
# x - T(x): ||loc1 - loc2||^2 + tr((I - A) cov1 (I - A)).

CERTIFICATE_DIGITS = 60
# Newton's iterates decrease monotonically to the solution after the first step (the map
# A -> A cov1 A is convex in the Loewner order) and converge quadratically near it; from a
# scaled identity, eigenvalue ratios of 1e8 take ~20 steps. This many means it did not converge.
NEWTON_STEPS = 200


def _mp_matrix(array):
    return mpmath.matrix([[mpmath.mpf(float(v)) for v in row] for row in np.atleast_2d(array)])


def _solve_lyapunov(m, right):
    """X with X m + m^T X = right (d^2 unknowns; d <= 4 here), at the working precision."""
    size = m.rows
    system = mpmath.zeros(size * size, size * size)
    for i in range(size):
        for j in range(size):
            row = i * size + j
            for k in range(size):
                system[row, i * size + k] += m[k, j]      # (X m)_ij = sum_k X_ik m_kj
                system[row, k * size + j] += m[k, i]      # (m^T X)_ij = sum_k m_ki X_kj
    flat = mpmath.lu_solve(system, mpmath.matrix([right[i, j] for i in range(size) for j in range(size)]))
    solution = mpmath.matrix(size, size)
    for i in range(size):
        for j in range(size):
            solution[i, j] = flat[i * size + j]
    return (solution + solution.T) / 2


def _float64_start(cov1, cov2):
    """Newton's iterates in float64 (scipy's Sylvester solver), to within rounding of A."""
    first, second = (np.array(c.tolist(), dtype=np.float64) for c in (cov1, cov2))
    transport = np.eye(len(first)) * np.sqrt(np.trace(second) / np.trace(first))
    for _ in range(NEWTON_STEPS):
        slope = first @ transport
        following = linalg.solve_sylvester(slope.T, slope, transport @ first @ transport + second)
        following = (following + following.T) / 2
        if np.allclose(following, transport, rtol=1e-14, atol=0):
            return following
        transport = following
    return transport


def riccati_transport(cov1, cov2):
    """The symmetric positive definite A with A cov1 A = cov2 (mpmath matrices, cov1 positive
    definite), by Newton's method: A' solves A' cov1 A + A cov1 A' = A cov1 A + cov2. The
    float64 iterates come first; from their last, each step at full precision doubles the
    correct digits."""
    transport = _mp_matrix(_float64_start(cov1, cov2))
    tolerance = mpmath.mpf(10) ** (10 - CERTIFICATE_DIGITS) * mpmath.mnorm(cov2, 1)
    for _ in range(NEWTON_STEPS):
        transport = _solve_lyapunov(cov1 * transport, transport * cov1 * transport + cov2)
        if mpmath.mnorm(transport * cov1 * transport - cov2, 1) <= tolerance:
            return transport
    raise ArithmeticError("Newton's method on A cov1 A = cov2 did not converge")


def _positive_definite(matrix) -> bool:
    try:
        mpmath.cholesky(matrix)
    except ValueError:
        return False
    return True


@functools.lru_cache(maxsize=64)
def _certificate(loc1, cov1, loc2, cov2, size):
    first, second = (_mp_matrix(np.frombuffer(c).reshape(size, size)) for c in (cov1, cov2))
    if not (_positive_definite(first) and _positive_definite(second)):
        # A singular target makes A singular, where Newton's method converges only linearly;
        # the checks' domain draws eigenvalues in [1e-2, 1e2].
        raise ValueError("the certificate needs positive definite covariances")
    transport = riccati_transport(first, second)
    residual = mpmath.mnorm(transport * first * transport - second, 1)
    if not (transport == transport.T and _positive_definite(transport)
            and residual <= mpmath.mpf(10) ** (10 - CERTIFICATE_DIGITS) * mpmath.mnorm(second, 1)):
        raise ArithmeticError("the candidate map is not certified optimal")
    gap = mpmath.eye(size) - transport                                 # x - T(x) = gap (x - loc1) + shift
    shift = _mp_matrix(np.frombuffer(loc1)[None]) - _mp_matrix(np.frombuffer(loc2)[None])
    cost = (shift * shift.T)[0, 0] + sum((gap * first * gap)[i, i] for i in range(size))
    return cost, gap, first, shift


def certified_transport(loc1, cov1, loc2, cov2):
    """(cost, I - A, source covariance, source mean - target mean) of the certified optimal map,
    at 60 digits (mpmath): see above."""
    arrays = [np.ascontiguousarray(np.atleast_1d(a), dtype=np.float64) for a in (loc1, cov1, loc2, cov2)]
    with mpmath.workdps(CERTIFICATE_DIGITS):
        return _certificate(*(a.tobytes() for a in arrays), arrays[0].size)


def certified_cost(loc1, cov1, loc2, cov2):
    """E||x - T(x)||^2 of the map certified optimal by Brenier's theorem."""
    return certified_transport(loc1, cov1, loc2, cov2)[0]


def _strictly_inside_unit_interval(rng, n):
    # (k + 1/2) / 2^53 never hits 0 or 1, where the quantile function is infinite.
    return (rng.integers(0, 2**53, n) + 0.5) / 2.0**53


def sample_coupling_cost(rng, n, loc1, cov1, loc2, cov2):
    """||x - T(x)||^2 for draws x of the source law under the certified optimal map (1-D:
    the quantile coupling x = F1^-1(u), y = F2^-1(u) for a common uniform u, by scipy's
    normal quantiles). The gap I - A comes from the 60-digit certificate, so near-equal
    Gaussians (A close to I) lose nothing to cancellation."""
    if np.size(loc1) == 1:
        u = _strictly_inside_unit_interval(rng, n)
        first = stats.norm.ppf(u, float(np.ravel(loc1)[0]), float(np.sqrt(np.ravel(cov1)[0])))
        second = stats.norm.ppf(u, float(np.ravel(loc2)[0]), float(np.sqrt(np.ravel(cov2)[0])))
        # Phi^-1(u) is a standard normal: its Hermite polynomials are control variates.
        return Controlled((first - second) ** 2, stats.norm.ppf(u))
    gap, source, shift = (np.array(part.tolist(), dtype=np.float64)
                          for part in certified_transport(loc1, cov1, loc2, cov2)[1:])
    size = gap.shape[0]
    normals = rng.standard_normal((n, size))
    centred = normals @ np.linalg.cholesky(source).T
    return Controlled(np.sum((centred @ gap.T + shift.ravel()) ** 2, axis=1), normals)


def scipy_sqrtm_distance(loc1, cov1, loc2, cov2):
    """The closed form through scipy.linalg.sqrtm (a Schur-form square root), the textbook
    route: a comparison for tests and benchmarks, not a check."""
    root = linalg.sqrtm(cov1)
    cross = linalg.sqrtm(root @ cov2 @ root)
    difference = np.atleast_1d(loc1 - loc2)
    return float(difference @ difference + np.trace(cov1 + cov2 - 2 * np.real(cross)))


# The certificate's cost is exact to ~50 digits, so the tolerance is the shipped function's
# own accuracy contract with room (1e-12 claimed), relative everywhere: a distance of 1e-20
# between near-equal Gaussians must be right to 1e-10 of itself, not to an absolute floor.
frechet_distance.add_check(IdentityCheck(
    certified_cost, "the cost of a map certified optimal by Brenier's theorem (Newton on A cov1 A = cov2, "
    "60 digits)", rtol=1e-10))
# The cost is a quadratic in the normals the draws are built from, so their Hermite control
# variates leave only rounding: 100,000 draws resolve a relative error of ~1e-12.
frechet_distance.add_check(MeanCheck(
    sample_coupling_cost, "E||x - T(x)||^2 under the certified optimal map (1-D: quantile coupling) by "
    "Monte Carlo", samples=100_000))

# --- the usual slips ---------------------------------------------------------------------------

# ||loc1 - loc2||^2 as `symgen check` reads it; sqrtm(A) = A^1/2 and diagpart(A) = diag(diag(A)).
MEAN_TERM = "trace((loc1 - loc2).T*(loc1 - loc2))"
frechet_distance.add_slip(
    f"{MEAN_TERM} + trace(cov1 + cov2 - 2*sqrtm(diagpart(cov1))*sqrtm(diagpart(cov2)))",
    "the theory notebook's diagonal formula (section 10): the closed form only for commuting covariances")
frechet_distance.add_slip(
    f"{MEAN_TERM} + trace(cov1 + cov2 - sqrtm(sqrtm(cov1)*cov2*sqrtm(cov1)))",
    "the factor 2 on the cross term lost")


# --- the notebook's diagonal formula: the commuting case ---------------------------------------


def diagonal_case():
    """The notebook's diagonal formula as the commuting case: for diagonal covariances
    (d = 1, 2, 3, explicit symbols) the closed form equals
    ||loc1 - loc2||^2 + sum_i (sqrt(cov1_ii) - sqrt(cov2_ii))^2; returns the proved pairs."""
    proved = []
    for size in (1, 2, 3):
        variances1 = sp.symbols(f"v1_1:{size + 1}", positive=True)
        variances2 = sp.symbols(f"v2_1:{size + 1}", positive=True)
        means1 = sp.ImmutableMatrix(sp.symbols(f"m1_1:{size + 1}", real=True))
        means2 = sp.ImmutableMatrix(sp.symbols(f"m2_1:{size + 1}", real=True))
        substitution = {cov1: sp.ImmutableMatrix(sp.diag(*variances1)),
                        cov2: sp.ImmutableMatrix(sp.diag(*variances2)),
                        loc1: means1, loc2: means2, d: size}
        closed = frechet_distance.output().closed_form.xreplace(substitution).doit()
        diagonal = (sum((m1 - m2) ** 2 for m1, m2 in zip(means1, means2))
                    + sum((sp.sqrt(v1) - sp.sqrt(v2)) ** 2 for v1, v2 in zip(variances1, variances2)))
        if sp.simplify(sp.expand(closed - diagonal)) != 0:
            raise AssertionError(f"the diagonal formula is not the closed form for d = {size}")
        proved.append((closed, diagonal))
    return proved


def notebook_diagonal_formula():
    """Section 10's formula in the derivation's symbols (a candidate for ``symgen.check``):
    the cross term 2 tr(diag(sqrt(diag(cov1) diag(cov2))))."""
    return squared_norm(loc1 - loc2) + sp.Trace(
        cov1 + cov2 - 2 * MatrixSqrt(DiagonalPart(cov1)) * MatrixSqrt(DiagonalPart(cov2)))


# --- the finite-sample bias of the mean term ---------------------------------------------------

n1, n2 = sp.symbols("n1 n2", positive=True, integer=True)
difference_of_means = sp.MatrixSymbol("v", d, 1)


def mean_term_bias():
    """E||mean1 - mean2||^2 for the sample means of n1 and n2 independent draws from
    N(loc1, cov1) and N(loc2, cov2): ||loc1 - loc2||^2 + tr(cov1)/n1 + tr(cov2)/n2.

    The difference of the sample means is N(loc1 - loc2, cov1/n1 + cov2/n2); SymPy takes
    the expectation of its squared norm from those moments, on explicit general symmetric
    matrices for d = 1, 2, 3. Returns (expectation, closed form) for each d, proved equal.
    """
    expectation = MvnExpectation(squared_norm(difference_of_means), difference_of_means,
                                 loc1 - loc2, cov1 / n1 + cov2 / n2)
    closed = squared_norm(loc1 - loc2) + sp.Trace(cov1) / n1 + sp.Trace(cov2) / n2
    proved = []
    for size in (1, 2, 3):
        substitution = {d: size, loc1: Vector(d).explicit("loc1", size),
                        loc2: Vector(d).explicit("loc2", size),
                        cov1: Covariance(d).explicit("cov1", size), cov2: Covariance(d).explicit("cov2", size)}
        left = expectation.xreplace(substitution).doit()
        right = closed.xreplace(substitution).doit()
        if sp.simplify(sp.expand(left - right)) != 0:
            raise AssertionError(f"the mean-term bias is not proved for d = {size}")
        proved.append((left, right))
    return expectation, closed, proved
