"""Matrix-valued Gaussian formulas, in NumPy only (``from symgen import kl_mvn`` loads this).

Cholesky factors are applied by :class:`symgen.numerics.triangular.CholeskySolver`
(NumPy has no batched triangular solve).
"""
from __future__ import annotations

import numpy as np

from symgen.numerics import blocked
from symgen.numerics.stable import log1pmx
from symgen.numerics.triangular import CholeskySolver
from symgen.numerics.validate import (
    broadcast_shape,
    check_finite,
    check_symmetric,
    fail,
    float_dtype,
)

# The direct route's rounding error is a few ulps (x cond) of ||A||_F^2 + d, so where
# the covariance term is at least this fraction of that scale its relative error is
# amplified at most ~1/tau = 20 times. Below it the near-agreement route takes over;
# there sum(lambda - 1 - log lambda) < tau (sum(lambda) + d), which for d <= 64 keeps
# every eigenvalue lambda of Sigma_q^-1 Sigma_p above ~5e-4, so its eigenvalue errors
# (ulps of ||D||) stay small next to lambda = 1 + u and that route is accurate too.
# Measured against mpmath (d <= 8, cond <= 1e4), that route is within ~1e-14 up to
# tau ~ 0.5 and the direct route within ~6e-13 from tau = 0.05 up.
STABLE_ROUTE_FRACTION = 0.05


# LAPACK's Cholesky factorizations of small matrices do not spread over threads: 10^4 of
# them took 2.6 ms on one thread and 2.8 ms in two halves on two at d = 8, 5.9 / 7.1 ms at
# d = 12, 12.3 / 9.5 at d = 16, 27 / 16 at d = 24. Up to this d a batch is factored whole and
# only what follows is split among the threads (kl_mvn at d = 8, batch 10^4: 14.4 -> 10.6 ms).
FACTOR_WHOLE_UP_TO = 12


@blocked.over_batch(1, 2, 1, 2, split_from_d=FACTOR_WHOLE_UP_TO + 1)
def kl_mvn(loc_p, cov_p, loc_q, cov_q, *, validate=True, function="kl_mvn"):
    r"""KL divergence between multivariate normals, KL(N(loc_p, cov_p) || N(loc_q, cov_q)).

    .. math::

        \tfrac12\bigl[\operatorname{tr}(\Sigma_q^{-1}\Sigma_p)
        + (\mu_q-\mu_p)^\top\Sigma_q^{-1}(\mu_q-\mu_p) - d
        + \log\det\Sigma_q - \log\det\Sigma_p\bigr]

    Shapes: ``loc_*`` is ``(..., d)``, ``cov_*`` is ``(..., d, d)``; the leading
    (batch) dimensions of all four broadcast NumPy-style and the result has the
    broadcast batch shape (a NumPy float scalar for unbatched input). float32
    arguments give float32; integers are computed in float64.

    ``validate=False`` skips the shape, finiteness and symmetry checks; a covariance
    that is not positive definite is reported either way (the factorization finds it).
    ``function`` is the name error messages give.

    Method. With Cholesky factors L_p, L_q, A = L_q^{-1} L_p (lower triangular,
    diag(A) = diag(L_p) / diag(L_q)) and delta = L_q^{-1}(mu_p - mu_q),

        KL = 1/2 [ ||A||_F^2 - d - 2 sum log diag(A) + ||delta||^2 ],

    with no inverse or determinant. Where the covariances nearly agree this is a
    difference of O(d) numbers with a tiny result, mostly rounding noise. Those batch
    entries are recomputed from the exact float difference Sigma_p - Sigma_q, whitened
    as D = L_q^{-1}(Sigma_p - Sigma_q) L_q^{-T}: the eigenvalues u of D are those of
    Sigma_q^{-1} Sigma_p minus 1, and the covariance term is -sum log1pmx(u), a sum of
    non-negative terms. The answer there is small enough for the rounding of L_q itself
    to show (ulps x cond(Sigma_q)), so that route also corrects for it (see
    :func:`_near_agreement_terms`).

    Accuracy: a few ulps relative where the covariances nearly agree; elsewhere a few
    ulps x cond(Sigma) — the factorization's own backward error — which is ~1e-12 at
    condition number 1e4.

    Covariances are factored from their lower triangles (an asymmetry that passes
    validation is rounding noise); the near-agreement route uses their symmetric parts.

    References: Kingma & Welling (2014), Auto-Encoding Variational Bayes, Appendix B,
    for the Gaussian KL per dimension (diagonal p against a standard normal q). The
    multivariate formula is the standard result of taking the expectation of
    log p - log q under p; derivations/gaussian_kl.py proves it step by step.
    """
    loc_p, cov_p, loc_q, cov_q = (np.asarray(a) for a in (loc_p, cov_p, loc_q, cov_q))
    dtype = float_dtype(loc_p, cov_p, loc_q, cov_q)
    loc_p, cov_p, loc_q, cov_q = (a.astype(dtype, copy=False) for a in (loc_p, cov_p, loc_q, cov_q))
    if validate:
        _check_arguments(function, loc_p, cov_p, loc_q, cov_q)
    chol_p = _cholesky(function, "cov_p", cov_p)
    chol_q = _cholesky(function, "cov_q", cov_q)
    return _kl_from_factors(loc_p, cov_p, loc_q, cov_q, chol_p, chol_q)


