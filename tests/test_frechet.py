"""The Fréchet distance: the optimal map, accuracy, the sqrtm route, the notebook's
diagonal formula, finite-sample bias, dtypes, errors."""

import mpmath
import numpy as np
import pytest
import sympy as sp
from scipy import linalg, stats

import symgen
import symgen.engine.api
import symgen.engine.matrices
from symgen import frechet_distance
from symgen.engine.accuracy import relative_error
from symgen.engine.domains import random_rotation
from symgen.engine.evaluate import reference_value

FOUND = symgen.derivation("frechet_distance")
MODULE = FOUND.module


def closed_form_reference(point):
    return reference_value(FOUND, FOUND.output().closed_form, point)


def random_spd(rng, d, low=1e-2, high=1e2):
    rotation = random_rotation(d, int(rng.integers(1, 2**16)))
    matrix = (rotation * np.exp(rng.uniform(np.log(low), np.log(high), d))) @ rotation.T
    return (matrix + matrix.T) / 2


def sqrtm_distance(loc1, cov1, loc2, cov2):
    return MODULE.scipy_sqrtm_distance(loc1, cov1, loc2, cov2)


# --- derivation and verification ----------------------------------------------------------


def test_the_optimal_map_pushes_the_first_gaussian_to_the_second():
    # A cov1 A = cov2 symbolically for a general 1x1 pair, numerically for d = 5.
    a, b = sp.symbols("a b", positive=True)
    push = (MODULE.transport * MODULE.cov1 * MODULE.transport.T).xreplace(
        {MODULE.cov1: sp.ImmutableMatrix([[a]]), MODULE.cov2: sp.ImmutableMatrix([[b]]), MODULE.d: 1}).doit()
    assert sp.simplify(push[0, 0] - b) == 0
    rng = np.random.default_rng(5)
    cov1, cov2 = random_spd(rng, 5), random_spd(rng, 5)
    root = np.real(linalg.sqrtm(cov1))
    inverse = np.linalg.inv(root)
    transport = inverse @ np.real(linalg.sqrtm(root @ cov2 @ root)) @ inverse
    np.testing.assert_allclose(transport @ cov1 @ transport, cov2, rtol=1e-8, atol=1e-8 * np.abs(cov2).max())
    assert np.all(np.linalg.eigvalsh((transport + transport.T) / 2) > 0)   # the gradient of a convex map


# --- the optimality certificate (Brenier's theorem) ----------------------------------------------


def test_the_certificate_takes_no_matrix_square_root(monkeypatch):
    # The identity check's reference and the Monte Carlo map must not go through the closed
    # form's square roots: with every square-root route disabled they still run, and agree
    # with the shipped function (which is checked against the closed form elsewhere).
    def forbidden(*args, **kwargs):
        raise AssertionError("a matrix square root was taken")

    monkeypatch.setattr(linalg, "sqrtm", forbidden)
    monkeypatch.setattr(symgen.engine.matrices.MatrixSqrt, "explicit", classmethod(forbidden))
    rng = np.random.default_rng(3)
    for d in (2, 3, 4):
        point = FOUND.sample_point(rng, {MODULE.d: d})
        cost = float(MODULE.certified_cost(**point))
        assert cost == pytest.approx(float(frechet_distance(**point)), rel=1e-13)
        draws = MODULE.sample_coupling_cost(rng, 1000, **point).draws
        assert draws.shape == (1000,) and np.all(draws >= 0)


def test_the_certified_map_is_symmetric_positive_definite_and_pushes_forward():
    rng = np.random.default_rng(8)
    with mpmath.workdps(MODULE.CERTIFICATE_DIGITS):
        first, second = (MODULE._mp_matrix(random_spd(rng, 4)) for _ in range(2))
        transport = MODULE.riccati_transport(first, second)
        assert transport == transport.T
        assert min(mpmath.eigsy(transport)[0]) > 0
        assert mpmath.mnorm(transport * first * transport - second, 1) < mpmath.mpf(10) ** -45


