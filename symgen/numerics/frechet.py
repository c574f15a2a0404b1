"""The Fréchet distance between Gaussians, in NumPy only (``from symgen import frechet_distance``).

    d^2 = ||mu_1 - mu_2||^2 + tr(Sigma_1 + Sigma_2 - 2 (Sigma_1^1/2 Sigma_2 Sigma_1^1/2)^1/2),

the squared 2-Wasserstein distance between N(mu_1, Sigma_1) and N(mu_2, Sigma_2) (Dowson &
Landau 1982), which FID evaluates on Inception features (Heusel et al. 2017).

No square root of a non-symmetric product is ever formed (``scipy.linalg.sqrtm(Sigma_1 @
Sigma_2)`` goes through a complex Schur form, returns complex noise for singular covariances
and takes several times longer: benchmarks/frechet.py measures both). With
factors Sigma_i = B_i B_i^T, Sigma_1^1/2 Sigma_2 Sigma_1^1/2 has the eigenvalues of
(B_1^T B_2)(B_1^T B_2)^T, so the trace of its square root is the sum of the singular values
of B_1^T B_2 (its nuclear norm): real and non-negative by construction.

Two ways to get those singular values, chosen per batch entry (a batched Cholesky
factorization fails as a whole, so one singular covariance sends its batch to the second):

- both covariances clearly positive definite (Cholesky succeeds with no pivot at rounding
  level, see PIVOT_ULPS): B_i are the Cholesky factors, and the singular values are the
  square roots of the eigenvalues of M M^T, M = B_1^T B_2 (the cheapest route);
- otherwise (a sample covariance of fewer than d points, say): the SVD of B_1^T B_2, with
  B_i = V_i diag(sqrt(w_i)) from an eigendecomposition for a singular covariance, its
  eigenvalues at rounding level set to exactly 0, and the Cholesky factor for a positive
  definite partner. A zero singular value of M is computed by an SVD to ulps x ||M||, but as
  the square root of an eigenvalue of M M^T, +-ulps x ||M||^2, it would be ~1e-8 ||M||: the
  loss issue 12 reported (4.3e-6 on a d = 64 pair with value 771).
"""
from __future__ import annotations

import numpy as np

from symgen.numerics.validate import broadcast_shape, check_finite, check_symmetric, fail, float_dtype

