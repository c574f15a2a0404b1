"""The matrix-valued formulas for torch and JAX: kl_mvn, score_mvn and frechet_distance.

Written once against a backend object (``symgen/numerics/backends.py``: ``backend.xp`` is
``torch`` or ``jax.numpy``); only where the two libraries' linear-algebra APIs differ does a
helper below branch on ``backend.name``. The methods are those of the NumPy functions
(``gaussian.py``, ``scores.py``, ``frechet.py``), which explain them at length; this module
says what changes when the result must be differentiable and traceable.

Semantics (as in NumPy). Shapes ``(..., d)`` and ``(..., d, d)``, leading batch dimensions
broadcast, the result has the broadcast batch shape (0-d for unbatched input; score_mvn adds
``d``). Arguments may mix tensors or arrays, NumPy arrays and Python lists or numbers; they
are converted as ``backend.prepare`` converts them (float32 stays float32, float64 stays
float64, integers and Python numbers alone take the library's default float; torch: the
device of the first tensor), and the computation stays in that dtype and on that device.
(NumPy's frechet_distance computes in float64 whatever the input; here float32 input is
computed in float32, as on an accelerator float64 would be slow or, in JAX without x64,
impossible.)

Validation. With ``validate=True`` and values that are not being traced, every check of the
NumPy function runs, with its messages: shapes by the NumPy check itself on zero-stride
stand-ins (no data copied), values by reductions in the library, and only when a reduction
fails does the NumPy check run on a NumPy copy, so that the message (and the culprit it
names) is the one NumPy gives. A covariance that is not positive definite (kl_mvn,
score_mvn) or semi-definite (frechet_distance) is reported with NumPy's message, found from
the factorization's own report (``torch.linalg.cholesky_ex``'s ``info``; JAX's Cholesky
returns NaN instead of raising). With ``validate=False`` or under tracing (``torch.compile``,
``jax.jit``, ``jax.grad``) nothing is checked and nothing raises: kl_mvn gives NaN for a
batch entry whose covariance cannot be factored, frechet_distance for one whose covariances
are not finite (both computed at stand-in values, so no NaN reaches another entry or a
gradient); score_mvn solves whatever it is given (an LU solve, as NumPy's), and
frechet_distance takes an indefinite covariance's negative eigenvalues as 0, as NumPy's
does. (NumPy's kl_mvn reports a covariance that is not positive definite even with
``validate=False``; here that would cost a device synchronization the caller asked to
avoid.)

Branches. kl_mvn and frechet_distance have a cheap route and an accurate one for the entries
where the cheap one cancels. In eager mode the accurate route runs only when some entry needs it (one
synchronization); under tracing both run on every entry and ``where`` picks, with the
accurate route fed *safe* stand-in inputs outside its entries (the "double where" of
``backend.refine_everywhere``), so an untaken route can neither fail nor put NaN into a
gradient. Hence no data-dependent Python branch when tracing.

Gradients, and what each function achieves, are described in the functions' docstrings.
"""
from __future__ import annotations

import math

import numpy as np

from symgen.numerics import frechet as np_frechet
from symgen.numerics import gaussian as np_gaussian
from symgen.numerics import schedules as np_schedules
from symgen.numerics import scores as np_scores
from symgen.numerics.stable import log1pmx
from symgen.numerics.validate import SYMMETRY_RTOL, fail

# The NumPy functions' thresholds, so the routes switch at the same points.
STABLE_ROUTE_FRACTION = np_gaussian.STABLE_ROUTE_FRACTION       # kl_mvn
FRECHET_ROUTE_FRACTION = np_frechet.STABLE_ROUTE_FRACTION
PSD_RTOL = np_frechet.PSD_RTOL
ZERO_ULPS = np_frechet.ZERO_ULPS
PIVOT_ULPS = np_frechet.PIVOT_ULPS
CHORD_STEPS = np_frechet.CHORD_STEPS
# Under tracing the chord refinement of frechet_distance's difference route cannot stop when
# it has converged, so it runs this many steps (entries that converged or stalled are frozen,
# so the extra steps change nothing). Measured in eager mode: 1 to 4 steps over 600 drawn
# near-equal and moderately close pairs (tests/test_kl_mvn_numerics.py's strategies, relative
# differences 1e-9 to 1), 2 to 5 over the exact, definite and sample-covariance cases of
# tests/test_frechet_singular.py.
TRACED_CHORD_STEPS = 8


# --------------------------------------------------------------------------------------------
# kl_mvn
# --------------------------------------------------------------------------------------------


