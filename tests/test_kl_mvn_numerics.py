"""kl_mvn against a 50-digit mpmath evaluation of the textbook formula.

Covariances are drawn as Q diag(10^e) Q^T: exponents e uniform in [-2, 2] (so
eigenvalues in [1e-2, 1e2], condition number up to 1e4) times an overall scale, and Q
a random rotation from a drawn seed. Within that range the bound is 1e-12 relative;
for ill-conditioned covariances the factorization's own backward error makes it a
few ulps x condition number, tested separately.
"""
from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from symgen.numerics.gaussian import kl_mvn

RTOL = 1e-12
UNDERFLOW = 1e-300
ULP = np.finfo(np.float64).eps
REFERENCE_DIGITS = 50


# ---------------------------------------------------------------- references

def mp_kl_mvn(loc_p, cov_p, loc_q, cov_q):
    """The textbook formula, 50 digits or more; float64 inputs convert to mpf exactly."""
    loc_p, cov_p, loc_q, cov_q = (np.asarray(a, dtype=np.float64) for a in (loc_p, cov_p, loc_q, cov_q))
    d = len(loc_p)

    def covariance_part():
        sigma_p, sigma_q = mp.matrix(cov_p.tolist()), mp.matrix(cov_q.tolist())
        trace = sum((mp.inverse(sigma_q) * sigma_p)[i, i] for i in range(d))
        log_det_q, log_det_p = mp.log(mp.det(sigma_q)), mp.log(mp.det(sigma_p))
        return trace - d + log_det_q - log_det_p, abs(trace) + d + abs(log_det_q) + abs(log_det_p)

    # Identical covariances contribute exactly 0, which no finite precision resolves.
    covariance = 0 if np.array_equal(cov_p, cov_q) else _resolved(covariance_part)
    with mp.workdps(REFERENCE_DIGITS):
        diff = mp.matrix((loc_q - loc_p).tolist())
        mahalanobis = (diff.T * mp.lu_solve(mp.matrix(cov_q.tolist()), diff))[0, 0]
        return (covariance + mahalanobis) / 2


def mp_kl_univariate(m_p, var_p, m_q, var_q):
    """log(s_q/s_p) + (s_p^2 + (m_p - m_q)^2) / (2 s_q^2) - 1/2, s = sqrt(var), 50 digits or more."""
    m_p, var_p, m_q, var_q = (mp.mpf(float(x)) for x in (m_p, var_p, m_q, var_q))

    def variance_part():
        log_ratio = mp.log(mp.sqrt(var_q) / mp.sqrt(var_p))
        return log_ratio + var_p / (2 * var_q) - mp.mpf(1) / 2, abs(log_ratio) + var_p / (2 * var_q) + 1

    variance = 0 if var_p == var_q else _resolved(variance_part)
    with mp.workdps(REFERENCE_DIGITS):
        return variance + (m_p - m_q) ** 2 / (2 * var_q)


def _resolved(evaluate):
    """``evaluate() -> (value, magnitude)``, at 50 digits or, where the textbook formula
    cancels terms of size ``magnitude`` down to a much smaller ``value``, at as many more
    as keep 30 significant digits (tiny but nonzero differences, e.g. shrunk examples)."""
    digits = REFERENCE_DIGITS
    while True:
        with mp.workdps(digits):
            value, magnitude = evaluate()
            if abs(value) > magnitude * mp.mpf(10) ** (30 - digits) or digits >= 1600:
                return value
        digits *= 2


def relative_error(got, want):
    """|got - want| / |want|, where an exact 0 is the only acceptable answer to 0."""
    with mp.workdps(REFERENCE_DIGITS):
        if want == 0:
            return 0.0 if got == 0 else np.inf
        return float(abs(mp.mpf(float(got)) - want) / abs(want))


def assert_agrees(got, want, rtol=RTOL):
    """Relative agreement, except that results near float64's underflow threshold
    (e.g. a squared 1e-160 location difference) can only be right in absolute terms."""
    with mp.workdps(REFERENCE_DIGITS):
        error = abs(mp.mpf(float(got)) - want)
        assert error <= rtol * abs(want) + UNDERFLOW, (
            f"got {float(got)!r}, want {mp.nstr(want, 20)}, relative error {relative_error(got, want):.3g}")


def naive_kl_mvn(loc_p, cov_p, loc_q, cov_q):
    """The textbook formula in float64 with an explicit inverse and slogdet."""
    cov_q_inv = np.linalg.inv(cov_q)
    diff = loc_q - loc_p
    return 0.5 * (np.trace(cov_q_inv @ cov_p) + diff @ cov_q_inv @ diff - len(loc_p)
                  + np.linalg.slogdet(cov_q)[1] - np.linalg.slogdet(cov_p)[1])


