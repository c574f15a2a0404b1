"""frechet_distance_from_features: FID from two feature arrays.

The reference (REFERENCE_DIGITS digits, mpmath) follows the definition and not the method:
covariances from the features, C_x^1/2 by a symmetric eigendecomposition, the eigenvalues of
C_x^1/2 C_y C_x^1/2 by another, the sum of their square roots (eigenvalues at the reference's
noise level taken as 0). The function instead takes the nuclear norm of X_c Y_c^T (or passes
covariances to frechet_distance), so the two share no step beyond the centring.

Tolerances are the docstring's: GENERIC_RTOL relative where the value is not a small part of
the traces, and everywhere the stated bound

    64 eps F + 64 eps sqrt(k F s) + 64 k eps^2 s,   s = tr C_x + tr C_y + |mu_x|^2 + |mu_y|^2,

with k = n + m on the features route and k = (n + m + d) kappa on the covariance route
(kappa the larger condition number of the two covariances, kappa <= KAPPA_TESTED). Each
route is tested at every size by forcing it (``forced``), as well as through the switch.
"""
from __future__ import annotations

import contextlib
import math
import os
import warnings
from unittest import mock

import mpmath
import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import linalg

import symgen.numerics.frechet_features as module
from symgen.numerics.frechet import frechet_distance
from symgen.numerics.frechet_features import frechet_distance_from_features

REFERENCE_DIGITS = 50
EPS = 2.0**-52
GENERIC_RTOL = 1e-12
# "Generic": the value is at least this fraction of s (little cancellation); there the tests
# hold the function to GENERIC_RTOL, tighter than the stated bound (~2e-12 at k = 24).
GENERIC_FRACTION = 1e-3
KAPPA_TESTED = 1e6
ROUTES = (None, "features", "covariance")


# --- the reference, the bound, the routes ----------------------------------------------------------


def reference(x, y):
    """(F, s) at REFERENCE_DIGITS digits, by eigendecompositions (no nuclear norm)."""
    with mpmath.workdps(REFERENCE_DIGITS):
        (mean_x, cov_x), (mean_y, cov_y) = mp_moments(x), mp_moments(y)
        d = len(mean_x)
        mean_term = mpmath.fsum((a - b) ** 2 for a, b in zip(mean_x, mean_y))
        scale = (mpmath.fsum(cov_x[k, k] + cov_y[k, k] for k in range(d))
                 + mpmath.fsum(a * a for a in mean_x) + mpmath.fsum(b * b for b in mean_y))
        eigenvalues, vectors = mpmath.eigsy(cov_x)
        root = vectors * mpmath.diag([mpmath.sqrt(w) for w in clipped(eigenvalues)]) * vectors.T
        inner = root * cov_y * root
        inner = (inner + inner.T) / 2                      # symmetric to the last digit
        roots = mpmath.fsum(mpmath.sqrt(w) for w in clipped(mpmath.eigsy(inner, eigvals_only=True)))
        traces = mpmath.fsum(cov_x[k, k] + cov_y[k, k] for k in range(d))
        value = mean_term + traces - 2 * roots
        return max(float(value), 0.0), float(scale)


def mp_moments(features):
    """Row mean and covariance (denominator n - 1), exact to the working precision."""
    n, d = features.shape
    rows = [[mpmath.mpf(float(v)) for v in row] for row in features]   # floats convert exactly
    mean = [mpmath.fsum(rows[i][j] for i in range(n)) / n for j in range(d)]
    centred = [[row[j] - mean[j] for j in range(d)] for row in rows]
    cov = mpmath.matrix(d, d)
    for a in range(d):
        for b in range(a, d):
            cov[a, b] = cov[b, a] = mpmath.fsum(row[a] * row[b] for row in centred) / (n - 1)
    return mean, cov


def clipped(eigenvalues):
    """Eigenvalues with those at the reference's noise level (exact zeros of a singular
    covariance come out ~10^-50 of the largest, of either sign) set to 0."""
    values = [eigenvalues[k] for k in range(len(eigenvalues))]
    # Relative to the largest only: features of size 1e-132 have covariance eigenvalues of 1e-264 and
    # an inner product of 1e-527, which an absolute floor would take for noise.
    noise = mpmath.mpf(10) ** (10 - REFERENCE_DIGITS) * max([abs(v) for v in values] + [mpmath.mpf(0)])
    return [v if v > noise else mpmath.mpf(0) for v in values]


