"""The Fréchet distance between Gaussians fitted to two feature arrays (FID from features).

    from symgen.numerics.frechet_features import frechet_distance_from_features
    fid = frechet_distance_from_features(real_features, generated_features)

With few images the sample covariances are singular (rank n - 1 < d for n images of d
Inception features), and the d x d route of FID tools, ``scipy.linalg.sqrtm(cov1 @ cov2)``,
takes square roots of rounded zero eigenvalues: complex noise, and errors of 1e-11..1e-7 of
the value (measured at d = 2048, n = 200; tests/test_frechet_features.py). Here the
covariance term is computed from the features themselves, so a covariance of n points is
treated as what it is, of rank at most n - 1.

The identity. With centred features X_c (n x d), Y_c (m x d) and factors B_x = X_c^T /
sqrt(n - 1), B_y = Y_c^T / sqrt(m - 1), C_x = B_x B_x^T and C_y = B_y B_y^T. The matrix
C_x^1/2 C_y C_x^1/2 has the nonzero eigenvalues of (B_x^T B_y)(B_x^T B_y)^T, so the trace
of its square root is the sum of the singular values of the n x m matrix
B_x^T B_y = X_c Y_c^T / sqrt((n - 1)(m - 1)): its nuclear norm (the trick of FastFID,
Mathiasen & Hvilshøj 2020, Section 2, and of symgen/numerics/frechet.py for square factors).
"""
from __future__ import annotations

import math

import numpy as np

from symgen.numerics.frechet import frechet_distance
from symgen.numerics.validate import check_finite, fail, float_dtype

FUNCTION = "frechet_distance_from_features"

# --- choosing the route by cost ---------------------------------------------------------------
#
# Both routes are counted in flops of a matrix product (GEMM), the fastest thing BLAS does;
# slower kernels get a weight, measured with one OpenBLAS thread at d = 512 and 1024
# (matrix product ~70 GFlop/s):
#
# - the features route: the product X_c Y_c^T, 2 n m d flops, and the singular values of
#   that p x q matrix (p = min(n, m), q = max(n, m)), 4 p^2 q - 4/3 p^3 flops (Golub-Reinsch,
#   singular values only: Golub & Van Loan, Matrix Computations, sec. 8.6), which LAPACK's
#   bidiagonalisation runs at about a sixth of GEMM's rate (measured 4.7..7.0; SVD_WEIGHT);
# - the covariance route: the two products X_c^T X_c and Y_c^T Y_c, 2 (n + m) d^2 flops
#   (fewer: NumPy uses a symmetric rank-k update), then frechet_distance on the d x d
#   covariances: ~15 d^3 GEMM flops when both are positive definite (Cholesky factors and a
#   symmetric eigenproblem), ~30..50 d^3 when one is singular (n <= d: eigendecompositions
#   and an SVD), plus ~80 microseconds of Python steps (COVARIANCE_OVERHEAD, measured against
#   the features route at n, m, d ~ 10).
#
# Without the preference below, the model puts the switch at n = m ~ 1.1 d for d = 512, where
# the two measured times agree within 2% (0.041 s and 0.040 s); at n = m = d the features
# route was 3x faster (0.034 s against 0.104 s), at n = m = 2 d 7x slower; with n = 0.1 d
# images against m = 4 d the features route was 8x faster.
SVD_WEIGHT = 6.0
COVARIANCE_REGULAR_WEIGHT = 15.0
COVARIANCE_SINGULAR_WEIGHT = 35.0
COVARIANCE_OVERHEAD = 5e6
# The features route is taken while it costs up to twice the covariance route: it is the
# more accurate one (forming a covariance squares the features' condition number, see the
# docstring's accuracy section), most of all where n is near d: the sample covariance of n
# Gaussian points in d dimensions has condition number ~((1 + sqrt(d/n)) / (1 - sqrt(d/n)))^2
# (Marchenko-Pastur), ~1700 at n = 1.1 d and ~200 at 1.32 d, where the switch falls for n = m.
FEATURES_PREFERENCE = 2.0