# ---------------------------------------------------------------- strategies

def spd_from(log10_eigenvalues, seed):
    """Q diag(10^e) Q^T, exactly symmetric, with Q a rotation drawn from ``seed``."""
    d = len(log10_eigenvalues)
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))
    q = q * np.sign(np.diag(r))
    cov = (q * 10.0 ** np.asarray(log10_eigenvalues)) @ q.T
    return 0.5 * (cov + cov.T)


@st.composite
def spd_matrices(draw, d, log10_low=-2.0, log10_high=2.0):
    exponents = draw(hnp.arrays(np.float64, d, elements=st.floats(log10_low, log10_high)))
    return spd_from(exponents, draw(st.integers(0, 2**32 - 1)))


def locations(d, bound=10.0):
    return hnp.arrays(np.float64, d, elements=st.floats(-bound, bound))


dimensions = st.integers(1, 6)
scales = st.floats(-3.0, 3.0).map(lambda exponent: 10.0**exponent)


@st.composite
def general_pairs(draw):
    d = draw(dimensions)
    scale = draw(scales)
    return (draw(locations(d)), scale * draw(spd_matrices(d)),
            draw(locations(d)), scale * draw(spd_matrices(d)))


@st.composite
def near_equal_pairs(draw):
    """cov_q = cov_p (1 + 1e-9) or cov_p + 1e-9 x (small SPD), locations 1e-10 apart."""
    d = draw(dimensions)
    cov_p = draw(scales) * draw(spd_matrices(d))
    if draw(st.booleans()):
        cov_q = cov_p * (1 + 1e-9)
    else:
        perturbation = draw(spd_matrices(d, -1.0, 0.0)) * np.max(np.abs(cov_p))
        cov_q = cov_p + 1e-9 * perturbation
    loc_p = draw(locations(d))
    direction = draw(hnp.arrays(np.float64, d, elements=st.floats(-1.0, 1.0)))
    return loc_p, cov_p, loc_p + 1e-10 * direction, cov_q


@st.composite
def moderately_close_pairs(draw):
    """Relative differences from 1e-6 to 1: both sides of the switch between routes."""
    d = draw(dimensions)
    cov_p = draw(scales) * draw(spd_matrices(d))
    closeness = 10.0 ** draw(st.floats(-6.0, 0.0))
    perturbation = draw(spd_matrices(d, -1.0, 0.0)) * np.max(np.abs(cov_p))
    cov_q = cov_p + closeness * perturbation
    if draw(st.booleans()):
        shrunk = cov_p - closeness * perturbation
        # Only while that keeps cov_q as well conditioned as cov_p (up to a factor 2).
        if np.linalg.eigvalsh(shrunk)[0] >= 0.5 * np.linalg.eigvalsh(cov_p)[0]:
            cov_q = shrunk
    loc_p = draw(locations(d))
    return loc_p, cov_p, loc_p + closeness * draw(locations(d, 1.0)), cov_q


# ---------------------------------------------------------------- accuracy

@settings(max_examples=150, deadline=None)
@given(general_pairs())
def test_general_pairs_agree_with_mpmath(args):
    assert_agrees(kl_mvn(*args), mp_kl_mvn(*args))


@settings(max_examples=150, deadline=None)
@given(near_equal_pairs())
def test_near_equal_pairs_agree_with_mpmath(args):
    assert_agrees(kl_mvn(*args), mp_kl_mvn(*args))


@settings(max_examples=150, deadline=None)
@given(moderately_close_pairs())
def test_moderately_close_pairs_agree_with_mpmath(args):
    assert_agrees(kl_mvn(*args), mp_kl_mvn(*args))


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("make_cov_q", [
    lambda cov_p, rng: cov_p * (1 + 1e-9),
    lambda cov_p, rng: cov_p + 1e-9 * spd_from(rng.uniform(-1, 0, len(cov_p)), rng.integers(2**32)),
], ids=["scaled", "perturbed"])
def test_naive_textbook_formula_fails_where_kl_mvn_does_not(seed, make_cov_q):
    rng = np.random.default_rng(seed)
    d = 4
    cov_p = spd_from(rng.uniform(-2, 2, d), seed)
    cov_q = make_cov_q(cov_p, rng)
    loc_p = rng.standard_normal(d)
    args = (loc_p, cov_p, loc_p + 1e-10 * rng.standard_normal(d), cov_q)
    want = mp_kl_mvn(*args)
    assert relative_error(naive_kl_mvn(*args), want) > 1e-6
    assert_agrees(kl_mvn(*args), want)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_ill_conditioned_within_a_few_ulps_times_condition_number(data):
    # Eigenvalues over [1e-4, 1e4]: condition numbers up to 1e8, where the
    # factorization's backward error, not the formula, sets the accuracy.
    d = data.draw(st.integers(2, 6))
    cov_p = data.draw(spd_matrices(d, -4.0, 4.0))
    near_equal = data.draw(st.booleans())
    cov_q = cov_p * (1 + 1e-9) if near_equal else data.draw(spd_matrices(d, -4.0, 4.0))
    loc_p, loc_q = data.draw(locations(d)), data.draw(locations(d))
    condition = max(np.linalg.cond(cov_p), np.linalg.cond(cov_q))
    args = (loc_p, cov_p, loc_q, cov_q)
    assert_agrees(kl_mvn(*args), mp_kl_mvn(*args), rtol=max(RTOL, 4 * ULP * condition))