def stated_bound(value, scale, k):
    """The docstring's absolute error bound (none, inf, for k = inf)."""
    if math.isinf(k):
        return math.inf
    return 64 * EPS * value + 64 * EPS * math.sqrt(k * value * scale) + 64 * k * EPS**2 * scale


def allowed_error(value, scale, k):
    """What the tests accept: GENERIC_RTOL of the value where it is a fair part of s (no
    cancellation), and the stated bound everywhere."""
    bound = stated_bound(value, scale, k)
    return min(bound, GENERIC_RTOL * value) if value >= GENERIC_FRACTION * scale else bound


def passes(result, x, y, k=None, expected=None):
    """The comparison every accuracy test makes (and the wrong variants must fail)."""
    value, scale = reference(x, y) if expected is None else expected
    k = len(x) + len(y) if k is None else k
    return abs(float(result) - value) <= allowed_error(value, scale, k)


def condition_number(features):
    """Largest over smallest eigenvalue of the sample covariance (inf when singular)."""
    if len(features) <= features.shape[1]:
        return math.inf
    singular_values = np.linalg.svd(features - features.mean(axis=0), compute_uv=False)
    if not singular_values[-1] > 1e-8 * singular_values[0]:
        return math.inf
    return float((singular_values[0] / singular_values[-1]) ** 2)


@contextlib.contextmanager
def forced(route):
    """Take the features route or the covariance route whatever the cost (None: the switch)."""
    if route is None:
        yield
        return
    with mock.patch.object(module, "_features_route_cheaper", lambda n, m, d: route == "features"):
        yield


def route_k(route, x, y):
    """k of the stated bound for the route these arguments take."""
    n, m, d = len(x), len(y), x.shape[1]
    covariance = route == "covariance" or (route is None and not module._features_route_cheaper(n, m, d))
    return (n + m + d) * max(condition_number(x), condition_number(y)) if covariance else n + m


# --- the cases ---------------------------------------------------------------------------------------

GENERIC_KINDS = ("independent", "low rank", "repeated rows", "shared directions")
CANCELLING_KINDS = ("paired", "permuted", "subset", "offset", "identical")


def generic_case(kind, n, m, d, seed):
    """Two independent feature sets: Gaussian, of rank below d (collinear features), made of
    a few repeated rows, or in overlapping subspaces."""
    rng = np.random.default_rng(seed)
    scales = np.exp(rng.uniform(-1, 1, d))

    def draw(rows):
        if kind == "independent":
            return rng.standard_normal((rows, d)) * scales + 2 * rng.standard_normal(d)
        if kind == "low rank":
            rank = int(rng.integers(1, max(d, 2)))
            return rng.standard_normal((rows, rank)) @ rng.standard_normal((rank, d)) + rng.standard_normal(d)
        if kind == "repeated rows":
            distinct = rng.standard_normal((int(rng.integers(1, 4)), d)) * scales
            return distinct[rng.integers(0, len(distinct), rows)]
        basis = np.linalg.qr(rng.standard_normal((d, d)))[0][:, : max(1, d - 1)]
        return (rng.standard_normal((rows, basis.shape[1])) * rng.uniform(0.5, 2)) @ basis.T

    return draw(n), draw(m)