@blocked.over_batch(1, 2, 1, 2, 2, 2)
def _kl_from_factors(loc_p, cov_p, loc_q, cov_q, chol_p, chol_q, *, validate=False):
    """kl_mvn's value from the Cholesky factors of the covariances (arguments checked)."""
    d = loc_p.shape[-1]
    batch = np.broadcast_shapes(loc_p.shape[:-1], cov_p.shape[:-2], loc_q.shape[:-1], cov_q.shape[:-2])
    whitened_chol_p, whitened_loc_diff = _whiten_factor_and_vector(
        chol_q, np.broadcast_to(chol_p, batch + (d, d)), np.broadcast_to(loc_p - loc_q, batch + (d,)))

    covariance_term, scale = _direct_covariance_term(chol_p, chol_q, whitened_chol_p)
    location_term = np.array(np.einsum("...i,...i->...", whitened_loc_diff, whitened_loc_diff))
    cancels = covariance_term < STABLE_ROUTE_FRACTION * scale
    if np.any(cancels):
        subset = [_batch_subset(a, batch, cancels) for a in (chol_q, cov_p, cov_q)]
        covariance_term[cancels], location_term[cancels] = _near_agreement_terms(
            *subset, whitened_loc_diff[cancels])
    return (0.5 * (covariance_term + location_term))[()]


def _check_arguments(function, loc_p, cov_p, loc_q, cov_q):
    for name, loc in (("loc_p", loc_p), ("loc_q", loc_q)):
        if loc.ndim < 1:
            raise fail(function, name, f"must have shape (..., d), got shape {loc.shape}")
    for name, cov in (("cov_p", cov_p), ("cov_q", cov_q)):
        if cov.ndim < 2 or cov.shape[-1] != cov.shape[-2]:
            raise fail(function, name, f"must have shape (..., d, d), got shape {cov.shape}")
    d = loc_p.shape[-1]
    for name, size in (("cov_p", cov_p.shape[-1]), ("loc_q", loc_q.shape[-1]), ("cov_q", cov_q.shape[-1])):
        if size != d:
            raise fail(function, name, f"has dimension d = {size}, but loc_p has d = {d}")
    broadcast_shape(function, {"loc_p": loc_p.shape[:-1], "cov_p": cov_p.shape[:-2],
                               "loc_q": loc_q.shape[:-1], "cov_q": cov_q.shape[:-2]})
    for name, array in (("loc_p", loc_p), ("cov_p", cov_p), ("loc_q", loc_q), ("cov_q", cov_q)):
        check_finite(function, name, array)
    check_symmetric(function, "cov_p", cov_p)
    check_symmetric(function, "cov_q", cov_q)


def _cholesky(function, name, cov):
    # Raised even with validate=False: the factorization detects it for free.
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        raise fail(function, name, "must be positive definite (Cholesky factorization failed)") from None


def _cholesky_residual(chol, cov):
    """``cov - chol chol^T``, accurate far below the working precision's ulps.

    Plain float products carry rounding errors as large as the residual itself.
    Split chol = high + low with every entry of ``high`` on a grid of 2^-bits times
    its row's magnitude: each entry of high high^T is then a sum of d integers below
    2^(2 bits) times one power of 2, which the working precision holds exactly
    whatever order BLAS sums in (Ozaki's error-free splitting). The rest is
    2^-bits smaller, so its rounding no longer matters.
    """
    precision = np.finfo(chol.dtype).nmant + 1
    d = chol.shape[-1]
    bits = (precision - int(np.ceil(np.log2(d)))) // 2
    _, exponent = np.frexp(np.max(np.abs(chol), axis=-1, keepdims=True))  # |row| < 2^exponent
    # Adding then subtracting 1.5 x 2^(exponent - bits + precision - 1) rounds to a
    # multiple of 2^(exponent - bits), and nothing else is rounded.
    shifter = np.ldexp(np.asarray(1.5, chol.dtype), exponent - bits + precision - 1)
    high = (chol + shifter) - shifter
    low = chol - high
    # chol chol^T = high high^T + cross + cross^T with cross = (high + low/2) low^T.
    cross = (high + 0.5 * low) @ np.swapaxes(low, -1, -2)
    return (cov - high @ np.swapaxes(high, -1, -2)) - (cross + np.swapaxes(cross, -1, -2))