def kl_mvn(loc_p, cov_p, loc_q, cov_q, *, backend, validate=True, function="kl_mvn"):
    r"""KL divergence between multivariate normals, KL(N(loc_p, cov_p) || N(loc_q, cov_q)).

    .. math::

        \tfrac12\bigl[\operatorname{tr}(\Sigma_q^{-1}\Sigma_p)
        + (\mu_q-\mu_p)^\top\Sigma_q^{-1}(\mu_q-\mu_p) - d
        + \log\det\Sigma_q - \log\det\Sigma_p\bigr]

    Method (that of ``symgen.numerics.gaussian.kl_mvn``). With Cholesky factors L_p, L_q,
    A = L_q^-1 L_p and delta = L_q^-1 (mu_p - mu_q),

        KL = 1/2 [ ||A||_F^2 - d - 2 sum log diag(A) + ||delta||^2 ].

    Where that cancels (the covariance term below 0.05 of ||A||_F^2 + d: nearly equal
    covariances) the covariance term is -sum log1pmx(u), u the eigenvalues of the whitened
    exact difference D = L_q^-1 (Sigma_p - Sigma_q) L_q^-T, corrected to first order for the
    rounding of L_q itself (G = L_q^-1 (Sigma_q - L_q L_q^T) L_q^-T, formed exactly by an
    error-free splitting): a sum of non-negative terms. Equal distributions give exactly 0.

    Where a gradient may be taken (a covariance that requires grad, or tracing), covariances
    are used through their symmetric parts (Sigma + Sigma^T) / 2, so a gradient with respect
    to a covariance is symmetric; otherwise, as in NumPy, the factorizations read the lower
    triangles (the same for a symmetric matrix, and within the symmetry tolerance
    otherwise) and the near-agreement route the symmetric parts.

    Gradients: both routes are differentiable with stable gradients (Cholesky, triangular
    solves, log; ``eigvalsh``, whose gradient V diag(g) V^T is stable at repeated eigenvalues
    such as the all-zero spectrum of D at equal covariances, and log1pmx, smooth at 0), and
    each batch entry's gradient flows through the route that gave its value. Outside the
    near-agreement entries that route sees Sigma_p replaced by Sigma_q (D = 0), which keeps
    it finite.

    Accuracy (float64, against the NumPy function, over 300 draws each of the strategies of
    tests/test_kl_mvn_numerics.py, d <= 6, condition numbers <= 1e4): the same method in the
    same precision; generic pairs within 1e-13 relative (torch; JAX 7e-16: both functions err
    by a few ulps x cond), nearly equal covariances (relative differences 1e-9, where the
    textbook formula keeps no digit) within 7e-15, moderately close ones within 3e-15;
    exactly 0 for equal distributions. Gradients agree with central differences to their own
    accuracy (~1e-10), and are exactly 0 at equal distributions.
    """
    xp = backend.xp
    loc_p, cov_p, loc_q, cov_q = backend.convert([loc_p, cov_p, loc_q, cov_q])
    check = validate and not backend.tracing([loc_p, cov_p, loc_q, cov_q])
    if check:
        _validate(backend, np_gaussian._check_arguments, function, [loc_p, cov_p, loc_q, cov_q],
                  covariances=(1, 3))
    d = loc_p.shape[-1]
    batch = _batch([loc_p, loc_q], [cov_p, cov_q])
    if _needs_gradient(backend, [cov_p, cov_q]):
        # Factored from the symmetric parts, so that a gradient is symmetric; without one,
        # from the lower triangles as they are (as NumPy does; a pass over each saved).
        cov_p, cov_q = _symmetric_part(backend, cov_p), _symmetric_part(backend, cov_q)
    chol_p, failed_p = _cholesky(backend, cov_p)
    chol_q, failed_q = _cholesky(backend, cov_q)
    if check:
        for name, cov, failed in (("cov_p", cov_p, failed_p), ("cov_q", cov_q, failed_q)):
            if bool(xp.any(failed)):
                _raise_not_positive_definite(backend, function, name, cov)

    # A = L_q^-1 L_p and delta = L_q^-1 (mu_p - mu_q), solved apart: torch's triangular solve
    # of the two side by side took 3x as long as of L_p alone (d = 64).
    chol_q_batch = xp.broadcast_to(chol_q, batch + (d, d))
    whitened_chol_p = _solve_lower(backend, chol_q_batch, xp.broadcast_to(chol_p, batch + (d, d)))
    whitened_loc_diff = _solve_lower(
        backend, chol_q_batch, xp.broadcast_to((loc_p - loc_q)[..., None], batch + (d, 1)))[..., 0]

    log_ratio = xp.log(_diagonal(backend, chol_p)) - xp.log(_diagonal(backend, chol_q))
    frobenius_squared = _frobenius_squared(backend, whitened_chol_p)
    covariance_term = frobenius_squared - d - 2 * _sum(backend, log_ratio, -1)
    location_term = _sum(backend, whitened_loc_diff * whitened_loc_diff, -1)
    cancels = covariance_term < STABLE_ROUTE_FRACTION * (frobenius_squared + d)
    if not _skippable(backend, cancels, [loc_p, cov_p, loc_q, cov_q]):
        # Safe inputs: outside the cancelling entries Sigma_p is replaced by Sigma_q, so this
        # route computes D = 0 there (finite, with finite gradients) and ``where`` drops it.
        mask = cancels[..., None, None]
        cov_p, cov_q = _symmetric_part(backend, cov_p), _symmetric_part(backend, cov_q)
        cov_p_safe = xp.where(mask, xp.broadcast_to(cov_p, batch + (d, d)), cov_q)
        near_covariance, near_location = _near_agreement_terms(
            backend, chol_q, cov_p_safe, cov_q, whitened_loc_diff)
        covariance_term = xp.where(cancels, near_covariance, covariance_term)
        location_term = xp.where(cancels, near_location, location_term)
    result = 0.5 * (covariance_term + location_term)
    return _nan_where(backend, failed_p | failed_q, result)


def _frobenius_squared(backend, matrix):
    """||matrix||_F^2 over the last two axes. torch's einsum copies the column-major result
    of its triangular solve first (d = 64, batch 10^4: 465 ms); its norm reads it as it is
    (13 ms), squared back within a few ulps. Where a gradient may flow, the einsum (the
    norm's derivative divides by the norm)."""
    if backend.name == "torch" and not _needs_gradient(backend, [matrix]):
        return backend.xp.linalg.vector_norm(matrix, dim=(-2, -1)) ** 2
    return backend.xp.einsum("...ij,...ij->...", matrix, matrix)


def _near_agreement_terms(backend, chol_q, cov_p, cov_q, whitened_loc_diff):
    """Both terms (times 2) where the covariances nearly agree, free of cancellation
    (``gaussian._near_agreement_terms``): -sum log1pmx(u) for the eigenvalues u of D corrected
    to first order in G, and delta^T (I + G)^-1 delta ~ delta^T delta - delta^T G delta."""
    xp = backend.xp
    factor_error = _whiten(backend, chol_q, _cholesky_residual(backend, chol_q, cov_q))  # G
    # Exact where the covariances agree to within a factor 2 (Sterbenz).
    whitened = _whiten(backend, chol_q, cov_p - cov_q)
    g_times_d = factor_error @ whitened
    corrected = whitened - 0.5 * (g_times_d + _swap(backend, g_times_d))
    covariance_term = -_sum(backend, log1pmx(xp.linalg.eigvalsh(corrected), backend), -1)
    location_term = (_sum(backend, whitened_loc_diff * whitened_loc_diff, -1)
                     - xp.einsum("...i,...ij,...j->...", whitened_loc_diff, factor_error,
                                 whitened_loc_diff))
    return covariance_term, location_term