def cancelling_case(kind, n, d, seed, exponent):
    """Nearly identical sets (the value a small part of the traces), 10^-exponent apart."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)) * np.exp(rng.uniform(-1, 1, d)) + 3 * rng.standard_normal(d)
    delta = 10.0**-exponent
    if kind == "paired":            # the same images, features perturbed
        y = x + delta * rng.standard_normal((n, d))
    elif kind == "permuted":        # the same, in another order
        y = x[rng.permutation(n)] + delta * rng.standard_normal((n, d))
    elif kind == "subset":          # a few images more (m != n)
        extra = x.mean(axis=0) + delta * rng.standard_normal((int(rng.integers(1, 4)), d))
        y = np.concatenate([x, extra])
    elif kind == "offset":          # the mean moved only
        y = x + delta * rng.standard_normal(d)
    else:
        y = x.copy()
    return x, y


sizes = {"n": st.integers(2, 12), "m": st.integers(2, 12), "d": st.integers(1, 8),
         "seed": st.integers(0, 2**32 - 1)}


# --- (a) against the 50-digit reference ------------------------------------------------------------


@pytest.mark.parametrize("route", ROUTES)
@settings(max_examples=40)
@given(kind=st.sampled_from(GENERIC_KINDS), **sizes)
@example(kind="independent", n=2, m=2, d=8, seed=1)          # two images each
@example(kind="independent", n=3, m=11, d=8, seed=2)         # n < d, m != n
@example(kind="low rank", n=12, m=9, d=6, seed=3)            # singular with n > d
@example(kind="repeated rows", n=7, m=5, d=4, seed=4)
@example(kind="independent", n=12, m=12, d=1, seed=5)
def test_matches_the_reference(route, kind, n, m, d, seed):
    x, y = generic_case(kind, n, m, d, seed)
    with forced(route):
        result = frechet_distance_from_features(x, y)
    value, scale = reference(x, y)
    error = abs(float(result) - value)
    if route == "covariance":
        # frechet_distance on rounded covariances: only where the value is a fair part of s
        # (the stated bound of that route needs finite condition numbers, tested below).
        if value >= GENERIC_FRACTION * scale:
            assert error <= GENERIC_RTOL * value, (error / value, kind, n, m, d)
        return
    assert error <= allowed_error(value, scale, len(x) + len(y)), (error, value, scale, kind, n, m, d)


@settings(max_examples=40)
@given(data=st.data(), n=st.integers(2, 10), m=st.integers(2, 10), d=st.integers(1, 6))
def test_matches_the_reference_on_drawn_arrays(data, n, m, d):
    # Arbitrary entries: repeated values, zero columns, constant rows come up often.
    elements = st.floats(-100, 100, allow_nan=False, allow_subnormal=False)
    x = data.draw(hnp.arrays(np.float64, (n, d), elements=elements))
    y = data.draw(hnp.arrays(np.float64, (m, d), elements=elements))
    result = frechet_distance_from_features(x, y)
    assert passes(result, x, y, route_k(None, x, y))


@pytest.mark.parametrize("route", (None, "features"))
@settings(max_examples=40)
@given(kind=st.sampled_from(CANCELLING_KINDS), n=st.integers(2, 16), d=st.integers(1, 8),
       seed=st.integers(0, 2**32 - 1), exponent=st.floats(1, 15))
@example(kind="paired", n=16, d=8, seed=1, exponent=8.0)      # n > d: rank-deficient cross product
@example(kind="subset", n=5, d=8, seed=2, exponent=6.0)
def test_nearly_identical_sets_meet_the_stated_bound(route, kind, n, d, seed, exponent):
    x, y = cancelling_case(kind, n, d, seed, exponent)
    with forced(route):
        result = frechet_distance_from_features(x, y)
    assert passes(result, x, y, route_k(route, x, y))


@settings(max_examples=30)
@given(kind=st.sampled_from(("independent",) + CANCELLING_KINDS), d=st.integers(1, 8),
       extra=st.integers(2, 20), seed=st.integers(0, 2**32 - 1), exponent=st.floats(1, 15),
       spread=st.floats(0, 1))
def test_covariance_route_meets_its_bound(kind, d, extra, seed, exponent, spread):
    # k = (n + m + d) kappa: rounding the covariances squares the features' conditioning.
    # Feature scales within 10^+-spread, n > d (where the switch takes this route).
    rng = np.random.default_rng(seed)
    n = d + extra
    scales = 10.0 ** rng.uniform(-spread, spread, d)
    if kind == "independent":
        x = rng.standard_normal((n, d)) * scales + rng.standard_normal(d)
        y = rng.standard_normal((n + int(rng.integers(0, 5)), d)) * scales + rng.standard_normal(d)
    else:
        x, y = cancelling_case(kind, n, d, seed, exponent)
        x, y = x * scales, y * scales
    assume(max(condition_number(x), condition_number(y)) <= KAPPA_TESTED)
    k = route_k("covariance", x, y)
    with forced("covariance"):
        result = frechet_distance_from_features(x, y)
    assert passes(result, x, y, k)


def test_ill_conditioned_features_stay_within_the_features_bound():
    # Feature scales 10^-3..10^3 (covariance condition numbers ~1e12): the features route
    # never squares them. (The covariance route errs by ~1e-8 of the value here; the docstring
    # says so, and this test pins only the route the switch takes for few images.)
    rng = np.random.default_rng(12)
    for d, n, m in ((4, 9, 14), (6, 20, 13), (8, 30, 30)):
        scales = 10.0 ** rng.uniform(-3, 3, d)
        x = rng.standard_normal((n, d)) * scales + 3 * scales * rng.standard_normal(d)
        y = rng.standard_normal((m, d)) * scales * 1.5 + 3 * scales * rng.standard_normal(d)
        with forced("features"):
            result = frechet_distance_from_features(x, y)
        assert passes(result, x, y)


# --- (b) the same as frechet_distance on np.cov where n > d -----------------------------------------


@settings(max_examples=40)
@given(d=st.integers(1, 10), extra_x=st.integers(1, 30), extra_y=st.integers(1, 30),
       seed=st.integers(0, 2**32 - 1))
def test_equals_frechet_distance_of_the_sample_moments(d, extra_x, extra_y, seed):
    rng = np.random.default_rng(seed)
    scales = np.exp(rng.uniform(-1, 1, d))
    x = rng.standard_normal((d + extra_x, d)) * scales + rng.standard_normal(d)
    y = rng.standard_normal((d + extra_y, d)) * scales * rng.uniform(0.5, 2) + rng.standard_normal(d)
    expected = frechet_distance(x.mean(axis=0), np.atleast_2d(np.cov(x, rowvar=False)),
                                y.mean(axis=0), np.atleast_2d(np.cov(y, rowvar=False)))
    for route in ROUTES:
        with forced(route):
            assert frechet_distance_from_features(x, y) == pytest.approx(expected, rel=GENERIC_RTOL, abs=0)


# --- (c) Inception-sized features: d = 2048, n = 200 -----------------------------------------------


def reflected(features, vectors):
    """features @ H_1 @ H_2 ... for Householder reflections H_v = I - 2 v v^T / v^T v."""
    for vector in vectors:
        features = features - np.outer(features @ vector, 2.0 * vector / (vector @ vector))
    return features


def known_case(d, n, seed):
    """x, y (n x d each, n even) with a closed-form FID. Centred, x = [Z; -Z] Q and
    y = [W; -W] Q with Z, W of rows alpha_i e_i and beta_j e_(k/2 + pi(j)) (k = n/2, half the
    coordinates shared) and Q an orthogonal map, so X_c Y_c^T = [[1, -1], [-1, 1]] (x) Z W^T
    has singular values 2 alpha_i beta_j on the shared coordinates and 0 elsewhere:
    F = |a - b|^2 + (2 sum alpha^2 + 2 sum beta^2 - 4 sum_shared alpha beta) / (n - 1)."""
    half = n // 2
    rng = np.random.default_rng(seed)
    alpha, beta = rng.uniform(1, 2, half), rng.uniform(1, 2, half)
    columns = half // 2 + rng.permutation(half)
    z = np.zeros((half, d))
    z[np.arange(half), np.arange(half)] = alpha
    w = np.zeros((half, d))
    w[np.arange(half), columns] = beta
    vectors = rng.standard_normal((3, d))
    a, b = rng.standard_normal(d), rng.standard_normal(d)
    x = reflected(np.concatenate([z, -z]), vectors) + a
    y = reflected(np.concatenate([w, -w]), vectors) + b
    with mpmath.workdps(REFERENCE_DIGITS):
        alphas, betas = [mpmath.mpf(v) for v in alpha], [mpmath.mpf(v) for v in beta]
        shared = mpmath.fsum(alphas[c] * betas[j] for j, c in enumerate(columns) if c < half)
        covariance_term = (2 * mpmath.fsum(v * v for v in alphas) + 2 * mpmath.fsum(v * v for v in betas)
                           - 4 * shared) / (n - 1)
        mean_term = mpmath.fsum((mpmath.mpf(p) - mpmath.mpf(q)) ** 2 for p, q in zip(a, b))
        return x, y, float(covariance_term + mean_term)


def sqrtm_route(x, y):
    """pytorch-fid's calculate_frechet_distance on np.mean / np.cov: (covmean, value)."""
    cov_x, cov_y = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        covmean = linalg.sqrtm(cov_x @ cov_y)
    difference = x.mean(axis=0) - y.mean(axis=0)
    value = difference @ difference + np.trace(cov_x) + np.trace(cov_y) - 2 * np.trace(np.real(covmean))
    return covmean, float(value)