def test_the_certificate_refuses_singular_covariances():
    # Brenier's certificate needs the map's target regular here (Newton's method converges
    # only linearly to a singular A); the checks' domain draws eigenvalues in [1e-2, 1e2].
    direction = np.array([[1.0], [2.0], [0.5]])
    with pytest.raises(ValueError, match="positive definite covariances"):
        MODULE.certified_cost(np.zeros(3), direction @ direction.T, np.zeros(3), np.eye(3))


CLOSED_FORM = f"{MODULE.MEAN_TERM} + trace(cov1 + cov2 - 2*sqrtm(sqrtm(cov1)*cov2*sqrtm(cov1)))"


def test_the_closed_form_is_verified_by_the_certificate():
    result = symgen.check("frechet_distance", CLOSED_FORM, examples=10)
    assert result.verified, result


@pytest.mark.parametrize("mutant", [
    f"({CLOSED_FORM})*(1 + 1e-6)",                                                     # 1e-6 of the value
    f"{CLOSED_FORM} + 1e-12",                                                          # a tiny constant
    f"{MODULE.MEAN_TERM} + trace(cov1 + cov2 - 2*(1 - 1e-9)*sqrtm(sqrtm(cov1)*cov2*sqrtm(cov1)))",
    f"{CLOSED_FORM} + 1e-9*trace(cov1 - cov2)**2",                                     # wrong only apart
])
def test_mutants_that_keep_the_square_root_map_are_refuted(mutant):
    # Each keeps the sqrtm map of the closed form and changes the value by an amount the
    # former check (the closed form itself via sqrtm, absolute tolerance 1e-8) let through at
    # small distances; the certificate's relative tolerance 1e-10 refutes them.
    result = symgen.check("frechet_distance", mutant, examples=10)
    assert not result.verified
    assert "certified optimal" in result.empirical_counterexample.check


def test_no_other_gaussian_coupling_is_cheaper():
    # Couplings y = loc2 + L2 R L1^-1 (x - loc1), R orthogonal, have marginals N(loc1, cov1)
    # and N(loc2, cov2) and cost ||loc1 - loc2||^2 + tr cov1 + tr cov2 - 2 tr(L2 R L1^T);
    # the closed form is their minimum (von Neumann's trace inequality), reached at the polar R.
    rng = np.random.default_rng(11)
    for d in (2, 3, 6):
        loc1, loc2 = rng.normal(size=d), rng.normal(size=d)
        cov1, cov2 = random_spd(rng, d, 0.1, 10), random_spd(rng, d, 0.1, 10)
        chol1, chol2 = np.linalg.cholesky(cov1), np.linalg.cholesky(cov2)
        value = float(frechet_distance(loc1, cov1, loc2, cov2))
        base = np.sum((loc1 - loc2) ** 2) + np.trace(cov1) + np.trace(cov2)
        costs = [base - 2 * np.trace(chol2 @ random_rotation(d, seed) @ chol1.T) for seed in range(1, 200)]
        assert min(costs) >= value * (1 - 1e-12)
        left, _, right = np.linalg.svd(chol2.T @ chol1)
        assert base - 2 * np.trace(chol2 @ (left @ right) @ chol1.T) == pytest.approx(value, rel=1e-10)


# --- accuracy against 50-digit mpmath -----------------------------------------------------------


@pytest.mark.parametrize("relative", [1e-11, -1e-9, 1e-6, 3e-4])
@pytest.mark.parametrize("d", [1, 3])
def test_near_equal_covariances(relative, d):
    rng = np.random.default_rng(int(1e6 * abs(relative)) + d)
    cov1 = random_spd(rng, d, 0.1, 10)
    cov2 = MODULE.frechet_distance.params[3].domain.nearby(cov1, relative)
    point = dict(loc1=np.zeros(d), cov1=cov1, loc2=np.zeros(d), cov2=cov2)
    reference = closed_form_reference(point)
    assert relative_error(frechet_distance(**point), reference) <= 1e-12
    # The textbook route (the traces minus the trace of scipy's square root) cancels here:
    # its error is at least 100 times symgen's bound (all digits lost at the smallest
    # offsets; how many at 3e-4 depends on the platform's sqrtm and BLAS).
    assert relative_error(sqrtm_distance(**point), reference) > 100 * 1e-12


