"""The Fréchet distance between Gaussians, in NumPy only (``from symgen import frechet_distance``).

    d^2 = ||mu_1 - mu_2||^2 + tr(Sigma_1 + Sigma_2 - 2 (Sigma_1^1/2 Sigma_2 Sigma_1^1/2)^1/2),

the squared 2-Wasserstein distance between N(mu_1, Sigma_1) and N(mu_2, Sigma_2) (Dowson &
Landau 1982), which FID evaluates on Inception features (Heusel et al. 2017).

No square root of a non-symmetric product is ever formed (``scipy.linalg.sqrtm(Sigma_1 @
Sigma_2)`` goes through a complex Schur form, returns complex noise for nearly singular
covariances and takes ~30x longer at d = 2048). With Sigma_1 = B B^T (a Cholesky factor, or
V diag(sqrt(w)) for a singular Sigma_1), the symmetric matrix B^T Sigma_2 B has the
eigenvalues of Sigma_1^1/2 Sigma_2 Sigma_1^1/2, so the trace of the square root is the sum
of the square roots of the eigenvalues of a symmetric positive semi-definite matrix: real,
and clamped at 0 where rounding makes a zero eigenvalue negative.
"""
from __future__ import annotations

import numpy as np

from symgen.numerics.validate import broadcast_shape, check_finite, check_symmetric, fail, float_dtype

# A covariance is positive semi-definite when its smallest eigenvalue is above
# -PSD_RTOL x its largest: the eigenvalues of a rounded PSD matrix are off by a few ulps
# of its norm, far below this.
PSD_RTOL = 1e-10
# The direct route's rounding error is a few ulps of tr(Sigma_1) + tr(Sigma_2) (times d);
# where the covariance term is below this fraction of that, the difference route takes over.
STABLE_ROUTE_FRACTION = 0.05
# The chord refinement converges in 2-4 steps for nearly equal covariances; near a singular
# square root (outside the tested domain) it slows, and stops here (then the direct value
# stands unless the equation is solved to rounding).
CHORD_STEPS = 60


def frechet_distance(loc1, cov1, loc2, cov2, *, validate=True, function="frechet_distance"):
    r"""Squared Fréchet (2-Wasserstein) distance between N(loc1, cov1) and N(loc2, cov2).

    .. math::

        \lVert\mu_1-\mu_2\rVert^2 + \operatorname{tr}\bigl(\Sigma_1+\Sigma_2
        - 2(\Sigma_1^{1/2}\Sigma_2\Sigma_1^{1/2})^{1/2}\bigr)

    Shapes: ``loc*`` is ``(..., d)``, ``cov*`` is ``(..., d, d)``; batch dimensions
    broadcast NumPy-style. Covariances must be symmetric positive semi-definite
    (singular ones, such as sample covariances of fewer than d points, are allowed).
    Computed in float64; float32 arguments give a float32 result.

    Method. The mean term is a sum of squares. The covariance term
    c = tr S1 + tr S2 - 2 sum sqrt(eig(B^T S2 B)), S1 = B B^T, is computed directly
    unless it is a small fraction of tr S1 + tr S2 (nearly equal covariances), where
    that difference cancels. There, with S1 = V W V^T, the exact difference
    D = S2 - S1 and X = (S1^1/2 S2 S1^1/2)^1/2 - S1 (small and symmetric), X solves
    S1 X + X S1 + X^2 = S1^1/2 D S1^1/2 (an eigendecomposition start refined by chord steps),
    and c = tr(S1^-1 X^2), a sum of non-negative terms with no cancellation.
    """
    arrays = [np.asarray(a) for a in (loc1, cov1, loc2, cov2)]
    dtype = float_dtype(*arrays)
    loc1, cov1, loc2, cov2 = (a.astype(np.float64, copy=False) for a in arrays)
    if validate:
        _check_arguments(function, loc1, cov1, loc2, cov2)
    batch = np.broadcast_shapes(loc1.shape[:-1], cov1.shape[:-2], loc2.shape[:-1], cov2.shape[:-2])
    d = loc1.shape[-1]
    cov1 = np.broadcast_to(cov1, batch + (d, d))
    cov2 = np.broadcast_to(cov2, batch + (d, d))
    if validate:
        _check_positive_semidefinite(function, "cov2", cov2)
    factor = _half_factor(function, cov1, validate)
    whitened = np.swapaxes(factor, -1, -2) @ cov2 @ factor
    eigenvalues = np.linalg.eigvalsh(0.5 * (whitened + np.swapaxes(whitened, -1, -2)))
    trace_sqrt = np.sum(np.sqrt(np.maximum(eigenvalues, 0.0)), axis=-1)
    traces = np.trace(cov1, axis1=-2, axis2=-1) + np.trace(cov2, axis1=-2, axis2=-1)
    covariance_term = np.array(traces - 2.0 * trace_sqrt)
    cancels = covariance_term < STABLE_ROUTE_FRACTION * traces
    if np.any(cancels):
        covariance_term[cancels] = _difference_route(cov1[cancels], cov2[cancels],
                                                     covariance_term[cancels])
    difference = loc1 - loc2
    mean_term = np.einsum("...i,...i->...", difference, difference)
    # Rounding may leave a zero covariance term a few ulps negative: a distance is not.
    return (mean_term + np.maximum(covariance_term, 0.0)).astype(dtype)[()]