def test_inception_sized_features_give_the_known_value():
    x, y, expected = known_case(2048, 200, seed=7)
    result = frechet_distance_from_features(x, y)
    assert isinstance(result, np.float64) and np.isreal(result) and result >= 0
    assert result == pytest.approx(expected, rel=GENERIC_RTOL, abs=0)
    assert frechet_distance_from_features(y, x) == pytest.approx(expected, rel=GENERIC_RTOL, abs=0)


def test_inception_sized_random_features_are_real_and_non_negative():
    # ReLU features of correlated Gaussians, the way Inception's pool features look: 200 images
    # each, covariances of rank 199 in d = 2048.
    rng = np.random.default_rng(8)
    mixing = rng.standard_normal((2048, 2048)) / np.sqrt(2048)
    x = np.maximum(rng.standard_normal((200, 2048)) @ mixing, 0)
    y = np.maximum(rng.standard_normal((200, 2048)) @ mixing + 0.05, 0)
    result = frechet_distance_from_features(x, y)
    assert isinstance(result, np.float64) and math.isfinite(result) and result > 0
    assert frechet_distance_from_features(y, x) == pytest.approx(result, rel=1e-13, abs=0)
    # x == y: the Procrustes residual, not a difference of two ~1e2 numbers.
    assert 0 <= frechet_distance_from_features(x, x) <= 64 * 400 * EPS**2 * moment_scale(x, x)