def _whiten(backend, lower, symmetric):
    """``lower^-1 symmetric lower^-T``, symmetrized."""
    xp = backend.xp
    shape = _batch_of(lower, symmetric) + tuple(symmetric.shape[-2:])
    lower = xp.broadcast_to(lower, shape)
    half = _solve_lower(backend, lower, xp.broadcast_to(symmetric, shape))
    # lower^-1 (lower^-1 S)^T = lower^-1 S lower^-T when S is symmetric.
    whitened = _solve_lower(backend, lower, _swap(backend, half))
    return 0.5 * (whitened + _swap(backend, whitened))


def _cholesky_residual(backend, chol, cov):
    """``cov - chol chol^T``, accurate far below the working precision's ulps: Ozaki's
    error-free splitting, as in ``gaussian._cholesky_residual`` (which explains it).

    The split points are constants for differentiation (a power of 2 per row): ``high``
    then carries the whole derivative of ``chol`` and ``low`` none, so the derivative is
    that of cov - chol chol^T."""
    xp = backend.xp
    precision = _precision(backend, chol.dtype)
    d = chol.shape[-1]
    bits = (precision - math.ceil(math.log2(max(d, 1)))) // 2
    shifter = _shifter(backend, _amax(backend, xp.abs(chol), -1, keepdims=True), bits, precision)
    high = (chol + shifter) - shifter
    low = chol - high
    # chol chol^T = high high^T + cross + cross^T with cross = (high + low/2) low^T.
    cross = (high + 0.5 * low) @ _swap(backend, low)
    return (cov - high @ _swap(backend, high)) - (cross + _swap(backend, cross))


def _shifter(backend, magnitude, bits, precision):
    """1.5 x 2^(e - bits + precision - 1) for |values| < 2^e, e at most two above the power
    of 2 just above ``magnitude``: adding then subtracting it rounds a value to a multiple of
    2^(e - bits) and rounds nothing else.

    e = floor(log2 magnitude) + 2 (not frexp: inductor's vectorized C++ for frexp's integer
    exponent does not compile, torch 2.13). It errs only upwards, whatever log2's rounding
    (which would cost a bit of the split, not its exactness), and only the shifter's binade
    matters, so neither log2 nor exp2 need be exact."""
    xp = backend.xp
    magnitude = backend.stop_gradient(magnitude)
    exponent = xp.floor(xp.log2(magnitude)) + (2 - bits + precision - 1)
    return 1.5 * xp.exp2(exponent)


# --------------------------------------------------------------------------------------------
# score_mvn
# --------------------------------------------------------------------------------------------


def score_mvn(x, loc, cov, *, backend, validate=True, function="score_mvn"):
    r"""Score of a multivariate normal: the gradient of its log density in x.

    .. math::

        \nabla_x \log \mathcal{N}(x; \mu, \Sigma) = -\Sigma^{-1} (x - \mu)

    Shapes: ``x`` and ``loc`` are ``(..., d)``, ``cov`` is ``(..., d, d)``; the result has
    shape ``(batch..., d)``.

    Method. An LU solve (backward stable; the factorization is reused) and one step of
    iterative refinement whose residual (x - mu) - Sigma y is formed far more accurately
    than the working precision: NumPy forms it in long double, which neither torch nor JAX
    has, so here x - mu is kept as an unevaluated sum (TwoSum: its rounding error exactly)
    and Sigma y is split error-free (Ozaki: Sigma = Sigma_hi + Sigma_lo by rows and
    y = y_hi + y_lo on grids of ~(precision - log2 d) / 2 bits, so Sigma_hi y_hi is exact
    in any summation order). The residual is then within ~d 2^-23 ulps of |Sigma| |y| in
    float64, and the refined solution's error no longer grows with cond(Sigma) at first
    order.

    Gradients: through the LU solves (differentiable in both libraries); the split points
    are constants for differentiation, so the refinement's derivative is that of
    y + Sigma^-1 (c - Sigma y) — the solve's derivative, to first order.

    Accuracy (float64, normwise, against 60-digit mpmath): one refinement step with an
    (all but) exact residual leaves a few ulps plus (cond(Sigma) eps)^2: measured ~1e-16 at
    condition 1e8 (NumPy's long double residual: ~2e-12; the plain solve: ~1e-9 to 1e-11)
    and ~1e-10 at 1e12 (NumPy ~1e-8). Against the NumPy function: within ~1e-14 for
    condition numbers up to 1e4. ``validate=False`` with a singular covariance
    gives inf or NaN (NumPy raises LinAlgError).
    """
    xp = backend.xp
    x, loc, cov = backend.convert([x, loc, cov])
    check = validate and not backend.tracing([x, loc, cov])
    if check:
        _validate(backend, np_scores._check_arguments, function, [x, loc, cov], covariances=(2,))
        _, failed = _cholesky(backend, cov)
        if bool(xp.any(failed)):
            _raise_not_positive_definite(backend, function, "cov", cov)
    d = x.shape[-1]
    batch = _batch([x, loc], [cov])
    x, loc = xp.broadcast_to(x, batch + (d,)), xp.broadcast_to(loc, batch + (d,))
    matrix = xp.broadcast_to(cov, batch + (d, d))
    # x - mu as centred + centred_error exactly (Knuth's TwoSum): NumPy forms it in long double.
    centred = x - loc
    centred_error = _two_sum_error(x, -loc, centred)
    factorization = _lu_factor(backend, matrix)
    solution = _lu_solve(backend, factorization, centred)
    residual = _accurate_residual(backend, centred, centred_error, matrix, solution)
    solution = solution + _lu_solve(backend, factorization, residual)
    return -solution


def _two_sum_error(a, b, total):
    """The rounding error of ``total = a + b``, exactly (Knuth's TwoSum)."""
    b_part = total - a
    a_part = total - b_part
    return (a - a_part) + (b - b_part)