# The direct value c = tr C_x + tr C_y - 2 ||B_x^T B_y||_* errs by a few ulps of the traces;
# where c is below this fraction of them (nearly identical feature sets) the relative error
# would be amplified over 20 times, and the Procrustes residual below replaces it.
STABLE_ROUTE_FRACTION = 0.05
# Where ||V - I||_F is below this, the Procrustes rotation V is rebuilt from a skew matrix
# (see _orthogonal_shift).
CAYLEY_LIMIT = 1.0
# Singular values of the n x n cross product below NULL_ULPS x n ulps of the largest are
# taken as its exact zeros (rank <= min(n - 1, d)) when completing the Procrustes rotation.
NULL_ULPS = 4.0
# Newton steps on the Procrustes rotation of row-paired sets (see _orthogonal_shift): each
# multiplies its error by ~ulps x the conditioning; two reach rounding, a third is a guard.
NEWTON_STEPS = 3
EPS = np.finfo(np.float64).eps


def frechet_distance_from_features(x, y, *, validate=True):
    r"""Squared Fréchet distance between Gaussians fitted to the rows of ``x`` and ``y`` (FID).

    .. math::

        \lVert\mu_x-\mu_y\rVert^2 + \operatorname{tr}C_x + \operatorname{tr}C_y
        - 2\operatorname{tr}\bigl((C_x^{1/2}C_yC_x^{1/2})^{1/2}\bigr),
        \qquad
        \mu_x = \tfrac1n\textstyle\sum_i x_i,\quad
        C_x = \tfrac{1}{n-1}\textstyle\sum_i (x_i-\mu_x)(x_i-\mu_x)^\top

    and likewise for ``y``: the squared 2-Wasserstein distance between N(mu_x, C_x) and
    N(mu_y, C_y) (Dowson & Landau 1982), which is FID when the rows are Inception pool
    features (Heusel et al. 2017, eq. 6).

    Parameters
    ----------
    x : array_like, shape (n, d)
        One feature vector a row (say, of n generated images), n >= 2.
    y : array_like, shape (m, d)
        The other set (say, m reference images), m >= 2, the same d.
    validate : bool
        Check shapes and finiteness (``ValueError`` naming the argument otherwise).

    Returns
    -------
    float64 or float32 scalar
        Real and never negative. Computed in float64; a float32 argument gives a float32
        result, integer arguments float64.

    Notes
    -----
    Convention: the covariances divide by n - 1 and m - 1, as ``np.cov(features,
    rowvar=False)`` and pytorch-fid do; the means are row means.

    Method. With centred features X_c = x - mu_x (n x d), Y_c likewise, and factors
    B_x = X_c^T / sqrt(n - 1), B_y = Y_c^T / sqrt(m - 1) (C_x = B_x B_x^T), the covariance
    term is

    .. math::

        c = \lVert B_x\rVert_F^2 + \lVert B_y\rVert_F^2 - 2\lVert B_x^\top B_y\rVert_*
          = \min_{V V^\top = I}\lVert B_x V - B_y\rVert_F^2 ,

    the nuclear norm of the n x m matrix X_c Y_c^T / sqrt((n-1)(m-1)) (the singular values
    of B_x^T B_y are the square roots of the eigenvalues of C_x^1/2 C_y C_x^1/2), and the
    traces are squared Frobenius norms of the centred features. The minimum over n x m
    matrices V with orthonormal rows (n <= m) is the orthogonal Procrustes problem
    (Schönemann 1966; Bhatia, Jain & Lim 2019, Theorem 1, for square factors), solved
    by V = P Q^T from the SVD B_x^T B_y = P S Q^T. No d x d square root is formed.

    - Few images (the usual FID case, n and m up to about d): the n x m route above.
      Where c is below 5% of tr C_x + tr C_y (nearly identical feature sets) the
      difference would cancel, and c is taken as the sum of squares ||B_x V - B_y||_F^2
      instead. For n = m, x's rows are first put in the order of their nearest rows of y
      (when that is a permutation), and the residual is formed as
      ((V^T - I) X_c + centred(x - y)) / sqrt(n - 1), the mean difference as the mean of
      x - y: exact differences of nearby rows (Sterbenz), with V^T - I from an exactly
      skew matrix (Cayley) refined by Newton steps.
    - Many images (n, m larger than about 1.3 d): the covariances X_c^T X_c / (n - 1) are
      formed and passed to :func:`symgen.frechet_distance`, which has its own route for
      nearly equal covariances. The switch is set by counted and measured cost (see
      SVD_WEIGHT in the source), in favour of the more accurate features route while it
      costs at most twice as much: for n = m it falls at n ~ 1.32 d (d >= 512).

    The features are first scaled by a power of 2 (exactly), so no product overflows.

    Accuracy (against 50 digits at the given float64 features; tests/test_frechet_features.py).
    With F the exact value, s = tr C_x + tr C_y + ||mu_x||^2 + ||mu_y||^2 (of the given
    features) and eps = 2^-52, the absolute error is within

    .. math::

        64\,\varepsilon F + 64\,\varepsilon\sqrt{k F s} + 64\,k\,\varepsilon^2 s,
        \qquad k = n + m \text{ on the features route.}

    At generic inputs (F comparable to s) that is ~1e-13 of the value (measured: below
    5e-15). Where F << s (nearly identical sets) the direct difference would err by
    ~eps s / F of the value; the Procrustes residual errs by ~eps sqrt(k s / F) (the root
    term: the rounding of the centred features and of the means, ulps of |x| first order in
    the residual, and V's loss of orthogonality). Sets of the same size whose rows pair up
    (the same images, perturbed, in any order, or shifted) do better, without the root
    term: their rows are paired, the residual is formed from exact differences, and V is
    refined by Newton steps near I (measured within 1.3e-15 of the value down to
    F = 1e-36 s, where the direct difference gave errors up to 1e12 times the value; x == y,
    in any row order, gave at most 3e-31 s, within the bound's 64 k eps^2 s). Rank-deficient covariances (n <= d, repeated rows, collinear
    features) are exact: the zero singular values of X_c Y_c^T come out at ulps of its norm,
    not as square roots of rounded eigenvalues.

    On the covariance route (n and m above ~1.3 d) the covariances are rounded before their
    square roots are taken, which squares the features' condition number: there the bound
    holds with k = (n + m + d) kappa, kappa the larger ratio of the largest to the smallest
    eigenvalue of C_x and C_y, as measured for kappa <= 1e6 (generic values were still within
    2e-13 of the value). Far beyond, frechet_distance's own bound at the rounded covariances
    applies: at kappa ~ 1e9 and nearly identical sets (F < 1e-10 s) it can lose every digit,
    and generic values err by up to ~1e-8 of themselves, where the features route stays
    within its bound.

    References
    ----------
    D. C. Dowson and B. V. Landau, "The Fréchet distance between multivariate normal
    distributions", J. Multivariate Anal. 12 (1982) 450-455.
    M. Heusel, H. Ramsauer, T. Unterthiner, B. Nessler, S. Hochreiter, "GANs trained by a
    two time-scale update rule converge to a local Nash equilibrium", NeurIPS 2017, eq. (6).
    R. Bhatia, T. Jain, Y. Lim, "On the Bures-Wasserstein distance between positive definite
    matrices", Expo. Math. 37 (2019) 165-191, Theorem 1.
    P. H. Schönemann, "A generalized solution of the orthogonal Procrustes problem",
    Psychometrika 31 (1966) 1-10.
    A. Mathiasen, F. Hvilshøj, "Backpropagating through Fréchet Inception Distance",
    arXiv:2009.14075 (2020), Section 2.
    """
    x, y = np.asarray(x), np.asarray(y)
    if validate:
        _check_arguments(x, y)
    # float32 stays float32; integers (and booleans) alone give float64 whatever their width.
    floating = any(np.issubdtype(a.dtype, np.floating) for a in (x, y))
    dtype = float_dtype(x, y) if floating else np.dtype(np.float64)
    x, y = x.astype(np.float64, copy=False), y.astype(np.float64, copy=False)
    # The distance is symmetric; the Procrustes route wants the first set the smaller one.
    if x.shape[0] > y.shape[0]:
        x, y = y, x
    exponent = _scale_exponent(x, y)
    if exponent:
        x, y = np.ldexp(x, -exponent), np.ldexp(y, -exponent)   # exact: a power of 2
    n, d = x.shape
    m = y.shape[0]
    if d == 0:
        return np.asarray(0.0).astype(dtype)[()]   # no features: both Gaussians are a point
    mean_x, mean_y = x.mean(axis=0), y.mean(axis=0)
    centred_x, centred_y = x - mean_x, y - mean_y
    if _features_route_cheaper(n, m, d):
        mean_difference, covariance_term = _features_route(x, y, centred_x, centred_y)
        mean_difference = mean_x - mean_y if mean_difference is None else mean_difference
        # Mathematically ||B_x^T B_y||_* <= (||B_x||_F^2 + ||B_y||_F^2) / 2 (its singular
        # values are at most the products of those of B_x and B_y, and 2ab <= a^2 + b^2), so
        # c >= 0; rounding can leave an exact 0 (x == y) a few ulps negative.
        value = float(np.dot(mean_difference, mean_difference)) + max(covariance_term, 0.0)
    else:
        cov_x = _covariance(centred_x)
        cov_y = _covariance(centred_y)
        # For n = m the mean of x - y: exact differences where the rows are paired and close.
        mean_difference = (x - y).mean(axis=0) if n == m else mean_x - mean_y
        value = float(frechet_distance(mean_difference, cov_x, np.zeros(d), cov_y,
                                       validate=validate, function=FUNCTION))
    # np.ldexp, not math.ldexp: a value beyond float64's range becomes inf, not an exception.
    return np.ldexp(np.float64(value), 2 * exponent).astype(dtype)[()]