SQRTM_FULL_SIZE = os.environ.get("SYMGEN_SLOW_SQRTM") == "1"


@pytest.mark.parametrize("d, n", [
    (256, 26),
    pytest.param(2048, 200, marks=[pytest.mark.slow, pytest.mark.skipif(
        not SQRTM_FULL_SIZE, reason="scipy's sqrtm takes ~25 s at d = 2048 on one core; "
                                    "SYMGEN_SLOW_SQRTM=1 runs it (benchmarks/frechet_features.py times it)")]),
])
def test_the_sqrtm_route_returns_complex_noise_and_misses_the_known_value(d, n):
    # What pytorch-fid's route does with covariances of n << d images: sqrtm of the singular
    # product C_x C_y comes back complex128 with imaginary noise (here up to 1e-8 of its
    # largest entry at d = 256), and the value from its real part misses the exact value by
    # more than GENERIC_RTOL (measured 2.4e-10 relative at d = 256, 2.1e-11 at d = 2048; on
    # random ReLU features at d = 2048 the two routes differ by 6e-8), where
    # frechet_distance_from_features is exact to rounding (measured 0 and < 1e-15).
    x, y, expected = known_case(d, n, seed=9)
    covmean, value = sqrtm_route(x, y)
    assert np.iscomplexobj(covmean) and np.abs(covmean.imag).max() > 0
    assert abs(value - expected) > GENERIC_RTOL * expected
    result = frechet_distance_from_features(x, y)
    assert np.isreal(result) and result == pytest.approx(expected, rel=GENERIC_RTOL, abs=0)


# --- (d) symmetry, x == y ----------------------------------------------------------------------------


def moment_scale(*feature_sets):
    """s = sum of tr C + |mu|^2 over the sets (float64; for the bounds only)."""
    return sum(float(np.sum(np.var(f, axis=0, ddof=1)) + np.sum(f.mean(axis=0) ** 2)) for f in feature_sets)


@pytest.mark.parametrize("route", ROUTES)
@settings(max_examples=30)
@given(kind=st.sampled_from(GENERIC_KINDS), **sizes)
def test_symmetric_and_zero_for_the_same_features(route, kind, n, m, d, seed):
    x, y = generic_case(kind, n, m, d, seed)
    with forced(route):
        forward, backward = frechet_distance_from_features(x, y), frechet_distance_from_features(y, x)
        same = frechet_distance_from_features(x, x)
        shuffled = frechet_distance_from_features(x, x[::-1])
    if n != m:
        assert forward == backward          # the smaller set always goes first
    assert min(forward, backward, same, shuffled) >= 0
    k, k_same = route_k(route, x, y), route_k(route, x, x)
    if math.isfinite(k):                    # (a singular covariance on the covariance route: no bound)
        value = max(float(forward), float(backward))
        assert abs(forward - backward) <= 2 * allowed_error(value, moment_scale(x, y), k)
    if math.isfinite(k_same):
        zero = 64 * k_same * EPS**2 * moment_scale(x, x)
        assert same <= zero and shuffled <= zero, (same, shuffled, zero)