def _accurate_residual(backend, centred, centred_error, matrix, solution):
    """(centred + centred_error) - matrix @ solution, with error ~d 2^-bits ulps of
    |matrix| |solution| (bits ~ (precision - log2 d) / 2): Ozaki's error-free splitting makes
    matrix_hi @ solution_hi exact, and the remaining products are 2^-bits smaller."""
    xp = backend.xp
    precision = _precision(backend, matrix.dtype)
    d = matrix.shape[-1]
    bits = (precision - math.ceil(math.log2(max(d, 1)))) // 2
    row_shifter = _shifter(backend, _amax(backend, xp.abs(matrix), -1, keepdims=True), bits, precision)
    matrix_high = (matrix + row_shifter) - row_shifter
    matrix_low = matrix - matrix_high
    vector_shifter = _shifter(backend, _amax(backend, xp.abs(solution), -1, keepdims=True), bits, precision)
    solution_high = (solution + vector_shifter) - vector_shifter
    solution_low = solution - solution_high
    exact = _matvec(backend, matrix_high, solution_high)
    rest = _matvec(backend, matrix_high, solution_low) + _matvec(backend, matrix_low, solution)
    return ((centred - exact) + centred_error) - rest


# --------------------------------------------------------------------------------------------
# frechet_distance
# --------------------------------------------------------------------------------------------


def frechet_distance(loc1, cov1, loc2, cov2, *, backend, validate=True, function="frechet_distance"):
    r"""Squared Fréchet (2-Wasserstein) distance between N(loc1, cov1) and N(loc2, cov2).

    .. math::

        \lVert\mu_1-\mu_2\rVert^2 + \operatorname{tr}\bigl(\Sigma_1+\Sigma_2
        - 2(\Sigma_1^{1/2}\Sigma_2\Sigma_1^{1/2})^{1/2}\bigr)

    Covariances must be symmetric positive semi-definite (singular ones are allowed).

    Value: the method of ``symgen.numerics.frechet`` (which explains it), in the working
    dtype. The covariance term is c = tr S1 + tr S2 - 2 ||B1^T B2||_*, the nuclear norm from
    ``svdvals`` of B1^T B2, with B_i the Cholesky factor where S_i is clearly positive
    definite and V diag(sqrt(w)) from an eigendecomposition, rounding-level eigenvalues set
    to exactly 0, where it is (numerically) singular; where c < 0.05 (tr S1 + tr S2) it is
    recomputed from the exact difference S2 - S1 (c = tr(D_00) + tr(W^-1 X^2), X refined by
    chord steps: a sum of non-negative terms). Differences from NumPy: the route is chosen
    per batch entry (NumPy sends a whole batch to the eigendecomposition route when one
    entry is singular); the nuclear norm of a positive definite pair comes from the SVD of
    L1^T L2 instead of the eigenvalues of its Gram matrix (both err by ulps of ||L1^T L2||
    per singular value); under tracing the chord refinement takes TRACED_CHORD_STEPS steps.

    Gradients. The accurate routes (eigendecompositions, chord steps) are not differentiated:
    eigenvector gradients are infinite at repeated eigenvalues (S1 = S2 = I, say). The
    result is ``stop_gradient(value) + (smooth - stop_gradient(smooth))``, exactly the value
    (x - x = 0), with the derivatives of a smooth formula for the same function: with L the
    Cholesky factor of an "anchor" covariance,

        c = tr S1 + tr S2 - 2 sum_k sqrt(mu_k),  mu = eigvalsh(L^T S_other L),

    whose ingredients (Cholesky, ``eigvalsh``) have stable gradients, also at equal
    covariances. The anchor is S2 if it is clearly positive definite, else S1 if that is;
    eigenvalues mu_k at rounding level (ZERO_ULPS) are left out of the sum, so where the
    other covariance is singular the gradient is the exact derivative along covariances of
    the same rank (a sample covariance of n < d points moves that way), while the
    directional derivative out of that set, +inf, is not represented. Where both are
    singular the anchor is S2 + tau I, tau = sqrt(eps) x mean(diag S2): a finite, approximate
    gradient. Measured (float64): for positive definite pairs the gradient agrees with central
    differences to their own accuracy (~1e-10), also at equal and nearly equal covariances,
    and is 0 to ulps at equal ones (exactly 0 at S1 = S2 = I); with respect to the points of
    a sample covariance of n < d points, within 1e-8 of central differences (step 1e-6) with
    a definite partner and, through tau, with a singular one. The smooth formula costs a
    Cholesky factorization and an ``eigvalsh``; it is skipped where no derivative can be
    taken (eager JAX arrays; torch tensors that do not require grad, or grad mode off), and
    computed under any tracing (``jax.jit`` cannot know whether a gradient follows).

    Accuracy (float64). Against the NumPy function over 300 draws each of the strategies of
    tests/test_kl_mvn_numerics.py (d <= 6, condition numbers <= 1e4): generic pairs within
    1.5e-14 relative, moderately close ones within 3e-14, nearly equal ones within 1.6e-12 of
    values ~1e-15 (there both are ~1e-13 from 60-digit mpmath: the difference route's error
    is ~eps cond(S) of the covariance term), equal covariances exactly 0. Against the
    60-digit references of tests/test_frechet_singular.py (singular and nearly singular
    pairs, d <= 64): JAX within 3e-15 of NumPy everywhere (the same LAPACK routines); torch
    within a few ulps of the reference wherever NumPy is, except where singular ranges differ
    by a small angle theta (c only determined to ~eps cond(W) / theta, see NumPy's
    docstring): 1.4e-12 against NumPy's 4e-14 on the d = 64 scatter pair rotated by 2^-15,
    9e-12 against 7e-12 at d = 8. On rounded sample covariances of n < d points both sit
    equally far from the exact value (NumPy's Hoelder term).
    """
    xp = backend.xp
    arguments = backend.convert([loc1, cov1, loc2, cov2])
    loc1, cov1, loc2, cov2 = arguments
    traced = backend.tracing(arguments)
    check = validate and not traced
    if check:
        # NumPy checks (and computes) in float64.
        _validate(backend, np_frechet._check_arguments, function, arguments, covariances=(1, 3),
                  numpy_dtype=np.float64)
    d = loc1.shape[-1]
    batch = _batch([loc1, loc2], [cov1, cov2])
    cov1 = _symmetric_part(backend, xp.broadcast_to(cov1, batch + (d, d)))
    cov2 = _symmetric_part(backend, xp.broadcast_to(cov2, batch + (d, d)))
    eye = _eye(backend, d, cov1)
    # Non-finite covariances (validate=False) are replaced by I and their result set to NaN,
    # so an eigendecomposition or SVD never sees them (torch raises on NaN).
    finite1 = xp.isfinite(_sum(backend, cov1, (-2, -1)))
    finite2 = xp.isfinite(_sum(backend, cov2, (-2, -1)))
    cov1 = xp.where(finite1[..., None, None], cov1, eye)
    cov2 = xp.where(finite2[..., None, None], cov2, eye)

    value, positive1, positive2 = _frechet_value(backend, function, cov1, cov2, check, traced)
    if backend.differentiable and _needs_gradient(backend, [cov1, cov2]):
        smooth = _frechet_smooth(backend, cov1, cov2, positive1, positive2)
        covariance_term = backend.stop_gradient(value) + (smooth - backend.stop_gradient(smooth))
    else:
        covariance_term = value
    difference = loc1 - loc2
    mean_term = _sum(backend, difference * difference, -1)
    return _nan_where(backend, ~(finite1 & finite2), mean_term + covariance_term)