def _check_arguments(x, y):
    for name, array in (("x", x), ("y", y)):
        if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_) \
                or np.issubdtype(array.dtype, np.complexfloating):
            raise fail(FUNCTION, name, f"must be a real array, got dtype {array.dtype}")
        if array.ndim != 2:
            raise fail(FUNCTION, name, f"must have shape ({'n' if name == 'x' else 'm'}, d), "
                                       f"got shape {array.shape}")
    if y.shape[1] != x.shape[1]:
        raise fail(FUNCTION, "y", f"has d = {y.shape[1]} features a row, but x has d = {x.shape[1]}")
    for name, array in (("x", x), ("y", y)):
        if array.shape[0] < 2:
            raise fail(FUNCTION, name, f"must have at least 2 rows (its covariance divides by "
                                       f"rows - 1), got {array.shape[0]}")
    for name, array in (("x", x), ("y", y)):
        check_finite(FUNCTION, name, array)


def _scale_exponent(x, y):
    """e with max |entry| / 2^e in [0.5, 1): scaling by 2^-e is exact and keeps every product
    (entries up to d * max(n, m) * 1) far from overflow, and tiny features from underflow."""
    largest = max((float(np.max(np.abs(a))) for a in (x, y) if a.size), default=0.0)
    if largest == 0.0 or not math.isfinite(largest):
        return 0
    return math.frexp(largest)[1]