def _whiten_factor_and_vector(chol_q, chol_p, vector):
    """A = L_q^-1 L_p (lower triangular, as L_p is) and L_q^-1 vector."""
    d = chol_q.shape[-1]
    solver = CholeskySolver(chol_q)
    if solver.by_rows:
        # A row at a time: one sweep for both, the vector a last column.
        solved = solver.solve(np.concatenate([chol_p, vector[..., None]], axis=-1))
        return solved[..., :d], solved[..., d]
    return solver.solve(chol_p, lower_triangular=True), solver.solve(vector[..., None])[..., 0]


def _whiten(lower, symmetric):
    """``lower^-1 symmetric lower^-T``, symmetrized."""
    solver = CholeskySolver(lower)
    half = solver.solve(symmetric)
    # lower^-1 (lower^-1 S)^T = lower^-1 S lower^-T when S is symmetric.
    whitened = solver.solve(np.swapaxes(half, -1, -2))
    return 0.5 * (whitened + np.swapaxes(whitened, -1, -2))


def _direct_covariance_term(chol_p, chol_q, whitened_chol_p):
    """tr(Sq^-1 Sp) - d - log det(Sq^-1 Sp), and the scale its rounding error is relative to."""
    d = chol_p.shape[-1]
    log_ratio = (np.log(np.diagonal(chol_p, axis1=-2, axis2=-1))
                 - np.log(np.diagonal(chol_q, axis1=-2, axis2=-1)))
    # A is lower triangular; whatever the solver left above the diagonal is rounding
    # noise whose square is far below an ulp of the sum, so no need to mask it off.
    frobenius_squared = np.einsum("...ij,...ij->...", whitened_chol_p, whitened_chol_p)
    term = frobenius_squared - d - 2 * np.sum(log_ratio, axis=-1)
    return np.array(term), frobenius_squared + d


def _batch_subset(array, batch, mask):
    """The entries of a matrix-valued ``array`` (broadcast to ``batch``) where ``mask`` holds.

    An array without batch dimensions is returned as is, so it keeps broadcasting
    (and :class:`CholeskySolver` solves with it once).
    """
    if array.ndim == 2:
        return array
    return np.broadcast_to(array, batch + array.shape[-2:])[mask]


def _near_agreement_terms(chol_q, cov_p, cov_q, whitened_loc_diff):
    """Both terms (times 2) where the covariances nearly agree, free of cancellation.

    The covariance term is -sum log1pmx(u), u the eigenvalues of Sq^-1 Sp minus 1:
    non-negative terms, from the exact difference Sp - Sq. The answer is then small
    enough for the factor's own rounding to show: Lq is exact only for
    Sq = Lq (I + G) Lq^T, G ~ ulps x cond(Sq), an error of that relative size in both
    terms. Both are corrected to first order in G; G^2 is far below rounding.
    """
    factor_error = _whiten(chol_q, _cholesky_residual(chol_q, cov_q))  # G
    # Exact where the covariances agree to within a factor 2 (Sterbenz), so the
    # small difference that carries the answer is not rounding noise.
    whitened = _whiten(chol_q, cov_p - cov_q)
    # Against I + G the eigenvalues are those of (I + G)^-1/2 D (I + G)^-1/2
    # ~ D - (G D + D G) / 2, where D G = (G D)^T as both are symmetric.
    g_times_d = factor_error @ whitened
    corrected = whitened - 0.5 * (g_times_d + np.swapaxes(g_times_d, -1, -2))
    covariance_term = -np.sum(log1pmx(np.linalg.eigvalsh(corrected)), axis=-1)
    # delta^T (I + G)^-1 delta.
    location_term = (np.einsum("...i,...i->...", whitened_loc_diff, whitened_loc_diff)
                     - np.einsum("...i,...ij,...j->...", whitened_loc_diff, factor_error, whitened_loc_diff))
    return covariance_term, location_term