def _frechet_value(backend, function, cov1, cov2, check, traced):
    """The covariance term (clamped at 0, not differentiated) and which covariances are
    clearly positive definite, per entry."""
    xp = backend.xp
    cov1, cov2 = backend.stop_gradient(cov1), backend.stop_gradient(cov2)
    eps = _eps(backend, cov1.dtype)
    chol1, failed1 = _cholesky(backend, cov1, differentiated=False)
    chol2, failed2 = _cholesky(backend, cov2, differentiated=False)
    if check:
        # cov2 first, as in NumPy: when both are bad, its message comes first.
        for name, cov, failed in (("cov2", cov2, failed2), ("cov1", cov1, failed1)):
            if bool(xp.any(failed)):
                _check_semidefinite(backend, function, name, cov)
    positive1 = ~failed1 & _clear_pivots(backend, chol1, cov1, eps)
    positive2 = ~failed2 & _clear_pivots(backend, chol2, cov2, eps)
    spectra = [None, None]
    factors = [chol1, chol2]
    for i, (cov, positive) in enumerate(((cov1, positive1), (cov2, positive2))):
        if traced or not bool(xp.all(positive)):
            eigenvalues, vectors = xp.linalg.eigh(cov)
            spectra[i] = (eigenvalues, vectors)
            kept = xp.where(_nonzero(backend, eigenvalues, eps), eigenvalues, 0.0)
            factors[i] = xp.where(positive[..., None, None], factors[i], vectors * xp.sqrt(kept)[..., None, :])
    traces = _trace(backend, cov1) + _trace(backend, cov2)
    cross = _swap(backend, factors[0]) @ factors[1]
    term = traces - 2.0 * _sum(backend, _svdvals(backend, cross), -1)
    cancels = term < FRECHET_ROUTE_FRACTION * traces
    if not _skippable(backend, cancels, [cov1, cov2], traced):
        for i, cov in enumerate((cov1, cov2)):
            if spectra[i] is None:
                spectra[i] = xp.linalg.eigh(cov)
        # Safe inputs: outside the cancelling entries the pair is (cov1, cov1), D = 0.
        pick = cancels[..., None, None]
        safe = (xp.where(pick, cov2, cov1), xp.where(cancels[..., None], spectra[1][0], spectra[0][0]),
                xp.where(pick, spectra[1][1], spectra[0][1]))
        refined = _difference_route(backend, cov1, safe[0], spectra[0], (safe[1], safe[2]),
                                    positive1 & positive2, term, eps, traced)
        term = xp.where(cancels, refined, term)
    # Rounding may leave a zero covariance term a few ulps negative: a distance is not.
    return xp.where(term > 0, term, xp.zeros_like(term)), positive1, positive2


def _clear_pivots(backend, cholesky, cov, eps):
    """Whether no Cholesky pivot L_kk^2 is at rounding level (PIVOT_ULPS), per entry."""
    d = cov.shape[-1]
    pivots = _diagonal(backend, cholesky) ** 2
    largest = _amax(backend, _diagonal(backend, cov), -1)
    return _amin(backend, pivots, -1) > PIVOT_ULPS * d * eps * largest


def _nonzero(backend, eigenvalues, eps):
    """Eigenvalues (ascending) above rounding level of the largest (ZERO_ULPS)."""
    d = eigenvalues.shape[-1]
    return eigenvalues > ZERO_ULPS * d * eps * eigenvalues[..., -1:]