def _features_route_cheaper(n, m, d):
    """Whether the n x m route costs less than forming the covariances (see SVD_WEIGHT)."""
    small, large = min(n, m), max(n, m)
    features = 2.0 * n * m * d + SVD_WEIGHT * (4.0 * small**2 * large - 4.0 / 3.0 * small**3)
    # frechet_distance takes its Cholesky route only where both covariances can be positive
    # definite, i.e. both sets have more than d points.
    weight = COVARIANCE_REGULAR_WEIGHT if small > d else COVARIANCE_SINGULAR_WEIGHT
    covariance = 2.0 * (n + m) * d**2 + weight * float(d) ** 3 + COVARIANCE_OVERHEAD
    return features <= FEATURES_PREFERENCE * covariance


def _covariance(centred):
    # X_c^T X_c is computed by a symmetric rank-k update, so it is exactly symmetric.
    return (centred.T @ centred) / (centred.shape[0] - 1)


def _features_route(x, y, centred_x, centred_y):
    """(mean difference or None, covariance term) by the n x m route, n <= m.

    The covariance term is tr C_x + tr C_y - 2 ||B_x^T B_y||_*; where that difference
    cancels, the Procrustes residual (see _procrustes_residual). The mean difference is
    returned where rows of x and y were found paired (then as the mean of their exact
    differences), else None: the difference of the means."""
    n, m = centred_x.shape[0], centred_y.shape[0]
    traces = (_squared_norm(centred_x) / (n - 1) + _squared_norm(centred_y) / (m - 1))
    cross = centred_x @ centred_y.T
    scale = 1.0 / math.sqrt((n - 1) * (m - 1))
    # An SVD gives a zero singular value (rank n - 1 from the centring, and any further
    # rank deficiency) at ulps of ||cross||; eigenvalues of cross cross^T would give it as
    # the square root of ulps of ||cross||^2, ~1e-8 ||cross||.
    nuclear = float(np.sum(np.linalg.svd(cross, compute_uv=False))) * scale
    term = traces - 2.0 * nuclear
    if not term < STABLE_ROUTE_FRACTION * traces:
        return None, term
    return _procrustes_residual(x, y, centred_x, centred_y, cross)


