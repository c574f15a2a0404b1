"""Scores of multivariate Gaussians, in NumPy only (``from symgen import score_mvn`` loads this)."""
from __future__ import annotations

import numpy as np

from symgen.numerics import blocked
from symgen.numerics.gaussian import FACTOR_WHOLE_UP_TO
from symgen.numerics.triangular import CholeskySolver
from symgen.numerics.validate import broadcast_shape, check_finite, check_symmetric, fail, float_dtype

# The residual of one refinement step is formed in a wider type, so the refined
# solution's error no longer grows with cond(cov) (80-bit long double has 11 more bits
# than float64; float32 refines in float64).
_WIDER = {np.dtype(np.float32): np.float64, np.dtype(np.float64): np.longdouble}


@blocked.over_batch(1, 1, 2, split_from_d=FACTOR_WHOLE_UP_TO + 1)
def score_mvn(x, loc, cov, *, validate=True, function="score_mvn"):
    r"""Score of a multivariate normal: the gradient of its log density in x.

    .. math::

        \nabla_x \log \mathcal{N}(x; \mu, \Sigma) = -\Sigma^{-1} (x - \mu)

    Shapes: ``x`` and ``loc`` are ``(..., d)``, ``cov`` is ``(..., d, d)``; leading
    (batch) dimensions broadcast NumPy-style and the result has shape
    ``(batch..., d)``. float32 arguments give float32; integers are computed in float64.

    Method: a Cholesky factorization (which also proves Sigma positive definite, checked
    or not) and solves with it (backward stable), then one step of iterative refinement
    with the residual (x - mu) - Sigma y formed in a wider type, which removes the
    cond(Sigma) growth of the plain solve's forward error.
    """
    x, loc, cov = (np.asarray(a) for a in (x, loc, cov))
    dtype = float_dtype(x, loc, cov)
    x, loc, cov = (a.astype(dtype, copy=False) for a in (x, loc, cov))
    if validate:
        _check_arguments(function, x, loc, cov)
    try:
        chol = np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        raise fail(function, "cov", "must be positive definite (Cholesky factorization failed)") from None
    return _score_from_factor(x, loc, cov, chol)


@blocked.over_batch(1, 1, 2, 2)
def _score_from_factor(x, loc, cov, chol, *, validate=False):
    """score_mvn's value from the Cholesky factor of the covariance (arguments checked)."""
    solver = CholeskySolver(chol)
    dtype = chol.dtype
    d = x.shape[-1]
    batch = np.broadcast_shapes(x.shape[:-1], loc.shape[:-1], cov.shape[:-2])
    wide = _WIDER.get(dtype, np.longdouble)
    centred = np.broadcast_to(x.astype(wide) - loc.astype(wide), batch + (d,))

    def solve(vectors):    # Sigma^-1 vectors = L^-T L^-1 vectors
        return solver.solve_transposed(solver.solve(vectors[..., None]))[..., 0]

    solution = solve(centred.astype(dtype))
    residual = _wide_residual(centred, np.broadcast_to(cov, batch + (d, d)), solution, wide)
    return -(solution + solve(residual.astype(dtype)))


# The residual is formed this many matrix entries at a time: converting a whole batch of
# covariances to long double at once took 320 ms at batch 10^4 x d = 64 (655 MB written and
# read back), in chunks of 2^18 entries 150 ms.
_RESIDUAL_CHUNK = 1 << 18


def _wide_residual(centred, matrix, solution, wide):
    """centred - matrix solution in the wider type, a chunk of the leading batch axis at a time."""
    if matrix.ndim < 3:
        return centred - matrix.astype(wide) @ solution.astype(wide)
    residual = np.empty(centred.shape, wide)
    step = max(1, _RESIDUAL_CHUNK // max(1, matrix[0:1].size))
    for start in range(0, matrix.shape[0], step):
        part = slice(start, start + step)
        residual[part] = centred[part] - np.einsum(
            "...ij,...j->...i", matrix[part].astype(wide), solution[part].astype(wide))
    return residual


def _check_arguments(function, x, loc, cov):
    for name, vector in (("x", x), ("loc", loc)):
        if vector.ndim < 1:
            raise fail(function, name, f"must have shape (..., d), got shape {vector.shape}")
    if cov.ndim < 2 or cov.shape[-1] != cov.shape[-2]:
        raise fail(function, "cov", f"must have shape (..., d, d), got shape {cov.shape}")
    d = x.shape[-1]
    for name, size in (("loc", loc.shape[-1]), ("cov", cov.shape[-1])):
        if size != d:
            raise fail(function, name, f"has dimension d = {size}, but x has d = {d}")
    broadcast_shape(function, {"x": x.shape[:-1], "loc": loc.shape[:-1], "cov": cov.shape[:-2]})
    for name, array in (("x", x), ("loc", loc), ("cov", cov)):
        check_finite(function, name, array)
    check_symmetric(function, "cov", cov)