def _difference_route(backend, cov1, cov2, spectrum1, spectrum2, regular, direct, eps, traced):
    """The covariance term from the exact difference of the pair (``frechet._difference_route``,
    branch-free): expand around the covariance of lower numerical rank, then the better
    conditioned one; solve W X + X W + X^2 = W^1/2 D_11 W^1/2 from an eigendecomposition
    start refined by chord steps; c = tr(D_00) + tr(W^-1 X^2)."""
    xp = backend.xp
    (eigenvalues1, vectors1), (eigenvalues2, vectors2) = spectrum1, spectrum2
    # Positive definite pairs: the larger smallest diagonal ratio is a cheap proxy for the
    # better conditioned one. Others: lower rank, then smaller dropped eigenvalues, then the
    # better conditioned one.
    diagonal1, diagonal2 = _diagonal(backend, cov1), _diagonal(backend, cov2)
    swap_regular = (_amin(backend, diagonal2, -1) / _amax(backend, diagonal2, -1)
                    > _amin(backend, diagonal1, -1) / _amax(backend, diagonal1, -1))
    rank1, rank2 = _count(backend, _nonzero(backend, eigenvalues1, eps)), _count(backend, _nonzero(backend, eigenvalues2, eps))
    ratio1, ratio2 = (_smallest_nonzero_ratio(backend, eigenvalues1, eps),
                      _smallest_nonzero_ratio(backend, eigenvalues2, eps))
    dropped1, dropped2 = (_dropped_fraction(backend, eigenvalues1, eps),
                          _dropped_fraction(backend, eigenvalues2, eps))
    swap_singular = (rank2 < rank1) | ((rank2 == rank1) & ((dropped2 < dropped1)
                                                          | ((dropped2 == dropped1) & (ratio2 > ratio1))))
    swap = xp.where(regular, swap_regular, swap_singular)
    pick = swap[..., None, None]
    base, other = xp.where(pick, cov2, cov1), xp.where(pick, cov1, cov2)
    eigenvalues = xp.where(swap[..., None], eigenvalues2, eigenvalues1)
    vectors = xp.where(pick, vectors2, vectors1)

    # Exact where the covariances agree to within a factor 2 (Sterbenz).
    rotated = _swap(backend, vectors) @ (other - base) @ vectors
    nonzero = _nonzero(backend, eigenvalues, eps)
    zero = xp.zeros_like(eigenvalues)
    null_part = _sum(backend, xp.where(nonzero, zero, _diagonal(backend, rotated)), -1)
    # Null directions get a stand-in eigenvalue (the largest, or 1 for a zero base) and a
    # zero right side: their solution is exactly 0 and the equation stays well conditioned.
    largest = eigenvalues[..., -1:]
    eigenvalues = xp.where(nonzero, eigenvalues, xp.where(largest > 0, largest, xp.ones_like(largest)))
    roots = xp.where(nonzero, xp.sqrt(eigenvalues), zero)
    right_side = roots[..., :, None] * rotated * roots[..., None, :]   # W^1/2 (V^T D V) W^1/2
    right_side = 0.5 * (right_side + _swap(backend, right_side))
    sums = eigenvalues[..., :, None] + eigenvalues[..., None, :]
    # Start from the square root by eigendecomposition, then refine X = R - W by the chord
    # method (Newton with the start's R0 as the derivative's coefficient).
    square = _diagonal_matrix(backend, eigenvalues ** 2) + right_side
    squared_roots, basis = xp.linalg.eigh(0.5 * (square + _swap(backend, square)))
    roots = xp.sqrt(xp.where(squared_roots > 0, squared_roots, xp.zeros_like(squared_roots)))
    solution = (basis * roots[..., None, :]) @ _swap(backend, basis) - _diagonal_matrix(backend, eigenvalues)
    # X is symmetric, and so is every chord step: an antisymmetric part left by rounding here
    # would never be corrected.
    solution = 0.5 * (solution + _swap(backend, solution))
    # R0 is positive semi-definite; a floor keeps a singular one from dividing by 0.
    floor = 1e-16 * (eps / np.finfo(np.float64).eps)
    roots = xp.maximum(roots, floor * _amax(backend, roots, -1, keepdims=True))
    denominators = roots[..., :, None] + roots[..., None, :]
    basis_t = _swap(backend, basis)
    active = xp.zeros_like(direct) == 0
    previous = xp.full_like(direct, math.inf)
    for _ in range(TRACED_CHORD_STEPS if traced else CHORD_STEPS):
        residual = sums * solution + solution @ solution - right_side
        step = -(basis @ ((basis_t @ residual @ basis) / denominators) @ basis_t)
        step = 0.5 * (step + _swap(backend, step))
        finite = _all(backend, xp.isfinite(step), (-2, -1))
        # An entry stops once its step is not finite, is below an ulp of X, or stopped
        # shrinking (the residual's own rounding is reached); NumPy keeps stepping every
        # entry until all have stopped, which changes X by rounding noise only.
        moving = active & finite
        solution = solution + xp.where(moving[..., None, None], step, xp.zeros_like(step))
        current = _amax(backend, xp.abs(step), (-2, -1))
        converged = current <= floor * _amax(backend, xp.abs(solution), (-2, -1))
        active = moving & ~converged & ~(current > 0.5 * previous)
        previous = current
        if not traced and not bool(xp.any(active)):
            break
    refined = null_part + xp.einsum("...ij,...ij,...i->...", solution, solution, 1.0 / eigenvalues)
    # Accept X where it solves its equation to rounding; elsewhere the direct value stands.
    residual = sums * solution + solution @ solution - right_side
    scale = (_amax(backend, xp.abs(right_side), (-2, -1))
             + _amax(backend, eigenvalues, -1) * _amax(backend, xp.abs(solution), (-2, -1)))
    solved = xp.isfinite(refined) & (_amax(backend, xp.abs(residual), (-2, -1)) <= 1e-10 * scale)
    return xp.where(solved, refined, direct)


def _dropped_fraction(backend, eigenvalues, eps):
    """The sum of |eigenvalues| taken as 0, relative to the largest eigenvalue."""
    xp = backend.xp
    largest = eigenvalues[..., -1]
    dropped = _sum(backend, xp.where(_nonzero(backend, eigenvalues, eps), xp.zeros_like(eigenvalues),
                                     xp.abs(eigenvalues)), -1)
    return dropped / xp.where(largest > 0, largest, xp.ones_like(largest))


def _smallest_nonzero_ratio(backend, eigenvalues, eps):
    """The smallest eigenvalue not taken as 0 over the largest (0 for a zero matrix)."""
    xp = backend.xp
    smallest = _amin(backend, xp.where(_nonzero(backend, eigenvalues, eps), eigenvalues,
                                       xp.full_like(eigenvalues, math.inf)), -1)
    largest = eigenvalues[..., -1]
    return xp.where(xp.isfinite(smallest), smallest / xp.where(largest > 0, largest, xp.ones_like(largest)),
                    xp.zeros_like(smallest))