def _check_arguments(function, loc1, cov1, loc2, cov2):
    for name, loc in (("loc1", loc1), ("loc2", loc2)):
        if loc.ndim < 1:
            raise fail(function, name, f"must have shape (..., d), got shape {loc.shape}")
    for name, cov in (("cov1", cov1), ("cov2", cov2)):
        if cov.ndim < 2 or cov.shape[-1] != cov.shape[-2]:
            raise fail(function, name, f"must have shape (..., d, d), got shape {cov.shape}")
    d = loc1.shape[-1]
    for name, size in (("cov1", cov1.shape[-1]), ("loc2", loc2.shape[-1]), ("cov2", cov2.shape[-1])):
        if size != d:
            raise fail(function, name, f"has dimension d = {size}, but loc1 has d = {d}")
    broadcast_shape(function, {"loc1": loc1.shape[:-1], "cov1": cov1.shape[:-2],
                               "loc2": loc2.shape[:-1], "cov2": cov2.shape[:-2]})
    for name, array in (("loc1", loc1), ("cov1", cov1), ("loc2", loc2), ("cov2", cov2)):
        check_finite(function, name, array)
    check_symmetric(function, "cov1", cov1)
    check_symmetric(function, "cov2", cov2)


def _semidefinite_failure(function, name, eigenvalues):
    scale = np.max(np.abs(eigenvalues), axis=-1)
    smallest = np.min(eigenvalues, axis=-1)
    bad = smallest < -PSD_RTOL * scale
    if np.any(bad):
        worst = float(np.min(smallest[bad]))
        return fail(function, name, f"must be positive semi-definite, has eigenvalue {worst:.6g}")
    return None


def _check_positive_semidefinite(function, name, cov):
    try:
        np.linalg.cholesky(cov)   # positive definite: cheap, and the common case
    except np.linalg.LinAlgError:
        error = _semidefinite_failure(function, name, np.linalg.eigvalsh(cov))
        if error is not None:
            raise error from None


def _half_factor(function, cov, validate):
    """B with B B^T = cov: the Cholesky factor, or V diag(sqrt(w)) when cov is singular."""
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        eigenvalues, vectors = np.linalg.eigh(cov)
        if validate:
            error = _semidefinite_failure(function, "cov1", eigenvalues)
            if error is not None:
                raise error from None
        return vectors * np.sqrt(np.maximum(eigenvalues, 0.0))[..., None, :]


def _difference_route(cov1, cov2, direct):
    """The covariance term of each (cov1, cov2) pair from the exact difference cov2 - cov1."""
    # A diverging refinement (caught below) may overflow on its way: not an error here.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return _difference_route_unchecked(cov1, cov2, direct)