EPS = np.finfo(np.float64).eps
# A covariance is positive semi-definite when its smallest eigenvalue is above
# -PSD_RTOL x its largest: the eigenvalues of a rounded PSD matrix are off by a few ulps
# of its norm, far below this.
PSD_RTOL = 1e-10
# An eigenvalue of a d x d covariance below ZERO_ULPS x d ulps of the largest is taken as
# exactly 0: LAPACK's eigh is backward stable (its eigenvalues move by ulps x ||Sigma||), and
# the noise eigenvalues of the sample covariance of n < d points (np.cov, d = 4..512, data
# scaled by 1e-3..1e3) were measured below 0.16 d ulps, so exactly singular inputs stay
# exactly singular. Dropping a true eigenvalue this small moves the result by at most what
# rounding the input already may (see the docstring's bound).
ZERO_ULPS = 4.0
# A Cholesky pivot (L_kk^2) below PIVOT_ULPS x d ulps of the largest diagonal entry marks a
# covariance as numerically singular: such a pivot can be rounding noise (measured below 0.16
# d ulps on the same sample covariances), and its square root would be a column of size
# sqrt(ulps) in the factor. Those entries take the eigendecomposition route.
PIVOT_ULPS = 1024.0
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

    Method. The mean term is a sum of squares. The covariance term is
    c = tr S1 + tr S2 - 2 ||B1^T B2||_* for any factors S_i = B_i B_i^T (||.||_* is the
    nuclear norm, the sum of singular values; the module docstring gives the two routes to
    it). Where c is a small fraction of tr S1 + tr S2 (nearly equal covariances) that
    difference cancels, and c is recomputed from the exact difference D = S2 - S1 (exact
    in floating point where the entries agree within a factor 2: Sterbenz's lemma). In the
    eigenbasis of S1 = V diag(W, 0) V^T (S1 here is whichever covariance has the lower
    numerical rank, then the better conditioned one: the distance is symmetric), S1^1/2 S2
    S1^1/2 only sees S2's block on W's directions, so

        c = tr(D_00) + tr(W^-1 X^2),   W X + X W + X^2 = W^1/2 D_11 W^1/2,

    with D_00, D_11 the blocks of V^T D V on the null and the nonzero directions and
    X = (W^1/2 (S2)_11 W^1/2)^1/2 - W small and symmetric (an eigendecomposition start
    refined by chord steps): two sums of non-negative terms, no cancellation.

    Accuracy. For covariances given exactly (the reference is the exact value at the given
    float entries), with eigenvalues lambda_k(S_i) and t_i = 4 d eps ||S_i|| (eps = 2^-52),
    the absolute error of c is within

        4 d eps (tr S1 + tr S2)
        + 2 sum_(i != j) ||S_j||^1/2 sum_(k: lambda_k(S_i) > 0)
                                     min(sqrt(t_i), t_i / (2 sqrt(lambda_k(S_i))))

    (from backward-error analysis with LAPACK's constants taken as d; checked on every case
    of tests/test_frechet_singular.py, d <= 64). The first part is the rounding of the traces
    and of the singular values (ulps of ||B1|| ||B2|| each). The second is what the input's
    conditioning allows: a backward-stable factorization changes S_i by ~t_i, and the square
    root moves by t_i / (2 sqrt(lambda)) along an eigenvalue lambda >> t_i but is only
    Hoelder-1/2 at 0, so a direction with lambda <~ t_i can move the result by up to
    ~sqrt(t_i ||S_j||). Exactly zero eigenvalues cost nothing: they are computed below
    ZERO_ULPS d ulps and set to exactly 0. So the bound is ~d^2 eps (||S1|| + ||S2||) for
    well-conditioned covariances, and involves only the nonzero eigenvalues of exactly
    singular ones (the d = 64 Hadamard pair of issue 12: 2.4e-13 of the value; measured
    error 8e-17, the sqrtm route's 3.5e-9). A rounded singular matrix, such as np.cov of
    n < d points, has eigenvalues of size ~eps ||S|| and either sign instead of zeros, and
    the exact value at its rounded entries contains their square roots, up to
    ~sqrt(eps ||S1|| ||S2||) each: no float64 method recovers those (there symgen and the
    sqrtm route both err by ~1e-9..1e-8 of the value), while symgen stays within ulps of the
    value at the exact rank n - 1 covariance of the same points, which sqrtm does not.

    Nearly equal covariances (the difference route): measured within 1e-14 of c itself
    where the two ranges agree or one holds the other (positive definite pairs included;
    d <= 64). Where singular ranges differ by a small angle theta, c ~ theta^2 ||S|| is
    only determined to ~eps cond(W) / theta of itself: W's eigenvectors, accurate to
    ~eps cond(W), turn its range at first order.
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
    covariance_term = _covariance_term(function, cov1, cov2, validate)
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


# --- the covariance term -----------------------------------------------------------------------


def _covariance_term(function, cov1, cov2, validate):
    """tr S1 + tr S2 - 2 tr(S1^1/2 S2 S1^1/2)^1/2 for each pair of the batch."""
    # cov2 first: when both are bad, its message comes first (as it always has).
    cholesky2, spectrum2 = _cholesky_or_spectrum(function, "cov2", cov2, validate)
    cholesky1, spectrum1 = _cholesky_or_spectrum(function, "cov1", cov1, validate)
    traces = np.trace(cov1, axis1=-2, axis2=-1) + np.trace(cov2, axis1=-2, axis2=-1)
    clear1, clear2 = _clear_pivots(cholesky1, cov1), _clear_pivots(cholesky2, cov2)
    regular = clear1 & clear2
    term = np.empty(traces.shape)
    if np.any(regular):
        term[regular] = traces[regular] - 2.0 * _nuclear_norm_by_gram(cholesky1[regular],
                                                                      cholesky2[regular])
    singular = ~regular
    spectra = [None, None]
    if np.any(singular):
        factor1, spectra[0] = _exact_rank_factor(cholesky1, clear1, spectrum1, cov1, singular)
        factor2, spectra[1] = _exact_rank_factor(cholesky2, clear2, spectrum2, cov2, singular)
        cross = np.swapaxes(factor1, -1, -2) @ factor2
        singular_values = np.linalg.svd(cross, compute_uv=False)
        term[singular] = traces[singular] - 2.0 * np.sum(singular_values, axis=-1)
    cancels = term < STABLE_ROUTE_FRACTION * traces
    if np.any(cancels & regular):
        here = cancels & regular
        term[here] = _difference_route(cov1[here], cov2[here], term[here], None)
    if np.any(cancels & singular):
        here = cancels & singular
        within = here[singular]
        both = tuple((spectrum[0][within], spectrum[1][within]) if spectrum is not None
                     else np.linalg.eigh(cov[here]) for spectrum, cov in zip(spectra, (cov1, cov2)))
        term[here] = _difference_route(cov1[here], cov2[here], term[here], both)
    return term


def _cholesky_or_spectrum(function, name, cov, validate):
    """(Cholesky factor, None) when every covariance of the batch is positive definite, else
    (None, (eigenvalues, eigenvectors)), after checking semi-definiteness if validating."""
    try:
        return np.linalg.cholesky(cov), None   # positive definite: cheap, and the common case
    except np.linalg.LinAlgError:
        eigenvalues, vectors = np.linalg.eigh(cov)
        if validate:
            error = _semidefinite_failure(function, name, eigenvalues)
            if error is not None:
                raise error from None
        return None, (eigenvalues, vectors)


def _semidefinite_failure(function, name, eigenvalues):
    scale = np.max(np.abs(eigenvalues), axis=-1)
    smallest = np.min(eigenvalues, axis=-1)
    bad = smallest < -PSD_RTOL * scale
    if np.any(bad):
        worst = float(np.min(smallest[bad]))
        return fail(function, name, f"must be positive semi-definite, has eigenvalue {worst:.6g}")
    return None


def _clear_pivots(cholesky, cov):
    """Whether no Cholesky pivot L_kk^2 is at rounding level (see PIVOT_ULPS), per entry."""
    if cholesky is None:
        return np.zeros(cov.shape[:-2], dtype=bool)
    d = cov.shape[-1]
    pivots = np.diagonal(cholesky, axis1=-2, axis2=-1) ** 2
    largest = np.diagonal(cov, axis1=-2, axis2=-1).max(axis=-1)
    return pivots.min(axis=-1) > PIVOT_ULPS * d * EPS * largest


def _nuclear_norm_by_gram(cholesky1, cholesky2):
    """||L1^T L2||_* as the sum of square roots of the eigenvalues of M M^T, M = L1^T L2.

    Forming M M^T squares M's condition number, but with triangular factors of positive
    definite covariances M M^T = L1^T S2 L1 is graded, and its small eigenvalues come out
    far more accurately than ulps x ||M||^2 (measured: d = 16 pairs with eigenvalues down to
    1e-13, aligned or not, within 4e-13 of the 60-digit value; scipy's sqrtm within 3e-8)."""
    cross = np.swapaxes(cholesky1, -1, -2) @ cholesky2
    eigenvalues = np.linalg.eigvalsh(cross @ np.swapaxes(cross, -1, -2))
    return np.sum(np.sqrt(np.maximum(eigenvalues, 0.0)), axis=-1)


def _exact_rank_factor(cholesky, clear, spectrum, cov, chosen):
    """(B, spectrum or None) for the chosen entries, B B^T = cov: the Cholesky factor where all
    of them are clearly positive definite, else V diag(sqrt(w)) with rounding-level w set to
    exactly 0 and only the columns of the largest rank kept (eigh sorts w ascending), so that
    the SVD of B1^T B2 is r1 x r2: small for a covariance of n << d points."""
    if cholesky is not None and np.all(clear[chosen]):
        return cholesky[chosen], None
    eigenvalues, vectors = (spectrum[0][chosen], spectrum[1][chosen]) if spectrum is not None \
        else np.linalg.eigh(cov[chosen])
    kept = _kept_eigenvalues(eigenvalues)
    rank = int(np.max(np.count_nonzero(kept, axis=-1), initial=0))
    columns = slice(kept.shape[-1] - rank, None)
    factor = vectors[..., columns] * np.sqrt(kept[..., columns])[..., None, :]
    return factor, (eigenvalues, vectors)


def _kept_eigenvalues(eigenvalues):
    """Eigenvalues (ascending) with those at rounding level (see ZERO_ULPS) set to exactly 0."""
    return np.where(_nonzero(eigenvalues), eigenvalues, 0.0)


def _nonzero(eigenvalues):
    d = eigenvalues.shape[-1]
    largest = eigenvalues[..., -1:]
    return eigenvalues > ZERO_ULPS * d * EPS * largest


# --- nearly equal covariances: the difference route ----------------------------------------------


def _difference_route(cov1, cov2, direct, spectra):
    """The covariance term of each (cov1, cov2) pair from the exact difference of the two."""
    # A diverging refinement (caught below) may overflow on its way: not an error here.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        base, other, eigenvalues, vectors = _expansion_point(cov1, cov2, spectra)
        return _difference_route_unchecked(base, other, eigenvalues, vectors, direct)


def _expansion_point(cov1, cov2, spectra):
    """(base, other, eigenvalues and eigenvectors of base): the covariance to expand around.

    The distance is symmetric. The result divides by the base's nonzero eigenvalues and
    needs the other covariance nonsingular on the base's range, so the base is the one of
    lower numerical rank, then the better conditioned one."""
    if spectra is None:
        # Both positive definite: the larger smallest diagonal ratio is a cheap proxy for
        # the better conditioned one.
        diagonal1 = np.diagonal(cov1, axis1=-2, axis2=-1)
        diagonal2 = np.diagonal(cov2, axis1=-2, axis2=-1)
        swap = (diagonal2.min(axis=-1) / diagonal2.max(axis=-1)
                > diagonal1.min(axis=-1) / diagonal1.max(axis=-1))
        base = np.where(swap[..., None, None], cov2, cov1)
        return (base, np.where(swap[..., None, None], cov1, cov2)) + tuple(np.linalg.eigh(base))
    (eigenvalues1, vectors1), (eigenvalues2, vectors2) = spectra
    rank1, rank2 = _nonzero(eigenvalues1).sum(axis=-1), _nonzero(eigenvalues2).sum(axis=-1)
    ratio1, ratio2 = _smallest_nonzero_ratio(eigenvalues1), _smallest_nonzero_ratio(eigenvalues2)
    # Among equal ranks, the one whose dropped eigenvalues are smaller (nearer exactly
    # singular: the split below treats them as 0), then the better conditioned one.
    dropped1, dropped2 = _dropped_fraction(eigenvalues1), _dropped_fraction(eigenvalues2)
    swap = (rank2 < rank1) | ((rank2 == rank1) & ((dropped2 < dropped1)
                                                 | ((dropped2 == dropped1) & (ratio2 > ratio1))))
    pick = swap[..., None, None]
    return (np.where(pick, cov2, cov1), np.where(pick, cov1, cov2),
            np.where(swap[..., None], eigenvalues2, eigenvalues1), np.where(pick, vectors2, vectors1))


def _dropped_fraction(eigenvalues):
    """The sum of |eigenvalues| taken as 0, relative to the largest eigenvalue."""
    largest = eigenvalues[..., -1]
    dropped = np.sum(np.where(_nonzero(eigenvalues), 0.0, np.abs(eigenvalues)), axis=-1)
    return dropped / np.where(largest > 0, largest, 1.0)


def _smallest_nonzero_ratio(eigenvalues):
    """The smallest eigenvalue not taken as 0 over the largest (0 for a zero matrix)."""
    smallest = np.min(np.where(_nonzero(eigenvalues), eigenvalues, np.inf), axis=-1)
    largest = eigenvalues[..., -1]
    return np.where(np.isfinite(smallest), smallest / np.where(largest > 0, largest, 1.0), 0.0)


def _difference_route_unchecked(base, other, eigenvalues, vectors, direct):
    result = np.array(direct, dtype=np.float64)
    # Exact where the covariances agree to within a factor 2 (Sterbenz).
    difference = other - base
    rotated = np.swapaxes(vectors, -1, -2) @ difference @ vectors
    # With base = V diag(W, 0) V^T, (base^1/2 other base^1/2)^1/2 only sees other's block on
    # W's directions, so c = tr(other's null block) + c(W, other's W block): the null block of
    # D = other - base is other's own there, a trace of a positive semi-definite block.
    nonzero = _nonzero(eigenvalues)
    null_part = np.sum(np.where(nonzero, 0.0, np.diagonal(rotated, axis1=-2, axis2=-1)), axis=-1)
    # In the null directions the equation below gets a stand-in eigenvalue (the largest, or 1
    # for a zero base) and a zero right side, so its solution is exactly 0 there, and the
    # equation stays well conditioned.
    largest = eigenvalues[..., -1:]
    eigenvalues = np.where(nonzero, eigenvalues, np.where(largest > 0, largest, 1.0))
    roots = np.where(nonzero, np.sqrt(eigenvalues), 0.0)
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
    # X is symmetric; so is every chord step, so an antisymmetric part left by rounding here
    # would never be corrected (and where X is tiny it would fail the residual test below).
    solution = 0.5 * (solution + np.swapaxes(solution, -1, -2))
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
    refined = null_part + np.einsum("...ij,...ij,...i->...", solution, solution, 1.0 / eigenvalues)
    # Accept X where it solves its equation to rounding; where the refinement broke down
    # (a singular square root, outside the tested domain) the direct value stands.
    residual = sums * solution + solution @ solution - right_side
    scale = np.abs(right_side).max(axis=(-2, -1)) + eigenvalues.max(axis=-1) * np.abs(solution).max(axis=(-2, -1))
    solved = np.isfinite(refined) & (np.abs(residual).max(axis=(-2, -1)) <= 1e-10 * scale)
    return np.where(solved, refined, result)


def _diagonal_matrix(diagonals):
    """Batched diag: (..., d) -> (..., d, d)."""
    return diagonals[..., :, None] * np.eye(diagonals.shape[-1])