def _frechet_smooth(backend, cov1, cov2, positive1, positive2):
    """tr S1 + tr S2 - 2 sum sqrt(eigvalsh(L^T S_other L)), L the Cholesky factor of the
    anchor (see frechet_distance's docstring): the formula the gradient comes from."""
    xp = backend.xp
    d = cov1.shape[-1]
    eps = _eps(backend, cov1.dtype)
    eye = _eye(backend, d, cov1)
    mean_diagonal = backend.stop_gradient(_trace(backend, cov2)) / d
    jitter = math.sqrt(eps) * xp.where(mean_diagonal > 0, mean_diagonal, xp.ones_like(mean_diagonal))
    anchor = xp.where(positive2[..., None, None], cov2,
                      xp.where(positive1[..., None, None], cov1, cov2 + jitter[..., None, None] * eye))
    other = xp.where((positive2 | ~positive1)[..., None, None], cov1, cov2)
    _, failed = _cholesky(backend, backend.stop_gradient(anchor), differentiated=False)
    # Safe input: an anchor that still cannot be factored (an indefinite covariance with
    # validate=False) is replaced by I before the differentiated factorization.
    chol, _ = _cholesky(backend, xp.where(failed[..., None, None], eye, anchor), differentiated=False)
    product = _swap(backend, chol) @ other @ chol
    eigenvalues = xp.linalg.eigvalsh(0.5 * (product + _swap(backend, product)))
    # sqrt has an infinite derivative at 0: rounding-level eigenvalues are left out, through
    # a safe argument (1) so that the untaken sqrt's gradient is finite too.
    keep = _nonzero(backend, eigenvalues, eps) & (eigenvalues > 0)
    roots = xp.where(keep, xp.sqrt(xp.where(keep, eigenvalues, xp.ones_like(eigenvalues))),
                     xp.zeros_like(eigenvalues))
    return _trace(backend, cov1) + _trace(backend, cov2) - 2.0 * _sum(backend, roots, -1)


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------


def _validate(backend, check, function, arrays, covariances, numpy_dtype=None):
    """NumPy's ``check(function, *arrays)``, paying for a copy to NumPy only on failure.

    Shapes: the NumPy check on zero-stride stand-ins of the arrays' shapes (all zeros: finite
    and symmetric), so its shape and broadcasting messages come first, as in NumPy. Values:
    finiteness (a non-finite sum) and symmetry by reductions in the library, one
    synchronization; a failure runs the NumPy check on copies, which raises NumPy's message
    (or clears a false alarm, such as a sum of huge finite values that overflowed)."""
    xp = backend.xp
    check(function, *(np.broadcast_to(np.zeros((), np.float64), tuple(a.shape)) for a in arrays))
    holds = [xp.isfinite(xp.sum(a)) for a in arrays]
    holds += [_is_symmetric(backend, arrays[i]) for i in covariances if _size(arrays[i])]
    if not bool(xp.all(xp.stack(holds))):
        copies = [backend.to_numpy(a) for a in arrays]
        check(function, *(c.astype(numpy_dtype) if numpy_dtype else c for c in copies))


def _is_symmetric(backend, matrix):
    """Symmetric up to SYMMETRY_RTOL of the matrix's own scale (``validate.check_symmetric``)."""
    xp = backend.xp
    scale = _amax(backend, xp.abs(matrix), (-2, -1), keepdims=True)
    return ~xp.any(xp.abs(matrix - _swap(backend, matrix)) > SYMMETRY_RTOL * scale)


def _raise_not_positive_definite(backend, function, name, cov):
    """NumPy's message for a covariance whose Cholesky factorization failed."""
    np_gaussian._cholesky(function, name, backend.to_numpy(cov))
    # NumPy's factorization succeeded where the library's did not (a pivot at rounding
    # level): the same report.
    raise fail(function, name, "must be positive definite (Cholesky factorization failed)")


def _check_semidefinite(backend, function, name, cov):
    """Raise NumPy's message if ``cov`` (some entry of which failed Cholesky) is not positive
    semi-definite: the test in the library, the message from NumPy's own check in float64."""
    xp = backend.xp
    eigenvalues = xp.linalg.eigvalsh(cov)
    scale = _amax(backend, xp.abs(eigenvalues), -1)
    if bool(xp.any(_amin(backend, eigenvalues, -1) < -PSD_RTOL * scale)):
        np_frechet._cholesky_or_spectrum(function, name, backend.to_numpy(cov).astype(np.float64), True)


# --------------------------------------------------------------------------------------------
# what differs between torch and JAX
# --------------------------------------------------------------------------------------------


def _cholesky(backend, cov, differentiated=True):
    """(L, failed): the lower Cholesky factor, with I in the entries that could not be
    factored (so later steps stay finite), and a boolean per entry saying which.
    ``differentiated=False``: no derivative will be taken through L, or ``cov`` is known to
    be factorable (JAX then needs no second factorization, see below)."""
    xp = backend.xp
    if backend.name == "torch":
        chol, info = xp.linalg.cholesky_ex(cov)
        failed = info != 0
    else:
        chol = xp.linalg.cholesky(cov)     # NaN where it fails
        failed = ~_all(backend, xp.isfinite(_diagonal(backend, chol)), -1)
        if differentiated and _needs_gradient(backend, [cov]):
            # A derivative may be taken: JAX's Cholesky derivative at a NaN factor is NaN
            # even where nothing flows back (NaN x 0), so those entries are factored again
            # at a safe stand-in, I. (torch's stays finite: cholesky_ex's factor is finite.)
            eye = _eye(backend, cov.shape[-1], cov)
            chol = xp.linalg.cholesky(xp.where(failed[..., None, None], eye, cov))
    if not _skippable(backend, failed, [cov]):
        chol = xp.where(failed[..., None, None], _eye(backend, cov.shape[-1], cov), chol)
    return chol, failed


def _solve_lower(backend, lower, right_sides):
    if backend.name == "torch":
        return backend.xp.linalg.solve_triangular(lower, right_sides, upper=False)
    from jax.scipy.linalg import solve_triangular

    return solve_triangular(lower, right_sides, lower=True)


def _lu_factor(backend, matrix):
    if backend.name == "torch":
        # The _ex variant reports a singular matrix in ``info`` instead of raising.
        lu, pivots, _ = backend.xp.linalg.lu_factor_ex(matrix)
        return lu, pivots
    from jax.scipy.linalg import lu_factor

    return lu_factor(matrix)