def test_identical_gaussians_give_exactly_zero():
    cov = np.array([[2.0, 0.3], [0.3, 0.5]])
    assert frechet_distance(np.ones(2), cov, np.ones(2), cov) == 0.0


# --- the scipy.linalg.sqrtm route, singular covariances, speed ---------------------------------


@pytest.mark.parametrize("d", [1, 2, 5, 16, 64])
def test_agrees_with_scipy_sqrtm_on_random_spd_matrices(d):
    rng = np.random.default_rng(d)
    for _ in range(5):
        a, b = rng.standard_normal((d, d + 3)), rng.standard_normal((d, d + 3))
        cov1, cov2 = a @ a.T / d, b @ b.T / d
        loc1, loc2 = rng.normal(size=d), rng.normal(size=d)
        scale = np.trace(cov1) + np.trace(cov2) + np.sum((loc1 - loc2) ** 2)
        # sqrtm's own error is a few ulps of the scale times the conditioning.
        assert abs(frechet_distance(loc1, cov1, loc2, cov2) - sqrtm_distance(loc1, cov1, loc2, cov2)) \
            <= 1e-11 * scale


def test_singular_covariances_are_real_and_non_negative():
    # Sample covariances of fewer points than dimensions are singular: sqrtm of their
    # product returns complex noise; the distance stays real, >= 0, and matches sqrtm's real part.
    rng = np.random.default_rng(7)
    d = 12
    samples1, samples2 = rng.normal(size=(5, d)), rng.normal(size=(7, d))
    cov1, cov2 = np.cov(samples1, rowvar=False), np.cov(samples2, rowvar=False)
    cov1, cov2 = (cov1 + cov1.T) / 2, (cov2 + cov2.T) / 2
    value = frechet_distance(np.zeros(d), cov1, np.zeros(d), cov2)
    assert np.isrealobj(value) and value >= 0
    assert value == pytest.approx(sqrtm_distance(np.zeros(d), cov1, np.zeros(d), cov2), rel=1e-6)
    assert frechet_distance(np.zeros(d), cov1, np.zeros(d), cov1) >= 0


# --- the notebook's diagonal formula ------------------------------------------------------------------


def notebook_formula(loc1, cov1, loc2, cov2):
    """Section 10 of the theory notebook, verbatim."""
    mean_term = np.sum((loc1 - loc2) ** 2)
    return mean_term + np.trace(cov1 + cov2 - 2 * np.diag(np.sqrt(np.diag(cov1) * np.diag(cov2))))


def test_the_diagonal_formula_is_the_commuting_case():
    assert len(MODULE.diagonal_case()) == 3        # proved by SymPy for d = 1, 2, 3
    rng = np.random.default_rng(2)
    loc1, loc2 = rng.normal(size=3), rng.normal(size=3)
    diagonal1, diagonal2 = np.diag([0.5, 2.0, 4.0]), np.diag([1.5, 0.2, 3.0])
    assert notebook_formula(loc1, diagonal1, loc2, diagonal2) == pytest.approx(
        float(frechet_distance(loc1, diagonal1, loc2, diagonal2)), rel=1e-13)
    # Covariances that commute but are not diagonal: the closed form is the diagonal
    # formula in their common eigenbasis, and is unchanged by the rotation.
    rotation = random_rotation(3, 9)
    rotated1, rotated2 = rotation @ diagonal1 @ rotation.T, rotation @ diagonal2 @ rotation.T
    assert float(frechet_distance(loc1, rotated1, loc2, rotated2)) == pytest.approx(
        notebook_formula(loc1, diagonal1, loc2, diagonal2), rel=1e-12)