@settings(max_examples=150, deadline=None)
@given(st.floats(-10, 10), st.floats(-3, 3), st.floats(-10, 10), st.floats(-3, 3), st.booleans())
def test_univariate_agrees_with_closed_form(m_p, log10_s_p, m_q, log10_s_q, near_equal):
    var_p = (10.0**log10_s_p) ** 2
    var_q, m_q = (var_p * (1 + 1e-9), m_p + 1e-10) if near_equal else ((10.0**log10_s_q) ** 2, m_q)
    got = kl_mvn([m_p], [[var_p]], [m_q], [[var_q]])
    assert_agrees(got, mp_kl_univariate(m_p, var_p, m_q, var_q))


# ---------------------------------------------------------------- properties

@settings(max_examples=80, deadline=None)
@given(st.data())
def test_kl_of_a_distribution_with_itself_is_exactly_zero(data):
    d = data.draw(dimensions)
    loc, cov = data.draw(locations(d)), data.draw(scales) * data.draw(spd_matrices(d))
    assert kl_mvn(loc, cov, loc, cov) == 0.0


@settings(max_examples=80, deadline=None)
@given(st.one_of(general_pairs(), near_equal_pairs(), moderately_close_pairs()))
def test_kl_is_non_negative(args):
    assert kl_mvn(*args) >= 0.0


# ---------------------------------------------------------------- batching

def random_batch(rng, batch, d, log10_range=2.0):
    covs = np.array([spd_from(rng.uniform(-log10_range, log10_range, d), rng.integers(2**32))
                     for _ in range(int(np.prod(batch)))])
    return rng.standard_normal(batch + (d,)), covs.reshape(batch + (d, d))


def test_batch_equals_loop_of_unbatched():
    rng = np.random.default_rng(0)
    loc_p, cov_p = random_batch(rng, (3, 4), 5)
    loc_q, cov_q = random_batch(rng, (3, 4), 5)
    cov_q[0, 0] = cov_p[0, 0] * (1 + 1e-9)  # one entry through the near-agreement route
    loc_q[0, 0] = loc_p[0, 0]
    got = kl_mvn(loc_p, cov_p, loc_q, cov_q)
    assert got.shape == (3, 4)
    loop = [[kl_mvn(loc_p[i, j], cov_p[i, j], loc_q[i, j], cov_q[i, j]) for j in range(4)] for i in range(3)]
    np.testing.assert_allclose(got, loop, rtol=1e-14, atol=0)


@pytest.mark.parametrize("near_equal", [False, True])
def test_single_q_broadcasts_against_batch_of_p(near_equal):
    rng = np.random.default_rng(1)
    loc_p, cov_p = random_batch(rng, (6,), 4)
    loc_q, cov_q = random_batch(rng, (), 4)
    if near_equal:
        cov_p = cov_q * (1 + 1e-9 * rng.uniform(1, 2, (6, 1, 1)))
    got = kl_mvn(loc_p, cov_p, loc_q, cov_q)
    assert got.shape == (6,)
    np.testing.assert_allclose(got, [kl_mvn(loc_p[i], cov_p[i], loc_q, cov_q) for i in range(6)], rtol=1e-14)
    for i in range(6):
        assert_agrees(got[i], mp_kl_mvn(loc_p[i], cov_p[i], loc_q, cov_q))


def test_batch_dimensions_broadcast_numpy_style():
    rng = np.random.default_rng(2)
    loc_p, cov_p = random_batch(rng, (5, 1), 3)
    loc_q, cov_q = random_batch(rng, (4,), 3)
    got = kl_mvn(loc_p, cov_p, np.zeros(3), cov_q)
    assert got.shape == (5, 4)
    assert got[2, 3] == pytest.approx(kl_mvn(loc_p[2, 0], cov_p[2, 0], np.zeros(3), cov_q[3]), rel=1e-14)