def _lu_solve(backend, factorization, vectors):
    """``matrix^-1 vectors`` for a batch of vectors (..., d)."""
    if backend.name == "torch":
        return backend.xp.linalg.lu_solve(*factorization, vectors[..., None])[..., 0]
    from jax.scipy.linalg import lu_solve

    return lu_solve(factorization, vectors[..., None])[..., 0]


def _svdvals(backend, matrix):
    if backend.name == "torch":
        return backend.xp.linalg.svdvals(matrix)
    return backend.xp.linalg.svd(matrix, compute_uv=False)


def _matvec(backend, matrix, vector):
    return backend.xp.einsum("...ij,...j->...i", matrix, vector)


def _swap(backend, array):
    return backend.xp.swapaxes(array, -1, -2)


def _symmetric_part(backend, matrix):
    return 0.5 * (matrix + _swap(backend, matrix))


def _diagonal(backend, matrix):
    if backend.name == "torch":
        return backend.xp.diagonal(matrix, dim1=-2, dim2=-1)
    return backend.xp.diagonal(matrix, axis1=-2, axis2=-1)


def _trace(backend, matrix):
    return _sum(backend, _diagonal(backend, matrix), -1)


def _diagonal_matrix(backend, diagonals):
    """Batched diag: (..., d) -> (..., d, d)."""
    return diagonals[..., :, None] * _eye(backend, diagonals.shape[-1], diagonals)


def _eye(backend, d, like):
    if backend.name == "torch":
        return backend.xp.eye(d, dtype=like.dtype, device=like.device)
    return backend.xp.eye(d, dtype=like.dtype)


def _sum(backend, array, axis, keepdims=False):
    if backend.name == "torch":
        return backend.xp.sum(array, dim=axis, keepdim=keepdims)
    return backend.xp.sum(array, axis=axis, keepdims=keepdims)


def _amax(backend, array, axis, keepdims=False):
    if backend.name == "torch":
        return backend.xp.amax(array, dim=axis, keepdim=keepdims)
    return backend.xp.max(array, axis=axis, keepdims=keepdims)


def _amin(backend, array, axis, keepdims=False):
    if backend.name == "torch":
        return backend.xp.amin(array, dim=axis, keepdim=keepdims)
    return backend.xp.min(array, axis=axis, keepdims=keepdims)


def _all(backend, array, axis):
    if backend.name == "torch":
        if isinstance(axis, tuple):
            return backend.xp.all(backend.xp.flatten(array, start_dim=array.ndim - len(axis)), dim=-1)
        return backend.xp.all(array, dim=axis)
    return backend.xp.all(array, axis=axis)


def _count(backend, mask):
    """How many entries of the last axis hold (as a float: exact for any d)."""
    xp = backend.xp
    ones = xp.ones(mask.shape, dtype=xp.float32) if backend.name == "jax" else \
        xp.ones(mask.shape, dtype=xp.float32, device=mask.device)
    return _sum(backend, xp.where(mask, ones, 0 * ones), -1)


def _size(array) -> int:
    return math.prod(tuple(array.shape))


def _eps(backend, dtype) -> float:
    return float(backend.xp.finfo(dtype).eps)


def _precision(backend, dtype) -> int:
    """Significand bits (53 for float64, 24 for float32)."""
    return 1 - round(math.log2(_eps(backend, dtype)))


def _batch(vectors, matrices):
    """The broadcast batch shape of vectors (..., d) and matrices (..., d, d)."""
    shapes = [tuple(v.shape)[:-1] for v in vectors] + [tuple(m.shape)[:-2] for m in matrices]
    return tuple(np.broadcast_shapes(*shapes))


def _batch_of(*matrices):
    return tuple(np.broadcast_shapes(*(tuple(m.shape)[:-2] for m in matrices)))


def _nan_where(backend, mask, result):
    """``result`` with NaN where ``mask`` holds (entries that could not be computed)."""
    xp = backend.xp
    return xp.where(mask, xp.full_like(result, math.nan), result)


def _skippable(backend, mask, arrays, traced=None):
    """Whether an accurate route for the entries of ``mask`` can be skipped: in eager mode
    when no entry needs it (one synchronization); never under tracing."""
    if traced is None:
        traced = backend.tracing(arrays)
    return not traced and not bool(backend.xp.any(mask))


def _needs_gradient(backend, arrays) -> bool:
    """Whether a derivative may be taken: torch tensors that require grad (with grad mode
    on) or any tracing; in JAX, a tracer (jax.grad in eager mode traces with concrete
    values, which ``backend.tracing`` does not count); plain JAX arrays carry no derivative."""
    if backend.name == "torch":
        torch = backend.xp
        return backend.tracing(arrays) or (torch.is_grad_enabled() and any(a.requires_grad for a in arrays))
    import jax

    return any(isinstance(a, jax.core.Tracer) for a in arrays)


def diffusion_discrete_linear_schedule(t, T, beta_start, beta_end, *, backend, validate=True,
                                       function="diffusion_discrete_linear_schedule"):
    """DDPM's discrete linear schedule for torch and JAX: computed by the NumPy version (its running
    sum in log space is a loop over the steps, not an array expression) and returned as arrays of the
    library, on the device and in the float dtype of the arguments. A schedule is a table of
    constants: no gradient flows through it, and under tracing it is an error."""
    arrays = backend.convert([t, T, beta_start, beta_end])
    if backend.tracing(arrays):
        raise ValueError(f"{function}: a schedule is computed eagerly (a table of constants), "
                         "not under torch.compile or jax.jit")
    like = arrays[0]
    result = np_schedules.diffusion_discrete_linear_schedule(
        *(backend.to_numpy(array) for array in arrays), validate=validate, function=function)
    values = [backend.asarray(np.asarray(value, dtype=np.float64)) for value in result]
    if backend.name == "torch":
        values = [value.to(device=like.device, dtype=like.dtype) for value in values]
    else:
        values = [value.astype(like.dtype) for value in values]
    return type(result)(*values)