@pytest.mark.parametrize("cov1, cov2, commute", [
    (np.array([[1.0, 0.9], [0.9, 2.0]]), np.array([[1.0, -0.9], [-0.9, 2.0]]), False),
    # Commuting but not diagonal: the closed form is the diagonal formula in the common
    # eigenbasis, not in the coordinates the notebook uses.
    (np.array([[1.0, 0.9], [0.9, 1.0]]), np.array([[1.0, -0.9], [-0.9, 1.0]]), True),
])
def test_the_diagonal_formula_is_wrong_off_the_diagonal(cov1, cov2, commute):
    # Equal diagonals, different correlations: the notebook's covariance term is 0, while
    # the two Gaussians are far apart.
    zero = np.zeros(2)
    assert np.allclose(cov1 @ cov2, cov2 @ cov1) == commute
    assert notebook_formula(zero, cov1, zero, cov2) == pytest.approx(0.0, abs=1e-15)
    value = float(frechet_distance(zero, cov1, zero, cov2))
    assert value == pytest.approx(sqrtm_distance(zero, cov1, zero, cov2), rel=1e-12)
    assert value > 0.5


def test_symgen_check_refutes_the_diagonal_formula():
    # The notebook's formula as `symgen check frechet_distance EXPR` reads it: a declared slip
    # (every slip is refuted by tests/test_proofs.py); here, where its counterexample lies.
    candidate = f"{MODULE.MEAN_TERM} + trace(cov1 + cov2 - 2*sqrtm(diagpart(cov1))*sqrtm(diagpart(cov2)))"
    assert candidate in [slip for slip, _, _ in FOUND.slips]
    assert sp.simplify(symgen.engine.api.parse_candidate(FOUND, candidate)
                       - MODULE.notebook_diagonal_formula()) == 0
    result = symgen.check("frechet_distance", candidate)
    assert not result.verified
    point = result.counterexample.point
    # Where the check refutes it, the covariances are not both diagonal (on diagonal
    # ones, d = 1 included, the formula is right).
    off_diagonal = [matrix - np.diag(np.diag(matrix)) for matrix in (point["cov1"], point["cov2"])]
    assert any(np.abs(part).max() > 0 for part in off_diagonal)


# --- finite samples: the mean term's bias and the 1/n extrapolation --------------------------------


def test_mean_term_bias_is_derived():
    _, _, proved = MODULE.mean_term_bias()
    assert len(proved) == 3


@pytest.mark.parametrize("sizes", [(3, 7), (10, 4)])
def test_mean_term_bias_by_monte_carlo(sizes):
    # E||mean1 - mean2||^2 = ||loc1 - loc2||^2 + tr cov1 / n1 + tr cov2 / n2, against the
    # average over 40,000 replications of actual sample means; a batch-means t test at
    # false-alarm probability 1e-6.
    size1, size2 = sizes
    rng = np.random.default_rng(size1)
    loc1, loc2 = np.array([0.2, -0.1, 0.4]), np.array([0.0, 0.3, 0.1])
    cov1, cov2 = random_spd(rng, 3, 0.3, 3), random_spd(rng, 3, 0.3, 3)
    replications = 40_000
    first = stats.multivariate_normal(loc1, cov1).rvs((replications, size1), random_state=rng)
    second = stats.multivariate_normal(loc2, cov2).rvs((replications, size2), random_state=rng)
    squared = np.sum((first.mean(axis=1) - second.mean(axis=1)) ** 2, axis=-1)
    expected = np.sum((loc1 - loc2) ** 2) + np.trace(cov1) / size1 + np.trace(cov2) / size2
    batches = squared.reshape(200, -1).mean(axis=1)
    t = (batches.mean() - expected) / (batches.std(ddof=1) / np.sqrt(200))
    assert abs(t) < stats.t.isf(0.5e-6, 199)
    # The plug-in ||loc1 - loc2||^2 is biased: the bias is far outside the noise.
    plug_in = np.sum((loc1 - loc2) ** 2)
    assert abs((batches.mean() - plug_in) / (batches.std(ddof=1) / np.sqrt(200))) > 20