@pytest.mark.parametrize("kind", CANCELLING_KINDS[:2] + CANCELLING_KINDS[3:])
@settings(max_examples=25)
@given(n=st.integers(2, 16), d=st.integers(1, 8), seed=st.integers(0, 2**32 - 1),
       exponent=st.floats(6, 18))
def test_row_paired_sets_are_exact_to_rounding(kind, n, d, seed, exponent):
    # The same images perturbed (in any order) or shifted: rows paired, exact differences,
    # the rotation refined near I. No root term: ulps of the value itself. (Perturbations
    # of 1e-6 of the spread and less, far below the rows' spacing, so that nearest rows are
    # the paired ones; otherwise the general bound applies, tested above.)
    x, y = cancelling_case(kind, n, d, seed, exponent)
    with forced("features"):
        result = frechet_distance_from_features(x, y)
    value, scale = reference(x, y)
    assert abs(float(result) - value) <= 64 * EPS * value + 64 * 2 * n * EPS**2 * scale


# --- (e) the comparison refutes wrong implementations ------------------------------------------------


def variant(x, y, ddof=1, cross=2.0, means=True, swapped_denominators=False, transposed=False,
            procrustes=True):
    """The formula with one slip at a time (the defaults are the correct formula, by the
    direct difference, not the function under test)."""
    if transposed:                       # np.cov's default rowvar=True: rows as variables
        x, y = x.T, y.T
    n, m = len(x), len(y)
    denominators = (n - ddof, m - ddof)
    if swapped_denominators:
        denominators = denominators[::-1]
    centred_x, centred_y = x - x.mean(axis=0), y - y.mean(axis=0)
    traces = np.sum(centred_x**2) / denominators[0] + np.sum(centred_y**2) / denominators[1]
    nuclear = np.sum(np.linalg.svd(centred_x @ centred_y.T, compute_uv=False)) / math.sqrt(
        denominators[0] * denominators[1])
    difference = x.mean(axis=0) - y.mean(axis=0)
    term = traces - cross * nuclear
    if procrustes and term < 0.05 * traces:
        with forced("features"):     # the correct value where the difference cancels
            return float(frechet_distance_from_features(x, y)) - (difference @ difference) * (not means)
    return float((difference @ difference if means else 0.0) + term)


WRONG_VARIANTS = {
    "np.cov(ddof=0)": {"ddof": 0},
    "cross term without its factor 2": {"cross": 1.0},
    "means' term dropped": {"means": False},
    "n - 1 and m - 1 swapped": {"swapped_denominators": True},
    "rows and columns swapped (rowvar=True)": {"transposed": True},
    "direct difference where it cancels": {"procrustes": False},
    "pytorch-fid's sqrtm route": "sqrtm",
}
MUTANT_CASES = [generic_case("independent", 5, 9, 4, 21), generic_case("independent", 6, 6, 6, 22),
                generic_case("low rank", 8, 3, 5, 23), generic_case("repeated rows", 4, 7, 3, 24),
                cancelling_case("paired", 6, 4, 25, 7.0), cancelling_case("paired", 9, 9, 26, 6.0)]


@pytest.fixture(scope="module")
def mutant_references():
    return [reference(x, y) for x, y in MUTANT_CASES]


def test_the_correct_variant_passes_the_comparison(mutant_references):
    for (x, y), expected in zip(MUTANT_CASES, mutant_references):
        assert passes(variant(x, y), x, y, expected=expected)
        assert passes(frechet_distance_from_features(x, y), x, y, expected=expected)


@pytest.mark.parametrize("name", WRONG_VARIANTS)
def test_a_wrong_variant_fails_the_comparison(name, mutant_references):
    options = WRONG_VARIANTS[name]
    refuted = []
    for (x, y), expected in zip(MUTANT_CASES, mutant_references):
        if options == "sqrtm":
            result = sqrtm_route(x, y)[1]
        elif options.get("transposed") and x.shape != y.shape:
            continue                    # rowvar=True only runs on sets of one shape
        else:
            result = variant(x, y, **options)
        refuted.append(not passes(result, x, y, expected=expected))
    assert any(refuted), name