def _procrustes_residual(x, y, centred_x, centred_y, cross):
    """(mean difference or None, min over V of ||B_x V - B_y||_F^2), V n x m with orthonormal
    rows, at V = P Q^T: a sum of squares, no cancellation beyond the rounding of its terms.

    Any V with orthonormal rows gives at least the minimum, and V's own error (its singular
    vectors are off by ulps / gap) enters only at second order, at a minimum; V's loss of
    orthogonality (ulps) enters at first order, times the residual.

    For n = m, where the nearest rows pair x with y (the same images, maybe in another order,
    their features perturbed), x's rows are put in y's order and the residual is formed from the
    exact differences of paired rows: V^T X_c - Y_c = (V^T - I) X_c + (X_c - Y_c), with
    V^T - I from _orthogonal_shift, small and accurate."""
    n, m = centred_x.shape[0], centred_y.shape[0]
    left, singular_values, right = np.linalg.svd(cross, full_matrices=False)
    order = None
    if n == m:
        # Pair each row of y with the nearest row of x (centred: |x_i|^2 - 2 x_i . y_j is
        # |x_i - y_j|^2 less a term constant in i), where that makes a permutation.
        order = np.argmin(np.einsum("ij,ij->i", centred_x, centred_x)[:, None] - 2.0 * cross, axis=0)
        if np.unique(order).size != n:
            order = None
    if order is None:
        rotation = left @ right                            # n x m, V V^T = I
        residual = (rotation.T @ centred_x) / math.sqrt(n - 1) - centred_y / math.sqrt(m - 1)
        return None, _squared_norm(residual)
    # Reordering x's rows changes neither its mean nor its covariance, and permutes the rows
    # of cross and of its left singular vectors.
    paired_x, left = centred_x[order], left[order]
    difference = x[order] - y                             # exact where rows are close (Sterbenz)
    centred_difference = difference - difference.mean(axis=0)      # X_c - Y_c, paired
    shift = _orthogonal_shift(_rotation_nearest_identity(left, singular_values, right) - np.eye(n),
                              paired_x, -centred_difference)
    residual = shift @ paired_x + centred_difference
    return difference.mean(axis=0), _squared_norm(residual) / (n - 1)