def plug_in_distance(rng, loc1, cov1, loc2, cov2, n):
    first = rng.multivariate_normal(loc1, cov1, size=n)
    second = rng.multivariate_normal(loc2, cov2, size=n)
    return float(frechet_distance(first.mean(0), np.cov(first, rowvar=False),
                                  second.mean(0), np.cov(second, rowvar=False)))


def test_sample_estimate_extrapolated_in_one_over_n():
    # The plug-in distance from n samples per side is biased by about c / n (Chong &
    # Forsyth 2020 extrapolate FID to n = infinity this way). Fit a + c/n by least
    # squares over n in [50, 400] and compare a with the closed form: the fit's standard
    # error comes from independent replications (a t test at false-alarm probability 1e-6).
    rng = np.random.default_rng(42)
    loc1, loc2 = np.zeros(3), np.array([0.3, 0.0, -0.2])
    cov1 = random_spd(rng, 3, 0.5, 2)
    cov2 = random_spd(rng, 3, 0.5, 2)
    value = float(frechet_distance(loc1, cov1, loc2, cov2))
    sizes = np.array([50, 100, 200, 400])
    design = np.column_stack([np.ones(len(sizes)), 1.0 / sizes])
    intercepts, raw = [], []
    for _ in range(60):
        estimates = np.array([plug_in_distance(rng, loc1, cov1, loc2, cov2, n) for n in sizes])
        intercepts.append(np.linalg.lstsq(design, estimates, rcond=None)[0][0])
        raw.append(estimates[0])
    intercepts = np.array(intercepts)
    t = (intercepts.mean() - value) / (intercepts.std(ddof=1) / np.sqrt(len(intercepts)))
    assert abs(t) < stats.t.isf(0.5e-6, len(intercepts) - 1)
    # Without the extrapolation, n = 50 is visibly biased upwards.
    raw = np.array(raw)
    assert (raw.mean() - value) / (raw.std(ddof=1) / np.sqrt(len(raw))) > 5


# --- dtypes, broadcasting ------------------------------------------------------------------------


def test_float32_in_float32_out():
    cov = np.eye(2, dtype=np.float32)
    assert frechet_distance(np.zeros(2, np.float32), cov, np.ones(2, np.float32), 2 * cov).dtype == np.float32
    assert frechet_distance(np.zeros(2), np.eye(2), np.ones(2), 2 * np.eye(2)).dtype == np.float64


def test_batched_matches_loop_and_broadcasts():
    rng = np.random.default_rng(3)
    cov1 = np.stack([random_spd(rng, 3) for _ in range(5)])
    loc1 = rng.normal(size=(5, 3))
    cov2 = random_spd(rng, 3)
    batch = frechet_distance(loc1, cov1, np.zeros(3), cov2)
    assert batch.shape == (5,)
    for i in range(5):
        assert batch[i] == pytest.approx(float(frechet_distance(loc1[i], cov1[i], np.zeros(3), cov2)), rel=1e-13)
    assert frechet_distance(loc1[:, None], cov1[:, None], loc1[None], cov1[None]).shape == (5, 5)


# --- bad input --------------------------------------------------------------------------------------


@pytest.mark.parametrize("change, named, why", [
    (dict(cov1=np.array([[1.0, 0.5], [0.0, 1.0]])), "cov1", "symmetric"),
    (dict(cov2=np.array([[1.0, 2.0], [2.0, 1.0]])), "cov2", "positive semi-definite"),
    (dict(cov1=np.array([[1.0, 2.0], [2.0, 1.0]])), "cov1", "positive semi-definite"),
    (dict(loc2=np.zeros(3)), "loc2", "dimension"),
    (dict(cov2=np.eye(3)), "cov2", "dimension"),
    (dict(cov1=np.ones(2)), "cov1", "shape"),
    (dict(loc1=np.array([0.0, np.nan])), "loc1", "finite"),
])
def test_rejects_bad_arguments(change, named, why):
    arguments = dict(loc1=np.zeros(2), cov1=np.eye(2), loc2=np.ones(2), cov2=2 * np.eye(2))
    arguments.update(change)
    with pytest.raises(ValueError, match=rf"frechet_distance: argument '{named}' .*{why}"):
        frechet_distance(**arguments)


