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
ones the nested radicals do not cancel), so each step is proved symbolically on a
general 1x1 covariance pair and on diagonal (commuting) 2x2 and 3x3 pairs, and checked
numerically at 40 digits on general, non-commuting pairs of sizes 1 to 3 (the engine's
spot check), where the matrix square roots are evaluated by mpmath.
"""
from __future__ import annotations


import numpy as np
import sympy as sp

from symgen.engine import (Covariance, Derivation, DiagonalPart, IdentityCheck, MatrixSqrt, MeanCheck,
                           MvnExpectation, Param, Real, Vector, lazy_module, squared_norm)

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

# Drawn, validated and spot-checked in full; the proofs' explicit symbolic covariances are
# general at d = 1 and diagonal beyond (nested square roots of general symbolic matrices do not
# simplify: see the module docstring).
COVARIANCE = Covariance(d, explicit_form="diagonal", semidefinite=True)

frechet_distance = Derivation(
    "frechet_distance",
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
)
root1 = MatrixSqrt(cov1)
cross_root = MatrixSqrt(root1 * cov2 * root1)
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


# --- empirical checks ------------------------------------------------------------------------


def scipy_sqrtm_distance(loc1, cov1, loc2, cov2):
    """The closed form through scipy.linalg.sqrtm (a Schur-form square root), the textbook route."""
    root = linalg.sqrtm(cov1)
    cross = linalg.sqrtm(root @ cov2 @ root)
    difference = np.atleast_1d(loc1 - loc2)
    return float(difference @ difference + np.trace(cov1 + cov2 - 2 * np.real(cross)))


def _strictly_inside_unit_interval(rng, n):
    # (k + 1/2) / 2^53 never hits 0 or 1, where the quantile function is infinite.
    return (rng.integers(0, 2**53, n) + 0.5) / 2.0**53


def sample_coupling_cost(rng, n, loc1, cov1, loc2, cov2):
    """||x - y||^2 for draws of the optimal coupling. In 1-D the quantile coupling
    x = F1^-1(u), y = F2^-1(u) for a common uniform u (scipy's normal quantiles: no closed
    form of the distance is used); for d > 1 the map T built with scipy.linalg.sqrtm."""
    if np.size(loc1) == 1:
        u = _strictly_inside_unit_interval(rng, n)
        first = stats.norm.ppf(u, float(np.ravel(loc1)[0]), float(np.sqrt(np.ravel(cov1)[0])))
        second = stats.norm.ppf(u, float(np.ravel(loc2)[0]), float(np.sqrt(np.ravel(cov2)[0])))
        return (first - second) ** 2
    root = np.real(linalg.sqrtm(cov1))
    inverse_root = np.linalg.inv(root)
    transport_map = inverse_root @ np.real(linalg.sqrtm(root @ cov2 @ root)) @ inverse_root
    draws = stats.multivariate_normal(loc1, cov1).rvs(n, random_state=rng).reshape(n, -1)
    images = loc2 + (draws - loc1) @ transport_map.T
    return np.sum((draws - images) ** 2, axis=1)


# scipy's sqrtm route loses ~ulps x ||cov|| / sqrt(smallest eigenvalue) in the trace
# (eigenvalues down to 1e-4 of products of covariances with entries up to 1e2: ~1e-10);
# the absolute floor covers that, and near-equal pairs, where the route cancels.
frechet_distance.add_check(IdentityCheck(
    scipy_sqrtm_distance, "the closed form via scipy.linalg.sqrtm", rtol=1e-9, atol=1e-8))
frechet_distance.add_check(MeanCheck(
    sample_coupling_cost, "E||x - y||^2 under the optimal coupling (1-D: quantile coupling) by Monte Carlo",
    samples=400_000))

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