def test_unbatched_result_is_a_numpy_scalar():
    result = kl_mvn(np.zeros(2), np.eye(2), np.ones(2), 2 * np.eye(2))
    assert isinstance(result, np.float64)


# ---------------------------------------------------------------- dtypes

def test_float32_in_gives_float32_out():
    rng = np.random.default_rng(3)
    loc_p, cov_p = random_batch(rng, (4,), 3, log10_range=0.5)
    loc_q, cov_q = random_batch(rng, (4,), 3, log10_range=0.5)
    cov_q[0] = cov_p[0] * (1 + 1e-3)
    args32 = [a.astype(np.float32) for a in (loc_p, cov_p, loc_q, cov_q)]
    got = kl_mvn(*args32)
    assert got.dtype == np.float32
    assert isinstance(kl_mvn(*(a[0] for a in args32)), np.float32)
    # Condition numbers <= 10: a few float32 ulps x condition number at worst.
    want = kl_mvn(*(a.astype(np.float64) for a in args32))
    np.testing.assert_allclose(got, want, rtol=50 * np.finfo(np.float32).eps)


def test_integers_compute_in_float64():
    got = kl_mvn([0, 1], [[2, 1], [1, 2]], [1, 0], [[3, 0], [0, 1]])
    assert isinstance(got, np.float64)
    want = mp_kl_mvn(np.array([0.0, 1.0]), np.array([[2.0, 1.0], [1.0, 2.0]]),
                     np.array([1.0, 0.0]), np.array([[3.0, 0.0], [0.0, 1.0]]))
    assert_agrees(got, want)


# ---------------------------------------------------------------- validation

GOOD = dict(loc_p=np.zeros(2), cov_p=np.eye(2), loc_q=np.ones(2), cov_q=2 * np.eye(2))
NOT_SYMMETRIC = np.array([[2.0, 1.0], [0.5, 2.0]])
NOT_POSITIVE_DEFINITE = np.array([[1.0, 2.0], [2.0, 1.0]])


@pytest.mark.parametrize("name, value, message", [
    ("loc_p", 0.0, "must have shape (..., d)"),
    ("loc_q", 0.0, "must have shape (..., d)"),
    ("cov_p", np.ones(2), "must have shape (..., d, d)"),
    ("cov_q", np.ones((2, 3)), "must have shape (..., d, d)"),
    ("cov_p", np.eye(3), "has dimension d = 3"),
    ("loc_q", np.zeros(3), "has dimension d = 3"),
    ("cov_q", np.eye(3), "has dimension d = 3"),
    ("loc_p", np.array([np.nan, 0.0]), "must be finite"),
    ("cov_p", np.array([[np.inf, 0.0], [0.0, 1.0]]), "must be finite"),
    ("loc_q", np.array([0.0, -np.inf]), "must be finite"),
    ("cov_q", np.array([[1.0, np.nan], [np.nan, 1.0]]), "must be finite"),
    ("cov_p", NOT_SYMMETRIC, "must be symmetric"),
    ("cov_q", NOT_SYMMETRIC, "must be symmetric"),
    ("cov_p", NOT_POSITIVE_DEFINITE, "must be positive definite"),
    ("cov_q", NOT_POSITIVE_DEFINITE, "must be positive definite"),
    ("cov_q", np.stack([np.eye(2), NOT_POSITIVE_DEFINITE]), "must be positive definite"),
])
def test_invalid_argument_is_named(name, value, message):
    with pytest.raises(ValueError) as error:
        kl_mvn(**{**GOOD, name: value}, function="gaussian_kl")
    assert str(error.value).startswith(f"gaussian_kl: argument '{name}'")
    assert message in str(error.value)


def test_batch_shapes_that_do_not_broadcast_are_named():
    with pytest.raises(ValueError, match=r"kl_mvn: arguments do not broadcast.*loc_p \(3,\).*loc_q \(4,\)"):
        kl_mvn(np.zeros((3, 2)), np.eye(2), np.zeros((4, 2)), np.eye(2))


@pytest.mark.parametrize("name", ["cov_p", "cov_q"])
def test_not_positive_definite_is_named_even_without_validation(name):
    with pytest.raises(ValueError, match=f"kl_mvn: argument '{name}' must be positive definite"):
        kl_mvn(**{**GOOD, name: NOT_POSITIVE_DEFINITE}, validate=False)