def _rotation_nearest_identity(left, singular_values, right):
    """V^T for V = P Q^T (n = m), completed on the null space of the cross product by the
    rotation nearest the identity.

    The cross product X_c Y_c^T has rank at most min(n - 1, d): on its null space any
    rotation gives the same value, and the SVD picks one at random (a sign, or any rotation
    when n > d + 1). Choosing V there to maximise tr V, U = polar(P_0^T Q_0) for the null
    blocks P_0, Q_0, keeps V ~ I for row-paired sets, which _orthogonal_shift needs."""
    threshold = NULL_ULPS * left.shape[0] * EPS * singular_values[0]
    rank = int(np.count_nonzero(singular_values > threshold))
    rotation = left[:, :rank] @ right[:rank]
    if rank < left.shape[0]:
        null_left, null_right = left[:, rank:], right[rank:].T
        outer, _, inner = np.linalg.svd(null_left.T @ null_right)
        rotation = rotation + null_left @ (outer @ inner) @ null_right.T
    return rotation.T


def _squared_norm(array):
    flat = array.ravel()
    return float(np.dot(flat, flat))


def _orthogonal_shift(shift, centred_x, centred_difference):
    """V^T - I for an exactly orthogonal V at the optimum near the computed one, accurate
    relative to its size (n = m, rows of x and y paired, so V ~ I).

    The computed V is orthogonal only to ulps, and its entries are off by ulps: that is ulps
    of X_c in a residual that may be far smaller. Near I, V^T = (I - W)(I + W)^-1 (Cayley)
    for a skew W = (I + V^T)^-1 (I - V^T); made exactly skew, W stands for an exactly
    orthogonal V, and V^T - I = -2 W (I + W)^-1 is formed relative to W.

    V also carries the SVD's error, ulps of ||K|| / (s_i + s_j) in the plane of singular
    values s_i, s_j, which costs ~eps^2 ||K||^2 / s of the value (second order, but with
    the features' conditioning). Newton steps remove it: at the optimum V^T K is symmetric,
    and with K = G + X_c (Y_c - X_c)^T, G = X_c X_c^T exactly symmetric, the asymmetry of
    V^T K is that of (V^T - I) G + V^T X_c (Y_c - X_c)^T, two small terms computed to ulps
    of themselves. A rotation (I + O) V^T with O G + G O = -2 asym(V^T K) (in G's
    eigenbasis) cancels it to first order."""
    size = shift.shape[0]
    # ||V - I||_F < 1 keeps V's eigenvalues away from -1, so I + V is well conditioned.
    if not np.linalg.norm(shift) < CAYLEY_LIMIT:
        return shift
    identity = np.eye(size)
    skew = np.linalg.solve(2.0 * identity + shift, -shift)
    skew = 0.5 * (skew - skew.T)
    gram = centred_x @ centred_x.T                  # a symmetric rank-k update: exactly symmetric
    small = centred_x @ centred_difference.T        # X_c (Y_c - X_c)^T
    eigenvalues, basis = np.linalg.eigh(gram)
    sums = eigenvalues[:, None] + eigenvalues[None, :]
    # Pairs of directions in G's null space: any rotation there gives the same value.
    usable = sums > NULL_ULPS * size * EPS * max(eigenvalues[-1], 0.0)
    shift = _cayley_shift(skew, identity)
    for _ in range(NEWTON_STEPS):
        product = shift @ gram + (identity + shift) @ small       # V^T K - G
        asymmetry = basis.T @ (product - product.T) @ basis       # 2 asym, in G's eigenbasis
        rotation = basis @ np.where(usable, -asymmetry / np.where(usable, sums, 1.0), 0.0) @ basis.T
        rotation = 0.5 * (rotation - rotation.T)
        # (I + O)(I - 2 W) ~ I - 2 (W - O / 2).
        step = np.abs(rotation).max()
        skew = skew - 0.5 * rotation
        shift = _cayley_shift(skew, identity)
        if not step > 4.0 * EPS * np.abs(skew).max():
            break
    return shift


def _cayley_shift(skew, identity):
    """(I - W)(I + W)^-1 - I = -2 W (I + W)^-1 = -2 ((I + W)^-T W^T)^T, for skew W."""
    return -2.0 * np.linalg.solve((identity + skew).T, skew.T).T