# --- (f) validation ------------------------------------------------------------------------------------

GOOD = np.arange(12.0).reshape(4, 3) ** 1.5


@pytest.mark.parametrize("x, y, name, words", [
    (np.arange(3.0), GOOD, "x", "shape (n, d)"),
    (GOOD, np.ones((2, 2, 3)), "y", "shape (m, d)"),
    (5.0, GOOD, "x", "shape (n, d)"),
    (GOOD, np.ones((4, 2)), "y", "d = 2"),
    (GOOD[:1], GOOD, "x", "at least 2 rows"),
    (GOOD, GOOD[:1], "y", "at least 2 rows"),
    (np.where(GOOD == GOOD[1, 1], np.nan, GOOD), GOOD, "x", "finite"),
    (GOOD, np.where(GOOD == GOOD[2, 0], -np.inf, GOOD), "y", "finite"),
    (GOOD + 1j, GOOD, "x", "real"),
    (GOOD, np.full((4, 3), "a"), "y", "real"),
])
def test_every_validation_error_names_its_argument(x, y, name, words):
    with pytest.raises(ValueError) as raised:
        frechet_distance_from_features(x, y)
    message = str(raised.value)
    assert message.startswith(f"frechet_distance_from_features: argument {name!r}")
    assert words in message


def test_validate_false_skips_the_checks_only():
    rng = np.random.default_rng(31)
    x, y = rng.standard_normal((5, 3)), rng.standard_normal((7, 3))
    assert frechet_distance_from_features(x, y, validate=False) == frechet_distance_from_features(x, y)


# --- (g) dtypes, scaling, edges ----------------------------------------------------------------------------


def test_float32_in_float32_out_and_ints_give_float64():
    rng = np.random.default_rng(41)
    x, y = rng.standard_normal((6, 5)), rng.standard_normal((9, 5))
    x32, y32 = x.astype(np.float32), y.astype(np.float32)
    result = frechet_distance_from_features(x32, y32)
    assert result.dtype == np.float32
    # Computed in float64 from the float32 entries, then rounded once.
    assert result == np.float32(frechet_distance_from_features(x32.astype(np.float64), y32.astype(np.float64)))
    assert frechet_distance_from_features(x32, y).dtype == np.float64
    integers = frechet_distance_from_features(np.arange(12).reshape(4, 3) ** 2, np.arange(15).reshape(5, 3))
    assert integers.dtype == np.float64
    assert integers.shape == ()
    # Narrow integers too (np.result_type would pair uint8 with float32): float64.
    pixels = frechet_distance_from_features(np.arange(12, dtype=np.uint8).reshape(4, 3),
                                            np.arange(15, dtype=np.uint8).reshape(5, 3)[::-1])
    assert pixels.dtype == np.float64
    assert pixels == frechet_distance_from_features(np.arange(12.0).reshape(4, 3),
                                                    np.arange(15.0).reshape(5, 3)[::-1])


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("power", (-600, 500))
def test_scaled_features_scale_the_value_exactly(route, power):
    # A power of 2 scales exactly; at 2^500 the products would overflow without the
    # function's own scaling, at 2^-600 the squares would underflow.
    rng = np.random.default_rng(51)
    x, y = rng.standard_normal((5, 4)), rng.standard_normal((8, 4)) + 1
    with forced(route):
        assert frechet_distance_from_features(np.ldexp(x, power), np.ldexp(y, power)) == \
            np.ldexp(frechet_distance_from_features(x, y), 2 * power)


def test_no_features_give_zero():
    assert frechet_distance_from_features(np.zeros((3, 0)), np.zeros((5, 0))) == 0.0


def test_the_switch_takes_the_features_route_for_few_images():
    # FID's usual shapes at d = 2048: few generated images against as many or more.
    assert module._features_route_cheaper(200, 200, 2048)
    assert module._features_route_cheaper(2048, 2048, 2048)
    assert module._features_route_cheaper(100, 10000, 2048)
    assert not module._features_route_cheaper(4096, 4096, 2048)
    assert not module._features_route_cheaper(50000, 50000, 2048)
    assert module._features_route_cheaper(5, 12, 8)              # tiny: Python overhead decides