def _difference_route_unchecked(cov1, cov2, direct):
    # The distance is symmetric: expand around the covariance with the larger smallest
    # diagonal entry (a cheap proxy for the better conditioned one), since the result
    # divides by its eigenvalues.
    diagonal1, diagonal2 = np.diagonal(cov1, axis1=-2, axis2=-1), np.diagonal(cov2, axis1=-2, axis2=-1)
    swap = diagonal2.min(axis=-1) / diagonal2.max(axis=-1) > diagonal1.min(axis=-1) / diagonal1.max(axis=-1)
    base = np.where(swap[..., None, None], cov2, cov1)
    other = np.where(swap[..., None, None], cov1, cov2)
    eigenvalues, vectors = np.linalg.eigh(base)
    result = np.array(direct, dtype=np.float64)
    usable = eigenvalues[..., 0] > 0
    if not np.any(usable):
        return result
    eigenvalues, vectors = eigenvalues[usable], vectors[usable]
    # Exact where the covariances agree to within a factor 2 (Sterbenz).
    difference = other[usable] - base[usable]
    roots = np.sqrt(eigenvalues)
    rotated = np.swapaxes(vectors, -1, -2) @ difference @ vectors
    right_side = roots[..., :, None] * rotated * roots[..., None, :]   # W^1/2 (V^T D V) W^1/2
    right_side = 0.5 * (right_side + np.swapaxes(right_side, -1, -2))
    sums = eigenvalues[..., :, None] + eigenvalues[..., None, :]
    # Start from the square root by eigendecomposition, R0 = (W^2 + E)^1/2 in V's basis:
    # within ulps x ||W||^2 / r of the answer. Then refine X = R - W to full relative
    # accuracy by the chord method (Newton with R0 kept as the derivative's coefficient:
    # solve R0 H + H R0 = -F(X) for F(X) = W X + X W + X^2 - E), which costs products only
    # and gains ~-log10(error / r) digits per step.
    square = _diagonal_matrix(eigenvalues**2) + right_side
    squared_roots, basis = np.linalg.eigh(0.5 * (square + np.swapaxes(square, -1, -2)))
    roots = np.sqrt(np.maximum(squared_roots, 0.0))
    solution = (basis * roots[..., None, :]) @ np.swapaxes(basis, -1, -2) - _diagonal_matrix(eigenvalues)
    # R0 is positive semi-definite; a floor keeps a singular one from dividing by 0.
    roots = np.maximum(roots, 1e-16 * roots.max(axis=-1, keepdims=True))
    denominators = roots[..., :, None] + roots[..., None, :]
    previous = np.full(solution.shape[:-2], np.inf)
    for _ in range(CHORD_STEPS):
        residual = sums * solution + solution @ solution - right_side
        step = -basis @ ((np.swapaxes(basis, -1, -2) @ residual @ basis) / denominators) @ np.swapaxes(basis, -1, -2)
        step = 0.5 * (step + np.swapaxes(step, -1, -2))
        finite = np.all(np.isfinite(step), axis=(-2, -1))
        solution = solution + np.where(finite[..., None, None], step, 0.0)
        current = np.abs(step).max(axis=(-2, -1))
        # Done where the step is below an ulp of X, or stopped shrinking (the residual's
        # own rounding, ~d ulps, is reached).
        converged = current <= 1e-16 * np.abs(solution).max(axis=(-2, -1))
        if np.all(~finite | converged | (current > 0.5 * previous)):
            break
        previous = current
    refined = np.einsum("...ij,...ij,...i->...", solution, solution, 1.0 / eigenvalues)
    # Accept X where it solves its equation to rounding; where the refinement broke down
    # (a singular square root, outside the tested domain) the direct value stands.
    residual = sums * solution + solution @ solution - right_side
    scale = np.abs(right_side).max(axis=(-2, -1)) + eigenvalues[..., -1] * np.abs(solution).max(axis=(-2, -1))
    solved = np.isfinite(refined) & (np.abs(residual).max(axis=(-2, -1)) <= 1e-10 * scale)
    result[usable] = np.where(solved, refined, result[usable])
    return result


def _diagonal_matrix(diagonals):
    """Batched diag: (..., d) -> (..., d, d)."""
    return diagonals[..., :, None] * np.eye(diagonals.shape[-1])