def test_accepts_singular_but_rejects_negative_semidefinite():
    singular = np.array([[1.0, 1.0], [1.0, 1.0]])
    assert frechet_distance(np.zeros(2), singular, np.zeros(2), np.eye(2)) >= 0
    with pytest.raises(ValueError, match="frechet_distance: argument 'cov2'"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), -singular)


def test_rejects_batches_that_do_not_broadcast():
    with pytest.raises(ValueError, match="frechet_distance: arguments do not broadcast"):
        frechet_distance(np.zeros((2, 3)), np.eye(3), np.zeros((4, 3)), np.eye(3))


def test_a_batch_mixing_near_and_distant_pairs_matches_the_loop():
    # Entries whose covariance term cancels take the difference route, the rest the direct
    # one; each entry must equal its own unbatched value.
    rng = np.random.default_rng(12)
    base = np.stack([random_spd(rng, 3, 0.1, 10) for _ in range(4)])
    other = np.stack([base[0], base[1] * (1 + 1e-9), random_spd(rng, 3), base[3] + 1e-3 * np.eye(3)])
    loc = np.zeros((4, 3))
    batch = frechet_distance(loc, base, loc, other)
    assert batch[0] == 0.0
    for i in range(4):
        assert batch[i] == float(frechet_distance(loc[i], base[i], loc[i], other[i]))


@pytest.mark.parametrize("smallest", [1e-9, 1e-12, 0.0])
@pytest.mark.parametrize("seed", [0, 3])
def test_a_nearly_singular_covariance_beside_a_regular_one(smallest, seed):
    # Outside the drawn domain: cov2 loses a direction that cov1 has (a collapsing
    # generator). The covariance term is a small fraction of the traces, so the difference
    # route is tried; near a singular square root it falls back to the direct value. No
    # warning, no NaN; the error is bounded by the conditioning (sqrt at 0 amplifies the
    # rounding of the rotated entries, ~1e-14, to ~1e-7 of the answer).
    import warnings

    rotation = random_rotation(2, seed)
    cov1 = rotation @ np.diag([100.0, 1e-2]) @ rotation.T
    cov2 = rotation @ np.diag([100.0, smallest]) @ rotation.T
    cov1, cov2 = (cov1 + cov1.T) / 2, (cov2 + cov2.T) / 2
    point = dict(loc1=np.zeros(2), cov1=cov1, loc2=np.zeros(2), cov2=cov2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = frechet_distance(**point)
    assert relative_error(value, closed_form_reference(point)) <= 1e-5


@pytest.mark.parametrize("exponent", [40, 20, 6])
def test_proportional_covariances_in_64_dimensions(exponent):
    # cov2 = (1 + eps) cov1 commute: the distance is tr(cov1) (sqrt(1 + eps) - 1)^2. With
    # integer cov1 (entries < 2^10) and eps = 2^-exponent, cov2 is exact in float64, so the
    # reference needs no rounding model; at eps = 2^-40 the direct route would cancel ~24 digits.
    import mpmath

    rng = np.random.default_rng(exponent)
    a = rng.integers(-3, 4, (64, 64)).astype(float)
    cov1 = a @ a.T + 64 * np.eye(64)
    eps = 2.0**-exponent
    cov2 = cov1 * (1 + eps)
    assert np.array_equal(cov2 - cov1, cov1 * eps)                  # exact
    loc = np.zeros(64)
    with mpmath.workdps(50):
        reference = mpmath.mpf(np.trace(cov1)) * (mpmath.sqrt(1 + mpmath.mpf(eps)) - 1) ** 2
    assert relative_error(frechet_distance(loc, cov1, loc, cov2), reference) <= 1e-12
